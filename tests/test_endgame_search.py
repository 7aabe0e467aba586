"""The exact endgame's primal search on the ranks beside rank 0
(:mod:`carbonsched.decomposition.endgame_search`) and the commitments it
rounds from a relaxed dispatch: hand-computed roundings, schedules that
pass the checker and never beat the optimum, and a 2-rank run against the
monolithic optimum."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from carbonsched.check import check_solution
from carbonsched.decomposition import endgame_search
from carbonsched.decomposition.recovery import best_commitment, commitments
from carbonsched.fixed import FixedScheduleModel
from carbonsched.solution import read_solution

from cases import generated_budget_binding_reference, triples_of
from mpi_util import run_cli_mpi


def test_each_share_of_the_minimum_output_is_one_commitment():
    """Site 0 is committed (minimum 4 MW), site 1 is not: its unit stays
    off whatever it runs. At share 0.5 the unit is on from 2 MW, at 1 from
    4 MW, at 0 wherever it runs at all; equal roundings count once."""
    inst = SimpleNamespace(gmin=np.array([4.0, 0.0]), committed=np.array([True, False]))
    g = np.array([[0.0, 1.0, 2.0, 3.9, 4.0, 6.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    got = commitments(inst, g)
    assert [o[0].astype(int).tolist() for o in got] == [[0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1], [0, 1, 1, 1, 1, 1]]
    assert all(not o[1].any() for o in got)
    assert len(commitments(inst, np.array([[0.0, 5.0], [0.0, 0.0]]).repeat(3, axis=1))) == 1


def test_the_best_commitment_is_the_best_of_its_lps_and_a_feasible_dispatch(optima):
    """On the committed-generator case, the optimal schedule's relaxed
    dispatch rounded at each share: the best commitment is worth the most
    of the LPs at the single commitments, passes the checker, and is no
    better than the optimum."""
    inst, mono, _ = optima["committed_generator"]
    assert inst.committed.any()
    fx = FixedScheduleModel(inst)
    starts = triples_of(inst, mono.solution)
    relaxed, _ = fx.solve(starts, relax_units=True)
    g = relaxed.sites["generator_mw"]
    each = [fx.solve_committed(starts, on.astype(float))[1] for on in commitments(inst, g)]
    sol, obj, x = best_commitment(fx, starts, g)
    assert sol is not None and x is not None
    assert np.array_equal(fx.last_x, x)  # the model's vector is the best's (a MIP start), not the last LP's
    assert obj == pytest.approx(max(o for o in each if o is not None), rel=1e-9)
    rep = check_solution(inst, fx.solution_from(x, "best"), check_reported=False)
    assert rep.ok, rep.violations
    assert rep.breakdown.objective == pytest.approx(obj, rel=1e-6)
    assert obj <= mono.objective + 1e-6 * abs(mono.objective)


def test_the_model_keeps_the_best_commitment_s_vector_not_the_last_lp_s(optima):
    """A relaxed dispatch at 0.3 of every committed unit's minimum output
    rounds to all off (shares 0.5 and 1) and then all on (share 0): on the
    committed-generator case all off is worth more, so the last LP solved
    is the worse one. The model's column vector afterwards (what a caller
    takes as its MIP start) is the best's, and it is the best's dispatch."""
    inst, mono, _ = optima["committed_generator"]
    fx = FixedScheduleModel(inst)
    starts = triples_of(inst, mono.solution)
    g = np.where(inst.committed[:, None], 0.3 * inst.gmin[:, None], 0.0) * np.ones((1, inst.H))
    off, on = commitments(inst, g)
    assert not off.any() and on[inst.committed].all()
    worth_off = fx.solve_committed(starts, off.astype(float))[1]
    worth_on = fx.solve_committed(starts, on.astype(float))[1]
    assert worth_off > worth_on + 1.0  # the case this test is about
    sol, obj, x = best_commitment(fx, starts, g)
    assert obj == pytest.approx(worth_off, rel=1e-9)
    assert np.array_equal(fx.last_x, x)
    rep = check_solution(inst, fx.solution_from(fx.last_x, "best"), check_reported=False)
    assert rep.ok, rep.violations
    assert rep.breakdown.objective == pytest.approx(worth_off, rel=1e-6)


@pytest.mark.parametrize("name", ["committed_generator", "budget_binding"])
def test_the_search_improves_a_poor_start_and_never_beats_the_optimum(optima, name):
    """From the schedule that runs no job (or only the required ones), the
    search over every triple finds a better schedule, which passes the
    checker, is worth what the search says, and is no better than the
    monolithic optimum."""
    inst, mono, _ = optima[name]
    fx = FixedScheduleModel(inst)
    jj = inst.triples[0]
    first = np.searchsorted(jj, np.flatnonzero(inst.required))  # a required job at its first triple
    start, start_ob = fx.solve(first, relax_units=False)
    assert start is not None
    start_x = fx.last_x.copy()
    start_ob = check_solution(inst, start, check_reported=False).breakdown.objective
    assert start_ob < mono.objective - 1e-3 * abs(mono.objective)  # room to improve
    out = endgame_search.search(fx, np.ones(jj.size), start_x, first, start_ob, time_limit=60.0, seed=1,
                                effort=0.3, stop=lambda: False)
    assert out.x is not None and out.objective > start_ob and out.passes >= 1
    rep = check_solution(inst, fx.solution_from(out.x, "search"), check_reported=False)
    assert rep.ok, rep.violations
    assert rep.breakdown.objective == pytest.approx(out.objective, rel=1e-6)
    assert out.objective <= mono.objective + 1e-6 * abs(mono.objective)


def test_a_search_stopped_at_once_runs_no_pass(optima):
    """A stop poll already true ends the search before its first pass:
    no schedule, no pass (a searching rank then waits for rank 0)."""
    inst, mono, _ = optima["budget_binding"]
    fx = FixedScheduleModel(inst)
    starts = triples_of(inst, mono.solution)
    fx.solve(starts)
    out = endgame_search.search(fx, np.ones(fx.x_cols.size), fx.last_x.copy(), starts, mono.objective,
                                time_limit=30.0, seed=1, effort=None, stop=lambda: True)
    assert out.x is None and out.objective is None and out.passes == 0


@pytest.mark.mpi
def test_on_two_ranks_rank_1_searches_while_rank_0_solves_the_exact_endgame(tmp_path):
    """On 2 ranks without ``--endgame-race``, the generated four-day
    instance whose dual iterations hand over to the exact endgame: rank 0
    solves its MILP and rank 1 searches; rank 0 keeps the bound (a
    searching rank has none), the run certifies the gap asked, its bound
    at or above the monolithic schedule (solved to 1e-6) and its objective
    at or below the monolithic bound, and the checker passes."""
    inst, mono = generated_budget_binding_reference(4, 12, 96)
    p = tmp_path / "inst.json"
    p.write_text(json.dumps(inst.to_dict()))
    d = run_cli_mpi(2, [str(p), "--method", "lagrangian", "--gap", "1e-4"], tmp_path / "sol.json")
    st = d["stats"]
    tol = 1e-6 * abs(mono.objective)
    assert st["ranks"] == 2 and st["endgame_handover_at"] == st["iterations"]
    assert "endgame_search_winner" in st and "endgame_race_winner" not in st
    assert st["endgame_search_winner"] in (0, 1)
    assert check_solution(inst, read_solution(d, inst)).ok
    assert d["bound"] >= mono.objective - tol and d["objective"] <= mono.bound + tol
    assert d["bound"] - d["objective"] <= 1e-4 * abs(d["objective"])
