"""Why is it still alive, on real aiohttp: responses kept by a user cache and by a pending task.

Runs cyclescope/demo/scenarios/aiohttp_retained.py (a real server on 127.0.0.1, a
real client) under ``python -m cyclescope run --watch ClientResponse --json -`` in a
cached venv with the newest aiohttp release and with 3.11.13, and reads the
report's ``survivors``: each response is explained by the retention path a
maintainer needs, naming the module and the cache key, or the pending task and the
local variable holding it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

import cyclescope
from cyclescope.demo.scenarios import scenario_path
from cyclescope.demo.venvs import cyclescope_env, ensure_venv, run_in_venv

pytestmark = pytest.mark.real

SCENARIO = Path(scenario_path("aiohttp_retained"))
SCHEMA = json.loads((Path(cyclescope.__file__).resolve().parent / "report" / "schema.json").read_text("utf-8"))
INFO_PREFIX = "aiohttp_retained: "


@pytest.fixture(scope="module", params=["newest", "3.11.13"])
def survivors(request: pytest.FixtureRequest, newest_aiohttp: str) -> tuple[list[dict], dict]:
    version = newest_aiohttp if request.param == "newest" else request.param
    python = ensure_venv([f"aiohttp=={version}"])
    proc = run_in_venv(python, ["-m", "cyclescope", "run", "--watch", "ClientResponse", "--json", "-", str(SCENARIO)],
                       env_extra=cyclescope_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.Draft202012Validator(SCHEMA).validate(report)
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith(INFO_PREFIX)]
    info = json.loads(line[len(INFO_PREFIX):])
    assert info["aiohttp"] == version
    return report["survivors"], info


def test_responses_in_a_module_cache_are_explained_by_module_and_key(survivors) -> None:
    entries, info = survivors
    cached = [e for e in entries if ".CACHE" in e["path"]]
    assert len(cached) == 2, entries
    for entry, url in zip(sorted(cached, key=lambda e: e["path"]), info["cached"]):
        assert entry["type"] == "aiohttp.client_reqrep.ClientResponse" and entry["kind"] == "retained"
        assert re.fullmatch(r"module __main__ \(.*aiohttp_retained\.py\) -> \.CACHE -> \['" + re.escape(url)
                            + r"'\] -> ClientResponse", entry["path"]), entry["path"]


def test_a_response_held_by_a_pending_task_names_the_task_and_the_local(survivors) -> None:
    entries, _info = survivors
    (held,) = [e for e in entries if e["path"].startswith("asyncio task ")]
    assert held["kind"] == "retained" and held["count"] == 1
    assert held["path"] == "asyncio task keep_forever() -> ._coro -> local 'resp' -> ClientResponse"
