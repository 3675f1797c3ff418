"""The graph functions: pure-Python reference against the C core, and known answers.

Every cross-check runs the ``_..._py`` reference in ``cyclescope.graph`` and the
twin in ``cyclescope._core`` on the same input and asserts identical results
(values and types). The hand-worked cases pin the shared algorithm itself and run
on both implementations.
"""

from __future__ import annotations

import gc
import random
import sys
from array import array

import pytest

from cyclescope import graph
from twins import extension, impls, needs, q

_core = extension("_core")
needs_core = needs(_core, "_core")
IMPLS = impls(needs_core)


# --- running one implementation or both ------------------------------------------------


def build(impl: str, objects: list) -> tuple:
    if impl == "py":
        g = graph._build_graph_py(objects)
        return g.offsets, g.targets, g.sizes, g.type_ids, g.types
    offsets, targets, sizes, type_ids, types, total_size = _core.build_graph(objects)
    assert total_size == sum(sizes)
    return offsets, targets, sizes, type_ids, types


def scc(impl: str, n, offsets, targets):
    if impl == "py":
        return graph._scc_py(n, offsets, targets)
    return _core.scc(n, offsets, targets)


def representatives(impl: str, n, offsets, targets, comp, ncomp, cyclic, rank):
    if impl == "py":
        return graph._representatives_py(n, offsets, targets, comp, ncomp, cyclic, rank)
    return _core.representative_cycles(n, offsets, targets, comp, ncomp, bytes(cyclic), rank)


def attribute(impl: str, n, offsets, targets, comp, cyclic):
    if impl == "py":
        return graph._attribute_py(n, offsets, targets, comp, cyclic)
    return _core.attribute_acyclic(n, offsets, targets, comp, bytes(cyclic))


def totals(impl: str, n, comp, ncomp, owner, sizes):
    if impl == "py":
        return graph._component_totals_py(n, comp, ncomp, owner, sizes)
    return _core.component_totals(n, comp, ncomp, owner, sizes)


def shapes(impl: str, ncomp, starts, nodes, edges, type_ids):
    if impl == "py":
        return graph._cycle_shapes_py(ncomp, starts, nodes, edges, type_ids)
    return _core.cycle_shapes(ncomp, starts, nodes, edges, type_ids)


def members(impl: str, n, owner, ncomp):
    if impl == "py":
        return graph._members_py(n, owner, ncomp)
    return _core.members_by_owner(n, owner, ncomp)


def assert_q_arrays(*arrays) -> None:
    for arr in arrays:
        assert type(arr) is array and arr.typecode == "q"


def assert_same_build(objects: list) -> tuple:
    """Build the graph both ways; they must agree exactly. Returns the C result."""
    py = build("py", objects)
    c = build("c", objects)
    assert_q_arrays(*c[:4])
    assert type(c[4]) is list
    for name, a, b in zip(("offsets", "targets", "sizes", "type_ids"), py[:4], c[:4]):
        assert a == b, name
    assert len(py[4]) == len(c[4]) and all(a is b for a, b in zip(py[4], c[4])), "types"
    return c


def rank_variants(n: int, rng: random.Random) -> list[array]:
    return [
        q(range(n)),
        q(range(n, 0, -1)),
        q(rng.randrange(-2, 5) for _ in range(n)),  # ties and exclusions
        q([-1] * n),
    ]


def assert_same_algorithms(
    n: int, offsets, targets, rng: random.Random | None = None, sizes=None, type_ids=None
) -> tuple:
    """scc, representative_cycles and attribute_acyclic both ways on one graph, then
    the summaries over their results (random sizes and type ids unless given)."""
    rng = rng or random.Random(n)
    comp, ncomp, cyclic = scc("py", n, offsets, targets)
    c_comp, c_ncomp, c_cyclic = scc("c", n, offsets, targets)
    assert_q_arrays(c_comp)
    assert type(c_cyclic) is bytearray and type(c_ncomp) is int
    assert (c_comp, c_ncomp, c_cyclic) == (comp, ncomp, cyclic)
    cycles = []
    for rank in rank_variants(n, rng):
        py = representatives("py", n, offsets, targets, comp, ncomp, cyclic, rank)
        c = representatives("c", n, offsets, targets, comp, ncomp, cyclic, rank)
        assert_q_arrays(*c)
        assert c == py
        cycles.append(py)
    owner = attribute("py", n, offsets, targets, comp, cyclic)
    c_owner = attribute("c", n, offsets, targets, comp, cyclic)
    assert_q_arrays(c_owner)
    assert c_owner == owner
    if sizes is None:
        sizes = q(rng.randrange(16, 2000) for _ in range(n))
    if type_ids is None:
        ntypes = rng.choice([1, 3, 1000])  # from every cycle of a length alike to all distinct
        type_ids = q(rng.randrange(ntypes) for _ in range(n))
    assert_same_summaries(n, comp, ncomp, owner, sizes, type_ids, cycles)
    return comp, ncomp, cyclic


def assert_same_summaries(n, comp, ncomp, owner, sizes, type_ids, cycles) -> None:
    """component_totals, members_by_owner and, for each of ``cycles``, cycle_shapes."""
    py = totals("py", n, comp, ncomp, owner, sizes)
    c = totals("c", n, comp, ncomp, owner, sizes)
    assert type(c) is tuple
    assert_q_arrays(*c)
    assert c == py
    py = members("py", n, owner, ncomp)
    c = members("c", n, owner, ncomp)
    assert type(c) is tuple
    assert_q_arrays(*c)
    assert c == py
    for starts, nodes, edges in cycles:
        py = shapes("py", ncomp, starts, nodes, edges, type_ids)
        c = shapes("c", ncomp, starts, nodes, edges, type_ids)
        assert type(c) is tuple
        assert_q_arrays(*c)
        assert c == py
        check_shapes(*c, starts, nodes, edges, type_ids)


def check_shapes(shape_of, first, starts, nodes, edges, type_ids) -> None:
    """What cycle_shapes promises, checked from its definition."""

    def key(c):
        s, e = starts[c], starts[c + 1]
        return [(type_ids[v], edges[k]) for k, v in zip(range(s, e), nodes[s:e])]

    assert list(first) == sorted(set(first))  # numbered by first appearance
    for k, c in enumerate(first):
        assert shape_of[c] == k and key(c)
    keys = [key(c) for c in first]
    assert len(set(map(tuple, keys))) == len(keys)  # distinct shapes
    for c, shape in enumerate(shape_of):
        if shape == -1:
            assert starts[c] == starts[c + 1]
        else:
            assert first[shape] <= c and key(c) == keys[shape]


def assert_same_everything(objects: list, rng: random.Random | None = None) -> tuple:
    offsets, targets, sizes, type_ids, _ = assert_same_build(objects)
    return assert_same_algorithms(len(objects), offsets, targets, rng, sizes, type_ids)


def check_csr_invariants(n, offsets, targets) -> None:
    assert len(offsets) == n + 1 and offsets[0] == 0 and offsets[n] == len(targets)
    for i in range(n):
        succ = targets[offsets[i] : offsets[i + 1]]
        assert len(set(succ)) == len(succ)  # deduplicated per source
        assert all(0 <= j < n for j in succ)


# --- objects used in the tests ---------------------------------------------------------

SIZEOF_CALLS: list = []
HOSTILE_CALLS: list = []


class Plain:
    pass


class Slotted:
    __slots__ = ("a", "b", "c")


class Hostile:
    """Every dunder that graph code could be tempted to call raises, and is recorded."""

    def __eq__(self, other):
        HOSTILE_CALLS.append("__eq__")
        raise RuntimeError("__eq__ must not be called")

    def __hash__(self):
        HOSTILE_CALLS.append("__hash__")
        raise RuntimeError("__hash__ must not be called")

    def __sizeof__(self):
        SIZEOF_CALLS.append(self)
        raise RuntimeError("a Python __sizeof__ must not be called")


class PySizeofList(list):
    def __sizeof__(self):
        SIZEOF_CALLS.append(self)
        raise RuntimeError("a Python __sizeof__ must not be called")


class HostileMeta(type):
    """A metaclass whose every hook raises: shadows type's own slots, hash and eq."""

    @property
    def __mro__(cls):
        HOSTILE_CALLS.append("meta __mro__")
        raise RuntimeError("metaclass __mro__ must not be called")

    @property
    def __flags__(cls):
        HOSTILE_CALLS.append("meta __flags__")
        raise RuntimeError("metaclass __flags__ must not be called")

    @property
    def __basicsize__(cls):
        HOSTILE_CALLS.append("meta __basicsize__")
        raise RuntimeError("metaclass __basicsize__ must not be called")

    def __eq__(cls, other):
        HOSTILE_CALLS.append("meta __eq__")
        raise RuntimeError("metaclass __eq__ must not be called")

    def __hash__(cls):
        HOSTILE_CALLS.append("meta __hash__")
        raise RuntimeError("metaclass __hash__ must not be called")


class Weird(metaclass=HostileMeta):
    def __sizeof__(self):
        SIZEOF_CALLS.append(self)
        raise RuntimeError("a Python __sizeof__ must not be called")


class WeirdSlotted(metaclass=HostileMeta):
    __slots__ = ("ref",)


class SpoofedDescriptor:
    """Claims through ``__class__`` to be a C method descriptor; it is Python code."""

    @property
    def __class__(self):  # type: ignore[override]
        HOSTILE_CALLS.append("__class__")
        return type(str.join)

    def __get__(self, obj, tp=None):
        HOSTILE_CALLS.append("__get__")
        return self

    def __call__(self, *args):
        HOSTILE_CALLS.append("__call__")
        return 12345


class Spoofed:
    __sizeof__ = SpoofedDescriptor()


class ForeignSizeof:
    """A C __sizeof__ of another type: sys.getsizeof raises TypeError, so the fallback."""

    __sizeof__ = list.__sizeof__


class StrSizeof:
    """A C wrapper that returns a str: sys.getsizeof raises TypeError."""

    __sizeof__ = object.__repr__


class NegativeSizeof(int):
    """A C __sizeof__ returning a negative number: sys.getsizeof raises ValueError."""

    __sizeof__ = int.__neg__


class NoneSizeof(list):
    """__sizeof__ switched off: sys.getsizeof cannot call it, so the fallback."""

    __sizeof__ = None  # type: ignore[assignment]


class IntSizeof(int):
    """A C __sizeof__ returning the int itself."""

    __sizeof__ = int.__int__


@pytest.fixture(autouse=True)
def _no_user_code_ran():
    SIZEOF_CALLS.clear()
    HOSTILE_CALLS.clear()
    yield
    assert SIZEOF_CALLS == [], "a Python-level __sizeof__ ran"
    assert HOSTILE_CALLS == [], f"user code ran: {HOSTILE_CALLS}"


# --- random object graphs --------------------------------------------------------------


def random_objects(rng: random.Random, size: int) -> list:
    """``size`` objects of mixed kinds with random references among them (and to
    objects left out of the list), returned shuffled, with a few listed twice."""
    mutable: list = []
    hashable: list = [f"key{i}" for i in range(3)] + [rng.randrange(1000) for _ in range(2)]
    everything: list = list(hashable)
    outside = [Plain(), [], {"outside": 1}, (1, 2), Slotted()]
    for _ in range(size):
        kind = rng.choice(
            ["plain", "slotted", "hostile", "dict", "list", "set", "pysizeof", "weird",
             "weirdslot", "tuple", "frozenset", "str", "class"]
        )
        if kind == "plain":
            obj = Plain()
            hashable.append(obj)
        elif kind == "slotted":
            obj = Slotted()
            hashable.append(obj)
        elif kind == "hostile":
            obj = Hostile()
        elif kind == "dict":
            obj = {}
        elif kind == "list":
            obj = []
        elif kind == "set":
            obj = set()
        elif kind == "pysizeof":
            obj = PySizeofList()
        elif kind == "weird":
            obj = Weird()
        elif kind == "weirdslot":
            obj = WeirdSlotted()
        elif kind == "tuple":
            obj = tuple(rng.choice(everything + outside) for _ in range(rng.randrange(4)))
        elif kind == "frozenset":
            obj = frozenset(rng.choice(hashable) for _ in range(rng.randrange(4)))
            hashable.append(obj)
        elif kind == "str":
            obj = f"s{rng.random()}"
            hashable.append(obj)
        else:
            obj = type(f"K{rng.randrange(10**6)}", (Plain,), {})
        everything.append(obj)
        if kind not in ("tuple", "frozenset", "str"):
            mutable.append(obj)

    def pick():
        return rng.choice(outside) if rng.random() < 0.1 else rng.choice(everything)

    for obj in mutable:
        for k in range(rng.randrange(5)):
            target = pick()
            if isinstance(obj, (list, PySizeofList)):
                obj.append(target)
            elif isinstance(obj, dict):
                key = rng.choice(hashable)
                obj[key] = target
            elif isinstance(obj, set):
                obj.add(rng.choice(hashable))
            elif isinstance(obj, Slotted):
                setattr(obj, "abc"[k % 3], target)
            elif isinstance(obj, WeirdSlotted):
                obj.ref = target
            else:  # instances with a __dict__, and classes
                setattr(obj, f"attr{k}", target)
    listed = [obj for obj in everything if rng.random() < 0.85]
    rng.shuffle(listed)
    for _ in range(rng.randrange(3)):
        if listed:
            listed.insert(rng.randrange(len(listed) + 1), rng.choice(listed))
    return listed


@needs_core
@pytest.mark.parametrize("seed", range(80))
def test_random_object_graphs_agree(seed):
    rng = random.Random(seed)
    objects = random_objects(rng, rng.choice([0, 1, 2, 3, 8, 30, 120, 400]))
    offsets, targets, *_ = assert_same_build(objects)
    check_csr_invariants(len(objects), offsets, targets)
    assert_same_algorithms(len(objects), offsets, targets, rng)


@needs_core
@pytest.mark.parametrize("seed", range(40))
def test_random_csr_graphs_agree(seed):
    """Graphs given directly as arrays, from sparse forests to dense tangles."""
    rng = random.Random(1000 + seed)
    n = rng.choice([0, 1, 2, 5, 17, 100, 1000])
    degree = rng.choice([0.3, 1.0, 1.5, 3.0])
    offsets, targets = q([0]), q()
    for v in range(n):
        succ = {rng.randrange(n) for _ in range(int(rng.expovariate(1 / degree)))}
        targets.extend(sorted(succ, key=lambda _: rng.random()))
        offsets.append(len(targets))
    assert_same_algorithms(n, offsets, targets, rng)


@needs_core
def test_one_large_scc_with_many_cycles():
    rng = random.Random(7)
    nodes = [[] for _ in range(3000)]
    for node in nodes:
        node.extend(rng.choice(nodes) for _ in range(3))
    comp, ncomp, cyclic = assert_same_everything(nodes, rng)
    sizes = {}
    for c in comp:
        sizes[c] = sizes.get(c, 0) + 1
    assert max(sizes.values()) > 2500  # a giant component really formed
    assert sum(cyclic) >= 1


@needs_core
def test_captured_garbage_cycles_agree():
    """What cyclescope really sees: instances, dicts, exceptions, tracebacks, frames."""

    class Owner:
        pass

    def stash(owner):
        try:
            raise ValueError("kept")
        except ValueError as exc:
            owner.error = exc  # exc -> traceback -> this frame -> owner -> exc

    gc.collect()
    flags = gc.get_debug()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for i in range(50):
            a, b = Plain(), Slotted()
            a.other, b.a = b, a
            d = {}
            d["self"] = d
            o = Owner()
            stash(o)
            del a, b, d, o
        gc.collect()
        garbage = list(gc.garbage)
        gc.garbage.clear()
    finally:
        gc.set_debug(flags)
    assert len(garbage) >= 250
    comp, ncomp, cyclic = assert_same_everything(garbage)
    assert sum(cyclic) >= 150


@needs_core
def test_live_heap_agrees():
    """Everything the collector tracks: the broadest mix of C types at hand."""
    frame_type = type(sys._getframe())  # running frames change under us: left out
    objects = [o for o in gc.get_objects() if type(o) is not frame_type]
    objects += [int, object, type, list, graph.Graph, 0, 1.5, "text", None, ...]
    # No other thread may mutate the heap between the two builds.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000)
    try:
        # A first run settles state that building creates lazily: on 3.10 a class's
        # size includes its shared-key cache, which grows with the first Graph made.
        graph._build_graph_py(objects)
        assert_same_everything(objects)
    finally:
        sys.setswitchinterval(interval)
        objects.clear()


# --- self-loops and cycles through C containers -----------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_three_list_cycle_by_hand(impl):
    a, b, c = [], [], []
    a.append(b)
    b.append(c)
    c.append(a)
    offsets, targets, sizes, type_ids, types = build(impl, [a, b, c])
    assert offsets == q([0, 1, 2, 3])
    assert targets == q([1, 2, 0])
    assert sizes == q([sys.getsizeof(a), sys.getsizeof(b), sys.getsizeof(c)])
    assert type_ids == q([0, 0, 0]) and types == [list]
    comp, ncomp, cyclic = scc(impl, 3, offsets, targets)
    assert (comp, ncomp, cyclic) == (q([0, 0, 0]), 1, bytearray(b"\x01"))
    assert representatives(impl, 3, offsets, targets, comp, ncomp, cyclic, q([0, 1, 2])) == (
        q([0, 3]),
        q([0, 1, 2]),
        q([0, 0, 0]),
    )
    # The best rank picks the start; the cycle still follows the edges.
    assert representatives(impl, 3, offsets, targets, comp, ncomp, cyclic, q([5, 1, 3])) == (
        q([0, 3]),
        q([1, 2, 0]),
        q([0, 0, 0]),
    )
    assert attribute(impl, 3, offsets, targets, comp, cyclic) == q([0, 0, 0])


@pytest.mark.parametrize("impl", IMPLS)
def test_self_loops_by_hand(impl):
    lst = []
    lst.append(lst)
    dct = {}
    dct["me"] = dct
    plain = Slotted()  # not on a cycle, but kept alive by the list
    lst.append(plain)
    objects = [lst, dct, plain]
    offsets, targets, sizes, type_ids, types = build(impl, objects)
    # The list (list_traverse goes from the last item back): the slotted object,
    # then itself; the dict: itself ("me" is not a node); the slotted object: only
    # its class, which is not a node.
    assert offsets == q([0, 2, 3, 3])
    assert targets == q([2, 0, 1])
    assert types == [list, dict, Slotted]
    comp, ncomp, cyclic = scc(impl, 3, offsets, targets)
    assert (comp, ncomp, cyclic) == (q([0, 1, 2]), 3, bytearray([1, 1, 0]))
    got = representatives(impl, 3, offsets, targets, comp, ncomp, cyclic, q([0, 0, 0]))
    # The list's self-loop is its second edge.
    assert got == (q([0, 1, 2, 2]), q([0, 1]), q([1, 0]))
    assert attribute(impl, 3, offsets, targets, comp, cyclic) == q([0, 1, 0])


@pytest.mark.parametrize("impl", IMPLS)
def test_cycles_through_tuple_and_set(impl):
    holder = []
    tup = (holder,)
    holder.append(tup)  # list -> tuple -> list
    node = Slotted()
    group = {node}
    node.a = group  # set -> instance -> set
    objects = [tup, holder, node, group]
    offsets, targets, *_ = build(impl, objects)
    assert offsets == q([0, 1, 2, 3, 4]) and targets == q([1, 0, 3, 2])
    comp, ncomp, cyclic = scc(impl, 4, offsets, targets)
    assert (comp, ncomp, cyclic) == (q([0, 0, 1, 1]), 2, bytearray([1, 1]))


@pytest.mark.parametrize("impl", IMPLS)
def test_references_outside_the_list_are_not_edges(impl):
    inner = [1, 2]
    outside = [inner]
    kept = [outside, inner]
    offsets, targets, *_ = build(impl, [kept, inner])
    assert offsets == q([0, 1, 1]) and targets == q([1])


@pytest.mark.parametrize("impl", IMPLS)
def test_duplicates_dedup_and_last_position(impl):
    x = []
    y = [x, x, x]
    # x is listed twice: edges go to its last position, once per source.
    offsets, targets, sizes, type_ids, types = build(impl, [x, y, x])
    assert offsets == q([0, 0, 1, 1]) and targets == q([2])
    assert type_ids == q([0, 0, 0]) and types == [list]


@pytest.mark.parametrize("impl", IMPLS)
def test_list_of_objects_holding_itself(impl):
    a = []
    objects = [a]
    objects.append(objects)
    offsets, targets, *_ = build(impl, objects)
    assert offsets == q([0, 0, 2]) and targets == q([1, 0])  # last item first
    objects.clear()


@pytest.mark.parametrize("impl", IMPLS)
def test_static_types_and_atoms(impl):
    objects = [int, object, type, 7, "s", None, 2.5]
    offsets, targets, sizes, type_ids, types = build(impl, objects)
    # Static types are GC-typed objects that are not GC objects (tp_is_gc): no referents.
    assert offsets == q([0] * 8) and len(targets) == 0
    assert list(sizes) == [sys.getsizeof(o) for o in objects]
    assert types == [type, int, str, type(None), float]
    assert type_ids == q([0, 0, 0, 1, 2, 3, 4])


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_input(impl):
    assert build(impl, []) == (q([0]), q(), q(), q(), [])
    assert scc(impl, 0, q([0]), q()) == (q(), 0, bytearray())
    assert representatives(impl, 0, q([0]), q(), q(), 0, bytearray(), q()) == (q([0]), q(), q())
    assert attribute(impl, 0, q([0]), q(), q(), bytearray()) == q()


# --- sizes and odd objects ---------------------------------------------------------------


def gc_header(tp: type) -> int:
    return 16 if type.__dict__["__flags__"].__get__(tp) & (1 << 14) else 0


def basicsize(tp: type) -> int:
    return type.__dict__["__basicsize__"].__get__(tp)


@pytest.mark.parametrize("impl", IMPLS)
def test_sizes_never_run_python_code(impl):
    # Python-level __sizeof__, or a C one that makes sys.getsizeof raise: fallback.
    fallback = [
        Hostile(),
        PySizeofList([1]),
        Weird(),
        Spoofed(),
        ForeignSizeof(),
        StrSizeof(),
        NegativeSizeof(5),
        NoneSizeof(),
    ]
    # C-level __sizeof__ (from object or type), under a hostile metaclass.
    measured = [WeirdSlotted(), Weird, WeirdSlotted, HostileMeta]
    offsets, targets, sizes, type_ids, types = build(impl, fallback + measured)
    assert list(sizes[:8]) == [basicsize(type(o)) + gc_header(type(o)) for o in fallback]
    assert list(sizes[8:]) == [sys.getsizeof(o) for o in measured]
    assert types[2] is Weird and types[8] is WeirdSlotted and types[9] is HostileMeta
    assert types[10] is type and len(types) == 11
    assert type_ids == q([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 10])


@pytest.mark.parametrize("impl", IMPLS)
def test_c_sizeof_of_a_subclass_is_used(impl):
    small = IntSizeof(1234)
    too_big = IntSizeof(2**80)  # int.__int__ fits no Py_ssize_t: OverflowError, fallback
    _, _, sizes, _, _ = build(impl, [small, too_big])
    assert sizes[0] == sys.getsizeof(small) and sizes[0] >= 1234
    assert sizes[1] == basicsize(IntSizeof) + gc_header(IntSizeof)


@pytest.mark.parametrize("impl", IMPLS)
def test_size_overflowing_int64_raises(impl):
    # __sizeof__ fits Py_ssize_t but the header pushes it past int64: array('q')
    # cannot hold it in the reference, so both raise OverflowError.
    huge = IntSizeof(sys.maxsize)
    if sys.getsizeof(huge) <= sys.maxsize:
        pytest.skip("no header added for this type on this version")
    with pytest.raises(OverflowError):
        build(impl, [huge])


@needs_core
def test_safe_sizeof_matches_core_on_many_builtins():
    import collections
    import functools
    import io
    import types as types_module

    def gen():
        yield 1

    objects = [
        b"bytes", bytearray(b"xy"), memoryview(b"ab"), range(3), slice(1, 2), 10**40,
        complex(1, 2), frozenset({1}), {1, 2}, (1,), (), [], {}, {"a": 1}, gen(),
        collections.OrderedDict(a=1), collections.deque([1]), collections.defaultdict(list),
        functools.partial(print, 1), io.StringIO("x"), types_module.SimpleNamespace(a=1),
        property(), staticmethod(len), classmethod(len), len, str.join, object.__init__,
        sys, types_module, sys._getframe, array("q", [1, 2]), Ellipsis, NotImplemented,
        type(None), Plain, Slotted, Plain(), Slotted(), gc.get_referents, iter([1]),
    ]
    _, _, sizes, _, _, _ = _core.build_graph(objects)
    assert list(sizes) == [graph.safe_sizeof(o) for o in objects]


@needs_core
def test_reference_metaclass_and_hash_hostility_is_harmless():
    # Instances whose __eq__/__hash__ raise, inside containers and as nodes.
    h1, h2 = Hostile(), Hostile()
    box = [h1, h2, {"k": h1}]
    objects = [h1, h2, box, box[2], Weird(), WeirdSlotted(), Weird]
    assert_same_everything(objects)


# --- long chains and big cycles -----------------------------------------------------------


def nested_chain(length: int, close: bool) -> list:
    """Lists each holding the next one; with close=True the last holds the first."""
    nodes = [[] for _ in range(length)]
    for a, b in zip(nodes, nodes[1:]):
        a.append(b)
    if close:
        nodes[-1].append(nodes[0])
    return nodes


@pytest.mark.parametrize("impl", IMPLS)
def test_chain_of_200k(impl):
    n = 200_000
    nodes = nested_chain(n, close=False)
    offsets, targets, *_ = build(impl, nodes)
    assert targets == q(range(1, n))
    comp, ncomp, cyclic = scc(impl, n, offsets, targets)
    assert comp == q(range(n)) and ncomp == n and not any(cyclic)
    assert representatives(impl, n, offsets, targets, comp, ncomp, cyclic, q(range(n))) == (
        q([0] * (n + 1)),
        q(),
        q(),
    )
    assert attribute(impl, n, offsets, targets, comp, cyclic) == q([-1] * n)


@pytest.mark.parametrize("impl", IMPLS)
def test_cycle_of_200k(impl):
    n = 200_000
    nodes = nested_chain(n, close=True)
    offsets, targets, *_ = build(impl, nodes)
    comp, ncomp, cyclic = scc(impl, n, offsets, targets)
    assert comp == q([0] * n) and ncomp == 1 and cyclic == bytearray([1])
    rank = q([5] * n)
    rank[123_456] = 1
    starts, nodes_, edges = representatives(impl, n, offsets, targets, comp, ncomp, cyclic, rank)
    assert starts == q([0, n])
    assert nodes_ == q(list(range(123_456, n)) + list(range(123_456)))
    assert edges == q([0] * n)
    assert attribute(impl, n, offsets, targets, comp, cyclic) == q([0] * n)


@needs_core
def test_chain_and_cycle_200k_agree():
    n = 200_000
    for close in (False, True):
        offsets = q(range(n + 1))
        targets = q(list(range(1, n)) + ([0] if close else []))
        if not close:
            offsets[n] = n - 1
        assert_same_algorithms(n, offsets, targets)


@needs_core
def test_core_handles_a_million_nodes():
    n = 1_000_000
    offsets = q(range(n + 1))
    targets = q(range(1, n + 1))
    targets[n - 1] = 0  # one cycle through every node
    comp, ncomp, cyclic = _core.scc(n, offsets, targets)
    assert ncomp == 1 and cyclic == bytearray([1]) and comp == q([0] * n)
    starts, nodes, edges = _core.representative_cycles(
        n, offsets, targets, comp, ncomp, bytes(cyclic), q(range(n))
    )
    assert starts == q([0, n]) and nodes == q(range(n)) and edges == q([0] * n)
    assert _core.attribute_acyclic(n, offsets, targets, comp, bytes(cyclic)) == q([0] * n)
    # The same nodes as a chain (no cycle), deepest possible DFS.
    targets = targets[: n - 1]
    offsets[n] = n - 1
    comp, ncomp, cyclic = _core.scc(n, offsets, targets)
    assert ncomp == n and comp == q(range(n)) and not any(cyclic)


@needs_core
def test_many_small_components():
    # 100k two-node cycles: each component's BFS must cost O(its size).
    pairs = 100_000
    n = 2 * pairs
    offsets = q(range(n + 1))
    targets = q(v + 1 if v % 2 == 0 else v - 1 for v in range(n))
    comp, ncomp, cyclic = assert_same_algorithms(n, offsets, targets)
    assert ncomp == pairs and comp == q(v // 2 for v in range(n)) and all(cyclic)
    starts, nodes, edges = _core.representative_cycles(
        n, offsets, targets, comp, ncomp, bytes(cyclic), q(range(n, 0, -1))
    )
    assert starts == q(range(0, n + 1, 2))
    assert nodes == q(v + 1 if v % 2 == 0 else v - 1 for v in range(n))  # odd node first
    assert edges == q([0] * n)


# --- hand-worked answers for the algorithms ----------------------------------------------

# 0 <-> 1, 1 -> 2 -> 3, 3 -> 3 (self-loop), 4 -> 0, 5 alone.
SMALL = (6, q([0, 1, 3, 4, 5, 6, 6]), q([1, 0, 2, 3, 3, 0]))


@pytest.mark.parametrize("impl", IMPLS)
def test_scc_by_hand(impl):
    comp, ncomp, cyclic = scc(impl, *SMALL)
    assert comp == q([0, 0, 1, 2, 3, 4])
    assert ncomp == 5
    assert cyclic == bytearray([1, 0, 1, 0, 0])


@pytest.mark.parametrize("impl", IMPLS)
def test_representatives_by_hand(impl):
    n, offsets, targets = SMALL
    comp, ncomp, cyclic = q([0, 0, 1, 2, 3, 4]), 5, bytearray([1, 0, 1, 0, 0])
    run = lambda rank: representatives(impl, n, offsets, targets, comp, ncomp, cyclic, q(rank))
    assert run(range(6)) == (q([0, 2, 2, 3, 3, 3]), q([0, 1, 3]), q([0, 0, 0]))
    # Node 0 excluded: the cycle starts at 1, whose first successor is 0.
    assert run([-1, 7, 0, 0, 0, 0]) == (q([0, 2, 2, 3, 3, 3]), q([1, 0, 3]), q([0, 0, 0]))
    assert run([-1] * 6) == (q([0] * 6), q(), q())


# 0 -> 1, 0 -> 2, 1 -> 2, 1 -> 3, 2 -> 3, 3 -> 0: shortest ways back tie.
DIAMOND = (4, q([0, 2, 4, 5, 6]), q([1, 2, 2, 3, 3, 0]))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "rank, nodes, edges",
    [
        ([0, 1, 2, 3], [0, 1, 3], [0, 1, 0]),  # via 1, found before 2
        ([5, 5, 0, 5], [2, 3, 0], [0, 0, 1]),  # back into 2 by 0's second edge
        ([1, 1, 1, 1], [0, 1, 3], [0, 1, 0]),  # rank tie: smallest node
        ([3, 2, 2, 3], [1, 3, 0], [1, 0, 0]),
    ],
)
def test_bfs_tie_rules_by_hand(impl, rank, nodes, edges):
    n, offsets, targets = DIAMOND
    comp, ncomp, cyclic = scc(impl, n, offsets, targets)
    assert (comp, ncomp, cyclic) == (q([0, 0, 0, 0]), 1, bytearray([1]))
    got = representatives(impl, n, offsets, targets, comp, ncomp, cyclic, q(rank))
    assert got == (q([0, len(nodes)]), q(nodes), q(edges))


@pytest.mark.parametrize("impl", IMPLS)
def test_attribute_by_hand(impl):
    n, offsets, targets = SMALL
    comp, ncomp, cyclic = scc(impl, n, offsets, targets)
    assert attribute(impl, n, offsets, targets, comp, cyclic) == q([0, 0, 0, 2, -1, -1])
    # Nearest owner wins over seeding order: 0 (self-loop) -> 3 -> 4 -> 2 is longer
    # than 1 (self-loop) -> 2.
    offsets, targets = q([0, 2, 4, 4, 5, 6]), q([0, 3, 1, 2, 4, 2])
    comp, ncomp, cyclic = scc(impl, 5, offsets, targets)
    assert comp == q([0, 1, 2, 3, 4]) and cyclic == bytearray([1, 1, 0, 0, 0])
    assert attribute(impl, 5, offsets, targets, comp, cyclic) == q([0, 1, 1, 0, 0])
    # Equal distance: the component seeded first (smaller node) wins.
    offsets, targets = q([0, 2, 4, 4]), q([0, 2, 1, 2])
    comp, ncomp, cyclic = scc(impl, 3, offsets, targets)
    assert attribute(impl, 3, offsets, targets, comp, cyclic) == q([0, 1, 0])


# --- hand-worked answers for the summaries ------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_totals_and_members_by_hand(impl):
    n, offsets, targets = SMALL
    comp, ncomp, cyclic = scc(impl, n, offsets, targets)
    owner = attribute(impl, n, offsets, targets, comp, cyclic)
    assert (comp, owner) == (q([0, 0, 1, 2, 3, 4]), q([0, 0, 0, 2, -1, -1]))
    sizes = q([10, 20, 300, 4000, 50000, 600000])
    # Node 2 is its own (acyclic) component but held by component 0.
    assert totals(impl, n, comp, ncomp, owner, sizes) == (
        q([2, 1, 1, 1, 1]),
        q([3, 0, 1, 0, 0]),
        q([330, 0, 4000, 0, 0]),
    )
    assert members(impl, n, owner, ncomp) == (q([0, 3, 3, 4, 4, 4]), q([0, 1, 2, 3]))
    # Members come in node order whatever the order of the owners.
    owner = q([2, -1, 0, 2, 0, -1, 2])
    assert members(impl, 7, owner, 4) == (q([0, 2, 2, 5, 5]), q([2, 4, 0, 3, 6]))
    assert members(impl, 7, q([-1] * 7), 2) == (q([0, 0, 0]), q())


@pytest.mark.parametrize("impl", IMPLS)
def test_totals_bytes_at_the_int64_limits(impl):
    top, bottom = 2**63 - 1, -(2**63)
    comp, owner = q([0, 0, 1]), q([0, 0, 1])
    got = totals(impl, 3, comp, 2, owner, q([2**62, 2**62 - 1, bottom]))
    assert got == (q([2, 1]), q([2, 1]), q([top, bottom]))
    # One more byte does not fit: array('q') refuses it in the reference.
    with pytest.raises(OverflowError):
        totals(impl, 3, comp, 2, owner, q([2**62, 2**62, 0]))
    with pytest.raises(OverflowError):
        totals(impl, 3, comp, 2, q([1, 1, 1]), q([-(2**62), -(2**62), -1]))


# type ids: A = 0, B = 1, C = 2, one per node 0..12.
SHAPE_TYPES = q([0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 2, 1, 0])
SHAPE_CASES = [
    # (nodes, edges) per component, the expected shape
    (([0, 1], [0, 0]), 0),  # A -0-> B -0->
    (([], []), -1),  # no cycle
    (([2, 3], [0, 1]), 1),  # same types, another edge
    (([4, 5], [0, 0]), 0),  # same as the first
    (([6], [0]), 2),  # a prefix is another shape
    (([7, 8], [0, 0]), 3),  # a rotation (B, A) is another shape
    (([9, 10], [0, 0]), 4),  # another type at one step
    (([11], [0]), 5),  # (B, 0) and (A, 1): type and edge are not interchangeable
    (([12], [1]), 6),
    (([1, 0], [0, 0]), 3),  # nodes may repeat across cycles: only their types count
    (([], []), -1),
    (([0, 3], [0, 1]), 1),
]


@pytest.mark.parametrize("impl", IMPLS)
def test_cycle_shapes_by_hand(impl):
    starts, nodes, edges = q([0]), q(), q()
    for (cycle_nodes, cycle_edges), _ in SHAPE_CASES:
        nodes.extend(cycle_nodes)
        edges.extend(cycle_edges)
        starts.append(len(nodes))
    ncomp = len(SHAPE_CASES)
    shape_of, first = shapes(impl, ncomp, starts, nodes, edges, SHAPE_TYPES)
    assert shape_of == q(shape for _, shape in SHAPE_CASES)
    assert first == q([0, 2, 4, 5, 6, 7, 8])
    # Type ids and edge positions are compared as values, whatever they are.
    big = q([2**63 - 1, -(2**63), 2**63 - 1])
    got = shapes(impl, 3, q([0, 1, 2, 3]), q([0, 1, 2]), q([-(2**63), 2**63 - 1, -(2**63)]), big)
    assert got == (q([0, 1, 0]), q([0, 1]))


@pytest.mark.parametrize("impl", IMPLS)
def test_summaries_of_small_by_hand(impl):
    n, offsets, targets = SMALL
    comp, ncomp, cyclic = scc(impl, n, offsets, targets)
    run = lambda rank: representatives(impl, n, offsets, targets, comp, ncomp, cyclic, q(rank))
    starts, nodes, edges = run(range(6))
    assert (starts, nodes, edges) == (q([0, 2, 2, 3, 3, 3]), q([0, 1, 3]), q([0, 0, 0]))
    want = (q([0, -1, 1, -1, -1]), q([0, 2]))
    assert shapes(impl, ncomp, starts, nodes, edges, q([0, 1, 0, 0, 1, 1])) == want
    # All of one type: the pair and the self-loop still differ in length.
    assert shapes(impl, ncomp, starts, nodes, edges, q([0] * 6)) == want
    # No candidate anywhere: no cycles, no shapes.
    starts, nodes, edges = run([-1] * 6)
    assert shapes(impl, ncomp, starts, nodes, edges, q([0] * 6)) == (q([-1] * 5), q())


@pytest.mark.parametrize("impl", IMPLS)
def test_summaries_of_nothing(impl):
    assert totals(impl, 0, q(), 0, q(), q()) == (q(), q(), q())
    assert shapes(impl, 0, q([0]), q(), q(), q()) == (q(), q())
    assert members(impl, 0, q(), 0) == (q([0]), q())


def _shape_hash_step(h: int, value: int) -> int:
    # One step of shape_hash in _core.c, on unsigned 64-bit values.
    h = ((h ^ (value & 0xFFFFFFFFFFFFFFFF)) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    return h ^ (h >> 32)


@pytest.mark.parametrize("impl", IMPLS)
def test_cycle_shapes_full_comparison_on_equal_hashes(impl):
    """Two different one-step shapes given the same hash (it mirrors shape_hash in
    _core.c; if that changes, this stays a valid case that merely no longer collides).
    The second must not be taken for the first, nor the third for the second."""
    type_ids = q([0, 1])
    edge = 5
    twin = _shape_hash_step(1, 0) ^ edge ^ _shape_hash_step(1, 1)
    twin -= (twin >> 63) << 64  # as a signed int64
    assert twin != edge
    starts, nodes, edges = q([0, 1, 2, 3, 4]), q([0, 1, 1, 0]), q([edge, twin, twin, edge])
    assert shapes(impl, 4, starts, nodes, edges, type_ids) == (q([0, 1, 1, 0]), q([0, 1]))


@needs_core
def test_many_distinct_shapes_agree():
    """Thousands of shapes: the C table grows and probes; every one is told apart."""
    rng = random.Random(3)
    ncomp = 20_000
    type_ids = q(rng.randrange(4) for _ in range(5000))
    starts, nodes, edges = q([0]), q(), q()
    for _ in range(ncomp):
        length = rng.choice([0, 1, 2, 3, 4, 6])
        nodes.extend(rng.randrange(5000) for _ in range(length))
        edges.extend(rng.randrange(3) for _ in range(length))
        starts.append(len(nodes))
    py = shapes("py", ncomp, starts, nodes, edges, type_ids)
    c = shapes("c", ncomp, starts, nodes, edges, type_ids)
    assert c == py
    assert len(py[1]) > 5000
    check_shapes(*c, starts, nodes, edges, type_ids)


@needs_core
def test_many_small_components_summaries_agree():
    """The size the performance target is about: 100k cycles of 2-3 nodes, each
    holding a few acyclic nodes, about 270k nodes in all."""
    rng = random.Random(11)
    succ: list[list[int]] = []
    for _ in range(100_000):
        base = len(succ)
        k = rng.choice([2, 3])
        ring = [[base + (i + 1) % k] for i in range(k)]
        held = rng.choice([0, 0, 1])
        for i in range(held):
            ring[0].append(base + k + i)
        succ.extend(ring)
        succ.extend([] for _ in range(held))
    n = len(succ)
    offsets, targets = q([0]), q()
    for out in succ:
        targets.extend(out)
        offsets.append(len(targets))
    sizes = q(rng.choice([56, 64, 104, 184]) for _ in range(n))
    type_ids = q(rng.randrange(3) for _ in range(n))
    comp, ncomp, cyclic = assert_same_algorithms(n, offsets, targets, rng, sizes, type_ids)
    assert ncomp > 100_000 and sum(cyclic) == 100_000


@pytest.mark.parametrize("impl", ["py", pytest.param("c", marks=needs_core)])
def test_public_summaries_dispatch(impl, monkeypatch):
    monkeypatch.setattr(graph, "_core", _core if impl == "c" else None)
    a, b, c = Slotted(), Slotted(), []  # slots are referents on every version
    a.a, b.a = b, a
    c.append(c)
    held = [1.5]
    c.append(held)
    g = graph.build_graph([a, b, c, held])
    comp, ncomp, cyclic = graph.strongly_connected_components(g)
    owner = graph.attribute_acyclic(g, comp, cyclic)
    assert (comp, ncomp, owner) == (q([0, 0, 1, 2]), 3, q([0, 0, 1, 1]))
    size_of = [graph.safe_sizeof(o) for o in (a, b, c, held)]
    assert graph.component_totals(g, comp, ncomp, owner) == (
        q([2, 1, 1]),
        q([2, 2, 0]),
        q([size_of[0] + size_of[1], size_of[2] + size_of[3], 0]),
    )
    starts, nodes, edges = graph.representative_cycles(g, comp, ncomp, cyclic, q([0, 0, 0, 0]))
    # list_traverse goes from the last item back: the self-loop is the list's second edge.
    assert (starts, nodes, edges) == (q([0, 2, 3, 3]), q([0, 1, 2]), q([0, 0, 1]))
    assert graph.cycle_shapes(g, ncomp, starts, nodes, edges) == (q([0, 1, -1]), q([0, 1]))
    assert graph.members_by_owner(g, owner, ncomp) == (q([0, 2, 4, 4]), q([0, 1, 2, 3]))


# --- bad input to the C core ------------------------------------------------------------


@needs_core
def test_core_accepts_other_int64_buffers():
    n, offsets, targets = SMALL
    want = _core.scc(n, offsets, targets)
    as_view = memoryview(offsets.tobytes()).cast("q")
    raw = bytearray(len(targets) * 8 + 1)
    raw[1:] = targets.tobytes()
    misaligned = memoryview(raw)[1:].cast("q")
    assert _core.scc(n, as_view, misaligned) == want
    assert _core.scc(n, array("l", offsets), targets) == want


@needs_core
@pytest.mark.parametrize(
    "args, match",
    [
        ((-1, q([0]), q()), "n must be"),
        ((2, q([0, 1]), q([0])), "n \\+ 1"),
        ((2, q([1, 1, 1]), q([0])), "offsets\\[0\\]"),
        ((2, q([0, 2, 1]), q([0, 1])), "non-decreasing"),
        ((2, q([0, 1, 2]), q([0])), "len\\(targets\\)"),
        ((2, q([0, 1, 2]), q([0, 2])), "targets\\[1\\]"),
        ((2, q([0, 1, 2]), q([0, -1])), "targets\\[1\\]"),
        ((2, array("i", [0, 1, 2]), q([0, 1])), "int64"),
        ((2, memoryview(bytes(24)), q([0, 1])), "int64"),
    ],
)
def test_core_rejects_bad_graphs(args, match):
    with pytest.raises(ValueError, match=match):
        _core.scc(*args)
    n, offsets, targets = args
    zeros = q([0] * max(n, 0))
    with pytest.raises(ValueError, match=match):
        _core.attribute_acyclic(n, offsets, targets, zeros, b"\x00")
    with pytest.raises(ValueError, match=match):
        _core.representative_cycles(n, offsets, targets, zeros, 1, b"\x00", zeros)


@needs_core
def test_core_rejects_bad_components():
    n, offsets, targets = SMALL
    comp, cyclic = q([0, 0, 1, 2, 3, 4]), b"\x01\x00\x01\x00\x00"
    rank = q(range(6))
    rep = _core.representative_cycles
    with pytest.raises(ValueError, match="comp must have"):
        rep(n, offsets, targets, comp[:5], 5, cyclic, rank)
    with pytest.raises(ValueError, match="comp\\[5\\]"):
        rep(n, offsets, targets, q([0, 0, 1, 2, 3, 5]), 5, cyclic, rank)
    with pytest.raises(ValueError, match="comp\\[0\\]"):
        rep(n, offsets, targets, q([-1, 0, 1, 2, 3, 4]), 5, cyclic, rank)
    with pytest.raises(ValueError, match="cyclic_bytes"):
        rep(n, offsets, targets, comp, 5, cyclic[:4], rank)
    with pytest.raises(ValueError, match="rank"):
        rep(n, offsets, targets, comp, 5, cyclic, rank[:5])
    with pytest.raises(ValueError, match="ncomp"):
        rep(n, offsets, targets, comp, -1, cyclic, rank)
    with pytest.raises(ValueError, match="cyclic_bytes"):
        rep(n, offsets, targets, comp, 5, q([1, 0, 1, 0, 0]), rank)
    # Claimed cyclic, but no cycle through the chosen node: not an SCC decomposition.
    with pytest.raises(ValueError, match="strongly connected"):
        rep(n, offsets, targets, comp, 5, b"\x01\x01\x01\x00\x00", rank)
    with pytest.raises(ValueError, match="comp\\[3\\] = 2"):
        _core.attribute_acyclic(n, offsets, targets, comp, cyclic[:2])
    with pytest.raises(TypeError):
        _core.scc(n, list(offsets), targets)
    with pytest.raises(TypeError):
        _core.build_graph(iter([]))


@needs_core
@pytest.mark.parametrize(
    "args, match",
    [
        ((-1, q(), 1, q(), q()), "n must be"),
        ((1, q([0]), -1, q([0]), q([8])), "ncomp must be"),
        ((2, q([0]), 1, q([0, 0]), q([8, 8])), "comp must have"),
        ((2, q([0, 1]), 1, q([0, 0]), q([8, 8])), "comp\\[1\\] = 1"),
        ((2, q([0, -1]), 1, q([0, 0]), q([8, 8])), "comp\\[1\\] = -1"),
        ((2, q([0, 0]), 1, q([0]), q([8, 8])), "owner must have"),
        ((2, q([0, 0]), 1, q([0, 1]), q([8, 8])), "owner\\[1\\] = 1"),
        ((2, q([0, 0]), 1, q([-2, 0]), q([8, 8])), "owner\\[0\\] = -2"),
        ((2, q([0, 0]), 1, q([0, 0]), q([8])), "sizes must have"),
        ((2, q([0, 0]), 1, q([0, 0]), array("i", [8, 8])), "sizes must be .* int64"),
        ((2, array("d", [0, 0]), 1, q([0, 0]), q([8, 8])), "comp must be .* int64"),
    ],
)
def test_core_rejects_bad_totals(args, match):
    with pytest.raises(ValueError, match=match):
        _core.component_totals(*args)


@needs_core
@pytest.mark.parametrize(
    "args, match",
    [
        ((-1, q([0]), q(), q(), q()), "ncomp must be"),
        ((2, q([0, 1]), q([0]), q([0]), q([0])), "starts must have ncomp \\+ 1 = 3 items"),
        ((1, q([1, 1]), q([0]), q([0]), q([0])), "starts\\[0\\] must be 0"),
        ((2, q([0, 2, 1]), q([0]), q([0]), q([0])), "starts must be non-decreasing \\(at 2\\)"),
        (
            (1, q([0, 1]), q([0, 0]), q([0, 0]), q([0])),
            "starts\\[ncomp\\] must equal len\\(nodes\\) = 2, not 1",
        ),
        ((1, q([0, 2]), q([0, 0]), q([0]), q([0])), "edges must have len\\(nodes\\) = 2"),
        ((1, q([0, 2]), q([0, 1]), q([0, 0]), q([0])), "nodes\\[1\\] = 1 is not a node in"),
        ((1, q([0, 2]), q([-1, 0]), q([0, 0]), q([0])), "nodes\\[0\\] = -1"),
        ((1, q([0, 1]), q([0]), q([0]), b"\x00"), "type_ids must be .* int64"),
        ((1, q([0, 1]), q([0]), memoryview(bytes(8)), q([0])), "edges must be .* int64"),
    ],
)
def test_core_rejects_bad_shapes(args, match):
    with pytest.raises(ValueError, match=match):
        _core.cycle_shapes(*args)


@needs_core
@pytest.mark.parametrize(
    "args, match",
    [
        ((-1, q(), 1), "n must be"),
        ((1, q([0]), -1), "ncomp must be"),
        ((2, q([0]), 1), "owner must have n = 2 items, not 1"),
        ((2, q([0, 1]), 1), "owner\\[1\\] = 1 is neither -1 nor a component in \\[0, 1\\)"),
        ((2, q([0, -5]), 1), "owner\\[1\\] = -5"),
        ((2, q([0, 0]), 0), "owner\\[0\\] = 0"),
        ((1, array("l", [0]).tobytes(), 1), "owner must be .* int64"),
    ],
)
def test_core_rejects_bad_members(args, match):
    with pytest.raises(ValueError, match=match):
        _core.members_by_owner(*args)


@needs_core
def test_core_summaries_other_bad_input():
    with pytest.raises(MemoryError):
        _core.members_by_owner(0, q(), sys.maxsize)
    with pytest.raises(MemoryError):
        _core.cycle_shapes(sys.maxsize, q([0]), q(), q(), q())
    with pytest.raises(TypeError):
        _core.members_by_owner(1, [0], 1)
    with pytest.raises(TypeError):
        _core.component_totals(0, q(), 0, q())
    with pytest.raises(TypeError):
        _core.cycle_shapes(0, q([0]), q(), q(), None)
    # Other int64 buffers are fine, misaligned ones too.
    raw = bytearray(3 * 8 + 1)
    raw[1:] = q([0, -1, 0]).tobytes()
    misaligned = memoryview(raw)[1:].cast("q")
    want = (q([0, 2, 2]), q([0, 2]))
    assert _core.members_by_owner(3, misaligned, 2) == want
    assert _core.members_by_owner(3, array("l", [0, -1, 0]), 2) == want


# -- node_ranks ------------------------------------------------------------------------


def test_node_ranks_by_hand() -> None:
    # Two spokes refer to a hub of their component: the hub ranks first, by
    # in-degree, although its type sorts after theirs.
    class Hub:
        __slots__ = ("links",)

    class Spoke:
        __slots__ = ("hub",)

    hub, s1, s2 = Hub(), Spoke(), Spoke()
    hub.links = (s1, s2)
    s1.hub = s2.hub = hub
    objects = [s1, hub, s2, hub.links]
    g = graph._build_graph_py(objects)
    comp, _, _ = graph._scc_py(g.n, g.offsets, g.targets)
    ntypes, cap = len(g.types), graph.DEGREE_CAP
    major = array("q", [0] * ntypes)
    minor = array("q", [1 if g.types[t] is Hub else 0 for t in range(ntypes)])
    rank = graph._node_ranks_py(g.n, g.offsets, g.targets, comp, g.type_ids, major, minor)
    assert rank[1] == (cap - 1 - 2) * ntypes + 1  # hub: referred to by s1 and s2
    assert rank[0] == (cap - 1 - 1) * ntypes + 0  # s1: referred to by the tuple
    assert min(range(g.n), key=rank.__getitem__) == 1
    major[g.type_ids[1]] = -1
    assert graph._node_ranks_py(g.n, g.offsets, g.targets, comp, g.type_ids, major, minor)[1] == -1


@pytest.mark.parametrize("seed", range(12))
def test_node_ranks_c_matches_pure(seed: int) -> None:
    core = pytest.importorskip("cyclescope._core", reason="the C core is not built")
    rng = random.Random(seed)
    objects = random_objects(rng, 300)
    g = graph._build_graph_py(objects)
    comp, _, _ = graph._scc_py(g.n, g.offsets, g.targets)
    ntypes = len(g.types)
    major = array("q", [rng.choice([-1, 0, 1, 2, 7]) for _ in range(ntypes)])
    minor = array("q", rng.sample(range(ntypes), ntypes))
    pure = graph._node_ranks_py(g.n, g.offsets, g.targets, comp, g.type_ids, major, minor)
    fast = core.node_ranks(g.n, g.offsets, g.targets, comp, g.type_ids, major, minor)
    assert list(fast) == list(pure)
    with pytest.raises(ValueError):
        core.node_ranks(g.n, g.offsets, g.targets, comp, g.type_ids, major, array("q", list(minor) + [0]))
    with pytest.raises(ValueError):
        core.node_ranks(g.n, g.offsets, g.targets, comp[:-1], g.type_ids, major, minor)


# -- shape_totals -----------------------------------------------------------------------


def test_shape_totals_by_hand_and_c_matches_pure() -> None:
    shape_of = array("q", [0, -1, 1, 0, 0, -1])
    held_objects = array("q", [2, 9, 3, 4, 5, 9])
    held_bytes = array("q", [20, 90, 30, 40, 50, 90])
    expected = ([3, 1], [11, 3], [110, 30])
    pure = graph._shape_totals_py(shape_of, 2, held_objects, held_bytes)
    assert [list(a) for a in pure] == [list(e) for e in expected]
    core = pytest.importorskip("cyclescope._core", reason="the C core is not built")
    assert [list(a) for a in core.shape_totals(shape_of, 2, held_objects, held_bytes)] == [list(e) for e in expected]
    rng = random.Random(3)
    shape_of = array("q", [rng.randrange(-1, 40) for _ in range(5000)])
    held_objects = array("q", [rng.randrange(1, 100) for _ in range(5000)])
    held_bytes = array("q", [rng.randrange(1, 10**6) for _ in range(5000)])
    assert core.shape_totals(shape_of, 40, held_objects, held_bytes) == graph._shape_totals_py(
        shape_of, 40, held_objects, held_bytes
    )
    with pytest.raises(ValueError):
        core.shape_totals(shape_of, 10, held_objects, held_bytes)  # shape 39 is out of range
    with pytest.raises(ValueError):
        core.shape_totals(shape_of, 40, held_objects[:-1], held_bytes)


def test_the_asyncio_module_is_never_traversed() -> None:
    # gh-122695: on CPython 3.12.0-3.12.5 traversing _asyncio visits freed objects.
    import asyncio  # noqa: F401 - _asyncio must come in through asyncio

    module = sys.modules["_asyncio"]
    # Its state holds these types: traversing it would give edges to them.
    objects = [module, module.Future, module.Task]
    for build in (graph._build_graph_py, pytest.importorskip("cyclescope._core").build_graph):
        result = build(objects)
        offsets = result.offsets if hasattr(result, "offsets") else result[0]
        assert offsets[1] - offsets[0] == 0, "the _asyncio module must have no edges"


class _Plain:
    pass


class _Slotted:
    __slots__ = ("a", "b")


class _BigInt(int):
    pass


class _TupleKind(tuple):
    pass


@pytest.mark.parametrize("impl", IMPLS)
def test_sizes_match_getsizeof_for_every_common_kind(impl):
    # The C core takes one size per type where object.__sizeof__ depends on the
    # type alone; it must agree with sys.getsizeof object by object, including the
    # types where it must not (variable-size instances, type objects).
    def f(): return f

    def outer():
        x = 1
        def inner(): return x
        return inner

    plain = _Plain()
    plain.attr = 1
    objects = [
        _Plain(), plain, _Slotted(), ValueError("x"), KeyError(), f, outer(), outer().__closure__[0],
        plain.__init__, _Plain.__init__, _BigInt(5), _BigInt(10**100), _TupleKind(()),
        _TupleKind(range(50)), _Plain, _Slotted, int, object(), range(3), property(),
        memoryview(b"abc"), slice(1, 2), iter([]),
    ]
    offsets, targets, sizes, type_ids, types = build(impl, objects)
    assert list(sizes) == [sys.getsizeof(o) for o in objects]


@needs_core
def test_c_build_stops_when_a_sizeof_changes_the_list():
    # object.__str__ as __sizeof__ is C code that calls the Python __repr__: the one
    # way code can run inside the build. It empties the list the build reads.
    objects: list = []

    class Meddler:
        __sizeof__ = object.__str__

        def __repr__(self) -> str:
            objects.clear()
            return "meddled"

    objects.extend([Meddler(), [1], [2]])
    with pytest.raises(RuntimeError, match="list changed"):
        _core.build_graph(objects)
    assert objects == []


@needs_core
def test_c_build_survives_items_replaced_during_a_sizeof():
    objects: list = []

    class Replacer:
        __sizeof__ = object.__str__

        def __repr__(self) -> str:
            objects[:] = [[n] for n in range(len(objects))]  # same length, new objects
            return "replaced"

    objects.extend([[0], Replacer(), [2]])
    offsets, targets, sizes, type_ids, types, _ = _core.build_graph(objects)
    assert len(sizes) == 3 and len(offsets) == 4  # finished without touching a freed object
