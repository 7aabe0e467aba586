"""Lagrangian against the monolithic optimum and the LP relaxation bound;
same answer over 1, 2 and 3 MPI ranks; both dual updates."""

import json
import logging
import re
from types import SimpleNamespace

import numpy as np
import pytest

from carbonsched import SolveOptions, solve
from carbonsched.check import check_solution
from carbonsched.config import LagrangianOptions
from carbonsched.decomposition.box_step import next_radius
from carbonsched.decomposition.lagrangian import (
    BoxStepBundle,
    ComputeRelaxation,
    DualLayout,
    DualPoint,
    average_choice,
    bundle_cut_cap,
    drop_cuts,
    dual_outpaces,
    evaluate_dual,
    polish_keep,
    recovery_share,
    setup_dual,
    surplus_share,
)
from carbonsched.decomposition.pool import SubproblemPool
from carbonsched.derived import window_sums
from carbonsched.instance import load_instance, parse_instance
from carbonsched.solution import read_solution

from cases import CASES, _gen, generated_budget_binding_reference
from conftest import GAP_REPORT
from mpi_util import run_cli_mpi


def _check_bracket(name, inst, mono, res):
    opt = mono.objective
    tol = 1e-6 * max(1.0, abs(opt))
    GAP_REPORT.append(f"lagrangian {name:26s} objective {res.objective:14.4f} bound {res.bound:14.4f} "
                      f"gap {res.gap:.2e}  monolithic {opt:14.4f}  iterations {res.solution.stats['iterations']}, "
                      f"stop {res.solution.stats['stop']}")
    assert res.check.ok, res.check.violations
    assert res.bound >= opt - tol
    assert opt >= res.objective - tol


@pytest.mark.parametrize("name", list(CASES))
def test_lagrangian_brackets_the_optimum_and_reaches_the_lp_bound(optima, name):
    inst, mono, lp_bound = optima[name]
    res = solve(inst, "lagrangian", gap=1e-4, max_iterations=400)
    _check_bracket(name, inst, mono, res)
    # the same certified gap as the monolithic solve: on these small cases the polish's last MILP is over every
    # triple reduced-cost fixing leaves free (the exact endgame), so its bound closes the gap the LP bound leaves
    assert res.gap <= 1e-4 and res.status == "optimal"
    # capacity dualised: the dual iterations' bound is the LP relaxation bound, never below it (the site
    # relaxation that runs after them may go below it: tests/test_site_blocks.py)
    lagr = res.solution.stats.get("lagrangian_bound", res.bound)
    assert lagr >= lp_bound - 1e-6 * abs(lp_bound)


@pytest.mark.parametrize("name", list(CASES))
def test_bundle_reaches_the_lp_bound(optima, name):
    """With no gap to stop at, the bundle runs to dual convergence, where
    its bound is the LP relaxation bound (Geoffrion)."""
    inst, mono, lp_bound = optima[name]
    res = solve(inst, "lagrangian", gap=0.0, polish=False, site_bound=False)
    assert res.solution.stats["stop"] == "dual_converged"
    assert res.bound == pytest.approx(lp_bound, rel=1e-6)
    assert res.check.ok and res.objective <= mono.objective + 1e-6 * abs(mono.objective)


def test_subgradient_update_gives_a_valid_but_looser_bound(optima):
    inst, mono, lp_bound = optima["budget_binding"]
    sg = solve(inst, "lagrangian", gap=1e-4, max_iterations=150, dual_update="subgradient", site_bound=False)
    _check_bracket("budget_binding/subgradient", inst, mono, sg)
    # the dual iterations' bound (before the exact endgame's MILP) is never below the LP bound
    assert sg.solution.stats.get("lagrangian_bound", sg.bound) >= lp_bound - 1e-6 * abs(lp_bound)


def test_keeping_capacity_in_the_compute_problem(optima):
    inst, mono, _ = optima["no_budget"]
    res = solve(inst, "lagrangian", gap=1e-4, max_iterations=150, keep_capacity=True)
    _check_bracket("no_budget/keep_capacity", inst, mono, res)


def test_compute_relaxation_matches_brute_force():
    """The vectorised per-job choice equals enumerating each job's triples."""
    inst = CASES["budget_binding"]()
    rng = np.random.default_rng(1)
    rho = rng.uniform(0, 200, (inst.S, inst.H))
    ch = ComputeRelaxation(inst).solve(rho)
    jj, ss, tt = inst.triples
    for j in range(inst.J):
        best, arg = -np.inf, -1
        for k in np.flatnonzero(jj == j):
            v = inst.val[j] - inst.pow[j] * rho[ss[k], tt[k]:tt[k] + inst.dur[j]].sum()
            if v > best:
                best, arg = v, k
        expect = arg if (best > 0 or inst.required[j]) else -1
        assert ch.chosen[j] == expect
    ws = window_sums(inst, rho)
    assert ws[0] == pytest.approx(rho[ss[0], tt[0]:tt[0] + inst.dur[jj[0]]].sum())


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_same_objective_over_mpi_ranks(optima, tmp_path, ranks):
    """The same iterates, and the same site relaxation bound and site search
    from site MILPs spread over the ranks (no_budget: the site relaxation
    ends below the LP bound there)."""
    inst, mono, lp_bound = optima["no_budget"]
    p = tmp_path / "inst.json"
    p.write_text(json.dumps(inst.to_dict()))
    # without the early exact endgame, which would certify this small case before the site stages run
    serial = solve(inst, "lagrangian", SolveOptions(gap=1e-6), early_endgame=False)
    d = run_cli_mpi(ranks, [str(p), "--method", "lagrangian", "--gap", "1e-6", "--no-early-endgame"],
                    tmp_path / "sol.json")
    assert d["stats"]["ranks"] == ranks
    assert check_solution(inst, read_solution(d, inst)).ok
    assert d["stats"]["site_relaxation_rounds"] >= 1
    # the site search's MILPs, spread over the ranks by their own plan, find the same schedules
    assert d["stats"]["site_search_rounds"] == serial.solution.stats["site_search_rounds"] >= 1
    assert d["objective"] == pytest.approx(serial.objective, rel=1e-9)
    assert d["bound"] == pytest.approx(serial.bound, rel=1e-9)
    assert mono.objective - 1e-6 * abs(mono.objective) <= d["bound"] < lp_bound


def test_recoveries_get_less_time_with_each_miss_in_a_row():
    """The share of time recoveries may take falls with each recovery in a
    row that did not beat the incumbent, never to zero, and is the full
    share again after one that did (misses back to 0)."""
    shares = [recovery_share(0.6, m) for m in range(12)]
    assert shares[0] == 0.6
    assert np.all(np.diff(shares) < 0) and shares[-1] > 0
    assert shares[2] == pytest.approx(0.3) and shares[10] == pytest.approx(0.1)


def _rows(*points):
    return [{"t": t, "bound": b, "incumbent": i} for t, b, i in points]


def test_the_dual_keeps_the_end_stages_reserves_only_while_it_closes_the_gap_faster():
    """The pace is the bound's fall plus the incumbent's rise over the last
    ``span`` seconds; at that pace the iterations keep the stages' seconds
    where they would close at least ``share`` of the gap left in them."""
    # 12 s ago: 12.316 M / 12.025 M; now 12.198 M / 12.025 M (medium, 45-57 s): 118 k in 12 s, gap 173 k
    fast = _rows((40.0, 12.40e6, 12.0e6), (45.0, 12.316e6, 12.025e6), (57.0, 12.198e6, 12.025e6))
    assert dual_outpaces(fast, 36.0, span=12.0, share=0.2)  # 354 k in 36 s >= 34.6 k
    assert not dual_outpaces(fast, 2.0, span=12.0, share=0.2)  # 19.7 k in 2 s < 34.6 k
    # the row 12 s back is the latest at least span before the last: 45 s, not 40 s
    assert dual_outpaces(fast, 3.6, span=12.0, share=0.2) == (118e3 / 12.0 * 3.6 >= 0.2 * 173e3)
    slow = _rows((45.0, 12.200e6, 12.025e6), (57.0, 12.198e6, 12.026e6))  # 3 k in 12 s
    assert not dual_outpaces(slow, 36.0, span=12.0, share=0.2)
    # the incumbent's rise counts as much as the bound's fall
    assert dual_outpaces(_rows((45.0, 12.2e6, 11.9e6), (57.0, 12.2e6, 12.0e6)), 36.0, span=12.0, share=0.2)
    # too early to tell: keep iterating; no incumbent, no gap or no seconds to take: nothing taken
    assert dual_outpaces(_rows((50.0, 12.3e6, 12.0e6), (57.0, 12.2e6, 12.0e6)), 36.0, span=12.0)
    assert dual_outpaces(_rows((45.0, 12.3e6, None), (57.0, 12.2e6, 12.0e6)), 36.0, span=12.0)
    assert not dual_outpaces(_rows((45.0, 12.3e6, None), (57.0, 12.2e6, None)), 36.0, span=12.0)
    assert not dual_outpaces(_rows((45.0, 12.3e6, 12.0e6), (57.0, 12.0e6, 12.0e6)), 36.0, span=12.0)
    assert not dual_outpaces(fast, 0.0, span=12.0) and not dual_outpaces([], 36.0, span=12.0)
    # after a resume the clock starts again: the rows before it do not count (a slow stretch there is ignored)
    resumed = _rows((1.0, 12.199e6, 12.025e6), (60.0, 12.199e6, 12.025e6), (3.0, 12.199e6, 12.025e6),
                    (14.0, 12.198e6, 12.026e6))
    assert dual_outpaces(resumed, 36.0, span=12.0)  # the row at 1.0 s is the run before's
    assert not dual_outpaces(resumed[:2] + _rows((70.0, 12.198e6, 12.026e6)), 36.0, span=12.0)


def test_after_the_dual_took_the_reserves_the_site_relaxation_then_the_search_keep_theirs():
    """The polish keeps its reserve, or what the site relaxation's and the
    site search's leave of the time left."""
    assert polish_keep(None, 18.0, 24.0, 18.0) == 18.0  # no limit: its reserve
    assert polish_keep(70.0, 18.0, 24.0, 18.0) == 18.0  # every reserve there
    assert polish_keep(50.0, 18.0, 24.0, 18.0) == 8.0  # the search's 18 s first
    assert polish_keep(30.0, 18.0, 24.0, 18.0) == 0.0  # the site relaxation's 24 s first
    assert polish_keep(30.0, 0.0, 24.0, 0.0) == 0.0
    # a share below what the polish can use goes to the stages before it
    assert polish_keep(50.0, 18.0, 24.0, 18.0, least=12.0) == 0.0
    assert polish_keep(50.0, 18.0, 24.0, 18.0, least=8.0) == 8.0


def test_time_the_dual_iterations_leave_beyond_the_reserves_is_shared_with_the_site_search():
    assert surplus_share(None, 18.0, 24.0, 18.0, bound_due=True) == 0.0  # no limit: nothing beyond
    assert surplus_share(60.0, 18.0, 24.0, 18.0, bound_due=True) == 0.0  # every reserve just there
    assert surplus_share(50.0, 18.0, 24.0, 18.0, bound_due=True) == 0.0  # the iterations took some: nothing beyond
    assert surplus_share(160.0, 18.0, 24.0, 18.0, bound_due=True) == 50.0  # half; the site relaxation takes the rest
    assert surplus_share(160.0, 18.0, 0.0, 18.0, bound_due=False) == 124.0  # no site relaxation after it: all


def test_a_dual_that_converges_early_leaves_the_site_searches_more_than_their_own_time(optima):
    """A case whose bundle converges within seconds of a 30 s limit: both
    site searches, given 0.5 s of their own (too little: a search is
    skipped below 1 s), run on the time left: the first on what the
    iterations left beyond the reserves, the one from the site
    relaxation's job placements on what the relaxation kept for it or
    left. The run still brackets the monolithic optimum and ends within
    its limit."""
    inst, mono, _ = optima["forces_feasibility_cuts"]
    res = solve(inst, "lagrangian", LagrangianOptions(gap=1e-9, early_endgame=False, time_limit=30.0,
                                                      site_search_time=0.5, threads=1))
    st = res.solution.stats
    assert st["stop"] != "time_limit"  # the iterations ended early, as the case is meant to
    assert st["site_search_extra_s"] > 1.0 and st["site_search_rounds"] >= 1
    assert st["site_relaxation_rounds"] >= 1 and st["picks_search_rounds"] >= 1
    assert st["timings_s"]["total_s"] <= 30.0
    _check_bracket("time left to the searches", inst, mono, res)


def test_without_the_site_search_the_time_it_would_have_had_goes_on_to_the_polish(optima):
    """Site search off, a polish of 0.5 s (skipped below 1 s) and a dual
    that converges within seconds of a 30 s limit: the time the
    iterations and the site relaxation leave goes on to the polish, which
    runs and closes the gap the relaxation leaves (before, it was lost
    with the search that did not run, and the run ended at 2.4e-4)."""
    inst, mono, _ = optima["site_without_battery"]
    res = solve(inst, "lagrangian", LagrangianOptions(gap=1e-9, early_endgame=False, time_limit=30.0,
                                                      site_search=False, polish_time=0.5, threads=1))
    st = res.solution.stats
    assert "site_search_rounds" not in st and st["site_relaxation_rounds"] >= 1
    assert "polish_gain" in st and res.gap <= 1e-9
    assert st["timings_s"]["total_s"] <= 30.0
    _check_bracket("time left to the polish", inst, mono, res)


@pytest.mark.timing
def test_iterations_that_run_into_the_end_stages_reserves_leave_the_site_relaxation_its_own(monkeypatch):
    """Where the dual iterations outpace the site search and the polish
    (here they always do, by a stub), they run on into those stages'
    reserves, never the site relaxation's: it still runs and brings the
    bound below the LP's, the run ends within its limit, the schedule passes
    the checker and the bound is above the monolithic optimum. The exact
    endgame, which would take every reserve on a case this small, is off."""
    import carbonsched.decomposition.lagrangian as lg

    inst, mono = generated_budget_binding_reference(4, 12, 96)
    monkeypatch.setattr(lg, "dual_outpaces", lambda trace, seconds, span, share=lg.STAGE_YIELD: True)
    monkeypatch.setattr(lg.BoxStepBundle, "converged", lambda self, tol: False)
    res = solve(inst, "lagrangian", LagrangianOptions(gap=0.0, early_endgame=False, time_limit=10.0, threads=1))
    st = res.solution.stats
    assert st["dual_into_stages_s"] > 0.0 and st["stop"] == "time_limit"
    assert st["site_relaxation_rounds"] >= 1 and res.bound < st["lagrangian_bound"]
    assert st["timings_s"]["total_s"] <= 10.0
    _check_bracket("stages' reserves taken", inst, mono, res)


def test_the_bundle_drops_each_parts_oldest_loose_cuts_and_never_its_newest():
    part = np.array([0, 1, 0, 0, 1, 0, 1, 0])  # part 0: rows 0 2 3 5 7; part 1: rows 1 4 6
    loose = np.array([False, True, True, False, True, True, True, True])
    # keep 3: part 0 drops two loose ones, oldest first (2 and 5; row 0 binds, 7 is the newest); part 1 is within
    assert drop_cuts(part, loose, 3).tolist() == [2, 5]
    # keep 2: part 1 drops its oldest loose row (1); part 0 has only two loose ones besides its newest
    assert drop_cuts(part, loose, 2).tolist() == [1, 2, 5]
    # keep 1: part 0 keeps 3 binding-or-newest rows > 2 x 1, so it is cut back to one, oldest first
    assert drop_cuts(part, loose, 1).tolist() == [0, 1, 2, 3, 4, 5]
    # one cap per part: part 0 keeps 3 (drops 2 and 5), part 1 keeps 2 (drops 1)
    assert drop_cuts(part, loose, np.array([3, 2])).tolist() == [1, 2, 5]
    # a numpy integer is one cap for every part, as a Python int is
    assert drop_cuts(part, loose, np.int64(2)).tolist() == [1, 2, 5]
    # a cap for every part, some parts without a cut yet (the bundle's caps cover all of them)
    assert drop_cuts(part, loose, np.array([3, 2, 30, 30])).tolist() == [1, 2, 5]
    # nothing over the cap: nothing dropped
    assert drop_cuts(part, loose, 5).size == 0


def test_the_bundles_cut_cap_falls_with_the_number_of_multipliers():
    assert bundle_cut_cap(48) == 30  # the test cases: few multipliers, cheap master
    assert bundle_cut_cap(6721) == 10 and bundle_cut_cap(33601) == 10  # medium, large
    assert bundle_cut_cap(3361) == 20  # the budget-binding 10 x 168 x 60 case
    assert bundle_cut_cap(4000) == 17


def test_the_run_caps_the_sites_parts_and_the_compute_sides_alike():
    inst = load_instance("medium")
    lay, _, update, _ = setup_dual(inst, LagrangianOptions())
    assert lay.n == 6721
    assert update.max_cuts == update.max_compute_cuts == bundle_cut_cap(lay.n) == 10


def test_the_averaged_choice_takes_each_jobs_heaviest_triple_where_the_job_mostly_runs():
    # job 0: triples 0, 1; job 1: triples 2, 3; job 2: triple 4
    jj = np.array([0, 0, 1, 1, 2])
    inst = SimpleNamespace(triples=(jj, np.zeros(5, int), np.zeros(5, int)), J=3,
                           required=np.array([False, False, True]))
    choices = [np.array([0, 2, -1]), np.array([1, 2, -1]), np.array([1, -1, 4])]
    w = np.array([0.4, 0.4, 0.2])
    # job 0 runs in all (triple 1 weighs 0.6), job 1 in 0.8 (triple 2), job 2 in 0.2 but is required
    assert average_choice(inst, choices, w).tolist() == [1, 2, 4]
    assert average_choice(inst, choices, w, threshold=0.9).tolist() == [1, -1, 4]
    inst.required[:] = False
    assert average_choice(inst, choices, w).tolist() == [1, 2, -1]
    assert average_choice(inst, [], np.zeros(0)).tolist() == [-1, -1, -1]


def test_the_bundles_cut_weights_make_a_primal_that_fits_the_dualised_capacity_at_convergence():
    """The compute cuts' weights (the bundle master's row duals) make a
    convex combination of the compute side's points whose IT load keeps to
    capacity, and meets it where its multiplier is positive, once the dual
    has converged -- the optimality conditions of the master (each compute
    cut's capacity coefficients are its point's IT load). Weights taken
    from anything else, e.g. the newest cut alone, break it. (no_budget:
    the case whose capacity binds at the dual optimum.)"""
    inst = CASES["no_budget"]()
    lay, compute, update, u = setup_dual(inst, LagrangianOptions())
    pool = SubproblemPool(inst, None)
    for _ in range(400):
        pt, _ = evaluate_dual(inst, lay, u, compute, pool)
        u = update.step(pt)
        if update.converged(1e-7 * abs(pt.L)):
            break
    assert update.converged(1e-7 * abs(pt.L)) and not update.on_edge
    choices, w = update.choice_weights()
    assert len(choices) >= 1 and np.all(w >= 0) and w.sum() == pytest.approx(1.0)
    k = inst.S * inst.H  # the lam columns, after pi (no budget here)
    cols = [dict(zip(r[2].tolist(), r[3].tolist())) for r, c in zip(update.p.added, update.row_part) if c == 0]
    its = np.array([[c.get(k + i, 0.0) for i in range(k)] for c in cols])  # each compute cut's IT load
    IT = (w @ its).reshape(inst.S, inst.H)
    cap = np.repeat(inst.cap[:, None], inst.H, axis=1)
    lam = lay.split(u)[2]
    assert np.all(cap + 1e-4 * cap >= IT)
    assert (lam > 1e-6).any() and np.allclose(IT[lam > 1e-6], cap[lam > 1e-6], rtol=1e-4)
    # the newest cut alone overloads a site
    assert np.any(its[-1].reshape(inst.S, inst.H) > cap + 1e-4 * cap)


def test_the_box_halves_only_after_a_run_of_null_steps_once_a_step_was_serious():
    """Before the first serious step each null step halves the box; after
    it only the ``shrink_after``-th null step in a row does, and a serious
    step starts the count again; a good serious step doubles it (to 64 at
    most), and it never falls below 1e-3."""
    def run(steps, radius=0.5, shrink_after=3):
        out, null_run, any_serious = [], 0, False
        for kind in steps:  # "n" null, "s" serious, "g" good serious
            serious = kind != "n"
            null_run = 0 if serious else null_run + 1
            any_serious |= serious
            radius = next_radius(radius, serious=serious, good=kind == "g", null_run=null_run,
                                 any_serious=any_serious, shrink_after=shrink_after)
            out.append(radius)
        return out

    assert run("nn") == [0.25, 0.125]
    assert run("nngnnn") == [0.25, 0.125, 0.25, 0.25, 0.25, 0.125]
    assert run("snnsnnn") == [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25]  # the serious step restarts the count
    assert run("n" * 20)[-1] == 1e-3 and run("g" * 20)[-1] == 64.0
    # the site relaxation's column generation: halved at each null step, doubled to 10 at most
    radius, out, null_run = 0.002, [], 0
    for kind in "gnn" + "g" * 14 + "n":
        null_run = 0 if kind != "n" else null_run + 1
        radius = next_radius(radius, serious=kind != "n", good=kind == "g", null_run=null_run,
                             any_serious=True, shrink_after=1, most=10.0)
        out.append(radius)
    assert out[:3] == [0.004, 0.002, 0.001] and max(out) == 10.0 and out[-1] == 5.0


def test_each_compute_cut_keeps_its_own_job_choice_when_cuts_are_dropped():
    """The job choice behind each compute cut stays with its row as the
    bundle drops cuts (each point's compute cut has f = its number, at
    u = 0, so the row's lower bound names the point)."""
    lay = DualLayout(S=1, H=2, has_mu=False, has_lam=False)
    b = BoxStepBundle(lay, np.ones(2), np.zeros(2), nparts=2, max_cuts_per_part=2, max_compute_cuts=2)
    for i in range(7):
        g0 = np.array([1.0 + i, -1.0])
        g1 = np.array([-1.0, 1.0 + i])
        choice = SimpleNamespace(chosen=np.array([i, -1]))
        pt = DualPoint(np.zeros(2), 0.0, g0 + g1, choice, 0.0,
                       [(float(i), np.arange(2), g0), (float(-i), np.arange(2), g1)])
        b.step(pt)
        rows = [(r[0], ch) for r, c, ch in zip(b.p.added, b.row_part, b.row_choice) if c == 0]
        assert len(rows) >= 1 and all(ch is not None and ch[0] == lo for lo, ch in rows)
        assert all(ch is None for c, ch in zip(b.row_part, b.row_choice) if c != 0)
    assert len(b.row_choice) == len(b.p.added) < 14  # some were dropped


def test_recoveries_after_the_first_iterations_use_the_aggregated_primal(optima):
    """On the case with the most distinct job choices (on the smallest
    cases the aggregated choice repeats one recovered before, and the
    point's own choice is recovered instead)."""
    inst, mono, _ = optima["forces_feasibility_cuts"]
    res = solve(inst, "lagrangian", gap=0.0, max_iterations=40, polish=False, site_bound=False, site_search=False)
    assert res.solution.stats["averaged_recoveries"] >= 1
    _check_bracket("forces_feasibility_cuts/averaged recovery", inst, mono, res)


def test_the_log_has_a_line_per_recovery_with_its_value_against_the_incumbent(optima, caplog):
    """Each recovery logs its iteration, its start (last choice or the
    aggregated primal) and its schedule's value: the first against no
    incumbent, and the best value logged is the run's incumbent (nothing
    else improves it with the end stages off)."""
    inst, mono, _ = optima["budget_binding"]
    with caplog.at_level(logging.INFO, logger="carbonsched.trace"):
        res = solve(inst, "lagrangian", gap=0.0, max_iterations=40, polish=False, site_bound=False,
                    site_search=False)
    pat = re.compile(r"recovery at iteration (\d+) from the (last choice|aggregated primal): "
                     r"([-\d,.]+|no schedule|LP [-\d,.]+, not re-dispatched) \(incumbent ([-\d,.]+|none)\)")
    found = [m for r in caplog.records if (m := pat.search(r.getMessage()))]
    assert found and found[0].group(4) == "none" and int(found[0].group(1)) == 1
    assert res.solution.stats["recoveries"] == len(found)
    assert sum(m.group(2) == "aggregated primal" for m in found) == res.solution.stats["averaged_recoveries"]
    values = [float(m.group(3).replace(",", "")) for m in found if m.group(3)[0].isdigit()]
    assert max(values) == pytest.approx(res.objective, abs=0.006)  # logged to the cent
    assert res.objective <= mono.objective * (1 + 1e-9) + 1e-6


def test_without_a_time_limit_every_due_recovery_runs_whatever_the_machines_speed(optima, monkeypatch):
    """The recovery share splits a time limit; an iteration-limited run
    must not depend on how fast recoveries run (a clean-clone CI run
    recovered another set of choices than this checkout and failed a test).
    With the share at zero -- a
    machine on which every recovery looks too slow -- the run without a
    time limit recovers exactly as often as with the real share, and the
    same run with a time limit recovers once."""
    import carbonsched.decomposition.lagrangian as lg

    inst, mono, _ = optima["budget_binding"]
    kw = dict(gap=0.0, max_iterations=40, polish=False, site_bound=False, site_search=False)
    real = solve(inst, "lagrangian", **kw)
    monkeypatch.setattr(lg, "recovery_share", lambda share, misses: 0.0)
    starved = solve(inst, "lagrangian", **kw)
    assert starved.solution.stats["recoveries"] == real.solution.stats["recoveries"] > 1
    assert starved.objective == pytest.approx(real.objective, rel=1e-12)
    timed = solve(inst, "lagrangian", time_limit=600.0, **kw)
    assert timed.solution.stats["recoveries"] == 1
    _check_bracket("budget_binding/starved share", inst, mono, starved)


@pytest.mark.parametrize("edit", ["no jobs", "no job worth its power"])
def test_a_schedule_that_runs_no_job_is_found(edit):
    """Where the answer runs no training job (none given, or none worth its
    power) the empty job choice is recovered, dispatched, and certified:
    before, the Lagrangian skipped that choice and ended with no schedule
    at all (exit status 4) on instances the monolithic solve certifies."""
    d = _gen(7, periods=12, jobs=6)
    if edit == "no jobs":
        d["training_jobs"] = []
    else:
        for j in d["training_jobs"]:
            j.update(value=0.01, required=False)
    inst = parse_instance(d)
    mono = solve(inst, "monolithic", gap=1e-9)
    for method in ("lagrangian", "benders"):
        res = solve(inst, method, gap=1e-6)
        assert res.status == "optimal" and res.check.ok, (method, res.status, res.check.violations)
        assert res.objective == pytest.approx(mono.objective, rel=1e-6)
        assert res.bound >= mono.objective - 1e-6 * abs(mono.objective)
        assert res.solution.training == [] and mono.solution.training == []


def test_a_run_without_jobs_checkpoints_and_resumes(tmp_path):
    """With no job the bundle's compute cuts carry empty job choices; their
    checkpoint once failed to reshape them (a ValueError traceback, no file
    written)."""
    d = _gen(7, periods=12, jobs=6)
    d["training_jobs"] = []
    inst = parse_instance(d)
    mono = solve(inst, "monolithic", gap=1e-9)
    ck = tmp_path / "run.npz"
    first = solve(inst, "lagrangian", gap=0.0, max_iterations=3, checkpoint=ck, polish=False, site_bound=False,
                  early_endgame=False)
    assert ck.exists() and first.solution.stats["iterations"] == 3
    res = solve(inst, "lagrangian", gap=1e-6, resume=ck)
    assert res.solution.stats["resumed_after"] == 3 and res.check.ok
    assert res.objective == pytest.approx(mono.objective, rel=1e-6) and res.status == "optimal"


def test_a_stop_asked_for_during_the_end_stages_cuts_them_short(optima, monkeypatch):
    """A SIGINT during the exact endgame once let the site search, the
    window search and the polish run on after it, and the run reported
    `stalled`; the stages after the one it cut short are now skipped and
    the run reports `interrupted`, with its schedule and a valid bound."""
    import carbonsched.decomposition.lagrangian as lagrangian
    from carbonsched import interrupts

    inst, mono, _ = optima["budget_binding"]
    asked = []

    def endgame_stopped_by_a_signal(st, *args, **kwargs):
        asked.append(st.iteration)
        interrupts.request("SIGINT received")

    monkeypatch.setattr(lagrangian, "_early_endgame", endgame_stopped_by_a_signal)
    try:
        res = solve(inst, "lagrangian", gap=0.0, max_iterations=5)
    finally:
        interrupts.clear()
    assert asked == [5]
    stats = res.solution.stats
    assert res.status == "interrupted" and stats["stop"] == "interrupted"
    assert "site_search_rounds" not in stats and "polish_gain" not in stats
    _check_bracket("budget_binding/interrupted", inst, mono, res)


def test_with_no_recovered_schedule_the_exact_endgame_starts_from_none():
    """The random sweep's seed 8207 (4 sites, 2 required jobs, an islanded
    site, committed units, unreachable latency SLOs): every recovery's
    schedule was infeasible for the committed units, so the run ended
    `no_solution` where the optimum is -18,011.92. With no schedule the
    exact endgame now runs from none, over every triple."""
    from helpers import sweep_instance

    inst = sweep_instance(8207, 0.5)
    mono = solve(inst, "monolithic", gap=1e-9)
    res = solve(inst, "lagrangian", gap=1e-4)
    assert mono.status == "optimal" and res.status == "optimal"
    assert res.solution.stats["recoveries"] >= 1 and "early_endgame_gain" in res.solution.stats
    _check_bracket("sweep 8207 (no recovered schedule)", inst, mono, res)
