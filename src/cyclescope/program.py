"""Running a script or module as ``__main__``, the way ``python`` would.

The program gets its own ``sys.argv`` and ``sys.path[0]``, runs under the name
``__main__`` (so ``if __name__ == "__main__"`` blocks and ``asyncio.run`` work),
and its exit status follows Python's rules: ``sys.exit(n)``, 1 on an uncaught
exception (whose traceback is printed as Python prints it), 130 on Ctrl-C.
Everything the program changed in ``sys.argv`` and ``sys.path`` is put back.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import io
import os
import runpy
import sys
import traceback
import types
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from cyclescope.errors import CommandError

__all__ = ["Program", "run_as_main", "resolve_program"]

#: Exit status when the script or module cannot be found (as ``python`` uses).
NOT_FOUND = 2


@dataclass(frozen=True)
class Program:
    """What to run: a script path or a module name, with its arguments."""

    target: str
    args: tuple[str, ...]
    is_module: bool = False

    @property
    def display(self) -> str:
        """How the program is named in messages."""
        return f"-m {self.target}" if self.is_module else self.target


def resolve_program(target: str, args: Sequence[str], is_module: bool) -> Program:
    """Check that the program exists; raise a one-line :class:`CommandError` if not.

    For ``-m a.b`` only the top-level package ``a`` is looked up here, without
    importing anything: like ``python -m``, the package is imported when the
    program runs (under the capture, with the program's ``sys.argv``).
    """
    if is_module:
        top = target.split(".", 1)[0]
        if not top or not all(part.isidentifier() for part in target.split(".")):
            raise CommandError(f"no module named {target!r}", NOT_FOUND)
        with _cwd_first_on_path():
            try:
                spec = importlib.util.find_spec(top)
            except Exception as exc:  # a broken finder or package __init__: say so in one line
                raise CommandError(f"cannot look up module {top!r}: {type(exc).__name__}: {exc}", NOT_FOUND) from None
        if spec is None:
            raise CommandError(f"no module named {top!r}", NOT_FOUND)
    elif not os.path.exists(target):
        raise CommandError(f"can't open file {target!r}: no such file or directory", NOT_FOUND)
    elif os.path.isdir(target) and not os.path.exists(os.path.join(target, "__main__.py")):
        raise CommandError(f"can't find '__main__.py' in {target!r}", NOT_FOUND)
    return Program(target, tuple(args), is_module)


@contextlib.contextmanager
def _cwd_first_on_path() -> Iterator[None]:
    """``python -m`` looks in the current directory first; so does cyclescope's lookup."""
    saved = sys.path[:]
    sys.path.insert(0, os.getcwd())
    try:
        yield
    finally:
        sys.path[:] = saved


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _print_program_traceback(exc: BaseException) -> None:
    # Drop the frames of cyclescope and runpy above the program, as python shows it.
    tb = exc.__traceback__
    while tb is not None and _is_launcher_frame(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)


def _is_launcher_frame(filename: str) -> bool:
    here = os.path.dirname(os.path.abspath(__file__))
    return filename.startswith(here + os.sep) or os.path.basename(filename) == "runpy.py" or filename.startswith("<frozen runpy")


def _load_code(program: Program) -> tuple[types.CodeType, dict[str, object]]:
    """The program's code object and the dunder names its ``__main__`` module gets.

    Runs with the program's ``sys.argv`` and ``sys.path`` in place: for ``-m a.b``
    this imports the package ``a``, as ``python -m`` does.
    """
    if program.is_module:
        name = program.target
        try:
            spec = importlib.util.find_spec(name)
            if spec is not None and spec.submodule_search_locations is not None:
                name = f"{name}.__main__"  # python -m package runs package.__main__
                spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            spec = None
        if spec is None or spec.loader is None or not hasattr(spec.loader, "get_code"):
            raise CommandError(f"no module named {name!r}", NOT_FOUND)
        code = spec.loader.get_code(name)
        if code is None:
            raise CommandError(f"no code to run for module {name!r}", NOT_FOUND)
        return code, {"__file__": spec.origin, "__spec__": spec, "__loader__": spec.loader,
                      "__package__": name.rpartition(".")[0], "__cached__": spec.cached}
    path = os.path.abspath(program.target)  # as python does for the main script
    with io.open_code(path) as fh:
        source = fh.read()
    code = compile(source, path, "exec", dont_inherit=True)
    return code, {"__file__": path, "__spec__": None, "__loader__": None, "__package__": None, "__cached__": None}


@contextlib.contextmanager
def _as_main(program: Program, module: types.ModuleType) -> Iterator[types.ModuleType]:
    """Install ``module`` as ``__main__`` with the program's argv and sys.path[0]; put everything back after."""
    module.__dict__["__builtins__"] = builtins
    saved_main = sys.modules.get("__main__")
    saved_argv, saved_path = sys.argv, sys.path[:]
    if program.is_module:
        sys.argv = ["-m", *program.args]  # python shows '-m' until the module is found
        sys.path.insert(0, os.getcwd())
    else:
        sys.argv = [program.target, *program.args]
        script_dir = os.path.dirname(os.path.abspath(program.target))
        if sys.path:
            sys.path[0] = script_dir
        else:
            sys.path.append(script_dir)
    sys.modules["__main__"] = module
    try:
        yield module
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
        if saved_main is not None:
            sys.modules["__main__"] = saved_main


def run_as_main(program: Program, keep_alive: list[object]) -> int:
    """Run ``program`` as ``__main__`` and return its exit status.

    The program's ``__main__`` module is appended to ``keep_alive``: as under
    ``python``, its globals must outlive the run, or the end of the run would
    turn the whole module namespace into cyclic garbage. A script that does not
    compile fails as under ``python``: its ``SyntaxError`` printed, status 1.
    """
    if not program.is_module and (os.path.isdir(program.target) or not program.target.endswith((".py", ".pyw"))):
        return _run_with_runpy(program, keep_alive)
    module = types.ModuleType("__main__")
    keep_alive.append(module)
    with _as_main(program, module):

        def call() -> None:
            code, dunders = _load_code(program)
            module.__dict__.update(dunders)
            if program.is_module:
                sys.argv[0] = str(dunders["__file__"])
            exec(code, module.__dict__)

        return _exit_status_of(call)


def _run_with_runpy(program: Program, keep_alive: list[object]) -> int:
    # Directories and zip files with a __main__.py: runpy knows how to find it.
    def call() -> None:
        keep_alive.append(runpy.run_path(program.target, run_name="__main__"))

    with _as_main(program, types.ModuleType("__main__")):
        return _exit_status_of(call)


def _exit_status_of(call: Callable[[], object]) -> int:
    try:
        call()
        return 0
    except CommandError:
        raise
    except SystemExit as exc:
        return _exit_status(exc.code)
    except KeyboardInterrupt as exc:
        _print_program_traceback(exc)
        return 130
    except BaseException as exc:  # noqa: BLE001 - the program's own crash, reported like python
        _print_program_traceback(exc)
        return 1
    finally:
        sys.stdout.flush()
