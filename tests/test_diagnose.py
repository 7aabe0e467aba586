"""Infeasible instances are diagnosed in words: which job, which budget."""

import pytest

from carbonsched import SolveOptions, solve

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
