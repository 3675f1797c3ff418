"""Fixtures shared by the real-library tests (real aiohttp releases in cached venvs).

"Newest aiohttp" is asked of pip once per session (``pip install --dry-run --report``
resolves what this interpreter would install) and then pinned, so each new release is
tested as soon as it exists and its venv is cached under its exact version like any
other. Only if pip cannot answer (no network) does the fixture fall back, with a
warning, to NEWEST_KNOWN_AIOHTTP, the newest version seen when this file was last updated.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

from cyclescope.demo.venvs import run_in_venv

NEWEST_KNOWN_AIOHTTP = "3.14.5"  # fallback only, see the module docstring


@pytest.fixture(scope="session")
def newest_known_aiohttp() -> str:
    """The newest aiohttp release known when this file was last updated."""
    return NEWEST_KNOWN_AIOHTTP


@pytest.fixture(scope="session")
def newest_aiohttp(newest_known_aiohttp: str) -> str:
    """The newest aiohttp that pip would install on this interpreter, asked once."""
    try:
        proc = run_in_venv(sys.executable, [
            "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps", "--quiet",
            "--disable-pip-version-check", "--no-input", "--report", "-", "aiohttp"], timeout=180)
        return str(json.loads(proc.stdout)["install"][0]["metadata"]["version"])
    except (subprocess.SubprocessError, ValueError, LookupError, OSError) as exc:
        warnings.warn(f"cannot ask pip for the newest aiohttp ({exc!r}); "
                      f"using NEWEST_KNOWN_AIOHTTP={newest_known_aiohttp}")
        return newest_known_aiohttp
