"""Which cycles are noise: made by the interpreter, its standard library or cyclescope.

The rule, applied to the representative cycle of a group:

* a cycle with any step owned by cyclescope's own machinery (its frames,
  functions or objects; the bundled demo and contrib fixes excepted) is noise: the tool must never
  report itself;
* a cycle whose owned steps all belong to the standard library (the import
  system, ``typing``, ``asyncio``'s transports, ...) is noise: the user cannot
  change it, and what it keeps alive is still counted in the summary.

A step's owner is the module of its code (frames, tracebacks, functions,
coroutines: found from the code's file), the module itself for a module object, or
the module of its type (instances, classes);
built-in containers, frames and exceptions without code own nothing, and neither
does code compiled from a string with no file name (``"<string>"``). A cycle
that owns nothing at all, such as a self-referencing dict, is *not* noise: only
user code makes those. Noise is hidden unless asked for (``--include-noise``).
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from cyclescope.describe import short_path
from cyclescope.report.model import Step

__all__ = ["STDLIB_MODULES", "is_noise", "module_of_file"]

#: Top-level modules of the standard library (plus the frozen import machinery).
STDLIB_MODULES = frozenset(sys.stdlib_module_names) | {"_frozen_importlib", "_frozen_importlib_external"}

_STDLIB = os.path.dirname(os.__file__)
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


#: cyclescope code that runs as part of the user's program: its cycles are theirs to see.
_USER_FACING = ("cyclescope.demo", "cyclescope.contrib")


def module_of_file(filename: str) -> str | None:
    """The dotted module a code file belongs to, for the stdlib, frozen modules and cyclescope."""
    if filename.startswith("<frozen "):
        return filename[len("<frozen ") : -1]
    path = os.path.abspath(filename) if filename and not filename.startswith("<") else ""
    if not path:
        return None
    if path.startswith(_PACKAGE + os.sep):
        rel = os.path.splitext(path[len(_PACKAGE) + 1 :])[0]
        return "cyclescope." + rel.replace(os.sep, ".").removesuffix(".__init__")
    if path.startswith(_STDLIB + os.sep) and "site-packages" not in path:
        rel = os.path.splitext(path[len(_STDLIB) + 1 :])[0]
        return rel.replace(os.sep, ".").removesuffix(".__init__")
    return None


#: The file name of code compiled from a string that named no file: what the standard
#: library generates (unittest.mock's autospecced functions, dataclasses' and
#: namedtuple's methods) and anyone's exec().
_NO_FILE = "<string>"


def _owner(step: Step) -> str | None:
    if step.site:
        filename = step.site.rsplit(":", 1)[0]
        owner = module_of_file(filename)
        if owner is None and filename == _NO_FILE:
            # Nobody's file to change: the cycle's other steps say whose it is (an
            # autospecced mock's function and the mock, say: the standard library's).
            return step.module
        # Code in no stdlib or cyclescope file is someone's own: never noise, even
        # when the step's type (frame, traceback) is a built-in.
        return owner if owner is not None else f"file {filename}"
    if step.type == "module" and step.detail:
        return step.detail  # a module object is its own: the stdlib's _statistics, or the user's app
    return step.module


def _is_own(module: str) -> bool:
    return (module == "cyclescope" or module.startswith("cyclescope.")) and not module.startswith(_USER_FACING)


def _top_level(owner: str) -> str:
    if owner.startswith("file "):
        return short_path(owner[len("file "):]).split("/", 1)[0]
    return owner.split(".", 1)[0]


def is_noise(steps: Sequence[Step], also: frozenset[str] = frozenset()) -> bool:
    """Whether a cycle, given by its steps, is interpreter, stdlib or cyclescope noise.

    ``also`` names more top-level packages whose own cycles count like the stdlib's
    (the pytest plugin passes ``_pytest`` and ``pluggy``).
    """
    owners = [o for o in (_owner(step) for step in steps) if o]
    if any(_is_own(o) for o in owners):
        return True
    return bool(owners) and all(_top_level(o) in STDLIB_MODULES or _top_level(o) in also for o in owners)
