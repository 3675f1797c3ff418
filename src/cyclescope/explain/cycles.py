"""From captured objects to cycle groups.

1. Build the reference graph of the captured objects and its strongly connected
   components; every object not on a cycle is attributed to the nearest cyclic
   component that keeps it alive (it is freed with it).
2. For each cyclic component pick the most telling node (instances of user and
   library classes before exceptions, before callables and classes, before
   containers, frames, cells and tracebacks) and its shortest cycle.
3. Group components cheaply by the *shape* of that cycle (node types and edge
   positions), so only one component per shape is labelled: labelling cost
   grows with the number of groups, not with the number of objects.
4. Label each shape's cycle, derive its rotation-invariant signature, and merge
   shapes with equal signatures.

Only strings and numbers leave this module: the returned :class:`Analysis`
holds no reference to any captured object.
"""

from __future__ import annotations

import functools
import sys
import types
import weakref
from array import array
from dataclasses import dataclass, field
from typing import Any, Sequence

from cyclescope._safe import is_a, module_namespace
from cyclescope.describe import code_site, matches_any, type_module, type_name, type_names
from cyclescope.explain.fixes import advise, copy_advice
from cyclescope.explain.noise import is_noise
from cyclescope.graph import (
    attribute_acyclic,
    build_graph,
    component_totals,
    cycle_shapes,
    members_by_owner,
    node_ranks,
    representative_cycles,
    shape_totals,
    strongly_connected_components,
)
from cyclescope.labels import Label, fold_through, label_edge
from cyclescope.report.model import Group, Step, Totals, merge_groups

__all__ = ["AnalysisOptions", "Analysis", "analyse", "merge_analyses", "signature_of", "prepare"]

_MAX_TYPES_PER_GROUP = 8
_TYPE_NAME = type.__dict__["__name__"]


@dataclass(frozen=True)
class AnalysisOptions:
    """What to report: type filter (shell patterns) and whether to keep noise."""

    types: tuple[str, ...] = ()
    include_noise: bool = False
    also_noise: frozenset[str] = frozenset()  # top-level packages counted like the stdlib
    advise: bool = True  # classify each group and find its fix (explain.fixes)
    advice_cache: dict[str, Any] | None = field(default=None, compare=False, hash=False)  # by signature


@dataclass
class Analysis:
    """Groups and totals of one batch of captured objects (plain data only)."""

    groups: list[Group] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)


# -- node ranking -----------------------------------------------------------------------

_PLUMBING: frozenset[type] = frozenset(
    {
        dict, list, tuple, set, frozenset, bytearray,
        types.FrameType, types.TracebackType, types.CellType, types.CodeType,
        types.MappingProxyType, types.SimpleNamespace,
        types.GetSetDescriptorType, types.MemberDescriptorType,
        types.MethodDescriptorType, types.WrapperDescriptorType,
        weakref.ref, property,
    }
)
_CALLABLES: frozenset[type] = frozenset(
    {
        types.FunctionType, types.MethodType, types.BuiltinMethodType,
        types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType,
        types.ModuleType, staticmethod, classmethod, functools.partial,
    }
)


def _category(tp: type) -> int:
    """0: instances of user and library classes; 1: exceptions; 2: callables,
    coroutines, classes and modules; 3: containers, frames, cells, tracebacks."""
    if tp in _PLUMBING:
        return 3
    if tp in _CALLABLES or issubclass(tp, type):
        return 2
    if issubclass(tp, BaseException):
        return 1
    if type_module(tp) == "builtins":
        return 3
    return 0


def _is_exported(tp: type) -> bool:
    """Whether a package above the type's module exports it (``aiohttp.ClientResponse``).

    Users recognise ``aiohttp.ClientResponse`` sooner than the internal
    ``aiohttp.client_proto.ResponseHandler``; a cycle is best shown through the
    former. The defining module itself does not count: everything is in it.
    """
    module = type_module(tp)
    name = _TYPE_NAME.__get__(tp)
    if not module or name.startswith("_"):
        return False
    parts = module.split(".")
    for depth in range(1, len(parts)):
        package = sys.modules.get(".".join(parts[:depth]))
        if package is None:
            continue
        namespace = module_namespace(package)
        if type(namespace) is dict and dict.get(namespace, name) is tp:
            return True
    return False


def _type_matches(tp: type, patterns: tuple[str, ...]) -> bool:
    return matches_any(type_names(tp), patterns)


def _type_orders(type_list: list[type], patterns: tuple[str, ...]) -> tuple[array, array]:
    """Per type: the major order (category, then exported before internal; -1 for
    types a filter leaves out) and the minor order (qualified name)."""
    major = array("q", bytes(8 * len(type_list)))
    for i, tp in enumerate(type_list):
        category = _category(tp)
        exported = category == 0 and _is_exported(tp)
        major[i] = 2 * category + (0 if exported else 1)
        if patterns and not _type_matches(tp, patterns):
            major[i] = -1
    minor = array("q", bytes(8 * len(type_list)))
    for position, i in enumerate(sorted(range(len(type_list)), key=lambda i: type_name(type_list[i]))):
        minor[i] = position
    return major, minor


# -- labelling one cycle ----------------------------------------------------------------


def _describe_step(obj: object, label: Label) -> Step:
    tp = type(obj)
    module = type_module(obj) if is_a(obj, type) else type_module(tp)
    step = Step(
        type=type_name(tp),
        edge=label.shown,
        edge_kind=label.kind,
        module=module if module and module != "builtins" else None,
    )
    if is_a(obj, type):
        step.detail = type_name(obj)
    elif is_a(obj, types.ModuleType):
        step.detail = _module_name(obj)
    site = code_site(obj)
    if site is not None:
        step.function = site.function
        step.site = site.location
        if is_a(obj, (types.FrameType, types.TracebackType)):
            step.source = site.source or None
        if is_a(obj, types.FrameType):
            step.location = site.location
    return step


def _at_traceback_line(step: Step, tb: types.TracebackType) -> None:
    """Show a frame reached from a traceback at the line the exception passed through
    (``f_lineno`` of a finished frame is where it stopped, often an ``except`` line)."""
    site = code_site(tb)
    if site is not None:
        step.location = site.location
        step.source = site.source or None


def _module_name(module: types.ModuleType) -> str:
    name = dict.get(module_namespace(module), "__name__")
    return name if type(name) is str else "?"


def _labelled_cycle(objects: Sequence[object]) -> tuple[list[Step], list[str], list[object]]:
    """Steps, their folded signature tokens, and the object of each step, for a cycle of objects."""
    k = len(objects)
    labels = [label_edge(objects[i], objects[(i + 1) % k], objects[i - 1]) for i in range(k)]
    steps: list[Step] = []
    tokens: list[str] = []
    step_objects: list[object] = []
    i = 0
    while i < k:
        obj, label = objects[i], labels[i]
        merged = fold_through(label, labels[i + 1]) if i + 1 < k else None
        if merged is not None:
            label = merged
            i += 1  # the dict or args tuple in between is folded into this step
        elif label.kind == "key" and is_a(obj, dict) and _one_of_many(obj, objects[(i + 1) % k]):  # type: ignore[arg-type]
            label = Label(label.shown, "[key]", label.kind)
        step = _describe_step(obj, label)
        before, before_label = objects[i - 1], labels[i - 1]
        if is_a(obj, types.FrameType) and is_a(before, types.TracebackType) and before_label.shown == ".tb_frame":
            _at_traceback_line(step, before)
        steps.append(step)
        step_objects.append(obj)
        tokens.append(_signature_token(obj, step, label))
        i += 1
    return steps, _fold_repeats(tokens), step_objects


#: Past this many values a dict's key is taken for data, whatever the types.
_SCAN_LIMIT = 10_000


def _one_of_many(container: dict, value: object) -> bool:
    """Whether ``value`` is one of several values of its exact type in ``container``
    (or the dict is too large to tell). Which of them a cycle is shown through is then
    chance: the dict's insertion order, say, from a set iterated in hash order (aiohttp's
    routes by method: 'COPY' in one run, 'SUBSCRIBE' in the next). Its key must not split
    the signature, or a baseline would not know the same cycle the next day."""
    tp = type(value)
    found = 0
    for n, other in enumerate(dict.values(container)):
        if n >= _SCAN_LIMIT:
            return True
        if type(other) is tp:
            found += 1
            if found > 1:
                return True
    return False


def _signature_token(obj: object, step: Step, label: Label) -> str:
    # A traceback's function is left out: how deep a traceback chain runs depends
    # on where the exception was caught, which varies between occurrences. The
    # frame the chain ends in names the function that matters.
    token = step.type
    name = None if is_a(obj, types.TracebackType) else (step.function or step.detail)
    if name:
        token += f"({name})"
    return f"{token} {label.folded}"


_TRACEBACK_CHAIN = "traceback .tb_next"


def _fold_repeats(tokens: list[str]) -> list[str]:
    """Collapse each run of ``traceback .tb_next`` steps into one token."""
    if len(tokens) < 2:
        return tokens
    return [t for i, t in enumerate(tokens) if not (t == _TRACEBACK_CHAIN and tokens[i - 1] == _TRACEBACK_CHAIN)]


def signature_of(tokens: list[str]) -> str:
    """Rotation-invariant signature: the smallest rotation of the token sequence."""
    if not tokens:
        return ""
    best = min(tuple(tokens[i:] + tokens[:i]) for i in range(len(tokens)))
    return " -> ".join(best)


# -- the pipeline ----------------------------------------------------------------------


def prepare() -> None:
    """Load now what the first analysis would load on demand (frame readers, ctypes, the
    known-issue database), for a caller that must not charge it to whatever makes the
    first cycle: the pytest plugin, whose per-test figures it would skew."""
    from cyclescope import _framelocals  # noqa: F401
    from cyclescope._safe import load_c_api
    from cyclescope.explain.known import load_database

    load_c_api()
    try:
        load_database()
    except Exception:  # noqa: BLE001 - a broken database is reported by the analysis that needs it
        pass


def analyse(objects: Sequence[Any], options: AnalysisOptions = AnalysisOptions()) -> Analysis:
    """Find, explain and group the cycles among ``objects`` (captured garbage)."""
    n = len(objects)
    if n == 0:
        return Analysis()
    graph = build_graph(objects)
    comp, ncomp, cyclic = strongly_connected_components(graph)
    owner = attribute_acyclic(graph, comp, cyclic)
    comp_size, held_objects, held_bytes = component_totals(graph, comp, ncomp, owner)

    type_major, type_minor = _type_orders(graph.types, options.types)
    rank = node_ranks(graph, comp, type_major, type_minor)
    starts, cycle_nodes, cycle_edges = representative_cycles(graph, comp, ncomp, cyclic, rank)
    shape_of, first_of_shape = cycle_shapes(graph, ncomp, starts, cycle_nodes, cycle_edges)

    count, shape_objects, shape_bytes = shape_totals(shape_of, len(first_of_shape), held_objects, held_bytes)
    member_starts, members = members_by_owner(graph, owner, ncomp)

    groups: list[Group] = []
    for shape, c in enumerate(first_of_shape):
        cycle = [objects[v] for v in cycle_nodes[starts[c] : starts[c + 1]]]
        steps, tokens, step_objects = _labelled_cycle(cycle)
        group = Group(
                count=count[shape],
                objects=shape_objects[shape],
                bytes=shape_bytes[shape],
                signature=signature_of(tokens),
                cycle=steps,
                cycle_objects=starts[c + 1] - starts[c],
                component_objects=comp_size[c],
                types=_common_types(graph, members[member_starts[c] : member_starts[c + 1]]),
                noise=is_noise(steps, options.also_noise),
            )
        if options.advise and (options.include_noise or not group.noise):
            cached = options.advice_cache.get(group.signature) if options.advice_cache is not None else None
            if cached is not None:
                copy_advice(cached, group)
            else:
                advise(group, step_objects)
                if options.advice_cache is not None:
                    options.advice_cache[group.signature] = group
        del cycle, step_objects
        groups.append(group)
    cyclic_components = cyclic.count(1)
    totals = Totals(
        captured_objects=n,
        captured_bytes=graph.total_size,
        cyclic_components=cyclic_components,
        filtered_out_components=cyclic_components - sum(count),
    )
    return _finish(merge_groups(groups), totals, options)


def _common_types(graph: Any, nodes: array) -> dict[str, int]:
    """The most common types among ``nodes``, by count."""
    per: dict[int, int] = {}
    type_ids = graph.type_ids
    for node in nodes:
        t = type_ids[node]
        per[t] = per.get(t, 0) + 1
    top = sorted(per.items(), key=lambda item: -item[1])[:_MAX_TYPES_PER_GROUP]
    return {type_name(graph.types[t]): k for t, k in top}


def _finish(groups: list[Group], totals: Totals, options: AnalysisOptions) -> Analysis:
    if not options.include_noise:
        kept = [g for g in groups if not g.noise]
        hidden = [g for g in groups if g.noise]
        totals.hidden_noise_groups = len(hidden)
        totals.hidden_noise_objects = sum(g.objects for g in hidden)
        groups = kept
    return Analysis(groups=groups, totals=totals)


def merge_analyses(parts: list[Analysis]) -> Analysis:
    """Combine the analyses of successive batches of one capture."""
    if len(parts) == 1:
        return parts[0]  # the common case: nothing to combine
    totals = Totals()
    for part in parts:
        totals.add(part.totals)
    groups = merge_groups(g for part in parts for g in part.groups)
    return Analysis(groups=groups, totals=totals)
