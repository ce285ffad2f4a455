"""Turns `sde-check bench --json` into the harness's JSON lines (stdin → stdout)."""
import json
import sys

rep = json.load(sys.stdin)
c = rep["config"]
for r in rep["results"]:
    ci = r["norm_sq"]
    print(json.dumps({
        "tool": "sde-check",
        "problem": r["problem"],
        "threads": c["threads"],
        "paths": c["paths"],
        "steps": c["steps"],
        "wall_s": r["wall_s"],
        "cpu_s": r["cpu_s"],
        "path_steps_per_s": r["path_steps_per_s"],
        "path_steps_per_cpu_s": r["path_steps_per_cpu_s"],
        "mean": ci["mean"],
        "lo": ci["lo"],
        "hi": ci["hi"],
        "se": r["norm_sq_se"],
        "exact": r["exact"],
        "diverged": r["diverged"],
    }))
