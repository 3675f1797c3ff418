"""snapshot(): roots, labelled retention paths, dominators, diffs; and what it must not do."""

from __future__ import annotations

import asyncio
import gc
import re
import sys
import weakref

import pytest

import cyclescope
from cyclescope.heap import Snapshot
from cyclescope.report.text import format_bytes

pytestmark = pytest.mark.usefixtures("gc_state_kept")


class Thing:
    pass


class Widget:
    __slots__ = ("payload", "__weakref__")

    def __init__(self, payload: object = None) -> None:
        self.payload = payload


class Hostile:
    """Every hook a careless tool would call raises."""

    def __init__(self, child: object) -> None:
        self.child = child

    def __getattribute__(self, name: str) -> object:
        if name in ("__dict__", "__class__", "child"):
            return object.__getattribute__(self, name)
        raise RuntimeError(f"__getattribute__({name!r}) called")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("__eq__ called")

    def __hash__(self) -> int:
        raise RuntimeError("__hash__ called")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ called")


# The targets are made inside the containers, never held by a local of the test when
# the snapshot is taken: a local of a running frame is a root too (a shorter path).


def test_path_from_a_module_global_names_the_module_the_key_and_the_index(module) -> None:
    module.CACHE = {"https://example.test/a": [0, 1, 2, Thing()]}
    snap = cyclescope.snapshot()
    (path,) = snap.retention_paths(module.CACHE["https://example.test/a"][3])
    assert str(path) == "module cs_test_module -> .CACHE -> ['https://example.test/a'] -> [3] -> Thing"
    assert path.root_kind == "module" and not path.stale


def test_path_from_a_local_variable_of_a_running_frame() -> None:
    def holder() -> Snapshot:
        kept_here = Widget()
        snap = cyclescope.snapshot()
        paths = snap.retention_paths(kept_here)
        assert paths and paths[0].root_kind == "local"
        assert paths[0].root.startswith("local 'kept_here' in ")
        assert "holder()" in paths[0].root and "(MainThread)" in paths[0].root
        return snap

    holder()


def test_path_from_a_pending_asyncio_task() -> None:
    loop = asyncio.new_event_loop()

    async def keeper(item: object) -> None:
        await asyncio.Event().wait()

    try:
        task = loop.create_task(keeper(Widget()))
        loop.run_until_complete(asyncio.sleep(0))
        snap = cyclescope.snapshot()
        coro = task.get_coro()
        target = next(o for holder in (coro, coro.cr_frame) for o in gc.get_referents(holder) if type(o) is Widget)
        paths = snap.retention_paths(target, n=3)
        roots = [p.root for p in paths]
        assert any(r.startswith("asyncio task ") and "keeper()" in r for r in roots), roots
        task_path = next(p for p in paths if p.root_kind == "task")
        assert "local 'item'" in str(task_path)
        task.cancel()
        loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
    finally:
        loop.close()


def test_several_distinct_shortest_paths(module) -> None:
    module.FIRST = [Thing()]
    module.SECOND = [module.FIRST[0]]
    paths = cyclescope.snapshot().retention_paths(module.FIRST[0], n=2)
    assert sorted(str(p) for p in paths) == [
        "module cs_test_module -> .FIRST -> [0] -> Thing",
        "module cs_test_module -> .SECOND -> [0] -> Thing",
    ]


def test_more_paths_start_at_named_roots_when_the_first_does(module) -> None:
    # While a module's body runs (exec, import, a script), the function running it is
    # held from outside the heap and refers to the module's dict: it must not pass for a
    # root as near as the module itself.
    code = compile(
        "REGISTRY = [Widget()]\n"
        "PATHS = [str(p) for p in cyclescope.snapshot().retention_paths(REGISTRY[0], n=3)]\n",
        "cs_test_module_body", "exec")
    module.__dict__.update(Widget=Widget, cyclescope=cyclescope)
    exec(code, module.__dict__)
    assert module.PATHS == ["module cs_test_module -> .REGISTRY -> [0] -> Widget"]


def test_labels_never_call_user_hooks(module) -> None:
    module.HOSTILE = [Hostile(Thing())]
    snap = cyclescope.snapshot()
    (path,) = snap.retention_paths(module.HOSTILE[0].child)
    assert str(path) == "module cs_test_module -> .HOSTILE -> [0] -> .child -> Thing"


def test_an_object_held_only_from_c_is_rooted_outside_the_heap(held_from_c) -> None:
    address = held_from_c(Widget())
    snap = cyclescope.snapshot()
    found = next(o for o in gc.get_objects() if id(o) == address)
    (path,) = snap.retention_paths(found)
    assert path.root_kind == "external" and path.root == "held from outside the heap: Widget"
    assert str(path) == "held from outside the heap: Widget" and not path.stale


def test_an_untracked_object_held_only_from_c_is_a_root_not_stale_and_no_growth(module, held_from_c) -> None:
    older = cyclescope.snapshot()
    text = "".join(["cs-", "held-", "from-c"])  # untracked: gc.get_objects() never lists it
    held_from_c(text)
    holder = [text]  # makes it a node; left out of the snapshot, no path goes through it
    del text
    newer = cyclescope.snapshot(exclude=[holder])
    (path,) = newer.retention_paths(holder[0])
    assert str(path) == "held from outside the heap: str" and path.root_kind == "external" and not path.stale
    # The older snapshot could not have seen such an object, new or not: no growth.
    paths = [p for g in newer.diff(older, top=50, samples=50).types if g.type == "str" for p in g.sample_paths]
    assert not [p for p in paths if str(p) == "held from outside the heap: str"]


def test_paths_from_many_objects_held_from_c_find_them_again_in_one_pass(held_from_c, monkeypatch) -> None:
    # Labelling a path starts at the live root object; those held from outside are found
    # again by scanning gc.get_objects(): once for a whole diff or survivors() answer.
    older = cyclescope.snapshot()
    for _ in range(4):
        held_from_c([Widget()])  # list held from outside -> [0] -> Widget
    newer = cyclescope.snapshot()
    scans = []
    real_get_objects = gc.get_objects
    monkeypatch.setattr(gc, "get_objects", lambda *a, **k: scans.append(1) or real_get_objects(*a, **k))
    (widgets,) = [g for g in newer.diff(older, top=50, samples=4).types if g.type.endswith("test_heap.Widget")]
    survivors = newer.survivors(["*test_heap.Widget"])
    monkeypatch.undo()
    assert [str(p) for p in widgets.sample_paths] == ["held from outside the heap: list -> [0] -> Widget"] * 4
    assert [(s.kind, s.count) for s in survivors] == [("uncollectable", 4)]
    assert len(scans) == 2, "one scan of the heap for the diff's samples, one for survivors()"


def test_retained_size_and_top_retainers(module) -> None:
    module.BIG = [bytearray(8192) for _ in range(4000)]  # 32 MiB: more than anything else in a test process
    snap = cyclescope.snapshot()
    retained = snap.retained_size(module.BIG)
    assert retained >= 4000 * 8192 + sys.getsizeof(module.BIG)
    top = snap.top_retainers(5)
    big = next(r for r in top if r.type == "list" and r.retained_bytes == retained)
    assert big.retained_objects >= 4001
    assert big.path is not None and str(big.path).startswith("module cs_test_module -> .BIG")
    assert str(big) == f"{format_bytes(retained)} in {big.retained_objects:,} objects: {big.path}"


def test_diff_counts_new_objects_by_type_with_sample_paths(module) -> None:
    older = cyclescope.snapshot()
    module.WIDGETS = [Widget() for _ in range(500)]
    newer = cyclescope.snapshot()
    diff = newer.diff(older, top=20)
    growth = next(g for g in diff.types if g.type.endswith("test_heap.Widget"))
    assert growth.count == 500 and growth.net_count == 500
    assert growth.bytes >= 500 * sys.getsizeof(Widget())
    assert growth.sample_paths and str(growth.sample_paths[0]).startswith("module cs_test_module -> .WIDGETS -> [")


def test_diff_samples_prefer_objects_a_named_root_holds(module, held_from_c) -> None:
    older = cyclescope.snapshot()
    gc.disable()  # allocation order is node order: the one held from C comes first
    try:
        held_from_c(Widget())
        module.KEPT = [Widget() for _ in range(3)]
        newer = cyclescope.snapshot()
    finally:
        gc.enable()
    growth = next(g for g in newer.diff(older, top=50, samples=1).types if g.type.endswith("test_heap.Widget"))
    assert growth.count == 4
    assert [str(p) for p in growth.sample_paths] == ["module cs_test_module -> .KEPT -> [0] -> Widget"]


def test_diff_samples_classes_beyond_the_most_numerous_types(module) -> None:
    older = cyclescope.snapshot()
    module.MANY = [(i, "x") for i in range(500)] + [[i] for i in range(300)]
    module.FEW = [Widget() for _ in range(5)]
    growth = {g.type.rsplit(".", 1)[-1]: g for g in cyclescope.snapshot().diff(older, top=1, samples=1).types}
    assert growth["tuple"].sample_paths  # the most numerous
    assert not growth["list"].sample_paths  # a builtin type past the top
    (path,) = growth["Widget"].sample_paths  # a class of the program's, past the top
    assert str(path) == "module cs_test_module -> .FEW -> [0] -> Widget"


def test_growth_reports_what_the_heap_gained_since_the_previous_call(module) -> None:
    cyclescope.growth()
    module.MORE = [Widget() for _ in range(300)]
    diff = cyclescope.growth()
    assert diff is not None
    assert any(g.type.endswith("test_heap.Widget") and g.count == 300 for g in diff.types)


def test_survivors_group_by_path_shape_positions_folded_keys_kept(module) -> None:
    module.HISTORY = {"a": [Widget() for _ in range(25)], "b": [Widget()]}
    module.LONE = Widget()
    snap = cyclescope.snapshot()
    found = snap.survivors(["test_heap.Widget"], paths=50)
    by_count = sorted((s.count, s.kind, s.path) for s in found)
    assert [(count, kind) for count, kind, _ in by_count] == [(1, "retained"), (1, "retained"), (25, "retained")]
    assert by_count[2][2].startswith("module cs_test_module -> .HISTORY -> ['a'] -> [")  # one example of the 25
    assert {by_count[0][2], by_count[1][2]} == {"module cs_test_module -> .HISTORY -> ['b'] -> [0] -> Widget",
                                                "module cs_test_module -> .LONE -> Widget"}
    # Once `paths` shapes are found the rest is counted by kind, listed after the groups.
    found = snap.survivors(["test_heap.Widget"], paths=1)
    assert [(s.count, s.kind, bool(s.path)) for s in found] == [(1, "retained", True), (26, "retained", False)]


def test_survivors_label_every_type_first_then_the_most_numerous(module) -> None:
    module.MANY = [Widget() for _ in range(300)]
    module.FEW = {"first": Thing(), "second": Thing()}
    found = cyclescope.snapshot().survivors(["*test_heap.Widget", "*test_heap.Thing"], paths=2)
    shown = {(s.type.rsplit(".", 1)[-1], s.count, s.path) for s in found}
    assert {("Thing", 1, "module cs_test_module -> .FEW -> ['first'] -> Thing"),
            ("Thing", 1, "module cs_test_module -> .FEW -> ['second'] -> Thing")} <= shown
    # 50 * paths of one type are labelled (the example: whichever comes first in gc's
    # lists); the rest are counted without a path
    labelled = [path for kind, count, path in shown if kind == "Widget" and count == 100]
    assert len(labelled) == 1 and re.fullmatch(r"module cs_test_module -> \.MANY -> \[\d+\] -> Widget", labelled[0])
    assert ("Widget", 200, "") in shown


def test_cyclescopes_own_module_state_is_not_part_of_the_heap(module, monkeypatch) -> None:
    import cyclescope.explain.sources as own_module

    monkeypatch.setattr(own_module, "_TEST_HELD", [Widget()], raising=False)
    held = own_module._TEST_HELD[0]
    module.SEEN = [Widget()]
    older = cyclescope.snapshot()
    # Reached through the test's local only, never through cyclescope's own namespace.
    assert [p.root_kind for p in older.retention_paths(held, n=3)] == ["local"]
    own_module._TEST_HELD.append(Widget())  # what a cache of cyclescope's gains is no growth
    newer = cyclescope.snapshot()
    assert not any(g.type.endswith("test_heap.Widget") for g in newer.diff(older).types)
    assert str(newer.retention_paths(module.SEEN[0])[0]) == "module cs_test_module -> .SEEN -> [0] -> Widget"


def test_excluded_objects_and_what_only_they_hold_are_no_growth(module) -> None:
    older = cyclescope.snapshot()
    module.MINE = mine = [Widget() for _ in range(3)]  # a caller's own store, reached from a root
    module.SEEN = [Widget()]
    newer = cyclescope.snapshot(exclude=[mine])
    counts = {g.type: g.count for g in newer.diff(older, top=50).types}
    assert counts.get(f"{__name__}.Widget") == 1, counts
    assert str(newer.retention_paths(module.SEEN[0])[0]) == "module cs_test_module -> .SEEN -> [0] -> Widget"


def test_what_cyclescopes_frames_hold_keeps_the_users_own_paths(module) -> None:
    # The progress callback is a local of snapshot()'s own frames while it runs: that
    # is no root, and must not cut the user's path through the same object either.
    def make_reporter():
        lines = [Thing()]
        return lambda message: lines.append(message)

    module.REPORTER = make_reporter()
    snap = cyclescope.snapshot(progress=module.REPORTER)
    (path,) = snap.retention_paths(module.REPORTER.__closure__[0].cell_contents[0])
    assert str(path).startswith("module cs_test_module -> .REPORTER -> ")
    assert str(path).endswith("[0] -> Thing")
    assert [p.root_kind for p in snap.retention_paths(module.REPORTER, n=2)] == ["module"]


def test_garbage_is_no_survivor_with_a_path_even_though_the_snapshot_listed_it(module) -> None:
    # Garbage the collector has not freed yet is in the heap, unreachable from any root:
    # no path, counted as "cycle" (nothing cyclescope holds while snapshotting reaches it).
    gc.disable()
    try:
        a, b = Widget(), Widget()
        a.payload, b.payload = b, a
        ref = weakref.ref(a)
        del a, b
        snap = cyclescope.snapshot()
        (found,) = snap.survivors(["test_heap.Widget"])
        assert (found.kind, found.count, found.path) == ("cycle", 2, "")
        assert snap.retention_paths(ref()) == []
    finally:
        gc.enable()
    gc.collect()
    assert ref() is None


def test_a_snapshot_keeps_nothing_alive() -> None:
    target = Widget()
    ref = weakref.ref(target)
    snap = cyclescope.snapshot()
    assert snap.node_of(target) is not None
    del target
    assert ref() is None, "the snapshot must not hold the objects it describes"
    assert snap.n > 1000


def test_an_object_made_after_the_snapshot_is_an_error() -> None:
    snap = cyclescope.snapshot()
    later = Widget()
    with pytest.raises(ValueError, match="not in the heap when the snapshot was taken"):
        snap.retention_paths(later)


def test_frozen_objects_are_in_the_snapshot(module) -> None:
    module.FROZEN = [Thing()]
    gc.freeze()
    try:
        (path,) = cyclescope.snapshot().retention_paths(module.FROZEN[0])
        assert str(path) == "module cs_test_module -> .FROZEN -> [0] -> Thing"
    finally:
        gc.unfreeze()


# -- hostile heaps ----------------------------------------------------------------------------


def test_a_path_through_a_huge_container(module) -> None:
    module.HUGE = list(range(300_000))
    module.HUGE.append(Thing())
    (path,) = cyclescope.snapshot().retention_paths(module.HUGE[-1])
    assert str(path) == "module cs_test_module -> .HUGE -> [300000] -> Thing"


def test_threads_changing_the_heap_during_snapshots(module) -> None:
    import threading

    module.STABLE = {"key": Thing()}
    module.CHURN = []
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            module.CHURN.append([Widget() for _ in range(50)])
            if len(module.CHURN) > 20:
                module.CHURN.pop(0)

    worker = threading.Thread(target=churn, name="churner")
    worker.start()
    try:
        for _ in range(2):
            snap = cyclescope.snapshot()
            (path,) = snap.retention_paths(module.STABLE["key"])
            assert str(path) == "module cs_test_module -> .STABLE -> ['key'] -> Thing"
        assert snap.top_retainers(3)
    finally:
        stop.set()
        worker.join()


def test_weakref_callbacks_firing_during_a_check_do_not_break_it(module) -> None:
    fired = []

    def callback(ref: object) -> None:
        fired.append(ref)
        module.MADE_BY_CALLBACK = [Widget()]  # allocates while the collector runs
        raise RuntimeError("a callback that raises")

    victim = Widget()
    victim.payload = victim  # a cycle: freed by the collection check() runs
    keep = weakref.ref(victim, callback)
    cyclescope.watch(victim, "self-referencing widget")
    del victim
    gc.disable()
    try:
        report = cyclescope.check()
    finally:
        gc.enable()
    assert fired and keep() is None
    (finding,) = report.findings
    assert finding.kind == "cycle" and finding.reason == "self-referencing widget"


def test_asking_twice_through_the_same_instance(module) -> None:
    # Labelling the first path gives the instance its __dict__ (3.11+ keeps attributes
    # inline until asked): the second must still find the attribute.
    module.HOLDER = [Thing()]
    module.HOLDER[0].inner = Thing()
    snap = cyclescope.snapshot()
    paths = [snap.retention_paths(module.HOLDER[0].inner)[0] for _ in range(2)]
    assert [str(p) for p in paths] == ["module cs_test_module -> .HOLDER -> [0] -> .inner -> Thing"] * 2
    assert not any(p.stale for p in paths)


def test_top_retainers_name_objects_not_a_modules_namespace(module) -> None:
    module.STORE = [bytearray(8192) for _ in range(4000)]
    top = cyclescope.snapshot().top_retainers(3)
    assert top[0].type == "list" and str(top[0].path) == "module cs_test_module -> .STORE -> list"
