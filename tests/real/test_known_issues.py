"""Every known-issue database entry with a scenario, reproduced on real library releases.

For each entry of ``cyclescope/data/known_issues.json`` that has a ``scenario`` block,
its scenario module runs under ``python -m cyclescope run --json - FILE ARGS`` in a
cached venv holding the entry's ``affected_version`` and in one holding its
``fixed_version``. On the affected release some group's cycle must match the entry's
patterns (and the database must name this very entry for it, judged affected); on the
fixed release no group may match. So no entry can claim a cycle that was not reproduced.

Each (entry, version) runs once per session; a scenario run takes well under a second
once the venv exists.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from cyclescope.demo.scenarios import scenario_path
from cyclescope.demo.venvs import cyclescope_env, ensure_venv, run_in_venv
from cyclescope.explain.known import KnownIssueEntry, load_database, match_known_issue
from cyclescope.report.model import Step

pytestmark = pytest.mark.real

ENTRIES = [entry for entry in load_database() if entry.scenario is not None]
STEP_FIELDS = {f.name for f in dataclasses.fields(Step)}

Report = dict[str, Any]


def scenario_file(entry: KnownIssueEntry) -> Path:
    assert entry.scenario is not None
    return Path(scenario_path(entry.scenario["module"]))


@pytest.fixture(scope="session")
def known_issue_report() -> Callable[[KnownIssueEntry, str], Report]:
    """``(entry, version) -> JSON report`` of the entry's scenario on that release, run once per session."""
    done: dict[tuple[str, tuple[str, ...], str, str], Report] = {}

    def run(entry: KnownIssueEntry, version: str) -> Report:
        assert entry.scenario is not None
        args = tuple(entry.scenario.get("args", ()))
        key = (entry.scenario["module"], args, entry.distribution, version)
        if key not in done:
            python = ensure_venv([f"{entry.distribution}=={version}"])
            command = ["-m", "cyclescope", "run", "--json", "-", str(scenario_file(entry)), *args]
            proc = run_in_venv(python, command, env_extra=cyclescope_env(), timeout=300)
            assert proc.returncode == 0, f"{entry.id} on {entry.distribution} {version}:\n{proc.stderr[-4000:]}"
            report: Report = json.loads(proc.stdout)  # stdout is the JSON report alone
            assert report["python"] == ".".join(map(str, sys.version_info[:3]))
            done[key] = report
        return done[key]

    return run


def steps(group: dict[str, Any]) -> list[Step]:
    return [Step(**{k: v for k, v in step.items() if k in STEP_FIELDS}) for step in group["cycle"]]


def shapes(report: Report) -> str:
    """Every group's cycle as ``type edge -> ...``, for failure messages."""
    return "\n".join(" -> ".join(f"{s['type']} {s['edge']}" for s in g["cycle"]) for g in report["groups"])


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_cycle_present_on_affected_version(entry: KnownIssueEntry,
                                           known_issue_report: Callable[[KnownIssueEntry, str], Report]) -> None:
    assert entry.scenario is not None
    version = entry.scenario["affected_version"]
    report = known_issue_report(entry, version)
    matching = [g for g in report["groups"] if entry.matches(steps(g))]
    assert matching, f"{entry.id}: no group matches on {entry.distribution} {version}; groups:\n{shapes(report)}"
    for group in matching:  # and no earlier entry shadows this one
        known = match_known_issue(steps(group), lambda name: version if name == entry.distribution else None)
        assert known is not None and known.id == entry.id, (entry.id, known)
        assert known.affected is True, known.advice


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_cycle_absent_on_fixed_version(entry: KnownIssueEntry,
                                       known_issue_report: Callable[[KnownIssueEntry, str], Report]) -> None:
    assert entry.scenario is not None
    version = entry.scenario["fixed_version"]
    report = known_issue_report(entry, version)
    matching = [g for g in report["groups"] if entry.matches(steps(g))]
    assert not matching, f"{entry.id}: still matches on {entry.distribution} {version}:\n{shapes(report)}"
