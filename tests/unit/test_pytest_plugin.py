"""The pytest plugin (cyclescope.pytest_plugin), driven through real pytest sessions.

Every inner session runs in a subprocess (``pytester.runpytest_subprocess``), never
in-process, for three reasons:

* the plugin freezes and thaws the whole heap and switches ``gc.DEBUG_SAVEALL`` on
  for every watched test: in-process it would freeze this outer session's objects
  too, and when the outer session is itself run with ``--cyclescope`` (or has
  frozen objects) the inner captures would nest inside the outer one and take
  another strategy, so what is tested would depend on how the suite is run;
* ``no_leaks`` explains survivors by walking referrers over the whole heap: in
  process the chains could run through the outer session's objects;
* pytest-xdist workers are subprocesses anyway, and a fresh interpreter makes the
  gc-state check at the end meaningful (nothing else touched gc in it).

A subprocess session costs about 0.3-0.5 s (0.8 s with two xdist workers); the file
runs some 35 of them, about 20 s in all. Only the last test runs in process: it calls
no_leaks' explanation (held_by) directly, no session involved.

Tests marked xfail(strict=True) pin down bugs found while writing this file; each
reason says what is wrong. Once fixed they XPASS, which fails: drop the marker then.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import cyclescope

pytest_plugins = ["pytester"]

PACKAGE_DIR = Path(cyclescope.__file__).resolve().parent
SCHEMA_PATH = PACKAGE_DIR / "report" / "schema.json"

NODE_SIGNATURE = "helpers.Node .partner -> helpers.Node .partner"
BASELINE_FORMAT = "cyclescope.pytest-baseline/1"

#: A module the inner tests import: the cycle shapes they make.
HELPERS = '''
class Node:
    def __init__(self):
        self.partner = None


def make_pair():
    """Two Nodes holding each other: one cycle group, edge .partner."""
    a, b = Node(), Node()
    a.partner, b.partner = b, a


class SelfRef:
    def __init__(self):
        self.me = self


class Ring:
    def __init__(self):
        self.next = None


def make_ring():
    a, b, c = Ring(), Ring(), Ring()
    a.next, b.next, c.next = b, c, a


class Conn:
    pass
'''


def _entry_point_installed() -> bool:
    return any(ep.name == "cyclescope" for ep in importlib.metadata.entry_points(group="pytest11"))


#: The plugin is loaded through its pytest11 entry point when cyclescope is installed
#: (the case the suite normally runs in); from a source tree, with -p.
PLUGIN_ARGS: tuple[str, ...] = () if _entry_point_installed() else ("-p", "cyclescope.pytest_plugin")


@pytest.fixture(autouse=True)
def inner_session(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A clean directory with helpers.py and an ini that keeps pytest-asyncio quiet."""
    # When this suite itself runs under xdist, or with plugin autoloading off, the
    # inner sessions must not inherit that.
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID",
                 "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_PLUGINS", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)
    if PLUGIN_ARGS:  # not installed: the inner interpreter imports cyclescope from this tree
        monkeypatch.setenv("PYTHONPATH", str(PACKAGE_DIR.parent))
    pytester.makepyfile(helpers=HELPERS)
    make_ini(pytester)
    return pytester


def make_ini(pytester: pytest.Pytester, **options: str) -> None:
    lines = ["[pytest]", "asyncio_default_fixture_loop_scope = function"]
    lines += [f"{key} = {value}" for key, value in options.items()]
    pytester.makeini("\n".join(lines) + "\n")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*PLUGIN_ARGS, "-p", "no:cacheprovider", "-rA", *args, timeout=120)


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Test name -> PASSED / FAILED / ERROR / SKIPPED, from the short summary (-rA)."""
    found: dict[str, str] = {}
    for line in result.stdout.lines:
        m = re.match(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS) \S+::(\S+)", line)
        if m:
            # a test with an error at teardown after a failure shows twice: keep the worst
            if found.get(m.group(2)) not in ("FAILED", "ERROR"):
                found[m.group(2)] = m.group(1)
    return found


def failure_text(result: pytest.RunResult, name: str) -> str:
    """The failure section of test ``name`` in the FAILURES block."""
    lines = result.stdout.lines
    heads = [i for i, line in enumerate(lines) if re.fullmatch(rf"_+ (\[\w+\] )?{re.escape(name)} _+", line)]
    assert heads, f"no failure section for {name}:\n{result.stdout.str()}"
    start = heads[0] + 1
    end = next((i for i in range(start, len(lines))
                if re.fullmatch(r"_{3,} .+ _{3,}|={3,} .+ ={3,}", lines[i])), len(lines))
    return "\n".join(lines[start:end])


def summary(result: pytest.RunResult) -> str:
    """The plugin's terminal summary section (empty when it printed none)."""
    lines = result.stdout.lines
    heads = [i for i, line in enumerate(lines) if re.fullmatch(r"=+ cyclescope =+", line)]
    if not heads:
        return ""
    end = next((i for i in range(heads[0] + 1, len(lines)) if re.fullmatch(r"=+ .+ =+", lines[i])), len(lines))
    return "\n".join(lines[heads[0] + 1 : end])


CYCLE_TESTS = """
import pytest
from helpers import make_pair


def test_cycle():
    make_pair()


def test_clean():
    data = [1, 2, 3]
    assert sum(data) == 6


def test_cycle_too():
    make_pair()
"""


# -- activation ------------------------------------------------------------------------------


def test_inactive_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=CYCLE_TESTS)
    result = run(pytester)
    result.assert_outcomes(passed=3)
    assert summary(result) == ""
    assert "cyclescope:" not in result.stdout.str()


def test_report_mode_lists_the_tests_and_never_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=CYCLE_TESTS)
    result = run(pytester, "--cyclescope")
    result.assert_outcomes(passed=3)
    text = summary(result)
    assert "cyclescope: 1 cycle group created by 2 tests (of 3 watched)" in text
    assert "2 x cycle through helpers.Node" in text
    assert "  created by 2 tests:\n    test_mod.py::test_cycle\n    test_mod.py::test_cycle_too" in text
    assert "test_clean" not in text


@pytest.mark.parametrize("value, failed", [("report", 0), (" Fail ", 2), ("off", None)])
def test_ini_option(pytester: pytest.Pytester, value: str, failed: int | None) -> None:
    pytester.makepyfile(test_mod=CYCLE_TESTS)
    make_ini(pytester, cyclescope=value)
    result = run(pytester)
    if failed is None:
        result.assert_outcomes(passed=3)
        assert summary(result) == ""
    else:
        result.assert_outcomes(passed=3 - failed, failed=failed)
        assert "cyclescope: 1 cycle group created by 2 tests (of 3 watched)" in summary(result)


def test_command_line_overrides_the_ini(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=CYCLE_TESTS)
    make_ini(pytester, cyclescope="fail")
    result = run(pytester, "--cyclescope=report")
    result.assert_outcomes(passed=3)


def test_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=CYCLE_TESTS)
    make_ini(pytester, cyclescope="loud")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ini option 'cyclescope' must be report, fail or off, not 'loud'" in result.stderr.str()


@pytest.mark.parametrize("option", ["--cyclescope-baseline", "--cyclescope-json"])
def test_a_file_option_as_two_words_is_a_usage_error(pytester: pytest.Pytester, option: str) -> None:
    # Outside the project, an existing FILE would have moved pytest's rootdir (and dropped
    # the ini); refused whether FILE exists or not, so the first run already says so.
    result = run(pytester, "--cyclescope", option, "somewhere.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*cyclescope: write {option}=FILE, with '='*"])


def test_pytest_raises_in_many_tests_is_one_line_each_after_the_first(pytester: pytest.Pytester) -> None:
    # pytest.raises(...) as excinfo: pytest's ExceptionInfo keeps the traceback, the test's
    # local keeps the ExceptionInfo. The local is what the user can change, and only it
    # and its line differ from one test to the next.
    pytester.makepyfile(test_raising="""
        import pytest

        def test_one():
            with pytest.raises(ValueError) as excinfo:
                int("x")
            assert excinfo.type is ValueError

        def test_two():
            with pytest.raises(KeyError) as info:
                {}["k"]
            assert info.type is KeyError
    """)
    text = summary(run(pytester, "--cyclescope"))
    assert text.count("pattern  stored-exception") == 1
    assert "break    local 'excinfo' in test_one() at test_raising.py:5" in text
    assert "fix      `del excinfo` (or set it to None) in test_one()" in text
    one_liners = [line for line in text.splitlines() if line.endswith("::test_two")]
    assert one_liners == ["cycle through _pytest._code.code.ExceptionInfo: stored-exception as above, "
                          "break local 'info' in test_two() at test_raising.py:10, created by test_raising.py::test_two"]


def test_classes_made_per_test_take_one_line_each_after_the_first(pytester: pytest.Pytester) -> None:
    # (attrs's suite: 342 such groups of 12 lines each, one per class defined in a test)
    pytester.makepyfile(test_classes="""
        def test_one():
            class First: pass

        def test_two():
            class Second: pass

        def test_three():
            class Third: pass
    """)
    text = summary(run(pytester, "--cyclescope"))
    assert text.count("pattern  class-definition") == 1 and text.count("fix      create the class once") == 1
    one_liners = [line for line in text.splitlines() if line.endswith(("::test_two", "::test_three"))]
    assert sorted(one_liners) == [
        "cycle through class test_classes.test_three.<locals>.Third: class-definition as above, "
        "created by test_classes.py::test_three",
        "cycle through class test_classes.test_two.<locals>.Second: class-definition as above, "
        "created by test_classes.py::test_two",
    ]


def test_update_baseline_needs_a_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=CYCLE_TESTS)
    result = run(pytester, "--cyclescope=fail", "--cyclescope-update-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--cyclescope-update-baseline needs --cyclescope-baseline FILE" in result.stderr.str()


# -- fail mode ---------------------------------------------------------------------------------

FAIL_TESTS = """
import sys
import pytest
from helpers import make_pair


@pytest.fixture
def cycle_in_teardown():
    yield
    make_pair()


@pytest.fixture
def cycle_in_setup():
    make_pair()
    yield


def test_cycle():
    make_pair()


def test_clean():
    assert [1] * 2 == [1, 1]


def test_teardown_only(cycle_in_teardown):
    pass


def test_setup_only(cycle_in_setup):
    pass


def test_own_failure():
    make_pair()
    assert 1 == 2


@pytest.mark.skipif(sys.version_info > (3,), reason="skipped by a marker")
def test_skipped_by_marker():
    pass


def test_skipped_in_body():
    pytest.skip("skipped in the body")
"""


def test_fail_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fail=FAIL_TESTS)
    result = run(pytester, "--cyclescope=fail")
    # failures, not errors: the cycle is the test's result, reported on its call
    result.assert_outcomes(passed=1, failed=4, skipped=2, errors=0)
    assert outcomes(result) == {"test_cycle": "FAILED", "test_clean": "PASSED", "test_teardown_only": "FAILED",
                                "test_setup_only": "FAILED", "test_own_failure": "FAILED"}
    for name in ("test_cycle", "test_teardown_only", "test_setup_only"):
        text = failure_text(result, name)
        assert text.startswith("cyclescope: the test created 1 reference cycle in 1 group not in the baseline"), text
        assert "cycle through helpers.Node" in text
        assert re.search(r"^  Node  \.partner  -> Node$", text, re.M), text
        assert "pattern  back-reference" in text
        assert "break    Node .partner (your code, helpers.py)" in text
    # a test failing on its own keeps its own failure; the cycle is a section beside it
    own = failure_text(result, "test_own_failure")
    assert "assert 1 == 2" in own
    assert re.search(r"-+ cyclescope -+", own) and "cycle through helpers.Node" in own
    result.stdout.fnmatch_lines(["FAILED test_fail.py::test_cycle - cyclescope: the test created 1 *"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_fail_mode_never_turns_a_skip_into_an_error(pytester: pytest.Pytester) -> None:
    # pytest's own handling of the Skipped exception leaves cycles (ExceptionInfo and
    # the frame of CallInfo.from_call); a test skipped at setup has no call report.
    pytester.makepyfile(test_fail=FAIL_TESTS)
    result = run(pytester, "--cyclescope=fail", "-k", "skipped")
    result.assert_outcomes(skipped=2, errors=0)
    assert result.ret == pytest.ExitCode.OK


# -- baseline --------------------------------------------------------------------------------

BASELINE_TESTS = """
from helpers import SelfRef, make_pair


def test_z_pair():
    make_pair()


def test_a_pair():
    make_pair()


def test_selfref():
    SelfRef()


def test_clean():
    pass
"""

NEW_TESTS = """
from helpers import make_pair, make_ring


def test_known_shape():
    make_pair()


def test_new_shape():
    make_ring()
"""


def test_baseline_round_trip(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_base=BASELINE_TESTS)
    path = pytester.path / "b.json"
    update = ("--cyclescope=fail", "--cyclescope-baseline=b.json", "--cyclescope-update-baseline")

    first = run(pytester, *update)
    first.assert_outcomes(passed=4)  # updating never fails
    assert f"cyclescope: baseline written to {path}" in first.stdout.str()
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert text == json.dumps(data, indent=2) + "\n"
    assert data == {"format": BASELINE_FORMAT, "groups": [
        {"signature": NODE_SIGNATURE, "subject": "helpers.Node", "pattern": "back-reference",
         "tests": ["test_base.py::test_a_pair", "test_base.py::test_z_pair"]},
        {"signature": "helpers.SelfRef .me", "subject": "helpers.SelfRef", "pattern": data["groups"][1]["pattern"],
         "tests": ["test_base.py::test_selfref"]},
    ]}
    assert [g["signature"] for g in data["groups"]] == sorted(g["signature"] for g in data["groups"])

    # with the baseline: everything known passes; updating again changes no byte
    again = run(pytester, "--cyclescope=fail", "--cyclescope-baseline=b.json")
    again.assert_outcomes(passed=4)
    assert "(in the baseline)" in summary(again)
    run(pytester, *update).assert_outcomes(passed=4)
    assert path.read_text(encoding="utf-8") == text

    # a new test making a known shape passes; one making a new shape fails, alone
    pytester.makepyfile(test_new=NEW_TESTS)
    gate = run(pytester, "--cyclescope=fail", "--cyclescope-baseline=b.json")
    gate.assert_outcomes(passed=5, failed=1)
    assert outcomes(gate)["test_new_shape"] == "FAILED"
    assert "cycle through helpers.Ring" in failure_text(gate, "test_new_shape")

    # updating from a subset keeps what the tests that did not run had
    run(pytester, *update, "test_new.py").assert_outcomes(passed=2)
    data = json.loads(path.read_text(encoding="utf-8"))
    by_signature = {g["signature"]: g["tests"] for g in data["groups"]}
    assert by_signature == {
        NODE_SIGNATURE: ["test_base.py::test_a_pair", "test_base.py::test_z_pair", "test_new.py::test_known_shape"],
        "helpers.SelfRef .me": ["test_base.py::test_selfref"],
        "helpers.Ring .next -> helpers.Ring .next -> helpers.Ring .next": ["test_new.py::test_new_shape"],
    }
    run(pytester, "--cyclescope=fail", "--cyclescope-baseline=b.json").assert_outcomes(passed=6)

    # a test that ran and no longer makes its cycle loses its entry
    pytester.makepyfile(test_new=NEW_TESTS.replace("    make_ring()", "    pass"))
    run(pytester, *update, "test_new.py").assert_outcomes(passed=2)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert "helpers.Ring .next -> helpers.Ring .next -> helpers.Ring .next" not in {
        g["signature"] for g in data["groups"]}


def test_unreadable_baseline_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=CYCLE_TESTS)
    (pytester.path / "b.json").write_text("{not json", encoding="utf-8")
    result = run(pytester, "--cyclescope=fail", "--cyclescope-baseline=b.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "b.json: not JSON" in result.stderr.str()


# -- markers ----------------------------------------------------------------------------------

MARKER_TESTS = """
import pytest
from helpers import Conn, Node, make_pair

CACHE = []
OTHER = []


@pytest.mark.no_cycles
def test_no_cycles_fails():
    make_pair()


@pytest.mark.no_cycles
def test_no_cycles_clean():
    Node()


@pytest.mark.no_cycles("Node")
def test_ignore_bare_name():
    make_pair()


@pytest.mark.no_cycles(ignore=["helpers.Node"])
def test_ignore_qualified_name():
    make_pair()


@pytest.mark.no_cycles(ignore=[Node])
def test_ignore_class():
    make_pair()


@pytest.mark.no_cycles("Other*")
def test_ignore_other_type():
    make_pair()


def make_cache():
    memo = {}

    def get():
        if "conn" not in memo:  # the first call fills the cache, once
            memo["conn"] = Conn()
            make_pair()
        return memo["conn"]

    return get


cycles_warm, cycles_cold, leaks_warm, leaks_cold = make_cache(), make_cache(), make_cache(), make_cache()


@pytest.mark.no_cycles(warmups=1)
def test_cycles_with_warmup():
    cycles_warm()


@pytest.mark.no_cycles
def test_cycles_without_warmup():
    cycles_cold()


@pytest.mark.no_leaks(Conn, warmups=1)
def test_leaks_with_warmup():
    leaks_warm()


@pytest.mark.no_leaks(types=[Conn])
def test_leaks_without_warmup():
    leaks_cold()


@pytest.mark.no_leaks(types=[Conn])
def test_leak_kept_in_module_list():
    CACHE.append(Conn())


@pytest.mark.no_leaks(types=[Conn])
def test_leak_dropped():
    conn = Conn()
    CACHE.append(conn)
    CACHE.remove(conn)


@pytest.mark.no_leaks(types=[Conn])
def test_garbage_is_not_a_leak():
    conn = Conn()
    conn.me = conn


@pytest.mark.no_leaks("Conn")
def test_leak_by_name():
    OTHER.append(Conn())


@pytest.mark.no_leaks("helpers.Co*")
def test_leak_by_pattern():
    OTHER.append(Conn())


@pytest.mark.no_leaks("Other")
def test_leak_of_another_type():
    OTHER.append(Conn())
"""


def test_markers_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_marks=MARKER_TESTS)
    result = run(pytester)
    assert outcomes(result) == {
        "test_no_cycles_fails": "FAILED",
        "test_no_cycles_clean": "PASSED",
        "test_ignore_bare_name": "PASSED",
        "test_ignore_qualified_name": "PASSED",
        "test_ignore_class": "PASSED",
        "test_ignore_other_type": "FAILED",
        "test_cycles_with_warmup": "PASSED",
        "test_cycles_without_warmup": "FAILED",
        "test_leaks_with_warmup": "PASSED",
        "test_leaks_without_warmup": "FAILED",
        "test_leak_kept_in_module_list": "FAILED",
        "test_leak_dropped": "PASSED",
        "test_garbage_is_not_a_leak": "PASSED",
        "test_leak_by_name": "FAILED",
        "test_leak_by_pattern": "FAILED",
        "test_leak_of_another_type": "PASSED",
    }
    result.assert_outcomes(passed=9, failed=7, errors=0)
    text = failure_text(result, "test_no_cycles_fails")
    assert text.startswith("no_cycles: the test created 1 reference cycle in 1 group")
    assert ".partner" in text
    leak = failure_text(result, "test_leak_kept_in_module_list")
    assert leak.splitlines() == ["no_leaks: 1 watched object(s) outlived the test",
                                 "helpers.Conn still alive, held by: module test_marks -> .CACHE -> [0] -> Conn"]
    for name in ("test_leak_by_name", "test_leak_by_pattern"):
        assert "helpers.Conn still alive, held by: module test_marks -> .OTHER -> [" in failure_text(result, name)
    assert "no_leaks: 1 watched object(s) outlived the test" in failure_text(result, "test_leaks_without_warmup")
    # marker checks alone print no session summary
    assert summary(result) == ""


def test_failing_warmup_is_the_result(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_warm="""
        import pytest

        RUNS = []

        @pytest.mark.no_cycles(warmups=2)
        def test_fails_on_first_run():
            RUNS.append(1)
            assert len(RUNS) > 1, "first run"

        def test_runs_counted():
            assert RUNS == [1]
    """)
    result = run(pytester)
    assert "first run" in failure_text(result, "test_fails_on_first_run")
    result.assert_outcomes(passed=1, failed=1)


def test_warmups_with_function_scoped_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_warm="""
        import pytest

        EVENTS = []

        @pytest.fixture
        def resource():
            EVENTS.append("setup")
            yield len(EVENTS)
            EVENTS.append("teardown")

        @pytest.fixture(scope="module")
        def shared():
            EVENTS.append("module setup")
            return object()

        @pytest.mark.no_cycles(warmups=2)
        def test_warm(resource, shared):
            EVENTS.append(("call", resource))

        def test_after():
            assert EVENTS == ["module setup", "setup", ("call", 2), "teardown", "setup", ("call", 5),
                              "teardown", "setup", ("call", 8), "teardown"]
    """)
    run(pytester).assert_outcomes(passed=2)


# -- asyncio -----------------------------------------------------------------------------------

ASYNC_TESTS = """
import asyncio
import pytest

BACKGROUND = set()  # the asyncio docs' idiom: keep a strong reference to the tasks


class Holder:
    def __init__(self):
        self.error = None


async def fail():
    raise ValueError("boom")


async def waiter(event):
    await event.wait()


@pytest.mark.asyncio
async def test_stored_exception():
    holder = Holder()
    try:
        await fail()
    except ValueError as exc:
        holder.error = exc


@pytest.mark.asyncio(loop_scope="module")
async def test_pending_task():
    event = asyncio.Event()  # never set
    BACKGROUND.add(asyncio.get_running_loop().create_task(waiter(event)))
    await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_clean():
    await asyncio.sleep(0)
"""


def _needs_loop_scope() -> None:
    asyncio_plugin = pytest.importorskip("pytest_asyncio")
    version = tuple(int(p) for p in re.findall(r"\d+", asyncio_plugin.__version__)[:2])
    if version < (0, 24):
        pytest.skip("pytest-asyncio < 0.24 has no loop_scope")


@pytest.mark.parametrize("mode", ["report", "fail"])
def test_asyncio(pytester: pytest.Pytester, mode: str) -> None:
    _needs_loop_scope()
    pytester.makepyfile(test_async=ASYNC_TESTS)
    make_ini(pytester, asyncio_mode="strict")
    result = run(pytester, f"--cyclescope={mode}", "--cyclescope-json=out.json")
    text = summary(result)
    assert "cyclescope: 1 cycle group created by 1 test (of 3 watched)" in text
    assert "cycle through test_async.Holder" in text
    assert "pending task waiter: left by 1 test(s): test_async.py::test_pending_task" in text
    report = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))
    assert [g["tests"] for g in report["groups"]] == [["test_async.py::test_stored_exception"]]
    assert report["warnings"] == ["pending task waiter (left by 1 test(s): test_async.py::test_pending_task)"]
    if mode == "report":
        result.assert_outcomes(passed=3)
        return
    result.assert_outcomes(passed=1, failed=2, errors=0)
    stored = failure_text(result, "test_stored_exception")
    assert "pattern  stored-exception" in stored
    assert re.search(r"^  Holder\s+\.error\s+-> ValueError$", stored, re.M), stored
    pending = failure_text(result, "test_pending_task")
    assert pending.splitlines()[0] == "cyclescope: the test left 1 asyncio task(s) pending"
    assert re.search(r"^pending task waiter \(suspended at .*test_async\.py:\d+\)$", pending, re.M), pending


@pytest.mark.xfail(strict=True, reason="plugin limitation: with pytest-asyncio's default function-scoped loop, "
                   "the loop's Runner cancels the pending task during teardown, before the plugin looks for "
                   "pending tasks (after teardown)")
def test_asyncio_pending_task_with_function_scoped_loop(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_asyncio")
    pytester.makepyfile(test_async=ASYNC_TESTS.replace('asyncio(loop_scope="module")', "asyncio"))
    make_ini(pytester, asyncio_mode="strict")
    result = run(pytester, "--cyclescope=fail", "-k", "pending")
    assert outcomes(result) == {"test_pending_task": "FAILED"}
    assert "pending task waiter" in failure_text(result, "test_pending_task")


# -- JSON, xdist, JUnit ------------------------------------------------------------------------


def test_json_report(pytester: pytest.Pytester) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    pytester.makepyfile(test_mod=CYCLE_TESTS, test_more="""
        from helpers import make_ring

        def test_ring():
            make_ring()
    """)
    result = run(pytester, "--cyclescope", "--cyclescope-json=out.json")
    result.assert_outcomes(passed=4)
    report = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))).validate(report)
    assert report["schema"] == "cyclescope.report/1"
    assert report["strategy"] == "freeze (per test)"
    groups = {g["signature"]: g for g in report["groups"]}
    assert groups[NODE_SIGNATURE]["tests"] == ["test_mod.py::test_cycle", "test_mod.py::test_cycle_too"]
    assert groups[NODE_SIGNATURE]["count"] == 2
    ring = groups["helpers.Ring .next -> helpers.Ring .next -> helpers.Ring .next"]
    assert ring["tests"] == ["test_more.py::test_ring"] and ring["count"] == 1
    totals = report["totals"]  # every test's captures added up
    assert totals["captured_objects"] >= sum(g["objects"] for g in report["groups"]) > 0
    assert totals["cyclic_components"] >= sum(g["count"] for g in report["groups"]) == 3
    assert totals["captured_bytes"] > 0 and totals["collections"] >= 3


def test_json_report_is_not_written_when_inactive(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=CYCLE_TESTS)
    run(pytester, "--cyclescope-json=out.json").assert_outcomes(passed=3)
    assert not (pytester.path / "out.json").exists()


XDIST_TESTS = """
import os
from pathlib import Path
from helpers import make_pair


def _note(name):
    Path("workers").mkdir(exist_ok=True)
    Path("workers", name).write_text(os.environ.get("PYTEST_XDIST_WORKER", "controller"))


def test_{f}_one():
    _note("{f}_one")
    make_pair()


def test_{f}_two():
    _note("{f}_two")
    make_pair()
"""
XDIST_IDS = ["test_x1.py::test_x1_one", "test_x1.py::test_x1_two", "test_x2.py::test_x2_one",
             "test_x2.py::test_x2_two"]


def _xdist_session(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_x1=XDIST_TESTS.format(f="x1"), test_x2=XDIST_TESTS.format(f="x2"))


def test_xdist_controller_merges_the_workers(pytester: pytest.Pytester) -> None:
    _xdist_session(pytester)
    result = run(pytester, "-n", "2", "--dist", "loadfile", "--cyclescope=fail", "--cyclescope-json=out.json")
    result.assert_outcomes(failed=4, errors=0)
    workers = {p.read_text() for p in (pytester.path / "workers").iterdir()}
    assert workers == {"gw0", "gw1"}  # both workers ran tests
    text = summary(result)
    assert result.stdout.str().count("cyclescope: 1 cycle group created by") == 1  # the controller's only
    assert "cyclescope: 1 cycle group created by 4 tests (of 4 watched)" in text
    assert "  created by 4 tests:\n" + "\n".join(f"    {n}" for n in XDIST_IDS) in text
    report = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))
    assert [g["tests"] for g in report["groups"]] == [XDIST_IDS]
    for nodeid in XDIST_IDS:
        assert "cyclescope: the test created 1 reference cycle" in failure_text(result, nodeid.split("::")[1])

    update = run(pytester, "-n", "2", "--dist", "loadfile", "--cyclescope=fail", "--cyclescope-baseline=b.json",
                 "--cyclescope-update-baseline")
    update.assert_outcomes(passed=4)
    baseline = json.loads((pytester.path / "b.json").read_text(encoding="utf-8"))
    assert baseline["groups"] == [{"signature": NODE_SIGNATURE, "subject": "helpers.Node",
                                   "pattern": "back-reference", "tests": XDIST_IDS}]
    run(pytester, "-n", "2", "--cyclescope=fail", "--cyclescope-baseline=b.json").assert_outcomes(passed=4)


def test_xdist_counts_each_cycle_once(pytester: pytest.Pytester) -> None:
    _xdist_session(pytester)
    run(pytester, "--cyclescope", "--cyclescope-json=alone.json").assert_outcomes(passed=4)
    one_process = json.loads((pytester.path / "alone.json").read_text(encoding="utf-8"))
    (alone,) = one_process["groups"]
    result = run(pytester, "-n", "2", "--dist", "loadfile", "--cyclescope", "--cyclescope-json=out.json")
    result.assert_outcomes(passed=4)
    merged = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))
    (group,) = merged["groups"]
    # the workers' totals are added up on the controller
    assert merged["totals"]["cyclic_components"] >= 4 and merged["totals"]["captured_objects"] >= group["objects"]
    # the same totals as one process: 4 cycles (their objects depend on the Python version)
    assert (group["count"], group["objects"], group["bytes"]) == (alone["count"], alone["objects"], alone["bytes"])
    assert group["count"] == 4
    assert "4 x cycle through helpers.Node" in summary(result)


def test_junit_properties(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=CYCLE_TESTS)
    result = run(pytester, "--cyclescope=fail", "--junitxml=j.xml")
    result.assert_outcomes(passed=1, failed=2)
    root = ET.parse(pytester.path / "j.xml").getroot()
    properties: dict[str, list[tuple[str, Any]]] = {}
    for case in root.iter("testcase"):
        properties[case.get("name", "")] = [(p.get("name"), p.get("value")) for p in case.iter("property")]
    assert properties["test_cycle"] == [("cyclescope_cycle_groups", "1"), ("cyclescope_new_cycle", NODE_SIGNATURE)]
    assert properties["test_clean"] == [("cyclescope_cycle_groups", "0")]


# -- the fixture -----------------------------------------------------------------------------

FIXTURE_TESTS = """
from helpers import make_pair


def test_explicit_capture(cyclescope):
    with cyclescope.capture() as cap:
        make_pair()
    (group,) = cap.report().groups
    assert group.signature == "helpers.Node .partner -> helpers.Node .partner"
    assert [step.edge for step in group.cycle] == [".partner", ".partner"]
    assert group.count == 1
"""


@pytest.mark.parametrize("option", [None, "--cyclescope"])
def test_fixture(pytester: pytest.Pytester, option: str | None) -> None:
    pytester.makepyfile(test_fix=FIXTURE_TESTS)
    result = run(pytester, *([option] if option else []))
    result.assert_outcomes(passed=1)
    if option:
        assert "cyclescope: " in summary(result)


def test_fixture_capture_is_also_seen_by_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fix=FIXTURE_TESTS)
    result = run(pytester, "--cyclescope=fail")
    assert outcomes(result) == {"test_explicit_capture": "FAILED"}
    assert "cyclescope: 1 cycle group created by 1 test (of 1 watched)" in summary(result)


# -- the collector's state ---------------------------------------------------------------------

GC_CONFTEST = """
import gc
import json

from cyclescope._gcstate import interpreter_frozen_baseline

HOST = {host!r}
BEFORE = {{}}


def gc_state():
    frozen = gc.get_freeze_count()
    if HOST != "frozen" and frozen == interpreter_frozen_baseline():
        frozen = 0  # what CPython 3.12 froze by itself may be thawed: no host froze it
    return {{"enabled": gc.isenabled(), "debug": gc.get_debug(), "threshold": list(gc.get_threshold()),
            "callbacks": [repr(c) for c in gc.callbacks], "garbage": len(gc.garbage), "frozen": frozen}}


def pytest_sessionstart(session):
    if HOST == "tuned":
        gc.disable()
        gc.set_threshold(500, 7, 3)
        gc.set_debug(gc.DEBUG_UNCOLLECTABLE)
    elif HOST == "frozen":  # a pre-fork server's habit: the plugin must use the exact strategy
        gc.collect()
        gc.freeze()
    BEFORE.update(gc_state())


def pytest_sessionfinish(session):
    with open("gc-state.json", "w") as fh:
        json.dump({{"before": BEFORE, "after": gc_state()}}, fh)
"""

GC_TESTS = """
import asyncio
import pytest
from helpers import Conn, make_pair

CACHE = []


def test_cycle():
    make_pair()


def test_clean():
    pass


@pytest.mark.no_leaks(types=[Conn])
def test_leak():
    CACHE.append(Conn())


@pytest.mark.no_cycles(warmups=1)
def test_warm():
    pass


def test_asyncio_run():
    async def main():
        await asyncio.sleep(0)
    asyncio.run(main())


def test_nested(cyclescope):
    with cyclescope.capture() as cap:
        data = [Conn() for _ in range(3)]
    assert cap.report().groups == [] and len(data) == 3


def test_raises():  # last: see test_exact_strategy_does_not_blame_the_next_test
    raise RuntimeError("own failure")
"""


@pytest.mark.parametrize("host", ["default", "tuned", "frozen"])
def test_gc_state_is_restored(pytester: pytest.Pytester, host: str) -> None:
    pytester.makeconftest(GC_CONFTEST.format(host=host))
    pytester.makepyfile(test_gc=GC_TESTS)
    result = run(pytester, "--cyclescope=fail")
    found = outcomes(result)
    assert (found["test_cycle"], found["test_clean"], found["test_raises"]) == ("FAILED", "PASSED", "FAILED")
    assert (found["test_warm"], found["test_asyncio_run"], found["test_nested"]) == ("PASSED",) * 3
    if host == "frozen":  # exact strategy: cycles are still found, leaks cannot be told
        assert found["test_leak"] == "PASSED"
        assert "no_leaks needs the freeze strategy" in summary(result)
    else:
        assert found["test_leak"] == "FAILED"
    state = json.loads((pytester.path / "gc-state.json").read_text(encoding="utf-8"))
    before, after = state["before"], state["after"]
    if host == "frozen":
        # Frozen objects freed by reference counting leave the permanent generation
        # as the session goes on; what must not happen is a thaw (the count at zero).
        assert before["frozen"] > 1000 and after["frozen"] > before["frozen"] * 0.9
        before["frozen"] = after["frozen"] = None
    assert after == before
    if host == "tuned":
        assert before["threshold"] == [500, 7, 3] and before["enabled"] is False


def test_exact_strategy_does_not_blame_the_next_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(GC_CONFTEST.format(host="frozen"))
    pytester.makepyfile(test_order="""
        def test_raises():
            raise RuntimeError("own failure")

        def test_clean_after():
            pass
    """)
    result = run(pytester, "--cyclescope=fail")
    assert outcomes(result) == {"test_raises": "FAILED", "test_clean_after": "PASSED"}


REFERRERS_TESTS = """
    import gc
    from helpers import make_pair

    HOLDER = {"thing": ["tracked"]}  # (a dict of untracked values is untracked: no referrer)

    def test_referrers_of_an_older_object():
        assert gc.get_referrers(HOLDER["thing"]) == [HOLDER]

    def test_cycle():
        make_pair()
"""


def test_the_exact_strategy_keeps_gc_introspection_whole(pytester: pytest.Pytester) -> None:
    # Frozen objects are not in gc.get_referrers()'s answers: code under test that asks
    # about objects older than the test needs the exact strategy (the README says so).
    pytester.makepyfile(test_referrers=REFERRERS_TESTS)
    frozen = run(pytester, "--cyclescope=fail")
    assert outcomes(frozen) == {"test_referrers_of_an_older_object": "FAILED", "test_cycle": "FAILED"}
    exact = run(pytester, "--cyclescope=fail", "--cyclescope-strategy=exact")
    assert outcomes(exact) == {"test_referrers_of_an_older_object": "PASSED", "test_cycle": "FAILED"}
    assert "cyclescope: the test created 1 reference cycle in 1 group not in the baseline" in failure_text(
        exact, "test_cycle")
    make_ini(pytester, cyclescope_strategy="exact")
    run(pytester, "--cyclescope", "-k", "older_object").assert_outcomes(passed=1)
    make_ini(pytester, cyclescope_strategy="fast")
    bad = run(pytester, "--cyclescope")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*cyclescope_strategy' must be freeze or exact, not 'fast'*"])


UNCLOSED_SOCKET_IN_A_CYCLE = """
    import socket

    def test_leaves_a_socket_in_a_cycle():
        box = {"socket": socket.socket()}
        box["box"] = box

    def test_innocent():
        pass
"""


@pytest.mark.parametrize("host", ["default", "frozen"])
def test_what_the_garbages_finalizers_raise_is_the_test_that_left_it(pytester: pytest.Pytester, host: str) -> None:
    # The socket's ResourceWarning, an error under -W error, is raised in the collection
    # after the test's teardown: pytest alone would report it in the next test's setup.
    pytester.makeconftest(GC_CONFTEST.format(host=host))
    pytester.makepyfile(test_order=UNCLOSED_SOCKET_IN_A_CYCLE)
    errors = ("-W", "error::ResourceWarning", "-W", "error::pytest.PytestUnraisableExceptionWarning")
    result = run(pytester, "--cyclescope", *errors)
    assert outcomes(result) == {"test_leaves_a_socket_in_a_cycle": "ERROR", "test_innocent": "PASSED"}
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaves_a_socket_in_a_cycle*",
                                 "*ResourceWarning: unclosed <socket.socket*",
                                 "*raised in cyclescope's collection of what this test left as cyclic garbage*"])
    # Not made an error: a warning of the test that left the socket.
    warned = run(pytester, "--cyclescope", "-W", "error::ResourceWarning")
    assert outcomes(warned) == {"test_leaves_a_socket_in_a_cycle": "PASSED", "test_innocent": "PASSED"}
    warned.stdout.fnmatch_lines(["*warnings summary*", "test_order.py::test_leaves_a_socket_in_a_cycle",
                                 "*PytestUnraisableExceptionWarning*"])


def test_a_mock_in_a_cycle_is_described_without_being_asked_anything(pytester: pytest.Pytester) -> None:
    # Found on aiohttp 3.11.13's test_connector.py (autospecced sockets and methods): a
    # mock passes isinstance() for its spec, then answers every attribute with a mock,
    # and a mock is the integer 1. Described as the bound method it claims to be, its
    # "source file" was fd 1, which reading it as a file closed: pytest's own output
    # (a file here, as in CI logs) then failed with an INTERNALERROR.
    pytester.makepyfile(test_mocks="""
        import types
        from unittest import mock

        def test_leaves_a_mock_in_a_cycle():
            method = mock.MagicMock(spec=types.MethodType)
            method.__func__ = mock.MagicMock(spec=types.FunctionType)
            method.me = method

        def test_after():
            print("standard output still open")
    """)
    result = run(pytester, "--cyclescope", "-s")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert outcomes(result) == {"test_leaves_a_mock_in_a_cycle": "PASSED", "test_after": "PASSED"}
    result.stdout.fnmatch_lines(["*standard output still open*"])  # (mock's own cycles are the stdlib's: noise)


def test_a_test_that_turns_gc_debugging_off_does_not_blind_the_next(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_order="""
        import gc
        from helpers import make_pair

        def test_turns_saveall_off():
            gc.set_debug(0)
            gc.callbacks.clear()

        def test_cycle_after():
            make_pair()
    """)
    result = run(pytester, "--cyclescope=fail")
    assert outcomes(result) == {"test_turns_saveall_off": "PASSED", "test_cycle_after": "FAILED"}


@pytest.mark.parametrize("host", ["default", "frozen"])
def test_cycles_made_between_tests_are_charged_to_no_test(pytester: pytest.Pytester, host: str) -> None:
    pytester.makeconftest(GC_CONFTEST.format(host=host) + """
from helpers import make_pair


def pytest_runtest_logfinish(nodeid, location):
    make_pair()  # after the test's segment ended, before the next one begins
""")
    pytester.makepyfile(test_order="""
        def test_one():
            pass

        def test_two():
            pass
    """)
    result = run(pytester, "--cyclescope=fail")
    assert outcomes(result) == {"test_one": "PASSED", "test_two": "PASSED"}


# -- no_leaks' explanation, in process -------------------------------------------------------


class Survivor:
    pass


HELD: list[Survivor] = []


@pytest.mark.usefixtures("gc_state_kept")
def test_held_by_leaves_no_garbage_behind() -> None:
    # held_by() once kept its own frame in a local (a frame <-> local cycle per call,
    # which a later explanation could report as the holder), and walked into its own
    # bookkeeping tuples instead of the real referrers.
    import gc

    from cyclescope.testing.survivors import held_by

    HELD.append(Survivor())
    flags = gc.get_debug()
    gc.collect()
    gc.set_debug(flags | gc.DEBUG_SAVEALL)
    try:
        chain = held_by(HELD[-1])
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage]
    finally:
        gc.set_debug(flags)
        gc.garbage.clear()
        HELD.clear()
    assert chain == [f"module {__name__}", ".HELD", "[0]", "Survivor"]
    assert left == []


def test_bad_warmups_is_a_usage_error_before_any_test_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad="""
        import pytest

        def test_first():
            pass

        @pytest.mark.no_cycles(warmups=-1)
        def test_bad():
            pass
    """)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "no_cycles(warmups=...) must be a whole number >= 0, not -1 (test_bad.py::test_bad)" in (
        result.stderr.str() + result.stdout.str())
    assert "test_first" not in result.stdout.str() or "passed" not in result.stdout.str()


def test_pytests_own_cycles_are_not_findings(pytester: pytest.Pytester) -> None:
    # A skipped test leaves pytest's CallInfo/ExceptionInfo cycle: pytest's, not the project's.
    pytester.makepyfile(test_skip="""
        import pytest

        def test_skipped():
            pytest.skip("not here")
    """)
    result = run(pytester, "--cyclescope=fail")
    result.assert_outcomes(skipped=1)
    assert "cyclescope: no reference cycles created by the 1 test(s) watched" in result.stdout.str()


def test_a_path_after_the_bare_option_is_a_path_not_a_mode(pytester: pytest.Pytester) -> None:
    # argparse gives `--cyclescope test_one.py` the file as the option's value.
    pytester.makepyfile(test_one=CYCLE_TESTS, test_two="def test_other():\n    pass\n")
    result = run(pytester, "--cyclescope", "test_one.py")
    result.assert_outcomes(passed=3)  # test_one.py only, in report mode
    assert "cyclescope: 1 cycle group created by 2 tests (of 3 watched)" in summary(result)
    result = run(pytester, "--cyclescope", "test_one.py", "test_two.py")
    result.assert_outcomes(passed=4)
    result = run(pytester, "--cyclescope", "nonsense")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--cyclescope takes report or fail, not 'nonsense'" in result.stderr.str()


def test_a_group_with_its_break_step_out_of_range_is_shown_in_full() -> None:
    # (a group read back from an xdist worker or a file: its advice is not trusted to index)
    from cyclescope.pytest_plugin import _same_advice
    from cyclescope.report.model import Group, Step

    group = Group(count=1, objects=1, bytes=10, signature="s", cycle=[Step("dict", "['me']")],
                  pattern="self-reference", break_step=3)
    assert _same_advice(group) is None
    group.break_step = 0
    assert _same_advice(group) == ("self-reference", group.subject, "dict", "['me']", "")
