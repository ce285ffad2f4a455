"""Shared pieces of the peer harness: problem data, timing, the printed statistic.

Every peer runs the problems of `sde-check bench` (see src/bench.rs) on the data written by
`cargo run --release --example bench_problems -- STEPS` and prints, per problem, wall and CPU
seconds of the timed run (compilation excluded), path-steps per second and per CPU-second, and
E‖X_T‖² with its 95 % interval. One JSON object per line is appended to --out.
"""
import argparse
import json
import math
import os
import sys
import time

PROBLEMS = ["usam_sde", "dnsam_sde", "sam_sde", "usam_discrete", "sgd_subsampling"]
SDE_PROBLEMS = PROBLEMS[:3]
NORM_EPS = 1e-12


def parse_args(tool, problems=PROBLEMS):
    p = argparse.ArgumentParser(description=f"{tool} peer of sde-check bench")
    p.add_argument("--data", required=True, help="JSON from the bench_problems example")
    p.add_argument("--problem", action="append", choices=problems)
    p.add_argument("--paths", type=int, default=10_000)
    p.add_argument("--steps", type=int, default=None, help="default: the data's steps")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--variant", default="", help="label suffix, e.g. prange")
    p.add_argument("--out", default=None, help="append JSON lines here")
    a = p.parse_args()
    with open(a.data) as f:
        a.data = json.load(f)
    if a.steps is None:
        a.steps = a.data["steps"]
    a.problems = a.problem or problems
    return a


def cpu_seconds():
    # User + system time of the process, every thread.
    t = os.times()
    return t.user + t.system


def timed(fn, *args):
    c0, w0 = cpu_seconds(), time.perf_counter()
    out = fn(*args)
    w1, c1 = time.perf_counter(), cpu_seconds()
    return out, w1 - w0, c1 - c0


def report(tool, a, problem, wall, cpu, norm_sq):
    """norm_sq: a sequence of ‖X_T‖² over the surviving paths (non-finite = diverged)."""
    vals = [float(v) for v in norm_sq]
    ok = [v for v in vals if math.isfinite(v)]
    n = len(ok)
    mean = sum(ok) / n
    var = sum((v - mean) ** 2 for v in ok) / (n - 1)
    se = math.sqrt(var / n)
    half = 1.959964 * se  # n ≥ 10⁴: the normal quantile is the t quantile to 4 digits
    steps = a.paths * a.steps
    exact = a.data["exact"].get(problem)
    row = {
        "tool": tool + (f" ({a.variant})" if a.variant else ""),
        "problem": problem,
        "threads": a.threads,
        "paths": a.paths,
        "steps": a.steps,
        "wall_s": wall,
        "cpu_s": cpu,
        "path_steps_per_s": steps / wall,
        "path_steps_per_cpu_s": steps / cpu,
        "mean": mean,
        "lo": mean - half,
        "hi": mean + half,
        "se": se,
        "exact": exact,
        "diverged": len(vals) - n,
    }
    ex = "—" if exact is None else f"{exact:.5f}"
    print(
        f"{row['tool']:<18} {problem:<16} thr {a.threads}  wall {wall:7.3f}  cpu {cpu:7.3f}  "
        f"{steps / wall / 1e6:7.3f}M/s  {steps / cpu / 1e6:7.3f}M/cpu-s  "
        f"E|X_T|^2 {mean:.5f} [{mean - half:.5f}, {mean + half:.5f}]  exact {ex}",
        flush=True,
    )
    if a.out:
        with open(a.out, "a") as f:
            f.write(json.dumps(row) + "\n")
    return row


def sam_table(data):
    """(dr, φ, a, c) on r = 0, dr, 2dr, …; peers interpolate linearly."""
    t = data["sam_table"]
    cols = list(zip(*t["r_phi_a_c"]))
    return t["dr"], cols[1], cols[2], cols[3]


def die(msg):
    print(msg, file=sys.stderr)
    sys.exit(2)
