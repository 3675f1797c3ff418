"""Reproduce aiohttp issue #10548: a web Request stays in a cycle after its handler is cancelled.

The client gives up on a slow request and hangs up; the server cancels the handler,
so a CancelledError leaves ``RequestHandler.start()`` and ends the task serving the
connection. On affected aiohttp versions (before 3.11.14) the Request keeps that task
in ``_task``; the finished task keeps the CancelledError, whose traceback holds the
frame of ``start()``, whose local ``request`` is the Request: a cycle that only the
cyclic GC frees, and with it everything the request holds (headers, payload, the
transport's protocol). The fix (PR #10569) resets ``request._task`` when the request
is done and no longer keeps the current task in a local of ``start()``.

The cycle needs the CancelledError to leave ``start()``: releases before 3.10.6 swallowed
it there (PR #9030 let it through), and 3.8 never cancels a handler whose client hangs up
(3.9+ does with ``handler_cancellation=True``, which this scenario sets), so the affected
releases are 3.10.6 up to 3.11.13. A handler that raises any other exception gets a 500
response and leaves ``start()`` normally: no cycle. Server shutdown with an idle
keep-alive connection cancels ``start()`` too and gives a cycle with the same cause on
those releases, reported as task -> CancelledError -> frame of ``start()`` -> its local
``handler`` (the task); the database entry does not match that shape.

Needs only aiohttp, the standard library and the shared ``_harness`` beside it::

    python aiohttp_10548.py [--rounds N]      # run N occurrences
    python aiohttp_10548.py --baseline        # plain-gc detector, prints one JSON line
"""

from __future__ import annotations

import asyncio
import inspect
import sys

import aiohttp
from aiohttp import web
from aiohttp.web_server import Server

from cyclescope.demo.scenarios._harness import run_main, serving

TARGET_TYPES = ("aiohttp.web_request.Request",)


def _can_cancel_handlers() -> bool:
    """Whether this aiohttp cancels a handler whose client hangs up (3.9+: when asked to; 3.8: never)."""
    return "handler_cancellation" in inspect.signature(Server.__init__).parameters


async def scenario() -> None:
    """Perform one occurrence: the client drops a slow request and the server cancels its handler."""
    started = asyncio.Event()
    cancelled = asyncio.Event()
    released = asyncio.Event()

    async def wait_for_cancellation(request: web.Request) -> web.StreamResponse:
        started.set()
        try:
            await released.wait()  # only set if the handler was not cancelled (aiohttp 3.8)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return web.Response(text="too late")

    app = web.Application()
    app.router.add_get("/", wait_for_cancellation)
    cancels = _can_cancel_handlers()
    async with serving(app, **({"handler_cancellation": True} if cancels else {})) as port:
        try:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            try:
                pending = asyncio.ensure_future(session.get(f"http://127.0.0.1:{port}/"))
                await asyncio.wait_for(started.wait(), 5)
                pending.cancel()  # the client gives up...
                try:
                    await pending
                except asyncio.CancelledError:
                    pass
                pending = None
            finally:
                await session.close()  # ...and hangs up
            if cancels:
                await asyncio.wait_for(cancelled.wait(), 5)
                for _ in range(10):  # let the cancellation end the server's connection task
                    await asyncio.sleep(0)
        finally:
            released.set()


async def _hello(request: web.Request) -> web.StreamResponse:
    return web.Response(text="hello")


async def keep_alive_scenario() -> None:
    """The same cause, other shape: the server shuts down while a keep-alive connection is idle.

    Shutting down cancels ``RequestHandler.start()`` of the idle connection; on the
    affected releases its CancelledError ends up in the task, whose traceback holds
    the frame of ``start()``, whose local ``handler`` is that task.
    """
    app = web.Application()
    app.router.add_get("/", _hello)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    try:
        async with serving(app) as port:
            async with session.get(f"http://127.0.0.1:{port}/") as resp:
                await resp.read()  # the connection goes back to the pool, idle
    finally:
        await session.close()


def main(argv: list[str] | None = None) -> int:
    """Command line: ``[--rounds N] [--baseline] [--keep-alive]``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--keep-alive" in argv:
        argv.remove("--keep-alive")
        return run_main(keep_alive_scenario, ("_asyncio.Task",), __doc__, argv)
    return run_main(scenario, TARGET_TYPES, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
