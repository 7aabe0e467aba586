"""Small instances for the decomposition tests: each exercises one feature.
Built from the generator (realistic shapes) at toy sizes, then edited."""

from __future__ import annotations

from functools import cache

import numpy as np

from carbonsched.generate import GeneratorConfig, generate
from carbonsched.instance import Instance, parse_instance


def _gen(seed: int, **kw) -> dict:
    cfg = dict(sites=3, regions=2, periods=8, jobs=4, seed=seed, committed_share=0.0, budget_basis="none",
               battery_share=1.0, generator_share=0.5)
    cfg.update(kw)
    return generate(GeneratorConfig(**cfg))


def _with_budget(d: dict, frac: float) -> Instance:
    """Set the budget to ``frac`` x the unconstrained optimum's emissions."""
    from carbonsched import SolveOptions, solve

    d = dict(d)
    d["carbon_budget_t"] = None
    res = solve(parse_instance(d), "monolithic", SolveOptions(gap=1e-9))
    d["carbon_budget_t"] = frac * res.emissions
    return parse_instance(d)


def budget_binding() -> Instance:
    return _with_budget(_gen(1), 0.8)


def no_budget() -> Instance:
    return parse_instance(_gen(2))


def site_without_battery() -> Instance:
    d = _gen(3, battery_share=0.0)
    d["sites"][0]["battery"] = {"energy_mwh": 20, "charge_mw": 8, "discharge_mw": 8, "charge_eff": 0.9,
                                "discharge_eff": 0.9, "initial_soc_mwh": 10}
    return _with_budget(d, 0.9)


def committed_generator() -> Instance:
    d = _gen(4, generator_share=1.0, committed_share=1.0)
    return _with_budget(d, 0.9)


def forces_feasibility_cuts() -> Instance:
    """A site whose grid and generator cannot carry a big job all day and an
    allocation that can be too small: the master learns both from cuts."""
    d = _gen(5)
    s = d["sites"][0]
    s["grid"]["import_max_mw"] = round(1.3 * s["idle_it_mw"] * max(np.atleast_1d(s["pue"])), 2)
    s.pop("generator", None)
    return _with_budget(d, 0.85)


def half_hour_periods() -> Instance:
    return _with_budget(_gen(6, period_hours=0.5, periods=12), 0.85)


CASES = {f.__name__: f for f in (budget_binding, no_budget, site_without_battery, committed_generator,
                                 forces_feasibility_cuts, half_hour_periods)}


def generated_budget_binding(sites: int = 4, jobs: int = 16, periods: int = 168) -> Instance:
    """A generated instance (168 hours unless ``periods`` says otherwise)
    whose budget is 70% of the estimate of its unconstrained emissions (3
    regions, seed 7): the benchmarks' budget-binding case, sized by the
    caller."""
    return parse_instance(generate(GeneratorConfig(sites=sites, regions=3, periods=periods, jobs=jobs, seed=7,
                                                   budget_basis="estimate", budget_fraction=0.7)))


@cache
def generated_budget_binding_reference(sites: int, jobs: int, periods: int):
    """``generated_budget_binding(sites, jobs, periods)`` and its monolithic
    solve to 1e-6 (a schedule and a bound that bracket the optimum), solved
    once per test process: several tests compare against it. Callers must
    not edit either."""
    from carbonsched import solve

    inst = generated_budget_binding(sites, jobs, periods=periods)
    return inst, solve(inst, "monolithic", gap=1e-6)


def triples_of(inst: Instance, sol) -> np.ndarray:
    """The triple indices of a solution's training schedule."""
    jj, ss, tt = inst.triples
    key = {(int(jj[k]), int(ss[k]), int(tt[k])): k for k in range(jj.size)}
    return np.array([key[(inst.job_index(j), inst.site_index(s), int(t))] for j, s, t in sol.training], dtype=int)


def lagrangian_choices(inst: Instance, n: int):
    """A serial pool (calibrated) and the job choices and triple scores of
    the first ``n`` Lagrangian iterations on ``inst``: what the recovery
    tests and benchmarks recover from."""
    from carbonsched.config import LagrangianOptions
    from carbonsched.decomposition.lagrangian import evaluate_dual, setup_dual
    from carbonsched.decomposition.pool import SubproblemPool

    pool = SubproblemPool(inst, None)
    pool.calibrate()
    lay, compute, update, u = setup_dual(inst, LagrangianOptions())
    out = []
    for _ in range(n):
        pt, _ = evaluate_dual(inst, lay, u, compute, pool)
        out.append((pt.choice.chosen.copy(), pt.choice.score.copy()))
        u = update.step(pt)
    return pool, out
