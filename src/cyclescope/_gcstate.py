"""Saving and restoring the garbage collector's global state.

cyclescope runs inside other people's processes; whatever it changes in ``gc``
it must put back, on every path. :class:`GcState` records the settings it may
touch, and :meth:`GcState.restore` puts them back.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

__all__ = ["GcState"]


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
