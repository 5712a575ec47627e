#!/usr/bin/env python3
"""evmone-blocks on stock evmone and on evmalloc: the block report.

  report.py OUT_DIR ROUNDS_DIR [CALLGRIND_DIR]
      reads ROUNDS_DIR/<variant>-<round>.jsonl (evmone-blocks output; variants stock,
      evmalloc, evmalloc-perframe and stock-again, the same stock binary run again: the noise
      floor) and CALLGRIND_DIR/<variant>.<pid>.<n> (callgrind dumps of evmone-blocks
      --callgrind, one per block); writes OUT_DIR/{blocks.md,blocks.json,blocks.png} and prints
      one line per block. Exits 1 when a state root or receipts root differs between builds or
      a block's own checks failed.
  report.py check JSONL...
      the same root comparison over evmone-blocks outputs of one round (CI): prints one line per
      block, exits 1 on a difference or a failed check.

Times are CPU time of the timed loop (validate, transition, apply the diff of every
transaction), in ms: per round the median over the process's repetitions, then the median over
rounds with min..max. Ratio = stock time / evmalloc time per round (the variants of a round run
back to back on one core), median [min..max]; above 1: evmalloc faster. stock-again / stock is
the noise floor: the same binary, the same work.
"""
import json
import pathlib
import re
import statistics
import sys

VARIANTS = ("stock", "evmalloc", "evmalloc-perframe", "stock-again")
LABELS = {"stock": "stock", "evmalloc": "evmalloc", "evmalloc-perframe": "per-frame",
          "stock-again": "stock again"}


def read_jsonl(path):
    out = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def compare_roots(runs):
    """runs: {variant: [record]} -> {block: (equal, ok, detail)}"""
    roots = {}
    ok = {}
    for variant, records in runs.items():
        for r in records:
            key = (r["block"], r["seed"])
            roots.setdefault(key, {})[variant] = (r["state_root"], r["receipts_root"])
            ok[r["block"]] = ok.get(r["block"], True) and r["ok"]
    result = {}
    for (block, seed), by_variant in roots.items():
        equal = len(set(by_variant.values())) == 1
        prev = result.get(block, (True, ok.get(block, True), ""))
        detail = prev[2]
        if not equal and not detail:
            detail = f"seed {seed}: " + ", ".join(
                f"{v} {s[:18]}" for v, (s, _) in sorted(by_variant.items()))
        result[block] = (prev[0] and equal, ok.get(block, True), detail)
    return result


def root_line(equal, ok, detail):
    if not ok:
        return "CHECKS FAILED"
    return "state root equal" if equal else f"STATE ROOT DIFFERS ({detail})"


def check(paths):
    runs = {}
    for p in paths:
        name = pathlib.Path(p).stem
        runs[name] = read_jsonl(p)
    cmp = compare_roots(runs)
    rc = 0
    for block in dict.fromkeys(r["block"] for records in runs.values() for r in records):
        equal, ok, detail = cmp[block]
        print(f"block {block}: {', '.join(sorted(runs))}: {root_line(equal, ok, detail)}")
        if not (equal and ok):
            rc = 1
    return rc


def load_callgrind(cg_dir):
    """{variant: {block: instructions}} from callgrind dumps named <variant>.<pid>.<n>."""
    out = {}
    if cg_dir is None or not pathlib.Path(cg_dir).is_dir():
        return out
    for f in sorted(pathlib.Path(cg_dir).iterdir()):
        m = re.match(r"(.+)\.\d+\.\d+$", f.name)
        if not m:
            continue
        text = f.read_text(errors="replace")
        block = re.search(r"^desc: Trigger: Client Request: (.+)$", text, re.M)
        totals = re.search(r"^totals: (\d+)", text, re.M)
        if block and totals:
            out.setdefault(m.group(1), {})[block.group(1).strip()] = int(totals.group(1))
    return out


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def make_report(out_dir, rounds_dir, cg_dir):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # per_round[variant][round][block] = median cpu ms over the repetitions of that process
    per_round = {v: {} for v in VARIANTS}
    runs = {v: [] for v in VARIANTS}
    sizes = {}
    for f in sorted(pathlib.Path(rounds_dir).glob("*.jsonl")):
        m = re.match(r"(.+)-(\d+)$", f.stem)
        if not m or m.group(1) not in VARIANTS:
            continue
        variant, rnd = m.group(1), int(m.group(2))
        records = read_jsonl(f)
        runs[variant] += records
        by_block = {}
        for r in records:
            by_block.setdefault(r["block"], []).append(r["cpu_ms"])
            if variant == "stock":
                sizes.setdefault(r["block"], r)
        per_round[variant][rnd] = {b: statistics.median(t) for b, t in by_block.items()}
    cmp = compare_roots({v: r for v, r in runs.items() if r})
    instructions = load_callgrind(cg_dir)
    blocks = list(dict.fromkeys(r["block"] for r in runs["stock"]))

    rows = []
    for b in blocks:
        row = {"block": b, "size": {k: sizes[b][k] for k in (
            "size", "txs", "gas_used", "vm_calls", "distinct_codes", "code_bytes", "what")}}
        for v in VARIANTS:
            times = [per_round[v][k][b] for k in sorted(per_round[v]) if b in per_round[v][k]]
            if times:
                row[v] = spread(times)
        for v, key in (("evmalloc", "ratio"), ("evmalloc-perframe", "ratio_perframe"),
                       ("stock-again", "noise")):
            ratios = [per_round["stock"][k][b] / per_round[v][k][b]
                      for k in sorted(per_round["stock"])
                      if k in per_round[v] and b in per_round[v][k] and b in per_round["stock"][k]]
            if ratios:
                row[key] = spread(ratios)
        row["instructions"] = {v: instructions[v][b] for v in instructions if b in instructions[v]}
        equal, ok, detail = cmp.get(b, (False, False, "not run"))
        row["roots_equal"], row["checks_ok"], row["roots_detail"] = equal, ok, detail
        rows.append(row)

    (out / "blocks.json").write_text(json.dumps({"blocks": rows}, indent=1) + "\n")

    rounds = max((r["stock"]["n"] for r in rows if "stock" in r), default=0)
    reps = max((sum(1 for x in runs["stock"] if x["block"] == b) for b in blocks), default=0)
    md = ["# evmone on evmalloc: whole blocks through evmone's state transition", ""]
    md.append(f"{rounds} rounds; in each, the variants run back to back (order rotating), pinned "
              f"to one core, each a process executing every block ({reps // max(rounds, 1)} "
              "measured repetitions each, new seeds, after a warm-up one). Times: CPU ms of the "
              "timed loop (validate, transition, apply the state diff; the pre-state is built in "
              "memory before, the roots computed after), median over rounds of each round's "
              "median, min..max in brackets. Ratio: stock / evmalloc per round, median "
              "[min..max]; above 1 evmalloc is faster. **evmalloc**: shared analyses (the "
              "default); **per-frame**: the same binary with EVMONE_EVMALLOC_CACHE=0; "
              "**noise**: stock / stock again (the same binary and work). Instructions: "
              "callgrind, the timed loop of one repetition.")
    md.append("")
    md.append("| block | stock ms | evmalloc ms | ratio | per-frame ms | ratio | noise | "
              "Ir stock | Ir evmalloc | Ir per-frame | roots |")
    md.append("|---|---:|---:|---|---:|---|---|---:|---:|---:|---|")

    def cell(s):
        return f"{s['median']:.2f} [{s['min']:.2f}..{s['max']:.2f}]" if s else ""

    def ratio(s):
        return f"{s['median']:.2f}x [{s['min']:.2f}..{s['max']:.2f}]" if s else ""

    def ir(row, v):
        n = row["instructions"].get(v)
        return f"{n / 1e6:.1f} M" if n else ""

    for r in rows:
        md.append(f"| {r['block']} | {cell(r.get('stock'))} | {cell(r.get('evmalloc'))} | "
                  f"{ratio(r.get('ratio'))} | {cell(r.get('evmalloc-perframe'))} | "
                  f"{ratio(r.get('ratio_perframe'))} | {ratio(r.get('noise'))} | "
                  f"{ir(r, 'stock')} | {ir(r, 'evmalloc')} | {ir(r, 'evmalloc-perframe')} | "
                  f"{root_line(r['roots_equal'], r['checks_ok'], r['roots_detail'])} |")
    md.append("")
    md.append("## The blocks")
    md.append("")
    md.append("| block | size | transactions | gas used | EVM calls | distinct codes | code "
              "bytes executed |")
    md.append("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        z = r["size"]
        md.append(f"| {r['block']} | {z['what']} | {z['txs']} | {z['gas_used']:,} | "
                  f"{z['vm_calls']:,} | {z['distinct_codes']:,} | {z['code_bytes']:,} |")
    md.append("")
    md.append("![stock / evmalloc per block](blocks.png)")
    (out / "blocks.md").write_text("\n".join(md) + "\n")

    rc = 0
    for r in rows:
        s, e, p = r.get("stock"), r.get("evmalloc"), r.get("evmalloc-perframe")
        line = (f"block {r['block']}: stock {s['median']:.2f} ms, evmalloc {e['median']:.2f} ms, "
                f"{r['ratio']['median']:.2f}x, per-frame {p['median']:.2f} ms, "
                f"{root_line(r['roots_equal'], r['checks_ok'], r['roots_detail'])}")
        print(line)
        if not (r["roots_equal"] and r["checks_ok"]):
            rc = 1
    chart(out, rows)
    return rc


def chart(out, rows):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: matplotlib missing, no chart", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(rows) + 1.6))
    h = 0.27
    series = (("ratio", "evmalloc (shared analyses)", "tab:blue"),
              ("ratio_perframe", "evmalloc (per-frame analysis)", "tab:orange"),
              ("noise", "stock again (noise floor)", "tab:gray"))
    for j, (key, label, color) in enumerate(series):
        pts = [(i, r[key]) for i, r in enumerate(rows) if key in r]
        if not pts:
            continue
        ys = [i + (j - 1) * h for i, _ in pts]
        ax.barh(ys, [s["median"] - 1 for _, s in pts], height=h, left=1, color=color,
                label=label, xerr=[[s["median"] - s["min"] for _, s in pts],
                                   [s["max"] - s["median"] for _, s in pts]],
                capsize=2, error_kw={"linewidth": 0.7})
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r["block"] for r in rows])
    ax.axvline(1, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.legend(fontsize=7, loc="lower right")
    ax.set_xlabel("stock time / evmalloc time (above 1: evmalloc faster); whiskers: min..max")
    ax.set_title("evmone-blocks: evmone 2cbfad3 on evmalloc vs stock, whole blocks")
    fig.tight_layout()
    fig.savefig(out / "blocks.png", dpi=130)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2:]))
    elif len(sys.argv) in (3, 4):
        sys.exit(make_report(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else None))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
