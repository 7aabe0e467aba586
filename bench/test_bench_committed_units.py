"""Benders with committed generators against the monolithic solve, in one
run (ratios and certified counts, not timed assertions).

    python -m pytest bench/test_bench_committed_units.py --benchmark-only

The three plain sweep seeds where Benders stopped short while its master
left the commitment to the site LPs (``scripts/random_sweep.py`` seeds
1103, 1112 and 1124: 2-5 sites, 12-24 periods, 1-4 committed sites),
1 rank, 1 HiGHS thread, gap 1e-4, CARBONSCHED_BENCH_LIMIT seconds each
(default 60). extra_info holds each method's wall seconds, gap, bound
against the optimum and whether it certified the gap, and Benders'
integer-phase iterations; docs/performance.md has the figures.
"""

import os
import time

import pytest

from carbonsched import SolveOptions, solve
from carbonsched.generate import generate
from carbonsched.instance import parse_instance

from helpers import load_script

LIMIT = float(os.environ.get("CARBONSCHED_BENCH_LIMIT", 60))


@pytest.mark.parametrize("seed", [1103, 1112, 1124])
def test_benders_with_committed_units_against_the_monolithic_solve(benchmark, seed):
    inst = parse_instance(generate(load_script("random_sweep").draw_config(seed)))
    assert inst.committed.any()

    def every():
        out = {}
        for method in ("monolithic", "benders", "lagrangian"):
            t = time.perf_counter()
            res = solve(inst, method, SolveOptions(gap=1e-4, time_limit=LIMIT, threads=1))
            out[method] = (time.perf_counter() - t, res)
        return out

    out = benchmark.pedantic(every, rounds=1, iterations=1)
    mono_wall, mono = out["monolithic"]
    lo, hi = mono.objective, mono.bound  # the optimum lies in [lo, hi]
    tol = 1e-6 * abs(lo)
    for method, (wall, res) in out.items():
        assert res.check.ok, (method, res.check.violations)
        assert res.bound >= lo - tol and res.objective <= hi + tol, method
        benchmark.extra_info[method] = {"wall_s": wall, "gap": res.gap, "certified": res.gap <= 1e-4,
                                        "bound_over_monolithic_objective": (res.bound - lo) / abs(lo),
                                        "over_monolithic_wall": wall / mono_wall}
    benchmark.extra_info["committed_sites"] = int(inst.committed.sum())
    benchmark.extra_info["benders_integer_iterations"] = out["benders"][1].solution.stats["iterations_mip"]
