"""From captured objects to groups: representative cycles, signatures, grouping, noise."""

from __future__ import annotations

import gc
import random
import types

import pytest

from cyclescope.explain.cycles import AnalysisOptions, analyse, signature_of
from cyclescope.explain.noise import is_noise
from cyclescope.report.model import Step


class Node:
    def __init__(self, name: str = "") -> None:
        self.name = name
        self.next = None


class Holder:
    pass


def saved_garbage(make) -> list:
    """What the collector finds unreachable after ``make()``, held in a list."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        make()
        gc.collect()
        found = list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return found


def ring(n: int) -> None:
    nodes = [Node(str(i)) for i in range(n)]
    for a, b in zip(nodes, nodes[1:] + nodes[:1]):
        a.next = b


def test_signature_is_rotation_invariant() -> None:
    tokens = ["A .x", "B .y", "C .z"]
    assert signature_of(tokens) == signature_of(tokens[1:] + tokens[:1]) == signature_of(tokens[2:] + tokens[:2])
    assert signature_of(tokens) != signature_of(["A .x", "C .z", "B .y"])


def test_many_occurrences_form_one_group_with_totals() -> None:
    objects = saved_garbage(lambda: [ring(3) for _ in range(50)])
    analysis = analyse(objects)
    (group,) = analysis.groups
    assert group.count == 50
    assert [s.edge for s in group.cycle] == [".next"] * 3
    assert group.cycle_objects in (3, 6)  # 6 on 3.10, where each instance dict is a node
    # Every Node (and its __dict__ on 3.10) is counted once, in the group's totals.
    assert group.objects == analysis.totals.captured_objects
    assert group.bytes == analysis.totals.captured_bytes


def test_different_shapes_are_different_groups_sorted_by_objects_held() -> None:
    def make() -> None:
        for _ in range(5):
            ring(2)
        for _ in range(3):
            ring(4)

    groups = analyse(saved_garbage(make)).groups
    assert sorted((g.count, len(g.cycle)) for g in groups) == [(3, 4), (5, 2)]
    assert groups[0].objects >= groups[1].objects


def test_objects_hanging_off_a_cycle_count_in_its_totals() -> None:
    def make() -> None:
        a, b = Node(), Node()
        a.next, b.next = b, a
        a.cargo = [Holder() for _ in range(10)]

    (group,) = analyse(saved_garbage(make)).groups
    assert len(group.cycle) == 2
    assert group.objects >= 2 + 1 + 10  # the pair, the list and its ten holders
    assert group.types.get(f"{__name__}.Holder") == 10


def test_representative_prefers_instances_over_containers_and_frames() -> None:
    def make() -> None:
        registry = {}
        item = Holder()
        item.registry = registry
        registry["item"] = item

    (group,) = analyse(saved_garbage(make)).groups
    assert group.subject == f"{__name__}.Holder"
    assert group.cycle[0].edge == ".registry"
    assert group.cycle[1].edge == "['item']"


def test_self_loop_and_container_cycles() -> None:
    def make() -> None:
        d = {}
        d["me"] = d
        items: list = []
        items.append(items)

    groups = analyse(saved_garbage(make)).groups
    shapes = sorted((g.subject, g.cycle[0].edge) for g in groups)
    assert shapes == [("dict", "['me']"), ("list", "[0]")]
    assert all(g.cycle_objects == 1 for g in groups)


def test_large_component_with_many_cycles_gets_one_shortest_representative() -> None:
    def make() -> None:
        rng = random.Random(7)
        nodes = [Node(str(i)) for i in range(300)]
        for a, b in zip(nodes, nodes[1:] + nodes[:1]):
            a.next = b
        for node in nodes:
            node.extra = [nodes[rng.randrange(1, 300)] for _ in range(3)] + [nodes[0]]
        # The most referred-to node is the representative; its shortest cycle is a self-loop.
        nodes[0].back = nodes[0]

    (group,) = analyse(saved_garbage(make)).groups
    assert group.count == 1
    assert group.component_objects >= 300
    assert len(group.cycle) == 1  # node .back -> node (an instance dict in between is folded)
    assert group.cycle[0].edge == ".back"


def test_type_filter_shows_the_shortest_cycle_through_the_type() -> None:
    class Target:
        pass

    def make() -> None:
        a, b = Node(), Node()
        a.next, b.next = b, a  # short cycle, not through Target
        t = Target()
        b.target = t
        t.back = a  # longer cycle: a -> b -> t -> a
        c, d = Node(), Node()
        c.next, d.next = d, c  # a component without Target

    options = AnalysisOptions(types=("*Target",))
    analysis = analyse(saved_garbage(make), options)
    (group,) = analysis.groups
    assert group.subject.endswith("Target")
    assert [s.edge for s in group.cycle] == [".back", ".next", ".target"]
    assert analysis.totals.filtered_out_components == 1
    assert analyse(saved_garbage(make), AnalysisOptions(types=("NoSuchType",))).groups == []


def test_exception_traceback_cycle_names_every_edge() -> None:
    def fail(owner: Holder) -> None:
        raise RuntimeError("boom")

    def make() -> None:
        owner = Holder()
        try:
            fail(owner)
        except RuntimeError as exc:
            owner.error = exc

    (group,) = analyse(saved_garbage(make)).groups
    edges = [s.edge for s in group.cycle]
    assert edges[0] == ".error"
    assert ".__traceback__" in edges and ".tb_frame" in edges
    assert any(e.startswith("local '") for e in edges)
    assert all(s.edge_kind != "referent" for s in group.cycle)
    frames = [s for s in group.cycle if s.type == "frame"]
    assert frames and frames[0].location and frames[0].function


def test_same_bug_groups_across_call_depths() -> None:
    # The traceback chain is longer when the exception is caught further out;
    # the signature folds the chain so both occurrences form one group.
    def fail(owner: Holder) -> None:
        raise RuntimeError("boom")

    def store(owner: Holder) -> None:
        try:
            fail(owner)
        except RuntimeError as exc:
            owner.error = exc

    def make() -> None:
        store(Holder())
        store(Holder())

    (group,) = analyse(saved_garbage(make)).groups
    assert group.count == 2


def test_signatures_are_stable_across_runs() -> None:
    first = {g.signature for g in analyse(saved_garbage(lambda: ring(3))).groups}
    second = {g.signature for g in analyse(saved_garbage(lambda: [ring(3) for _ in range(4)])).groups}
    assert first == second
    assert all("0x" not in s for s in first)


def test_empty_input() -> None:
    analysis = analyse([])
    assert analysis.groups == [] and analysis.totals.captured_objects == 0


@pytest.mark.parametrize(
    ("steps", "noise"),
    [
        ([Step("dict", "['a']"), Step("list", "[0]")], False),  # owns nothing: user-made
        ([Step("app.Conn", ".me", module="app")], False),
        ([Step("frame", "local 'x'", site="/x/cyclescope/capturing.py:1")], None),  # decided below
        ([Step("typing._GenericAlias", ".x", module="typing")], True),
        ([Step("asyncio.selector_events._SelectorSocketTransport", ".cb", module="asyncio.selector_events"),
          Step("method", ".__self__")], True),
        ([Step("app.Conn", ".t", module="app"), Step("asyncio.Task", "._coro", module="_asyncio")], False),
        ([Step("cyclescope.demo.streams.ClientResponse", "._p", module="cyclescope.demo.streams")], False),
        ([Step("cyclescope.capturing.Capture", ".x", module="cyclescope.capturing")], True),
        # unittest.mock's autospec: a function compiled from a string, its globals, the mock
        ([Step("dict", "['mock']"), Step("unittest.mock.AsyncMock", "._mock_delegate", module="unittest.mock"),
          Step("function", ".__globals__", site="<string>:2", function="_create_connection")], True),
        ([Step("function", ".__globals__", site="<string>:2"), Step("dict", "['f']")], False),  # owns nothing
        ([Step("builtin_function_or_method", ".__self__"), Step("module", "._f", detail="_statistics")], True),
        ([Step("builtin_function_or_method", ".__self__"), Step("module", "._f", detail="app.native")], False),
        ([Step("frame", "local 't'", site="<stdin>:1"),  # typed at a prompt: the user's
          Step("asyncio.Task", "._coro", module="_asyncio")], False),
    ],
)
def test_noise_rule(steps: list[Step], noise: bool | None) -> None:
    if noise is None:
        import cyclescope.capturing as capturing

        steps = [Step("frame", "local 'x'", site=f"{capturing.__file__}:1")]
        noise = True
    assert is_noise(steps) is noise


def test_cyclescope_s_own_cycles_are_hidden_unless_asked_for() -> None:
    from cyclescope.capturing import Capture

    def make() -> None:
        cap = Capture()
        cap.me = cap

    hidden = analyse(saved_garbage(make))
    assert hidden.groups == [] and hidden.totals.hidden_noise_groups == 1
    shown = analyse(saved_garbage(make), AnalysisOptions(include_noise=True))
    assert len(shown.groups) == 1 and shown.groups[0].noise


CLASS_ASKED: list[str] = []


def _liar(claims: type) -> type:
    """A class whose instances say, through a ``__class__`` property, that they are
    ``claims`` (as a mock with a spec does), and answer any attribute."""

    class Liar:
        @property
        def __class__(self):  # type: ignore[override]
            CLASS_ASKED.append(claims.__name__)
            return claims

        def __getattr__(self, name: str) -> object:
            CLASS_ASKED.append(name)
            return Liar()

        def __index__(self) -> int:  # the integer 1, as a MagicMock is
            CLASS_ASKED.append("__index__")
            return 1

    Liar.__qualname__ = f"Liar{claims.__name__}"
    return Liar


@pytest.mark.parametrize("claims", [types.MethodType, types.FunctionType, types.FrameType, types.TracebackType,
                                    types.GeneratorType, types.CoroutineType, types.ModuleType, type])
def test_an_object_that_lies_about_its_class_is_described_by_its_type(claims: type) -> None:
    liar_class = _liar(claims)

    def make() -> None:
        liar = liar_class()
        liar.__dict__["me"] = [liar]

    CLASS_ASKED.clear()
    groups = analyse(saved_garbage(make)).groups
    assert not CLASS_ASKED, "describing it ran the object's own code"
    assert [[(s.type, s.edge) for s in g.cycle] for g in groups] == [
        [(f"{__name__}.Liar{claims.__name__}", ".me"), ("list", "[0]")]]
    assert all(s.function is None and s.source is None for s in groups[0].cycle)


class Resource:
    """aiohttp's shape: a resource keeps its routes by method, each route its resource."""

    def __init__(self, methods: list[str]) -> None:
        self.routes = {method: Route(self) for method in methods}


class Route:
    def __init__(self, resource: Resource) -> None:
        self.resource = resource


def test_a_key_among_interchangeable_values_does_not_split_the_signature() -> None:
    # aiohttp's test_register_uncommon_http_methods registers methods from a set: which
    # route the cycle was shown through changed between runs, and with it the signature,
    # so a baseline learnt in one run failed the test in the next.
    one = analyse(saved_garbage(lambda: Resource(["COPY", "SUBSCRIBE"]))).groups
    other = analyse(saved_garbage(lambda: Resource(["SUBSCRIBE", "COPY"]))).groups
    assert len(one) == 1 and [g.signature for g in one] == [g.signature for g in other]
    assert "dict [key]" in one[0].signature
    assert {s.edge for s in one[0].cycle} & {"['COPY']", "['SUBSCRIBE']"}, "the key shown stays"
    (single,) = analyse(saved_garbage(lambda: Resource(["GET"]))).groups
    assert "dict ['GET']" in single.signature  # the only route: its key says which one


def test_names_that_are_str_subclasses_are_not_used() -> None:
    # A class's __module__ and __qualname__, and a module's __name__, may be set to a str
    # subclass, whose __eq__ and __format__ are its author's code.
    called: list[str] = []

    class Sneaky(str):
        def __eq__(self, other: object) -> bool:
            called.append("__eq__")
            return False

        def __hash__(self) -> int:
            return 1

        def __format__(self, spec: str) -> str:
            called.append("__format__")
            return "formatted"

    def make() -> None:
        cls = type("Made", (), {})
        cls.__name__ = Sneaky("Made")
        cls.__module__ = Sneaky("app.models")
        cls.__qualname__ = Sneaky("Made")
        module = types.ModuleType("made")
        module.__name__ = Sneaky("made")
        cls.module = module
        module.cls = cls

    groups = analyse(saved_garbage(make), AnalysisOptions(include_noise=True, types=("*",))).groups
    assert groups and not called
