"""Cached venvs (cyclescope.demo.venvs) and the seed bug, aiohttp #10535, on real aiohttp versions.

The aiohttp venvs live in the default cache (built once per machine and interpreter,
then reused); the behaviour tests of venvs.py that need a fresh state use a temporary
cache and the tiny pure-Python package six.

"Newest aiohttp" comes from the ``newest_aiohttp`` fixture of conftest.py (asked of pip
once per session, NEWEST_KNOWN_AIOHTTP there as the offline fallback).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cyclescope.demo import venvs
from cyclescope.demo.scenarios import scenario_path
from cyclescope.demo.venvs import COMPLETE_MARKER, VenvError, cyclescope_env, ensure_venv, run_in_venv

pytestmark = pytest.mark.real

TINY = "six==1.17.0"  # small, pure-Python, no dependencies
ROUNDS = 3
CLIENT_RESPONSE = "aiohttp.client_reqrep.ClientResponse"

SCENARIO = Path(scenario_path("aiohttp_10535"))
SRC_DIR = Path(venvs.__file__).resolve().parents[2]  # the directory holding cyclescope/


def _baseline(version: str, rounds: int) -> dict[str, Any]:
    py = ensure_venv([f"aiohttp=={version}"])
    # cyclescope on the path for the scenario harness only: the detection is plain gc
    proc = run_in_venv(py, [str(SCENARIO), "--baseline", "--rounds", str(rounds)], env_extra=cyclescope_env(),
                       timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    result: dict[str, Any] = json.loads(lines[0])
    return result


@pytest.mark.parametrize("which, leaks", [("3.11.13", True), ("3.11.15", False), ("newest", False)])
def test_seed_bug_baseline(which: str, leaks: bool, newest_aiohttp: str) -> None:
    version = newest_aiohttp if which == "newest" else which
    result = _baseline(version, ROUNDS)
    assert result["aiohttp"] == version
    assert result["python"] == platform.python_version()
    # GET is retried once: each occurrence leaves two ClientResponse objects in cycles.
    assert result["types"] == {CLIENT_RESPONSE: 2 * ROUNDS if leaks else 0}
    assert result["leaked"] is leaks


def test_newest_is_at_least_the_known_one(newest_aiohttp: str, newest_known_aiohttp: str) -> None:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split(".")[:3] if p.isdigit())

    assert key(newest_aiohttp) >= key(newest_known_aiohttp)


def test_scenario_plain_mode_runs_quietly() -> None:
    py = ensure_venv(["aiohttp==3.11.13"])
    proc = run_in_venv(py, [str(SCENARIO), "--rounds", "2"], env_extra=cyclescope_env(), timeout=300)
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr
    assert "Traceback" not in proc.stderr


# --- behaviour of venvs.py --------------------------------------------------------------


def test_second_call_reuses_the_cache(capsys: pytest.CaptureFixture[str]) -> None:
    py = ensure_venv([TINY])  # default cache: builds on a machine's first run only
    marker = py.parent.parent / COMPLETE_MARKER
    before = (marker.read_text(), marker.stat().st_mtime_ns)
    capsys.readouterr()
    started = time.monotonic()
    again = ensure_venv([f" {TINY} "])  # same requirement, differently spelled
    elapsed = time.monotonic() - started
    assert again == py
    assert capsys.readouterr().err == ""  # no "creating venv" line: pip did not run
    assert (marker.read_text(), marker.stat().st_mtime_ns) == before
    assert elapsed < 2.0
    proc = run_in_venv(py, ["-c", "import six; print(six.__version__)"])
    assert proc.stdout.strip() == "1.17.0"


def test_half_built_venv_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CYCLESCOPE_CACHE_DIR", str(tmp_path))
    # Crash for real: SIGKILL a builder once `python -m venv` has started, before pip ends.
    builder = subprocess.Popen(
        [sys.executable, "-c",
         f"from cyclescope.demo.venvs import ensure_venv; ensure_venv([{TINY!r}], quiet=True)"],
        env={**os.environ, "PYTHONPATH": str(SRC_DIR)}, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("venvs/*/pyvenv.cfg")):
            assert builder.poll() is None and time.monotonic() < deadline, "builder never started"
            time.sleep(0.01)
    finally:
        os.killpg(builder.pid, signal.SIGKILL)
        builder.wait()
    (half,) = [p.parent for p in tmp_path.glob("venvs/*/pyvenv.cfg")]
    assert not (half / COMPLETE_MARKER).exists(), "builder finished before it was killed"
    (half / "leftover").write_text("from the crashed build")

    py = ensure_venv([TINY])
    err = capsys.readouterr().err
    assert "removing incomplete venv" in err and "creating venv for six==1.17.0" in err
    assert py.parent.parent == half
    assert (half / COMPLETE_MARKER).is_file() and not (half / "leftover").exists()
    assert run_in_venv(py, ["-c", "import six"]).returncode == 0


def test_bad_requirement_raises_one_line_venv_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CYCLESCOPE_CACHE_DIR", str(tmp_path))
    bad = "six==0.0.0.dev999"  # a real package, a version that does not exist
    with pytest.raises(VenvError) as info:
        ensure_venv([bad], quiet=True)
    message = str(info.value)
    assert "\n" not in message
    assert bad in message
    assert message.endswith(f"ERROR: No matching distribution found for {bad}")
    assert "No matching distribution" in info.value.output
    assert capsys.readouterr().err == ""  # quiet
    assert not list(tmp_path.glob(f"venvs/*/{COMPLETE_MARKER}"))  # never marked complete


def test_concurrent_callers_build_one_venv(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC_DIR), "CYCLESCOPE_CACHE_DIR": str(tmp_path)}
    code = f"from cyclescope.demo.venvs import ensure_venv; print(ensure_venv([{TINY!r}]))"
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    (path,) = {out.strip() for out, _ in outs}
    errs = "".join(err for _, err in outs)
    assert errs.count("creating venv") == 1, errs
    assert errs.count("waiting for another process") == 1, errs  # they did overlap
    venv_dirs = [p for p in (tmp_path / "venvs").iterdir() if p.is_dir()]
    assert venv_dirs == [Path(path).parent.parent]
    assert (venv_dirs[0] / COMPLETE_MARKER).is_file()
