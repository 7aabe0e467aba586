"""Primal recovery: every candidate is checked and never beats the optimum;
where the budget binds, the LP over candidate triples decides which jobs run
and stays within the budget; a HiGHS object interrupted by its deadline
solves normally afterwards."""

import numpy as np
import pytest

from carbonsched import highs
from carbonsched.check import check_solution
from carbonsched.clock import Clock
from carbonsched.decomposition.pool import SubproblemPool
from carbonsched.decomposition.recovery import PrimalRecovery
from carbonsched.instance import parse_instance

from cases import CASES, _gen, lagrangian_choices


@pytest.mark.parametrize("name", list(CASES))
def test_recovered_schedules_are_checked_and_below_the_optimum(optima, name):
    inst, mono, _ = optima[name]
    pool, choices = lagrangian_choices(inst, 6)
    rec = PrimalRecovery(inst, pool, "lagrangian", Clock())
    found = 0
    for chosen, score in choices:
        cand = rec.from_choice(chosen, score)
        if cand is None:
            continue
        found += 1
        rep = check_solution(inst, cand.solution, check_reported=False)
        assert rep.ok, rep.violations
        assert cand.objective <= mono.objective + 1e-6 * max(1.0, abs(mono.objective))
        assert rep.breakdown.objective == pytest.approx(cand.objective, rel=1e-9)
    assert found >= 1


def _tight_budget_instance(frac):
    """The budget-binding case with its budget cut to ``frac`` of what the
    unconstrained optimum emits: whole job choices no longer fit."""
    from carbonsched import solve

    d = _gen(1, jobs=8, periods=12)
    d["carbon_budget_t"] = None
    free = solve(parse_instance(d), "monolithic", gap=1e-9)
    d["carbon_budget_t"] = frac * free.emissions
    return parse_instance(d), free


def test_budget_binding_recovery_weighs_jobs_against_emissions():
    """Everyone's first choice (all jobs, priced at the grid's price) breaks
    a budget of 60% of the unconstrained emissions; the recovery's LP over
    candidate triples keeps the schedule within the budget, drops or moves
    jobs rather than failing, and lands within reach of the optimum."""
    from carbonsched import solve

    inst, free = _tight_budget_instance(0.6)
    opt = solve(inst, "monolithic", gap=1e-9)
    pool, choices = lagrangian_choices(inst, 1)
    chosen, score = choices[0]
    rec = PrimalRecovery(inst, pool, "lagrangian", Clock())
    cand = rec.from_choice(chosen, score)
    assert cand is not None
    rep = check_solution(inst, cand.solution, check_reported=False)
    assert rep.ok, rep.violations
    assert rep.breakdown.emissions_t <= inst.budget * (1 + 1e-6)
    assert rec.guided == 1  # the repaired choice bound the budget (or broke it): the LP decided
    assert cand.objective <= opt.objective + 1e-6 * abs(opt.objective)
    # not a schedule that merely drops everything: within 10% of the optimum on this toy case
    assert cand.objective >= opt.objective - 0.10 * abs(opt.objective)


def test_an_interrupted_highs_object_solves_again():
    """A solve stopped by its deadline (the interrupt callback) must not
    leave the flag set: the next solve of the same object runs to the end."""
    inst, _ = _tight_budget_instance(0.8)
    from carbonsched.model import build_monolithic

    p = highs.compile_model(build_monolithic(inst))
    p.deadline.at = 0.0  # already past: the first callback interrupts
    h = p.h
    h.setOptionValue("output_flag", False)
    h.run()
    assert h.modelStatusToString(h.getModelStatus()) == "Interrupted by user"
    info = highs.solve(p, mip_gap=1e-9)
    assert info.optimal, info.raw_status
    assert np.isfinite(info.objective)


@pytest.mark.parametrize("name", ["budget_binding", "committed_generator", "forces_feasibility_cuts"])
def test_dispatch_model_without_job_columns_matches_the_full_model(optima, name):
    """The recovery's dispatch model (schedule as load) and the full model
    with x fixed give the same routing-and-dispatch optimum for the same
    schedule: the monolithic optimum's, and a schedule with one job fewer."""
    from carbonsched.check import evaluate
    from carbonsched.fixed import FixedScheduleModel

    inst, mono, _ = optima[name]
    jj, ss, tt = inst.triples
    key = {(inst.job_ids[jj[k]], inst.site_ids[ss[k]], int(tt[k])): k for k in range(jj.size)}
    starts = np.array(sorted(key[t] for t in mono.solution.training))
    full = FixedScheduleModel(inst)
    lean = FixedScheduleModel(inst, job_load=True)
    assert lean.x_cols.size == 0 and lean.p.num_col == full.p.num_col - full.x_cols.size + inst.S * inst.H
    for sched in (starts, starts[1:]):
        a, oa = full.solve(sched)
        b, ob = lean.solve(sched)
        assert (a is None) == (b is None)
        if a is None:
            continue
        assert ob == pytest.approx(oa, rel=1e-7, abs=1e-6)
        rep = check_solution(inst, b, check_reported=False)
        assert rep.ok, rep.violations
        assert evaluate(inst, b).objective == pytest.approx(oa, rel=1e-7, abs=1e-6)
    # the full schedule is the monolithic optimum
    assert lean.solve(starts)[1] == pytest.approx(mono.objective, rel=1e-7)


def test_without_memory_for_the_full_model_recovery_keeps_the_jobs_worth_their_emissions(monkeypatch):
    """Where the full model would not fit, the carbon-aware pass is skipped
    and a choice that breaks the budget goes to the dispatch model's keep
    LP: still a checked schedule within the budget, and the full model is
    never built."""
    import carbonsched.decomposition.recovery as recovery

    monkeypatch.setattr(recovery, "memory_check", lambda inst, **kw: (False, 1e9, 1.0))
    inst, _ = _tight_budget_instance(0.35)
    pool, choices = lagrangian_choices(inst, 1)
    rec = PrimalRecovery(inst, pool, "lagrangian", Clock())
    cand = rec.from_choice(*choices[0])
    assert cand is not None and rec.skipped_full == 1 and rec.dropped_by_lp >= 1 and rec._fixed is None
    rep = check_solution(inst, cand.solution, check_reported=False)
    assert rep.ok, rep.violations
    assert rep.breakdown.emissions_t <= inst.budget * (1 + 1e-6)


@pytest.mark.parametrize("frac", [0.35, 0.6, 1.2])
def test_the_keep_lp_is_the_full_models_lp_over_the_chosen_triples(frac):
    """The dispatch model's keep LP (job shares z in [0, 1], each at its own
    triple) is the full model's LP with x free in [0, 1] on exactly those
    triples (required jobs at 1), units relaxed: the same optimum. The jobs
    it runs whole fit the dispatch model, within the budget, and are worth
    at least the required jobs alone."""
    from carbonsched.fixed import FixedScheduleModel

    inst, _ = _tight_budget_instance(frac)
    _, choices = lagrangian_choices(inst, 1)
    chosen, score = choices[0]
    starts = chosen[chosen >= 0]
    assert starts.size == np.unique(inst.triples[0][starts]).size  # one triple per job
    dm = FixedScheduleModel(inst, job_load=True)
    full = FixedScheduleModel(inst)
    keep, sol, obj = dm.keep_lp(starts)
    assert keep is not None and set(keep) <= set(starts)
    upper = np.zeros(full.x_cols.size)
    upper[starts] = 1.0
    lower = upper * inst.required[inst.triples[0]]
    _, ref, _ = full.solve_bounds(lower, upper, integer_x=False, integer_units=False)
    assert dm.keep_lp_value == pytest.approx(ref, rel=1e-7, abs=1e-6)
    assert sol is not None and obj <= ref + 1e-6 * abs(ref)
    assert obj == pytest.approx(dm.solve(keep, relax_units=True)[1], rel=1e-7, abs=1e-6)
    rep = check_solution(inst, sol, check_reported=False)
    assert rep.ok, rep.violations
    assert rep.breakdown.objective == pytest.approx(obj, rel=1e-7, abs=1e-6)
    if inst.budget is not None:
        assert rep.breakdown.emissions_t <= inst.budget * (1 + 1e-6)
    only_required = dm.solve(starts[inst.required[inst.triples[0][starts]]], relax_units=True)[1]
    assert obj >= only_required - 1e-6 * abs(only_required)
    # the model is back as it was: the whole schedule solves as before the keep LP
    before = FixedScheduleModel(inst, job_load=True).solve(starts, relax_units=True)[1]
    after = dm.solve(starts, relax_units=True)[1]
    assert (before is None) == (after is None) and (before is None or after == pytest.approx(before, rel=1e-9))


def test_the_polish_knows_what_building_the_full_model_costs():
    """A polish that must first build the full model needs its predicted
    build and translation time; none once it is built (the Lagrangian keeps
    a polish reserve only where the polish can use it)."""
    from carbonsched.model import estimate_build_s

    inst = CASES["budget_binding"]()
    rec = PrimalRecovery(inst, SubproblemPool(inst, None), method="lagrangian", clock=Clock())
    assert rec.full_model_build_s() > estimate_build_s(inst) > 0
    assert rec.fixed is not None and rec.full_model_build_s() == 0.0


@pytest.mark.parametrize("name", list(CASES))
def test_window_search_over_the_whole_horizon_is_the_full_milp(optima, name):
    """A window that covers the whole horizon frees every job: the restricted
    MILP is the full MILP, so from the first recovered schedule it reaches
    the monolithic optimum. A half window's schedule is checked, at least
    the incumbent and at most the optimum."""
    inst, mono, _ = optima[name]
    pool, choices = lagrangian_choices(inst, 1)
    rec = PrimalRecovery(inst, pool, "lagrangian", Clock())
    start = rec.from_choice(*choices[0])
    assert start is not None
    opt = mono.objective
    half = rec.window_search(start, 0, inst.H // 2, time_limit=60.0, gap=1e-9)
    assert half is not None and check_solution(inst, half.solution, check_reported=False).ok
    assert start.objective - 1e-6 * abs(opt) <= half.objective <= opt + 1e-6 * abs(opt)
    whole = rec.window_search(start, 0, inst.H, time_limit=60.0, gap=1e-9)
    assert whole is not None and check_solution(inst, whole.solution, check_reported=False).ok
    assert whole.objective == pytest.approx(opt, rel=1e-7)


def test_exact_redispatch_stopped_by_its_time_limit_keeps_a_dispatch_or_fails_the_site(optima, monkeypatch):
    """The committed units' MILPs of the exact re-dispatch run within the
    time they are given (on xlarge, without a limit, they kept the first
    recovery busy past the run's limit). Stopped with a dispatch, the site
    is feasible at that dispatch's cost; stopped without one, it fails (the
    recovery then has no candidate), and nothing raises."""
    from carbonsched.constants import TerminationCondition as TC
    from carbonsched.decomposition import subproblem
    from carbonsched.derived import facility_load

    inst, mono, _ = optima["committed_generator"]
    pool = SubproblemPool(inst, None)
    pool.calibrate()
    P = facility_load(inst, mono.solution)
    ref = pool.evaluate(P, None, exact=True, time_limit=60.0)
    assert ref.feasible.all()
    real = highs.solve
    seen = []

    def stopped(p, *, time_limit=None, with_point=True, **kw):
        info = real(p, time_limit=time_limit, **kw)
        if time_limit is None or p.relaxed:  # only the units' MILPs, which got a time limit
            return info
        seen.append(time_limit)
        return highs.SolveInfo(TC.TIME_LIMIT, info.objective if with_point else None, None, None, info.solve_s)

    monkeypatch.setattr(subproblem.highs, "solve", lambda p, **kw: stopped(p, **kw))
    kept = pool.evaluate(P, None, exact=True, time_limit=5.0)
    assert seen and max(seen) <= 5.0
    assert kept.feasible.all()
    np.testing.assert_allclose(kept.cost, ref.cost, rtol=1e-9)
    monkeypatch.setattr(subproblem.highs, "solve", lambda p, **kw: stopped(p, with_point=False, **kw))
    failed = pool.evaluate(P, None, exact=True, time_limit=5.0)
    committed = np.array([not pool._sub(s).exact for s in range(inst.S)])
    assert committed.any()
    assert not failed.feasible[committed].any() and failed.exact_failed[committed].all()


def test_a_restricted_milp_that_ran_past_its_limit_makes_the_next_limit_shorter(optima, monkeypatch):
    """HiGHS checks its time limit only here and there (on `medium` a
    window MILP given 2.8 s took 5.0 s): the fixed model keeps the overrun
    it saw back from the next limit, so a polish of several MILPs does not
    run past its time; the margin halves with each solve that keeps time."""
    import time

    from carbonsched import fixed
    from carbonsched.fixed import FixedScheduleModel

    inst, mono, _ = optima["committed_generator"]
    fx = FixedScheduleModel(inst)
    real = highs.solve
    limits = []

    def late(p, *, time_limit=None, **kw):
        info = real(p, time_limit=time_limit, **kw)
        limits.append(time_limit)
        time.sleep(0.4 if len(limits) == 1 else 0.0)  # the first solve runs 0.4 s past its limit
        return info

    monkeypatch.setattr(fixed.highs, "solve", late)
    K = inst.triples[0].size
    lo, hi = np.zeros(K), np.ones(K)
    for limit in (0.2, 30.0, 30.0):  # the first one's 0.4 s sleep takes it past its 0.2 s
        sol, obj, _ = fx.solve_restricted(lo, hi, time_limit=limit, gap=1e-9)
        assert check_solution(inst, sol, check_reported=False).ok and obj == pytest.approx(mono.objective, rel=1e-6)
    assert limits[0] == 0.2
    kept = 30.0 - limits[1]
    assert 0.2 - 0.01 <= kept <= fx.solve_s  # at least the sleep past the limit, at most all the time taken
    assert 30.0 - limits[2] == pytest.approx(0.5 * kept)  # the second solve kept its time: the margin halves


def test_a_schedule_whose_lp_cannot_beat_the_floor_is_not_re_dispatched(optima, monkeypatch):
    """With committed units a recovery ends in an exact re-dispatch (a pool
    round of site MILPs). Given a floor (the incumbent's value) it is left
    out where the schedule's LP (units relaxed) is worth at most the floor:
    that LP value bounds the re-dispatched schedule's from above, so a
    floor just below the schedule changes nothing, and a floor above every
    schedule leaves every exact re-dispatch out."""
    inst, _, _ = optima["committed_generator"]
    assert inst.committed.any()
    pool, choices = lagrangian_choices(inst, 6)
    exact_calls = []
    evaluate = pool.evaluate
    monkeypatch.setattr(pool, "evaluate", lambda *a, **kw: (exact_calls.append(kw.get("exact")), evaluate(*a, **kw))[1])
    compared = 0
    for chosen, score in choices:
        cand = PrimalRecovery(inst, pool, "lagrangian", Clock()).from_choice(chosen, score)
        if cand is None:
            continue
        below = PrimalRecovery(inst, pool, "lagrangian", Clock())
        same = below.from_choice(chosen, score, floor=cand.objective - 1e-3 * abs(cand.objective))
        assert same is not None and same.objective == pytest.approx(cand.objective, rel=1e-9)
        exact_calls.clear()
        above = PrimalRecovery(inst, pool, "lagrangian", Clock())
        floor = 10.0 * abs(cand.objective) + 1e6
        assert above.from_choice(chosen, score, floor=floor) is None
        assert above.bounded_out >= 1 and True not in exact_calls
        assert cand.objective <= above.last_bounded * (1 + 1e-9) + 1e-6 <= floor + 1e-6
        compared += 1
    assert compared >= 2


def test_a_recovery_s_solves_share_its_time_limit_instead_of_each_taking_it_whole():
    """Each solve in a recovery got the recovery's whole time limit (on the
    budget-binding case at 3 s one given 0.17 s took 0.29 s and ended the
    run past its limit); they now share it: the clock a recovery runs on
    counts down from its limit, and without one it is the run's."""
    import time

    run = Clock(limit=100.0)
    rec = PrimalRecovery(CASES["budget_binding"](), None, "test", run)
    step = rec._step_clock(0.5)
    time.sleep(0.2)
    assert step.cap(0.5) <= 0.3 + 1e-3  # what a solve started now may take: what is left, not the whole 0.5 s
    assert rec._step_clock(None) is run


def test_where_the_site_re_dispatch_fails_the_rounded_commitment_dispatches_without_a_milp(optima, monkeypatch):
    """Where a committed unit cannot follow the LP's load site by site, the
    recovery puts each unit on wherever the LP ran it at all and solves the
    LP at that commitment instead of the schedule's dispatch MILP (on a
    10-site instance with committed units and an islanded site that MILP
    took 5-9 s per recovery, and the first recovery used most of a 40 s
    run). The schedule passes the checker and is no better than the
    schedule's own MILP optimum, nor than the optimum."""
    from carbonsched import fixed

    inst, mono, _ = optima["committed_generator"]
    assert inst.committed.any()
    pool = SubproblemPool(inst, None)
    pool.calibrate()
    rec = PrimalRecovery(inst, pool, "lagrangian", Clock())
    monkeypatch.setattr(rec, "_exact_units", lambda sol, time_limit=None: None)
    milps = []
    real = fixed.FixedScheduleModel.solve

    def counted(self, starts, **kw):
        milps.append(not kw.get("relax_units", False))
        return real(self, starts, **kw)

    monkeypatch.setattr(fixed.FixedScheduleModel, "solve", counted)
    starts = np.asarray(_triples_of(inst, mono.solution), dtype=int)
    cand = rec.from_starts(starts)
    assert cand is not None and rec.rounded_commitments >= 1
    assert not any(milps), "the schedule's dispatch MILP ran"
    rep = check_solution(inst, cand.solution, check_reported=False)
    assert rep.ok, rep.violations
    exact, obj = rec.dispatch.solve(starts)  # the schedule's own dispatch MILP (units binary)
    assert exact is not None
    exact_ob = check_solution(inst, exact, check_reported=False).breakdown.objective
    assert cand.objective <= exact_ob + 1e-6 * abs(exact_ob)
    assert cand.objective <= mono.objective + 1e-6 * abs(mono.objective)
    assert cand.objective >= exact_ob - 0.05 * abs(exact_ob)  # a dispatch, not an empty one


def _triples_of(inst, sol):
    """The triple index of each (job, site, start) a solution runs."""
    jj, ss, tt = inst.triples
    return [int(np.flatnonzero((jj == inst.job_index(j)) & (ss == inst.site_index(s)) & (tt == t))[0])
            for j, s, t in sol.training]


def test_a_schedule_s_mip_start_is_its_own_dispatch_at_its_commitment(optima):
    """The MIP start of a schedule recovered without a full column vector is
    the full model's LP at the schedule's own commitment: a feasible point
    (the MILP accepts it) worth at least the schedule's own objective, found
    without the schedule's dispatch MILP."""
    inst, mono, _ = optima["committed_generator"]
    pool = SubproblemPool(inst, None)
    pool.calibrate()
    rec = PrimalRecovery(inst, pool, "lagrangian", Clock())
    starts = np.asarray(_triples_of(inst, mono.solution), dtype=int)
    cand = rec.from_starts(starts)  # the dispatch model's candidate: no full vector
    assert cand is not None and cand.x is None
    x = rec.start_x(cand)
    assert x is not None and cand.x is x
    fx = rec.fixed
    sol = fx.solution_from(x, "start")
    rep = check_solution(inst, sol, check_reported=False)
    assert rep.ok, rep.violations
    assert rep.breakdown.objective >= cand.objective - 1e-6 * abs(cand.objective)
    n = fx.x_cols.size
    lower = np.zeros(n)
    lower[starts] = 1.0
    out, obj, _ = fx.solve_restricted(lower, lower, start=x, time_limit=60.0, gap=1e-9)
    assert out is not None and obj >= rep.breakdown.objective - 1e-6 * abs(obj)
