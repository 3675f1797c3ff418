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

__all__ = ["SCHEMA", "Step", "Group", "Totals", "Report", "build_report", "ReportFormatError"]

SCHEMA = "cyclescope.report/1"


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
class Group:
    """All occurrences of one cycle shape (same signature)."""

    count: int
    objects: int
    bytes: int
    signature: str
    cycle: list[Step]
    cycle_objects: int = 0
    component_objects: int = 0
    types: dict[str, int] = field(default_factory=dict)
    noise: bool = False

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


@dataclass
class Report:
    """Findings of one capture, sorted by objects held (largest first)."""

    groups: list[Group]
    totals: Totals = field(default_factory=Totals)
    strategy: str = ""
    python: str = field(default_factory=platform.python_version)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
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
            groups = [
                Group(**{**g, "cycle": [Step(**s) for s in g["cycle"]]}) for g in data["groups"]
            ]
            totals = Totals(**data.get("totals", {}))
            rest = {k: data[k] for k in ("strategy", "python", "warnings", "errors") if k in data}
        except (KeyError, TypeError) as exc:
            raise ReportFormatError(f"malformed {SCHEMA} report: {exc}") from None
        return cls(groups=groups, totals=totals, **rest)

    def __str__(self) -> str:
        from cyclescope.report.text import render_text

        return render_text(self)


def merge_groups(groups: Iterable[Group]) -> list[Group]:
    """Merge groups with equal signatures (adding counts and totals) and sort them."""
    merged: dict[str, Group] = {}
    for group in groups:
        seen = merged.get(group.signature)
        if seen is None:
            merged[group.signature] = Group(**{**asdict(group), "cycle": list(group.cycle)})
            continue
        seen.count += group.count
        seen.objects += group.objects
        seen.bytes += group.bytes
        for name, n in group.types.items():
            seen.types[name] = seen.types.get(name, 0) + n
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
