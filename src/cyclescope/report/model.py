"""The report model: plain dataclasses holding strings and numbers only.

Once a report is built nothing in it refers to a captured object, so holding a
report never keeps garbage alive. ``Report.to_dict()`` gives the versioned JSON
form described by ``schema.json`` beside this module; the fields named there are a
contract that later tools rely on (fields may be added, none change meaning).
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

__all__ = ["SCHEMA", "Step", "FixLocation", "Owner", "KnownIssue", "Group", "Totals", "Survivor", "GrowthEntry",
           "Report", "build_report", "ReportFormatError"]

SCHEMA = "cyclescope.report/1"

_PYTHON_VERSION = platform.python_version()  # asked once: the answer never changes


class ReportFormatError(ValueError):
    """A saved report that cannot be read back (wrong schema or shape)."""


@dataclass
class Step:
    """One object on a cycle and the reference from it to the next step.

    ``edge`` leads to the next step; the last step's edge leads back to the first.
    ``location`` is ``file:line`` for frame steps, else None.
    """

    type: str
    edge: str
    location: str | None = None
    edge_kind: str = "referent"
    function: str | None = None
    source: str | None = None
    site: str | None = None  # file:line of a traceback's or function's code, for display
    module: str | None = None  # module that defines the step's type (None for built-ins)
    detail: str | None = None  # what a class or module step is: its qualified name


@dataclass
class FixLocation:
    """A source line to change to break the cycle, and why it is named."""

    location: str  # file:line
    text: str  # the line, stripped
    role: str  # e.g. "assigns ._exception", "raise site", "frame line"
    function: str | None = None  # qualified name of the function holding the line
    owner: str | None = None  # who ships the file, e.g. "aiohttp 3.11.13, aiohttp/client_proto.py"


@dataclass
class Owner:
    """Who ships the type of a step: a distribution, the standard library, or the user's code."""

    type: str
    kind: str  # "distribution", "stdlib", "builtin", "local" or "unknown"
    name: str | None = None  # distribution name ("aiohttp"), "Python" for the stdlib
    version: str | None = None
    path: str | None = None  # module file relative to its distribution or project


@dataclass
class KnownIssue:
    """A known upstream bug whose cycle shape this group has, judged on the installed version."""

    id: str
    summary: str
    distribution: str
    installed_version: str | None
    affected: bool | None  # None: not installed or version unreadable
    fixed_in: str | None
    upgrade_to: str | None
    references: list[str]
    advice: str


@dataclass
class Group:
    """All occurrences of one cycle shape (same signature).

    The fix fields are filled by the pattern classifier: ``pattern`` is a stable
    name (``"stored-exception"``, ... or ``"unknown"``), ``break_step`` the index
    of the step whose outgoing edge is the one to break.
    """

    count: int
    objects: int
    bytes: int
    signature: str
    cycle: list[Step]
    cycle_objects: int = 0
    component_objects: int = 0
    types: dict[str, int] = field(default_factory=dict)
    noise: bool = False
    pattern: str | None = None
    explanation: str | None = None
    fix: str | None = None
    break_step: int | None = None
    fix_locations: list[FixLocation] = field(default_factory=list)
    owners: list[Owner] = field(default_factory=list)
    known_issue: KnownIssue | None = None
    tests: list[str] = field(default_factory=list)  # pytest node ids that created it (pytest plugin)

    @property
    def subject(self) -> str:
        """The type the cycle is shown through (its first step)."""
        return self.cycle[0].type if self.cycle else "?"


@dataclass
class Totals:
    """What the capture saw as a whole."""

    captured_objects: int = 0
    captured_bytes: int = 0
    cyclic_components: int = 0
    collections: int = 0
    unanalysed_objects: int = 0
    hidden_noise_groups: int = 0
    hidden_noise_objects: int = 0
    filtered_out_components: int = 0

    def add(self, other: "Totals") -> None:
        """Add ``other``'s counts to these (captures or tests taken together)."""
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass
class Survivor:
    """Live objects that should be gone (``run --watch``, the watch list), grouped by the
    shape of their retention path.

    ``kind``: "retained" (reachable from a root), "uncollectable" (held from outside
    the heap the collector sees) or "cycle" (garbage that only the cyclic collector
    frees).
    """

    type: str
    kind: str
    count: int
    path: str  # the shortest retention path, of one of them for a group ("" when there is none)
    reason: str = ""


@dataclass
class GrowthEntry:
    """New objects of one type between two snapshots (``run --growth``)."""

    type: str
    count: int
    bytes: int
    net_count: int
    sample_paths: list[str] = field(default_factory=list)


@dataclass
class Report:
    """Findings of one capture, sorted by objects held (largest first)."""

    groups: list[Group]
    totals: Totals = field(default_factory=Totals)
    strategy: str = ""
    python: str = _PYTHON_VERSION
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    survivors: list[Survivor] = field(default_factory=list)
    unmatched_watch: list[str] = field(default_factory=list)  # watched type patterns no live object had
    growth: list[GrowthEntry] = field(default_factory=list)
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON form (see ``schema.json``)."""
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """``to_dict()`` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> "Report":
        """Read back what :meth:`to_dict` produced."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise ReportFormatError(f"not a {SCHEMA} report (schema: {found!r})")
        try:
            groups = [_group_from_dict(g) for g in data["groups"]]
            totals = Totals(**data.get("totals", {}))
            rest = {k: data[k] for k in ("strategy", "python", "warnings", "errors", "unmatched_watch") if k in data}
            survivors = [Survivor(**item) for item in data.get("survivors", [])]
            growth = [GrowthEntry(**item) for item in data.get("growth", [])]
        except (KeyError, TypeError) as exc:
            raise ReportFormatError(f"malformed {SCHEMA} report: {exc}") from None
        return cls(groups=groups, totals=totals, survivors=survivors, growth=growth, **rest)

    def __str__(self) -> str:
        from cyclescope.report.text import render_text

        return render_text(self)


def _group_from_dict(data: dict[str, Any]) -> Group:
    known = data.get("known_issue")
    return Group(**{
        **data,
        "cycle": [Step(**s) for s in data["cycle"]],
        "fix_locations": [FixLocation(**f) for f in data.get("fix_locations", [])],
        "owners": [Owner(**o) for o in data.get("owners", [])],
        "known_issue": KnownIssue(**known) if known is not None else None,
    })


def _copy_group(group: Group) -> Group:
    copy = Group(**{**vars(group)})
    copy.cycle = list(group.cycle)
    copy.types = dict(group.types)
    copy.fix_locations = list(group.fix_locations)
    copy.owners = list(group.owners)
    copy.tests = list(group.tests)
    return copy


def merge_groups(groups: Iterable[Group]) -> list[Group]:
    """Merge groups with equal signatures (adding counts and totals) and sort them."""
    merged: dict[str, Group] = {}
    for group in groups:
        seen = merged.get(group.signature)
        if seen is None:
            merged[group.signature] = _copy_group(group)
            continue
        seen.count += group.count
        seen.objects += group.objects
        seen.bytes += group.bytes
        for name, n in group.types.items():
            seen.types[name] = seen.types.get(name, 0) + n
        seen.tests = sorted(set(seen.tests) | set(group.tests))
    return sorted(merged.values(), key=lambda g: (-g.objects, -g.count, g.signature))


def build_report(
    groups: Iterable[Group],
    totals: Totals,
    *,
    strategy: str = "",
    warnings: Iterable[str] = (),
    errors: Iterable[str] = (),
) -> Report:
    """Assemble a report from analysed groups (merging equal signatures)."""
    return Report(
        groups=merge_groups(groups), totals=totals, strategy=strategy, warnings=list(warnings), errors=list(errors)
    )
