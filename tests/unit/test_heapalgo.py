"""The heap-graph algorithms: pure-Python reference against the C twins, and known answers.

Every cross-check runs the ``_..._py`` reference in ``cyclescope.heapalgo`` and the twin
in ``cyclescope._heapalgo`` on the same input and asserts identical results (values and
types). The hand-worked cases, the brute-force checks and the bad-input cases run on
both implementations.
"""

from __future__ import annotations

import os
import random
from array import array

import pytest

from cyclescope import heapalgo
from twins import extension, impls, needs, q

_heapalgo = extension("_heapalgo")
needs_c = needs(_heapalgo, "_heapalgo")
IMPLS = impls(needs_c)


def fn(impl: str, name: str):
    """The pure reference or the C twin of one function."""
    if impl == "py":
        return getattr(heapalgo, f"_{name}_py")
    return getattr(_heapalgo, name)


def csr(adjacency: list[list[int]]) -> tuple[int, array, array]:
    offsets, targets = q([0]), q()
    for succ in adjacency:
        targets.extend(succ)
        offsets.append(len(targets))
    return len(adjacency), offsets, targets


def assert_q_arrays(*arrays) -> None:
    for arr in arrays:
        assert type(arr) is array and arr.typecode == "q"


def random_graph(rng: random.Random, n: int, degree: float) -> tuple[int, array, array]:
    """Cycles, self-loops, duplicate edges and, at low degree, unreachable parts."""
    adjacency = []
    for v in range(n):
        succ = [rng.randrange(n) for _ in range(int(rng.expovariate(1 / degree)))] if n else []
        if succ and rng.random() < 0.1:
            succ.append(succ[0])  # duplicate edge
        if rng.random() < 0.05:
            succ.insert(rng.randrange(len(succ) + 1), v)  # self-loop
        adjacency.append(succ)
    return csr(adjacency)


def random_sources(rng: random.Random, n: int) -> array:
    if n == 0:
        return q()
    count = rng.choice([0, 1, 1, 2, 3, 10])
    sources = [rng.randrange(n) for _ in range(count)]
    if sources and rng.random() < 0.3:
        sources.append(sources[0])  # repeated source
    return q(sources)


def random_blocked(rng: random.Random, n: int, sources: array):
    kind = rng.choice(["none", "none", "few", "many", "a source"])
    if kind == "none":
        return None
    mask = bytearray(n)
    share = 0.05 if kind == "few" else 0.4
    for v in range(n):
        if rng.random() < share:
            mask[v] = rng.choice([1, 2, 255])  # any nonzero byte blocks
    if kind == "a source" and sources:
        mask[sources[0]] = 1
    return bytes(mask) if rng.random() < 0.5 else mask


# --- independent oracles -----------------------------------------------------------------


def successors(n, offsets, targets, blocked):
    """Adjacency lists with blocked nodes and every edge touching them removed."""
    out = []
    for v in range(n):
        if blocked is not None and blocked[v]:
            out.append([])
            continue
        out.append([w for w in targets[offsets[v] : offsets[v + 1]] if blocked is None or not blocked[w]])
    return out


def live_sources(sources, blocked):
    return [s for s in sources if blocked is None or not blocked[s]]


def reachable(adj, sources, removed=None) -> set:
    seen = {s for s in sources if s != removed}
    todo = list(seen)
    while todo:
        v = todo.pop()
        for w in adj[v]:
            if w != removed and w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def bfs_distances(adj, sources) -> dict:
    dist = {}
    frontier = []
    for s in sources:
        if s not in dist:
            dist[s] = 0
            frontier.append(s)
    d = 0
    while frontier:
        d += 1
        nxt = []
        for v in frontier:
            for w in adj[v]:
                if w not in dist:
                    dist[w] = d
                    nxt.append(w)
        frontier = nxt
    return dist


def brute_force_idom(n, adj, sources) -> list:
    """idom straight from the definition: d dominates w iff w is unreachable without d."""
    reach = reachable(adj, sources)
    strict = {w: set() for w in reach}
    for d in reach:
        for w in reach - reachable(adj, sources, removed=d):
            if w != d:
                strict[w].add(d)
    idom = [-2] * n
    for w in reach:
        # The strict dominators form a chain; the immediate one is dominated by all others.
        idom[w] = max(strict[w], key=lambda d: len(strict[d]), default=-1)
        assert all(d in strict[idom[w]] for d in strict[w] - {idom[w]})
    return idom


def chk_idom(n, adj, sources) -> list:
    """Cooper-Harvey-Kennedy iterative dominators over the virtual root (n)."""
    root = n
    seen = {root}
    stack = [(root, iter(sources))]
    post = []
    while stack:
        v, it = stack[-1]
        for w in it:
            if w not in seen:
                seen.add(w)
                stack.append((w, iter(adj[w])))
                break
        else:
            stack.pop()
            post.append(v)
    order = post[::-1]  # reverse postorder
    rpo = {v: i for i, v in enumerate(order)}
    preds = {v: [] for v in order}
    for s in sources:
        preds[s].append(root)
    for v in order:
        if v != root:
            for w in adj[v]:
                preds[w].append(v)
    idom = {root: root}

    def intersect(a, b):
        while a != b:
            while rpo[a] > rpo[b]:
                a = idom[a]
            while rpo[b] > rpo[a]:
                b = idom[b]
        return a

    changed = True
    while changed:
        changed = False
        for v in order[1:]:
            new = None
            for p in preds[v]:
                if p in idom:
                    new = p if new is None else intersect(p, new)
            if idom.get(v) != new:
                idom[v] = new
                changed = True
    out = [-2] * n
    for v in order[1:]:
        out[v] = -1 if idom[v] == root else idom[v]
    return out


def recursive_preorder(adj, sources) -> list:
    order, seen = [], set()

    def visit(v):
        seen.add(v)
        order.append(v)
        for w in adj[v]:
            if w not in seen:
                visit(w)

    for s in sources:
        if s not in seen:
            visit(s)
    return order


def subtree_sums(n, idom, sizes) -> list:
    total = [0] * n
    for w in range(n):
        if idom[w] == -2:
            continue
        v = w
        while v >= 0:
            total[v] += sizes[w]
            v = idom[v]
    return total


# --- cross-checks -------------------------------------------------------------------------


def assert_same_everything(n, offsets, targets, sources, blocked, rng) -> tuple:
    """Every function both ways on one graph; returns (parent, dist, idom, order)."""
    py = fn("py", "bfs")(n, offsets, targets, sources, blocked=blocked)
    c = fn("c", "bfs")(n, offsets, targets, sources, blocked=blocked)
    assert type(c) is tuple
    assert_q_arrays(*c)
    assert c == py
    parent, dist = c

    py = fn("py", "dominators")(n, offsets, targets, sources, blocked=blocked)
    c = fn("c", "dominators")(n, offsets, targets, sources, blocked=blocked)
    assert type(c) is tuple
    assert_q_arrays(*c)
    assert c == py
    idom, order = c

    sizes = q(rng.randrange(0, 5000) for _ in range(n))
    py = fn("py", "retained_sizes")(idom, order, sizes)
    c = fn("c", "retained_sizes")(idom, order, sizes)
    assert_q_arrays(c)
    assert c == py

    for k in (0, 1, 5, n, n + 3):
        for eligible in (None, bytes(rng.randrange(2) for _ in range(n))):
            py = fn("py", "top_indices")(c, k, eligible=eligible)
            got = fn("c", "top_indices")(c, k, eligible=eligible)
            assert_q_arrays(got)
            assert got == py
    got = fn("c", "transpose")(n, offsets, targets)
    assert_q_arrays(*got)
    assert got == fn("py", "transpose")(n, offsets, targets)
    return parent, dist, idom, order


def check_against_definitions(n, offsets, targets, sources, blocked, parent, dist, idom, order):
    adj = successors(n, offsets, targets, blocked)
    starts = live_sources(sources, blocked)
    # bfs: true distances; parents give a shortest path back to a source.
    want = bfs_distances(adj, starts)
    assert list(dist) == [want.get(v, -1) for v in range(n)]
    for v in range(n):
        if dist[v] > 0:
            u = parent[v]
            assert dist[u] == dist[v] - 1 and v in adj[u]
        else:
            assert parent[v] == -1
    # dominators: the recursive DFS preorder and an independent algorithm.
    assert list(order) == recursive_preorder(adj, starts)
    assert list(idom) == chk_idom(n, adj, starts)


@needs_c
@pytest.mark.parametrize("seed", range(60))
def test_random_graphs_agree(seed):
    rng = random.Random(seed)
    n = rng.choice([0, 1, 2, 3, 5, 8, 20, 60, 200, 1000])
    degree = rng.choice([0.5, 1.0, 2.0, 4.0])
    graph = random_graph(rng, n, degree)
    for _ in range(3):
        sources = random_sources(rng, n)
        blocked = random_blocked(rng, n, sources)
        results = assert_same_everything(*graph, sources, blocked, rng)
        if n <= 200:
            check_against_definitions(*graph, sources, blocked, *results)


@needs_c
def test_big_random_graph_agrees():
    """A graph where DFS and eval paths get long and compression matters."""
    rng = random.Random(99)
    n = 30_000
    graph = random_graph(rng, n, 2.5)
    sources = q([rng.randrange(n) for _ in range(5)])
    parent, dist, idom, order = assert_same_everything(*graph, sources, None, rng)
    assert len(order) > n // 2
    adj = successors(*graph, None)
    assert list(idom) == chk_idom(n, adj, list(sources))


def random_fallback(rng: random.Random, n: int, sources: array, blocked, reached) -> array:
    """Fallback roots mixing fresh nodes with the awkward kinds: sources again, repeats,
    blocked nodes and nodes the sources already reach."""
    if n == 0:
        return q()
    fallback = [rng.randrange(n) for _ in range(rng.choice([0, 1, 2, 3, 8]))]
    if sources and rng.random() < 0.4:
        fallback.insert(rng.randrange(len(fallback) + 1), rng.choice(sources))
    if reached and rng.random() < 0.5:
        fallback.insert(rng.randrange(len(fallback) + 1), rng.choice(reached))
    stopped = [v for v in range(n) if blocked is not None and blocked[v]]
    if stopped and rng.random() < 0.5:
        fallback.insert(rng.randrange(len(fallback) + 1), rng.choice(stopped))
    if fallback and rng.random() < 0.4:
        fallback.append(rng.choice(fallback))  # repeated fallback node
    return q(fallback)


def check_fallback_against_definitions(n, offsets, targets, sources, blocked, fallback, parent, dist):
    """The sources' part is plain bfs; the rest is a bfs from the fallback nodes the
    sources leave unreached, over only the unreached nodes."""
    adj = successors(n, offsets, targets, blocked)
    first = bfs_distances(adj, live_sources(sources, blocked))
    rest_adj = [[] if v in first else [w for w in adj[v] if w not in first] for v in range(n)]
    second = bfs_distances(rest_adj, [f for f in live_sources(fallback, blocked) if f not in first])
    assert not first.keys() & second.keys()
    # Over all unblocked nodes, too: the sources' part has no edge out to the rest.
    everything = bfs_distances(adj, live_sources(fallback, blocked))
    assert all(everything[v] == d for v, d in second.items())
    want = {**first, **second}
    assert list(dist) == [want.get(v, -1) for v in range(n)]
    for v in range(n):
        if dist[v] > 0:
            u = parent[v]
            assert dist[u] == dist[v] - 1 and v in adj[u]
            assert (u in first) == (v in first)  # a path never changes phase
        else:
            assert parent[v] == -1


def two_calls(n, offsets, targets, sources, blocked, fallback) -> tuple:
    """What a caller got before ``fallback``: a second bfs with the reached nodes blocked."""
    parent, dist = heapalgo._bfs_py(n, offsets, targets, sources, blocked=blocked)
    reached = bytearray(n if blocked is None else blocked)
    for v in range(n):
        if dist[v] >= 0:
            reached[v] = 1
    parent2, dist2 = heapalgo._bfs_py(n, offsets, targets, fallback, blocked=reached)
    for v in range(n):
        if dist2[v] >= 0:
            parent[v], dist[v] = parent2[v], dist2[v]
    return parent, dist


@needs_c
@pytest.mark.parametrize("seed", range(60))
def test_bfs_fallback_random_graphs_agree(seed):
    rng = random.Random(7000 + seed)
    n = rng.choice([0, 1, 2, 3, 5, 8, 20, 60, 200, 1000])
    graph = random_graph(rng, n, rng.choice([0.5, 1.0, 2.0, 4.0]))
    for _ in range(4):
        sources = random_sources(rng, n)
        blocked = random_blocked(rng, n, sources)
        plain = fn("c", "bfs")(*graph, sources, blocked=blocked)
        reached = [v for v in range(n) if plain[1][v] >= 0]
        fallback = random_fallback(rng, n, sources, blocked, reached)
        py = fn("py", "bfs")(*graph, sources, blocked=blocked, fallback=fallback)
        c = fn("c", "bfs")(*graph, sources, blocked=blocked, fallback=fallback)
        assert type(c) is tuple
        assert_q_arrays(*c)
        assert c == py
        assert c == two_calls(*graph, sources, blocked, fallback)
        parent, dist = c
        # What the sources reach is exactly as without fallback.
        for v in reached:
            assert (parent[v], dist[v]) == (plain[0][v], plain[1][v])
        if n <= 200:
            check_fallback_against_definitions(*graph, sources, blocked, fallback, parent, dist)
        # No or empty fallback: bit for bit the plain search.
        assert fn("c", "bfs")(*graph, sources, blocked=blocked, fallback=q()) == plain
        assert fn("py", "bfs")(*graph, sources, blocked=blocked, fallback=None) == plain


@needs_c
def test_bfs_fallback_big_random_graph_agrees():
    rng = random.Random(17)
    n = 30_000
    graph = random_graph(rng, n, 1.2)
    sources = q([rng.randrange(n) for _ in range(3)])
    fallback = q([rng.randrange(n) for _ in range(200)])
    c = fn("c", "bfs")(*graph, sources, fallback=fallback)
    assert c == fn("py", "bfs")(*graph, sources, fallback=fallback)
    assert c == two_calls(*graph, sources, None, fallback)
    assert 0 < sum(d >= 0 for d in fn("c", "bfs")(*graph, sources)[1]) < sum(d >= 0 for d in c[1])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("seed", range(40))
def test_dominators_brute_force(impl, seed):
    rng = random.Random(500 + seed)
    n = rng.choice([1, 2, 4, 7, 12, 25])
    graph = random_graph(rng, n, rng.choice([1.0, 2.0, 3.0]))
    sources = random_sources(rng, n)
    blocked = random_blocked(rng, n, sources)
    idom, order = fn(impl, "dominators")(*graph, sources, blocked=blocked)
    adj = successors(*graph, blocked)
    starts = live_sources(sources, blocked)
    assert list(idom) == brute_force_idom(n, adj, starts)
    assert list(order) == recursive_preorder(adj, starts)
    sizes = q(rng.randrange(100) for _ in range(n))
    assert list(fn(impl, "retained_sizes")(idom, order, sizes)) == subtree_sums(n, idom, sizes)


# --- hand-worked answers -------------------------------------------------------------------

# The flowgraph of Lengauer and Tarjan's 1979 paper (figure 1), R = 0.
R, A, B, C, D, E, F, G, H, I, J, K, L = range(13)
LT_GRAPH = csr(
    [
        [A, B, C],  # R
        [D],  # A
        [A, D, E],  # B
        [F, G],  # C
        [L],  # D
        [H],  # E
        [I],  # F
        [I, J],  # G
        [E, K],  # H
        [K],  # I
        [I],  # J
        [I, R],  # K
        [H],  # L
    ]
)


@pytest.mark.parametrize("impl", IMPLS)
def test_lengauer_tarjan_paper_graph(impl):
    idom, order = fn(impl, "dominators")(*LT_GRAPH, q([R]))
    #                R   A  B  C  D  E  F  G  H  I  J  K  L
    assert idom == q([-1, R, R, R, R, R, C, C, R, R, G, R, D])
    assert order == q([R, A, D, L, H, E, K, I, B, C, F, G, J])
    sizes = q(1 << v for v in range(13))
    retained = fn(impl, "retained_sizes")(idom, order, sizes)
    assert retained[R] == (1 << 13) - 1
    assert retained[C] == (1 << C) | (1 << F) | (1 << G) | (1 << J)
    assert retained[D] == (1 << D) | (1 << L)
    assert retained[I] == 1 << I
    # Entered at I instead: I -> K -> R -> everything else.
    idom, order = fn(impl, "dominators")(*LT_GRAPH, q([I]))
    assert idom[I] == -1 and idom[K] == I and idom[R] == K and idom[A] == R
    assert order[:3] == q([I, K, R])


@pytest.mark.parametrize("impl", IMPLS)
def test_diamond(impl):
    graph = csr([[1, 2], [3], [3], []])
    assert fn(impl, "dominators")(*graph, q([0])) == (q([-1, 0, 0, 0]), q([0, 1, 3, 2]))
    assert fn(impl, "bfs")(*graph, q([0])) == (q([-1, 0, 0, 1]), q([0, 1, 1, 2]))
    # One arm blocked: the other arm now dominates the join.
    assert fn(impl, "dominators")(*graph, q([0]), blocked=b"\0\1\0\0") == (q([-1, -2, 0, 2]), q([0, 2, 3]))
    assert fn(impl, "bfs")(*graph, q([0]), blocked=b"\0\1\0\0") == (q([-1, -1, 0, 2]), q([0, -1, 1, 2]))


@pytest.mark.parametrize("impl", IMPLS)
def test_chain_and_unreachable(impl):
    graph = csr([[1], [2], [3], [], [0]])  # 4 -> 0 -> 1 -> 2 -> 3
    assert fn(impl, "dominators")(*graph, q([0])) == (q([-1, 0, 1, 2, -2]), q([0, 1, 2, 3]))
    assert fn(impl, "bfs")(*graph, q([0])) == (q([-1, 0, 1, 2, -1]), q([0, 1, 2, 3, -1]))
    idom, order = fn(impl, "dominators")(*graph, q([0]))
    assert fn(impl, "retained_sizes")(idom, order, q([1, 2, 4, 8, 16])) == q([15, 14, 12, 8, 0])


@pytest.mark.parametrize("impl", IMPLS)
def test_two_sources(impl):
    # 0 -> 2, 1 -> 2, 2 -> 3: 2 is reached from either source, so only the root dominates it.
    graph = csr([[2], [2], [3], []])
    assert fn(impl, "dominators")(*graph, q([0, 1])) == (q([-1, -1, -1, 2]), q([0, 2, 3, 1]))
    # A source the first source reaches still has the root as its immediate dominator.
    graph = csr([[1], [2], []])
    assert fn(impl, "dominators")(*graph, q([0, 1])) == (q([-1, -1, 1]), q([0, 1, 2]))
    assert fn(impl, "dominators")(*graph, q([0])) == (q([-1, 0, 1]), q([0, 1, 2]))
    # Repeated and blocked sources are skipped; no sources reach nothing.
    assert fn(impl, "dominators")(*graph, q([2, 2, 0]), blocked=b"\1\0\0") == (q([-2, -2, -1]), q([2]))
    assert fn(impl, "dominators")(*graph, q()) == (q([-2, -2, -2]), q())
    assert fn(impl, "bfs")(*graph, q([2, 2, 0]), blocked=b"\1\0\0") == (q([-1, -1, -1]), q([-1, -1, 0]))


@pytest.mark.parametrize("impl", IMPLS)
def test_bfs_source_priority_and_csr_order(impl):
    # 0 -> 2, 3 -> 2, 3 -> 1, 1 -> 4, 2 -> 4: sources [3, 0].
    graph = csr([[2], [4], [4], [1, 2], []])
    parent, dist = fn(impl, "bfs")(*graph, q([3, 0]))
    assert dist == q([0, 1, 1, 0, 2])
    assert parent[2] == 3  # queued by source 3 before 0 is expanded
    assert parent[4] == 1  # 1 was queued before 2 (CSR order of 3's successors)
    parent, dist = fn(impl, "bfs")(*graph, q([0, 3]))
    assert parent[2] == 0 and parent[4] == 2


# S = 0 -> 1 -> 2 -> 3 -> 4 -> X = 5, and F = 6 -> X directly; F -> Y = 7 -> Z = 8 -> 1;
# 9 has no edges.
S, X, F, Y, Z = 0, 5, 6, 7, 8
FALLBACK_GRAPH = csr([[1], [2], [3], [4], [X], [], [X, Y], [Z], [1], []])


@pytest.mark.parametrize("impl", IMPLS)
def test_bfs_fallback_hand_worked(impl):
    bfs = fn(impl, "bfs")
    #                   S  1  2  3  4  X  F  Y  Z  9
    want = (q([-1, S, 1, 2, 3, 4, -1, F, Y, -1]), q([0, 1, 2, 3, 4, 5, 0, 1, 2, -1]))
    # X: the source's path, 5 long, not the fallback node's, 1 long. Y and Z only F
    # reaches: distances from F. Z -> 1 does not take 1 away from the source.
    assert bfs(*FALLBACK_GRAPH, q([S]), fallback=q([F])) == want
    # Both as sources instead: F's shorter path wins X.
    parent, dist = bfs(*FALLBACK_GRAPH, q([S, F]))
    assert (parent[X], dist[X]) == (F, 1)
    # Without fallback (None, empty) the part only F reaches is unreached.
    plain = (q([-1, S, 1, 2, 3, 4, -1, -1, -1, -1]), q([0, 1, 2, 3, 4, 5, -1, -1, -1, -1]))
    assert bfs(*FALLBACK_GRAPH, q([S])) == plain
    assert bfs(*FALLBACK_GRAPH, q([S]), fallback=None) == plain
    assert bfs(*FALLBACK_GRAPH, q([S]), None, q()) == plain
    # Fallback nodes that repeat, are sources, or are already reached are skipped.
    assert bfs(*FALLBACK_GRAPH, q([S]), fallback=q([X, S, F, 3, F])) == want
    # All unreached fallback nodes start at distance 0, in the order given.
    assert bfs(*FALLBACK_GRAPH, q([S]), fallback=q([Y, F])) == (
        q([-1, S, 1, 2, 3, 4, -1, -1, Y, -1]),
        q([0, 1, 2, 3, 4, 5, 0, 0, 1, -1]),
    )
    # A blocked fallback node is never entered; the next one still counts.
    assert bfs(*FALLBACK_GRAPH, q([S]), blocked=b"\0" * 6 + b"\1\0\0\0", fallback=q([F, Z])) == (
        q([-1, S, 1, 2, 3, 4, -1, -1, -1, -1]),
        q([0, 1, 2, 3, 4, 5, -1, -1, 0, -1]),
    )
    # No sources: the fallback nodes act as sources.
    assert bfs(*FALLBACK_GRAPH, q(), fallback=q([F])) == bfs(*FALLBACK_GRAPH, q([F]))
    assert bfs(*FALLBACK_GRAPH, q(), fallback=q([F])) == (
        q([-1, Z, 1, 2, 3, F, -1, F, Y, -1]),
        q([-1, 3, 4, 5, 6, 1, 0, 1, 2, -1]),
    )
    # A source blocked: what it would have reached goes to the fallback node.
    assert bfs(*FALLBACK_GRAPH, q([S]), b"\1" + b"\0" * 9, q([F])) == (
        q([-1, Z, 1, 2, 3, F, -1, F, Y, -1]),
        q([-1, 3, 4, 5, 6, 1, 0, 1, 2, -1]),
    )


@pytest.mark.parametrize("impl", IMPLS)
def test_self_loops_and_duplicate_edges(impl):
    graph = csr([[0, 1, 1], [1, 2], [0]])
    assert fn(impl, "dominators")(*graph, q([0])) == (q([-1, 0, 1]), q([0, 1, 2]))
    assert fn(impl, "transpose")(*graph) == (q([0, 2, 4, 5]), q([0, 2, 0, 1, 1]))  # 0 -> 1 once
    assert fn(impl, "transpose")(*csr([[], []])) == (q([0, 0, 0]), q())


@pytest.mark.parametrize("impl", IMPLS)
def test_retained_sizes_of_a_tree(impl):
    #       0
    #     1   2
    #    3 4   5     and 6 unreachable
    idom = q([-1, 0, 0, 1, 1, 2, -2])
    order = q([0, 1, 3, 4, 2, 5])
    sizes = q([1, 10, 100, 1000, 10000, 100000, 7])
    assert fn(impl, "retained_sizes")(idom, order, sizes) == q([111111, 11010, 100100, 1000, 10000, 100000, 0])
    # Any order with each dominator before its nodes gives the same sums.
    assert fn(impl, "retained_sizes")(idom, q([0, 2, 5, 1, 4, 3]), sizes) == q(
        [111111, 11010, 100100, 1000, 10000, 100000, 0]
    )
    # Several roots (idom -1) are each their own tree.
    assert fn(impl, "retained_sizes")(q([-1, -1, 1]), q([1, 2, 0]), q([1, 2, 4])) == q([1, 6, 4])
    assert fn(impl, "retained_sizes")(q(), q(), q()) == q()


@pytest.mark.parametrize("impl", IMPLS)
def test_top_indices(impl):
    top = fn(impl, "top_indices")
    values = q([5, 1, 5, 7, 0, 7, -3])
    assert top(values, 3) == q([3, 5, 0])  # ties: lower index first
    assert top(values, 0) == q()
    assert top(values, 100) == q([3, 5, 0, 2, 1, 4, 6])
    assert top(values, 10**30) == q([3, 5, 0, 2, 1, 4, 6])
    assert top(values, 2, eligible=b"\1\1\1\0\1\0\1") == q([0, 2])
    assert top(values, 9, eligible=bytearray(7)) == q()
    assert top(q(), 4) == q()
    assert top(q([-(2**63), 2**63 - 1, -(2**63)]), 3) == q([1, 0, 2])
    rng = random.Random(3)
    for _ in range(50):
        values = q(rng.randrange(-5, 5) for _ in range(rng.randrange(40)))
        mask = bytes(rng.randrange(2) for _ in values)
        k = rng.randrange(45)
        want = sorted((i for i in range(len(values)) if mask[i]), key=lambda i: (-values[i], i))[:k]
        assert top(values, k, eligible=mask) == q(want)


# --- buffers, bad input --------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_other_buffer_kinds(impl):
    n, offsets, targets = LT_GRAPH
    want = fn(impl, "dominators")(n, offsets, targets, q([R]))
    raw = bytearray(len(targets) * 8 + 1)
    raw[1:] = targets.tobytes()
    misaligned = memoryview(raw)[1:].cast("q")
    as_long = array("l", offsets) if array("l").itemsize == 8 else offsets
    assert fn(impl, "dominators")(n, as_long, misaligned, memoryview(q([R]))) == want
    mask = bytearray(n)
    assert fn(impl, "dominators")(n, offsets, targets, q([R]), blocked=array("b", mask)) == want
    assert fn(impl, "dominators")(n, offsets, targets, q([R]), blocked=memoryview(mask)) == want
    assert fn(impl, "bfs")(n, offsets, targets, q([R]), blocked=None) == fn(impl, "bfs")(n, offsets, targets, q([R]))
    assert fn(impl, "top_indices")(memoryview(q([1, 3, 2])), 2, eligible=memoryview(b"\1\1\1")) == q([1, 2])


G2 = (2, q([0, 1, 2]), q([1, 0]))  # 0 <-> 1

BAD_GRAPHS = [
    ((-1, q([0]), q()), "n must be >= 0"),
    ((2, q([0, 1]), q([0])), "offsets must have n \\+ 1 = 3 items, not 2"),
    ((2, q([1, 1, 1]), q([0])), "offsets\\[0\\] must be 0"),
    ((2, q([0, 2, 1]), q([0, 1])), "non-decreasing \\(at 2\\)"),
    ((2, q([0, 1, 2]), q([0])), "offsets\\[n\\] must equal len\\(targets\\) = 1, not 2"),
    ((2, q([0, 1, 2]), q([0, 2])), "targets\\[1\\] = 2 is not a node in \\[0, 2\\)"),
    ((2, q([0, 1, 2]), q([-1, 0])), "targets\\[0\\] = -1"),
    ((2, array("i", [0, 1, 2]), q([0, 1])), "offsets must be .* int64 .*got format 'i'"),
    ((2, q([0, 1, 2]), memoryview(bytes(16))), "targets must be .* int64 .*got format 'B'"),
    ((2, q([0, 1, 2]), array("d", [0, 1])), "targets must be .* int64"),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("graph, match", BAD_GRAPHS)
def test_bad_graphs_are_rejected(impl, graph, match):
    for call in (
        lambda: fn(impl, "bfs")(*graph, q()),
        lambda: fn(impl, "dominators")(*graph, q()),
        lambda: fn(impl, "transpose")(*graph),
    ):
        with pytest.raises(ValueError, match=match):
            call()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["bfs", "dominators"])
@pytest.mark.parametrize(
    "sources, blocked, match",
    [
        (q([0, 2]), None, "sources\\[1\\] = 2 is not a node in \\[0, 2\\)"),
        (q([-1]), None, "sources\\[0\\] = -1"),
        (array("I", [0]), None, "sources must be .* int64"),
        (q([0]), b"\0", "blocked must have n = 2 items, not 1"),
        (q([0]), b"\0\0\0", "blocked must have n = 2 items, not 3"),
        (q([0]), q([0, 0]), "blocked must be a one-dimensional buffer of bytes"),
    ],
)
def test_bad_sources_and_masks_are_rejected(impl, name, sources, blocked, match):
    with pytest.raises(ValueError, match=match):
        fn(impl, name)(*G2, sources, blocked=blocked)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "graph, sources, blocked, fallback, match",
    [
        (G2, q([0]), None, q([1, 2]), "fallback\\[1\\] = 2 is not a node in \\[0, 2\\)"),
        (G2, q([0]), None, q([-1]), "fallback\\[0\\] = -1 is not a node"),
        (G2, q([0]), None, array("i", [0]), "fallback must be .* int64 .*got format 'i'"),
        (G2, q([0]), None, b"\0" * 8, "fallback must be .* int64 .*got format 'B'"),
        # Kinds first (fallback's after blocked's), then lengths, then values.
        (G2, array("d", [0]), None, array("i", [0]), "sources must be .* int64"),
        (G2, q([0]), q([0, 0]), array("i", [0]), "blocked must be a one-dimensional buffer of bytes"),
        ((2, q([0, 1]), q([0])), q([0]), None, array("i", [0]), "fallback must be .* int64"),
        (G2, q([0]), b"\0", array("i", [0]), "fallback must be .* int64"),
        (G2, q([0]), b"\0", q([5]), "blocked must have n = 2 items, not 1"),
        ((2, q([0, 1]), q([0])), q([0]), None, q([5]), "offsets must have n \\+ 1 = 3 items"),
        ((2, q([0, 1, 2]), q([0, 2])), q([0]), None, q([5]), "targets\\[1\\] = 2"),
        (G2, q([3]), None, q([5]), "sources\\[0\\] = 3"),
    ],
)
def test_bad_fallback_is_rejected(impl, graph, sources, blocked, fallback, match):
    with pytest.raises(ValueError, match=match):
        fn(impl, "bfs")(*graph, sources, blocked=blocked, fallback=fallback)


@needs_c
@pytest.mark.parametrize("seed", range(40))
def test_bad_fallback_fails_alike_both_ways(seed):
    rng = random.Random(4000 + seed)
    n, offsets, targets = random_graph(rng, rng.choice([1, 2, 5, 12]), 2.0)
    sources = q([rng.randrange(n) for _ in range(3)])
    fallback = q([rng.randrange(n) for _ in range(3)])
    blocked = None
    for _ in range(rng.randrange(1, 4)):
        which = rng.randrange(5)
        if which == 0:
            fallback = corrupt(rng, fallback, n)
        elif which == 1:
            fallback = rng.choice(
                [array("d", fallback), array("i", fallback), b"\0" * 16, memoryview(q([0]))[::1]]
            )
        elif which == 2:
            sources = corrupt(rng, sources, n)
        elif which == 3:
            blocked = rng.choice([bytes(n + 1), bytes(n), q([0] * n)])
        else:
            targets = corrupt(rng, targets, n)
    py = outcome(lambda: fn("py", "bfs")(n, offsets, targets, sources, blocked=blocked, fallback=fallback))
    c = outcome(lambda: fn("c", "bfs")(n, offsets, targets, sources, blocked=blocked, fallback=fallback))
    assert c == py


@pytest.mark.parametrize("impl", IMPLS)
def test_other_bad_arguments(impl):
    with pytest.raises(TypeError):
        fn(impl, "bfs")(2, [0, 1, 2], q([1, 0]), q([0]))
    with pytest.raises(TypeError):
        fn(impl, "dominators")(2.0, *G2[1:], q([0]))
    with pytest.raises(OverflowError):
        fn(impl, "dominators")(2**70, *G2[1:], q([0]))
    with pytest.raises(ValueError, match="k must be >= 0"):
        fn(impl, "top_indices")(q([1]), -1)
    with pytest.raises(TypeError):
        fn(impl, "top_indices")(q([1]), 1.5)
    with pytest.raises(ValueError, match="eligible must have len\\(values\\) = 2 items, not 1"):
        fn(impl, "top_indices")(q([1, 2]), 1, eligible=b"\1")
    with pytest.raises(ValueError, match="values must be .* int64"):
        fn(impl, "top_indices")(array("f", [1.0]), 1)
    with pytest.raises(BufferError):
        fn(impl, "top_indices")(memoryview(q([1, 2, 3, 4]))[::2], 1)


def outcome(call):
    try:
        return "ok", call()
    except Exception as exc:  # noqa: BLE001 - the exception is the result compared
        return type(exc), str(exc)


def corrupt(rng: random.Random, arr: array, n: int) -> array:
    arr = q(arr)
    how = rng.randrange(4)
    if how == 0 and arr:
        arr[rng.randrange(len(arr))] = rng.choice([-1, n, n + 5, -(2**63)])
    elif how == 1 and arr:
        del arr[rng.randrange(len(arr))]
    elif how == 2:
        arr.append(rng.randrange(-1, n + 2))
    else:
        arr.reverse()
    return arr


@needs_c
@pytest.mark.parametrize("seed", range(80))
def test_bad_input_fails_alike_both_ways(seed):
    """Several things wrong at once: both twins report the same first one."""
    rng = random.Random(2000 + seed)
    n, offsets, targets = random_graph(rng, rng.choice([1, 2, 5, 12]), 2.0)
    sources = q([rng.randrange(n) for _ in range(3)])
    blocked = bytes(n)
    for _ in range(rng.randrange(1, 4)):
        which = rng.randrange(6)
        if which == 0:
            n = rng.choice([-1, n - 1, n + 1])
        elif which == 1:
            offsets = corrupt(rng, offsets, len(targets))
        elif which == 2:
            targets = corrupt(rng, targets, n)
        elif which == 3:
            sources = corrupt(rng, sources, n)
        elif which == 4:
            blocked = rng.choice([bytes(max(n + 1, 0)), bytes(max(n - 1, 0)), q([0] * max(n, 0))])
        else:
            offsets = rng.choice([array("d", offsets), memoryview(bytes(8 * len(offsets)))])
    for name in ("bfs", "dominators"):
        py = outcome(lambda: fn("py", name)(n, offsets, targets, sources, blocked=blocked))
        c = outcome(lambda: fn("c", name)(n, offsets, targets, sources, blocked=blocked))
        assert c == py
    py = outcome(lambda: fn("py", "transpose")(n, offsets, targets))
    assert outcome(lambda: fn("c", "transpose")(n, offsets, targets)) == py

    # A valid tree, then damaged.
    n, offsets, targets = random_graph(rng, 12, 2.0)
    idom, order = fn("c", "dominators")(n, offsets, targets, q([0]))
    sizes = q(rng.randrange(100) for _ in range(n))
    for _ in range(rng.randrange(1, 3)):
        which = rng.randrange(3)
        if which == 0:
            idom = corrupt(rng, idom, n)
        elif which == 1:
            order = corrupt(rng, order, n)
        else:
            sizes = corrupt(rng, sizes, n)
    py = outcome(lambda: fn("py", "retained_sizes")(idom, order, sizes))
    assert outcome(lambda: fn("c", "retained_sizes")(idom, order, sizes)) == py
    k = rng.choice([-1, 0, 3, 2**64])
    eligible = rng.choice([None, bytes(len(sizes)), bytes(len(sizes) + 1), q([1] * len(sizes))])
    py = outcome(lambda: fn("py", "top_indices")(sizes, k, eligible=eligible))
    assert outcome(lambda: fn("c", "top_indices")(sizes, k, eligible=eligible)) == py


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "idom, order, sizes, match",
    [
        (q([-1, 0]), q([0, 1]), q([1]), "sizes must have len\\(idom\\) = 2 items, not 1"),
        (q([-1, 0]), q([0, 2]), q([1, 1]), "order\\[1\\] = 2 is not a node in \\[0, 2\\)"),
        (q([-1, 0]), q([0, 0]), q([1, 1]), "order\\[1\\] = 0 repeats order\\[0\\]"),
        (q([-1, 0]), q([0, 1]), q([1, -1]), "sizes\\[1\\] = -1 is negative"),
        (q([-1, 2]), q([0, 1]), q([1, 1]), "idom\\[1\\] = 2 is neither -2, -1 nor a node"),
        (q([-1, -3]), q([0, 1]), q([1, 1]), "idom\\[1\\] = -3 is neither"),
        (q([-1, 0]), q([0]), q([1, 1]), "idom\\[1\\] = 0 but node 1 is not in order"),
        (q([-1, -2]), q([0, 1]), q([1, 1]), "idom\\[1\\] = -2 but node 1 is in order"),
        (q([1, -1]), q([0, 1]), q([1, 1]), "idom\\[0\\] = 1 does not come before node 0 in order"),
        (q([0, -1]), q([0, 1]), q([1, 1]), "idom\\[0\\] = 0 does not come before node 0"),
        (q([-1, 2, -2]), q([0, 1]), q([1, 1, 1]), "idom\\[1\\] = 2 does not come before node 1"),
        (array("i", [-1]), q([0]), q([1]), "idom must be .* int64"),
        (q([-1]), b"\0" * 8, q([1]), "order must be .* int64"),
    ],
)
def test_bad_trees_are_rejected(impl, idom, order, sizes, match):
    with pytest.raises(ValueError, match=match):
        fn(impl, "retained_sizes")(idom, order, sizes)


@pytest.mark.parametrize("impl", IMPLS)
def test_retained_sizes_overflow(impl):
    big = 2**62
    with pytest.raises(OverflowError, match="do not fit in 64 bits"):
        fn(impl, "retained_sizes")(q([-1, 0, 0]), q([0, 1, 2]), q([big, big, big]))
    assert fn(impl, "retained_sizes")(q([-1, 0, -1]), q([0, 1, 2]), q([big, big - 1, big])) == q(
        [2**63 - 1, big - 1, big]
    )


def test_dominators_node_limit(monkeypatch):
    # A graph past the real limit (2**31 - 2 nodes) needs tens of gigabytes; the pure
    # twin's check is shown on a lowered limit, the C twin's is the same comparison.
    monkeypatch.setattr(heapalgo, "DOMINATORS_MAX_NODES", 2)
    with pytest.raises(ValueError, match="n = 3 is more than the 2 nodes dominators handles"):
        heapalgo._dominators_py(*csr([[1], [2], []]), q([0]))
    assert heapalgo._dominators_py(*csr([[1], []]), q([0])) == (q([-1, 0]), q([0, 1]))


# --- scale --------------------------------------------------------------------------------


def chain_with_back_edges(n: int) -> tuple[int, array, array]:
    """0 -> 1 -> ... -> n-1, and every node also -> 1: the DFS is n deep and the first
    evaluation walks (and compresses) a forest path n - 2 long."""
    offsets, targets = q([0]), q()
    for v in range(n):
        if v + 1 < n:
            targets.append(v + 1)
        targets.append(1)
        offsets.append(len(targets))
    return n, offsets, targets


def chain(n: int, close: bool) -> tuple[int, array, array]:
    offsets = q(range(n + 1))
    targets = q(range(1, n + 1))
    if close:
        targets[n - 1] = 0
    else:
        del targets[n - 1]
        offsets[n] = n - 1
    return n, offsets, targets


def check_long_chains(impl: str, n: int) -> None:
    for close in (False, True):
        graph = chain(n, close)
        idom, order = fn(impl, "dominators")(*graph, q([0]))
        assert idom == q([-1, *range(n - 1)]) and order == q(range(n))
        parent, dist = fn(impl, "bfs")(*graph, q([0]))
        assert dist == q(range(n)) and parent == q([-1, *range(n - 1)])
        sizes = q([1]) * n
        assert fn(impl, "retained_sizes")(idom, order, sizes) == q(range(n, 0, -1))
    graph = chain_with_back_edges(n)
    idom, order = fn(impl, "dominators")(*graph, q([0]))
    assert idom == q([-1, *range(n - 1)]) and order == q(range(n))


@needs_c
def test_c_two_million_deep():
    check_long_chains("c", 2_000_000)


def test_pure_deep_chains():
    check_long_chains("py", 200_000)


@needs_c
def test_c_heap_sized_random_graph():
    """A heap-sized graph: just that it runs and agrees with its own invariants."""
    rng = random.Random(11)
    n, m = 300_000, 1_200_000
    offsets = q(sorted(rng.randrange(m + 1) for _ in range(n - 1)))
    offsets.insert(0, 0)
    offsets.append(m)
    targets = q(rng.randrange(n) for _ in range(m))
    sources = q([0, 1, 2])
    parent, dist = _heapalgo.bfs(n, offsets, targets, sources)
    idom, order = _heapalgo.dominators(n, offsets, targets, sources)
    reached = [v for v in range(n) if dist[v] >= 0]
    assert sorted(order) == reached
    pos = {v: k for k, v in enumerate(order)}
    assert all(idom[v] == -1 or pos[idom[v]] < pos[v] for v in order)
    retained = _heapalgo.retained_sizes(idom, order, q([1]) * n)
    assert sum(retained[v] for v in order if idom[v] == -1) == len(order)
    top = _heapalgo.top_indices(retained, 10)
    assert list(top) == sorted(range(n), key=lambda v: (-retained[v], v))[:10]


# --- positions ----------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_positions_hand_worked(impl):
    positions = fn(impl, "positions")
    addresses = q([40, 16, 32, 16, 48, 40, -8])
    got = positions(addresses, q([16, 40, 99, -8, 48, 16, 0]))
    assert_q_arrays(got)
    assert got == q([1, 0, -1, 6, 4, 1, -1])  # duplicates: the first index; missing: -1
    assert positions(addresses, q()) == q()
    assert positions(q(), q([1, 2, 1])) == q([-1, -1, -1])
    assert positions(q(), q()) == q()
    # The table's sentinels (-2, -1) and the extremes are ordinary values.
    extremes = q([0, -1, -2, -(2**63), 2**63 - 1, -2, -1])
    assert positions(extremes, q([-2, -1, 2**63 - 1, -(2**63), 0, 3])) == q([2, 1, 4, 3, 0, -1])
    # Other int64 buffers.
    raw = bytearray(len(addresses) * 8 + 1)
    raw[1:] = addresses.tobytes()
    misaligned = memoryview(raw)[1:].cast("q")
    as_long = array("l", [16, 99]) if array("l").itemsize == 8 else q([16, 99])
    assert positions(misaligned, as_long) == q([1, -1])
    assert positions(memoryview(addresses), memoryview(q([48]))) == q([4])


@needs_c
@pytest.mark.parametrize("seed", range(30))
def test_positions_random_agree(seed):
    rng = random.Random(9000 + seed)
    size = rng.choice([0, 1, 5, 100, 3000])
    spread = rng.choice([3, 50, 10**6, 2**63])
    if rng.random() < 0.5:  # heap-like: aligned, clustered addresses
        base = rng.randrange(2**40) * 16
        addresses = q(base + 16 * rng.randrange(spread if spread < 2**40 else 2**40) for _ in range(size))
    else:
        addresses = q(rng.randrange(-spread, spread) for _ in range(size))
    queries = [rng.randrange(-spread, spread) for _ in range(rng.choice([0, 1, 3, 40, 600, 5000]))]
    if addresses:
        queries += [rng.choice(addresses) for _ in range(rng.choice([1, 20, 2000]))]
    rng.shuffle(queries)
    queries = q(queries)
    py = fn("py", "positions")(addresses, queries)
    c = fn("c", "positions")(addresses, queries)
    assert_q_arrays(c)
    assert c == py
    first = {}
    for i, a in enumerate(addresses):
        first.setdefault(a, i)
    assert list(c) == [first.get(v, -1) for v in queries]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "addresses, queries, error, match",
    [
        (array("i", [1]), q([1]), ValueError, "addresses must be .* int64 .*got format 'i'"),
        (q([1]), array("d", [1]), ValueError, "queries must be .* int64 .*got format 'd'"),
        (b"\0" * 8, q([1]), ValueError, "addresses must be .* int64 .*got format 'B'"),
        (q([1]), memoryview(bytes(16)).cast("Q"), ValueError, "queries must be .* int64 .*got format 'Q'"),
        (array("i", [1]), array("d", [1]), ValueError, "addresses must be"),  # the first one
        (q([1]), b"", ValueError, "queries must be .* int64"),  # even when empty
        ([1, 2], q([1]), TypeError, None),
        (q([1]), None, TypeError, None),
        (memoryview(q([1, 2, 3, 4]))[::2], q([1]), BufferError, None),
    ],
)
def test_positions_bad_input(impl, addresses, queries, error, match):
    with pytest.raises(error, match=match):
        fn(impl, "positions")(addresses, queries)


@needs_c
def test_positions_bad_input_fails_alike_both_ways():
    bad = [
        q([1, 2]),
        array("i", [1]),
        array("d", [1.0]),
        b"",
        bytes(8),
        array("Q", [1]),
        memoryview(bytes(16)).cast("q", (2, 1)),  # two-dimensional
        None,
    ]
    for addresses in bad:
        for queries in bad:
            py = outcome(lambda: fn("py", "positions")(addresses, queries))
            c = outcome(lambda: fn("c", "positions")(addresses, queries))
            if py[0] is TypeError:  # not a buffer at all: the wording is Python's own
                assert c[0] is TypeError
            else:
                assert c == py


@needs_c
def test_positions_at_heap_scale():
    rng = random.Random(5)
    addresses = q(0x7F00_0000_0000 + 16 * v for v in rng.sample(range(4_000_000), 1_000_000))
    addresses[10] = addresses[999_990]  # a duplicate: the earlier index counts
    queries = q([addresses[i] for i in rng.sample(range(1_000_000), 2500)] + [1, 2, 3, addresses[999_990]])
    got = _heapalgo.positions(addresses, queries)
    first = {}
    for i, a in enumerate(addresses):
        first.setdefault(a, i)
    assert list(got) == [first.get(v, -1) for v in queries]
    assert got[-1] == 10


def test_positions_of_one_heap_in_another():
    # A diff: both sides are the whole heap, most queries are found (no filter in front).
    rng = random.Random(6)
    older = q(0x7F00_0000_0000 + 16 * v for v in rng.sample(range(800_000), 200_000))
    newer = q(list(older[50_000:]) + [0x7F00_0000_0000 + 16 * v for v in rng.sample(range(800_000, 900_000), 30_000)])
    got = _heapalgo.positions(older, newer)
    index = {a: i for i, a in enumerate(older)}
    assert list(got) == [index.get(v, -1) for v in newer]
    assert got.count(-1) == 30_000


@pytest.mark.parametrize("impl", IMPLS)
def test_object_positions_are_positions_of_the_ids(impl):
    objects = [object() for _ in range(1000)] + [None, 7]
    queries = q([id(objects[500]), id(objects[0]), 1, id(objects[-1]), id(objects[500])])
    got = fn(impl, "object_positions")(objects, queries)
    assert list(got) == [500, 0, -1, 1001, 500]
    assert got == fn(impl, "positions")(q(map(id, objects)), queries)
    assert list(fn(impl, "object_positions")([], queries)) == [-1] * 5
    with pytest.raises(TypeError):
        fn(impl, "object_positions")(tuple(objects), queries)
    with pytest.raises(ValueError, match="queries must be .* int64"):
        fn(impl, "object_positions")(objects, array("d", [1.0]))


def test_public_positions_and_fallback():
    assert heapalgo.positions(q([5, 6, 5]), q([5, 7])) == q([0, -1])
    graph, roots = FALLBACK_GRAPH, q([S])
    assert heapalgo.bfs(*graph, roots, fallback=q([F])) == heapalgo._bfs_py(*graph, roots, fallback=q([F]))
    assert heapalgo.bfs(*graph, roots, None, q([F]))[1][Y] == 1


# --- the dispatching module ------------------------------------------------------------------


def test_public_functions_pick_a_twin():
    pure = bool(os.environ.get("CYCLESCOPE_PURE"))
    assert heapalgo.using_c_heapalgo() == (_heapalgo is not None and not pure)
    graph = LT_GRAPH
    assert heapalgo.dominators(*graph, q([R])) == heapalgo._dominators_py(*graph, q([R]))
    assert heapalgo.bfs(*graph, q([R]), blocked=bytes(13)) == heapalgo._bfs_py(*graph, q([R]))
    roffsets, rtargets = heapalgo.transpose(*graph)
    assert rtargets[roffsets[I]:roffsets[I + 1]] == q([F, G, J, K])
    idom, order = heapalgo.dominators(*graph, q([R]))
    retained = heapalgo.retained_sizes(idom, order, q([1]) * 13)
    assert heapalgo.top_indices(retained, 2) == q([R, C])
    assert heapalgo.top_indices(retained, 1, eligible=b"\0" + b"\1" * 12) == q([C])


# --- group_totals and new_nodes -------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_group_totals_hand_worked(impl):
    group_totals = fn(impl, "group_totals")
    type_ids = q([0, 1, 2, 0, 3, 1, 0])
    sizes = q([10, 20, 30, 40, 50, 60, 70])
    group_of = q([0, 1, 0, -1])  # types 0 and 2 share a name; type 3 is counted for none
    counts, nbytes, firsts = group_totals(type_ids, group_of, 2, sizes, samples=2)
    assert_q_arrays(counts, nbytes, firsts)
    assert counts == q([4, 2]) and nbytes == q([150, 80])
    assert firsts == q([0, 2, 1, 5])  # the first two counted nodes of each group, in node order
    counts, nbytes, firsts = group_totals(type_ids, group_of, 3, sizes, mask=bytes([0, 1, 1, 0, 1, 0, 5]), samples=3)
    assert counts == q([2, 1, 0]) and nbytes == q([100, 20, 0])
    assert firsts == q([2, 6, -1, 1, -1, -1, -1, -1, -1])
    assert group_totals(q(), q(), 0, q()) == (q(), q(), q())


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((q([0]), q([0]), -1, q([1])), {}, ValueError, "ngroups must be >= 0"),
        ((q([0]), q([0]), 1, q([1])), {"samples": -1}, ValueError, "samples must be >= 0"),
        ((q([0]), q([0]), 1, q([1, 2])), {}, ValueError, r"sizes must have len\(type_ids\) = 1 items, not 2"),
        ((q([0]), q([0]), 1, q([1])), {"mask": b"\1\1"}, ValueError, r"mask must have len\(type_ids\) = 1"),
        ((q([0]), q([1]), 1, q([1])), {}, ValueError, r"group_of\[0\] = 1 is neither -1 nor a group in \[0, 1\)"),
        ((q([0, 1]), q([0]), 1, q([1, 1])), {}, ValueError, r"type_ids\[1\] = 1 is not a type in \[0, 1\)"),
        ((q([0, 0]), q([-1]), 1, q([1, -3])), {}, ValueError, r"sizes\[1\] = -3 is negative"),  # uncounted too
        ((q([0, 0]), q([0]), 1, q([2**62, 2**62])), {}, OverflowError, "group totals do not fit"),
        ((array("i", [0]), q([0]), 1, q([1])), {}, ValueError, "type_ids must be .* int64"),
    ],
)
def test_group_totals_bad_input(impl, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        fn(impl, "group_totals")(*args, **kwargs)


@pytest.mark.parametrize("impl", IMPLS)
def test_new_nodes_hand_worked(impl):
    new_nodes = fn(impl, "new_nodes")
    old_type_ids = q([0, 1, 1])
    old_group_of = q([7, 8])  # old types 0 and 1 are named 7 and 8
    group_of = q([8, 7, 9])
    before = q([2, -1, 0, 1, 0, -1])
    type_ids = q([0, 0, 1, 2, 1, 2])
    reached = q([0, 3, 1, 2, -1, -1])
    mask = new_nodes(before, type_ids, group_of, old_type_ids, old_group_of, reached)
    assert type(mask) is bytearray
    # 0: same address, same name: old. 1: not there before: new. 2: same name (7): old.
    # 3: address reused by another type (8 -> 9): new. 4 and 5: not reached: left out.
    assert list(mask) == [0, 1, 0, 1, 0, 0]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "args, match",
    [
        ((q([0]), q([0, 0]), q([0]), q([0]), q([0]), q([0])), r"type_ids and reached must have len\(before\) = 1"),
        ((q([0]), q([0]), q([0]), q([0]), q([0]), q()), r"type_ids and reached must have len\(before\) = 1"),
        ((q([1]), q([0]), q([0]), q([0]), q([0]), q([0])), r"before\[0\] = 1 is neither -1 nor a node in \[0, 1\)"),
        ((q([-2]), q([0]), q([0]), q([0]), q([0]), q([0])), r"before\[0\] = -2 is neither"),
        ((q([-1]), q([1]), q([0]), q([0]), q([0]), q([0])), r"type_ids\[0\] = 1 is not a type in \[0, 1\)"),
        ((q([0]), q([0]), q([0]), q([3]), q([0]), q([0])), r"old_type_ids\[0\] = 3 is not a type in \[0, 1\)"),
    ],
)
def test_new_nodes_bad_input(impl, args, match):
    with pytest.raises(ValueError, match=match):
        fn(impl, "new_nodes")(*args)


@needs_c
@pytest.mark.parametrize("seed", range(20))
def test_group_totals_and_new_nodes_random_agree(seed):
    rng = random.Random(7100 + seed)
    n, nold, ntypes, nold_types = (rng.choice([0, 1, 50, 2000]) for _ in range(4))
    ntypes, nold_types = max(ntypes, 1), max(nold_types, 1)
    ngroups = rng.choice([1, 3, 40])
    group_of = q(rng.randrange(-1, ngroups) for _ in range(ntypes))
    old_group_of = q(rng.randrange(-1, ngroups) for _ in range(nold_types))
    type_ids = q(rng.randrange(ntypes) for _ in range(n))
    old_type_ids = q(rng.randrange(nold_types) for _ in range(nold))
    sizes = q(rng.randrange(1 << rng.choice([4, 20, 40])) for _ in range(n))
    before = q(rng.randrange(-1, nold) if nold else -1 for _ in range(n))
    reached = q(rng.choice([-1, 0, 5]) for _ in range(n))
    mask = fn("py", "new_nodes")(before, type_ids, group_of, old_type_ids, old_group_of, reached)
    assert fn("c", "new_nodes")(before, type_ids, group_of, old_type_ids, old_group_of, reached) == mask
    samples = rng.choice([0, 1, 3])
    for m in (None, mask):
        py = fn("py", "group_totals")(type_ids, group_of, ngroups, sizes, mask=m, samples=samples)
        c = fn("c", "group_totals")(type_ids, group_of, ngroups, sizes, mask=m, samples=samples)
        assert c == py
        expected = [0] * ngroups
        for v in range(n):
            if group_of[type_ids[v]] >= 0 and (m is None or m[v]):
                expected[group_of[type_ids[v]]] += sizes[v]
        assert list(c[1]) == expected


# --- transpose --------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_transpose_hand_worked(impl):
    transpose = fn(impl, "transpose")
    n, offsets, targets = csr([[1, 2, 1], [2], [0, 2], []])  # a duplicate edge 0 -> 1, a self-loop at 2
    roffsets, rtargets = transpose(n, offsets, targets)
    assert_q_arrays(roffsets, rtargets)
    assert [list(rtargets[roffsets[v]:roffsets[v + 1]]) for v in range(n)] == [[2], [0], [0, 1, 2], []]
    assert transpose(0, q([0]), q()) == (q([0]), q())


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "graph, match",
    [
        ((2, q([0, 1, 1]), q([2])), r"targets\[0\] = 2 is not a node in \[0, 2\)"),
        ((2, q([0, 2, 1]), q([0, 1])), "offsets must be non-decreasing"),
        ((2, q([0, 1]), q([0])), r"offsets must have n \+ 1 = 3 items"),
    ],
)
def test_transpose_bad_graphs(impl, graph, match):
    with pytest.raises(ValueError, match=match):
        fn(impl, "transpose")(*graph)


@needs_c
@pytest.mark.parametrize("seed", range(15))
def test_transpose_random_agrees_with_a_scan_of_the_edges(seed):
    rng = random.Random(4200 + seed)
    n, offsets, targets = random_graph(rng, rng.choice([1, 7, 60, 400]), rng.choice([0.5, 2.0, 6.0]))
    py = fn("py", "transpose")(n, offsets, targets)
    c = fn("c", "transpose")(n, offsets, targets)
    assert c == py
    roffsets, rtargets = c
    referrers: list[list[int]] = [[] for _ in range(n)]
    for u in range(n):
        for v in sorted(set(targets[offsets[u]:offsets[u + 1]])):
            referrers[v].append(u)
    assert [list(rtargets[roffsets[v]:roffsets[v + 1]]) for v in range(n)] == referrers
