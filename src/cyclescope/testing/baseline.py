"""The baseline: cycle signatures a project already knows, so the CI gate fails only on new ones.

The file is JSON with a stable layout meant to be read in a diff::

    {"format": "cyclescope.pytest-baseline/1",
     "groups": [
       {"signature": "aiohttp.web_app.Application ._on_response_prepare -> ...",
        "subject": "aiohttp.web_app.Application",
        "pattern": "back-reference",
        "tests": ["tests/test_app.py::test_startup", "..."]}]}

Groups are sorted by signature and tests by node id; one group per signature.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable

__all__ = ["FORMAT", "Baseline", "BaselineEntry", "BaselineError", "load_baseline", "save_baseline"]

FORMAT = "cyclescope.pytest-baseline/1"


class BaselineError(ValueError):
    """A baseline file that cannot be read."""


@dataclass
class BaselineEntry:
    """One known cycle signature and the tests known to create it."""

    signature: str
    subject: str = ""
    pattern: str | None = None
    tests: list[str] = field(default_factory=list)


@dataclass
class Baseline:
    """The known signatures, by signature."""

    entries: dict[str, BaselineEntry] = field(default_factory=dict)

    def __contains__(self, signature: object) -> bool:
        return signature in self.entries

    def updated(self, seen: Iterable[BaselineEntry], ran: set[str]) -> "Baseline":
        """This run's entries, plus what the old baseline knew about tests that did not run.

        A test that ran keeps only what it created this time; a test that did not
        run (deselected, another shard) keeps its old entries.
        """
        merged: dict[str, BaselineEntry] = {}
        for entry in seen:
            merged[entry.signature] = BaselineEntry(entry.signature, entry.subject, entry.pattern,
                                                    sorted(set(entry.tests)))
        for old in self.entries.values():
            kept = [t for t in old.tests if t not in ran]
            if not kept:
                continue
            entry = merged.setdefault(old.signature, BaselineEntry(old.signature, old.subject, old.pattern, []))
            entry.tests = sorted(set(entry.tests) | set(kept))
        return Baseline(dict(sorted(merged.items())))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, sorted."""
        return {"format": FORMAT, "groups": [
            {"signature": e.signature, "subject": e.subject, "pattern": e.pattern, "tests": sorted(e.tests)}
            for _, e in sorted(self.entries.items())]}


def load_baseline(path: str) -> Baseline:
    """Read a baseline file; a missing file is an empty baseline."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return Baseline()
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    except (OSError, UnicodeError) as exc:
        raise BaselineError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("groups"), list):
        raise BaselineError(f"{path}: not a {FORMAT} file")
    entries: dict[str, BaselineEntry] = {}
    for i, raw in enumerate(data["groups"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("signature"), str):
            raise BaselineError(f"{path}: groups[{i}] has no signature")
        tests = raw.get("tests", [])
        if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
            raise BaselineError(f"{path}: groups[{i}].tests must be a list of node ids")
        entries[raw["signature"]] = BaselineEntry(raw["signature"], str(raw.get("subject") or ""),
                                                  raw.get("pattern"), list(tests))
    return Baseline(entries)


def save_baseline(baseline: Baseline, path: str) -> None:
    """Write the baseline atomically (a half-written file would fail every later run)."""
    text = json.dumps(baseline.to_dict(), indent=2, sort_keys=False) + "\n"
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(temporary, path)
