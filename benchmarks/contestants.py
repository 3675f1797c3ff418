"""What each contestant does, run inside one fresh child process of ``bench_capture.py``.

Every task has the same frame:

* ``gc`` is disabled and collected before the measured part, so the block's
  garbage is all found by the tool's own collection (none by an automatic one);
* the block body is ``workload.make_cycles(n)`` and is timed on its own;
* ``overhead`` is the measured part minus the block body: everything the tool
  adds to get from "the block ran" to "the description is in hand and the
  garbage is freed again";
* memory: at the end of the block body (the garbage exists) the RSS is read and
  the kernel's peak-RSS mark is reset (``/proc/self/clear_refs`` = 5); at the end
  the peak (``VmHWM``) is read. ``extra_peak`` is the peak minus the RSS at the
  end of the body: what the tool needs on top of the garbage it describes.

Only the modules of one contestant are imported in its child, so no tool pays for
another's heap. Each task is first run on 5 cycles (one of each shape) to import
and warm up; that small run's output is where the peers' edge naming is checked.
"""

from __future__ import annotations

import gc
import io
import json
import re
import statistics
import sys
import time
from typing import Any, Callable

from workload import (
    ATTRIBUTE_NAMES,
    SHAPES,
    TRACEBACK_EDGES,
    cycles_per_shape,
    make_cycles,
    make_live_heap,
)

perf = time.perf_counter

#: show_refs() keeps its queue in a list and pops from the front; one call over
#: 280k objects spends about half its time moving that list. Chunks of this many
#: objects keep that cost out, in objgraph's favour.
OBJGRAPH_CHUNK = 10_000


# -- memory ---------------------------------------------------------------------------


def _status() -> dict[str, int]:
    values = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0])
    except OSError:
        import resource

        values["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        values["VmRSS"] = values["VmHWM"]
    return values


class Memory:
    """RSS before the body, at its end (peak mark reset there) and the peak after."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {"rss_before_body_kb": _status()["VmRSS"]}

    def body_end(self) -> None:
        st = _status()
        self.data["rss_body_end_kb"] = st["VmRSS"]
        self.data["hwm_before_reset_kb"] = st["VmHWM"]
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.data["hwm_reset"] = True
        except OSError:
            # Fresh process: the body end is its high-water mark so far, unless
            # start-up went higher (then hwm_before_reset_kb says so).
            self.data["hwm_reset"] = False

    def mark(self, name: str) -> None:
        """The peak so far (after a phase), for the rows derived from a prefix of a task."""
        self.data[f"peak_after_{name}_kb"] = _status()["VmHWM"]

    def end(self) -> dict[str, Any]:
        self.data["peak_kb"] = _status()["VmHWM"]
        self.data["extra_peak_kb"] = self.data["peak_kb"] - self.data["rss_body_end_kb"]
        self.data["garbage_rss_kb"] = self.data["rss_body_end_kb"] - self.data["rss_before_body_kb"]
        return self.data


# -- naming checks ----------------------------------------------------------------------


def _word(name: str, text: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text) is not None


def naming(edge_text: str) -> dict[str, Any]:
    """Which of the workload's attribute names and traceback edges appear in a tool's
    edge labels (case-sensitive, whole identifiers)."""
    attrs = [a for a in ATTRIBUTE_NAMES if _word(a, edge_text)]
    tb = [t for t in TRACEBACK_EDGES if _word(t, edge_text)]
    return {
        "attributes": attrs,
        "attributes_total": len(ATTRIBUTE_NAMES),
        "traceback_edges": tb,
        "names_attributes": len(attrs) == len(ATTRIBUTE_NAMES),
        "names_traceback": bool(tb),
    }


def check_report(report: Any, n: int) -> dict[str, Any]:
    """Every edge named (no step of kind 'referent'), and the 5 shapes with n/5 each."""
    per = cycles_per_shape(n)
    referent = [
        f"{g.signature}: {s.type} {s.edge}" for g in report.groups for s in g.cycle if s.edge_kind == "referent"
    ]
    counts: dict[str, int] = {}
    unmatched = []
    for g in report.groups:
        text = g.signature + " " + " ".join(s.edge for s in g.cycle)
        found = [shape for shape, (_, tokens) in SHAPES.items() if all(t in text for t in tokens)]
        if len(found) == 1:
            counts[found[0]] = counts.get(found[0], 0) + g.count
        else:
            unmatched.append(f"{g.count} x {g.signature}")
    ok = (
        not referent
        and not unmatched
        and len(report.groups) == len(SHAPES)
        and all(counts.get(shape) == per for shape in SHAPES)
    )
    return {
        "ok": ok,
        "groups": len(report.groups),
        "counts": counts,
        "expected_per_shape": per,
        "referent_edges": referent[:5],
        "unmatched_groups": unmatched[:5],
        "warnings": list(report.warnings),
        "strategy": report.strategy,
    }


# -- the tasks --------------------------------------------------------------------------
# Each returns (result dict, text whose edge labels are checked for names).


def task_baseline(n: int) -> tuple[dict, str]:
    gc.collect()
    mem = Memory()
    t1 = perf()
    made = make_cycles(n)
    t2 = perf()
    mem.body_end()
    t3 = perf()
    collected = gc.collect()
    t4 = perf()
    return {
        "cycles": made,
        "body_s": t2 - t1,
        "overhead_s": t4 - t3,
        "phases": {"gc.collect": t4 - t3},
        "collected_objects": collected,
        "memory": mem.end(),
    }, ""


def _cyclescope_once(n: int, freeze: bool = False) -> tuple[dict, Any]:
    import cyclescope

    t0 = perf()
    with cyclescope.capture(freeze=freeze) as cap:
        t1 = perf()
        made = make_cycles(n)
        t2 = perf()
        if MEMORY:
            MEMORY[0].body_end()
        t3 = perf()
    t4 = perf()
    report = cap.report()
    t5 = perf()
    return {
        "cycles": made,
        "body_s": t2 - t1,
        "overhead_s": (t1 - t0) + (t5 - t3),
        "phases": {"entry": t1 - t0, "exit": t4 - t3, "report()": t5 - t4},
        "captured_objects": report.totals.captured_objects,
    }, report


MEMORY: list[Memory] = []


def task_cyclescope(n: int) -> tuple[dict, str]:
    import cyclescope.graph

    gc.collect()
    MEMORY[:] = [Memory()]
    result, report = _cyclescope_once(n)
    result["memory"] = MEMORY[0].end()
    MEMORY.clear()
    result["check"] = check_report(report, n)
    result["c_core"] = cyclescope.graph.using_c_core()
    result["module_file"] = cyclescope.graph.__file__
    edges = " ".join(s.edge for g in report.groups for s in g.cycle)
    return result, edges


def task_refcycle(n: int) -> tuple[dict, str]:
    import refcycle

    gc.collect()
    mem = Memory()
    marks: dict[str, float] = {}

    def block() -> None:
        marks["t1"] = perf()
        marks["made"] = make_cycles(n)
        marks["t2"] = perf()
        mem.body_end()
        marks["t3"] = perf()

    t0 = perf()
    graph = refcycle.cycles_created_by(block)  # collect, DEBUG_SAVEALL, block, collect
    t4 = perf()
    sccs = graph.strongly_connected_components()
    t5 = perf()
    text = graph.annotated().to_json()  # every vertex and edge, annotated
    t6 = perf()
    components = len(sccs)
    del sccs, graph
    gc.collect()  # release the captured objects
    t7 = perf()
    result = {
        "cycles": marks["made"],
        "body_s": marks["t2"] - marks["t1"],
        "overhead_s": (marks["t1"] - t0) + (t7 - marks["t3"]),
        "phases": {
            "entry collect": marks["t1"] - t0,
            "capture (ObjectGraph)": t4 - marks["t3"],
            "strongly_connected_components": t5 - t4,
            "annotated().to_json()": t6 - t5,
            "release": t7 - t6,
        },
        "components": components,
        "output_chars": len(text),
        "memory": mem.end(),
    }
    edges = " ".join(str(e["annotation"]) for e in json.loads(text)["edges"])
    return result, edges


def _saveall_capture(n: int, mem: Memory) -> tuple[dict, float]:
    """The DEBUG_SAVEALL capture objgraph's and guppy's users write by hand."""
    t0 = perf()
    old = gc.get_debug()
    gc.collect()  # dispose of earlier garbage, as an exact capture does
    gc.set_debug(old | gc.DEBUG_SAVEALL)
    t1 = perf()
    made = make_cycles(n)
    t2 = perf()
    mem.body_end()
    t3 = perf()
    gc.collect()
    gc.set_debug(old)
    t4 = perf()
    return {"cycles": made, "body_s": t2 - t1, "entry": t1 - t0, "capture": t4 - t3, "t3": t3}, t4


def _saveall_result(cap: dict[str, Any], end: float, phases: dict[str, float], text: str, mem: Any) -> dict:
    """The result of a peer that captured with DEBUG_SAVEALL and ended at ``end``."""
    return {
        "cycles": cap["cycles"],
        "body_s": cap["body_s"],
        "overhead_s": cap["entry"] + (end - cap["t3"]),
        "phases": phases,
        "output_chars": len(text),
        "memory": mem.end(),
    }


def task_objgraph(n: int, refs: bool = True) -> tuple[dict, str]:
    import objgraph

    gc.collect()
    mem = Memory()
    cap, t4 = _saveall_capture(n, mem)
    garbage = gc.garbage[:]
    del gc.garbage[:]
    stats = objgraph.typestats(objects=garbage)
    text = "\n".join(f"{name} {count}" for name, count in sorted(stats.items(), key=lambda kv: -kv[1]))
    t5 = perf()
    mem.mark("typestats")
    edges = text
    if refs:
        # Every captured object and its references to the other captured objects,
        # labelled by objgraph, as Graphviz text (not rendered).
        ids = {id(obj) for obj in garbage}
        buf = io.StringIO()
        for i in range(0, len(garbage), OBJGRAPH_CHUNK):
            objgraph.show_refs(
                garbage[i : i + OBJGRAPH_CHUNK], max_depth=1, filter=lambda o: id(o) in ids, output=buf
            )
        dot = buf.getvalue()
        del ids, buf
        edges = " ".join(re.findall(r'->\s*\S+\s*\[label="([^"]*)"', dot))
        text += dot
    t6 = perf()
    del garbage
    gc.collect()
    t7 = perf()
    phases = {"entry collect": cap["entry"], "capture (DEBUG_SAVEALL)": cap["capture"] + 0.0}
    phases["typestats"] = t5 - t4
    if refs:
        phases["show_refs (dot text)"] = t6 - t5
    phases["release"] = t7 - t6
    return _saveall_result(cap, t7, phases, text, mem), edges


def task_objgraph_types(n: int) -> tuple[dict, str]:
    return task_objgraph(n, refs=False)


HPY: list[Any] = []


def task_guppy(n: int, byvia: bool = False) -> tuple[dict, str]:
    if not HPY:
        from guppy import hpy

        HPY.append(hpy())
    hp = HPY[0]
    gc.collect()
    mem = Memory()
    cap, t4 = _saveall_capture(n, mem)
    # gc.garbage stays as DEBUG_SAVEALL leaves it: reachable, so guppy sees referrers.
    h = hp.iso(*gc.garbage)
    text = str(h)  # partition by kind
    t5 = perf()
    text += str(h.byrcs)  # partition by the kinds of the referrers
    t6 = perf()
    edges = text  # kind and referrer-kind partitions: checked as they are
    if byvia:
        via = h.byvia  # partition by the edge each object is reached through
        text += str(via)
        if n <= 50:  # the warm-up run: all rows, for the naming check
            edges = str(via.all)
        del via
    t7 = perf()
    del h
    del gc.garbage[:]
    gc.collect()
    t8 = perf()
    phases = {
        "entry collect": cap["entry"],
        "capture (DEBUG_SAVEALL)": cap["capture"],
        "iso + kind": t5 - t4,
        "byrcs": t6 - t5,
    }
    if byvia:
        phases["byvia"] = t7 - t6
    phases["release"] = t8 - t7
    return _saveall_result(cap, t8, phases, text, mem), edges


def task_guppy_byvia(n: int) -> tuple[dict, str]:
    return task_guppy(n, byvia=True)


TASKS: dict[str, Callable[[int], tuple[dict, str]]] = {
    "baseline": task_baseline,
    "cyclescope": task_cyclescope,
    "cyclescope_pure": task_cyclescope,
    "refcycle": task_refcycle,
    "objgraph_types": task_objgraph_types,
    "objgraph": task_objgraph,
    "guppy": task_guppy,
    "guppy_byvia": task_guppy_byvia,
}


def run_contestant(name: str, n: int) -> dict[str, Any]:
    """Warm up on 5 cycles (and check edge naming there), then measure once at ``n``."""
    task = TASKS[name]
    gc.disable()
    t = perf()
    warm, warm_edges = task(5)
    warm_s = perf() - t
    gc.collect()
    heap_objects = len(gc.get_objects())
    result, edges = task(n)
    del edges
    result["warmup_s"] = warm_s
    result["heap_objects_before"] = heap_objects
    result["naming"] = naming(warm_edges) if name != "baseline" else None
    if "check" in warm:
        result["warmup_check"] = warm["check"]
    result["python"] = sys.version.split()[0]
    return result


# -- large heap: freeze=True vs one full collection ----------------------------------------


def run_large_heap(objects: int, cycles: int, reps: int) -> dict[str, Any]:
    import cyclescope
    import cyclescope.graph

    gc.disable()
    for freeze in (True, False):  # import and warm up
        _cyclescope_once(5, freeze=freeze)
    t = perf()
    heap = make_live_heap(objects)
    build_s = perf() - t
    gc.collect()
    gc.collect()
    live = len(gc.get_objects())
    full, frozen, exact = [], [], []
    checks = {}
    for _ in range(reps):
        t = perf()
        gc.collect()
        full.append(perf() - t)
        for freeze, runs in ((True, frozen), (False, exact)):
            gc.collect()
            result, report = _cyclescope_once(cycles, freeze=freeze)
            runs.append(result)
            checks[str(freeze)] = check_report(report, cycles)
    del heap
    med = statistics.median

    def summary(runs: list[dict]) -> dict[str, Any]:
        overhead = med(r["overhead_s"] for r in runs)
        return {
            "overhead_s": overhead,
            "percent_of_full_collect": 100.0 * overhead / med(full),
            "entry_s": med(r["phases"]["entry"] for r in runs),
            "exit_s": med(r["phases"]["exit"] for r in runs),
            "body_s": med(r["body_s"] for r in runs),
            "runs_overhead_s": [r["overhead_s"] for r in runs],
        }

    return {
        "live_objects": live,
        "heap_build_s": build_s,
        "cycles_in_block": cycles,
        "reps": reps,
        "full_collect_s": med(full),
        "full_collect_runs_s": full,
        "freeze": summary(frozen),
        "exact": summary(exact),
        "checks": checks,
        "c_core": cyclescope.graph.using_c_core(),
    }


# -- where the exit's time goes ---------------------------------------------------------


class _Timers:
    """Replaces functions by timed wrappers. Nested wrapped calls are charged to the
    outermost wrapped caller only (besides ``analyse`` itself, timed apart), so the
    parts of one call add up without counting anything twice."""

    def __init__(self) -> None:
        self.total: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.undo: list[tuple[Any, str, Any]] = []
        self.depth = 0
        self.in_analyse = False

    def wrap(self, owner: Any, attr: str, key: str, top: bool = False, analyse: bool = False) -> bool:
        """``top``: always timed; ``analyse``: timed, and marks its duration as inside
        analyse(); otherwise a part: timed only when called inside analyse() and not
        from another part."""
        fn = getattr(owner, attr, None)
        if fn is None:
            return False
        timers = self
        part = not (top or analyse)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if part and (timers.depth or not timers.in_analyse):
                return fn(*args, **kwargs)
            if part:
                timers.depth += 1
            if analyse:
                timers.in_analyse = True
            t = perf()
            try:
                return fn(*args, **kwargs)
            finally:
                timers.total[key] = timers.total.get(key, 0.0) + perf() - t
                timers.calls[key] = timers.calls.get(key, 0) + 1
                if part:
                    timers.depth -= 1
                if analyse:
                    timers.in_analyse = False

        self.undo.append((owner, attr, fn))
        setattr(owner, attr, timed)
        return True

    def restore(self) -> None:
        for owner, attr, fn in reversed(self.undo):
            setattr(owner, attr, fn)
        self.undo.clear()


class _GcShim:
    """Stands for ``gc`` in the capture module: times each collect() in call order."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.collects: list[float] = []

    def collect(self, *args: Any, **kwargs: Any) -> int:
        t = perf()
        try:
            return self._real.collect(*args, **kwargs)
        finally:
            self.collects.append(perf() - t)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def run_profile(n: int) -> dict[str, Any]:
    """The exit of one ``capture()`` at ``n`` cycles, split by timing the functions it
    calls: the collections, ``analyse()`` and, inside it, every function of cyclescope
    that ``explain/cycles.py`` calls by name (found at run time, so the split follows
    the code as it is). What is left of ``analyse()`` is its own lines."""
    import inspect

    import cyclescope
    import cyclescope.explain.cycles as cyc
    import cyclescope.graph
    import cyclescope.report.model as model

    capmod = sys.modules[cyclescope.capture.__module__]
    gc.disable()
    _cyclescope_once(5)
    gc.collect()

    timers = _Timers()
    shim = _GcShim(gc)
    capmod.gc = shim
    timers.wrap(cyc, "analyse", "analyse", analyse=True)
    parts = []
    for name, obj in sorted(vars(cyc).items()):
        if name in ("analyse", "merge_analyses") or not inspect.isfunction(obj):
            continue
        if not (getattr(obj, "__module__", "") or "").startswith("cyclescope"):
            continue
        if timers.wrap(cyc, name, name):
            parts.append(name)
    timers.wrap(cyc, "merge_analyses", "merge_analyses", top=True)
    timers.wrap(model, "build_report", "build_report", top=True)
    if hasattr(capmod, "release_garbage"):
        timers.wrap(capmod, "release_garbage", "release_garbage", top=True)
    collector = getattr(capmod, "_COLLECTOR", None)
    if collector is not None:
        timers.wrap(type(collector), "on_gc", "gc callback (on_gc)", top=True)
    try:
        result, report = _cyclescope_once(n)
    finally:
        timers.restore()
        capmod.gc = gc
    exit_s = result["phases"]["exit"]
    totals = dict(timers.total)
    analyse_parts = {name: totals[name] for name in parts if name in totals}
    collects = shim.collects
    # The entry's collect comes before the block; the exit's are the flush and, only
    # when something was left that the C release could not free, a release collect.
    exit_collects = collects[1:]
    out = {
        "exit_total": exit_s,
        "collects_in_order": collects,
        "exit_collects": exit_collects,
        "gc_callback": totals.get("gc callback (on_gc)", 0.0),
        "analyse": totals.get("analyse", 0.0),
        "analyse_parts": dict(sorted(analyse_parts.items(), key=lambda kv: -kv[1])),
        "analyse_calls": {name: timers.calls[name] for name in analyse_parts},
        "analyse_own_lines": totals.get("analyse", 0.0) - sum(analyse_parts.values()),
        "merge_and_build_report": totals.get("merge_analyses", 0.0) + totals.get("build_report", 0.0),
        "release_garbage": totals.get("release_garbage", 0.0),
    }
    out["exit_other"] = (
        exit_s - sum(exit_collects) - out["analyse"] - out["merge_and_build_report"] - out["release_garbage"]
    )
    out["check"] = check_report(report, n)
    out["c_core"] = cyclescope.graph.using_c_core()
    return out
