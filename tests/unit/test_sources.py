"""Where an attribute is assigned: found in the source of a type and its bases, never run."""

from __future__ import annotations

import asyncio.futures
import dataclasses
import importlib
import sys
import types
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from cyclescope import sourcelines
from cyclescope.explain.sources import SourceLocation, attribute_assignments

BASE = '''\
class Base:
    def __init__(this, loop):
        this.loop = loop
        this._exception: BaseException | None = None
        this.pending: list

    def set_exception(me, exc):
        me._exception = exc
'''

HANDLER = '''\
from .base import Base


class Handler(Base):
    _exception = None
    limit: int = 3
    declared: int

    def __init__(self, loop):
        super().__init__(loop)
        self.a, (self.b, *self.rest) = 1, (2, 3)
        self.count = 0
        self.count += 1
        self.__secret = "mangled"
        setattr(self, "dynamic", 1)
        object.__setattr__(self, "frozen", 2)
        super().__setattr__("via_super", 3)
        self.__dict__["raw"] = 4

        def callback(result):
            self._exception = result
        self._cb = callback

        def shadow(self):
            self.a = "shadowed"

    @staticmethod
    def helper(other):
        other._exception = "static"

    @classmethod
    def configure(cls, value):
        cls.limit = value

    async def close(self):
        for self.cursor in range(2):
            pass
        self._exception = None

    class Inner:
        def __init__(self):
            self._exception = "inner"


def make_local():
    class Local:
        def __init__(self):
            self._exception = "local"
    return Local


def make_other():
    class Local:
        def __init__(self):
            self._exception = "other local"
    return Local


FLAG = False
if FLAG:
    class Twice:
        def __init__(self):
            self.v = "first"
else:
    class Twice:
        def __init__(self):
            self.v = "second"
'''


@pytest.fixture
def make_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Writes a package of modules into tmp_path; returns its (unique) name."""
    made: list[str] = []

    def make(**modules: str) -> str:
        name = f"cs_sources_{uuid.uuid4().hex[:10]}"
        package = tmp_path / name
        package.mkdir()
        (package / "__init__.py").write_text("")
        for module, text in modules.items():
            (package / f"{module}.py").write_bytes(text.encode("latin-1" if "latin-1" in text else "utf-8"))
        made.append(name)
        return name

    monkeypatch.syspath_prepend(str(tmp_path))
    yield make
    for name in list(sys.modules):
        if name.split(".")[0] in made:
            del sys.modules[name]


@pytest.fixture
def handler_module(make_package: Callable[..., str]) -> types.ModuleType:
    package = make_package(base=BASE, handler=HANDLER)
    importlib.import_module(f"{package}.base")
    return importlib.import_module(f"{package}.handler")


def line_of(path: str, text: str) -> int:
    """The line number of the one line of ``path`` holding ``text``."""
    numbers = [n for n, line in enumerate(Path(path).read_text().splitlines(), 1) if text in line]
    assert len(numbers) == 1, (text, numbers)
    return numbers[0]


def found(tp: type, attr: str, limit: int = 20) -> list[tuple[str, str, str]]:
    """(file name, stripped text, qualname) of each assignment found."""
    return [(Path(s.path).name, s.text, s.qualname) for s in attribute_assignments(tp, attr, limit=limit)]


def test_bases_in_another_module_in_mro_then_line_order(handler_module: types.ModuleType) -> None:
    assert found(handler_module.Handler, "_exception") == [
        ("handler.py", "_exception = None", "Handler"),
        ("handler.py", "self._exception = result", "Handler.__init__.<locals>.callback"),
        ("handler.py", "self._exception = None", "Handler.close"),
        ("base.py", "this._exception: BaseException | None = None", "Base.__init__"),
        ("base.py", "me._exception = exc", "Base.set_exception"),
    ]


def test_locations_are_full_paths_and_lines(handler_module: types.ModuleType) -> None:
    path = handler_module.__file__
    (first, *_rest) = attribute_assignments(handler_module.Handler, "_exception")
    assert first == SourceLocation(path, line_of(path, "    _exception = None"), "_exception = None", "Handler",
                                   handler_module.__name__)
    assert first.location == f"{path}:{first.lineno}"
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.lineno = 1  # type: ignore[misc]


@pytest.mark.parametrize("attr, expected", [
    ("a", [("self.a, (self.b, *self.rest) = 1, (2, 3)", "Handler.__init__")]),
    ("b", [("self.a, (self.b, *self.rest) = 1, (2, 3)", "Handler.__init__")]),
    ("rest", [("self.a, (self.b, *self.rest) = 1, (2, 3)", "Handler.__init__")]),
    ("count", [("self.count = 0", "Handler.__init__"), ("self.count += 1", "Handler.__init__")]),
    ("dynamic", [('setattr(self, "dynamic", 1)', "Handler.__init__")]),
    ("frozen", [('object.__setattr__(self, "frozen", 2)', "Handler.__init__")]),
    ("via_super", [('super().__setattr__("via_super", 3)', "Handler.__init__")]),
    ("raw", [('self.__dict__["raw"] = 4', "Handler.__init__")]),
    ("cursor", [("for self.cursor in range(2):", "Handler.close")]),
    ("limit", [("limit: int = 3", "Handler"), ("cls.limit = value", "Handler.configure")]),
    ("loop", [("this.loop = loop", "Base.__init__")]),
    ("declared", []),
    ("pending", []),
])
def test_assignment_forms(handler_module: types.ModuleType, attr: str, expected: list[tuple[str, str]]) -> None:
    assert [(text, qualname) for _, text, qualname in found(handler_module.Handler, attr)] == expected


def test_private_names_are_mangled(handler_module: types.ModuleType) -> None:
    # A string given to a secret-named attribute is shown redacted.
    assert found(handler_module.Handler, "_Handler__secret") == [
        ("handler.py", 'self.__secret = "<redacted>"', "Handler.__init__")]
    assert found(handler_module.Handler, "__secret") == []
    assert found(handler_module.Handler, "_Base__secret") == []


def test_nested_class_and_its_outer_class_are_separate(handler_module: types.ModuleType) -> None:
    assert found(handler_module.Handler.Inner, "_exception") == [
        ("handler.py", 'self._exception = "inner"', "Handler.Inner.__init__")]
    assert all("inner" not in text for _, text, _ in found(handler_module.Handler, "_exception"))


def test_classes_defined_in_functions(handler_module: types.ModuleType) -> None:
    assert found(handler_module.make_local(), "_exception") == [
        ("handler.py", 'self._exception = "local"', "make_local.<locals>.Local.__init__")]
    assert found(handler_module.make_other(), "_exception") == [
        ("handler.py", 'self._exception = "other local"', "make_other.<locals>.Local.__init__")]


def test_class_renamed_out_of_reach_of_its_qualname_found_by_its_code(handler_module: types.ModuleType) -> None:
    local = handler_module.make_other()
    local.__qualname__ = "somewhere.<locals>.Local"
    assert [text for _, text, _ in found(local, "_exception")] == ['self._exception = "other local"']


def test_conditional_definitions_told_apart_by_their_code(handler_module: types.ModuleType) -> None:
    assert [text for _, text, _ in found(handler_module.Twice, "v")] == ['self.v = "second"']


def test_limit(handler_module: types.ModuleType) -> None:
    assert len(attribute_assignments(handler_module.Handler, "_exception")) == 5
    assert [s.text for s in attribute_assignments(handler_module.Handler, "_exception", limit=2)] == [
        "_exception = None", "self._exception = result"]
    assert attribute_assignments(handler_module.Handler, "_exception", limit=0) == []


DATACLASS = '''\
import dataclasses


@dataclasses.dataclass(frozen=True)
class Frozen:
    name: str
    items: list = dataclasses.field(default_factory=list)

    def __post_init__(self):
        object.__setattr__(self, "cache", {})


class NotADataclass:
    name: str
'''


def test_dataclass_fields_are_their_declarations(make_package: Callable[..., str]) -> None:
    package = make_package(dc=DATACLASS)
    module = importlib.import_module(f"{package}.dc")
    assert found(module.Frozen, "name") == [("dc.py", "name: str", "Frozen")]
    assert found(module.Frozen, "items") == [("dc.py", "items: list = dataclasses.field(default_factory=list)", "Frozen")]
    assert found(module.Frozen, "cache") == [("dc.py", 'object.__setattr__(self, "cache", {})', "Frozen.__post_init__")]
    assert found(module.NotADataclass, "name") == []


def test_file_that_no_longer_parses(make_package: Callable[..., str]) -> None:
    package = make_package(mod="class Thing:\n    def __init__(self):\n        self.x = 1\n")
    module = importlib.import_module(f"{package}.mod")
    assert found(module.Thing, "x") == [("mod.py", "self.x = 1", "Thing.__init__")]
    Path(module.__file__).write_text("class Thing(:\n    pass\n")
    assert attribute_assignments(module.Thing, "x") == []
    Path(module.__file__).write_text("class Thing:\n    def __init__(self):\n        self.x = 2  # edited\n")
    assert found(module.Thing, "x") == [("mod.py", "self.x = 2  # edited", "Thing.__init__")]
    Path(module.__file__).unlink()
    assert attribute_assignments(module.Thing, "x") == []


def test_file_too_large_is_skipped(make_package: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    package = make_package(mod="class Thing:\n    def __init__(self):\n        self.x = 1\n")
    module = importlib.import_module(f"{package}.mod")
    monkeypatch.setattr(sourcelines, "MAX_FILE_BYTES", 10)
    assert attribute_assignments(module.Thing, "x") == []


def test_source_encoding_is_honoured(make_package: Callable[..., str]) -> None:
    text = "# -*- coding: latin-1 -*-\nclass Caf\xe9:\n    def __init__(self):\n        self.nom = 'cr\xe8me'\n"
    package = make_package(mod=text)
    module = importlib.import_module(f"{package}.mod")
    assert found(getattr(module, "Caf\xe9"), "nom") == [("mod.py", "self.nom = 'cr\xe8me'", "Caf\xe9.__init__")]


def test_module_without_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = "class Thing:\n    def __init__(self):\n        self.x = 1\n"
    name = f"cs_nofile_{uuid.uuid4().hex[:10]}"
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, module)
    exec(compile(source, "<generated>", "exec"), module.__dict__)
    assert "__file__" not in module.__dict__
    assert attribute_assignments(module.Thing, "x") == []

    # No __file__, but the class's own code names a file that holds it.
    real = tmp_path / "generated_thing.py"
    real.write_text(source)
    exec(compile(source, str(real), "exec"), module.__dict__)
    assert found(module.Thing, "x") == [("generated_thing.py", "self.x = 1", "Thing.__init__")]


def test_module_gone_from_sys_modules(make_package: Callable[..., str]) -> None:
    package = make_package(mod="class Thing:\n    kind = 'class level'\n")
    module = importlib.import_module(f"{package}.mod")
    del sys.modules[f"{package}.mod"]
    assert attribute_assignments(module.Thing, "kind") == []


TRAPPED = '''\
import sys
import types

calls = []
armed = False


def _trap(name):
    def get(self):
        if armed:
            calls.append(name)
            raise RuntimeError(name)
        return None
    return property(get)


class Meta(type):
    __mro__ = _trap("__mro__")
    __dict__ = _trap("__dict__")
    __name__ = _trap("__name__")
    __module__ = _trap("__module__")
    __file__ = _trap("__file__")

    def __getattribute__(cls, name):
        if armed:
            calls.append(name)
            raise RuntimeError(name)
        return type.__getattribute__(cls, name)


class Trapped(metaclass=Meta):
    def __init__(self):
        self.value = 1


class TrappedModule(types.ModuleType):
    def __getattribute__(self, name):
        if armed:
            calls.append("module." + name)
            raise RuntimeError(name)
        return super().__getattribute__(name)


sys.modules[__name__].__class__ = TrappedModule
'''


def test_metaclass_and_module_class_are_never_consulted(make_package: Callable[..., str]) -> None:
    package = make_package(trapped=TRAPPED)
    module = importlib.import_module(f"{package}.trapped")
    trapped, calls = module.Trapped, module.calls
    module.armed = True
    try:
        result = found(trapped, "value")
        assert calls == []
        with pytest.raises(RuntimeError):
            trapped.__mro__
        with pytest.raises(RuntimeError):
            module.__file__
    finally:
        module.armed = False
    assert calls == ["__mro__", "module.__file__"]
    assert result == [("trapped.py", "self.value = 1", "Trapped.__init__")]


def test_stdlib_pure_python_future() -> None:
    result = attribute_assignments(asyncio.futures._PyFuture, "_exception", limit=10)  # type: ignore[attr-defined]
    assert result, "asyncio/futures.py should assign Future._exception"
    assert all(Path(s.path).parts[-2:] == ("asyncio", "futures.py") for s in result)
    assert ("self._exception = exception", "Future.set_exception") in [(s.text, s.qualname) for s in result]
    assert [s.lineno for s in result] == sorted(s.lineno for s in result)


@pytest.mark.parametrize("tp", [dict, object, asyncio.Future, type])
def test_builtin_and_c_types_have_no_source(tp: type) -> None:
    assert attribute_assignments(tp, "_exception") == []


@pytest.mark.parametrize("not_a_type, attr", [(42, "x"), (None, "x"), (dict, 3)])
def test_bad_arguments_give_nothing(not_a_type: object, attr: object) -> None:
    assert attribute_assignments(not_a_type, attr) == []  # type: ignore[arg-type]


def test_class_defined_in_this_test() -> None:
    class Here:
        def __init__(self) -> None:
            self.here = 1

    assert found(Here, "here") == [(
        Path(__file__).name, "self.here = 1",
        "test_class_defined_in_this_test.<locals>.Here.__init__")]
