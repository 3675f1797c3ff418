"""Saving and restoring the garbage collector's global state.

cyclescope runs inside other people's processes; whatever it changes in ``gc``
it must put back, on every path. :class:`GcState` records the settings it may
touch, and :meth:`GcState.restore` puts them back.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from dataclasses import dataclass

__all__ = ["GcState", "interpreter_frozen_baseline"]


@dataclass(frozen=True)
class GcState:
    """A snapshot of the collector settings cyclescope may change."""

    enabled: bool
    debug: int
    thresholds: tuple[int, ...]

    @classmethod
    def save(cls) -> "GcState":
        """Record the current settings."""
        return cls(gc.isenabled(), gc.get_debug(), gc.get_threshold())

    def restore(self) -> None:
        """Put the recorded settings back (a no-op for those already equal)."""
        if gc.get_debug() != self.debug:
            gc.set_debug(self.debug)
        if gc.get_threshold() != self.thresholds:
            gc.set_threshold(*self.thresholds)
        if gc.isenabled() != self.enabled:
            if self.enabled:
                gc.enable()
            else:
                gc.disable()


_interpreter_frozen: int | None = None


def interpreter_frozen_baseline() -> int:
    """How many objects a fresh interpreter of this build has frozen by itself.

    CPython 3.12 starts with objects in the permanent generation (375 on 3.12.1)
    that no host froze; other versions start with none. Measured once, in a fresh
    ``python -I -S``; 0 when that cannot be done (an embedded interpreter), which
    errs on the side of treating every frozen object as the host's.
    """
    global _interpreter_frozen
    if _interpreter_frozen is None:
        _interpreter_frozen = 0
        if sys.version_info[:2] == (3, 12) and sys.executable:
            try:
                out = subprocess.run(
                    [sys.executable, "-I", "-S", "-c", "import gc; print(gc.get_freeze_count())"],
                    capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                )
                _interpreter_frozen = int(out.stdout.strip()) if out.returncode == 0 else 0
            except (OSError, ValueError, subprocess.SubprocessError):
                _interpreter_frozen = 0
    return _interpreter_frozen
