"""The ``cyclescope`` command: ``main(argv) -> exit status``.

Subcommands live in :mod:`cyclescope.commands`, one module each. A
:class:`~cyclescope.errors.CommandError` is printed as one line with its exit
status; any other exception is a bug in cyclescope and shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from cyclescope.errors import CommandError

__all__ = ["main", "build_parser"]

_COMMANDS = {
    "run": "run a program and report the reference cycles it creates",
    "explain": "show a saved JSON report again, with the pattern and fix of each cycle",
    "demo": "show a reproduction of the aiohttp #10535 leak pattern, then its fix",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from cyclescope import __version__

    parser = argparse.ArgumentParser(
        prog="cyclescope",
        description="Find, explain and group the reference cycles a Python program creates.",
    )
    parser.add_argument("--version", action="version", version=f"cyclescope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, help_text in _COMMANDS.items():
        module = importlib.import_module(f"cyclescope.commands.{name}")
        # No abbreviations: split_argv must tell cyclescope's options from the program's.
        command_parser = sub.add_parser(
            name, help=help_text, description=module.__doc__.split("\n\n")[0], allow_abbrev=False
        )
        module.prepare_parser(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    program_args: list[str] = []
    if argv and argv[0] == "run":
        from cyclescope.commands.run import split_argv

        own, program_args = split_argv(argv[1:])
        argv = ["run", *own]
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors: argparse has printed them
        return exc.code if isinstance(exc.code, int) else 2
    if argv[0] == "run":
        args.args = program_args
    try:
        return int(args._run(args))
    except CommandError as exc:
        print(f"cyclescope: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # The reader went away (cyclescope demo | head): stop quietly, as cat would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
