"""The exact endgame's primal search (what the ranks beside rank 0 run,
:mod:`carbonsched.decomposition.endgame_search`) against the exact
endgame's MILP itself (what they ran before with ``--endgame-race``, and
what rank 0 runs), from the same start for the same seconds, in one run
(ratios, not timed assertions).

    python -m pytest bench/test_bench_endgame_search.py --benchmark-only -p no:xdist

The instance is the issue's budget-binding case: generated, 10 sites x
168 h x 60 jobs, seed 1, budget 70% of the unconstrained optimum's
emissions (``carbonsched generate --sites 10 --periods 168 --jobs 60
--seed 1 --budget-fraction 0.7 --budget-basis optimum``). The start is the
recovery from the first Lagrangian iteration's choice. Each way gets
CARBONSCHED_BENCH_SEARCH_S seconds (default 120), one HiGHS thread.
extra_info: each way's objective and seconds, and the ratio of the
objectives.
"""

import os
import time

import numpy as np
import pytest

from carbonsched.check import check_solution
from carbonsched.clock import Clock
from carbonsched.decomposition import endgame_search
from carbonsched.decomposition.recovery import PrimalRecovery
from carbonsched.generate import family_config, generate
from carbonsched.instance import parse_instance

from cases import lagrangian_choices


def test_endgame_search_vs_the_exact_milp(benchmark):
    inst = parse_instance(generate(family_config("small", sites=10, periods=168, jobs=60, seed=1, budget_fraction=0.7,
                                                 budget_basis="optimum")))
    assert inst.budget == pytest.approx(4588.785, rel=1e-6)  # the CLI's instance (its default family)
    seconds = float(os.environ.get("CARBONSCHED_BENCH_SEARCH_S", 120))
    pool, choices = lagrangian_choices(inst, 1)
    rec = PrimalRecovery(inst, pool, "lagrangian", Clock())
    start = rec.from_choice(*choices[0])
    assert start is not None
    start_x = rec.start_x(start)
    fx = rec.fixed
    nk = fx.x_cols.size

    def both():
        t = time.perf_counter()
        sol, milp_obj, bound = fx.solve_restricted(np.zeros(nk), np.ones(nk), start=start_x, time_limit=seconds,
                                                   gap=1e-4, threads=1, heuristic_effort=0.3)
        milp = (milp_obj, time.perf_counter() - t, bound, None if sol is None else fx.last_x.copy())
        t = time.perf_counter()
        found = endgame_search.search(fx, np.ones(nk), start_x, start.starts, start.objective, time_limit=seconds,
                                      seed=1, effort=0.3, stop=lambda: False)
        return milp, (found, time.perf_counter() - t)

    (milp_obj, milp_s, bound, milp_x), (found, search_s) = benchmark.pedantic(both, rounds=1, iterations=1)
    pool.close()
    search_obj = found.objective if found.x is not None else start.objective
    for x in (milp_x, found.x):
        if x is not None:
            rep = check_solution(inst, fx.solution_from(x, "bench"), check_reported=False)
            assert rep.ok, rep.violations
            assert rep.breakdown.objective <= bound + 1e-6 * abs(bound)
    benchmark.extra_info.update(start=start.objective, milp=milp_obj, milp_s=milp_s, milp_bound=bound,
                                search=search_obj, search_s=search_s, search_passes=found.passes,
                                search_over_milp=search_obj / milp_obj,
                                gap_to_milp_bound_milp=(bound - milp_obj) / milp_obj,
                                gap_to_milp_bound_search=(bound - search_obj) / search_obj)
