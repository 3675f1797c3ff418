"""Whose code a module is: an installed distribution, the stdlib, a builtin, or the user's."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import platform
import sys
import types
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from cyclescope.explain import owners
from cyclescope.explain.owners import Owner, owner_of_module

PYTHON = platform.python_version()


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Each test starts and ends with nothing cached."""
    owners._reset_caches()
    yield
    owners._reset_caches()


def test_installed_distribution() -> None:
    import _pytest.runner  # noqa: F401

    version = importlib.metadata.version("pytest")
    owner = owner_of_module("_pytest.runner")
    assert owner == Owner("pytest", version, "distribution", "_pytest.runner", "_pytest/runner.py")
    assert owner.describe() == f"pytest {version}, _pytest/runner.py"


def test_distribution_package_and_module_not_imported() -> None:
    assert owner_of_module("_pytest").path == "_pytest/__init__.py"
    owner = owner_of_module("_pytest.no_such_module")
    assert (owner.name, owner.kind, owner.path) == ("pytest", "distribution", None)
    assert owner.describe() == f"pytest {importlib.metadata.version('pytest')}"


def test_stdlib() -> None:
    import asyncio.futures  # noqa: F401

    owner = owner_of_module("asyncio.futures")
    assert owner == Owner("Python", PYTHON, "stdlib", "asyncio.futures", "asyncio/futures.py")
    assert owner.describe() == f"the standard library (Python {PYTHON}), asyncio/futures.py"
    assert owner_of_module("os").path == "os.py"
    assert owner_of_module("asyncio").path == "asyncio/__init__.py"
    assert owner_of_module("_frozen_importlib").kind == "stdlib"
    assert owner_of_module("_asyncio").kind == "stdlib"


@pytest.mark.parametrize("name", ["builtins", ""])
def test_builtin(name: str) -> None:
    owner = owner_of_module(name)
    assert owner == Owner("Python", PYTHON, "builtin", name, None)
    assert owner.describe() == f"built into Python {PYTHON}"


def test_main_is_local() -> None:
    owner = owner_of_module("__main__")
    assert (owner.name, owner.version, owner.kind, owner.module) == ("__main__", None, "local", "__main__")
    main_file = sys.modules["__main__"].__dict__.get("__file__")
    if main_file:
        assert owner.path is not None and main_file.replace("\\", "/").endswith(owner.path)
        assert owner.describe() == f"your code, {owner.path}"
    else:
        assert owner.describe() == "your code, __main__"


def test_main_run_as_a_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    main = types.ModuleType("__main__")
    main.__file__ = str(tmp_path / "run_me.py")
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert owner_of_module("__main__").describe() == "your code, run_me.py"


@pytest.fixture
def local_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A package of the user's own, imported from tmp_path."""
    name = f"cs_owned_{uuid.uuid4().hex[:10]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "models.py").write_text("class Model:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module(f"{name}.models")
    yield name
    for module in [m for m in sys.modules if m.split(".")[0] == name]:
        del sys.modules[module]


def test_local_module(local_package: str) -> None:
    owner = owner_of_module(f"{local_package}.models")
    assert owner == Owner(local_package, None, "local", f"{local_package}.models", f"{local_package}/models.py")
    assert owner.describe() == f"your code, {local_package}/models.py"


def test_local_module_not_imported() -> None:
    owner = owner_of_module("cs_never_imported.models")
    assert owner == Owner("cs_never_imported", None, "local", "cs_never_imported.models", None)
    assert owner.describe() == "your code, cs_never_imported.models"


def test_module_attributes_are_never_consulted(local_package: str) -> None:
    module = sys.modules[f"{local_package}.models"]
    calls: list[str] = []

    class Trapped(types.ModuleType):
        def __getattribute__(self, name: str) -> object:
            calls.append(name)
            raise RuntimeError(name)

    module.__class__ = Trapped
    try:
        assert owner_of_module(f"{local_package}.models").path == f"{local_package}/models.py"
        assert calls == []
        with pytest.raises(RuntimeError):
            module.__file__
    finally:
        object.__setattr__(module, "__class__", types.ModuleType)
    assert calls == ["__file__"]


def test_answers_are_cached_and_metadata_is_scanned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.packages_distributions
    scans: list[int] = []

    def counting() -> object:
        scans.append(1)
        return real()

    monkeypatch.setattr(importlib.metadata, "packages_distributions", counting)
    assert owner_of_module("asyncio").kind == "stdlib"
    assert scans == []  # lazily: not needed for the standard library
    first = owner_of_module("_pytest.runner")
    assert owner_of_module("_pytest.runner") is first
    assert owner_of_module("pluggy").kind == "distribution"
    assert owner_of_module("cs_never_imported").kind == "local"
    assert scans == [1]


def test_broken_metadata_gives_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> object:
        raise OSError("unreadable RECORD")

    monkeypatch.setattr(importlib.metadata, "packages_distributions", broken)
    owner = owner_of_module("_pytest.runner")
    assert (owner.name, owner.version, owner.kind, owner.path) == ("_pytest", None, "unknown", "_pytest/runner.py")
    assert owner.describe() == "_pytest (owner unknown), _pytest/runner.py"
    assert owner_of_module("asyncio.futures").kind == "stdlib"
    assert owner_of_module("builtins").kind == "builtin"


def test_unreadable_version_gives_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str) -> str:
        raise ValueError(f"bad METADATA for {name}")

    monkeypatch.setattr(importlib.metadata, "version", broken)
    owner = owner_of_module("_pytest.runner")
    assert (owner.name, owner.version, owner.kind) == ("pytest", None, "unknown")


def test_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(owners, "_find_owner", explode)
    assert owner_of_module("anything.at.all") == Owner("anything", None, "unknown", "anything.at.all", None)
    assert owner_of_module(None).kind == "unknown"  # type: ignore[arg-type]


def test_owner_is_frozen() -> None:
    owner = owner_of_module("builtins")
    with pytest.raises(dataclasses.FrozenInstanceError):
        owner.name = "x"  # type: ignore[misc]
