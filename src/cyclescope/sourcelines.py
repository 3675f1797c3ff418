"""Source lines of files, read without changing the host process's ``linecache``.

A report names the source line of a frame or of a closure's definition. Asked of
``linecache``, each line would leave the whole file in ``linecache.cache`` for the
rest of the process: memory the host never asked for, and objects that a heap
growth measurement would then charge to the program. Lines already in
``linecache`` are read from there (without updating it); other files are read here
and kept in a small cache of cyclescope's own, bounded in files and file size and
keyed by file name as ``linecache`` is (a file edited while the process runs keeps
the lines first read).
"""

from __future__ import annotations

import linecache
import os
import stat
import threading
import tokenize
from typing import Callable, Generic, Hashable, TypeVar

__all__ = ["BoundedCache", "file_key", "getline", "read_source", "MAX_FILE_BYTES"]

#: Larger files are not read (a generated module of megabytes is no place for a fix).
MAX_FILE_BYTES = 4 * 1024 * 1024

V = TypeVar("V")


class BoundedCache(Generic[V]):
    """A thread-safe memo of at most ``size`` entries, the oldest dropped first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: dict[Hashable, V] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The value for ``key``, computed (outside the lock) when not cached."""
        with self._lock:
            if key in self._entries:
                return self._entries[key]
        value = compute()
        with self._lock:
            if len(self._entries) >= self._size:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = value
        return value


def _is_path(path: object) -> bool:
    # A file name, never a number: os.stat(1) and open(1) are standard output, and an
    # object with __index__ (any MagicMock) counts as 1. Reading it, tokenize.open
    # fails and closes it. An exact str, as every name read off an object: a subclass
    # would hash (linecache's lookup) by its own code.
    return type(path) is str


def file_key(path: str) -> tuple[str, int, int] | None:
    """``(path, mtime_ns, size)``: a cache key that changes when the file does; None
    when the file cannot be stat'ed (or ``path`` is no file name)."""
    if not _is_path(path):
        return None
    try:
        stat = os.stat(path)
    except (OSError, ValueError):
        return None
    return path, stat.st_mtime_ns, stat.st_size


def read_source(path: str) -> str | None:
    """The text of a source file (its coding cookie honoured), or None when it is
    missing, not a regular file, larger than MAX_FILE_BYTES or undecodable (or
    ``path`` is no file name)."""
    if not _is_path(path):
        return None
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return None  # a FIFO or a device named as a source file would block the read
        with tokenize.open(path) as stream:
            source = stream.read(MAX_FILE_BYTES + 1)
    except (SyntaxError, ValueError, OSError, UnicodeError):
        return None
    return source if len(source) <= MAX_FILE_BYTES else None


_lines: BoundedCache[list[str]] = BoundedCache(64)


def getline(path: str, lineno: int) -> str:
    """Line ``lineno`` of ``path``, stripped; "" when it cannot be read."""
    if not _is_path(path):
        return ""
    entry = linecache.cache.get(path)
    if isinstance(entry, tuple) and len(entry) == 4:  # a file linecache holds already
        lines = entry[2]
    else:  # by name, without a stat per line, as linecache does (an edited file keeps its old lines)
        lines = _lines.get(path, lambda: (read_source(path) or "").splitlines())
    return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
