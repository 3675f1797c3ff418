"""Show the aiohttp #10535 leak pattern, then its fix.

Runs a self-contained reproduction with the standard library alone (an asyncio
server drops the connection while a client reads; the client's protocol keeps
the exception whose traceback holds the response), prints the report, then runs
the fixed variant and shows that no cycle is left. With ``--aiohttp VERSION``
(repeatable) it also runs the real seed scenario on real aiohttp releases, each in
a cached virtual environment built from the package registry, side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from cyclescope.errors import CommandError


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``cyclescope demo``."""
    parser.add_argument(
        "--aiohttp",
        action="append",
        default=[],
        metavar="VERSION",
        help="also run the real aiohttp #10535 scenario on this aiohttp release (repeatable), "
        "e.g. --aiohttp 3.11.13 --aiohttp 3.11.15",
    )
    parser.add_argument("--rounds", type=int, default=1, metavar="N", help="occurrences per run (default 1)")


def _stdlib_demo(rounds: int, color: bool) -> int:
    from cyclescope.capturing import capture
    from cyclescope.demo.streams import scenario
    from cyclescope.report.text import render_text

    results = {}
    for fixed in (False, True):
        title = "fixed: the protocol clears _exception on close" if fixed else "leaky: the protocol keeps _exception"
        print(f"== standard-library demo, {title} ==")
        with capture() as cap:
            for _ in range(rounds):
                asyncio.run(scenario(fixed=fixed))
        report = cap.report()
        print(render_text(report, color=color))
        results[fixed] = len(report.groups)
    return results[False]


def _aiohttp_demo(versions: list[str], rounds: int) -> int:
    from cyclescope.demo.scenarios import scenario_path
    from cyclescope.demo.venvs import VenvError, cyclescope_env, ensure_venv, run_in_venv

    script = scenario_path("aiohttp_10535")
    verdicts = []
    for version in versions:
        try:
            python = ensure_venv([f"aiohttp=={version}"])
        except VenvError as exc:
            raise CommandError(str(exc)) from None
        print(f"== real aiohttp {version}: the #10535 scenario under cyclescope run ==", flush=True)
        proc = run_in_venv(
            python,
            ["-m", "cyclescope", "run", "--json", "-", "--type", "ClientResponse", script, "--rounds", str(rounds)],
            env_extra=cyclescope_env(),
        )
        print(proc.stderr)
        if proc.returncode != 0:
            raise CommandError(f"the scenario on aiohttp {version} failed with exit status {proc.returncode} (output above)")
        verdicts.append((version, _client_response_groups(proc.stdout)))
    print("== side by side ==")
    for version, groups in verdicts:
        verdict = f"{groups} ClientResponse cycle group(s)" if groups else "no ClientResponse cycle"
        print(f"  aiohttp {version:<10} {verdict}")
    return 0


def _client_response_groups(json_text: str) -> int:
    try:
        report = json.loads(json_text)
    except ValueError:
        raise CommandError("the scenario run did not produce a JSON report (see its output above)") from None
    return sum(1 for g in report.get("groups", []) if g["cycle"][0]["type"] == "aiohttp.client_reqrep.ClientResponse")


def run(args: argparse.Namespace) -> int:
    """Run the demo; exit status 0 when it showed what it should."""
    from cyclescope.commands.run import use_color

    leaky_groups = _stdlib_demo(max(1, args.rounds), use_color(sys.stdout))
    if leaky_groups == 0:
        print("cyclescope: the leaky demo produced no cycle: this is a bug", file=sys.stderr)
        return 1
    if args.aiohttp:
        return _aiohttp_demo(args.aiohttp, max(1, args.rounds))
    return 0
