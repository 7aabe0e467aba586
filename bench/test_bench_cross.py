"""Cross-decomposition: Benders seeded with Lagrangian price cuts, against
plain Benders, in one run (ratios, not timed assertions).

    python -m pytest bench/test_bench_cross.py --benchmark-only

On the six decomposition test cases (budget binding or not, no battery,
committed generator, forced feasibility cuts, half-hour periods) and on a
generated budget-binding instance (CARBONSCHED_BENCH_SITES x 168 h x
CARBONSCHED_BENCH_JOBS jobs, budget 70% of the estimate; defaults 4 and
16, sized for CI): wall time and Benders iterations to a 1e-4 gap (or
CARBONSCHED_BENCH_LIMIT seconds, default 60): plain (no seed), a seed of a
fixed 30 iterations (the default until the seed ended by its own rule) and
the default seed (to its time share, convergence or a stall). extra_info
holds the three runs and the ratios of their wall times.
"""

import os
import time

import pytest

from carbonsched import solve

from cases import CASES, generated_budget_binding

LIMIT = float(os.environ.get("CARBONSCHED_BENCH_LIMIT", 60))


def _budget_binding():
    return generated_budget_binding(int(os.environ.get("CARBONSCHED_BENCH_SITES", 4)),
                                    int(os.environ.get("CARBONSCHED_BENCH_JOBS", 16)))


INSTANCES = {**CASES, "generated_budget_70pct": _budget_binding}


@pytest.mark.parametrize("name", list(INSTANCES))
def test_seeded_vs_plain_benders(benchmark, name):
    inst = INSTANCES[name]()

    def both():
        out = {}
        for name, kw in (("plain", {"seed_lagrangian": 0}), ("seed30", {"seed_lagrangian": 30}),
                         ("default", {})):
            t = time.perf_counter()
            res = solve(inst, "benders", gap=1e-4, time_limit=LIMIT, **kw)
            out[name] = (time.perf_counter() - t, res)
        return out

    out = benchmark.pedantic(both, rounds=1, iterations=1)
    for way, (wall, res) in out.items():
        assert res.check.ok
        benchmark.extra_info[way] = {"wall_s": wall, "gap": res.gap, "objective": res.objective, "bound": res.bound,
                                     "iterations": res.solution.stats["iterations"],
                                     "seed_iterations": res.solution.stats.get("seed_iterations", 0)}
    benchmark.extra_info["plain_over_default_wall"] = out["plain"][0] / out["default"][0]
    benchmark.extra_info["seed30_over_default_wall"] = out["seed30"][0] / out["default"][0]
