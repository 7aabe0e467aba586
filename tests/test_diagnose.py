"""Infeasible instances are diagnosed in words: which job, which budget."""

import pytest

from carbonsched import SolveOptions, solve
from carbonsched.decomposition.lagrangian import DIAGNOSE_AT

from helpers import job, make, site


def test_required_job_too_big_for_every_site_is_named():
    inst = make(2, [site("a", cap=10), site("b", cap=5)], [job("big", 12, 1, 0, required=True), job("ok", 1, 1, 5)])
    res = solve(inst, "monolithic", SolveOptions())
    assert res.status == "infeasible"
    assert any("'big'" in d and "IT capacity" in d for d in res.diagnosis)
    assert res.check is None and res.objective is None


def test_required_jobs_that_cannot_run_together_are_named():
    # two required 6 MW jobs of 2 periods in a 2-period horizon at a 10 MW site
    inst = make(2, [site("a", cap=10)], [job("r1", 6, 2, 0, required=True), job("r2", 6, 2, 0, required=True)])
    res = solve(inst, "monolithic", SolveOptions())
    assert res.status == "infeasible"
    assert any("cannot all run together" in d and ("'r1'" in d or "'r2'" in d) for d in res.diagnosis)


def test_required_job_without_power_is_named():
    inst = make(2, [site("a", cap=10, imax=1.0)], [job("hungry", 5, 1, 0, required=True)])
    res = solve(inst, "monolithic", SolveOptions())
    assert res.status == "infeasible"
    assert any("'hungry'" in d and "facility power" in d for d in res.diagnosis)


def test_budget_below_least_emissions_reports_that_least_value():
    # idle 1 MW for 2 periods at 0.5 t/MWh from the grid, or 0.2 t/MWh from the generator (max 0.6 MW):
    # least emissions = 2 x (0.6 x 0.2 + 0.4 x 0.5) = 0.64 t
    gen = {"max_mw": 0.6, "cost_per_mwh": 100, "emission_t_per_mwh": 0.2}
    inst = make(2, [site("a", idle=1, ci=0.5, generator=gen)], carbon_budget_t=0.5)
    res = solve(inst, "monolithic", SolveOptions())
    assert res.status == "budget_infeasible"
    assert res.solution.stats["least_emissions_t"] == pytest.approx(0.64)
    assert any("carbon_budget_t = 0.5" in d and "0.64" in d for d in res.diagnosis)


@pytest.mark.parametrize("method", ["monolithic", "lagrangian", "benders"])
def test_a_site_that_cannot_power_its_idle_load_is_named(method):
    """By every method; the decompositions before any iteration."""
    # site a: idle 2 MW against 1 MW of import and a 5 MW battery holding 1 MWh: every period's power is there
    # (the closed-form check passes), but over 3 h the idle load needs 3 MWh beyond the grid and the battery
    # has 1 (at 0.95 discharge efficiency)
    batt = {"energy_mwh": 1.0, "charge_mw": 5.0, "discharge_mw": 5.0, "initial_soc_mwh": 1.0}
    inst = make(3, [site("a", idle=2, imax=1.0, battery=batt), site("b")], [job("j", 1, 1, 10)])
    res = solve(inst, method, SolveOptions())
    assert res.status == "infeasible" and res.objective is None
    if method != "monolithic":
        assert res.solution.stats["iterations"] == 0
    assert any(d.startswith("sites[0] ('a') cannot power its idle load") for d in res.diagnosis), res.diagnosis
    assert not any("'b'" in d for d in res.diagnosis)


def _colliding_required_jobs():
    return make(2, [site("a", cap=10), site("b", cap=10)],
                [job("r1", 6, 2, 0, required=True, sites=["a"]), job("r2", 6, 2, 0, required=True, sites=["a"]),
                 job("o", 3, 1, 5)])


def test_the_lagrangian_with_capacity_kept_diagnoses_colliding_required_jobs():
    """With capacity kept the priced compute MILP itself is infeasible:
    before, the run ended with 'priced compute MILP ended Infeasible' (exit
    2, as if the input were bad)."""
    inst = _colliding_required_jobs()
    assert solve(inst, "monolithic", SolveOptions()).status == "infeasible"
    res = solve(inst, "lagrangian", SolveOptions(time_limit=60), keep_capacity=True)
    assert res.status == "infeasible" and res.objective is None
    assert any("cannot all run together" in d for d in res.diagnosis), res.diagnosis


@pytest.mark.parametrize("case", ["required jobs together", "budget above the closed-form floor"])
def test_the_lagrangian_diagnoses_an_infeasible_instance_early(case):
    """Without a schedule the Lagrangian dual is unbounded; the run is
    diagnosed after DIAGNOSE_AT iterations instead of taking its whole time
    limit (before: 60 s of 60 here, or, with no limit, until the bundle's LP
    failed)."""
    if case == "required jobs together":
        inst = _colliding_required_jobs()
        want = "cannot all run together"
    else:
        # idle 1 MW over 2 periods from a 0.5 t/MWh grid or a 0.6 MW generator at 0.2 t/MWh: least emissions
        # 0.64 t (test above); the closed-form floor counts only the cleaner source, 2 x 0.2 = 0.4 t
        gen = {"max_mw": 0.6, "cost_per_mwh": 100, "emission_t_per_mwh": 0.2}
        inst = make(2, [site("a", idle=1, ci=0.5, generator=gen), site("b", idle=1, ci=0.5, generator=gen)],
                    [job("o", 3, 1, 5)], carbon_budget_t=1.0)
        want = "carbon_budget_t = 1"
    mono = solve(inst, "monolithic", SolveOptions())
    res = solve(inst, "lagrangian", SolveOptions(time_limit=60))
    assert res.status == mono.status and res.status in ("infeasible", "budget_infeasible") and res.objective is None
    assert res.solution.stats["iterations"] == DIAGNOSE_AT
    assert any(want in d for d in res.diagnosis), res.diagnosis
