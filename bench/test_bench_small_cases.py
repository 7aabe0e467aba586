"""The small cases against the monolithic solve, and the two shortcuts
that act there, each on and off in one run (ratios, not timed assertions).

    python -m pytest bench/test_bench_small_cases.py --benchmark-only

On the six decomposition test cases, on a generated budget-binding
instance (CARBONSCHED_BENCH_SITES x 168 h x CARBONSCHED_BENCH_JOBS jobs,
budget 70% of the estimate; defaults 4 and 16) and on the shipped `small`
(5 x 48 h, 20 jobs; HiGHS needs tens of seconds for 1e-4 there): wall seconds to a 1e-4 gap
(or CARBONSCHED_BENCH_LIMIT seconds, default 60), 1 rank, 1 HiGHS thread,
for the monolithic solve, the Lagrangian with and without its early exact
endgame (``early_endgame``), Benders with and without its exact endgame
(``exact_endgame``), and, without the endgame, with and without its
fixed-schedule LP iterations (``refine``). extra_info holds every run and
the ratios against the monolithic solve and between on and off.
"""

import os
import time

import pytest

from carbonsched import SolveOptions, solve
from carbonsched.instance import load_instance

from cases import CASES, generated_budget_binding

LIMIT = float(os.environ.get("CARBONSCHED_BENCH_LIMIT", 60))


def _budget_binding():
    return generated_budget_binding(int(os.environ.get("CARBONSCHED_BENCH_SITES", 4)),
                                    int(os.environ.get("CARBONSCHED_BENCH_JOBS", 16)))


INSTANCES = {**CASES, "generated_budget_70pct": _budget_binding, "shipped_small": lambda: load_instance("small")}
RUNS = {"monolithic": ("monolithic", {}), "lagrangian": ("lagrangian", {}),
        "lagrangian_no_early_endgame": ("lagrangian", {"early_endgame": False}),
        "benders": ("benders", {}), "benders_no_exact_endgame": ("benders", {"exact_endgame": False}),
        "benders_no_exact_endgame_no_refine": ("benders", {"exact_endgame": False, "refine": False})}


@pytest.mark.parametrize("name", list(INSTANCES))
def test_small_case_against_the_monolithic_solve(benchmark, name):
    inst = INSTANCES[name]()

    def every():
        out = {}
        for key, (method, kw) in RUNS.items():
            t = time.perf_counter()
            res = solve(inst, method, SolveOptions(gap=1e-4, time_limit=LIMIT, threads=1), **kw)
            out[key] = (time.perf_counter() - t, res)
        return out

    out = benchmark.pedantic(every, rounds=1, iterations=1)
    mono_wall, mono = out["monolithic"]
    for key, (wall, res) in out.items():
        assert res.check.ok, (key, res.check.violations)
        benchmark.extra_info[key] = {"wall_s": wall, "gap": res.gap, "objective": res.objective,
                                     "bound": res.bound, "over_monolithic_wall": wall / mono_wall}
    benchmark.extra_info["early_endgame_speedup"] = out["lagrangian_no_early_endgame"][0] / out["lagrangian"][0]
    benchmark.extra_info["exact_endgame_speedup"] = out["benders_no_exact_endgame"][0] / out["benders"][0]
    benchmark.extra_info["refine_speedup"] = (out["benders_no_exact_endgame_no_refine"][0]
                                              / out["benders_no_exact_endgame"][0])
