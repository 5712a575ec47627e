#!/usr/bin/env python3
"""evmone-bench on stock evmone and on evmalloc: the report.

  report.py cases BENCHMARKS_DIR CASES_FILE
      writes one line per benchmark input ("main/blake2b_huff/empty CODE_HEX INPUT_HEX") for
      alloc_count, from evm-benchmarks' state-test files.
  report.py report OUT_DIR ROUNDS_DIR STOCK_ALLOCS EVMALLOC_ALLOCS
      reads ROUNDS_DIR/{stock,evmalloc}-<round>.json (Google Benchmark JSON) and the two
      alloc_count outputs; writes OUT_DIR/{report.md,results.json,chart.png}.

Ratio = stock time / evmalloc time, per round (the two ran back to back, pinned to one core);
the report gives the median over rounds and the spread (min..max). Above 1: evmalloc faster.
The baseline/analyse rows run evmone's own analysis in both builds (the same code): their
spread is the noise floor.
"""
import json
import pathlib
import statistics
import sys


def write_cases(bench_dir, cases_file):
    lines = []
    for f in sorted(pathlib.Path(bench_dir).rglob("*.json")):
        group = f.parent.name
        for name, t in json.load(open(f)).items():
            to = t["transaction"]["to"].lower()
            pre = {k.lower(): v for k, v in t["pre"].items()}
            code = pre[to]["code"].removeprefix("0x") or "00"
            labels = t.get("_info", {}).get("labels", {})
            for i, data in enumerate(t["transaction"]["data"]):
                label = labels.get(str(i), str(i))
                data = data.removeprefix("0x") or "-"
                lines.append(f"{group}/{name}/{label} {code} {data}")
    pathlib.Path(cases_file).write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} cases")


def load_rounds(rounds_dir):
    times = {"stock": {}, "evmalloc": {}}
    units = {}
    for variant in times:
        for f in sorted(pathlib.Path(rounds_dir).glob(f"{variant}-*.json")):
            for b in json.load(open(f))["benchmarks"]:
                if b.get("run_type", "iteration") != "iteration" or "error_occurred" in b:
                    continue
                times[variant].setdefault(b["name"], []).append(b["real_time"])
                units[b["name"]] = b["time_unit"]
    return times, units


def load_allocs(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            r = json.loads(line)
            out[r["name"]] = r
    return out


def fmt_ratio(r):
    return f"{r:.3f}"


def kind_of(name):
    # baseline/<kind>/<group>/<bench>[/<input>]
    parts = name.split("/")
    return parts[1] if len(parts) > 1 else ""


def make_report(out_dir, rounds_dir, stock_allocs, evm_allocs):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    times, units = load_rounds(rounds_dir)
    names = [n for n in times["stock"] if n in times["evmalloc"]]
    rows = []
    for n in names:
        s, e = times["stock"][n], times["evmalloc"][n]
        k = min(len(s), len(e))
        ratios = [s[i] / e[i] for i in range(k)]
        rows.append({
            "name": n,
            "kind": kind_of(n),
            "unit": units[n],
            "stock": statistics.median(s[:k]),
            "evmalloc": statistics.median(e[:k]),
            "ratio": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "rounds": k,
        })
    analyse = [r for r in rows if r["kind"] == "analyse"]
    noise = None
    if analyse:
        noise = {
            "min": min(r["ratio_min"] for r in analyse),
            "max": max(r["ratio_max"] for r in analyse),
            "median_abs_dev": statistics.median(abs(r["ratio"] - 1) for r in analyse),
        }
    sa, ea = load_allocs(stock_allocs), load_allocs(evm_allocs)
    allocs = []
    for n in sa:
        if n in ea:
            allocs.append({"name": n, "stock": sa[n], "evmalloc": ea[n]})

    results = {"benchmarks": rows, "noise_floor_from_analyse_rows": noise, "allocations": allocs}
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")

    md = ["# evmone on evmalloc: evmone-bench, stock / evmalloc", ""]
    rounds = max((r["rounds"] for r in rows), default=0)
    md.append(f"{rounds} rounds, stock and evmalloc back to back in each (order alternating), "
              "pinned to one core. Ratio = stock time / evmalloc time (median over rounds; "
              "min..max in brackets). Above 1: evmalloc faster.")
    md.append("")
    if noise:
        md.append(f"Noise floor: the `baseline/analyse` rows run the same code in both builds; "
                  f"their per-round ratios span {noise['min']:.3f}..{noise['max']:.3f}.")
        md.append("")
    for kind, title in (("execute", "execute (code analysed beforehand: evmone's analysis, "
                         "evmalloc gives stack and memory)"),
                        ("total", "total (through EVMC: analysis included, per call)"),
                        ("analyse", "analyse (evmone's own analysis in both: the noise floor)")):
        sel = [r for r in rows if r["kind"] == kind]
        if not sel:
            continue
        md.append(f"## {title}")
        md.append("")
        md.append("| benchmark | stock | evmalloc | ratio | spread |")
        md.append("|---|---:|---:|---:|---|")
        for r in sel:
            short = "/".join(r["name"].split("/")[2:])
            md.append(f"| {short} | {r['stock']:.3f} {r['unit']} | {r['evmalloc']:.3f} {r['unit']} "
                      f"| {fmt_ratio(r['ratio'])} | {r['ratio_min']:.3f}..{r['ratio_max']:.3f} |")
        ratios = [r["ratio"] for r in sel]
        gm = statistics.geometric_mean(ratios)
        md.append(f"| geometric mean | | | {gm:.3f} | |")
        md.append("")
    if allocs:
        md.append("## Heap allocations per call (alloc_count: replaced malloc/operator new, EVMC "
                  "calls on a host that never allocates)")
        md.append("")
        md.append("steady = per call after warm-up; of which output = EVMC's result buffer "
                  "(evmc_make_result copies the output into malloc'ed memory, either VM); "
                  "first = the first call of a new VM; new depth = one call at a depth not used "
                  "before; faults = minor page faults per call, steady.")
        md.append("")
        md.append("| case | steady stock | steady evmalloc | of which output | first stock | "
                  "first evmalloc | new depth stock | new depth evmalloc | faults stock | "
                  "faults evmalloc | gas used (same in both) |")
        md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for a in allocs:
            s, e = a["stock"], a["evmalloc"]
            same = "yes" if s["gas_used"] == e["gas_used"] and s["status"] == e["status"] else \
                f"NO ({s['gas_used']} vs {e['gas_used']})"
            md.append(f"| {a['name']} | {s['steady']:.2f} | {e['steady']:.2f} | {e['output_allocs']:.2f} "
                      f"| {s['first_call']} | {e['first_call']} | {s['new_depth']} | {e['new_depth']} "
                      f"| {s['minflt']:.2f} | {e['minflt']:.2f} | {same} |")
        md.append("")
    md.append("![stock / evmalloc](chart.png)")
    (out / "report.md").write_text("\n".join(md) + "\n")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: matplotlib missing, no chart", file=sys.stderr)
        return
    sel = [r for r in rows if r["kind"] in ("execute", "total", "analyse")]
    sel.sort(key=lambda r: ({"total": 0, "execute": 1, "analyse": 2}[r["kind"]], r["name"]))
    fig, ax = plt.subplots(figsize=(9, max(3, 0.22 * len(sel) + 1)))
    ys = range(len(sel))
    colors = {"total": "tab:blue", "execute": "tab:green", "analyse": "tab:gray"}
    ax.barh(list(ys), [r["ratio"] - 1 for r in sel], left=1,
            xerr=[[r["ratio"] - r["ratio_min"] for r in sel], [r["ratio_max"] - r["ratio"] for r in sel]],
            color=[colors[r["kind"]] for r in sel], capsize=2)
    ax.set_yticks(list(ys))
    ax.set_yticklabels(["/".join(r["name"].split("/")[1:]) for r in sel], fontsize=6)
    ax.axvline(1, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("stock time / evmalloc time (above 1: evmalloc faster); bars: min..max over rounds")
    ax.set_title("evmone-bench: evmone on evmalloc vs stock evmone 2cbfad3")
    fig.tight_layout()
    fig.savefig(out / "chart.png", dpi=130)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "cases":
        write_cases(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 6 and sys.argv[1] == "report":
        make_report(*sys.argv[2:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
