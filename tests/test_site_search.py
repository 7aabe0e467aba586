"""The site neighbourhood search: around the optimal schedule its site
plans add up to exactly the optimum (the schedule is in the neighbourhood,
and the neighbourhood is feasible), from a poor schedule it only ever
offers better, checked schedules that stay below the optimum, and it
leaves the site blocks as the site relaxation needs them."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from carbonsched import solve
from carbonsched.check import check_solution, evaluate
from carbonsched.config import LagrangianOptions
from carbonsched.decomposition.lagrangian import evaluate_dual, setup_dual
from carbonsched.decomposition.pool import SubproblemPool, block_plan
from carbonsched.decomposition.pool_schedule import plans_solution
from carbonsched.decomposition.recovery import Candidate, PrimalRecovery
from carbonsched.decomposition.site_blocks import BlockRound, block_picks, from_prices
from carbonsched.decomposition.site_search import emission_caps, homes, search_rounds
from carbonsched.derived import site_costs, unserved_penalty

from cases import CASES, generated_budget_binding, triples_of


def _pool(inst):
    pool = SubproblemPool(inst, None)
    pool.calibrate()
    return pool


def _tol(x):
    return 1e-6 * max(1.0, abs(x))


def _search_once(inst, pool, cand, score):
    start = np.full(inst.J, -1, dtype=np.int64)
    start[inst.triples[0][cand.starts]] = cand.starts
    return pool.site_search(homes(inst, cand.starts, score), start, cand.solution.inference,
                            emission_caps(inst, cand.solution.sites), site_limit=60.0, gap=1e-9, round_limit=600.0)


@pytest.mark.parametrize("name", list(CASES))
def test_site_plans_around_the_optimum_add_up_to_the_optimum(optima, name):
    """Searched around the optimal schedule, each site's plan is at least
    its share of the optimum (the optimum is its MIP start) and their sum
    is a feasible schedule's value: together exactly the optimum."""
    inst, mono, _ = optima[name]
    pool = _pool(inst)
    sol = mono.solution
    cand = Candidate(sol, evaluate(inst, sol).objective, triples_of(inst, sol), None)
    res = _search_once(inst, pool, cand, np.zeros(inst.triples[0].size))
    assert not np.isnan(res.value).any()
    plans = float(res.value.sum()) - unserved_penalty(inst)
    assert plans == pytest.approx(mono.objective, abs=1e-5 * max(1.0, abs(mono.objective)))
    # the plans make a schedule: it passes the checker, and its objective is theirs
    sol = plans_solution(inst, np.flatnonzero(res.x > 0.5), res.y, res.dispatch, "test")
    rep = check_solution(inst, sol, check_reported=False)
    assert rep.ok, str(rep)
    assert rep.breakdown.objective == pytest.approx(plans, abs=1e-5 * max(1.0, abs(plans)))


@pytest.mark.parametrize("name", list(CASES))
def test_site_search_offers_only_better_checked_schedules_below_the_optimum(optima, name):
    """From the first Lagrangian point's repaired choice (a poor schedule),
    every schedule the search offers passes the checker, beats the one
    before it, and stays at or below the monolithic optimum."""
    inst, mono, _ = optima[name]
    lay, compute, _, u = setup_dual(inst, LagrangianOptions())
    pool = _pool(inst)
    pt, _ = evaluate_dual(inst, lay, u, compute, pool)
    rec = PrimalRecovery(inst, pool, method="lagrangian")
    start = rec.from_choice(pt.choice.chosen, pt.choice.score)
    assert start is not None
    offered: list[Candidate] = []
    rounds, gain, _ = search_rounds(inst, pool, rec, start, pt.choice.score, deadline=np.inf, gap=1e-9,
                                    offer=offered.append)
    assert rounds >= 1
    values = [start.objective] + [c.objective for c in offered]
    assert all(b > a for a, b in pairwise(values))
    assert gain == pytest.approx(values[-1] - start.objective)
    for c in offered:
        rep = check_solution(inst, c.solution, check_reported=False)
        assert rep.ok, str(rep)
        assert c.objective <= mono.objective + _tol(mono.objective)
        if inst.budget is not None:
            assert site_costs(inst, c.solution.sites)[1].sum() <= inst.budget * (1 + 1e-9) + 1e-6


#: the cases whose budget leaves room for the left-out jobs: on the others the re-dispatched schedule spends the
#: whole budget, each site's emissions cap is then its own emissions, and no site can take a job back
#: (picks or not: the neighbourhood keeps each site within its share of the budget)
ROOM_IN_THE_BUDGET = [n for n in CASES if n not in ("budget_binding", "forces_feasibility_cuts", "half_hour_periods")]


@pytest.mark.parametrize("name", ROOM_IN_THE_BUDGET)
def test_picks_bring_back_the_jobs_a_schedule_leaves_out(optima, name):
    """From the optimum with half its jobs left out (re-dispatched), the
    search with no score to place them gains nothing from them; with picks
    that name each left-out job's site in the optimum it brings them back
    there: it gains, what it offers passes the checker and stays at or
    below the optimum."""
    inst, mono, _ = optima[name]
    jj, ss, _ = inst.triples
    pool = _pool(inst)
    rec = PrimalRecovery(inst, pool, method="lagrangian")
    full = triples_of(inst, mono.solution)
    start = rec.from_starts(full[::2])
    assert start is not None and start.objective < mono.objective - _tol(mono.objective)
    no_score = np.zeros(jj.size)
    _, plain, _ = search_rounds(inst, pool, rec, start, no_score, deadline=np.inf, gap=1e-9, offer=lambda c: None)
    picks = np.full(inst.J, -1, dtype=np.int64)
    picks[jj[full]] = ss[full]
    offered: list[Candidate] = []
    _, gain, _ = search_rounds(inst, pool, rec, start, no_score, deadline=np.inf, gap=1e-9, offer=offered.append,
                               picks=picks)
    assert gain > plain + _tol(mono.objective)
    for c in offered:
        assert check_solution(inst, c.solution, check_reported=False).ok
        assert c.objective <= mono.objective + _tol(mono.objective)
    back = np.intersect1d(jj[offered[-1].starts], jj[full[1::2]])
    assert back.size and np.all(ss[offered[-1].starts][np.isin(jj[offered[-1].starts], back)] == picks[back])


def test_site_search_gains_on_a_week_long_budget_binding_instance():
    """On a generated 3-site, 168-hour instance with a binding budget the
    search beats the first repaired choice (measured: 848,767 -> 853,647,
    the optimum 855,799); what it offers passes the checker, keeps the
    budget and stays below the optimum."""
    inst = generated_budget_binding(3, 8)
    mono = solve(inst, "monolithic", gap=1e-6)
    assert mono.status == "optimal"
    lay, compute, _, u = setup_dual(inst, LagrangianOptions())
    pool = _pool(inst)
    pt, _ = evaluate_dual(inst, lay, u, compute, pool)
    rec = PrimalRecovery(inst, pool, method="lagrangian")
    start = rec.from_choice(pt.choice.chosen, pt.choice.score)
    offered: list[Candidate] = []
    _, gain, _ = search_rounds(inst, pool, rec, start, pt.choice.score, deadline=np.inf, gap=1e-9,
                               offer=offered.append)
    assert gain > 1e-4 * start.objective
    for c in offered:
        assert check_solution(inst, c.solution, check_reported=False).ok
        assert site_costs(inst, c.solution.sites)[1].sum() <= inst.budget * (1 + 1e-9) + 1e-6
        assert c.objective <= mono.objective + _tol(mono.objective)


def test_search_leaves_the_site_blocks_as_the_relaxation_needs_them(optima):
    """A round of the site relaxation gives the same bounds before and
    after a search on the same blocks (bounds, rows and costs restored)."""
    inst, mono, _ = optima["budget_binding"]
    pool = _pool(inst)
    mult = from_prices(inst, inst.pb * inst.dt * inst.pue, 5.0)
    before = pool.site_blocks(mult, site_limit=60.0, gap=1e-9, round_limit=600.0)
    sol = mono.solution
    cand = Candidate(sol, evaluate(inst, sol).objective, triples_of(inst, sol), None)
    _search_once(inst, pool, cand, np.zeros(inst.triples[0].size))
    after = pool.site_blocks(mult, site_limit=60.0, gap=1e-9, round_limit=600.0)
    np.testing.assert_allclose(after.bound, before.bound, rtol=1e-7, atol=1e-5)


def test_homes_put_each_job_where_it_runs_else_at_its_best_triple(optima):
    inst, mono, _ = optima["no_budget"]
    jj, ss, _ = inst.triples
    starts = triples_of(inst, mono.solution)
    score = np.arange(jj.size, dtype=float) - jj.size / 2  # later triples score higher; the first half negative
    home = homes(inst, starts, score)
    assert np.array_equal(home[jj[starts]], ss[starts])
    for j in np.setdiff1d(np.arange(inst.J), jj[starts]):
        ks = np.flatnonzero(jj == j)
        best = ks[np.argmax(score[ks])]
        want = ss[best] if (score[best] > 0 or inst.required[j]) else -1
        assert home[j] == want
    # the site relaxation's picks place the jobs that do not run where they name a site, never a running one (half
    # the schedule's jobs left out: every job runs in this optimum)
    starts = starts[::2]
    home = homes(inst, starts, score)
    idle = np.setdiff1d(np.arange(inst.J), jj[starts])
    assert idle.size >= 2
    picks = np.full(inst.J, -1, dtype=np.int64)
    picks[idle[0]] = (home[idle[0]] + 1) % inst.S  # a site other than its best triple's
    picks[jj[starts[0]]] = (ss[starts[0]] + 1) % inst.S  # a running job: stays where it runs
    picked = homes(inst, starts, score, picks)
    assert np.array_equal(picked[jj[starts]], ss[starts])
    assert picked[idle[0]] == picks[idle[0]] != home[idle[0]]
    assert np.array_equal(picked[idle[1:]], home[idle[1:]])


def test_block_picks_name_the_first_site_whose_block_runs_the_job():
    jobs = np.array([[0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])  # [S, J]
    rnd = BlockRound(bound=np.zeros(3), value=np.zeros(3), jobs=jobs, served=np.zeros((3, 1, 1)),
                     emissions=np.zeros(3), site_s=np.zeros(3))
    assert block_picks(rnd).tolist() == [-1, 0, 1, 0]


def test_block_plan_spreads_by_size_then_by_measured_times(optima):
    """Site blocks go first by their size, then move where the measured
    times say a fifth of the busiest rank's load can go, and stay put
    otherwise (or while a block has no time yet)."""
    inst, _, _ = optima["no_budget"]
    first = block_plan(inst, 2, None, np.zeros(inst.S))
    assert set(first.tolist()) == {0, 1}
    owner = np.array([0, 0, 1])
    times = np.array([5.0, 5.0, 1.0])  # rank 0 holds 10 s, rank 1 1 s
    moved = block_plan(inst, 2, owner, times)
    assert np.bincount(moved, times, 2).max() == pytest.approx(6.0)
    balanced = np.array([0, 1, 1])
    assert np.array_equal(block_plan(inst, 2, balanced, np.array([5.0, 3.0, 2.0])), balanced)
    assert np.array_equal(block_plan(inst, 2, owner, np.array([5.0, 5.0, 0.0])), owner)
    assert np.array_equal(block_plan(inst, 1, owner, times), owner)


def test_a_round_past_its_deadline_builds_no_block_and_keeps_the_schedule(optima, monkeypatch):
    """A site is left out once the round's time is up, its block not built
    (on `large` such builds had taken the run past its limit), and a built
    block not solved either (on `large` a round that began with little
    time left went through a rank's 25 built sites, 5 s past the limit):
    the site relaxation's round then has no bound (nan: no bound on OB is
    claimed), and the site search's answer is the schedule it started
    from."""
    name = next(iter(CASES))
    inst, mono, _ = optima[name]
    pool = _pool(inst)
    rnd = pool.site_blocks(from_prices(inst, np.zeros((inst.S, inst.H)), 0.0), site_limit=60.0, gap=1e-9,
                           round_limit=0.0)
    assert np.isnan(rnd.bound).all() and np.isnan(rnd.value).all()
    sol = mono.solution
    cand = Candidate(sol, evaluate(inst, sol).objective, triples_of(inst, sol), None)
    start = np.full(inst.J, -1, dtype=np.int64)
    start[inst.triples[0][cand.starts]] = cand.starts
    res = pool.site_search(homes(inst, cand.starts, np.zeros(inst.triples[0].size)), start,
                           cand.solution.inference, emission_caps(inst, cand.solution.sites), site_limit=60.0,
                           gap=1e-9, round_limit=0.0)
    assert not pool.blocks
    assert np.isnan(res.value).all()
    assert np.array_equal(np.flatnonzero(res.x > 0.5), np.sort(cand.starts))
    rr, sr = inst.region_pairs
    assert np.allclose(res.y, np.minimum(sol.inference[rr, sr], inst.L[rr]))
    # built blocks: a round with time solves them all; one past its deadline solves none and keeps them
    mult = from_prices(inst, np.zeros((inst.S, inst.H)), 0.0)
    assert np.isfinite(pool.site_blocks(mult, site_limit=60.0, gap=1e-9, round_limit=60.0).bound).all()
    built = dict(pool.blocks)
    assert len(built) == inst.S
    from carbonsched.decomposition.site_blocks import SiteBlock

    def refuse(self, *args, **kwargs):
        raise AssertionError("a block solved past the round's deadline")

    monkeypatch.setattr(SiteBlock, "solve", refuse)
    monkeypatch.setattr(SiteBlock, "search", refuse)
    rnd = pool.site_blocks(mult, site_limit=60.0, gap=1e-9, round_limit=0.0)
    assert np.isnan(rnd.bound).all() and pool.blocks == built
    res = pool.site_search(homes(inst, cand.starts, np.zeros(inst.triples[0].size)), start,
                           cand.solution.inference, emission_caps(inst, cand.solution.sites), site_limit=60.0,
                           gap=1e-9, round_limit=0.0)
    assert np.isnan(res.value).all()
    assert np.array_equal(np.flatnonzero(res.x > 0.5), np.sort(cand.starts))
