"""The pytest plugin as a CI gate on a real aiohttp test suite: the seed bug, aiohttp #10535.

A small test file written the way an aiohttp project writes its tests (aiohttp's own
pytest plugin, the ``aiohttp_server`` fixture) runs under ``python -m pytest
-p cyclescope.pytest_plugin --cyclescope=fail`` in a cached venv holding one aiohttp
release and this machine's pytest, with this very cyclescope on PYTHONPATH.
``test_server_hangs_up`` is the #10535 scenario (cyclescope/demo/scenarios/aiohttp_10535.py):
the handler closes the transport before a byte is sent, the client's GET raises
ServerDisconnectedError.

What was seen (CPython 3.11.7, pytest 9.0.3): every test that builds an aiohttp
application creates cycles that have nothing to do with the bug, on every release
tried: ``Application._on_response_prepare <-> aiosignal.Signal._owner`` and
``PlainResource._routes <-> ResourceRoute._resource``; on 3.11.13 also the server's
idle keep-alive Task cycle (aiohttp#10548). So a bare ``--cyclescope=fail`` fails
every such test, on the fixed releases too (test_without_a_baseline_aiohttp_itself_fails_the_gate).
The gate is therefore used as a project would adopt it: ``test_control`` (same
application, the server answers) is run first with ``--cyclescope-update-baseline``,
and the whole file is then gated against that baseline. On 3.11.13 only the
ClientResponse cycles are new, and only ``test_server_hangs_up`` fails; on 3.11.15
and the newest release nothing is new and the run passes.

The inner run sets PYTEST_DISABLE_PLUGIN_AUTOLOAD and loads the plugin with ``-p``:
when ``src/cyclescope.egg-info`` exists (an editable install, or a build from this
tree) pytest also finds the ``pytest11`` entry point on PYTHONPATH, and ``-p
cyclescope.pytest_plugin`` then fails with "Plugin already registered under a
different name". aiohttp's plugin is loaded by the test file's ``pytest_plugins``.

Each (release) runs once per session: two pytest runs of about a second each.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jsonschema
import pytest

import cyclescope
from cyclescope.demo.venvs import cyclescope_env, ensure_venv, run_in_venv

pytestmark = pytest.mark.real

LEAKY, FIXED = "3.11.13", "3.11.15"
#: The pytest of this machine's python3 when this file was written; pinned so that the
#: cached venvs are reused (the inner pytest is not the one running this file).
PYTEST = "9.0.3"
CLIENT_RESPONSE = "aiohttp.client_reqrep.ClientResponse"
SCHEMA = json.loads((Path(cyclescope.__file__).resolve().parent / "report" / "schema.json").read_text("utf-8"))

INNER_TESTS = '''
import aiohttp
import pytest
from aiohttp import web

pytest_plugins = ["aiohttp.pytest_plugin"]


async def hang_up(request):
    request.transport.close()  # before a byte of the response is sent
    return web.Response()


async def answer(request):
    return web.Response(text="ok")


async def get(aiohttp_server, handler):
    app = web.Application()
    app.router.add_get("/", handler)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.get(server.make_url("/")) as resp:
            return await resp.text()


async def test_control(aiohttp_server):
    assert await get(aiohttp_server, answer) == "ok"


async def test_server_hangs_up(aiohttp_server):
    try:
        await get(aiohttp_server, hang_up)
    except aiohttp.ServerDisconnectedError:
        pass
    else:
        pytest.fail("the server did not hang up")
'''


@dataclass
class Gate:
    """One release: the baseline learned from test_control, then the gated run of the whole file."""

    version: str
    baseline: dict[str, Any]
    proc: subprocess.CompletedProcess[str]  # the gated run
    report: dict[str, Any]  # its --cyclescope-json
    run: Callable[..., subprocess.CompletedProcess[str]]  # more pytest runs in the same directory


def _pytest_runner(python: Path, work: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    env = {**cyclescope_env(), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_in_venv(python, ["-m", "pytest", "-p", "no:cacheprovider", "-p", "cyclescope.pytest_plugin",
                                    f"--rootdir={work}", "-c", str(work / "pytest.ini"), "-rA", *args,
                                    str(work / "test_seed.py")], env_extra=env, timeout=300)

    return run


@pytest.fixture(scope="session")
def gate(tmp_path_factory: pytest.TempPathFactory, newest_aiohttp: str) -> Callable[[str], Gate]:
    done: dict[str, Gate] = {}

    def get(which: str) -> Gate:
        version = newest_aiohttp if which == "newest" else which
        if version not in done:
            python = ensure_venv([f"aiohttp=={version}", f"pytest=={PYTEST}"])
            work = tmp_path_factory.mktemp(f"aiohttp-{version}")
            (work / "test_seed.py").write_text(INNER_TESTS, encoding="utf-8")
            (work / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
            run = _pytest_runner(python, work)
            learn = run("--cyclescope=fail", "--cyclescope-baseline=baseline.json",
                        "--cyclescope-update-baseline", "-k", "control")
            assert learn.returncode == 0, learn.stdout + learn.stderr
            proc = run("--cyclescope=fail", "--cyclescope-baseline=baseline.json",
                       f"--cyclescope-json={work / 'report.json'}")
            assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # 1: tests failed, nothing worse
            report = json.loads((work / "report.json").read_text(encoding="utf-8"))
            jsonschema.Draft202012Validator(SCHEMA).validate(report)
            baseline = json.loads((work / "baseline.json").read_text(encoding="utf-8"))
            done[version] = Gate(version, baseline, proc, report, run)
        return done[version]

    return get


def outcomes(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Test function name -> PASSED / FAILED / ERROR, from the -rA short summary."""
    found = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^(PASSED|FAILED|ERROR) \S*test_seed\.py::(\w+)\[", line)  # cwd-relative ids
        if m:
            found.setdefault(m.group(2), m.group(1))
    return found


def failure_text(proc: subprocess.CompletedProcess[str], name: str) -> str:
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if re.fullmatch(rf"_+ {name}\[\w+\] _+", line)) + 1
    end = next((i for i in range(start, len(lines)) if re.fullmatch(r"_{3,} .+ _{3,}|={3,} .+ ={3,}", lines[i])),
               len(lines))
    return "\n".join(lines[start:end])


def holds_client_response(group: dict[str, Any]) -> bool:
    return any(step["type"] == CLIENT_RESPONSE for step in group["cycle"]) or CLIENT_RESPONSE in group["types"]


def test_baseline_learned_from_the_control_test(gate: Callable[[str], Gate]) -> None:
    for which in (LEAKY, FIXED):
        baseline = gate(which).baseline
        assert baseline["format"] == "cyclescope.pytest-baseline/1"
        assert baseline["groups"], "aiohttp's application cycles"
        for entry in baseline["groups"]:
            assert entry["tests"] == ["test_seed.py::test_control[pyloop]"]
            assert "ClientResponse" not in entry["signature"]


def test_leaking_release_fails_the_hang_up_test_only(gate: Callable[[str], Gate]) -> None:
    result = gate(LEAKY)
    assert outcomes(result.proc) == {"test_control": "PASSED", "test_server_hangs_up": "FAILED"}
    assert result.proc.returncode == 1
    text = failure_text(result.proc, "test_server_hangs_up")
    assert text.startswith("cyclescope: the test created 2 reference cycles in 2 groups not in the baseline"), text
    assert text.count(f"cycle through {CLIENT_RESPONSE}") == 2
    assert len(re.findall(r"^  ResponseHandler +\._exception +-> ServerDisconnectedError$", text, re.M)) == 2
    assert len(re.findall(r"^  ClientResponse +\._protocol +-> ResponseHandler$", text, re.M)) == 2
    flat = re.sub(r"\s+", " ", text)
    assert f"break ResponseHandler ._exception (belongs to aiohttp {LEAKY}, aiohttp/client_proto.py)" in flat
    assert f"known aiohttp#10535, fixed in 3.11.14; installed {LEAKY}: upgrade to 3.11.15 or later" in flat
    assert "https://github.com/aio-libs/aiohttp/issues/10535" in text
    # aiohttp's own application cycles are in the baseline: not in the failure
    assert "Application" not in text and "PlainResource" not in text
    assert "aiohttp#10548" not in text


def test_leaking_release_json_names_the_test_and_the_known_issue(gate: Callable[[str], Gate]) -> None:
    report = gate(LEAKY).report
    seed = [g for g in report["groups"] if g.get("known_issue") and g["known_issue"]["id"] == "aiohttp#10535"]
    assert seed and all(holds_client_response(g) for g in seed)
    assert all(g["tests"] == ["test_seed.py::test_server_hangs_up[pyloop]"] for g in seed)
    assert sum(g["count"] for g in seed) == 2  # the GET is retried once: two responses in cycles
    for group in seed:
        edges = [step["edge"] for step in group["cycle"]]
        assert {"._protocol", "._exception", ".__traceback__", ".tb_frame"} <= set(edges), edges
    assert [g for g in report["groups"] if holds_client_response(g)] == seed


@pytest.mark.parametrize("which", [FIXED, "newest"])
def test_fixed_releases_pass_the_gate(gate: Callable[[str], Gate], which: str) -> None:
    result = gate(which)
    assert outcomes(result.proc) == {"test_control": "PASSED", "test_server_hangs_up": "PASSED"}
    assert result.proc.returncode == 0
    assert [g for g in result.report["groups"] if holds_client_response(g)] == []
    assert not [g for g in result.report["groups"] if any(s["edge"] == "._exception" for s in g["cycle"])]
    # what is left is what the control test also makes, and is in the baseline
    known = {entry["signature"] for entry in result.baseline["groups"]}
    assert {g["signature"] for g in result.report["groups"]} <= known


def test_without_a_baseline_aiohttp_itself_fails_the_gate(gate: Callable[[str], Gate]) -> None:
    # Why the gate above learns a baseline first: on the fixed release too, building
    # an application makes cycles (Application <-> Signal, PlainResource <-> ResourceRoute).
    proc = gate(FIXED).run("--cyclescope=fail")
    assert outcomes(proc) == {"test_control": "FAILED", "test_server_hangs_up": "FAILED"}
    text = failure_text(proc, "test_control")
    assert "cycle through aiohttp.web_app.Application" in text
    assert "ClientResponse" not in proc.stdout
