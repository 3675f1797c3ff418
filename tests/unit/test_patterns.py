"""Pattern, explanation, edge to break and lines to change, on real cycles made here."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import types
from pathlib import Path

import pytest

import cyclescope
from cyclescope.explain.fixes import classify_saved, owners_of
from cyclescope.explain.patterns import PATTERNS, attribute_name, classify
from cyclescope.report.model import Group, Step


def only_group(fn, *args, subject: str | None = None) -> Group:
    """The one group ``fn`` creates (or the one whose cycle starts at ``subject``)."""
    report = cyclescope.cycles_created_by(fn, *args)
    groups = [g for g in report.groups if subject is None or g.subject.endswith(subject)]
    assert len(groups) == 1, [(g.subject, g.pattern) for g in report.groups]
    return groups[0]


def break_edge(group: Group) -> tuple[str, str]:
    assert group.break_step is not None
    step = group.cycle[group.break_step]
    return step.type.rsplit(".", 1)[-1], step.edge


# -- the shapes ---------------------------------------------------------------------------


class Connection:
    def __init__(self) -> None:
        self.error: BaseException | None = None

    def fail(self) -> None:
        try:
            raise ConnectionResetError("peer went away")
        except ConnectionResetError as exc:
            self.error = exc  # the seed's shape: exc -> tb -> this frame -> self


def stored_exception() -> None:
    Connection().fail()


def test_stored_exception_names_the_attribute_its_assignment_and_the_frame() -> None:
    group = only_group(stored_exception)
    assert group.pattern == "stored-exception"
    assert break_edge(group) == ("Connection", ".error")
    assert "Connection keeps a ConnectionResetError in Connection.error" in (group.explanation or "")
    assert "clear Connection.error" in (group.fix or "")
    roles = [(loc.role, loc.text) for loc in group.fix_locations]
    # `self.error = None` in __init__ makes no edge and is left out; the handler's line is the one.
    assert roles[0] == ("assigns .error", "self.error = exc  # the seed's shape: exc -> tb -> this frame -> self")
    assert group.fix_locations[0].function == "Connection.fail"
    assert group.fix_locations[0].location.endswith(f"test_patterns.py:{Connection.fail.__code__.co_firstlineno + 4}")
    assert ("frame in the cycle", 'raise ConnectionResetError("peer went away")') in roles
    assert group.owners[0].type.endswith("Connection") and group.owners[0].kind == "local"


async def future_exception() -> None:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    try:
        raise TimeoutError("late")
    except TimeoutError as exc:
        fut.set_exception(exc)  # the traceback holds this frame, whose local 'fut' holds the future
    fut.exception()  # retrieved: no "never retrieved" warning


def test_future_exception() -> None:
    group = only_group(future_exception, subject="Future")
    assert group.pattern == "future-exception"
    assert break_edge(group)[0] == "Future" and break_edge(group)[1] in ("._exception", "._exception_tb")
    assert "del fut" in (group.fix or "")


def exception_in_local() -> None:
    try:
        raise KeyError("k")
    except KeyError as e:
        kept = e  # noqa: F841 - the copy outlives the handler


def exc_info_in_local() -> None:
    try:
        raise ValueError("v")
    except ValueError:
        info = sys.exc_info()  # noqa: F841


@pytest.mark.parametrize(("fn", "name"), [(exception_in_local, "kept"), (exc_info_in_local, "info")])
def test_exception_in_local(fn, name: str) -> None:
    group = only_group(fn)
    assert group.pattern == "exception-in-local"
    assert break_edge(group) == ("frame", f"local '{name}'")
    assert f"del {name}" in (group.fix or "")
    assert ("a result of sys.exc_info()" in (group.explanation or "")) == (name == "info")


def _failing() -> None:
    raise RuntimeError("deep")


def _traceback_of_failing() -> types.TracebackType:
    try:
        _failing()
    except RuntimeError as exc:
        return exc.__traceback__  # its first frame is this function's, whose f_back is the caller's


def traceback_in_local() -> None:
    tb = _traceback_of_failing()  # noqa: F841


def test_a_traceback_in_a_local_is_exception_in_local_through_f_back() -> None:
    # Found in trio's own tests (test_concat_tb): no exception on the cycle, and the
    # way back to the frame is the f_back of the frame the traceback starts in.
    group = only_group(traceback_in_local)
    steps = [(s.type, s.edge) for s in group.cycle]
    start = steps.index(("frame", "local 'tb'"))
    assert steps[start:] + steps[:start] == [("frame", "local 'tb'"), ("traceback", ".tb_frame"), ("frame", ".f_back")]
    assert group.pattern == "exception-in-local"
    assert break_edge(group) == ("frame", "local 'tb'")
    assert "holds a traceback kept after the handler" in (group.explanation or "")
    assert "a frame it called, whose f_back is that frame" in (group.explanation or "")
    assert "del tb" in (group.fix or "")


def errors_kept_by_a_nested_function() -> list[BaseException]:
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            raise OSError("refused")
        except OSError as exc:
            errors.append(exc)  # the traceback keeps attempt()'s frame, the frame the cell of errors

    attempt()
    return errors


def errors_deleted_as_advised() -> list[BaseException]:
    errors: list[BaseException] = []
    try:
        def attempt() -> None:
            try:
                raise OSError("refused")
            except OSError as exc:
                errors.append(exc)

        attempt()
        return errors
    finally:
        del errors


def test_a_closure_variable_is_deleted_in_the_function_that_owns_it() -> None:
    # Found in aiohappyeyeballs' staggered_race (its nested run_one_coro stores each error
    # in the enclosing function's list): `del exceptions` in the nested function would
    # unbind the list the enclosing function returns.
    group = only_group(errors_kept_by_a_nested_function)
    assert group.pattern == "exception-in-local"
    assert break_edge(group) == ("frame", "local 'errors' (closure)")
    outer = "errors_kept_by_a_nested_function()" if sys.version_info >= (3, 11) else "the enclosing function"
    assert f"in a `finally:` block of {outer}; attempt() only shares its cell" in (group.fix or "")
    assert f"the variable 'errors' of {outer} (a closure cell attempt() shares)" in (group.explanation or "")
    assert cyclescope.cycles_created_by(errors_deleted_as_advised).groups == []  # the advice works


class Subscriber:
    def __init__(self) -> None:
        self.on_event = self.handle

    def handle(self) -> None:
        pass


def test_bound_method_points_at_the_assignment_in_init() -> None:
    group = only_group(Subscriber)
    assert group.pattern == "bound-method"
    assert break_edge(group) == ("Subscriber", ".on_event")
    assert "WeakMethod" in (group.fix or "")
    assert [(loc.role, loc.text, loc.function) for loc in group.fix_locations] == [
        ("assigns .on_event", "self.on_event = self.handle", "Subscriber.__init__")]


class Widget:
    pass


def closure() -> None:
    widget = Widget()

    def redraw() -> Widget:
        return widget

    widget.redraw = redraw  # type: ignore[attr-defined]


def test_closure_points_at_the_cell_and_the_function_definition() -> None:
    group = only_group(closure)
    assert group.pattern == "closure"
    assert break_edge(group) == ("cell", ".cell_contents")
    assert "closes over 'widget'" in (group.explanation or "")
    assert [(loc.role, loc.text) for loc in group.fix_locations] == [("defines the closure", "def redraw() -> Widget:")]


class Tree:
    def __init__(self, parent: Tree | None = None) -> None:
        self.parent = parent
        self.children: list[Tree] = []
        if parent is not None:
            parent.children.append(self)


def parent_and_child() -> None:
    Tree(Tree())


def test_back_reference_breaks_the_upward_edge() -> None:
    group = only_group(parent_and_child)
    assert group.pattern == "back-reference"
    assert break_edge(group) == ("Tree", ".parent")
    assert "weakref" in (group.fix or "")
    assert [loc.text for loc in group.fix_locations] == ["self.parent = parent"]


def self_referencing_dict() -> None:
    d: dict = {}
    d["me"] = d


def test_self_reference() -> None:
    group = only_group(self_referencing_dict)
    assert group.pattern == "self-reference"
    assert group.fix_locations == []


async def _never_awaited(owner: object) -> None:
    pass


class Job:
    def __init__(self) -> None:
        self.work = _never_awaited(self)


def unawaited_coroutine() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "never awaited", when it is freed
        Job()


def test_generator_frame() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        group = only_group(unawaited_coroutine)
    assert group.pattern == "generator-frame"
    assert break_edge(group) == ("Job", ".work")
    assert "await it or call `.close()`" in (group.fix or "")


async def pending_callback() -> None:
    loop = asyncio.get_running_loop()

    class Waiter:
        def __init__(self) -> None:
            self.done = loop.create_future()
            self.done.add_done_callback(self.finished)

        def finished(self, fut: asyncio.Future) -> None:
            pass

    Waiter()


def test_asyncio_callback() -> None:
    group = only_group(pending_callback, subject="Future")
    assert group.pattern == "asyncio-callback"
    assert break_edge(group) == ("Future", "._callbacks[0]")
    assert "remove_done_callback" in (group.fix or "")


def class_registry() -> None:
    class Plugin:
        registry: list = []

        def __init__(self) -> None:
            Plugin.registry.append(self)

    Plugin()


def test_class_registry_and_the_class_itself() -> None:
    report = cyclescope.cycles_created_by(class_registry)
    patterns = {g.pattern for g in report.groups}
    assert "class-registry" in patterns
    registry = next(g for g in report.groups if g.pattern == "class-registry")
    assert "WeakSet" in (registry.fix or "")
    assert patterns <= {"class-registry", "class-definition"}


# -- from steps alone ---------------------------------------------------------------------


def test_unknown_shape_gets_no_advice() -> None:
    steps = [Step("app.Thing", ".f_back", edge_kind="frame"), Step("frame", "referent #0", edge_kind="referent")]
    found = classify(steps)
    assert (found.pattern, found.fix, found.break_step) == ("unknown", None, None)
    assert "no known pattern" in found.explanation


@pytest.mark.parametrize(("edge", "where"), [("._exception", "Queue._exception"), ("['error']", "Queue['error']"),
                                             ("referent #3", "Queue's referent #3")])
def test_the_holders_edge_is_named_as_the_report_shows_it(edge: str, where: str) -> None:
    # aiohttp's Cython WebSocketDataQueue keeps its exception in a private C field, which
    # nothing names: the fix read "clear WebSocketDataQueuereferent #3".
    steps = [Step("app.Queue", edge, module="app"), Step("ValueError", ".__traceback__"),
             Step("traceback", ".tb_frame"), Step("frame", "local 'self'", edge_kind="local", function="Queue.fail")]
    found = classify(steps)
    assert found.pattern == "stored-exception" and found.break_step == 0
    assert f"clear {where} (set it to None)" in (found.fix or "")


def test_every_rule_name_is_documented() -> None:
    import cyclescope.explain.patterns as module

    assert all(f"``{name}``" in (module.__doc__ or "") for name in PATTERNS)


@pytest.mark.parametrize(("edge", "name"), [("._exception", "_exception"), (".__dict__['x']", "x"),
                                            ("['x']", None), ("local 'x'", None), ("[0]", None)])
def test_attribute_name(edge: str, name: str | None) -> None:
    assert attribute_name(edge) == name


def test_saved_group_is_classified_from_its_steps_and_recorded_versions() -> None:
    seed = [
        Step("aiohttp.client_reqrep.ClientResponse", "._protocol", edge_kind="attribute",
             module="aiohttp.client_reqrep"),
        Step("aiohttp.client_proto.ResponseHandler", "._exception", edge_kind="attribute",
             module="aiohttp.client_proto"),
        Step("aiohttp.client_exceptions.ServerDisconnectedError", ".__traceback__", edge_kind="traceback",
             module="aiohttp.client_exceptions"),
        Step("traceback", ".tb_frame", edge_kind="traceback"),
        Step("frame", "local 'self'", edge_kind="local", function="ClientResponse.start"),
    ]
    from cyclescope.report.model import Owner

    group = Group(count=1, objects=6, bytes=600, signature="s", cycle=seed,
                  owners=[Owner(type=seed[0].type, kind="distribution", name="aiohttp", version="3.11.13")])
    classify_saved(group)
    assert group.pattern == "stored-exception" and group.break_step == 1
    assert group.known_issue is not None and group.known_issue.id == "aiohttp#10535"
    assert group.known_issue.affected is True and group.known_issue.installed_version == "3.11.13"
    assert "upgrade to 3.11.15" in group.known_issue.advice


def test_owners_of_builtin_and_stdlib_steps() -> None:
    owners = owners_of([Step("dict", "['x']"), Step("asyncio.events.Handle", "._callback", module="asyncio.events")])
    assert [(o.type, o.kind, o.name) for o in owners] == [("dict", "builtin", "Python"),
                                                         ("asyncio.events.Handle", "stdlib", "Python")]


def test_assignment_lines_come_from_the_base_class_source(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "cs_pattern_base.py").write_text(textwrap.dedent("""
        class Base:
            def remember(self, exc):
                self.last = exc
    """))
    (tmp_path / "cs_pattern_child.py").write_text(textwrap.dedent("""
        from cs_pattern_base import Base

        class Child(Base):
            def run(self):
                try:
                    raise OSError("x")
                except OSError as exc:
                    self.remember(exc)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import cs_pattern_child  # type: ignore[import-not-found]

    group = only_group(lambda: cs_pattern_child.Child().run())
    assert group.pattern == "stored-exception"
    assert break_edge(group) == ("Child", ".last")
    first = group.fix_locations[0]
    assert (first.role, first.text, first.function) == ("assigns .last", "self.last = exc", "Base.remember")
    assert first.location == f"{tmp_path / 'cs_pattern_base.py'}:4"


def recursive_closure() -> None:
    def walk(n: int) -> int:
        return 0 if n == 0 else walk(n - 1)

    walk(2)


def test_recursive_closure() -> None:
    group = only_group(recursive_closure)
    assert group.pattern == "recursive-closure"
    assert "define the function at module level" in (group.fix or "")
    assert "walk calls itself" in (group.explanation or "")


class Outcome:
    def __init__(self) -> None:
        self.excinfo = None


def kept_exc_info() -> None:
    outcome = Outcome()
    try:
        raise RuntimeError("x")
    except RuntimeError:
        outcome.excinfo = sys.exc_info()


def test_traceback_kept_in_an_exc_info_triple() -> None:
    group = only_group(kept_exc_info, subject="Outcome")
    assert group.pattern == "stored-exception"
    assert break_edge(group) == ("Outcome", ".excinfo")
    assert "keeps a traceback" in (group.explanation or "")


def raises_kept_in_a_local() -> str:
    with pytest.raises(ValueError) as excinfo:
        raise ValueError("bad input")
    return str(excinfo.value)


def test_a_librarys_traceback_kept_in_your_local_is_broken_at_the_local() -> None:
    # pytest's ExceptionInfo keeps the traceback, whose frame's local keeps the
    # ExceptionInfo: only the local is the user's to change.
    from cyclescope.report.text import render_text

    report = cyclescope.cycles_created_by(raises_kept_in_a_local)
    (group,) = [g for g in report.groups if g.subject.endswith("ExceptionInfo")]
    assert group.pattern == "stored-exception"
    assert break_edge(group) == ("frame", "local 'excinfo'")
    assert (group.fix or "").startswith("`del excinfo` (or set it to None) in raises_kept_in_a_local() ")
    assert "ExceptionInfo belongs to pytest, the local to your code" in (group.fix or "")
    text = render_text(report)
    block = " ".join(text[text.index("  break "):text.index("  fix ")].split())
    assert block.startswith("break local 'excinfo' in raises_kept_in_a_local() at ")
    assert "test_patterns.py:" in block


class Page:
    def __init__(self) -> None:
        self.history = (self,)


def test_object_in_its_own_container() -> None:
    group = only_group(Page)
    assert group.pattern == "self-reference"
    assert break_edge(group) == ("Page", ".history")


async def cancelled_task() -> None:
    async def wait_forever() -> None:
        me = asyncio.current_task()  # noqa: F841 - the task's own frame holds the task
        await asyncio.sleep(3600)

    task = asyncio.ensure_future(wait_forever())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)  # the task runs its cancellation and ends; nobody awaits it
    await asyncio.sleep(0)
    assert task.cancelled()


def test_cancelled_task_keeps_its_cancelled_error() -> None:
    report = cyclescope.cycles_created_by(cancelled_task)
    tasks = [g for g in report.groups if g.subject.endswith("Task")]
    assert tasks, [(g.subject, [s.edge for s in g.cycle]) for g in report.groups]
    assert all(g.pattern == "future-exception" for g in tasks)
    if sys.version_info >= (3, 11):  # 3.10 keeps only the traceback, as for any exception
        assert any("await the cancelled task" in (g.fix or "") for g in tasks)
    edges = {s.edge for g in tasks for s in g.cycle}
    assert "referent" not in " ".join(edges)
    assert edges & {"._cancelled_exc", "._exception_tb", "._exception"}


SECRET_SOURCE = '''
class ApiClient:
    def __init__(self):
        self.last_error = None

    def fetch(self):
        try:
            return get("https://admin:hunter2@api.example/v1", headers={"Authorization": "Bearer sk_live_HARDCODED0123456789abcdefXYZ"})
        except OSError as exc:
            self.last_error = exc  # api_key="ak_0123456789"


def get(url, headers):
    raise OSError("dropped")


class Widget:
    pass


def closure():
    widget = Widget()

    def fetch(url="https://admin:hunter2@db.example/app"):
        return widget
    widget.fetch = fetch
'''


def test_secrets_in_source_lines_are_redacted_in_the_advice(tmp_path: Path, monkeypatch) -> None:
    from cyclescope.report.text import render_group

    (tmp_path / "cs_pattern_secrets.py").write_text(SECRET_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import cs_pattern_secrets  # type: ignore[import-not-found]

    group = only_group(lambda: cs_pattern_secrets.ApiClient().fetch())
    shown = {loc.role: loc.text for loc in group.fix_locations}
    assert shown == {
        "assigns .last_error": 'self.last_error = exc  # api_key="<redacted>"',
        "frame in the cycle": 'return get("https://<redacted>@api.example/v1", '
                              'headers={"Authorization": "Bearer <redacted>"})',
    }
    assert any(step.source == shown["frame in the cycle"] for step in group.cycle)
    closure = only_group(cs_pattern_secrets.closure)
    assert [loc.text for loc in closure.fix_locations] == ['def fetch(url="https://<redacted>@db.example/app"):']
    for text in ("\n".join(render_group(group)), cyclescope.Report([group, closure]).to_json()):
        assert "hunter2" not in text and "HARDCODED" not in text and "0123456789" not in text
        assert "<redacted>" in text
