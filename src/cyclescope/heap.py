"""Heap snapshots: why is an object still alive, and what keeps the most memory alive.

``snap = cyclescope.snapshot()`` records every object the collector can see (the
tracked objects, frozen ones included, and the untracked objects they refer to, for
sizes) as a compact graph: integer nodes, types and sizes in arrays, references in
CSR arrays. It holds no reference to any object of the heap, so taking one never
keeps anything alive; queries name objects again by walking the live heap.

Roots, in the order a path prefers them:

* ``module NAME``: every module in ``sys.modules`` (and roots the caller names);
* ``asyncio task coro()``: every task asyncio's registry knows and that is not done;
* ``local 'x' in f() at file:line (thread T)``: the named locals of every frame on
  every thread's stack (read without touching ``f_locals``);
* ``held from outside the heap``: an object whose reference count exceeds the
  references the graph can see: held from C (an extension's state, a type without
  ``tp_traverse``) or by the interpreter. These are reported with their types,
  never hidden; only what no named root reaches gets its path from one of them
  (module dicts, held by running frames, are such objects too).

A retention path is the shortest chain of labelled references from a root to an
object, e.g. ``module myapp.cache -> .CACHE -> ['https://x'] -> ClientResponse``.
Labels are computed only for the edges shown, by finding each object of the path
again among the live referents of the previous one: when the heap changed since
the snapshot and a step is gone, the path says so (``stale``).
"""

from __future__ import annotations

import bisect
import gc
import os
import sys
import threading
import time
import types
import weakref
from array import array
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from cyclescope import _framelocals, heapalgo
from cyclescope._safe import instance_dict, is_a
from cyclescope.describe import code_site, matches_any, named_type, short_type_name, type_name
from cyclescope.report.model import GrowthEntry, Survivor
from cyclescope.testing.survivors import pending_task_ids
from cyclescope.heapgraph import HeapGraph, build_heap_graph
from cyclescope.labels import Label, fold_through, label_edge

__all__ = ["snapshot", "growth", "Snapshot", "RetentionPath", "PathStep", "Retainer", "TypeGrowth", "SnapshotDiff"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_PACKAGE = __name__.partition(".")[0]
_PROGRESS_FROM = 1_000_000  # heaps this large take long enough to say so
_MAX_PATH_SEARCH = 64  # backward steps tried per extra path when enumerating distinct paths
_SAMPLE_POOL = 8  # diff(): candidates looked at per sample path wanted


@dataclass(frozen=True)
class PathStep:
    """One object on a retention path and how the previous step refers to it."""

    type: str  # qualified type name
    label: str  # the reference from the previous step ("" for the root itself)
    shape: str = ""  # the label with positions folded ("[i]"); keys are kept


@dataclass
class RetentionPath:
    """The chain of references from a root to an object."""

    root: str  # "module myapp.cache", "local 'x' in f() at app.py:3 (thread MainThread)", ...
    root_kind: str  # "module", "local", "task" or "external"
    steps: list[PathStep]
    stale: bool = False  # the heap changed since the snapshot: a step could not be found again

    def signature(self) -> str:
        """The path's shape: what objects retained the same way have in common (the
        root, and each step with sequence positions folded: the 20 responses of one
        list share it; dict keys are kept, as they name what holds the object)."""
        return " -> ".join([self.root] + [f"{step.shape} {step.type}" for step in self.steps[1:]])

    def __str__(self) -> str:
        parts = [self.root]
        for step in self.steps[1:]:
            parts.append(step.label)
        if self.root_kind != "external" or len(self.steps) > 1:  # an external root names its type
            parts.append(short_type_name_of(self.steps[-1].type) if self.steps else "?")
        text = " -> ".join(parts)
        return text + (" (the heap changed since the snapshot)" if self.stale else "")


def short_type_name_of(qualified: str) -> str:
    """``aiohttp.client_reqrep.ClientResponse`` -> ``ClientResponse``."""
    return qualified.rsplit(".", 1)[-1]


@dataclass
class Retainer:
    """An object that keeps memory alive: what it alone holds (its dominator subtree)."""

    type: str
    retained_bytes: int
    retained_objects: int
    path: RetentionPath | None  # how the retainer itself is reached

    def __str__(self) -> str:
        from cyclescope.report.text import format_bytes

        where = str(self.path) if self.path is not None else f"{self.type} (no path from a root)"
        return f"{format_bytes(self.retained_bytes)} in {self.retained_objects:,} objects: {where}"


@dataclass
class TypeGrowth:
    """New objects of one type between two snapshots."""

    type: str
    count: int  # objects of the type in the newer snapshot that the older did not have
    bytes: int
    net_count: int  # newer total minus older total
    sample_paths: list[RetentionPath] = field(default_factory=list)


@dataclass
class SnapshotDiff:
    """What a newer snapshot holds that an older one did not, by type."""

    types: list[TypeGrowth]
    new_objects: int
    new_bytes: int

    def entries(self) -> list[GrowthEntry]:
        """The report model's form (``Report.growth``)."""
        return [GrowthEntry(g.type, g.count, g.bytes, g.net_count, [str(p) for p in g.sample_paths])
                for g in self.types]

    def __str__(self) -> str:
        lines = [f"{self.new_objects:,} new objects, {self.new_bytes:,} B"]
        for growth in self.types:
            lines.append(f"  {growth.type:50s} +{growth.count:<8,} {growth.bytes:>12,} B  (net {growth.net_count:+,})")
            lines.extend(f"      {path}" for path in growth.sample_paths)
        return "\n".join(lines)


@dataclass(frozen=True)
class _Root:
    node: int
    kind: str
    name: str


def snapshot(*, roots: Mapping[str, object] | None = None,
             progress: Callable[[str], None] | None = None,
             exclude: Iterable[object] = ()) -> "Snapshot":
    """Take a snapshot of the heap (see the module docstring).

    ``roots`` names more roots, preferred like modules: ``{"module __main__ (app.py)": module}``
    for a program whose module is not in ``sys.modules``. ``progress`` is called with a
    short message before a long snapshot. ``exclude``: the caller's own objects, left
    out like cyclescope's module state (no path goes through them, so what only they
    hold is never reached: a capture whose store still holds the garbage, say).
    """
    return Snapshot._take(dict(roots or {}), progress, [id(obj) for obj in exclude])


_last_growth: list["Snapshot"] = []
_LIVE_SNAPSHOTS: "weakref.WeakSet[Snapshot]" = weakref.WeakSet()


def growth(*, top: int = 10, samples: int = 3) -> SnapshotDiff | None:
    """What the heap gained since the previous call, by type, with sample retention
    paths for the fastest-growing types; None on the first call (it sets the baseline).
    Keeps the last snapshot (about 40 bytes per object) until the next call."""
    current = snapshot()
    previous = _last_growth[:1]
    _last_growth[:] = [current]
    if not previous:
        return None
    return current.diff(previous[0], top=top, samples=samples)


class Snapshot:
    """A compact graph of the heap at one moment; queries answer about live objects."""

    def __init__(self, graph: HeapGraph, roots: list[_Root], external: array, blocked: bytearray,
                 taken_at: float) -> None:
        self.n = graph.n
        self.total_size = graph.total_size
        self.taken_at = taken_at
        self._graph = graph
        named = [named_type(tp) for tp in graph.types]
        self.type_names = [qualified for qualified, _ in named]
        self._type_aliases = [aliases for _, aliases in named]  # what --watch patterns match
        graph.types = []  # names only: the snapshot must not keep classes alive
        self._roots = roots  # the named ones; the external roots are only node ids
        self._external = external
        self._root_of: dict[int, _Root] = {}
        for root in roots:
            self._root_of.setdefault(root.node, root)
        self._blocked = blocked
        self._bfs: tuple[array, array] | None = None
        self._dominators: tuple[array, array, array] | None = None
        self._reverse: tuple[array, array] | None = None  # (roffsets, rtargets), for n > 1 paths

    # -- taking one ----------------------------------------------------------------

    @staticmethod
    def _take(extra_roots: dict[str, object], progress: Callable[[str], None] | None,
              excluded: list[int]) -> "Snapshot":
        # (Static: a classmethod's call makes a bound method, which on 3.10 sits on the
        # caller's value stack, where no frame reader sees it: a new object "held from
        # outside" in every diff.)
        taken_at = time.time()
        frames = sys._current_frames()
        named = [(name, id(obj), is_a(obj, types.ModuleType)) for name, obj in extra_roots.items()]
        seeds = gc.get_objects()
        if progress is not None and len(seeds) >= _PROGRESS_FROM:
            progress(f"snapshot of {len(seeds):,} objects...")
        # Earlier snapshots still alive are the analysis's own objects too, with all they
        # hold, and so are cyclescope's module namespaces: its caches (parsed sources for
        # fix hints, ...) would otherwise be the heap's growth after every report.
        own = {id(seeds), id(frames), *(id(snap) for snap in list(_LIVE_SNAPSHOTS)), *_own_namespaces(),
               *excluded}
        seeds.append(sys.modules)
        seeds.extend(frames.values())
        seeds.extend(extra_roots.values())
        extra_roots.clear()
        graph = build_heap_graph(seeds)
        own_frames = [f for f in _stack_frames(frames) if _is_own_frame(f)]
        own.update(id(f) for f in own_frames)
        # What cyclescope's own running code holds in its locals (a watch list's survivors,
        # the user's progress callback) is no root: a running frame's locals are no
        # referents of it (3.11+), so they would come out "held from outside" and hide
        # the path the user needs to see. They stay nodes: the user's own references to
        # them are paths like any other.
        own_locals = list({address for frame in own_frames
                           for _name, _kind, address in _framelocals.frame_local_ids(frame) or []} - own)
        candidates = _root_candidates(frames, named)
        del seeds, frames, own_frames
        own_list = list(own)
        nodes = heapalgo.positions(graph.addresses,
                                   array("q", own_list + own_locals + [c[0] for c in candidates]))
        blocked = bytearray(graph.n)
        for node in nodes[: len(own_list)]:
            if node >= 0:
                blocked[node] = 1
        external = _external_roots(graph)
        for node in set(nodes[len(own_list): len(own_list) + len(own_locals)]):
            k = bisect.bisect_left(external, node)  # (in node order)
            if k < len(external) and external[k] == node:
                del external[k]
        roots = [_Root(node, kind, name)
                 for node, (_address, kind, name) in zip(nodes[len(own_list) + len(own_locals):], candidates)
                 if node >= 0 and not blocked[node]]
        snap = Snapshot(graph, roots, external, blocked, taken_at)
        _LIVE_SNAPSHOTS.add(snap)
        return snap

    # -- looking objects up --------------------------------------------------------

    def node_of(self, obj: object) -> int | None:
        """The node of live ``obj``, or None when it was not in the heap then."""
        node = heapalgo.positions(self._graph.addresses, array("q", [id(obj)]))[0]
        if node < 0 or self.type_names[self._graph.type_ids[node]] != type_name(type(obj)):
            return None  # an id reused by an object made since the snapshot
        return node

    def _require(self, obj: object) -> int:
        node = self.node_of(obj)
        if node is None:
            raise ValueError(f"this {short_type_name(type(obj))} object was not in the heap when the snapshot was taken")
        return node

    def type_totals(self) -> dict[str, tuple[int, int]]:
        """Per type name: (objects, bytes)."""
        names, group_of = _name_groups(self.type_names, {})
        counts, nbytes, _ = heapalgo.group_totals(self._graph.type_ids, group_of, len(names), self._graph.sizes)
        return {name: (counts[g], nbytes[g]) for g, name in enumerate(names)}

    # -- retention paths -------------------------------------------------------------

    def _search(self) -> tuple[array, array]:
        """Shortest paths from the named roots; only what they do not reach gets its path
        from an object held from outside the heap. (Module dicts are held from outside
        too, by running frames: a path through them must still start at the module.)"""
        if self._bfs is None:
            self._bfs = self._search_from(self._external)
        return self._bfs

    def _search_from(self, fallback: array) -> tuple[array, array]:
        """The search from the named roots, then from ``fallback`` for the rest."""
        graph = self._graph
        named = array("q", (root.node for root in self._roots))
        return heapalgo.bfs(graph.n, graph.offsets, graph.targets, named, self._blocked, fallback=fallback)

    def retention_paths(self, obj: object, n: int = 1) -> list[RetentionPath]:
        """Up to ``n`` distinct shortest labelled paths from a root to ``obj``.

        Empty when nothing reaches ``obj`` from a root (it is garbage, or held only
        by the caller's own analysis).
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        target = self._require(obj)
        parent, dist = self._search()
        if dist[target] < 0:
            return []
        chains = [self._parent_chain(target, parent)]
        if n > 1:
            chains += self._other_chains(target, parent, dist, n - 1, chains[0])
        return self._label_all(chains, obj)

    def _parent_chain(self, target: int, parent: array) -> list[int]:
        chain = [target]
        while parent[chain[-1]] >= 0:
            chain.append(parent[chain[-1]])
        chain.reverse()
        return chain

    def _other_chains(self, target: int, parent: array, dist: array, wanted: int,
                      first: list[int]) -> list[list[int]]:
        """More shortest chains to ``target``, each differing from those found before.

        When the first one starts at a named root, so do the others: the distances of
        what the named roots reach count from them, and an object held from outside
        that refers into it (the function running a module's body refers to the
        module's dict) would otherwise pass for a root just as near."""
        found: list[list[int]] = []
        seen = {tuple(first)}
        stack: list[list[int]] = [[target]]
        steps = 0
        named_only = first[0] in self._root_of
        from_named: dict[int, bool] = {}

        def eligible(u: int) -> bool:
            if self._blocked[u]:
                return False
            if named_only and u not in from_named:
                from_named[u] = self._parent_chain(u, parent)[0] in self._root_of
            return not named_only or from_named[u]

        while stack and len(found) < wanted and steps < _MAX_PATH_SEARCH * wanted:
            steps += 1
            partial = stack.pop()
            head = partial[-1]
            if dist[head] == 0:
                chain = list(reversed(partial))
                if tuple(chain) not in seen:
                    seen.add(tuple(chain))
                    found.append(chain)
                continue
            preds = [u for u in self._referrers(head) if dist[u] == dist[head] - 1 and eligible(u)]
            stack.extend(partial + [u] for u in reversed(preds))
        return found

    def _referrers(self, node: int) -> Sequence[int]:
        """The nodes with an edge to ``node``, from the reverse graph (built on first use:
        8 bytes per edge; each later answer is a slice)."""
        if self._reverse is None:
            graph = self._graph
            self._reverse = heapalgo.transpose(graph.n, graph.offsets, graph.targets)
        roffsets, rtargets = self._reverse
        return rtargets[roffsets[node]:roffsets[node + 1]]

    def _label_all(self, chains: list[list[int]], hint: object = None) -> list[RetentionPath]:
        """The labelled paths of ``chains`` (``hint``: a live object one of them may start at)."""
        starts = self._live_starts(chains, hint)
        return [self._label(chain, starts) for chain in chains]

    def _live_starts(self, chains: Iterable[list[int]], hint: object = None) -> dict[int, object]:
        """The live objects that ``chains`` start at, by node (those with an edge to label):
        a module or ``hint`` as they are, any other found again in one pass over the heap,
        however many there are (a pass costs about 45 ms at a million objects)."""
        graph = self._graph
        found: dict[int, object] = {}
        missing: dict[int, None] = {}
        for chain in chains:
            start = chain[0]
            if len(chain) < 2 or start in found or start in missing:
                continue  # (a root with no edge to label needs no finding again)
            obj = _known_start(self._root_of.get(start), graph.addresses[start], hint)
            if obj is None:
                missing[start] = None
            else:
                found[start] = obj
        if missing:
            objects = gc.get_objects()
            # The comparison runs in C: a Python loop over a million objects took 150 ms.
            where = heapalgo.object_positions(objects, array("q", (graph.addresses[v] for v in missing)))
            for node, k in zip(missing, where):
                if k >= 0 and type_name(type(objects[k])) == self.type_names[graph.type_ids[node]]:
                    found[node] = objects[k]
            del objects
        return found

    def _label(self, chain: list[int], starts: dict[int, object]) -> RetentionPath:
        """The labelled path of ``chain``; ``starts`` from :meth:`_live_starts`."""
        graph = self._graph
        root = self._root_of.get(chain[0])
        kind, name = (root.kind, root.name) if root is not None else ("external", "?")
        names = [self.type_names[graph.type_ids[v]] for v in chain]
        labels: list[Label] = []  # labels[i - 1]: the edge into chain[i]
        current = starts.get(chain[0]) if len(chain) > 1 else None
        prev: object = None
        stale = current is None and len(chain) > 1
        for i, node in enumerate(chain[1:], start=1):
            following = None
            if current is not None:
                following = _find_referent(current, graph.addresses[node], names[i],
                                           self._edge_position(chain[i - 1], node))
            if following is None:
                stale = stale or current is not None
                labels.append(Label.same(f"? ({short_type_name_of(names[i])})", "referent"))
                prev, current = None, None
                continue
            labels.append(label_edge(current, following, prev))
            prev, current = current, following
        if kind == "external":
            name = f"held from outside the heap: {short_type_name_of(names[0])}"
        return RetentionPath(name, kind, _steps(names, labels), stale)

    def _edge_position(self, source: int, target: int) -> int:
        """Where ``target`` is among ``source``'s successors (-1 if it is not)."""
        graph = self._graph
        start, end = graph.offsets[source], graph.offsets[source + 1]
        if end - start > 64:  # a C-speed search in the big case
            return heapalgo.positions(graph.targets[start:end], array("q", [target]))[0]
        for k in range(start, end):
            if graph.targets[k] == target:
                return k - start
        return -1

    # -- dominators ---------------------------------------------------------------------

    def _dominator_tree(self) -> tuple[array, array, array]:
        if self._dominators is None:
            graph = self._graph
            sources = array("q", (root.node for root in self._roots)) + self._external
            idom, order = heapalgo.dominators(graph.n, graph.offsets, graph.targets, sources, self._blocked)
            retained = heapalgo.retained_sizes(idom, order, graph.sizes)
            self._dominators = (idom, order, retained)
        return self._dominators

    def retained_size(self, obj: object) -> int:
        """Bytes that would be freed if ``obj`` were: its own and every object only it keeps alive."""
        node = self._require(obj)
        return self._dominator_tree()[2][node]

    def top_retainers(self, n: int = 10) -> list[Retainer]:
        """The ``n`` objects that alone keep the most bytes alive (roots themselves left out)."""
        idom, order, retained = self._dominator_tree()
        counts = self._dominated_counts(idom, order)
        # Roots (and what only the virtual root dominates) hold everything below them:
        # skipped, so the answer names objects. At most len(roots) of them can come first.
        # A module's __dict__ holds what the module holds: the module's answer, not an object's.
        modules = {root.node for root in self._roots if root.kind == "module"}
        candidates = heapalgo.top_indices(retained, n + len(self._roots) + len(self._external))
        chosen = [node for node in candidates
                  if idom[node] >= 0 and not (idom[node] in modules and self.type_names[self._graph.type_ids[node]] == "dict")
                  ][:n]
        paths = self._paths_to_nodes(chosen)
        return [Retainer(self.type_names[self._graph.type_ids[node]], retained[node], counts[node], path)
                for node, path in zip(chosen, paths)]

    def _dominated_counts(self, idom: array, order: array) -> array:
        """Per node, how many objects it dominates (itself included)."""
        return heapalgo.retained_sizes(idom, order, array("q", [1]) * self.n)

    def _paths_to_nodes(self, nodes: Sequence[int]) -> list[RetentionPath | None]:
        """The shortest labelled path to each of ``nodes`` (None where no root reaches it)."""
        parent, dist = self._search()
        chains = [self._parent_chain(node, parent) if dist[node] >= 0 else None for node in nodes]
        starts = self._live_starts(chain for chain in chains if chain is not None)
        return [self._label(chain, starts) if chain is not None else None for chain in chains]

    def survivors(self, patterns: Iterable[str], *, paths: int = 20) -> list[Survivor]:
        """Every object of a type matching ``patterns`` (qualified or bare class names,
        shell wildcards), by kind: "retained" from a root, "uncollectable" (the path
        starts at an object held from outside the heap) or "cycle" (no path at all:
        garbage that only the cyclic collector frees). Objects get labelled paths and are
        grouped by the path's shape (sequence positions folded: a list's 20 responses
        are one group, shown by one example). Types with the most objects come first, each
        labelled until it has ``paths`` shapes or ``50 * paths`` objects are labelled
        (``100 * paths`` in all, about 0.1 ms each); the rest are counted by kind, after the
        groups, without a path."""
        patterns = tuple(patterns)
        group_of = array("q", (0 if matches_any(names, patterns) else -1 for names in self._type_aliases))
        if 0 not in group_of:
            return []
        graph = self._graph
        visible = self._blocked.translate(_FLIP)
        found, _, _ = heapalgo.group_totals(graph.type_ids, group_of, 1, graph.sizes, mask=visible)
        _, _, nodes = heapalgo.group_totals(graph.type_ids, group_of, 1, graph.sizes, mask=visible,
                                            samples=found[0])
        parent, dist = self._search()
        by_type: dict[int, list[int]] = {}
        for node in nodes:
            by_type.setdefault(graph.type_ids[node], []).append(node)
        # The most numerous type is the likeliest leak: it is labelled first, and one type's
        # many shapes (20 enum members, say) cannot use up the others' labels.
        per_type = sorted(by_type.values(), key=len, reverse=True)
        # What will be labelled (the starts of their paths are found in one pass): a first
        # few of every type, then more of the most numerous ones.
        reached = [[node for node in members if dist[node] >= 0] for members in per_type]
        budget = 100 * paths
        chosen = [node for nodes_of_type in reached for node in nodes_of_type[:paths]][:budget]
        for nodes_of_type in reached:
            room = min(49 * paths, budget - len(chosen))  # (50 * paths of one type at most)
            if room <= 0:
                break
            chosen += nodes_of_type[paths: paths + room]
        starts = self._live_starts(self._parent_chain(node, parent) for node in chosen)
        to_label = set(chosen)
        groups: dict[tuple[str, str, str], list[Any]] = {}  # key -> [count, example path]
        for members in per_type:
            shapes = 0
            for node in members:
                name = self.type_names[graph.type_ids[node]]
                if dist[node] < 0:
                    key, example = (name, "cycle", ""), ""
                elif shapes < paths and node in to_label:
                    path = self._label(self._parent_chain(node, parent), starts)
                    kind = "uncollectable" if path.root_kind == "external" else "retained"
                    key, example = (name, kind, path.signature()), str(path)
                    shapes += key not in groups
                else:
                    start = self._parent_chain(node, parent)[0]
                    key, example = (name, "retained" if start in self._root_of else "uncollectable", ""), ""
                groups.setdefault(key, [0, example])[0] += 1
        order = sorted(groups.items(), key=lambda item: (not item[0][2], -item[1][0], item[0]))
        return [Survivor(type=t, kind=k, count=count, path=example) for (t, k, _), (count, example) in order]

    def unmatched(self, patterns: Iterable[str]) -> list[str]:
        """The ``patterns`` (as for :meth:`survivors`) that no live object's type matches:
        a misspelt type name, or a type with no object left."""
        each_type = array("q", range(len(self._type_aliases)))
        counts, _, _ = heapalgo.group_totals(self._graph.type_ids, each_type, len(each_type), self._graph.sizes,
                                             mask=self._blocked.translate(_FLIP))
        live = [aliases for aliases, count in zip(self._type_aliases, counts) if count]
        return [pattern for pattern in patterns if not any(matches_any(names, (pattern,)) for names in live)]

    # -- comparing snapshots ------------------------------------------------------------

    def diff(self, older: "Snapshot", *, top: int = 10, samples: int = 3) -> SnapshotDiff:
        """Objects this snapshot holds that ``older`` did not, by type, largest first;
        for the ``top`` types, and as many classes beyond them from neither builtins nor the
        standard library, a few retention paths of their new objects (those still alive).
        Objects gc does not track that only C code holds (a type's name, say) are left out:
        ``older`` could not have seen them."""
        graph, old = self._graph, older._graph
        before = heapalgo.positions(old.addresses, graph.addresses)  # each node's index in older, or -1
        dist = self._search()[1]
        # Type names are what persists between snapshots: both are grouped by one numbering.
        group_ids: dict[str, int] = {}
        names, group_of = _name_groups(self.type_names, group_ids)
        names, old_group_of = _name_groups(older.type_names, group_ids)
        # New: not in older, or its address reused by an object of another type; garbage,
        # and what only the analysis itself holds, are not reached (dist < 0).
        new = heapalgo.new_nodes(before, graph.type_ids, group_of, old.type_ids, old_group_of,
                                 self._seen_by_both(dist))
        # A few candidates per type, for samples that start at a named root where any do.
        pool = samples * _SAMPLE_POOL
        counts, nbytes, firsts = heapalgo.group_totals(graph.type_ids, group_of, len(names), graph.sizes,
                                                       mask=new, samples=pool)
        now, _, _ = heapalgo.group_totals(graph.type_ids, group_of, len(names), graph.sizes)
        then, _, _ = heapalgo.group_totals(old.type_ids, old_group_of, len(names), old.sizes)
        growth = [TypeGrowth(name, counts[g], nbytes[g], now[g] - then[g])
                  for g, name in enumerate(names) if counts[g]]
        growth.sort(key=lambda item: (-item.count, -item.bytes, item.type))
        parent, _ = self._search()
        chosen = []
        sampled = _sampled_types(growth, top)
        for item in sampled:
            g = group_ids[item.type]
            candidates = [v for v in firsts[g * pool:(g + 1) * pool] if v >= 0]
            # Objects held only from outside the heap (interned strings, say) say least.
            candidates.sort(key=lambda v: self._parent_chain(v, parent)[0] not in self._root_of)
            chosen.append(candidates[:samples])
        paths = iter(self._paths_to_nodes([v for nodes in chosen for v in nodes]))
        for item, nodes in zip(sampled, chosen):
            item.sample_paths = [p for p in (next(paths) for _ in nodes) if p is not None]
        return SnapshotDiff(growth, sum(g.count for g in growth), sum(g.bytes for g in growth))

    def _seen_by_both(self, dist: array) -> array:
        """``dist`` less what gc does not track and only C holds (a type's name, a code
        object's constants): an older snapshot saw such an object only if something it
        traversed referred to it, so being new says nothing of it (a live snapshot's type
        names make hundreds of them nodes). What the named roots and the tracked objects
        held from outside reach stays: a tracked object is never reached only through an
        untracked one."""
        graph = self._graph
        tracked_external = array("q", (node for node in self._external if graph.tracked[node]))
        if len(tracked_external) == len(self._external):
            return dist
        return self._search_from(tracked_external)[1]


def _sampled_types(growth: list[TypeGrowth], top: int) -> list[TypeGrowth]:
    """The types whose new objects get sample paths: the ``top`` most numerous, then as
    many others whose class comes from neither builtins nor the standard library. Over a
    whole program the most numerous are what its imports made (str, tuple, code); a leak
    it has (200 ClientResponse) is a class of the program or of a library."""
    stdlib = sys.stdlib_module_names
    classes = [item for item in growth[top:] if "." in item.type and item.type.split(".")[0] not in stdlib]
    return growth[:top] + classes[:top]


_FLIP = bytes([1]) + bytes(255)  # bytes.translate table: 0 -> 1, anything else -> 0


def _name_groups(type_names: list[str], group_ids: dict[str, int]) -> tuple[list[str], array]:
    """Number the distinct names in ``type_names`` (adding to ``group_ids``, shared between
    calls): ``(names by group id, the group of each type id)``."""
    group_of = array("q", (group_ids.setdefault(name, len(group_ids)) for name in type_names))
    return list(group_ids), group_of


# -- roots ------------------------------------------------------------------------------------


def _stack_frames(frames: dict[int, types.FrameType]) -> Iterable[types.FrameType]:
    for frame in frames.values():
        while frame is not None:
            yield frame
            frame = frame.f_back  # type: ignore[assignment]


def _own_namespaces() -> list[int]:
    """The ids of cyclescope's own modules and of their ``__dict__``s."""
    ids = []
    for name, module in list(sys.modules.items()):
        if (name == _PACKAGE or name.startswith(_PACKAGE + ".")) and is_a(module, types.ModuleType):
            ids += [id(module), id(module.__dict__)]
    return ids


def _is_own_frame(frame: types.FrameType) -> bool:
    filename = os.path.abspath(frame.f_code.co_filename)
    return filename.startswith(_PACKAGE_DIR + os.sep)


def _thread_names() -> dict[int, str]:
    return {t.ident: t.name for t in threading.enumerate() if t.ident is not None}


def _root_candidates(frames: dict[int, types.FrameType],
                     named: list[tuple[str, int, bool]]) -> list[tuple[int, str, str]]:
    """``(address, kind, name)`` of every named root, in the order paths prefer them."""
    found: list[tuple[int, str, str]] = [(address, "module" if is_module else "named", name)
                                         for name, address, is_module in named]
    for name, module in sorted(list(sys.modules.items()), key=lambda item: item[0]):
        if is_a(module, types.ModuleType):
            found.append((id(module), "module", f"module {name}"))
    for address, coroutine in pending_task_ids():
        found.append((address, "task", f"asyncio task {coroutine}()"))
    names = _thread_names()
    for ident, top in frames.items():
        thread = names.get(ident, f"thread {ident}")
        frame: types.FrameType | None = top
        while frame is not None:
            if not _is_own_frame(frame):
                site = code_site(frame)
                where = f"{site.function}() at {site.location}" if site is not None else "?"
                for local, _kind, address in _framelocals.frame_local_ids(frame) or []:
                    found.append((address, "local", f"local '{local}' in {where} ({thread})"))
            frame = frame.f_back
    return found


def _external_roots(graph: HeapGraph) -> array:
    """The nodes held from outside the heap the graph sees, in node order. (Blocked ones
    among them need no filtering: the searches never start from a blocked source.)"""
    # Thousands of nodes are external: listed in C, as the one group of a grouping by type.
    every_type = array("q", bytes(8 * len(graph.types)))
    count, _, _ = heapalgo.group_totals(graph.type_ids, every_type, 1, graph.sizes, mask=graph.external)
    return heapalgo.group_totals(graph.type_ids, every_type, 1, graph.sizes, mask=graph.external,
                                 samples=count[0])[2]


def _known_start(root: _Root | None, address: int, hint: object) -> object:
    """The live object at a path's first node when it is at hand (a module in sys.modules,
    or ``hint``), else None."""
    if root is not None and root.kind == "module" and root.name.startswith("module "):
        module = sys.modules.get(root.name[len("module "):])
        if id(module) == address:
            return module
    if hint is not None and id(hint) == address:
        return hint
    return None


def _find_referent(holder: object, address: int, name: str, position: int = -1) -> object:
    """The referent of ``holder`` at ``address`` (of type ``name``), or None.

    ``position`` is where the graph has the edge among the holder's successors: lists
    and tuples visit their items last to first, so for one without repeated items it
    gives the index, which spares building the referents of a huge container.
    """
    if position >= 0 and type(holder) in (list, tuple):
        getitem = list.__getitem__ if type(holder) is list else tuple.__getitem__
        try:
            guess = getitem(holder, len(holder) - 1 - position)  # type: ignore[arg-type]
        except IndexError:
            guess = None
        if id(guess) == address and type_name(type(guess)) == name:
            return guess
    try:
        referents = gc.get_referents(holder)
    except Exception:
        return None
    for obj in referents:
        if id(obj) == address and type_name(type(obj)) == name:
            return obj
    # 3.11+: the graph saw the attributes inline, and labelling an earlier path gave
    # the object its __dict__ since: the attribute is there now.
    attributes = instance_dict(holder)
    if attributes is not None:
        for obj in dict.values(attributes):
            if id(obj) == address and type_name(type(obj)) == name:
                return obj
    return None


def _shape(label: Label) -> str:
    """A label as a path's shape keeps it: positions folded, keys as they are."""
    return label.shown if "[key]" in label.folded else label.folded


def _steps(names: list[str], labels: list[Label]) -> list[PathStep]:
    """The path's steps, with ``.__dict__ -> ['a']`` read as ``.a`` (as cycles are)."""
    steps = [PathStep(names[0], "")]
    i = 0
    while i < len(labels):
        folded = fold_through(labels[i], labels[i + 1]) if i + 1 < len(labels) else None
        if folded is not None:
            steps.append(PathStep(names[i + 2], folded.shown, _shape(folded)))
            i += 2
        else:
            steps.append(PathStep(names[i + 1], labels[i].shown, _shape(labels[i])))
            i += 1
    return steps
