"""The site search from the site relaxation's job placements: after the
plain site search has ended locally optimal, does homing the jobs the
schedule leaves out where the relaxation's blocks put them gain more? One
run (gains and seconds, not timed assertions).

    python -m pytest bench/test_bench_picks_search.py --benchmark-only

On the generated budget-binding instance (CARBONSCHED_BENCH_SITES x 168 h x
CARBONSCHED_BENCH_JOBS jobs, budget 70% of the estimate; defaults 10 and
60), CARBONSCHED_BENCH_ITERATIONS bundle iterations (default 400), 1 rank.
Starting schedules: the recoveries of every 40th iteration's job choice
(the first 10 of them at most). From each, the plain search until a round
gains nothing, then one site relaxation round's picks at the least L's
multipliers (:func:`~carbonsched.decomposition.site_blocks.block_picks`).
extra_info holds, per start, the plain search's gain and the picks
search's gain on top of it with their seconds, and the mean gain of each.
"""

import os
import time

import numpy as np

from carbonsched.check import check_solution
from carbonsched.config import LagrangianOptions
from carbonsched.decomposition.lagrangian import evaluate_dual, setup_dual
from carbonsched.decomposition.pool import SubproblemPool
from carbonsched.decomposition.recovery import PrimalRecovery
from carbonsched.decomposition.site_blocks import block_picks, from_prices
from carbonsched.decomposition.site_search import search_rounds

from cases import generated_budget_binding


def test_picks_search_after_the_plain_search(benchmark):
    inst = generated_budget_binding(int(os.environ.get("CARBONSCHED_BENCH_SITES", 10)),
                                    int(os.environ.get("CARBONSCHED_BENCH_JOBS", 60)))
    n = int(os.environ.get("CARBONSCHED_BENCH_ITERATIONS", 400))

    def run():
        pool = SubproblemPool(inst, None)
        pool.calibrate()
        lay, compute, update, u = setup_dual(inst, LagrangianOptions())
        rec = PrimalRecovery(inst, pool, method="lagrangian")
        least, best_u, score, starts = np.inf, u, None, []
        for it in range(1, n + 1):
            pt, _ = evaluate_dual(inst, lay, u, compute, pool)
            if least > pt.L:
                least, best_u, score = pt.L, pt.u, pt.choice.score
            if it % 40 == 0 and len(starts) < 10 and (c := rec.from_choice(pt.choice.chosen, pt.choice.score)):
                starts.append(c)
            u = update.step(pt)
        pi, mu, lam = lay.split(best_u)
        rnd = pool.site_blocks(from_prices(inst, pi * inst.dt * inst.pue + lam, mu), site_limit=300.0, gap=1e-5,
                               round_limit=600.0)
        picks = block_picks(rnd)
        rows = []
        for start in starts:
            got = [start]

            def offer(c, got=got):
                rep = check_solution(inst, c.solution, check_reported=False)
                assert rep.ok, rep.violations
                got.append(c)

            t0 = time.perf_counter()
            _, plain, _ = search_rounds(inst, pool, rec, start, score, deadline=np.inf, gap=1e-4, offer=offer)
            t1 = time.perf_counter()
            _, more, _ = search_rounds(inst, pool, rec, got[-1], score, deadline=np.inf, gap=1e-4, offer=offer,
                                       picks=picks)
            rows.append({"start": start.objective, "plain_gain": plain, "plain_s": t1 - t0, "picks_gain": more,
                         "picks_s": time.perf_counter() - t1, "end": got[-1].objective})
        pool.close()
        return rows

    rows = benchmark.pedantic(run, rounds=1, iterations=1)
    assert rows
    benchmark.extra_info["starts"] = rows
    benchmark.extra_info["mean_plain_gain"] = float(np.mean([r["plain_gain"] for r in rows]))
    benchmark.extra_info["mean_picks_gain"] = float(np.mean([r["picks_gain"] for r in rows]))
    benchmark.extra_info["starts_the_picks_improve"] = sum(r["picks_gain"] > 0 for r in rows)
