"""Reproduce aiohttp issue #10535: a ServerDisconnectedError keeps ClientResponse in a cycle.

The server closes the connection before sending a byte. On affected aiohttp versions
(before 3.11.14/3.11.15) the client's ResponseHandler keeps the exception in
``_exception``; its traceback holds the frame of ``ClientResponse.start`` whose ``self``
is the response, which holds the connection and so the protocol: a cycle that only the
cyclic GC frees. aiohttp retries the idempotent GET once, so one occurrence leaves two
ClientResponse objects in cycles.

Needs only aiohttp and the standard library::

    python aiohttp_10535.py [--rounds N]      # run N occurrences
    python aiohttp_10535.py --baseline        # plain-gc detector, prints one JSON line
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import socket
from collections import Counter

import aiohttp
from aiohttp import web

TARGET_TYPES = ("aiohttp.client_reqrep.ClientResponse",)


async def _close_at_once(request: web.Request) -> web.StreamResponse:
    """Handler: drop the connection before any response byte is sent."""
    assert request.transport is not None
    request.transport.close()
    return web.Response()  # never written: the transport is already closing


async def scenario() -> None:
    """Perform one occurrence: GET against a server that hangs up, then drop everything."""
    app = web.Application()
    app.router.add_get("/", _close_at_once)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            resp = None
            try:
                resp = await session.get(f"http://127.0.0.1:{port}/")
                for _ in range(1000):  # bounded: the server never sends a body anyway
                    await resp.content.readexactly(6)
            except (aiohttp.ClientError, asyncio.IncompleteReadError):
                pass
            finally:
                if resp is not None:
                    resp.release()
                resp = None  # drop the response
    finally:
        await runner.cleanup()
        sock.close()


def _type_name(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def baseline(rounds: int) -> dict[str, object]:
    """Run *rounds* occurrences under gc.DEBUG_SAVEALL and count TARGET_TYPES in gc.garbage."""
    gc.collect()
    old_flags = gc.get_debug()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(rounds):
            asyncio.run(scenario())
        gc.collect()
        counts = Counter(_type_name(o) for o in gc.garbage if _type_name(o) in TARGET_TYPES)
    finally:
        gc.set_debug(old_flags)
        gc.garbage.clear()
    types = {name: counts.get(name, 0) for name in TARGET_TYPES}
    return {"leaked": any(types.values()), "types": types,
            "aiohttp": aiohttp.__version__, "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    """Command line: ``[--rounds N] [--baseline]``; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="occurrences to run (default 1)")
    parser.add_argument("--baseline", action="store_true",
                        help="detect with plain gc (DEBUG_SAVEALL) and print one JSON line")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.baseline:
        print(json.dumps(baseline(args.rounds)))
    else:
        for _ in range(args.rounds):
            asyncio.run(scenario())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
