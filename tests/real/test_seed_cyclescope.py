"""``cyclescope run`` and ``cyclescope demo --aiohttp`` on the seed bug, aiohttp #10535.

The scenario (cyclescope/demo/scenarios/aiohttp_10535.py) runs under
``python -m cyclescope run --json - SCENARIO --rounds N`` inside a cached venv holding
one aiohttp release (this very cyclescope on PYTHONPATH). 3.11.13 leaks: the
ResponseHandler keeps the ServerDisconnectedError, whose traceback holds a frame whose
local refers to the ClientResponse; GET is retried once, so each round leaves two
ClientResponse objects in cycles. 3.11.15 and the newest release do not.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

import jsonschema
import pytest

import cyclescope
from cyclescope.demo.scenarios import scenario_path
from cyclescope.demo.venvs import cyclescope_env, ensure_venv, run_in_venv

pytestmark = pytest.mark.real

ROUNDS = 2
LEAKY, FIXED = "3.11.13", "3.11.15"
CLIENT_RESPONSE = "aiohttp.client_reqrep.ClientResponse"
PACKAGE_DIR = Path(cyclescope.__file__).resolve().parent
SCHEMA = json.loads((PACKAGE_DIR / "report" / "schema.json").read_text(encoding="utf-8"))
SCENARIO = Path(scenario_path("aiohttp_10535"))

Outcome = tuple[dict[str, Any], "subprocess.CompletedProcess[str]"]


class Runner(Protocol):
    def __call__(self, version: str, options: tuple[str, ...] = ...) -> Outcome: ...


@pytest.fixture(scope="session")
def scenario_report() -> Runner:
    """``(version, extra options) -> (JSON report, process)``, each run once per session."""
    done: dict[tuple[str, tuple[str, ...]], Outcome] = {}

    def run(version: str, options: tuple[str, ...] = ()) -> Outcome:
        key = (version, options)
        if key not in done:
            python = ensure_venv([f"aiohttp=={version}"])
            proc = run_in_venv(python, ["-m", "cyclescope", "run", "--json", "-", *options, str(SCENARIO),
                                        "--rounds", str(ROUNDS)], env_extra=cyclescope_env(), timeout=300)
            assert proc.returncode == 0, proc.stderr
            report = json.loads(proc.stdout)  # stdout is the JSON report alone
            jsonschema.Draft202012Validator(SCHEMA).validate(report)
            assert report["python"] == ".".join(map(str, sys.version_info[:3]))
            done[key] = (report, proc)
        return done[key]

    return run


def edges(group: dict[str, Any]) -> list[str]:
    return [step["edge"] for step in group["cycle"]]


def holds_client_response(group: dict[str, Any]) -> bool:
    return any(step["type"] == CLIENT_RESPONSE for step in group["cycle"]) or CLIENT_RESPONSE in group["types"]


def check_leak(report: dict[str, Any]) -> None:
    """The #10535 cycles through ClientResponse, as seen on the leaking release."""
    starting = [g for g in report["groups"] if g["cycle"][0]["type"] == CLIENT_RESPONSE]
    assert starting, [[(s["type"], s["edge"]) for s in g["cycle"]] for g in report["groups"]]
    for group in starting:
        kinds = [step["edge"] for step in group["cycle"]]
        assert kinds[0] == "._protocol"
        for edge in ("._exception", ".__traceback__", ".tb_frame"):
            assert edge in kinds, kinds
        (frame,) = [step for step in group["cycle"] if step["type"] == "frame"]
        assert frame["edge"] in ("local 'self'", "local 'resp'"), kinds
        assert frame["edge_kind"] == "local"
        assert frame["location"] and frame["function"]
        assert group["cycle"][-1] is frame  # the frame's local leads back to the response
    # ClientResponse.start() whose 'self' is the response: the frame of aiohttp's bug
    selfs = [g for g in starting if g["cycle"][-1]["edge"] == "local 'self'"]
    assert selfs and all(g["cycle"][-1]["function"] == "ClientResponse.start" for g in selfs)
    # GET is retried once: two ClientResponse objects in cycles per round
    assert sum(g["count"] for g in report["groups"] if any(
        s["type"] == CLIENT_RESPONSE for s in g["cycle"])) == 2 * ROUNDS


def test_leaking_release_with_type_filter(scenario_report: Runner) -> None:
    report, proc = scenario_report(LEAKY, ("--type", "ClientResponse"))
    check_leak(report)
    assert all(g["cycle"][0]["type"] == CLIENT_RESPONSE for g in report["groups"])
    assert report["totals"]["filtered_out_components"] > 0  # aiohttp's other cycles
    assert "cycle through aiohttp.client_reqrep.ClientResponse" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_leaking_release_without_filter(scenario_report: Runner) -> None:
    report, proc = scenario_report(LEAKY)
    check_leak(report)


def test_leaking_release_gets_the_fix_the_line_the_owner_and_the_known_issue(scenario_report: Runner) -> None:
    report, proc = scenario_report(LEAKY, ("--type", "ClientResponse"))
    for group in report["groups"]:
        assert group["pattern"] == "stored-exception"
        broken = group["cycle"][group["break_step"]]
        assert (broken["type"], broken["edge"]) == ("aiohttp.client_proto.ResponseHandler", "._exception")
        assert "clear ResponseHandler._exception" in group["fix"]
        # The line that stores the exception, in the base class's source; and the frame's line.
        (assign, *_) = [loc for loc in group["fix_locations"] if loc["role"] == "assigns ._exception"]
        assert re.search(r"/aiohttp/streams\.py:\d+$", assign["location"]), assign
        assert (assign["text"], assign["function"], assign["owner"]) == (
            "self._exception = exc", "DataQueue.set_exception", f"aiohttp {LEAKY}, aiohttp/streams.py")
        assert any(loc["role"] == "frame in the cycle" for loc in group["fix_locations"])
        handler = next(o for o in group["owners"] if o["type"] == "aiohttp.client_proto.ResponseHandler")
        assert handler == {"type": "aiohttp.client_proto.ResponseHandler", "kind": "distribution",
                           "name": "aiohttp", "version": LEAKY, "path": "aiohttp/client_proto.py"}
        known = group["known_issue"]
        assert (known["id"], known["affected"], known["installed_version"]) == ("aiohttp#10535", True, LEAKY)
    assert f"(belongs to aiohttp {LEAKY}, aiohttp/client_proto.py)" in proc.stderr.replace("\n           ", " ")
    assert f"aiohttp#10535, fixed in 3.11.14; installed {LEAKY}: upgrade to 3.11.15 or later" in \
        proc.stderr.replace("\n           ", " ")


def test_leaking_release_without_filter_finds_the_cycle(scenario_report: Runner) -> None:
    # What holds whichever type the cycle is shown through: the exception kept by the
    # protocol, its traceback and a frame, as many times as the type-filtered run.
    report, _ = scenario_report(LEAKY)
    kept = [g for g in report["groups"]
            if {"._exception", ".__traceback__", ".tb_frame"} <= set(edges(g))]
    assert kept
    assert all(g["cycle"][0]["type"].startswith("aiohttp.") for g in kept)
    assert sum(g["count"] for g in kept) == 2 * ROUNDS


@pytest.mark.parametrize("options", [(), ("--type", "ClientResponse")], ids=["all", "type"])
@pytest.mark.parametrize("which", [FIXED, "newest"])
def test_fixed_releases_leave_no_client_response_cycle(scenario_report: Runner, newest_aiohttp: str,
                                                       which: str, options: tuple[str, ...]) -> None:
    version = newest_aiohttp if which == "newest" else which
    report, proc = scenario_report(version, options)
    assert [g for g in report["groups"] if holds_client_response(g)] == []
    assert "ClientResponse" not in proc.stderr
    if options:
        assert report["groups"] == [] and report["totals"]["filtered_out_components"] > 0
        assert proc.stderr.startswith("cyclescope: no reference cycles captured\n")
    else:
        assert not [g for g in report["groups"] if "._exception" in edges(g)]


def test_demo_side_by_side() -> None:
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_DIR.parent)}
    proc = subprocess.run([sys.executable, "-m", "cyclescope", "demo", "--aiohttp", LEAKY, "--aiohttp", FIXED],
                          env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 0, proc.stderr
    # the demo prints each scenario run's stderr and does not check its exit status:
    # a crashed run would otherwise pass for "no ClientResponse cycle"
    assert "Traceback" not in proc.stdout and "warning:" not in proc.stdout, proc.stdout
    lines = proc.stdout.splitlines()
    for version in (LEAKY, FIXED):
        assert f"== real aiohttp {version}: the #10535 scenario under cyclescope run ==" in lines
    side = lines.index("== side by side ==")
    assert [line for line in lines[side + 1 :] if line.strip()] == [
        f"  aiohttp {LEAKY:<10} 2 ClientResponse cycle group(s)",
        f"  aiohttp {FIXED:<10} no ClientResponse cycle",
    ]
    # the leaking release's own report, printed between the headers
    leaky = lines[lines.index(f"== real aiohttp {LEAKY}: the #10535 scenario under cyclescope run ==") :
                  lines.index(f"== real aiohttp {FIXED}: the #10535 scenario under cyclescope run ==")]
    assert "cyclescope: 2 reference cycles in 2 groups" in leaky
    assert sum(bool(re.match(r"^cycle through aiohttp\.client_reqrep\.ClientResponse$", x)) for x in leaky) == 2
