"""cyclescope.contrib.aiohttp: the two #10535 fixes, on real aiohttp releases and on stand-ins.

The real tests run the scenario cyclescope/demo/scenarios/aiohttp_contrib.py under
``python -m cyclescope run --json - --include-noise SCENARIO --client C --drop D
--fix F --rounds N`` in a cached venv holding one aiohttp release (this very
cyclescope on PYTHONPATH), each combination once per session. ``--include-noise``
so that an absent cycle is really absent, not hidden as noise.

What they pin down:

* server drops before the response headers (#10535), streaming, WebSocket and
  plain GET clients: on 3.11.13 the cycle ClientResponse -> ResponseHandler
  ._exception -> ServerDisconnectedError -> traceback -> frame -> ClientResponse,
  twice per round (aiohttp retries once); gone with ``install()`` and with
  ``response_class()``; on 3.11.15 and the newest release the fix functions do
  nothing and there is no such cycle;
* server drops after the response started (body cut short; WebSocket open): not
  #10535 and not touched by either fix: the body's StreamReader keeps the
  ClientPayloadError (frame of ``StreamReader.readexactly``), the
  ClientWebSocketResponse keeps the error of its failed close (frame of
  ``ClientWebSocketResponse.close``), on 3.11.15 too.

The tests that need no aiohttp are in tests/unit/test_contrib_aiohttp_offline.py.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any, Iterator, Protocol

import jsonschema
import pytest

import cyclescope
from cyclescope.contrib import aiohttp as contrib
from cyclescope.demo.scenarios import scenario_path
from cyclescope.demo.venvs import cyclescope_env, ensure_venv, run_in_venv

pytestmark = pytest.mark.real

ROUNDS = 2
LEAKY, FIXED = "3.11.13", "3.11.15"
CLIENT_RESPONSE = "aiohttp.client_reqrep.ClientResponse"
FIX_CLASS = "cyclescope.contrib.aiohttp.CycleBreakingClientResponse"
RESPONSE_HANDLER = "aiohttp.client_proto.ResponseHandler"
PACKAGE_DIR = Path(cyclescope.__file__).resolve().parent
SCHEMA = json.loads((PACKAGE_DIR / "report" / "schema.json").read_text(encoding="utf-8"))
SCENARIO = Path(scenario_path("aiohttp_contrib"))
INFO_PREFIX = "aiohttp_contrib: "


# -- real aiohttp releases ---------------------------------------------------------------------

Outcome = tuple[dict[str, Any], dict[str, Any]]  # (JSON report, the scenario's info line)


class Runner(Protocol):
    def __call__(self, version: str, client: str, drop: str, fix: str) -> Outcome: ...


@pytest.fixture(scope="session")
def contrib_report() -> Runner:
    """``(version, client, drop, fix) -> (JSON report, scenario info)``, each run once per session."""
    done: dict[tuple[str, str, str, str], Outcome] = {}

    def run(version: str, client: str, drop: str, fix: str) -> Outcome:
        key = (version, client, drop, fix)
        if key not in done:
            python = ensure_venv([f"aiohttp=={version}"])
            proc = run_in_venv(python, ["-m", "cyclescope", "run", "--json", "-", "--include-noise", str(SCENARIO),
                                        "--client", client, "--drop", drop, "--fix", fix, "--rounds", str(ROUNDS)],
                               env_extra=cyclescope_env(), timeout=300)
            assert proc.returncode == 0, proc.stderr
            assert "Traceback" not in proc.stderr, proc.stderr
            report = json.loads(proc.stdout)  # stdout is the JSON report alone
            jsonschema.Draft202012Validator(SCHEMA).validate(report)
            assert report["python"] == ".".join(map(str, sys.version_info[:3]))
            (line,) = [x for x in proc.stderr.splitlines() if x.startswith(INFO_PREFIX)]
            info = json.loads(line[len(INFO_PREFIX):])
            assert (info["aiohttp"], info["client"], info["drop"], info["fix"], info["rounds"]) == (
                version, client, drop, fix, ROUNDS)
            done[key] = (report, info)
        return done[key]

    return run


def _is_client_response(type_name: str) -> bool:
    """aiohttp's ClientResponse or the fix's subclass (not ClientWebSocketResponse)."""
    return type_name.rsplit(".", 1)[-1].endswith("ClientResponse")


def holds_client_response(group: dict[str, Any]) -> bool:
    return any(_is_client_response(s["type"]) for s in group["cycle"]) or any(
        _is_client_response(t) for t in group["types"])


def steps(group: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["type"], s["edge"]) for s in group["cycle"]]


def shapes(report: dict[str, Any]) -> list[list[tuple[str, str]]]:
    return [steps(g) for g in report["groups"]]


def keeps_protocol_exception(group: dict[str, Any]) -> bool:
    return (RESPONSE_HANDLER, "._exception") in steps(group)


def check_10535(report: dict[str, Any]) -> None:
    """The #10535 cycles, as on the leaking release: 2 ClientResponse per round."""
    groups = [g for g in report["groups"] if any(s["type"] == CLIENT_RESPONSE for s in g["cycle"])]
    assert groups, shapes(report)
    for group in groups:
        cycle = group["cycle"]
        assert (cycle[0]["type"], cycle[0]["edge"]) == (CLIENT_RESPONSE, "._protocol"), steps(group)
        assert (cycle[1]["type"], cycle[1]["edge"]) == (RESPONSE_HANDLER, "._exception"), steps(group)
        assert cycle[2]["type"] == "aiohttp.client_exceptions.ServerDisconnectedError"
        assert cycle[2]["edge"] == ".__traceback__"
        assert cycle[-1]["type"] == "frame" and cycle[-1]["edge"] in ("local 'self'", "local 'resp'")
        assert cycle[-2]["edge"] == ".tb_frame"
        assert not group["noise"]
    functions = {(g["cycle"][-1]["function"], g["cycle"][-1]["edge"]) for g in groups}
    assert ("ClientResponse.start", "local 'self'") in functions  # the frame of aiohttp's bug
    assert sum(g["count"] for g in groups) == 2 * ROUNDS


def check_no_client_response_cycle(report: dict[str, Any]) -> None:
    assert [steps(g) for g in report["groups"] if holds_client_response(g)] == []
    assert [steps(g) for g in report["groups"] if keeps_protocol_exception(g)] == []


CLIENTS = ["stream", "websocket", "get"]


@pytest.mark.parametrize("client", ["stream", "websocket"])
def test_leaking_release_without_fix(contrib_report: Runner, client: str) -> None:
    report, info = contrib_report(LEAKY, client, "headers", "none")
    assert info["seen"] == {"ServerDisconnectedError": ROUNDS}
    check_10535(report)


@pytest.mark.parametrize("client", CLIENTS)
def test_install_breaks_the_cycle_on_leaking_release(contrib_report: Runner, client: str) -> None:
    report, info = contrib_report(LEAKY, client, "headers", "install")
    assert info["seen"] == {"ServerDisconnectedError": ROUNDS}  # the failure still happened
    assert info["needs_fix"] is True
    assert info["install"] is True and info["install_again"] is True  # idempotent
    assert info["installed"] is True and info["close_replaced"] is True
    assert info["uninstall"] is True and info["uninstall_again"] is False and info["restored"] is True
    check_no_client_response_cycle(report)


@pytest.mark.parametrize("client", CLIENTS)
def test_response_class_breaks_the_cycle_on_leaking_release(contrib_report: Runner, client: str) -> None:
    report, info = contrib_report(LEAKY, client, "headers", "response-class")
    assert info["seen"] == {"ServerDisconnectedError": ROUNDS}
    assert info["needs_fix"] is True and info["response_class"] == FIX_CLASS
    check_no_client_response_cycle(report)


@pytest.mark.parametrize("which", [FIXED, "newest"])
@pytest.mark.parametrize("client, fix", [("stream", "install"), ("websocket", "response-class")])
def test_fixes_do_nothing_on_fixed_releases(contrib_report: Runner, newest_aiohttp: str, which: str,
                                            client: str, fix: str) -> None:
    version = newest_aiohttp if which == "newest" else which
    report, info = contrib_report(version, client, "headers", fix)
    assert info["seen"] == {"ServerDisconnectedError": ROUNDS}
    assert info["needs_fix"] is False
    if fix == "install":
        assert info["install"] is False and info["install_again"] is False
        assert info["installed"] is False and info["close_replaced"] is False
        assert info["uninstall"] is False and info["restored"] is True
    else:
        assert info["response_class"] == CLIENT_RESPONSE
    check_no_client_response_cycle(report)


@pytest.mark.parametrize("version", [LEAKY, FIXED])
def test_stream_cut_in_body_is_another_cycle(contrib_report: Runner, version: str) -> None:
    # Headers and 10 of 1000 bytes, then the drop: the error goes to the body's
    # StreamReader, not to ResponseHandler._exception. No ClientResponse cycle,
    # on either release; the StreamReader keeps the error raised in its own frame.
    report, info = contrib_report(version, "stream", "body", "none")
    assert info["seen"] == {"ClientPayloadError": ROUNDS}
    check_no_client_response_cycle(report)
    (group,) = [g for g in report["groups"] if g["cycle"][0]["type"] == "aiohttp.streams.StreamReader"]
    assert steps(group)[:2] == [("aiohttp.streams.StreamReader", "._exception"),
                                ("aiohttp.client_exceptions.ClientPayloadError", ".__traceback__")]
    assert (group["cycle"][-1]["function"], group["cycle"][-1]["edge"]) == ("StreamReader.readexactly",
                                                                           "local 'self'")
    assert group["count"] == ROUNDS


@pytest.mark.parametrize("version, fix", [(LEAKY, "none"), (LEAKY, "install"), (FIXED, "none")])
def test_websocket_dropped_when_open_is_another_cycle(contrib_report: Runner, version: str, fix: str) -> None:
    # After the handshake the drop does not go through ResponseHandler._exception:
    # the WebSocket's own close() fails to send the close frame and keeps that
    # error, whose traceback holds close()'s frame. Not #10535, present on the
    # fixed release too, untouched by install().
    report, info = contrib_report(version, "websocket", "body", fix)
    assert info["seen"] == {"ws:TEXT": ROUNDS, "ws:CLOSED": ROUNDS,
                            "ws.exception:ClientConnectionResetError": ROUNDS}
    check_no_client_response_cycle(report)
    (group,) = [g for g in report["groups"] if g["cycle"][0]["type"] == "aiohttp.client_ws.ClientWebSocketResponse"]
    assert steps(group) == [
        ("aiohttp.client_ws.ClientWebSocketResponse", "._exception"),
        ("aiohttp.client_exceptions.ClientConnectionResetError", ".__traceback__"),
        ("traceback", ".tb_frame"),
        ("frame", "local 'self'"),
    ]
    assert group["cycle"][-1]["function"] == "ClientWebSocketResponse.close"
    assert group["count"] == ROUNDS


def test_import_does_not_import_aiohttp() -> None:
    python = ensure_venv([f"aiohttp=={LEAKY}"])
    code = ("import json, sys; import cyclescope.contrib.aiohttp as c; before = 'aiohttp' in sys.modules; "
            "cls = c.CycleBreakingClientResponse; import aiohttp; "
            "print(json.dumps([before, issubclass(cls, aiohttp.ClientResponse), c.response_class() is cls, "
            "c.needs_fix(), c.installed()]))")
    proc = run_in_venv(python, ["-c", code], env_extra=cyclescope_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [False, True, True, True, False]
