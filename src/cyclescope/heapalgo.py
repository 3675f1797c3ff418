"""Graph algorithms over a whole heap: reachability, paths, dominators, retained sizes.

A graph is given as CSR arrays over ``n`` nodes numbered ``0..n-1``: ``offsets`` has
``n + 1`` non-decreasing int64 items from 0 to ``len(targets)``, and the successors of
node ``v``, in order, are ``targets[offsets[v]:offsets[v + 1]]``. Self-loops and
duplicate edges are allowed. Integer arguments are buffers of int64 items
(``array('q')``; also ``array('l')`` where that is 8 bytes, or a memoryview of either);
masks are buffers of single bytes (``bytes``, ``bytearray``), a nonzero byte meaning
set. Integer results are ``array('q')``.

``blocked`` masks mean the same in every function: a blocked node is treated as if it
and all its edges (in and out) were not in the graph. It is never reached, not even
when it is a source, and nothing is reached through it. The use is to leave the
analysis's own objects out of a heap it walks.

Every function has a C twin in ``cyclescope._heapalgo`` that returns exactly the same
values and raises the same exceptions; the pure-Python versions (``_..._py``) are the
reference and the fallback where the extension could not be built (or
``CYCLESCOPE_PURE=1`` is set). Invalid input raises ``ValueError`` (``TypeError`` for
an argument that is not a buffer or an integer at all) before anything is read out
of bounds.
"""

from __future__ import annotations

import heapq
import operator
import sys
from array import array
from itertools import islice
from typing import Any, Optional

from cyclescope.graph import load_extension

__all__ = [
    "bfs",
    "transpose",
    "dominators",
    "retained_sizes",
    "top_indices",
    "positions",
    "object_positions",
    "group_totals",
    "new_nodes",
    "using_c_heapalgo",
    "DOMINATORS_MAX_NODES",
]


#: The most nodes :func:`dominators` takes (its C twin numbers vertices in 32 bits).
DOMINATORS_MAX_NODES = 2**31 - 2


_c = load_extension("_heapalgo")


def using_c_heapalgo() -> bool:
    """True when the compiled ``_heapalgo`` twins are in use (False on the pure path)."""
    return _c is not None


# --- argument checks, as the C twin makes them, in the same order --------------------


def _ssize(value: Any) -> int:
    n = operator.index(value)
    if not -sys.maxsize - 1 <= n <= sys.maxsize:
        raise OverflowError("Python int too large to convert to C ssize_t")
    return n


def _is_int64_format(fmt: str) -> bool:
    order = "@"
    if fmt[:1] in ("@", "=", "<", ">", "!"):
        order, fmt = fmt[0], fmt[1:]
    if len(fmt) != 1 or order in ((">", "!") if sys.byteorder == "little" else ("<",)):
        return False
    return fmt == "q" or (fmt == "l" and order == "@")


def _int64s(obj: Any, name: str) -> array:
    """``obj`` as an ``array('q')``: itself when it is one, else a checked copy."""
    if type(obj) is array and obj.typecode == "q":
        return obj
    with memoryview(obj) as view:
        if not view.c_contiguous:
            raise BufferError("memoryview: underlying buffer is not C-contiguous")
        if view.ndim != 1 or view.itemsize != 8 or not _is_int64_format(view.format):
            raise ValueError(
                f"{name} must be a one-dimensional buffer of int64 items "
                f"(such as array('q')), got format '{view.format}'"
            )
        return array("q", view.tobytes())


def _mask(obj: Any, name: str) -> Optional[bytes]:
    if obj is None:
        return None
    with memoryview(obj) as view:
        if not view.c_contiguous:
            raise BufferError("memoryview: underlying buffer is not C-contiguous")
        if view.ndim != 1 or view.itemsize != 1:
            raise ValueError(
                f"{name} must be a one-dimensional buffer of bytes (such as bytes or bytearray)"
            )
        return view.tobytes()


def _check_mask_len(mask: Optional[bytes], name: str, len_name: str, want: int) -> None:
    if mask is not None and len(mask) != want:
        raise ValueError(f"{name} must have {len_name} = {want} items, not {len(mask)}")


def _check_nodes(name: str, nodes: array, n: int) -> None:
    if nodes and (min(nodes) < 0 or max(nodes) >= n):
        k, v = next((k, v) for k, v in enumerate(nodes) if not 0 <= v < n)
        raise ValueError(f"{name}[{k}] = {v} is not a node in [0, {n})")


def _graph_buffers(
    n: Any,
    offsets: Any,
    targets: Any,
    sources: Any = None,
    blocked: Any = None,
    fallback: Any = None,
) -> tuple:
    """The arguments' kinds and lengths; their values are for :func:`_check_graph`."""
    n = _ssize(n)
    if n < 0:
        raise ValueError("n must be >= 0")
    offsets = _int64s(offsets, "offsets")
    targets = _int64s(targets, "targets")
    sources = array("q") if sources is None else _int64s(sources, "sources")
    blocked = _mask(blocked, "blocked")
    fallback = array("q") if fallback is None else _int64s(fallback, "fallback")
    if len(offsets) - 1 != n:
        raise ValueError(f"offsets must have n + 1 = {n + 1} items, not {len(offsets)}")
    _check_mask_len(blocked, "blocked", "n", n)
    return n, offsets, targets, sources, blocked, fallback


def _check_graph(
    n: int, offsets: array, targets: array, sources: array, fallback: Optional[array] = None
) -> None:
    if offsets[0] != 0:
        raise ValueError("offsets[0] must be 0")
    if not all(map(operator.le, offsets, islice(offsets, 1, None))):
        at = next(i for i in range(1, n + 1) if offsets[i] < offsets[i - 1])
        raise ValueError(f"offsets must be non-decreasing (at {at})")
    if offsets[n] != len(targets):
        raise ValueError(f"offsets[n] must equal len(targets) = {len(targets)}, not {offsets[n]}")
    _check_nodes("targets", targets, n)
    _check_nodes("sources", sources, n)
    if fallback is not None:
        _check_nodes("fallback", fallback, n)


# --- bfs ------------------------------------------------------------------------------


def _bfs_py(
    n: int, offsets: Any, targets: Any, sources: Any, /, blocked: Any = None, fallback: Any = None
) -> tuple[array, array]:
    n, offsets, targets, sources, blocked, fallback = _graph_buffers(
        n, offsets, targets, sources, blocked, fallback
    )
    _check_graph(n, offsets, targets, sources, fallback)
    parent = [-1] * n
    dist = [-1] * n
    if blocked is not None:
        for v, b in enumerate(blocked):
            if b:
                dist[v] = -2  # never -1, so never entered; reset below
    queue = []
    head = 0
    # Two phases on one queue: the second starts once the first has run dry, so
    # only what the sources left unreached is still -1 for the fallback roots.
    for roots in (sources, fallback):
        for s in roots:
            if dist[s] == -1:
                dist[s] = 0
                queue.append(s)
        while head < len(queue):
            v = queue[head]
            head += 1
            d = dist[v] + 1
            for w in targets[offsets[v] : offsets[v + 1]]:
                if dist[w] == -1:
                    dist[w] = d
                    parent[w] = v
                    queue.append(w)
    if blocked is not None:
        for v, b in enumerate(blocked):
            if b:
                dist[v] = -1
    return array("q", parent), array("q", dist)


def bfs(
    n: int, offsets: Any, targets: Any, sources: Any, /, blocked: Any = None, fallback: Any = None
) -> tuple[array, array]:
    """Multi-source breadth-first search: ``(parent, dist)``, two arrays of ``n``.

    ``sources`` (node ids, in priority order) all start at distance 0; a source that
    repeats an earlier one, or is blocked, is skipped. The queue holds the sources in
    that order, then each node's successors in CSR order as it is expanded, so the
    result is fully determined. ``dist[v]`` is the number of edges on a shortest path
    from any source to ``v``; ``parent[v]`` is the node whose expansion first reached
    ``v``, so following ``parent`` from ``v`` walks one shortest path back to a source
    (``dist`` drops by one per step). Sources, unreached and blocked nodes have
    ``parent`` -1; unreached and blocked nodes have ``dist`` -1.

    ``fallback`` (node ids, like ``sources``) are roots of second resort. Once the
    search from ``sources`` has reached all it can, a second search, run the same way,
    starts from the fallback nodes still unreached (in the order given; repeated,
    blocked and already reached ones are skipped), again at distance 0, and enters
    only nodes still unreached. So a node any source reaches gets the same ``parent``
    and ``dist`` as without ``fallback``, even where a fallback node is closer; a node
    only fallback nodes reach gets ``dist`` from the nearest of them and a ``parent``
    chain back to one, which has ``dist`` 0 and ``parent`` -1 like a source. (No edge
    leads from what the sources reach to an unblocked node they do not, so these are
    shortest paths from the fallback nodes over all unblocked nodes too.) None or
    empty: no second phase.
    """
    if _c is not None:
        return _c.bfs(n, offsets, targets, sources, blocked=blocked, fallback=fallback)
    return _bfs_py(n, offsets, targets, sources, blocked=blocked, fallback=fallback)


# --- reverse graph ------------------------------------------------------------------


def _transpose_py(n: int, offsets: Any, targets: Any, /) -> tuple[array, array]:
    n, offsets, targets, _, _, _ = _graph_buffers(n, offsets, targets)
    _check_graph(n, offsets, targets, array("q"))
    referrers: list[list[int]] = [[] for _ in range(n)]
    for u in range(n):
        for k in range(offsets[u], offsets[u + 1]):
            into = referrers[targets[k]]
            if not into or into[-1] != u:
                into.append(u)
    roffsets = array("q", [0])
    rtargets = array("q")
    for into in referrers:
        rtargets.extend(into)
        roffsets.append(len(rtargets))
    return roffsets, rtargets


def transpose(n: int, offsets: Any, targets: Any, /) -> tuple[array, array]:
    """The reverse graph, ``(roffsets, rtargets)``: the nodes with an edge to ``v``
    are ``rtargets[roffsets[v]:roffsets[v + 1]]``, ascending, each once (a self-loop
    counts). Two passes over the edges; it costs 8 bytes per distinct edge and per
    node, and answers each later "which nodes refer to v?" in a slice.
    """
    if _c is not None:
        return _c.transpose(n, offsets, targets)
    return _transpose_py(n, offsets, targets)


# --- dominators -----------------------------------------------------------------------


def _dominators_py(
    n: int, offsets: Any, targets: Any, sources: Any, /, blocked: Any = None
) -> tuple[array, array]:
    # Semi-NCA, the algorithm of the C twin (see the comment there); vertices are
    # numbered in DFS preorder, 0 being the virtual root.
    n, offsets, targets, sources, blocked, _ = _graph_buffers(
        n, offsets, targets, sources, blocked
    )
    if n > DOMINATORS_MAX_NODES:
        raise ValueError(
            f"n = {n} is more than the {DOMINATORS_MAX_NODES} nodes dominators handles"
        )
    _check_graph(n, offsets, targets, sources)
    number = [0] * n  # 0 unvisited, -1 blocked, else the preorder number
    if blocked is not None:
        for v, b in enumerate(blocked):
            if b:
                number[v] = -1
    vert = [-1]
    parent = [0]
    for s in sources:
        if number[s] != 0:
            continue
        number[s] = len(vert)
        vert.append(s)
        parent.append(0)
        stack = [(number[s], offsets[s])]
        while stack:
            i, pos = stack[-1]
            end = offsets[vert[i] + 1]
            while pos < end:
                w = targets[pos]
                pos += 1
                if number[w] == 0:
                    stack[-1] = (i, pos)
                    number[w] = len(vert)
                    vert.append(w)
                    parent.append(i)
                    stack.append((number[w], offsets[w]))
                    break
            else:
                stack.pop()
    count = len(vert) - 1

    preds: list[list[int]] = [[] for _ in range(count + 1)]
    for i in range(1, count + 1):
        v = vert[i]
        for w in targets[offsets[v] : offsets[v + 1]]:
            j = number[w]
            if j > 0:
                preds[j].append(i)
    for s in sources:
        j = number[s]
        if j > 0:
            preds[j].append(0)

    anc = parent[:]
    idom = parent[:]
    semi = list(range(count + 1))
    lsemi = semi[:]  # least semi from a vertex up to its forest root, excluded

    def least_semi(v: int, last: int) -> int:
        if anc[v] < last:
            return lsemi[v]
        path = []
        x = v
        while True:
            path.append(x)
            x = anc[x]
            if anc[x] < last:
                break
        root = anc[x]
        best = lsemi[x]
        for y in reversed(path):
            anc[y] = root
            if best < lsemi[y]:
                lsemi[y] = best
            else:
                best = lsemi[y]
        return best

    for i in range(count, 0, -1):
        s = idom[i]
        for p in preds[i]:
            c = p if p <= i else least_semi(p, i + 1)
            if c < s:
                s = c
        semi[i] = lsemi[i] = s
    for i in range(1, count + 1):
        s = semi[i]
        c = idom[i]
        while c > s:
            c = idom[c]
        idom[i] = c

    out = [-2] * n
    for i in range(1, count + 1):
        out[vert[i]] = -1 if idom[i] == 0 else vert[idom[i]]
    return array("q", out), array("q", vert[1:])


def dominators(
    n: int, offsets: Any, targets: Any, sources: Any, /, blocked: Any = None
) -> tuple[array, array]:
    """Dominator tree of what ``sources`` reach: ``(idom, order)``.

    The graph gets a virtual root whose successors are the (non-blocked) ``sources``.
    Node ``d`` dominates ``v`` when every path from the root to ``v`` passes through
    ``d``; ``idom[v]`` (an array of ``n``) is ``v``'s immediate dominator, the closest
    strict one: a node id, or -1 when only the virtual root dominates ``v`` (no node
    lies on every path from the sources to it: so for every source, and for instance
    for a node two sources reach along paths without a common node), or -2 when ``v``
    is not reachable (or blocked). ``order`` lists the reachable nodes in the preorder of a
    depth-first search from the virtual root that tries the sources in the order
    given and each node's successors in CSR order, entering a successor as soon as it
    is found unvisited (the order a recursive DFS produces). Every node's ``idom`` is
    -1 or comes before it in ``order``, which is what :func:`retained_sizes` needs.
    At most :data:`DOMINATORS_MAX_NODES` nodes.
    """
    if _c is not None:
        return _c.dominators(n, offsets, targets, sources, blocked=blocked)
    return _dominators_py(n, offsets, targets, sources, blocked=blocked)


# --- retained sizes -------------------------------------------------------------------


def _retained_sizes_py(idom: Any, order: Any, sizes: Any, /) -> array:
    idom = _int64s(idom, "idom")
    order = _int64s(order, "order")
    sizes = _int64s(sizes, "sizes")
    n = len(idom)
    if len(sizes) != n:
        raise ValueError(f"sizes must have len(idom) = {n} items, not {len(sizes)}")
    pos = [-1] * n
    for k, v in enumerate(order):
        if not 0 <= v < n:
            raise ValueError(f"order[{k}] = {v} is not a node in [0, {n})")
        if pos[v] != -1:
            raise ValueError(f"order[{k}] = {v} repeats order[{pos[v]}]")
        pos[v] = k
    for v in range(n):
        d = idom[v]
        if sizes[v] < 0:
            raise ValueError(f"sizes[{v}] = {sizes[v]} is negative")
        if not -2 <= d < n:
            raise ValueError(f"idom[{v}] = {d} is neither -2, -1 nor a node in [0, {n})")
        if pos[v] == -1:
            if d != -2:
                raise ValueError(f"idom[{v}] = {d} but node {v} is not in order")
        elif d == -2:
            raise ValueError(f"idom[{v}] = -2 but node {v} is in order")
        elif d >= 0 and (pos[d] == -1 or pos[d] >= pos[v]):
            raise ValueError(f"idom[{v}] = {d} does not come before node {v} in order")
    retained = [0] * n
    for v in order:
        retained[v] = sizes[v]
    for v in reversed(order):
        d = idom[v]
        if d >= 0:
            retained[d] += retained[v]
            if retained[d] > 0x7FFF_FFFF_FFFF_FFFF:
                raise OverflowError("retained sizes do not fit in 64 bits")
    return array("q", retained)


def retained_sizes(idom: Any, order: Any, sizes: Any, /) -> array:
    """Retained size of every node: ``sizes`` summed over its dominator subtree.

    ``idom`` and ``order`` are what :func:`dominators` returned, ``sizes`` one
    non-negative int64 per node. The result, one item per node, is for a reachable
    node the total size of the nodes it dominates, itself included: the size of what
    the sources would no longer reach without it. Unreachable nodes get 0. The inputs
    are checked to form such a tree (every node of ``order`` appears once, has
    ``idom`` -1 or a node earlier in ``order``; all others have ``idom`` -2);
    ``OverflowError`` when a total exceeds int64.
    """
    if _c is not None:
        return _c.retained_sizes(idom, order, sizes)
    return _retained_sizes_py(idom, order, sizes)


# --- top k ----------------------------------------------------------------------------


def _top_indices_py(values: Any, k: Any, /, eligible: Any = None) -> array:
    k = operator.index(k)
    if k < 0:
        raise ValueError("k must be >= 0")
    values = _int64s(values, "values")
    mask = _mask(eligible, "eligible")
    _check_mask_len(mask, "eligible", "len(values)", len(values))
    if mask is None:
        candidates: Any = range(len(values))
    else:
        candidates = [i for i, b in enumerate(mask) if b]
    return array("q", heapq.nsmallest(k, candidates, key=lambda i: (-values[i], i)))


def top_indices(values: Any, k: int, /, eligible: Any = None) -> array:
    """The indices of the ``k`` largest ``values``, largest first.

    Equal values rank by lower index first, so the result is fully determined. With
    ``eligible`` (a mask as long as ``values``) only the indices it sets compete.
    Fewer than ``k`` indices come back when fewer are eligible; ``k`` < 0 is an error.
    """
    if _c is not None:
        return _c.top_indices(values, k, eligible=eligible)
    return _top_indices_py(values, k, eligible=eligible)


# --- positions ------------------------------------------------------------------------


def _positions_py(addresses: Any, queries: Any, /) -> array:
    addresses = _int64s(addresses, "addresses")
    queries = _int64s(queries, "queries")
    first = dict.fromkeys(queries, -1)
    missing = len(first)
    if missing:
        for i, a in enumerate(addresses):
            if first.get(a) == -1:
                first[a] = i
                missing -= 1
                if not missing:
                    break
    return array("q", [first[v] for v in queries])


def positions(addresses: Any, queries: Any, /) -> array:
    """For each of ``queries``, the index of its first occurrence in ``addresses``, or -1.

    Both are int64 buffers; the result has one item per query, in query order (a
    repeated query gets the same answer each time). It costs one pass over
    ``addresses``, which may be long (a heap's object addresses), with the queries,
    meant to be few, held in a hash table; the pass stops early once every query is
    found.
    """
    if _c is not None:
        return _c.positions(addresses, queries)
    return _positions_py(addresses, queries)


def _object_positions_py(objects: list, queries: Any, /) -> array:
    if type(objects) is not list:
        raise TypeError(f"object_positions() argument 1 must be list, not {type(objects).__name__}")
    return _positions_py(array("q", map(id, objects)), queries)


def object_positions(objects: list, queries: Any, /) -> array:
    """``positions`` of the ids of ``objects`` (a list, such as ``gc.get_objects()``):
    where each queried address is in the list, or -1. The C twin reads the ids as it
    goes, where Python would first build an array of a million of them (150 ms)."""
    if _c is not None:
        return _c.object_positions(objects, queries)
    return _object_positions_py(objects, queries)


# --- totals by type -------------------------------------------------------------------


def _group_totals_py(type_ids: Any, group_of: Any, ngroups: Any, sizes: Any, /,
                     mask: Any = None, samples: Any = 0) -> tuple[array, array, array]:
    ngroups = _ssize(ngroups)
    samples = _ssize(samples)
    if ngroups < 0:
        raise ValueError("ngroups must be >= 0")
    if samples < 0:
        raise ValueError("samples must be >= 0")
    type_ids = _int64s(type_ids, "type_ids")
    group_of = _int64s(group_of, "group_of")
    sizes = _int64s(sizes, "sizes")
    flags = _mask(mask, "mask")
    n, ntypes = len(type_ids), len(group_of)
    if len(sizes) != n:
        raise ValueError(f"sizes must have len(type_ids) = {n} items, not {len(sizes)}")
    _check_mask_len(flags, "mask", "len(type_ids)", n)
    for t, g in enumerate(group_of):
        if not -1 <= g < ngroups:
            raise ValueError(f"group_of[{t}] = {g} is neither -1 nor a group in [0, {ngroups})")
    counts, nbytes, firsts = [0] * ngroups, [0] * ngroups, [-1] * (ngroups * samples)
    for v in range(n):
        t = type_ids[v]
        if not 0 <= t < ntypes:
            raise ValueError(f"type_ids[{v}] = {t} is not a type in [0, {ntypes})")
        if sizes[v] < 0:
            raise ValueError(f"sizes[{v}] = {sizes[v]} is negative")
        g = group_of[t]
        if g < 0 or (flags is not None and not flags[v]):
            continue
        nbytes[g] += sizes[v]
        if nbytes[g] > 0x7FFF_FFFF_FFFF_FFFF:
            raise OverflowError("group totals do not fit in 64 bits")
        if counts[g] < samples:
            firsts[g * samples + counts[g]] = v
        counts[g] += 1
    return array("q", counts), array("q", nbytes), array("q", firsts)


def group_totals(type_ids: Any, group_of: Any, ngroups: int, sizes: Any, /,
                 mask: Any = None, samples: int = 0) -> tuple[array, array, array]:
    """Objects and bytes per group of types: ``(counts, bytes, firsts)``.

    Node ``v`` (of type ``type_ids[v]``, ``sizes[v]`` bytes) counts for group
    ``group_of[type_ids[v]]`` (-1: for none) when ``mask`` is None or sets it.
    ``counts`` and ``bytes`` have ``ngroups`` items; ``firsts[g * samples:(g + 1) *
    samples]`` are the first ``samples`` counted nodes of group ``g`` in node order,
    padded with -1. Every type id and size is checked, counted or not;
    ``OverflowError`` when a total exceeds int64.
    """
    if _c is not None:
        return _c.group_totals(type_ids, group_of, ngroups, sizes, mask=mask, samples=samples)
    return _group_totals_py(type_ids, group_of, ngroups, sizes, mask=mask, samples=samples)


def _new_nodes_py(before: Any, type_ids: Any, group_of: Any, old_type_ids: Any,
                  old_group_of: Any, reached: Any, /) -> bytearray:
    before = _int64s(before, "before")
    type_ids = _int64s(type_ids, "type_ids")
    group_of = _int64s(group_of, "group_of")
    old_type_ids = _int64s(old_type_ids, "old_type_ids")
    old_group_of = _int64s(old_group_of, "old_group_of")
    reached = _int64s(reached, "reached")
    n = len(before)
    if len(type_ids) != n or len(reached) != n:
        raise ValueError(f"type_ids and reached must have len(before) = {n} items, "
                         f"not {len(type_ids)} and {len(reached)}")
    ntypes, nold, nold_types = len(group_of), len(old_type_ids), len(old_group_of)
    mask = bytearray(n)
    for v in range(n):
        j, t = before[v], type_ids[v]
        if not -1 <= j < nold:
            raise ValueError(f"before[{v}] = {j} is neither -1 nor a node in [0, {nold})")
        if not 0 <= t < ntypes:
            raise ValueError(f"type_ids[{v}] = {t} is not a type in [0, {ntypes})")
        is_new = j < 0
        if not is_new:
            old_t = old_type_ids[j]
            if not 0 <= old_t < nold_types:
                raise ValueError(f"old_type_ids[{j}] = {old_t} is not a type in [0, {nold_types})")
            is_new = old_group_of[old_t] != group_of[t]
        mask[v] = is_new and reached[v] >= 0
    return mask


def new_nodes(before: Any, type_ids: Any, group_of: Any, old_type_ids: Any,
              old_group_of: Any, reached: Any, /) -> bytearray:
    """Which nodes of a graph are new since an older one: a mask, one byte per node.

    ``before[v]`` is node ``v``'s index in the older graph (-1: it was not there, as
    :func:`positions` gives it); a node found there counts as new all the same when
    its type's group (``group_of[type_ids[v]]``) differs from the group of the older
    node's type (``old_group_of[old_type_ids[before[v]]]``): its address was reused by
    an object of another kind. Only nodes with ``reached[v] >= 0`` (a distance from
    :func:`bfs`) can be set.
    """
    if _c is not None:
        return _c.new_nodes(before, type_ids, group_of, old_type_ids, old_group_of, reached)
    return _new_nodes_py(before, type_ids, group_of, old_type_ids, old_group_of, reached)
