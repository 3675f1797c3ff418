"""Reading types and instances through C code only.

Plain attribute access on a type (``tp.__mro__``, ``klass.__dict__``) goes
through its metaclass, which can define properties: user code. These helpers call
``type``'s own descriptors and the C API instead, so that describing or labelling
an object never runs anything its author wrote.
"""

from __future__ import annotations

import gc
import types
from typing import Any, Callable, Mapping

__all__ = ["is_a", "type_mro", "type_namespace", "type_flags", "lookup", "instance_dict", "module_namespace"]

_MRO = type.__dict__["__mro__"].__get__
_NAMESPACE = type.__dict__["__dict__"].__get__
_FLAGS = type.__dict__["__flags__"].__get__
_DICTOFFSET = type.__dict__["__dictoffset__"].__get__
_MODULE_DICT = types.ModuleType.__dict__["__dict__"].__get__
_TPFLAGS_MANAGED_DICT = 1 << 4  # CPython 3.11+: the dict pointer lives before the object


def is_a(obj: object, kind: type | tuple[type, ...]) -> bool:
    """``isinstance(obj, kind)`` for a built-in ``kind``, by ``type(obj)`` alone:
    ``isinstance`` falls back to ``obj.__class__``, which a class can make a property
    (a mock with a spec says it is a socket, a function, a bound method)."""
    return issubclass(type(obj), kind)


def type_mro(tp: type) -> tuple[type, ...]:
    """``tp.__mro__`` without consulting the metaclass."""
    return _MRO(tp)


def type_namespace(tp: type) -> Mapping[str, Any]:
    """``tp.__dict__`` (a read-only mapping) without consulting the metaclass."""
    return _NAMESPACE(tp)


def type_flags(tp: type) -> int:
    """``tp.__flags__`` (the C ``tp_flags``)."""
    return _FLAGS(tp)


def lookup(tp: type, name: str) -> Any:
    """What ``name`` resolves to on the type's MRO (the raw descriptor), or None."""
    for klass in _MRO(tp):
        found = _NAMESPACE(klass).get(name)
        if found is not None:
            return found
    return None


def module_namespace(module: types.ModuleType) -> dict[str, Any]:
    """A module's ``__dict__``."""
    return _MODULE_DICT(module)


_c_api: Any = None


def load_c_api() -> Any:
    """ctypes and the two C API functions :func:`instance_dict` calls (loaded on first use)."""
    global _c_api
    if _c_api is None:
        import ctypes

        # Pointers in and out: ctypes' own py_object conversion would look up
        # ``__class__`` on the argument, which is user code. Private prototypes:
        # setting argtypes on ctypes.pythonapi's shared functions would change them
        # for every other user of ctypes in the process.
        get_dict = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(
            ("PyObject_GenericGetDict", ctypes.pythonapi))
        dec_ref = ctypes.PYFUNCTYPE(None, ctypes.c_void_p)(("Py_DecRef", ctypes.pythonapi))
        _c_api = (ctypes, get_dict, dec_ref)
    return _c_api


#: Called as ``listener(owner, new_dict)`` when :func:`instance_dict` had to create
#: the dict (see there); capturing uses it to keep such a dict with its owner.
new_dict_listeners: list[Callable[[object, dict], None]] = []


def instance_dict(obj: object) -> dict | None:
    """The instance dictionary of ``obj``, or None when it has none.

    Read with the C API's ``PyObject_GenericGetDict``, so a ``__dict__`` property
    or ``__getattribute__`` defined in Python is never called. On CPython 3.11+
    this may create the dict of an object whose attributes were stored inline; no
    attribute changes, but the object now refers to a new dict (which holds the
    attributes), and :data:`new_dict_listeners` are told.
    """
    tp = type(obj)
    managed = bool(_FLAGS(tp) & _TPFLAGS_MANAGED_DICT)
    if not _DICTOFFSET(tp) and not managed:
        return None
    before = gc.get_referents(obj) if managed and new_dict_listeners else None
    value = _generic_get_dict(obj)
    if (before is not None and value is not None and not any(ref is value for ref in before)
            and any(ref is value for ref in gc.get_referents(obj))):
        # New, and the object's traversal now goes through it (3.11, 3.12). On 3.13
        # the object keeps visiting its inline values and the dict stays out of sight.
        for listener in list(new_dict_listeners):
            listener(obj, value)
    return value


def _generic_get_dict(obj: object) -> dict | None:
    ctypes, get_dict, dec_ref = load_c_api()
    try:
        address = get_dict(id(obj), None)
    except Exception:
        return None
    if not address:
        return None
    value = ctypes.cast(address, ctypes.py_object).value  # a reference of our own
    dec_ref(address)  # give back the one PyObject_GenericGetDict returned
    return value if type(value) is dict else None
