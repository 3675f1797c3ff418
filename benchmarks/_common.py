"""What the benchmark scripts share: what they record about the run, and heap sizes."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def git_state() -> dict[str, Any]:
    """The commit measured, and whether the working tree differed from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return {"commit": head, "dirty": bool(dirty.strip())}
    except OSError:
        return {}


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
