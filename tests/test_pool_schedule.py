"""The schedule made on the pool's site problems: feasible by construction
(the checker passes), never above the optimum, within the budget where the
choice breaks it; the carbon price it dispatches at is the least that keeps
the sites within the budget; a recovery whose keep LP runs out of its share
of the time goes on, and stays, on the pool."""

import json

import numpy as np
import pytest

from carbonsched.check import check_solution
from carbonsched.clock import Clock
from carbonsched.decomposition import recovery
from carbonsched.decomposition.pool_schedule import MU_MAX, MU_TOL, carbon_price, route_inference, schedule_on_pool
from carbonsched.decomposition.recovery import PrimalRecovery, repair_schedule
from carbonsched.derived import job_room, schedule_load
from carbonsched.instance import parse_instance
from carbonsched.solution import read_solution

from cases import CASES, _gen, lagrangian_choices
from mpi_util import run_cli_mpi


def _checked(inst, sched, mono_objective):
    rep = check_solution(inst, sched.solution, check_reported=False)
    assert rep.ok, rep.violations
    assert rep.breakdown.objective == pytest.approx(sched.objective, rel=1e-9)
    assert sched.objective <= mono_objective + 1e-6 * max(1.0, abs(mono_objective))
    if inst.budget is not None:
        assert rep.breakdown.emissions_t <= inst.budget * (1 + 1e-6) + 1e-6
    return rep


@pytest.mark.parametrize("name", list(CASES))
def test_pool_schedules_pass_the_checker_and_stay_below_the_optimum(optima, name):
    inst, mono, _ = optima[name]
    pool, choices = lagrangian_choices(inst, 4)
    for chosen, score in choices:
        starts = repair_schedule(inst, chosen, score)
        assert starts is not None
        sched = schedule_on_pool(inst, pool, starts, score, method="lagrangian")
        assert sched.solution is not None
        _checked(inst, sched, mono.objective)
        assert set(sched.starts) <= set(starts)  # it sheds, it never adds


@pytest.mark.parametrize("name", ["no_budget", "budget_binding", "site_without_battery"])
def test_the_move_rounds_never_lose_value(optima, name, monkeypatch):
    """Without committed units the exact dispatch is the LP's, so the
    schedule after the move rounds is worth at least the one before them."""
    from carbonsched.decomposition import pool_schedule

    inst, mono, _ = optima[name]
    pool, choices = lagrangian_choices(inst, 3)
    for chosen, score in choices:
        starts = repair_schedule(inst, chosen, score)
        moved = schedule_on_pool(inst, pool, starts, score, method="lagrangian")
        with monkeypatch.context() as m:
            m.setattr(pool_schedule, "IMPROVE_ROUNDS", 0)
            still = schedule_on_pool(inst, pool, starts, score, method="lagrangian")
        _checked(inst, moved, mono.objective)
        _checked(inst, still, mono.objective)
        assert moved.objective >= still.objective - 1e-6 * max(1.0, abs(still.objective))


def test_a_choice_that_breaks_the_budget_is_brought_within_it():
    """The first Lagrangian choice (every job, carbon unpriced) emits more
    than a budget of 60% of the unconstrained optimum's emissions at any
    carbon price: the schedule sheds jobs or inference until it fits."""
    from carbonsched import solve

    d = _gen(1, jobs=8, periods=12)
    d["carbon_budget_t"] = None
    free = solve(parse_instance(d), "monolithic", gap=1e-9)
    d["carbon_budget_t"] = 0.6 * free.emissions
    inst = parse_instance(d)
    mono = solve(inst, "monolithic", gap=1e-9)
    pool, choices = lagrangian_choices(inst, 1)
    chosen, score = choices[0]
    starts = repair_schedule(inst, chosen, score)
    _, P = _routed_load(inst, starts)
    assert np.nansum(pool.evaluate(P, None, mu=MU_MAX).emissions) > inst.budget  # no price is enough
    sched = schedule_on_pool(inst, pool, starts, score, method="lagrangian")
    assert sched.solution is not None
    _checked(inst, sched, mono.objective)


def _routed_load(inst, starts):
    run = schedule_load(inst, starts)
    y = route_inference(inst, np.maximum(0.0, job_room(inst) - run))
    infl = np.zeros((inst.S, inst.H))
    _, sr = inst.region_pairs
    np.add.at(infl, sr, inst.f_inf[sr][:, None] * y)
    return y, inst.pue * (inst.idle[:, None] + run + infl)


def test_routing_serves_no_more_than_demand_and_fits_the_room(optima):
    inst, _, _ = optima["budget_binding"]
    rr, sr = inst.region_pairs
    room = job_room(inst) * 0.5
    y = route_inference(inst, room)
    served = np.zeros((inst.R, inst.H))
    np.add.at(served, rr, y)
    assert np.all(served <= inst.L + 1e-9)
    used = np.zeros((inst.S, inst.H))
    np.add.at(used, sr, inst.f_inf[sr][:, None] * y)
    assert np.all(used <= room + 1e-9)
    assert y.sum() > 0


def test_the_carbon_price_is_the_least_that_keeps_the_sites_within_the_budget(optima):
    """At the price found the sites emit at most the budget; at a price a
    bisection step below it they emit more."""
    inst, _, _ = optima["budget_binding"]
    pool, choices = lagrangian_choices(inst, 1)
    chosen, score = choices[0]
    _, P = _routed_load(inst, repair_schedule(inst, chosen, score))
    floor = float(np.nansum(pool.evaluate(P, None, mu=MU_MAX).emissions))
    free = float(np.nansum(pool.evaluate(P, None).emissions))
    assert floor < free  # the price has something to do at this load
    budget = 0.5 * (floor + free)
    mu, ev = carbon_price(pool, P, budget)
    assert mu is not None and np.nansum(ev.emissions) <= budget + 1e-6
    below = pool.evaluate(P, None, mu=mu / (1 + 2 * MU_TOL))
    assert np.nansum(below.emissions) > budget - 1e-6
    none, _ = carbon_price(pool, P, 0.99 * floor)
    assert none is None


def test_a_keep_lp_out_of_its_share_hands_the_recoveries_to_the_pool(optima, monkeypatch):
    """With the keep LP's share made too small to solve in, the first
    recovery gives the pool's schedule and marks the dispatch model too
    slow; the later recoveries run on the pool without trying the LP."""
    inst, mono, _ = optima["committed_generator"]
    pool, choices = lagrangian_choices(inst, 3)
    monkeypatch.setattr(recovery, "KEEP_SHARE", 1e-9)
    monkeypatch.setattr(recovery, "KEEP_MIN_S", 1e-9)
    rec = PrimalRecovery(inst, pool, "lagrangian", Clock(limit=600.0))
    first = rec.from_choice(*choices[0], 60.0)
    assert rec.pool_only and rec.pool_schedules == 1 and first is not None
    solves = rec.dispatch.solves
    later = [rec.from_choice(chosen, score, 60.0) for chosen, score in choices[1:]]
    assert rec.dispatch.solves == solves  # the dispatch model is not solved again
    assert rec.pool_schedules == 1 + sum(c is not None for c in later)
    for cand in [first, *later]:
        if cand is not None:
            _checked(inst, cand, mono.objective)
    assert rec.from_starts(first.starts) is None  # nor by the site search's re-routing


@pytest.mark.parametrize("method", ["lagrangian", "benders"])
def test_recovery_on_the_pool_over_two_ranks_brackets_the_optimum(optima, tmp_path, method):
    """``--recovery pool`` on 2 ranks: the recoveries are the pool's
    schedules (the sites' LPs at a carbon price spread over the ranks), the
    run's schedule passes the checker and its bound and objective bracket
    the monolithic optimum."""
    inst, mono, _ = optima["budget_binding"]
    p = tmp_path / "inst.json"
    p.write_text(json.dumps(inst.to_dict()))
    d = run_cli_mpi(2, [str(p), "--method", method, "--recovery", "pool", "--gap", "1e-4"], tmp_path / "sol.json")
    assert d["stats"]["recovery_on_pool_only"] is True
    assert d["stats"]["pool_schedules"] >= 1
    rep = check_solution(inst, read_solution(d, inst))
    assert rep.ok, rep.violations
    tol = 1e-6 * max(1.0, abs(mono.objective))
    assert d["objective"] <= mono.objective + tol <= d["bound"] + 2 * tol


def test_the_log_says_which_recoveries_ran_on_the_pool(optima, caplog):
    """With ``recovery="pool"`` every recovery's log line says it ran on
    the pool, with its rounds and the jobs it shed; the lines with a value
    are the run's pool schedules, and the best of them is at most the
    optimum."""
    import logging
    import re

    from carbonsched import solve

    inst, mono, _ = optima["budget_binding"]
    with caplog.at_level(logging.INFO, logger="carbonsched.trace"):
        res = solve(inst, "lagrangian", gap=0.0, max_iterations=20, polish=False, site_bound=False,
                    site_search=False, recovery="pool")
    pat = re.compile(r"recovery at iteration \d+ from the (?:last choice|aggregated primal): ([-\d,.]+|no schedule) "
                     r"on the pool \((\d+) pool rounds, (\d+) job\(s\) shed\)")
    found = [m for r in caplog.records if (m := pat.search(r.getMessage()))]
    stats = res.solution.stats
    assert found and len(found) == stats["recoveries"]
    assert sum(m.group(1) != "no schedule" for m in found) == stats["pool_schedules"] >= 1
    assert all(int(m.group(2)) >= 1 for m in found)  # at least one pool round each
    values = [float(m.group(1).replace(",", "")) for m in found if m.group(1) != "no schedule"]
    assert max(values) <= mono.objective * (1 + 1e-9) + 1e-6
    assert check_solution(inst, res.solution).ok
