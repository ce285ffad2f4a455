"""Markdown table of a results file: medians over runs per (problem, tool, threads), the ratio
of sde-check's path-steps per CPU-second to the tool's, and E‖X_T‖² agreement.

`agrees` is |mean − mean_sde-check| ≤ 1.96 √(se² + se_sde-check²) (both estimates' 95 %
band on the difference); `exact in CI` says whether the exact value lies in the tool's CI.
"""
import json
import statistics
import sys
from collections import defaultdict

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
groups = defaultdict(list)
for r in rows:
    groups[(r["problem"], r["tool"], r["threads"])].append(r)
problems = ["usam_sde", "dnsam_sde", "sam_sde", "usam_discrete", "sgd_subsampling"]
med = lambda rs, k: statistics.median(x[k] for x in rs)  # noqa: E731
print("| problem | tool | threads | runs | median wall s | median CPU s | path-steps/s | "
      "path-steps/CPU-s | sde-check ÷ tool (CPU) | E‖X_T‖² [95% CI] | exact | agrees |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for p in problems:
    eng = {t: groups.get((p, "sde-check", t)) for t in (1, 2)}
    keys = sorted({k for k in groups if k[0] == p}, key=lambda k: (k[2], k[1] != "sde-check", k[1]))
    for (_, tool, thr) in keys:
        rs = groups[(p, tool, thr)]
        e = eng.get(thr)
        cpu_rate = med(rs, "path_steps_per_cpu_s")
        ratio = (med(e, "path_steps_per_cpu_s") / cpu_rate) if e else float("nan")
        r0 = rs[0]
        agree = "—"
        if e and tool != "sde-check":
            d = abs(r0["mean"] - e[0]["mean"])
            agree = "yes" if d <= 1.96 * (r0["se"] ** 2 + e[0]["se"] ** 2) ** 0.5 else "NO"
        ex = r0["exact"]
        exs = "—" if ex is None else (f"{ex:.5f} ({'in' if r0['lo'] <= ex <= r0['hi'] else 'OUT'})")
        print(f"| {p} | {tool} | {thr} | {len(rs)} | {med(rs, 'wall_s'):.3f} | {med(rs, 'cpu_s'):.3f} | "
              f"{med(rs, 'path_steps_per_s') / 1e6:.2f} M | {cpu_rate / 1e6:.2f} M | {ratio:.2f}× | "
              f"{r0['mean']:.5f} [{r0['lo']:.5f}, {r0['hi']:.5f}] | {exs} | {agree} |")

# Thread scaling of sde-check: median wall rate at 2 threads over the median at 1 thread.
scal = []
for p in problems:
    one, two = groups.get((p, "sde-check", 1)), groups.get((p, "sde-check", 2))
    if one and two:
        scal.append((p, med(one, "path_steps_per_s"), med(two, "path_steps_per_s")))
if scal:
    print()
    print("| problem | sde-check path-steps/s, 1 thread | 2 threads | 2 ÷ 1 |")
    print("|---|---|---|---|")
    for p, a, b in scal:
        print(f"| {p} | {a / 1e6:.2f} M | {b / 1e6:.2f} M | {b / a:.2f}× |")
