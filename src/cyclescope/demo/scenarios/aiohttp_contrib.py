"""aiohttp clients whose server drops the connection, with or without cyclescope.contrib.aiohttp.

Each round starts a local aiohttp server (127.0.0.1, a free port) and runs one
client against it, then drops every reference to the client's objects. The
server drops the connection

* ``--drop headers`` (default): before sending a byte of the response, which is
  aiohttp issue #10535 (what its reporter's streaming client ran into, and what
  aiohttp's own regression test for it does). On aiohttp before 3.11.14 the
  ``ServerDisconnectedError`` stays in ``ResponseHandler._exception`` and its
  traceback holds the ``ClientResponse``: a cycle, twice per round because aiohttp
  retries the idempotent request once on a fresh connection;
* ``--drop body``: after the response has started: the headers and 10 of the 1000
  announced body bytes (``get``, ``stream``), or the WebSocket handshake and one
  message (``websocket``). This is not #10535: the error reaches the client
  through the body's ``StreamReader`` or the WebSocket's close, not through
  ``ResponseHandler._exception``.

Clients (``--client``): ``get`` (``session.get`` then ``resp.read()``), ``stream``
(``session.get`` then ``resp.content.readexactly(6)`` in a loop, as in the
report), ``websocket`` (``session.ws_connect``, then ``receive()`` until the
connection is gone). Fixes (``--fix``): ``none``; ``install``
(``cyclescope.contrib.aiohttp.install()`` before the first round, called twice to
show it is idempotent, and ``uninstall()`` after the last); ``response-class``
(``ClientSession(response_class=cyclescope.contrib.aiohttp.response_class())``).

Standard output stays free for ``cyclescope run --json -``; one line on standard
error, ``aiohttp_contrib: {JSON}``, says what ran: the aiohttp version, what the
fix functions returned and which errors the client saw. Needs only aiohttp and
the standard library (and cyclescope for a fix)::

    python -m cyclescope run --json - aiohttp_contrib.py --client stream --fix install --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web

from cyclescope.demo.scenarios._harness import serving

BODY_ANNOUNCED = 1000
BODY_SENT = b"0123456789"


async def _drop_at_once(request: web.Request) -> web.StreamResponse:
    """Handler: drop the connection before any response byte is sent."""
    assert request.transport is not None
    request.transport.close()
    return web.Response()  # never written: the transport is already closing


async def _drop_in_body(request: web.Request) -> web.StreamResponse:
    """Handler: send the headers and part of the announced body, then drop the connection."""
    response = web.StreamResponse()
    response.content_length = BODY_ANNOUNCED
    await response.prepare(request)
    await response.write(BODY_SENT)
    assert request.transport is not None
    request.transport.close()
    return response


async def _drop_open_websocket(request: web.Request) -> web.StreamResponse:
    """Handler: complete the WebSocket handshake, exchange one message each way, then drop."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str("hello")
    await ws.receive()  # the client's answer: it is now waiting in receive()
    assert request.transport is not None
    request.transport.close()
    return ws


def _handler(client: str, drop: str) -> Any:
    if drop == "headers":
        return _drop_at_once
    return _drop_open_websocket if client == "websocket" else _drop_in_body


async def _run_client(session: aiohttp.ClientSession, client: str, url: str, seen: Counter[str]) -> None:
    """One client run; what it saw (errors, WebSocket message types) is counted in *seen*."""
    if client == "websocket":
        ws = None
        try:
            ws = await session.ws_connect(url)
            for _ in range(100):  # bounded: the server sends one message, then drops
                msg = await ws.receive()
                seen[f"ws:{msg.type.name}"] += 1
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
                await ws.send_str("ready")
            if ws.exception() is not None:
                seen[f"ws.exception:{type(ws.exception()).__name__}"] += 1
        except aiohttp.ClientError as exc:
            seen[type(exc).__name__] += 1
        finally:
            if ws is not None:
                await ws.close()
            ws = None  # drop the WebSocket
        return
    resp = None
    try:
        resp = await session.get(url)
        if client == "stream":
            for _ in range(1000):  # bounded: the server sends 10 bytes at most
                await resp.content.readexactly(6)
        else:
            await resp.read()
        seen["complete"] += 1
    except (aiohttp.ClientError, asyncio.IncompleteReadError) as exc:
        seen[type(exc).__name__] += 1
    finally:
        if resp is not None:
            resp.release()
        resp = None  # drop the response


async def one_round(client: str, drop: str, response_class: Any, seen: Counter[str]) -> None:
    """Start a server, run one client against it, stop the server."""
    app = web.Application()
    app.router.add_get("/", _handler(client, drop))
    async with serving(app) as port:
        options: dict[str, Any] = {"timeout": aiohttp.ClientTimeout(total=10)}
        if response_class is not None:
            options["response_class"] = response_class
        async with aiohttp.ClientSession(**options) as session:
            await _run_client(session, client, f"http://127.0.0.1:{port}/", seen)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--client C --drop D --fix F --rounds N``; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=("get", "stream", "websocket"), default="stream")
    parser.add_argument("--drop", choices=("headers", "body"), default="headers",
                        help="when the server drops the connection (default: headers, i.e. before any byte)")
    parser.add_argument("--fix", choices=("none", "install", "response-class"), default="none")
    parser.add_argument("--rounds", type=int, default=1, help="occurrences to run (default 1)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    info: dict[str, Any] = {"aiohttp": aiohttp.__version__, "client": args.client, "drop": args.drop,
                            "fix": args.fix, "rounds": args.rounds}
    response_class = None
    contrib: Any = None
    if args.fix != "none":
        from cyclescope.contrib import aiohttp as contrib

        info["needs_fix"] = contrib.needs_fix()
    if args.fix == "install":
        from aiohttp.client_proto import ResponseHandler

        original = ResponseHandler.close
        info["install"] = contrib.install()
        info["install_again"] = contrib.install()
        info["installed"] = contrib.installed()
        info["close_replaced"] = ResponseHandler.close is not original
    elif args.fix == "response-class":
        response_class = contrib.response_class()
        info["response_class"] = f"{response_class.__module__}.{response_class.__qualname__}"

    seen: Counter[str] = Counter()
    for _ in range(args.rounds):
        asyncio.run(one_round(args.client, args.drop, response_class, seen))
    info["seen"] = dict(sorted(seen.items()))

    if args.fix == "install":
        info["uninstall"] = contrib.uninstall()
        info["uninstall_again"] = contrib.uninstall()
        info["restored"] = ResponseHandler.close is original and not contrib.installed()
    print("aiohttp_contrib: " + json.dumps(info), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
