#!/usr/bin/env python3
"""evmone-bench on stock evmone and on evmalloc: the report.

  report.py cases BENCHMARKS_DIR CASES_FILE
      writes one line per benchmark input ("main/blake2b_huff/empty CODE_HEX INPUT_HEX") for
      alloc_count, from evm-benchmarks' state-test files.
  report.py report OUT_DIR ROUNDS_DIR ALLOCS_DIR
      reads ROUNDS_DIR/<variant>-<round>.json (Google Benchmark JSON) and
      ALLOCS_DIR/allocs-<variant>.jsonl and allocs-<variant>-advanced.jsonl (alloc_count, baseline
      and advanced) for the variants stock, evmalloc and evmalloc-perframe, and
      OUT_DIR/instructions.json (bench/instructions.py) if there;
      writes OUT_DIR/{report.md,results.json,chart.png}.

Times are Google Benchmark's CPU time per iteration (on a shared machine the wall time also
counts the time the process waited for the core). Ratio = stock time / evmalloc time, per
round (the variants ran back to back, pinned to one core);
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


VARIANTS = ("stock", "evmalloc", "evmalloc-perframe")


def load_rounds(rounds_dir):
    times = {v: {} for v in VARIANTS}
    units = {}
    for variant in VARIANTS:
        for f in sorted(pathlib.Path(rounds_dir).glob(f"{variant}-[0-9]*.json")):
            for b in json.load(open(f))["benchmarks"]:
                if b.get("run_type", "iteration") != "iteration" or "error_occurred" in b:
                    continue
                times[variant].setdefault(b["name"], []).append(b["cpu_time"])
                units[b["name"]] = b["time_unit"]
    return times, units


def load_allocs(path):
    out = {}
    if not pathlib.Path(path).exists():
        return out
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            r = json.loads(line)
            out[r["name"]] = r
    return out


def kind_of(name):
    # <interpreter>/<kind>/<group>/<bench>[/<input>]; interpreter: baseline or advanced
    parts = name.split("/")
    return parts[1] if len(parts) > 1 else ""


def interpreter_of(name):
    return name.split("/")[0]


INTERPRETERS = ("baseline", "advanced")


def ratio_stats(s, e):
    k = min(len(s), len(e))
    ratios = [s[i] / e[i] for i in range(k)]
    return {"ratio": statistics.median(ratios), "min": min(ratios), "max": max(ratios), "rounds": k}


# --- instructions per iteration (callgrind, bench/instructions.py) --------------------------------
def instructions_section(out, rows):
    """The instruction counts beside the times: a table per kind, rows more than 2% behind
    stock marked."""
    path = pathlib.Path(out) / "instructions.json"
    if not path.exists():
        return []
    ir = json.load(open(path))
    stock, shared, perframe = ir.get("stock", {}), ir.get("evmalloc", {}), ir.get("evmalloc-perframe", {})
    times = {r["name"]: r for r in rows}
    md = ["## Instructions per iteration (callgrind)", "",
          "bench/instructions.py: evmone-bench under callgrind with 1 and 1 + k iterations, the "
          "difference over k (k iterations >= 20 M instructions). Ratio = stock instructions / "
          "evmalloc instructions (above 1: evmalloc executes fewer); **behind** marks a row where "
          "evmalloc executes more than 2% more. The time ratio of the same row is beside it.", ""]
    for interp, kind in ((i, k) for i in INTERPRETERS for k in ("execute", "total")):
        names = [n for n in stock if kind_of(n) == kind and interpreter_of(n) == interp and n in shared]
        if not names:
            continue
        md.append(f"### {interp}/{kind}")
        md.append("")
        md.append("| benchmark | Ir stock | Ir shared | Ir ratio | Ir per-frame | Ir ratio | time ratio |")
        md.append("|---|---:|---:|---:|---:|---:|---:|")
        ratios = []
        for n in names:
            r = stock[n] / shared[n]
            ratios.append(r)
            pf = f"{perframe[n]:,.0f} | {stock[n] / perframe[n]:.4f}" if n in perframe else " | "
            t = times.get(n, {}).get("shared", {}).get("ratio")
            flag = " **behind**" if shared[n] > 1.02 * stock[n] else ""
            md.append(f"| {'/'.join(n.split('/')[2:])} | {stock[n]:,.0f} | {shared[n]:,.0f} | "
                      f"{r:.4f}{flag} | {pf} | {f'{t:.3f}' if t else ''} |")
        md.append(f"| geometric mean | | | {statistics.geometric_mean(ratios):.4f} | | | |")
        md.append("")
    return md


def allocation_section(interp, allocs):
    """The alloc_count table of one interpreter."""
    md = []
    sa, ea, pa = allocs["stock"], allocs["evmalloc"], allocs["evmalloc-perframe"]
    if sa and ea:
        md.append(f"## Heap allocations and page faults per call ({interp})")
        md.append("")
        md.append("Counted by alloc_count (ours: replaced malloc family and operator new, linked with "
                  "each evmone library; EVMC calls on a host that never allocates). steady = per call "
                  "after warm-up; output = of those, mallocs of exactly the output's size (stock: "
                  "evmc_make_result's copy of the output; evmalloc puts it in a pooled buffer); "
                  "first = the first call of a new VM; new depth = one call at a depth not used "
                  "before; faults = minor page faults per call, steady. The boundary/ cases: a "
                  "caller CALLs a callee returning n bytes, the host running it through the same VM "
                  "(two executions per call, both counted in steady); copies = memcpy/memmove calls "
                  "of exactly n bytes per call: the return data's copies (callee RETURN into its "
                  "result, into the caller's return data, into the caller's output area, the "
                  "caller's RETURN into its result).")
        md.append("")
        md.append("| case | steady stock | steady shared | steady per-frame | output stock / shared | first stock "
                  "| first shared | new depth stock | new depth shared | faults stock | faults shared "
                  "| copies stock / shared | same gas |")
        md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for n, s in sa.items():
            e, p = ea.get(n), pa.get(n)
            if e is None:
                continue
            same = all(x is None or (x["gas_used"] == s["gas_used"] and x["status"] == s["status"])
                       for x in (e, p))
            pf = f"{p['steady']:.2f}" if p else ""
            copies = (f"{s['output_copies']:.2f} / {e['output_copies']:.2f}"
                      if "output_copies" in s and "output_copies" in e else "")
            md.append(f"| {n} | {s['steady']:.2f} | {e['steady']:.2f} | {pf} | "
                      f"{s['output_allocs']:.2f} / {e['output_allocs']:.2f} "
                      f"| {s['first_call']} | {e['first_call']} | {s['new_depth']} | {e['new_depth']} "
                      f"| {s['minflt']:.2f} | {e['minflt']:.2f} | {copies} | {'yes' if same else 'NO'} |")
        md.append("")
    if interp == "advanced":
        parts = [r for r in ea.values() if "part_bytes" in r]
        if parts:
            md.append("Bytes per code byte of an advanced analysis: evmalloc's code part (the "
                      "instructions, push values, jumpdest map and padded code; built once per code "
                      "and revision, shared) against what stock evmone's analysis reserves on every "
                      "call (16-byte instructions for n + 2, 32-byte push values for n + 1; its two "
                      "jumpdest vectors grow on top).")
            md.append("")
            md.append("| case | code bytes | evmalloc part | per code byte | stock reserve | per code byte |")
            md.append("|---|---:|---:|---:|---:|---:|")
            for r in parts:
                n = r["code_size"]
                md.append(f"| {r['name']} | {n} | {r['part_bytes']} | {r['part_bytes'] / n:.1f} | "
                          f"{r['stock_reserve']} | {r['stock_reserve'] / n:.1f} |")
            md.append("")
    return md


def make_report(out_dir, rounds_dir, allocs_dir):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    times, units = load_rounds(rounds_dir)
    rows = []
    for n in times["stock"]:
        if n not in times["evmalloc"]:
            continue
        row = {"name": n, "kind": kind_of(n), "unit": units[n]}
        for v in VARIANTS:
            if n in times[v]:
                row[v] = statistics.median(times[v][n])
        row["shared"] = ratio_stats(times["stock"][n], times["evmalloc"][n])
        if n in times["evmalloc-perframe"]:
            row["perframe"] = ratio_stats(times["stock"][n], times["evmalloc-perframe"][n])
        rows.append(row)
    analyse = [r for r in rows if r["kind"] == "analyse"]
    noise = None
    if analyse:
        noise = {"min": min(r["shared"]["min"] for r in analyse),
                 "max": max(r["shared"]["max"] for r in analyse)}
    allocs = {v: load_allocs(pathlib.Path(allocs_dir) / f"allocs-{v}.jsonl") for v in VARIANTS}
    allocs_advanced = {v: load_allocs(pathlib.Path(allocs_dir) / f"allocs-{v}-advanced.jsonl")
                       for v in VARIANTS}

    results = {"benchmarks": rows, "noise_floor_from_analyse_rows": noise, "allocations": allocs,
               "allocations_advanced": allocs_advanced}
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")

    rounds = max((r["shared"]["rounds"] for r in rows), default=0)
    md = ["# evmone on evmalloc: evmone-bench, stock / evmalloc", ""]
    md.append(f"{rounds} rounds; in each, the three builds run back to back (order rotating), "
              "pinned to one core; times are CPU time per iteration. **shared**: evmone on evmalloc as shipped (jumpdest frames, "
              "analyses shared by the verified key); **per-frame**: the same binary with "
              "EVMONE_EVMALLOC_CACHE=0 (every call copies and analyses its code into its frame). "
              "Ratio = stock time / evmalloc time, median over rounds, min..max in brackets; "
              "above 1: evmalloc faster.")
    md.append("")
    if noise:
        md.append(f"Noise floor: the `analyse` rows run evmone's own analysis, the same code in "
                  f"both builds; their per-round ratios span {noise['min']:.3f}..{noise['max']:.3f}.")
        md.append("")
    titles = (("total", "total: through EVMC, per call (stock analyses every call)"),
              ("execute", "execute: code analysed beforehand by evmone; evmalloc gives the stack "
               "and memory (baseline: a frame per call; advanced: the state's own, as stock)"),
              ("analyse", "analyse: evmone's own analysis in both builds (the noise floor)"))
    for interp in INTERPRETERS:
        for kind, title in titles:
            sel = [r for r in rows if r["kind"] == kind and interpreter_of(r["name"]) == interp]
            if not sel:
                continue
            md.append(f"## {interp}/{title}")
            md.append("")
            md.append("| benchmark | stock | shared | ratio [spread] | per-frame | ratio [spread] |")
            md.append("|---|---:|---:|---|---:|---|")
            for r in sel:
                short = "/".join(r["name"].split("/")[2:])
                sh, pf = r["shared"], r.get("perframe")
                pf_cells = (f"{r['evmalloc-perframe']:.3f} | {pf['ratio']:.3f} [{pf['min']:.3f}..{pf['max']:.3f}]"
                            if pf else " | ")
                md.append(f"| {short} | {r['stock']:.3f} {r['unit']} | {r['evmalloc']:.3f} | "
                          f"{sh['ratio']:.3f} [{sh['min']:.3f}..{sh['max']:.3f}] | {pf_cells} |")
            gm = statistics.geometric_mean([r["shared"]["ratio"] for r in sel])
            pfs = [r["perframe"]["ratio"] for r in sel if "perframe" in r]
            gm_pf = f"{statistics.geometric_mean(pfs):.3f}" if pfs else ""
            md.append(f"| geometric mean | | | {gm:.3f} | | {gm_pf} |")
            md.append("")
    for interp, a in (("baseline", allocs), ("advanced", allocs_advanced)):
        md += allocation_section(interp, a)
    md += instructions_section(out, rows)
    md.append("![stock / evmalloc](chart.png)")
    (out / "report.md").write_text("\n".join(md) + "\n")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: matplotlib missing, no chart", file=sys.stderr)
        return
    order = {"total": 0, "execute": 1, "analyse": 2}
    sel = sorted((r for r in rows if r["kind"] in order), key=lambda r: (order[r["kind"]], r["name"]))
    fig, ax = plt.subplots(figsize=(10, max(3, 0.26 * len(sel) + 1.5)))
    h = 0.4
    for j, (key, label, color) in enumerate((("shared", "evmalloc (shared analyses)", "tab:blue"),
                                             ("perframe", "evmalloc (per-frame analysis)", "tab:orange"))):
        pts = [(i, r[key]) for i, r in enumerate(sel) if key in r]
        if not pts:
            continue
        ys = [i + (j - 0.5) * h for i, _ in pts]
        ax.barh(ys, [st["ratio"] - 1 for _, st in pts], height=h, left=1, color=color, label=label,
                xerr=[[st["ratio"] - st["min"] for _, st in pts], [st["max"] - st["ratio"] for _, st in pts]],
                capsize=1.5, error_kw={"linewidth": 0.6})
    ax.set_yticks(range(len(sel)))
    ax.set_yticklabels([r["name"] for r in sel], fontsize=6)
    ax.axvline(1, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.legend(fontsize=7, loc="lower right")
    ax.set_xlabel("stock time / evmalloc time (above 1: evmalloc faster); whiskers: min..max over rounds")
    ax.set_title("evmone-bench: evmone 2cbfad3 on evmalloc vs stock")
    fig.tight_layout()
    fig.savefig(out / "chart.png", dpi=130)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "cases":
        write_cases(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        make_report(*sys.argv[2:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
