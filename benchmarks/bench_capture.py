"""Capture + explain benchmark: cyclescope against gc.collect(), refcycle, objgraph and guppy3.

Run by ``make bench`` (nox session ``bench``), or directly::

    python benchmarks/bench_capture.py [--sizes 1k,10k,100k] [--reps 5] [--output PATH]

Every measurement runs in a fresh child process (this script with ``--child``),
so peak memory is comparable and no tool pays for another's heap. The parent
interleaves the repetitions, prints one table of ratios to the median
``gc.collect()`` of the same garbage, and writes everything it measured to
``benchmarks/results/latest.json``. See benchmarks/README.md for the method.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from _common import choose, parse_sizes, run_meta, size_label, write_results  # noqa: E402
MARKER = "BENCH-RESULT "

# name: (row label, extra environment, slow: one repetition at the largest sizes)
CONTESTANTS: dict[str, tuple[str, dict[str, str], bool]] = {
    "baseline": ("gc.collect() of the same garbage", {}, False),
    "cyclescope": ("cyclescope capture + explain", {}, False),
    "cyclescope_pure": ("cyclescope, pure Python (CYCLESCOPE_PURE=1)", {"CYCLESCOPE_PURE": "1"}, False),
    "refcycle": ("refcycle: cycles_created_by + SCC + annotated json", {}, True),
    "objgraph_types": ("objgraph: SAVEALL + typestats", {}, False),
    "objgraph": ("objgraph: SAVEALL + typestats + show_refs text", {}, True),
    "guppy": ("guppy3: SAVEALL + hpy iso (kind, byrcs)", {}, False),
    "guppy_byvia": ("guppy3: ... + byvia (edge names)", {}, True),
}

#: Earlier numbers from the project's documentation, measured on this kind of machine (100k cycles).
DOCUMENTED = {"refcycle": "~84x, 560 MB", "guppy": "~31x", "objgraph": "~19x"}
TARGET_RATIO = 3.0  # cyclescope at most 3x the baseline at 100k cycles
TARGET_SIZE = 100_000
TARGET_FREEZE_PERCENT = 10.0  # capture(freeze=True) at most 10% of one full gc.collect()


# -- child side ----------------------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, HERE)
    import importlib.util

    if importlib.util.find_spec("cyclescope") is None:  # a checkout, not installed: use the source tree
        sys.path.insert(1, os.path.join(ROOT, "src"))
    import contestants

    if args.child == "large_heap":
        result = contestants.run_large_heap(args.heap_objects, args.heap_cycles, args.reps)
    elif args.child == "profile":
        result = contestants.run_profile(args.size)
    else:
        result = contestants.run_contestant(args.child, args.size)
    print(MARKER + json.dumps(result))


# -- parent side ----------------------------------------------------------------------------


def run_child(kind: str, size: int, extra: list[str], env_extra: dict[str, str], timeout: float) -> dict:
    env = dict(os.environ)
    env.pop("CYCLESCOPE_PURE", None)
    env.update(env_extra)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, "--size", str(size), *extra]
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - started
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            result = json.loads(line[len(MARKER) :])
            result["child_wall_s"] = wall
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}


def reps_for(name: str, size: int, args: argparse.Namespace) -> int:
    if size >= args.large_from:
        return args.slow_reps if CONTESTANTS[name][2] else min(args.reps, args.large_reps)
    return args.reps


def runs_in_rep(name: str, size: int, rep: int, args: argparse.Namespace) -> bool:
    """Whether ``name`` runs in repetition ``rep`` at ``size``: a contestant with fewer
    repetitions than the baseline has them spread out (one run goes in the middle),
    so a slow spell of the machine does not land on all of them at once."""
    k = reps_for(name, size, args)
    total = max(k, reps_for("baseline", size, args))
    return rep in {min(total - 1, int((i + 0.5) * total / k)) for i in range(k)}


def med(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(runs: list[dict]) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    out: dict[str, Any] = {"runs": runs, "reps": len(ok), "errors": [r["error"] for r in runs if "error" in r]}
    if not ok:
        return out
    out["overhead_s"] = med([r["overhead_s"] for r in ok])
    out["overhead_range_s"] = [min(r["overhead_s"] for r in ok), max(r["overhead_s"] for r in ok)]
    out["paired_ratio"] = med([r.get("paired_ratio") for r in ok])
    out["body_s"] = med([r["body_s"] for r in ok])
    out["extra_peak_mb"] = med([r["memory"]["extra_peak_kb"] / 1024 for r in ok])
    out["garbage_rss_mb"] = med([r["memory"]["garbage_rss_kb"] / 1024 for r in ok])
    phases: dict[str, list[float]] = {}
    for r in ok:
        for key, value in r["phases"].items():
            phases.setdefault(key, []).append(value)
    out["phases_s"] = {k: med(v) for k, v in phases.items()}
    out["naming"] = ok[0].get("naming")
    if "check" in ok[0]:
        out["check_ok"] = all(r["check"]["ok"] for r in ok)
        out["check"] = ok[0]["check"]
        out["c_core"] = ok[0].get("c_core")
        out["module_file"] = ok[0].get("module_file")
    out["heap_objects_before"] = ok[0].get("heap_objects_before")
    return out


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.1f}x" if x < 100 else f"{x:.0f}x"


def naming_cell(naming: dict | None) -> tuple[str, str]:
    if not naming:
        return "", ""
    attrs = f"{len(naming['attributes'])}/{naming['attributes_total']}"
    tb = ",".join(naming["traceback_edges"]) if naming["traceback_edges"] else "no"
    return attrs, tb


def build_table(data: dict, sizes: list[int]) -> str:
    res = data["results"]
    base = {n: res["baseline"][str(n)].get("overhead_s") for n in sizes}
    big = str(sizes[-1])
    cols = [size_label(n) for n in sizes]
    head = f"{'contestant':<52}" + "".join(f"{c:>9}" for c in cols)
    head += f"  {'peak MB':>8} {'attrs':>5}  {'tb edges':<22} target / earlier"
    lines = [head, "-" * len(head)]
    invalid: list[str] = []
    garbage = res["baseline"][big].get("garbage_rss_mb")

    def row(label: str, cells: list[str], mem: str = "", attrs: str = "", tb: str = "", note: str = "") -> None:
        lines.append(f"{label:<52}" + "".join(f"{c:>9}" for c in cells) + f"  {mem:>8} {attrs:>5}  {tb:<22} {note}")

    row(
        "gc.collect() baseline, ms (= 1.0x)",
        [f"{base[n] * 1e3:.2f}" if base[n] else "-" for n in sizes],
        f"{max(0.0, res['baseline'][big].get('extra_peak_mb', 0.0)):.1f}",
    )
    for name, (label, _, _) in CONTESTANTS.items():
        if name == "baseline" or name not in res:
            continue
        per = res[name]
        cells = []
        for n in sizes:
            s = per.get(str(n), {})
            ratio = s.get("overhead_s") / base[n] if s.get("overhead_s") and base[n] else None
            s["ratio"] = ratio
            cell = fmt_ratio(ratio) if "overhead_s" in s else ("err" if s.get("errors") else "-")
            if s.get("check_ok") is False:
                cell += "!"  # the report failed its check: the time is not that of the full task
                invalid.append(f"{name} @ {size_label(n)}")
            cells.append(cell)
        last = per.get(big, {})
        mem = f"{max(0.0, last['extra_peak_mb']):.1f}" if "extra_peak_mb" in last else ""
        attrs, tb = naming_cell(last.get("naming"))
        note = ""
        if name == "cyclescope":
            ok = last.get("ratio") is not None and last["ratio"] <= TARGET_RATIO
            if sizes[-1] == TARGET_SIZE:
                note = f"target <= {TARGET_RATIO:g}x @ 100k: {'MET' if ok else 'NOT MET'}"
            else:
                note = f"(target <= {TARGET_RATIO:g}x is at 100k)"
            if last.get("c_core") is False:
                label += " [C core NOT in use]"
            else:
                label += " (C core)"
        elif name in DOCUMENTED:
            note = f"earlier: {DOCUMENTED[name]}"
        row(label, cells, mem, attrs, tb, note)
        if name == "cyclescope":
            exit_cells = []
            for n in sizes:
                s = per.get(str(n), {})
                e = s.get("phases_s", {}).get("exit")
                exit_cells.append(fmt_ratio(e / base[n]) if e and base[n] else "-")
            row("  of which the exit alone (flush, analyse, release)", exit_cells)
    lo, hi = res["baseline"][big].get("overhead_range_s", [None, None])
    if lo:
        paired = [
            f"{name} {fmt_ratio(res[name][big].get('paired_ratio'))}"
            for name in CONTESTANTS
            if name != "baseline" and name in res and res[name][big].get("paired_ratio")
        ]
        lines.append(
            f"(noise: the baseline at {size_label(sizes[-1])} ranged {lo * 1e3:.1f}-{hi * 1e3:.1f} ms; each run against "
            f"the baseline run just before it instead: {', '.join(paired)})"
        )
    if invalid:
        lines.append(f"!! NOT VALID (the report failed its check, see below): {', '.join(invalid)}")
    if garbage is not None:
        lines.append(
            f"(peak MB: the peak RSS each tool adds on top of the garbage, which itself takes {garbage:.1f} MB "
            f"of RSS at {size_label(sizes[-1])} cycles; attrs: instance attribute names found in its edge labels; "
            "tb edges: tb_frame/__traceback__ found)"
        )
    return "\n".join(lines)


def build_checks(data: dict, sizes: list[int]) -> list[str]:
    out = []
    for name in ("cyclescope", "cyclescope_pure"):
        per = data["results"].get(name, {})
        for n in sizes:
            s = per.get(str(n), {})
            if "check" not in s:
                continue
            c = s["check"]
            status = "OK" if s.get("check_ok") else "FAILED"
            detail = ", ".join(f"{k} {v}" for k, v in sorted(c["counts"].items()))
            extra = ""
            if c["referent_edges"]:
                extra += f"; unnamed edges: {c['referent_edges']}"
            if c["unmatched_groups"]:
                extra += f"; unexpected groups: {c['unmatched_groups']}"
            if c["warnings"]:
                extra += f"; report warnings: {c['warnings'][:2]}"
            out.append(
                f"  {name:<16} {size_label(n):>5}: {status}: {c['groups']} groups, expected {c['expected_per_shape']} "
                f"each ({detail}); referent steps: {len(c['referent_edges'])}{extra}"
            )
    return out


def build_large_heap(lh: dict) -> list[str]:
    if "error" in lh:
        return [f"  large-heap run failed: {lh['error']}"]
    full = lh["full_collect_s"]
    out = [
        f"  {lh['live_objects']:,} live gc-tracked objects; one full gc.collect() = {full * 1e3:.2f} ms "
        f"(median of {lh['reps']}); block makes {lh['cycles_in_block']:,} cycles"
    ]
    for key, label in (("freeze", "capture(freeze=True) "), ("exact", "capture(freeze=False)")):
        s = lh[key]
        ok = s["percent_of_full_collect"] <= TARGET_FREEZE_PERCENT
        target = f"   target <= {TARGET_FREEZE_PERCENT:g}%: {'MET' if ok else 'NOT MET'}" if key == "freeze" else ""
        out.append(
            f"  {label} overhead {s['overhead_s'] * 1e3:7.2f} ms = {s['percent_of_full_collect']:6.1f}% of one full "
            f"collect (entry {s['entry_s'] * 1e3:.2f} ms, exit {s['exit_s'] * 1e3:.2f} ms){target}"
        )
    bad = [k for k, c in lh["checks"].items() if not c["ok"]]
    if bad:
        out.append(f"  !! NOT VALID: the reports failed their check: {[c['warnings'][:1] for c in lh['checks'].values()]}")
    strategies = {k: c["strategy"] for k, c in lh["checks"].items()}
    out.append(f"  report checks: {'OK' if not bad else 'FAILED for freeze=' + ','.join(bad)}; strategies used: {strategies}")
    return out


def build_profile(prof: dict, label: str) -> list[str]:
    if "error" in prof:
        return [f"  profile ({label}) failed: {prof['error']}"]
    ex = prof["exit_total"]

    def pct(x: float) -> str:
        return f"{x * 1e3:8.1f} ms {100 * x / ex:5.1f}%"

    out = [f"  exit total {ex * 1e3:.1f} ms ({label})"]
    if not prof["check"]["ok"]:
        out.append(f"  !! the report of this run FAILED its check: {prof['check']['warnings'][:1]}")
    names = ["flush collect (DEBUG_SAVEALL), incl. gc callback", "release collect (what the C release left)"]
    for i, t in enumerate(prof["exit_collects"]):
        out.append(f"    {names[i] if i < len(names) else 'collect':<52} {pct(t)}")
        if i == 0:
            out.append(f"      {'of which the callback moving garbage to the store':<50} {pct(prof['gc_callback'])}")
    out.append(f"    {'analyse()':<52} {pct(prof['analyse'])}")
    for name, t in prof["analyse_parts"].items():
        calls = prof["analyse_calls"].get(name, 0)
        out.append(f"      {name + (f' (x{calls})' if calls > 1 else ''):<50} {pct(t)}")
    out.append(f"      {'own lines of analyse() (inline loops)':<50} {pct(prof['analyse_own_lines'])}")
    out.append(f"    {'merge_analyses + build_report':<52} {pct(prof['merge_and_build_report'])}")
    out.append(f"    {'release_garbage (frees the store, C core)':<52} {pct(prof.get('release_garbage', 0.0))}")
    out.append(f"    {'rest of __exit__':<52} {pct(prof['exit_other'])}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1k,10k,100k", help="cycle counts, comma-separated (1k, 10000, ...)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions (fresh processes) per contestant and size")
    ap.add_argument("--large-from", type=int, default=100_000, help="sizes from which fewer repetitions run")
    ap.add_argument("--large-reps", type=int, default=5, help="repetitions there for the fast contestants")
    ap.add_argument("--slow-reps", type=int, default=1, help="repetitions there for the slow peers")
    ap.add_argument("--contestants", default=",".join(CONTESTANTS), help="subset to run (baseline always runs)")
    ap.add_argument("--heap-objects", type=int, default=1_000_000, help="live objects of the large-heap case")
    ap.add_argument("--heap-cycles", type=int, default=1_000, help="cycles the large-heap block makes")
    ap.add_argument("--no-large-heap", action="store_true")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per child process")
    ap.add_argument("--output", default=os.path.join(HERE, "results", "latest.json"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return

    started = time.perf_counter()
    load_start = os.getloadavg()
    sizes = parse_sizes(args.sizes)
    chosen = choose(args.contestants, CONTESTANTS, "contestants", ap)

    runs: dict[str, dict[int, list[dict]]] = {c: {n: [] for n in sizes} for c in chosen}
    plan = max(reps_for(c, n, args) for c in chosen for n in sizes)
    print(f"cyclescope capture-and-explain benchmark: sizes {', '.join(map(size_label, sizes))}; "
          f"{len(chosen)} contestants, each run in a fresh process", flush=True)
    # One untimed run first: the first process that grows to the largest heap after a
    # pause is often slower on a virtual machine.
    run_child("baseline", sizes[-1], [], {}, args.timeout)
    for rep in range(plan):
        for n in sizes:
            base_here: dict = {}
            for name in chosen:
                if not runs_in_rep(name, n, rep, args):
                    continue
                result = run_child(name, n, [], CONTESTANTS[name][1], args.timeout)
                result["rep"] = rep
                if name == "baseline":
                    base_here = result
                elif "overhead_s" in result and base_here.get("overhead_s"):
                    # The same ratio against the baseline run just before it, a check on drift.
                    result["paired_ratio"] = result["overhead_s"] / base_here["overhead_s"]
                runs[name][n].append(result)
                status = result.get("error") or f"{result['overhead_s'] * 1e3:.1f} ms"
                print(f"  [{time.perf_counter() - started:6.1f}s] rep {rep + 1} {size_label(n):>5} {name:<16} {status}",
                      flush=True)

    data: dict[str, Any] = {
        "schema": "cyclescope.bench/1",
        "meta": run_meta(load_start),
        "sizes": sizes,
        "targets": {
            "cyclescope_ratio_at_largest": TARGET_RATIO,
            "freeze_percent_of_full_collect": TARGET_FREEZE_PERCENT,
            "earlier_peer_numbers_at_100k": DOCUMENTED,
        },
        "method": {
            "ratio": "median over fresh processes of (time of the measured part minus the block body) / "
            "median gc.collect() time of the same garbage made with gc disabled",
            "memory": "VmHWM at the end minus VmRSS at the end of the block body, the peak mark reset there "
            "through /proc/self/clear_refs (5); MB = 1024 kB",
            "naming": "edge labels of each tool's output on 5 cycles (one per shape) searched for the "
            "attribute names and tb_frame/__traceback__",
        },
        "results": {c: {str(n): summarise(runs[c][n]) for n in sizes} for c in chosen},
    }

    if not args.no_large_heap:
        print("  large-heap case ...", flush=True)
        data["large_heap"] = run_child(
            "large_heap", 0,
            ["--heap-objects", str(args.heap_objects), "--heap-cycles", str(args.heap_cycles), "--reps", "5"],
            {}, args.timeout,
        )
    if not args.no_profile:
        print(f"  profiling the exit at {size_label(sizes[-1])} ...", flush=True)
        data["profile"] = {
            "c_core": run_child("profile", sizes[-1], [], {}, args.timeout),
            "pure": run_child("profile", sizes[-1], [], {"CYCLESCOPE_PURE": "1"}, args.timeout),
        }

    table = build_table(data, sizes)
    lines = [
        "",
        f"capture + explain vs gc.collect() - Python {data['meta']['python']}, {data['meta']['cpus']} CPUs, "
        f"versions {data['meta']['versions']}",
        "ratio = (measured part - block body) / gc.collect() of the same garbage; medians over fresh processes "
        f"({args.reps} reps below {size_label(args.large_from)}, {args.large_reps} from there, slow peers {args.slow_reps}); "
        f"peak MB = extra peak RSS over the garbage at {size_label(sizes[-1])}",
        "",
        table,
        "",
        "cyclescope report checks (every edge named, 5 shapes with n/5 each):",
        *build_checks(data, sizes),
    ]
    if "large_heap" in data:
        lines += ["", "large heap (freeze):", *build_large_heap(data["large_heap"])]
    if "profile" in data:
        for key, label in (("c_core", "C core"), ("pure", "pure Python")):
            prof = data["profile"][key]
            if key == "c_core" and prof.get("c_core") is False:
                label = "C core requested but NOT in use"
            lines += ["", f"where the exit's time goes at {size_label(sizes[-1])} cycles:", *build_profile(prof, label)]
    data["wall_s"] = time.perf_counter() - started
    data["meta"]["loadavg_at_end"] = os.getloadavg()
    cs = data["results"].get("cyclescope", {}).get(str(sizes[-1]), {})
    if cs.get("module_file"):
        lines += ["", f"cyclescope imported from {cs['module_file']} (C core in use: {cs.get('c_core')})"]
    busy = load_start[0] > 0.5
    lines += [
        f"load average at start {load_start[0]:.2f}, at end {data['meta']['loadavg_at_end'][0]:.2f} "
        f"(the benchmark itself adds about 1)"
        + ("; OTHER WORK WAS RUNNING: ratios are noisy" if busy else "")
    ]
    lines += ["", f"total wall time {data['wall_s']:.0f} s; results written to {os.path.relpath(args.output)}"]
    write_results(data, "\n".join(lines), args.output)


if __name__ == "__main__":
    main()
