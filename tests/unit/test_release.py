"""Releasing captured garbage: ``_core.release_garbage``, ``_core.move_tail`` and the
release path of ``capture()``, on the C core and (where it applies) the pure path.

A capture's garbage is the ``DEBUG_SAVEALL`` list of a collection. The C release frees
it without a full collection, and must leave intact whatever is still referenced from
outside, and everything that reaches; the pure path drops it and runs a full
collection. Canaries tell whether a cycle was really freed (see test_capture.py).
"""

from __future__ import annotations

import gc
import sys
import weakref

import pytest

import cyclescope
from cyclescope import capturing, graph
from cyclescope.report.model import Report
from twins import extension, needs

_core = extension("_core")
needs_core = needs(_core, "_core")


class Node:
    def __init__(self, tag: str = "") -> None:
        self.tag = tag
        self.next: object = None
        self.payload: object = None


class Pair:
    __slots__ = ("other", "payload", "__weakref__")

    def __init__(self) -> None:
        self.other = None
        self.payload = None


class Canary:
    """Weakly referenced; hangs off a captured cycle."""


class Finalized:
    def __init__(self, log: list) -> None:
        self.log = log
        self.other: object = None

    def __del__(self) -> None:
        self.log.append(self.other is not None)


pytestmark = pytest.mark.usefixtures("gc_state_kept")


@pytest.fixture(params=["c", "py"])
def impl(request, monkeypatch):
    """Run a capture-level test on the C release and on the pure path."""
    if request.param == "c":
        if graph._core is None:
            pytest.skip("the C core is not in use (not built, or CYCLESCOPE_PURE=1)")
    else:
        monkeypatch.setattr(graph, "_core", None)
    return request.param


def canaries(n: int) -> tuple[list, list[weakref.ref]]:
    # A full collection promotes them to the oldest generation: a young collection
    # that finds the cycle holding one leaves it (and its weakref) alone, so it dies
    # only when the cycle is really freed.
    holder = [Canary() for _ in range(n)]
    gc.collect()
    return holder, [weakref.ref(c) for c in holder]


def saveall_young(make) -> list:
    """What a young collection finds unreachable after ``make()``, saved as a capture saves it."""
    gc.collect()
    debug = gc.get_debug()
    gc.disable()
    gc.set_debug(debug | gc.DEBUG_SAVEALL)
    try:
        make()
        gc.collect(0)
        store = gc.garbage[:]
        del gc.garbage[:]
    finally:
        gc.set_debug(debug)
        gc.enable()
    return store


def make_pairs(n: int, holder: list | None = None) -> None:
    for _ in range(n):
        a, b = Pair(), Pair()
        a.other, b.other = b, a
        if holder:
            a.payload = holder.pop()


def pair_count(report: cyclescope.Report) -> int:
    return sum(g.count for g in report.groups if g.subject.endswith("Pair"))


def alive(refs: list[weakref.ref]) -> list[bool]:
    return [r() is not None for r in refs]


# --- release_garbage on SAVEALL lists -------------------------------------------------


@needs_core
def test_a_saved_cycle_is_freed_without_a_collection() -> None:
    holder, refs = canaries(3)
    store = saveall_young(lambda: make_pairs(3, holder))
    assert len(store) == 6
    cleared, kept = _core.release_garbage(store)
    assert store == []
    assert kept == 0
    assert 1 <= cleared <= 6
    assert alive(refs) == [False, False, False]


@needs_core
def test_an_externally_referenced_object_keeps_itself_and_what_it_reaches() -> None:
    holder, refs = canaries(3)

    def make() -> None:
        ring = [Node("ring") for _ in range(3)]
        for a, b in zip(ring, ring[1:] + ring[:1]):
            a.next = b
        ring[1].payload = holder.pop()  # reached from the held node: must survive
        make_pairs(2, holder)  # nothing outside refers to these: freed

    store = saveall_young(make)
    held = next(o for o in store if type(o) is Node)
    cleared, kept = _core.release_garbage(store)
    assert store == []
    assert kept >= 3  # the ring (and, on 3.10, the ring's __dict__s)
    assert cleared >= 1
    assert alive(refs) == [False, False, True]
    # Intact: every attribute of every node of the ring is still there.
    node = held
    for _ in range(3):
        assert node.tag == "ring"
        assert vars(node).keys() == {"tag", "next", "payload"}
        node = node.next
    assert node is held
    del held, node
    gc.collect()
    assert alive(refs) == [False, False, False]


@needs_core
def test_duplicates_in_the_list() -> None:
    def scenario(times: int) -> tuple[tuple[int, int], list[bool]]:
        holder, refs = canaries(3)

        def make() -> None:
            ring = [Node("ring") for _ in range(2)]
            ring[0].next, ring[1].next = ring[1], ring[0]
            ring[0].payload = holder.pop()
            make_pairs(2, holder)

        store = saveall_young(make)
        held = next(o for o in store if type(o) is Node)
        store = store * times + [held] * times  # every object listed `times` times, the held one more
        result = _core.release_garbage(store)
        assert store == []
        assert held.next.next is held and held.next.tag == "ring"
        del held
        before = alive(refs)
        gc.collect()
        assert alive(refs) == [False, False, False]
        return result, before

    assert scenario(3) == scenario(1)
    (_cleared, kept), alive_before = scenario(2)
    assert kept >= 2
    assert alive_before == [False, False, True]


@needs_core
def test_cycles_through_objects_without_tp_clear() -> None:
    holder, refs = canaries(2)

    def make() -> None:
        box: list = []
        pair = (box, holder.pop())  # a tuple has no tp_clear: the list's breaks the cycle
        box.append(pair)
        node = Node()
        node.next = (node, holder.pop())

    store = saveall_young(make)
    assert any(type(o) is tuple for o in store)
    cleared, kept = _core.release_garbage(store)
    assert kept == 0 and cleared >= 1
    assert alive(refs) == [False, False]


@needs_core
def test_an_instance_dict_made_after_the_collection_joins_the_garbage() -> None:
    # On 3.11+ an instance's __dict__ exists only once asked for: the report's labels
    # ask after the collection, so the dict is not in the list, yet refers to the
    # cycle. It is garbage with its instance, and must not keep the cycle alive.
    holder, refs = canaries(1)

    def make() -> None:
        a, b = Node(), Node()
        a.next, b.next = b, a
        a.payload = holder.pop()

    store = saveall_young(make)
    dicts = [vars(obj) for obj in store if type(obj) is Node]
    assert len(dicts) == 2
    del dicts
    _cleared, kept = _core.release_garbage(store)
    assert kept == 0
    assert alive(refs) == [False]


@needs_core
def test_objects_whose_finalizer_has_not_run_are_left_for_the_collector() -> None:
    log: list = []
    a, b = Finalized(log), Finalized(log)
    a.other, b.other = b, a
    store = [a, b]  # not from a collection: gc never ran their __del__
    del a, b
    cleared, kept = _core.release_garbage(store)
    assert cleared == 0 and kept >= 2  # (and, on 3.10, their __dict__s)
    assert log == []
    gc.collect()
    assert log == [True, True], "__del__ must see its object intact"


@needs_core
def test_weakly_referenced_objects_are_left_for_the_collector() -> None:
    node = Node()
    node.next = node
    ref = weakref.ref(node)
    store = [node]
    del node
    cleared, kept = _core.release_garbage(store)
    assert cleared == 0 and kept >= 1
    assert ref() is not None and ref().next is ref()
    gc.collect()
    assert ref() is None


@needs_core
def test_shared_and_immortal_objects_are_kept() -> None:
    text = "a string"
    holds_itself: list = []
    holds_itself.append(holds_itself)
    store = [None, (), text, 12345678, [None], holds_itself]
    _cleared, kept = _core.release_garbage(store)
    assert store == []
    assert kept >= 4  # None, (), the string, the self-holding list: all referenced from here
    assert holds_itself == [holds_itself] and text == "a string"
    holds_itself.clear()


@needs_core
def test_release_garbage_arguments() -> None:
    with pytest.raises(TypeError):
        _core.release_garbage((Node(),))
    assert _core.release_garbage([]) == (0, 0)


# --- move_tail ---------------------------------------------------------------------------


@pytest.mark.parametrize("use_core", [pytest.param(True, marks=needs_core), False])
def test_move_tail(use_core: bool, monkeypatch) -> None:
    if use_core:
        monkeypatch.setattr(graph, "_core", _core)
    else:
        monkeypatch.setattr(graph, "_core", None)
    objects = [Node(str(i)) for i in range(6)]
    src = list(objects)
    dst = ["x"]
    counts = [sys.getrefcount(o) for o in objects]
    assert graph.move_tail(src, 2, dst) == 4
    assert src == objects[:2] and dst == ["x"] + objects[2:]
    assert [sys.getrefcount(o) for o in objects] == counts, "references moved, none copied"
    assert graph.move_tail(src, 5, dst) == 0
    assert graph.move_tail(src, 0, dst) == 2
    assert src == [] and dst == ["x"] + objects[2:] + objects[:2]
    big = list(range(1000))
    assert graph.move_tail(big, 10, dst) == 990
    assert big == list(range(10)) and dst[-990:] == list(range(10, 1000))
    big.append("still a working list")
    assert big[-1] == "still a working list"
    whole, empty = list(objects), []
    counts = [sys.getrefcount(o) for o in objects]
    assert graph.move_tail(whole, 0, empty) == 6  # everything into an empty list
    assert whole == [] and empty == objects
    assert [sys.getrefcount(o) for o in objects] == counts
    whole.append(1)
    empty.append(2)
    assert whole == [1] and empty == objects + [2]
    with pytest.raises(ValueError):
        graph.move_tail(src, 0, src)
    with pytest.raises(ValueError):
        graph.move_tail(dst, -1, src)


@needs_core
def test_move_tail_argument_types() -> None:
    with pytest.raises(TypeError):
        _core.move_tail((1, 2), 0, [])
    with pytest.raises(TypeError):
        _core.move_tail([1, 2], 0, ())


# --- the release path of capture() -------------------------------------------------------


def test_canary_dies_right_at_the_end_of_the_capture(impl: str) -> None:
    holder, refs = canaries(2)
    with cyclescope.capture() as cap:
        make_pairs(2, holder)
        gc.collect(0)
        assert alive(refs) == [True, True], "captured objects are held until the report is built"
    assert alive(refs) == [False, False]
    assert not [o for o in gc.get_objects() if type(o) is Pair]
    assert pair_count(cap.report()) == 2


def test_instance_attribute_cycles_are_freed_and_reported(impl: str) -> None:
    # The report's labels read instance __dict__s (made only then on 3.11+).
    holder, refs = canaries(1)
    with cyclescope.capture() as cap:
        a, b = Node(), Node()
        a.next, b.next = b, a
        a.payload = holder.pop()
        del a, b
        gc.collect(0)
    assert alive(refs) == [False]
    (group,) = [g for g in cap.report().groups if g.subject.endswith("Node")]
    assert [s.edge for s in group.cycle] == [".next", ".next"]


def test_nested_inner_release_leaves_what_the_outer_holds(impl: str) -> None:
    holder, refs = canaries(2)
    with cyclescope.capture() as outer:
        make_pairs(2)
        with cyclescope.capture() as inner:
            make_pairs(3, holder)
            gc.collect(0)
        # The outer capture still holds the inner one's cycles: nothing of them cleared.
        assert alive(refs) == [True, True]
        assert len([o for o in outer.store if type(o) is Pair and o.other is not None]) == 10
        make_pairs(1)
    assert pair_count(inner.report()) == 3
    assert pair_count(outer.report()) == 6, "the outer report sees every cycle whole"
    assert alive(refs) == [False, False]


def test_keep_hands_over_intact_objects(impl: str) -> None:
    holder, refs = canaries(1)
    with cyclescope.capture(keep=True) as cap:
        make_pairs(2, holder)
        gc.collect(0)
    pairs = [o for o in cap.objects if type(o) is Pair]
    assert len(pairs) == 4 and all(p.other.other is p for p in pairs)
    assert alive(refs) == [True]
    del pairs
    cap.objects.clear()
    gc.collect()
    assert alive(refs) == [False]


def test_keep_inside_an_outer_capture_is_not_cleared_by_it(impl: str) -> None:
    holder, refs = canaries(2)
    with cyclescope.capture() as outer:
        make_pairs(1, holder)
        gc.collect(0)
        with cyclescope.capture(keep=True) as inner:
            make_pairs(2, holder)
            gc.collect(0)
    # The outer capture held the inner one's objects too; its release left them alone.
    pairs = [o for o in inner.objects if type(o) is Pair]
    assert len(pairs) == 4 and all(p.other.other is p for p in pairs)
    assert sum(alive(refs)) == 1, "the outer capture's own cycle is freed, the kept one is not"
    assert pair_count(outer.report()) == 3
    del pairs
    inner.objects.clear()
    gc.collect()
    assert alive(refs) == [False, False]


def test_what_later_garbage_still_refers_to_is_freed_by_a_full_collection(impl: str, monkeypatch) -> None:
    # Garbage made after the flush (as building the report can make) that refers to a
    # captured cycle keeps it from being cleared: the full collection frees both.
    take_report = capturing.Capture._take_report

    def build_and_litter(self: capturing.Capture) -> Report:
        report = take_report(self)
        junk: list = [self.store[0]]
        junk.append(junk)
        return report

    monkeypatch.setattr(capturing.Capture, "_take_report", build_and_litter)
    holder, refs = canaries(1)
    with cyclescope.capture() as cap:
        make_pairs(1, holder)
        gc.collect(0)
    assert alive(refs) == [False]
    assert pair_count(cap.report()) == 1


def test_what_a_capture_spills_over_its_cap_is_freed(impl: str) -> None:
    holder, refs = canaries(1)
    with pytest.warns(capturing.CaptureWarning, match="summarised and released"):
        with cyclescope.capture(max_objects=50):
            make_pairs(1, holder)
            gc.collect(0)
            make_pairs(100)  # over the cap at the last collection: summarised and dropped
    assert alive(refs) == [False]
    assert not [o for o in gc.get_objects() if type(o) is Pair]


def test_keyboard_interrupt_during_the_release_still_frees_everything(monkeypatch) -> None:
    def interrupted(objects: list) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(capturing, "release_garbage", interrupted)
    holder, refs = canaries(1)
    with pytest.raises(KeyboardInterrupt):
        with cyclescope.capture(freeze=True):
            make_pairs(1, holder)
            gc.collect(0)
    assert alive(refs) == [False]
    assert not gc.get_debug() & gc.DEBUG_SAVEALL


def test_a_failing_c_release_falls_back_to_a_collection(monkeypatch) -> None:
    def failing(objects: list) -> None:
        raise MemoryError

    monkeypatch.setattr(capturing, "release_garbage", failing)
    holder, refs = canaries(1)
    with cyclescope.capture() as cap:
        make_pairs(1, holder)
        gc.collect(0)
    assert alive(refs) == [False]
    assert pair_count(cap.report()) == 1


@pytest.mark.parametrize("shape", ["exact", "freeze", "nested"])
def test_no_full_collection_releases_on_a_large_heap(impl: str, shape: str, monkeypatch) -> None:
    """With the C core the release costs what was captured, not a collection of the heap."""
    generations: list[int] = []
    releasing = 0

    def watch(phase: str, info: dict) -> None:
        if phase == "start" and releasing:
            generations.append(info["generation"])

    original = capturing._COLLECTOR.release

    def release(capture: capturing.Capture) -> None:
        nonlocal releasing
        releasing += 1
        try:
            original(capture)
        finally:
            releasing -= 1

    def block() -> None:
        make_pairs(1000, holder)
        gc.collect(0)
        for i in range(1000):
            node = Node()
            node.next = node
            node.payload = [i]

    monkeypatch.setattr(capturing._COLLECTOR, "release", release)
    holder, refs = canaries(1)
    gc.disable()
    try:
        heap = [[] for _ in range(1_000_000)]  # a million tracked objects
        gc.callbacks.append(watch)
        try:
            if shape == "nested":
                # The inner release keeps what the outer capture holds, without
                # asking for a collection: the outer release frees it.
                with cyclescope.capture() as outer:
                    make_pairs(10)
                    with cyclescope.capture() as cap:
                        block()
                assert pair_count(outer.report()) == 1010
            else:
                with cyclescope.capture(freeze=shape == "freeze") as cap:
                    block()
        finally:
            gc.callbacks.remove(watch)
    finally:
        gc.enable()
    assert len(heap) == 1_000_000
    del heap
    assert alive(refs) == [False]
    assert pair_count(cap.report()) == 1000
    if impl == "c":
        assert 2 not in generations, "the C release must not run a full collection"
    else:
        assert generations == [2], "the pure path frees with one full collection"
