"""A compact directed graph over a fixed list of objects, and the algorithms on it.

Nodes are the positions of the objects in the list handed to :func:`build_graph`.
Edges are the references between those objects, in ``tp_traverse`` order (what
``gc.get_referents`` returns), deduplicated per source node; references to objects
outside the list are not edges. Adjacency is stored as CSR arrays: the successors of
node ``i`` are ``targets[offsets[i]:offsets[i + 1]]``.

Every function here has a C twin in ``cyclescope._core`` that returns exactly the same
values; the pure-Python versions are the reference and the fallback where the
extension could not be built (or ``CYCLESCOPE_PURE=1`` is set).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import types
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

from cyclescope._safe import module_namespace, type_flags, type_mro, type_namespace

__all__ = [
    "Graph",
    "build_graph",
    "strongly_connected_components",
    "representative_cycles",
    "attribute_acyclic",
    "component_totals",
    "cycle_shapes",
    "members_by_owner",
    "node_ranks",
    "shape_totals",
    "safe_sizeof",
    "using_c_core",
]

_TPFLAGS_HAVE_GC = 1 << 14
_GC_HEADER = 16  # sizeof(PyGC_Head) on 64-bit CPython 3.10-3.13, as sys.getsizeof adds it
_C_SIZEOF_TYPES = (types.MethodDescriptorType, types.WrapperDescriptorType)

# ``tp.__basicsize__`` would consult the metaclass (user code); see _safe.
_type_basicsize = type.__dict__["__basicsize__"].__get__


@dataclass
class Graph:
    """CSR adjacency over ``n`` nodes with per-node type index and size in bytes."""

    n: int
    offsets: array  # length n + 1
    targets: array  # length offsets[n]
    sizes: array  # length n, bytes
    type_ids: array  # length n, index into ``types``
    types: list  # distinct types, in order of first appearance
    total_size: int = 0  # sum of sizes

    def successors(self, node: int) -> array:
        """The nodes that ``node`` refers to, in traverse order."""
        return self.targets[self.offsets[node] : self.offsets[node + 1]]


def load_extension(name: str) -> Any:
    """The compiled module ``cyclescope.<name>``, or None: not built, or ``CYCLESCOPE_PURE``
    set (the pure-Python twins then run)."""
    if os.environ.get("CYCLESCOPE_PURE"):
        return None
    try:
        return importlib.import_module(f"cyclescope.{name}")
    except ImportError:
        return None


_core = load_extension("_core")


def using_c_core() -> bool:
    """True when the compiled core is in use (False on the pure-Python path)."""
    return _core is not None


def _find_sizeof(tp: type) -> Any:
    # As _PyType_Lookup: the first class defining the name wins, even with None.
    for klass in type_mro(tp):
        namespace = type_namespace(klass)
        if "__sizeof__" in namespace:
            return namespace["__sizeof__"]
    return None


def safe_sizeof(obj: object) -> int:
    """Size of ``obj`` in bytes, as ``sys.getsizeof`` gives it, without running user code.

    ``sys.getsizeof`` calls the type's ``__sizeof__``; it is used only when that is
    implemented in C. A ``__sizeof__`` written in Python is user code, so such
    objects count their fixed C layout (``tp_basicsize``) and the GC header instead.
    """
    tp = type(obj)
    # Exact type, not isinstance: that would consult a (user-defined) ``__class__``.
    kind = type(_find_sizeof(tp))
    if kind is _C_SIZEOF_TYPES[0] or kind is _C_SIZEOF_TYPES[1]:
        try:
            return sys.getsizeof(obj)
        except Exception:
            pass
    size = _type_basicsize(tp)
    if type_flags(tp) & _TPFLAGS_HAVE_GC:
        size += _GC_HEADER
    return size


def _is_asyncio_module(obj: object) -> bool:
    """The ``_asyncio`` module is never traversed: on CPython 3.12.0-3.12.5 its
    traverse visits freed objects (gh-122695) and ``gc.get_referents`` on it can
    corrupt memory. It holds only its own types and caches, never a user's cycle."""
    if type(obj) is not types.ModuleType:
        return False
    name = dict.get(module_namespace(obj), "__name__")  # type: ignore[arg-type]
    return type(name) is str and name == "_asyncio"  # (a str subclass would compare by its own __eq__)


class TypeIds:
    """Distinct types numbered in order of first appearance (the graphs' ``types``)."""

    def __init__(self) -> None:
        self._by_id: dict[int, int] = {}  # by id: a metaclass may define __hash__/__eq__
        self.types: list[type] = []

    def of(self, tp: type) -> int:
        """The number of ``tp``, given on first sight."""
        ti = self._by_id.get(id(tp))
        if ti is None:
            ti = self._by_id[id(tp)] = len(self.types)
            self.types.append(tp)
        return ti


def _build_graph_py(objects: Sequence[object]) -> Graph:
    index = {id(obj): i for i, obj in enumerate(objects)}
    offsets = array("q", [0])
    targets = array("q")
    sizes = array("q")
    type_ids = array("q")
    type_table = TypeIds()
    get_referents = gc.get_referents
    for obj in objects:
        seen: set[int] = set()
        for ref in () if _is_asyncio_module(obj) else get_referents(obj):
            j = index.get(id(ref))
            if j is not None and j not in seen:
                seen.add(j)
                targets.append(j)
        offsets.append(len(targets))
        type_ids.append(type_table.of(type(obj)))
        sizes.append(safe_sizeof(obj))
    return Graph(len(objects), offsets, targets, sizes, type_ids, type_table.types, sum(sizes))


def build_graph(objects: Sequence[object]) -> Graph:
    """Build the graph of references among ``objects`` (which must stay alive meanwhile)."""
    if _core is not None:
        if type(objects) is not list and type(objects) is not tuple:
            objects = list(objects)
        return Graph(len(objects), *_core.build_graph(objects))
    return _build_graph_py(objects)


def _scc_py(n: int, offsets: array, targets: array) -> tuple[array, int, bytearray]:
    # Iterative Tarjan. Components are renumbered afterwards by their smallest node,
    # so the numbering does not depend on the traversal.
    index = [-1] * n
    low = [0] * n
    on_stack = bytearray(n)
    stack: list[int] = []
    raw = [-1] * n
    counter = 0
    ncomp = 0
    for root in range(n):
        if index[root] != -1:
            continue
        work = [(root, offsets[root])]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = 1
        while work:
            v, pos = work[-1]
            end = offsets[v + 1]
            pushed = False
            while pos < end:
                w = targets[pos]
                pos += 1
                if index[w] == -1:
                    work[-1] = (v, pos)
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = 1
                    work.append((w, offsets[w]))
                    pushed = True
                    break
                if on_stack[w] and index[w] < low[v]:
                    low[v] = index[w]
            if pushed:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                if low[v] < low[parent]:
                    low[parent] = low[v]
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    on_stack[w] = 0
                    raw[w] = ncomp
                    if w == v:
                        break
                ncomp += 1
    renumber = [-1] * ncomp
    comp = array("q", bytes(8 * n))
    next_id = 0
    for node in range(n):
        r = raw[node]
        if renumber[r] == -1:
            renumber[r] = next_id
            next_id += 1
        comp[node] = renumber[r]
    cyclic = bytearray(ncomp)
    size = [0] * ncomp
    for node in range(n):
        size[comp[node]] += 1
    for node in range(n):
        c = comp[node]
        if size[c] > 1:
            cyclic[c] = 1
        else:
            for pos in range(offsets[node], offsets[node + 1]):
                if targets[pos] == node:
                    cyclic[c] = 1
                    break
    return comp, ncomp, cyclic


def strongly_connected_components(graph: Graph) -> tuple[array, int, bytearray]:
    """Strongly connected components.

    Returns ``(comp, ncomp, cyclic)``: ``comp[node]`` is the component of each node,
    numbered 0.. in the order of each component's smallest node; ``cyclic[c]`` is 1
    when component ``c`` holds a cycle (more than one node, or a self-loop).
    """
    if _core is not None:
        return _core.scc(graph.n, graph.offsets, graph.targets)
    return _scc_py(graph.n, graph.offsets, graph.targets)


def _representatives_py(
    n: int, offsets: array, targets: array, comp: array, ncomp: int, cyclic: bytearray, rank: array
) -> tuple[array, array, array]:
    best = [-1] * ncomp
    for node in range(n):
        c = comp[node]
        if cyclic[c] and rank[node] >= 0:
            b = best[c]
            if b == -1 or rank[node] < rank[b]:
                best[c] = node
    starts = array("q")
    cycle_nodes = array("q")
    cycle_edges = array("q")
    starts.append(0)
    parent = {}
    for c in range(ncomp):
        start = best[c]
        if start == -1:
            starts.append(len(cycle_nodes))
            continue
        # BFS inside the component for the shortest way back to ``start``.
        parent.clear()
        parent[start] = (-1, -1)
        queue = deque([start])
        closing = None
        while queue and closing is None:
            v = queue.popleft()
            for pos in range(offsets[v], offsets[v + 1]):
                w = targets[pos]
                if comp[w] != c:
                    continue
                if w == start:
                    closing = (v, pos - offsets[v])
                    break
                if w not in parent:
                    parent[w] = (v, pos - offsets[v])
                    queue.append(w)
        assert closing is not None
        path = [(closing[0], closing[1])]
        v = closing[0]
        while v != start:
            pv, ppos = parent[v]
            path.append((pv, ppos))
            v = pv
        path.reverse()
        for node, edge_pos in path:
            cycle_nodes.append(node)
            cycle_edges.append(edge_pos)
        starts.append(len(cycle_nodes))
    return starts, cycle_nodes, cycle_edges


def representative_cycles(
    graph: Graph, comp: array, ncomp: int, cyclic: bytearray, rank: array
) -> tuple[array, array, array]:
    """One shortest cycle per cyclic component, through its best-ranked node.

    ``rank[node]`` orders the candidates (lower is better; ties go to the smaller
    node; a negative rank excludes the node). Returns CSR-style ``(starts, nodes,
    edges)``: the cycle of component ``c`` is ``nodes[starts[c]:starts[c + 1]]``
    beginning at the chosen node, and ``edges[k]`` is the position, among the
    successors of ``nodes[k]``, of the next node on the cycle (the last one leads
    back to the first). Components without a candidate get an empty cycle. BFS
    visits successors in adjacency order, so equal shapes give equal cycles.
    """
    if _core is not None:
        return _core.representative_cycles(
            graph.n, graph.offsets, graph.targets, comp, ncomp, bytes(cyclic), rank
        )
    return _representatives_py(graph.n, graph.offsets, graph.targets, comp, ncomp, cyclic, rank)


def _attribute_py(n: int, offsets: array, targets: array, comp: array, cyclic: bytearray) -> array:
    owner = array("q", [-1]) * n
    queue: deque[int] = deque()
    for node in range(n):
        c = comp[node]
        if cyclic[c]:
            owner[node] = c
            queue.append(node)
    while queue:
        v = queue.popleft()
        o = owner[v]
        for pos in range(offsets[v], offsets[v + 1]):
            w = targets[pos]
            if owner[w] == -1:
                owner[w] = o
                queue.append(w)
    return owner


def attribute_acyclic(graph: Graph, comp: array, cyclic: bytearray) -> array:
    """Which cyclic component keeps each node alive.

    Nodes on a cycle belong to their own component; every other node goes to the
    nearest cyclic component that reaches it (multi-source BFS seeded in node
    order, so ties go to the component met first). Unreached nodes get -1.
    """
    if _core is not None:
        return _core.attribute_acyclic(graph.n, graph.offsets, graph.targets, comp, bytes(cyclic))
    return _attribute_py(graph.n, graph.offsets, graph.targets, comp, cyclic)


if sys.implementation.name != "cpython":  # pragma: no cover - guarded at import of the package
    raise ImportError("cyclescope needs CPython")


# -- summaries over components -----------------------------------------------------------


def _component_totals_py(
    n: int, comp: array, ncomp: int, owner: array, sizes: array
) -> tuple[array, array, array]:
    comp_size = array("q", bytes(8 * ncomp))
    held_objects = array("q", bytes(8 * ncomp))
    held_bytes = array("q", bytes(8 * ncomp))
    for node in range(n):
        comp_size[comp[node]] += 1
        o = owner[node]
        if o >= 0:
            held_objects[o] += 1
            held_bytes[o] += sizes[node]
    return comp_size, held_objects, held_bytes


def component_totals(graph: Graph, comp: array, ncomp: int, owner: array) -> tuple[array, array, array]:
    """Per component: ``(size, objects held, bytes held)``.

    Size counts the nodes of the component; objects and bytes count every node
    attributed to it by :func:`attribute_acyclic` (itself included).
    """
    if _core is not None:
        return _core.component_totals(graph.n, comp, ncomp, owner, graph.sizes)
    return _component_totals_py(graph.n, comp, ncomp, owner, graph.sizes)


def _cycle_shapes_py(ncomp: int, starts: array, nodes: array, edges: array, type_ids: array) -> tuple[array, array]:
    shape_of = array("q", [-1]) * ncomp
    first = array("q")
    seen: dict[tuple, int] = {}
    for c in range(ncomp):
        s, e = starts[c], starts[c + 1]
        if s == e:
            continue
        key = (tuple(type_ids[v] for v in nodes[s:e]), tuple(edges[s:e]))
        shape = seen.get(key)
        if shape is None:
            shape = seen[key] = len(first)
            first.append(c)
        shape_of[c] = shape
    return shape_of, first


def cycle_shapes(
    graph: Graph, ncomp: int, starts: array, nodes: array, edges: array
) -> tuple[array, array]:
    """Group components by the shape of their representative cycle.

    Two cycles have the same shape when they have the same length and the same
    node type and edge position at every step (from their start node). Returns
    ``(shape_of, first)``: ``shape_of[c]`` numbers the shape of component ``c``
    (-1 when it has no cycle), shapes numbered by first appearance; ``first[k]``
    is the first component of shape ``k``. Only one component per shape needs
    labelling.
    """
    if _core is not None:
        return _core.cycle_shapes(ncomp, starts, nodes, edges, graph.type_ids)
    return _cycle_shapes_py(ncomp, starts, nodes, edges, graph.type_ids)


def _members_py(n: int, owner: array, ncomp: int) -> tuple[array, array]:
    counts = [0] * (ncomp + 1)
    for node in range(n):
        o = owner[node]
        if o >= 0:
            counts[o + 1] += 1
    starts = array("q", [0]) * (ncomp + 1)
    total = 0
    for c in range(ncomp):
        total += counts[c + 1]
        starts[c + 1] = total
    fill = list(starts[:ncomp])
    members = array("q", [0]) * total
    for node in range(n):
        o = owner[node]
        if o >= 0:
            members[fill[o]] = node
            fill[o] += 1
    return starts, members


def members_by_owner(graph: Graph, owner: array, ncomp: int) -> tuple[array, array]:
    """The nodes each component holds, CSR-style: ``members[starts[c]:starts[c + 1]]``
    in increasing node order (nodes with owner -1 are left out)."""
    if _core is not None:
        return _core.members_by_owner(graph.n, owner, ncomp)
    return _members_py(graph.n, owner, ncomp)


#: In-degrees above this rank the same (keeps ranks well inside int64).
DEGREE_CAP = 1 << 16


def _node_ranks_py(
    n: int, offsets: array, targets: array, comp: array, type_ids: array, type_major: array, type_minor: array
) -> array:
    ntypes = len(type_major)
    referrers = [0] * n
    for v in range(n):
        c = comp[v]
        for pos in range(offsets[v], offsets[v + 1]):
            w = targets[pos]
            if comp[w] == c:
                referrers[w] += 1
    rank = array("q", [-1]) * n
    for v in range(n):
        t = type_ids[v]
        major = type_major[t]
        if major >= 0:
            degree = min(referrers[v], DEGREE_CAP - 1)
            rank[v] = (major * DEGREE_CAP + (DEGREE_CAP - 1 - degree)) * ntypes + type_minor[t]
    return rank


def node_ranks(graph: Graph, comp: array, type_major: array, type_minor: array) -> array:
    """Candidate order for :func:`representative_cycles` (lower is better).

    Nodes are ordered by ``type_major`` of their type, then by how many nodes of
    their own component refer to them (the object a component is built around is
    the telling one), then by ``type_minor``. A negative ``type_major`` excludes
    the type (rank -1). In-degrees above :data:`DEGREE_CAP` rank alike.
    """
    if _core is not None:
        return _core.node_ranks(graph.n, graph.offsets, graph.targets, comp, graph.type_ids, type_major, type_minor)
    return _node_ranks_py(graph.n, graph.offsets, graph.targets, comp, graph.type_ids, type_major, type_minor)


def _shape_totals_py(shape_of: array, nshapes: int, held_objects: array, held_bytes: array) -> tuple[array, array, array]:
    count = array("q", bytes(8 * nshapes))
    objects = array("q", bytes(8 * nshapes))
    nbytes = array("q", bytes(8 * nshapes))
    for c, shape in enumerate(shape_of):
        if shape >= 0:
            count[shape] += 1
            objects[shape] += held_objects[c]
            nbytes[shape] += held_bytes[c]
    return count, objects, nbytes


def shape_totals(shape_of: array, nshapes: int, held_objects: array, held_bytes: array) -> tuple[array, array, array]:
    """Per shape (see :func:`cycle_shapes`): ``(components, objects held, bytes held)``."""
    if _core is not None:
        return _core.shape_totals(shape_of, nshapes, held_objects, held_bytes)
    return _shape_totals_py(shape_of, nshapes, held_objects, held_bytes)


# -- capturing.py's two list operations: C only where it saves work ------------------------


def move_tail(src: list, base: int, dst: list) -> int:
    """Move ``src[base:]`` to the end of ``dst`` and truncate ``src`` to ``base``; returns
    how many items moved. The C core hands the references over instead of copying
    them (no reference count is touched)."""
    if _core is not None:
        return _core.move_tail(src, base, dst)
    if src is dst or base < 0:
        raise ValueError("move_tail() needs two different lists and base >= 0")
    tail = src[base:]
    del src[base:]
    dst += tail
    return len(tail)


def release_garbage(objects: list) -> tuple[int, int] | None:
    """Free the cyclic garbage in ``objects`` without a full collection, emptying the
    list: ``(cleared, kept)`` (see ``_core.release_garbage``); ``kept`` objects are
    still referenced from outside, and a full collection may free some of them.

    None on the pure-Python path, which leaves the list as it is: there is no way to
    do this from Python without a collection.
    """
    if _core is not None:
        return _core.release_garbage(objects)
    return None
