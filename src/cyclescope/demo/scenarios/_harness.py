"""What every aiohttp scenario shares: a server on loopback, the plain-gc baseline, the command line.

A scenario module defines ``async def scenario()`` (one occurrence) and
``TARGET_TYPES`` and ends with ``raise SystemExit(run_main(scenario, TARGET_TYPES,
__doc__))``. Scenarios need aiohttp, the standard library and this module only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import platform
import socket
from collections import Counter
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

__all__ = ["serving", "baseline", "run_main"]


@contextlib.asynccontextmanager
async def serving(app: Any, **runner_options: Any) -> AsyncIterator[int]:
    """Serve the aiohttp ``app`` on 127.0.0.1 (a free port, yielded) until the block ends."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, **runner_options)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        yield sock.getsockname()[1]
    finally:
        await runner.cleanup()
        sock.close()


def _type_name(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def baseline(scenario: Callable[[], Awaitable[None]], rounds: int, target_types: Sequence[str]) -> dict[str, Any]:
    """Run ``rounds`` occurrences under gc.DEBUG_SAVEALL and count ``target_types`` in gc.garbage.

    The detector a maintainer writes by hand, kept to compare cyclescope with.
    """
    import aiohttp

    gc.collect()
    old_flags = gc.get_debug()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(rounds):
            asyncio.run(scenario())  # type: ignore[arg-type]
        gc.collect()
        counts = Counter(_type_name(o) for o in gc.garbage if _type_name(o) in target_types)
    finally:
        gc.set_debug(old_flags)
        gc.garbage.clear()
    types = {name: counts.get(name, 0) for name in target_types}
    return {"leaked": any(types.values()), "types": types,
            "aiohttp": aiohttp.__version__, "python": platform.python_version()}


def run_main(scenario: Callable[[], Awaitable[None]], target_types: Sequence[str], doc: str | None,
             argv: list[str] | None = None) -> int:
    """Command line ``[--rounds N] [--baseline]`` of a scenario; returns the exit status."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    parser.add_argument("--rounds", type=int, default=1, help="occurrences to run (default 1)")
    parser.add_argument("--baseline", action="store_true",
                        help="detect with plain gc (DEBUG_SAVEALL) and print one JSON line")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.baseline:
        print(json.dumps(baseline(scenario, args.rounds, target_types)))
    else:
        for _ in range(args.rounds):
            asyncio.run(scenario())  # type: ignore[arg-type]
    return 0
