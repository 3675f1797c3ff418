"""Watching objects that should be freed, and explaining the ones that were not.

``cyclescope.watch(obj, reason)`` keeps a weak reference to ``obj`` (never a strong
one). ``cyclescope.check()`` then runs a collection and sorts every watched object
into one of three kinds, which are different problems with different fixes:

* ``retained``: still alive, reachable from a root: the retention path says which
  module global, local variable, task or C-held object keeps it;
* ``uncollectable``: still alive, and its shortest path starts at an object held
  from outside the heap the collector sees (C code, a type without
  ``tp_traverse``): no collection can free it until that holder lets go;
* ``cycle``: freed, but only by the cyclic garbage collector, late: it was part of
  a reference cycle, explained as ``cyclescope.capture`` explains cycles. When the
  automatic collector got there before ``check()``, the cycle is gone and only the
  fact is reported.

Objects freed by reference counting, as they should be, are not reported.
While anything is watched (and inside an ``expect_freed`` block) one callback sits
in ``gc.callbacks``, to tell a free by the cyclic collector from one by reference
counting; ``check()``, ``unwatch_all()`` and the end of the block take it away.
``with cyclescope.expect_freed(*objs): ...`` watches ``objs`` and fails at the end of
the block when any of them is reported.
"""

from __future__ import annotations

import gc
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from cyclescope.describe import short_type_name, type_name
from cyclescope.report.model import Group

__all__ = ["watch", "check", "expect_freed", "unwatch_all", "WatchReport", "Finding", "NotFreedError",
           "RETAINED", "UNCOLLECTABLE", "CYCLE"]

RETAINED = "retained"
UNCOLLECTABLE = "uncollectable"
CYCLE = "cycle"

_KIND_TITLES = {
    RETAINED: "still alive, retained from a root",
    UNCOLLECTABLE: "still alive, held by references the collector cannot see",
    CYCLE: "freed only by the cyclic garbage collector (late): part of a reference cycle",
}


class NotFreedError(AssertionError):
    """Raised by :func:`expect_freed` when a watched object was not freed as it should be."""

    def __init__(self, report: "WatchReport") -> None:
        super().__init__(str(report))
        self.report = report


@dataclass
class Finding:
    """One watched object that was not freed by reference counting."""

    kind: str  # RETAINED, UNCOLLECTABLE or CYCLE
    type: str  # qualified type name
    reason: str  # what the caller said when watching it
    path: str = ""  # retention path (retained, uncollectable)
    cycle: Group | None = None  # the cycle it was part of (cycle, when check() caught it)
    note: str = ""

    def __str__(self) -> str:
        head = f"{short_type_name_of(self.type)}"
        if self.reason:
            head += f" ({self.reason})"
        lines = [f"{head}: {_KIND_TITLES[self.kind]}"]
        if self.path:
            lines.append(f"  {self.path}")
        if self.cycle is not None:
            from cyclescope.report.text import render_group

            lines.extend("  " + line for line in render_group(self.cycle))
        if self.note:
            lines.append(f"  {self.note}")
        return "\n".join(lines)


def short_type_name_of(qualified: str) -> str:
    return qualified.rsplit(".", 1)[-1]


@dataclass
class WatchReport:
    """What :func:`check` found: findings of the three kinds, and how many were freed well."""

    findings: list[Finding] = field(default_factory=list)
    freed: int = 0  # watched objects freed by reference counting

    def of_kind(self, kind: str) -> list[Finding]:
        """The findings of one kind."""
        return [f for f in self.findings if f.kind == kind]

    def __bool__(self) -> bool:
        return bool(self.findings)

    def __str__(self) -> str:
        if not self.findings:
            return f"all {self.freed} watched object(s) freed by reference counting"
        parts = []
        for kind in (RETAINED, UNCOLLECTABLE, CYCLE):
            found = self.of_kind(kind)
            if found:
                parts.append(f"{len(found)} {kind}:")
                parts.extend(str(f) for f in found)
        return "\n".join(parts)


class _Watched:
    """A weak reference to a watched object, and whether the cyclic collector freed it."""

    __slots__ = ("ref", "address", "type", "reason", "freed_by_gc", "__weakref__")

    def __init__(self, obj: object, reason: str) -> None:
        self.address = id(obj)
        self.type = type_name(type(obj))
        self.reason = reason
        self.freed_by_gc = False
        try:
            self.ref = weakref.ref(obj, self._on_freed)
        except TypeError:
            raise TypeError(f"cannot watch a {short_type_name(type(obj))} object: its type does not support "
                            f"weak references (watch an object that owns it instead)") from None

    def _on_freed(self, _ref: object) -> None:
        self.freed_by_gc = _COLLECTING.active


class _CollectionFlag:
    """Whether a collection is running now: a weakref callback that fires during one
    means the object was freed by the cyclic collector, not by reference counting."""

    def __init__(self) -> None:
        self.active = False
        self.users = 0  # the watch list (while not empty) and each open expect_freed block
        self.callback = self.on_gc

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        self.active = phase == "start"

    def acquire(self) -> None:
        with _LOCK:
            self.users += 1
            if self.users == 1:
                gc.callbacks.append(self.callback)

    def release(self) -> None:
        with _LOCK:
            self.users = max(0, self.users - 1)
            if self.users == 0:
                while self.callback in gc.callbacks:
                    gc.callbacks.remove(self.callback)
                self.active = False


_LOCK = threading.RLock()
_COLLECTING = _CollectionFlag()
_WATCHED: list[_Watched] = []


def watch(obj: object, reason: str = "") -> None:
    """Watch ``obj``, which should be freed soon; :func:`check` reports it if it is not.

    Keeps only a weak reference; raises TypeError for an object that cannot be
    weakly referenced.
    """
    entry = _Watched(obj, reason)
    with _LOCK:
        if not _WATCHED:
            _COLLECTING.acquire()
        _WATCHED.append(entry)


def unwatch_all() -> None:
    """Forget every watched object (and take the watch list's gc callback away)."""
    with _LOCK:
        if _WATCHED:
            _WATCHED.clear()
            _COLLECTING.release()


def check() -> WatchReport:
    """Collect, then report every watched object that reference counting did not free.

    Clears the watch list.
    """
    with _LOCK:
        entries = list(_WATCHED)
        _WATCHED.clear()
    try:
        return _check(entries)
    finally:
        if entries:
            _COLLECTING.release()


def _check(entries: list[_Watched]) -> WatchReport:
    from cyclescope.capturing import capture

    report = WatchReport()
    already_late = [e for e in entries if e.ref() is None and e.freed_by_gc]
    with capture(keep=True, include_existing=True) as cap:
        gc.collect()
    garbage = cap.objects
    try:
        caught = {id(obj): obj for obj in garbage}
        alive: list[tuple[_Watched, object]] = []
        for entry in entries:
            obj = entry.ref()
            if obj is not None:
                alive.append((entry, obj))
            elif entry in already_late:
                report.findings.append(Finding(CYCLE, entry.type, entry.reason, note=(
                    "the automatic collector freed it before check(): run check() sooner, or wrap the code "
                    "in cyclescope.capture(), to see the cycle")))
            elif entry.address in caught and type_name(type(caught[entry.address])) == entry.type:
                group = _cycle_of(caught[entry.address], garbage)
                report.findings.append(Finding(CYCLE, entry.type, entry.reason, cycle=group))
            else:
                report.freed += 1
        obj = None  # a local of ours holding a survivor would hide its path
        del caught
        if alive:
            report.findings.extend(_explain_alive(alive))
        del alive
    finally:
        garbage.clear()
        del garbage
        cap.objects = []
        gc.collect()  # the cycles kept for the explanation are garbage again: free them now
    return report


def _cycle_of(obj: object, garbage: list[Any]) -> Group | None:
    """The analysed group of the strongly connected component of ``garbage`` holding ``obj``."""
    from cyclescope.explain.cycles import analyse
    from cyclescope.graph import build_graph, strongly_connected_components

    graph = build_graph(garbage)
    comp, _ncomp, _cyclic = strongly_connected_components(graph)
    node = next(i for i, o in enumerate(garbage) if o is obj)
    members = [o for i, o in enumerate(garbage) if comp[i] == comp[node]]
    groups = analyse(members).groups
    del members
    return groups[0] if groups else None


def _explain_alive(alive: list[tuple[_Watched, object]]) -> list[Finding]:
    from cyclescope.heap import snapshot

    snap = snapshot()
    findings = []
    for entry, obj in alive:
        paths = snap.retention_paths(obj) if snap.node_of(obj) is not None else []
        if not paths:
            findings.append(Finding(UNCOLLECTABLE, entry.type, entry.reason, note=(
                "no path from a root: only the caller's own references, or references the collector "
                "cannot see, keep it")))
            continue
        path = paths[0]
        kind = UNCOLLECTABLE if path.root_kind == "external" else RETAINED
        findings.append(Finding(kind, entry.type, entry.reason, path=str(path)))
    return findings


class expect_freed:
    """``with expect_freed(*objs): ...``: the objects must be freed by reference counting
    by the end of the block; raises :class:`NotFreedError` (an AssertionError) with the
    report otherwise. Only weak references are kept."""

    def __init__(self, *objs: object, reason: str = "") -> None:
        self._entries = [_Watched(obj, reason) for obj in objs]

    def __enter__(self) -> "expect_freed":
        _COLLECTING.acquire()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        entries, self._entries = self._entries, []
        try:
            if exc_type is not None:
                return  # the block's own error comes first
            report = _check(entries)
        finally:
            _COLLECTING.release()
        if report:
            raise NotFreedError(report)
