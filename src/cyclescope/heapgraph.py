"""A snapshot of the heap as a graph: seed objects and everything they reach.

Where :func:`cyclescope.graph.build_graph` takes a fixed list of objects, the heap
graph closes it under references: every referent of a node (what its
``tp_traverse`` visits, as ``gc.get_referents`` returns it) is a node too, tracked
by gc or not. So objects that ``gc.get_objects()`` does not list, such as those
frozen by ``gc.freeze()`` and untracked ones (strings, ints, tuples and dicts of
atoms), are part of the graph when something in it refers to them. Objects whose
type has no ``tp_traverse`` are leaves, and so are the ``_asyncio`` module (see
``graph._is_asyncio_module``) and the seed list itself when something reaches it
(its references are the seeds', counted as such).

Nodes are numbered in discovery order: the distinct seeds in list order, then the
new referents of node 0, 1, 2, ... in the order each one's ``tp_traverse`` visits
them (breadth first). Edges are the references between nodes in that order,
deduplicated per source, as CSR arrays. The snapshot records addresses, keeps no
object alive and runs no user-defined Python code; sizes follow
:func:`cyclescope.graph.safe_sizeof`.

:func:`build_heap_graph` uses the C twin ``cyclescope._core.heap_snapshot``; the
pure-Python :func:`_heap_graph_py` is the reference and the fallback.
"""

from __future__ import annotations

import gc
import sys
from array import array
from dataclasses import dataclass
from typing import Sequence

from cyclescope import graph
from cyclescope.graph import TypeIds, _is_asyncio_module, safe_sizeof

__all__ = ["HeapGraph", "build_heap_graph"]


@dataclass
class HeapGraph:
    """The graph of a heap snapshot: per node its address, type, size and two flags.

    ``external[i]`` is 1 when the object had more references than the nodes hold
    (counted with multiplicity, one per ``tp_traverse`` visit) and the seed list
    holds: something outside the graph held it too, such as C code, an object without
    ``tp_traverse``, or a running frame (from 3.11 on a running frame's locals are
    no referents of its frame object; on 3.10 they are). Immortal objects (3.12+)
    always come out external.

    The int64 arrays are ``array('q')`` from the pure-Python build and read-only
    ``memoryview`` objects of format ``'q'`` from the C one, which hands its memory
    over without a copy.
    """

    n: int
    addresses: Sequence[int]  # id() of each node's object at snapshot time
    type_ids: Sequence[int]  # index into ``types``
    types: list  # distinct types, in order of first appearance
    sizes: Sequence[int]  # bytes, as graph.safe_sizeof
    offsets: Sequence[int]  # length n + 1
    targets: Sequence[int]  # successors of i: targets[offsets[i]:offsets[i + 1]]
    external: bytearray
    tracked: bytearray  # 1 where gc tracks the object
    total_size: int  # sum of sizes

    def successors(self, node: int) -> Sequence[int]:
        """The nodes that ``node`` refers to, in traverse order."""
        return self.targets[self.offsets[node] : self.offsets[node + 1]]


def _closure_py(seeds: Sequence[object]) -> tuple[list, array, array, array, array, list]:
    """The nodes, CSR edges, references explained per node, type ids and types."""
    index: dict[int, int] = {}
    nodes: list = []
    accounted = array("q")  # the seed list's references and the nodes'

    def node_of(obj: object) -> int:
        """The node of ``obj`` (a new one on first sight), counting the reference."""
        i = index.get(id(obj))
        if i is None:
            i = index[id(obj)] = len(nodes)
            nodes.append(obj)
            accounted.append(0)
        accounted[i] += 1
        return i

    for obj in seeds:
        node_of(obj)
    offsets = array("q", [0])
    targets = array("q")
    type_ids = array("q")
    type_table = TypeIds()
    get_referents = gc.get_referents
    source = 0
    while source < len(nodes):
        obj = nodes[source]
        source += 1
        seen: set[int] = set()
        # The seed list's references are the seeds' (counted above): as a node, a leaf.
        for ref in () if obj is seeds or _is_asyncio_module(obj) else get_referents(obj):
            j = node_of(ref)
            if j not in seen:
                seen.add(j)
                targets.append(j)
        offsets.append(len(targets))
        type_ids.append(type_table.of(type(obj)))
    return nodes, offsets, targets, accounted, type_ids, type_table.types


def _refcounts(objects: list) -> array:
    # No local here may hold an int: on 3.10 and 3.11 small ints are shared
    # objects with true reference counts, and could be nodes.
    counts = array("q")
    append = counts.append
    getrefcount = sys.getrefcount
    for obj in objects:
        append(getrefcount(obj))
    return counts


def _heap_graph_py(seeds: Sequence[object]) -> HeapGraph:
    nodes, offsets, targets, accounted, type_ids, type_list = _closure_py(seeds)
    counts = _refcounts(nodes)
    # What _refcounts and the nodes list add to an object's count, measured on a
    # fresh object that only such a list holds.
    ours = _refcounts([object()])[0]
    in_types = {id(tp) for tp in type_list}  # the types list holds these once more
    external = bytearray(len(nodes))
    for i, obj in enumerate(nodes):
        held = ours + 1 if id(obj) in in_types else ours
        if counts[i] - held > accounted[i]:
            external[i] = 1
    addresses = array("q", map(id, nodes))
    tracked = bytearray(map(gc.is_tracked, nodes))
    # Last, as in the C twin: a C __sizeof__ may run code (see graph.safe_sizeof).
    sizes = array("q", map(safe_sizeof, nodes))
    n = len(nodes)
    nodes.clear()
    return HeapGraph(
        n, addresses, type_ids, type_list, sizes, offsets, targets, external, tracked, sum(sizes)
    )


def build_heap_graph(seeds: Sequence[object]) -> HeapGraph:
    """Snapshot ``seeds`` and everything they reach (see the module docstring).

    The whole heap: ``build_heap_graph(gc.get_objects() + [sys.modules,
    *sys._current_frames().values()])``.
    """
    if type(seeds) is not list and type(seeds) is not tuple:
        seeds = list(seeds)
    core = graph._core
    if core is not None:
        fields = core.heap_snapshot(seeds)
        return HeapGraph(len(fields[0]), *fields)
    return _heap_graph_py(seeds)
