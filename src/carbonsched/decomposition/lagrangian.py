"""Lagrangian decomposition (MODEL.md section 7) over the MPI pool.

Dualised: the link ``P[s,t] = supplied[s,t]`` (price ``pi[s,t]``, $/MWh),
the carbon budget (``mu >= 0``, $/t) and, by default, the IT capacity
(``lam[s,t] >= 0``, $ per MW of IT for one period). With

    rho[s,t] = pi[s,t] dt pue[s,t] + lam[s,t]      ($ per IT MW for period t)

the dual function is

    L(pi, mu, lam) = mu B + sum lam cap
                     + max_compute [value - sum rho IT]          (compute side)
                     - sum_s min_energy [cost_s + mu E_s - sum_t pi dt supplied_s]   (pool)

With capacity dualised the compute side splits into one tiny problem per
job (its best (site, start) by window sums of rho, or nothing) and one per
(region, period) (its best reachable site, or nothing): solved vectorised
with numpy, no MILP, so an iteration stays cheap at thousands of jobs.
Without it (``--keep-capacity``) the compute side is a MILP solved by HiGHS.
Site problems are LPs (committed units relaxed), so L is an upper bound on
OB everywhere; with capacity dualised its minimum is the LP relaxation
bound.

Dual update: a box-step stabilised cutting-plane ("bundle") method whose
master is an LP solved by HiGHS (default), or subgradient with a Polyak
step. Primal recovery: each new job choice is repaired to fit capacity and
power (:func:`carbonsched.recovery.repair_schedule`), then routing and
dispatch are solved as an LP with the schedule fixed; the best is kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo

from .. import highs
from ..compute import add_facility_load, build_compute, inference_margin
from ..diagnose import diagnose, static_required_job_problems
from ..instance import Instance
from ..recovery import PrimalRecovery, window_sums
from ..result import Result, finalize, relative_gap
from ..solution import Solution
from ..solve import METHODS, SolveOptions
from .pool import SubproblemPool, run_on_pool
from .trace import IterationLog

__all__ = ["ComputeRelaxation", "DualLayout", "PricedComputeMILP", "evaluate_dual", "solve_lagrangian"]


# ----------------------------------------------------------------------------
# multipliers as one vector
@dataclass(frozen=True)
class DualLayout:
    """u = [pi (S*H), mu (1, only with a budget), lam (S*H, only if capacity
    is dualised)]; lower bounds -inf, 0, 0."""

    S: int
    H: int
    has_mu: bool
    has_lam: bool

    @property
    def n(self) -> int:
        return self.S * self.H * (1 + self.has_lam) + self.has_mu

    def split(self, u: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        k = self.S * self.H
        pi = u[:k].reshape(self.S, self.H)
        mu = float(u[k]) if self.has_mu else 0.0
        o = k + self.has_mu
        lam = u[o:o + k].reshape(self.S, self.H) if self.has_lam else np.zeros((self.S, self.H))
        return pi, mu, lam

    def join(self, pi, mu, lam) -> np.ndarray:
        parts = [np.ravel(pi)]
        if self.has_mu:
            parts.append(np.array([mu]))
        if self.has_lam:
            parts.append(np.ravel(lam))
        return np.concatenate(parts).astype(float)

    def lower(self) -> np.ndarray:
        k = self.S * self.H
        lo = np.full(self.n, -np.inf)
        lo[k:] = 0.0
        return lo


# ----------------------------------------------------------------------------
# compute side
@dataclass
class ComputeChoice:
    """A compute-side maximiser: per job the chosen triple (-1: none), the
    inference flows y [pairs, H], the IT load [S,H], the value ($, the
    compute side's term of L) and an upper bound on it (= value here)."""

    chosen: np.ndarray
    y: np.ndarray
    IT: np.ndarray
    value: float
    bound: float
    score: np.ndarray  # [triples] val - pow x window sum of rho


class ComputeRelaxation:
    """The compute side with capacity dualised, solved by numpy."""

    def __init__(self, inst: Instance):
        self.inst = inst
        jj, ss, tt = inst.triples
        self.first = np.searchsorted(jj, np.arange(inst.J))
        self.has = np.searchsorted(jj, np.arange(inst.J), side="right") > self.first
        self.rr, self.sr = inst.region_pairs
        self.margin = inference_margin(inst)
        self.const = -float((inst.pen[:, None] * inst.L).sum() * inst.dt)

    def solve(self, rho: np.ndarray) -> ComputeChoice:
        inst = self.inst
        jj, ss, tt = inst.triples
        score = inst.val[jj] - inst.pow[jj] * window_sums(inst, rho)
        chosen = np.full(inst.J, -1)
        total = 0.0
        if jj.size:
            order = np.lexsort((-score, jj))  # by job, best score first
            starts = np.searchsorted(jj[order], np.arange(inst.J))
            jobs = np.flatnonzero(self.has)
            best = order[starts[jobs]]
            take = inst.required[jobs] | (score[best] > 0)
            chosen[jobs[take]] = best[take]
            total += float(score[best[take]].sum())
        run = np.zeros((inst.S, inst.H))
        for k in chosen[chosen >= 0]:
            j, s, t0 = jj[k], ss[k], tt[k]
            run[s, t0:t0 + inst.dur[j]] += inst.pow[j]
        y = np.zeros((self.rr.size, inst.H))
        if self.rr.size:
            coef = self.margin[:, None] * inst.dt - inst.f_inf[self.sr][:, None] * rho[self.sr]
            for r in np.unique(self.rr):
                ks = np.flatnonzero(self.rr == r)
                i = np.argmax(coef[ks], axis=0)
                kbest = ks[i]
                pos = coef[kbest, np.arange(inst.H)] > 0
                y[kbest[pos], np.flatnonzero(pos)] = inst.L[r, pos]
            total += float((coef * y).sum())
        infl = np.zeros((inst.S, inst.H))
        np.add.at(infl, self.sr, inst.f_inf[self.sr][:, None] * y)
        IT = inst.idle[:, None] + run + infl
        total += self.const - float((rho * inst.idle[:, None]).sum())
        return ComputeChoice(chosen, y, IT, total, total, score)


class PricedComputeMILP:
    """The compute side with IT capacity kept: a MILP (compute block +
    facility load columns) whose load prices change each iteration."""

    def __init__(self, inst: Instance, opts: SolveOptions):
        self.inst, self.opts = inst, opts
        m = pyo.ConcreteModel()
        m.compute = pyo.Block()
        build_compute(m.compute, inst)
        add_facility_load(m, inst)
        m.obj = pyo.Objective(expr=m.compute.value + 0 * m.Pv[0, 0], sense=pyo.maximize)
        self.m = m
        self.p = highs.compile_model(m)
        self.Pv = np.array([[self.p.col[m.Pv[s, t]] for t in range(inst.H)] for s in range(inst.S)], dtype=np.int32)
        jj, _, _ = inst.triples
        self.x = self.p.cols_of(m.compute.x[k] for k in range(jj.size))
        rr, _ = inst.region_pairs
        self.y = np.array([[self.p.col.get(m.compute.y[k, t], -1) for t in range(inst.H)] for k in range(rr.size)],
                          dtype=np.int64).reshape(rr.size, inst.H)
        self.relax = ComputeRelaxation(inst)

    def solve(self, rho: np.ndarray) -> ComputeChoice:
        inst = self.inst
        # objective: value - sum rho IT = value - sum (rho / pue) P  (lam = 0 here)
        c = -(rho / inst.pue)
        self.p.h.changeColsCost(self.Pv.size, self.Pv.ravel(), c.ravel())
        info = highs.solve(self.p, mip_gap=1e-6, threads=self.opts.threads)
        if not info.has_solution:
            raise RuntimeError(f"priced compute MILP ended {info.raw_status}")
        x = self.p.values()
        jj, _, _ = inst.triples
        xv = np.where(self.x >= 0, x[np.maximum(self.x, 0)], 0.0)
        chosen = np.full(inst.J, -1)
        for k in np.flatnonzero(xv > 0.5):
            chosen[jj[k]] = k
        y = np.where(self.y >= 0, x[np.maximum(self.y, 0)], 0.0)
        IT = x[self.Pv] / inst.pue
        score = inst.val[jj] - inst.pow[jj] * window_sums(inst, rho)
        return ComputeChoice(chosen, y, IT, info.objective, info.bound if info.bound is not None else info.objective,
                             score)


# ----------------------------------------------------------------------------
@dataclass
class DualPoint:
    """L at u, its subgradient, and L split into its separable parts:
    L(u) = lin . u + sum_c f_c(u), c = compute side and each site, with
    ``parts[c] = (f_c, idx, g_c[idx])`` (a sparse subgradient of f_c)."""

    u: np.ndarray
    L: float  # upper bound on OB at u
    g: np.ndarray  # subgradient of L at u
    choice: ComputeChoice
    emissions: float
    parts: list = field(default_factory=list)


def linear_part(inst: Instance, lay: DualLayout) -> np.ndarray:
    """The coefficients of L's linear term: mu B + sum lam cap."""
    return lay.join(np.zeros((inst.S, inst.H)), inst.budget if lay.has_mu else 0.0,
                    np.repeat(inst.cap[:, None], inst.H, axis=1))


def evaluate_dual(inst: Instance, lay: DualLayout, u: np.ndarray, compute, pool: SubproblemPool) -> tuple[DualPoint, float]:
    """L(u), a subgradient and the per-part values; returns (point, pool wall seconds)."""
    pi, mu, lam = lay.split(u)
    rho = pi * inst.dt * inst.pue + lam
    ch = compute.solve(rho)
    t0 = time.perf_counter()
    pr = pool.price(pi, mu)
    pool_s = time.perf_counter() - t0
    lin = linear_part(inst, lay)
    L = float(lin @ u) + ch.bound - float(pr.value.sum())
    P = inst.pue * ch.IT
    E = float(pr.emissions.sum())
    g = lay.join(inst.dt * (pr.supplied - P), (inst.budget - E) if lay.has_mu else 0.0,
                 inst.cap[:, None] - ch.IT)
    # parts: compute side f_0 = max [value - sum rho IT]; site s: f_s = -value_s
    g0 = lay.join(-inst.dt * P, 0.0, -ch.IT)
    idx0 = np.flatnonzero(g0)
    parts = [(ch.bound, idx0, g0[idx0])]
    H = inst.H
    k = inst.S * H
    for s_ in range(inst.S):
        idx = np.arange(s_ * H, (s_ + 1) * H)
        vals = inst.dt * pr.supplied[s_]
        if lay.has_mu:
            idx = np.append(idx, k)
            vals = np.append(vals, -pr.emissions[s_])
        parts.append((-float(pr.value[s_]), idx, vals))
    return DualPoint(u, L, g, ch, E, parts), pool_s


# ----------------------------------------------------------------------------
# dual updates
class BoxStepBundle:
    """Stabilised, disaggregated cutting planes: L is linear plus one convex
    part per site and one for the compute side, each with its own cutting-
    plane model, minimised over a box around the stability centre -- an LP
    in HiGHS (cuts added as rows, the box by column bounds). Serious step
    when the actual decrease is at least 10% of the predicted one; the box
    grows after serious steps and shrinks after null steps."""

    def __init__(self, lay: DualLayout, scale: np.ndarray, lin: np.ndarray, nparts: int, radius: float = 0.5,
                 max_cuts_per_part: int = 60):
        self.lay, self.scale = lay, scale
        self.radius = radius
        self.max_cuts = max_cuts_per_part
        self.lo = lay.lower()
        h = highs.highspy.Highs()
        h.setOptionValue("output_flag", False)
        n = lay.n
        self.n, self.nparts = n, nparts
        h.addVars(n + nparts, np.full(n + nparts, -highs.INF), np.full(n + nparts, highs.INF))
        cost = np.concatenate([lin, np.ones(nparts)])
        h.changeColsCost(n + nparts, np.arange(n + nparts, dtype=np.int32), cost)
        self.h = h
        self.row_part: list[int] = []  # part of each row, in HiGHS row order
        self.center: DualPoint | None = None
        self.last_pred = None
        self.serious = 0
        self.null = 0
        self.on_edge = False

    def add(self, pt: DualPoint) -> None:
        for c, (f, idx, vals) in enumerate(pt.parts):
            cols = np.append(idx, self.n + c).astype(np.int32)
            row = np.append(-vals, 1.0)
            self.h.addRow(float(f - vals @ pt.u[idx]), highs.INF, cols.size, cols, row)
            self.row_part.append(c)
            if self.row_part.count(c) > self.max_cuts:  # drop this part's oldest cut
                i = self.row_part.index(c)
                self.h.deleteRows(1, np.array([i], dtype=np.int32))
                self.row_part.pop(i)

    def step(self, pt: DualPoint) -> np.ndarray:
        """Take the new point's information, return the next trial point."""
        self.add(pt)
        if self.center is None:
            self.center = pt
        else:
            actual = self.center.L - pt.L
            if self.last_pred is not None and actual >= 0.1 * self.last_pred:
                self.center = pt
                self.serious += 1
                if actual >= 0.5 * self.last_pred:
                    self.radius = min(self.radius * 2.0, 64.0)
            else:
                self.null += 1
                self.radius = max(self.radius * 0.5, 1e-6)
        c = self.center.u
        r = self.radius * self.scale
        lo = np.maximum(self.lo, c - r)
        hi = c + r
        self.h.changeColsBounds(self.n, np.arange(self.n, dtype=np.int32), lo, hi)
        self.h.run()
        sol = np.asarray(self.h.getSolution().col_value)
        v = float(self.h.getInfo().objective_function_value)
        self.last_pred = self.center.L - v
        x = sol[: self.n].copy()
        # on the box's edge (other than u >= 0) the model's minimum is only local
        self.on_edge = bool(np.any((np.abs(x - hi) <= 1e-9 * (1 + np.abs(hi)))
                                   | ((np.abs(x - lo) <= 1e-9 * (1 + np.abs(lo))) & (lo > self.lo))))
        return x

    def converged(self, tol: float) -> bool:
        """Predicted decrease below ``tol`` with the trial point inside the
        box: the centre is optimal to within ``tol``. On the edge, widen."""
        if self.last_pred is None or self.last_pred > tol:
            return False
        if self.on_edge:
            self.radius = min(self.radius * 4.0, 64.0)
            return False
        return True


class PolyakSubgradient:
    """u <- max(lo, u - a (L - target) / |g|^2 g); a halves after 5
    iterations without a better bound."""

    def __init__(self, lay: DualLayout, alpha: float = 1.0):
        self.lo = lay.lower()
        self.alpha = alpha
        self.best = np.inf
        self.stall = 0
        self.last_step = 0.0

    def step(self, pt: DualPoint, target: float) -> np.ndarray:
        if self.best - 1e-9 * max(1.0, abs(pt.L)) > pt.L:
            self.best = pt.L
            self.stall = 0
        else:
            self.stall += 1
            if self.stall >= 5:
                self.alpha = max(self.alpha / 2, 1e-4)
                self.stall = 0
        gg = float(pt.g @ pt.g)
        if gg <= 0:
            return pt.u
        step = self.alpha * max(pt.L - target, 1e-9 * max(1.0, abs(pt.L))) / gg
        self.last_step = step
        return np.maximum(self.lo, pt.u - step * pt.g)


def solve_lagrangian(inst: Instance, opts: SolveOptions = SolveOptions()) -> Result | None:
    """Lagrangian relaxation over the MPI pool; rank 0 returns the result,
    other ranks serve the pool and return None."""
    return run_on_pool(inst, opts, _run)


def _run(inst: Instance, opts: SolveOptions, pool: SubproblemPool) -> Result:
    t0 = time.perf_counter()
    update = opts.get("dual_update") or "bundle"
    recover_every = int(opts.get("recover_every", 5))
    dualize_cap = not bool(opts.get("keep_capacity", False))
    log = IterationLog(opts.verbose, ["bound", "incumbent", "gap", "L(u)", "step", "comp_s", "sub_max_s"])
    static = static_required_job_problems(inst)
    if static:
        return finalize(inst, Solution.empty(inst, "lagrangian", "infeasible"), bound=None,
                        timings={"total_s": time.perf_counter() - t0}, diagnosis=static)
    tb = time.perf_counter()
    lay = DualLayout(inst.S, inst.H, inst.budget is not None, dualize_cap)
    compute = ComputeRelaxation(inst) if dualize_cap else PricedComputeMILP(inst, opts)
    pool.calibrate()
    rec = PrimalRecovery(inst, pool, method="lagrangian")
    build_s = time.perf_counter() - tb
    # start: the grid's marginal price (import price + carbon price x intensity), mu = lam = 0
    pi0 = inst.pb + inst.carbon_price * inst.ci
    u = lay.join(pi0, 0.0, np.zeros((inst.S, inst.H)))
    price_scale = max(1.0, float(np.mean(inst.pb)))
    scale = lay.join(np.full((inst.S, inst.H), price_scale),
                     price_scale / max(0.05, float(np.mean(inst.ci))),
                     np.full((inst.S, inst.H), price_scale * float(np.mean(inst.pue)) * inst.dt))
    method = (BoxStepBundle(lay, scale, linear_part(inst, lay), inst.S + 1) if update == "bundle"
              else PolyakSubgradient(lay))
    best = rec  # the incumbent lives in the recovery object
    recent: list[np.ndarray] = []  # the job choices of the last 20 iterations
    trace = []
    log.header(f"Lagrangian: {inst.S} sites over {pool.size} rank(s), {lay.n} multipliers "
               f"(capacity {'dualised' if dualize_cap else 'kept'}), dual update {update}")
    comp_s = sub_s = 0.0
    hint = "iteration_limit"
    polish_on = bool(opts.get("polish", True))
    # keep up to 15% of the time limit (at most polish_time) for the final polish
    reserve = 0.0 if (opts.time_limit is None or not polish_on) else min(
        float(opts.get("polish_time", 30.0)), 0.15 * opts.time_limit)
    for it in range(1, opts.max_iterations + 1):
        left = None if opts.time_limit is None else opts.time_limit - reserve - (time.perf_counter() - t0)
        if left is not None and left <= 0:
            hint = "time_limit"
            break
        tc = time.perf_counter()
        pt, psec = evaluate_dual(inst, lay, u, compute, pool)
        comp_s += time.perf_counter() - tc - psec
        sub_s += psec
        best.bound = min(best.bound, pt.L)
        recent.append(pt.choice.chosen.copy())
        del recent[:-20]
        if it <= 10 or it % recover_every == 0:
            rec.from_choice(pt.choice.chosen, pt.choice.score, left)
        gap = relative_gap(best.bound, best.objective) if best.solution is not None else None
        if update == "bundle":
            u = method.step(pt)
            step = method.radius
        else:
            target = best.objective if best.solution is not None else pt.L - 0.05 * max(1.0, abs(pt.L))
            u = method.step(pt, target)
            step = method.last_step
        row = {"iter": it, "bound": best.bound, "incumbent": best.objective if best.solution else None, "gap": gap,
               "L(u)": pt.L, "step": step, "comp_s": time.perf_counter() - tc - psec, "sub_max_s": psec,
               "t": time.perf_counter() - t0}
        trace.append(row)
        log.row(row)
        if gap is not None and gap <= opts.gap:
            hint = "optimal"
            break
        if update == "bundle" and method.converged(1e-7 * max(1.0, abs(best.bound))):
            hint = "dual_converged"
            break
    if polish_on and best.solution is not None and (gap is None or gap > opts.gap):
        left = None if opts.time_limit is None else opts.time_limit - (time.perf_counter() - t0)
        if left is None or left > 1.0:
            rec.polish(recent, time_limit=min(float(opts.get("polish_time", 30.0)), left or np.inf),
                       gap=opts.gap / 2, threads=opts.threads, log=log.note)
    total = time.perf_counter() - t0
    stats = {"iterations": len(trace), "ranks": pool.size, "dual_update": update, "capacity_dualised": dualize_cap,
             "recoveries": best.recoveries, "stop": hint, "trace": trace, "rank_load_s": pool.loads().tolist()}
    if update == "bundle":
        stats.update(serious_steps=method.serious, null_steps=method.null)
    timings = {"build_s": build_s, "compute_s": comp_s, "subproblems_s": sub_s, "recovery_s": best.recovery_s,
               "polish_s": best.polish_s, "total_s": total}
    stats["polish_gain"] = best.polish_gain
    if best.solution is None:
        status, msgs, facts = diagnose(inst, time_limit=60.0)
        if status == "infeasible" and "neither" in msgs[0]:
            status, msgs = "time_limit", ["no feasible schedule recovered"]
        return finalize(inst, Solution.empty(inst, "lagrangian", status), bound=best.bound, timings=timings,
                        stats={**stats, **facts}, diagnosis=msgs)
    sol = best.solution
    gap = relative_gap(best.bound, best.objective)
    sol.status = "optimal" if gap <= opts.gap else ("time_limit" if hint == "time_limit" else "feasible")
    res = finalize(inst, sol, bound=best.bound, timings=timings, stats=stats)
    log.note(f"Lagrangian {sol.status}: objective {res.objective:,.4f}, bound {best.bound:,.4f}, gap {res.gap:.3e}, "
             f"{len(trace)} iterations, {best.recoveries} recoveries, {total:.2f} s")
    return res


METHODS["lagrangian"] = solve_lagrangian
