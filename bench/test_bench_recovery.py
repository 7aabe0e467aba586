"""Primal recovery on a budget-binding instance: the keep LP followed, where
the budget binds, by the carbon-aware pass on the full model (a column per
job triple, where it fits in memory), against the keep LP alone (what runs
where the full model does not fit), in one run (ratios, not timed
assertions).

    python -m pytest bench/test_bench_recovery.py --benchmark-only

The generated budget-binding instance (CARBONSCHED_BENCH_SITES x 168 h x
CARBONSCHED_BENCH_JOBS jobs, budget 70% of the estimate; defaults 10 and
60), the job choices of the first CARBONSCHED_BENCH_CHOICES (default 8)
Lagrangian iterations, each recovered both ways. extra_info holds the best
objective and the seconds of each way and their ratios.

``test_recovery_with_the_incumbent_as_floor_vs_without``: on `medium` and
on that budget-binding instance, the same job choices recovered in order
with the best value so far as the floor (a schedule whose LP cannot beat it
is not re-dispatched) and without one: the same best schedule, and the
ratio of the seconds.

``test_recovery_from_the_aggregated_primal_vs_the_last_choice``: on
`medium` and on that budget-binding instance, the schedules recovered from
the bundle's aggregated primal against those from the last point's choice,
at the same iterations.
"""

import os
import time

import numpy as np
import pytest

import carbonsched.decomposition.recovery as recovery
from carbonsched.check import check_solution
from carbonsched.clock import Clock

from cases import generated_budget_binding, lagrangian_choices
from helpers import sweep_instance


def _recover_all(inst, pool, choices, **kw):
    rec = recovery.PrimalRecovery(inst, pool, "lagrangian", Clock(), **kw)
    best, t0 = -np.inf, time.perf_counter()
    for chosen, score in choices:
        cand = rec.from_choice(chosen, score)
        if cand is not None:
            rep = check_solution(inst, cand.solution, check_reported=False)
            assert rep.ok, rep.violations
            best = max(best, cand.objective)
    return best, time.perf_counter() - t0, rec


def test_full_model_pass_vs_keep_lp(benchmark, monkeypatch):
    inst = generated_budget_binding(int(os.environ.get("CARBONSCHED_BENCH_SITES", 10)),
                                    int(os.environ.get("CARBONSCHED_BENCH_JOBS", 60)))
    pool, choices = lagrangian_choices(inst, int(os.environ.get("CARBONSCHED_BENCH_CHOICES", 8)))

    def both():
        full = _recover_all(inst, pool, choices)
        with monkeypatch.context() as m:
            m.setattr(recovery, "memory_check", lambda inst, **kw: (False, 1e9, 1.0))
            keep = _recover_all(inst, pool, choices)
        return full, keep

    (full_best, full_s, _), (keep_best, keep_s, rec) = benchmark.pedantic(both, rounds=1, iterations=1)
    assert rec._fixed is None  # the keep-LP run never built the full model
    benchmark.extra_info.update(full_best=full_best, full_s=full_s, keep_best=keep_best, keep_s=keep_s,
                                keep_over_full_objective=keep_best / full_best, keep_over_full_s=keep_s / full_s,
                                jobs_dropped_by_keep_lp=rec.dropped_by_lp, carbon_aware_passes_skipped=rec.skipped_full)


@pytest.mark.parametrize("which", ["medium", "budget-binding"])
def test_recovery_from_the_aggregated_primal_vs_the_last_choice(benchmark, which):
    """Every CARBONSCHED_BENCH_EVERY (default 20) of CARBONSCHED_BENCH_ITERATIONS
    (default 200) bundle iterations after the 20th, 1 rank: the schedule
    recovered from the bundle's aggregated primal (what a due recovery
    after the first 10 iterations tries first) against the one recovered
    from the last point's own choice. extra_info: the best and mean
    objective each way, and the ratio of the bests."""
    from carbonsched.config import LagrangianOptions
    from carbonsched.decomposition.lagrangian import average_choice, evaluate_dual, setup_dual
    from carbonsched.decomposition.pool import SubproblemPool
    from carbonsched.instance import load_instance

    inst = load_instance("medium") if which == "medium" else generated_budget_binding(
        int(os.environ.get("CARBONSCHED_BENCH_SITES", 10)), int(os.environ.get("CARBONSCHED_BENCH_JOBS", 60)))
    iterations = int(os.environ.get("CARBONSCHED_BENCH_ITERATIONS", 200))
    every = int(os.environ.get("CARBONSCHED_BENCH_EVERY", 20))

    def run():
        pool = SubproblemPool(inst, None)
        pool.calibrate()
        lay, compute, update, u = setup_dual(inst, LagrangianOptions())
        recs = {k: recovery.PrimalRecovery(inst, pool, "lagrangian", Clock()) for k in ("average", "last")}
        got = {k: [] for k in recs}
        for i in range(1, iterations + 1):
            pt, _ = evaluate_dual(inst, lay, u, compute, pool)
            if i > 20 and i % every == 0:
                choices, w = update.choice_weights()
                for k, chosen in (("average", average_choice(inst, choices, w)), ("last", pt.choice.chosen)):
                    cand = recs[k].from_choice(chosen, pt.choice.score)
                    if cand is not None:
                        rep = check_solution(inst, cand.solution, check_reported=False)
                        assert rep.ok, rep.violations
                        got[k].append(cand.objective)
            u = update.step(pt)
        pool.close()
        return got

    got = benchmark.pedantic(run, rounds=1, iterations=1)
    assert got["average"] and got["last"]
    benchmark.extra_info.update({f"{k}_{f.__name__}": float(f(v)) for k, v in got.items() for f in (np.max, np.mean)})
    benchmark.extra_info.update(recoveries=len(got["average"]),
                                average_over_last_best=float(np.max(got["average"]) / np.max(got["last"])))


@pytest.mark.parametrize("which", ["medium", "budget-binding"])
def test_recovery_with_the_incumbent_as_floor_vs_without(benchmark, which):
    """The choices of every CARBONSCHED_BENCH_EVERY-th (default 20) of
    CARBONSCHED_BENCH_ITERATIONS (default 200) bundle iterations after the
    20th, 1 rank, each recovered in order twice: with the best value so far
    as the floor, and without. extra_info: the seconds each way, their
    ratio, how many schedules the floor left out, and the carbon-aware
    passes each way (a schedule left out is judged for that pass by its
    LP's emissions, not by its re-dispatch's)."""
    from carbonsched.config import LagrangianOptions
    from carbonsched.decomposition.lagrangian import evaluate_dual, setup_dual
    from carbonsched.decomposition.pool import SubproblemPool
    from carbonsched.instance import load_instance

    inst = load_instance("medium") if which == "medium" else generated_budget_binding(
        int(os.environ.get("CARBONSCHED_BENCH_SITES", 10)), int(os.environ.get("CARBONSCHED_BENCH_JOBS", 60)))
    iterations = int(os.environ.get("CARBONSCHED_BENCH_ITERATIONS", 200))
    every = int(os.environ.get("CARBONSCHED_BENCH_EVERY", 20))
    pool = SubproblemPool(inst, None)
    pool.calibrate()
    lay, compute, update, u = setup_dual(inst, LagrangianOptions())
    choices = []
    for i in range(1, iterations + 1):
        pt, _ = evaluate_dual(inst, lay, u, compute, pool)
        if i > 20 and i % every == 0:
            choices.append((pt.choice.chosen.copy(), pt.choice.score.copy()))
        u = update.step(pt)

    def one_way(use_floor):
        rec = recovery.PrimalRecovery(inst, pool, "lagrangian", Clock())
        best, t0 = -np.inf, time.perf_counter()
        for chosen, score in choices:
            cand = rec.from_choice(chosen, score, floor=best if use_floor and np.isfinite(best) else None)
            if cand is not None:
                rep = check_solution(inst, cand.solution, check_reported=False)
                assert rep.ok, rep.violations
                best = max(best, cand.objective)
        return best, time.perf_counter() - t0, rec.bounded_out, rec.guided

    (with_best, with_s, left_out, with_guided), (without_best, without_s, _, without_guided) = benchmark.pedantic(
        lambda: (one_way(True), one_way(False)), rounds=1, iterations=1)
    pool.close()
    assert with_best == pytest.approx(without_best, rel=1e-9)  # the floor never costs the best schedule
    benchmark.extra_info.update(best=with_best, with_floor_s=with_s, without_floor_s=without_s,
                                with_over_without_s=with_s / without_s, left_out=left_out, choices=len(choices),
                                carbon_aware_passes_with=with_guided, carbon_aware_passes_without=without_guided)


def test_rounded_commitment_vs_the_dispatch_milp(benchmark, monkeypatch):
    """Where a committed unit cannot follow the relaxed LP's load site by
    site, the recovery's LP at the rounded commitment (then re-dispatched)
    against the schedule's dispatch MILP (what ran before), on the mid-size
    sweep's seed 3201 (10 sites x 72 periods of 2 h, 24 jobs, 2 committed
    sites, a site cut off from the grid): the job choices of the first
    CARBONSCHED_BENCH_CHOICES (default 3) Lagrangian iterations, each
    recovered both ways, in one run. extra_info: the seconds and the best
    objective of each way, and their ratios."""
    inst = sweep_instance(3201, 0.5, "mid")
    pool, choices = lagrangian_choices(inst, int(os.environ.get("CARBONSCHED_BENCH_CHOICES", 3)))

    def both():
        out = {}
        for way in ("rounded", "milp"):
            rec = recovery.PrimalRecovery(inst, pool, "lagrangian", Clock())
            if way == "milp":
                monkeypatch.setattr(rec, "_rounded_units", lambda *a, **k: None)
            t = time.perf_counter()
            found = [c for c in (rec.from_choice(ch, sc) for ch, sc in choices) if c is not None]
            out[way] = (time.perf_counter() - t, found, rec.rounded_commitments)
        return out

    out = benchmark.pedantic(both, rounds=1, iterations=1)
    for way, (secs, found, rounded) in out.items():
        assert found, way
        for c in found:
            assert check_solution(inst, c.solution, check_reported=False).ok, way
        benchmark.extra_info[way] = {"seconds": secs, "best": max(c.objective for c in found),
                                     "rounded_commitments": rounded}
    assert out["rounded"][2] > 0  # the case this bench is about
    benchmark.extra_info["milp_over_rounded_seconds"] = out["milp"][0] / out["rounded"][0]
    benchmark.extra_info["rounded_best_over_milp_best"] = (benchmark.extra_info["rounded"]["best"]
                                                           / benchmark.extra_info["milp"]["best"])


@pytest.mark.parametrize("which", ["medium", "budget-binding"])
def test_recovery_on_the_pool_vs_the_keep_lp(benchmark, which):
    """The same job choices (first CARBONSCHED_BENCH_CHOICES Lagrangian
    iterations) recovered by the keep LP and on the pool's site problems
    (``pool_only``, what runs where the keep LP does not finish in its share
    of the time): the best value and seconds of each, and their ratios."""
    from carbonsched.instance import load_instance

    inst = (load_instance("medium") if which == "medium" else
            generated_budget_binding(int(os.environ.get("CARBONSCHED_BENCH_SITES", 10)),
                                     int(os.environ.get("CARBONSCHED_BENCH_JOBS", 60))))
    pool, choices = lagrangian_choices(inst, int(os.environ.get("CARBONSCHED_BENCH_CHOICES", 8)))

    def both():
        return _recover_all(inst, pool, choices), _recover_all(inst, pool, choices, pool_only=True)

    (lp_best, lp_s, _), (pool_best, pool_s, rec) = benchmark.pedantic(both, rounds=1, iterations=1)
    assert rec._dispatch is None  # the pool's recoveries never built the dispatch model
    benchmark.extra_info.update(keep_lp_best=lp_best, keep_lp_s=lp_s, pool_best=pool_best, pool_s=pool_s,
                                pool_over_keep_lp_objective=pool_best / lp_best, pool_over_keep_lp_s=pool_s / lp_s,
                                pool_jobs_shed=rec.pool_shed)
