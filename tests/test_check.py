"""The checker catches a corrupted solution: each constraint broken once."""

import copy

import numpy as np
import pytest

from carbonsched import SolveOptions, solve
from carbonsched.check import check_solution, evaluate
from carbonsched.solution import read_solution

from helpers import rich_tiny


@pytest.fixture(scope="module")
def solved():
    inst = rich_tiny()
    res = solve(inst, "monolithic", SolveOptions(gap=1e-9))
    assert res.check.ok
    return inst, res.solution


def corrupt(sol, fn):
    s = copy.deepcopy(sol)
    fn(s)
    return s


def _run_j1(s):
    assert any(e[0] == "j1" for e in s.training)


CASES = {
    "[1] duplicate job": ("[1]", lambda s: s.training.append(s.training[0])),
    "[1] required job dropped": ("[1]", lambda s: s.training.__setitem__(slice(None), [e for e in s.training if e[0] != "j2"])),
    "[1] job outside window": ("window", lambda s: s.training.__setitem__(0, (s.training[0][0], s.training[0][1], 3))),
    "[1] job at a forbidden site": ("may not run", lambda s: s.training.__setitem__(
        next(i for i, e in enumerate(s.training) if e[0] == "j2"), ("j2", "a", 0))),
    "[2] capacity": ("[2]", lambda s: s.training.append(("j2", "b", 1)) or s.training.append(("j2", "b", 0))),
    "[3] above demand": ("[3] inference served above demand", lambda s: s.inference.__setitem__((0, 0, 0), 50.0)),
    "[3] beyond SLO": ("[3] inference routed beyond latency", lambda s: s.inference.__setitem__((0, 1, 0), 0.5)),
    "[3] negative flow": ("[3] negative inference", lambda s: s.inference.__setitem__((0, 0, 1), -1.0)),
    "[4] balance": ("[4]", lambda s: s.sites["grid_import_mw"].__setitem__((0, 1), s.sites["grid_import_mw"][0, 1] + 1)),
    "[5] renewable": ("[5] renewable used above", lambda s: s.sites["renewable_used_mw"].__setitem__((0, 0), 3.0)),
    "[5] import limit": ("[5] grid import above", lambda s: s.sites["grid_import_mw"].__setitem__((1, 0), 99.0)),
    "[5] export limit": ("[5] grid export above", lambda s: s.sites["grid_export_mw"].__setitem__((1, 0), 1.0)),
    "[5] negative": ("[5] negative grid export", lambda s: s.sites["grid_export_mw"].__setitem__((0, 0), -1.0)),
    "[5] charge limit": ("[5] battery charge above", lambda s: s.sites["battery_charge_mw"].__setitem__((0, 0), 6.0)),
    "[6] initial soc": ("[6] initial state", lambda s: s.sites["soc_mwh"].__setitem__((0, 0), 4.0)),
    "[6] soc dynamics": ("[6] battery balance", lambda s: s.sites["soc_mwh"].__setitem__((0, 2), s.sites["soc_mwh"][0, 2] + 0.5)),
    "[6] final soc": ("[6] final state", lambda s: s.sites["soc_mwh"].__setitem__((0, 4), 1.0)),
    "[6] soc above energy": ("[6] state of charge above", lambda s: s.sites["soc_mwh"].__setitem__((0, 1), 11.0)),
    "[7] generator without unit": ("[7] generator above", lambda s: s.sites["generator_mw"].__setitem__((1, 0), 1.0)),
    "[7] below min while on": ("[7] generator below min", lambda s: (s.sites["generator_on"].__setitem__((0, 0), 1.0),
                                                                     s.sites["generator_mw"].__setitem__((0, 0), 1.0))),
    "[7] running while off": ("[7] generator running while off", lambda s: (s.sites["generator_on"].__setitem__((0, 0), 0.0),
                                                                           s.sites["generator_mw"].__setitem__((0, 0), 3.0))),
    "[7] on not binary": ("[7] generator_on not 0 or 1", lambda s: s.sites["generator_on"].__setitem__((0, 0), 0.5)),
    "objective": ("objective: file says", lambda s: setattr(s, "objective", s.objective + 1.0)),
    "emissions": ("emissions_t: file says", lambda s: setattr(s, "emissions_t", s.emissions_t * 0.9)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_corruption_is_caught(solved, name):
    inst, sol = solved
    tag, fn = CASES[name]
    rep = check_solution(inst, corrupt(sol, fn))
    assert not rep.ok
    assert any(tag in v for v in rep.violations), rep.violations


def test_budget_violation_is_caught(solved):
    inst, sol = solved
    tight = inst.with_changes(budget=sol.emissions_t - 1.0)
    rep = check_solution(tight, sol)
    assert any(v.startswith("[8]") for v in rep.violations)


def test_file_round_trip_keeps_the_check(solved, tmp_path):
    from carbonsched.solution import write_solution

    inst, sol = solved
    p = tmp_path / "sol.json"
    write_solution(sol, inst, p)
    back = read_solution(p, inst)
    rep = check_solution(inst, back)
    assert rep.ok, rep.violations
    assert evaluate(inst, back).objective == pytest.approx(sol.objective, rel=1e-12)
    np.testing.assert_allclose(back.sites["soc_mwh"], sol.sites["soc_mwh"])


def test_malformed_solution_file_names_the_field(solved):
    from carbonsched.errors import SolutionFormatError

    inst, sol = solved
    d = sol.to_dict(inst)
    d["sites"]["a"]["grid_import_mw"] = [1.0]
    d["inference"]["r1"]["zz"] = [0, 0, 0, 0]
    with pytest.raises(SolutionFormatError) as ei:
        read_solution(d, inst)
    assert "sites.a.grid_import_mw" in str(ei.value) and "inference.r1.zz" in str(ei.value)
