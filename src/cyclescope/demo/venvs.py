"""Cached virtual environments holding exact third-party package versions.

Used by the real-library tests and by the demo: ``ensure_venv(["aiohttp==3.11.13"])``
builds (once) a venv with that requirement for the given interpreter and returns
the path of its python. POSIX only (the build lock uses :mod:`fcntl`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import time
from typing import Callable, Mapping, Sequence

__all__ = ["VenvError", "cache_dir", "ensure_venv", "run_in_venv"]

#: Written (atomically) into a venv only after pip succeeded; its absence means
#: the venv is missing or half-built and must be (re)built.
COMPLETE_MARKER = "cyclescope-venv.json"

# Variables that would let the calling process's import setup leak into the venv.
_SCRUBBED_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE",
                 "PYTHONEXECUTABLE", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__")


class VenvError(RuntimeError):
    """Creating a venv or installing its requirements failed; ``output`` holds the tool's output."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


def cache_dir() -> pathlib.Path:
    """Return the directory holding the cached venvs (it may not exist yet)."""
    if os.environ.get("CYCLESCOPE_CACHE_DIR"):
        return pathlib.Path(os.environ["CYCLESCOPE_CACHE_DIR"]).expanduser() / "venvs"
    if os.environ.get("XDG_CACHE_HOME"):
        return pathlib.Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "cyclescope" / "venvs"
    return pathlib.Path.home() / ".cache" / "cyclescope" / "venvs"


def run_in_venv(
    python_path: str | os.PathLike[str],
    args: Sequence[str],
    *,
    env_extra: Mapping[str, str] | None = None,
    timeout: float | None = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``python_path *args`` with text output captured and the caller's PYTHONPATH etc. removed.

    ``env_extra`` is added to the (scrubbed) environment. The result is not checked.
    """
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(env_extra or {})
    return subprocess.run([os.fspath(python_path), *args], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=timeout)


def _interpreter_version(python: str) -> tuple[str, str]:
    """(implementation, exact version), e.g. ("cpython", "3.11.7"), of *python*."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return sys.implementation.name, platform.python_version()
    try:
        proc = run_in_venv(python, ["-c", "import platform, sys; "
                                    "print(sys.implementation.name, platform.python_version())"],
                           timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise VenvError(f"cannot run interpreter {python}: {exc}") from exc
    if proc.returncode != 0 or len(proc.stdout.split()) != 2:
        raise VenvError(f"cannot run interpreter {python}: {_last_line(proc.stderr + proc.stdout)}",
                        proc.stderr + proc.stdout)
    impl, version = proc.stdout.split()
    return impl, version


def _venv_dir(requirements: Sequence[str], impl: str, version: str) -> pathlib.Path:
    key = json.dumps({"python": f"{impl}-{version}", "requirements": requirements})
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir() / f"{impl}-{version}-{digest}"


def _venv_python(venv: pathlib.Path) -> pathlib.Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _is_complete(venv: pathlib.Path) -> bool:
    return (venv / COMPLETE_MARKER).is_file() and _venv_python(venv).exists()


def _last_line(output: str) -> str:
    """pip's last ``ERROR:`` line (the useful one), else its last non-empty line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["(no output)"])[-1]


def ensure_venv(
    requirements: Sequence[str], python: str | None = None, *, quiet: bool = False
) -> pathlib.Path:
    """Return the python of a cached venv for *python* with exactly *requirements* installed.

    The venv is built on first use (``python -m venv`` then its own pip) and reused
    afterwards; concurrent callers are serialised by a lock file. Raises VenvError.
    """
    if isinstance(requirements, str):
        raise TypeError("requirements must be a sequence of strings, not a string")
    reqs = sorted({r.strip() for r in requirements if r.strip()})
    python = python or sys.executable
    impl, version = _interpreter_version(python)
    venv = _venv_dir(reqs, impl, version)
    if _is_complete(venv):
        return _venv_python(venv)

    def say(msg: str) -> None:
        if not quiet:
            print(f"cyclescope: {msg}", file=sys.stderr, flush=True)

    what = ", ".join(reqs) or "no requirements"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.with_name(venv.name + ".lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another process building the venv for {what}...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_complete(venv):  # built by whoever held the lock before us
            return _venv_python(venv)
        _build(venv, reqs, python, impl, version, what, say)
        return _venv_python(venv)


def _build(venv: pathlib.Path, reqs: list[str], python: str, impl: str, version: str,
           what: str, say: Callable[[str], None]) -> None:
    started = time.monotonic()
    if venv.exists():
        say(f"removing incomplete venv {venv}")
        shutil.rmtree(venv)
    say(f"creating venv for {what} (python {version})...")
    proc = run_in_venv(python, ["-m", "venv", str(venv)], timeout=600)
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        shutil.rmtree(venv, ignore_errors=True)
        raise VenvError(f"python -m venv failed (python {version}): {_last_line(output)}", output)
    if reqs:
        proc = run_in_venv(_venv_python(venv), ["-m", "pip", "install", "--disable-pip-version-check",
                                                "--no-input", *reqs], timeout=None)
        if proc.returncode != 0:
            output = proc.stdout + proc.stderr
            shutil.rmtree(venv, ignore_errors=True)
            raise VenvError(f"pip install {' '.join(reqs)} failed (python {version}): "
                            f"{_last_line(output)}", output)
    elapsed = time.monotonic() - started
    meta = {"requirements": reqs, "implementation": impl, "python": version,
            "base_executable": python, "created": time.time(), "build_seconds": round(elapsed, 2)}
    tmp = venv / (COMPLETE_MARKER + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, venv / COMPLETE_MARKER)
    say(f"venv ready in {elapsed:.1f}s: {venv}")


def cyclescope_env() -> dict[str, str]:
    """Environment entries that make this very cyclescope importable inside a venv.

    Pass them as ``env_extra`` to :func:`run_in_venv` for a venv built on the same
    interpreter version (the compiled core must match it).
    """
    import cyclescope

    return {"PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(cyclescope.__file__)))}
