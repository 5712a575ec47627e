#!/usr/bin/env python3
"""evmalloc benchmark report: Google Benchmark JSON -> report.md (+ chart.png).

    report.py times results.json [--out DIR] [--compiler TEXT]
        report.md: header (date, compiler, CPU, evmalloc commit, code set), a summary per
        workload (geometric-mean ratio per baseline, every case where evmalloc is not ahead),
        then one table per workload. chart.png: the summary ratios as grouped bars
        (skipped with a warning when matplotlib is missing).

    report.py instructions GROUP_DIR... [--out FILE]
        instructions.md from the callgrind runs made by `bench/run --instructions` (see
        bench/support/main.cpp): each GROUP_DIR holds one/ and many/, two runs of the same
        benchmarks; per benchmark (Ir_many - Ir_one) / (n_many - n_one).

Benchmark names are workload/case/impl (Google Benchmark's own suffixes such as /real_time and
/iterations:N are dropped; /threads:N becomes the impl). The reference row of a case is impl
`evmalloc` (WORKLOAD_REFERENCE names another for some workloads); `evmalloc.<variant>` and
`evmalloc_<variant>` rows are variants; every other impl is a baseline, except the reference
floors (a lower bound, not a competitor). ratio = impl time / reference time: > 1 means the
reference is faster. Workloads in COUNTER_WORKLOADS measure counters, not time: they get a
table of their own and stay out of the summary and the chart. The "Targets" section checks the
figures the design sets (TARGETS below). Standard library and matplotlib only.
"""

import argparse
import datetime
import json
import math
import os
import re
import subprocess
import sys
from collections import OrderedDict

REFERENCE_FLOORS = {"jumpdest_floor"}
# attack_shapes cases with a target of their own (bench/jumpdest_scan_bench.cpp).
ATTACK_SHAPES = ["devnet8_64k", "devnet8_24k", "zeros_64k", "jumpdest_stop_64k"]
WORST_SHAPES = ["push1_dense_64k", "push_per_64_64k", "push32_dense_64k", "random_64k"]
# Published figures of other clients for the attack shapes (theirs, not measured here).
CLIENT_FIGURES = [
    ("Nethermind", "PR 8725", "Vector128/Vector512 analysis: 10–100× its scalar loop on such code"),
    ("Erigon", "PR 21954", "PUSH-free 8-byte words skipped: 2.3–3.2×"),
    ("Besu", "PR 11322", "PUSH-free 8-byte words skipped: 2.3–3.2×; JUMPDEST analysis was 45% of block import"),
]
# Report order of the workloads (common.md); others follow in order of appearance.
WORKLOAD_ORDER = ["pools", "arena", "frame_setup", "call_setup", "padded_copy", "attack_shapes", "scan_corpus",
                  "shared_hit", "shared_miss",
                  "memory", "call_storm", "call_storm_zipf", "cache_threads", "footprint", "allocator"]
# The reference impl of a workload whose rows are all evmalloc paths (default: `evmalloc`).
WORKLOAD_REFERENCE = {"shared_hit": "trusted", "cache_threads": "threads:1", "footprint": "shared"}
# Kinds that depend on the workload (default: by name, see impl_kind).
WORKLOAD_KINDS = {
    "shared_hit": {"verified": "variant", "bare_init": "floor"},
    "cache_threads": {"threads:2": "variant"},
    "footprint": {"per_frame": "variant"},
    "attack_shapes": {"memcpy": "floor"},
    "scan_corpus": {"memcpy": "floor"},
}
# Workloads that report counters, not times.
COUNTER_WORKLOADS = {"footprint"}
# Google Benchmark's name suffixes that are not part of workload/case/impl.
GB_SUFFIX = re.compile(r"^(real_time|manual_time|process_time|iterations:\d+|min_time:.*|repeats:\d+)$")
TIME_UNITS_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
# Keys of a Google Benchmark run that are not user counters.
STANDARD_KEYS = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
    "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit",
    "aggregate_name", "aggregate_unit", "error_occurred", "error_message", "label", "big_o",
    "rms", "max_bytes_used", "total_allocated_bytes", "net_heap_growth",
}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------------------------
# Names, kinds, formatting


def split_name(run_name):
    """workload/case/impl -> (workload, case, impl); the case may itself contain slashes."""
    parts = [p for p in run_name.split("/") if not GB_SUFFIX.match(p)]
    if len(parts) < 3:
        return ("other", "/".join(parts[:-1]) or parts[0], parts[-1])
    return (parts[0], "/".join(parts[1:-1]), parts[-1])


def reference(workload):
    """The impl every other row of the workload is compared with."""
    return WORKLOAD_REFERENCE.get(workload, "evmalloc")


def impl_kind(impl, workload=None):
    """evmalloc (the workload's reference row), variant, floor or baseline."""
    if impl == reference(workload):
        return "evmalloc"
    kind = WORKLOAD_KINDS.get(workload, {}).get(impl)
    if kind:
        return kind
    if impl == "evmalloc" or impl.startswith(("evmalloc.", "evmalloc_")):
        return "variant"
    if impl in REFERENCE_FLOORS:
        return "floor"
    return "baseline"


def impl_order(impls, workload=None):
    rank = {"evmalloc": 0, "variant": 1, "baseline": 2, "floor": 3}
    return sorted(impls, key=lambda i: (rank[impl_kind(i, workload)], impls.index(i)))


def fmt_sig(x, digits=3):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if x == 0:
        return "0"
    if abs(x) < 0.001:
        return f"{x:.1e}"
    magnitude = math.floor(math.log10(abs(x)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{x:,.{decimals}f}"


def fmt_time(ns):
    if ns is None:
        return "—"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{fmt_sig(ns / scale)} {unit}"
    return f"{fmt_sig(ns)} ns"


def fmt_ratio(r):
    if r is None:
        return "—"
    return f"{r:.2f}×" if r < 10 else f"{r:.1f}×" if r < 100 else f"{r:.0f}×"


def geomean(values):
    values = [v for v in values if v and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def group(entries):
    """{workload: {case: {impl: entry}}}: workloads in WORKLOAD_ORDER, cases and impls in order
    of first appearance."""
    tree = OrderedDict()
    for e in entries:
        workload, case, impl = split_name(e["run_name"])
        tree.setdefault(workload, OrderedDict()).setdefault(case, OrderedDict())[impl] = e
    rank = {w: i for i, w in enumerate(WORKLOAD_ORDER)}
    order = sorted(tree, key=lambda w: (rank.get(w, len(rank)), list(tree).index(w)))
    return OrderedDict((w, tree[w]) for w in order)


def ratios_by_baseline(cases, value, workload=None):
    """{impl: [(case, ratio)]} for every non-reference impl of cases that have a reference row."""
    out = OrderedDict()
    ref_impl = reference(workload)
    for case, impls in cases.items():
        ref = impls.get(ref_impl)
        ref_value = value(ref) if ref else None
        for impl, e in impls.items():
            if impl == ref_impl:
                continue
            v = value(e)
            ratio = v / ref_value if (v and ref_value) else None
            out.setdefault(impl, []).append((case, ratio))
    return out


# ---------------------------------------------------------------------------------------------
# Machine and project facts


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def evmalloc_version():
    version = "unknown"
    try:
        with open(os.path.join(REPO, "CMakeLists.txt")) as f:
            m = re.search(r"project\(evmalloc\s+VERSION\s+([0-9.]+)", f.read())
            if m:
                version = m.group(1)
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "include", "bench"],
                               capture_output=True, text=True, check=True).stdout.strip()
        version += f", commit {commit}" + (" + uncommitted changes in include/ or bench/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        pass
    return version


# ---------------------------------------------------------------------------------------------
# times: results.json -> report.md + chart.png


def load_times(path):
    """One entry per run_name: the median aggregate (or the single run), with its cv."""
    with open(path) as f:
        data = json.load(f)
    context = data.get("context", {})
    medians, cvs, singles = OrderedDict(), {}, OrderedDict()
    for b in data.get("benchmarks", []):
        name = b.get("run_name", b["name"])
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[name] = b
            elif b.get("aggregate_name") == "cv":
                cvs[name] = b
        else:
            singles.setdefault(name, []).append(b)
    entries = []
    # Registration order (the JSON is in run order, which random interleaving shuffles).
    def registration(name):
        b = medians.get(name) or singles[name][0]
        return (b.get("family_index", 0), b.get("per_family_instance_index", 0))
    names = sorted(OrderedDict.fromkeys(list(singles) + list(medians)), key=registration)
    for name in names:
        if name in medians:
            e = dict(medians[name])
            cv = cvs.get(name)
            e["_cv"] = cv.get("cpu_time") if cv else None
        else:
            runs = singles[name]
            runs = sorted(runs, key=lambda r: r.get("cpu_time", 0.0))
            e = dict(runs[len(runs) // 2])
            e["_cv"] = None
        e["run_name"] = name
        scale = TIME_UNITS_NS.get(e.get("time_unit", "ns"), 1.0)
        # Benchmarks registered with UseRealTime (threads) are measured in real time.
        time_key = "real_time" if "/real_time" in name else "cpu_time"
        e["_ns"] = e[time_key] * scale if time_key in e and not e.get("error_occurred") else None
        entries.append(e)
    return context, entries


def counter_columns(cases):
    keys = []
    for impls in cases.values():
        for e in impls.values():
            for k in e:
                if k not in STANDARD_KEYS and not k.startswith("_") and k not in keys:
                    keys.append(k)
    special = [k for k in ("bytes_per_second", "items_per_second") if k in keys]
    return special + sorted(k for k in keys if k not in special)


def counter_header(key):
    return {"bytes_per_second": "MB/s", "items_per_second": "M items/s"}.get(key, key)


def counter_value(e, key):
    if key not in e:
        return "—"
    v = e[key]
    if key in ("bytes_per_second", "items_per_second"):
        return fmt_sig(v / 1e6)
    return fmt_sig(v)


def summarize_workload(workload, cases):
    """[(impl, kind, [(case, ratio)], geomean)] for the impls of one workload."""
    rows = []
    for impl, pairs in ratios_by_baseline(cases, lambda e: e["_ns"], workload).items():
        rows.append((impl, impl_kind(impl, workload), pairs, geomean([r for _, r in pairs])))
    order = impl_order([r[0] for r in rows], workload)
    return sorted(rows, key=lambda r: order.index(r[0]))


def not_ahead_sentences(workload, cases):
    lines = []
    for case, impls in cases.items():
        ref_impl = reference(workload)
        ref = impls.get(ref_impl)
        if not ref or ref["_ns"] is None:
            continue
        for impl, e in impls.items():
            if impl_kind(impl, workload) != "baseline" or e["_ns"] is None:
                continue
            if ref["_ns"] < e["_ns"]:
                continue
            slower = (ref["_ns"] / e["_ns"] - 1.0) * 100.0
            noise = max(c for c in (ref.get("_cv"), e.get("_cv"), 0.0) if c is not None) * 100.0
            note = f" (cv up to {noise:.0f}%: within noise)" if noise > 0 and slower < 2 * noise else ""
            who = "evmalloc" if ref_impl == "evmalloc" else f"evmalloc ({ref_impl})"
            lines.append(f"- {who} is slower than {impl} on {workload}/{case} by {slower:.1f}% "
                         f"({fmt_time(ref['_ns'])} against {fmt_time(e['_ns'])}){note}.")
    return lines


def floor_sentences(workload, summary):
    lines = []
    for impl, kind, pairs, gm in summary:
        if kind != "floor" or gm is None:
            continue
        factors = [(case, 1.0 / r) for case, r in pairs if r]
        worst = max(factors, key=lambda p: p[1])
        best = min(factors, key=lambda p: p[1])
        who = "evmalloc" if reference(workload) == "evmalloc" else f"evmalloc ({reference(workload)})"
        lines.append(f"- {workload}: {impl} is a lower bound, not a competitor. {who} takes "
                     f"{1.0 / gm:.2f}× its time (geometric mean over {len(factors)} cases), from "
                     f"{best[1]:.2f}× ({best[0]}) to {worst[1]:.2f}× ({worst[0]}).")
    return lines


# ---------------------------------------------------------------------------------------------
# Targets: the figures the design sets, each with what was measured, met or not


def code_bytes(e):
    """Bytes of code per iteration of a row that set bytes processed (None otherwise)."""
    if not e or e.get("_ns") is None or not e.get("bytes_per_second"):
        return None
    return e["bytes_per_second"] * e["_ns"] * 1e-9


def case_rows(tree, workload, *impls):
    """[(case, (entry, ...))] for the cases of `workload` that have every impl, timed."""
    out = []
    for case, row in tree.get(workload, {}).items():
        es = tuple(row.get(i) for i in impls)
        if all(e is not None and e.get("_ns") for e in es):
            out.append((case, es))
    return out


def target_line(name, figure, met, detail=""):
    verdict = "met" if met else "**not met**"
    return f"- {name}: {figure}: {verdict}" + (f" ({detail})" if detail else "") + "."


def targets_section(tree):
    lines = []
    # Jumpdest frame call setup (call_setup).
    rows = case_rows(tree, "call_setup", "evmalloc_jumpdest", "jumpdest_floor")
    if rows:
        gm = geomean([j["_ns"] / f["_ns"] for _, (j, f) in rows])
        worst = max(rows, key=lambda r: r[1][0]["_ns"] / r[1][1]["_ns"])
        lines.append(target_line("jumpdest frame call setup within 1.3× of the jumpdest floor (geometric mean)",
                                 f"{gm:.2f}× over {len(rows)} contracts", gm <= 1.3,
                                 f"worst {worst[1][0]['_ns'] / worst[1][1]['_ns']:.2f}× on {worst[0]}"))
    rows = case_rows(tree, "call_setup", "evmalloc_jumpdest", "evmalloc")
    if rows:
        slower = [(c, j["_ns"] / i["_ns"]) for c, (j, i) in rows if j["_ns"] >= i["_ns"]]
        gm = geomean([i["_ns"] / j["_ns"] for _, (j, i) in rows])
        lines.append(target_line("jumpdest frame faster than the instruction frame on every contract",
                                 f"faster on {len(rows) - len(slower)}/{len(rows)}, instruction frame / jumpdest "
                                 f"frame {gm:.2f}× (geometric mean)", not slower,
                                 ", ".join(f"{c}: {r:.2f}× the instruction frame's time" for c, r in slower)))
    rows = case_rows(tree, "padded_copy", "evmalloc")
    if rows:
        setup = tree.get("call_setup", {})
        shares = [(c, e["_ns"] / setup[c]["evmalloc_jumpdest"]["_ns"]) for c, (e,) in rows
                  if setup.get(c, {}).get("evmalloc_jumpdest", {}).get("_ns")]
        times = sorted(e["_ns"] for _, (e,) in rows)
        text = f"{fmt_time(times[0])} to {fmt_time(times[-1])} per call"
        if shares:
            low, high = min(shares, key=lambda p: p[1]), max(shares, key=lambda p: p[1])
            text += (f", {low[1] * 100:.0f}% ({low[0]}) to {high[1] * 100:.0f}% ({high[0]}) of the jumpdest "
                     "frame's call setup")
        lines.append(f"- padded code copy (reported, no target): {text}.")
    # The jumpdest scan (attack_shapes, scan_corpus): the dispatched path against the floor.
    rows = case_rows(tree, "attack_shapes", "evmalloc", "floor", "memcpy")
    for case, (ev, floor, copy) in rows:
        if case not in ATTACK_SHAPES:
            continue
        need = 20.0 if case.startswith("devnet8") else 10.0
        speedup = floor["_ns"] / ev["_ns"]
        lines.append(target_line(f"attack_shapes/{case}: ≥ {need:g}× the floor", f"{speedup:.1f}×",
                                 speedup >= need))
        of_copy = ev["_ns"] / copy["_ns"]
        lines.append(target_line(f"attack_shapes/{case}: within 1.5× of a bare memcpy", f"{of_copy:.2f}×",
                                 of_copy <= 1.5, f"{fmt_time(ev['_ns'])} against {fmt_time(copy['_ns'])}"))
    worst = [(c, f["_ns"] / e["_ns"]) for c, (e, f, _) in rows if c in WORST_SHAPES]
    if worst:
        low = min(worst, key=lambda p: p[1])
        lines.append(target_line("worst cases (PUSH1-dense, PUSH per 64 bytes, PUSH32-dense, random) ≥ 1.0× the floor",
                                 f"at least {low[1]:.2f}× ({low[0]})", low[1] >= 1.0))
    rows = case_rows(tree, "scan_corpus", "evmalloc", "floor")
    if rows:
        speedups = [(c, f["_ns"] / e["_ns"]) for c, (e, f) in rows]
        gm = geomean([r for _, r in speedups])
        low = min(speedups, key=lambda p: p[1])
        lines.append(target_line("compiled contracts ≥ 1.5× the floor (geometric mean)",
                                 f"{gm:.2f}× over {len(rows)} contracts", gm >= 1.5,
                                 f"lowest {low[1]:.2f}× on {low[0]}"))
    # Shared analysis: hits and misses.
    rows = case_rows(tree, "shared_hit", "verified", "init_prepare")
    big = [(c, v, p) for c, (v, p) in rows if (code_bytes(p) or 0) >= 16384]
    if big:
        low = min(big, key=lambda r: r[2]["_ns"] / r[1]["_ns"])
        lines.append(target_line("verified-key hit ≥ 4× faster than init + prepare on contracts ≥ 16 KiB",
                                 f"at least {low[2]['_ns'] / low[1]['_ns']:.1f}× ({low[0]}) over {len(big)} contracts",
                                 low[2]["_ns"] / low[1]["_ns"] >= 4.0))
    rows = case_rows(tree, "shared_hit", "trusted", "bare_init")
    if rows:
        worst = max(rows, key=lambda r: r[1][0]["_ns"] / r[1][1]["_ns"])
        ratio = worst[1][0]["_ns"] / worst[1][1]["_ns"]
        gm = geomean([t["_ns"] / b["_ns"] for _, (t, b) in rows])
        lines.append(target_line("hot call (trusted key) within 2.5× of a bare init + release at every size",
                                 f"at most {ratio:.2f}× ({worst[0]}), {gm:.2f}× geometric mean over {len(rows)}",
                                 ratio <= 2.5))
    rows = case_rows(tree, "shared_hit", "trusted", "init_prepare")
    big = [(c, t, p) for c, (t, p) in rows if (code_bytes(p) or 0) >= 16384]
    if big:
        low = min(big, key=lambda r: r[2]["_ns"] / r[1]["_ns"])
        lines.append(target_line("hot call ≥ 100× faster than init + prepare on contracts ≥ 16 KiB",
                                 f"at least {low[2]['_ns'] / low[1]['_ns']:.0f}× ({low[0]}) over {len(big)} contracts",
                                 low[2]["_ns"] / low[1]["_ns"] >= 100.0))
    allocs = [e.get("allocs_per_iter") for row in tree.get("shared_hit", {}).values()
              for i, e in row.items() if i in ("trusted", "verified")]
    if allocs and all(a is not None for a in allocs):
        lines.append(target_line("a hit allocates nothing", f"allocs_per_iter at most {max(allocs):g}",
                                 max(allocs) == 0))
    rows = case_rows(tree, "shared_miss", "evmalloc", "init_prepare")
    if rows:
        worst = max(rows, key=lambda r: r[1][0]["_ns"] / r[1][1]["_ns"])
        ratio = worst[1][0]["_ns"] / worst[1][1]["_ns"]
        gm = geomean([m["_ns"] / p["_ns"] for _, (m, p) in rows])
        lines.append(target_line("a miss ≤ 1.15× init + prepare",
                                 f"{gm:.2f}× geometric mean, at most {ratio:.2f}× ({worst[0]})", ratio <= 1.15))
    # The call storm with reuse.
    for case, (ev, naive) in case_rows(tree, "call_storm_zipf", "evmalloc", "naive_frame"):
        ratio = naive["_ns"] / ev["_ns"]
        hit = ev.get("hit_rate")
        lines.append(target_line(f"call_storm_zipf/{case}: ≥ 3× faster than the naive frame end to end",
                                 f"{ratio:.2f}×", ratio >= 3.0,
                                 (f"hit rate {hit:.3f}" if hit is not None else "")
                                 + (f", allocs_per_tx {ev['allocs_per_tx']:.2f}" if "allocs_per_tx" in ev else "")))
    # Threads.
    for case, (one, two) in case_rows(tree, "cache_threads", "threads:1", "threads:2"):
        if one.get("items_per_second") and two.get("items_per_second"):
            ratio = two["items_per_second"] / one["items_per_second"]
            cpu = [e["cpu_time"] * TIME_UNITS_NS.get(e.get("time_unit", "ns"), 1.0) for e in (one, two)]
            lines.append(target_line(f"cache_threads/{case}: 2 threads ≥ 1.6× one thread's hit throughput",
                                     f"{ratio:.2f}×", ratio >= 1.6,
                                     f"real time; CPU time per hit {fmt_time(cpu[0])} on 1 thread, "
                                     f"{fmt_time(cpu[1])} on 2: a loaded machine gives the second thread "
                                     "no core of its own"))
    # Footprint.
    for case, (shared, per_frame) in case_rows(tree, "footprint", "shared", "per_frame"):
        if shared.get("bytes_held") and per_frame.get("bytes_held"):
            lines.append(f"- footprint/{case} (reported): a 1025-deep self-recursion holds "
                         f"{fmt_bytes(per_frame['bytes_held'])} on the per-frame path, "
                         f"{fmt_bytes(shared['bytes_held'])} with the shared analysis: "
                         f"{per_frame['bytes_held'] / shared['bytes_held']:.1f}× less.")
    if not lines:
        return []
    return ["## Targets", "", "Each figure the design sets, from the medians above; met or not.", ""] + lines + [""]


def fmt_bytes(n):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{fmt_sig(n / scale)} {unit}"
    return f"{fmt_sig(n)} B"


def counter_workload_table(workload, cases):
    """A counters-only workload: one row per case, the counters of each impl side by side, and
    the ratio of each impl's first counter to the reference's."""
    impls = []
    for row in cases.values():
        impls += [i for i in row if i not in impls]
    impls = impl_order(impls, workload)
    keys = []
    for row in cases.values():
        for e in row.values():
            keys += [k for k in counter_columns({"": {"": e}}) if k not in keys]
    ref = reference(workload)
    header, rows = ["case"], []
    for k in keys:
        header += [f"{k} ({i})" for i in impls]
    header += [f"{keys[0]}: {i} / {ref}" for i in impls if i != ref] if keys else []
    for case, row in cases.items():
        cells = [case]
        for k in keys:
            cells += [counter_value(row[i], k) if i in row else "—" for i in impls]
        if keys:
            for i in impls:
                if i == ref:
                    continue
                a, b = row.get(i, {}).get(keys[0]), row.get(ref, {}).get(keys[0])
                cells.append(fmt_ratio(a / b) if a and b else "—")
        rows.append(cells)
    return [f"## {workload}", "", "Counters, not times (the time of these runs is not comparable).", "",
            md_table(header, rows), ""]
def merge_rounds(paths, out_path):
    """Joins the JSON of rounds run one process each (one run of every benchmark per round)
    into one results file shaped as Google Benchmark writes repetitions: every run, then a
    median and a cv aggregate per benchmark (the median of an even count is the mean of the
    two middle runs, as Google Benchmark computes it)."""
    context, runs = None, []
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        if context is None:
            context = data.get("context", {})
        runs += [b for b in data.get("benchmarks", []) if b.get("run_type") != "aggregate"]
    by_name = OrderedDict()
    for b in runs:
        same = by_name.setdefault(b.get("run_name", b["name"]), [])
        b["repetition_index"] = len(same)
        same.append(b)
    aggregates = []
    for name, group_runs in by_name.items():
        for b in group_runs:
            b["repetitions"] = len(group_runs)
        ok = [b for b in group_runs if not b.get("error_occurred")]
        if not ok:
            continue
        ordered = sorted(ok, key=lambda b: b["cpu_time"])
        n = len(ordered)

        def middle(key):
            values = sorted(b[key] for b in ordered)
            return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2

        median = dict(ordered[(n - 1) // 2], run_type="aggregate", aggregate_name="median",
                      name=name + "_median", real_time=middle("real_time"), cpu_time=middle("cpu_time"))
        mean = sum(b["cpu_time"] for b in ordered) / n
        sd = math.sqrt(sum((b["cpu_time"] - mean) ** 2 for b in ordered) / (n - 1)) if n > 1 else 0.0
        cv = dict(ordered[0], run_type="aggregate", aggregate_name="cv", aggregate_unit="percentage",
                  name=name + "_cv", real_time=0.0, cpu_time=sd / mean if mean > 0 else 0.0)
        aggregates += [median, cv]
    with open(out_path, "w") as f:
        json.dump({"context": context or {}, "benchmarks": runs + aggregates}, f, indent=1)
    return len(by_name), len(paths)


def write_times_report(context, entries, out_dir, compiler_arg):
    tree = group(entries)
    date = context.get("date", datetime.datetime.now().isoformat(timespec="seconds"))
    reps = context.get("repetitions")
    min_time = context.get("min_time")
    method = "CPU time per iteration (real time for the threaded cache_threads), " + (f"median of {reps} repetitions" if reps else "single run")
    if min_time:
        method += f" of at least {min_time} s each"
    if context.get("interleaved"):
        method += f" ({context['interleaved']} interleaving of all repetitions)"
    method += "; ratio = impl time / reference time (the evmalloc row, or the evmalloc path named in the table; > 1: the reference is faster)"
    if any(e.get("_cv") is not None for e in entries):
        method += "; cv = coefficient of variation of the CPU time over the repetitions"
    load = context.get("load_avg")
    header_rows = [
        ("date", date),
        ("evmalloc", evmalloc_version()),
        ("compiler", context.get("compiler") or compiler_arg or "unknown"),
        ("evmalloc build", context.get("evmalloc_build", "unknown")
                           + f" (Google Benchmark library: {context.get('library_build_type', 'unknown')} build)"),
        ("CPU", f"{cpu_model()}, {context.get('num_cpus', os.cpu_count())} cores"
                + (f", {context['mhz_per_cpu']} MHz" if context.get("mhz_per_cpu") else "")),
        ("load average at start", " ".join(f"{x:.2f}" for x in load) if load else "unknown"),
        ("code set (call_setup, call_storm)", context.get("code_source", "not recorded")),
        ("method", method),
    ]
    md = ["# evmalloc benchmark report", "", md_table(["", ""], header_rows), ""]

    # Summary.
    md += ["## Summary", "",
           "Geometric mean over the cases of a workload of (impl time / evmalloc time): "
           "above 1.00× evmalloc is faster. Variants are other evmalloc paths; floors are lower "
           "bounds (the least work any implementation must do), not competitors.", ""]
    summary_rows, chart_data, behind, floors, orphans = [], OrderedDict(), [], [], []
    chart_floors = set()
    for workload, cases in tree.items():
        if workload in COUNTER_WORKLOADS:
            continue
        summary = summarize_workload(workload, cases)
        for impl, kind, pairs, gm in summary:
            ratios = [r for _, r in pairs if r]
            ahead = sum(1 for r in ratios if r > 1.0)
            label = impl + {"variant": " (variant)", "floor": " (floor)"}.get(kind, "")
            summary_rows.append((workload, label, len(ratios), fmt_ratio(gm),
                                 f"{fmt_ratio(min(ratios))} – {fmt_ratio(max(ratios))}" if ratios else "—",
                                 f"{ahead}/{len(ratios)}" if kind == "baseline" else ""))
            if kind in ("baseline", "floor") and gm:
                chart_data.setdefault(workload, OrderedDict())[impl] = gm
                if kind == "floor":
                    chart_floors.add(impl)
        behind += not_ahead_sentences(workload, cases)
        floors += floor_sentences(workload, summary)
        orphans += [f"{workload}/{c}" for c, impls in cases.items()
                    if reference(workload) not in impls and len(impls) > 1]
    md += [md_table(["workload", "against", "cases", "geomean ratio", "range", "evmalloc ahead"],
                    summary_rows), ""]
    md += ["### Where evmalloc is not ahead", ""]
    md += behind if behind else ["evmalloc is ahead of every baseline in every case measured."]
    md += [""]
    if floors:
        md += ["### Against the floors", ""] + floors + [""]
    if orphans:
        md += ["Cases without an `evmalloc` row (no ratio): " + ", ".join(orphans) + ".", ""]
    errors = [e for e in entries if e.get("error_occurred")]
    if errors:
        md += ["### Benchmarks that reported an error", ""]
        md += [f"- {e['run_name']}: {e.get('error_message', '')}" for e in errors] + [""]

    md += targets_section(tree)
    md += attack_shapes_section(tree, out_dir)

    # One table per workload.
    for workload, cases in tree.items():
        if workload in COUNTER_WORKLOADS:
            md += counter_workload_table(workload, cases)
            continue
        columns = counter_columns(cases)
        rows = []
        ref_impl = reference(workload)
        for case, impls in cases.items():
            ref = impls.get(ref_impl)
            for impl in impl_order(list(impls), workload):
                e = impls[impl]
                if e.get("error_occurred"):
                    rows.append([case, impl, "error: " + e.get("error_message", ""), "—", "—"]
                                + ["—"] * len(columns))
                    continue
                if impl == ref_impl:
                    ratio = "1 (ref)"
                elif ref and ref["_ns"] and e["_ns"]:
                    ratio = fmt_ratio(e["_ns"] / ref["_ns"])
                else:
                    ratio = "—"
                cv = f"{e['_cv'] * 100:.1f}%" if e.get("_cv") is not None else "—"
                rows.append([case, impl, fmt_time(e["_ns"]), ratio, cv]
                            + [counter_value(e, k) for k in columns])
        md += [f"## {workload}", "",
               md_table(["case", "impl", "median time", "ratio", "cv"]
                        + [counter_header(k) for k in columns], rows), ""]

    md += ["![ratios per workload](chart.png)", ""] if chart_data else []
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    write_chart(chart_data, os.path.join(out_dir, "chart.png"),
                f"{date[:10]} · {cpu_model()} · {context.get('code_source', '')}", chart_floors)


def scan_paths(cases):
    """The evmalloc.<path> impls of the scan workloads, in order of appearance."""
    paths = []
    for impls in cases.values():
        paths += [i for i in impls if i.startswith("evmalloc.") and i not in paths]
    return paths


def gbps(e):
    return e["bytes_per_second"] / 1e9 if e and e.get("bytes_per_second") and e.get("_ns") else None


def attack_shapes_section(tree, out_dir):
    """The jumpdest scan per shape and per path: GB/s, × the floor, × a bare memcpy's time; the
    corpus geomeans per path; the chart attack_shapes.png."""
    cases = tree.get("attack_shapes", {})
    if not cases:
        return []
    paths = scan_paths(cases)
    header = ["shape", "evmalloc GB/s", "× floor", "time / memcpy"] + [f"{p[len('evmalloc.'):]} GB/s (× floor)" for p in paths] + ["floor GB/s", "memcpy GB/s"]
    rows, chart = [], OrderedDict()
    for case, impls in cases.items():
        ev, floor, copy = impls.get("evmalloc"), impls.get("floor"), impls.get("memcpy")
        if not (ev and floor and copy and ev.get("_ns") and floor.get("_ns") and copy.get("_ns")):
            continue
        row = [case, fmt_sig(gbps(ev)), fmt_ratio(floor["_ns"] / ev["_ns"]), fmt_ratio(ev["_ns"] / copy["_ns"])]
        for p in paths:
            e = impls.get(p)
            row.append(f"{fmt_sig(gbps(e))} ({fmt_ratio(floor['_ns'] / e['_ns'])})" if e and e.get("_ns") else "—")
            if e and e.get("_ns"):
                chart.setdefault(case, OrderedDict())[p[len("evmalloc."):]] = floor["_ns"] / e["_ns"]
        chart.setdefault(case, OrderedDict())["memcpy (limit)"] = floor["_ns"] / copy["_ns"]
        rows.append(row + [fmt_sig(gbps(floor)), fmt_sig(gbps(copy))])
    md = ["## Attack shapes", "",
          "The jumpdest frame's whole setup, `JumpdestAnalysis::prepare(code, padded_code, bits)`, on the "
          "attack shapes and the worst cases (bench/jumpdest_scan_bench.cpp), side by side in one run with "
          "the floor (a `memcpy` into a padded buffer, then the plain bitmap loop) and a bare padded `memcpy`. "
          "`evmalloc` is the path chosen at run time; each path selected with `set_analysis_path()`. "
          "× floor: floor time / evmalloc time (above 1: faster than the floor).", "",
          md_table(header, rows), ""]
    corpus = tree.get("scan_corpus", {})
    if corpus:
        per = []
        for impl in ["evmalloc"] + scan_paths(corpus):
            pairs = [(c, i["floor"]["_ns"] / i[impl]["_ns"]) for c, i in corpus.items()
                     if i.get(impl, {}).get("_ns") and i.get("floor", {}).get("_ns")]
            if pairs:
                low = min(pairs, key=lambda p: p[1])
                per.append([impl, len(pairs), fmt_ratio(geomean([r for _, r in pairs])),
                            f"{fmt_ratio(low[1])} ({low[0]})"])
        md += ["Compiled contracts of the corpus (scan_corpus), × the floor per path:", "",
               md_table(["impl", "contracts", "geomean × floor", "lowest"], per), ""]
    md += ["Published figures of other clients (theirs, on their machines and baselines; not measured here):", ""]
    md += [f"- {who} ({ref}): {what}." for who, ref, what in CLIENT_FIGURES] + [""]
    if chart:
        write_scan_chart(chart, os.path.join(out_dir, "attack_shapes.png"))
        md += ["![attack shapes: speed-up over the floor per path](attack_shapes.png)", ""]
    return md


def write_scan_chart(chart, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: warning: matplotlib is not installed; attack_shapes.png skipped", file=sys.stderr)
        return
    series = []
    for per in chart.values():
        series += [k for k in per if k not in series]
    fig, ax = plt.subplots(figsize=(max(9.0, 1.4 * len(chart) + 3), 5.5), dpi=120)
    width = 0.84 / max(len(series), 1)
    palette = plt.get_cmap("tab10").colors
    for k, name in enumerate(series):
        xs = [x - 0.42 + width * (k + 0.5) for x, per in enumerate(chart.values()) if name in per]
        ys = [per[name] for per in chart.values() if name in per]
        ax.bar(xs, ys, width * 0.92, color=palette[k % 10], edgecolor="black", linewidth=0.4, label=name,
               hatch="//" if name.startswith("memcpy") else None)
    ax.set_yscale("log")
    ax.axhline(1.0, color="black", linewidth=1.0)
    for level, text in ((10.0, "10×"), (20.0, "20×")):
        ax.axhline(level, color="#888", linewidth=0.6, linestyle="--")
    ax.set_xticks(range(len(chart)))
    ax.set_xticklabels(list(chart), rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("floor time / path time (log scale)")
    ax.set_title("jumpdest frame setup per path: speed-up over the floor (memcpy + plain bitmap loop)\n"
                 "hatched: a bare memcpy, the physical limit; dashed: the 10× and 20× targets", fontsize=10)
    ax.grid(axis="y", linestyle=":", linewidth=0.5)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_chart(chart_data, path, subtitle, floors=frozenset(REFERENCE_FLOORS)):
    if not chart_data:
        print("report.py: no ratios to draw; chart skipped", file=sys.stderr)
        return
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("report.py: warning: matplotlib is not installed (Debian: python3-matplotlib); "
              "chart.png skipped", file=sys.stderr)
        return
    impls = []
    for per in chart_data.values():
        impls += [i for i in per if i not in impls]
    palette = plt.get_cmap("tab20").colors
    colors = {impl: palette[(2 * n) % 20 if n < 10 else (2 * n + 1) % 20] for n, impl in enumerate(impls)}
    total_bars = sum(len(per) for per in chart_data.values())
    fig, ax = plt.subplots(figsize=(max(9.0, 2.5 + 0.42 * total_bars + 0.6 * len(chart_data)), 6.0), dpi=120)
    seen, all_ratios = set(), []
    for x, (workload, per) in enumerate(chart_data.items()):
        width = 0.84 / max(len(per), 1)
        for k, (impl, ratio) in enumerate(per.items()):
            pos = x - 0.42 + width * (k + 0.5)
            # Bars grow from 1.0: up where evmalloc is faster, down where it is slower.
            ax.bar(pos, ratio - 1.0, width * 0.92, bottom=1.0, color=colors[impl],
                   hatch="//" if impl in floors else None, edgecolor="black",
                   linewidth=0.4, label=None if impl in seen else impl)
            seen.add(impl)
            all_ratios.append(ratio)
            up = ratio >= 1.0
            ax.annotate(fmt_ratio(ratio), (pos, ratio),
                        xytext=(0, 2 if up else -2), textcoords="offset points", ha="center",
                        va="bottom" if up else "top", fontsize=7, rotation=90 if len(per) > 4 else 0)
    ax.set_yscale("log")
    low, high = min(0.5, min(all_ratios) / 1.8), max(2.0, max(all_ratios) * 2.2)
    ax.set_ylim(low, high)
    nice = [m * 10.0 ** e for e in range(-4, 5) for m in (1, 2, 5)]
    ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator([v for v in nice if low <= v <= high]))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.axhline(1.0, color="black", linewidth=1.0)
    ax.set_xticks(range(len(chart_data)))
    ax.set_xlim(-0.6, len(chart_data) - 0.4)
    ax.set_ylabel("baseline time / evmalloc time (log scale)")
    # Workloads whose reference is not the `evmalloc` row say which evmalloc path they compare.
    ax.set_xticklabels([w if reference(w) == "evmalloc" else f"{w}\n(vs {reference(w)})" for w in chart_data])
    ax.set_title("evmalloc against each baseline: geometric-mean time ratio per workload\n"
                 "above 1×: evmalloc is faster; below: the baseline is faster; hatched: a floor (lower bound)",
                 fontsize=10)
    ax.text(1.0, -0.08, subtitle, transform=ax.transAxes, ha="right", va="top", fontsize=7, color="#555")
    ax.grid(axis="y", which="major", linestyle=":", linewidth=0.5)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="against", title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# instructions: two callgrind runs -> instructions.md


def load_callgrind_run(run_dir):
    """[(run entry, Ir of its window)] in run order; n = min(16, iterations)."""
    with open(os.path.join(run_dir, "results.json")) as f:
        data = json.load(f)
    runs = [b for b in data.get("benchmarks", []) if b.get("run_type") != "aggregate"]
    dumps = []
    for name in os.listdir(run_dir):
        m = re.fullmatch(r"cg\.out\.(\d+)", name)
        if m:
            dumps.append((int(m.group(1)), os.path.join(run_dir, name)))
    dumps.sort()
    if len(dumps) != len(runs):
        sys.exit(f"report.py: {run_dir}: {len(runs)} benchmark runs but {len(dumps)} callgrind "
                 "windows; was the executable run by bench/run --instructions?")
    out = []
    for run, (_, path) in zip(runs, dumps):
        ir = None
        with open(path) as f:
            for line in f:
                if line.startswith("summary:"):
                    ir = int(line.split()[1])
                    break
        if ir is None:
            sys.exit(f"report.py: no summary line in {path}")
        run = dict(run)
        run["_n"] = min(16, int(run["iterations"]))
        run["_ir"] = ir
        out.append(run)
    return data.get("context", {}), out


def write_instructions_report(group_dirs, out_path):
    context, one, many = {}, [], []
    for group_dir in group_dirs:
        one += load_callgrind_run(os.path.join(group_dir, "one"))[1]
        group_context, group_many = load_callgrind_run(os.path.join(group_dir, "many"))
        context = context or group_context
        many += group_many
    one_by_name = {r["run_name"]: r for r in one}
    entries = []
    for r in many:
        a = one_by_name.get(r["run_name"])
        e = {"run_name": r["run_name"], "_per_iter": None, "_n": (a["_n"] if a else None, r["_n"])}
        if a and r["_n"] > a["_n"]:
            e["_per_iter"] = (r["_ir"] - a["_ir"]) / (r["_n"] - a["_n"])
            seconds = r["cpu_time"] * TIME_UNITS_NS.get(r.get("time_unit", "ns"), 1.0) * 1e-9
            for key, unit in (("bytes_per_second", "byte"), ("items_per_second", "item")):
                if r.get(key):
                    e["_per_" + unit] = e["_per_iter"] / (r[key] * seconds)
        entries.append(e)
    tree = group(entries)

    md = ["# evmalloc instruction counts (callgrind)", "",
          md_table(["", ""], [
              ("date", context.get("date", "")),
              ("evmalloc", evmalloc_version()),
              ("compiler", context.get("compiler", "unknown")),
              ("CPU", cpu_model()),
              ("code set (call_setup, call_storm)", context.get("code_source", "not recorded")),
              ("method", "instructions executed (callgrind Ir) per benchmark iteration: each benchmark "
                         "runs n₁ and n₂ iterations (n = min(16, iterations): 1, then 2 to 16) inside "
                         "a profiled window; Ir/iter = (Ir₂ − Ir₁) / (n₂ − n₁), so setup cancels. "
                         "ratio = impl Ir / evmalloc Ir (> 1: evmalloc executes fewer instructions)"),
          ]), ""]
    summary_rows, missing = [], []
    for workload, cases in tree.items():
        for impl, pairs in ratios_by_baseline(cases, lambda e: e["_per_iter"], workload).items():
            ratios = [r for _, r in pairs if r]
            summary_rows.append((workload, impl, len(ratios), fmt_ratio(geomean(ratios)),
                                 f"{fmt_ratio(min(ratios))} – {fmt_ratio(max(ratios))}" if ratios else "—"))
    md += ["## Summary", "", md_table(["workload", "against", "cases", "geomean ratio", "range"],
                                      summary_rows), ""]
    for workload, cases in tree.items():
        per_byte = any("_per_byte" in e for impls in cases.values() for e in impls.values())
        per_item = any("_per_item" in e for impls in cases.values() for e in impls.values())
        rows = []
        for case, impls in cases.items():
            ref = impls.get(reference(workload))
            for impl in impl_order(list(impls), workload):
                e = impls[impl]
                if e["_per_iter"] is None:
                    missing.append(e["run_name"])
                if impl == reference(workload):
                    ratio = "1 (ref)"
                elif ref and ref["_per_iter"] and e["_per_iter"]:
                    ratio = fmt_ratio(e["_per_iter"] / ref["_per_iter"])
                else:
                    ratio = "—"
                row = [case, impl, fmt_sig(e["_per_iter"]), ratio]
                row += [fmt_sig(e.get("_per_byte"))] if per_byte else []
                row += [fmt_sig(e.get("_per_item"))] if per_item else []
                row += [f"{e['_n'][0]}, {e['_n'][1]}"]
                rows.append(row)
        header = ["case", "impl", "Ir / iteration", "ratio"]
        header += ["Ir / byte"] if per_byte else []
        header += ["Ir / item"] if per_item else []
        header += ["n₁, n₂"]
        md += [f"## {workload}", "", md_table(header, rows), ""]
    if missing:
        md += ["No count for (n₂ = n₁: one iteration took longer under callgrind than the "
               "second run's min_time; raise EVMALLOC_BENCH_MIN_TIME): " + ", ".join(missing) + ".", ""]
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
        f.write("\n".join(md) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    times = sub.add_parser("times", help="results.json -> report.md and chart.png")
    times.add_argument("results")
    times.add_argument("--out", default=None, help="output folder (default: the folder of results.json)")
    times.add_argument("--compiler", default=None, help="compiler, when the JSON context has none")
    merge = sub.add_parser("merge", help="round-*.json (one run of each benchmark each) -> results.json")
    merge.add_argument("rounds", nargs="+")
    merge.add_argument("--out", required=True)
    ins = sub.add_parser("instructions", help="callgrind runs -> instructions.md")
    ins.add_argument("groups", nargs="+", help="folders holding one/ and many/")
    ins.add_argument("--out", default="instructions.md")
    args = parser.parse_args()
    if args.command == "times":
        context, entries = load_times(args.results)
        if not entries:
            sys.exit(f"report.py: no benchmarks in {args.results}")
        write_times_report(context, entries, args.out or os.path.dirname(os.path.abspath(args.results)),
                           args.compiler)
    elif args.command == "merge":
        benchmarks, rounds = merge_rounds(args.rounds, args.out)
        print(f"report.py: {benchmarks} benchmarks from {rounds} rounds -> {args.out}")
    else:
        write_instructions_report(args.groups, args.out)


if __name__ == "__main__":
    main()
