"""Terminal rendering of a report: readable on 80 columns, colour only when asked."""

from __future__ import annotations

import textwrap

from cyclescope.describe import short_path
from cyclescope.report.model import Group, Report, Step

__all__ = ["render_text", "render_group", "render_tests", "inline_test_list", "break_text", "format_bytes"]

#: Tests named under a group that several created; the rest are counted.
MAX_TESTS_SHOWN = 5
#: Growth entries listed without sample paths (the most numerous); the rest are counted.
MAX_GROWTH_SHOWN = 20

_WIDTH = 80
_TYPE_COLUMN = 23
_EDGE_COLUMN = 24
_MIN_INDENT = 6
_ADVICE_INDENT = 11  # "  pattern  "


def format_bytes(n: int) -> str:
    """``n`` bytes in B, KiB or MiB."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def edge(self, text: str) -> str:
        return self._wrap("36", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)


def _bare(type_name: str, module: str | None) -> str:
    if module and type_name.startswith(module + "."):
        return type_name[len(module) + 1 :]
    return type_name


def _site_text(site: str | None) -> str:
    if not site:
        return ""
    filename, _, line = site.rpartition(":")
    return f"{short_path(filename).rsplit('/', 1)[-1]}:{line}"


def _short_names(steps: list[Step]) -> dict[str, str]:
    """Bare type names for display, qualified where two types of a cycle share one."""
    bare = {s.type: _bare(s.type, s.module) for s in steps}
    clashing = {b for b in bare.values() if list(bare.values()).count(b) > 1}
    return {full: (full if short in clashing else short) for full, short in bare.items()}


def _target_parts(step: Step, names: dict[str, str]) -> tuple[str, str]:
    """How a step is named when an edge points at it: the name, and its details."""
    name = names[step.type]
    if step.type == "frame" and step.function:
        return "frame", f"of {step.function}() at {_site_text(step.location)}"
    if step.detail:
        return name, step.detail
    if step.function and step.site:
        return name, f"({step.function}, {_site_text(step.site)})"
    if step.function:
        return name, f"({step.function})"
    return name, ""


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _columns(longest_type: int, longest_edge: int) -> tuple[int, int]:
    """Widths of the type and edge columns: as wide as their longest entries when a row
    with the longest type as its target still fits the line (a long exception name keeps
    the rows aligned), else capped (a longer name then shifts its own row)."""
    if 2 + longest_type + 2 + longest_edge + 5 + longest_type <= _WIDTH:
        return longest_type, longest_edge
    return min(_TYPE_COLUMN, longest_type), min(_EDGE_COLUMN, longest_edge)


def _group_lines(group: Group, style: _Style) -> list[str]:
    steps = group.cycle
    times = f"{group.count:,} x " if group.count > 1 else ""
    subject = group.subject
    if steps[0].detail:
        subject = f"class {steps[0].detail}" if steps[0].type == "type" else f"{subject} {steps[0].detail}"
    lines = [
        style.bold(f"{times}cycle through {subject}"),
        f"  {_plural(group.cycle_objects, 'object')} on the cycle; {_plural(group.objects, 'object')} / "
        f"{format_bytes(group.bytes)} freed only by the cyclic GC",
    ]
    names = _short_names(steps)
    type_col, edge_col = _columns(max(len(names[s.type]) for s in steps), max(len(s.edge) for s in steps))
    # (styled line) or (None, continuation text, is_source): continuations are
    # aligned together, under the targets when they fit, further left when not.
    rows: list[tuple[str | None, str, bool]] = []
    column = 0
    for i, step in enumerate(steps):
        target = steps[(i + 1) % len(steps)]
        name, detail = _target_parts(target, names)
        if i == len(steps) - 1:
            detail = f"{detail} (back to the start)".lstrip()
        left = f"  {names[step.type]:<{type_col}}  {step.edge:<{edge_col}}  -> "
        column = max(column, len(left))
        styled_left = left.replace(step.edge, style.edge(step.edge), 1)
        if len(left) + len(name) + 1 + len(detail) <= _WIDTH:
            rows.append((f"{styled_left}{name} {detail}".rstrip(), "", False))
        else:
            rows.append((f"{styled_left}{name}".rstrip(), "", False))
            if detail:
                rows.append((None, detail, False))
        if target.source and target.type == "frame" and i != len(steps) - 1:
            rows.append((None, f"`{target.source}`", True))
    widest = max((len(text) for line, text, _ in rows if line is None), default=0)
    indent = max(_MIN_INDENT, min(column, _WIDTH - widest))
    for line, text, is_source in rows:
        if line is not None:
            lines.append(line)
            continue
        if indent + len(text) > _WIDTH:
            text = text[: _WIDTH - indent - 3] + "..."
        lines.append(" " * indent + (style.dim(text) if is_source else text))
    return lines


def _advice_block(label: str, text: str, style: _Style) -> list[str]:
    """``label`` in a column of its own, ``text`` wrapped beside it to 80 columns."""
    first = f"  {label:<{_ADVICE_INDENT - 4}}  "
    wrapped = textwrap.wrap(text, _WIDTH - _ADVICE_INDENT, break_long_words=False, break_on_hyphens=False) or [""]
    return [style.bold(first.rstrip()) + first[len(first.rstrip()):] + wrapped[0]] + \
        [" " * _ADVICE_INDENT + line for line in wrapped[1:]]


def _location_text(location: str) -> str:
    path, _, line = location.rpartition(":")
    return f"{short_path(path)}:{line}"


def break_text(group: Group) -> str:
    """The edge to break, as the report's ``break`` line shows it; "" when none is advised."""
    if group.break_step is None or not 0 <= group.break_step < len(group.cycle):
        return ""
    step = group.cycle[group.break_step]
    if step.type == "frame" and step.edge_kind == "local" and step.function:
        where = f" at {_location_text(step.location)}" if step.location else ""
        return f"{step.edge} in {step.function}(){where}"
    owner = next((o for o in group.owners if o.type == step.type), None)
    whose = ""
    if owner is not None and owner.kind == "distribution":
        whose = f" (belongs to {owner.name} {owner.version}" + (f", {owner.path})" if owner.path else ")")
    elif owner is not None and owner.kind == "local":
        whose = f" (your code{', ' + owner.path if owner.path else ''})"
    elif owner is not None and owner.kind == "stdlib":
        whose = " (standard library)"
    return f"{_bare(step.type, step.module)} {step.edge}{whose}"


def _advice_lines(group: Group, style: _Style) -> list[str]:
    """Pattern, edge to break, fix, lines to change and known issue, when the group has them."""
    if group.pattern is None:
        return []
    lines = _advice_block("pattern", f"{group.pattern}: {group.explanation}", style)
    edge = break_text(group)
    if edge:
        lines += _advice_block("break", edge, style)
    if group.fix:
        lines += _advice_block("fix", group.fix, style)
    for i, place in enumerate(group.fix_locations):
        where = f"{_location_text(place.location)} {place.role}"
        text = f"`{place.text}`" if place.text else ""
        body = f"{where}: {text}" if text else where
        if place.function:
            body += f" (in {place.function})"
        lines += _advice_block("change" if i == 0 else "", body, style)
    if group.known_issue is not None:
        lines += _advice_block("known", group.known_issue.advice.removeprefix("known: "), style)
        for ref in group.known_issue.references[:2]:
            lines.append(" " * _ADVICE_INDENT + ref)
    return lines


def render_group(group: Group, *, color: bool = False) -> list[str]:
    """One group as text lines: its head, the cycle, and its advice."""
    style = _Style(color)
    return _group_lines(group, style) + _advice_lines(group, style)


def render_tests(group: Group, note: str = "") -> list[str]:
    """The tests that created the group (a test run's report), the first few by name."""
    if not group.tests:
        return []
    count = len(group.tests)
    lines = [f"  created by {count} test{'s' if count != 1 else ''}{note}:"]
    lines += [f"    {nodeid}" for nodeid in group.tests[:MAX_TESTS_SHOWN]]
    if count > MAX_TESTS_SHOWN:
        lines.append(f"    ... and {count - MAX_TESTS_SHOWN} more")
    return lines


def inline_test_list(tests: list[str]) -> str:
    """The first few of ``tests`` on one line, the rest counted: ``a, b and 3 more``."""
    shown = ", ".join(tests[:MAX_TESTS_SHOWN])
    return shown + (f" and {len(tests) - MAX_TESTS_SHOWN} more" if len(tests) > MAX_TESTS_SHOWN else "")


def render_text(report: Report, *, color: bool = False, limit: int | None = None) -> str:
    """The report as terminal text; ``limit`` caps the number of groups shown."""
    style = _Style(color)
    groups = report.groups if limit is None else report.groups[:limit]
    out: list[str] = []
    if not report.groups:
        out.append(style.bold("cyclescope: no reference cycles captured"))
    else:
        total = sum(g.count for g in report.groups)
        out.append(
            style.bold(
                f"cyclescope: {total:,} reference cycle{'s' if total != 1 else ''} "
                f"in {len(report.groups)} group{'s' if len(report.groups) != 1 else ''}"
            )
        )
    for group in groups:
        out.append("")
        out.extend(render_group(group, color=color))
        out.extend(render_tests(group))
    if limit is not None and len(report.groups) > limit:
        out.append("")
        out.append(f"... {len(report.groups) - limit} more group(s) not shown (--limit)")
    out.extend(_survivor_lines(report, style))
    out.extend(_growth_lines(report, style))
    out.append("")
    out.append(style.dim(_summary(report)))
    for warning in report.warnings:
        out.append(f"warning: {warning}")
    for error in report.errors:
        out.append(f"error: {error}")
    return "\n".join(out) + "\n"


_SURVIVOR_KINDS = {
    "retained": "retained from a root",
    "uncollectable": "held by references the collector cannot see",
    "cycle": "garbage only the cyclic collector frees",
}


def _survivor_lines(report: Report, style: "_Style") -> list[str]:
    out = []
    if report.unmatched_watch:  # most often a misspelt name: say so rather than nothing
        out += ["", f"no live object matched --watch {', '.join(report.unmatched_watch)}"]
    if not report.survivors:
        return out
    total = sum(s.count for s in report.survivors)
    out += ["", style.bold(f"{total:,} watched object{'s' if total != 1 else ''} still alive")]
    for survivor in report.survivors:
        reason = f" ({survivor.reason})" if survivor.reason else ""
        out.append(f"  {survivor.count:,} x {survivor.type}{reason}: {_SURVIVOR_KINDS.get(survivor.kind, survivor.kind)}")
        if survivor.path:  # a group's paths share a shape: one example stands for them
            out.append(f"      {'e.g. ' if survivor.count > 1 else ''}{survivor.path}")
        elif survivor.kind != "cycle":  # (garbage has no path to show)
            out.append("      (paths not traced: past the number of objects labelled)")
    return out


def _growth_lines(report: Report, style: "_Style") -> list[str]:
    if not report.growth:
        return []
    out = ["", style.bold("heap growth (new objects by type)")]
    # Every type with sample paths, and the most numerous others: a program's imports
    # add hundreds of types (all of them are in the JSON report).
    shown = [e for i, e in enumerate(report.growth) if i < MAX_GROWTH_SHOWN or e.sample_paths]
    for entry in shown:
        out.append(f"  {entry.type}  +{entry.count:,} ({format_bytes(entry.bytes)}, net {entry.net_count:+,})")
        out.extend(f"      {path}" for path in entry.sample_paths)
    hidden = [e for e in report.growth if e not in shown]
    if hidden:
        out.append(f"  ... {len(hidden)} more types, +{sum(e.count for e in hidden):,} objects "
                   f"({format_bytes(sum(e.bytes for e in hidden))}; all in the JSON report)")
    return out


def _summary(report: Report) -> str:
    t = report.totals
    parts = [
        f"captured {_plural(t.captured_objects, 'object')} ({format_bytes(t.captured_bytes)}) "
        f"in {t.collections} collection{'s' if t.collections != 1 else ''}"
    ]
    if report.strategy:
        parts.append(f"strategy {report.strategy}")
    if t.hidden_noise_groups:
        parts.append(f"{t.hidden_noise_groups} interpreter noise group(s) hidden (--include-noise)")
    if t.filtered_out_components:
        parts.append(f"{t.filtered_out_components} component(s) filtered out by --type")
    if t.unanalysed_objects:
        parts.append(f"{t.unanalysed_objects:,} objects collected while paused, not analysed")
    return "; ".join(parts)
