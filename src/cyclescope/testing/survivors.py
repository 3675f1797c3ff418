"""What a test left alive: instances of watched types, and asyncio tasks still pending.

Under the freeze strategy everything that existed before the test is frozen, and
``gc.get_objects()`` lists only the other generations: exactly the tracked
objects created (or first tracked) since. :func:`young_objects` relies on that;
callers must run it while the test's capture is active.

:func:`held_by` explains one survivor with the chain of references that keeps it,
walking referrers up to a module, a frame or a class; it scans the whole heap per
step, so it only runs when a survivor was found. Nothing here calls user code:
types are compared by identity or by name, and tasks are asked through asyncio's
own ``done()`` and ``get_coro()``.
"""

from __future__ import annotations

import gc
import sys
import types
import weakref
from dataclasses import dataclass
from typing import Any, Collection, Iterable, Sequence

from cyclescope._safe import is_a, module_namespace, type_mro
from cyclescope.describe import code_site, matches_any, short_type_name, type_name, type_names
from cyclescope.labels import label_edge

__all__ = ["TypeMatcher", "young_objects", "pending_tasks", "pending_task_ids", "may_have_pending_tasks",
           "PendingTask", "held_by"]

_MAX_REFERRER_SCANS = 40  # gc.get_referrers calls per explanation: each scans the heap


class TypeMatcher:
    """Matches objects by type: classes (with subclasses) or shell patterns on type names."""

    def __init__(self, specs: Iterable[object]) -> None:
        specs = list(specs)
        self.classes = tuple(s for s in specs if isinstance(s, type))
        self.patterns = tuple(s for s in specs if isinstance(s, str))
        bad = [s for s in specs if not isinstance(s, (type, str))]
        if bad:
            raise TypeError(f"types must be classes or name patterns, not {bad[0]!r}")

    def __bool__(self) -> bool:
        return bool(self.classes or self.patterns)

    def matches_type(self, tp: type) -> bool:
        """Whether instances of ``tp`` are matched: the type or one of its bases is named."""
        mro = type_mro(tp)
        if any(klass in mro for klass in self.classes):
            return True
        return bool(self.patterns) and any(matches_any(type_names(klass), self.patterns) for klass in mro)

    def matches_names(self, names: set[str]) -> bool:
        """Whether a type known only by its names (from a report) is matched."""
        return any(type_name(klass) in names for klass in self.classes) or matches_any(names, self.patterns)


def young_objects(exclude: Sequence[object] = ()) -> list[Any]:
    """Every tracked object outside the frozen generation, less those in ``exclude``."""
    if not exclude:
        return gc.get_objects()
    excluded = {id(o) for o in exclude}
    return [o for o in gc.get_objects() if id(o) not in excluded]


@dataclass(frozen=True)
class PendingTask:
    """An asyncio task that was not done when its test ended."""

    coroutine: str  # qualified name of its coroutine
    location: str  # where it was suspended (file:line), or ""

    @property
    def signature(self) -> str:
        """Stable across runs: the coroutine, not where it happened to be."""
        return f"pending task {self.coroutine}"


_found_task_bases: tuple[type, ...] = ()


def _task_bases() -> tuple[type, ...]:
    """asyncio's task classes (C and Python), once asyncio is imported (then remembered)."""
    global _found_task_bases
    if not _found_task_bases and "asyncio.tasks" in sys.modules:
        bases = (getattr(sys.modules.get("_asyncio"), "Task", None),
                 getattr(sys.modules.get("asyncio.tasks"), "_PyTask", None))
        _found_task_bases = tuple(b for b in bases if isinstance(b, type))
    return _found_task_bases


def pending_tasks(objects: Iterable[object]) -> list[PendingTask]:
    """The asyncio tasks among ``objects`` that are not done."""
    bases = _task_bases()
    if not bases:
        return []
    return [task for task in (_pending(obj, bases) for obj in objects) if task is not None]


def _pending(obj: object, bases: tuple[type, ...]) -> PendingTask | None:
    if not is_a(obj, bases):
        return None
    base = next(b for b in bases if b in type_mro(type(obj)))
    try:
        if base.done(obj):
            return None
        coro = base.get_coro(obj)
    except Exception:
        return None
    name = short_type_name(type(coro))
    location = ""
    if type(coro) in (types.CoroutineType, types.GeneratorType):
        name = coro.__qualname__
        frame = coro.cr_frame if type(coro) is types.CoroutineType else coro.gi_frame
        site = code_site(frame) if frame is not None else None
        location = site.location if site is not None else ""
    return PendingTask(name, location)


_found_registries: list[Collection[object]] | None = None


def _task_registries() -> list[Collection[object]] | None:
    """asyncio's own sets of live tasks (3.10-3.13), or None where they are not known."""
    global _found_registries
    if _found_registries is not None:
        return _found_registries
    tasks_module = sys.modules.get("asyncio.tasks")
    if tasks_module is None:
        return []  # no task can exist yet
    names = ("_scheduled_tasks", "_eager_tasks") if hasattr(tasks_module, "_scheduled_tasks") else ("_all_tasks",)
    found = [getattr(tasks_module, name, None) for name in names]
    if not all(isinstance(r, (set, weakref.WeakSet)) for r in found):
        return None
    _found_registries = found  # type: ignore[assignment]  # module attributes: looked up once
    return _found_registries


def pending_task_ids() -> list[tuple[int, str]]:
    """``(id, coroutine name)`` of every task asyncio's registry holds that is not done."""
    bases = _task_bases()
    found = []
    for registry in (_task_registries() or []) if bases else []:
        for task in list(registry):
            pending = _pending(task, bases)
            if pending is not None:
                found.append((id(task), pending.coroutine))
    return found


def may_have_pending_tasks() -> bool:
    """Whether any asyncio task in the process is not done, asked of asyncio's registry.

    Cheap where scanning objects is not: a test that left no task pending is told so
    without looking at what it allocated. True when the registry cannot tell.
    """
    registries = _task_registries()
    if registries is None:
        return True
    for registry in registries:
        # A WeakSet's own set of references: empty says "no task" without a Python-level __len__.
        if getattr(registry, "data", registry) and pending_tasks(list(registry)):
            return True
    return False


def _modules() -> list[types.ModuleType]:
    return [m for m in list(sys.modules.values()) if is_a(m, types.ModuleType)]


def _describe(obj: object) -> str:
    if is_a(obj, types.ModuleType):
        return f"module {module_namespace(obj).get('__name__', '?')}"  # type: ignore[arg-type]
    site = code_site(obj)
    if is_a(obj, types.FrameType) and site is not None:
        return f"frame of {site.function}() at {site.location}"
    return short_type_name(type(obj))


def held_by(obj: object, *, ignore: Sequence[object] = (), max_depth: int = 8) -> list[str]:
    """The chain of references keeping ``obj`` alive, from the nearest root, as text.

    For example ``["module myapp.cache", ".CACHE", "['https://...']", "ClientResponse"]``:
    a root's description, then each edge label, then the object's type. A root is a
    module (through its ``__dict__``), a frame, a class, or an object with no
    tracked referrer (held from C code). Empty when the walk ran out of budget.
    """
    ignored = {id(x) for x in ignore}
    scans = 0
    # Breadth-first from obj up its referrers; parents[id] = (referrer, child).
    frontier = [obj]
    parents: dict[int, tuple[object, object]] = {}
    seen = {id(obj)}
    ignored.add(id(frontier))
    ignored.add(id(parents))
    for _depth in range(max_depth):
        next_frontier: list[object] = []
        ignored.add(id(next_frontier))
        for node in frontier:
            if scans >= _MAX_REFERRER_SCANS:
                return []
            scans += 1
            referrers = gc.get_referrers(node)
            ignored.add(id(referrers))
            here = id(sys._getframe())  # an id: holding the frame in its own local would be a cycle
            for ref in referrers:
                if id(ref) in ignored or id(ref) in seen or id(ref) == here:
                    continue
                seen.add(id(ref))
                parents[id(ref)] = (ref, node)
                ignored.add(id(parents[id(ref)]))  # our own bookkeeping refers to ref too
                if _is_root(ref):
                    return _chain(ref, parents, obj)
                next_frontier.append(ref)
            del referrers
        if not next_frontier:
            return [f"{_describe(frontier[0])} (no tracked referrer: held from C code)"] if frontier else []
        frontier = next_frontier
    return []


def _is_root(obj: object) -> bool:
    if is_a(obj, types.FrameType) or is_a(obj, type):
        return True
    return type(obj) is dict and any(module_namespace(m) is obj for m in _modules())


def _chain(root: object, parents: dict[int, tuple[object, object]], target: object) -> list[str]:
    steps = [_root_name(root)]
    node, prev = root, None
    while node is not target:
        _, child = parents[id(node)]
        label = label_edge(node, child, prev).shown
        if type(node) is dict and steps[-1].startswith("module ") and label.startswith("['"):
            label = "." + label[2:-2]  # a module global reads better as an attribute
        steps.append(label)
        prev, node = node, child
    steps.append(short_type_name(type(target)))
    return steps


def _root_name(root: object) -> str:
    if type(root) is dict:
        for module in _modules():
            namespace = module_namespace(module)
            if namespace is root:
                return f"module {namespace.get('__name__', '?')}"
    if is_a(root, type):
        return f"class {type_name(root)}"
    return _describe(root)
