"""Edge labels: every kind, and no user code run while labelling."""

from __future__ import annotations

import asyncio
import functools
import gc
import sys
import types
import weakref

import pytest

from cyclescope.labels import Label, label_edge


class Plain:
    pass


class Slotted:
    __slots__ = ("left", "right")


def shown(src: object, dst: object, prev: object = None) -> str:
    assert any(r is dst for r in gc.get_referents(src)), "the test must use a real reference"
    return label_edge(src, dst, prev).shown


def test_instance_attribute() -> None:
    obj, value = Plain(), Plain()
    obj.child = value
    if sys.version_info >= (3, 11):  # attributes inline: the instance refers to the value
        assert shown(obj, value) == ".child"
    else:  # the instance refers to its __dict__, which holds the value
        assert shown(obj, obj.__dict__) == ".__dict__"
        assert shown(obj.__dict__, value) == "['child']"


def test_slots() -> None:
    obj, value = Slotted(), Plain()
    obj.right = value
    assert shown(obj, value) == ".right"
    assert label_edge(obj, value).kind == "attribute"


def test_dict_keys_shown_and_folded() -> None:
    value = Plain()
    d = {"session": value}
    assert label_edge(d, value) == Label("['session']", "['session']", "key")
    d = {8080: value}
    assert label_edge(d, value) == Label("[8080]", "[key]", "key")
    d = {"conn-1234567": value}
    assert label_edge(d, value).folded == "[key]"
    key = Plain()
    d = {key: 1}
    assert shown(d, key) == "(a key)"


def test_secret_keys_are_redacted() -> None:
    value = Plain()
    d = {"Bearer abcdefghijklmnopqrstuvwxyz0123456789": value}
    assert "abcdefghij" not in label_edge(d, value).shown


def test_list_tuple_set_positions() -> None:
    value = Plain()
    items = [1, 2, value]
    assert label_edge(items, value) == Label("[2]", "[i]", "index")
    assert shown((value,), value) == "[0]"
    assert shown({value}, value) == "{item}"
    assert shown(frozenset([value]), value) == "{item}"


def test_exception_edges() -> None:
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise ValueError("outer", Plain()) from inner
    except ValueError as exc:
        err = exc
    assert shown(err, err.__traceback__) == ".__traceback__"
    assert shown(err, err.__cause__) == ".__cause__"
    assert label_edge(err, err.args).shown == ".args"
    assert label_edge(err.args, err.args[1]).shown == "[1]"
    tb = err.__traceback__
    assert shown(tb, tb.tb_frame) == ".tb_frame"
    with pytest.raises(ValueError) as info:
        def deeper() -> None:
            raise ValueError
        deeper()
    tb = info.value.__traceback__
    assert shown(tb, tb.tb_next) == ".tb_next"


def test_context_edge() -> None:
    try:
        try:
            raise KeyError("a")
        except KeyError:
            raise ValueError("b")
    except ValueError as exc:
        err = exc
    assert shown(err, err.__context__) == ".__context__"


def _frame_holding(value: object) -> types.FrameType:
    def func(held: object) -> types.FrameType:
        other = 1  # noqa: F841 - a second local, so the name is found, not guessed
        return sys._getframe()

    return func(value)


def test_frame_local() -> None:
    value = Plain()
    frame = _frame_holding(value)
    assert label_edge(frame, value) == Label("local 'held'", "local 'held'", "local")


def test_frame_label_does_not_materialise_f_locals() -> None:
    if sys.version_info >= (3, 13):
        pytest.skip("3.13 frames have no f_locals dict to materialise (PEP 667)")
    from cyclescope import _framelocals

    value = Plain()
    frame = _frame_holding(value)
    label_edge(frame, value)
    assert _framelocals.frame_f_locals_is(frame, None) is not None
    # A materialised f_locals dict would now be one of the frame's referents.
    assert not any(type(r) is dict and r.get("held") is value for r in gc.get_referents(frame))


def test_closure_cell_and_cell_contents() -> None:
    owner = Plain()

    def make() -> types.FunctionType:
        def callback() -> object:
            return owner

        return callback

    fn = make()
    closure = fn.__closure__
    assert shown(fn, closure) == ".__closure__"
    assert shown(closure, closure[0], prev=fn) == "cell 'owner'"
    assert shown(closure, closure[0]) == "[0]"
    assert shown(closure[0], owner) == ".cell_contents"


def test_function_fields() -> None:
    default = Plain()

    def fn(x: object = default) -> None:
        pass

    assert shown(fn, fn.__globals__) == ".__globals__"
    assert shown(fn, fn.__defaults__) == ".__defaults__"
    assert shown(fn, fn.__code__) == ".__code__"


def test_bound_method() -> None:
    class Owner:
        def method(self) -> None:
            pass

    obj = Owner()
    bound = obj.method
    assert label_edge(bound, obj) == Label(".__self__", ".__self__", "method")
    assert shown(bound, bound.__func__) == ".__func__"
    items: list = []
    assert shown(items.append, items) == ".__self__"


def test_partial_and_weakref_callback() -> None:
    target, arg = Plain(), Plain()
    part = functools.partial(print, arg)
    assert shown(part, part.args) == ".args"
    callback = lambda ref: None  # noqa: E731
    ref = weakref.ref(target, callback)
    assert shown(ref, callback) == ".__callback__"


def test_class_and_module() -> None:
    class Local:
        pass

    assert shown(Local, Local.__mro__) == ".__mro__"
    assert shown(Local.__mro__, Local) == "[0]"
    module = types.ModuleType("m")
    assert shown(module, module.__dict__) == ".__dict__"


def test_asyncio_future_internals() -> None:
    loop = asyncio.new_event_loop()
    try:
        fut = loop.create_future()
        exc = RuntimeError("boom")
        fut.set_exception(exc)
        assert label_edge(fut, exc).shown == "._exception"
        fut.exception()

        fut2 = loop.create_future()
        callback = lambda f: None  # noqa: E731
        fut2.add_done_callback(callback)
        assert label_edge(fut2, callback).shown == "._callbacks[0]"
        fut2.cancel()

        async def coro() -> None:
            await asyncio.sleep(0)

        task = loop.create_task(coro())
        assert label_edge(task, task.get_coro()).shown == "._coro"
        loop.run_until_complete(task)
    finally:
        loop.close()


def test_coroutine_and_generator_locals() -> None:
    held = Plain()

    def gen(value: object):
        yield value

    async def coro(value: object) -> None:
        await asyncio.sleep(0)

    g = gen(held)
    next(g)
    c = coro(held)
    c.send(None)
    if sys.version_info >= (3, 11):  # the generator holds its frame's locals itself
        assert shown(g, held) == "local 'value'"
        assert shown(c, held) == "local 'value'"
    else:  # the generator holds a frame object, which holds the locals
        assert shown(g, g.gi_frame) == ".gi_frame"
        assert shown(g.gi_frame, held) == "local 'value'"
        assert shown(c, c.cr_frame) == ".cr_frame"
    c.close()


def test_unknown_reference_falls_back_to_referent_index() -> None:
    import re

    pattern = re.compile("(?P<name>x)")
    ref = gc.get_referents(pattern)[0]
    label = label_edge(pattern, ref)
    assert label.kind in {"referent", "attribute", "class"}
    if label.kind == "referent":
        assert label.shown.startswith("referent #") and label.folded == "referent"
    # A reference no handler knows: a C object's internal field.
    opaque = _opaque_holder()
    referents = gc.get_referents(opaque)
    index, inner = next((i, r) for i, r in enumerate(referents) if not isinstance(r, type))
    assert label_edge(opaque, inner) == Label(f"referent #{index}", "referent", "referent")


def _opaque_holder() -> object:
    import itertools

    return itertools.cycle([Plain()])  # refers to its iterator and saved items without named fields


class Hostile:
    """Every hook a careless labeller might call raises."""

    def __getattribute__(self, name: str) -> object:
        raise AssertionError(f"__getattribute__({name!r}) called")

    def __eq__(self, other: object) -> bool:
        raise AssertionError("__eq__ called")

    def __hash__(self) -> int:
        raise AssertionError("__hash__ called")

    def __repr__(self) -> str:
        raise AssertionError("__repr__ called")

    @property
    def __dict__(self):  # type: ignore[override]
        raise AssertionError("__dict__ property called")


def test_no_user_code_runs_while_labelling() -> None:
    obj, value = Hostile(), Plain()
    object.__setattr__(obj, "child", value)
    label = label_edge(obj, value)
    assert label.shown == ".child"
    d = {"k": obj}
    assert label_edge(d, obj).shown == "['k']"
    assert label_edge([obj], obj).shown == "[0]"


class Meta(type):
    @property
    def __mro__(cls):  # type: ignore[override]
        raise AssertionError("metaclass __mro__ property called")


def test_metaclass_properties_are_not_called() -> None:
    class Weird(metaclass=Meta):
        pass

    obj, value = Weird(), Plain()
    obj.x = value
    assert label_edge(obj, value).shown in {".x", ".__dict__"}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are new in 3.11")
def test_exception_group_members() -> None:
    inner = ValueError("inner")
    group = ExceptionGroup("many", [KeyError("k"), inner])  # noqa: F821 - builtin on 3.11+
    assert shown(group, group.exceptions) == ".exceptions"
    assert label_edge(group.exceptions, inner).shown == "[1]"
    args = group.args
    assert shown(group, args) == ".args"
