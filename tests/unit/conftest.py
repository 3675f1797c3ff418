"""Fixtures shared by the unit tests."""

from __future__ import annotations

import gc

import pytest

from cyclescope._gcstate import interpreter_frozen_baseline


def gc_state() -> tuple:
    """Everything about the collector a capture must leave as it found it."""
    # Objects the interpreter froze by itself at startup (CPython 3.12) may be
    # thawed by a freeze capture: no host froze them.
    frozen = gc.get_freeze_count()
    if frozen == interpreter_frozen_baseline():
        frozen = 0
    return (gc.isenabled(), gc.get_debug(), gc.get_threshold(), list(gc.callbacks), list(gc.garbage), frozen)


@pytest.fixture
def gc_state_kept():
    """Fails the test when it (or cyclescope) leaves the collector's state changed."""
    gc.collect()
    before = gc_state()
    yield
    assert gc_state() == before, "the test (or cyclescope) left gc state changed"


@pytest.fixture
def module():
    """A real module in sys.modules named cs_test_module, as a user's cache module would be."""
    import sys
    import types

    mod = types.ModuleType("cs_test_module")
    sys.modules[mod.__name__] = mod
    yield mod
    del sys.modules[mod.__name__]


@pytest.fixture
def held_from_c():
    """``hold(obj)``: give ``obj`` a reference nothing in Python can see, as C code holding
    it would (returns its id); taken back after the test."""
    import ctypes

    # Private prototypes: ctypes.pythonapi's shared ones are left as they are.
    incref = ctypes.PYFUNCTYPE(None, ctypes.py_object)(("Py_IncRef", ctypes.pythonapi))
    decref = ctypes.PYFUNCTYPE(None, ctypes.py_object)(("Py_DecRef", ctypes.pythonapi))
    held: list[int] = []

    def hold(obj: object) -> int:
        incref(obj)
        held.append(id(obj))
        return id(obj)

    yield hold
    for address in held:
        obj = ctypes.cast(address, ctypes.py_object).value  # alive: the reference taken above
        decref(obj)
        del obj
