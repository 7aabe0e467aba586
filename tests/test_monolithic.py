"""The monolithic MILP against optima computed by hand, one constraint of
MODEL.md at a time. Every solution also goes through the checker, and the
solver's own objective must equal the checker's recomputation."""

import time

import pytest

from carbonsched import SolveOptions, solve

from helpers import job, make, rich_tiny, site

OPTS = SolveOptions(gap=1e-9)


def solved(inst):
    res = solve(inst, "monolithic", OPTS)
    assert res.status == "optimal", res.diagnosis
    assert res.check.ok, res.check.violations
    # the model's objective and the independent recomputation agree
    assert res.solution.stats["solver_objective"] == pytest.approx(res.objective, rel=1e-7, abs=1e-6)
    assert res.bound >= res.objective - 1e-6
    return res


def test_battery_shifts_energy_for_a_late_job():
    # job may only run in period 1 (price 50); battery buys at 10 in period 0 with 0.9 x 0.9 efficiency
    batt = {"energy_mwh": 10, "charge_mw": 10, "discharge_mw": 10, "charge_eff": 0.9, "discharge_eff": 0.9,
            "initial_soc_mwh": 0, "degradation_cost_per_mwh": 1.0}
    inst = make(2, [site("a", pb=[10, 50], battery=batt)], [job("j", 5, 1, 1000, release=1)])
    res = solved(inst)
    dis = 5.0
    ch = dis / 0.9 / 0.9
    expected = 1000 - 10 * ch - 1.0 * (ch + dis)
    assert res.objective == pytest.approx(expected, rel=1e-9)
    assert res.solution.sites["battery_charge_mw"][0, 0] == pytest.approx(ch)
    # without the battery the job pays the late price
    nob = solved(make(2, [site("a", pb=[10, 50])], [job("j", 5, 1, 1000, release=1)]))
    assert nob.objective == pytest.approx(1000 - 250)


@pytest.mark.parametrize("H,expected", [(2, 200.0), (4, 300.0)])
def test_it_capacity(H, expected):
    inst = make(H, [site("a", cap=10, pb=0.0)], [job("j1", 6, 2, 100), job("j2", 6, 2, 200)])
    assert solved(inst).objective == pytest.approx(expected)


@pytest.mark.parametrize("cap,expected", [(10, 2 * 4 * (85 - 30)), (3, 2 * (3 * 85 - 3 * 30 - 1 * 10))])
def test_inference_routing_slo_pue_and_routing_cost(cap, expected):
    # margin = rev 100 - rc 0.5 x 30 ms = 85 $/MWh; energy = pue 1.5 x 20 $/MWh = 30; site b is beyond the SLO
    region = {"id": "r", "demand_mw": 4, "revenue_per_mwh": 100, "unserved_penalty_per_mwh": 10, "latency_slo_ms": 50}
    inst = make(2, [site("a", cap=cap, pue=1.5, pb=20), site("b", cap=100, pb=0)], [], [region],
                {"r": {"a": 30, "b": 70}}, routing_cost_per_mwh_ms=0.5)
    res = solved(inst)
    assert res.objective == pytest.approx(expected)
    assert res.solution.inference[0, 1].sum() == 0.0  # nothing at the unreachable site


def test_peak_charge_and_peak_shaving_battery():
    jobs = [job("j", 4, 1, 1000)]
    plain = solved(make(2, [site("a", idle=2, pb=10, pc=100)], jobs))
    assert plain.objective == pytest.approx(1000 - 80 - 600)
    batt = {"energy_mwh": 10, "charge_mw": 2, "discharge_mw": 2, "charge_eff": 1, "discharge_eff": 1,
            "initial_soc_mwh": 2}
    shaved = solved(make(2, [site("a", idle=2, pb=10, pc=100, battery=batt)], jobs))
    assert shaved.objective == pytest.approx(1000 - 80 - 400)


@pytest.mark.parametrize("budget,expected", [(None, 180.0), (7.0, 100.0), (4.0, 0.0)])
def test_carbon_budget(budget, expected):
    inst = make(1, [site("a", pb=0, ci=1.0)], [job("j1", 5, 1, 100), job("j2", 5, 1, 80)], carbon_budget_t=budget)
    res = solved(inst)
    assert res.objective == pytest.approx(expected)
    if budget is not None:
        assert res.emissions <= budget + 1e-9


@pytest.mark.parametrize("gmin,expected", [(4.0, 1000 - 4 * 10 - 4 * 50), (0.0, 1000 - 5 * 10 - 3 * 50)])
def test_generator_minimum_output(gmin, expected):
    gen = {"max_mw": 10, "min_mw": gmin, "cost_per_mwh": 50, "emission_t_per_mwh": 0.5}
    inst = make(1, [site("a", imax=5, pb=10, generator=gen)], [job("j", 8, 1, 1000)])
    res = solved(inst)
    assert res.objective == pytest.approx(expected)
    assert res.emissions == pytest.approx(0.5 * (4.0 if gmin else 3.0))


def test_export_limit_and_curtailment():
    inst = make(1, [site("a", idle=1, ren=10, xmax=4, pb=50, ps=20)])
    res = solved(inst)
    assert res.objective == pytest.approx(4 * 20)
    assert res.solution.sites["renewable_used_mw"][0, 0] == pytest.approx(5.0)


def test_required_job_runs_at_a_loss():
    res = solved(make(1, [site("a", pb=10)], [job("j", 2, 1, 0, required=True)]))
    assert res.objective == pytest.approx(-20.0)
    assert [e[0] for e in res.solution.training] == ["j"]


def test_half_hour_periods_and_carbon_price():
    inst = make(2, [site("a", pb=10, ci=0.5)], [job("j", 4, 2, 100)], period_hours=0.5, carbon_price_per_t=10)
    res = solved(inst)
    assert res.emissions == pytest.approx(4 * 0.5 * 1.0)  # 4 MW for 1 h at 0.5 t/MWh
    assert res.objective == pytest.approx(100 - 4 * 10 * 1.0 - 10 * 2.0)


def test_rich_tiny_passes_checker_and_matches_solver():
    res = solved(rich_tiny())
    assert res.emissions <= 30.0 + 1e-9
    assert "j2" in [e[0] for e in res.solution.training]


def test_shipped_paper_default_solves_to_optimality():
    from carbonsched.instance import load_instance

    res = solved(load_instance("paper-default"))
    assert res.gap <= 1e-4
    assert res.emissions <= load_instance("paper-default").budget + 1e-6


@pytest.mark.timing
def test_time_limit_returns_incumbent_and_bound():
    from carbonsched.instance import load_instance

    inst = load_instance("small")
    t0 = time.perf_counter()
    res = solve(inst, "monolithic", SolveOptions(time_limit=5, gap=1e-9))
    wall = time.perf_counter() - t0
    assert res.status == "time_limit"  # small needs over a minute to a 1e-9 gap
    assert res.objective is not None, "HiGHS finds an incumbent of small within 5 s"
    assert res.check.ok, res.check.violations
    assert res.bound >= res.objective - 1e-6
    assert wall <= 5 * 1.05 + 2, f"a 5 s limit took {wall:.1f} s"
