"""Where to change it: the source lines that assign an attribute of a type.

The source of each class on the type's MRO is parsed with :mod:`ast`; nothing is
imported, executed or looked up through a metaclass. A class is found in the
file of its module (``__file__`` read from the module's dict), else in the files
its functions' code objects name, by its ``__qualname__``. Inside the class body
(its methods and their nested functions, not its nested classes) these count as
assignments of ``attr``:

* ``<first param>.attr = ...`` in any target position (plain, annotated with a
  value, augmented, unpacked, ``for``/``with`` targets);
* ``setattr(<first param>, "attr", ...)``, ``X.__setattr__(<first param>,
  "attr", ...)`` and ``super().__setattr__("attr", ...)``;
* ``<first param>.__dict__["attr"] = ...``;
* ``attr = ...`` in the class body itself, and ``attr: T`` there when ``attr``
  is a field of a dataclass (its ``__init__`` is generated and has no source).

Private names are compared in their mangled form (``self.__x`` in class ``Foo``
stores ``_Foo__x``). Files that are missing, too large, undecodable or no longer
parse give no result; nothing here raises. Lines are returned with their secrets
redacted (:func:`cyclescope.describe.redact_code`).
"""

from __future__ import annotations

import ast
import sys
import types
from dataclasses import dataclass
from typing import Iterator, Sequence

from cyclescope._safe import is_a, module_namespace, type_mro, type_namespace
from cyclescope.describe import redact_code, type_module
from cyclescope.sourcelines import BoundedCache, file_key, read_source

__all__ = ["SourceLocation", "attribute_assignments"]

_TYPE_QUALNAME = type.__dict__["__qualname__"].__get__
_MAX_CACHED_FILES = 64
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_NEW_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
               ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass(frozen=True)
class SourceLocation:
    """One source line assigning an attribute, and the function (or class) it is in."""

    path: str
    lineno: int
    text: str
    qualname: str
    module: str = ""  # the module defining the class the line is in

    @property
    def location(self) -> str:
        """``path:lineno`` with the full file name."""
        return f"{self.path}:{self.lineno}"


def attribute_assignments(tp: type, attr: str, *, limit: int = 5) -> list[SourceLocation]:
    """Up to ``limit`` source lines assigning ``attr`` on instances of ``tp`` or on ``tp``.

    Classes are taken in MRO order, lines in file order within a class. Built-in
    classes and classes whose source cannot be found or parsed contribute nothing.
    """
    found: list[SourceLocation] = []
    if limit <= 0 or type(attr) is not str or not is_a(tp, type):
        return found
    seen: set[tuple[str, int]] = set()
    try:
        mro = type_mro(tp)
    except Exception:
        return found
    for klass in mro:
        try:
            here = _class_assignments(klass, attr)
        except Exception:
            continue
        for location in here:
            key = (location.path, location.lineno)
            if key in seen:
                continue
            seen.add(key)
            found.append(location)
            if len(found) >= limit:
                return found
    return found


# -- finding the class --------------------------------------------------------------------


def _class_assignments(klass: type, attr: str) -> list[SourceLocation]:
    module_name = type_module(klass)
    if not module_name or module_name == "builtins":
        return []
    qualname = _TYPE_QUALNAME(klass)
    code_lines = _code_lines(klass)
    for path in _candidate_files(module_name, code_lines):
        parsed = _parse(path)
        if parsed is None:
            continue
        tree, lines = parsed
        here = code_lines.get(path, ())
        classdef = _find_classdef(tree, qualname, here, anywhere=bool(here) or "<locals>" in qualname)
        if classdef is None:
            continue
        fields = type_namespace(klass).get("__dataclass_fields__")
        is_field = type(fields) is dict and attr in fields
        hits = sorted(set(_assignments_in_class(classdef, attr, qualname, declarations=is_field)))
        return [SourceLocation(path, lineno, _line(lines, lineno), where, module_name) for lineno, where in hits]
    return []


def _candidate_files(module_name: str, code_lines: dict[str, list[int]]) -> list[str]:
    files: list[str] = []
    module = sys.modules.get(module_name)
    if module is not None and is_a(module, types.ModuleType):
        filename = module_namespace(module).get("__file__")
        if type(filename) is str and filename.endswith(".py"):
            files.append(filename)
    files.extend(f for f in code_lines if f not in files)
    return files


def _code_lines(klass: type) -> dict[str, list[int]]:
    """First lines of the functions defined in the class body, by file (C getters only)."""
    lines: dict[str, list[int]] = {}
    for value in list(type_namespace(klass).values()):
        kind = type(value)
        if kind is staticmethod or kind is classmethod:
            value = value.__func__
        elif kind is property:
            value = value.fget
        if type(value) is not types.FunctionType:
            continue
        code = value.__code__
        filename = code.co_filename
        if type(filename) is str and filename.endswith(".py"):
            lines.setdefault(filename, []).append(code.co_firstlineno)
    return lines


def _find_classdef(tree: ast.Module, qualname: str, code_lines: Sequence[int], *,
                   anywhere: bool) -> ast.ClassDef | None:
    """The one class statement ``qualname`` names, or None when there is none or no unique one.

    ``anywhere``: fall back to any class statement with the qualname's last name
    (classes made in functions, and files the class's own code comes from).
    """
    candidates = _by_qualname(tree, qualname)
    if not candidates and anywhere:
        last = qualname.rsplit(".", 1)[-1]
        candidates = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == last]
    if len(candidates) > 1 and code_lines:
        containing = [c for c in candidates if any(_spans(c, line) for line in code_lines)]
        if containing:
            candidates = containing
    return candidates[0] if len(candidates) == 1 else None


def _spans(node: ast.ClassDef, line: int) -> bool:
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return first <= line <= (node.end_lineno or node.lineno)


def _by_qualname(tree: ast.Module, qualname: str) -> list[ast.ClassDef]:
    parts = qualname.split(".")
    scopes: list[ast.AST] = [tree]
    i = 0
    while i < len(parts):
        name = parts[i]
        local = i + 1 < len(parts) and parts[i + 1] == "<locals>"
        wanted = _FUNCTIONS if local else ast.ClassDef
        scopes = [d for s in scopes for d in _same_scope(s) if isinstance(d, wanted) and d.name == name]
        if not scopes:
            return []
        i += 2 if local else 1
    return [s for s in scopes if isinstance(s, ast.ClassDef)]


def _same_scope(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes in ``node``'s scope: nested scopes are yielded but not entered."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, _NEW_SCOPES):
            yield from _same_scope(child)


# -- finding the assignments --------------------------------------------------------------


def _mangle(class_name: str, name: str) -> str:
    if not name.startswith("__") or name.endswith("__") or "." in name:
        return name
    stripped = class_name.lstrip("_")
    return f"_{stripped}{name}" if stripped else name


def _assignments_in_class(classdef: ast.ClassDef, attr: str, qualname: str, *,
                          declarations: bool) -> Iterator[tuple[int, str]]:
    """``declarations``: bare annotations count too (the fields of a dataclass)."""
    declared_only: set[int] = set()
    for node in _same_scope(classdef):
        if isinstance(node, ast.AnnAssign) and node.value is None and not declarations:
            declared_only.add(id(node.target))
        elif isinstance(node, _FUNCTIONS):
            receiver = _receiver(node)
            if receiver is not None:
                where = f"{qualname}.{node.name}"
                yield from _assignments_in_method(node, receiver, classdef.name, attr, where)
        elif (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
              and id(node) not in declared_only and _mangle(classdef.name, node.id) == attr):
            yield node.lineno, qualname


def _receiver(func: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    for decorator in func.decorator_list:
        name = decorator.id if isinstance(decorator, ast.Name) else getattr(decorator, "attr", None)
        if name == "staticmethod":
            return None
    positional = func.args.posonlyargs + func.args.args
    return positional[0].arg if positional else None


def _parameters(args: ast.arguments) -> set[str]:
    names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    names.update(a.arg for a in (args.vararg, args.kwarg) if a is not None)
    return names


def _assignments_in_method(func: ast.FunctionDef | ast.AsyncFunctionDef, receiver: str,
                           class_name: str, attr: str, where: str) -> Iterator[tuple[int, str]]:
    declared_only: set[int] = set()
    pending: list[tuple[ast.AST, str]] = [(stmt, where) for stmt in func.body]
    while pending:
        node, qualname = pending.pop()
        if isinstance(node, ast.ClassDef):
            continue
        if isinstance(node, (*_FUNCTIONS, ast.Lambda)):
            if receiver in _parameters(node.args):
                continue
            name = node.name if isinstance(node, _FUNCTIONS) else "<lambda>"
            inner = f"{qualname}.<locals>.{name}"
            body = node.body if isinstance(node, _FUNCTIONS) else [node.body]
            pending.extend((child, inner) for child in body)
            continue
        if isinstance(node, ast.AnnAssign) and node.value is None:
            declared_only.add(id(node.target))
        elif _assigns(node, receiver, class_name, attr) and id(node) not in declared_only:
            yield node.lineno, qualname  # type: ignore[attr-defined]
        if isinstance(node, _COMPREHENSIONS) and any(
            receiver in _bound_names(gen.target) for gen in node.generators
        ):
            continue
        pending.extend((child, qualname) for child in ast.iter_child_nodes(node))


def _bound_names(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def _is_receiver(node: ast.AST, receiver: str) -> bool:
    return isinstance(node, ast.Name) and node.id == receiver


def _is_literal(node: ast.AST, attr: str) -> bool:
    return isinstance(node, ast.Constant) and node.value == attr and type(node.value) is str


def _assigns(node: ast.AST, receiver: str, class_name: str, attr: str) -> bool:
    if isinstance(node, ast.Attribute):
        return (isinstance(node.ctx, ast.Store) and _is_receiver(node.value, receiver)
                and _mangle(class_name, node.attr) == attr)
    if isinstance(node, ast.Subscript):
        owner = node.value
        return (isinstance(node.ctx, ast.Store) and isinstance(owner, ast.Attribute)
                and owner.attr == "__dict__" and _is_receiver(owner.value, receiver)
                and _is_literal(node.slice, attr))
    if not isinstance(node, ast.Call):
        return False
    func, args = node.func, node.args
    if isinstance(func, ast.Name) and func.id == "setattr":
        return len(args) >= 2 and _is_receiver(args[0], receiver) and _is_literal(args[1], attr)
    if not (isinstance(func, ast.Attribute) and func.attr == "__setattr__"):
        return False
    through_super = (isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name)
                     and func.value.func.id == "super")
    if through_super or _is_receiver(func.value, receiver):
        return len(args) >= 1 and _is_literal(args[0], attr)
    return len(args) >= 2 and _is_receiver(args[0], receiver) and _is_literal(args[1], attr)


# -- reading files ------------------------------------------------------------------------

_cache: BoundedCache[tuple[ast.Module, list[str]] | None] = BoundedCache(_MAX_CACHED_FILES)


def _parse(path: str) -> tuple[ast.Module, list[str]] | None:
    """The parsed tree and lines of a source file, cached by (path, mtime, size)."""
    key = file_key(path)
    if key is None:
        return None
    return _cache.get(key, lambda: _read_and_parse(path))


def _read_and_parse(path: str) -> tuple[ast.Module, list[str]] | None:
    source = read_source(path)
    if source is None:
        return None
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return tree, source.splitlines()


def _line(lines: list[str], lineno: int) -> str:
    return redact_code(lines[lineno - 1].strip()) if 0 < lineno <= len(lines) else ""
