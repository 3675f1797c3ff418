"""Edge labels: how object A refers to object B, in a Python programmer's words.

:func:`label_edge` finds the attribute, key, index, local variable, closure cell,
traceback link or asyncio internal through which ``src`` refers to ``dst``.
Handlers are looked up by type along the MRO (a dispatch table, kept apart from
any output format); instance attributes and ``__slots__`` are tried for every
object that has them. Anything unnamed gets ``referent #i``.

No user code runs: dicts, lists and tuples are read through the built-in
methods of their base type, instance dictionaries and slots through the genuine
C descriptors (never ``__getattribute__`` or a property), frames and coroutines
through :mod:`cyclescope._framelocals` (never ``frame.f_locals``). Only identity
comparisons are made between objects.
"""

from __future__ import annotations

import builtins
import functools
import gc
import sys
import types
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from cyclescope._safe import instance_dict, is_a, type_mro, type_namespace
from cyclescope.describe import format_key

__all__ = ["Label", "label_edge", "fold_through"]


@dataclass(frozen=True)
class Label:
    """One reference from an object to another.

    ``shown`` is what a reader sees (``._protocol``, ``[3]``, ``local 'self'``);
    ``folded`` is what a signature keeps (positions and varying keys folded);
    ``kind`` is the closed set of reference kinds: attribute, key, index, item,
    local, cell, exception, traceback, frame, method, function, class, internal,
    referent.
    """

    shown: str
    folded: str
    kind: str

    @classmethod
    def same(cls, text: str, kind: str) -> "Label":
        """A label whose shown and folded forms are equal."""
        return cls(text, text, kind)


_EXCEPTION_GROUP = getattr(builtins, "BaseExceptionGroup", None)  # Python 3.11+

Handler = Callable[[object, object, object], Iterator[Label]]
_HANDLERS: dict[type, Handler] = {}


def _handles(*tps: type) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for tp in tps:
            _HANDLERS[tp] = fn
        return fn

    return register


def label_edge(src: object, dst: object, prev: object = None) -> Label:
    """How ``src`` refers to ``dst``; ``prev`` (the object before ``src`` on a path)
    helps name closure cells."""
    if "_asyncio" in sys.modules and _asyncio_labels not in _HANDLERS.values():
        _register_asyncio()
    try:
        for klass in type_mro(type(src)):
            handler = _HANDLERS.get(klass)
            if handler is not None:
                for label in handler(src, dst, prev):
                    return label
        for label in _instance_labels(src, dst):
            return label
    except Exception:
        pass
    return _referent_label(src, dst)


def fold_through(label: Label, following: Label) -> Label | None:
    """Two references read as one through the container in between, as a programmer
    writes them: ``x .__dict__ -> dict ['a']`` is ``x .a``; ``exc .args -> tuple [0]``
    is ``exc .args[0]``. None when they do not fold."""
    if label.shown == ".__dict__" and label.kind == "attribute" and following.kind == "key":
        shown, folded = following.shown, following.folded
        if shown.startswith("['") and shown.endswith("']") and folded == shown:
            name = shown[2:-2]
            if name.isidentifier():
                return Label.same(f".{name}", "attribute")
        return Label(f".__dict__{shown}", f".__dict__{folded}", "attribute")
    if label.shown == ".args" and label.kind == "exception" and following.kind == "index":
        return Label(f".args{following.shown}", ".args[i]", "exception")
    return None


def _referent_label(src: object, dst: object) -> Label:
    try:
        referents = gc.get_referents(src)
    except Exception:
        referents = []
    for i, ref in enumerate(referents):
        if ref is dst:
            return Label(f"referent #{i}", "referent", "referent")
    return Label.same("referent", "referent")


def _is(a: object, b: object) -> bool:
    return a is b


# -- containers ----------------------------------------------------------------------


@_handles(dict)
def _dict_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    for key, value in dict.items(src):  # type: ignore[arg-type]
        if value is dst:
            shown, folded = format_key(key)
            yield Label(shown, folded, "key")
            return
    for key in dict.keys(src):  # type: ignore[arg-type]
        if key is dst:
            yield Label.same("(a key)", "key")
            return


def _sequence_labels(items: Iterator[object], dst: object, prev_closure_names: tuple[str, ...] = ()) -> Iterator[Label]:
    for i, value in enumerate(items):
        if value is dst:
            if prev_closure_names and i < len(prev_closure_names):
                yield Label.same(f"cell '{prev_closure_names[i]}'", "cell")
            else:
                yield Label(f"[{i}]", "[i]", "index")
            return


@_handles(list)
def _list_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    yield from _sequence_labels(list.__iter__(src), dst)  # type: ignore[arg-type]


@_handles(tuple)
def _tuple_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    names: tuple[str, ...] = ()
    if is_a(prev, types.FunctionType) and prev.__closure__ is src:
        names = prev.__code__.co_freevars
    yield from _sequence_labels(tuple.__iter__(src), dst, names)  # type: ignore[arg-type]


@_handles(set, frozenset)
def _set_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    for item in (set.__iter__(src) if is_a(src, set) else frozenset.__iter__(src)):  # type: ignore[arg-type]
        if item is dst:
            yield Label.same("{item}", "item")
            return


# -- exceptions, tracebacks, frames ------------------------------------------------


@_handles(BaseException)
def _exception_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    exc: BaseException = src  # type: ignore[assignment]
    for name in ("__traceback__", "__cause__", "__context__"):
        if BaseException.__dict__[name].__get__(exc) is dst:
            kind = "traceback" if name == "__traceback__" else "exception"
            yield Label.same(f".{name}", kind)
            return
    yield from _field_labels(".args", BaseException.__dict__["args"].__get__(exc), dst)
    if _EXCEPTION_GROUP is not None and is_a(exc, _EXCEPTION_GROUP):
        yield from _field_labels(".exceptions", _EXCEPTION_GROUP.__dict__["exceptions"].__get__(exc), dst)


def _field_labels(name: str, members: tuple, dst: object) -> Iterator[Label]:
    """``.name`` when the tuple field itself is ``dst``, ``.name[i]`` when an item is."""
    if members is dst:
        yield Label.same(name, "exception")
        return
    for i, member in enumerate(tuple.__iter__(members)):
        if member is dst:
            yield Label(f"{name}[{i}]", f"{name}[i]", "exception")
            return


@_handles(types.TracebackType)
def _traceback_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    tb: types.TracebackType = src  # type: ignore[assignment]
    if tb.tb_frame is dst:
        yield Label.same(".tb_frame", "traceback")
    elif tb.tb_next is dst:
        yield Label.same(".tb_next", "traceback")


@_handles(types.FrameType)
def _frame_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    from cyclescope import _framelocals

    frame: types.FrameType = src  # type: ignore[assignment]
    yield from _local_labels(_framelocals.frame_local_names(frame, dst))
    if frame.f_back is dst:
        yield Label.same(".f_back", "frame")
    elif frame.f_globals is dst:
        yield Label.same(".f_globals", "frame")
    elif frame.f_builtins is dst:
        yield Label.same(".f_builtins", "frame")
    elif frame.f_trace is dst:
        yield Label.same(".f_trace", "frame")
    elif _framelocals.frame_f_locals_is(frame, dst):
        yield Label.same(".f_locals", "frame")


def _local_labels(names: list[tuple[str, str]] | None) -> Iterator[Label]:
    if names:
        name, kind = names[0]
        if kind == "local":
            yield Label.same(f"local '{name}'", "local")
        elif kind == "cell":  # this function's own variable, which a nested function closes over
            yield Label.same(f"local '{name}' (cell)", "local")
        else:  # a variable of the enclosing function, through the closure
            yield Label.same(f"local '{name}' (closure)", "local")


@_handles(types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)
def _generator_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    from cyclescope import _framelocals

    yield from _local_labels(_framelocals.generator_local_names(src, dst))
    fields = type_namespace(type(src))
    # Reading gi_frame can create a frame object; only ask when dst is that frame.
    names = ("gi_frame", "cr_frame", "ag_frame") if is_a(dst, types.FrameType) else ()
    for name in names + ("cr_await", "gi_yieldfrom", "ag_await"):
        if name in fields and fields[name].__get__(src) is dst:
            yield Label.same(f".{name}", "frame")
            return


@_handles(types.CellType)
def _cell_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    try:
        contents = src.cell_contents  # type: ignore[attr-defined]
    except ValueError:  # empty cell
        return
    if contents is dst:
        yield Label.same(".cell_contents", "cell")


# -- callables ------------------------------------------------------------------------

_FUNCTION_FIELDS = (
    "__code__", "__closure__", "__globals__", "__defaults__", "__kwdefaults__", "__dict__",
    "__annotations__", "__module__", "__name__", "__qualname__", "__doc__", "__builtins__",
)


def _field_values(src: object, named: Iterable[tuple[str, Any]]) -> Iterator[tuple[str, object]]:
    """``(name, value)`` read through each C descriptor; fields that raise are skipped."""
    for name, descriptor in named:
        try:
            yield name, descriptor.__get__(src)
        except Exception:
            continue


@_handles(types.FunctionType)
def _function_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    fields = types.FunctionType.__dict__
    named = ((name, fields[name]) for name in _FUNCTION_FIELDS if name in fields)
    for name, value in _field_values(src, named):
        if value is dst:
            yield Label.same(f".{name}", "function")
            return


@_handles(types.MethodType)
def _method_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    if src.__self__ is dst:  # type: ignore[attr-defined]
        yield Label.same(".__self__", "method")
    elif src.__func__ is dst:  # type: ignore[attr-defined]
        yield Label.same(".__func__", "method")


@_handles(types.BuiltinMethodType)
def _builtin_method_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    if src.__self__ is dst:  # type: ignore[attr-defined]
        yield Label.same(".__self__", "method")


@_handles(staticmethod, classmethod)
def _wrapper_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    if src.__func__ is dst:  # type: ignore[attr-defined]
        yield Label.same(".__func__", "function")


@_handles(functools.partial)
def _partial_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    part: functools.partial = src  # type: ignore[type-arg,assignment]
    fields = functools.partial.__dict__
    for name in ("func", "args", "keywords"):
        if fields[name].__get__(part) is dst:
            yield Label.same(f".{name}", "attribute")
            return
    for i, value in enumerate(tuple.__iter__(fields["args"].__get__(part))):
        if value is dst:
            yield Label(f".args[{i}]", ".args[i]", "attribute")
            return


@_handles(weakref.ref)
def _weakref_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    if weakref.ref.__dict__["__callback__"].__get__(src) is dst:
        yield Label.same(".__callback__", "internal")


# -- types and modules --------------------------------------------------------------


@_handles(type)
def _type_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    fields = type.__dict__
    for name in ("__mro__", "__bases__", "__base__"):
        if fields[name].__get__(src) is dst:
            yield Label.same(f".{name}", "class")
            return
    if type(dst) is dict and "__module__" in dict.keys(dst):  # type: ignore[arg-type]
        yield Label.same(".__dict__", "class")


@_handles(types.ModuleType)
def _module_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    if type(dst) is dict:
        yield Label.same(".__dict__", "attribute")


# -- asyncio's C futures and tasks ----------------------------------------------------

_FUTURE_FIELDS = (
    "_exception", "_result", "_coro", "_fut_waiter", "_loop", "_source_traceback",
    "_cancel_message", "_callbacks",
)


def _asyncio_labels(src: object, dst: object, prev: object) -> Iterator[Label]:
    descriptors = {}
    for klass in reversed(type_mro(type(src))):
        namespace = type_namespace(klass)
        for name in _FUTURE_FIELDS:
            found = namespace.get(name)
            if is_a(found, (types.GetSetDescriptorType, types.MemberDescriptorType)):
                descriptors[name] = found
    for name, value in _field_values(src, descriptors.items()):
        if value is dst:
            yield Label.same(f".{name}", "internal")
            return
        if name == "_callbacks" and type(value) is list:
            # The getter builds a new list of (callback, context) pairs.
            for i, entry in enumerate(value):
                if type(entry) is tuple and any(part is dst for part in entry):
                    yield Label(f"._callbacks[{i}]", "._callbacks[i]", "internal")
                    return
    # Two C fields have no Python name. The future keeps the traceback of its
    # exception apart (fut_exception_tb) until exception() or result() hands it
    # back, and a cancelled one keeps the CancelledError it raised
    # (fut_cancelled_exc); no other field holds a traceback or an exception.
    if type(dst) is types.TracebackType:
        yield Label.same("._exception_tb", "internal")
    elif BaseException in type_mro(type(dst)):
        yield Label.same("._cancelled_exc", "internal")


def _register_asyncio() -> None:
    # Never import _asyncio ourselves: imported before asyncio, it breaks
    # asyncio.current_task(). If the program has no asyncio, it has no futures.
    module = sys.modules.get("_asyncio")
    if module is not None:
        for tp in (module.Future, module.Task):
            _HANDLERS[tp] = _asyncio_labels


# -- instances: __dict__ and __slots__ -------------------------------------------------


def _instance_labels(src: object, dst: object) -> Iterator[Label]:
    tp = type(src)
    for klass in type_mro(tp):
        for name, descriptor in type_namespace(klass).items():
            if type(descriptor) is types.MemberDescriptorType:
                try:
                    value = descriptor.__get__(src, tp)
                except Exception:
                    continue
                if value is dst:
                    yield Label.same(f".{name}", "attribute")
                    return
    namespace = instance_dict(src)
    if namespace is not None:
        if namespace is dst:
            yield Label.same(".__dict__", "attribute")
            return
        for key, value in dict.items(namespace):
            if value is dst:
                if type(key) is str:
                    yield Label.same(f".{key}", "attribute")
                else:
                    shown, folded = format_key(key)
                    yield Label(f".__dict__{shown}", f".__dict__{folded}", "attribute")
                return
    if tp is dst:
        yield Label.same(".__class__", "class")
