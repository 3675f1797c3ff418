"""Name the pattern of a cycle, say why it is one, and which edge to break how.

The classifier reads only the labelled steps of a cycle (types, edge labels and
kinds, functions), so it works on a live capture and on a saved report alike.
Rules are tried from the most specific to the most general; a cycle that fits
none gets the pattern ``"unknown"`` and no advice, never a guess.

Patterns (``Classification.pattern``):

``stored-exception``
    an object keeps an exception (``self._error = exc``) or a traceback (an
    exc_info triple) whose frames refer back to the object: aiohttp#10535.
``future-exception``
    the same with an asyncio Future or Task keeping the exception.
``exception-in-local``
    a frame's local (``err = e``, ``info = sys.exc_info()``, ``tb = get_tb()``)
    holds the exception or traceback whose frames hold that frame (or, through
    ``f_back``, a frame it called).
``asyncio-callback``
    a Future or Task holds a done-callback that refers back to it.
``bound-method``
    an instance keeps one of its own bound methods (``self.cb = self.handle``).
``closure``
    a function stored on an object closes over (a cell holds) that object.
``recursive-closure``
    a nested function that calls itself holds itself through its closure cell.
``generator-frame``
    an unfinished generator or coroutine is kept by an object its frame refers to.
``class-registry``
    a class-level container keeps the class's own instances.
``class-definition``
    a class and its ``__mro__`` (classes are always cyclic; made per call here).
``back-reference``
    parent/child or peer objects that refer to each other.
``self-reference``
    containers that hold themselves (``d["self"] = d``), or an object that is in
    its own container (``self._history = (self,)``).
``unknown``
    none of the above.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from cyclescope.report.model import Step

__all__ = ["Classification", "classify", "attribute_name", "frame_local", "local_owner", "PATTERNS"]

CONTAINERS = frozenset({
    "dict", "list", "tuple", "set", "frozenset", "collections.deque", "collections.OrderedDict",
    "collections.defaultdict", "types.SimpleNamespace", "types.MappingProxyType", "mappingproxy",
})
_INTERNALS = frozenset({
    "frame", "traceback", "cell", "function", "method", "builtin_function_or_method", "code",
    "generator", "coroutine", "async_generator", "module", "type", "weakref.ReferenceType",
    "staticmethod", "classmethod", "property", "functools.partial",
})
_GENERATORS = frozenset({"generator", "coroutine", "async_generator"})
_GENERATOR_FRAMES = frozenset({".gi_frame", ".cr_frame", ".ag_frame"})
#: Attribute names that usually point "up" (child to parent, object to its owner).
_UPWARD = re.compile(r"^_*(parent|owner|manager|session|app|application|root|master|outer|container"
                     r"|loop|server|client|connector|pool|holder|registry)s?$")
_ATTRIBUTE = re.compile(r"^\.(?:__dict__\[')?([A-Za-z_][A-Za-z0-9_]*)(?:'\])?$")


@dataclass(frozen=True)
class Classification:
    """A cycle's pattern, why it is a cycle, and the change that breaks it.

    ``break_step`` indexes the step whose outgoing edge is the one to break, or
    is None when no single edge is advised.
    """

    pattern: str
    explanation: str
    fix: str | None
    break_step: int | None


def attribute_name(edge: str) -> str | None:
    """The attribute an edge label names (``._exception`` -> ``_exception``), or None."""
    found = _ATTRIBUTE.match(edge)
    return found.group(1) if found else None


def _short(type_name: str) -> str:
    return type_name.rsplit(".", 1)[-1]


def _is_exception(step: Step) -> bool:
    return step.edge == ".__traceback__" or step.edge_kind == "exception"


def _is_future(step: Step) -> bool:
    return _short(step.type) in {"Future", "Task"} and (step.module or "").startswith(("asyncio", "_asyncio"))


def _is_instance(step: Step) -> bool:
    return step.type not in CONTAINERS and step.type not in _INTERNALS and not _is_exception(step)


def _holder_before(cycle: Sequence[Step], i: int) -> int:
    """The nearest step at or before ``i`` that is not a plain container (the real holder)."""
    k = len(cycle)
    for back in range(k):
        j = (i - back) % k
        if cycle[j].type not in CONTAINERS:
            return j
    return i % k


def _edge_text(cycle: Sequence[Step], i: int) -> str:
    """``ResponseHandler._exception``, ``dict['key']`` or, for a reference no name was
    found for (a compiled class's private field), ``WebSocketDataQueue's referent #3``:
    where step ``i``'s edge leads from."""
    step = cycle[i]
    name = attribute_name(step.edge)
    if name:
        return f"{_short(step.type)}.{name}"
    if step.edge.startswith(("[", "{")):
        return f"{_short(step.type)}{step.edge}"
    return f"{_short(step.type)}'s {step.edge}"


def frame_local(cycle: Sequence[Step]) -> tuple[int, str] | None:
    """``(step, name)`` of the first frame (or generator) step whose edge is a local."""
    for i, step in enumerate(cycle):
        if (step.type == "frame" or step.type in _GENERATORS) and step.edge.startswith("local '"):
            return i, step.edge[len("local '"):].split("'", 1)[0]
    return None


def local_owner(step: Step) -> tuple[str, str]:
    """``(function, note)`` for the local on frame step ``step``: the function to delete
    it in (``f()``), and "" or, for a closure variable (``local 'x' (closure)``), why that
    is the enclosing function (named from the qualified name where there is one, 3.11+)."""
    function = step.function or "its function"
    if not step.edge.endswith(" (closure)"):
        return f"{function}()", ""
    outer = f"{function.rsplit('.<locals>.', 1)[0]}()" if ".<locals>." in function else "the enclosing function"
    return outer, (f"; {function.rsplit('.', 1)[-1]}() only shares its cell, and deleting it there would "
                   f"unbind it for {outer} too (a value {outer} returns is computed before its "
                   f"`finally:` runs)")


def _frame_and_way_back(cycle: Sequence[Step]) -> tuple[str, str]:
    """("the frame of f()", ", whose local 'x' leads back to it") for an exception cycle."""
    local = frame_local(cycle)
    frames = [s for s in cycle if s.type == "frame" and s.function]
    frame_text = f"the frame of {frames[0].function}()" if frames else "a frame"
    return frame_text, (f", whose local '{local[1]}' leads back to it" if local else ", which leads back to it")


def _future_exception(cycle: Sequence[Step], holder: int, exc: str) -> Classification:
    frame_text, back = _frame_and_way_back(cycle)
    future = _short(cycle[holder].type)
    if exc == "CancelledError":
        return Classification(
            "future-exception",
            f"the cancelled {future} keeps the CancelledError its cancellation raised; the traceback holds "
            f"{frame_text}{back}. Nobody retrieved the result of the cancelled {future}, which would drop "
            f"that error.",
            f"await the cancelled {future.lower()} (or call its result() in a done-callback), or do not keep "
            f"the {future.lower()} in a local of its own frames (`del` it before the await)",
            holder,
        )
    return Classification(
        "future-exception",
        f"{future} keeps the {exc} it was given (and its traceback); the traceback holds "
        f"{frame_text}{back}. A future keeps its exception until it is freed.",
        "do not keep the future in a local of the frame that raised into it: drop it (`del fut` or "
        "`fut = None` in a `finally:`) once the exception is set, or have a callback retrieve it",
        holder,
    )


def _stored_traceback(cycle: Sequence[Step]) -> Classification | None:
    """A traceback kept directly (an exc_info triple, an ExceptionInfo) by a long-lived object."""
    for t, step in enumerate(cycle):
        before = cycle[t - 1]
        if step.type != "traceback" or before.edge in (".__traceback__", ".tb_next") or before.type == "frame":
            continue
        holder = _holder_before(cycle, t - 1)
        if not _is_instance(cycle[holder]):
            continue
        where = _edge_text(cycle, holder)
        frame_text, back = _frame_and_way_back(cycle)
        return Classification(
            "stored-exception",
            f"{_short(cycle[holder].type)} keeps a traceback (an exception's sys.exc_info()) in {where}; "
            f"the traceback holds {frame_text}{back}. A traceback keeps its whole call stack alive.",
            f"clear {where} when done with it, or drop the reference to {_short(cycle[holder].type)} from "
            f"that frame (`del` the local, or set it to None) once the exception has been examined",
            holder,
        )
    return None


def _stored_exception(cycle: Sequence[Step]) -> Classification | None:
    for e, step in enumerate(cycle):
        if _is_future(step) and step.edge in ("._exception_tb", "._cancelled_exc"):
            return _future_exception(cycle, e, "CancelledError" if step.edge == "._cancelled_exc" else "exception")
    for e, step in enumerate(cycle):
        if step.edge != ".__traceback__":
            continue
        holder = _holder_before(cycle, e - 1)
        if holder == e or not _is_instance(cycle[holder]) or cycle[holder].edge_kind == "local":
            continue
        exc = _short(step.type)
        where = _edge_text(cycle, holder)
        frame_text, back = _frame_and_way_back(cycle)
        if _is_future(cycle[holder]):
            return _future_exception(cycle, holder, exc)
        return Classification(
            "stored-exception",
            f"{_short(cycle[holder].type)} keeps a {exc} in {where}; the exception's traceback holds "
            f"{frame_text}{back}. A traceback keeps its whole call stack alive, so an exception stored on "
            f"a long-lived object makes a cycle.",
            f"clear {where} (set it to None) when the object is closed or the error has been handled; "
            f"or store the exception without its traceback (`exc.with_traceback(None)`) if only the "
            f"error itself is needed",
            holder,
        )
    return None


def _exception_in_local(cycle: Sequence[Step]) -> Classification | None:
    exc = next((s for s in cycle if s.edge == ".__traceback__"), None)
    if exc is None and not any(s.type == "traceback" for s in cycle):
        return None
    if any(_is_instance(s) for s in cycle):
        return None
    found = frame_local(cycle)
    if found is None:
        return None
    i, name = found
    owner = cycle[i]
    function, closure_note = local_owner(owner)
    in_generator = owner.type in _GENERATORS or any(s.type in _GENERATORS for s in cycle)
    via_tuple = any(s.type == "tuple" for s in cycle)
    how = "a result of sys.exc_info() kept" if via_tuple else "the exception kept" if exc else "a traceback kept"
    traceback = f"{_short(exc.type)}'s traceback" if exc else "traceback"
    # A traceback returned by a function holds that function's frame, whose f_back is the caller's.
    holds = "a frame it called, whose f_back is that frame" if any(s.edge == ".f_back" for s in cycle) \
        else "that same frame"
    whose = f"the local '{name}' of {owner.function or 'a function'}()"
    if closure_note:  # the frame keeps the cell, the cell the enclosing function's variable
        inner = (owner.function or "a nested function").rsplit(".", 1)[-1]
        whose = f"the variable '{name}' of {function} (a closure cell {inner}() shares)"
        holds = f"the frame of {inner}(), which keeps that cell"
    return Classification(
        "exception-in-local",
        f"{whose} holds {how} after the handler; the "
        f"{traceback} holds {holds}. `except E as e` deletes `e` at the end of "
        f"the handler, but not copies of it or of sys.exc_info()"
        + (" (and a generator or coroutine keeps its frame while suspended)." if in_generator else "."),
        f"delete the local when done with it: `del {name}` (or `{name} = None`) in a `finally:` block"
        + (f" of {function}{closure_note}" if closure_note else ""),
        i,
    )


def _asyncio_callback(cycle: Sequence[Step]) -> Classification | None:
    for i, step in enumerate(cycle):
        if _is_future(step) and step.edge.startswith("._callbacks"):
            target = cycle[(i + 1) % len(cycle)]
            what = f"the callback {target.function}" if target.function else "a done-callback"
            return Classification(
                "asyncio-callback",
                f"{_short(step.type)} holds {what}, which refers back to the future (through its owner). "
                f"A future drops its callbacks only when it is done, so one that never completes keeps "
                f"them and everything they refer to.",
                "resolve or cancel the future when its owner closes (`fut.cancel()`), or remove the callback "
                "(`fut.remove_done_callback(cb)`); a callback that needs its owner can hold a weakref.ref",
                i,
            )
    return None


def _bound_method(cycle: Sequence[Step]) -> Classification | None:
    for i, step in enumerate(cycle):
        if step.type == "method" and step.edge == ".__self__":
            holder = _holder_before(cycle, i - 1)
            where = _edge_text(cycle, holder)
            method = step.function or "a method"
            return Classification(
                "bound-method",
                f"{where} holds the bound method {method}, and a bound method holds its instance "
                f"(`.__self__`): the object refers to itself.",
                f"store `weakref.WeakMethod(...)` in {where} and call it through the weak reference, or store "
                f"a plain function and pass the instance when calling; or set {where} to None on close",
                holder,
            )
    return None


def _closure(cycle: Sequence[Step]) -> Classification | None:
    for i, step in enumerate(cycle):
        if step.type == "cell" and step.edge == ".cell_contents":
            function = next((s for s in cycle if s.type == "function"), None)
            if all(s.type in ("function", "cell", "tuple") for s in cycle) and function is not None:
                fn = function.function or "a nested function"
                return Classification(
                    "recursive-closure",
                    f"the nested function {fn} calls itself, so it closes over its own name: the function "
                    f"holds a cell that holds the function. Every call of the enclosing function leaves one "
                    f"for the cyclic GC, with everything the closure holds.",
                    "define the function at module level (passing what it needs as arguments), or make it "
                    "iterative; `del` of the name at the end of the enclosing function also breaks it",
                    i,
                )
            cell_name = next((s.edge[len("cell '"):].rstrip("'") for s in cycle if s.edge.startswith("cell '")),
                             None)
            name = f"'{cell_name}'" if cell_name else "a variable"
            fn = function.function if function and function.function else "a function"
            holder = _holder_before(cycle, (cycle.index(function) - 1) if function else i)
            return Classification(
                "closure",
                f"the function {fn} closes over {name}, which leads back to the object that keeps the "
                f"function ({_edge_text(cycle, holder)}).",
                f"capture a weak reference instead (`ref = weakref.ref(obj)` outside, `ref()` inside the "
                f"function) or pass what it needs as arguments; or set {_edge_text(cycle, holder)} to None "
                f"when done",
                i,
            )
    return None


def _generator_frame(cycle: Sequence[Step]) -> Classification | None:
    for i, step in enumerate(cycle):
        # 3.11+ labels the generator's own local; 3.10 goes through its frame object.
        if step.type in _GENERATORS and (step.edge.startswith("local '") or step.edge in _GENERATOR_FRAMES):
            local = frame_local(cycle)
            holder = _holder_before(cycle, i - 1)
            what = f"{step.type} {step.function}()" if step.function else step.type
            close = "await it or call `.close()`" if step.type == "coroutine" else (
                "`await agen.aclose()`" if step.type == "async_generator" else "call `.close()`")
            return Classification(
                "generator-frame",
                f"{_edge_text(cycle, holder)} keeps the unfinished {what}, whose frame's "
                f"{cycle[local[0]].edge if local else 'locals'} refers back to it. A generator or "
                f"coroutine that was never started or finished keeps its frame and locals.",
                f"finish or close it when the owner closes ({close}), or do not keep it on the object it "
                f"refers to",
                holder,
            )
    return None


def _class_registry(cycle: Sequence[Step]) -> Classification | None:
    for i, step in enumerate(cycle):
        if step.edge == ".__class__" and _is_instance(step):
            for j in range(1, len(cycle)):
                container = cycle[(i + j) % len(cycle)]
                if container.type in CONTAINERS and container.type != "dict" and \
                        cycle[(i + j + 1) % len(cycle)].type == step.type:
                    cls = _short(step.type)
                    return Classification(
                        "class-registry",
                        f"a class-level {container.type} of {cls} keeps its instances, and every instance "
                        "refers to its class. Here the class itself was garbage (made per call): each "
                        "call leaks a class with all its instances until the cyclic GC runs.",
                        "hold instances weakly (`weakref.WeakSet()` / `WeakValueDictionary`) or remove them "
                        "when closed; and define the class once, at module level",
                        (i + j) % len(cycle),
                    )
    return None


def _class_definition(cycle: Sequence[Step]) -> Classification | None:
    if any(s.edge == ".__mro__" for s in cycle) and all(s.type in CONTAINERS or s.detail for s in cycle):
        cls = next((s.detail for s in cycle if s.detail), "a class")
        return Classification(
            "class-definition",
            f"every class is in a cycle with its own __mro__, so a class is freed only by the cyclic GC; "
            f"{cls} was created at run time and dropped (made per call, or replaced by a class decorator).",
            "create the class once (at module level or in a cached factory) instead of per call",
            None,
        )
    return None


def _back_reference(cycle: Sequence[Step]) -> Classification | None:
    instances = [i for i, s in enumerate(cycle) if _is_instance(s)]
    if len(instances) < 2 or any(not (_is_instance(s) or s.type in CONTAINERS) for s in cycle):
        return None
    upward = [i for i in instances if (attribute_name(cycle[i].edge) or "") and
              _UPWARD.match(attribute_name(cycle[i].edge) or "")]
    # Prefer a reference named like a parent; else one going straight to another
    # instance (child -> parent) over one going into a container (parent -> children).
    direct = [i for i in instances if _is_instance(cycle[(i + 1) % len(cycle)])]
    pick = (upward or direct or instances)[-1]
    where = _edge_text(cycle, pick)
    return Classification(
        "back-reference",
        f"objects refer to each other ({', '.join(dict.fromkeys(_short(cycle[i].type) for i in instances))}): "
        f"a parent and its children, or two peers, each holding the other strongly.",
        f"make {where} a weak reference (`weakref.ref(target)` and call it, or `weakref.proxy(target)`), "
        f"or clear it when the object is closed",
        pick,
    )


def _self_reference(cycle: Sequence[Step]) -> Classification | None:
    instances = [i for i, s in enumerate(cycle) if _is_instance(s)]
    if len(instances) == 1 and all(s.type in CONTAINERS for i, s in enumerate(cycle) if i != instances[0]):
        where = _edge_text(cycle, instances[0])
        how = "refers to" if len(cycle) == 1 else "holds a container that holds"
        return Classification(
            "self-reference",
            f"{where} {how} the {_short(cycle[instances[0]].type)} itself.",
            f"leave the object out of its own {where} (or store a weak reference to it there)",
            instances[0],
        )
    if all(s.type in CONTAINERS for s in cycle):
        return Classification(
            "self-reference",
            "containers that hold themselves" + (f" ({cycle[0].type}{cycle[0].edge} is itself)"
                                                 if len(cycle) == 1 else ""),
            "remove the entry that leads back when done with it, or store an id or a weak reference instead",
            0,
        )
    return None


_RULES: tuple[Callable[[Sequence[Step]], Classification | None], ...] = (
    _stored_exception,
    _stored_traceback,
    _exception_in_local,
    _asyncio_callback,
    _bound_method,
    _closure,
    _generator_frame,
    _class_registry,
    _class_definition,
    _back_reference,
    _self_reference,
)

PATTERNS = ("stored-exception", "future-exception", "exception-in-local", "asyncio-callback", "bound-method",
            "closure", "recursive-closure", "generator-frame", "class-registry", "class-definition", "back-reference",
            "self-reference", "unknown")


def classify(cycle: Sequence[Step]) -> Classification:
    """The pattern of a labelled cycle (``"unknown"`` when no rule fits)."""
    for rule in _RULES:
        try:
            found = rule(cycle)
        except (IndexError, ValueError, StopIteration):
            found = None
        if found is not None:
            return found
    return Classification(
        "unknown",
        "no known pattern fits this cycle; the edges above are all there is to go on.",
        None,
        None,
    )
