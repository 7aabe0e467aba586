"""The bundle master's cut limit: the same dual iterations with 30 cuts a
part (the default) and with 60, in one run (ratios, not timed assertions).

    python -m pytest bench/test_bench_bundle.py --benchmark-only

On CARBONSCHED_BENCH_INSTANCE (default ``medium``; a path or a shipped
name), CARBONSCHED_BENCH_ITERATIONS iterations each (default 160), 1 rank.
extra_info holds, per cut limit, the master LP's seconds and the least L
(an upper bound on the optimum: lower is better), and the ratios. The
master's rows are dense over all multipliers for the compute side's part,
so its time grows fast with the cuts kept.
"""

import os
import time

import numpy as np

from carbonsched.config import LagrangianOptions
from carbonsched.decomposition.lagrangian import evaluate_dual, setup_dual
from carbonsched.decomposition.pool import SubproblemPool
from carbonsched.instance import load_instance


def _iterate(inst, max_cuts: int, iterations: int) -> dict:
    lay, compute, update, u = setup_dual(inst, LagrangianOptions())
    update.max_cuts = max_cuts
    pool = SubproblemPool(inst, None)
    pool.calibrate()
    best, master_s, t0 = np.inf, 0.0, time.perf_counter()
    for _ in range(iterations):
        pt, _ = evaluate_dual(inst, lay, u, compute, pool)
        best = min(best, pt.L)
        t = time.perf_counter()
        u = update.step(pt)
        master_s += time.perf_counter() - t
    pool.close()
    return {"least_L": best, "master_s": master_s, "total_s": time.perf_counter() - t0}


def test_bundle_cut_limit_30_vs_60(benchmark):
    inst = load_instance(os.environ.get("CARBONSCHED_BENCH_INSTANCE", "medium"))
    n = int(os.environ.get("CARBONSCHED_BENCH_ITERATIONS", 160))

    def both():
        return {c: _iterate(inst, c, n) for c in (30, 60)}

    out = benchmark.pedantic(both, rounds=1, iterations=1)
    for c, r in out.items():
        assert np.isfinite(r["least_L"])
        benchmark.extra_info[f"cuts_{c}"] = r
    benchmark.extra_info["master_s_30_over_60"] = out[30]["master_s"] / out[60]["master_s"]
    benchmark.extra_info["least_L_30_over_60"] = out[30]["least_L"] / out[60]["least_L"]
