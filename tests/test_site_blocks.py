"""The site relaxation (Dantzig-Wolfe by site), reduced-cost fixing and
the restricted MILP: every bound they give is >= the monolithic optimum,
the site relaxation can go below the LP relaxation bound, and fixing never
removes an optimal schedule."""

from __future__ import annotations

import logging
import re
import time

import numpy as np
import pytest

from carbonsched import solve
from carbonsched.config import LagrangianOptions
from carbonsched.decomposition.lagrangian import (
    EXACT_ENDGAME_TRIPLES,
    endgame_due,
    evaluate_dual,
    priced_sites,
    setup_dual,
)
from carbonsched.decomposition.pool import SubproblemPool
from carbonsched.decomposition.site_blocks import (
    SiteMultipliers,
    column_generation,
    dual_value,
    fixable_triples,
    from_prices,
    lagrangian_site_bounds,
)
from carbonsched.fixed import FixedScheduleModel

from cases import CASES, generated_budget_binding_reference, triples_of


def _pool(inst):
    pool = SubproblemPool(inst, None)
    pool.calibrate()
    return pool


def _round(pool):
    return lambda m: pool.site_blocks(m, site_limit=60.0, gap=1e-9, round_limit=600.0)


def _tol(x):
    return 1e-6 * max(1.0, abs(x))


def _lagrangian_points(inst, iterations=80):
    """The points of a bundle run: (L, triple scores, u) per iteration."""
    lay, compute, update, u = setup_dual(inst, LagrangianOptions())
    pool = _pool(inst)
    out = []
    for _ in range(iterations):
        pt, _ = evaluate_dual(inst, lay, u, compute, pool)
        out.append((pt.L, pt.choice.score, pt.u))
        u = update.step(pt)
    return lay, out


@pytest.mark.parametrize("name", list(CASES))
def test_site_relaxation_bound_lies_between_the_optimum_and_the_lp_bound(optima, name):
    """Column generation from the grid prices converges to the Dantzig-
    Wolfe bound by site: never below the MILP optimum, never above the LP
    relaxation bound; every D it evaluates on the way is a valid bound."""
    inst, mono, lp_bound = optima[name]
    pool = _pool(inst)
    seen = []
    mult = from_prices(inst, inst.pb * inst.dt * inst.pue, 0.0)
    best, _, trace = column_generation(inst, mult, _round(pool), deadline=time.perf_counter() + 120,
                                       log=lambda D, model, rnd: seen.append(D), tol=1e-9)
    opt = mono.objective
    assert len(trace) >= 2  # it did iterate
    assert min(seen) == pytest.approx(best)
    assert all(opt - _tol(opt) <= D for D in seen)
    assert best <= lp_bound + _tol(lp_bound)
    # converged: the model's minimum meets the best D
    assert trace[-1][1] >= best - 1e-5 * abs(best)


@pytest.mark.parametrize("name", ["no_budget", "forces_feasibility_cuts"])
def test_site_relaxation_is_stronger_than_the_lp_relaxation(optima, name):
    """On these two cases the site MILPs' integrality closes part of the
    LP gap (hand-checked: 76% and 41% of it)."""
    inst, mono, lp_bound = optima[name]
    best, _, _ = column_generation(inst, from_prices(inst, inst.pb * inst.dt * inst.pue, 0.0), _round(_pool(inst)),
                                   deadline=time.perf_counter() + 120, tol=1e-9)
    assert lp_bound - best >= 0.25 * (lp_bound - mono.objective)


@pytest.mark.parametrize("name", ["budget_binding", "committed_generator"])
def test_site_relaxation_is_valid_at_any_multipliers(optima, name):
    """D is an upper bound on OB for any multipliers of the right signs,
    including far-off random ones."""
    inst, mono, _ = optima[name]
    pool = _pool(inst)
    rng = np.random.default_rng(3)
    for _ in range(5):
        lam = rng.uniform(-1, 2, inst.J) * inst.val
        lam = np.where(inst.required, lam, np.maximum(lam, 0.0))
        mult = SiteMultipliers(lam, rng.uniform(0, 300, (inst.R, inst.H)), float(rng.uniform(0, 200)))
        rnd = pool.site_blocks(mult, site_limit=60.0, gap=1e-9, round_limit=600.0)
        assert dual_value(inst, mult, rnd.bound) >= mono.objective - _tol(mono.objective)


@pytest.mark.parametrize("name", list(CASES))
def test_reduced_cost_fixing_keeps_an_optimal_schedule(optima, name):
    """Fix every triple that any Lagrangian point proves useless for a
    schedule better than the optimum less a hair: the optimal schedule
    keeps all its triples, and the restricted MILP over what is left has
    the monolithic optimum, with a bound above it."""
    inst, mono, _ = optima[name]
    opt = mono.objective
    _, points = _lagrangian_points(inst)
    fixed = np.zeros(inst.triples[0].size, dtype=bool)
    for L, score, _u in points:
        fixed |= fixable_triples(inst, L, score, opt - _tol(opt))
    assert not fixed[triples_of(inst, mono.solution)].any()
    fx = FixedScheduleModel(inst)
    sol, obj, bound = fx.solve_restricted(np.zeros(fixed.size), np.where(fixed, 0.0, 1.0), gap=1e-9)
    assert sol is not None
    assert obj == pytest.approx(opt, rel=1e-6)
    assert bound >= opt - _tol(opt)


def test_reduced_cost_fixing_fixes_triples_on_the_cases():
    """It does fix: over the six cases, a share of the triples (so the test
    above is not vacuous)."""
    total = fixed_n = 0
    for make in CASES.values():
        inst = make()
        mono = solve(inst, "monolithic", gap=1e-9)
        _, points = _lagrangian_points(inst, iterations=60)
        fixed = np.zeros(inst.triples[0].size, dtype=bool)
        for L, score, _u in points:
            fixed |= fixable_triples(inst, L, score, mono.objective - _tol(mono.objective))
        total += fixed.size
        fixed_n += int(fixed.sum())
    assert fixed_n >= 0.25 * total


@pytest.mark.parametrize("name", ["site_without_battery", "committed_generator"])
def test_restricted_milp_after_fixing_certifies_the_run(optima, name):
    """Where fixing removes at least half the triples, the Lagrangian run's
    polish is the restricted MILP over the rest, and its bound is global:
    the run ends with a gap below what the dual iterations reached."""
    inst, mono, lp_bound = optima[name]
    res = solve(inst, "lagrangian", LagrangianOptions(gap=1e-6, max_iterations=60, site_bound=False))
    st = res.solution.stats
    assert st["reduced_cost_fixed"] >= 0.5 * st["triples"]
    assert "restricted_milp_bound" in st
    assert res.check.ok, res.check.violations
    opt = mono.objective
    assert res.bound >= opt - _tol(opt) and res.objective <= opt + _tol(opt)
    assert res.bound < lp_bound - _tol(lp_bound)  # below what the dual iterations alone can prove
    assert res.gap <= 1e-6


# the cases whose dual iterations leave the gap open (on committed_generator and half_hour_periods they close it)
@pytest.mark.parametrize("name", ["budget_binding", "no_budget", "site_without_battery", "forces_feasibility_cuts"])
def test_early_exact_endgame_certifies_small_cases_before_the_site_stages(optima, name):
    """Where reduced-cost fixing leaves few triples free, the exact endgame
    runs first: its MILP's bound is global, the run is certified at the
    gap asked for, and the site stages after it do not run. With it off,
    the same run goes through the site stages and reaches the same
    objective."""
    inst, mono, _ = optima[name]
    opt = mono.objective
    res = solve(inst, "lagrangian", LagrangianOptions(gap=1e-4))
    st = res.solution.stats
    assert res.check.ok, res.check.violations
    assert "early_endgame_gain" in st and "restricted_milp_bound" in st
    assert st["reduced_cost_fixed"] <= st["triples"] and st["triples"] - st["reduced_cost_fixed"] <= EXACT_ENDGAME_TRIPLES
    assert "site_relaxation_rounds" not in st and "site_search_rounds" not in st
    assert res.status == "optimal" and res.gap <= 1e-4
    assert res.bound >= opt - _tol(opt) and opt + _tol(opt) >= res.objective >= opt - 1e-4 * abs(opt)
    off = solve(inst, "lagrangian", LagrangianOptions(gap=1e-4, early_endgame=False))
    assert off.check.ok and "early_endgame_gain" not in off.solution.stats
    assert off.bound >= opt - _tol(opt) and abs(off.objective - res.objective) <= 1e-4 * abs(opt)


def test_endgame_is_due_when_bound_and_incumbent_move_less_than_a_share_of_the_gap():
    """The hand-over rule on hand-made traces: over the last 20 iterations
    the bound came down by 600 and the incumbent went up by 300 against a
    gap of 10,000 left (9% < 10%): due; by 600 and 500 (11%): not due;
    too short a trace, or no incumbent yet: not due."""
    def trace(db, di):
        return [{"bound": 110_000.0 + db - db * k / 20, "incumbent": 100_000.0 - di + di * k / 20}
                for k in range(21)]
    assert endgame_due(trace(600.0, 300.0), window=20, share=0.1)
    assert not endgame_due(trace(600.0, 500.0), window=20, share=0.1)
    assert not endgame_due(trace(600.0, 300.0)[:20], window=20, share=0.1)
    assert not endgame_due([{"bound": 110_600.0, "incumbent": None}] + trace(600.0, 300.0)[1:], window=20, share=0.1)


def test_dual_iterations_hand_over_to_the_exact_endgame_on_a_generated_four_day_instance():
    """A generated budget-binding instance (4 sites x 96 h, 12 jobs, 286
    triples): the dual bound stalls well above the optimum, so
    the iterations hand over to the exact endgame, whose global bound
    certifies the run at the gap asked for without the site stages. Last
    round's code crept on with the dual iterations and the site stages and
    certified only in its final polish; the bracket is against a monolithic
    solve to 1e-6."""
    inst, mono = generated_budget_binding_reference(4, 12, 96)
    res = solve(inst, "lagrangian", LagrangianOptions(gap=1e-4))
    st = res.solution.stats
    assert res.check.ok, res.check.violations
    assert st["endgame_handover_at"] == st["iterations"] and st["reduced_cost_fixed"] < st["triples"]
    assert "site_relaxation_rounds" not in st and "site_search_rounds" not in st
    assert res.status == "optimal" and res.gap <= 1e-4 and res.solution.stats["stop"] == "converged"
    assert res.bound >= mono.objective - _tol(mono.objective)  # the bound holds: >= the optimum >= mono's schedule
    assert res.objective <= mono.bound + _tol(mono.bound)


@pytest.mark.timing
def test_an_exact_endgame_that_runs_out_of_time_ends_the_run_as_time_limit():
    """The shipped `small` (745 triples) needs about 28 s to certify 1e-4;
    given 15 s, the dual iterations hand over to the exact endgame, whose
    MILP stops at its limit (less its margins). The run reports
    time_limit, not a stall, within its limit, its bound the endgame's
    and above the schedule, and the checker passes."""
    from carbonsched.instance import load_instance

    inst = load_instance("small")
    res = solve(inst, "lagrangian", LagrangianOptions(gap=1e-4, time_limit=15.0, threads=1))
    st = res.solution.stats
    assert res.check.ok, res.check.violations
    assert "endgame_handover_at" in st and st["exact_endgame_stop"] == "time_limit"
    assert st["stop"] == "time_limit" and res.status == "time_limit"
    assert st["timings_s"]["total_s"] <= 15.0
    assert res.bound >= res.objective and res.gap > 1e-4


@pytest.mark.parametrize("name", ["no_budget", "forces_feasibility_cuts"])
def test_lagrangian_run_ends_below_the_lp_bound_with_the_site_relaxation(optima, name):
    """The whole run: the site relaxation after the dual iterations brings
    the reported bound below the LP relaxation bound, still above the
    optimum, and the search from its job placements runs after it; the
    schedule passes the checker."""
    inst, mono, lp_bound = optima[name]
    res = solve(inst, "lagrangian", LagrangianOptions(gap=1e-9, polish=False))
    st = res.solution.stats
    opt = mono.objective
    assert res.check.ok, res.check.violations
    assert st["site_relaxation_rounds"] >= 1
    assert st["picks_search_rounds"] >= 1  # the search from its rounds' job placements ran after it
    assert st["lagrangian_bound"] >= lp_bound - _tol(lp_bound)
    assert opt - _tol(opt) <= res.bound < lp_bound - 0.25 * (lp_bound - opt)
    assert res.objective <= opt + _tol(opt)


def test_the_site_relaxation_ends_at_the_round_that_reaches_the_runs_gap(optima, caplog):
    """With the run's gap target between the gap the site relaxation
    starts from and the one it converges to, its rounds stop at the first
    that reaches the target (before, they ran on to convergence or the
    time limit: on `large` two rounds after 0.95% at --gap 0.01); the run
    ends there, certified, its bound still above the optimum."""
    inst, mono, _ = optima["no_budget"]
    pat = re.compile(r"site relaxation round (\d+): .* gap ([0-9.]+)%")

    def rounds(gap):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="carbonsched.trace"):
            res = solve(inst, "lagrangian", LagrangianOptions(gap=gap, polish=False))
        assert res.check.ok, res.check.violations
        assert res.bound >= mono.objective - _tol(mono.objective) >= res.objective - 2 * _tol(mono.objective)
        return res, [float(m.group(2)) / 100 for r in caplog.records if (m := pat.search(r.getMessage()))]

    full, gaps = rounds(1e-9)
    assert len(gaps) >= 3 and gaps[-1] < gaps[0]  # the relaxation gains over its rounds
    target = 0.5 * (gaps[0] + gaps[-1])
    res, cut = rounds(target)
    assert res.gap <= target and res.status == "optimal"
    assert cut[-1] <= target and all(g > target for g in cut[:-1])  # it stopped at the round that reached it
    assert len(cut) < len(gaps)


def test_site_relaxation_is_skipped_where_its_blocks_would_not_fit_in_memory(optima, monkeypatch):
    """The site blocks together are about the monolithic model's size: where
    that is predicted to take more than half the memory, the run skips them
    and says so, and its bound is the Lagrangian's (never an out-of-memory
    kill)."""
    from carbonsched.decomposition import lagrangian

    inst, mono, lp_bound = optima["no_budget"]
    monkeypatch.setattr(lagrangian, "memory_check", lambda inst, **kw: (False, 1e9, 1.0))
    res = solve(inst, "lagrangian", LagrangianOptions(gap=1e-9, polish=False))
    st = res.solution.stats
    assert st["site_relaxation_skipped"] == "memory" and "site_relaxation_rounds" not in st
    assert res.check.ok
    assert res.bound == pytest.approx(lp_bound, rel=1e-6)  # the Lagrangian's own bound, the LP bound here


@pytest.mark.parametrize("name", list(CASES))
def test_a_lagrangian_point_bounds_every_site_block_without_solving_it(optima, name):
    """At multipliers from a Lagrangian point the per-site bounds from that
    point (its prices and site energy values) are >= each site block's
    optimum, and with all of them D is that point's L(u); with other job
    and demand multipliers (same carbon price) they still bound every
    block; at another carbon price there are none. So a round cut short
    gives a bound between the optimum and L(u)."""
    inst, mono, _ = optima[name]
    lay, compute, update, u = setup_dual(inst, LagrangianOptions())
    pool = _pool(inst)
    for _ in range(15):  # a point part-way, not the start
        pt, _ = evaluate_dual(inst, lay, u, compute, pool)
        u = update.step(pt)
    priced = priced_sites(inst, lay, pt)
    pi, mu, lam = lay.split(pt.u)
    mult = from_prices(inst, pi * inst.dt * inst.pue + lam, mu)
    phi = lagrangian_site_bounds(inst, mult, priced)
    assert dual_value(inst, mult, np.full(inst.S, np.nan), phi) == pytest.approx(pt.L, rel=1e-9)
    rnd = pool.site_blocks(mult, site_limit=60.0, gap=1e-9, round_limit=600.0)
    assert np.all(phi >= rnd.bound - 1e-6 * np.maximum(1.0, np.abs(rnd.bound)))
    half = rnd.bound.copy()
    half[::2] = np.nan
    D = dual_value(inst, mult, half, phi)
    assert mono.objective - _tol(mono.objective) <= D <= pt.L + _tol(pt.L)
    rng = np.random.default_rng(5)
    for _ in range(3):
        lam_j = np.maximum(mult.lam * rng.uniform(0.0, 1.5, inst.J), np.where(inst.required, -np.inf, 0.0))
        other = SiteMultipliers(lam_j, mult.nu * rng.uniform(0.0, 1.5, mult.nu.shape), mult.mu)
        phi = lagrangian_site_bounds(inst, other, priced)
        rnd = pool.site_blocks(other, site_limit=60.0, gap=1e-9, round_limit=600.0)
        assert np.all(phi >= rnd.bound - 1e-6 * np.maximum(1.0, np.abs(rnd.bound)))
    assert lagrangian_site_bounds(inst, SiteMultipliers(mult.lam, mult.nu, mult.mu + 1.0), priced) is None


def test_a_site_relaxation_round_cut_short_still_gives_a_bound(optima, monkeypatch):
    """Where a round has no time for some sites' MILPs (their bound nan, as
    the pool leaves them at its deadline), the run bounds them from the
    least L's point instead of losing the round (D inf before): every
    round still gives a bound, between the optimum and the Lagrangian's."""
    inst, mono, lp_bound = optima["no_budget"]
    real = SubproblemPool.site_blocks

    def short(self, mult, **kw):
        rnd = real(self, mult, **kw)
        rnd.bound[0] = np.nan  # site 0: no time this round
        rnd.value[0] = np.nan
        return rnd

    monkeypatch.setattr(SubproblemPool, "site_blocks", short)
    res = solve(inst, "lagrangian", LagrangianOptions(gap=1e-9, polish=False, site_bound_time=3.0))
    st = res.solution.stats
    opt = mono.objective
    assert res.check.ok, res.check.violations
    assert st["site_relaxation_rounds"] >= 1 and st["site_relaxation_bound"] is not None
    assert opt - _tol(opt) <= st["site_relaxation_bound"] <= st["lagrangian_bound"] + _tol(opt)
    assert res.bound == pytest.approx(min(st["site_relaxation_bound"], st["lagrangian_bound"]), rel=1e-12)
