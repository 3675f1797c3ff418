"""The heap snapshot: pure-Python reference against the C twin, and known answers.

The cross-checks build both from the same seeds on heaps whose closure the test
controls (containers of atoms, instances of classes made with ``type()`` that
reach nothing but themselves), with the collector off so nothing changes between
the two builds. The whole-heap tests check what must hold on any heap.
"""

from __future__ import annotations

import ctypes
import gc
import random
import sys
import types
import weakref
from array import array
from contextlib import contextmanager

import pytest

from cyclescope import graph, heapgraph
from cyclescope.heapgraph import HeapGraph
from twins import extension, impls, needs, q

_core = extension("_core")
needs_core = needs(_core, "_core")
IMPLS = impls(needs_core)

FIELDS = ("addresses", "type_ids", "sizes", "offsets", "targets", "external", "tracked", "total_size")


def snapshot(impl: str, seeds) -> HeapGraph:
    if impl == "py":
        return heapgraph._heap_graph_py(seeds)
    result = _core.heap_snapshot(seeds)
    assert type(result) is tuple and len(result) == 9
    return HeapGraph(len(result[0]), *result)


@contextmanager
def collector_off():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def check_types(g: HeapGraph) -> None:
    for name in ("addresses", "type_ids", "sizes", "offsets", "targets"):
        arr = getattr(g, name)
        if type(arr) is memoryview:  # the C build hands its arrays over without a copy
            assert arr.format == "q" and arr.ndim == 1 and arr.readonly, name
        else:
            assert type(arr) is array and arr.typecode == "q", name
    assert type(g.external) is bytearray and type(g.tracked) is bytearray
    assert type(g.types) is list and type(g.total_size) is int and type(g.n) is int


def check_invariants(g: HeapGraph) -> None:
    check_types(g)
    n = g.n
    assert len(g.addresses) == len(g.type_ids) == len(g.sizes) == n
    assert len(g.external) == len(g.tracked) == n
    assert len(set(g.addresses)) == n
    assert len(g.offsets) == n + 1 and g.offsets[0] == 0 and g.offsets[n] == len(g.targets)
    assert all(g.offsets[i] <= g.offsets[i + 1] for i in range(n))
    assert all(0 <= t < n for t in g.targets)
    for i in range(n):
        succ = g.successors(i)
        assert len(set(succ)) == len(succ), "edges are deduplicated per source"
    assert all(0 <= t < len(g.types) for t in g.type_ids)
    assert len({id(tp) for tp in g.types}) == len(g.types)
    assert set(g.type_ids) == set(range(len(g.types)))
    assert all(s > 0 for s in g.sizes) and sum(g.sizes) == g.total_size
    assert set(g.external) <= {0, 1} and set(g.tracked) <= {0, 1}


def assert_same(seeds) -> HeapGraph:
    """Both builds from the same seeds must agree exactly; returns the C one."""
    with collector_off():
        c = snapshot("c", seeds)
        # A result holds its types: they would look referenced from outside to the
        # second build.
        c_types = [id(tp) for tp in c.types]
        c.types = []
        py = snapshot("py", seeds)
    assert [id(tp) for tp in py.types] == c_types
    c.types = py.types
    check_invariants(c)
    for name in FIELDS:
        assert getattr(py, name) == getattr(c, name), name
    assert py.n == c.n
    return c


def node_of(g: HeapGraph, obj: object) -> int:
    return list(g.addresses).index(id(obj))


# --- controlled heaps -------------------------------------------------------------------


def controlled_heap(rng: random.Random, size: int) -> tuple[list, list]:
    """Random objects whose closure the test controls, wired at random.

    Returns ``(seeds, kept)``: ``kept`` holds a few of the objects from outside
    (they must come out external), the rest live only through each other.
    """
    slotted = type("Slotted", (), {"__slots__": ("a", "b")})
    plain = type("Plain", (), {})
    made: list = []
    hashable: list = [None, True]
    containers: list = []
    for _ in range(size):
        kind = rng.choice(
            ["list", "dict", "keyed", "tuple", "set", "frozenset", "str", "bytes", "int",
             "float", "bytearray", "slotted", "plain", "small"]
        )
        if kind == "list":
            obj = []
        elif kind in ("dict", "keyed"):
            obj = {}
        elif kind == "tuple":
            obj = tuple(rng.choice(made) for _ in range(rng.randrange(4))) if made else ()
        elif kind == "set":
            obj = set()
        elif kind == "frozenset":
            obj = frozenset(rng.choice(hashable) for _ in range(rng.randrange(4)))
        elif kind == "str":
            obj = f"s{rng.random()}"
        elif kind == "bytes":
            obj = f"b{rng.random()}".encode()
        elif kind == "int":
            obj = int(f"1{rng.randrange(10**30)}")
        elif kind == "float":
            obj = rng.random()
        elif kind == "bytearray":
            obj = bytearray(rng.randrange(40))
        elif kind == "slotted":
            obj = slotted()
        elif kind == "plain":
            obj = plain()
        else:
            obj = rng.randrange(300)
        made.append(obj)
        if kind in ("str", "bytes", "int", "float", "frozenset", "small", "slotted", "plain"):
            hashable.append(obj)
        if kind in ("list", "dict", "keyed", "set", "slotted", "plain"):
            containers.append((kind, obj))
    for kind, obj in containers:
        for k in range(rng.randrange(6)):
            target = rng.choice(made)
            if kind == "list":
                obj.append(target)
            elif kind == "dict":
                obj[f"k{rng.randrange(8)}"] = target  # str keys: only values are referents
            elif kind == "keyed":
                obj[rng.choice(hashable)] = target
            elif kind == "set":
                obj.add(rng.choice(hashable))
            elif kind == "slotted":
                setattr(obj, "ab"[k % 2], target)
            else:
                setattr(obj, f"attr{k}", target)
    seeds = [obj for obj in made if rng.random() < 0.3]
    rng.shuffle(seeds)
    for _ in range(rng.randrange(3)):
        if seeds:
            seeds.insert(rng.randrange(len(seeds) + 1), rng.choice(seeds))
    kept = [obj for obj in made if rng.random() < 0.1]
    return seeds, kept


@needs_core
@pytest.mark.parametrize("seed", range(60))
def test_random_controlled_heaps_agree(seed):
    rng = random.Random(seed)
    seeds, kept = controlled_heap(rng, rng.choice([0, 1, 2, 5, 20, 80, 300]))
    g = assert_same(seeds)
    assert g.addresses[: len({id(s) for s in seeds})] == q(dict.fromkeys(map(id, seeds)))
    for obj in kept:
        if id(obj) in set(g.addresses):
            assert g.external[node_of(g, obj)] == 1


@needs_core
def test_a_large_controlled_heap_agrees():
    rng = random.Random(99)
    chains = [[f"leaf{i}", int(f"7{i}" * 4)] for i in range(20_000)]
    for a, b in zip(chains, chains[1:]):
        a.append(b)
    table = {i + 10**6: chain for i, chain in enumerate(chains)}
    seeds = [table, *rng.sample(chains, 50)]
    del chains, table, a, b
    g = assert_same(seeds)
    assert g.n == 1 + 20_000 * 3 + 20_000  # the dict; each list, its str and int; the keys
    assert g.external == bytearray(g.n)  # nothing outside holds any of them


@needs_core
def test_seed_list_that_is_a_node_agrees():
    inner = [f"x{random.random()}"]
    seeds: list = [inner]
    inner.append(seeds)  # the seed list is reachable from a seed
    g = assert_same(seeds)
    assert node_of(g, seeds) == 1
    assert len(g.successors(1)) == 0  # a leaf: its references are the seeds'
    # inner: the seed list holds it once (counted as a seed's), the local `inner` once more
    assert g.external[0] == 1
    assert g.external[1] == 1  # the seed list: held by the local `seeds`
    inner.pop()


@needs_core
def test_heap_types_in_the_types_list_agree():
    # A class made with type() reaches only its own dict, bases and descriptors.
    cls = type("Box", (), {"__slots__": ("item",)})
    box = cls()
    box.item = [cls()]
    g = assert_same([box])
    # subtype_traverse visits the slots, then the type
    assert g.types[0] is cls and g.addresses[1] == id(box.item) and g.addresses[2] == id(cls)
    assert g.external[2] == 1  # held by the local `cls` (and by the types list: not counted)
    assert g.external[1] == 0


# --- hand-worked answers -----------------------------------------------------------------


def _little_heap() -> list:
    a: list = []
    b = [a]
    big = int("123456789012345678901234567890")
    t = (big, big)
    a.append(b)
    a.append(t)
    return a


@pytest.mark.parametrize("impl", IMPLS)
def test_little_heap_by_hand(impl, gc_state_kept):
    a = _little_heap()
    b, t = a
    big = t[0]
    expected_ids = q([id(a), id(t), id(b), id(big)])
    del b, t, big
    with collector_off():
        g = snapshot(impl, [a, a])  # a duplicate seed collapses into one node
    check_invariants(g)
    # list_traverse and tupletraverse go from the last item back
    assert g.n == 4 and g.addresses == expected_ids
    assert g.types == [list, tuple, int] and g.type_ids == q([0, 1, 0, 2])
    assert g.offsets == q([0, 2, 3, 4, 4]) and g.targets == q([1, 2, 3, 0])
    # a is also held by this frame; b, t and big only by nodes (big twice by t)
    assert g.external == bytearray([1, 0, 0, 0])
    assert g.tracked == bytearray([1, 1, 1, 0])
    b, t = a
    assert g.sizes == q([sys.getsizeof(o) for o in (a, t, b, t[0])])
    assert g.total_size == sum(g.sizes)


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_and_atoms(impl):
    g = snapshot(impl, [])
    check_invariants(g)
    assert (g.n, g.offsets, g.targets, g.types, g.total_size) == (0, q([0]), q(), [], 0)
    # Static types are no GC objects (tp_is_gc): leaves, like atoms.
    atoms = [int, list, type, None, 1.5, "text", b"bytes"]
    g = snapshot(impl, atoms)
    check_invariants(g)
    assert g.n == len(atoms) and g.offsets == q([0] * 8)
    assert g.addresses == q(map(id, atoms))
    assert list(g.sizes) == [sys.getsizeof(o) for o in atoms]


@pytest.mark.parametrize("impl", IMPLS)
def test_untracked_containers_are_traversed(impl, gc_state_kept):
    item = f"only-in-the-tuple-{random.random()}"
    t = (item, int("98765432109876543210"))
    del item
    gc.collect()  # untracks a tuple of atoms
    if gc.is_tracked(t):
        pytest.skip("this version keeps tuples of atoms tracked")
    g = snapshot(impl, [t])
    assert g.n == 3 and g.tracked == bytearray(3)
    assert g.targets == q([1, 2]) and g.addresses[1:] == q([id(t[1]), id(t[0])])
    assert g.external == bytearray([1, 0, 0])


@pytest.mark.parametrize("impl", IMPLS)
def test_object_held_by_a_type_without_traverse_is_external(impl):
    # range has no tp_traverse: its start is held from outside the graph.
    start = int("31415926535897932384626")
    r = range(start, start + 1)
    control = int("27182818284590452353602")
    lst = [start, control]
    del start, control
    g = snapshot(impl, [lst, r])
    assert g.n == 4 and g.successors(0) == q([2, 3]) and g.successors(1) == q()
    assert g.addresses[2:] == q([id(lst[1]), id(lst[0])])
    assert g.external[2] == 0  # control: only the list holds it
    assert g.external[3] == 1  # start: the range holds it too


@pytest.mark.parametrize("impl", IMPLS)
def test_seed_list_references_are_not_external(impl):
    objs = [[f"item-{i}-{random.random()}"] for i in range(5)]
    seeds = list(objs)
    del objs
    g = snapshot(impl, seeds)
    assert g.n == 10
    assert g.external == bytearray(10)


@pytest.mark.parametrize("impl", IMPLS)
def test_other_sequences_of_seeds(impl, monkeypatch):
    monkeypatch.setattr(graph, "_core", _core if impl == "c" else None)
    x = [f"{random.random()}"]
    for seeds in ((x, x), iter([x]), {id(x): x}.values()):
        g = heapgraph.build_heap_graph(seeds)
        assert g.n == 2 and g.addresses[0] == id(x) and g.targets == q([1])


@needs_core
def test_core_wants_a_list_or_tuple():
    with pytest.raises(TypeError, match="needs a list"):
        _core.heap_snapshot(iter([]))


@needs_core
def test_core_arrays_are_read_only_views_that_outlive_the_result():
    g = snapshot("c", [[1, 2], (3,)])
    targets = g.targets
    expected = list(targets)
    del g
    assert list(targets) == expected and targets[0] == expected[0]
    with pytest.raises(TypeError):
        targets[0] = 5
    with pytest.raises((TypeError, BufferError), match="writable|read-only"):
        (ctypes.c_char * 8).from_buffer(targets.obj)  # the memory's owner refuses writers too
    assert bytes(targets) == array("q", expected).tobytes()


@needs_core
def test_core_arrays_leave_no_reference_behind():
    block_type = type(snapshot("c", [[1]]).targets.obj)
    before = sys.getrefcount(block_type)
    for _ in range(20):
        snapshot("c", [[1], (2,)])
    assert sys.getrefcount(block_type) == before


@pytest.mark.parametrize("impl", IMPLS)
def test_the_asyncio_module_is_not_traversed(impl):
    import asyncio  # noqa: F401 - _asyncio must come in through asyncio

    g = snapshot(impl, [sys.modules["_asyncio"]])
    assert g.n == 1 and g.offsets == q([0, 0])


# --- the snapshot keeps nothing alive, runs no user code --------------------------------


class Kept:
    pass


@pytest.mark.parametrize("impl", IMPLS)
def test_snapshot_keeps_no_object_alive(impl):
    obj = Kept()
    obj.payload = [Kept()]
    refs = [weakref.ref(obj), weakref.ref(obj.payload[0])]
    seeds = [obj]
    g = snapshot(impl, seeds)
    assert g.n > 3 and g.addresses[0] == id(obj)
    del seeds, obj
    assert [r() for r in refs] == [None, None]
    check_invariants(g)


USER_CALLS: list = []
ARMED: list = []  # Hostile hashes normally until the structure is built


class Hostile:
    def __eq__(self, other):
        USER_CALLS.append("__eq__")
        raise RuntimeError("__eq__ must not be called")

    def __hash__(self):
        if ARMED:
            USER_CALLS.append("__hash__")
            raise RuntimeError("__hash__ must not be called")
        return 42

    def __sizeof__(self):
        USER_CALLS.append("__sizeof__")
        raise RuntimeError("a Python __sizeof__ must not be called")


class HostileMeta(type):
    @property
    def __mro__(cls):
        USER_CALLS.append("meta __mro__")
        raise RuntimeError("metaclass __mro__ must not be called")

    def __eq__(cls, other):
        USER_CALLS.append("meta __eq__")
        raise RuntimeError("metaclass __eq__ must not be called")

    __hash__ = type.__hash__


class Weird(metaclass=HostileMeta):
    __slots__ = ("x",)


@pytest.mark.parametrize("impl", IMPLS)
def test_no_user_code_runs(impl):
    h = Hostile()
    w = Weird()
    w.x = {h: [h]}
    USER_CALLS.clear()
    ARMED.append(True)
    try:
        g = snapshot(impl, [w])
    finally:
        ARMED.clear()
    assert USER_CALLS == []
    assert g.types[:2] == [Weird, dict]
    assert g.sizes[node_of(g, h)] == type.__dict__["__basicsize__"].__get__(Hostile) + 16


@pytest.mark.parametrize("impl", IMPLS)
def test_code_run_by_a_c_sizeof_cannot_free_nodes(impl, gc_state_kept):
    # object.__str__ as __sizeof__ is C code that calls the Python __repr__ (graph.py
    # lets it run, as sys.getsizeof would). Here it drops everything else: the C
    # twin asks such sizes only once the snapshot is taken, holding the object.
    box: list = []

    class Meddler:
        __sizeof__ = object.__str__

        def __repr__(self) -> str:
            box.clear()
            gc.collect()
            return "meddled"

    cls = type("Leaf", (), {"__slots__": ("__weakref__",)})
    box.extend([cls() for _ in range(1000)])
    m = Meddler()
    seeds = [[m, box]]
    refs = [weakref.ref(o) for o in box]
    del cls
    g = snapshot(impl, seeds)
    assert box == [] and all(r() is None for r in refs)
    assert g.n > 1000 and id(m) in set(g.addresses)
    check_invariants(g)


class IntSizeof(int):
    """A C __sizeof__ returning the int itself."""

    __sizeof__ = int.__int__


@pytest.mark.parametrize("impl", IMPLS)
def test_size_overflowing_int64_raises(impl, gc_state_kept):
    huge = IntSizeof(sys.maxsize)
    if sys.getsizeof(huge) <= sys.maxsize:
        pytest.skip("no header added for this type on this version")
    with pytest.raises(OverflowError):
        snapshot(impl, [[1.5], huge])


@needs_core
def test_sizes_match_safe_sizeof_on_many_builtins():
    import collections
    import functools
    import io

    def gen():
        yield 1

    async def coro():
        pass

    async def agen():
        yield 1

    started = gen()
    next(started)
    pending = coro()
    objects = [
        b"bytes", bytearray(b"xy"), memoryview(b"ab"), range(3), slice(1, 2), 10**40, -(10**40),
        complex(1, 2), frozenset({1}), {1, 2}, (1,), (), [], [1, 2, 3], {}, {"a": 1}, {1: 2},
        gen(), started, pending, agen(), collections.OrderedDict(a=1), collections.deque([1]),
        collections.defaultdict(list), functools.partial(print, 1), io.StringIO("x"),
        io.BytesIO(b"abc"), types.SimpleNamespace(a=1), property(), len, str.join, sys,
        sys._getframe(), gen.__code__, array("q", [1, 2]), Kept, Kept(), IntSizeof(7), True,
        type("Meta", (type,), {}), "ascii", "ünïcödé", "\U0001f600", 2.5, None,
    ]
    g = snapshot("c", objects)
    assert list(g.sizes[: len(objects)]) == [graph.safe_sizeof(o) for o in objects]
    pending.close()


# --- the whole heap ---------------------------------------------------------------------


FROZEN_PROBE: list = []


def whole_heap_seeds() -> list:
    return gc.get_objects() + [sys.modules, *sys._current_frames().values()]


class Marker:
    pass


@needs_core
def test_whole_heap_invariants():
    here = sys.modules[__name__]
    marker = Marker()
    start = int("1618033988749894848204586")
    lst = [start]
    r = range(start, start + 1)
    held = [marker, lst, r]  # running frames' locals are no referents from 3.11 on
    del start
    tracked_before = gc.get_objects()
    tracked_ids = {id(o) for o in tracked_before}
    g = heapgraph.build_heap_graph(tracked_before + [sys.modules, *sys._current_frames().values()])
    del tracked_before
    check_invariants(g)
    index = {address: i for i, address in enumerate(g.addresses)}
    assert tracked_ids <= index.keys(), "every tracked object is a node"
    for obj, tp in ((sys.modules, dict), (here, types.ModuleType), (marker, Marker), (held, list),
                    (Marker, type), (r, range)):
        i = index[id(obj)]
        assert g.types[g.type_ids[i]] is tp
    assert g.tracked[index[id(held)]] == 1
    i = index[id(lst[0])]
    assert g.tracked[i] == 0 and g.external[i] == 1  # held by the range too
    assert id(lst) in index and g.offsets[index[id(lst)] + 1] - g.offsets[index[id(lst)]] == 1


def test_whole_heap_pure_reference_invariants(monkeypatch):
    monkeypatch.setattr(graph, "_core", None)
    g = heapgraph.build_heap_graph(whole_heap_seeds())
    check_invariants(g)
    assert id(sys.modules) in set(g.addresses)


@pytest.mark.parametrize("impl", IMPLS)
def test_frozen_objects_are_reached(impl, gc_state_kept, monkeypatch):
    monkeypatch.setattr(graph, "_core", _core if impl == "c" else None)
    probe = Marker()
    FROZEN_PROBE.append(probe)
    gc.freeze()
    try:
        assert not any(o is probe for o in gc.get_objects())
        g = heapgraph.build_heap_graph(whole_heap_seeds())
        index = {address: i for i, address in enumerate(g.addresses)}
        i = index[id(probe)]
        assert g.types[g.type_ids[i]] is Marker and g.tracked[i] == 1
        assert id(FROZEN_PROBE) in index
    finally:
        gc.unfreeze()
        FROZEN_PROBE.clear()


GC_LINKS_PUT_BACK = """
import gc, sys
from cyclescope import heapgraph

finalized, saved = [], []

class Phoenix:
    def __del__(self):
        finalized.append(1)
        saved.append(self)  # resurrected: gc marks it finalized, never to run again

class Node:
    pass

p = Phoenix()
p.me = p
del p
gc.collect()
assert finalized == [1]
cycles = []
for _ in range(2000):
    a = Node()
    a.partner = Node()
    a.partner.partner = a
    cycles.append(a)
del a
plain = [[] for _ in range(1000)]
gc.disable()
order = [id(o) for o in gc.get_objects()]
g = heapgraph.build_heap_graph(gc.get_objects() + [sys.modules])
assert g.n > len(order)
after = [id(o) for o in gc.get_objects()]
common = set(order) & set(after)
assert len(common) > len(order) - 10
assert [i for i in after if i in common] == [i for i in order if i in common], "generation lists changed"
del plain  # unlinking objects the snapshot numbered (a collection would mend links)
gc.enable()
cycles.clear()
assert gc.collect() >= 4000
saved.clear()
gc.collect()
assert finalized == [1], "a finalized object lost its flag"
print("intact")
"""


@needs_core
def test_gc_links_and_flags_are_put_back():
    # The C build numbers GC objects in gc's own links while it runs; a link left
    # tagged would crash the next unlink, a lost flag would run __del__ twice.
    import subprocess

    done = subprocess.run([sys.executable, "-c", GC_LINKS_PUT_BACK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "intact"



LINKS_PUT_BACK_AFTER_AN_ERROR = """
import gc, resource
from cyclescope import heapgraph

class Node:
    pass

big = [Node() for _ in range(600_000)]
plain = [[] for _ in range(1000)]
gc.collect()
gc.disable()
with open("/proc/self/statm") as f:
    vm = int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (vm + (24 << 20), resource.RLIM_INFINITY))
try:
    heapgraph.build_heap_graph([big, plain])  # one seed list: every array grows on the way
except MemoryError:
    failed = True
else:
    failed = False
resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
del plain  # unlinking numbered objects: a link left tagged would crash here
big.clear()
gc.enable()
gc.collect()
print("intact" if failed else "the snapshot did not fail")
"""


@needs_core
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/statm")
def test_gc_links_are_put_back_when_the_snapshot_fails_half_way():
    # Out of memory half way through the closure: the error comes back as MemoryError
    # and the process goes on, every link it had numbered put back.
    import subprocess

    done = subprocess.run([sys.executable, "-c", LINKS_PUT_BACK_AFTER_AN_ERROR], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "intact"
