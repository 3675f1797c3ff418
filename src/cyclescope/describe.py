"""Safe short descriptions of objects: type names, code locations, keys, redaction.

Nothing here runs user code. Type and function names are read through the C
getters of ``type`` and code objects (a metaclass cannot intercept them); source
lines are read by file name only (:mod:`cyclescope.sourcelines`, which leaves
``linecache`` as it was) and shown with their secrets redacted; values are shown
only when they are plain built-in scalars, bounded in length, with secrets redacted.
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
import types
from dataclasses import dataclass
from typing import Callable, Iterable

from cyclescope._safe import is_a
from cyclescope.sourcelines import getline

__all__ = [
    "type_name",
    "short_type_name",
    "type_names",
    "named_type",
    "step_type_names",
    "matches_any",
    "type_module",
    "CodeSite",
    "code_site",
    "short_path",
    "format_key",
    "redact",
    "redact_code",
    "source_line",
]

_TYPE_QUALNAME = type.__dict__["__qualname__"]
_TYPE_MODULE = type.__dict__["__module__"]
_MAX_SHOWN = 60


def type_module(tp: type) -> str:
    """The module a type was defined in, or '' when it does not say."""
    try:
        module = _TYPE_MODULE.__get__(tp)
    except Exception:
        return ""
    return module if type(module) is str else ""  # (a str subclass formats and compares by its own code)


def _qualname(tp: type) -> str:
    try:
        qualname = _TYPE_QUALNAME.__get__(tp)
    except Exception:
        return "?"
    return qualname if type(qualname) is str else "?"


def _qualified(qualname: str, module: str) -> str:
    return qualname if not module or module == "builtins" else f"{module}.{qualname}"


def type_name(tp: type) -> str:
    """Qualified name of a type: ``module.QualName``, bare for builtins."""
    return _qualified(_qualname(tp), type_module(tp))


def short_type_name(tp: type) -> str:
    """The bare qualified name of a type, without its module."""
    return _qualname(tp)


def type_names(tp: type) -> set[str]:
    """The names a type answers to in a filter: qualified, bare qualified, and ``__name__``."""
    return named_type(tp)[1]


def named_type(tp: type) -> tuple[str, set[str]]:
    """``(type_name(tp), type_names(tp))``, each getter read once (a heap has hundreds of types)."""
    try:
        name = type.__dict__["__name__"].__get__(tp)
    except Exception:
        name = "?"
    if type(name) is not str:  # (a str subclass hashes by its own code)
        name = "?"
    qualname = _qualname(tp)
    qualified = _qualified(qualname, type_module(tp))
    return qualified, {qualified, qualname, name}


def step_type_names(qualified: str, module: str | None) -> set[str]:
    """The same names for a type known only as a report shows it (qualified name and module)."""
    bare = qualified[len(module) + 1 :] if module and qualified.startswith(module + ".") else qualified
    return {qualified, bare, bare.rsplit(".", 1)[-1]}


def matches_any(names: Iterable[str], patterns: Iterable[str]) -> bool:
    """Whether one of ``names`` matches one of the shell ``patterns`` (case-sensitive)."""
    patterns = tuple(patterns)
    return any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in patterns)


@dataclass(frozen=True)
class CodeSite:
    """Where a frame, traceback or function is: code name, file, line and its text."""

    function: str
    filename: str
    lineno: int
    source: str

    @property
    def location(self) -> str:
        """``file:line`` with the full file name."""
        return f"{self.filename}:{self.lineno}"


def _code_qualname(code: types.CodeType) -> str:
    return getattr(code, "co_qualname", code.co_name)


def code_site(obj: object) -> CodeSite | None:
    """The code site of a frame, traceback, function, method, generator or coroutine."""
    try:
        if is_a(obj, types.TracebackType):
            frame = obj.tb_frame
            return _site(frame.f_code, obj.tb_lineno)
        if is_a(obj, types.FrameType):
            return _site(obj.f_code, obj.f_lineno)
        if is_a(obj, types.MethodType):
            obj = obj.__func__
        if is_a(obj, types.FunctionType):
            code = obj.__code__
            return _site(code, code.co_firstlineno)
        code = _generator_code(obj)
        if code is not None:
            return _site(code, code.co_firstlineno)
    except Exception:
        return None
    return None


def _generator_code(obj: object) -> types.CodeType | None:
    if is_a(obj, types.GeneratorType):
        return obj.gi_code
    if is_a(obj, types.CoroutineType):
        return obj.cr_code
    if is_a(obj, types.AsyncGeneratorType):
        return obj.ag_code
    return None


def _site(code: types.CodeType, lineno: int | None) -> CodeSite:
    line = lineno or code.co_firstlineno
    source = source_line(code.co_filename, line) if line else ""
    return CodeSite(_code_qualname(code), code.co_filename, line, source)


def short_path(filename: str) -> str:
    """A file name shortened for display: relative to site-packages, the stdlib or the cwd."""
    best = filename
    for base in _display_bases():
        if base and filename.startswith(base + os.sep):
            candidate = filename[len(base) + 1 :]
            if len(candidate) < len(best):
                best = candidate
    return best


def _display_bases() -> list[str]:
    bases = [p for p in sys.path if p and ("site-packages" in p or "dist-packages" in p)]
    bases.append(os.path.dirname(os.__file__))
    try:
        bases.append(os.getcwd())
    except OSError:
        pass
    return bases


# -- keys and values ------------------------------------------------------------------

_IDENTIFIER_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}\Z")
_VARYING = re.compile(r"\d{3,}|0x[0-9a-fA-F]+|[0-9a-fA-F]{8,}")


def _template(*parts: int | str) -> Callable[[re.Match[str]], str]:
    """A replacement made of group numbers and text, as ``r"\\1<redacted>"`` would be,
    but a function: a template string would fill ``re``'s own cache of parsed templates,
    which a heap snapshot then shows as the program's growth."""

    def replace(match: re.Match[str]) -> str:
        return "".join(match.group(part) if isinstance(part, int) else part for part in parts)

    return replace


_SECRET_SHAPES = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), _template(1, " <redacted>")),
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), _template(1, "<redacted>@")),
    (re.compile(r"(?i)([?&](?:access_token|token|key|api_key|apikey|password|secret|sig|signature)=)[^&\s]+"),
     _template(1, "<redacted>")),
    # A string literal given to a secret-named name: PASSWORD = "...", token="...", {"api_key": "..."}.
    (re.compile(r"""(?i)(\b[\w-]*(?:password|passwd|secret|token|api[_-]?key)[\w-]*['"]?\s*(?:[:=!]=|[:=])\s*"""
                r"""[rbu]{0,2}(['"]))(?:\\.|(?!\2)[^\\])+\2"""), _template(1, "<redacted>", 2)),
]
_LONG_TOKEN = re.compile(r"\b[A-Za-z0-9_\-]{32,}\b")
_NAME = re.compile(r"[A-Za-z_]+\Z")  # no digits: a long name with digits may be a token
# The string literals (unterminated ones to the end of the line) and the comment of a source line.
_TEXT_IN_CODE = re.compile(r"""'[^'\\]*(?:\\.[^'\\]*)*'?|"[^"\\]*(?:\\.[^"\\]*)*"?|#.*""")


# A word each secret shape above needs (lower case), and the start of a long token:
# an ASCII text with neither has nothing to redact, which is cheaper to find out than
# running every shape (most source lines and reprs are such texts). Non-ASCII text
# takes the full path: the shapes ignore case the Unicode way ("ſ" matches "s").
_SHAPE_WORDS = ("bearer", "basic", "://", "passw", "secret", "token", "key", "sig")
_TOKEN_START = re.compile(r"[A-Za-z0-9_\-]{32}")


def _may_hold_secret(text: str) -> bool:
    if not text.isascii():
        return True
    lowered = text.lower()
    return any(word in lowered for word in _SHAPE_WORDS) or _TOKEN_START.search(text) is not None


def _redact_shapes(text: str) -> str:
    for shape, replacement in _SECRET_SHAPES:
        text = shape.sub(replacement, text)
    return text


def redact(text: str) -> str:
    """``text`` with credentials, tokens and long secret-looking strings replaced."""
    if not _may_hold_secret(text):
        return text
    return _LONG_TOKEN.sub("<redacted>", _redact_shapes(text))


def redact_code(line: str) -> str:
    """A source line with its secrets replaced as by :func:`redact`, the rest kept.

    Long names in the code itself stay (``self._on_connection_lost_callbacks`` is no
    token); long token-like strings in its string literals and comments do not.
    """
    if not _may_hold_secret(line):
        return line
    line = _redact_shapes(line)
    texts = [m.span() for m in _TEXT_IN_CODE.finditer(line)]

    def replace(match: re.Match[str]) -> str:
        in_text = any(start <= match.start() < end for start, end in texts)
        return match.group() if not in_text and _NAME.match(match.group()) else "<redacted>"

    return _LONG_TOKEN.sub(replace, line)


def source_line(path: str, lineno: int) -> str:
    """Line ``lineno`` of ``path``, stripped and with its secrets redacted; "" when unreadable."""
    return redact_code(getline(path, lineno))


def _plain_repr(value: object) -> str | None:
    # Only exact built-in scalars: their repr is C code and cannot be overridden.
    tp = type(value)
    if tp is str:
        text = value if len(value) <= _MAX_SHOWN else value[: _MAX_SHOWN - 3] + "..."  # type: ignore[index]
        return repr(text)
    if tp in (int, float, bool, complex) or value is None:
        text = repr(value)
        return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."
    if tp is bytes:
        return repr(value[:_MAX_SHOWN])  # type: ignore[index]
    if tp is tuple and len(value) <= 4:  # type: ignore[arg-type]
        parts = [_plain_repr(v) for v in value]  # type: ignore[union-attr]
        if all(p is not None for p in parts):
            inner = ", ".join(parts)  # type: ignore[arg-type]
            return f"({inner},)" if len(parts) == 1 else f"({inner})"
    return None


def format_key(key: object) -> tuple[str, str]:
    """How a dict key is shown, and how it is folded into a signature.

    Shown: ``['name']``, ``[3]``, ``[<Foo>]`` for keys that are not plain
    scalars; secrets redacted. Folded: identifier-like string keys stay, every
    key that varies between occurrences (numbers, ids, addresses, ports,
    timestamps, non-string keys) becomes ``[key]``.
    """
    plain = _plain_repr(key)
    # A secret inside a key is replaced where it is: the rest (a URL's host and path)
    # still says which entry holds the object.
    if plain is None:
        shown = f"[<{short_type_name(type(key))}>]"
    elif type(key) is str:
        shown = f"[{redact(key)!r}]"  # (redacted before the quotes are added: a pattern may run to the end)
    else:
        shown = f"[{redact(plain)}]"
    if type(key) is str and _IDENTIFIER_LIKE.match(key) and not _VARYING.search(key):
        folded = shown
    else:
        folded = "[key]"
    return shown, folded
