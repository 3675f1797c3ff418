"""Break the aiohttp #10535 reference cycle on aiohttp releases that lack the upstream fix.

The cycle: when the server drops the connection before the response headers
arrive, the client's ``ResponseHandler`` (``aiohttp/client_proto.py``) stores the
``ServerDisconnectedError`` in ``_exception``. Its traceback holds the frame of
``ClientResponse.start`` whose local ``self`` is the response, and the response
holds its connection and so the protocol::

    ClientResponse ._protocol -> ResponseHandler ._exception -> ServerDisconnectedError
        .__traceback__ -> traceback ... .tb_frame -> frame local 'self' -> ClientResponse

Nothing but the cyclic garbage collector frees it, with everything the response
kept alive. aiohttp fixed it in 3.11.14 (PR #10556; 3.11.14 was yanked, 3.11.15 is
the first regular release with it): ``ResponseHandler.close()`` forgets the stored
exception before closing the transport. The same cycle forms whatever the client
was about to do with the response: a plain GET, a streaming read, or the opening
handshake of ``ClientSession.ws_connect()``, which sends its request through the
same code.

Two ways to get that fix on an older aiohttp:

1. :func:`install` (preferred): patches ``ResponseHandler.close`` once, process-wide,
   so that it clears ``_exception`` first, exactly as the upstream fix does. It
   covers every connection, whatever response class the session uses, WebSocket
   handshakes included. :func:`uninstall` puts the original method back.
2. :func:`response_class`: for code that must not patch aiohttp, a
   ``ClientResponse`` subclass to pass as ``ClientSession(response_class=...)``.
   Its ``close()`` clears the exception stored on its connection's protocol, then
   closes as usual; aiohttp closes the response on precisely the failure that
   makes the cycle. It only helps the sessions created with it.

Both do nothing where the installed aiohttp already has the fix: :func:`install`
returns False without touching aiohttp, and :func:`response_class` returns plain
``aiohttp.ClientResponse``.

Which releases "lack the fix" is decided by ``aiohttp.__version__``: releases
before 3.11.14, including pre-releases and development builds of 3.11.14 itself
(PEP 440 orders them before it). The release segment is parsed here, without the
``packaging`` dependency (:mod:`cyclescope._versions`). A version, rather than a probe of ``close()``'s
behaviour, because it is exact for every published release and needs no event
loop or protocol object; the only misjudged releases are aiohttp's 2019
pre-releases 4.0.0a0 and 4.0.0a1, which are treated as fixed. A version that
cannot be parsed is treated as fixed too: this module only ever patches releases
it knows. Patching a fixed release would be harmless anyway (the patch does what
the fix does), but it is never done.

Importing this module does not import aiohttp. When aiohttp is not installed,
:func:`install` and :func:`response_class` (and the lazily built
:class:`CycleBreakingClientResponse`) raise :class:`ModuleNotFoundError` (an
:class:`ImportError`) saying so; :func:`needs_fix` with an explicit version and
:func:`uninstall` work without aiohttp.

Other cycles seen with dropped connections are *not* this bug and neither fix
touches them: after the WebSocket handshake, ``ClientWebSocketResponse`` keeps the
error of its failed close in ``_exception`` (its traceback holds ``close()``'s
frame); a body cut short leaves the ``ClientPayloadError`` in the
``StreamReader``'s ``_exception`` with the frame of ``readexactly()``.
"""

from __future__ import annotations

import functools
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable

from cyclescope._versions import is_before

if TYPE_CHECKING:
    # aiohttp is optional: without it, mypy takes ClientResponse as Any.
    from aiohttp import ClientResponse  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "FIXED_IN",
    "CycleBreakingClientResponse",
    "install",
    "installed",
    "needs_fix",
    "response_class",
    "uninstall",
]

#: The first aiohttp release whose ``ResponseHandler.close()`` clears ``_exception``.
FIXED_IN: tuple[int, int, int] = (3, 11, 14)

# Set on the replacement close() so that it is recognised even across a reload of
# this module; holds the method it replaced.
_ORIGINAL_ATTR = "__cyclescope_original__"
# Also set on it: whether ResponseHandler only inherited close() before the patch.
_INHERITED_ATTR = "__cyclescope_inherited__"

_lock = threading.Lock()
_response_class: type[ClientResponse] | None = None

def needs_fix(version: str | None = None) -> bool:
    """Whether aiohttp *version* (default: the installed one) lacks the upstream fix.

    True for releases before :data:`FIXED_IN` (3.11.14), pre-releases and
    development builds of 3.11.14 included; False for later ones and for a version
    that cannot be parsed. Without *version*, imports aiohttp (ModuleNotFoundError
    when it is not installed).
    """
    if version is None:
        version = _aiohttp().__version__
    return bool(is_before(version, ".".join(map(str, FIXED_IN))))


def _aiohttp() -> Any:
    """Import aiohttp, or explain that it is missing."""
    if "aiohttp" not in sys.modules:
        import importlib.util

        # Asked first rather than caught: catching the ImportError would bind it in
        # this frame, which its own traceback holds (a cycle, in a cycle tool).
        if importlib.util.find_spec("aiohttp") is None:
            raise ModuleNotFoundError(
                "cyclescope.contrib.aiohttp needs aiohttp, which is not installed in this environment",
                name="aiohttp",
            )
    import aiohttp

    return aiohttp


def _response_handler() -> Any:
    """aiohttp's client protocol class (imports aiohttp)."""
    _aiohttp()
    import importlib

    return importlib.import_module("aiohttp.client_proto").ResponseHandler


def _make_close(original: Callable[[Any], None], *, inherited: bool) -> Callable[[Any], None]:
    """The replacement ``ResponseHandler.close``: clear ``_exception``, then run *original*."""

    @functools.wraps(original)
    def close(self: Any) -> None:
        self._exception = None  # forget the stored error: its traceback holds the response
        original(self)

    setattr(close, _ORIGINAL_ATTR, original)
    setattr(close, _INHERITED_ATTR, inherited)
    return close


def installed() -> bool:
    """Whether ``ResponseHandler.close`` is currently patched by :func:`install`.

    False, without importing it, when aiohttp has not been imported.
    """
    handler = _imported_response_handler()
    return handler is not None and hasattr(handler.__dict__.get("close"), _ORIGINAL_ATTR)


def _imported_response_handler() -> Any:
    """aiohttp's client protocol class if aiohttp.client_proto is imported already, else None."""
    return getattr(sys.modules.get("aiohttp.client_proto"), "ResponseHandler", None)


def install() -> bool:
    """Patch ``ResponseHandler.close`` to clear the stored exception, where aiohttp needs it.

    Returns True when the patch is in place after the call (this aiohttp lacks the
    fix; a repeated call changes nothing and returns True again), False when the
    installed aiohttp has the upstream fix and was left untouched. Raises
    ModuleNotFoundError when aiohttp is not installed.
    """
    if not needs_fix():  # imports aiohttp
        return False
    handler = _response_handler()
    with _lock:
        own = handler.__dict__.get("close")
        if not hasattr(own, _ORIGINAL_ATTR):
            handler.close = _make_close(own if own is not None else handler.close, inherited=own is None)
    return True


def uninstall() -> bool:
    """Undo :func:`install`: put the original ``ResponseHandler.close`` back.

    Returns True when a patch was removed, False when there was none (aiohttp not
    imported, never patched, or already restored). When something else has since
    replaced ``close`` on top of the patch, that replacement is left alone and
    False is returned.
    """
    handler = _imported_response_handler()
    if handler is None:
        return False
    with _lock:
        current = handler.__dict__.get("close")
        original = getattr(current, _ORIGINAL_ATTR, None)
        if original is None:
            return False
        if getattr(current, _INHERITED_ATTR, False):
            del handler.close  # close() was inherited before install(): inherit it again
        else:
            handler.close = original
    return True


def _build_response_class() -> type[ClientResponse]:
    base: type[ClientResponse] = _aiohttp().ClientResponse

    class CycleBreakingClientResponse(base):  # type: ignore[valid-type, misc, unused-ignore]
        """``aiohttp.ClientResponse`` whose ``close()`` first clears its protocol's stored exception."""

        def close(self) -> None:
            """Clear ``_exception`` on the connection's protocol, then close as usual."""
            connection = self._connection
            protocol = connection.protocol if connection is not None else None
            if protocol is not None:
                protocol._exception = None
            super().close()

    CycleBreakingClientResponse.__module__ = __name__
    CycleBreakingClientResponse.__qualname__ = "CycleBreakingClientResponse"
    return CycleBreakingClientResponse


def _cycle_breaking_class() -> type[ClientResponse]:
    global _response_class
    with _lock:
        if _response_class is None:
            _response_class = _build_response_class()
        return _response_class


def response_class() -> type[ClientResponse]:
    """The class to pass as ``ClientSession(response_class=...)``.

    :class:`CycleBreakingClientResponse` where the installed aiohttp lacks the fix,
    plain ``aiohttp.ClientResponse`` elsewhere. Raises ModuleNotFoundError when
    aiohttp is not installed.
    """
    aiohttp = _aiohttp()
    if not needs_fix():
        plain: type[ClientResponse] = aiohttp.ClientResponse
        return plain
    return _cycle_breaking_class()


if TYPE_CHECKING:
    #: ``aiohttp.ClientResponse`` subclass whose ``close()`` clears the exception
    #: stored on its connection's protocol; built (and aiohttp imported) on first use.
    CycleBreakingClientResponse: type[ClientResponse]


def __getattr__(name: str) -> Any:
    # CycleBreakingClientResponse subclasses aiohttp's class: build it on first access only.
    if name == "CycleBreakingClientResponse":
        return _cycle_breaking_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
