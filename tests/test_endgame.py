"""The exact endgame shared by both decompositions: reduced-cost fixing on
an LP relaxation keeps every schedule better than the incumbent, and
Benders' exact endgame after its LP phase certifies against the monolithic
optimum."""

import numpy as np

from carbonsched import SolveOptions, highs, solve
from carbonsched.decomposition.endgame import lp_fixable

from cases import generated_budget_binding_reference
from helpers import knapsacks


def test_lp_reduced_cost_fixing_removes_only_worse_solutions():
    """On a multi-knapsack MILP: the binaries fixed by the LP relaxation's
    reduced costs against the MILP optimum as incumbent are some (so the
    test can fail), none is 1 in the optimum, and forcing any of them to 1
    gives an optimum below the incumbent: fixing removes only worse
    solutions, with HiGHS's sign convention for a maximisation."""
    p = knapsacks(n=40)
    p.set_integrality(relax=True)
    lp = highs.solve(p)
    assert lp.optimal
    z, d, v = lp.objective, p.col_duals(), p.values()
    p.set_integrality(relax=False)
    mip = highs.solve(p, mip_gap=0.0)
    assert mip.optimal
    best = p.values()
    fixed = lp_fixable(z, d, v, mip.objective, maximize=p.maximize)
    assert 0 < fixed.sum() < fixed.size
    assert not (best[fixed] > 0.5).any()
    h = p.h
    for k in np.flatnonzero(fixed)[:6]:
        h.changeColsBounds(1, np.array([k], dtype=np.int32), np.ones(1), np.ones(1))
        forced = highs.solve(p, mip_gap=0.0)
        assert forced.infeasible or forced.objective < mip.objective - 1e-9
        h.changeColsBounds(1, np.array([k], dtype=np.int32), np.zeros(1), np.ones(1))
    # against a worse incumbent, fixing keeps more free
    assert lp_fixable(z, d, v, mip.objective - 50.0).sum() <= fixed.sum()


def test_benders_exact_endgame_certifies_a_generated_four_day_instance():
    """A generated budget-binding instance (4 sites x 96 h, 12 jobs, 286
    triples): Benders' LP phase ends at the master LP's bound; the exact
    endgame from there (fixing on the master LP, then the MILP over the
    free triples) certifies the gap asked for without the integer phase.
    Its bound is at or above the monolithic schedule, its objective at or
    below the monolithic bound, and the checker passes. Without the
    endgame, the integer phase is still short of the gap at the same
    time."""
    inst, mono = generated_budget_binding_reference(4, 12, 96)
    res = solve(inst, "benders", SolveOptions(gap=1e-4, time_limit=60))
    st = res.solution.stats
    tol = 1e-6 * abs(mono.objective)
    assert res.check.ok, res.check.violations
    assert "exact_endgame_gain" in st and st["iterations_mip"] == 0
    assert st["benders_bound"] >= st["restricted_milp_bound"] - tol
    assert res.status == "optimal" and res.gap <= 1e-4
    assert res.bound >= mono.objective - tol and res.objective <= mono.bound + tol
    off = solve(inst, "benders", SolveOptions(gap=1e-4, time_limit=max(5.0, res.solution.stats["timings_s"]["total_s"])),
                exact_endgame=False)
    assert off.check.ok and off.bound >= mono.objective - tol
    assert off.gap > 1e-4


def test_redispatch_reaches_at_least_the_best_dispatch_of_a_schedule_and_its_routing():
    """A candidate whose dispatch is poor (the full model solved with its
    schedule and routing fixed and every cost at 0: some feasible vertex),
    on a case with committed units and no budget. Re-dispatching reaches
    at least the optimum of that schedule and routing (the full model with
    both fixed, solved to 1e-9: its first step, each site's MILP at the
    same load, is exact there) and at most the optimum of the schedule
    (routing free); it keeps the schedule and passes the checker."""
    from carbonsched.check import check_solution, evaluate
    from carbonsched.decomposition.pool import SubproblemPool
    from carbonsched.decomposition.recovery import Candidate, PrimalRecovery
    from carbonsched.fixed import FixedScheduleModel
    from carbonsched.instance import parse_instance

    from cases import _gen

    inst = parse_instance(_gen(4, generator_share=1.0, committed_share=1.0))
    fx = FixedScheduleModel(inst)
    nk = inst.triples[0].size
    fx.solve_restricted(np.zeros(nk), np.ones(nk), gap=1e-6)
    starts = np.flatnonzero(fx.x_values() > 0.5)
    assert starts.size > 0
    y = np.where(fx.y_cols >= 0, fx.last_x[np.maximum(fx.y_cols, 0)], 0.0)
    _, routed_obj = fx.solve(starts, y=y)
    _, schedule_obj = fx.solve(starts)
    h = fx.p.h
    cost = np.array(h.getLp().col_cost_)
    cols = np.arange(cost.size, dtype=np.int32)
    h.changeColsCost(cost.size, cols, np.zeros(cost.size))
    poor, _ = fx.solve(starts, y=y)
    h.changeColsCost(cost.size, cols, cost)
    poor_obj = evaluate(inst, poor).objective
    assert poor_obj < routed_obj - 1e-3 * abs(routed_obj)  # so the test can fail
    pool = SubproblemPool(inst, None)
    pool.calibrate()
    rec = PrimalRecovery(inst, pool, method="lagrangian")
    out = rec.redispatch(Candidate(poor, poor_obj, starts, fx.last_x.copy()))
    assert out is not None
    assert check_solution(inst, out.solution).ok
    assert sorted(out.solution.training) == sorted(poor.training)
    assert out.objective == evaluate(inst, out.solution).objective
    tol = 1e-6 * abs(schedule_obj)
    assert routed_obj - tol <= out.objective <= schedule_obj + tol
    assert rec.redispatch(out) is None  # its rounds ended where a round gained nothing
