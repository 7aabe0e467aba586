"""Time-to-gap comparison of monolithic, Benders and Lagrangian on one
instance, same HiGHS threads, each capped at --time-limit seconds.

    python scripts/compare_methods.py medium --time-limit 300 --threads 1 --out compare-medium

Writes <out>.json (each method's trace: time, bound, incumbent) and
<out>.png (incumbent and bound over time), and prints a table with the
time each method first reached 5%, 2% and 1% gap.
"""

from __future__ import annotations

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from carbonsched import SolveOptions, solve
from carbonsched.instance import load_instance


def first_time_below(trace, g):
    for row in trace:
        b, i = row.get("bound"), row.get("incumbent")
        if b is not None and i is not None and (b - i) / max(1.0, abs(i)) <= g:
            return row["t"]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("instance")
    ap.add_argument("--time-limit", type=float, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gap", type=float, default=0.01)
    ap.add_argument("--methods", default="monolithic,benders,lagrangian")
    ap.add_argument("--out", default="compare")
    a = ap.parse_args()
    inst = load_instance(a.instance)
    out = {}
    for m in a.methods.split(","):
        res = solve(inst, m, SolveOptions(gap=a.gap, time_limit=a.time_limit, threads=a.threads))
        trace = res.solution.stats.get("trace") or [
            {"t": res.timings.get("total_s"), "bound": res.bound, "incumbent": res.objective}]
        out[m] = {"status": res.status, "objective": res.objective, "bound": res.bound, "gap": res.gap,
                  "wall_s": res.timings.get("total_s"), "check_ok": bool(res.check and res.check.ok),
                  "trace": [{k: r.get(k) for k in ("t", "bound", "incumbent")} for r in trace]}
    with open(f"{a.out}.json", "w") as fh:
        json.dump(out, fh, indent=1)
    print("| method | status | objective | bound | gap | wall (s) | t(5%) | t(2%) | t(1%) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m, r in out.items():
        ts = [first_time_below(r["trace"], g) for g in (0.05, 0.02, 0.01)]
        f = lambda v: "-" if v is None else f"{v:.1f}"
        print(f"| {m} | {r['status']} | {r['objective'] or float('nan'):,.0f} | {r['bound'] or float('nan'):,.0f} | "
              f"{(r['gap'] or float('nan')):.2%} | {r['wall_s']:.1f} | {f(ts[0])} | {f(ts[1])} | {f(ts[2])} |")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for m, r in out.items():
        t = [x["t"] for x in r["trace"]]
        ax.plot(t, [x["incumbent"] for x in r["trace"]], label=f"{m} incumbent")
        ax.plot(t, [x["bound"] for x in r["trace"]], ls="--", label=f"{m} bound")
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("operational benefit ($)")
    ax.set_title(f"{inst.name}: bound and incumbent over time ({a.threads} HiGHS thread(s))")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{a.out}.png", dpi=110)
    print(f"written {a.out}.json, {a.out}.png")


if __name__ == "__main__":
    main()
