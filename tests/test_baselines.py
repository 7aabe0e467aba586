"""Baselines and ablations (MODEL.md section 6), and the study."""

import json

import numpy as np
import pytest

from carbonsched import SolveOptions, ablations, solve
from carbonsched.baselines import energy_unaware_schedule, passive_dispatch
from carbonsched.cli import main
from carbonsched.generate import GeneratorConfig, generate
from carbonsched.instance import parse_instance

from helpers import job, make, site

OPTS = SolveOptions(gap=1e-6)


def _instances(n=20):
    for seed in range(n):
        cfg = GeneratorConfig(sites=2 + seed % 3, regions=2, periods=6 + 2 * (seed % 4), jobs=3 + seed % 4,
                              seed=100 + seed, committed_share=0.5 if seed % 5 == 0 else 0.0,
                              budget_basis="estimate", budget_fraction=(0.4, 0.6, 0.9, 2.0)[seed % 4])
        yield seed, parse_instance(generate(cfg))


@pytest.mark.parametrize("seed,inst", list(_instances()), ids=[f"gen{s}" for s, _ in _instances()])
def test_joint_beats_every_feasible_baseline(seed, inst):
    joint = solve(inst, "monolithic", OPTS)
    if joint.objective is None:
        pytest.skip(f"instance {seed} infeasible for the joint model: {joint.diagnosis}")
    assert joint.check.ok, joint.check.violations
    for m in ("compute-only", "energy-only"):
        res = solve(inst, m, OPTS)
        if res.status in ("optimal", "feasible"):
            assert res.check.ok, (m, res.check.violations)
            # a feasible baseline is a feasible point of the joint model; joint is solved to 1e-6
            assert joint.bound >= res.objective - 1e-6 * abs(res.objective), m
            assert joint.objective >= res.objective - 2e-6 * max(1.0, abs(res.objective)), m
        else:
            assert res.status in ("budget_infeasible", "infeasible") and res.diagnosis


def test_energy_unaware_rule_by_hand():
    # two jobs; the denser one (value per MWh) goes first, at its earliest start at the first allowed site
    inst = make(4, [site("a", cap=10), site("b", cap=10)],
                [job("cheap", 6, 2, 120), job("dense", 6, 2, 600, sites=["b", "a"])],
                [{"id": "r", "demand_mw": 6, "revenue_per_mwh": 100, "latency_slo_ms": 100}],
                {"r": {"a": 10, "b": 20}})
    starts, y = energy_unaware_schedule(inst)
    jj, ss, tt = inst.triples
    got = {inst.job_ids[jj[k]]: (inst.site_ids[ss[k]], int(tt[k])) for k in starts}
    # dense first: earliest start 0 at its first allowed site with room (a, file order);
    # cheap: earliest start 0 still has room at b
    assert got == {"dense": ("a", 0), "cheap": ("b", 0)}
    # inference to a (lowest latency) up to its room, the rest to b
    np.testing.assert_allclose(y.sum(axis=0), 6.0)
    assert y[0].tolist() == [4.0, 4.0, 6.0, 6.0] and y[1].tolist() == [2.0, 2.0, 0.0, 0.0]


def test_passive_rule_by_hand():
    gen = {"max_mw": 5, "min_mw": 3, "cost_per_mwh": 50, "emission_t_per_mwh": 0.5}
    inst = make(3, [site("a", ren=[10, 2, 0], imax=4, xmax=3, generator=gen)])
    P = np.array([[6.0, 7.0, 5.0]])
    st, ok = passive_dispatch(inst, P)
    assert ok
    assert st["renewable_used_mw"][0].tolist() == [9, 2, 0]  # 6 to the load + 3 exported
    assert st["grid_export_mw"][0].tolist() == [3, 0, 0]  # 4 surplus, 3 exported, 1 curtailed
    # period 1: deficit 5, import 4, the generator must run at >= 3 -> import falls to 2
    assert st["generator_mw"][0].tolist() == [0, 3, 3]
    assert st["grid_import_mw"][0].tolist() == [0, 2, 2]


def test_baseline_over_budget_is_reported_not_hidden():
    # energy-only runs both jobs (2 x 5 MWh at 1 t/MWh); the budget allows one
    inst = make(2, [site("a", pb=0, ci=1.0)], [job("j1", 5, 1, 100), job("j2", 5, 1, 80)], carbon_budget_t=7.0)
    res = solve(inst, "energy-only", OPTS)
    assert res.status == "budget_infeasible"
    assert res.emissions == pytest.approx(10.0)
    assert any("carbon_budget_t" in d for d in res.diagnosis)
    assert any(v.startswith("[8]") for v in res.check.violations)
    co = solve(inst, "compute-only", OPTS)
    assert co.status == "feasible" and co.check.ok and co.objective == pytest.approx(100.0)


def test_ablations():
    inst = make(1, [site("a", ren=4, battery={"energy_mwh": 2, "charge_mw": 1, "discharge_mw": 1}), site("b")],
                regions=[{"id": "r", "demand_mw": 1, "revenue_per_mwh": 10, "latency_slo_ms": 50}],
                latency={"r": {"a": 30, "b": 20}}, carbon_budget_t=3.0)
    nb = ablations.no_battery(inst)
    assert not nb.has_batt.any() and nb.dis_max.sum() == 0
    nr = ablations.no_routing(inst)
    assert nr.reach.tolist() == [[False, True]]  # only the lowest-latency site
    assert ablations.no_carbon(inst).budget is None
    assert ablations.scale_renewables(inst, 0.5).ren[0, 0] == 2.0
    with pytest.raises(ValueError):
        ablations.scale_renewables(inst, -1)


def test_study_cli_writes_table_and_figures(tmp_path, capsys):
    inst = parse_instance(generate(GeneratorConfig(sites=2, regions=2, periods=8, jobs=3, seed=3,
                                                   budget_basis="estimate")))
    p = tmp_path / "i.json"
    p.write_text(json.dumps(inst.to_dict()))
    out, figs = tmp_path / "study", tmp_path / "figs"
    assert main(["study", str(p), "--out-dir", str(out), "--plots", str(figs), "--renewable-scales", "0,2"]) == 0
    with open(out / "study.csv") as fh:
        rows = list(__import__("csv").DictReader(fh))
    by = {r["scenario"]: r for r in rows}
    assert {"joint", "compute-only", "energy-only", "joint, no battery", "joint, no routing flexibility",
            "joint, no carbon budget"} <= set(by)
    joint = float(by["joint"]["benefit"])
    feasible = [m for m in ("compute-only", "energy-only") if by[m]["feasible"] == "True"]
    assert feasible, "no baseline was feasible here: the comparison below would test nothing"
    for m in feasible:
        assert joint >= float(by[m]["benefit"]) - 1e-6 * abs(joint)
    # dropping the budget can only help; removing batteries can only hurt
    assert float(by["joint, no carbon budget"]["benefit"]) >= joint - 1e-4 * abs(joint)
    assert float(by["joint, no battery"]["benefit"]) <= joint + 1e-4 * abs(joint)
    assert (out / "study.md").read_text().count("\n") >= len(rows) + 2
    assert (figs / "study-bars.png").stat().st_size > 10_000 and (figs / "study-renewables.png").exists()
    assert (figs / "monolithic-gantt.png").exists()


def test_solve_with_ablation_flags_and_plots(tmp_path, capsys):
    assert main(["solve", "--no-battery", "--no-carbon", "--renewable-scale", "1.5", "--plots", str(tmp_path),
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "paper-default+no-battery+no-carbon+ren-x1.5" in text and "check    passed" in text
    assert (tmp_path / "monolithic-power.png").exists()
