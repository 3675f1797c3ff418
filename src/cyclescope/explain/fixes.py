"""From a labelled cycle to advice: pattern, edge to break, lines to change, owners, known bug.

:func:`advise` runs while the cycle's objects still exist (it needs the type of
the object whose edge is to be broken to find where that attribute is
assigned); :func:`classify_saved` fills what can be read from a saved report
alone. Neither runs user code: sources are parsed, never imported, and types are
read through ``type``'s own descriptors.
"""

from __future__ import annotations

import re
import types
from typing import Sequence

from cyclescope._safe import is_a, type_namespace
from cyclescope.describe import short_path, source_line
from cyclescope.explain.known import match_known_issue
from cyclescope.explain.owners import Owner as ModuleOwner
from cyclescope.explain.owners import distribution_version, owner_of_module
from cyclescope.explain.patterns import Classification, attribute_name, classify, frame_local, local_owner
from cyclescope.explain.sources import attribute_assignments
from cyclescope.report.model import FixLocation, Group, Owner, Step

__all__ = ["advise", "copy_advice", "classify_saved", "owners_of", "MAX_ASSIGNMENTS"]

#: Assignment sites shown for the edge to break.
MAX_ASSIGNMENTS = 3
_SETS_NONE = re.compile(r"=\s*None\s*(#.*)?$")  # resets the attribute: never what makes the edge
_FRAME_PATTERNS = frozenset({"stored-exception", "future-exception", "exception-in-local", "generator-frame"})


def owners_of(cycle: Sequence[Step], step_objects: Sequence[object] | None = None) -> list[Owner]:
    """Who ships each distinct type of the cycle, in cycle order.

    A ``__main__`` type's file is read from its own functions when the objects
    are given: by the time a capture ends, ``sys.modules["__main__"]`` may be
    another module than the one that defined the type.
    """
    owners: list[Owner] = []
    seen: set[str] = set()
    for i, step in enumerate(cycle):
        if step.type in seen:
            continue
        seen.add(step.type)
        if step.module == "__main__":
            obj = step_objects[i] if step_objects is not None else None
            tp = obj if is_a(obj, type) else type(obj)
            filename = _defining_file(tp) if obj is not None else None
            owners.append(Owner(type=step.type, kind="local", name="__main__",
                                path=short_path(filename) if filename else None))
            continue
        found = owner_of_module(step.module or "builtins")
        owners.append(Owner(type=step.type, kind=found.kind, name=found.name or None,
                            version=found.version, path=found.path))
    return owners


def _defining_file(tp: type) -> str | None:
    """The file of the first plain function defined in the class body, or None."""
    try:
        namespace = type_namespace(tp)
    except Exception:
        return None
    for value in dict.values(namespace) if type(namespace) is dict else namespace.values():
        if type(value) in (staticmethod, classmethod):
            value = value.__func__
        if type(value) is types.FunctionType:
            return value.__code__.co_filename
    return None


def _owner_text(module: str) -> str | None:
    return owner_of_module(module).describe() if module else None


def _frame_lines(group: Group) -> list[FixLocation]:
    lines = []
    for step in group.cycle:
        if step.type == "frame" and step.location:
            lines.append(FixLocation(location=step.location, text=step.source or "", role="frame in the cycle",
                                     function=step.function, owner=None))
    return lines


def _closure_definition(group: Group) -> list[FixLocation]:
    for step in group.cycle:
        if step.type == "function" and step.site:
            path, _, line = step.site.rpartition(":")
            text = source_line(path, int(line)) if line.isdigit() else ""
            return [FixLocation(location=step.site, text=text, role="defines the closure",
                                function=step.function)]
    return []


def _assignments(step: Step, obj: object) -> list[FixLocation]:
    name = attribute_name(step.edge)
    if name is None or is_a(obj, type):
        return []
    return [
        FixLocation(location=site.location, text=site.text, role=f"assigns .{name}", function=site.qualname,
                    owner=f"your code, {short_path(site.path)}" if site.module == "__main__"
                    else _owner_text(site.module))
        for site in attribute_assignments(type(obj), name, limit=MAX_ASSIGNMENTS + 4)
        if not _SETS_NONE.search(site.text)
    ][:MAX_ASSIGNMENTS]


def _classified(group: Group, found: Classification | Group) -> None:
    group.pattern, group.explanation, group.fix, group.break_step = (
        found.pattern, found.explanation, found.fix, found.break_step)


def _yours_to_break(group: Group, found: Classification, step_objects: Sequence[object]) -> Classification:
    """A traceback or exception kept by an object of a library (pytest's ExceptionInfo,
    for ``with pytest.raises(...) as excinfo``) and held in a local of the user's own
    function: that local is the edge the user can change, so it is the one to break."""
    if found.pattern != "stored-exception" or found.break_step is None:
        return found
    holder = group.cycle[found.break_step]
    holder_owner = owner_of_module(holder.module or "builtins")
    local = frame_local(group.cycle)
    if holder_owner.kind not in ("distribution", "stdlib", "builtin") or local is None:
        return found
    step, name = local
    frame = step_objects[step]
    if not is_a(frame, types.FrameType) or _frame_owner(frame).kind != "local":
        return found
    function, closure_note = local_owner(group.cycle[step])
    return Classification(
        found.pattern, found.explanation,
        f"`del {name}` (or set it to None) in {function} once the exception has been examined: "
        f"{holder.type.rsplit('.', 1)[-1]} belongs to {holder_owner.name}, the local to your code{closure_note}",
        step,
    )


def _frame_owner(frame: types.FrameType) -> ModuleOwner:
    """Who ships the code a frame runs, by the name of its module."""
    globals_ = frame.f_globals
    name = dict.get(globals_, "__name__") if type(globals_) is dict else None
    return owner_of_module(name if type(name) is str else "")


def _fill(group: Group, found: Classification, step_objects: Sequence[object]) -> None:
    found = _yours_to_break(group, found, step_objects)
    _classified(group, found)
    locations: list[FixLocation] = []
    if found.break_step is not None:
        locations += _assignments(group.cycle[found.break_step], step_objects[found.break_step])
    if found.pattern == "closure":
        locations += _closure_definition(group)
    if found.pattern in _FRAME_PATTERNS:
        locations += _frame_lines(group)
    group.fix_locations = locations
    group.owners = owners_of(group.cycle, step_objects)
    group.known_issue = match_known_issue(group.cycle, distribution_version)


def advise(group: Group, step_objects: Sequence[object]) -> None:
    """Fill the group's advice fields; ``step_objects[i]`` is the object of ``group.cycle[i]``."""
    _fill(group, classify(group.cycle), step_objects)


def copy_advice(source: Group, target: Group) -> None:
    """Give ``target`` the advice already worked out for ``source`` (same signature)."""
    _classified(target, source)
    target.fix_locations = list(source.fix_locations)
    target.owners = list(source.owners)
    target.known_issue = source.known_issue


def classify_saved(group: Group) -> None:
    """Fill the advice a saved report's group lacks, from its steps alone.

    No assignment lines (they need the live types), and no owners: those of the
    machine reading the report would be a guess about the one that wrote it. A
    known issue is judged on the versions the report's own owners recorded.
    """
    if group.pattern is None:
        _classified(group, classify(group.cycle))
    if group.known_issue is None:
        recorded = {o.name: o.version for o in group.owners if o.name}
        group.known_issue = match_known_issue(group.cycle, recorded.get)
