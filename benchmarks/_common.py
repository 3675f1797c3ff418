"""What both benchmark scripts record about the run itself."""

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
