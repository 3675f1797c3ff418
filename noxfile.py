"""Test sessions: the whole suite on every supported CPython, and the pure-Python core.

``make test`` runs all of them. Interpreters are looked up on PATH and, failing
that, in pyenv's versions folder, so a machine with pyenv needs no shims.
"""

from __future__ import annotations

import glob
import os

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
#: The real-library tests (old aiohttp releases in cached venvs) run on these.
REAL_PYTHONS = {"3.11", "3.13"}

nox.options.sessions = ["tests", "pure"]
nox.options.error_on_missing_interpreters = True


def _add_pyenv_interpreters() -> None:
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    dirs = []
    for version in PYTHONS:
        found = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin")))
        if found:
            dirs.append(found[-1])
    os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), *dirs])


_add_pyenv_interpreters()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The suite with the C core built; real-library tests on 3.11 and 3.13."""
    session.install(".[test]")
    session.run("python", "-c", "import cyclescope.graph as g, cyclescope.heapalgo as h; "
                "assert g.using_c_core() and h.using_c_heapalgo(), 'C core not built'")
    marker = [] if session.python in REAL_PYTHONS else ["-m", "not real"]
    session.run("pytest", "-q", *marker, *session.posargs)


@nox.session(python="3.11")
def pure(session: nox.Session) -> None:
    """The suite on the pure-Python fallback (no C core), as where no compiler exists."""
    session.install(".[test]")
    session.run("pytest", "-q", "-m", "not real", *session.posargs, env={"CYCLESCOPE_PURE": "1"})


def _split_bench_args(args: list[str]) -> dict[str, list[str]]:
    """``[capture args] [--pytest pytest args] [--heap heap args]``, the two markers in either order."""
    parts: dict[str, list[str]] = {"capture": [], "pytest": [], "heap": []}
    current = "capture"
    for arg in args:
        if arg in ("--pytest", "--heap"):
            current = arg[2:]
            continue
        parts[current].append(arg)
    return parts


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Capture + explain, pytest --cyclescope, heap snapshots: vs gc.collect() and peers (benchmarks/README.md).

    The first compares with gc.collect(), refcycle, objgraph and guppy3; the second
    runs a generated suite of 1,000 tests over a 1M-object heap with and without
    the plugin, and with a full gc.collect() after each test; the third times
    cyclescope.snapshot() and its queries (retention paths, dominators) on heaps of
    100k and 1M objects against gc.collect(), objgraph, guppy3 and refcycle.

    Prints three tables and writes benchmarks/results/latest.json,
    benchmarks/results/pytest_latest.json and benchmarks/results/heap_latest.json.
    Extra arguments go to bench_capture.py (``nox -s bench -- --sizes 1k,10k``);
    those after ``--pytest`` go to bench_pytest.py and those after ``--heap`` to
    bench_heap.py (``nox -s bench -- --sizes 1k --pytest --reps 3 --heap --sizes 100k``).
    """
    session.install(".", "objgraph", "refcycle", "guppy3", "pytest")
    args = _split_bench_args(list(session.posargs))
    session.run("python", "benchmarks/bench_capture.py", *args["capture"])
    session.run("python", "benchmarks/bench_pytest.py", *args["pytest"])
    session.run("python", "benchmarks/bench_heap.py", *args["heap"])
