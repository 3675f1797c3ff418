"""Show a saved JSON report again, with each group's pattern, fix and known issue.

``cyclescope run --json FILE`` saves a report; ``cyclescope explain FILE`` renders
it as text on standard output. Advice that a report lacks (one written before
cyclescope classified cycles, or by a tool that only fills the cycle) is
derived from its steps; owners and lines to change need the live program and
stay as recorded.
"""

from __future__ import annotations

import argparse
import json
import sys

from cyclescope.errors import CommandError


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``cyclescope explain``."""
    from cyclescope.commands.run import positive_int

    parser.add_argument("report", metavar="REPORT", help="a JSON report written by `cyclescope run --json` ('-' for stdin)")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="show at most N groups")
    parser.add_argument("--json", metavar="FILE", help="also write the report, advice filled in, as JSON ('-' for stdout)")


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise CommandError(f"no such report: {path!r}") from None
    except IsADirectoryError:
        raise CommandError(f"{path!r} is a directory, not a report") from None
    except (OSError, UnicodeError) as exc:
        raise CommandError(f"cannot read {path!r}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    """Read the report, fill missing advice, print it; return the exit status."""
    from cyclescope.commands.run import use_color, write_json
    from cyclescope.explain.fixes import classify_saved
    from cyclescope.report.model import Report, ReportFormatError
    from cyclescope.report.text import render_text

    text = _read(args.report)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{args.report!r} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    try:
        report = Report.from_dict(data)
    except ReportFormatError as exc:
        raise CommandError(f"{args.report!r}: {exc}") from None
    for group in report.groups:
        classify_saved(group)
    if args.json == "-":
        write_json(report, "-")
        sys.stderr.write(render_text(report, color=use_color(sys.stderr), limit=args.limit))
        return 0
    sys.stdout.write(render_text(report, color=use_color(sys.stdout), limit=args.limit))
    sys.stdout.flush()
    if args.json:
        write_json(report, args.json)
    return 0
