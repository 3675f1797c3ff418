"""Which local-variable slot of a frame (or generator) holds a given object.

Used to label reference-graph edges such as ``frame -> ClientResponse`` as
``local 'self'``. The obvious way, scanning ``frame.f_locals``, has side effects
that a leak finder must not cause: on CPython 3.10-3.12 reading ``f_locals``
materialises a dict on the frame (which keeps every local alive a second time and
may later be written back over the fast locals), and on 3.13 it builds a proxy.
Looking the object up in that dict would also call its ``__eq__``/``__hash__``.

So this module reads the frame's raw "localsplus" pointer array with :mod:`ctypes`
at the layout of the running CPython minor version (3.10 to 3.13, 64-bit builds)
and only ever *compares* slot values with ``id(target)``, as integers. A raw
pointer is never turned back into a Python object and no user code runs: the
only things called on a caller's object are ``id()`` and ``type()``.

Safety rules:

* the layout table (:data:`_LAYOUTS`) is checked once per table entry against
  probe frames and generators of our own (:func:`_calibrated`), and every call
  re-checks the frame or generator it reads (the code and globals pointers of the
  interpreter frame are those of ``frame.f_code``/``frame.f_globals``, the frame
  owner and stack depth are sane, the object is as big as the slots we read...);
  when anything does not match, or the interpreter is not a known CPython, the
  functions answer ``None`` and the caller falls back to a generic label;
* memory outside the frame object, generator or interpreter frame is never read;
  a pointer is only followed when it is the frame object's own ``f_frame`` link
  (3.11+), whose offset the calibration proved, and each slot of such a frame is
  read with a single ctypes pointer-index operation, which follows the link and
  reads the slot without releasing the GIL, so a frame that moves meanwhile (its
  function returns in another thread) is never read at a stale address;
* only the named slots are read (never the value stack above them), and for a
  frame whose storage was cleared only the slots the garbage collector itself
  would visit.

Slot order, checked against ``code._varname_from_oparg`` (the real
``co_localsplusnames``) on 3.11+: ``co_varnames``, then the ``co_cellvars`` that
are not also arguments/locals, then ``co_freevars``. On 3.10 the frame holds
``co_varnames + co_cellvars + co_freevars`` in ``f_localsplus`` (a cell argument
has both a plain slot, emptied at call time, and a cell slot).
"""

from __future__ import annotations

import ctypes
import sys
import types
from dataclasses import dataclass
from typing import Any, Optional

__all__ = ["frame_local_names", "frame_local_ids", "generator_local_names", "frame_f_locals_is"]

_WORD = 8  # this module only knows 64-bit layouts

_c_void_p = ctypes.c_void_p
_c_int = ctypes.c_int
_c_int8 = ctypes.c_int8
# Pointer types placed *over* a ``PyFrameObject.f_frame`` field with
# ``from_address``: ``p[k]`` then dereferences the field's current value and reads
# element ``k`` in one C call (ctypes' Pointer_item), with the GIL held throughout.
_P_VOIDP = ctypes.POINTER(ctypes.c_void_p)
_P_INT = ctypes.POINTER(ctypes.c_int)
_P_INT8 = ctypes.POINTER(ctypes.c_int8)

_GEN_TYPES = (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)

LocalName = tuple[str, str]


@dataclass(frozen=True)
class _Layout310:
    """CPython 3.10: locals live in the frame object (``f_localsplus``)."""

    frame_basicsize: int = 360  # sizeof(PyFrameObject), with one f_localsplus slot
    f_code: int = 32
    f_globals: int = 48
    f_locals: int = 56
    f_valuestack: int = 64
    f_gen: int = 88
    f_localsplus: int = 352


@dataclass(frozen=True)
class _Layout311:
    """CPython 3.11-3.13: locals live in a ``_PyInterpreterFrame``."""

    # PyFrameObject
    frame_basicsize: int
    f_frame: int  # struct _PyInterpreterFrame *f_frame
    frame_data: int  # _f_frame_data: the interpreter frame once the frame object owns it
    f_extra_locals: Optional[int]  # 3.13 only
    f_locals_cache: Optional[int]  # 3.13 only
    # _PyInterpreterFrame
    i_code: int  # f_code (3.11, 3.12) / f_executable (3.13)
    i_globals: int
    i_locals: int
    i_frame_obj: int
    i_stacktop: int
    i_owner: int
    i_localsplus: int
    # PyGenObject / PyCoroObject / PyAsyncGenObject
    gen_basicsize: int
    gi_code: Optional[int]  # 3.11 only
    gi_frame_state: int
    gi_iframe: int
    # enum _framestate
    state_created: int
    states_suspended: tuple[int, ...]
    # enum _frameowner
    owned_by_thread: int = 0
    owned_by_generator: int = 1
    owned_by_frame_object: int = 2
    state_executing: int = 0
    state_cleared: int = 4


_LAYOUTS: dict[tuple[int, int], Any] = {
    (3, 10): _Layout310(),
    (3, 11): _Layout311(
        frame_basicsize=120, f_frame=24, frame_data=48,
        f_extra_locals=None, f_locals_cache=None,
        i_code=32, i_globals=8, i_locals=24, i_frame_obj=40,
        i_stacktop=64, i_owner=69, i_localsplus=72,
        gen_basicsize=152, gi_code=16, gi_frame_state=75, gi_iframe=80,
        state_created=-2, states_suspended=(-1,),
    ),
    (3, 12): _Layout311(
        frame_basicsize=120, f_frame=24, frame_data=48,
        f_extra_locals=None, f_locals_cache=None,
        i_code=0, i_globals=24, i_locals=40, i_frame_obj=48,
        i_stacktop=64, i_owner=70, i_localsplus=72,
        gen_basicsize=144, gi_code=None, gi_frame_state=67, gi_iframe=72,
        state_created=-2, states_suspended=(-1,),
    ),
    (3, 13): _Layout311(
        frame_basicsize=136, f_frame=24, frame_data=64,
        f_extra_locals=48, f_locals_cache=56,
        i_code=0, i_globals=24, i_locals=40, i_frame_obj=48,
        i_stacktop=64, i_owner=70, i_localsplus=72,
        gen_basicsize=144, gi_code=None, gi_frame_state=67, gi_iframe=72,
        state_created=-3, states_suspended=(-2, -1),
    ),
}


# --------------------------------------------------------------------------- reads


def _ptr(addr: int) -> int:
    """The pointer stored at ``addr``, as an int (0 for NULL)."""
    return _c_void_p.from_address(addr).value or 0


class _Unsafe(Exception):
    """A layout check failed: answer None."""


def _check(ok: bool) -> None:
    if not ok:
        raise _Unsafe


def _layout() -> Any:
    """The layout of the running interpreter, or None when unknown/unsupported."""
    if sys.implementation.name != "cpython" or ctypes.sizeof(_c_void_p) != _WORD:
        return None
    return _LAYOUTS.get(sys.version_info[:2])


def _slot_table(code: types.CodeType, lay: Any) -> list[tuple[str, str]]:
    """(name, slot kind) of each named slot of ``code``'s frames, in slot order.

    The slot kind is "local", "cell" (the slot holds a cell the frame created,
    possibly for an argument) or "free" (a cell copied from the closure).
    """
    varnames = code.co_varnames
    cellvars = code.co_cellvars
    freevars = code.co_freevars
    _check(code.co_nlocals == len(varnames))
    if isinstance(lay, _Layout310):
        return (
            [(n, "local") for n in varnames]
            + [(n, "cell") for n in cellvars]
            + [(n, "free") for n in freevars]
        )
    cells = frozenset(cellvars)
    localset = frozenset(varnames)
    table = (
        [(n, "cell" if n in cells else "local") for n in varnames]
        + [(n, "cell") for n in cellvars if n not in localset]
        + [(n, "free") for n in freevars]
    )
    # Names are exact str (the code constructor requires it): hashing runs no user
    # code. Check the assumed order against co_localsplusnames itself.
    name_of = getattr(code, "_varname_from_oparg", None)
    if name_of is not None:
        for i, (name, _kind) in enumerate(table):
            _check(name_of(i) == name)
        try:
            name_of(len(table))
        except IndexError:
            pass
        else:
            raise _Unsafe
    return table


def _match(table: list[tuple[str, str]], slots: list[int], target: object) -> list[LocalName]:
    tid = id(target)
    is_cell = type(target) is types.CellType
    out: list[LocalName] = []
    for (name, kind), value in zip(table, slots):
        if value == tid:
            if kind == "cell" and not is_cell:
                # A cell argument before MAKE_CELL (3.11+) holds the plain value.
                kind = "local"
            out.append((name, kind))
    return out


def _in_struct(offset: Optional[int], size: int, end: int) -> bool:
    return offset is None or (0 <= offset and offset + size <= end and offset % size == 0)


def _layout_is_sane(lay: Any) -> bool:
    """Offsets fit inside the structures whose sizes the running types report."""
    frame_type_size = types.FrameType.__basicsize__
    if isinstance(lay, _Layout310):
        if frame_type_size != lay.frame_basicsize or types.FrameType.__itemsize__ != _WORD:
            return False
        end = lay.f_localsplus
        return lay.f_localsplus + _WORD == lay.frame_basicsize and all(
            _in_struct(o, _WORD, end)
            for o in (lay.f_code, lay.f_globals, lay.f_locals, lay.f_valuestack, lay.f_gen)
        )
    if frame_type_size != lay.frame_basicsize or lay.frame_data + lay.i_localsplus != frame_type_size:
        return False
    for t in _GEN_TYPES:
        if t.__basicsize__ != lay.gen_basicsize:
            return False
    if lay.gi_iframe + lay.i_localsplus != lay.gen_basicsize:
        return False
    words = (lay.i_code, lay.i_globals, lay.i_locals, lay.i_frame_obj)
    return (
        all(_in_struct(o, _WORD, lay.i_localsplus) for o in words)
        and _in_struct(lay.i_stacktop, 4, lay.i_localsplus)
        and _in_struct(lay.i_owner, 1, lay.i_localsplus)
        and lay.i_localsplus % _WORD == 0
        and all(_in_struct(o, _WORD, lay.frame_data) for o in (lay.f_frame, lay.f_extra_locals, lay.f_locals_cache))
        and _in_struct(lay.gi_code, _WORD, lay.gi_iframe)
        and _in_struct(lay.gi_frame_state, 1, lay.gi_iframe)
        and lay.gi_iframe % _WORD == 0
    )


# ------------------------------------------------------------------ frame readers


class _Frame310:
    """Reads a 3.10 frame object: every slot is inside the object itself."""

    def __init__(self, frame: types.FrameType, code: types.CodeType, n: int, lay: _Layout310):
        base = id(frame)
        self.base = base
        self.lay = lay
        _check(_ptr(base + lay.f_code) == id(code))
        _check(_ptr(base + lay.f_globals) == id(frame.f_globals))
        # f_valuestack points just past the named slots, inside this object: it
        # proves the slot count (the object has room for n + co_stacksize slots)
        # and the f_localsplus offset.
        _check(_ptr(base + lay.f_valuestack) == base + lay.f_localsplus + _WORD * n)
        self.count = n

    def slots(self) -> list[int]:
        start = self.base + self.lay.f_localsplus
        return [_ptr(start + _WORD * i) for i in range(self.count)]

    def f_locals_pointers(self) -> list[int]:
        return [_ptr(self.base + self.lay.f_locals)]


class _Frame311:
    """Reads the interpreter frame of a 3.11+ frame object through ``f_frame``.

    Every read goes through a ctypes pointer laid over the ``f_frame`` field, so
    each one follows the link as it is at that instant: the interpreter frame is
    moved into the frame object when its function returns (possibly in another
    thread, between two of our reads), and CPython updates ``f_frame`` then.
    """

    def __init__(self, frame: types.FrameType, code: types.CodeType, n: int, lay: _Layout311):
        base = id(frame)
        self.base = base
        self.lay = lay
        self.code_id = id(code)
        link = base + lay.f_frame
        self.words = _P_VOIDP.from_address(link)
        ints = _P_INT.from_address(link)
        bytes_ = _P_INT8.from_address(link)
        _check(_ptr(link) != 0)
        _check(self._word(lay.i_code) == id(code))
        _check(self._word(lay.i_globals) == id(frame.f_globals))
        owner = bytes_[lay.i_owner]
        stacktop = ints[lay.i_stacktop // 4]
        frame_obj = self._word(lay.i_frame_obj)
        limit = n + code.co_stacksize
        if owner == lay.owned_by_frame_object:
            # Final state: the interpreter frame is the frame object's own data.
            _check(_ptr(link) == base + lay.frame_data)
            _check(frame_obj in (0, base))
            _check(0 <= stacktop <= limit)
            # frame.clear() empties the slots below stacktop and sets it to 0.
            self.count = min(stacktop, n)
        else:
            _check(owner in (lay.owned_by_thread, lay.owned_by_generator))
            _check(frame_obj == base)
            _check(-1 <= stacktop <= limit)  # -1: stack pointer held by the eval loop
            self.count = n if stacktop < 0 else min(stacktop, n)

    def _word(self, offset: int) -> int:
        return self.words[offset // _WORD] or 0

    def slots(self) -> list[int]:
        start = self.lay.i_localsplus // _WORD
        words = self.words
        values = [words[start + i] or 0 for i in range(self.count)]
        _check(self._word(self.lay.i_code) == self.code_id)
        return values

    def f_locals_pointers(self) -> list[int]:
        lay = self.lay
        out = [self._word(lay.i_locals)]
        for offset in (lay.f_extra_locals, lay.f_locals_cache):
            if offset is not None:
                out.append(_ptr(self.base + offset))
        return out


def _frame_reader(frame: Any, lay: Any) -> tuple[Any, list[tuple[str, str]]]:
    """A validated reader for ``frame`` and its slot table (raises _Unsafe)."""
    _check(type(frame) is types.FrameType)
    code = frame.f_code
    table = _slot_table(code, lay)
    cls = _Frame310 if isinstance(lay, _Layout310) else _Frame311
    return cls(frame, code, len(table), lay), table


# ------------------------------------------------------------------ generator reads


def _gen_code(gen: Any) -> types.CodeType:
    t = type(gen)
    if t is types.GeneratorType:
        return gen.gi_code
    if t is types.CoroutineType:
        return gen.cr_code
    return gen.ag_code


def _gen_frame_310(gen: Any) -> Optional[types.FrameType]:
    t = type(gen)
    if t is types.GeneratorType:
        return gen.gi_frame
    if t is types.CoroutineType:
        return gen.cr_frame
    return gen.ag_frame


def _gen_flags(gen: Any) -> tuple[Optional[bool], Optional[bool]]:
    """(running, suspended) as the generator reports them; None when not exposed."""
    t = type(gen)
    if t is types.GeneratorType:
        return gen.gi_running, getattr(gen, "gi_suspended", None)
    if t is types.CoroutineType:
        return gen.cr_running, getattr(gen, "cr_suspended", None)
    # ag_running is the "running asynchronously" flag, not the frame state.
    return None, getattr(gen, "ag_suspended", None)


def _gen_slots_311(gen: Any, lay: _Layout311) -> tuple[list[tuple[str, str]], list[int]]:
    """Named slots of the interpreter frame embedded in a 3.11+ generator."""
    code = _gen_code(gen)
    table = _slot_table(code, lay)
    n = len(table)
    base = id(gen)
    iframe = base + lay.gi_iframe
    # The generator is allocated with room for co_nlocalsplus + co_stacksize slots.
    _check(type(gen).__sizeof__(gen) >= lay.gen_basicsize + _WORD * (n + code.co_stacksize))
    if lay.gi_code is not None:
        _check(_ptr(base + lay.gi_code) == id(code))
    _check(_ptr(iframe + lay.i_code) == id(code))
    _check(_c_int8.from_address(iframe + lay.i_owner).value == lay.owned_by_generator)
    state = _c_int8.from_address(base + lay.gi_frame_state).value
    running, suspended = _gen_flags(gen)
    if suspended is not None:
        _check(suspended == (state in lay.states_suspended))
    if running is not None:
        _check(running == (state == lay.state_executing))
    _check(state == lay.state_created or state in lay.states_suspended or lay.state_executing <= state <= lay.state_cleared)
    if state >= lay.state_cleared:
        # Finished: the slots were released (the GC does not visit them either).
        return table, []
    stacktop = _c_int.from_address(iframe + lay.i_stacktop).value
    _check(-1 <= stacktop <= n + code.co_stacksize)
    count = n if stacktop < 0 else min(stacktop, n)
    start = iframe + lay.i_localsplus
    return table, [_ptr(start + _WORD * i) for i in range(count)]



def _gen_slots_310(gen: Any, lay: _Layout310) -> tuple[list[tuple[str, str]], list[int]]:
    """Named slots of a 3.10 generator's frame, reached through ``gi_frame``.

    On 3.10 the generator refers to its frame object (``gi_frame``, an existing
    object: reading the attribute creates nothing), which holds the locals.
    """
    frame = _gen_frame_310(gen)
    if frame is None:  # finished: the generator dropped its frame
        return _slot_table(_gen_code(gen), lay), []
    _check(type(frame) is types.FrameType)
    # f_gen: the frame's borrowed link back to the generator that runs it.
    _check(_ptr(id(frame) + lay.f_gen) == id(gen))
    reader, table = _frame_reader(frame, lay)
    return table, reader.slots()


def _gen_slots(gen: Any, lay: Any) -> tuple[list[tuple[str, str]], list[int]]:
    _check(type(gen) in _GEN_TYPES)
    if isinstance(lay, _Layout310):
        return _gen_slots_310(gen, lay)
    return _gen_slots_311(gen, lay)


# ------------------------------------------------------------------ calibration

_CALIBRATION: dict[int, tuple[Any, bool]] = {}


def _calibrated(lay: Any) -> bool:
    """Whether ``lay`` matches this interpreter; tested once per layout object.

    The probes are frames and generators of this module whose slots and links
    are known; nothing of the caller's is touched. A layout whose frame-object
    offsets are wrong fails before a pointer read through them is followed.
    """
    known = _CALIBRATION.get(id(lay))
    if known is not None and known[0] is lay:
        return known[1]
    try:
        ok = _layout_is_sane(lay) and _calibrate(lay)
    except Exception:
        ok = False
    _CALIBRATION[id(lay)] = (lay, ok)
    return ok


class _Sentinel:
    __slots__ = ()


def _probe_returned(a: object, b: object) -> types.FrameType:
    c = a  # noqa: F841 - a third slot, holding the same object as the first
    return sys._getframe()


def _probe_running(a: object, b: object, inspect: Any) -> Any:
    c = a  # noqa: F841
    return inspect(sys._getframe())


def _probe_gen(a: object) -> Any:
    yield
    b = a  # noqa: F841
    yield


def _probe_exec_frame(namespace: dict) -> types.FrameType:
    out: list = []
    exec("_out.append(_sys._getframe())", {"_out": out, "_sys": sys}, namespace)
    return out[0]


def _calibrate(lay: Any) -> bool:
    s1, s2 = _Sentinel(), _Sentinel()
    new = isinstance(lay, _Layout311)

    # 1. A finished function's frame, kept alive by us. On 3.11+ it owns its
    # interpreter frame, so f_frame must point into the frame object itself:
    # checking that proves the f_frame offset without following the pointer.
    f = _probe_returned(s1, s2)
    if new and _ptr(id(f) + lay.f_frame) != id(f) + lay.frame_data:
        return False
    reader, _ = _frame_reader(f, lay)
    if reader.slots() != [id(s1), id(s2), id(s1)]:
        return False

    # 2. A frame that is executing (owned by the thread's frame stack on 3.11+).
    def inspect(frame: types.FrameType) -> list[int]:
        return _frame_reader(frame, lay)[0].slots()

    if _probe_running(s1, s2, inspect) != [id(s1), id(s2), id(inspect), id(s1)]:
        return False

    # 3. Generators: created, suspended, finished; and their frame objects.
    g = _probe_gen(s1)
    if _gen_slots(g, lay)[1] != [id(s1), 0]:
        return False
    next(g)
    if _gen_slots(g, lay)[1] != [id(s1), 0]:
        return False
    next(g)
    if _gen_slots(g, lay)[1] != [id(s1), id(s1)]:
        return False
    gf = g.gi_frame  # our own generator: creating its frame object is harmless
    if new and _ptr(id(gf) + lay.f_frame) != id(g) + lay.gi_iframe:
        return False
    if _frame_reader(gf, lay)[0].slots() != [id(s1), id(s1)]:
        return False
    for _ in g:
        pass
    if _gen_slots(g, lay)[1] != []:
        return False
    if _frame_reader(gf, lay)[0].slots() != [id(s1), id(s1)]:
        return False

    # 4. The locals mapping of a module-level (exec) frame.
    namespace: dict = {}
    if _frame_reader(_probe_exec_frame(namespace), lay)[0].f_locals_pointers()[0] != id(namespace):
        return False

    if new and lay.f_extra_locals is not None:
        # 3.13: writing an unknown name through the f_locals proxy (of our probe
        # frame) stores it in f_extra_locals, a dict the frame's tp_traverse visits.
        import gc

        f.f_locals["_cyclescope_probe"] = s1
        extra = _ptr(id(f) + lay.f_extra_locals)
        if not extra or not any(id(o) == extra and type(o) is dict for o in gc.get_referents(f)):
            return False
    if new and lay.f_locals_cache is not None:
        # 3.13: PyEval_GetLocals caches the dict it returns in f_locals_cache.
        # (A private prototype: ctypes.pythonapi's shared one is left alone.)
        get_locals = ctypes.PYFUNCTYPE(ctypes.py_object)(("PyEval_GetLocals", ctypes.pythonapi))

        def cached() -> tuple[int, int]:
            d = get_locals()
            return id(d), _ptr(id(sys._getframe()) + lay.f_locals_cache)

        got, field = cached()
        if got != field:
            return False
    return True


# ------------------------------------------------------------------ public API


def frame_local_names(frame: types.FrameType, target: object) -> Optional[list[LocalName]]:
    """Name and kind of every named local slot of ``frame`` that holds ``target``.

    Identity only (``is``). ``kind`` is "local" for a plain variable or argument,
    "cell" for a cell variable of this frame (the slot holds the cell object, so
    ``target`` must be that cell: the frame does not refer to its contents) and
    "free" for a closure cell copied from the enclosing function. Values only on
    the value stack are not named slots and are never reported.

    Works for running frames, frames of finished functions kept alive by a
    traceback, generator/coroutine frames, class bodies and module-level code.
    Returns ``[]`` when no slot holds ``target`` and ``None`` when the frame's
    memory layout cannot be read safely (unknown interpreter or failed check).
    Never reads ``frame.f_locals`` and never calls ``target``'s methods.
    """
    try:
        lay = _layout()
        _check(lay is not None and _calibrated(lay))
        reader, table = _frame_reader(frame, lay)
        return _match(table, reader.slots(), target)
    except Exception:
        return None


def frame_local_ids(frame: types.FrameType) -> Optional[list[tuple[str, str, int]]]:
    """``(name, kind, id)`` of every named local slot of ``frame`` that holds an object.

    The ids are addresses to compare, never to turn back into objects (a heap
    snapshot maps them to its nodes). Same kinds, checks and ``None`` as
    :func:`frame_local_names`.
    """
    try:
        lay = _layout()
        _check(lay is not None and _calibrated(lay))
        reader, table = _frame_reader(frame, lay)
        return [(name, kind, value) for (name, kind), value in zip(table, reader.slots()) if value]
    except Exception:
        return None


def generator_local_names(gen: Any, target: object) -> Optional[list[LocalName]]:
    """Same as :func:`frame_local_names`, for a generator, coroutine or async generator.

    On 3.11+ the frame is embedded in the generator object and the generator's
    ``tp_traverse`` visits the locals itself (the reference-graph edge is
    ``gen -> object``); its slots are read in place, so no frame object is created
    (``gen.gi_frame`` would create one). On 3.10 the existing ``gi_frame`` object
    is read (accessing it creates nothing). A finished generator holds no locals:
    ``[]``. ``None`` when the layout cannot be read safely or ``gen`` is not a
    built-in generator, coroutine or async generator.
    """
    try:
        lay = _layout()
        _check(lay is not None and _calibrated(lay))
        table, slots = _gen_slots(gen, lay)
        return _match(table, slots, target)
    except Exception:
        return None


def frame_f_locals_is(frame: types.FrameType, target: object) -> Optional[bool]:
    """Whether ``target`` is the locals mapping ``frame`` itself refers to.

    That is the namespace of a class body or module-level frame, or the dict a
    function frame got when its ``f_locals`` was materialised (3.10-3.12), or on
    3.13 the frame object's ``f_extra_locals``/``f_locals_cache`` dicts. Read raw:
    nothing is materialised. ``None`` when the layout cannot be read safely.
    """
    try:
        lay = _layout()
        _check(lay is not None and _calibrated(lay))
        reader, _table = _frame_reader(frame, lay)
        tid = id(target)
        return any(p == tid for p in reader.f_locals_pointers())
    except Exception:
        return None
