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
    session.run("python", "-c", "import cyclescope.graph as g; assert g.using_c_core(), 'C core not built'")
    marker = [] if session.python in REAL_PYTHONS else ["-m", "not real"]
    session.run("pytest", "-q", *marker, *session.posargs)


@nox.session(python="3.11")
def pure(session: nox.Session) -> None:
    """The suite on the pure-Python fallback (no C core), as where no compiler exists."""
    session.install(".[test]")
    session.run("pytest", "-q", "-m", "not real", *session.posargs, env={"CYCLESCOPE_PURE": "1"})


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Capture + explain against gc.collect() and three peers, then pytest --cyclescope (benchmarks/README.md).

    The first compares with gc.collect(), refcycle, objgraph and guppy3; the second
    runs a generated suite of 1,000 tests over a 1M-object heap with and without
    the plugin, and with a full gc.collect() after each test.

    Prints two tables and writes benchmarks/results/latest.json and
    benchmarks/results/pytest_latest.json. Extra arguments go to bench_capture.py
    (``nox -s bench -- --sizes 1k,10k``); those after ``--pytest`` go to
    bench_pytest.py (``nox -s bench -- --sizes 1k --pytest --reps 3``).
    """
    session.install(".", "objgraph", "refcycle", "guppy3", "pytest")
    args = list(session.posargs)
    split = args.index("--pytest") if "--pytest" in args else len(args)
    session.run("python", "benchmarks/bench_capture.py", *args[:split])
    session.run("python", "benchmarks/bench_pytest.py", *args[split + 1 :])
