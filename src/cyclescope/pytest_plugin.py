"""pytest plugin: which test creates which reference cycle, and a CI gate that fails on new ones.

Registered through the ``pytest11`` entry point and inactive unless asked for:
``pytest --cyclescope`` (same as ``--cyclescope=report``: never fails) or
``--cyclescope=fail`` (a test creating a cycle group that is not in the baseline
fails, with the explanation in its report), or the ini option ``cyclescope``.
The markers ``no_cycles`` and ``no_leaks`` are honoured whenever the plugin is
installed: a test that carries one has asked for the check.

How a test is watched: the test loop runs inside one :class:`cyclescope.capture`
with the freeze strategy, and each test's whole protocol (setup, call, teardown) is
one segment of it: what exists when the test starts is frozen, so the collection
at its end only looks at what the test allocated, not at the suite's heap. What
that misses: a cycle through an object created before the test (a session
fixture's, a module global's) is not seen (the collector treats frozen objects as
alive), and such cycles, once dropped, are freed only when the loop ends and the
heap is thawed. When the suite itself froze objects (``gc.freeze()``), the exact
strategy runs instead: one full collection at each end of every test.

Findings are attached to the test's call report (or its teardown report, when the
call did not run) before any report of the test is logged, so that a test failing
the gate shows as FAILED, with a ``cyclescope`` section explaining each new group.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from cyclescope.testing.baseline import Baseline, BaselineEntry, BaselineError, load_baseline, save_baseline

if TYPE_CHECKING:
    from cyclescope.report.model import Group, Report, Totals
    from cyclescope.testing.survivors import PendingTask

__all__ = ["MODES"]

MODES = ("report", "fail")
STRATEGIES = ("freeze", "exact")
_SECTION = "cyclescope"
_MAX_SURVIVORS_EXPLAINED = 3
#: Patterns whose groups differ only by a name: in the summary, one line each after the first.
_ONE_LINE_AFTER_THE_FIRST = frozenset({"class-definition"})
#: pytest's own cycles (a skipped test's CallInfo, its ExceptionInfo) are not the project's.
_RUNNER_PACKAGES = ("_pytest", "pluggy", "pytest")


# -- options ------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cyclescope", "reference cycles created by each test (cyclescope)")
    # No argparse choices: `pytest --cyclescope tests/` would give argparse "tests/" as the
    # mode and stop; pytest_configure hands such a value back to the test paths.
    group.addoption("--cyclescope", nargs="?", const="report", default=None, metavar="MODE",
                    help="capture the reference cycles each test creates: 'report' (default; never fails) "
                         "or 'fail' (a test creating a cycle group not in the baseline fails)")
    group.addoption("--cyclescope-baseline", metavar="FILE", default=None,
                    help="JSON file of known cycle signatures: only groups not in it fail")
    group.addoption("--cyclescope-update-baseline", action="store_true", default=False,
                    help="write the signatures this run saw to the baseline file (and fail on none)")
    group.addoption("--cyclescope-json", metavar="FILE", default=None,
                    help="write the whole run's findings as a JSON report (cyclescope.report/1)")
    parser.addini("cyclescope", "cyclescope mode when --cyclescope is not given: report, fail or off",
                  default="off")
    group.addoption("--cyclescope-strategy", choices=STRATEGIES, default=None,
                    help="'freeze' (default: each test's end collects only what it allocated) or 'exact' "
                         "(a full collection at each end of every test: slower on a big heap, but "
                         "gc.get_referrers() and gc.get_objects() still see every object)")
    parser.addini("cyclescope_baseline", "baseline file (relative to the rootdir)", default="")
    parser.addini("cyclescope_strategy", "freeze (the default) or exact, as --cyclescope-strategy", default="freeze")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_cycles(*ignore, warmups=0): this test must create no reference "
                            "cycle (cycles through a type matching an ignore class or name pattern are allowed)")
    config.addinivalue_line("markers", "no_leaks(*types, types=(), warmups=0): objects of these types (classes "
                            "or name patterns) created by this test must be gone after its teardown")
    _require_joined_file_options(config)
    mode = _mode_from_option(config) or str(config.getini("cyclescope") or "off").strip().lower()
    if mode not in (*MODES, "off"):
        raise pytest.UsageError(f"cyclescope: ini option 'cyclescope' must be report, fail or off, not {mode!r}")
    baseline_path = config.getoption("cyclescope_baseline") or str(config.getini("cyclescope_baseline") or "")
    if baseline_path and not os.path.isabs(baseline_path):
        baseline_path = os.path.join(str(config.rootpath), baseline_path)
    if config.getoption("cyclescope_update_baseline") and not baseline_path:
        raise pytest.UsageError("cyclescope: --cyclescope-update-baseline needs --cyclescope-baseline FILE")
    try:
        baseline = load_baseline(baseline_path) if baseline_path else Baseline()
    except BaselineError as exc:
        raise pytest.UsageError(f"cyclescope: {exc}") from None
    strategy = config.getoption("cyclescope_strategy") or str(config.getini("cyclescope_strategy")).strip().lower()
    if strategy not in STRATEGIES:
        raise pytest.UsageError(f"cyclescope: ini option 'cyclescope_strategy' must be freeze or exact, not {strategy!r}")
    plugin = _Plugin(config, None if mode == "off" else mode, baseline, baseline_path, freeze=strategy == "freeze")
    config.pluginmanager.register(plugin, "cyclescope-session")


#: Options whose value is a file: given as two words, pytest would take the file for a test path.
_FILE_OPTIONS = ("--cyclescope-baseline", "--cyclescope-json")


def _require_joined_file_options(config: pytest.Config) -> None:
    """``--cyclescope-baseline=FILE``, never ``--cyclescope-baseline FILE`` on the command line.

    pytest picks its rootdir and ini file from the command line's paths before it loads
    plugins: an option it does not know yet leaves FILE looking like a path, and when FILE
    exists outside the project the rootdir moves and the project's ini file (addopts,
    testpaths, filterwarnings) is silently dropped; on the first run, before FILE exists,
    nothing shows. Refused every time, so that the first run already says how to write it.
    """
    import shlex

    given = [*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *config.invocation_params.args]
    for option in _FILE_OPTIONS:
        if option in given:
            raise pytest.UsageError(
                f"cyclescope: write {option}=FILE, with '=': as two words, pytest takes FILE for a test "
                f"path while it looks for its rootdir and ini file (before it loads plugins)")


def _mode_from_option(config: pytest.Config) -> str | None:
    """``--cyclescope``'s mode; a test path that argparse took for the mode goes back to the paths."""
    value = config.getoption("cyclescope")
    if value is None or value in MODES:
        return value
    if "::" in value or os.path.exists(value.split("::")[0]):
        args_source = getattr(config, "args_source", None)  # pytest 7.3+
        if args_source is None or args_source == pytest.Config.ArgsSource.ARGS:
            config.args.insert(0, value)
        else:  # the paths pytest fell back on (testpaths, the current directory) were not asked for
            config.args[:] = [value]
        return "report"
    raise pytest.UsageError(f"cyclescope: --cyclescope takes report or fail, not {value!r}")


# -- per-test results ---------------------------------------------------------------------


@dataclass
class _TestOutcome:
    """What one test left: its cycle groups, pending tasks, and watched objects still alive."""

    groups: list[Group] = field(default_factory=list)
    pending: list[PendingTask] = field(default_factory=list)
    survivors: list[str] = field(default_factory=list)  # explained, one line each
    errors: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.groups or self.pending or self.survivors or self.errors)


@dataclass
class _Verdict:
    failures: list[str] = field(default_factory=list)  # why the test fails, one line each
    new_groups: list[Group] = field(default_factory=list)


class _LeftoverProbe:
    """Called by the capture after its last collection, before anything is thawed: the
    young objects are then what the test made and kept. Notes pending asyncio tasks
    and, for ``no_leaks``, the watched objects still alive.

    Also, from :meth:`catch_unraisable` until then: what the finalizers of the test's
    garbage raise during that collection (an unclosed socket's ResourceWarning). It
    belongs to this test, while pytest, whose phases are over, would report it in the
    next test's setup.
    """

    def __init__(self, survivors: Any, no_leaks: pytest.Mark | None) -> None:
        self.survivors = survivors
        self.watched = None
        if no_leaks is not None:
            self.watched = survivors.TypeMatcher([*no_leaks.args, *no_leaks.kwargs.get("types", ())])
        self.pending: list[PendingTask] = []
        self.alive: list[object] = []
        self.errors: list[str] = []
        self.unraisable: list[str] = []  # described at once: the objects are garbage
        self._hook_replaced: Any = None

    def catch_unraisable(self) -> None:
        self._hook_replaced = sys.unraisablehook
        sys.unraisablehook = self._note_unraisable

    def _note_unraisable(self, unraisable: Any) -> None:
        self.unraisable.append(_describe_unraisable(unraisable))

    def __call__(self, cap: Any) -> None:
        if self._hook_replaced is not None:
            sys.unraisablehook, self._hook_replaced = self._hook_replaced, None
        survivors, watched = self.survivors, self.watched
        if cap.strategy != "freeze":
            if watched:
                self.errors.append("no_leaks needs the freeze strategy (the exact one was chosen, or this process "
                                   "froze objects itself)")
            return
        look_for_tasks = survivors.may_have_pending_tasks()
        if not (watched or look_for_tasks):
            return
        try:
            young = survivors.young_objects(exclude=cap.store)
            if look_for_tasks:
                self.pending = survivors.pending_tasks(young)
            if watched:
                self.alive = [o for o in young if watched.matches_type(type(o))]
            del young
        except Exception as exc:  # noqa: BLE001 - never stop the session
            self.errors.append(f"looking for leftovers failed: {type(exc).__name__}: {exc}")

    def explain_alive(self) -> list[str]:
        """One line per watched survivor (the first few), then let go of them."""
        alive, self.alive = self.alive, []
        if not alive:
            return []
        try:
            return _explain_survivors(alive)
        except Exception as exc:  # noqa: BLE001 - never stop the session; the check still fails
            return [f"{len(alive)} watched object(s) still alive (explaining them failed: "
                    f"{type(exc).__name__}: {exc})"]


class _Plugin:
    """Session state: mode, baseline, and everything found so far."""

    def __init__(self, config: pytest.Config, mode: str | None, baseline: Baseline, baseline_path: str,
                 freeze: bool = True) -> None:
        self.config = config
        self.mode = mode
        self.freeze = freeze
        self.baseline = baseline
        self.baseline_path = baseline_path
        self.update_baseline = bool(config.getoption("cyclescope_update_baseline"))
        self.json_path = config.getoption("cyclescope_json")
        self.groups: dict[str, Group] = {}  # by signature, with .tests
        self.pending: dict[str, list[str]] = {}  # pending-task signature -> tests
        self.ran: set[str] = set()
        self.totals: Totals | None = None  # of every test's captures, once one captured something
        self.errors: list[str] = []
        self.advice: dict[str, Any] = {}  # signature -> advised group: advice once per cycle shape
        self.marks: dict[str, tuple[pytest.Mark | None, pytest.Mark | None]] = {}  # node id -> markers
        self.clean_properties = [("cyclescope_cycle_groups", "0")]
        self._runtime: _Runtime | None = None
        self.session_capture: Any = None  # the test loop's capture (with --cyclescope)
        if mode is not None:
            self.runtime()  # now rather than in the first test, whose time it would inflate

    def new_capture(self, **options: Any) -> Any:
        return self.runtime().capture(freeze=self.freeze, also_noise=_RUNNER_PACKAGES, advice_cache=self.advice,
                                      **options)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Iterator[None]:
        """With --cyclescope: one capture for the whole test loop, one segment of it per test."""
        if self.mode is None or self.config.pluginmanager.has_plugin("dsession"):
            yield  # (an xdist controller runs no test: its workers capture)
            return
        with self.new_capture() as cap:
            self.session_capture = cap
            try:
                yield
            finally:
                self.session_capture = None

    def runtime(self) -> _Runtime:
        if self._runtime is None:
            self._runtime = _Runtime()
        return self._runtime

    # -- running a test -----------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        marks = self.marks.get(item.nodeid)
        if marks is None:
            if self.mode is None:
                return None
            no_cycles = no_leaks = None
        else:
            no_cycles, no_leaks = marks
        ihook = item.ihook
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        if marks is None or not self._warm_up(item, nextitem, ihook, max(_warmups(no_cycles), _warmups(no_leaks))):
            reports = self._watched_run(item, nextitem, no_cycles, no_leaks)
            _log(ihook, reports)
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def _warm_up(self, item: pytest.Item, nextitem: pytest.Item | None, ihook: Any, warmups: int) -> bool:
        """Run the test ``warmups`` times unwatched; True when a run failed (then logged as the result)."""
        runtestprotocol = self.runtime().runtestprotocol
        for _ in range(warmups):
            # nextitem=item.parent: tear down the test's own fixtures, keep the wider-scoped ones
            reports = runtestprotocol(item, nextitem=item.parent, log=False)  # type: ignore[arg-type]
            if any(r.failed for r in reports):  # a failing warm-up is the test's result
                from _pytest.runner import CallInfo

                # ... after the rest of the teardown the watched run would have done
                # (wider-scoped fixtures that nextitem does not need)
                call = CallInfo.from_call(lambda: item.session._setupstate.teardown_exact(nextitem), "teardown")
                if call.excinfo is not None:
                    reports[-1] = ihook.pytest_runtest_makereport(item=item, call=call)
                _log(ihook, reports)
                return True
        return False

    def _watched_run(self, item: pytest.Item, nextitem: pytest.Item | None, no_cycles: pytest.Mark | None,
                     no_leaks: pytest.Mark | None) -> list[Any]:
        """Run the test's protocol inside a segment (or a capture of its own); its findings
        recorded, judged and attached to its reports, which are returned unlogged."""
        runtime = self._runtime or self.runtime()
        probe = _LeftoverProbe(runtime.survivors, no_leaks)
        # pytest keeps the last failure in sys.last_* until the next test's call phase:
        # dropped then, its cycles would be charged to that test (exact strategy).
        if "last_value" in sys.__dict__ or "last_exc" in sys.__dict__:
            for name in ("last_type", "last_value", "last_traceback", "last_exc"):
                sys.__dict__.pop(name, None)
        session = self.session_capture
        if session is not None:
            with session.segment(on_flushed=probe) as segment:
                reports = runtime.runtestprotocol(item, nextitem=nextitem, log=False)
                probe.catch_unraisable()
            report = segment.report()
        else:  # a marked test in a session without --cyclescope: a capture of its own
            with self.new_capture(on_flushed=probe) as cap:
                reports = runtime.runtestprotocol(item, nextitem=nextitem, log=False)
                probe.catch_unraisable()
            report = cap.report()
        self.ran.add(item.nodeid)
        if probe.unraisable:
            _report_unraisable(reports, probe.unraisable)
        try:
            if not (report.groups or report.errors or report.totals.captured_objects or probe.pending
                    or probe.alive or probe.errors or no_cycles is not None):
                # the common case, paid per test: nothing to record, judge or explain
                for test_report in _findings_reports(reports):
                    test_report.user_properties.extend(self.clean_properties)
                return reports
            self._add_totals(report.totals)
            outcome = _TestOutcome(list(report.groups), probe.pending, errors=probe.errors + report.errors)
            outcome.survivors = probe.explain_alive()
            self._record(item.nodeid, outcome)
            _attach(reports, outcome, self._judge(outcome, no_cycles))
        except Exception as exc:  # noqa: BLE001 - a bug of cyclescope's must not stop the session
            self.errors.append(f"{item.nodeid}: cyclescope failed: {type(exc).__name__}: {exc}")
        return reports

    def _add_totals(self, totals: Totals) -> None:
        if self.totals is None:
            from cyclescope.report.model import Totals

            self.totals = Totals()
        self.totals.add(totals)

    def _record(self, nodeid: str, outcome: _TestOutcome) -> None:
        for group in outcome.groups:
            group.tests = [nodeid]
            known = self.groups.get(group.signature)
            if known is None:
                self.groups[group.signature] = group
            else:
                known.count += group.count
                known.objects += group.objects
                known.bytes += group.bytes
                if nodeid not in known.tests:
                    known.tests.append(nodeid)
        for task in outcome.pending:
            tests = self.pending.setdefault(task.signature, [])
            if nodeid not in tests:
                tests.append(nodeid)
        self.errors += [f"{nodeid}: {e}" for e in outcome.errors]

    def _judge(self, outcome: _TestOutcome, no_cycles: pytest.Mark | None) -> _Verdict:
        verdict = _Verdict()
        if no_cycles is not None:
            ignore = _ignore_patterns(no_cycles)
            offending = [g for g in outcome.groups if not _passes_through(g, ignore)]
            if offending:
                verdict.failures.append(f"no_cycles: the test created {_groups_text(offending)}")
                verdict.new_groups += offending
        if outcome.survivors:
            verdict.failures.append(f"no_leaks: {len(outcome.survivors)} watched object(s) outlived the test")
        if self.mode == "fail" and not self.update_baseline:
            new = [g for g in outcome.groups if g.signature not in self.baseline and g not in verdict.new_groups]
            if new:
                verdict.failures.append(f"cyclescope: the test created {_groups_text(new)} not in the baseline")
                verdict.new_groups += new
            tasks = [t for t in outcome.pending if t.signature not in self.baseline]
            if tasks:
                verdict.failures.append(f"cyclescope: the test left {len(tasks)} asyncio task(s) pending")
        return verdict

    @pytest.hookimpl(trylast=True)  # after the plugins that add markers
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Note each test's markers, and check their arguments before any test runs."""
        for item in items:
            marks = (item.get_closest_marker("no_cycles"), item.get_closest_marker("no_leaks"))
            for mark in marks:
                _warmups(mark, item.nodeid)  # a bad one is a usage error
            if marks != (None, None):
                self.marks[item.nodeid] = marks

    # -- the end of the session -------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """pytest-xdist controller: merge what a worker found."""
        data = getattr(node, "workeroutput", {}).get("cyclescope")
        if data:
            self._merge(json.loads(data))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller reports
            workeroutput["cyclescope"] = json.dumps(self._state())
            return
        if self.update_baseline and self.mode is not None:
            seen = [BaselineEntry(sig, g.subject, g.pattern, list(g.tests)) for sig, g in self.groups.items()]
            seen += [BaselineEntry(sig, "asyncio.Task", "pending-task", list(t)) for sig, t in self.pending.items()]
            save_baseline(self.baseline.updated(seen, self.ran), self.baseline_path)
        if self.json_path and self.mode is not None:
            with open(self.json_path, "w", encoding="utf-8") as fh:
                fh.write(self.run_report().to_json() + "\n")

    def run_report(self) -> Report:
        """The whole run's findings as one report, each group with the tests that created it."""
        from cyclescope.report.model import Totals, build_report
        from cyclescope.report.text import inline_test_list

        groups = list(self.groups.values())
        for group in groups:
            group.tests = sorted(group.tests)
        warnings = [f"{sig} (left by {len(tests)} test(s): {inline_test_list(sorted(tests))})"
                    for sig, tests in sorted(self.pending.items())]
        strategy = "freeze" if self.freeze else "exact"
        return build_report(groups, self.totals or Totals(), strategy=f"{strategy} (per test)", warnings=warnings,
                            errors=self.errors)

    def _state(self) -> dict[str, Any]:
        return {"report": self.run_report().to_dict(), "pending": self.pending, "ran": sorted(self.ran)}

    def _merge(self, state: dict[str, Any]) -> None:
        from cyclescope.report.model import Report

        report = Report.from_dict(state["report"])
        self._add_totals(report.totals)
        for group in report.groups:
            first, *others = group.tests or [""]
            self._record(first, _TestOutcome(groups=[_copy_with_tests(group, [])]))  # counts added once
            known = self.groups[group.signature].tests
            known += [t for t in others if t not in known]
        for sig, tests in state.get("pending", {}).items():
            self.pending.setdefault(sig, [])
            self.pending[sig] += [t for t in tests if t not in self.pending[sig]]
        self.ran.update(state.get("ran", []))
        self.errors += state["report"].get("errors", [])

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.mode is None or getattr(self.config, "workeroutput", None) is not None:
            return
        for line in self.summary_lines():
            terminalreporter.write_line(line)

    def summary_lines(self) -> list[str]:
        """The terminal summary: groups across tests, with the tests that created each."""
        from cyclescope.report.text import break_text, render_group, render_tests, inline_test_list

        groups = self.run_report().groups
        tests = {t for g in groups for t in g.tests}
        lines = ["", "=" * 30 + " cyclescope " + "=" * 30]
        if not groups:
            lines.append(f"cyclescope: no reference cycles created by the {len(self.ran)} test(s) watched")
        else:
            lines.append(f"cyclescope: {len(groups)} cycle group{'s' if len(groups) != 1 else ''} "
                         f"created by {len(tests)} test{'s' if len(tests) != 1 else ''} "
                         f"(of {len(self.ran)} watched)")
        shown_in_full: set[tuple[str, ...]] = set()
        one_line = False
        for group in groups:
            known = " (in the baseline)" if group.signature in self.baseline else ""
            key = _same_advice(group)
            was_one_line, one_line = one_line, key is not None and key in shown_in_full
            if not (one_line and was_one_line):
                lines.append("")
            if one_line:
                # the same pattern through the same type as above: only a name or the line differs
                head = render_group(group)[0]
                edge = break_text(group) if group.pattern not in _ONE_LINE_AFTER_THE_FIRST else ""
                lines.append(f"{head}{known}: {group.pattern} as above{', break ' + edge if edge else ''}, "
                             f"created by {inline_test_list(group.tests)}")
                continue
            if key is not None:
                shown_in_full.add(key)
            lines.extend(render_group(group))
            lines.extend(render_tests(group, known))
        for sig, tests in sorted(self.pending.items()):
            lines.append("")
            lines.append(f"{sig}: left by {len(tests)} test(s): {inline_test_list(sorted(tests))}")
        for error in self.errors:
            lines.append(f"error: {error}")
        if self.update_baseline:
            lines.append(f"cyclescope: baseline written to {self.baseline_path}")
        return lines

    # -- the explicit fixture -------------------------------------------------------------


@pytest.fixture
def cyclescope() -> Iterator[Any]:
    """The cyclescope module, for explicit captures inside a test.

    ``with cyclescope.capture() as cap: ...`` then ``cap.report()``; captures are
    nested inside the plugin's own per-test capture when that one runs.
    """
    import cyclescope as module

    yield module


# -- helpers --------------------------------------------------------------------------------


class _Runtime:
    """What watching a test needs, imported once.

    Not at the top of the module: with the plugin inactive (the default) a pytest run
    must not pay for importing cyclescope. Not in each test either: imports cost
    microseconds that a fast suite notices.
    """

    def __init__(self) -> None:
        from _pytest.runner import runtestprotocol

        import cyclescope.report.text  # noqa: F401 - renders what the analysis finds
        from cyclescope.capturing import capture
        from cyclescope.explain.cycles import prepare
        from cyclescope.testing import survivors

        prepare()

        self.runtestprotocol = runtestprotocol
        self.capture = capture
        self.survivors = survivors


def _warmups(mark: pytest.Mark | None, nodeid: str = "") -> int:
    if mark is None:
        return 0
    value = mark.kwargs.get("warmups", 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        where = f" ({nodeid})" if nodeid else ""
        raise pytest.UsageError(f"cyclescope: {mark.name}(warmups=...) must be a whole number >= 0, "
                                f"not {value!r}{where}")
    return value


def _ignore_patterns(mark: pytest.Mark) -> list[object]:
    return list(mark.args) + list(mark.kwargs.get("ignore", ()))


def _passes_through(group: Group, ignore: list[object]) -> bool:
    """Whether the group's cycle runs through a type matching one of ``ignore`` (classes or patterns)."""
    from cyclescope.describe import step_type_names
    from cyclescope.testing.survivors import TypeMatcher

    if not ignore:
        return False
    names = set().union(*(step_type_names(step.type, step.module) for step in group.cycle))
    return TypeMatcher(ignore).matches_names(names)


def _same_advice(group: Group) -> tuple[str, ...] | None:
    """What makes a group's full text repeat an earlier one's, for the summary: a class
    made per test (only its name differs), or the same pattern through the same type,
    broken at the same edge (a local, whatever its name: pytest.raises in many tests) and
    matching the same known issue, if any."""
    if group.pattern in _ONE_LINE_AFTER_THE_FIRST:
        return (group.pattern,)
    if not group.pattern or group.break_step is None or not 0 <= group.break_step < len(group.cycle):
        return None  # (a group read back from a worker or a file says what it says)
    step = group.cycle[group.break_step]
    edge = "a local" if step.edge_kind == "local" else step.edge
    known = group.known_issue.id if group.known_issue is not None else ""
    return group.pattern, group.subject, step.type, edge, known


def _groups_text(groups: list[Group]) -> str:
    total = sum(g.count for g in groups)
    return (f"{total} reference cycle{'s' if total != 1 else ''} in {len(groups)} "
            f"group{'s' if len(groups) != 1 else ''}")


def _copy_with_tests(group: Group, tests: list[str]) -> Group:
    from dataclasses import replace

    return replace(group, tests=list(tests))


def _explain_survivors(alive: list[object]) -> list[str]:
    from cyclescope.describe import type_name
    from cyclescope.testing.survivors import held_by

    lines = []
    for obj in alive[:_MAX_SURVIVORS_EXPLAINED]:
        chain = held_by(obj, ignore=[alive])
        how = " -> ".join(chain) if chain else "(no path to a root found within the search budget)"
        lines.append(f"{type_name(type(obj))} still alive, held by: {how}")
    if len(alive) > _MAX_SURVIVORS_EXPLAINED:
        lines.append(f"... and {len(alive) - _MAX_SURVIVORS_EXPLAINED} more")
    return lines


def _attach(reports: list[Any], outcome: _TestOutcome, verdict: _Verdict) -> None:
    """Put the findings on the call report (else the teardown's), failing it when the verdict says so."""
    from cyclescope.report.text import render_group

    findings_reports = _findings_reports(reports)
    target = findings_reports[0]
    properties = [("cyclescope_cycle_groups", str(len(outcome.groups)))]
    properties += [("cyclescope_new_cycle", group.signature) for group in verdict.new_groups]
    properties += [("cyclescope_pending_task", task.signature) for task in outcome.pending]
    # Each report carries what was recorded so far, as with record_property; junitxml
    # reads the teardown report's.
    for report in findings_reports:
        report.user_properties.extend(properties)
    if not outcome.found:
        return
    failing = bool(verdict.failures) or any(r.failed for r in reports)
    if not failing and not outcome.errors:
        return  # the run's summary shows the groups; a passing test's section would go unread
    lines: list[str] = list(verdict.failures)
    for group in verdict.new_groups or outcome.groups:
        lines.append("")
        lines.extend(render_group(group))
    for task in outcome.pending:
        lines.append(f"{task.signature} (suspended at {task.location or '?'})")
    lines += outcome.survivors
    lines += [f"error: {e}" for e in outcome.errors]
    if verdict.failures and all(r.passed for r in reports):  # never turn a skip or an error into a failure
        target.outcome = "failed"
        target.longrepr = "\n".join(lines)
    else:
        target.sections.append((_SECTION, "\n".join(lines)))


def _describe_unraisable(unraisable: Any) -> str:
    """pytest's text for an exception raised where nothing could catch it (as its
    PytestUnraisableExceptionWarning says it), with the object named by its type only:
    it is garbage, and its repr would be user code."""
    import traceback

    from cyclescope.describe import redact, type_name

    try:
        lines = traceback.format_exception(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback)
    except Exception:  # noqa: BLE001 - a hostile __str__: the type still says what it was
        lines = [f"{type_name(unraisable.exc_type)}\n"]
    where = f"<{type_name(type(unraisable.object))} object>" if unraisable.object is not None else ""
    return redact(f"{unraisable.err_msg or 'Exception ignored in'}: {where}\n\n{''.join(lines)}".rstrip())


def _report_unraisable(reports: list[Any], described: list[str]) -> None:
    """Warn about each as pytest does, in this test (its filterwarnings apply); one that the
    filters turn into an error fails the teardown, as it would have failed the next test."""
    import warnings

    errors = []
    for text in described:
        try:
            warnings.warn(pytest.PytestUnraisableExceptionWarning(
                f"{text}\n(raised in cyclescope's collection of what this test left as cyclic garbage)"))
        except Exception as exc:  # noqa: BLE001 - the filter made it an error, whatever its class
            errors.append(f"{type(exc).__name__}: {exc}")
    teardown = reports[-1]
    if not errors or teardown.when != "teardown":
        return
    if teardown.passed:
        teardown.outcome = "failed"
        teardown.longrepr = "\n\n".join(errors)
    else:
        teardown.sections.append((_SECTION, "\n\n".join(errors)))


def _findings_reports(reports: list[Any]) -> list[Any]:
    """The reports that carry a test's findings: call and teardown (teardown alone when
    the setup failed); the first of them takes a failure."""
    return [r for r in reports if r.when != "setup"] or reports[-1:]


def _log(ihook: Any, reports: list[Any]) -> None:
    for report in reports:
        ihook.pytest_runtest_logreport(report=report)
