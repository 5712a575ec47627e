#!/usr/bin/env python3
"""Instructions per iteration of evmone-bench rows, counted by callgrind.

  instructions.py OUT_JSON BENCHMARKS_DIR FILTER VARIANT=BENCH_BINARY[:ENV=VALUE]...

For each variant and each benchmark matching FILTER, runs evmone-bench under
valgrind --tool=callgrind twice, with 1 iteration and with 1 + k iterations, and writes
(Ir(1 + k) - Ir(1)) / k: the instructions of one iteration, whatever evmone-bench does once
(loading the benchmark files, registering, the test run). k is chosen so that the k
iterations take at least 20 million instructions (callgrind's totals move by a few hundred
instructions from run to run). evmone-bench re-executes itself without ASLR at start-up, so
valgrind follows children. Writes {"variant": {"benchmark": instructions}}.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

MIN_INSTRUCTIONS = 20_000_000


def collected(cmd, env):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg.%p")
        r = subprocess.run(["valgrind", "--tool=callgrind", "--trace-children=yes",
                            f"--callgrind-out-file={out}"] + cmd,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
        counts = [int(m.replace(",", "")) for m in re.findall(r"Collected : ([\d,]+)", r.stderr)]
        if not counts:
            raise RuntimeError(f"no callgrind totals from {' '.join(cmd)}")
        return counts[-1]


def per_iteration(binary, env, benchmarks, name):
    base = [binary, benchmarks, f"--benchmark_filter=^{re.escape(name)}$"]
    one = collected(base + ["--benchmark_min_time=1x"], env)
    k = 2
    while True:
        more = collected(base + [f"--benchmark_min_time={1 + k}x"], env)
        per = (more - one) / k
        if per * k >= MIN_INSTRUCTIONS or per <= 0:
            return per
        k = min(100_000, int(MIN_INSTRUCTIONS / max(per, 1)) + 1)


def main():
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    out_json, benchmarks, pattern = sys.argv[1:4]
    variants = []
    for spec in sys.argv[4:]:
        name, rest = spec.split("=", 1)
        binary, _, envspec = rest.partition(":")
        env = dict(os.environ)
        if envspec:
            k, v = envspec.split("=", 1)
            env[k] = v
        variants.append((name, binary, env))
    listed = subprocess.run([variants[0][1], benchmarks, "--benchmark_list_tests"], check=True,
                            stdout=subprocess.PIPE, text=True).stdout.split()
    rows = [n for n in listed if re.search(pattern, n)]
    result = {name: {} for name, _, _ in variants}
    for row in rows:
        for name, binary, env in variants:
            result[name][row] = per_iteration(binary, env, benchmarks, row)
        print(f"{row}: " + ", ".join(f"{n} {result[n][row]:.0f}" for n, _, _ in variants),
              file=sys.stderr)
    with open(out_json, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
