"""The shipped known-issue database (cyclescope/data/known_issues.json), checked without running anything.

The real-library tests (tests/real/test_known_issues.py) run each entry's scenario;
this only checks that the file reads, that ids are unique, that every scenario module
exists and that each scenario's versions sit on the right side of the entry's range.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from cyclescope._versions import parse_version
from cyclescope.demo.scenarios import scenario_path
from cyclescope.explain.known import KnownIssueEntry, load_database, parse_database

ENTRIES = load_database()
WITH_SCENARIO = [entry for entry in ENTRIES if entry.scenario is not None]


def test_database_parses_and_is_not_empty() -> None:
    text = resources.files("cyclescope").joinpath("data", "known_issues.json").read_text(encoding="utf-8")
    assert parse_database(json.loads(text)) == ENTRIES
    assert ENTRIES
    assert ENTRIES[0].id == "aiohttp#10535"  # the seed entry stays first


def test_ids_are_unique() -> None:
    ids = [entry.id for entry in ENTRIES]
    assert len(ids) == len(set(ids)), ids


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_entry_is_consistent(entry: KnownIssueEntry) -> None:
    assert "#" in entry.id, entry.id
    if entry.fixed_in is not None:
        assert entry.affects(entry.fixed_in) is False
    if entry.upgrade_to is not None:
        assert entry.affects(entry.upgrade_to) is False
    assert all(ref.startswith("https://") for ref in entry.references)


@pytest.mark.parametrize("entry", WITH_SCENARIO, ids=[e.id for e in WITH_SCENARIO])
def test_scenario_module_exists(entry: KnownIssueEntry) -> None:
    assert entry.scenario is not None
    assert Path(scenario_path(entry.scenario["module"])).is_file()
    args = entry.scenario.get("args", [])
    assert isinstance(args, list) and all(isinstance(a, str) for a in args), args


@pytest.mark.parametrize("entry", WITH_SCENARIO, ids=[e.id for e in WITH_SCENARIO])
def test_scenario_versions_are_on_either_side_of_the_range(entry: KnownIssueEntry) -> None:
    assert entry.scenario is not None
    affected, fixed = entry.scenario["affected_version"], entry.scenario["fixed_version"]
    assert parse_version(affected) is not None and parse_version(fixed) is not None
    assert entry.affects(affected) is True
    assert entry.affects(fixed) is False
