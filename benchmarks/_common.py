"""What the benchmark scripts share: what they record about the run, and heap sizes."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from typing import Any, Iterable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def git_state() -> dict[str, Any]:
    """The commit measured, and whether the working tree differed from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return {"commit": head, "dirty": bool(dirty.strip())}
    except OSError:
        return {}


def run_meta(load_start: Any, **extra: Any) -> dict[str, Any]:
    """What a results file says about the run: interpreter, machine, versions, commit, start
    time and load; ``extra`` adds a benchmark's own entries after the interpreter's."""
    meta: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        **extra,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions(),
        "git": git_state(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg_at_start": load_start,
    }
    return meta


def write_results(data: dict[str, Any], table: str, output: str) -> None:
    """Keep the printed table with the raw numbers, write them to ``output``, print the table."""
    data["table"] = table
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        json.dump(data, f, indent=1)
    print(table)


def parse_size(text: str) -> int:
    """``"100k"``, ``"1M"``, ``"1_000"`` -> a whole number."""
    text = text.strip().lower().replace("_", "")
    scale = 1
    if text.endswith("k"):
        scale, text = 1_000, text[:-1]
    elif text.endswith("m"):
        scale, text = 1_000_000, text[:-1]
    return int(float(text) * scale)


def parse_sizes(text: str) -> list[int]:
    """``"100k,1M"`` -> the distinct sizes, ascending."""
    return sorted({parse_size(s) for s in text.split(",") if s.strip()})


def choose(listing: str, known: Iterable[str], what: str, ap: argparse.ArgumentParser) -> list[str]:
    """The names a comma-separated option picks, ``"baseline"`` first (always run); an
    unknown name is a usage error (``ap.error``: one line, status 2)."""
    known = list(known)
    names = [n for n in listing.split(",") if n]
    unknown = [n for n in names if n not in known]
    if unknown:
        ap.error(f"unknown {what} {unknown}; choose from {known}")
    return ["baseline"] + [n for n in names if n != "baseline"]


def size_label(n: int) -> str:
    """The short form of a size: 100000 -> ``100k``."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def versions() -> dict[str, str | None]:
    """Installed versions of cyclescope and the peers it is measured against (None: absent)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for dist in ("cyclescope", "refcycle", "objgraph", "guppy3"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out
