"""``cyclescope demo``: the standard-library reproduction of aiohttp #10535, then its fix.

The demo runs a real asyncio server on 127.0.0.1 that drops every connection; the
leaky client keeps the disconnect exception, whose traceback holds the response.
"""

from __future__ import annotations

import asyncio  # noqa: F401  (before cyclescope.labels imports _asyncio; see test_cli.py)
import gc
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cyclescope
from cyclescope.cli import main

SRC_DIR = Path(cyclescope.__file__).resolve().parent.parent
LEAKY = "== standard-library demo, leaky: the protocol keeps _exception =="
FIXED = "== standard-library demo, fixed: the protocol clears _exception on close =="
_STEP_LINE = re.compile(r"^  (\S+) +(\S(?:.*?\S)?)  +-> (.+)$")

#: The cycle of the leaky variant, step by step: (type, edge).
EXPECTED_CYCLE = [
    ("ClientResponse", "._protocol"),
    ("ResponseHandler", "._exception"),
    ("ServerDisconnected", ".__traceback__"),
    ("traceback", ".tb_next"),
    ("traceback", ".tb_frame"),
    ("frame", "local 'self'"),
]


def sections(out: str) -> tuple[list[str], list[str]]:
    lines = out.splitlines()
    assert lines.count(LEAKY) == 1 and lines.count(FIXED) == 1, out
    leaky, fixed = lines.index(LEAKY), lines.index(FIXED)
    assert leaky < fixed
    return lines[leaky + 1 : fixed], lines[fixed + 1 :]


def steps(lines: list[str]) -> list[tuple[str, str, str]]:
    return [m.groups() for m in map(_STEP_LINE.match, lines) if m]  # type: ignore[misc]


def check_leaky(lines: list[str], rounds: int) -> None:
    header = [line for line in lines if line.startswith("cyclescope: ")]
    plural = "s" if rounds > 1 else ""
    assert header == [f"cyclescope: {rounds} reference cycle{plural} in 1 group"]
    through = [line for line in lines if "cycle through" in line]
    times = f"{rounds} x " if rounds > 1 else ""
    assert through == [f"{times}cycle through cyclescope.demo.streams.ClientResponse"]
    found = steps(lines)
    assert [(t, e) for t, e, _ in found] == EXPECTED_CYCLE
    assert found[0][2] == "ResponseHandler"
    assert found[-1][2] == "ClientResponse (back to the start)"
    text = "\n".join(lines)
    start = "ClientResponse.start" if sys.version_info >= (3, 11) else "start"  # co_qualname
    assert f"of {start}() at streams.py:" in text  # the frame holding 'self'
    assert "`self.status = await self._protocol.read_status()`" in text


def check_fixed(lines: list[str]) -> None:
    assert lines[0] == "cyclescope: no reference cycles captured"
    assert not any("cycle through" in line for line in lines)
    assert not steps(lines)


def test_demo_shows_the_leak_then_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    gc.collect()
    before = (gc.get_debug(), gc.isenabled(), gc.get_threshold(), list(gc.callbacks), list(gc.garbage))
    assert main(["demo"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    leaky, fixed = sections(out)
    check_leaky(leaky, rounds=1)
    check_fixed(fixed)
    assert (gc.get_debug(), gc.isenabled(), gc.get_threshold(), list(gc.callbacks), list(gc.garbage)) == before


def test_demo_rounds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--rounds", "3"]) == 0
    leaky, fixed = sections(capsys.readouterr().out)
    check_leaky(leaky, rounds=3)
    check_fixed(fixed)


def test_python_m_cyclescope_demo() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC_DIR)}
    env.pop("NO_COLOR", None)
    proc = subprocess.run([sys.executable, "-m", "cyclescope", "demo"], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "\x1b[" not in proc.stdout  # no colour when not on a terminal
    leaky, fixed = sections(proc.stdout)
    check_leaky(leaky, rounds=1)
    check_fixed(fixed)


def test_scenario_path_names_only_existing_scenarios() -> None:
    from cyclescope.demo.scenarios import scenario_path

    assert scenario_path("aiohttp_10535").endswith("/cyclescope/demo/scenarios/aiohttp_10535.py")
    assert scenario_path("cyclescope.demo.scenarios.aiohttp_10548").endswith("aiohttp_10548.py")
    for missing in ("aiohttp_1", "other.package.aiohttp_10535"):
        with pytest.raises(FileNotFoundError, match="no scenario"):
            scenario_path(missing)
