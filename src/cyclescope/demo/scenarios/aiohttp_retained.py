"""Responses the user dropped that are still alive: kept by a cache and by a pending task.

A real aiohttp server on 127.0.0.1 and a real client. The program reads three
responses; it keeps two in a module-level cache (by URL) and hands the third to a
background task that never finishes. It then drops its own references and ends
with the task still pending and the event loop not closed, as a long-running
service would be at the moment it is looked at. Run it under
``cyclescope run --watch ClientResponse``: each response is explained by its
retention path, ``module __main__ -> .CACHE -> ['http://...'] -> ClientResponse``
and ``asyncio task keep_forever() -> ... local 'resp' -> ClientResponse``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from cyclescope.demo.scenarios._harness import serving

CACHE: dict[str, Any] = {}
INFO_PREFIX = "aiohttp_retained: "


async def keep_forever(resp: Any) -> None:
    """A background task that holds the response it was given and does not end (its
    timer keeps it scheduled on the loop, so it is not garbage)."""
    await asyncio.sleep(3600)


async def main() -> dict[str, Any]:
    import aiohttp
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/{name}", hello)
    async with serving(app) as port:
        async with aiohttp.ClientSession() as session:
            for name in ("a", "b", "c"):
                url = f"http://127.0.0.1:{port}/{name}"
                resp = await session.get(url)
                await resp.read()
                if name == "c":
                    asyncio.get_running_loop().create_task(keep_forever(resp))
                else:
                    CACHE[url] = resp
                del resp
            await asyncio.sleep(0)
    return {"aiohttp": aiohttp.__version__, "port": port, "cached": sorted(CACHE)}


def run() -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    info = loop.run_until_complete(main())
    print(INFO_PREFIX + json.dumps(info), file=sys.stderr)
    # The loop and the pending task stay as they are: that is the state to explain.
    globals()["LOOP"] = loop


if __name__ == "__main__":
    run()
