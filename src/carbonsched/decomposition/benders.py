"""Benders decomposition (MODEL.md section 7), multi-cut, over the MPI pool.

Master (rank 0): the compute block, facility loads ``Pv[s,t]`` (= P[s,t]),
carbon allocations ``b[s]`` with ``sum_s b[s] <= B``, and one value variable
``theta[s]`` per site; it maximises ``value - sum_s theta[s]``. Site ``s``
(on the pool) returns its least energy cost ``Q_s(P̂, b̂)`` and the duals of
its balance and allocation rows, giving the optimality cut

    theta[s] >= Q_s + sum_t g[t] (Pv[s,t] - P̂[t]) + h (b[s] - b̂)

or, where the load or allocation cannot be met, the phase-1 value
``w > 0`` and its duals give the feasibility cut ``w + g.(Pv - P̂) + h (b - b̂) <= 0``.

Phase 1 solves the master's LP relaxation to gather cuts cheaply (with
optional in-out stabilisation around a core point); phase 2 solves the
master MILP, warm-started with the incumbent. Each integer master solution
is evaluated with the exact site problems (committed generators as MILPs)
for a true feasible value; cuts come from LP relaxations and stay valid, so
the bound is valid too -- where committed units make the relaxation loose,
the remaining gap is reported as it is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo

from .. import highs
from ..check import site_costs
from ..compute import add_facility_load, build_compute, compute_arrays
from ..diagnose import diagnose, max_supply
from ..instance import Instance
from ..recovery import PrimalRecovery
from ..result import Result, finalize, relative_gap
from ..solution import SITE_SERIES, Solution, facility_load
from ..solve import METHODS, SolveOptions
from .pool import SubproblemPool, run_on_pool
from .trace import IterationLog

__all__ = ["BendersMaster", "build_master", "solve_benders"]


def site_emission_cap(inst: Instance) -> np.ndarray:
    """[S] most emissions a site can produce over the horizon (t)."""
    gen = np.where(inst.has_gen, inst.gmax * inst.ef, 0.0)
    return ((inst.ci * inst.imax[:, None]).sum(axis=1) + gen * inst.H) * inst.dt


def site_cost_floor(inst: Instance) -> np.ndarray:
    """[S] a valid lower bound on any site's energy cost: every term is >= 0
    except export revenue, which is at most sum_t ps xmax dt."""
    return -(inst.ps * inst.xmax[:, None]).sum(axis=1) * inst.dt


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
    cuts: int = 0
    feas_cuts: int = 0

    @staticmethod
    def build(inst: Instance) -> BendersMaster:
        m = build_master(inst)
        p = highs.compile_model(m)
        S, H = inst.S, inst.H
        Pv = np.array([[p.col[m.Pv[s, t]] for t in range(H)] for s in range(S)], dtype=np.int32)
        theta = np.array([p.col[m.theta[s]] for s in range(S)], dtype=np.int32)
        b = np.array([p.col[m.b[s]] for s in range(S)], dtype=np.int32) if inst.budget is not None else None
        jj, _, _ = inst.triples
        x = p.cols_of(m.compute.x[k] for k in range(jj.size))
        rr, _ = inst.region_pairs
        y = np.array([[p.col.get(m.compute.y[k, t], -1) for t in range(H)] for k in range(rr.size)],
                     dtype=np.int64).reshape(rr.size, H)
        return BendersMaster(m, p, Pv, theta, b, x, y)

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

    def point(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(P [S,H], b [S] or None, theta [S]) of a master vector."""
        return x[self.Pv], (x[self.b] if self.b is not None else None), x[self.theta]

    def add_cut(self, s: int, feasible: bool, cost: float, g: np.ndarray, h: float, P0: np.ndarray,
                b0: float | None) -> None:
        """Optimality cut (feasible) or feasibility cut for site ``s`` taken at
        (P0, b0): see the module docstring."""
        nz = np.abs(g) > 1e-12
        cols = [self.Pv[s][nz]]
        const = cost - float(g @ P0)
        gv = g[nz]
        vals = [-gv] if feasible else [gv]
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
class _Incumbent:
    objective: float
    x: np.ndarray  # master vector (theta = relaxed Q)
    dispatch: np.ndarray  # [S, series, H+1]


@dataclass
class _State:
    ub: float = np.inf
    lb: float = -np.inf
    inc: _Incumbent | None = None
    trace: list = field(default_factory=list)
    master_s: float = 0.0
    sub_s: float = 0.0
    phase_s: dict = field(default_factory=lambda: {"lp": 0.0, "mip": 0.0})
    iters: dict = field(default_factory=lambda: {"lp": 0, "mip": 0})


def solve_benders(inst: Instance, opts: SolveOptions = SolveOptions()) -> Result | None:
    """Benders over the MPI pool. On ranks other than 0 this serves the
    pool and returns None."""
    return run_on_pool(inst, opts, _run)


def _run(inst: Instance, opts: SolveOptions, pool: SubproblemPool) -> Result:
    t0 = time.perf_counter()
    stabilize = (opts.get("stabilize") or "inout") == "inout"
    lam = float(opts.get("inout_lambda", 0.5))
    lp_iters_max = int(opts.get("lp_iterations", 100))
    log = IterationLog(opts.verbose, ["phase", "bound", "incumbent", "gap", "cuts", "master_s", "sub_max_s",
                                      "sub_mean_s"])
    tb = time.perf_counter()
    master = BendersMaster.build(inst)
    pool.calibrate()
    heuristic = bool(opts.get("heuristic", True))
    rec = PrimalRecovery(inst, pool, method="benders") if heuristic else None
    build_s = time.perf_counter() - tb
    heur_s = 0.0
    p = master.p
    st = _State()
    tol_abs = 1e-7
    core = None
    phase = "lp"
    p.set_integrality(relax=True)
    status_hint = None
    tighten = False  # force the final master gap (after a round without cuts)
    log.header(f"Benders: {inst.S} sites over {pool.size} rank(s), {p.num_col} master columns "
               f"({p.integer_cols.size} binaries), stabilisation {'in-out' if stabilize else 'off'}")
    it = 0
    while it < opts.max_iterations:
        it += 1
        left = None if opts.time_limit is None else opts.time_limit - (time.perf_counter() - t0)
        if left is not None and left <= 0:
            status_hint = "time_limit"
            break
        tm = time.perf_counter()
        if phase == "mip" and st.inc is not None:
            p.set_start(st.inc.x)
        # adaptive master gap: loose while the global gap is wide, never looser
        # than a quarter of it, and opts.gap / 4 at the end (the bound is the
        # master's dual bound, so it stays valid at any master gap)
        cur = relative_gap(st.ub, st.lb) if st.inc is not None else None
        mgap = float(np.clip((cur or 0.04) / 4, opts.gap / 4, 0.01))
        if tighten:
            mgap = opts.gap / 4
        info = highs.solve(p, time_limit=left, mip_gap=mgap, threads=opts.threads, log=opts.log)
        dt_master = time.perf_counter() - tm
        st.master_s += dt_master
        if info.termination == "infeasible":
            status, msgs, facts = diagnose(inst, time_limit=left or 60.0)
            return finalize(inst, Solution.empty(inst, "benders", status), bound=None,
                            timings={"total_s": time.perf_counter() - t0}, stats=facts, diagnosis=msgs)
        if not info.has_solution:
            status_hint = "time_limit"
            break
        x = p.values().copy()
        Pm, bm, th = master.point(x)
        bound = info.objective if phase == "lp" else info.bound
        if bound is not None:
            st.ub = min(st.ub, bound)
        value = info.objective + float(th.sum())  # compute side value of the master point
        ts = time.perf_counter()
        cuts_before = master.cuts
        sub_times = []
        # --- in-out separation point (LP phase only)
        evm = None
        if phase == "lp" and stabilize and core is not None:
            Ps = lam * Pm + (1 - lam) * core[0]
            bs = None if bm is None else lam * bm + (1 - lam) * core[1]
            ev = pool.evaluate(Ps, bs)
            sub_times.append(ev.rank_s)
            cut_off = False
            for s in range(inst.S):
                b0 = None if bs is None else bs[s]
                b1 = None if bm is None else bm[s]
                val = _cut_value(ev.cost[s], ev.g_load[s], ev.g_alloc[s], Ps[s], b0, Pm[s], b1)
                if ev.feasible[s]:
                    if th[s] < val - tol_abs * max(1.0, abs(val)):
                        cut_off = True
                    master.add_cut(s, True, ev.cost[s], ev.g_load[s], ev.g_alloc[s], Ps[s], b0)
                else:
                    cut_off |= val > 1e-9
                    master.add_cut(s, False, ev.cost[s], ev.g_load[s], ev.g_alloc[s], Ps[s], b0)
            if not cut_off:
                evm = pool.evaluate(Pm, bm)
                sub_times.append(evm.rank_s)
                _add_violated(master, inst, evm, Pm, bm, th, tol_abs)
        else:
            evm = pool.evaluate(Pm, bm)
            sub_times.append(evm.rank_s)
            _add_violated(master, inst, evm, Pm, bm, th, tol_abs)
        core = (Pm.copy(), None if bm is None else bm.copy()) if core is None else (
            0.5 * core[0] + 0.5 * Pm, None if bm is None else 0.5 * core[1] + 0.5 * bm)
        new_cuts = master.cuts - cuts_before
        # --- incumbent from an integer master point
        if phase == "mip" and evm is not None and evm.feasible.all():
            relaxed_val = value - float(evm.cost.sum())
            if relaxed_val > st.lb + tol_abs * max(1.0, abs(st.lb) if np.isfinite(st.lb) else 1.0):
                exact = pool.evaluate(Pm, bm, exact=True)
                sub_times.append(exact.rank_s)
                if exact.feasible.all():
                    val = value - float(exact.cost.sum())
                    if val > st.lb:
                        xi = x.copy()
                        xi[master.theta] = evm.cost
                        st.lb = val
                        st.inc = _Incumbent(val, xi, exact.dispatch)
        dt_sub = time.perf_counter() - ts
        st.sub_s += dt_sub
        st.phase_s[phase] += dt_master + dt_sub
        st.iters[phase] += 1
        rank_s = np.sum(sub_times, axis=0) if sub_times else np.zeros(pool.size)
        lp_val = value - float(evm.cost.sum()) if (evm is not None and evm.feasible.all()) else None
        gap = relative_gap(st.ub, st.lb) if st.inc is not None else None
        row = {"iter": it, "phase": phase, "bound": st.ub, "incumbent": st.lb if st.inc else None, "gap": gap,
               "cuts": new_cuts, "master_s": dt_master, "sub_max_s": float(rank_s.max()),
               "sub_mean_s": float(rank_s.mean()), "lp_value": lp_val, "t": time.perf_counter() - t0}
        st.trace.append(row)
        log.row(row)
        if phase == "lp":
            lp_gap = relative_gap(bound, lp_val) if lp_val is not None else None
            lp_done = (new_cuts == 0 or (lp_gap is not None and lp_gap <= min(1e-6, opts.gap / 10))
                       or st.iters["lp"] >= lp_iters_max)
            if rec is not None and (lp_done or st.iters["lp"] % 10 == 1):
                # incumbents from the LP master: repair its job choice, dispatch by LP
                th0 = time.perf_counter()
                chosen, score = master.choice(inst, x)
                if rec.from_choice(chosen, score, left) and rec.objective > st.lb:
                    sol = rec.solution
                    st.lb = rec.objective
                    disp = np.zeros((inst.S, len(SITE_SERIES), inst.H + 1))
                    for i, k in enumerate(SITE_SERIES):
                        disp[:, i, : sol.sites[k].shape[1]] = sol.sites[k]
                    st.inc = _Incumbent(rec.objective, master.vector(inst, sol, rec.starts), disp)
                    log.note(f"heuristic incumbent {rec.objective:,.2f} from the LP master")
                heur_s += time.perf_counter() - th0
            if lp_done:
                phase = "mip"
                p.set_integrality(relax=False)
                log.note(f"LP relaxation bound {st.ub:,.4f} after {st.iters['lp']} iterations; integer phase")
            continue
        if gap is not None and gap <= opts.gap:
            status_hint = "optimal"
            break
        if new_cuts == 0:
            # no cut: the master point is optimal for the relaxed sites, up to
            # the master's own gap -- tighten that first, then stop
            if mgap > opts.gap / 4 and not tighten:
                tighten = True
                continue
            status_hint = "stalled"
            break
    else:
        status_hint = status_hint or "iteration_limit"
    res = _finish(inst, opts, master, pool, st, status_hint, build_s, t0, log)
    res.timings["heuristic_s"] = heur_s
    res.solution.stats["heuristic_recoveries"] = rec.recoveries if rec is not None else 0
    return res


def _add_violated(master: BendersMaster, inst: Instance, ev, Pm, bm, th, tol_abs) -> None:
    for s in range(inst.S):
        b0 = None if bm is None else bm[s]
        if not ev.feasible[s]:
            master.add_cut(s, False, ev.cost[s], ev.g_load[s], ev.g_alloc[s], Pm[s], b0)
        elif th[s] < ev.cost[s] - tol_abs * max(1.0, abs(ev.cost[s])):
            master.add_cut(s, True, ev.cost[s], ev.g_load[s], ev.g_alloc[s], Pm[s], b0)


def _finish(inst, opts, master: BendersMaster, pool, st: _State, hint, build_s, t0, log) -> Result:
    total = time.perf_counter() - t0
    stats = {"iterations": len(st.trace), "iterations_lp": st.iters["lp"], "iterations_mip": st.iters["mip"],
             "cuts": master.cuts, "feasibility_cuts": master.feas_cuts, "ranks": pool.size,
             "stop": hint, "rank_load_s": pool.loads().tolist(), "trace": st.trace}
    timings = {"build_s": build_s, "master_s": st.master_s, "subproblems_s": st.sub_s,
               "phase_lp_s": st.phase_s["lp"], "phase_mip_s": st.phase_s["mip"], "total_s": total}
    if st.inc is None:
        log.note("no feasible schedule found")
        return finalize(inst, Solution.empty(inst, "benders", "time_limit"), bound=st.ub, timings=timings,
                        stats=stats, diagnosis=[f"stopped ({hint}) before any feasible schedule was found"])
    master.p.load_into_pyomo(st.inc.x)
    started, y = compute_arrays(master.m.compute, inst)
    sites = {k: st.inc.dispatch[:, i, : inst.H + 1 if k == "soc_mwh" else inst.H].copy()
             for i, k in enumerate(SITE_SERIES)}
    training = [(inst.job_ids[j], inst.site_ids[s], t) for j, s, t in started]
    gap = relative_gap(st.ub, st.lb)
    status = "optimal" if gap is not None and gap <= opts.gap else ("time_limit" if hint == "time_limit" else "feasible")
    sol = Solution(inst.name, "benders", status, None, None, None, None, training, y, sites)
    stats["incumbent_value"] = st.lb
    res = finalize(inst, sol, bound=st.ub, timings=timings, stats=stats)
    log.note(f"Benders {status}: objective {res.objective:,.4f}, bound {st.ub:,.4f}, gap {res.gap:.3e}, "
             f"{len(st.trace)} iterations, {master.cuts} cuts ({master.feas_cuts} feasibility), {total:.2f} s")
    return res


METHODS["benders"] = solve_benders
