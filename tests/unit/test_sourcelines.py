"""sourcelines: the lines a report shows, read without changing linecache."""

from __future__ import annotations

import linecache
import os
from pathlib import Path

from cyclescope import sourcelines


def test_a_line_is_read_without_adding_the_file_to_linecache(tmp_path: Path) -> None:
    path = tmp_path / "mod.py"
    path.write_text("# -*- coding: latin-1 -*-\nx = 'caf\xe9'\n  y = 2  \n", encoding="latin-1")
    before = dict(linecache.cache)
    assert sourcelines.getline(str(path), 2) == "x = 'caf\xe9'"  # the coding cookie is honoured
    assert sourcelines.getline(str(path), 3) == "y = 2"
    assert sourcelines.getline(str(path), 4) == "" and sourcelines.getline(str(path), 0) == ""
    assert linecache.cache == before


def test_a_file_linecache_holds_is_read_from_there(tmp_path: Path) -> None:
    path = tmp_path / "held.py"
    path.write_text("a = 1\n", encoding="utf-8")
    linecache.cache[str(path)] = (6, None, ["b = 2\n"], str(path))  # what linecache would hold
    try:
        assert sourcelines.getline(str(path), 1) == "b = 2"
    finally:
        del linecache.cache[str(path)]


def test_lines_are_cached_by_file_name_as_linecache_does(tmp_path: Path) -> None:
    path = tmp_path / "edit.py"
    path.write_text("old = 1\n", encoding="utf-8")
    assert sourcelines.getline(str(path), 1) == "old = 1"
    path.write_text("new = 22\n", encoding="utf-8")  # no stat per line: the first reading stays
    assert sourcelines.getline(str(path), 1) == "old = 1"


def test_unreadable_files_give_an_empty_line(tmp_path: Path, monkeypatch) -> None:
    assert sourcelines.getline(str(tmp_path / "missing.py"), 1) == ""
    assert sourcelines.getline("<string>", 1) == ""
    bad = tmp_path / "bad.py"
    bad.write_bytes(b"# -*- coding: no-such-codec -*-\nx = 1\n")
    assert sourcelines.getline(str(bad), 2) == ""
    assert sourcelines.read_source(str(tmp_path)) is None  # a directory
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.py"
        os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
        assert sourcelines.getline(str(fifo), 1) == ""
    big = tmp_path / "big.py"
    big.write_text("z = 0\n", encoding="utf-8")
    monkeypatch.setattr(sourcelines, "MAX_FILE_BYTES", 3)
    assert sourcelines.read_source(str(big)) is None


def test_the_cache_is_bounded() -> None:
    cache: sourcelines.BoundedCache[int] = sourcelines.BoundedCache(2)
    calls = []
    for key in ("a", "b", "a", "c", "a"):
        cache.get(key, lambda key=key: calls.append(key) or len(calls))
    assert calls == ["a", "b", "c", "a"]  # "a" was the oldest when "c" came


def test_a_number_is_no_file_name_even_when_standard_output_is_a_file(tmp_path: Path) -> None:
    # os.stat(1) is fstat(1) and tokenize.open(1) wraps fd 1: with standard output
    # redirected to a regular file (a CI log), reading "file 1" failed and closed it.
    import subprocess
    import sys

    out = tmp_path / "out.txt"
    code = ("from cyclescope import sourcelines\n"
            "class IntLike:\n    def __index__(self): return 1\n"
            "class Hashing(str):\n    def __hash__(self): raise AssertionError('hashed')\n"
            "for path in (1, IntLike(), Hashing(sourcelines.__file__)):\n"
            "    assert sourcelines.read_source(path) is None and sourcelines.file_key(path) is None\n"
            "    assert sourcelines.getline(path, 1) == ''\n"
            "print('standard output still open')\n")
    env = dict(os.environ, PYTHONPATH=str(Path(sourcelines.__file__).parents[1]))
    with open(out, "w", encoding="utf-8") as stdout:
        done = subprocess.run([sys.executable, "-c", code], stdout=stdout, stderr=subprocess.PIPE, text=True,
                              env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == "standard output still open\n"
