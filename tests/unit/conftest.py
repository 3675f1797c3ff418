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
