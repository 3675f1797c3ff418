"""``cyclescope run`` and ``python -m cyclescope``, end to end.

Each program is a small throwaway script written into ``tmp_path``. Most tests run
twice: in-process through ``cyclescope.cli.main(argv)`` (output through capsys) and
as a real ``python -m cyclescope`` subprocess (PYTHONPATH = the src directory), which
is what a user runs and the only way to see real exit statuses and a fresh
interpreter. Nothing is mocked.
"""

from __future__ import annotations

# asyncio before anything imports cyclescope.labels, which imports _asyncio: importing
# _asyncio first leaves asyncio.current_task() returning None (see the report).
import asyncio  # noqa: F401
import gc
import importlib
import json
import os
import platform
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest

import cyclescope
from cyclescope.cli import main

PACKAGE_DIR = Path(cyclescope.__file__).resolve().parent
SRC_DIR = PACKAGE_DIR.parent
SCHEMA = json.loads((PACKAGE_DIR / "report" / "schema.json").read_text(encoding="utf-8"))
ERROR_PREFIX = "cyclescope: error:"
#: Objects per plain instance in captured garbage: before 3.11 its __dict__ is a separate
#: object (folded into the attribute step, but counted); from 3.11 it is not materialised.
PER_INSTANCE = 2 if sys.version_info < (3, 11) else 1
#: Code objects know their qualified name (co_qualname) from 3.11.
QUALNAMES = sys.version_info >= (3, 11)

# -- the programs -------------------------------------------------------------------

PAIRS = """
    import sys

    class Node:
        def __init__(self):
            self.other = None

    def make_pair():
        a, b = Node(), Node()
        a.other, b.other = b, a

    for _ in range(3):
        make_pair()
    print("program output")
"""

QUIET_PAIR = """
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
"""

SHOW_ARGV = """
    import json, sys

    class Node:
        pass

    n = Node()
    n.me = n
    del n
    import os
    print(json.dumps({"argv": sys.argv[1:], "argv0": sys.argv[0], "name": __name__,
                      "path0": sys.path[0], "file": __file__,
                      "cwd_on_path": os.getcwd() in sys.path or "" in sys.path}))
"""

SELF_CYCLE_THEN = """
    import sys

    class Node:
        pass

    def make():
        n = Node()
        n.me = n

    make()
    print("before the end")
    {tail}
"""

CRASH = """
    class Node:
        pass

    def make():
        n = Node()
        n.me = n

    def boom():
        raise ValueError("kaboom")

    make()
    boom()
"""

ASYNC_SERVER = """
    import asyncio

    class Session:
        def __init__(self, writer):
            self.writer = writer
            self.on_data = self.handle  # Session .on_data -> bound method .__self__ -> Session

        def handle(self, data):
            return data.upper()

    async def serve(reader, writer):
        session = Session(writer)
        writer.write(session.on_data(await reader.readline()))
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        replies = []
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"ping\\n")
            await writer.drain()
            replies.append(await reader.read())
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()
        print(b"".join(replies).decode().split())

    asyncio.run(main())
"""

# One component with a short cycle that avoids Target (Holder .me), a two-step cycle
# through Target and a three-step one through Target; plus an unrelated component.
TYPES = """
    class Holder: pass
    class Target: pass
    class Wrapper: pass
    class Other: pass

    def make():
        h = Holder()
        h.me = h
        t = Target()
        h.target = t
        t.back = h
        t.wrapper = Wrapper()
        t.wrapper.owner = h
        o = Other()
        o.me = o

    make()
"""

THREE_GROUPS = """
    class Single: pass
    class Double: pass
    class Triple: pass

    s = Single(); s.me = s
    d1, d2 = Double(), Double(); d1.next, d2.next = d2, d1
    t1, t2, t3 = Triple(), Triple(), Triple(); t1.next, t2.next, t3.next = t2, t3, t1
    del s, d1, d2, t1, t2, t3
"""

IMPORTS_ONLY = """
    import dataclasses, decimal, email.message, enum, http.client, logging, typing
    import urllib.request, xml.dom.minidom
"""

MARKER = """
    open("ran.marker", "w").close()
    print("the program ran")
"""


def write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


# -- running cyclescope -------------------------------------------------------------


@dataclass
class Result:
    status: int
    out: str
    err: str


def run_subprocess(*argv: str, cwd: Path, path: tuple[Path, ...] = (), python: str = sys.executable,
                   script: tuple[str, ...] = ("-m", "cyclescope")) -> Result:
    """``python -m cyclescope ARGV`` with PYTHONPATH = src (+ ``path``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NO_COLOR")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC_DIR), *map(str, path)])
    proc = subprocess.run([python, *script, *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    return Result(proc.returncode, proc.stdout, proc.stderr)


class Cli:
    """Runs ``cyclescope ARGV`` in-process (``main``) or as a ``python -m cyclescope`` subprocess."""

    def __init__(self, mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                 monkeypatch: pytest.MonkeyPatch) -> None:
        self.mode = mode
        self.tmp_path = tmp_path
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def __call__(self, *argv: str, cwd: Path | None = None, path: tuple[Path, ...] = ()) -> Result:
        cwd = cwd or self.tmp_path
        if self.mode == "subprocess":
            return run_subprocess(*argv, cwd=cwd, path=path)
        self.monkeypatch.chdir(cwd)
        for entry in path:
            self.monkeypatch.syspath_prepend(str(entry))
        importlib.invalidate_caches()
        self.capsys.readouterr()
        status = main(list(argv))
        out, err = self.capsys.readouterr()
        return Result(status, out, err)


@pytest.fixture
def forget_tmp_modules(tmp_path: Path) -> Iterator[None]:
    """Drop modules imported from tmp_path from sys.modules (in-process -m runs import them)."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if str(getattr(sys.modules[name], "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture(params=["in-process", "subprocess"])
def cli(request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, forget_tmp_modules: None) -> Cli:
    return Cli(request.param, tmp_path, capsys, monkeypatch)


@pytest.fixture
def inproc(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
           forget_tmp_modules: None) -> Cli:
    return Cli("in-process", tmp_path, capsys, monkeypatch)


@pytest.fixture
def subproc(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli("subprocess", tmp_path, capsys, monkeypatch)


# -- reading reports ----------------------------------------------------------------

_STEP_LINE = re.compile(r"^  (\S+) +(\S(?:.*?\S)?)  +-> (.+)$")


def group_blocks(text: str) -> list[list[str]]:
    """The text report's groups: each a list of lines, the 'cycle through' line first."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if re.match(r"^(\d[\d,]* x )?cycle through ", line):
            current = [line]
            blocks.append(current)
        elif current is not None and line.startswith("  "):
            current.append(line)
        else:
            current = None
    return blocks


def step_lines(block: list[str]) -> list[tuple[str, str, str]]:
    """(type, edge, target) of each step line of a group block."""
    return [m.groups() for m in map(_STEP_LINE.match, block) if m]  # type: ignore[misc]


def cycle_of(group: dict[str, Any]) -> list[tuple[str, str]]:
    return [(step["type"], step["edge"]) for step in group["cycle"]]


def valid_report(text: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(text)
    jsonschema.Draft202012Validator(SCHEMA).validate(report)
    return report


def traceback_part(err: str) -> list[str]:
    """The lines of the program's traceback on stderr (up to its exception line)."""
    lines = err.splitlines()
    start = lines.index("Traceback (most recent call last):")
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith(" "))
    return lines[start : end + 1]


# -- a known cycle ------------------------------------------------------------------


def test_known_cycle_is_reported_with_its_exact_steps(cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "pairs.py", PAIRS)
    result = cli("run", str(script))
    assert result.status == 0
    assert result.out == "program output\n"  # the program's stdout, and nothing else
    lines = result.err.splitlines()
    assert lines[0] == "cyclescope: 3 reference cycles in 1 group"
    (block,) = group_blocks(result.err)
    assert block[0] == "3 x cycle through __main__.Node"
    n = 2 * PER_INSTANCE
    assert block[1].startswith(f"  {n} objects on the cycle; {3 * n} objects / ")  # 3 occurrences
    assert step_lines(block) == [("Node", ".other", "Node"), ("Node", ".other", "Node (back to the start)")]
    assert block[2:4] == ["  Node  .other  -> Node", "  Node  .other  -> Node (back to the start)"]
    # Then the advice: the pattern, the edge to break with its owner, the fix. The only
    # assignment of .other in Node sets None (it makes no edge), so no line to change.
    assert block[4].startswith("  pattern  back-reference: objects refer to each other (Node)")
    assert "  break    Node .other (your code, pairs.py)" in block
    assert any(line.startswith("  fix      make Node.other a weak reference") for line in block)
    assert not any(line.startswith("  change") for line in block)
    assert lines[-1].startswith(f"captured {6 * PER_INSTANCE} objects (") and "strategy exact" in lines[-1]


def test_known_cycle_in_the_json_report(cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "pairs.py", PAIRS)
    result = cli("run", "--json", str(tmp_path / "report.json"), str(script))
    assert result.status == 0
    report = valid_report((tmp_path / "report.json").read_text(encoding="utf-8"))
    (group,) = report["groups"]
    assert cycle_of(group) == [("__main__.Node", ".other"), ("__main__.Node", ".other")]
    assert [s["edge_kind"] for s in group["cycle"]] == ["attribute", "attribute"]
    assert [s["module"] for s in group["cycle"]] == ["__main__", "__main__"]
    assert (group["count"], group["objects"], group["cycle_objects"]) == (3, 6 * PER_INSTANCE, 2 * PER_INSTANCE)
    assert "__main__.Node .other" in group["signature"]
    assert group["pattern"] == "back-reference" and group["break_step"] in (0, 1)
    assert group["owners"] == [{"type": "__main__.Node", "kind": "local", "name": "__main__", "version": None,
                                "path": "pairs.py"}]
    assert group["fix_locations"] == [] and group["known_issue"] is None
    assert group["types"]["__main__.Node"] == 2 and group["noise"] is False
    assert report["totals"]["captured_objects"] == 6 * PER_INSTANCE
    assert report["totals"]["cyclic_components"] == 3
    assert report["strategy"] == "exact"
    assert "cycle through __main__.Node" in result.err  # the text report is still printed


# -- how the program is run ---------------------------------------------------------

PROGRAM_OPTIONS = ["-x", "--foo", "--json", "program.json", "-m", "mod", "--fail-on-cycles",
                   "--limit", "0", "--", "plain", "-"]


def test_program_gets_its_argv_name_and_path(cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path / "scripts", "show.py", SHOW_ARGV)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    result = cli("run", "--limit", "1", str(script), *PROGRAM_OPTIONS, cwd=elsewhere)
    # --fail-on-cycles went to the program: the cycle it makes does not change the status
    assert result.status == 0, result.err
    seen = json.loads(result.out)
    assert seen == {"argv": PROGRAM_OPTIONS, "argv0": str(script), "name": "__main__",
                    "path0": str(script.parent), "file": str(script),
                    "cwd_on_path": False}  # sys.path[0] replaced, as python does for a script
    assert not (elsewhere / "program.json").exists()  # --json was the program's too
    assert "cycle through __main__.Node" in result.err


def test_relative_script_path_and_double_dash(cli: Cli, tmp_path: Path) -> None:
    write(tmp_path / "scripts", "show.py", SHOW_ARGV)
    result = cli("run", "--", "scripts/show.py", "--json", "-", cwd=tmp_path)
    assert result.status == 0, result.err
    seen = json.loads(result.out)
    assert seen["argv"] == ["--json", "-"]
    assert seen["argv0"] == "scripts/show.py"  # as given, like python
    assert os.path.samefile(seen["path0"], tmp_path / "scripts")


def test_run_a_module_of_a_package_on_the_path(cli: Cli, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    pkg = f"cs_pkg_{cli.mode.replace('-', '_')}"
    write(lib, f"{pkg}/__init__.py", "")
    module = write(lib, f"{pkg}/tool.py",
                   textwrap.dedent(SHOW_ARGV) + "print(__package__)\nraise SystemExit(4)\n")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = cli("run", "-m", f"{pkg}.tool", "-x", "--foo", "a", cwd=cwd, path=(lib,))
    assert result.status == 4, result.err
    seen_line, package_line = result.out.splitlines()
    seen = json.loads(seen_line)
    assert seen["argv"] == ["-x", "--foo", "a"]
    assert seen["name"] == "__main__"
    assert seen["argv0"] == seen["file"] == str(module)  # like python -m: the full path
    assert os.path.samefile(seen["path0"], cwd)  # like python -m: the current directory
    assert package_line == pkg
    assert "cycle through __main__.Node" in result.err


def test_run_a_package_with_a_main_module(cli: Cli, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    pkg = f"cs_app_{cli.mode.replace('-', '_')}"
    write(lib, f"{pkg}/__init__.py", "")
    write(lib, f"{pkg}/helper.py", "GREETING = 'hello from helper'\n")
    write(lib, f"{pkg}/__main__.py", """
        import sys
        from . import helper

        class Node:
            pass

        n = Node()
        n.me = n
        del n
        print(helper.GREETING, __name__, __package__, __spec__.name, sys.argv[1:])
    """)
    result = cli("run", "-m", pkg, "--verbose", "-m", "x", path=(lib,))
    assert result.status == 0, result.err
    assert result.out == f"hello from helper __main__ {pkg} {pkg}.__main__ ['--verbose', '-m', 'x']\n"
    (block,) = group_blocks(result.err)
    assert step_lines(block) == [("Node", ".me", "Node (back to the start)")]


def test_directory_with_main_py_runs_like_python(cli: Cli, tmp_path: Path) -> None:
    app = tmp_path / "app"
    write(app, "__main__.py", SHOW_ARGV)
    result = cli("run", str(app), "arg")
    assert result.status == 0, result.err
    seen = json.loads(result.out)
    assert seen["argv"] == ["arg"] and seen["name"] == "__main__"
    assert "cycle through __main__.Node" in result.err


@pytest.mark.parametrize("tail, status, message", [
    ("pass", 0, None),
    ("sys.exit(3)", 3, None),
    ("raise SystemExit(5)", 5, None),
    ("sys.exit(0)", 0, None),
    ("sys.exit(None)", 0, None),
    ("sys.exit('fatal: bad input')", 1, "fatal: bad input"),  # python prints it, status 1
])
def test_exit_status_and_output_are_the_programs(cli: Cli, tmp_path: Path, tail: str, status: int,
                                                 message: str | None) -> None:
    script = write(tmp_path, "prog.py", SELF_CYCLE_THEN.format(tail=tail))
    result = cli("run", str(script))
    assert result.status == status
    assert result.out == "before the end\n"
    assert "cyclescope" not in result.out
    err = result.err.splitlines()
    if message:
        assert err[0] == message
        err = err[1:]
    assert err[0] == "cyclescope: 1 reference cycle in 1 group"
    (block,) = group_blocks(result.err)
    assert step_lines(block) == [("Node", ".me", "Node (back to the start)")]


def test_asyncio_program_with_a_real_server(cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "server.py", ASYNC_SERVER)
    result = cli("run", "--json", str(tmp_path / "r.json"), str(script))
    assert result.status == 0, result.err
    assert result.out == "['PING', 'PING', 'PING']\n"
    report = valid_report((tmp_path / "r.json").read_text(encoding="utf-8"))
    (group,) = report["groups"]  # asyncio's own transport cycles are hidden noise
    assert cycle_of(group) == [("__main__.Session", ".on_data"), ("method", ".__self__")]
    assert group["count"] == 3  # one per connection
    assert group["cycle"][1]["function"] == ("Session.handle" if QUALNAMES else "handle")
    (block,) = group_blocks(result.err)
    assert block[0] == "3 x cycle through __main__.Session"
    assert [(t, e) for t, e, _ in step_lines(block)] == [("Session", ".on_data"), ("method", ".__self__")]


# -- errors before the program runs -------------------------------------------------


@pytest.mark.parametrize("argv, fragment", [
    (["run", "missing.py"], "can't open file 'missing.py'"),
    (["run", "missing.py", "--some", "arg"], "can't open file 'missing.py'"),
    (["run", "-m", "cs_no_such_module"], "no module named 'cs_no_such_module'"),
    (["run", "-m", "cs_no_such_package.sub", "-x"], "no module named 'cs_no_such_package'"),
    (["run", "emptydir"], "can't find '__main__.py' in 'emptydir'"),
    (["run"], "nothing to run"),
])
def test_missing_program_is_one_error_line_and_status_2(cli: Cli, tmp_path: Path, argv: list[str],
                                                         fragment: str) -> None:
    (tmp_path / "emptydir").mkdir()
    result = cli(*argv)
    assert result.status == 2
    assert result.out == ""
    (line,) = result.err.splitlines()
    assert line.startswith(ERROR_PREFIX) and fragment in line
    assert "Traceback" not in result.err


def test_json_into_a_missing_directory_fails_before_running(cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "marker.py", MARKER)
    result = cli("run", "--json", str(tmp_path / "no" / "such" / "dir" / "r.json"), str(script))
    assert result.status == 2
    assert result.out == ""
    (line,) = result.err.splitlines()
    assert line.startswith(ERROR_PREFIX) and "no such directory" in line
    assert not (tmp_path / "ran.marker").exists()


def test_json_into_a_directory_fails_before_running(subproc: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "marker.py", MARKER)
    (tmp_path / "out").mkdir()
    result = subproc("run", "--json", str(tmp_path / "out"), str(script))
    assert not (tmp_path / "ran.marker").exists()
    assert result.status == 2
    (line,) = result.err.splitlines()
    assert line.startswith(ERROR_PREFIX)


def test_abbreviated_option_is_not_taken_for_the_program(subproc: Cli, tmp_path: Path) -> None:
    # argparse would accept --lim for --limit, but split_argv would then take its
    # value for the SCRIPT; abbreviations are refused instead.
    script = write(tmp_path, "marker.py", MARKER)
    result = subproc("run", "--lim", "1", str(script))
    assert result.status == 2
    assert "unrecognized arguments: --lim" in result.err
    assert not (tmp_path / "ran.marker").exists()


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_bad_limit_is_a_usage_error(subproc: Cli, tmp_path: Path, value: str) -> None:
    script = write(tmp_path, "marker.py", MARKER)
    result = subproc("run", "--limit", value, str(script))
    assert result.status == 2
    assert result.err.splitlines()[-1].startswith("cyclescope run: error: argument --limit: ")
    assert not (tmp_path / "ran.marker").exists()


def test_command_line_basics(subproc: Cli) -> None:
    version = subproc("--version")
    assert (version.status, version.out) == (0, f"cyclescope {cyclescope.__version__}\n")
    nothing = subproc()
    assert nothing.status == 2 and "COMMAND" in nothing.err and "Traceback" not in nothing.err
    helped = subproc("run", "--help")
    assert helped.status == 0 and "(SCRIPT | -m MODULE) [ARGS...]" in helped.out


# -- the program fails --------------------------------------------------------------


def test_crash_prints_the_programs_traceback_then_the_report(cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "crash.py", CRASH)
    result = cli("run", str(script))
    assert result.status == 1
    tb = traceback_part(result.err)
    assert tb[-1] == "ValueError: kaboom"
    files = [line for line in tb if line.startswith("  File ")]
    assert files == [f'  File "{script}", line 13, in <module>', f'  File "{script}", line 10, in boom']
    assert "runpy" not in result.err and str(PACKAGE_DIR) not in result.err
    # the report of what was captured up to the crash comes after the traceback
    report = result.err[result.err.index("ValueError: kaboom") :]
    (block,) = group_blocks(report)
    assert step_lines(block) == [("Node", ".me", "Node (back to the start)")]


def test_keyboard_interrupt_is_130_and_the_report_is_printed(cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "interrupted.py", SELF_CYCLE_THEN.format(tail="raise KeyboardInterrupt"))
    result = cli("run", str(script))
    assert result.status == 130
    assert result.out == "before the end\n"
    assert "KeyboardInterrupt" in result.err
    (block,) = group_blocks(result.err)
    assert step_lines(block) == [("Node", ".me", "Node (back to the start)")]


def test_syntax_error_is_reported_like_python(subproc: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "broken.py", "x = (\n")
    result = subproc("run", str(script))
    assert result.status == 1
    assert "SyntaxError" in result.err
    assert str(PACKAGE_DIR) not in result.err  # no cyclescope frames


def test_failing_parent_package_of_a_module_is_reported_like_python(subproc: Cli, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    write(lib, "cs_bad_pkg/__init__.py", "raise RuntimeError('boom in init')\n")
    write(lib, "cs_bad_pkg/sub.py", "print('never')\n")
    result = run_subprocess("run", "-m", "cs_bad_pkg.sub", cwd=tmp_path, path=(lib,))
    assert result.status != 0
    assert "boom in init" in result.err
    assert str(PACKAGE_DIR) not in result.err


def test_parent_package_of_a_module_runs_under_the_capture(subproc: Cli, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    write(lib, "cs_parent_pkg/__init__.py", """
        import sys

        class Registry:
            pass

        registry = Registry()
        registry.me = registry
        del registry
        print("init sees", sys.argv[1:])
    """)
    write(lib, "cs_parent_pkg/sub.py", "import sys\nprint('sub sees', sys.argv[1:])\n")
    result = subproc("run", "-m", "cs_parent_pkg.sub", "a", "b", path=(lib,))
    assert result.status == 0, result.err
    assert result.out == "init sees ['a', 'b']\nsub sees ['a', 'b']\n"  # as under python -m
    assert "cycle through cs_parent_pkg.Registry" in result.err


def test_module_in_the_current_directory_through_a_console_script(tmp_path: Path) -> None:
    # What pip's console script does: sys.path[0] is the script's (bin) directory.
    launcher = write(tmp_path / "bin", "cyclescope", """
        import sys
        from cyclescope.cli import main
        sys.exit(main())
    """)
    work = tmp_path / "work"
    write(work, "cs_local_mod.py", "print('local module ran')\n")
    baseline = run_subprocess("x", cwd=work, script=("-m", "cs_local_mod"))
    assert baseline.out == "local module ran\n"  # python -m finds it
    result = run_subprocess("run", "-m", "cs_local_mod", cwd=work, script=(str(launcher),))
    assert (result.status, result.out) == (0, "local module ran\n"), result.err


# -- --json -------------------------------------------------------------------------


def test_json_to_stdout(cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "pair.py", QUIET_PAIR)
    result = cli("run", "--json", "-", str(script))
    assert result.status == 0
    report = valid_report(result.out)  # stdout holds the JSON report and nothing else
    assert report["schema"] == "cyclescope.report/1"
    assert [cycle_of(g) for g in report["groups"]] == [[("__main__.Node", ".other")] * 2]
    assert report["python"] == platform.python_version()
    assert "cyclescope: 1 reference cycle in 1 group" in result.err  # text still on stderr


PRINTS = """
import os, subprocess, sys
print("printed by the program")
sys.stdout.flush()
os.write(1, b"written to fd 1\\n")
subprocess.run([sys.executable, "-c", "print('printed by a child')"], check=True)
class Node:
    def __init__(self):
        self.me = self
Node()
"""


def test_json_to_stdout_keeps_the_programs_output_apart(cli: Cli, tmp_path: Path) -> None:
    # With --json -, standard output is the report's: the program's print(), its
    # writes to fd 1 and its child processes' output go to standard error.
    script = write(tmp_path, "prints.py", PRINTS)
    result = cli("run", "--json", "-", str(script))
    assert result.status == 0, result.err
    report = valid_report(result.out)
    assert [cycle_of(g) for g in report["groups"]] == [[("__main__.Node", ".me")]]
    assert "printed by the program" in result.err
    if cli.mode == "subprocess":  # (in-process, fd 1 is pytest's capture, not the command's)
        assert "written to fd 1" in result.err and "printed by a child" in result.err
    plain = cli("run", str(script))  # without --json -, the program's output stays on stdout
    assert "printed by the program" in plain.out


def test_json_report_of_a_crash_is_valid(cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "crash.py", CRASH)
    result = cli("run", "--json", str(tmp_path / "r.json"), str(script))
    assert result.status == 1
    report = valid_report((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [cycle_of(g) for g in report["groups"]] == [[("__main__.Node", ".me")]]


# -- gates and filters --------------------------------------------------------------


@pytest.mark.parametrize("cycle, tail, status", [
    (True, "pass", 1),
    (True, "sys.exit(3)", 1),
    (False, "pass", 0),
    (False, "sys.exit(3)", 3),
])
def test_fail_on_cycles(cli: Cli, tmp_path: Path, cycle: bool, tail: str, status: int) -> None:
    source = SELF_CYCLE_THEN.format(tail=tail)
    if not cycle:
        source = source.replace("make()\n", "")
    script = write(tmp_path, "prog.py", source)
    result = cli("run", "--fail-on-cycles", str(script))
    assert result.status == status
    assert ("cycle through __main__.Node" in result.err) is cycle
    plain = cli("run", str(script))  # without the gate: always the program's status
    assert plain.status == (3 if "exit(3)" in tail else 0)


def test_fail_on_cycles_ignores_hidden_noise(subproc: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "imports.py", textwrap.dedent(IMPORTS_ONLY) + "raise SystemExit(7)\n")
    result = subproc("run", "--fail-on-cycles", "--json", "-", str(script))
    report = valid_report(result.out)
    assert report["groups"] == [] and report["totals"]["hidden_noise_groups"] > 0
    assert result.status == 7


def test_without_type_filter_each_component_shows_its_best_cycle(cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "typed.py", TYPES)
    result = cli("run", "--json", "-", str(script))
    report = valid_report(result.out)
    assert [cycle_of(g) for g in report["groups"]] == [
        [("__main__.Holder", ".me")],
        [("__main__.Other", ".me")],
    ]
    assert report["groups"][0]["component_objects"] == 3 * PER_INSTANCE  # Holder, Target, Wrapper
    assert report["totals"]["filtered_out_components"] == 0


@pytest.mark.parametrize("pattern", ["__main__.Target", "Target", "Tar*", "*.Targ?t", "[T]arget"])
def test_type_filter_shows_the_shortest_cycle_through_the_type(cli: Cli, tmp_path: Path,
                                                               pattern: str) -> None:
    script = write(tmp_path, "typed.py", TYPES)
    result = cli("run", "--type", pattern, "--json", "-", str(script))
    assert result.status == 0
    report = valid_report(result.out)
    (group,) = report["groups"]
    assert cycle_of(group) == [("__main__.Target", ".back"), ("__main__.Holder", ".target")]
    assert group["component_objects"] == 3 * PER_INSTANCE
    assert report["totals"]["filtered_out_components"] == 1  # Other's component
    (block,) = group_blocks(result.err)
    assert block[0] == "cycle through __main__.Target"
    assert step_lines(block) == [("Target", ".back", "Holder"),
                                 ("Holder", ".target", "Target (back to the start)")]
    assert "1 component(s) filtered out by --type" in result.err


@pytest.mark.parametrize("patterns, subjects, filtered", [
    (["target"], [], 2),  # case-sensitive
    (["NoSuchType"], [], 2),
    (["Other", "Target"], ["__main__.Target", "__main__.Other"], 0),
    (["*"], ["__main__.Holder", "__main__.Other"], 0),
])
def test_type_filter_patterns(inproc: Cli, tmp_path: Path, patterns: list[str], subjects: list[str],
                              filtered: int) -> None:
    script = write(tmp_path, "typed.py", TYPES)
    options = [arg for pattern in patterns for arg in ("--type", pattern)]
    result = inproc("run", *options, "--json", "-", str(script))
    report = valid_report(result.out)
    assert [g["cycle"][0]["type"] for g in report["groups"]] == subjects
    assert report["totals"]["filtered_out_components"] == filtered


def test_limit(cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "three.py", THREE_GROUPS)
    result = cli("run", "--limit", "2", "--json", str(tmp_path / "r.json"), str(script))
    assert result.status == 0
    assert result.err.splitlines()[0] == "cyclescope: 3 reference cycles in 3 groups"
    assert [b[0] for b in group_blocks(result.err)] == ["cycle through __main__.Triple",
                                                        "cycle through __main__.Double"]
    assert "... 1 more group(s) not shown (--limit)" in result.err.splitlines()
    report = valid_report((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [g["cycle"][0]["type"] for g in report["groups"]] == [
        "__main__.Triple", "__main__.Double", "__main__.Single"]  # the JSON keeps every group
    every = cli("run", "--limit", "3", str(script))
    assert len(group_blocks(every.err)) == 3 and "not shown" not in every.err


def test_include_noise_shows_what_imports_make(subproc: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "imports.py", IMPORTS_ONLY)
    hidden = valid_report(subproc("run", "--json", "-", str(script)).out)
    shown_run = subproc("run", "--include-noise", "--json", "-", str(script))
    shown = valid_report(shown_run.out)
    assert hidden["groups"] == []
    assert hidden["totals"]["hidden_noise_groups"] >= 1
    assert len(shown["groups"]) == hidden["totals"]["hidden_noise_groups"]
    assert all(g["noise"] for g in shown["groups"])
    assert shown["totals"]["hidden_noise_groups"] == 0
    assert len(group_blocks(shown_run.err)) == len(shown["groups"])
    assert "interpreter noise group(s) hidden (--include-noise)" not in shown_run.err


# -- the host process after main() ---------------------------------------------------

HOST_PROGRAMS = {
    "normal": SELF_CYCLE_THEN.format(tail="pass"),
    "exit": SELF_CYCLE_THEN.format(tail="sys.exit(3)"),
    "crash": CRASH,
    "interrupt": SELF_CYCLE_THEN.format(tail="raise KeyboardInterrupt"),
    "meddles": SELF_CYCLE_THEN.format(tail=textwrap.indent(textwrap.dedent("""
        import gc
        sys.argv.append("more")
        sys.argv = ["replaced"]
        sys.path.insert(0, "/nowhere")
        del sys.path[-1]
        gc.disable()
        gc.set_threshold(7, 7, 7)
        sys.exit(0)
    """), "    ").strip()),
}


def host_state() -> dict[str, Any]:
    return {
        "gc_debug": gc.get_debug(), "gc_enabled": gc.isenabled(), "gc_threshold": gc.get_threshold(),
        "gc_callbacks": list(gc.callbacks), "gc_garbage": list(gc.garbage),
        "argv": list(sys.argv), "path": list(sys.path), "path_id": id(sys.path),
        "main_module": sys.modules["__main__"],
    }


@pytest.mark.parametrize("kind", sorted(HOST_PROGRAMS))
@pytest.mark.parametrize("as_module", [False, True], ids=["script", "module"])
def test_host_state_is_restored(inproc: Cli, tmp_path: Path, kind: str, as_module: bool) -> None:
    lib = tmp_path / "lib"
    name = f"cs_host_{kind}"
    script = write(lib, f"{name}.py", HOST_PROGRAMS[kind])
    argv = ["run", "-m", name] if as_module else ["run", str(script)]
    if as_module:
        inproc.monkeypatch.syspath_prepend(str(lib))  # before taking the snapshot
    saved_threshold = gc.get_threshold()
    gc.set_threshold(701, 11, 13)  # distinctive values that the program changes
    try:
        gc.collect()
        before = host_state()
        result = inproc(*argv, "arg")
        after = host_state()
    finally:
        gc.set_threshold(*saved_threshold)
    assert result.status == {"normal": 0, "exit": 3, "crash": 1, "interrupt": 130, "meddles": 0}[kind]
    assert "cycle through __main__.Node" in result.err
    assert after["main_module"] is before["main_module"]
    assert after == before


def test_main_can_run_twice_in_one_process(inproc: Cli, tmp_path: Path) -> None:
    first = write(tmp_path, "one.py", QUIET_PAIR)
    second = write(tmp_path, "two.py", SELF_CYCLE_THEN.format(tail="pass"))
    assert inproc("run", "--json", "-", str(first)).status == 0
    result = inproc("run", "--json", "-", str(second))
    report = valid_report(result.out)  # (the program's own print went to stderr)
    assert "before the end" in result.err
    assert [cycle_of(g) for g in report["groups"]] == [[("__main__.Node", ".me")]]


# -- why is it still alive: --watch and --growth ---------------------------------------

RETAINING = """
    class Response:
        pass

    class Session:
        def __init__(self):
            self.me = self

    CACHE = {}
    for name in ("a", "b"):
        CACHE["https://example.test/" + name] = Response()
    dropped = Response()
    del dropped
    Session()  # garbage only the cyclic collector frees
"""


def test_watch_explains_every_live_object_of_the_type(cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "retaining.py", RETAINING)
    result = cli("run", "--watch", "Response", "--watch", "__main__.Session", "--json", str(tmp_path / "r.json"),
                 str(script))
    assert result.status == 0, result.err
    report = valid_report((tmp_path / "r.json").read_text(encoding="utf-8"))
    kept = sorted((s["type"], s["kind"], s["count"], s["path"]) for s in report["survivors"])
    assert kept == [
        ("__main__.Response", "retained", 1, f"module __main__ ({script}) -> .CACHE -> ['https://example.test/a'] -> Response"),
        ("__main__.Response", "retained", 1, f"module __main__ ({script}) -> .CACHE -> ['https://example.test/b'] -> Response"),
    ], "the Session cycle was collected at exit by the capture, and the dropped Response is gone"
    assert "2 watched objects still alive" in result.err


def test_watch_says_which_patterns_matched_no_live_object(cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "retaining.py", RETAINING)
    result = cli("run", "--watch", "Respnse", "--watch", "Response", "--watch", "Nope*Zq", "--json",
                 str(tmp_path / "r.json"), str(script))
    assert result.status == 0, result.err
    report = valid_report((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["unmatched_watch"] == ["Respnse", "Nope*Zq"]
    assert "no live object matched --watch Respnse, Nope*Zq" in result.err.splitlines()
    assert "2 watched objects still alive" in result.err
    result = cli("run", "--watch", "Response", "--json", str(tmp_path / "r.json"), str(script))
    assert valid_report((tmp_path / "r.json").read_text(encoding="utf-8"))["unmatched_watch"] == []
    assert "no live object matched" not in result.err


GROWING = """
    class Record:
        pass

    HISTORY = [Record() for _ in range(5000)]
"""


def test_growth_reports_the_new_objects_by_type_with_paths(subproc: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "growing.py", GROWING)
    result = subproc("run", "--growth", "--json", str(tmp_path / "r.json"), str(script))
    assert result.status == 0, result.err
    report = valid_report((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["growth"][0]["type"] == "__main__.Record", "the fastest-growing type comes first"
    entry = report["growth"][0]
    assert entry["count"] == 5000 and entry["net_count"] == 5000 and entry["bytes"] >= 5000 * 16
    assert entry["sample_paths"] and all(
        re.fullmatch(rf"module __main__ \({re.escape(str(script))}\) -> \.HISTORY -> \[\d+\] -> Record", p)
        for p in entry["sample_paths"]), entry["sample_paths"]
    assert "heap growth (new objects by type)" in result.err


CYCLIC = """
    class Node:
        def __init__(self):
            self.me = self

    def failing():
        try:
            raise ValueError("x")
        except ValueError as exc:
            err = exc  # exception -> traceback -> frame -> err

    for _ in range(50):
        Node()
        failing()
"""

#: New objects of a program: its module, the module's dict and file name, and for CYCLIC its
#: class, functions and code (15-19 in all, 3.10-3.13). Charging the report's work to the
#: program (the explain modules, importlib.metadata and the modules and caches it loads)
#: made it 5,000 for CYCLIC; counting what only C holds, such as the type names a live
#: snapshot refers to, about 120 for either; re's cache of the redaction templates, 20;
#: on 3.10, the growth callback's own bound method, 1.
_LITTLE_GROWTH = {"x = 1\n": 3, CYCLIC: 30}


@pytest.mark.parametrize("program", ["x = 1\n", CYCLIC], ids=["empty", "cyclic"])
def test_growth_is_the_programs_and_never_the_reports(subproc: Cli, tmp_path: Path, program: str) -> None:
    script = write(tmp_path, "program.py", program)
    result = subproc("run", "--growth", "--json", str(tmp_path / "r.json"), str(script))
    assert result.status == 0, result.err
    report = valid_report((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert bool(report["groups"]) == (program is CYCLIC), "the report had cycles to analyse and explain"
    growth = report["growth"]
    assert sum(entry["count"] for entry in growth) <= _LITTLE_GROWTH[program], [(e["type"], e["count"]) for e in growth]
    assert {"module", "dict"} <= {entry["type"] for entry in growth}
    assert not [e["type"] for e in growth if e["type"].startswith("__main__.")], \
        "the program's garbage, still in the capture's store for the report, is no growth"
    report_work = re.compile(r"cyclescope|importlib\.(metadata|resources|readers)|path_importer_cache")
    assert not [p for e in growth for p in e["sample_paths"] if report_work.search(p)]


def test_a_growth_measurement_that_fails_still_reports_the_cycles(inproc: Cli, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from cyclescope.commands import run as run_command

    real_snapshot = run_command._snapshot
    calls: list[int] = []

    def second_one_fails(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("no room for the after snapshot")
        return real_snapshot(*args, **kwargs)

    monkeypatch.setattr(run_command, "_snapshot", second_one_fails)
    script = write(tmp_path, "cyclic.py", CYCLIC)
    result = inproc("run", "--growth", "--json", str(tmp_path / "r.json"), str(script))
    assert result.status == 0, result.err
    report = valid_report((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["groups"] and report["growth"] == []
    assert report["errors"] == ["measuring the heap's growth failed: MemoryError: no room for the after snapshot"]
    assert "error: measuring the heap's growth failed" in result.err and "Traceback" not in result.err
