"""Capturing the cyclic garbage that a block of code creates.

How it works: while at least one capture is active, ``gc.DEBUG_SAVEALL`` is on
and one callback sits in ``gc.callbacks``. Every collection, automatic or
explicit, in any thread, then appends what it found unreachable to
``gc.garbage``; the callback moves those objects into the store of every active
capture and takes them out of ``gc.garbage`` again (unless the user had
``DEBUG_SAVEALL`` on, in which case ``gc.garbage`` is left as the user expects).
A capture's own closing collection does that work itself, without the callback,
when the callback is the only one (its Python calls cost more than a short
block's collection).
When a capture ends it collects once more, builds its report (strings and numbers
only) and frees its store: with the C core, right away and in time proportional
to the store (``_core.release_garbage`` does gc's delete step on just those
objects, and leaves alone any still referenced from outside). The last capture to
end restores the gc settings, runs a full collection only if something may be left
for one to free (always on the pure-Python path), and thaws what it froze.

Two strategies set what "before the block" means:

* ``freeze=False`` (default, exact): a full ``gc.collect()`` at entry disposes of
  garbage made before the block; costs one full collection at each end.
* ``freeze=True`` (fast): ``gc.freeze()`` at entry moves every existing object
  out of the collector's sight, so the collections during and after the block
  only traverse what the block allocated; costs what the block creates, not what
  the process holds. It misses a cycle that runs through an object created
  before the block (the collector treats frozen objects as alive and never looks
  at them). When the process already froze objects itself (``gc.get_freeze_count()``
  is not zero, as in pre-fork servers), freezing is not used, since thawing ours
  would thaw the host's too; the exact strategy runs instead.

Memory stays bounded: when a capture holds more than ``max_objects`` objects it
summarises them into groups, releases them, and pauses recording until a full
collection has freed them (counted, not analysed, in the report's totals).
"""

from __future__ import annotations

import gc
import sys
import threading
import warnings
from typing import Any, Callable, Iterable, TypeVar

from cyclescope._gcstate import GcState, interpreter_frozen_baseline
from cyclescope._safe import new_dict_listeners
from cyclescope.graph import move_tail, release_garbage

from cyclescope.report.model import Report, Totals

__all__ = ["Capture", "Segment", "capture", "cycles_created_by", "DEFAULT_MAX_OBJECTS", "CaptureWarning"]

#: Objects a capture holds before it summarises and releases them.
DEFAULT_MAX_OBJECTS = 1_000_000
_PROGRESS_FROM = 200_000  # captures this large take long enough to say so

T = TypeVar("T")


class CaptureWarning(RuntimeWarning):
    """Something limited what a capture could record (memory cap, pause)."""


class _Collector:
    """The single gc callback shared by every active capture of the process."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.active: list[Capture] = []
        self.saved: GcState | None = None
        self.froze = False
        self.user_saveall = False
        self.paused = False  # DEBUG_SAVEALL off until a full collection frees released objects
        self.release_pending = 0  # released objects the pause is waiting to see freed
        self._garbage_base = 0
        self.errors: list[str] = []
        # Whether the last release must run a full collection: something may be left
        # that only a collection frees (the pure path, spilled stores, kept objects).
        self.collect_at_release = False
        self._started = 0  # captures started so far: the order of nesting
        self.reporting: list[Capture] = []  # captures analysing their store right now
        # One bound method for gc.callbacks, so that looking for it there is an identity test.
        self.callback = self.on_gc

    # -- lifetime ---------------------------------------------------------------

    def start(self, capture: "Capture") -> None:
        with self.lock:
            self._started += 1
            capture._order = self._started
            if self.active:
                # Garbage made before this (nested) capture belongs to the outer ones.
                if not capture.include_existing:
                    gc.collect()
                self.active.append(capture)
                capture.strategy = self.active[0].strategy
                return
            self.saved = GcState.save()
            self.user_saveall = bool(self.saved.debug & gc.DEBUG_SAVEALL)
            self.paused = False
            self.release_pending = 0
            self.errors = []
            self.collect_at_release = False
            strategy = "exact"
            if capture.include_existing:
                pass
            elif capture.freeze_requested and gc.get_freeze_count() <= interpreter_frozen_baseline():
                gc.freeze()
                self.froze = True
                strategy = "freeze"
            else:
                gc.collect()
            capture.strategy = strategy
            self.active.append(capture)
            try:
                gc.set_debug(self.saved.debug | gc.DEBUG_SAVEALL)
                gc.callbacks.append(self.callback)
            except BaseException:
                self._teardown()
                raise

    def _flush(self) -> None:
        """Collect what the blocks dropped, so it reaches the stores.

        Under the freeze strategy the collector's generations hold only what the
        blocks allocated. While none of it has reached the oldest generation, a
        generation-1 collection examines all of it, and skips what a full one adds:
        emptying the interpreter's free lists, which costs the code that runs next
        more than the collection itself (pytest pays it per test).
        """
        generation = 1 if self.froze and not gc.get_objects(generation=2) else 2
        callbacks = gc.callbacks
        if self.paused or self.user_saveall or len(callbacks) != 1 or callbacks[0] is not self.callback:
            gc.collect(generation)  # the callbacks see it as they see any other
            return
        # Ours is the only callback: its two Python calls cost more than collecting what a
        # short block (a test) leaves, so it steps aside and its work is done here, over
        # everything added to gc.garbage meanwhile (also by another thread's collection
        # in between: the collector never runs two at once).
        base = len(gc.garbage)
        callbacks.clear()
        try:
            gc.collect(generation)
        finally:
            callbacks.insert(0, self.callback)
            if len(gc.garbage) > base:
                self._garbage_base = base
                self.on_gc("stop", {"generation": generation})

    def flush(self) -> None:
        """Collect what the blocks dropped so far (the end of a segment)."""
        with self.lock:
            self._flush()

    def finish(self, capture: "Capture") -> None:
        """Flush the garbage made so far, and detach ``capture``."""
        with self.lock:
            try:
                self._flush()
            finally:
                if capture in self.active:
                    self.active.remove(capture)
                if not self.active:
                    self._teardown()

    def _teardown(self) -> None:
        try:
            while self.callback in gc.callbacks:
                gc.callbacks.remove(self.callback)
        finally:
            if self.saved is not None:
                self.saved.restore()
            self.saved = None
            self.paused = False

    def begin_segment(self, capture: "Capture") -> None:
        """Make what exists now "before" for ``capture``'s next segment, and drop the
        garbage it recorded since its last one."""
        with self.lock:
            self._rearm()
            if capture.strategy != "freeze":
                gc.collect()
            if capture.store:
                self.release_store(capture, segment=True)
            if capture.strategy == "freeze":
                gc.freeze()  # objects made between segments and still young: out of sight too
            capture.collections = capture.unanalysed = 0

    def _rearm(self) -> None:
        """Put back DEBUG_SAVEALL and the callback if the code watched took them away."""
        if self.saved is None:
            return
        if not self.paused and not gc.get_debug() & gc.DEBUG_SAVEALL:
            gc.set_debug(gc.get_debug() | gc.DEBUG_SAVEALL)
        if self.callback not in gc.callbacks:
            gc.callbacks.append(self.callback)

    def release_store(self, capture: "Capture", segment: bool = False) -> None:
        """Free the garbage ``capture`` holds (with ``keep=True``: hand it to the caller).

        With the C core it is freed right here, without a collection; what that
        cannot free (everything, on the pure-Python path) is left to the full
        collection that the last capture to end runs, or, for a ``segment`` of a
        capture that goes on, to a collection right away: left as garbage while
        DEBUG_SAVEALL is on, it would be found again and charged to the next segment.
        """
        with self.lock:
            # Until the store is known to be freed: an interrupt anywhere in here
            # leaves the work to the full collection.
            leftover = True
            try:
                store, capture.store = capture.store, []
                if capture.keep:
                    capture.objects = store  # the caller's now: never cleared
                    leftover = False
                elif store:
                    leftover = not self._free(store, capture)
                else:
                    leftover = False
            finally:
                if leftover and not (segment and self._collect_unsaved()):
                    self.collect_at_release = True

    def _collect_unsaved(self) -> bool:
        """A full collection with DEBUG_SAVEALL off, freeing what was let go; False when
        the user's own DEBUG_SAVEALL keeps everything in gc.garbage anyway."""
        if self.user_saveall or self.saved is None:
            return False
        debug = gc.get_debug()
        gc.set_debug(debug & ~gc.DEBUG_SAVEALL)
        try:
            gc.collect()
        finally:
            gc.set_debug(debug)
        return True

    def release(self, capture: "Capture") -> None:
        """Let go of ``capture``'s store (see :meth:`release_store`); the last capture
        to end also thaws what was frozen for it."""
        with self.lock:
            try:
                self.release_store(capture)
            finally:
                if not self.active:
                    try:
                        if self.collect_at_release:
                            gc.collect()
                    finally:
                        self.collect_at_release = False
                        if self.froze:
                            self.froze = False
                            gc.unfreeze()

    def _free(self, store: list[Any], capture: "Capture") -> bool:
        """Free ``store``'s garbage and empty it; True when that leaves nothing for a
        full collection to free."""
        try:
            result = release_garbage(store)
        except Exception:  # MemoryError: the full collection frees it instead
            result = None
        finally:
            store.clear()
        if result is None:
            return False
        _cleared, kept = result
        if not kept:
            return True
        # Something still refers to what was kept. An enclosing capture that records
        # holds it all (it has recorded since before this one started): its own
        # release decides on it. Anything else waits for the full collection.
        return any(cap.recording and cap._order < capture._order for cap in self.active)

    # -- the callback -------------------------------------------------------------

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # Runs inside someone else's collection: it must never raise.
        try:
            if phase == "start":
                self._garbage_base = len(gc.garbage)
                return
            self._on_stop(info)
        except KeyboardInterrupt:
            # The collector would swallow it; hand Ctrl-C back to the main thread.
            import _thread

            _thread.interrupt_main()
        except BaseException as exc:  # noqa: BLE001 - a gc callback must not propagate
            self.collect_at_release = True  # garbage may have been dropped half-way
            self.errors.append(f"{type(exc).__name__} in the gc callback: {exc}")

    def _on_stop(self, info: dict[str, Any]) -> None:
        garbage = gc.garbage
        base = min(self._garbage_base, len(garbage))
        found = len(garbage) - base
        if not found and not self.paused:
            return  # the common case, kept cheap: it runs after every collection
        active = list(self.active)
        recorders = [cap for cap in active if cap.recording]
        if found:
            if self.user_saveall:
                new = garbage[base:]  # gc.garbage stays as the user expects
                for cap in recorders:
                    cap.store.extend(new)
                del new
            elif recorders:
                # The references move from gc.garbage to the first store (with the C
                # core, without touching a reference count); other stores copy them.
                first = recorders[0].store
                start = len(first)
                move_tail(garbage, base, first)
                if len(recorders) > 1:
                    new = first[start:]
                    for cap in recorders[1:]:
                        cap.store.extend(new)
                    del new
            else:
                del garbage[base:]
                self.collect_at_release = True  # cycles again: a full collection frees them
        if self.paused:
            freed = int(info.get("collected", 0)) - found
            released = min(freed, self.release_pending)
            self.release_pending -= released
            for cap in active:
                cap.unanalysed += freed - released
            if info.get("generation") == 2 and any(cap.recording for cap in active):
                self._set_saveall(True)
        if found and recorders:
            over_cap = False
            for cap in recorders:
                cap.collections += 1
                over_cap = over_cap or len(cap.store) > cap.max_objects
            if over_cap:
                for cap in recorders:
                    if cap.recording and len(cap.store) > cap.max_objects:
                        spilled = cap.spill()
                        self.release_pending += spilled
                        if spilled:
                            self.collect_at_release = True
                # Released objects are cycles again: let a full collection free them
                # instead of saving them a second time.
                self._set_saveall(False)
        if not any(cap.recording for cap in active):
            self._set_saveall(False)

    def adopt_new_dict(self, owner: object, new_dict: dict) -> None:
        """Labelling created ``owner``'s instance dict: add it to every recording store
        holding ``owner`` and to the store being analysed, or their graphs (and the
        objects a ``keep=True`` capture hands over) would lose the edges that now run
        through it. (CPython 3.11+ keeps attributes inline until someone asks for
        ``__dict__``.)"""
        with self.lock:
            for cap in [*self.active, *self.reporting]:
                if (cap.recording or cap in self.reporting) and any(obj is owner for obj in cap.store):
                    cap.store.append(new_dict)

    def _set_saveall(self, on: bool) -> None:
        if self.user_saveall or self.saved is None:
            return  # the user's own DEBUG_SAVEALL stays as they set it
        self.paused = not on
        debug = self.saved.debug | gc.DEBUG_SAVEALL if on else self.saved.debug & ~gc.DEBUG_SAVEALL
        gc.set_debug(debug)


_COLLECTOR = _Collector()
new_dict_listeners.append(_COLLECTOR.adopt_new_dict)


class Capture:
    """Capture every object that becomes cyclic garbage while the ``with`` block runs.

    ``with cyclescope.capture() as cap: ...`` then ``cap.report()``; with
    ``keep=True``, :attr:`objects` holds the captured objects themselves.

    :param keep: hand the captured objects to the caller as ``cap.objects``
        (otherwise they are released as soon as the report is built).
    :param freeze: use ``gc.freeze()`` so the cost follows what the block creates,
        not the size of the heap; misses cycles through objects made before the block.
    :param max_objects: past this many captured objects, summarise and release.
    :param types: only report components holding an object whose type matches one
        of these shell patterns (qualified or bare class name), each shown by its
        shortest cycle through that type.
    :param include_noise: also report cycles the interpreter or cyclescope makes.
    :param also_noise: top-level packages whose own cycles count as noise too, like
        the standard library's (e.g. a test runner's).
    :param on_flushed: called with the capture once the block has ended and its last
        collection has run, before the report is built and anything is released or
        thawed: under the freeze strategy ``gc.get_objects()`` then lists just what
        the block allocated and kept (plus the store). The pytest plugin looks for
        leftovers there.
    :param advice_cache: a dict shared by many captures (the pytest plugin's, one per
        test) so that each cycle shape is classified and located only once.
    :param progress: called with a short message before long work (analysing a
        large capture), e.g. to print it.
    :param include_existing: also capture the cyclic garbage that already exists
        when the block starts (no collection at entry, no freeze): the watch list
        uses it to explain watched objects that are garbage already.
    """

    def __init__(
        self,
        *,
        keep: bool = False,
        freeze: bool = False,
        max_objects: int = DEFAULT_MAX_OBJECTS,
        types: Iterable[str] | None = None,
        include_noise: bool = False,
        also_noise: Iterable[str] = (),
        advice_cache: dict[str, Any] | None = None,
        on_flushed: Callable[["Capture"], None] | None = None,
        progress: Callable[[str], None] | None = None,
        include_existing: bool = False,
    ) -> None:
        if max_objects < 1:
            raise ValueError("max_objects must be at least 1")
        self.keep = keep
        self.freeze_requested = freeze
        self.max_objects = max_objects
        self.type_patterns = tuple(types or ())
        self.include_noise = include_noise
        self.also_noise = frozenset(also_noise)
        self.advice_cache = advice_cache
        self.on_flushed = on_flushed
        self.progress = progress
        self.include_existing = include_existing
        self.strategy = ""
        self._order = 0  # set when started: captures started earlier have lower numbers
        self.store: list[Any] = []
        self.recording = False
        self.collections = 0
        self.unanalysed = 0
        self.objects: list[Any] = []
        self._partials: list[Any] = []
        self._report: Any = None
        self._warnings: list[str] = []
        self._errors_seen = 0  # the collector's errors already reported (by an earlier segment)
        self._entered = False

    def __enter__(self) -> "Capture":
        if self._entered:
            raise RuntimeError("a Capture can be used only once")
        self._entered = True
        _COLLECTOR.start(self)
        self.recording = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            _COLLECTOR.finish(self)
        finally:
            self.recording = False
            try:
                if self.on_flushed is not None:
                    self.on_flushed(self)
            finally:
                try:
                    self._report = self._take_report()
                finally:
                    _COLLECTOR.release(self)

    def segment(self, on_flushed: Callable[["Capture"], None] | None = None) -> "Segment":
        """A stretch of this (running) capture with its own report: ``with cap.segment() as seg:``.

        What exists when the segment starts counts as before it (frozen again, under
        the freeze strategy), garbage recorded since the last segment is dropped, and
        at its end the segment's garbage is analysed into ``seg.report()`` and freed.
        The pytest plugin runs one capture per session and one segment per test,
        which spares each test the capture's set-up and tear-down.
        """
        if not self.recording or self.keep:
            raise RuntimeError("segments need a running capture without keep=True")
        return Segment(self, on_flushed)

    def spill(self) -> int:
        """Summarise and drop what the store holds (called when over the cap).

        Returns how many objects were let go. With ``keep=True`` nothing is let
        go: recording stops instead.
        """
        if self.keep:
            self.recording = False
            self._warnings.append(
                f"stopped recording after {len(self.store):,} objects (max_objects reached with keep=True)"
            )
            return 0
        from cyclescope.explain.cycles import analyse

        released = len(self.store)
        self._partials.append(analyse(self.store, self._analysis_options()))
        self._warnings.append(
            f"held more than {self.max_objects:,} objects: summarised and released them early"
        )
        self.store = []
        return released

    def _analysis_options(self) -> Any:
        from cyclescope.explain.cycles import AnalysisOptions

        return AnalysisOptions(types=self.type_patterns, include_noise=self.include_noise,
                               also_noise=self.also_noise, advice_cache=self.advice_cache)

    def _take_report(self) -> Report:
        """Analyse what the store holds (and what was summarised earlier) into a report;
        the store itself is left for the caller to release."""
        errors = _COLLECTOR.errors[self._errors_seen:]
        self._errors_seen = len(_COLLECTOR.errors)
        if not self.store and not self._partials and not self._warnings and not errors:
            # Nothing captured: the common case of a pytest run, where it is paid per test.
            totals = Totals(collections=self.collections, unanalysed_objects=self.unanalysed)
            return Report(groups=[], totals=totals, strategy=self.strategy)
        from cyclescope.explain.cycles import analyse, merge_analyses
        from cyclescope.report.model import build_report

        notes, self._warnings = self._warnings, []
        if self.progress is not None and len(self.store) >= _PROGRESS_FROM:
            self.progress(f"analysing {len(self.store):,} captured objects...")
        _COLLECTOR.reporting.append(self)
        try:
            parts = self._partials + [analyse(self.store, self._analysis_options())]
        except Exception as exc:  # the host program must not crash because of us
            parts = self._partials
            errors.append(f"analysis failed: {type(exc).__name__}: {exc}")
        finally:
            _COLLECTOR.reporting.remove(self)
        self._partials = []
        merged = merge_analyses(parts)
        merged.totals.collections = self.collections
        merged.totals.unanalysed_objects = self.unanalysed
        report = build_report(merged.groups, merged.totals, strategy=self.strategy, warnings=notes, errors=errors)
        for message in notes + errors:
            warnings.warn(f"cyclescope: {message}", CaptureWarning, stacklevel=3)
        return report

    def report(self) -> "Report":
        """The report of what was captured (after the ``with`` block has ended)."""
        if self._report is None:
            raise RuntimeError("the capture is still running: call report() after the with block")
        return self._report


class Segment:
    """One stretch of a running :class:`Capture`, with its own report (see :meth:`Capture.segment`)."""

    def __init__(self, capture: Capture, on_flushed: Callable[[Capture], None] | None) -> None:
        self.capture = capture
        self.on_flushed = on_flushed
        self._report: Report | None = None

    def __enter__(self) -> "Segment":
        _COLLECTOR.begin_segment(self.capture)
        return self

    def __exit__(self, *exc_info: object) -> None:
        capture = self.capture
        try:
            _COLLECTOR.flush()
        finally:
            try:
                if self.on_flushed is not None:
                    self.on_flushed(capture)
            finally:
                try:
                    self._report = capture._take_report()
                finally:
                    if capture.store:
                        _COLLECTOR.release_store(capture, segment=True)

    def report(self) -> Report:
        """What the segment captured (after its ``with`` block has ended)."""
        if self._report is None:
            raise RuntimeError("the segment is still running: call report() after the with block")
        return self._report


#: ``with cyclescope.capture(...) as cap:`` reads as the context manager it is.
capture = Capture


def cycles_created_by(fn: Callable[..., T], *args: Any, **kwargs: Any) -> "Report":
    """Run ``fn(*args, **kwargs)`` under :func:`capture` and return the report.

    When ``fn`` returns a coroutine it is run to completion with ``asyncio.run``.
    """
    import asyncio
    import inspect

    with capture() as cap:
        result = fn(*args, **kwargs)
        if inspect.iscoroutine(result):
            asyncio.run(result)
        del result
    return cap.report()


if sys.version_info < (3, 10):  # pragma: no cover
    raise ImportError("cyclescope needs Python 3.10 or newer")
