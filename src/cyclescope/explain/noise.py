"""Which cycles are noise: made by the interpreter or by cyclescope itself.

The rule, applied to the representative cycle of a group:

* a cycle with any step owned by cyclescope (its own frames, functions or
  objects) is noise: the tool must never report itself;
* a cycle whose owned steps all belong to interpreter machinery (the import
  system, ``typing``, ``abc``, ``runpy`` and the other modules in
  :data:`INTERPRETER_MODULES`) is noise.

A step's owner is the module of its code (frames, tracebacks, functions,
coroutines: taken from the code's file) or of its type (instances, classes);
built-in containers, frames and exceptions without code own nothing. A cycle
that owns nothing at all, such as a self-referencing dict, is *not* noise: only
user code makes those. Noise is hidden unless asked for (``--include-noise``).
"""

from __future__ import annotations

import os
from typing import Sequence

from cyclescope.report.model import Step

__all__ = ["INTERPRETER_MODULES", "is_noise", "module_of_file"]

#: Top-level modules whose own cycles are interpreter machinery, not user bugs.
INTERPRETER_MODULES = frozenset(
    {
        "importlib", "_frozen_importlib", "_frozen_importlib_external", "zipimport",
        "pkgutil", "runpy", "typing", "abc", "_abc", "encodings", "codecs",
        "linecache", "tokenize", "sre_compile", "sre_parse", "re", "site",
        "sysconfig", "_sysconfigdata", "_collections_abc",
    }
)

_STDLIB = os.path.dirname(os.__file__)
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def module_of_file(filename: str) -> str | None:
    """The dotted module a code file belongs to, for the stdlib, frozen modules and cyclescope."""
    if filename.startswith("<frozen "):
        return filename[len("<frozen ") : -1]
    path = os.path.abspath(filename) if filename and not filename.startswith("<") else ""
    if not path:
        return None
    if path.startswith(_PACKAGE + os.sep):
        return "cyclescope"
    if path.startswith(_STDLIB + os.sep) and "site-packages" not in path:
        rel = os.path.splitext(path[len(_STDLIB) + 1 :])[0]
        return rel.replace(os.sep, ".").removesuffix(".__init__")
    return None


def _owner(step: Step) -> str | None:
    if step.site:
        filename = step.site.rsplit(":", 1)[0]
        owner = module_of_file(filename)
        if owner is not None:
            return owner
    return step.module


def is_noise(steps: Sequence[Step]) -> bool:
    """Whether a cycle, given by its steps, is interpreter or cyclescope noise."""
    owners = [o for o in (_owner(step) for step in steps) if o]
    tops = [o.split(".", 1)[0] for o in owners]
    if "cyclescope" in tops:
        return True
    return bool(tops) and all(top in INTERPRETER_MODULES for top in tops)
