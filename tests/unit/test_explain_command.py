"""``cyclescope explain REPORT``: a saved report rendered again, advice filled in; and the known-issue database format."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from cyclescope.cli import main
from cyclescope.explain.known import KnownIssueDatabaseError, parse_database
from cyclescope.report.model import Report, Step

SCRIPT = textwrap.dedent("""
    class Session:
        def __init__(self):
            self.on_close = self.close

        def close(self):
            pass

    Session()
""")


@pytest.fixture
def saved_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text(SCRIPT)
    assert main(["run", "--json", "report.json", "app.py"]) == 0
    capsys.readouterr()
    return tmp_path / "report.json"


def test_explain_renders_the_saved_report_with_its_advice(saved_report: Path, capsys) -> None:
    assert main(["explain", str(saved_report)]) == 0
    out = capsys.readouterr().out
    assert "cycle through __main__.Session" in out
    assert "  pattern  bound-method:" in out
    assert "  break    Session .on_close (your code, app.py)" in out
    assert "app.py:4 assigns .on_close: `self.on_close = self.close`" in out


def test_explain_classifies_a_report_saved_without_advice(saved_report: Path, tmp_path: Path, capsys) -> None:
    data = json.loads(saved_report.read_text())
    for group in data["groups"]:
        for key in ("pattern", "explanation", "fix", "break_step", "fix_locations", "owners", "known_issue"):
            del group[key]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    assert main(["explain", str(old), "--json", str(tmp_path / "filled.json")]) == 0
    out = capsys.readouterr().out
    assert "  pattern  bound-method:" in out and "  change" not in out  # lines need the live program
    filled = Report.from_dict(json.loads((tmp_path / "filled.json").read_text()))
    assert [g.pattern for g in filled.groups] == ["bound-method"]


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such report: "),
    ("{", "is not JSON (line 1, column 2"),
    ('{"schema": "other/1"}', "not a cyclescope.report/1 report (schema: 'other/1')"),
    ('{"schema": "cyclescope.report/1", "groups": [{"cycle": 3}]}', "malformed cyclescope.report/1 report"),
])
def test_bad_reports_get_one_line_and_status_2(tmp_path: Path, capsys, content: str | None, message: str) -> None:
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    assert main(["explain", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("cyclescope: error: ")


# -- the known-issue database ---------------------------------------------------------------

ENTRY = {
    "id": "lib#1", "summary": "s", "distribution": "lib", "affected": {"from": "1.2", "before": "1.4.1"},
    "fixed_in": "1.4.1", "references": [], "match": [{"type": "lib.A", "edge": "._x"}, {"type": "lib.B"}],
}


def database(*entries: dict) -> dict:
    return {"format": "cyclescope.known-issues/1", "issues": list(entries)}


def test_entry_matches_every_pattern_on_its_own_step_and_judges_versions() -> None:
    (entry,) = parse_database(database(ENTRY))
    assert entry.matches([Step("lib.B", ".y"), Step("lib.A", "._x")])
    assert not entry.matches([Step("lib.A", "._x")])  # lib.B missing
    assert not entry.matches([Step("lib.A", "._y"), Step("lib.B", "._x")])
    assert [entry.affects(v) for v in ("1.1.9", "1.2", "1.2.0", "1.4.0", "1.4.1rc1", "1.4.1", "2.0", "junk")] == [
        False, True, True, True, True, False, False, None]


@pytest.mark.parametrize(("broken", "message"), [
    ({**ENTRY, "match": []}, "'match' must be a non-empty list"),
    ({**ENTRY, "affected": {"until": "2"}}, "'affected' must be an object"),
    ({**ENTRY, "affected": {"before": "soon"}}, "affected.before is not a version"),
    ({**ENTRY, "id": ""}, "'id' must be a non-empty string"),
    ({**ENTRY, "references": "http://x"}, "'references' must be a list"),
])
def test_database_errors_name_the_entry_and_the_field(broken: dict, message: str) -> None:
    with pytest.raises(KnownIssueDatabaseError, match="issues\\[1\\]: " + message.replace("[", "\\[").replace("(", "\\(")):
        parse_database(database(ENTRY, broken))


def test_database_rejects_duplicates_and_other_formats() -> None:
    with pytest.raises(KnownIssueDatabaseError, match="duplicate id 'lib#1'"):
        parse_database(database(ENTRY, ENTRY))
    with pytest.raises(KnownIssueDatabaseError, match="not a cyclescope.known-issues/1 database"):
        parse_database({"format": "x", "issues": []})


def test_entry_can_match_a_frame_by_its_function() -> None:
    (entry,) = parse_database(database({**ENTRY, "match": [
        {"type": "frame", "edge": "local 'handler'", "function": "RequestHandler.start"}]}))
    assert entry.matches([Step("frame", "local 'handler'", function="RequestHandler.start")])
    assert not entry.matches([Step("frame", "local 'handler'", function="other")])
    assert not entry.matches([Step("frame", "local 'handler'")])  # no function: no match
    with pytest.raises(KnownIssueDatabaseError, match="'match' must be"):
        parse_database(database({**ENTRY, "match": [{"type": "x", "line": "3"}]}))
