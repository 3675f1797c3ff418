"""Whose code is this: the distribution (and version) that ships a module.

A module is built in (``builtins``, or no module at all), part of the standard
library (its top-level name is in ``sys.stdlib_module_names`` and it is not
installed into site-packages), shipped by an installed distribution (found
through ``importlib.metadata.packages_distributions()``, computed once per
process on first use), or else the user's own code (``__main__`` included).
Nothing here raises: metadata that cannot be read gives the kind ``"unknown"``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.machinery
import os
import platform
import sys
import threading
import types
from dataclasses import dataclass
from typing import Mapping, Sequence

from cyclescope._safe import is_a, module_namespace

__all__ = ["Owner", "owner_of_module", "distribution_version"]

_STDLIB = frozenset(sys.stdlib_module_names) | {"_frozen_importlib", "_frozen_importlib_external"}
_SITE_DIRS = ("site-packages", "dist-packages")


@dataclass(frozen=True)
class Owner:
    """Who ships a module.

    ``kind`` is ``"distribution"`` (an installed package), ``"stdlib"``,
    ``"builtin"``, ``"local"`` (the user's code, ``__main__`` included) or
    ``"unknown"`` (its metadata could not be read). ``path`` is the module's
    file relative to the directory holding its top-level package, with ``/``
    separators (``"aiohttp/client_proto.py"``), when known.
    """

    name: str
    version: str | None
    kind: str
    module: str
    path: str | None

    def describe(self) -> str:
        """One phrase for a report: ``"aiohttp 3.11.13, aiohttp/client_proto.py"``."""
        if self.kind == "stdlib":
            head = f"the standard library (Python {self.version})"
        elif self.kind == "builtin":
            return f"built into Python {self.version}"
        elif self.kind == "local":
            return f"your code, {self.path or self.module}"
        elif self.kind == "unknown":
            head = f"{self.name} (owner unknown)"
        else:
            head = f"{self.name} {self.version}" if self.version else self.name
        return f"{head}, {self.path}" if self.path else head


def owner_of_module(module_name: str) -> Owner:
    """The owner of the module named ``module_name`` (cached per name)."""
    if type(module_name) is not str:
        return Owner("", None, "unknown", "", None)
    with _lock:
        cached = _owners.get(module_name)
    if cached is not None:
        return cached
    try:
        owner = _find_owner(module_name)
    except Exception:
        owner = Owner(_top_level(module_name), None, "unknown", module_name, None)
    with _lock:
        _owners[module_name] = owner
    return owner


# -- finding the owner --------------------------------------------------------------------

_lock = threading.Lock()
_owners: dict[str, Owner] = {}
_distributions: Mapping[str, Sequence[str]] | None = None
_distributions_failed = False
_versions: dict[str, str | None] = {}


def _find_owner(module_name: str) -> Owner:
    top = _top_level(module_name)
    python = platform.python_version()
    if not module_name or module_name == "builtins":
        return Owner("Python", python, "builtin", module_name, None)
    filename = _module_file(module_name)
    if module_name == "__main__":
        return Owner(module_name, None, "local", module_name, _main_path(filename))
    relative = _relative_path(module_name, filename)
    if top in _STDLIB and not _in_site_packages(filename):
        return Owner("Python", python, "stdlib", module_name, relative)
    if filename is not None and not _in_site_packages(filename):
        # Outside every installation directory: the user's own code (an editable
        # install of their project included); no need to scan the metadata.
        return Owner(top, None, "local", module_name, relative)
    distributions = _packages_distributions()
    if distributions is None:
        return Owner(top, None, "unknown", module_name, relative)
    names = list(dict.fromkeys(distributions.get(top, ())))
    if not names:
        return Owner(top, None, "local", module_name, relative)
    name = _choose_distribution(names, relative)
    version = _version(name)
    kind = "distribution" if version is not None else "unknown"
    return Owner(name, version, kind, module_name, relative)


def _top_level(module_name: str) -> str:
    return module_name.partition(".")[0]


def _module_file(module_name: str) -> str | None:
    module = sys.modules.get(module_name)
    if module is None or not is_a(module, types.ModuleType):
        return None
    filename = module_namespace(module).get("__file__")
    return filename if type(filename) is str and filename else None


def _main_path(filename: str | None) -> str | None:
    module = sys.modules.get("__main__")
    if module is not None and is_a(module, types.ModuleType):
        spec = module_namespace(module).get("__spec__")
        if type(spec) is importlib.machinery.ModuleSpec and type(spec.name) is str:
            relative = _relative_path(spec.name, filename)
            if relative is not None:
                return relative
    return os.path.basename(filename) if filename else None


def _relative_path(module_name: str, filename: str | None) -> str | None:
    """``filename`` from the directory holding the module's top-level package, or None."""
    if not filename:
        return None
    parts = os.path.normpath(filename).split(os.sep)
    expected = module_name.split(".")
    if parts[-1].startswith("__init__."):
        expected.append("__init__")
    if len(expected) > len(parts):
        return None
    tail = parts[-len(expected):]
    if tail[:-1] + [tail[-1].partition(".")[0]] != expected:
        return None
    return "/".join(tail)


def _in_site_packages(filename: str | None) -> bool:
    return bool(filename) and any(d in filename.split(os.sep) for d in _SITE_DIRS)  # type: ignore[union-attr]


def _packages_distributions() -> Mapping[str, Sequence[str]] | None:
    global _distributions, _distributions_failed
    with _lock:
        if _distributions is not None or _distributions_failed:
            return _distributions
    try:
        found = importlib.metadata.packages_distributions()
    except Exception:
        found = None
    with _lock:
        if found is None:
            _distributions_failed = True
        else:
            _distributions = found
        return _distributions


def _choose_distribution(names: list[str], relative: str | None) -> str:
    if len(names) == 1 or relative is None:
        return names[0]
    for name in names:
        try:
            files = importlib.metadata.distribution(name).files or ()
        except Exception:
            continue
        if any(str(f).replace("\\", "/") == relative for f in files):
            return name
    return names[0]


def distribution_version(name: str) -> str | None:
    """The installed version of the distribution ``name``, or None (cached)."""
    return _version(name)


def _version(name: str) -> str | None:
    with _lock:
        if name in _versions:
            return _versions[name]
    try:
        version = importlib.metadata.version(name)
    except Exception:
        version = None
    if type(version) is not str:
        version = None
    with _lock:
        _versions[name] = version
    return version


def _reset_caches() -> None:
    """Forget every cached answer (for tests)."""
    global _distributions, _distributions_failed
    with _lock:
        _owners.clear()
        _versions.clear()
        _distributions = None
        _distributions_failed = False
