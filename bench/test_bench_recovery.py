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
"""

import os
import time

import numpy as np

import carbonsched.decomposition.recovery as recovery
from carbonsched.check import check_solution
from carbonsched.clock import Clock

from cases import generated_budget_binding, lagrangian_choices


def _recover_all(inst, pool, choices):
    rec = recovery.PrimalRecovery(inst, pool, "lagrangian", Clock())
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
