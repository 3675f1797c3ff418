"""Reproduce aiohttp issue #10535: a ServerDisconnectedError keeps ClientResponse in a cycle.

The server closes the connection before sending a byte. On affected aiohttp versions
(before 3.11.14/3.11.15) the client's ResponseHandler keeps the exception in
``_exception``; its traceback holds the frame of ``ClientResponse.start`` whose ``self``
is the response, which holds the connection and so the protocol: a cycle that only the
cyclic GC frees. aiohttp retries the idempotent GET once, so one occurrence leaves two
ClientResponse objects in cycles.

Needs only aiohttp, the standard library and the shared ``_harness`` beside it::

    python aiohttp_10535.py [--rounds N]      # run N occurrences
    python aiohttp_10535.py --baseline        # plain-gc detector, prints one JSON line
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from cyclescope.demo.scenarios._harness import run_main, serving

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
    async with serving(app) as port:
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


def main(argv: list[str] | None = None) -> int:
    """Command line: ``[--rounds N] [--baseline]``; returns the exit status."""
    return run_main(scenario, TARGET_TYPES, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
