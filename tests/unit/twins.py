"""What the tests of a C extension and its pure-Python twins share.

Imported by the test modules as ``twins`` (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import importlib
from array import array
from types import ModuleType

import pytest


def extension(name: str) -> ModuleType | None:
    """``cyclescope.<name>``, or None where it was not built."""
    try:
        return importlib.import_module(f"cyclescope.{name}")
    except ImportError:  # pragma: no cover - depends on the build
        return None


def needs(module: ModuleType | None, name: str) -> pytest.MarkDecorator:
    """Skip a test when the extension ``name`` (``module``) was not built."""
    return pytest.mark.skipif(
        module is None, reason=f"cyclescope.{name} is not built (run `python setup.py build_ext --inplace`)"
    )


def impls(needs_c: pytest.MarkDecorator) -> list:
    """The ``impl`` parameters: the pure-Python reference, and the C twin where built."""
    return ["py", pytest.param("c", marks=needs_c)]


def q(values=()) -> array:
    """An ``array('q')``: the graphs' integer arrays."""
    return array("q", values)
