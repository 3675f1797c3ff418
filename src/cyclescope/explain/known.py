"""Known upstream bugs: recognise a cycle group as one and say what to do about it.

The database is ``cyclescope/data/known_issues.json``; anyone can add an entry in a
pull request. Its format (``"format": "cyclescope.known-issues/1"``)::

    {"format": "cyclescope.known-issues/1",
     "issues": [{
        "id": "aiohttp#10535",                 # unique, "<project>#<issue>"
        "summary": "one line: what holds what",
        "distribution": "aiohttp",             # as importlib.metadata names it
        "affected": {"from": "3.8.0", "before": "3.11.14"},   # both ends optional
        "fixed_in": "3.11.14",                 # first version with the upstream fix
        "upgrade_to": "3.11.15",               # optional: first *usable* fixed release
        "references": ["https://github.com/..."],
        "workaround": "optional: what to do when upgrading is not possible",
        "match": [                             # every item must match its own cycle step
            {"type": "aiohttp.client_reqrep.ClientResponse"},
            {"type": "aiohttp.client_proto.ResponseHandler", "edge": "._exception"}],
            # an item may also give "function": the step's function (frames, tracebacks)
        "scenario": {                          # how the test suite reproduces it
            "module": "cyclescope.demo.scenarios.aiohttp_10535", "args": ["--rounds", "1"],
            "affected_version": "3.11.13", "fixed_version": "3.11.15"}}]}

``type``, ``edge`` and ``function`` are shell patterns (``fnmatch``, case-sensitive)
against a step's qualified type name, the label of the edge leaving it and, for
frames and tracebacks, the qualified name of their function, as the report shows
them; a missing key matches anything. Versions compare as PEP 440 orders releases (``3.11.14rc1`` is before
``3.11.14``; see :mod:`cyclescope._versions`). Each entry's scenario runs in the real-library tests on an affected
and on a fixed version, so an entry cannot claim what has not been reproduced.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from fnmatch import translate
from importlib import resources
from typing import Any, Callable, Iterable, Mapping, Sequence

from cyclescope._versions import is_before, parse_version
from cyclescope.report.model import KnownIssue, Step

__all__ = ["FORMAT", "KnownIssueEntry", "KnownIssueDatabaseError", "load_database", "parse_database",
           "match_known_issue"]

FORMAT = "cyclescope.known-issues/1"


class KnownIssueDatabaseError(ValueError):
    """The known-issue database does not follow its documented format."""


@dataclass(frozen=True)
class KnownIssueEntry:
    """One entry of the database."""

    id: str
    summary: str
    distribution: str
    affected_from: str | None
    affected_before: str | None
    fixed_in: str | None
    upgrade_to: str | None
    references: tuple[str, ...]
    workaround: str | None
    match: tuple[tuple[str, str, str], ...]  # (type, edge, function) patterns
    scenario: Mapping[str, Any] | None
    # The patterns compiled once, when the database is read: not by the first cycle matched.
    _matchers: tuple[tuple[Callable[[str], Any], ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        matchers = tuple(tuple(re.compile(translate(p)).match for p in step) for step in self.match)
        object.__setattr__(self, "_matchers", matchers)

    def affects(self, version: str) -> bool | None:
        """Whether ``version`` is in the affected range; None when it cannot be read."""
        if parse_version(version) is None:
            return None
        if self.affected_from and is_before(version, self.affected_from):
            return False
        return not self.affected_before or bool(is_before(version, self.affected_before))

    def matches(self, cycle: Sequence[Step]) -> bool:
        """Whether every pattern of the entry matches its own step of ``cycle``."""
        return _assign(self._matchers, [(step.type, step.edge, step.function or "") for step in cycle], frozenset())


def _assign(matchers: Sequence[tuple[Callable[[str], Any], ...]], steps: list[tuple[str, str, str]],
            used: frozenset[int]) -> bool:
    if not matchers:
        return True
    return any(
        i not in used and all(match(value) for value, match in zip(step, matchers[0]))
        and _assign(matchers[1:], steps, used | {i})
        for i, step in enumerate(steps)
    )


def _entry(raw: Any, where: str) -> KnownIssueEntry:
    if not isinstance(raw, dict):
        raise KnownIssueDatabaseError(f"{where}: an entry must be an object")

    def text(key: str, required: bool = True) -> str | None:
        value = raw.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise KnownIssueDatabaseError(f"{where}: {key!r} must be a non-empty string")
        return value

    affected = raw.get("affected", {})
    if not isinstance(affected, dict) or not set(affected) <= {"from", "before"}:
        raise KnownIssueDatabaseError(f"{where}: 'affected' must be an object with 'from' and/or 'before'")
    for key in ("from", "before"):
        if key in affected and parse_version(str(affected[key])) is None:
            raise KnownIssueDatabaseError(f"{where}: affected.{key} is not a version: {affected[key]!r}")
    match = raw.get("match")
    keys = ("type", "edge", "function")
    if not isinstance(match, list) or not match or not all(
            isinstance(m, dict) and m and set(m) <= set(keys) and all(isinstance(v, str) for v in m.values())
            for m in match):
        raise KnownIssueDatabaseError(f"{where}: 'match' must be a non-empty list of {{type, edge, function}} "
                                      f"patterns")
    references = raw.get("references", [])
    if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
        raise KnownIssueDatabaseError(f"{where}: 'references' must be a list of strings")
    scenario = raw.get("scenario")
    if scenario is not None and not isinstance(scenario, dict):
        raise KnownIssueDatabaseError(f"{where}: 'scenario' must be an object")
    return KnownIssueEntry(
        id=text("id") or "", summary=text("summary") or "", distribution=text("distribution") or "",
        affected_from=affected.get("from"), affected_before=affected.get("before"),
        fixed_in=text("fixed_in", required=False), upgrade_to=text("upgrade_to", required=False),
        references=tuple(references), workaround=text("workaround", required=False),
        match=tuple(tuple(m.get(key, "*") for key in keys) for m in match), scenario=scenario,
    )


def parse_database(data: Any) -> tuple[KnownIssueEntry, ...]:
    """Check and read a database already loaded from JSON."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise KnownIssueDatabaseError(f"not a {FORMAT} database")
    issues = data.get("issues")
    if not isinstance(issues, list):
        raise KnownIssueDatabaseError("'issues' must be a list")
    entries = tuple(_entry(raw, f"issues[{i}]") for i, raw in enumerate(issues))
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise KnownIssueDatabaseError(f"duplicate id {entry.id!r}")
        seen.add(entry.id)
    return entries


@functools.lru_cache(maxsize=1)
def load_database() -> tuple[KnownIssueEntry, ...]:
    """The database shipped with the package (read once per process)."""
    text = resources.files("cyclescope").joinpath("data", "known_issues.json").read_text(encoding="utf-8")
    return parse_database(json.loads(text))


def _advice(entry: KnownIssueEntry, installed: str | None, affected: bool | None) -> str:
    fixed = f", fixed in {entry.fixed_in}" if entry.fixed_in else ""
    head = f"known: {entry.id}{fixed}"
    if installed is None:
        return f"{head}; {entry.distribution} is not installed here"
    if affected:
        target = entry.upgrade_to or entry.fixed_in
        action = f"upgrade to {target} or later" if target else "no fixed release yet"
        if entry.workaround:
            action += f" (or {entry.workaround})"
        return f"{head}; installed {installed}: {action}"
    if affected is None:
        return f"{head}; installed version {installed!r} cannot be compared"
    return (f"{head}; installed {installed} is outside the affected range: "
            f"a regression or another cause with the same shape")


def match_known_issue(
    cycle: Sequence[Step],
    installed_version: Callable[[str], str | None],
    entries: Iterable[KnownIssueEntry] | None = None,
) -> KnownIssue | None:
    """The first database entry whose patterns match ``cycle``, judged against the installed version.

    ``installed_version(distribution)`` gives the installed version or None.
    """
    for entry in load_database() if entries is None else entries:
        if not entry.matches(cycle):
            continue
        installed = installed_version(entry.distribution)
        affected = entry.affects(installed) if installed is not None else None
        return KnownIssue(
            id=entry.id, summary=entry.summary, distribution=entry.distribution,
            installed_version=installed, affected=affected, fixed_in=entry.fixed_in,
            upgrade_to=entry.upgrade_to, references=list(entry.references),
            advice=_advice(entry, installed, affected),
        )
    return None
