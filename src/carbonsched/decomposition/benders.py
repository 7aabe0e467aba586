"""Benders decomposition (MODEL.md section 7), multi-cut, over the MPI pool.

Master (rank 0): the compute block, facility loads ``Pv[s,t]`` (= P[s,t]),
carbon allocations ``b[s]`` with ``sum_s b[s] <= B``, every committed
generator's on/off commitment ``on[s,t]`` (binary) and output ``gen[s,t]``
with ``gmin on <= gen <= gmax on`` (MODEL.md constraint 7), and one value
variable ``theta[s]`` per site; it maximises ``value - sum_s theta[s]``.
Site ``s`` (on the pool) returns its least energy cost ``Q_s(P̂, b̂, ĝen)``
(an LP: the unit's output is fixed by its columns' bounds, and its on/off
binaries, which carry no cost, are relaxed) and the duals of its balance
and allocation rows and the reduced costs of its output columns, giving
the optimality cut

    theta[s] >= Q_s + sum_t g[t] (Pv[s,t] - P̂[t]) + h (b[s] - b̂) + sum_t r[t] (gen[s,t] - ĝen[t])

or, where the load or allocation cannot be met, the phase-1 value
``w > 0`` and its duals give the feasibility cut ``w + g.(Pv - P̂) + h (b - b̂) + r.(gen - ĝen) <= 0``.
The LP's value is convex in (P̂, b̂, ĝen), so every cut is valid, and it is
the site's exact cost for any output the master's binaries allow: the
integer phase converges to the optimum with committed units too. Cuts in
the output, not in the commitment, hold for every commitment under which
that output is possible; on ten swept instances with committed units
they certified 9 where cuts in the commitment certified 7.

Phase 1 solves the master's LP relaxation to gather cuts cheaply (with
optional in-out stabilisation around a core point), the sites choosing
their own commitment (cuts in P and b only); phase 2 solves the master
MILP, warm-started with the incumbent, and fixes each committed unit's
output at the master's. Each integer master solution
is also evaluated with the exact site problems (committed generators as
MILPs, free to choose their own commitment) for the best feasible value.

Between the two, where the LP phase stalls or ends, the exact endgame
(:mod:`.endgame`): reduced-cost fixing on the master LP and, where at most
10,000 triples are left free, the MILP over them from the incumbent with
all the time left; the integer phase follows only where it did not apply
or, without a time limit, left the gap open (``exact_endgame``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from .. import highs, interrupts
from ..clock import BudgetExhausted, Clock
from ..compute import add_facility_load, build_compute, compute_arrays
from ..config import BendersOptions, LagrangianOptions
from ..constants import TerminationCondition as TC
from ..derived import facility_load, max_supply, site_cost_floor, site_costs, site_emission_cap
from ..diagnose import diagnose
from ..instance import Instance
from ..result import Result, WorkerReport, relative_gap
from ..solution import SITE_SERIES, Solution
from .checkpoint import pack_ragged, unpack_ragged
from .driver import RunState, finish, preflight
from .endgame import (
    ENDGAME_HANDOVER_SHARE,
    ENDGAME_HANDOVER_WINDOW,
    EXACT_ENDGAME_TRIPLES,
    endgame_due,
    lp_fixable,
    restricted_milp,
)
from .pool import PoolEval, SubproblemPool, run_on_pool
from .recovery import Candidate, PrimalRecovery
from .trace import IterationLog

__all__ = ["BendersMaster", "build_master", "solve_benders"]

#: with a time limit, the Lagrangian seed stops once it has taken this share of the limit, and its recoveries
#: get no more than what is left of that share: on a mid-size sweep instance with four committed units (seed
#: 3001, 60 s) its recoveries' exact re-dispatches took 58.6 s for 7 of its 30 iterations, and the run ended
#: without an LP iteration (8.7%)
SEED_SHARE = 0.25
#: the seed ends where its bound and incumbent moved less than ENDGAME_HANDOVER_SHARE of the gap over this many
#: of its iterations: on `medium` the bundle's null steps held its bound at 13.11 M from iteration 19 to 32 (a
#: window of 20 ended the seed there, 3.27% after 300 s), before it fell to 12.34 M by iteration 104
SEED_STALL_WINDOW = 50
#: after this many seed iterations the master LP is solved once within SEED_PROBE_ITERATIONS seed iterations' mean
#: time; where it finishes, Benders' own iterations cost about what the seed's do, and its LP phase, whose cuts are
#: exact at its own points, is the better use of the time: the seed ends. On a swept 4 x 12 h x 10 case (seed 1112)
#: a seed run to its stall took 154 iterations and the run 39 s, against 20-24 s after 30; on `medium` the master LP
#: took 30 s, 40-50 seed iterations' time, and the seed goes on
SEED_PROBE_AT = 30
SEED_PROBE_ITERATIONS = 10


def build_master(inst: Instance) -> pyo.ConcreteModel:
    """The Benders master before any cut."""
    S, H = inst.S, inst.H
    with highs.gc_paused():
        m = pyo.ConcreteModel(name=f"{inst.name}-master")
        m.compute = pyo.Block()
        build_compute(m.compute, inst)
        add_facility_load(m, inst)
        # valid inequality: no site can deliver more than import + renewables + battery + generator
        cap_p = max_supply(inst)
        for s in range(S):
            for t in range(H):
                m.Pv[s, t].setub(float(cap_p[s, t]))
        floor = site_cost_floor(inst)
        m.theta = pyo.Var(range(S), bounds=lambda _m, s: (float(floor[s]), None))
        # the committed generators' commitment and output (MODEL.md constraint 7), the output priced by the cuts;
        # valid inequality: a site delivers at most its supply without the generator plus the generator's output
        m.on = pyo.Var([(int(s), t) for s in np.flatnonzero(inst.committed) for t in range(H)], domain=pyo.Binary)
        m.gen = pyo.Var(m.on.index_set(), bounds=lambda _m, s, t: (0.0, float(inst.gmax[s])))
        m.gen_min = pyo.Constraint(m.on.index_set(),
                                   rule=lambda _m, s, t: _m.gen[s, t] >= float(inst.gmin[s]) * _m.on[s, t])
        m.gen_max = pyo.Constraint(m.on.index_set(),
                                   rule=lambda _m, s, t: _m.gen[s, t] <= float(inst.gmax[s]) * _m.on[s, t])
        m.on_supply = pyo.Constraint(m.on.index_set(), rule=lambda _m, s, t: _m.Pv[s, t] <= float(
            cap_p[s, t] - inst.gmax[s]) + _m.gen[s, t])
        if inst.budget is not None:
            cap = site_emission_cap(inst)
            m.b = pyo.Var(range(S), bounds=lambda _m, s: (0.0, float(cap[s])))
            m.alloc = pyo.Constraint(expr=sum(m.b[s] for s in range(S)) <= float(inst.budget))
            # valid inequality: load beyond renewables and full battery discharge comes from the grid or
            # the generator, so a site emits at least the cheaper intensity times that shortfall
            short = np.where(inst.has_batt, inst.dis_max, 0.0)[:, None] + inst.ren
            c_min = np.minimum(inst.ci, np.where(inst.has_gen, inst.ef, np.inf)[:, None]) * inst.dt
            m.z = pyo.Var(range(S), range(H), bounds=(0.0, None))
            m.zdef = pyo.Constraint(range(S), range(H),
                                    rule=lambda _m, s, t: _m.z[s, t] >= _m.Pv[s, t] - float(short[s, t]))
            m.emin = pyo.Constraint(range(S), rule=lambda _m, s: _m.b[s] >= sum(
                float(c_min[s, t]) * _m.z[s, t] for t in range(H)))
        m.obj = pyo.Objective(expr=m.compute.value - sum(m.theta[s] for s in range(S)), sense=pyo.maximize)
    return m


@dataclass
class BendersMaster:
    """The compiled master and the column indices the cuts need."""

    m: pyo.ConcreteModel
    p: highs.HighsProblem
    Pv: np.ndarray  # [S,H] columns
    theta: np.ndarray  # [S]
    b: np.ndarray | None  # [S] or None without a budget
    x: np.ndarray  # [triples] columns of the job binaries
    y: np.ndarray  # [pairs, H] columns of the inference flows (-1: absent)
    on: np.ndarray  # [S,H] columns of the committed units' on/off binaries (-1: no committed unit)
    gen: np.ndarray  # [S,H] columns of the committed units' output (MW; -1: no committed unit)
    cuts: int = 0
    feas_cuts: int = 0

    @staticmethod
    def build(inst: Instance, clock: Clock | None = None) -> BendersMaster:
        t0 = time.perf_counter()
        m = build_master(inst)
        p = highs.compile_model(m, clock=clock, build_s=time.perf_counter() - t0)
        p.set_integrality(relax=True)  # the LP phase comes first
        S, H = inst.S, inst.H
        Pv = np.array([[p.col[m.Pv[s, t]] for t in range(H)] for s in range(S)], dtype=np.int32)
        theta = np.array([p.col[m.theta[s]] for s in range(S)], dtype=np.int32)
        b = np.array([p.col[m.b[s]] for s in range(S)], dtype=np.int32) if inst.budget is not None else None
        jj, _, _ = inst.triples
        x = p.cols_of(m.compute.x[k] for k in range(jj.size))
        rr, _ = inst.region_pairs
        y = np.array([[p.col.get(m.compute.y[k, t], -1) for t in range(H)] for k in range(rr.size)],
                     dtype=np.int64).reshape(rr.size, H)
        on = np.full((S, H), -1, dtype=np.int64)
        gen = np.full((S, H), -1, dtype=np.int64)
        for (s, t) in m.on:
            on[s, t] = p.col[m.on[s, t]]
            gen[s, t] = p.col[m.gen[s, t]]
        return BendersMaster(m, p, Pv, theta, b, x, y, on, gen)

    def vector(self, inst: Instance, sol: Solution, starts: np.ndarray) -> np.ndarray:
        """The master vector of a feasible schedule (theta = its true site
        costs, which satisfy every cut), e.g. to start the MILP from."""
        v = np.zeros(self.p.num_col)
        v[self.x[starts]] = 1.0
        rr, sr = inst.region_pairs
        ok = self.y >= 0
        v[self.y[ok]] = sol.inference[rr, sr][ok]
        v[self.Pv] = facility_load(inst, sol)
        cost, emis = site_costs(inst, sol.sites)
        v[self.theta] = cost
        if self.b is not None:
            v[self.b] = emis
        has = self.on >= 0
        v[self.on[has]] = np.round(sol.sites["generator_on"][has])
        v[self.gen[has]] = sol.sites["generator_mw"][has]
        return v

    def choice(self, inst: Instance, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A job choice from a (fractional) master point: per job its
        largest x if >= 0.3 (any, if required); score = value x."""
        jj, _, _ = inst.triples
        xk = x[self.x]
        chosen = np.full(inst.J, -1)
        order = np.lexsort((-xk, jj))
        first = np.searchsorted(jj[order], np.arange(inst.J))
        has = np.searchsorted(jj, np.arange(inst.J), side="right") > np.searchsorted(jj, np.arange(inst.J))
        for j in np.flatnonzero(has):
            k = order[first[j]]
            if xk[k] >= 0.3 or inst.required[j]:
                chosen[j] = k
        return chosen, inst.val[jj] * np.maximum(xk, 1e-3)

    def add_price_cut(self, s: int, value: float, pi: np.ndarray, mu: float, dt: float) -> None:
        """Optimality cut from site ``s``'s Lagrangian problem solved at
        prices ``pi`` [H] ($/MWh) and carbon price ``mu`` ($/t) with optimal
        value ``value`` = min cost + mu E - sum_t pi_t dt supplied_t. For any
        load P and allocation b, a dispatch meeting them costs at least
        ``value + sum_t pi_t dt P_t - mu b`` (supplied = P, E <= b, mu >= 0):

            theta[s] - sum_t pi_t dt Pv[s,t] + mu b[s] >= value
        """
        g = pi * dt
        nz = np.abs(g) > 1e-12
        cols = [np.array([self.theta[s]]), self.Pv[s][nz]]
        vals = [np.array([1.0]), -g[nz]]
        if self.b is not None and mu > 0:
            cols.append(np.array([self.b[s]]))
            vals.append(np.array([mu]))
        self.p.add_row(float(value), highs.INF, np.concatenate(cols), np.concatenate(vals))
        self.cuts += 1

    def compute_value(self, x: np.ndarray) -> float:
        """The compute side's value ($) of a master vector, from the vector
        itself: the master's objective plus the sites' theta. HiGHS's reported
        objective is not always the returned point's after a MIP start (seen
        once after deleting rows), and the master's costs never change."""
        return float(self.p.cost @ x) + self.p.offset + float(x[self.theta].sum())

    def point(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
        """(P [S,H], b [S] or None, gen [S,H], theta [S]) of a master vector;
        ``gen`` (the committed units' output, MW) is NaN at sites without one."""
        gen = np.where(self.gen >= 0, x[np.maximum(self.gen, 0)], np.nan)
        return x[self.Pv], (x[self.b] if self.b is not None else None), gen, x[self.theta]

    def add_cut(self, s: int, feasible: bool, cost: float, g: np.ndarray, h: float, P0: np.ndarray,
                b0: float | None, r: np.ndarray | None = None, gen0: np.ndarray | None = None) -> None:
        """Optimality cut (feasible) or feasibility cut for site ``s`` taken at
        (P0, b0, gen0), ``r`` [H] the committed unit's output gradient: see
        the module docstring."""
        nz = np.abs(g) > 1e-12
        cols = [self.Pv[s][nz]]
        const = cost - float(g @ P0)
        gv = g[nz]
        vals = [-gv] if feasible else [gv]
        if r is not None and gen0 is not None and self.gen[s, 0] >= 0:
            rz = np.abs(r) > 1e-12
            cols.append(self.gen[s][rz])
            vals.append(-r[rz] if feasible else r[rz])
            const -= float(r @ gen0)
        if self.b is not None and b0 is not None and abs(h) > 1e-12:
            cols.append(np.array([self.b[s]]))
            vals.append(np.array([-h if feasible else h]))
            const -= h * b0
        if feasible:
            cols.append(np.array([self.theta[s]]))
            vals.append(np.array([1.0]))
            self.p.add_row(const, highs.INF, np.concatenate(cols), np.concatenate(vals))
        else:
            self.p.add_row(-highs.INF, -const, np.concatenate(cols), np.concatenate(vals))
            self.feas_cuts += 1
        self.cuts += 1


def _cut_value(ev_cost, g, h, P0, b0, P, b) -> float:
    v = ev_cost + float(g @ (P - P0))
    if b is not None and b0 is not None:
        v += h * (b - b0)
    return v


@dataclass
class _Phase:
    """Where the Benders loop is: LP phase ("lp") or integer phase
    ("mip"), the in-out core point, whether the final master gap is
    forced, and per-phase counts."""

    name: str = "lp"
    core: tuple | None = None
    tighten: bool = False
    lp_iterations: int = 0
    mip_iterations: int = 0
    tail_s: float = 0.0  # longest separation and incumbent check after a master solve so far (s)
    endgame_tried: bool = False  # the exact endgame was tried before the end of the LP phase
    endgame_ran: bool = False  # its MILP ran (it runs at most once)


def solve_benders(inst: Instance, opts: BendersOptions, *, clock: Clock, comm=None) -> Result | WorkerReport:
    """Benders over the MPI pool. Rank 0 returns the result; the other
    ranks serve the pool and return a :class:`WorkerReport`."""
    return run_on_pool(inst, opts, _run, method="benders", clock=clock, comm=comm)


def _run(inst: Instance, opts: BendersOptions, pool: SubproblemPool, clock: Clock) -> Result:
    log = IterationLog(["phase", "bound", "incumbent", "gap", "cuts", "master_s", "sub_max_s", "sub_mean_s"])
    st: RunState[BendersOptions] = RunState(inst, "benders", opts, clock, log)
    try:
        with st.timed("build_s"):
            pool.calibrate()
            if not preflight(st, pool):
                return finish(st, pool)
            master = BendersMaster.build(inst, clock)
            rec = (PrimalRecovery(inst, pool, method="benders", clock=clock, pool_only=opts.recovery == "pool")
                   if opts.heuristic else None)
    except BudgetExhausted as e:
        st.stop, st.diagnosis = TC.TIME_LIMIT, [str(e)]
        return finish(st, pool)
    ph = _Phase()
    st.snapshot = lambda: _snapshot(st, master, ph)
    restored = st.restore()
    if restored is not None:
        _restore(*restored, st, master, ph)
    log.header(f"Benders: {inst.S} sites over {pool.size} rank(s), {master.p.num_col} master columns "
               f"({master.p.integer_cols.size} binaries), stabilisation "
               f"{'in-out' if opts.stabilize == 'inout' else 'off'}"
               + (", seeded by Lagrangian iterations" if restored is None and opts.seed_lagrangian > 0 else ""))
    if restored is None and opts.seed_lagrangian > 0:
        _seed_from_lagrangian(st, master, pool, rec)
    while (stop := st.stop_reason()) is None:
        st.iteration += 1
        end = _iterate(st, master, pool, rec, ph)
        st.checkpoint()
        if end is not None:
            st.stop = end
            break
    st.stop = st.stop or stop
    st.stats.update(iterations_lp=ph.lp_iterations, iterations_mip=ph.mip_iterations, cuts=master.cuts,
                    feasibility_cuts=master.feas_cuts,
                    heuristic_recoveries=rec.recoveries if rec is not None else 0,
                    pool_schedules=rec.pool_schedules if rec is not None else 0,
                    recovery_on_pool_only=rec.pool_only if rec is not None else False,
                    keep_lp_skips=rec.keep_lp_skips if rec is not None else 0)
    return finish(st, pool)


def _snapshot(st: RunState[BendersOptions], master: BendersMaster, ph: _Phase) -> tuple[dict, dict]:
    """The checkpoint of a Benders run: master cuts, phase, core point, and
    the incumbent's master vector."""
    rows = master.p.added
    header = {"phase": ph.name, "tighten": ph.tighten, "lp_iterations": ph.lp_iterations,
              "mip_iterations": ph.mip_iterations, "cuts": master.cuts, "feas_cuts": master.feas_cuts}
    arrays: dict = {"cut_lo": np.array([r[0] for r in rows]), "cut_hi": np.array([r[1] for r in rows])}
    arrays["cut_cols"], arrays["cut_ptr"] = pack_ragged([r[2] for r in rows], np.int64)
    arrays["cut_vals"], _ = pack_ragged([r[3] for r in rows])
    if ph.core is not None:
        arrays["core_P"] = ph.core[0]
        if ph.core[1] is not None:
            arrays["core_b"] = ph.core[1]
    if st.best is not None:
        arrays["inc_x"] = st.best.payload["x"]
    return header, arrays


def _restore(header: dict, arrays: dict, st: RunState[BendersOptions], master: BendersMaster, ph: _Phase) -> None:
    """Put a checkpoint's Benders state back: cuts into the master, the phase."""
    cols = unpack_ragged(arrays["cut_cols"], arrays["cut_ptr"])
    vals = unpack_ragged(arrays["cut_vals"], arrays["cut_ptr"])
    for lo, hi, c, v in zip(arrays["cut_lo"], arrays["cut_hi"], cols, vals):
        master.p.add_row(float(lo), float(hi), c, v)
    master.cuts, master.feas_cuts = int(header["cuts"]), int(header["feas_cuts"])
    ph.name, ph.tighten = header["phase"], bool(header["tighten"])
    ph.lp_iterations, ph.mip_iterations = int(header["lp_iterations"]), int(header["mip_iterations"])
    if "core_P" in arrays:
        ph.core = (arrays["core_P"].copy(), arrays["core_b"].copy() if "core_b" in arrays else None)
    master.p.set_integrality(relax=ph.name == "lp")
    if st.best is not None:
        st.best.payload["x"] = arrays["inc_x"].copy()


def _seed_from_lagrangian(st: RunState[BendersOptions], master: BendersMaster, pool: SubproblemPool,
                          rec: PrimalRecovery | None) -> None:
    """Cross-decomposition: bundle iterations of the Lagrangian dual on the
    same pool, each logged as a ``seed`` row. Each gives the master one
    optimality cut per site (:meth:`BendersMaster.add_price_cut`), a proven
    bound L(u), and a job choice repaired into an incumbent. They end at
    ``seed_lagrangian`` iterations, where the dual converges, where bound
    and incumbent stall (:func:`~.endgame.endgame_due` over the seed's own
    rows), where the master LP turns out cheap (:data:`SEED_PROBE_AT`), or,
    with a time limit, at :data:`SEED_SHARE` of it: a rule in
    seconds and progress rather than a count, since an iteration's seconds
    differ with the machine (a fixed 30 left `medium` at a 3.40% gap after
    300 s on a 2.8 GHz Xeon, where the share's 76-80 iterations leave
    1.76-1.79%)."""
    from .lagrangian import evaluate_dual, recover_at, setup_dual

    inst, opts = st.inst, st.opts
    t0 = time.perf_counter()
    share = None if st.clock.limit is None else SEED_SHARE * st.clock.limit
    lay, compute, update, u = setup_dual(inst, LagrangianOptions(threads=opts.threads))
    done = 0
    rows: list[dict] = []
    why, end = f"the most asked ({opts.seed_lagrangian})", "count"
    while done < opts.seed_lagrangian:
        if st.stop_reason() is not None:
            why, end = "the run's stop", "stop"
            break
        if share is not None and st.clock.elapsed() >= share:
            why, end = "its share of the time limit", "share"
            break
        pt, pool_s = evaluate_dual(inst, lay, u, compute, pool)
        pi, mu, _ = lay.split(u)
        for s in range(inst.S):
            master.add_price_cut(s, -pt.parts[s + 1][0], pi[s], mu, inst.dt)
        st.tighten(pt.L)
        if rec is not None and (done < 10 or done % 5 == 0):
            left = st.clock.left(st.finish_reserve)
            if share is not None:
                left = max(0.0, min(left, share - st.clock.elapsed()))
            cand, _ = recover_at(inst, rec, update, pt, done + 1, left)
            if cand is not None and cand.objective > st.objective:
                st.offer(cand.solution, cand.objective, x=master.vector(inst, cand.solution, cand.starts))
        ts = time.perf_counter()
        u = update.step(pt)
        done += 1
        row = {"phase": "seed", "bound": st.bound, "incumbent": st.best.objective if st.best else None,
               "gap": st.gap, "cuts": inst.S, "master_s": time.perf_counter() - ts, "sub_max_s": pool_s}
        st.record(row, iteration=done)
        rows.append(row)
        if update.converged(1e-7 * max(1.0, abs(st.bound))):
            why, end = "the dual's convergence", "converged"
            break
        if endgame_due(rows, window=SEED_STALL_WINDOW):
            why, end = (f"bound and incumbent moved less than {ENDGAME_HANDOVER_SHARE:.0%} of the gap over "
                        f"{SEED_STALL_WINDOW} iterations"), "stalled"
            break
        if done == SEED_PROBE_AT < opts.seed_lagrangian:  # (at the most asked the seed ends anyway)
            each = (time.perf_counter() - t0) / done
            tp = time.perf_counter()
            limit = SEED_PROBE_ITERATIONS * each
            left = st.clock.left(st.finish_reserve)
            info = highs.solve(master.p, time_limit=limit if left is None else min(limit, left),
                               threads=opts.threads, log=opts.solver_log)
            probe_s = time.perf_counter() - tp
            st.stats["seed_probe_s"] = probe_s
            if info.optimal:
                why, end = (f"a master LP of {probe_s:.2f} s, no more than {SEED_PROBE_ITERATIONS} seed "
                            f"iterations' time ({each:.3f} s each)"), "cheap_master"
                break
    st.timings["seed_s"] += time.perf_counter() - t0
    st.stats["seed_iterations"] = done
    st.stats["seed_end"] = end
    st.log.note(f"seeded from {done} Lagrangian iterations (ended by {why}): {master.cuts} cuts, "
                f"bound {st.bound:,.4f}, incumbent {st.objective:,.4f} ({time.perf_counter() - t0:.2f} s)")


def _master_gap(st: RunState[BendersOptions], ph: _Phase) -> float:
    """Adaptive master MIP gap: loose while the global gap is wide, never
    looser than a quarter of it, and opts.gap / 4 at the end (the bound is
    the master's dual bound, so it stays valid at any master gap)."""
    if ph.tighten:
        return st.opts.gap / 4
    return float(np.clip((st.gap or 0.04) / 4, st.opts.gap / 4, 0.01))


def _iterate(st: RunState[BendersOptions], master: BendersMaster, pool: SubproblemPool, rec: PrimalRecovery | None,
             ph: _Phase) -> TC | None:
    """One Benders iteration: master, cuts, incumbent, log. Returns a stop
    reason, or None to go on."""
    inst, opts, p = st.inst, st.opts, master.p
    tm = time.perf_counter()
    if ph.name == "mip" and st.best is not None:
        p.set_start(st.best.payload["x"])
    mgap = _master_gap(st, ph)
    # the master keeps back what the rest of an iteration has taken, and the finish's reserve
    info = highs.solve(p, time_limit=st.clock.left(st.finish_reserve + ph.tail_s), mip_gap=mgap,
                       threads=opts.threads, log=opts.solver_log)
    dt_master = time.perf_counter() - tm
    st.timings["master_s"] += dt_master
    if info.infeasible:
        d = diagnose(inst, time_limit=st.clock.left())
        st.diagnosis = d.messages
        return TC(d.status.value) if d.status is not None else TC.INFEASIBLE
    if not info.has_solution:
        if info.termination is TC.INTERRUPTED:
            return TC.INTERRUPTED
        if info.termination is TC.TIME_LIMIT or st.clock.expired():
            return TC.TIME_LIMIT
        st.diagnosis = [f"the master {'LP' if ph.name == 'lp' else 'MILP'} ended {info.raw_status} after every retry "
                        "(numerical trouble); the bound and incumbent so far stand"]
        st.log.note(st.diagnosis[0])
        return TC.ERROR
    x = p.values().copy()
    Pm, bm, genm, th = master.point(x)
    # LP phase: the master LP's optimum bounds OB (not a time-limited LP's value); MIP phase: its dual bound
    st.tighten((info.objective if info.optimal else None) if ph.name == "lp" else info.bound)
    value = master.compute_value(x)
    if ph.name == "mip" and st.clock.expired(st.finish_reserve):
        return TC.TIME_LIMIT  # the master's dual bound counts; no time to separate at its point
    ts = time.perf_counter()
    cuts_before = master.cuts
    # the LP phase leaves the committed units to the site LPs (cuts in P and b only: the LP relaxation's bound in
    # far fewer iterations -- on `medium` 12.24 M against 12.32 M after 88, when the LP master chose the commitment
    # too); the integer phase fixes their output at the master's point, where the site LPs are exact
    evm, sub_times = _separate(st, master, pool, ph, Pm, bm, genm if ph.name == "mip" else None, th)
    new_cuts = master.cuts - cuts_before
    if ph.name == "mip" and evm is not None and evm.feasible.all():
        sub_times += _try_incumbent(st, master, pool, x, value, evm, Pm, bm)
    st.timings["subproblems_s"] += time.perf_counter() - ts
    ph.tail_s = max(ph.tail_s, time.perf_counter() - ts)
    st.timings[f"phase_{ph.name}_s"] += time.perf_counter() - tm
    if ph.name == "mip" and opts.refine and new_cuts > 0 and not st.clock.expired(st.finish_reserve):
        # the schedule got a cut: LP iterations with its binaries fixed add the cuts its routing needs, each a
        # fraction of a MILP master's time (on a 2-site, 24-hour instance each MILP master took 2-3 s and added 1
        # cut, and the run met its 60 s limit at a 3.9e-4 gap)
        sub_times += _refine(st, master, pool, x, limit=max(dt_master, 1.0))
    rank_s = np.sum(sub_times, axis=0) if sub_times else np.zeros(pool.size)
    lp_val = value - float(evm.cost.sum()) if (evm is not None and evm.feasible.all()) else None
    st.record({"phase": ph.name, "bound": st.bound, "incumbent": st.best.objective if st.best else None,
               "gap": st.gap, "cuts": new_cuts, "master_s": dt_master, "sub_max_s": float(rank_s.max()),
               "sub_mean_s": float(rank_s.mean()), "lp_value": lp_val})
    if ph.name == "lp":
        ph.lp_iterations += 1
        lp_gap = relative_gap(info.objective, lp_val) if lp_val is not None else None
        lp_done = (new_cuts == 0 or (lp_gap is not None and lp_gap <= min(1e-6, opts.gap / 10))
                   or ph.lp_iterations >= opts.lp_iterations)
        if rec is not None and (lp_done or ph.lp_iterations % 10 == 1):
            _heuristic(st, master, rec, x)
        # the exact endgame where the LP phase stalls (endgame_due; tried once), or at its end (unless it ran)
        if opts.exact_endgame and rec is not None and not ph.endgame_ran and (
                lp_done or (not ph.endgame_tried and endgame_due([r for r in st.trace if r["phase"] == "lp"]))):
            ph.endgame_tried = True
            st.log.note(f"LP phase at {st.bound:,.4f} after {ph.lp_iterations} iterations"
                        + ("" if lp_done else f" (bound and incumbent moved less than {ENDGAME_HANDOVER_SHARE:.0%} "
                                              f"of the gap over {ENDGAME_HANDOVER_WINDOW} iterations)"))
            ran, end = _exact_endgame(st, master, pool, rec)
            ph.endgame_ran = ran
            if end is not None:
                return end
            lp_done = lp_done or ran  # after an endgame that ran: on to the integer phase
        if lp_done:
            ph.name = "mip"
            p.set_integrality(relax=False)
            st.log.note(f"LP relaxation bound {st.bound:,.4f} after {ph.lp_iterations} iterations; integer phase")
        return None
    ph.mip_iterations += 1
    if new_cuts == 0 and info.termination is TC.TIME_LIMIT:
        return TC.TIME_LIMIT  # the master stopped short of its gap: its point proves nothing
    if new_cuts == 0 and not st.gap_reached:
        # no cut: the master point is optimal for the relaxed sites, up to
        # the master's own gap -- tighten that first, then stop
        if mgap > opts.gap / 4 and not ph.tighten:
            ph.tighten = True
            return None
        return TC.STALLED
    return None


def _separate(st: RunState[BendersOptions], master: BendersMaster, pool: SubproblemPool, ph: _Phase, Pm, bm, genm,
              th) -> tuple[PoolEval | None, list[np.ndarray]]:
    """Add the violated cuts at the master point (in the LP phase with
    in-out stabilisation: first at the separation point between the core
    and the master point), with the committed units' output fixed at
    ``genm`` [S,H] or, where it is None, free. Returns the evaluation at
    the master point (None if the separation point already cut it off) and
    rank times."""
    inst, opts = st.inst, st.opts
    tol_abs = 1e-7
    sub_times: list[np.ndarray] = []
    evm = None
    if ph.name == "lp" and opts.stabilize == "inout" and ph.core is not None:
        lam = opts.inout_lambda
        Ps = lam * Pm + (1 - lam) * ph.core[0]
        bs = None if bm is None else lam * bm + (1 - lam) * ph.core[1]
        ev = pool.evaluate(Ps, bs)
        sub_times.append(ev.rank_s)
        cut_off = False
        for s in range(inst.S):
            b0 = None if bs is None else bs[s]
            b1 = None if bm is None else bm[s]
            val = _cut_value(ev.cost[s], ev.g_load[s], ev.g_alloc[s], Ps[s], b0, Pm[s], b1)
            if ev.feasible[s]:
                cut_off |= th[s] < val - tol_abs * max(1.0, abs(val))
            else:
                cut_off |= val > 1e-9
            master.add_cut(s, bool(ev.feasible[s]), ev.cost[s], ev.g_load[s], ev.g_alloc[s], Ps[s], b0)
        if not cut_off:
            evm = pool.evaluate(Pm, bm, gen=genm)
            sub_times.append(evm.rank_s)
            _add_violated(master, inst, evm, Pm, bm, genm, th, tol_abs)
    else:
        evm = pool.evaluate(Pm, bm, gen=genm)
        sub_times.append(evm.rank_s)
        _add_violated(master, inst, evm, Pm, bm, genm, th, tol_abs)
    ph.core = (Pm.copy(), None if bm is None else bm.copy()) if ph.core is None else (
        0.5 * ph.core[0] + 0.5 * Pm, None if bm is None else 0.5 * ph.core[1] + 0.5 * bm)
    return evm, sub_times


def _refine(st: RunState[BendersOptions], master: BendersMaster, pool: SubproblemPool, x: np.ndarray, *,
            limit: float) -> list[np.ndarray]:
    """The master LP with its binaries (jobs, commitment) and the committed
    units' output fixed at the integer point ``x`` (routing, facility loads,
    allocations and theta free), iterated with the sites' cuts for at most
    ``limit`` seconds or until no cut is violated; its last point, where
    every site is feasible, is offered as an incumbent
    (:func:`_try_incumbent`). Every cut added is valid for the whole
    master. Returns the pool's rank times."""
    p = master.p
    ic = p.integer_cols
    # the committed units' output stays as the MILP master chose it: left free, these LP iterations searched the
    # output by cuts (3,477 of them on a 4-site, 24-hour sweep instance, against 682 with it fixed), and the MILP
    # masters that followed grew too slow to certify it in 60 s (32 s with it fixed)
    gc = master.gen[master.gen >= 0]
    fc = np.concatenate([ic, gc]).astype(np.int32)
    lp = p.h.getLp()
    lo0, up0 = np.asarray(lp.col_lower_)[fc].copy(), np.asarray(lp.col_upper_)[fc].copy()
    fix = np.concatenate([np.round(x[ic]), x[gc]])
    sub_times: list[np.ndarray] = []
    t0 = time.perf_counter()
    cuts0 = master.cuts
    p.h.changeColsBounds(fc.size, fc, fix, fix)
    p.set_integrality(relax=True)
    try:
        while True:
            run_left = st.clock.left(st.finish_reserve)
            left = min(limit - (time.perf_counter() - t0), np.inf if run_left is None else run_left)
            if left <= 0.0:
                break
            info = highs.solve(p, time_limit=left, threads=st.opts.threads)
            if not info.optimal:
                break
            xr = p.values().copy()
            Pm, bm, genm, th = master.point(xr)
            before = master.cuts
            evm = pool.evaluate(Pm, bm, gen=genm)
            sub_times.append(evm.rank_s)
            _add_violated(master, st.inst, evm, Pm, bm, genm, th, 1e-7)
            if master.cuts == before:  # no cut violated: theta is each site's cost, the routing best for x
                if evm.feasible.all():
                    sub_times += _try_incumbent(st, master, pool, xr, master.compute_value(xr), evm, Pm, bm)
                break
    finally:
        p.h.changeColsBounds(fc.size, fc, lo0, up0)
        p.set_integrality(relax=False)
    st.timings["refine_s"] += time.perf_counter() - t0
    st.stats["refine_cuts"] = st.stats.get("refine_cuts", 0) + master.cuts - cuts0
    return sub_times


def _try_incumbent(st: RunState[BendersOptions], master: BendersMaster, pool: SubproblemPool, x, value, evm: PoolEval, Pm, bm
                   ) -> list[np.ndarray]:
    """An integer master point whose sites are all feasible at its
    committed units' output: value it exactly (committed units as MILPs, free to choose
    their commitment) and keep it if it is better. Without committed units
    ``evm``'s value is already exact, and a point no better than the
    incumbent is skipped; with them the MILPs can only improve on it."""
    relaxed_val = value - float(evm.cost.sum())
    if not st.inst.committed.any() and relaxed_val <= st.objective + 1e-7 * max(
            1.0, abs(st.objective) if np.isfinite(st.objective) else 1.0):
        return []
    exact = pool.evaluate(Pm, bm, exact=True, time_limit=st.clock.left(st.finish_reserve))
    if exact.feasible.all():
        val = value - float(exact.cost.sum())
        if val > st.objective:
            xi = x.copy()
            xi[master.theta] = evm.cost
            st.offer(_master_solution(st.inst, master, xi, exact.dispatch), val, x=xi)
    return [exact.rank_s]


def _exact_endgame(st: RunState[BendersOptions], master: BendersMaster, pool: SubproblemPool,
                   rec: PrimalRecovery) -> tuple[bool, TC | None]:
    """The exact endgame (:mod:`.endgame`), where the LP phase stalls or
    at its end: reduced-cost fixing on the master LP, solved again with the
    last cuts (a relaxation of the problem:
    every cut holds for every schedule at its true site costs), then, where
    at most :data:`~.endgame.EXACT_ENDGAME_TRIPLES` triples are left free,
    the MILP over them from the incumbent with all the time left (without a
    time limit: to the gap asked). Returns (whether the endgame's MILP ran,
    how the run ends: converged, out of time, or None where it goes on: the
    endgame did not apply, or it left the gap open with time left)."""
    inst, opts, p = st.inst, st.opts, master.p
    if st.best is None or not rec.full_model_fits():
        return False, None
    limit = st.clock.left(st.finish_reserve)
    if limit is not None and (limit < 1.0 or rec.full_model_build_s() > 0.5 * limit):
        return False, None
    with st.timed("master_s"):
        info = highs.solve(p, time_limit=limit, threads=opts.threads)  # the LP again, for its reduced costs
    if not info.optimal:
        return False, None
    st.tighten(info.objective)  # the master LP with the last iteration's cuts: a bound as before
    x = p.values()
    fixed = lp_fixable(info.objective, p.col_duals()[master.x], x[master.x], st.objective, maximize=p.maximize)
    st.stats.update(reduced_cost_fixed=int(fixed.sum()), triples=int(fixed.size))
    free = int((~fixed).sum())
    if free > EXACT_ENDGAME_TRIPLES:
        st.log.note(f"reduced-cost fixing on the master LP leaves {free} triples free: no exact endgame")
        return False, None
    starts = np.flatnonzero(st.best.payload["x"][master.x] > 0.5)
    st.best.payload["candidate"] = Candidate(st.best.solution, st.best.objective, starts, None)
    before = st.objective
    st.log.note(f"reduced-cost fixing on the master LP fixed {int(fixed.sum())} of {fixed.size} triples; "
                "on to the exact endgame")
    limit = st.clock.left(st.finish_reserve)
    restricted_milp(st, pool, rec, [], fixed, limit, "exact endgame", bound_name="benders_bound")
    st.stats["exact_endgame_gain"] = st.objective - before
    if "x" not in st.best.payload:  # the endgame's schedule: the master vector the integer phase starts from
        cand = st.best.payload["candidate"]
        st.best.payload["x"] = master.vector(inst, cand.solution, cand.starts)
    if st.gap_reached:
        return True, TC.CONVERGED
    if interrupts.requested():
        return True, TC.INTERRUPTED
    if limit is not None:  # it had all the time left: what is left now is its margin
        return True, TC.TIME_LIMIT
    return True, None  # no limit, gap open (the MILP ended early): the integer phase goes on


def _heuristic(st: RunState[BendersOptions], master: BendersMaster, rec: PrimalRecovery, x: np.ndarray) -> None:
    """An incumbent from the LP master: repair its job choice, dispatch by LP."""
    with st.timed("heuristic_s"):
        chosen, score = master.choice(st.inst, x)
        cand = rec.from_choice(chosen, score, st.clock.left(st.finish_reserve),
                               floor=st.objective if st.best is not None else None)
        if cand is not None and cand.objective > st.objective:
            st.offer(cand.solution, cand.objective, x=master.vector(st.inst, cand.solution, cand.starts))
            st.log.note(f"heuristic incumbent {cand.objective:,.2f} from the LP master")


def _master_solution(inst: Instance, master: BendersMaster, x: np.ndarray, dispatch: np.ndarray) -> Solution:
    """The schedule of a master vector with the sites' exact dispatch."""
    master.p.load_into_pyomo(x)
    started, y = compute_arrays(master.m.compute, inst)
    sites = {k: dispatch[:, i, : inst.H + 1 if k == "soc_mwh" else inst.H].copy()
             for i, k in enumerate(SITE_SERIES)}
    training = [(inst.job_ids[j], inst.site_ids[s], t) for j, s, t in started]
    return Solution(inst.name, "benders", "feasible", None, None, None, None, training, y, sites)


def _add_violated(master: BendersMaster, inst: Instance, ev, Pm, bm, genm, th, tol_abs) -> None:
    """The cuts at (Pm, bm, genm) that the master point violates; ``genm``
    None where the sites chose their units' output (cuts in P and b only)."""
    for s in range(inst.S):
        b0 = None if bm is None else bm[s]
        gen0 = None if genm is None else genm[s]
        if not ev.feasible[s]:
            master.add_cut(s, False, ev.cost[s], ev.g_load[s], ev.g_alloc[s], Pm[s], b0, ev.g_gen[s], gen0)
        elif th[s] < ev.cost[s] - tol_abs * max(1.0, abs(ev.cost[s])):
            master.add_cut(s, True, ev.cost[s], ev.g_load[s], ev.g_alloc[s], Pm[s], b0, ev.g_gen[s], gen0)
