"""cyclescope.contrib.aiohttp without aiohttp: version decisions, a missing aiohttp, the patch on stand-ins.

The same fixes on real aiohttp releases: tests/real/test_contrib_aiohttp.py.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any, Iterator

import pytest

from cyclescope._versions import is_before, parse_version
from cyclescope.contrib import aiohttp as contrib

LEAKY, FIXED = "3.11.13", "3.11.15"


@pytest.mark.parametrize("version, parsed, needs", [
    ("3.11.13", ((3, 11, 13), False), True),
    ("3.8.6", ((3, 8, 6), False), True),
    ("3.11", ((3, 11), False), True),
    ("3.11.14", ((3, 11, 14), False), False),
    ("3.11.15", ((3, 11, 15), False), False),
    ("3.11.14rc1", ((3, 11, 14), True), True),       # PEP 440: before 3.11.14
    ("3.11.14.dev0", ((3, 11, 14), True), True),
    ("3.11.14.post1", ((3, 11, 14), False), False),  # after 3.11.14
    ("3.12.0b1", ((3, 12), True), False),
    ("3.14.5", ((3, 14, 5), False), False),
    ("3.11.13+local.1", ((3, 11, 13), False), True),
    ("v3.11.13", ((3, 11, 13), False), True),
    ("1!3.11.13", ((3, 11, 13), False), True),
    ("4.0.0a1", ((4,), True), False),                # the 2019 pre-release: misjudged, documented
])
def test_version_parsing(version: str, parsed: tuple, needs: bool) -> None:
    assert parse_version(version) == parsed
    assert contrib.needs_fix(version) is needs


@pytest.mark.parametrize("version", ["", "garbage", "dev"])
def test_unparsable_version_is_never_patched(version: str) -> None:
    assert parse_version(version) is None and is_before(version, "1.0") is None
    assert contrib.needs_fix(version) is False


@pytest.fixture
def no_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make aiohttp look uninstalled, whether it is or not."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "aiohttp" else find_spec(name, *args))
    for name in [m for m in sys.modules if m == "aiohttp" or m.startswith("aiohttp.")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.mark.usefixtures("no_aiohttp")
def test_without_aiohttp() -> None:
    for call in (contrib.install, contrib.response_class, contrib.needs_fix,
                 lambda: contrib.CycleBreakingClientResponse):
        with pytest.raises(ModuleNotFoundError, match="needs aiohttp, which is not installed") as info:
            call()
        assert info.value.name == "aiohttp"
        assert info.value.__cause__ is None and info.value.__context__ is None
    assert contrib.uninstall() is False and contrib.installed() is False
    assert contrib.needs_fix("3.11.13") is True
    assert "aiohttp" not in sys.modules


class _Protocol:
    """Stand-in for aiohttp's ResponseHandler: close() drops the transport."""

    def __init__(self) -> None:
        self._exception: BaseException | None = ValueError("kept")
        self.transport: object = object()

    def close(self) -> None:
        self.transport = None


class _Connection:
    def __init__(self, protocol: _Protocol | None) -> None:
        self._protocol = protocol

    @property
    def protocol(self) -> _Protocol | None:
        return self._protocol


class _Response:
    """Stand-in for aiohttp's ClientResponse: close() lets go of the connection."""

    def __init__(self, connection: _Connection | None) -> None:
        self._connection = connection
        self.closed_with: _Connection | None = None

    def close(self) -> None:
        self.closed_with, self._connection = self._connection, None


@pytest.fixture
def fake_aiohttp(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """A minimal stand-in aiohttp (version 3.11.13) in sys.modules; contrib's caches reset."""
    package = types.ModuleType("aiohttp")
    proto = types.ModuleType("aiohttp.client_proto")
    handler = type("ResponseHandler", (_Protocol,), {"close": _Protocol.close})
    proto.ResponseHandler = handler  # type: ignore[attr-defined]
    package.client_proto = proto  # type: ignore[attr-defined]
    package.ClientResponse = _Response  # type: ignore[attr-defined]
    package.__version__ = LEAKY  # type: ignore[attr-defined]
    for name in [m for m in sys.modules if m == "aiohttp" or m.startswith("aiohttp.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "aiohttp", package)
    monkeypatch.setitem(sys.modules, "aiohttp.client_proto", proto)
    monkeypatch.setattr(contrib, "_response_class", None)
    yield package
    contrib.uninstall()


def test_install_patches_once_and_uninstall_restores(fake_aiohttp: types.ModuleType) -> None:
    handler = fake_aiohttp.client_proto.ResponseHandler
    original = handler.__dict__["close"]
    assert contrib.installed() is False
    assert contrib.install() is True
    patched = handler.__dict__["close"]
    assert patched is not original and contrib.installed() is True
    assert contrib.install() is True and handler.__dict__["close"] is patched  # idempotent
    protocol = handler()
    protocol.close()
    assert protocol._exception is None and protocol.transport is None
    assert patched.__name__ == "close" and patched.__wrapped__ is original
    assert contrib.uninstall() is True and handler.__dict__["close"] is original
    assert contrib.uninstall() is False and contrib.installed() is False
    protocol = handler()
    protocol.close()
    assert isinstance(protocol._exception, ValueError)  # the original keeps it, as 3.11.13 does


def test_install_on_inherited_close(fake_aiohttp: types.ModuleType) -> None:
    handler = type("ResponseHandler", (_Protocol,), {})  # close() only inherited
    fake_aiohttp.client_proto.ResponseHandler = handler
    assert contrib.install() is True and "close" in handler.__dict__
    protocol = handler()
    protocol.close()
    assert protocol._exception is None
    assert contrib.uninstall() is True and "close" not in handler.__dict__


def test_uninstall_leaves_a_later_patch_alone(fake_aiohttp: types.ModuleType) -> None:
    handler = fake_aiohttp.client_proto.ResponseHandler
    assert contrib.install() is True

    def someone_elses(self: Any) -> None:
        pass

    handler.close = someone_elses
    assert contrib.uninstall() is False and handler.__dict__["close"] is someone_elses


def test_fixed_release_is_left_alone(fake_aiohttp: types.ModuleType) -> None:
    fake_aiohttp.__version__ = FIXED  # type: ignore[attr-defined]
    handler = fake_aiohttp.client_proto.ResponseHandler
    original = handler.__dict__["close"]
    assert contrib.needs_fix() is False
    assert contrib.install() is False and handler.__dict__["close"] is original
    assert contrib.installed() is False and contrib.uninstall() is False
    assert contrib.response_class() is fake_aiohttp.ClientResponse


def test_response_class(fake_aiohttp: types.ModuleType) -> None:
    cls: Any = contrib.response_class()
    protocol = _Protocol()
    connection = _Connection(protocol)
    response = cls(connection)
    response.close()
    assert protocol._exception is None
    assert response.closed_with is connection  # the base close() ran afterwards
    for response in (cls(None), cls(_Connection(None))):  # no connection, or no protocol
        response.close()
    assert issubclass(cls, fake_aiohttp.ClientResponse) and cls is not fake_aiohttp.ClientResponse
    assert (cls.__module__, cls.__qualname__) == ("cyclescope.contrib.aiohttp", "CycleBreakingClientResponse")
    assert cls is contrib.CycleBreakingClientResponse is contrib.response_class()  # built once


def test_module_attributes() -> None:
    assert set(contrib.__all__) <= set(dir(contrib))
    with pytest.raises(AttributeError):
        contrib.no_such_name  # noqa: B018
    for function in (contrib.install, contrib.installed, contrib.needs_fix, contrib.response_class,
                     contrib.uninstall):
        assert function.__doc__
    assert contrib.FIXED_IN == (3, 11, 14)


