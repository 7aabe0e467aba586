"""The Lagrangian's end stages' reserves: kept for the site search and the
polish from the start (the rule before), against taken by the dual
iterations while they close the gap faster than those stages would
(:func:`carbonsched.decomposition.lagrangian.dual_outpaces`, the default),
in one run each (ratios, not timed assertions).

    python -m pytest bench/test_bench_end_stages.py --benchmark-only

On the shipped ``medium`` and a generated budget-binding instance of the
same size (20 sites x 168 h x 200 jobs, budget 70% of the estimate of its
unconstrained emissions, seed 5), each run with CARBONSCHED_BENCH_LIMIT
seconds (default 120), gap 1% asked, 1 rank. extra_info holds each run's
gap, objective, bound, seconds and the seconds the dual iterations took
from the stages, and the ratio of the gaps (taken over kept: below 1 is
better). Every schedule passes the checker.
"""

import os

import pytest

from carbonsched import solve
from carbonsched.config import LagrangianOptions
from carbonsched.decomposition import lagrangian
from carbonsched.generate import GeneratorConfig, generate
from carbonsched.instance import load_instance, parse_instance


def _instance(name: str):
    if name == "medium":
        return load_instance("medium")
    return parse_instance(generate(GeneratorConfig(sites=20, regions=8, periods=168, jobs=200, seed=5,
                                                   budget_basis="estimate", budget_fraction=0.7)))


@pytest.mark.parametrize("name", ["medium", "budget_binding_20x168x200"])
def test_end_stage_reserves_taken_vs_kept(benchmark, monkeypatch, name):
    inst = _instance(name)
    limit = float(os.environ.get("CARBONSCHED_BENCH_LIMIT", 120))
    opts = LagrangianOptions(gap=0.01, time_limit=limit, threads=1)
    taken_rule = lagrangian.dual_outpaces

    def both():
        out = {}
        for label, rule in (("kept", lambda *a, **k: False), ("taken", taken_rule)):
            monkeypatch.setattr(lagrangian, "dual_outpaces", rule)
            res = solve(inst, "lagrangian", opts)
            assert res.check.ok, (label, res.check.violations)
            assert res.bound >= res.objective
            st = res.solution.stats
            out[label] = {"gap": res.gap, "objective": res.objective, "bound": res.bound,
                          "seconds": st["timings_s"]["total_s"], "iterations": st["iterations"],
                          "dual_into_stages_s": st.get("dual_into_stages_s", 0.0)}
        return out

    out = benchmark.pedantic(both, rounds=1, iterations=1)
    benchmark.extra_info.update(out)
    benchmark.extra_info["gap_taken_over_kept"] = out["taken"]["gap"] / out["kept"]["gap"]
