"""Tests for cyclescope._framelocals: naming the local slot of a frame that holds an object.

They run on CPython 3.10, 3.11, 3.12 and 3.13 (64-bit). The raw reads the tests do
themselves (to prove that no locals dict was materialised) use their own small
offset table, independent of the module's.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import gc
import sys
import threading
import types

import pytest

from cyclescope import _framelocals
from cyclescope._framelocals import frame_f_locals_is, frame_local_names, generator_local_names

PY = sys.version_info[:2]

pytestmark = pytest.mark.skipif(
    sys.implementation.name != "cpython" or ctypes.sizeof(ctypes.c_void_p) != 8 or PY not in _framelocals._LAYOUTS,
    reason="raw frame layouts are only known for 64-bit CPython 3.10-3.13",
)


# ----------------------------------------------------------------------------- helpers


class Obj:
    """A plain, distinct object to look for."""


CALLS: list[str] = []


class Hostile:
    """Any use beyond identity records the call and raises."""

    def _boom(self, what: str) -> None:
        CALLS.append(what)
        raise AssertionError(f"user code ran: {what}")

    def __eq__(self, other: object) -> bool:
        type(self)._boom(self, "__eq__")
        return False

    def __ne__(self, other: object) -> bool:
        type(self)._boom(self, "__ne__")
        return False

    def __hash__(self) -> int:
        type(self)._boom(self, "__hash__")
        return 0

    def __repr__(self) -> str:
        type(self)._boom(self, "__repr__")
        return ""

    def __bool__(self) -> bool:
        type(self)._boom(self, "__bool__")
        return False

    def __getattribute__(self, name: str) -> object:
        CALLS.append("__getattribute__ " + name)
        raise AssertionError(f"user code ran: __getattribute__({name!r})")


@pytest.fixture(autouse=True)
def _no_user_code_ran():
    CALLS.clear()
    yield
    assert CALLS == []


def _iframe_address(frame: types.FrameType) -> int:
    """Test-side raw read of PyFrameObject.f_frame (3.11+)."""
    return ctypes.c_void_p.from_address(id(frame) + 24).value or 0


def raw_f_locals(frame: types.FrameType) -> int:
    """The frame's raw locals-dict pointer, read without the module (0 when NULL)."""
    if PY == (3, 10):
        return ctypes.c_void_p.from_address(id(frame) + 56).value or 0  # PyFrameObject.f_locals
    offset = {(3, 11): 24, (3, 12): 40, (3, 13): 40}[PY]  # _PyInterpreterFrame.f_locals
    return ctypes.c_void_p.from_address(_iframe_address(frame) + offset).value or 0


def raw_313_extra_dicts(frame: types.FrameType) -> tuple[int, int]:
    """3.13: PyFrameObject.f_extra_locals and f_locals_cache."""
    return (
        ctypes.c_void_p.from_address(id(frame) + 48).value or 0,
        ctypes.c_void_p.from_address(id(frame) + 56).value or 0,
    )


def traceback_frames(exc: BaseException) -> list[types.FrameType]:
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def has_frame_object(gen: object) -> bool:
    """Whether a (3.11+) generator already has a frame object (its traverse visits it)."""
    return any(type(o) is types.FrameType for o in gc.get_referents(gen))


# ----------------------------------------------------------------------------- frames of finished functions


class ClientResponse:
    def fail(self) -> None:
        raise ValueError("boom")


def test_traceback_frame_of_method_names_self() -> None:
    resp = ClientResponse()
    try:
        resp.fail()
    except ValueError as exc:
        frame = traceback_frames(exc)[-1]
    assert frame.f_code is ClientResponse.fail.__code__
    assert frame_local_names(frame, resp) == [("self", "local")]
    assert frame_local_names(frame, Obj()) == []
    assert frame_f_locals_is(frame, resp) is False


def test_same_object_in_several_slots_in_slot_order() -> None:
    def f(a: object, unused: object) -> None:
        b = a  # noqa: F841
        c = [a]  # noqa: F841
        d = unused  # noqa: F841
        raise KeyError

    target, other = Obj(), Obj()
    with pytest.raises(KeyError) as info:
        f(target, other)
    frame = traceback_frames(info.value)[-1]
    assert frame_local_names(frame, target) == [("a", "local"), ("b", "local")]
    assert frame_local_names(frame, other) == [("unused", "local"), ("d", "local")]


def test_unbound_and_deleted_locals_are_not_reported() -> None:
    def f(a: object) -> None:
        x = a
        del x
        if a is None:
            never = 1  # noqa: F841 - stays unbound (NULL slot)
        raise KeyError

    target = Obj()
    with pytest.raises(KeyError) as info:
        f(target)
    frame = traceback_frames(info.value)[-1]
    assert frame_local_names(frame, target) == [("a", "local")]
    assert frame_local_names(frame, None) == []


def test_cleared_frame_has_no_locals() -> None:
    target = Obj()

    def f(a: object) -> None:
        raise KeyError

    with pytest.raises(KeyError) as info:
        f(target)
    frame = traceback_frames(info.value)[-1]
    assert frame_local_names(frame, target) == [("a", "local")]
    frame.clear()
    assert frame_local_names(frame, target) == []


def test_every_frame_of_a_traceback_chain() -> None:
    def inner(y: object) -> None:
        raise KeyError

    def outer(x: object) -> None:
        local = Obj()
        inner(local)

    target = Obj()
    with pytest.raises(KeyError) as info:
        outer(target)
    frames = traceback_frames(info.value)
    assert [f.f_code.co_name for f in frames[-2:]] == ["outer", "inner"]
    assert frame_local_names(frames[-2], target) == [("x", "local")]
    assert frame_local_names(frames[-1], target) == []
    # The object outer() passed on is `local` there and `y` in inner().
    (y_obj,) = [o for o in gc.get_referents(frames[-1]) if type(o) is Obj]
    assert frame_local_names(frames[-2], y_obj) == [("local", "local")]
    assert frame_local_names(frames[-1], y_obj) == [("y", "local")]


# ----------------------------------------------------------------------------- running frames


def test_executing_frame() -> None:
    target = Obj()
    first = frame_local_names(sys._getframe(), target)
    later = target
    second = frame_local_names(sys._getframe(), target)
    assert first == [("target", "local")]
    assert second == [("target", "local"), ("later", "local")]
    assert later is target


def _names_in_caller(target: object) -> list | None:
    return frame_local_names(sys._getframe(1), target)


def test_caller_frame_while_it_is_calling() -> None:
    def caller(arg: object) -> list | None:
        spare = Obj()  # noqa: F841
        return _names_in_caller(arg)

    target = Obj()
    assert caller(target) == [("arg", "local")]


def test_comprehension_variable() -> None:
    # A comprehension frame (3.10, 3.11) or an inlined comprehension (3.12+):
    # either way the frame that runs it holds the variable under its name.
    items = [Obj(), Obj()]
    seen = [frame_local_names(sys._getframe(), x) for x in items]
    assert seen == [[("x", "local")], [("x", "local")]]


# ----------------------------------------------------------------------------- closures


def test_closure_cell_in_defining_frame_free_in_inner_frame() -> None:
    captured: dict[str, types.FrameType] = {}

    def outer() -> object:
        value = Obj()

        def inner() -> object:
            captured["inner"] = sys._getframe()
            return value

        captured["outer"] = sys._getframe()
        inner()
        return inner

    inner = outer()
    assert inner.__code__.co_freevars == ("captured", "value")
    cell = inner.__closure__[1]
    value = cell.cell_contents
    assert frame_local_names(captured["outer"], cell) == [("value", "cell")]
    assert frame_local_names(captured["inner"], cell) == [("value", "free")]
    # The frames refer to the cell, not to its contents.
    assert frame_local_names(captured["outer"], value) == []
    assert frame_local_names(captured["inner"], value) == []
    assert frame_local_names(captured["outer"], inner) == [("inner", "local")]


def test_argument_that_is_a_cell() -> None:
    captured: dict[str, types.FrameType] = {}

    def outer(arg: object) -> object:
        def inner() -> object:
            return arg

        captured["outer"] = sys._getframe()
        return inner

    target = Obj()
    inner = outer(target)
    (cell,) = inner.__closure__
    assert cell.cell_contents is target
    assert frame_local_names(captured["outer"], cell) == [("arg", "cell")]
    assert frame_local_names(captured["outer"], target) == []


def test_plain_local_holding_a_cell_is_a_local() -> None:
    def make() -> object:
        v = 1
        return lambda: v

    cell = make().__closure__[0]
    holder = cell
    names = frame_local_names(sys._getframe(), cell)
    assert names == [("cell", "local"), ("holder", "local")]
    assert holder is cell


# ----------------------------------------------------------------------------- the value stack


class Source:
    """Iterating it hands out an iterator that only the value stack refers to."""

    def __init__(self, record: list) -> None:
        self.record = record

    def __iter__(self):  # type: ignore[no-untyped-def]
        it = iter([Obj(), Obj()])
        self.record.append(it)
        return it


def test_value_stack_of_running_frame_is_not_a_local() -> None:
    record: list = []
    for item in Source(record):
        # The iterator is only on this frame's value stack (and in `record`).
        # (Calls on running frames stay outside `assert`: pytest's assertion
        # rewriting keeps intermediate values in hidden locals.)
        on_stack = frame_local_names(sys._getframe(), record[0])
        named = frame_local_names(sys._getframe(), item)
        assert on_stack == []
        assert named == [("item", "local")]
        break


def test_value_stack_of_suspended_generator_is_not_a_local() -> None:
    record: list = []

    def gen(src: Source):  # type: ignore[no-untyped-def]
        for item in src:
            yield item

    g = gen(Source(record))
    first = next(g)
    (it,) = record
    # The iterator really is referenced by the suspended frame's value stack...
    holder = g.gi_frame if PY == (3, 10) else g
    assert any(o is it for o in gc.get_referents(holder))
    # ...but it is no named slot.
    assert generator_local_names(g, it) == []
    assert generator_local_names(g, first) == [("item", "local")]
    if PY == (3, 10):
        assert frame_local_names(g.gi_frame, it) == []
    g.close()


# ----------------------------------------------------------------------------- generators and coroutines


def test_generator_states_and_no_frame_object_created() -> None:
    def gen(a: object):  # type: ignore[no-untyped-def]
        yield
        b = a  # noqa: F841
        yield

    target = Obj()
    g = gen(target)
    if PY >= (3, 11):
        assert not has_frame_object(g)
    assert generator_local_names(g, target) == [("a", "local")]  # created, not started
    next(g)
    assert generator_local_names(g, target) == [("a", "local")]
    next(g)
    assert generator_local_names(g, target) == [("a", "local"), ("b", "local")]
    if PY >= (3, 11):
        # We read the frame embedded in the generator: no frame object was made.
        assert not has_frame_object(g)
        frame = g.gi_frame  # this does create one...
        assert has_frame_object(g)  # ...as the control shows
        assert frame_local_names(frame, target) == [("a", "local"), ("b", "local")]
    for _ in g:
        pass
    assert generator_local_names(g, target) == []  # finished: no locals left
    names = frame_local_names(sys._getframe(), g)
    assert names == [("g", "local")]


def test_running_generator_reads_itself() -> None:
    results: list = []

    def gen(a: object):  # type: ignore[no-untyped-def]
        me = yield
        results.append(generator_local_names(me, a))
        results.append(generator_local_names(me, me))
        yield

    target = Obj()
    g = gen(target)
    next(g)
    g.send(g)
    assert results == [[("a", "local")], [("me", "local")]]


def test_generator_closure_kinds() -> None:
    def outer():  # type: ignore[no-untyped-def]
        shared = Obj()

        def gen():  # type: ignore[no-untyped-def]
            yield shared

        return gen

    gen_function = outer()
    (cell,) = gen_function.__closure__
    g = gen_function()
    assert generator_local_names(g, cell) == [("shared", "free")]
    next(g)
    assert generator_local_names(g, cell) == [("shared", "free")]
    assert generator_local_names(g, cell.cell_contents) == []


class Suspend:
    def __await__(self):  # type: ignore[no-untyped-def]
        yield


def test_suspended_coroutine() -> None:
    async def handler(request: object) -> None:
        response = Obj()
        await Suspend()
        del response

    target = Obj()
    coro = handler(target)
    try:
        assert generator_local_names(coro, target) == [("request", "local")]  # created
        coro.send(None)  # runs up to the await, then suspends
        assert generator_local_names(coro, target) == [("request", "local")]
        if PY >= (3, 11):
            assert not has_frame_object(coro)
        holder = coro.cr_frame if PY == (3, 10) else coro
        (response,) = [o for o in gc.get_referents(holder) if type(o) is Obj and o is not target]
        assert generator_local_names(coro, response) == [("response", "local")]
    finally:
        coro.close()
    assert generator_local_names(coro, target) == []


def test_suspended_asyncio_task_coroutine() -> None:
    seen: list = []

    async def main() -> None:
        async def worker(conn: object) -> None:
            await asyncio.sleep(3600)

        target = Obj()
        task = asyncio.ensure_future(worker(target))
        await asyncio.sleep(0)
        seen.append(generator_local_names(task.get_coro(), target))
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
    assert seen == [[("conn", "local")]]


def test_async_generator() -> None:
    async def agen(a: object):  # type: ignore[no-untyped-def]
        b = a  # noqa: F841
        yield 1
        await Suspend()
        yield 2

    target = Obj()
    ag = agen(target)
    assert generator_local_names(ag, target) == [("a", "local")]  # created
    with pytest.raises(StopIteration):
        ag.asend(None).send(None)  # suspended at `yield 1`
    assert generator_local_names(ag, target) == [("a", "local"), ("b", "local")]
    step = ag.asend(None)
    step.send(None)  # suspended inside the await
    assert generator_local_names(ag, target) == [("a", "local"), ("b", "local")]
    with pytest.raises(StopIteration):
        step.send(None)  # runs on to `yield 2`
    with pytest.raises(StopIteration):
        ag.aclose().send(None)
    assert generator_local_names(ag, target) == []


def test_generator_function_argument_not_a_generator() -> None:
    assert generator_local_names(object(), None) is None
    assert generator_local_names(Hostile(), None) is None
    assert generator_local_names(iter([]), None) is None


# ----------------------------------------------------------------------------- class bodies and modules


class HostileNamespace(dict):
    """A class-body namespace whose Python-level methods must never be used by us."""

    def __eq__(self, other: object) -> bool:
        CALLS.append("ns __eq__")
        raise AssertionError

    def __hash__(self) -> int:  # type: ignore[override]
        CALLS.append("ns __hash__")
        raise AssertionError

    def __repr__(self) -> str:
        CALLS.append("ns __repr__")
        raise AssertionError

    def __getattribute__(self, name: str) -> object:
        CALLS.append("ns __getattribute__ " + name)
        raise AssertionError


class Meta(type):
    @classmethod
    def __prepare__(mcs, name: str, bases: tuple, **kw: object) -> dict:  # type: ignore[override]
        return HostileNamespace()

    def __new__(mcs, name: str, bases: tuple, ns: dict, **kw: object) -> type:
        return super().__new__(mcs, name, bases, dict(dict.items(ns)))


def test_class_body_frame() -> None:
    captured: dict = {}
    attr = Obj()

    class Service(metaclass=Meta):
        value = attr
        captured["frame"] = sys._getframe()
        captured["ns"] = locals()  # in a class body: the namespace mapping itself

        def method(self) -> object:
            return __class__  # makes __class__ a cell of the class body

    frame = captured["frame"]
    ns = captured["ns"]
    assert type(ns) is HostileNamespace
    assert frame_f_locals_is(frame, ns) is True
    assert frame_f_locals_is(frame, attr) is False
    assert frame_local_names(frame, attr) == []  # class attributes are not fast locals
    (class_cell,) = Service.method.__closure__
    assert class_cell.cell_contents is Service
    assert frame_local_names(frame, class_cell) == [("__class__", "cell")]


def test_module_level_frame() -> None:
    namespace: dict = {"sys": sys, "Obj": Obj}
    exec("value = Obj()\nframe = sys._getframe()\n", namespace)
    frame = namespace["frame"]
    assert frame_f_locals_is(frame, namespace) is True
    assert frame_local_names(frame, namespace["value"]) == []
    assert frame_local_names(frame, namespace) == []
    # exec with separate locals: f_locals is the locals mapping, not the globals
    glb: dict = {"sys": sys}
    loc: dict = {}
    exec("frame = sys._getframe()", glb, loc)
    assert frame_f_locals_is(loc["frame"], loc) is True
    assert frame_f_locals_is(loc["frame"], glb) is False


def test_function_frame_f_locals() -> None:
    def f() -> types.FrameType:
        x = 1  # noqa: F841
        return sys._getframe()

    frame = f()
    assert frame_f_locals_is(frame, {}) is False
    assert frame_f_locals_is(frame, None) is False
    materialised = frame.f_locals  # deliberately, on a throwaway frame
    if PY < (3, 13):
        assert type(materialised) is dict
        assert frame_f_locals_is(frame, materialised) is True
    else:
        assert frame_f_locals_is(frame, materialised) is False  # a fresh proxy
        materialised["extra"] = 1  # 3.13 keeps names it does not know in f_extra_locals
        extra, _cache = raw_313_extra_dicts(frame)
        (extra_dict,) = [o for o in gc.get_referents(frame) if id(o) == extra]
        assert frame_f_locals_is(frame, extra_dict) is True


# ----------------------------------------------------------------------------- no side effects


def test_no_locals_dict_is_materialised() -> None:
    def f(a: object) -> list:
        frame = sys._getframe()
        gen = (x for x in [a])
        before = raw_f_locals(frame)
        results = [
            frame_local_names(frame, a),
            frame_f_locals_is(frame, a),
            generator_local_names(gen, a),
        ]
        return [before, raw_f_locals(frame), results, raw_313_extra_dicts(frame) if PY >= (3, 13) else (0, 0)]

    target = Obj()
    before, after, results, extra = f(target)
    assert results == [[("a", "local")], False, []]
    assert before == 0 and after == 0
    assert extra == (0, 0)

    # Control: the raw read does see a materialised dict (3.10-3.12).
    def control() -> int:
        frame = sys._getframe()
        frame.f_locals
        return raw_f_locals(frame)

    if PY < (3, 13):
        assert control() != 0


@pytest.mark.skipif(PY >= (3, 13), reason="3.13 has no f_locals dict to write back (PEP 667)")
def test_local_reassigned_after_the_call_is_not_reverted() -> None:
    prototype = ctypes.PYFUNCTYPE(None, ctypes.py_object, ctypes.c_int)
    locals_to_fast = prototype(("PyFrame_LocalsToFast", ctypes.pythonapi))
    old, new = Obj(), Obj()

    def control() -> object:
        x = old
        frame = sys._getframe()
        frame.f_locals  # materialises {"x": old, ...}
        x = new
        locals_to_fast(frame, 0)  # what a debugger/trace hook does: writes the dict back
        return x

    def ours() -> object:
        x = old
        frame = sys._getframe()
        assert frame_local_names(frame, old) == [("x", "local")]
        assert frame_f_locals_is(frame, old) is False
        x = new
        assert raw_f_locals(frame) == 0
        locals_to_fast(frame, 0)
        return x

    assert control() is old  # the hazard is real
    assert ours() is new  # and we did not set it up


def test_no_user_code_runs() -> None:
    target = Hostile()
    other = Hostile()

    def f(a: object, b: object) -> None:
        c = a  # noqa: F841
        raise KeyError

    try:
        f(target, other)
    except KeyError as exc:
        frame = traceback_frames(exc)[-1]
    assert frame_local_names(frame, target) == [("a", "local"), ("c", "local")]
    assert frame_local_names(frame, other) == [("b", "local")]
    assert frame_f_locals_is(frame, target) is False
    assert frame_local_names(target, other) is None  # not a frame: no attribute looked up
    assert frame_f_locals_is(target, other) is None

    def gen(a: object):  # type: ignore[no-untyped-def]
        yield a

    g = gen(target)
    next(g)
    assert generator_local_names(g, target) == [("a", "local")]
    assert generator_local_names(g, other) == []
    g.close()
    assert CALLS == []


# ----------------------------------------------------------------------------- threads


def test_frame_of_another_thread_while_it_returns() -> None:
    target = Obj()
    started = threading.Event()
    stop = [False]

    def worker(obj: object) -> None:
        started.set()
        n = 0
        while not stop[0]:
            n += 1

    t = threading.Thread(target=worker, args=(target,))
    t.start()
    started.wait()
    frame = None
    while frame is None:
        candidate = sys._current_frames().get(t.ident)
        if candidate is not None and candidate.f_code is worker.__code__:
            frame = candidate
    seen = set()
    for i in range(3000):
        if i == 1500:
            stop[0] = True
        result = frame_local_names(frame, target)
        seen.add(repr(result))
        assert result in ([("obj", "local")], None)
    t.join()
    assert frame_local_names(frame, target) == [("obj", "local")]  # now owned by the frame object
    assert "[('obj', 'local')]" in seen


# ----------------------------------------------------------------------------- wrong or unknown layouts


def _sample_calls() -> list:
    target = Obj()

    def f(a: object) -> None:
        raise KeyError

    try:
        f(target)
    except KeyError as exc:
        tb_frame = traceback_frames(exc)[-1]

    def gen(a: object):  # type: ignore[no-untyped-def]
        yield

    g = gen(target)
    next(g)
    namespace: dict = {"sys": sys}
    exec("frame = sys._getframe()", namespace)
    return [
        frame_local_names(tb_frame, target),
        frame_local_names(sys._getframe(), target),
        generator_local_names(g, target),
        frame_f_locals_is(namespace["frame"], namespace),
        frame_f_locals_is(sys._getframe(), target),
    ]


def _perturbations(layout: object) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for field in dataclasses.fields(layout):
        name = field.name
        if name.startswith("owned_by") or name in ("state_executing", "state_cleared"):
            continue
        value = getattr(layout, name)
        if value is None:
            candidates: list = [0, 8, 48]
        elif isinstance(value, tuple):
            candidates = [tuple(v + 1 for v in value), tuple(v - 1 for v in value)]
        else:
            candidates = [value + d for d in (-16, -8, -1, 1, 8, 16, 64)]
        out.extend((name, c) for c in candidates)
    return out


def test_good_layout_sample() -> None:
    assert _sample_calls() == [[("a", "local")], [("target", "local")], [("a", "local")], True, False]


@pytest.mark.parametrize("field_and_value", _perturbations(_framelocals._LAYOUTS[PY]), ids=repr)
def test_wrong_layout_answers_none(monkeypatch: pytest.MonkeyPatch, field_and_value: tuple) -> None:
    name, value = field_and_value
    good = _framelocals._LAYOUTS[PY]
    bad = dataclasses.replace(good, **{name: value})
    monkeypatch.setitem(_framelocals._LAYOUTS, PY, bad)
    assert _sample_calls() == [None, None, None, None, None]


def test_unknown_version_answers_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(_framelocals._LAYOUTS, PY)
    assert _sample_calls() == [None, None, None, None, None]


def test_layouts_back_to_normal_after_monkeypatching() -> None:
    assert _sample_calls() == [[("a", "local")], [("target", "local")], [("a", "local")], True, False]
