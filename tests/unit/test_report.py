"""The report model: JSON contract and schema, round trip, terminal text."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest

import cyclescope
from cyclescope.report.model import SCHEMA, Group, Report, ReportFormatError, Step, Totals, merge_groups
from cyclescope.report.text import format_bytes, render_text, inline_test_list


def schema() -> dict:
    return json.loads(resources.files("cyclescope.report").joinpath("schema.json").read_text())


def seed_like_report() -> Report:
    cycle = [
        Step("aiohttp.client_reqrep.ClientResponse", "._protocol", None, "attribute", module="aiohttp.client_reqrep"),
        Step("aiohttp.client_proto.ResponseHandler", "._exception", None, "attribute", module="aiohttp.client_proto"),
        Step("aiohttp.client_exceptions.ServerDisconnectedError", ".__traceback__", None, "traceback",
             module="aiohttp.client_exceptions"),
        Step("traceback", ".tb_next", None, "traceback", function="ClientSession._request",
             site="/venv/aiohttp/client.py:730"),
        Step("traceback", ".tb_frame", None, "traceback", function="ClientResponse.start",
             site="/venv/aiohttp/client_reqrep.py:1059"),
        Step("frame", "local 'self'", "/venv/aiohttp/client_reqrep.py:1059", "local",
             function="ClientResponse.start", source="message, payload = await protocol.read()"),
    ]
    group = Group(count=2, objects=82, bytes=10240, signature="sig", cycle=cycle, cycle_objects=6,
                  component_objects=20, types={"dict": 3})
    return Report(groups=[group], totals=Totals(captured_objects=82, captured_bytes=10240, collections=3),
                  strategy="exact", python="3.11.7")


def real_report() -> Report:
    class Link:
        pass

    def make() -> None:
        a, b = Link(), Link()
        a.peer, b.peer = b, a
        try:
            raise ValueError("x")
        except ValueError as exc:
            a.error = exc

    return cyclescope.cycles_created_by(make)


def test_json_form_follows_the_contract_and_the_schema() -> None:
    for report in (seed_like_report(), real_report()):
        data = json.loads(report.to_json())
        jsonschema.validate(data, schema())
        assert data["schema"] == SCHEMA
        for group in data["groups"]:
            assert {"count", "objects", "bytes", "signature", "cycle"} <= group.keys()
            for step in group["cycle"]:
                assert {"type", "edge", "location"} <= step.keys()
                assert (step["location"] is not None) == (step["type"] == "frame")


def test_schema_rejects_a_broken_report() -> None:
    data = seed_like_report().to_dict()
    del data["groups"][0]["cycle"][0]["edge"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema())
    data = seed_like_report().to_dict()
    data["schema"] = "cyclescope.report/0"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema())


def test_round_trip() -> None:
    report = real_report()
    report.unmatched_watch = ["Respnse"]
    again = Report.from_dict(json.loads(report.to_json()))
    assert again == report
    with pytest.raises(ReportFormatError, match="not a cyclescope.report/1 report"):
        Report.from_dict({"schema": "other"})
    with pytest.raises(ReportFormatError, match="malformed"):
        Report.from_dict({"schema": SCHEMA, "groups": [{"count": 1}]})


def test_merge_adds_counts_of_equal_signatures() -> None:
    a = Group(1, 10, 100, "s", [Step("A", ".x")], types={"A": 1})
    b = Group(2, 30, 300, "s", [Step("A", ".x")], types={"A": 2, "B": 1})
    c = Group(1, 50, 10, "t", [Step("C", ".y")])
    merged = merge_groups([a, b, c])
    assert [(g.signature, g.count, g.objects, g.bytes) for g in merged] == [("t", 1, 50, 10), ("s", 3, 40, 400)]
    assert merged[1].types == {"A": 3, "B": 1}
    assert a.count == 1, "merging must not change its inputs"


def test_text_golden() -> None:
    text = render_text(seed_like_report())
    assert text == """\
cyclescope: 2 reference cycles in 1 group

2 x cycle through aiohttp.client_reqrep.ClientResponse
  6 objects on the cycle; 82 objects / 10.0 KiB freed only by the cyclic GC
  ClientResponse           ._protocol      -> ResponseHandler
  ResponseHandler          ._exception     -> ServerDisconnectedError
  ServerDisconnectedError  .__traceback__  -> traceback
                              (ClientSession._request, client.py:730)
  traceback                .tb_next        -> traceback
                              (ClientResponse.start, client_reqrep.py:1059)
  traceback                .tb_frame       -> frame
                              of ClientResponse.start() at client_reqrep.py:1059
                              `message, payload = await protocol.read()`
  frame                    local 'self'    -> ClientResponse (back to the start)

captured 82 objects (10.0 KiB) in 3 collections; strategy exact
"""


def test_text_fits_80_columns_and_colour_is_opt_in() -> None:
    plain = render_text(seed_like_report())
    assert max(len(line) for line in plain.splitlines()) <= 80
    assert "\x1b[" not in plain
    assert "\x1b[" in render_text(seed_like_report(), color=True)


def test_a_long_type_name_keeps_the_columns_aligned() -> None:
    # ssl's SSLCertVerificationError (24 characters, one over the column) pushed its own
    # edge right, in aiohttp's test_client_functional.py
    cycle = [
        Step("ssl.SSLCertVerificationError", ".__traceback__", None, "traceback", module="ssl"),
        Step("traceback", ".tb_next", None, "traceback", function="f", site="/x.py:1"),
        Step("traceback", ".tb_frame", None, "traceback", function="g", site="/x.py:2"),
        Step("frame", "local 'exc'", "/x.py:2", "local", function="g"),
    ]
    text = render_text(Report(groups=[Group(1, 8, 100, "s", cycle)]))
    rows = [line for line in text.splitlines() if "  -> " in line and not line.startswith("      ")]
    assert [row.split()[0] for row in rows] == ["SSLCertVerificationError", "traceback", "traceback", "frame"]
    assert len({row.index(step.edge) for row, step in zip(rows, cycle)}) == 1, rows
    assert len({row.index("  -> ") for row in rows}) == 1, rows
    assert max(len(line) for line in text.splitlines()) <= 80


def test_inline_test_list_names_the_first_five_and_counts_the_rest() -> None:
    assert inline_test_list(["t::a"]) == "t::a"
    assert inline_test_list([f"t::{c}" for c in "abcdefg"]) == "t::a, t::b, t::c, t::d, t::e and 2 more"


def test_limit_and_empty_report() -> None:
    report = seed_like_report()
    report.groups.append(Group(1, 1, 1, "t", [Step("dict", "['me']")]))
    text = render_text(report, limit=1)
    assert "1 more group(s) not shown" in text and "['me']" not in text
    assert "no reference cycles captured" in render_text(Report(groups=[]))


@pytest.mark.parametrize(("n", "text"), [(10, "10 B"), (2048, "2.0 KiB"), (3 * 1024 * 1024, "3.0 MiB")])
def test_format_bytes(n: int, text: str) -> None:
    assert format_bytes(n) == text


def test_types_sharing_a_bare_name_are_shown_qualified() -> None:
    cycle = [
        Step("asyncio.base_events.Server", "._protocol_factory", module="asyncio.base_events"),
        Step("websockets.asyncio.server.Server", ".server", module="websockets.asyncio.server"),
    ]
    text = render_text(Report(groups=[Group(1, 2, 10, "s", cycle)]))
    assert "websockets.asyncio.server.Server  .server" in text
    assert "-> websockets.asyncio.server.Server" in text
    assert "  Server " not in text


def test_a_test_runs_report_names_the_tests_of_each_group() -> None:
    # What `cyclescope explain` shows of a pytest run's JSON: the tests, as the run's summary does.
    report = Report.from_dict(seed_like_report().to_dict())
    report.groups[0].tests = [f"test_mod.py::test_{i}" for i in range(7)]
    text = render_text(Report.from_dict(json.loads(report.to_json())))
    assert "  created by 7 tests:\n    test_mod.py::test_0\n" in text
    assert "    test_mod.py::test_4\n    ... and 2 more\n" in text and "test_5" not in text
    assert "created by" not in render_text(seed_like_report())


def test_growth_text_lists_the_sampled_types_and_the_most_numerous() -> None:
    from cyclescope.report.model import GrowthEntry

    report = seed_like_report()
    report.growth = [GrowthEntry(f"type{i}", 100 - i, 1000, 100 - i, []) for i in range(30)]
    report.growth[25].sample_paths = ["module app -> .CACHE -> [0] -> type25"]
    text = render_text(report)
    assert "  type19  +81" in text and "  type20  +80" not in text
    assert "  type25  +75 " in text and "      module app -> .CACHE -> [0] -> type25" in text
    hidden = sum(100 - i for i in range(20, 30) if i != 25)
    assert f"  ... 9 more types, +{hidden:,} objects (8.8 KiB; all in the JSON report)" in text
