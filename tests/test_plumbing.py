"""Fast unit tests of the plumbing: the HiGHS status map and solve wrapper,
typed options, the pool's buffers, the bundle master, package data, and
that importing the package changes nothing."""

import os
import subprocess
import sys
from types import SimpleNamespace

import highspy
import numpy as np
import pytest

from carbonsched import (
    BendersOptions,
    InstanceError,
    LagrangianOptions,
    OptionError,
    SolveOptions,
    TerminationCondition,
    highs,
    load_instance,
    parse_instance,
    shipped_instances,
)
from carbonsched.config import make_options
from carbonsched.decomposition.lagrangian import BoxStepBundle, DualLayout
from carbonsched.decomposition.pool import SubproblemPool
from carbonsched.decomposition.subproblem import SiteSubproblem

from cases import CASES
from helpers import knapsacks, rich_tiny

TC = TerminationCondition


# -- HiGHS ----------------------------------------------------------------------
def test_every_highs_model_status_is_mapped():
    members = [getattr(highspy.HighsModelStatus, n) for n in dir(highspy.HighsModelStatus) if n.startswith("k")]
    assert members
    missing = [m for m in members if m not in highs.TERMINATION]
    assert not missing, f"HiGHS statuses without a termination condition: {missing}"


@pytest.mark.parametrize("name,want", [
    ("kOptimal", TC.CONVERGED), ("kInfeasible", TC.INFEASIBLE), ("kTimeLimit", TC.TIME_LIMIT),
    ("kIterationLimit", TC.ITERATION_LIMIT), ("kInterrupt", TC.INTERRUPTED), ("kObjectiveBound", TC.OBJECTIVE_LIMIT),
    ("kSolutionLimit", TC.SOLUTION_LIMIT), ("kUnboundedOrInfeasible", TC.INFEASIBLE_OR_UNBOUNDED),
    ("kSolveError", TC.ERROR),
])
def test_status_map_keeps_limits_apart(name, want):
    assert highs.termination_of(getattr(highspy.HighsModelStatus, name)) is want


def test_limits_are_limits_and_proofs_are_not():
    assert TC.TIME_LIMIT.is_limit and TC.INTERRUPTED.is_limit and TC.ITERATION_LIMIT.is_limit
    assert not TC.CONVERGED.is_limit and not TC.INFEASIBLE.is_limit


def test_solve_wrapper_optimal_and_infeasible():
    p = highs.new_lp(np.zeros(2), np.array([4.0, 3.0]), np.array([-1.0, -2.0]))  # min -x - 2y
    p.add_row(-highs.INF, 5.0, np.array([0, 1]), np.array([1.0, 1.0]))  # x + y <= 5
    info = highs.solve(p)
    assert info.optimal and info.objective == pytest.approx(-8.0)  # y = 3, x = 2
    p.add_row(7.0, highs.INF, np.array([0, 1]), np.array([1.0, 1.0]))  # and x + y >= 7: infeasible
    info = highs.solve(p)
    assert info.infeasible and not info.has_solution


def test_the_interrupt_callback_stops_before_a_step_that_would_end_past_the_limit(monkeypatch):
    """HiGHS calls the interrupt callback (and checks its own time limit)
    only between its steps; after a 3 s step the callback stops a solve
    with 2 s left, since the next such step would end past its end, and
    lets one with 4 s left go on; a new solve forgets the step."""
    clock = [100.0]
    monkeypatch.setattr(highs.time, "perf_counter", lambda: clock[0])
    p = highs.new_lp(np.zeros(1), np.ones(1), np.ones(1), interruptible=True)
    d = p.deadline

    def call(at):
        clock[0] = at
        data_in = SimpleNamespace(user_interrupt=False)
        highs._interrupt_callback(None, "", None, data_in, d)
        return data_in.user_interrupt

    highs._arm(p, 110.0)
    assert not call(100.0) and not call(100.1)  # short steps
    assert not call(103.1)  # a 3 s step, ending with 6.9 s left
    assert not call(106.0)  # 4 s left: another 3 s step ends in time
    assert call(108.0)  # 2 s left: it would not
    highs._arm(p, 110.0)  # a new solve: no step seen yet
    assert not call(108.5) and not call(108.6)
    assert call(110.3)  # past the end and its grace


def test_solve_sets_the_heuristic_effort_on_every_call():
    """The exact endgame's heuristic effort does not leak into the next
    solve on the same model: a call without it is back at HiGHS's 0.05."""
    p = highs.new_lp(np.zeros(2), np.array([4.0, 3.0]), np.array([-1.0, -2.0]))
    p.add_row(-highs.INF, 5.0, np.array([0, 1]), np.array([1.0, 1.0]))
    assert highs.solve(p, heuristic_effort=0.3).optimal
    assert p.h.getOptionValue("mip_heuristic_effort")[1] == pytest.approx(0.3)
    assert highs.solve(p).optimal
    assert p.h.getOptionValue("mip_heuristic_effort")[1] == pytest.approx(0.05)


def test_solve_sets_the_random_seed_on_every_call():
    """The endgame race's seed (rank r solves with seed r) does not leak
    into the next solve on the same model: a call without one is back at
    HiGHS's seed 0."""
    p = highs.new_lp(np.zeros(2), np.array([4.0, 3.0]), np.array([-1.0, -2.0]))
    p.add_row(-highs.INF, 5.0, np.array([0, 1]), np.array([1.0, 1.0]))
    assert highs.solve(p, seed=3).optimal
    assert p.h.getOptionValue("random_seed")[1] == 3
    assert highs.solve(p).optimal
    assert p.h.getOptionValue("random_seed")[1] == 0


def test_a_stop_poll_ends_a_mip_solve_and_is_cleared_after_it():
    """The endgame race's stop: a poll that turns true stops the MILP (as a
    limit, not a proof: the status is time_limit, the bound still holds),
    and the next solve on the same model, without it, runs to optimality."""
    p = knapsacks()
    calls = []

    def poll() -> bool:
        calls.append(1)
        return True

    stopped = highs.solve(p, mip_gap=0.0, stop=poll)
    assert calls and stopped.termination is TC.TIME_LIMIT and not stopped.optimal
    n_calls = len(calls)
    done = highs.solve(p, mip_gap=0.0)
    assert done.optimal and len(calls) == n_calls  # the poll is gone with the solve that had it
    assert stopped.bound is None or stopped.bound >= done.objective - 1e-6
    with pytest.raises(ValueError, match="interruptible"):
        highs.solve(highs.new_lp(np.zeros(1), np.ones(1), np.ones(1)), stop=poll)


def test_new_highs_prints_nothing():
    out = subprocess.run([sys.executable, "-c", "from carbonsched import highs; highs.new_highs(interruptible=True)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "" and out.stderr == ""


# -- options --------------------------------------------------------------------
def test_options_are_typed_and_checked():
    o = make_options(BendersOptions, gap=1e-3, stabilize="none")
    assert o.gap == 1e-3 and o.stabilize == "none" and o.heuristic is True
    with pytest.raises(OptionError, match="did you mean 'stabilize'"):
        make_options(BendersOptions, stabilise="none")
    with pytest.raises(OptionError, match="option gap: must be a finite number >= 0"):
        SolveOptions(gap=-1)
    with pytest.raises(OptionError, match="option time_limit"):
        SolveOptions(time_limit=float("nan"))
    with pytest.raises(OptionError, match="option time_limit"):
        SolveOptions(time_limit=0)
    with pytest.raises(OptionError, match="must be one of bundle, subgradient"):
        LagrangianOptions(dual_update="newton")
    with pytest.raises(OptionError, match="LagrangianOptions cannot configure"):
        make_options(BendersOptions, LagrangianOptions())


def test_shared_options_carry_over_to_a_method():
    o = make_options(LagrangianOptions, SolveOptions(gap=0.02, time_limit=7), keep_capacity=True)
    assert (o.gap, o.time_limit, o.keep_capacity, o.dual_update) == (0.02, 7.0, True, "bundle")


def test_cli_flags_come_from_the_option_table():
    from carbonsched.cli import _given_options, build_parser

    args = build_parser().parse_args(["solve", "--method", "benders", "--no-heuristic", "--gap", "0.01"])
    assert _given_options(args) == {"heuristic": False, "gap": 0.01}
    args = build_parser().parse_args(["solve"])
    assert _given_options(args) == {}  # defaults stay in the dataclasses


# -- pool -----------------------------------------------------------------------
def test_pool_buffers_match_direct_site_solves():
    inst = rich_tiny()
    pool = SubproblemPool(inst, None)
    pool.calibrate()
    rng = np.random.default_rng(0)
    P = inst.pue * (inst.idle[:, None] + rng.uniform(0, 3, (inst.S, inst.H)))
    b = np.array([20.0, 20.0])
    ev = pool.evaluate(P, b)
    pi = rng.uniform(20, 80, (inst.S, inst.H))
    pr = pool.price(pi, 5.0)
    for s in range(inst.S):
        sub = SiteSubproblem(inst, s)
        direct = sub.evaluate(P[s], b[s])
        assert ev.feasible[s] == direct.feasible
        assert ev.cost[s] == pytest.approx(direct.cost, rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(ev.g_load[s], direct.g_load, rtol=1e-7, atol=1e-7)
        val, sup, em, _ = sub.price(pi[s], 5.0)
        assert pr.value[s] == pytest.approx(val, rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(pr.supplied[s], sup, atol=1e-7)
        assert pr.emissions[s] == pytest.approx(em, abs=1e-9)
    assert pool.sites_per_rank() == [inst.S]
    pool.close()


def test_a_reset_site_solves_as_a_fresh_one():
    """What makes moving a site between ranks deterministic: after a reset
    (the calibration's and every re-spread's), a site problem that has
    been priced and evaluated gives the same vertex -- value, supply,
    emissions, cut gradients -- as one built fresh on another rank."""
    inst = rich_tiny()
    rng = np.random.default_rng(1)
    for s in range(inst.S):
        used = SiteSubproblem(inst, s)
        for _ in range(3):
            used.price(rng.uniform(10, 90, inst.H), float(rng.uniform(0, 20)))
            used.evaluate(inst.pue[s] * (inst.idle[s] + rng.uniform(0, 3, inst.H)), 30.0)
        used.reset()
        fresh = SiteSubproblem(inst, s)
        pi, mu = rng.uniform(10, 90, inst.H), 7.0
        a, b = used.price(pi, mu), fresh.price(pi, mu)
        assert a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2] == b[2]
        P = inst.pue[s] * (inst.idle[s] + rng.uniform(0, 3, inst.H))
        used.reset()
        fresh = SiteSubproblem(inst, s)
        ea, eb = used.evaluate(P, 25.0), fresh.evaluate(P, 25.0)
        assert (ea.feasible, ea.cost, ea.g_alloc) == (eb.feasible, eb.cost, eb.g_alloc)
        assert np.array_equal(ea.g_load, eb.g_load)


def test_schedule_load_and_load_matrix_add_each_job_over_its_run():
    """The vectorised schedule load (the compute side, the dispatch model
    and its keep LP use it) against a plain loop over the jobs' runs."""
    from carbonsched.derived import load_matrix, schedule_load

    inst = CASES["half_hour_periods"]()
    jj, ss, tt = inst.triples
    rng = np.random.default_rng(3)
    ks = rng.choice(jj.size, size=min(6, jj.size), replace=False)
    want = np.zeros((inst.S, inst.H))
    for k in ks:
        want[ss[k], tt[k]:tt[k] + inst.dur[jj[k]]] += inst.pow[jj[k]]
    np.testing.assert_allclose(schedule_load(inst, ks), want)
    A = load_matrix(inst, ks).toarray()
    np.testing.assert_allclose(A.sum(axis=1).reshape(inst.S, inst.H), want)
    assert np.allclose(A.sum(axis=0), inst.pow[jj[ks]] * inst.dur[jj[ks]])
    assert schedule_load(inst, np.zeros(0, int)).shape == (inst.S, inst.H)


def test_respread_moves_sites_only_for_a_real_gain():
    """LPT on measured seconds, taken only where it cuts the busiest rank's
    load by more than the share asked for."""
    from carbonsched.decomposition.pool import respread

    owner = np.array([0, 0, 1, 1])
    times = np.array([4.0, 3.0, 1.0, 1.0])  # loads 7 / 2: LPT gives 4+1 / 3+1, max 5 (-29%)
    plan = respread(owner, times, 2, gain=0.1)
    assert np.bincount(plan, times, 2).max() == 5.0
    assert np.array_equal(respread(owner, times, 2, gain=0.3), owner)  # 29% < 30%: stays
    assert np.array_equal(respread(owner, times, 1, gain=0.0), owner)  # one rank: nothing to move


# -- bundle master ----------------------------------------------------------------
def test_bundle_master_minimises_a_known_convex_function():
    """L(u) = |u0 - 3| + 2 |u1 + 1| (one part each): the box-step bundle
    must find its minimum 0 at (3, -1)."""
    lay = DualLayout(S=1, H=2, has_mu=False, has_lam=False)

    def point(u):
        f0, g0 = abs(u[0] - 3), np.sign(u[0] - 3) or 1.0
        f1, g1 = 2 * abs(u[1] + 1), 2 * (np.sign(u[1] + 1) or 1.0)
        return SimpleNamespace(u=u.copy(), L=f0 + f1, choice=None,
                               parts=[(f0, np.array([0]), np.array([g0])), (f1, np.array([1]), np.array([g1]))])

    bundle = BoxStepBundle(lay, scale=np.ones(2), lin=np.zeros(2), nparts=2, radius=1.0)
    u = np.zeros(2)
    for _ in range(60):
        pt = point(u)
        u = bundle.step(pt)
        if bundle.converged(1e-9):
            break
    assert bundle.converged(1e-9)
    np.testing.assert_allclose(bundle.center.u, [3.0, -1.0], atol=1e-6)
    assert pytest.approx(0.0, abs=1e-6) == bundle.center.L


# -- instances as package data ----------------------------------------------------
def test_shipped_instances_load_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert {"paper-default", "small", "medium"} <= set(shipped_instances())
    inst = load_instance("small")
    assert inst.S == 5 and inst.H == 48


def test_instance_arrays_are_read_only():
    inst = load_instance("paper-default")
    with pytest.raises(ValueError, match="read-only"):
        inst.pue[0, 0] = 2.0
    changed = inst.with_changes(ren=inst.ren * 2)  # ablations make new arrays
    assert not changed.ren.flags.writeable and changed.ren.sum() == pytest.approx(2 * inst.ren.sum())


def test_to_dict_round_trips_through_the_field_table():
    inst = load_instance("small")
    again = parse_instance(inst.to_dict())
    for name in ("pue", "ren", "pb", "ps", "ci", "cap", "e_max", "gmin", "pow", "dur", "rel", "dl", "allowed",
                 "L", "site_lat", "region_lon"):
        np.testing.assert_array_equal(getattr(again, name), getattr(inst, name), err_msg=name)
    assert again.provenance == inst.provenance


@pytest.mark.parametrize("key,hint", [("carbon_budget", "carbon_budget_t"), ("trainingjobs", "training_jobs")])
def test_misspelt_top_level_key_is_refused_with_a_hint(key, hint):
    d = load_instance("paper-default").to_dict()
    d[key] = d.pop(hint)
    with pytest.raises(InstanceError, match=f"did you mean '{hint}'"):
        parse_instance(d)


# -- no side effects ---------------------------------------------------------------
def test_import_changes_nothing_and_solve_is_quiet():
    code = ("import matplotlib; matplotlib.use('svg'); import carbonsched as c; "
            "import carbonsched.plots; assert matplotlib.get_backend() == 'svg', matplotlib.get_backend(); "
            "r = c.solve(c.load_instance('paper-default'), 'monolithic'); assert r.status == 'optimal'")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == ""
