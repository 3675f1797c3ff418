"""Heap snapshot benchmark: cyclescope.snapshot() and its queries against gc.collect() and three peers.

Run by ``make bench`` (nox session ``bench``, after bench_capture.py and
bench_pytest.py), or directly::

    python benchmarks/bench_heap.py [--sizes 100k,1M] [--reps 5] [--tools ...] [--output PATH]

For each heap size, every tool runs once, in its own fresh child process (this
script with ``--child``), on a heap built the same way in each: about SIZE
gc-tracked objects, a mix of instances with ``__dict__`` and ``__slots__``,
dicts, lists, tuples and strings, held by a module, with a target object several
levels down a module-level cache. The child builds the heap, imports its tool,
times ``gc.collect()`` on that heap (the reference) and then each step of the
tool, reporting each step as it ends; the parent prints a progress line per step,
kills a child that exceeds ``--timeout`` (keeping what it reported), prints one
table per size and writes everything to ``benchmarks/results/heap_latest.json``.
See benchmarks/README.md for the method.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import queue
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from _common import choose, parse_sizes, run_meta, size_label, write_results  # noqa: E402

STEP = "BENCH-HEAP-STEP "  # a finished step: JSON
START = "BENCH-HEAP-START "  # a step about to run: its name (what a timeout is charged to)

#: tool: what its child does (beyond building the heap and timing gc.collect())
TOOLS: dict[str, str] = {
    "baseline": "gc.collect() only",
    "cyclescope": "cyclescope.snapshot() and queries",
    "objgraph": "objgraph.find_backref_chain(target, is_proper_module)",
    "guppy": "guppy3: hpy().iso(target).shpaths, hpy().heap()",
    "refcycle": "refcycle.snapshot() + shortest_path(module, target)",
}

# Targets (from the issue), against one gc.collect() of the same heap.
TARGET_SNAPSHOT = 1.5  # snapshot() at most 1.5x
TARGET_FIRST_PATH = 2.0  # first retention path at most 2x
TARGET_FURTHER = 0.05  # each further query on the same snapshot at most 5% of one collect
TARGET_DOMINATORS = 5.0  # dominator tree and retained sizes at most 5x
TARGET_BYTES_PER_NODE = 40
TARGET_BYTES_PER_EDGE = 8

APP_MODULE = "bench_heap_app"
CACHE_ENTRIES = 200  # sessions in the module-level cache
RESPONSES = 10  # responses per session
TARGET_ENTRY = 137  # the cache entry whose session holds the target
TARGET_RESPONSE = 7
THIRD_ENTRY = 42  # the first session whose retained size is asked for
FURTHER = 5  # further queries of each kind, each about a different object (the median is shown)
CHUNK = 500  # units per list of the bulk store
GROWTH = 2_000  # objects added between the two snapshots that diff() compares
SHARED_LITERALS = ("etag", "server")  # the only strings a session shares with other objects


# -- the heap (child side) --------------------------------------------------------------------


class Point:
    """A small ``__slots__`` instance."""

    __slots__ = ("x", "y")

    def __init__(self, x: int, y: object) -> None:
        self.x = x
        self.y = y


class Record:
    """An instance with a ``__dict__``: a name, a list, a dict of atoms, a slotted point."""

    def __init__(self, i: int) -> None:
        self.name = f"record-{i}"
        self.tags = ["fresh", self.name]
        self.meta = {"id": i, "owner": self.name}  # only atoms: gc does not track this dict
        self.point = Point(i, None)


def _unit(i: int) -> tuple:
    """One unit of the bulk: a record (with its list and point), an index entry
    (a dict holding the record and a list) and a tuple holding the record's list."""
    rec = Record(i)
    return rec, {"record": rec, "seen": [i]}, (rec.name, rec.tags)


class Response:
    """What the cache keeps per request: a body, headers, a status."""

    def __init__(self, session: str, j: int) -> None:
        self.status = 200
        self.body = bytes(96)  # a new object each time
        self.headers = {"etag": f'W/"{session}-{j}"', "server": f"origin-{j}"}


class Session:
    def __init__(self, k: int) -> None:
        self.url = f"https://api.example.test/session/{k}"
        self.responses = {f"r-{j}": Response(self.url, j) for j in range(RESPONSES)}


class Leaked:
    """What the heap gains between the two snapshots that diff() compares."""

    def __init__(self, i: int) -> None:
        self.history = [i]


def cache_key(k: int) -> str:
    return f"https://api.example.test/item/{k}"


def build_heap(size: int) -> tuple[types.ModuleType, dict[str, Any]]:
    """A module ``bench_heap_app`` in ``sys.modules`` holding about ``size`` gc-tracked
    objects in all (counting what the process had before), the same in every child.

    ``CACHE`` is the module-level cache: ``{url: [url, k, Session, (k, "fresh")]}``, each
    session holding ``.responses = {"r-0": Response, ...}``; the target is
    ``CACHE[url 137][2].responses["r-7"]`` (module -> dict -> list -> Session -> dict
    -> Response). ``STORE`` is the bulk: lists of ``CHUNK`` units.
    """
    gc.collect()
    before = len(gc.get_objects())
    started = time.perf_counter()
    app = types.ModuleType(APP_MODULE, "The benchmark's application heap.")
    sys.modules[APP_MODULE] = app
    cache: dict[str, list] = {}
    for k in range(CACHE_ENTRIES):
        cache[cache_key(k)] = [cache_key(k), k, Session(k), (k, "fresh")]
    app.CACHE = cache
    store: list[list] = []
    app.STORE = store
    gc.collect()
    after_cache = len(gc.get_objects())
    probe: list = []
    for i in range(1000):
        probe.extend(_unit(i))
    gc.collect()
    per_unit = max(1.0, (len(gc.get_objects()) - after_cache - 1) / 1000)
    units = max(1000, int((size - before) / per_unit))
    store.append(probe)
    i = 1000
    while i < units:
        chunk: list = []
        for j in range(i, min(i + CHUNK, units)):
            chunk.extend(_unit(j))
        store.append(chunk)
        i += CHUNK
    gc.collect()
    info = {
        "tracked_before_heap": before,
        "tracked_cache": after_cache - before,
        "tracked_after_heap": len(gc.get_objects()),
        "units": units,
        "tracked_per_unit": per_unit,
        "build_s": time.perf_counter() - started,
    }
    return app, info


def the_target(app: types.ModuleType) -> object:
    return app.CACHE[cache_key(TARGET_ENTRY)][2].responses[f"r-{TARGET_RESPONSE}"]


def other_spots(app: types.ModuleType) -> list[tuple[int, int]]:
    """(chunk, entry) of the records whose points the further path queries ask about,
    spread over the store; ``STORE[chunk][entry]`` is a Record."""
    sizes = [len(chunk) // 3 for chunk in app.STORE]
    total = sum(sizes)
    spots = []
    for k in range(FURTHER):  # distinct records, spread evenly, the first one in chunk 1 when there is one
        record = (1123 + k * total // FURTHER) % total
        chunk = 0
        while record >= sizes[chunk]:
            record -= sizes[chunk]
            chunk += 1
        spots.append((chunk, 3 * record))
    return spots


def the_other(app: types.ModuleType, k: int = 0) -> object:
    chunk, entry = other_spots(app)[k]
    return app.STORE[chunk][entry].point


def the_third(app: types.ModuleType, k: int = 0) -> object:
    return app.CACHE[cache_key(THIRD_ENTRY + k)][2]


def expected_paths(app: types.ModuleType) -> dict[str, Any]:
    return {
        "target": f"module {APP_MODULE} -> .CACHE -> [{cache_key(TARGET_ENTRY)!r}] -> [2] -> .responses -> "
        f"['r-{TARGET_RESPONSE}'] -> Response",
        "others": [f"module {APP_MODULE} -> .STORE -> [{c}] -> [{e}] -> .point -> Point" for c, e in other_spots(app)],
    }


def expected_retained(obj: object) -> tuple[int, int]:
    """Bytes and objects only ``obj`` keeps alive, counted independently of cyclescope:
    everything reachable from it (``gc.get_referents``) except types, the header names
    (string constants) and small ints, which a session's subtree shares with the rest
    of the heap; the rest of a session's subtree is made for it alone."""
    seen = {id(obj): obj}
    todo = [obj]
    while todo:
        for ref in gc.get_referents(todo.pop()):
            if id(ref) in seen or isinstance(ref, (type, types.ModuleType)):
                continue
            if type(ref) is str and ref in SHARED_LITERALS:
                continue
            if type(ref) is int and -5 <= ref <= 256:
                continue
            seen[id(ref)] = ref
            todo.append(ref)
    return sum(sys.getsizeof(o) for o in seen.values()), len(seen)


# -- memory and timing (child side) ----------------------------------------------------------


def _proc_status(*keys: str) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in keys:
                    out[key] = int(rest.split()[0])  # kB
    except OSError:
        pass
    return out


def rss_kb() -> int:
    try:
        with open("/proc/self/statm") as f:
            resident = int(f.read().split()[1])
        return resident * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def emit(kind: str, payload: Any) -> None:
    sys.stdout.write((STEP if kind == "step" else START) + json.dumps(payload) + "\n")
    sys.stdout.flush()


#: Time spent inside the wrapped functions (see wrap_parts) during the current step.
PARTS: dict[str, float] = {}


def wrap_parts(targets: list[tuple[Any, str]]) -> None:
    """Time every call of ``module.name`` from now on (for the "of which" lines). The
    wrapped functions are each called a few times per query, so the wrappers cost
    microseconds; each keeps its caller's arguments only for the call."""
    for module, name in targets:
        fn = getattr(module, name, None)
        if fn is None:
            continue

        def timed(*args: Any, __fn: Callable = fn, __key: str = name, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return __fn(*args, **kwargs)
            finally:
                PARTS[__key] = PARTS.get(__key, 0.0) + time.perf_counter() - t0

        setattr(module, name, timed)


def measure(name: str, fn: Callable[[], Any], collect_first: bool = True) -> tuple[Any, dict[str, Any]]:
    """Run ``fn`` once, timed, with the RSS before and after and the peak in between.
    A full collection first (untimed) so no automatic one is owed from the last step."""
    if collect_first:
        gc.collect()
    emit("start", name)
    PARTS.clear()
    peak_ok = reset_peak()
    before = rss_kb()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - t0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    after = rss_kb()
    peak = _proc_status("VmHWM").get("VmHWM") if peak_ok else None
    rec = {
        "step": name,
        "s": seconds,
        "rss_delta_mb": (after - before) / 1024,
        "peak_delta_mb": (peak - before) / 1024 if peak is not None else None,
        "minor_faults": faults,  # pages touched for the first time: fresh memory costs
    }
    if PARTS:
        rec["parts_s"] = dict(PARTS)
    return value, rec


def summary(name: str, recs: list[dict]) -> dict[str, Any]:
    """One row for several runs of a query, each about a different object: the median time."""
    times = [r["s"] for r in recs]
    out = {k: v for k, v in recs[0].items() if k not in ("step", "s", "rss_delta_mb", "peak_delta_mb", "parts_s")}
    out.update({
        "step": name, "s": statistics.median(times), "max_s": max(times), "all_s": times, "runs": recs,
        "ok": all(r.get("ok", True) for r in recs),
        "rss_delta_mb": sum(r["rss_delta_mb"] for r in recs),
        "peak_delta_mb": max((r["peak_delta_mb"] or 0.0) for r in recs),
    })
    return out


def array_bytes(obj: Any) -> int:
    try:
        with memoryview(obj) as view:
            return view.nbytes
    except TypeError:
        return 0


# -- the tools (child side) ---------------------------------------------------------------


def reference_collect(reps: int, budget_s: float = 1.0, most: int = 51) -> dict[str, Any]:
    """Median of at least ``reps`` full collections, more (up to ``most``) while they
    take under ``budget_s`` in all: at 100k objects one takes a few ms, and one
    preempted run would move a median of five."""
    times: list[float] = []
    gc.collect()
    while len(times) < reps or (sum(times) < budget_s and len(times) < most):
        t0 = time.perf_counter()
        gc.collect()
        times.append(time.perf_counter() - t0)
    return {"step": "gc_collect", "s": statistics.median(times), "all_s": times, "reps": len(times)}


def run_cyclescope(app: types.ModuleType) -> None:
    import cyclescope
    import cyclescope.heap as cs_heap
    from cyclescope import graph as cs_graph
    from cyclescope import heapalgo

    # Where a step's time goes: the C graph build, the roots, and the graph algorithms
    # (looked up through their modules at each call, so wrapping them here is enough).
    # Names missing from the installed version are skipped.
    wrap_parts([(cs_heap, "build_heap_graph"), (cs_heap, "_find_roots"), (cs_heap, "_root_candidates"),
                (cs_heap, "_external_roots"), (heapalgo, "positions"), (heapalgo, "bfs"),
                (heapalgo, "dominators"), (heapalgo, "retained_sizes"), (heapalgo, "top_indices"),
                (heapalgo, "transpose"), (heapalgo, "group_totals"),
                (heapalgo, "new_nodes")])

    emit("step", {"step": "versions", "module_file": cyclescope.__file__,
                  "c_core": cs_graph.using_c_core(),
                  "c_heap_snapshot": bool(getattr(cs_graph._core, "heap_snapshot", None)),
                  "c_heapalgo": heapalgo.using_c_heapalgo()})
    expected = expected_paths(app)

    # Counted before any query can touch the session (labelling a path through an
    # instance may give it a __dict__ object on 3.11/3.12).
    wanted = [expected_retained(the_third(app, k)) for k in range(FURTHER)]

    snap, rec = measure("snapshot", cyclescope.snapshot)
    g = snap._graph
    per_node = {k: array_bytes(v) for k, v in vars(g).items() if k != "targets" and array_bytes(v)}
    edges = len(g.targets)
    graph_bytes = sum(per_node.values()) + array_bytes(g.targets)
    rec.update({
        "nodes": snap.n,
        "edges": edges,
        "tracked": sum(g.tracked),
        "graph_array_bytes": graph_bytes,
        "node_array_bytes": per_node,
        "edge_array_bytes": array_bytes(g.targets),
        "bytes_per_node_arrays": sum(per_node.values()) / snap.n,
        "bytes_per_edge_arrays": array_bytes(g.targets) / max(1, edges),
        "rss_bytes_per_node": rec["rss_delta_mb"] * 1048576 / snap.n,
    })
    emit("step", rec)

    def first_path() -> Any:
        return snap.retention_paths(the_target(app))

    paths, rec = measure("first_path", first_path)
    text = str(paths[0]) if paths else None
    rec.update({"path": text, "expected": expected["target"], "ok": text == expected["target"],
                "hops": len(paths[0].steps) - 1 if paths else None, "root_kind": paths[0].root_kind if paths else None,
                "stale": paths[0].stale if paths else None})
    emit("step", rec)

    recs = []
    for k in range(FURTHER):
        paths, rec = measure(f"further_path_{k}", lambda k=k: snap.retention_paths(the_other(app, k)),
                             collect_first=False)
        text = str(paths[0]) if paths else None
        rec.update({"path": text, "expected": expected["others"][k], "ok": text == expected["others"][k],
                    "hops": len(paths[0].steps) - 1 if paths else None})
        recs.append(rec)
    emit("step", summary("further_path", recs))

    def same_again() -> Any:
        return snap.retention_paths(the_target(app))

    paths, rec = measure("repeat_path", same_again, collect_first=False)
    text = str(paths[0]) if paths else None
    rec.update({"path": text, "ok": text == expected["target"], "stale": paths[0].stale if paths else None})
    emit("step", rec)

    def three_paths() -> Any:
        return snap.retention_paths(the_target(app), n=3)

    paths, rec = measure("further_paths_n3", three_paths, collect_first=False)
    rec.update({"paths": [str(p) for p in paths]})
    emit("step", rec)

    # The first n > 1 query builds the reverse graph; the next ones read it.
    paths, rec = measure("further_paths_n3_again", lambda: snap.retention_paths(the_other(app, 1), n=3),
                         collect_first=False)
    rec.update({"paths": [str(p) for p in paths]})
    emit("step", rec)

    top, rec = measure("top_retainers", lambda: snap.top_retainers(10))
    rec.update({"top": [{"type": r.type, "bytes": r.retained_bytes, "objects": r.retained_objects,
                         "path": str(r.path) if r.path else None} for r in top[:5]],
                "store_is_first": bool(top) and top[0].path is not None
                and str(top[0].path) == f"module {APP_MODULE} -> .STORE -> list"})
    emit("step", rec)

    recs = []
    for k in range(FURTHER):
        third = the_third(app, k)
        size, rec = measure(f"further_retained_size_{k}", lambda: snap.retained_size(third), collect_first=False)
        rec.update({"bytes": size, "expected_bytes": wanted[k][0], "expected_objects": wanted[k][1],
                    "ok": size == wanted[k][0]})
        recs.append(rec)
        del third
    emit("step", summary("further_retained_size", recs))

    # What the snapshot holds once queried: its graph, the address index, the search, tree and
    # reverse-graph caches.
    index = getattr(snap, "_index", None) or {}
    index_bytes = sys.getsizeof(index) + sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in index.items()) \
        if index else 0
    caches = 0
    for cache in (getattr(snap, "_bfs", None), getattr(snap, "_dominators", None), getattr(snap, "_reverse", None)):
        caches += sum(array_bytes(a) for a in cache or ())
    roots = getattr(snap, "_roots", [])
    other = array_bytes(getattr(snap, "_blocked", b"")) + sys.getsizeof(snap.type_names) + sys.getsizeof(roots) \
        + sum(sys.getsizeof(r) for r in roots)
    emit("step", {"step": "snapshot_memory", "nodes": snap.n, "edges": edges, "graph_array_bytes": graph_bytes,
                  "index_dict_bytes": index_bytes, "query_cache_bytes": caches, "other_bytes": other,
                  "roots": len(roots),
                  "roots_by_kind": {kind: sum(1 for r in roots if r.kind == kind)
                                    for kind in sorted({r.kind for r in roots})},
                  "bytes_per_node_all": (graph_bytes - array_bytes(g.targets) + index_bytes + caches + other) / snap.n})
    del snap, g, index, top, paths, roots

    # A fresh snapshot whose first query is retained_size(): the dominator tree alone.
    snap2, rec = measure("snapshot_again", cyclescope.snapshot)
    emit("step", rec)
    third = the_third(app)
    size, rec = measure("first_retained_size", lambda: snap2.retained_size(third), collect_first=False)
    rec.update({"bytes": size, "ok": size == wanted[0][0]})
    emit("step", rec)
    del third

    # diff(): the heap gains GROWTH Leaked objects (each with a list), then a third snapshot.
    app.GROWN = [Leaked(i) for i in range(GROWTH)]
    snap3, rec = measure("snapshot_older_alive", cyclescope.snapshot)
    rec.update({"nodes": snap3.n, "nodes_older": snap2.n})
    emit("step", rec)
    result, rec = measure("diff", lambda: snap3.diff(snap2, top=5, samples=1))
    leaked = [t for t in result.types if t.type.endswith(".Leaked")]
    rec.update({"new_objects": result.new_objects, "types": len(result.types),
                "top": [(t.type, t.count, [str(p) for p in t.sample_paths]) for t in result.types[:3]],
                "ok": bool(leaked) and leaked[0].count == GROWTH})
    emit("step", rec)


def run_objgraph(app: types.ModuleType) -> None:
    import objgraph

    def chain_to(obj_fn: Callable[[], object]) -> Callable[[], Any]:
        def run() -> Any:
            return objgraph.find_backref_chain(obj_fn(), objgraph.is_proper_module)
        return run

    for name, fn in (("first_path", lambda: the_target(app)), ("further_path", lambda: the_other(app))):
        chain, rec = measure(name, chain_to(fn))
        rec.update({"chain_objects": len(chain), "hops": len(chain) - 1,
                    "types": [type(o).__name__ for o in chain],
                    "ok": bool(chain) and chain[0] is app and chain[-1] is fn()})
        del chain
        emit("step", rec)


def run_guppy(app: types.ModuleType) -> None:
    from guppy import hpy

    # heap() first, with its own hpy(), so its memory is not taken from what the paths freed.
    heap, rec = measure("hpy_heap", lambda: hpy().heap())
    rec.update({"objects": heap.count, "bytes": heap.size})
    emit("step", rec)
    t0 = time.perf_counter()
    table = str(heap)
    emit("step", {"step": "heap_str", "s": time.perf_counter() - t0, "first_line": table.splitlines()[0]})
    del heap, table

    h, rec = measure("hpy", hpy)
    emit("step", rec)

    def shpaths(obj_fn: Callable[[], object]) -> Callable[[], str]:
        def run() -> str:
            return str(h.iso(obj_fn()).shpaths)
        return run

    for name, fn in (("first_path", lambda: the_target(app)), ("further_path", lambda: the_other(app))):
        text, rec = measure(name, shpaths(fn))
        first = text.strip().splitlines()[0] if text.strip() else ""
        after_module = first.partition(f"['{APP_MODULE}']")[2]
        rec.update({"path": first, "hops": len(re.findall(r"\[(?:'(?:[^'\\]|\\.)*'|[^\]]*)\]|\.\w+", after_module)),
                    "ok": bool(after_module)})
        emit("step", rec)


def run_refcycle(app: types.ModuleType) -> None:
    import refcycle

    graph, rec = measure("snapshot", refcycle.snapshot)
    rec.update({"vertices": len(graph)})
    emit("step", rec)
    for name, fn in (("first_path", lambda: the_target(app)), ("further_path", lambda: the_other(app))):
        path, rec = measure(name, lambda fn=fn: graph.shortest_path(app, fn()), collect_first=False)
        rec.update({"path_vertices": len(path), "hops": len(path) - 1})
        emit("step", rec)
        del path


RUNNERS: dict[str, Callable[[types.ModuleType], None]] = {
    "cyclescope": run_cyclescope,
    "objgraph": run_objgraph,
    "guppy": run_guppy,
    "refcycle": run_refcycle,
}

IMPORTS = {"cyclescope": ["cyclescope", "cyclescope.heap"], "objgraph": ["objgraph"],
           "guppy": ["guppy"], "refcycle": ["refcycle"]}


def child(tool: str, size: int, reps: int) -> None:
    import importlib
    import importlib.util

    if tool == "cyclescope" and importlib.util.find_spec("cyclescope") is None:
        sys.path.insert(1, os.path.join(ROOT, "src"))  # a checkout, not installed: the source tree
    app, info = build_heap(size)
    t0 = time.perf_counter()
    for module in IMPORTS.get(tool, []):
        importlib.import_module(module)
    info["import_s"] = time.perf_counter() - t0
    gc.collect()
    info["tracked_measured"] = len(gc.get_objects())
    info["rss_mb"] = rss_kb() / 1024
    info["step"] = "heap"
    emit("step", info)
    emit("start", "gc_collect")
    emit("step", reference_collect(reps))
    if tool in RUNNERS:
        RUNNERS[tool](app)
    emit("step", {"step": "done"})


# -- parent side ----------------------------------------------------------------------------


def run_child(tool: str, size: int, reps: int, timeout: float, started: float,
              progress: Callable[[str, dict], None]) -> dict[str, Any]:
    """Run one child, reading its steps as they come; kill it after ``timeout`` s."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", tool, "--size", str(size), "--reps", str(reps)]
    env = dict(os.environ)
    env.pop("CYCLESCOPE_PURE", None)
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        lines: queue.Queue = queue.Queue()

        def reader() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=reader, daemon=True).start()
        steps: dict[str, dict] = {}
        running: str | None = None
        out: dict[str, Any] = {"steps": steps}
        deadline = time.perf_counter() + timeout
        t0 = time.perf_counter()
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                proc.kill()
                proc.wait()
                out["timeout"] = {"after_s": timeout, "step": running}
                progress("timeout", {"step": running or "?", "after_s": timeout})
                break
            if line is None:
                proc.wait()
                break
            if line.startswith(START):
                running = json.loads(line[len(START):])
            elif line.startswith(STEP):
                rec = json.loads(line[len(STEP):])
                steps[rec["step"]] = rec
                running = None
                progress("step", rec)
        out["wall_s"] = time.perf_counter() - t0
        if "timeout" not in out and (proc.returncode != 0 or "done" not in steps):
            err.seek(0)
            tail = err.read().strip().splitlines()[-6:]
            out["error"] = f"exit {proc.returncode} during {running or '?'}: " + " | ".join(tail)
            progress("error", {"error": out["error"]})
    return out


def fmt_ms(s: float | None) -> str:
    if s is None:
        return "-"
    ms = s * 1e3
    return f"{ms:.3f}" if ms < 1 else f"{ms:.1f}" if ms < 1000 else f"{ms:,.0f}"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "-"
    if r < 0.1:
        return f"{r * 100:.2f}%"
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x" if r < 100 else f"{r:.0f}x"


def fmt_mb(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


class Table:
    """The rows of one heap size's table."""

    HEAD = f"{'step':<58} {'ms':>9} {'x gc':>8} {'RSS MB':>8} {'peak MB':>8}  result / target"

    def __init__(self) -> None:
        self.lines: list[str] = []

    def text(self, line: str) -> None:
        self.lines.append(line)

    def row(self, label: str, rec: dict | None, gc_s: float | None, note: str = "") -> None:
        rec = rec or {}
        s = rec.get("s")
        ratio = s / gc_s if s is not None and gc_s else None
        self.lines.append(f"{label:<58} {fmt_ms(s):>9} {fmt_ratio(ratio):>8} {fmt_mb(rec.get('rss_delta_mb')):>8} "
                          f"{fmt_mb(rec.get('peak_delta_mb')):>8}  {note}")
        parts = rec.get("parts_s")
        if parts and s and s >= 0.005:  # where a step of 5 ms or more goes
            shown = ", ".join(f"{k} {fmt_ms(v)}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
            self.lines.append(f"      of which (ms) {shown}; the rest (Python lines of heap.py) "
                              f"{fmt_ms(s - sum(parts.values()))}")


def cyclescope_rows(table: Table, st: dict[str, dict], gc_s: float, targets: dict[str, Any]) -> None:
    """cyclescope's rows, and its verdicts into ``targets``."""
    v = st.get("versions", {})
    if v and not (v.get("c_core") and v.get("c_heap_snapshot") and v.get("c_heapalgo")):
        table.text(f"  !! C parts NOT all in use: {v}")

    def judge(key: str, ratios: list[float], limit: float) -> str:
        worst = max(ratios)
        targets[key] = {"ratio": worst, "target": limit, "met": worst <= limit}
        return verdict(ratios[-1] <= limit)

    snap = st.get("snapshot")
    if snap:
        met = judge("snapshot", [snap["s"] / gc_s], TARGET_SNAPSHOT)
        table.row("  snapshot()", snap, gc_s,
                  f"{snap['nodes']:,} nodes, {snap['edges']:,} edges; <= {TARGET_SNAPSHOT}x: {met}")
    fp = st.get("first_path")
    if fp:
        met = judge("first_path", [fp["s"] / gc_s], TARGET_FIRST_PATH)
        targets["first_path"]["path_ok"] = fp["ok"]
        table.row("  first retention_paths(target)", fp, gc_s,
                  f"{fp['hops']} hops, {'path OK' if fp['ok'] else 'PATH WRONG'}; <= {TARGET_FIRST_PATH:g}x: {met}")
    further: list[float] = []
    dominators: list[float] = []
    rec = st.get("further_path")
    if rec:
        further.append(rec["s"] / gc_s)
        table.row(f"  further retention_paths(other object), x{FURTHER} *", rec, gc_s,
                  f"{rec['hops']} hops, {'paths OK' if rec['ok'] else 'PATH WRONG'}; max {fmt_ms(rec['max_s'])} ms; "
                  f"<= 5%: {judge('further_queries', further, TARGET_FURTHER)}")
    rec = st.get("repeat_path")
    if rec:
        further.append(rec["s"] / gc_s)
        if rec["ok"]:
            what = "same path"
        else:  # show where it went wrong: the part after the cache entry's list
            tail = (rec["path"] or "no path").split(" -> [2] -> ")[-1]
            tail = tail.replace(" (the heap changed since the snapshot)", "")
            what = f"PATH DIFFERS{' (stale)' if rec.get('stale') else ''}: ... [2] -> {tail}"
        table.row("  further retention_paths(target) again", rec, gc_s,
                  f"{what}; <= 5%: {judge('further_queries', further, TARGET_FURTHER)}")
    rec = st.get("further_paths_n3")
    if rec:  # the first n > 1 query: the reverse graph is built, once per snapshot
        stale = any("changed since" in p for p in rec["paths"])
        table.row("  first retention_paths(target, n=3)", rec, gc_s,
                  f"{len(rec['paths'])} path(s){'; STALE' if stale else ''}; builds the reverse graph (no target)")
    rec = st.get("further_paths_n3_again")
    if rec:
        stale = any("changed since" in p for p in rec["paths"])
        ok = rec["s"] <= TARGET_FURTHER * gc_s
        table.row("  further retention_paths(other object, n=3)", rec, gc_s,
                  f"{len(rec['paths'])} path(s){'; STALE' if stale else ''}; <= {TARGET_FURTHER:.0%}: "
                  f"{verdict(ok)}")
    rec = st.get("top_retainers")
    if rec:
        dominators.append(rec["s"] / gc_s)
        met = judge("dominators", dominators, TARGET_DOMINATORS)
        tops = "; ".join(f"{i + 1}. {t['path']} {t['bytes'] / 1e6:.1f} MB" for i, t in enumerate(rec["top"][:3]))
        table.row("  top_retainers(10) (dominator tree + top)", rec, gc_s,
                  f"<= {TARGET_DOMINATORS:g}x: {met}; {tops}")
    rec = st.get("further_retained_size")
    if rec:
        further.append(rec["s"] / gc_s)
        counted = "= independent count" if rec["ok"] else f"independent count {rec['expected_bytes']:,} B"
        table.row(f"  further retained_size(third), tree built, x{FURTHER} *", rec, gc_s,
                  f"{rec['bytes']:,} B ({counted}); max {fmt_ms(rec['max_s'])} ms; "
                  f"<= 5%: {judge('further_queries', further, TARGET_FURTHER)}")
    again = st.get("snapshot_again")
    if again:
        faults = ""
        if snap and "minor_faults" in again:
            faults = f"page faults {again['minor_faults']:,} (the first snapshot: {snap['minor_faults']:,})"
        table.row("  snapshot() again, for:", again, gc_s, faults)
    rec = st.get("first_retained_size")
    if rec:
        dominators.append(rec["s"] / gc_s)
        table.row("  first retained_size(third) on it (the tree)", rec, gc_s,
                  f"{'same bytes' if rec['ok'] else 'DIFFERENT bytes'}; <= {TARGET_DOMINATORS:g}x: "
                  f"{judge('dominators', dominators, TARGET_DOMINATORS)}")
    rec = st.get("snapshot_older_alive")
    if rec:
        table.row("  snapshot() while the older one is alive", rec, gc_s,
                  f"{rec['nodes']:,} nodes (the older: {rec['nodes_older']:,})")
    rec = st.get("diff")
    if rec:
        top = ", ".join(f"{t} +{c:,}" for t, c, _ in rec["top"][:2])
        table.row(f"  diff(older) after +{GROWTH:,} Leaked objects", rec, gc_s,
                  f"{rec['new_objects']:,} new objects ({top}); Leaked found: {'yes' if rec['ok'] else 'NO'} "
                  "(no target)")
    if snap:
        n, e = snap["nodes"], snap["edges"]
        budget = TARGET_BYTES_PER_NODE * n + TARGET_BYTES_PER_EDGE * e
        arrays = snap["graph_array_bytes"]
        rss = snap["rss_delta_mb"] * 1048576
        targets["memory"] = {"budget_bytes": budget, "graph_array_bytes": arrays, "rss_delta_bytes": rss,
                             "arrays_met": arrays <= budget, "rss_met": rss <= budget}
        table.text(f"  memory: graph arrays {snap['bytes_per_node_arrays']:.0f} B/node + "
                   f"{snap['bytes_per_edge_arrays']:.0f} B/edge = {arrays / 1048576:.1f} MB (<= "
                   f"{TARGET_BYTES_PER_NODE} B/node + {TARGET_BYTES_PER_EDGE} B/edge = {budget / 1048576:.1f} MB: "
                   f"{verdict(arrays <= budget)});")
        table.text(f"          RSS after snapshot() +{snap['rss_delta_mb']:.1f} MB = "
                   f"{snap['rss_bytes_per_node']:.0f} B/node (budget: {verdict(rss <= budget)}); "
                   f"peak +{fmt_mb(snap['peak_delta_mb'])} MB")
        mem = st.get("snapshot_memory")
        if mem:
            kinds = ", ".join(f"{k} {v:,}" for k, v in mem.get("roots_by_kind", {}).items())
            index = mem["index_dict_bytes"]  # the address -> node dict of earlier versions
            index_text = f"address index dict {index / 1048576:.1f} MB ({index / n:.0f} B/node), " if index else ""
            table.text(f"          also held: {index_text}query caches (search, dominator tree, reverse graph) "
                       f"{mem['query_cache_bytes'] / 1048576:.1f} MB; {mem['roots']:,} roots ({kinds})")


def peer_rows(table: Table, tool: str, st: dict[str, dict], gc_s: float) -> None:
    labels = [("hpy_heap", "  hpy().heap()"), ("heap_str", "  str(heap) (partition by kind)"),
              ("hpy", "  hpy()"), ("snapshot", "  snapshot()"),
              ("first_path", "  path to target"), ("further_path", "  path to other object")]
    for key, label in labels:
        rec = st.get(key)
        if not rec:
            continue
        note = ""
        if "hops" in rec:
            note = f"{rec['hops']} hops"
            if "ok" in rec:
                note += ", from the app module" if rec["ok"] else ", NOT from the app module"
        if key == "snapshot":
            note = f"{rec['vertices']:,} vertices"
        elif key == "hpy_heap":
            note = f"{rec['objects']:,} objects, {rec['bytes'] / 1e6:.0f} MB"
        elif tool == "guppy" and key == "first_path":
            note += "; hpy().iso(target).shpaths"
        elif tool == "guppy" and key == "further_path":
            note += "; the same hpy()"
        elif tool == "refcycle" and key == "first_path":
            note += "; forward BFS from the module it is given"
        table.row(label, rec, gc_s, note)


def build_table(size: int, per_tool: dict[str, dict]) -> tuple[str, dict[str, Any]]:
    """One table for one heap size, and the target verdicts."""
    table = Table()
    targets: dict[str, Any] = {}
    base = per_tool.get("baseline", {}).get("steps", {})
    ref = base.get("gc_collect", {}).get("s")
    heap = base.get("heap") or next(
        (t["steps"]["heap"] for t in per_tool.values() if "heap" in t.get("steps", {})), {})
    table.text(f"heap of {size_label(size)}: len(gc.get_objects()) = {heap.get('tracked_measured', 0):,} "
               f"({heap.get('units', 0):,} units of {heap.get('tracked_per_unit', 0):.1f} tracked objects, "
               f"built in {heap.get('build_s', 0):.1f} s; RSS {heap.get('rss_mb', 0):.0f} MB)")
    table.text(Table.HEAD)
    table.text("-" * len(Table.HEAD))
    if ref:
        g = base["gc_collect"]
        table.row(f"gc.collect() (reference: baseline child, median of {g['reps']})", g, ref,
                  f"range {fmt_ms(min(g['all_s']))}-{fmt_ms(max(g['all_s']))} ms")
    for tool in ("cyclescope", "objgraph", "guppy", "refcycle"):
        if tool not in per_tool:
            continue
        res = per_tool[tool]
        st = res.get("steps", {})
        own = st.get("gc_collect", {})
        gc_s = own.get("s") or ref  # the ratio is to gc.collect() on the heap of this very child
        table.text(f"{tool} (its child: {st.get('heap', {}).get('tracked_measured', 0):,} tracked objects; "
                   f"gc.collect() {fmt_ms(own.get('s'))} ms, median of {own.get('reps', 0)}, is its 1.00x)")
        if gc_s and tool == "cyclescope":
            cyclescope_rows(table, st, gc_s, targets)
        elif gc_s:
            peer_rows(table, tool, st, gc_s)
        if "timeout" in res:
            table.text(f"  !! TIMED OUT after {res['timeout']['after_s']:.0f} s in step {res['timeout']['step']}")
        if "error" in res:
            table.text(f"  !! FAILED: {res['error']}")
    return "\n".join(table.lines), targets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100k,1M", help="heap sizes in gc-tracked objects, comma-separated")
    ap.add_argument("--reps", type=int, default=5,
                    help="gc.collect() timings per child, at least (more while under 1 s); the reference is the median")
    ap.add_argument("--tools", default=",".join(TOOLS),
                    help="subset to run, comma-separated (baseline always runs): "
                    + "; ".join(f"{k}: {v}" for k, v in TOOLS.items()))
    ap.add_argument("--timeout", type=float, default=90.0, help="seconds per child process (heap building included)")
    ap.add_argument("--output", default=os.path.join(HERE, "results", "heap_latest.json"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.size, args.reps)
        return

    started = time.perf_counter()
    load_start = os.getloadavg()
    sizes = parse_sizes(args.sizes)
    chosen = choose(args.tools, TOOLS, "tools", ap)
    print(f"heap snapshot benchmark: sizes {', '.join(map(size_label, sizes))}; {', '.join(chosen)}; "
          f"each in a fresh process, timeout {args.timeout:.0f} s", flush=True)

    results: dict[str, dict[str, Any]] = {}
    tables: list[str] = []
    verdicts: dict[str, Any] = {}
    for n in sizes:
        results[str(n)] = {}
        ref: dict[str, float] = {}
        for tool in chosen:
            own: dict[str, float] = {}

            def progress(kind: str, rec: dict, tool: str = tool, own: dict = own) -> None:
                at = f"  [{time.perf_counter() - started:6.1f}s] {size_label(n):>5} {tool:<10}"
                if kind == "timeout":
                    print(f"{at} {rec['step']:<24} TIMED OUT after {rec['after_s']:.0f} s", flush=True)
                    return
                if kind == "error":
                    print(f"{at} FAILED: {rec['error']}", flush=True)
                    return
                name = rec["step"]
                if name == "done" or name == "versions" or name == "snapshot_memory":
                    return
                if name == "heap":
                    print(f"{at} {'heap built':<24} {rec['tracked_measured']:,} tracked objects, "
                          f"{rec['build_s']:.1f} s", flush=True)
                    return
                if name == "gc_collect":
                    own["gc"] = rec["s"]
                    if tool == "baseline":
                        ref["gc"] = rec["s"]
                gc_s = own.get("gc") or ref.get("gc")
                ratio = f" = {fmt_ratio(rec['s'] / gc_s)} gc" if gc_s else ""
                mem = f", RSS +{rec['rss_delta_mb']:.1f} MB" if rec.get("rss_delta_mb") is not None else ""
                print(f"{at} {name:<24} {fmt_ms(rec['s']):>9} ms{ratio}{mem}", flush=True)

            results[str(n)][tool] = run_child(tool, n, args.reps, args.timeout, started, progress)
        table, targets = build_table(n, results[str(n)])
        tables.append(table)
        verdicts[str(n)] = targets

    data: dict[str, Any] = {
        "schema": "cyclescope.bench-heap/1",
        "meta": run_meta(load_start),
        "sizes": sizes,
        "targets": {
            "snapshot_x_gc": TARGET_SNAPSHOT,
            "first_path_x_gc": TARGET_FIRST_PATH,
            "further_query_fraction_of_gc": TARGET_FURTHER,
            "dominators_x_gc": TARGET_DOMINATORS,
            "bytes_per_node": TARGET_BYTES_PER_NODE,
            "bytes_per_edge": TARGET_BYTES_PER_EDGE,
        },
        "tools": TOOLS,
        "verdicts": verdicts,
        "method": {
            "ratio": "time of one run of the step / median gc.collect() timed in the same child on the same heap "
            "(the tool imported); the baseline child's collect (no tool imported) is shown as the reference",
            "memory": "RSS (/proc/self/statm) after the step minus before it; peak = VmHWM after the step minus "
            "the RSS before it, the mark reset through /proc/self/clear_refs (5); MB = 2**20 bytes",
            "bytes_per_node": "sum of nbytes of the snapshot graph's per-node arrays / nodes; per edge: "
            "the targets array / edges",
        },
        "results": results,
    }
    data["wall_s"] = time.perf_counter() - started
    data["meta"]["loadavg_at_end"] = os.getloadavg()
    lines = [
        "",
        f"heap snapshot vs gc.collect() - Python {data['meta']['python']}, {data['meta']['cpus']} CPUs, "
        f"versions {data['meta']['versions']}",
        "one run of each step in a fresh process per tool and size; x gc = step / median gc.collect() on the "
        "same heap in the same process; RSS MB = RSS after - before; peak MB = peak RSS during - RSS before",
        f"* x{FURTHER}: the median of {FURTHER} queries on the same snapshot, each about a different object "
        "(its max is shown); the 5% verdict is on the worst of these medians and the repeated path",
    ]
    for table in tables:
        lines += ["", table]
    lines += ["", "targets (the issue):"]
    for n in sizes:
        t = verdicts[str(n)]
        parts = []
        for key, label in (("snapshot", "snapshot <= 1.5x"), ("first_path", "first path <= 2x"),
                           ("further_queries", "further queries <= 5%"), ("dominators", "dominators <= 5x")):
            if key in t:
                r = t[key]["ratio"]
                parts.append(f"{label}: {verdict(t[key]['met'])} ({fmt_ratio(r)})")
        if "memory" in t:
            m = t["memory"]
            parts.append(f"memory <= 40 B/node + 8 B/edge: arrays {verdict(m['arrays_met'])}, "
                         f"RSS {verdict(m['rss_met'])}")
        lines.append(f"  {size_label(n):>5}: " + ("; ".join(parts) or "(cyclescope did not run or report)"))
    busy = load_start[0] > 0.5
    lines += [
        f"load average at start {load_start[0]:.2f}, at end {data['meta']['loadavg_at_end'][0]:.2f}"
        + ("; OTHER WORK WAS RUNNING: ratios are noisy" if busy else ""),
        f"total wall time {data['wall_s']:.0f} s; results written to {os.path.relpath(args.output)}",
    ]
    write_results(data, "\n".join(lines), args.output)


if __name__ == "__main__":
    main()
