"""Run a Python program and report the reference cycles it creates.

The program runs as ``__main__`` with its own arguments, as ``python`` would run
it; its output and exit status are kept unless a gate fails. The report goes to
standard error (``--json FILE`` writes the JSON report, ``-`` for standard output:
then the program's own standard output goes to standard error, so that standard
output holds the report alone).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import TYPE_CHECKING

from cyclescope.errors import CommandError

if TYPE_CHECKING:
    from cyclescope.capturing import Capture
    from cyclescope.report.model import GrowthEntry

#: Exit status when ``--fail-on-cycles`` finds a group.
GATE_FAILED = 1


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``cyclescope run``."""
    parser.usage = "%(prog)s [options] (SCRIPT | -m MODULE) [ARGS...]"
    parser.add_argument("-m", dest="module", metavar="MODULE", help="run a library module as a script, like python -m")
    parser.add_argument("--json", metavar="FILE", help="write the JSON report to FILE ('-' for standard output)")
    parser.add_argument(
        "--fail-on-cycles", action="store_true", help="exit with status 1 when any cycle group is reported (for CI)"
    )
    parser.add_argument(
        "--type",
        dest="types",
        action="append",
        default=[],
        metavar="PATTERN",
        help="only components holding an object of a matching type (qualified or bare class name, "
        "shell wildcards; repeatable), each shown by its shortest cycle through that type",
    )
    parser.add_argument("--include-noise", action="store_true", help="also show cycles the interpreter itself makes")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="show at most N groups in the text report")
    parser.add_argument(
        "--freeze",
        action="store_true",
        help="use gc.freeze() so the cost follows what the program creates (misses cycles through "
        "objects that existed before it started)",
    )
    parser.add_argument(
        "--watch",
        action="append",
        default=[],
        metavar="TYPE",
        help="at exit, explain every live object of a matching type (qualified or bare class name, shell "
        "wildcards; repeatable): the retention path that keeps it, or why nothing can free it",
    )
    parser.add_argument(
        "--growth",
        action="store_true",
        help="snapshot the heap before and after the program and report the new objects by type, with "
        "sample retention paths",
    )
    parser.add_argument("target", nargs="?", metavar="SCRIPT", help="the program to run")
    parser.add_argument("args", nargs="*", metavar="ARGS", help="arguments for the program (everything after SCRIPT)")


#: Options of ``run`` that take a value (so their value is not mistaken for the program).
_VALUE_OPTIONS = frozenset({"--json", "--type", "--limit", "--watch"})


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``run``'s arguments into cyclescope's own and the program's.

    As with ``python``, everything after ``SCRIPT`` or ``-m MODULE`` belongs to
    the program, options included (``cyclescope run -m pytest -x`` passes ``-x``
    to pytest).
    """
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "-m":
            return argv[: i + 2], argv[i + 2 :]
        if token.startswith("-m") and len(token) > 2 and not token.startswith("--"):
            return argv[: i + 1], argv[i + 1 :]
        if token == "--":
            return argv[: i + 2], argv[i + 2 :]
        if not token.startswith("-") or token == "-":
            return argv[: i + 1], argv[i + 1 :]
        if token in _VALUE_OPTIONS:
            i += 1
        i += 1
    return argv, []


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _program_from_args(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from cyclescope.program import resolve_program

    if args.module:
        return resolve_program(args.module, args.args, is_module=True)
    if not args.target:
        raise CommandError("nothing to run: give a SCRIPT or -m MODULE")
    return resolve_program(args.target, args.args, is_module=False)


def write_json(report, destination: str) -> None:  # type: ignore[no-untyped-def]
    """Write ``report`` as JSON to the file ``destination`` ('-': standard output)."""
    text = report.to_json() + "\n"
    if destination == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        with open(destination, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise CommandError(f"cannot write the JSON report to {destination!r}: {exc.strerror}") from None


def use_color(stream) -> bool:  # type: ignore[no-untyped-def]
    """Colour only on a terminal, and never when NO_COLOR is set."""
    return hasattr(stream, "isatty") and stream.isatty() and not os.environ.get("NO_COLOR")


def run(args: argparse.Namespace) -> int:
    """Run the program under a capture, print the report, return the exit status."""
    from cyclescope.capturing import capture
    from cyclescope.program import run_as_main
    from cyclescope.report.text import render_text

    program = _program_from_args(args)
    if args.json and args.json != "-":
        _check_writable(args.json)
    keep_alive: list[object] = []
    growth = _Growth(program.target, keep_alive) if args.growth else None
    cap = capture(types=args.types, include_noise=args.include_noise, freeze=args.freeze, progress=_progress,
                  on_flushed=growth.measure if growth is not None else None)
    # Entered and left by hand: a with statement keeps the bound __exit__ on this frame's
    # stack, where the growth snapshot, taken inside the exit, would see it as a new object
    # held from outside the heap.
    cap.__enter__()
    try:
        with _program_output_to_stderr() if args.json == "-" else contextlib.nullcontext():
            status = run_as_main(program, keep_alive)
    finally:
        exc_type, exc, tb = sys.exc_info()
        cap.__exit__(exc_type, exc, tb)  # (a *args call would make the bound method)
        del exc, tb
    report = cap.report()
    if growth is not None:
        report.growth = growth.entries
        if growth.error:
            report.errors.append(growth.error)
    # At exit, with the program's globals still alive (as at the end of python's run).
    if args.watch:
        after = _snapshot(_main_root(program.target, keep_alive))
        report.survivors = after.survivors(args.watch)
        report.unmatched_watch = after.unmatched(args.watch)
        del after
    del keep_alive  # the program's globals live as long as they would under python
    sys.stderr.write(render_text(report, color=use_color(sys.stderr), limit=args.limit))
    sys.stderr.flush()
    if args.json:
        write_json(report, args.json)
    if args.fail_on_cycles and (report.groups or report.errors):
        return GATE_FAILED  # an analysis that failed cannot vouch for a clean run
    return status


@contextlib.contextmanager
def _program_output_to_stderr():  # type: ignore[no-untyped-def]
    """The program's standard output goes to standard error meanwhile: with ``--json -``
    standard output is the report's. Its ``sys.stdout``, and where that is the process's
    own stream, file descriptor 1 too (what C code and child processes write)."""
    ours = sys.stdout
    saved_fd = None
    try:
        if ours is sys.__stdout__ and ours.fileno() == 1:
            ours.flush()
            saved_fd = os.dup(1)
            os.dup2(2, 1)
    except (OSError, ValueError, AttributeError):  # no real stream to redirect
        saved_fd = None
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()  # (the program's, whatever it set)
        sys.stdout = ours
        if saved_fd is not None:
            os.dup2(saved_fd, 1)
            os.close(saved_fd)


class _Growth:
    """The program's heap growth: the "before" snapshot is taken when this is made, the
    "after" one when the capture calls it back, after its last collection and before it
    builds its report. What the report loads and caches (the explain modules,
    importlib.metadata, their caches) is then in neither snapshot, so it is never
    charged to the program."""

    def __init__(self, target: str, keep_alive: list[object]) -> None:
        self._target = target
        self._keep_alive = keep_alive
        self._before = _snapshot()
        self.entries: list[GrowthEntry] = []
        self.error = ""  # why the growth could not be measured, for the report's errors

    def measure(self, cap: Capture) -> None:
        """The capture's on_flushed: take the "after" snapshot and the difference. (A bound
        method, called without an argument tuple the snapshot would count.)"""
        before, self._before = self._before, None
        try:
            # The capture still holds the program's cyclic garbage, for the report: no growth.
            # Nor is this callback (3.10 shows its bound method, on the caller's value stack
            # where no frame reader sees it, as held from outside).
            after = _snapshot(_main_root(self._target, self._keep_alive),
                              exclude=[cap, cap.store, cap.on_flushed])
            self.entries = after.diff(before).entries()
        except Exception as exc:  # noqa: BLE001 - the cycles found must still be reported
            self.error = f"measuring the heap's growth failed: {type(exc).__name__}: {exc}"


def _main_root(target: str, keep_alive: list[object]) -> dict[str, object]:
    # run_as_main keeps the program's module (not in sys.modules once it has run) here.
    return {f"module __main__ ({target})": module for module in keep_alive[:1]}


def _snapshot(roots: dict[str, object] | None = None, exclude: list[object] | None = None):  # type: ignore[no-untyped-def]
    from cyclescope.heap import snapshot

    return snapshot(roots=roots, progress=_progress, exclude=exclude or ())


def _progress(message: str) -> None:
    print(f"cyclescope: {message}", file=sys.stderr, flush=True)


def _check_writable(path: str) -> None:
    # Fail before running the program rather than lose its report afterwards.
    if os.path.isdir(path):
        raise CommandError(f"cannot write the JSON report to {path!r}: it is a directory")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CommandError(f"cannot write the JSON report to {path!r}: no such directory")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise CommandError(f"cannot write the JSON report to {path!r}: permission denied")
