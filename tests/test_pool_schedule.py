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
from carbonsched.derived import inference_load, job_room, schedule_load
from carbonsched.instance import parse_instance
from carbonsched.solution import read_solution

from cases import CASES, _gen, generated_budget_binding, lagrangian_choices
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
        assert sched.shed >= starts.size - sched.starts.size  # and counts every job it lets go (some come back)


@pytest.mark.parametrize("name", ["no_budget", "budget_binding", "site_without_battery"])
def test_the_move_rounds_never_lose_value(optima, name, monkeypatch):
    """Without committed units the exact dispatch is the LP's, so each kind
    of rounds leaves the schedule worth at least what it was before them:
    the price-directed moves, then the site-by-site rounds against peak
    charges."""
    from carbonsched.decomposition import pool_schedule

    inst, mono, _ = optima[name]
    pool, choices = lagrangian_choices(inst, 3)
    for chosen, score in choices:
        starts = repair_schedule(inst, chosen, score)
        both = schedule_on_pool(inst, pool, starts, score, method="lagrangian")
        with monkeypatch.context() as m:
            m.setattr(pool_schedule, "SHAVE_ROUNDS", 0)
            moves = schedule_on_pool(inst, pool, starts, score, method="lagrangian")
            m.setattr(pool_schedule, "IMPROVE_ROUNDS", 0)
            still = schedule_on_pool(inst, pool, starts, score, method="lagrangian")
        for sched in (both, moves, still):
            _checked(inst, sched, mono.objective)
        tol = 1e-6 * max(1.0, abs(still.objective))
        assert both.objective >= moves.objective - tol
        assert moves.objective >= still.objective - tol


@pytest.mark.parametrize("name", ["no_budget", "budget_binding", "site_without_battery", "committed_generator",
                                  "generated"])
def test_the_site_by_site_rounds_keep_each_sites_own_result(optima, name, monkeypatch):
    """Each site keeps or drops its move by itself, and the evaluation the
    rounds hand on is put together site by site: re-evaluating the load they
    return gives every site's cost and emissions again. Their LP value never
    falls, the routing serves no more than the demand and fits the room, and
    the jobs only ever go (checked on the calls a pool schedule makes)."""
    from carbonsched.decomposition import pool_schedule as ps

    # the generated 4-site week: sites that keep and sites that do not in the same round
    inst = generated_budget_binding() if name == "generated" else optima[name][0]
    pool, choices = lagrangian_choices(inst, 4)
    rr, _ = inst.region_pairs
    calls = []
    inner = ps._shave_rounds

    def spy(inst_, pool_, keep, y, P, ev, mu, budget, deadline):
        out = inner(inst_, pool_, keep, y, P, ev, mu, budget, deadline)
        calls.append(((keep, y, ev, mu), out))
        return out

    monkeypatch.setattr(ps, "_shave_rounds", spy)
    for chosen, score in choices:
        schedule_on_pool(inst, pool, repair_schedule(inst, chosen, score), score, method="lagrangian")
    assert calls
    for (starts, y, ev, mu), (keep, y2, P2, ev2, n) in calls:
        assert n > 0
        before = ps._lp_value(inst, starts, y, ev, mu)
        again = pool.evaluate(P2, None, mu=mu)
        assert again.feasible.all()
        np.testing.assert_allclose(again.cost, ev2.cost, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(again.emissions, ev2.emissions, rtol=1e-6, atol=1e-6)
        assert ps._lp_value(inst, keep, y2, ev2, mu) >= before - 1e-6 * max(1.0, abs(before))
        assert set(keep) <= set(starts)
        served = np.zeros((inst.R, inst.H))
        np.add.at(served, rr, y2)
        assert (served <= inst.L + 1e-6).all()
        assert (inference_load(inst, y2) <= job_room(inst) - schedule_load(inst, keep) + 1e-6).all()
        np.testing.assert_allclose(P2, inst.pue * (inst.idle[:, None] + schedule_load(inst, keep)
                                                   + inference_load(inst, y2)), rtol=1e-9, atol=1e-6)
        if inst.budget is not None:
            assert float(np.nansum(ev2.emissions)) <= inst.budget * (1 + 1e-9)


def test_an_evaluation_put_together_site_by_site(optima):
    """Each site's fields (cost, gradients, emissions, flags, seconds) come
    from the evaluation it kept; the ranks' seconds stay the older one's."""
    from carbonsched.decomposition import pool_schedule as ps

    inst, _, _ = optima["no_budget"]
    pool, _ = lagrangian_choices(inst, 1)
    P = inst.pue * (inst.idle[:, None] + 0.5 * job_room(inst))
    old = pool.evaluate(P, None)
    new = pool.evaluate(0.8 * P, None)
    ok = np.arange(inst.S) % 2 == 0
    got = ps._pick(ok, new, old)
    for f in ("feasible", "cost", "g_load", "g_alloc", "exact_failed", "site_s", "emissions"):
        want = np.where(ok.reshape((-1,) + (1,) * (np.ndim(getattr(old, f)) - 1)), getattr(new, f), getattr(old, f))
        np.testing.assert_array_equal(getattr(got, f), want, err_msg=f)
    np.testing.assert_array_equal(got.rank_s, old.rank_s)
    assert not np.allclose(new.cost, old.cost)  # the two evaluations differ: the test can tell them apart


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
    monkeypatch.setattr(PrimalRecovery, "keep_lp_s", lambda self: 0.0)  # predicted to fit: it is tried
    rec = PrimalRecovery(inst, pool, "lagrangian", Clock(limit=600.0))
    first = rec.from_choice(*choices[0], 60.0)
    assert rec.dispatch.solves > 0  # the keep LP was tried
    assert rec.pool_only and rec.pool_schedules == 1 and first is not None
    solves = rec.dispatch.solves
    later = [rec.from_choice(chosen, score, 60.0) for chosen, score in choices[1:]]
    assert rec.dispatch.solves == solves  # the dispatch model is not solved again
    assert rec.pool_schedules == 1 + sum(c is not None for c in later)
    for cand in [first, *later]:
        if cand is not None:
            _checked(inst, cand, mono.objective)
    assert rec.from_starts(first.starts) is None  # nor by the site search's re-routing


def test_a_keep_lp_out_of_its_share_after_it_finished_once_is_a_miss_not_the_pool(optima, monkeypatch):
    """Where the keep LP has finished in this run, a later one out of its
    share (the share shrinks with the time left) gives no schedule and
    leaves the recoveries on the keep LP: the pool's schedules are the
    worse ones, for runs whose keep LP never finishes."""
    inst, mono, _ = optima["committed_generator"]
    pool, choices = lagrangian_choices(inst, 2)
    rec = PrimalRecovery(inst, pool, "lagrangian", Clock(limit=600.0))
    first = rec.from_choice(*choices[0], 60.0)
    assert rec.keep_lp_finished and not rec.pool_only and first is not None
    _checked(inst, first, mono.objective)
    monkeypatch.setattr(recovery, "KEEP_SHARE", 1e-9)
    monkeypatch.setattr(recovery, "KEEP_MIN_S", 1e-9)
    rec.keep_lp_last_s = 0.0  # as if it had finished at once: it is tried
    solves = rec.dispatch.solves
    assert rec.from_choice(*choices[1], 60.0) is None
    assert rec.dispatch.solves > solves  # the keep LP was tried, and ran out of its share
    assert not rec.pool_only and rec.pool_schedules == 0 and rec.keep_lp_skips == 0


def test_a_keep_lp_whose_last_run_took_longer_than_its_share_now_is_not_tried(optima, monkeypatch):
    """The keep LP's share shrinks with the time left. Where the last keep
    LP that finished took longer than the share now, the recovery does not
    try it (it would run out of its share for no schedule): a miss, no
    solve, not the pool. With a share above the last run's seconds it is
    tried and gives the schedule again."""
    inst, mono, _ = optima["committed_generator"]
    pool, choices = lagrangian_choices(inst, 2)
    rec = PrimalRecovery(inst, pool, "lagrangian", Clock(limit=600.0))
    first = rec.from_choice(*choices[0], 60.0)
    assert first is not None and rec.keep_lp_last_s is not None and rec.keep_lp_last_s > 0
    _checked(inst, first, mono.objective)
    last = rec.keep_lp_last_s
    monkeypatch.setattr(recovery, "KEEP_MIN_S", 0.0)
    monkeypatch.setattr(recovery, "KEEP_SHARE", 0.5 * last / 600.0)  # a share of half the last run's seconds
    solves = rec.dispatch.solves
    assert rec.from_choice(*choices[1], 60.0) is None
    assert rec.dispatch.solves == solves and rec.keep_lp_skips == 1
    assert rec.last_keep_skip is not None and rec.last_keep_skip[0] == last and rec.last_keep_skip[1] < last
    assert not rec.pool_only and rec.pool_schedules == 0
    monkeypatch.setattr(recovery, "KEEP_SHARE", 0.5)  # 300 s: room again
    rec.seen.clear()  # the same choice, recovered again
    again = rec.from_choice(*choices[1], 60.0)
    assert rec.dispatch.solves > solves and rec.keep_lp_skips == 1 and rec.last_keep_skip is None
    assert again is not None
    _checked(inst, again, mono.objective)


def test_a_keep_lp_predicted_past_its_share_is_not_tried(optima, monkeypatch):
    """Where the keep LP's predicted seconds (its dispatch model's build
    and the LP) pass its share, the first recovery goes to the pool
    without building the dispatch model; with a share that holds the
    prediction, the keep LP is used."""
    inst, mono, _ = optima["committed_generator"]
    pool, choices = lagrangian_choices(inst, 1)
    rec = PrimalRecovery(inst, pool, "lagrangian", Clock(limit=600.0))
    assert rec.keep_lp_s() > 0
    monkeypatch.setattr(recovery, "KEEP_MIN_S", 0.0)
    monkeypatch.setattr(recovery, "KEEP_SHARE", 0.5 * rec.keep_lp_s() / 600.0)
    first = rec.from_choice(*choices[0], 600.0)
    assert rec.pool_only and rec.pool_schedules == 1 and rec._dispatch is None
    _checked(inst, first, mono.objective)
    monkeypatch.setattr(recovery, "KEEP_SHARE", 2.0 * rec.keep_lp_s() / 600.0 + 0.1)
    rec = PrimalRecovery(inst, pool, "lagrangian", Clock(limit=600.0))
    first = rec.from_choice(*choices[0], 600.0)
    assert not rec.pool_only and rec.pool_schedules == 0 and rec.dispatch.solves > 0
    _checked(inst, first, mono.objective)


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
