"""cyclescope: find, explain and guard against reference cycles in Python programs.

Public API::

    with cyclescope.capture() as cap:
        ...
    print(cap.report())

    report = cyclescope.cycles_created_by(fn, *args, **kwargs)

    snap = cyclescope.snapshot()          # why is it still alive?
    snap.retention_paths(obj); snap.retained_size(obj); snap.top_retainers(10)
    cyclescope.watch(obj, "closed response"); report = cyclescope.check()
    with cyclescope.expect_freed(obj): ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "Capture",
    "CaptureWarning",
    "Group",
    "Report",
    "Step",
    "capture",
    "cycles_created_by",
    "snapshot",
    "growth",
    "Snapshot",
    "watch",
    "check",
    "expect_freed",
    "NotFreedError",
    "WatchReport",
]
__version__ = "0.1.0"

_LAZY = {
    "Capture": "cyclescope.capturing",
    "CaptureWarning": "cyclescope.capturing",
    "capture": "cyclescope.capturing",
    "cycles_created_by": "cyclescope.capturing",
    "Group": "cyclescope.report.model",
    "Report": "cyclescope.report.model",
    "Step": "cyclescope.report.model",
    "snapshot": "cyclescope.heap",
    "growth": "cyclescope.heap",
    "Snapshot": "cyclescope.heap",
    "watch": "cyclescope.watching",
    "check": "cyclescope.watching",
    "expect_freed": "cyclescope.watching",
    "NotFreedError": "cyclescope.watching",
    "WatchReport": "cyclescope.watching",
}

if TYPE_CHECKING:
    from cyclescope.capturing import Capture, CaptureWarning, capture, cycles_created_by
    from cyclescope.report.model import Group, Report, Step
    from cyclescope.heap import Snapshot, growth, snapshot
    from cyclescope.watching import NotFreedError, WatchReport, check, expect_freed, watch


def __getattr__(name: str) -> Any:
    # Lazy re-exports keep ``import cyclescope`` cheap inside someone else's process.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cyclescope' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
