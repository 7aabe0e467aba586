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
step. Primal recovery (:mod:`.recovery`): an LP over each job's choice and
its best alternatives decides which jobs run where within capacity, power
and the budget, a small MILP settles the jobs it splits; the best is kept.

After the dual iterations, the site relaxation (:mod:`.site_blocks`) can
take the bound below the LP relaxation's; the site search
(:mod:`.site_search`) improves the incumbent on the same site MILPs; the
polish then searches time windows, where jobs may change site, and the
undecided jobs. Triples fixed by reduced costs along the way can turn the
polish into a restricted MILP whose bound is global.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo

from .. import highs, interrupts
from ..clock import BudgetExhausted, Clock
from ..compute import add_facility_load, build_compute, priced_margin
from ..config import LagrangianOptions
from ..constants import TerminationCondition as TC
from ..derived import inference_load, schedule_load, unserved_penalty, window_sums
from ..diagnose import diagnose
from ..errors import SolverError
from ..instance import Instance
from ..model import estimate_build_s, memory_check
from ..result import Result, WorkerReport
from .box_step import next_radius
from .checkpoint import CheckpointError, pack_ragged, unpack_ragged
from .driver import RunState, finish, preflight
from .endgame import ENDGAME_HANDOVER_SHARE, ENDGAME_HANDOVER_WINDOW, EXACT_ENDGAME_TRIPLES, endgame_due, restricted_milp
from .pool import SubproblemPool, run_on_pool
from .recovery import Candidate, PrimalRecovery
from .site_blocks import PricedSites, block_picks, column_generation, fixable_triples, from_prices
from .site_search import search_rounds
from .trace import IterationLog

__all__ = ["ComputeRelaxation", "DualLayout", "PricedComputeMILP", "average_choice", "bundle_cut_cap", "endgame_due",
           "evaluate_dual", "recover_at", "recovery_share", "setup_dual", "solve_lagrangian"]

#: a run with no schedule after this many iterations (each with its recovery) is diagnosed, in at most
#: DIAGNOSE_S seconds (and a quarter of the time left): an infeasible instance ends there, with its reason
DIAGNOSE_AT = 10
DIAGNOSE_S = 60.0


class ComputeInfeasible(SolverError):
    """The priced compute MILP (capacity kept) is infeasible: so is the
    instance, whatever the prices."""


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
    compute side's term of L) and an upper bound on it (= value here), at
    the IT load prices ``rho`` [S,H] ($ per IT MW for one period)."""

    chosen: np.ndarray
    y: np.ndarray
    IT: np.ndarray
    value: float
    bound: float
    score: np.ndarray  # [triples] val - pow x window sum of rho
    rho: np.ndarray | None = None


class ComputeRelaxation:
    """The compute side with capacity dualised, solved by numpy."""

    def __init__(self, inst: Instance):
        self.inst = inst
        jj, ss, tt = inst.triples
        self.first = np.searchsorted(jj, np.arange(inst.J))
        self.has = np.searchsorted(jj, np.arange(inst.J), side="right") > self.first
        self.rr, self.sr = inst.region_pairs
        self.const = -unserved_penalty(inst)

    def solve(self, rho: np.ndarray) -> ComputeChoice:
        inst = self.inst
        jj = inst.triples[0]
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
        run = schedule_load(inst, chosen[chosen >= 0])
        y = np.zeros((self.rr.size, inst.H))
        if self.rr.size:
            coef = priced_margin(inst, rho)
            for r in np.unique(self.rr):
                ks = np.flatnonzero(self.rr == r)
                i = np.argmax(coef[ks], axis=0)
                kbest = ks[i]
                pos = coef[kbest, np.arange(inst.H)] > 0
                y[kbest[pos], np.flatnonzero(pos)] = inst.L[r, pos]
            total += float((coef * y).sum())
        IT = inst.idle[:, None] + run + inference_load(inst, y)
        total += self.const - float((rho * inst.idle[:, None]).sum())
        return ComputeChoice(chosen, y, IT, total, total, score, rho)


class PricedComputeMILP:
    """The compute side with IT capacity kept: a MILP (compute block +
    facility load columns) whose load prices change each iteration."""

    def __init__(self, inst: Instance, opts: LagrangianOptions):
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
        if info.infeasible:
            raise ComputeInfeasible("the compute side alone (every required job placed within IT capacity) has "
                                    "no feasible point")
        if not info.has_solution:
            raise SolverError(f"priced compute MILP ended {info.raw_status}")
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
                             score, rho)


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


def evaluate_dual(inst: Instance, lay: DualLayout, u: np.ndarray, compute, pool: SubproblemPool, *,
                  overlap: bool = False) -> tuple[DualPoint, float]:
    """L(u), a subgradient and the per-part values; returns (point, pool
    wall seconds). ``overlap=True``: the workers start on their sites while
    rank 0 solves the compute side (they are independent given u). Off by
    default: on 2 ranks on 2 cores (100 sites x 168 h, 1,000 jobs;
    ``scripts/mpi_scaling.py``) an evaluation took 264 ms overlapped against
    230 ms with the compute side first, since the compute side's numpy
    (multi-threaded BLAS) then shares the cores with the workers' solves;
    with one BLAS thread both took 229 ms."""
    pi, mu, lam = lay.split(u)
    rho = pi * inst.dt * inst.pue + lam
    t0 = time.perf_counter()
    if overlap:
        pool.price_begin(pi, mu)
    tc = time.perf_counter()
    ch = compute.solve(rho)
    comp_s = time.perf_counter() - tc
    if overlap:
        pool.note_root_work(comp_s)
        pr = pool.price_end()
    else:
        pr = pool.price(pi, mu)
    pool_s = time.perf_counter() - t0 - comp_s
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


def average_choice(inst: Instance, choices: list[np.ndarray], weights: np.ndarray, *,
                   threshold: float = 0.5) -> np.ndarray:
    """A job choice from a convex combination of job choices (``choices``:
    [J] triple or -1 each, ``weights`` summing to 1): each job at its
    heaviest triple where its weight over all its triples is at least
    ``threshold``, else -1; a required job at its heaviest triple if it
    has any weight. On `medium` (1 rank, recoveries every 20 iterations
    from 60 to 200) schedules recovered from the bundle's combination were
    worth 12.00-12.07 M (best 12,068,359) against 11.99-12.04 M (best
    12,044,579) from the last choice at the same points."""
    jj = inst.triples[0]
    chosen = np.full(inst.J, -1, dtype=np.int64)
    if jj.size == 0 or not choices:
        return chosen
    C = np.stack(choices)
    ok = C >= 0
    w = np.zeros(jj.size)
    np.add.at(w, C[ok], np.broadcast_to(np.asarray(weights, float)[:, None], C.shape)[ok])
    order = np.lexsort((-w, jj))  # by job, heaviest triple first
    first = order[np.r_[True, jj[order][1:] != jj[order][:-1]]]
    job_w = np.zeros(inst.J)
    np.add.at(job_w, jj, w)
    jobs = jj[first]
    take = (job_w[jobs] >= threshold) | (inst.required[jobs] & (job_w[jobs] > 0))
    chosen[jobs[take]] = first[take]
    return chosen


# ----------------------------------------------------------------------------
# dual updates
def drop_cuts(part: np.ndarray, loose: np.ndarray, keep: int | np.ndarray) -> np.ndarray:
    """The cuts to delete (positions, oldest first per part) so that each
    part keeps ``keep`` (one number, or one per part): its oldest *loose*
    ones (``loose``: the row's slack is basic), never its newest, so the
    cuts that shape the model's minimum stay. Deleting loose rows also
    keeps HiGHS's basis valid; deleting the
    oldest, binding or not, had voided it at 19 of 20 iterations on `medium`
    (which did not cost time: the box's move costs 500-800 dual simplex
    iterations a solve either way). `bench/test_bench_bundle.py`, `medium`,
    200 iterations: least L 12,191,856 against 12,193,710 with the oldest
    dropped, master LP 1.20x the seconds (more binding rows kept). A part
    whose binding cuts pile up past twice ``keep`` is cut back to ``keep``,
    oldest first. ``part`` [rows]: each row's part, oldest row first."""
    out = []
    parts = np.unique(part)
    # one cap per part (a single number, Python or numpy, is every part's)
    caps = np.asarray(keep, dtype=np.int64)
    if caps.ndim == 0:
        caps = np.full(int(parts.max()) + 1 if parts.size else 0, int(caps))
    for c in parts:
        rows = np.flatnonzero(part == c)
        k = int(caps[c])
        extra = rows.size - k
        if extra <= 0:
            continue
        take = rows[:-1][loose[rows[:-1]]][:extra]
        if rows.size - take.size > 2 * k:
            take = rows[:extra]
        out.append(take)
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def bundle_cut_cap(n: int, nonzeros: int = 70_000) -> int:
    """How many cuts each part of the bundle keeps where there are ``n``
    multipliers: about ``nonzeros`` for the compute side's part, whose cuts
    have a nonzero for each multiplier, between 10 and 30; the sites'
    parts keep as many (together their cuts have about half the nonzeros:
    a site's cut covers its own periods' prices). With few multipliers the
    master LP is cheap beside the site LPs and more cuts save iterations
    (on the test cases 10 cuts took 1.5-1.9x the iterations of 30 to
    converge); with thousands (`medium` 6,721, `large` 33,601) the master
    is most of an iteration and 10 cuts buy more iterations than they cost.
    Compute side (sites at 30): `medium`, 1 rank, the same 45 s: L
    12,186,917 against 12,191,856 with 30. Sites (compute side at its
    cap), 1 rank, the same seconds of dual iterations, least L (lower is
    better): `large` 300 s, 62,713,020 at 10 against 62,726,493 at 20,
    62,732,094 at 30 (240 iterations) and 62,720,669 at 5 (347); `medium`
    60 s, 12,159,571 at 10 (411 iterations) against 12,162,782 at 30 (295);
    the budget-binding 10 x 168 x 60 case 60 s, 4,703,158 at 20 against
    4,705,458 at 30. The compute side at 5 (sites 10) on `large`: 538
    iterations, L 62,762,249."""
    return int(np.clip(nonzeros // max(n, 1), 10, 30))


class BoxStepBundle:
    """Stabilised, disaggregated cutting planes: L is linear plus one convex
    part per site and one for the compute side, each with its own cutting-
    plane model, minimised over a box around the stability centre -- an LP
    in HiGHS (cuts added as rows, the box by column bounds). Serious step
    when the actual decrease is at least 10% of the predicted one; the box
    grows after serious steps and shrinks after runs of null steps. Each part keeps
    its ``max_cuts_per_part`` newest cuts: the master LP's time grows fast
    with them (the compute side's cuts are dense over all multipliers); the
    run sets both caps by :func:`bundle_cut_cap`. At
    30 rather than 60, one run each, 1 rank: on `large` 200 iterations
    reached the same L (62.948 M against 62.947 M) with 216 s of master LP
    instead of 486 s; on `medium` L after 47 s of iterations was 12.1905 M
    (30) and 12.1899 M (20) against 12.1965 M (60). The compute side's own
    part keeps ``max_compute_cuts``: each of its cuts has a nonzero
    for every multiplier, a site's for its own periods only; on `medium`
    (1 rank) 10 instead of 30 took 0.46x the master's seconds for 200
    iterations (L 12,195,711 against 12,191,856), and in the same 45 s of
    iterations reached L 12,186,917 (350 iterations) against 12,191,856
    (200).

    The box halves only after ``shrink_after`` null steps in a row: a null
    step's new cuts are what make the model better inside the box, and
    halving at each one had collapsed the box to its floor (1e-3 of the
    scale) within 40 iterations, after which the bound crept down by a few
    hundred $ an iteration. Same 60 s of dual iterations, 1 rank: on the
    budget-binding 10 x 168 x 60 case least L 4,701,375 (20) against
    4,721,842 (halving at each null step; its LP bound is 4,690,870), on
    `medium` 12,156,518 against 12,181,982; 3, 5, 8, 15, 20 and 30 in a
    row all beat 1, 60 was too slow to shrink on `medium`. Until the first
    serious step it halves at each null step: on `large` seed 32 the first
    20 trial points at the starting box were all null, and in 160 s of
    iterations least L was 64,373,511 this way against 64,442,106 (halving
    at each null step: 64,538,201)."""

    def __init__(self, lay: DualLayout, scale: np.ndarray, lin: np.ndarray, nparts: int, radius: float = 0.5,
                 max_cuts_per_part: int = 30, max_compute_cuts: int = 30, shrink_after: int = 20):
        self.lay, self.scale = lay, scale
        self.radius = radius
        self.shrink_after = shrink_after
        self.null_run = 0  # null steps since the last serious one
        self.max_cuts = max_cuts_per_part
        self.max_compute_cuts = max_compute_cuts
        self.lo = lay.lower()
        n = lay.n
        self.n, self.nparts = n, nparts
        inf = np.full(n + nparts, highs.INF)
        self.p = highs.new_lp(-inf, inf, np.concatenate([lin, np.ones(nparts)]), name="bundle master")
        self.row_part: list[int] = []  # part of each row, in HiGHS row order
        self.row_choice: list[np.ndarray | None] = []  # the compute side's job choice behind each compute cut
        self.center: DualPoint | None = None
        self.last_pred: float | None = None
        self.serious = 0
        self.null = 0
        self.on_edge = False

    def add(self, pt: DualPoint) -> None:
        for c, (f, idx, vals) in enumerate(pt.parts):
            cols = np.append(idx, self.n + c).astype(np.int32)
            row = np.append(-vals, 1.0)
            self.p.add_row(float(f - vals @ pt.u[idx]), highs.INF, cols, row)
            self.row_part.append(c)
            self.row_choice.append(pt.choice.chosen.copy() if c == 0 and pt.choice is not None else None)
        part = np.array(self.row_part, dtype=np.int64)
        keep = np.full(self.nparts, self.max_cuts)
        keep[0] = self.max_compute_cuts
        drop = drop_cuts(part, self.p.added_rows_basic(), keep)
        self.p.delete_added_rows(drop)
        self.row_part = np.delete(part, drop).tolist()
        gone = set(drop.tolist())
        self.row_choice = [ch for i, ch in enumerate(self.row_choice) if i not in gone]

    def choice_weights(self) -> tuple[list[np.ndarray], np.ndarray]:
        """The compute side's job choices behind its cuts and their weights
        in the master's last solution (the cut rows' duals, which sum to 1
        over a part): the aggregated primal point of the bundle, which
        approaches a solution of the LP relaxation's compute side as the
        dual converges. Empty before the first solve."""
        if self.last_pred is None:
            return [], np.zeros(0)
        first = self.p.num_row - len(self.p.added)
        duals = np.abs(self.p.row_duals()[first:])
        if duals.size != len(self.row_choice):  # rows added since the last solve
            return [], np.zeros(0)
        keep = [i for i, ch in enumerate(self.row_choice) if ch is not None]  # the compute cuts
        w = duals[keep]
        return [self.row_choice[i] for i in keep], (w / w.sum() if w.sum() > 0 else w)

    def step(self, pt: DualPoint) -> np.ndarray:
        """Take the new point's information, return the next trial point."""
        self.add(pt)
        if self.center is None:
            self.center = pt
        else:
            actual = self.center.L - pt.L
            serious = self.last_pred is not None and actual >= 0.1 * self.last_pred
            if serious:
                self.center = pt
                self.serious += 1
                self.null_run = 0
            else:
                self.null += 1
                self.null_run += 1
            self.radius = next_radius(self.radius, serious=serious,
                                      good=serious and actual >= 0.5 * (self.last_pred or 0.0),
                                      null_run=self.null_run, any_serious=self.serious > 0,
                                      shrink_after=self.shrink_after)
        c = self.center.u
        r = self.radius * self.scale
        lo = np.maximum(self.lo, c - r)
        hi = c + r
        self.p.h.changeColsBounds(self.n, np.arange(self.n, dtype=np.int32), lo, hi)
        info = highs.solve(self.p)  # warm: dual simplex from the last basis after new rows
        if not info.optimal:
            raise SolverError(f"bundle master LP ended {info.raw_status}")
        sol = self.p.values()
        v = info.objective
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
    iterations without a better bound, down to ``min_alpha``."""

    def __init__(self, lay: DualLayout, alpha: float = 1.0, min_alpha: float = 1e-4):
        self.lo = lay.lower()
        self.alpha = alpha
        self.min_alpha = min_alpha
        self.best = np.inf
        self.stall = 0
        self.since_best = 0
        self.last_step = 0.0

    def stalled(self) -> bool:
        """The step is at its floor and 20 iterations brought no better bound."""
        return self.alpha <= self.min_alpha and self.since_best >= 20

    def step(self, pt: DualPoint, target: float) -> np.ndarray:
        if self.best - 1e-9 * max(1.0, abs(pt.L)) > pt.L:
            self.best = pt.L
            self.stall = 0
            self.since_best = 0
        else:
            self.stall += 1
            self.since_best += 1
            if self.stall >= 5:
                self.alpha = max(self.alpha / 2, self.min_alpha)
                self.stall = 0
        gg = float(pt.g @ pt.g)
        if gg <= 0:
            return pt.u
        step = self.alpha * max(pt.L - target, 1e-9 * max(1.0, abs(pt.L))) / gg
        self.last_step = step
        return np.maximum(self.lo, pt.u - step * pt.g)


def solve_lagrangian(inst: Instance, opts: LagrangianOptions, *, clock: Clock, comm=None) -> Result | WorkerReport:
    """Lagrangian relaxation over the MPI pool; rank 0 returns the result,
    the other ranks serve the pool and return a :class:`WorkerReport`."""
    return run_on_pool(inst, opts, _run, method="lagrangian", clock=clock, comm=comm)


def setup_dual(inst: Instance, opts: LagrangianOptions):
    """The multiplier layout, the compute side, the dual update and the
    starting point: pi at the grid's marginal price (import price + carbon
    price x intensity), mu = lam = 0."""
    dualize_cap = not opts.keep_capacity
    lay = DualLayout(inst.S, inst.H, inst.budget is not None, dualize_cap)
    compute = ComputeRelaxation(inst) if dualize_cap else PricedComputeMILP(inst, opts)
    pi0 = inst.pb + inst.carbon_price * inst.ci
    u = lay.join(pi0, 0.0, np.zeros((inst.S, inst.H)))
    price_scale = max(1.0, float(np.mean(inst.pb)))
    scale = lay.join(np.full((inst.S, inst.H), price_scale),
                     price_scale / max(0.05, float(np.mean(inst.ci))),
                     np.full((inst.S, inst.H), price_scale * float(np.mean(inst.pue)) * inst.dt))
    cap = bundle_cut_cap(lay.n)
    update = (BoxStepBundle(lay, scale, linear_part(inst, lay), inst.S + 1, max_cuts_per_part=cap,
                            max_compute_cuts=cap)
              if opts.dual_update == "bundle"
              else PolyakSubgradient(lay))
    return lay, compute, update, u


def _run(inst: Instance, opts: LagrangianOptions, pool: SubproblemPool, clock: Clock) -> Result:
    log = IterationLog(["bound", "incumbent", "gap", "L(u)", "step", "comp_s", "sub_max_s"])
    st: RunState[LagrangianOptions] = RunState(inst, "lagrangian", opts, clock, log)
    try:
        with st.timed("build_s"):
            pool.calibrate()
            if not preflight(st, pool):
                return finish(st, pool)
            lay, compute, update, u = setup_dual(inst, opts)
            rec = PrimalRecovery(inst, pool, method="lagrangian", clock=clock, pool_only=opts.recovery == "pool")
    except BudgetExhausted as e:
        st.stop, st.diagnosis = TC.TIME_LIMIT, [str(e)]
        return finish(st, pool)
    dual = _DualState(u, [])
    st.snapshot = lambda: _snapshot(st, update, dual)
    restored = st.restore()
    if restored is not None:
        _restore(*restored, st, update, dual)
    recent = dual.recent  # the job choices of the last 20 iterations
    log.header(f"Lagrangian: {inst.S} sites over {pool.size} rank(s), {lay.n} multipliers "
               f"(capacity {'dualised' if lay.has_lam else 'kept'}), dual update {opts.dual_update}")
    # keep up to 15% of the time limit (at most polish_time) for the final polish -- only once there is an
    # incumbent to polish; without one the iterations get the whole budget
    polish_reserve = 0.0 if (opts.time_limit is None or not opts.polish) else min(opts.polish_time,
                                                                                 0.15 * opts.time_limit)
    # and up to 20% (at most site_bound_time) for the site relaxation's bound, and up to 15% (at most
    # site_search_time) for the site search once there is an incumbent -- where their site blocks fit in memory
    # (on xlarge they did not, and the 60 s kept for them went unused)
    blocks = opts.time_limit is not None and (opts.site_bound or opts.site_search) and memory_check(inst, share=0.5)[0]
    site_reserve = min(opts.site_bound_time, 0.2 * opts.time_limit) if blocks and opts.site_bound else 0.0
    search_reserve = min(opts.site_search_time, 0.15 * opts.time_limit) if blocks and opts.site_search else 0.0
    if _blocks_build_s(inst, pool) > 0.5 * (site_reserve + search_reserve):
        site_reserve = search_reserve = 0.0  # their blocks' build would take over half of their time: no reserve
    best_u, best_L = dual.u, np.inf  # the multipliers of the least L: the site relaxation starts there
    best_priced = None  # and what that point knows of each site (bounds for the sites a round has no time for)
    score = None  # the last point's triple scores: the site search places the jobs that do not run by them
    fixed = np.zeros(inst.triples[0].size, dtype=bool)  # triples no better schedule uses (reduced-cost fixing)
    step_s = 0.0  # the last iteration's seconds without its recovery
    misses = 0  # recoveries in a row that did not beat the incumbent
    averaged = 0  # recoveries from the bundle's aggregated primal
    into_stages = None  # when the dual iterations first ran into the end stages' reserves (s), if they did
    while True:
        # the polish's reserve only where it can use it: on `large` the full model's build (39 s) outlasted the
        # 30 s reserve, which then went unused at the end of the run
        stages = _polish_share(st, rec, polish_reserve) + (search_reserve if st.best is not None else 0.0)
        # the site search's and the polish's reserves go to the dual iterations while these close the gap faster
        # than those stages would (never the site relaxation's: it alone goes below the LP bound), and not where
        # the exact endgame would take them (its bound is global; few triples are free)
        borrowed = (clock.limit is not None and not (lay.has_lam and _endgame_applies(st, fixed))
                    and dual_outpaces(st.trace, stages, span=STAGE_SPAN * clock.limit))
        reserve = site_reserve + (0.0 if borrowed else stages)
        if (into_stages is None and borrowed and stages > 0.0
                and clock.expired(site_reserve + stages + st.finish_reserve + step_s)):
            into_stages = clock.elapsed()
            st.log.note(f"iteration {st.iteration + 1}: the dual iterations run on into the site search's and "
                        f"polish's {stages:.0f} s: they close the gap faster than those would")
        # no iteration is started that would end past the limit (on xlarge one takes 6-9 s without its recovery,
        # and the last one ended the run 5 s late)
        if (stop := st.stop_reason(reserve=reserve + step_s)) is not None:
            break
        st.iteration += 1
        tc = time.perf_counter()
        rec_before = st.timings["recovery_s"]
        try:
            pt, psec = evaluate_dual(inst, lay, dual.u, compute, pool)
        except ComputeInfeasible as e:  # a proof: the diagnosis names the jobs where it can
            if not _proven_infeasible(st):
                st.stop, st.diagnosis = TC.INFEASIBLE, [str(e)]
            break
        comp_s = time.perf_counter() - tc - psec
        st.timings["compute_s"] += comp_s
        st.timings["subproblems_s"] += psec
        st.tighten(pt.L)
        if best_L > pt.L:
            best_u, best_L = pt.u, pt.L
            best_priced = priced_sites(inst, lay, pt)
        score = pt.choice.score
        if lay.has_lam and st.best is not None:
            fixed |= fixable_triples(inst, pt.L, pt.choice.score, st.objective)
        recent.append(pt.choice.chosen.copy())
        del recent[:-20]
        due = st.iteration <= 10 or st.iteration % opts.recover_every == 0
        # the share splits a time limit between recoveries and dual steps; without one every due recovery runs,
        # so that an iteration-limited run does not depend on the machine's speed (a clean-clone CI run once
        # recovered another set of choices than the development checkout and failed a test)
        if due and (clock.limit is None
                    or rec.recovery_s <= recovery_share(opts.recovery_share, misses) * clock.elapsed()):
            t_rec = time.perf_counter()
            with st.timed("recovery_s"):
                # within what the iteration may still take: the finish's reserve and a dual step's time kept back
                # (given the rest, a recovery on the budget-binding case at 3.5 s ended at 3.45 s, and the run at
                # 3.50 s after the dual update)
                cand, source = recover_at(inst, rec, update, pt, st.iteration,
                                          clock.left(reserve + st.finish_reserve + step_s),
                                          floor=st.objective if st.best is not None else None)
            averaged += source == "average"
            incumbent = f"{st.objective:,.2f}" if st.best is not None else "none"
            better = cand is not None and st.offer(cand.solution, cand.objective, candidate=cand)
            if source is not None:  # a choice already recovered is skipped at no cost: not a miss
                misses = 0 if better else misses + 1
                st.log.note(f"recovery at iteration {st.iteration} from the "
                            f"{'aggregated primal' if source == 'average' else 'last choice'}: "
                            f"{_recovered(cand, rec.last_bounded)} "
                            + ("" if rec.last_keep_skip is None else
                               "(keep LP not tried: its last run took {:.1f} s, {:.1f} s left to it) ".format(
                                   *rec.last_keep_skip))
                            + ("" if rec.last_pool is None else
                               f"on the pool ({rec.last_pool.rounds} pool rounds, {rec.last_pool.shed} job(s) shed) ")
                            + f"(incumbent {incumbent}) in {time.perf_counter() - t_rec:.1f} s"
                            + ("" if better else f", {misses} miss(es) in a row"))
        if st.best is None and st.iteration == DIAGNOSE_AT and _proven_infeasible(st):
            break
        try:
            with st.timed("dual_update_s"):
                if opts.dual_update == "bundle":
                    dual.u = update.step(pt)
                    step = update.radius
                else:
                    target = st.objective if st.best is not None else pt.L - 0.05 * max(1.0, abs(pt.L))
                    dual.u = update.step(pt, target)
                    step = update.last_step
        except SolverError as e:  # the bound and incumbent so far stand; the end stages and diagnosis still run
            st.stop, st.diagnosis = TC.ERROR, [f"{e} (numerical trouble); the bound and incumbent so far stand"]
            break
        st.record({"bound": st.bound, "incumbent": st.best.objective if st.best else None, "gap": st.gap,
                   "L(u)": pt.L, "step": step, "comp_s": comp_s, "sub_max_s": psec})
        st.checkpoint()
        step_s = time.perf_counter() - tc - (st.timings["recovery_s"] - rec_before)
        # converged: the model predicts less bound progress than 1% of the gap asked for
        tol = max(1e-7, 0.01 * opts.gap) * max(1.0, abs(st.bound))
        if opts.dual_update == "bundle" and update.converged(tol):
            st.stop = TC.DUAL_CONVERGED
            break
        if (opts.dual_update == "subgradient" and update.stalled()) or st.stalled():
            st.stop = TC.STALLED
            break
        # the last recovery did not beat the incumbent either (on `medium`, with the rule on the trace alone, the
        # hand-over came at iteration 28, from an incumbent 1.8% below the one later recoveries find)
        if lay.has_lam and misses >= 1 and _endgame_applies(st, fixed) and endgame_due(st.trace):
            st.log.note(f"iteration {st.iteration}: the bound and incumbent moved less than "
                        f"{ENDGAME_HANDOVER_SHARE:.0%} of the gap over {ENDGAME_HANDOVER_WINDOW} iterations and the "
                        f"last recovery missed; {int((~fixed).sum())} triple(s) free: on to the exact endgame")
            st.stats["endgame_handover_at"] = st.iteration
            break
    st.stop = st.stop or stop
    if st.stop not in (TC.INTERRUPTED, TC.INFEASIBLE, TC.BUDGET_INFEASIBLE):
        # the end stages, each handing on what it leaves of its time: the site search (it ends where a round gains
        # nothing), then the site relaxation, an anytime stage that takes all the time left but the polish's
        # reserve (on `large` the search's unused share and a polish that could not run had left 96 s unused),
        # then the polish
        if lay.has_lam:
            _early_endgame(st, pool, rec, recent, fixed)
        keep = polish_keep(clock.left(st.finish_reserve), _polish_share(st, rec, polish_reserve), site_reserve,
                           search_reserve if st.best is not None else 0.0, least=2.0 * rec.full_model_build_s())
        bound_due = (opts.site_bound and lay.has_lam and np.isfinite(best_L)
                     and st.stop is not TC.ITERATION_LIMIT)  # a cap means: no more work
        searching = score is not None and st.best is not None and opts.site_search
        extra = surplus_share(clock.left(st.finish_reserve), keep, site_reserve if bound_due else 0.0,
                              search_reserve if searching else 0.0, bound_due=bound_due)
        if extra >= 1.0 and searching:  # a second or more: less is rounding, not worth a line
            st.stats["site_search_extra_s"] = round(extra, 3)
            st.log.note(f"the dual iterations ended with {extra / (0.5 if bound_due else 1.0):.0f} s beyond the "
                        f"stages' reserves: {extra:.0f} s of it to the site search"
                        + (", the rest to the site relaxation" if bound_due else ""))
        unused, longest = _site_search(st, pool, rec, score, keep + (site_reserve if bound_due else 0.0),
                                       extra=extra) if score is not None else (0.0, 0.0)
        if bound_due:
            # the site relaxation keeps back a quarter of its time (at least two of the search's longest rounds)
            # for the search from its rounds' job placements after it, which then has that time (on `large` seed
            # 32, held to its own 30 s, it left the 169 s kept for it to a polish that could not use them)
            left, picks = _site_bound(st, pool, lay, best_u, keep, best_priced,
                                      again_for=2.0 * longest if searching else 0.0)
            if left is not None:
                unused = left
            if picks and score is not None:
                unused = _site_search(st, pool, rec, score, keep, picks=picks, extra=unused)[0]
        # without capacity dualised there is no reduced-cost fixing: nothing fixed (the exact endgame still holds)
        _polish(st, pool, rec, recent, fixed if lay.has_lam else np.zeros_like(fixed), extra=unused)
    if interrupts.requested() and st.stop not in (TC.INFEASIBLE, TC.BUDGET_INFEASIBLE, TC.ERROR):
        st.stop = TC.INTERRUPTED  # a stop asked for during the end stages, which it cut short (a proof stands)
    elif st.stop is None:  # the dual iterations handed over to the exact endgame: how the run ended after it
        left = clock.left()
        # out of time where little is left, or where the endgame's MILP, which had all the time left but its
        # margins (ENDGAME_OVERRUN_SHARE, ENDGAME_AFTER_S), stopped at its limit
        out_of_time = left is not None and (left < st.finish_reserve + 1.0
                                            or st.stats.get("exact_endgame_stop") == TC.TIME_LIMIT.value)
        st.stop = (TC.CONVERGED if st.gap_reached
                   else TC.TIME_LIMIT if out_of_time else TC.STALLED)
    st.stats.update(reduced_cost_fixed=int(fixed.sum()), triples=int(fixed.size))
    if into_stages is not None:
        st.stats["dual_into_stages_s"] = round(st.trace[-1]["t"] - into_stages, 3) if st.trace else 0.0
    st.stats.update(dual_update=opts.dual_update, capacity_dualised=lay.has_lam, recoveries=rec.recoveries,
                    averaged_recoveries=averaged, carbon_aware_recoveries=rec.guided,
                    full_model_skipped=rec.skipped_full, recoveries_bounded_out=rec.bounded_out,
                    dropped_by_keep_lp=rec.dropped_by_lp, rounded_commitments=rec.rounded_commitments,
                    pool_schedules=rec.pool_schedules, pool_shed=rec.pool_shed, pool_schedule_s=round(rec.pool_s, 3),
                    recovery_on_pool_only=rec.pool_only, keep_lp_skips=rec.keep_lp_skips)
    if opts.dual_update == "bundle":
        st.stats.update(serious_steps=update.serious, null_steps=update.null)
    return finish(st, pool)


def _proven_infeasible(st: RunState[LagrangianOptions]) -> bool:
    """Run the diagnosis of :func:`~carbonsched.diagnose.diagnose` (within a
    quarter of the time left, at most DIAGNOSE_S seconds) for a run with no
    schedule after DIAGNOSE_AT iterations, or whose compute side alone is
    infeasible (capacity kept); where it proves the instance
    infeasible, set the run's stop and diagnosis and return True. Without
    a schedule the dual is unbounded below and the bound falls without end:
    on an instance whose required jobs cannot all run together the run
    otherwise took its whole time limit, or, without one, iterated until
    the bundle's LP failed."""
    left = st.clock.left()
    d = diagnose(st.inst, time_limit=DIAGNOSE_S if left is None else min(DIAGNOSE_S, 0.25 * left))
    if d.status is None:
        st.log.note(f"no schedule at iteration {st.iteration}; the diagnosis proved nothing: {' '.join(d.messages)}")
        return False
    st.stop, st.diagnosis = TC(d.status.value), d.messages
    st.stats.update(d.facts)
    return True


@dataclass
class _DualState:
    """The Lagrangian loop's own state: the next multipliers and the job
    choices of the last iterations."""

    u: np.ndarray
    recent: list[np.ndarray]


def recover_at(inst: Instance, rec: PrimalRecovery, update, pt: DualPoint, iteration: int,
               time_limit: float | None, *, floor: float | None = None) -> tuple[Candidate | None, str | None]:
    """One recovery at dual iteration ``iteration`` (1-based): from the
    first of these job choices not recovered before (a choice already
    recovered is skipped at no cost) -- after the first 10 iterations the
    bundle's aggregated primal (:func:`average_choice` of
    :meth:`BoxStepBundle.choice_weights`), then the point's own choice.
    Early on the bundle's model is a few cuts and its combination is no
    better than the last choice. ``floor``: the incumbent's value ($); a
    schedule whose LP value is at most it is not re-dispatched
    (:meth:`PrimalRecovery.from_choice`). Returns (the schedule or None,
    which choice was recovered: "average", "last", or None where both had
    been)."""
    tried = rec.recoveries
    sources = [("last", pt.choice.chosen)]
    if iteration > 10 and isinstance(update, BoxStepBundle):
        choices, w = update.choice_weights()
        if choices:
            sources.insert(0, ("average", average_choice(inst, choices, w)))
    rho = pt.choice.rho
    margin = None if rho is None else priced_margin(inst, rho)  # inference routed where it pays at these prices
    for source, chosen in sources:
        cand = rec.from_choice(chosen, pt.choice.score, time_limit, floor=floor, margin=margin)
        if rec.recoveries > tried:
            return cand, source
    return None, None


def _recovered(cand: Candidate | None, bounded: float | None) -> str:
    """What a recovery gave, for its log line: the schedule's value ($), the
    LP value of a schedule not re-dispatched, or 'no schedule'."""
    if cand is not None:
        return f"{cand.objective:,.2f}"
    return "no schedule" if bounded is None else f"LP {bounded:,.2f}, not re-dispatched"


#: the dual iterations' pace is measured over the last STAGE_SPAN of the time limit (:func:`dual_outpaces`)
STAGE_SPAN = 0.1
#: and kept over the end stages where, at that pace, they would close at least STAGE_YIELD of the gap in the
#: stages' seconds: the site search and polish gained 0.01-0.2% of the objective against gaps of 1-2% on `medium`
STAGE_YIELD = 0.2


def dual_outpaces(trace: list[dict], seconds: float, *, span: float, share: float = STAGE_YIELD) -> bool:
    """Whether the dual iterations, at the pace of the last ``span`` seconds
    of ``trace`` (rows with ``bound``, ``incumbent`` in $ and ``t`` in s),
    would close at least ``share`` of the gap left within ``seconds``: the
    bound's fall plus the incumbent's rise over the span, per second, times
    ``seconds``. False without an incumbent, a gap or ``seconds``
    (nothing to take); True while the trace is shorter than ``span`` (too
    early to tell), counting only the rows since a resume (whose clock
    starts again at 0). On `medium` (120 s) on a 2.8 GHz Xeon the iterations
    closed 68-118 k of the gap a 12 s span at 33-57 s, where the stages'
    36 s were kept for a site search and a polish that gained 0.2-13 k."""
    if seconds <= 0.0 or not trace:
        return False
    new = trace[-1]
    b1, i1 = new.get("bound"), new.get("incumbent")
    if i1 is None or b1 is None or not np.isfinite(b1) or b1 - i1 <= 0.0:
        return False
    old, later = None, new["t"]
    for r in reversed(trace):
        if r["t"] > later:  # the clock went back: rows of a run before a resume, on another clock
            break
        if new["t"] - r["t"] >= span:
            old = r
            break
        later = r["t"]
    if old is None:
        return True
    b0, i0 = old.get("bound"), old.get("incumbent")
    if i0 is None or b0 is None or not np.isfinite(b0):
        return True  # the incumbent or a finite bound is new within the span
    rate = ((b0 - b1) + (i1 - i0)) / max(new["t"] - old["t"], 1e-9)
    return rate * seconds >= share * (b1 - i1)


def polish_keep(left: float | None, polish: float, site: float, search: float, *, least: float = 0.0) -> float:
    """The seconds the polish keeps for itself at the end of the dual
    iterations, with ``left`` seconds left (None: no limit): its reserve
    ``polish``, or what is left after the site relaxation's reserve
    ``site`` and the site search's ``search`` where the dual iterations
    ran into the reserves (:func:`dual_outpaces`); none where that is
    below the ``least`` it can use (twice its model's build: it is skipped
    below that), which the stages before it then take. The site
    relaxation comes first (it alone brings the bound below the LP's), then
    the site search (it gained 0.1-0.3% of the objective on `medium` and
    `large`, the polish 0.01%). On `medium` a polish left 7 s of its 18 s
    was skipped and the run ended 9.5 s early."""
    if left is None:
        return polish
    keep = min(polish, max(0.0, left - site - search))
    return keep if keep >= least else 0.0


def surplus_share(left: float | None, keep: float, site: float, search: float, *, bound_due: bool) -> float:
    """The seconds the site search gets beyond ``site_search_time`` where
    the dual iterations ended early (stalled or converged): of the
    ``left`` seconds left (None: no limit, none), what the polish's
    ``keep``, the site relaxation's reserve ``site`` and the site search's
    own ``search`` do not take, half where the site relaxation runs after
    it (the other half is then the relaxation's: it takes all the time
    left), all where it does not. Why: on `large` seed 32 (2 ranks,
    1,200 s) the bundle stalled at 650 s with the incumbent 1.64% below
    the bound; the site search, held to its 30 s, was skipped (its blocks'
    build, 28 s predicted, over half of that), and the site relaxation
    took the other 546 s for 0.16% of bound, with no time left to the
    incumbent's side."""
    if left is None:
        return 0.0
    surplus = max(0.0, left - keep - site - search)
    return 0.5 * surplus if bound_due else surplus


def recovery_share(share: float, misses: int) -> float:
    """The share of the run's time so far that recoveries may have taken
    before a due one is skipped: ``share`` after a recovery that beat the
    incumbent, falling as ``share / (1 + misses / 2)`` with each one in a row
    that did not. On `large` (2 ranks, 1,200 s) 39 recoveries after the
    first, about 15 s each, never beat it and took half the run from the dual
    iterations; on `medium` one recovery in four or five beats it, and a
    run of misses is short."""
    return share / (1.0 + 0.5 * misses)


def _snapshot(st: RunState[LagrangianOptions], update, dual: _DualState) -> tuple[dict, dict]:
    """The checkpoint of a Lagrangian run (see :mod:`.checkpoint`)."""
    J = st.inst.J
    header: dict = {"dual_update": st.opts.dual_update, "keep_capacity": st.opts.keep_capacity}
    arrays: dict = {"u": dual.u, "recent": np.array(dual.recent, dtype=np.int64).reshape(len(dual.recent), J)}
    if isinstance(update, BoxStepBundle):
        rows = update.p.added
        arrays["cut_lo"] = np.array([r[0] for r in rows])
        arrays["cut_cols"], arrays["cut_ptr"] = pack_ragged([r[2] for r in rows], np.int64)
        arrays["cut_vals"], _ = pack_ragged([r[3] for r in rows])
        arrays["cut_part"] = np.array(update.row_part, dtype=np.int64)
        # the compute side's job choice behind each compute cut (for the aggregated primal)
        choices = [ch for ch in update.row_choice if ch is not None]
        arrays["cut_choice"] = np.array(choices, dtype=np.int64).reshape(len(choices), J)  # J may be 0
        if update.center is not None:
            arrays["center_u"] = update.center.u
            header["center_L"] = update.center.L
        header.update(radius=update.radius, serious=update.serious, null=update.null, last_pred=update.last_pred,
                      null_run=update.null_run)
    else:
        header.update(alpha=update.alpha, best=update.best if np.isfinite(update.best) else None,
                      stall=update.stall, since_best=update.since_best)
    if st.best is not None and "candidate" in st.best.payload:
        cand = st.best.payload["candidate"]
        arrays["inc_starts"] = np.asarray(cand.starts, dtype=np.int64)
        if cand.x is not None:
            arrays["inc_x"] = cand.x
    return header, arrays


def _restore(header: dict, arrays: dict, st: RunState[LagrangianOptions], update, dual: _DualState) -> None:
    """Put a checkpoint's Lagrangian state back (multipliers, cuts, centre)."""
    for key in ("dual_update", "keep_capacity"):
        if header.get(key) != getattr(st.opts, key):
            raise CheckpointError(f"checkpoint made with {key}={header.get(key)!r}, this run has "
                                  f"{key}={getattr(st.opts, key)!r}")
    dual.u = arrays["u"].copy()
    dual.recent[:] = [r.copy() for r in arrays["recent"]]
    if isinstance(update, BoxStepBundle):
        cols = unpack_ragged(arrays["cut_cols"], arrays["cut_ptr"])
        vals = unpack_ragged(arrays["cut_vals"], arrays["cut_ptr"])
        for lo, c, v in zip(arrays["cut_lo"], cols, vals):
            update.p.add_row(float(lo), highs.INF, c, v)
        update.row_part = [int(c) for c in arrays["cut_part"]]
        kept = iter(arrays["cut_choice"]) if "cut_choice" in arrays else iter(())
        update.row_choice = [next(kept, None) if c == 0 else None for c in update.row_part]
        if "center_u" in arrays:
            update.center = DualPoint(arrays["center_u"].copy(), float(header["center_L"]), np.zeros(0), None, 0.0)
        update.radius, update.serious, update.null = header["radius"], header["serious"], header["null"]
        update.last_pred = header["last_pred"]
        update.null_run = int(header.get("null_run", 0))
    else:
        update.alpha, update.stall, update.since_best = header["alpha"], header["stall"], header["since_best"]
        update.best = np.inf if header["best"] is None else header["best"]
    if st.best is not None and "inc_starts" in arrays:
        st.best.payload["candidate"] = Candidate(st.best.solution, st.best.objective, arrays["inc_starts"],
                                                 arrays.get("inc_x"))


def priced_sites(inst: Instance, lay: DualLayout, pt: DualPoint) -> PricedSites:
    """The per-site data of a Lagrangian point that bounds each site block
    without a solve (:func:`~.site_blocks.lagrangian_site_bounds`)."""
    pi, mu, lam = lay.split(pt.u)
    energy = np.array([pt.parts[s + 1][0] for s in range(inst.S)], dtype=float)
    # (the point's arrays are its own, never changed after: no copies)
    return PricedSites(pi * inst.dt * inst.pue + lam, lam, mu, pt.choice.score, energy)


def _site_bound(st: RunState[LagrangianOptions], pool: SubproblemPool, lay: DualLayout, u: np.ndarray,
                polish_reserve: float, priced: PricedSites | None = None, *, again_for: float = 0.0
                ) -> tuple[float | None, list[np.ndarray]]:
    """Tighten the bound with the site relaxation (:mod:`.site_blocks`):
    site MILPs on the pool at the multipliers that the least L's prices
    give, then stabilised column generation -- with a time limit, until
    all the time left but ``polish_reserve`` (kept for the polish) and,
    where ``again_for`` > 0, a quarter of its own time or ``again_for``
    seconds, whichever is more, up to half (kept for the site search from
    its picks) are spent, else within ``site_bound_time``.
    Returns the seconds left to the stages after it (all the time left
    but ``polish_reserve``: its own early end and what it kept back), or
    None where it did not run (the time before it stays with them); and
    the distinct :func:`~.site_blocks.block_picks` of its rounds, least D
    first."""
    opts, inst = st.opts, st.inst
    if not opts.site_bound or inst.J == 0 or st.gap_reached or interrupts.requested():
        return None, []
    limit = st.clock.cap(None if st.clock.limit is not None else opts.site_bound_time,
                         reserve=st.finish_reserve + polish_reserve)
    if limit is not None and limit < 1.0:
        return None, []
    # the site blocks together are about the size of the monolithic model (on `large`: 2.75 GB for 25 of the 50
    # sites on one rank), spread over the ranks of (usually) one machine
    if (why := _blocks_skip(st, pool, "site relaxation", limit)) is not None:
        st.stats["site_relaxation_skipped"] = why
        return None, []
    if limit is not None and again_for > 0:
        limit -= max(min(again_for, 0.5 * limit), 0.25 * limit)
    t0 = time.perf_counter()
    deadline = t0 + limit
    pi, mu, lam = lay.split(u)
    mult = from_prices(inst, pi * inst.dt * inst.pue + lam, mu)
    before = st.bound
    rounds = 0
    placed: list[tuple[float, np.ndarray]] = []  # (D, block_picks) of each round with a bound

    def solve_round(m):
        left = deadline - time.perf_counter()
        # a round that brought the gap to the run's target ends the stage (and the run): on `large` at --gap 0.01
        # rounds 2 and 3 ran on after round 1 had reached 0.95%, gained nothing, and the run ended at its limit
        if left < 0.5 or st.gap_reached or interrupts.requested():
            return None
        # the first round is worth most (multipliers near the LP's): it may take half the stage
        return pool.site_blocks(m, site_limit=0.5 * limit if rounds == 0 else left, gap=opts.site_gap,
                                round_limit=left)

    def log(D, model, rnd):
        nonlocal rounds
        rounds += 1
        st.tighten(D)
        if np.isfinite(D):
            placed.append((D, block_picks(rnd)))
        short = int(np.isnan(rnd.bound).sum())
        st.log.note(f"site relaxation round {rounds}: D {D:,.2f} model {model:,.2f} bound {st.bound:,.2f} "
                    f"gap {st.gap if st.gap is not None else float('nan'):.4%} sites max {rnd.site_s.max():.2f} s"
                    + (f"; {short} site(s) without a MILP bound (out of time) bounded by the least L's point"
                       if short else ""))

    best = np.inf
    with st.timed("site_bound_s"):
        try:
            # a first box of 0.002 of the scale, not column generation's 0.01: it starts at the least L's point,
            # near the dual optimum, and at 0.01 its second round's point was far worse on `large` (seeds 32, 33:
            # D 65.08 M against 64.21 M, 75.46 M against 74.66 M), the budget-binding case's first gain came at 0.00125
            best, _, _ = column_generation(inst, mult, solve_round, deadline=deadline, log=log,
                                           tol=max(1e-7, 0.01 * opts.gap), priced=priced, radius=0.002)
        except (ArithmeticError, SolverError) as e:  # every D logged so far is a valid bound and is kept
            st.log.note(f"site relaxation stopped: {e}")
    st.tighten(best)
    st.stats.update(lagrangian_bound=before, site_relaxation_bound=best if np.isfinite(best) else None,
                    site_relaxation_rounds=rounds)
    picks: list[np.ndarray] = []
    for _, p in sorted(placed, key=lambda e: e[0]):
        if not any(np.array_equal(p, q) for q in picks):
            picks.append(p)
    # all the time left to the stages after it (its early end, and what it kept back for the search from its
    # picks: on `large` seed 32 it had returned only its own 8 s, and 170 s of the run went unused)
    left = st.clock.left(st.finish_reserve + polish_reserve)
    return (left if left is not None else 0.0), picks


def _blocks_build_s(inst: Instance, pool: SubproblemPool) -> float:
    """Predicted seconds to build this rank's site blocks: 0 once built,
    else the monolithic model's build and translation shared by the ranks."""
    return 0.0 if pool.blocks else estimate_build_s(inst) * (1.0 + highs.TRANSLATE_PER_BUILD) / pool.size


def _blocks_skip(st: RunState[LagrangianOptions], pool: SubproblemPool, stage: str, limit: float | None
                 ) -> str | None:
    """Why ``stage`` must skip its site blocks ("memory", "time"), or None
    where they fit: the site blocks (together about the monolithic model's size;
    on `large`: 2.75 GB for 25 of the 50 sites on one rank), spread over
    the ranks of (usually) one machine, fit in half its memory, and, not
    built yet, their predicted build (the monolithic model's, shared by the
    ranks) in half of ``limit`` seconds (on `medium` at a 5 s limit, a
    site relaxation given 1.2 s spent 4.9 s building them). The log says
    why a stage is skipped."""
    fits, need, have = memory_check(st.inst, share=0.5)
    if not fits:
        st.log.note(f"{stage} skipped: its site MILPs would take about {need / 1024:.1f} GB, "
                    f"more than half of the {have / 1024:.1f} GB available")
        return "memory"
    build = _blocks_build_s(st.inst, pool)
    if limit is not None and build > 0.5 * limit:
        st.log.note(f"{stage} skipped: building its site MILPs (predicted {build:.1f} s) would take over half "
                    f"of its {limit:.1f} s")
        return "time"
    return None


def _site_search(st: RunState[LagrangianOptions], pool: SubproblemPool, rec: PrimalRecovery, score: np.ndarray,
                 later_reserve: float, *, picks: list[np.ndarray] | None = None, extra: float = 0.0
                 ) -> tuple[float, float]:
    """Improve the incumbent by the site neighbourhood search
    (:mod:`.site_search`) within ``site_search_time`` plus ``extra``
    seconds (:func:`surplus_share`; ``later_reserve`` seconds kept for the
    stages after it). With ``picks`` (the site
    relaxation's job placements, best first), the search after the site
    relaxation: from each placement in turn (the jobs the incumbent leaves
    out go where that round's blocks put them), each until a round gains
    nothing. Returns the seconds of its share it left unused (where it
    does not run: ``extra``), and its longest round's."""
    opts, inst = st.opts, st.inst
    if (not opts.site_search or inst.J == 0 or st.best is None or "candidate" not in st.best.payload
            or st.gap_reached or interrupts.requested()):
        return extra, 0.0  # not run: what it was handed beyond its own share goes on to the stages after it
    limit = st.clock.cap(opts.site_search_time + extra, reserve=st.finish_reserve + later_reserve)
    if limit is not None and limit < 1.0:
        return 0.0, 0.0
    stage = "site search" if picks is None else "site search from the site relaxation's picks"
    if (why := _blocks_skip(st, pool, stage, limit)) is not None:
        st.stats["site_search_skipped"] = why
        return (limit if limit is not None else 0.0), 0.0  # all of its share, for the stages after it
    t0 = time.perf_counter()
    deadline = t0 + (limit if limit is not None else opts.site_search_time)
    before = st.objective
    rounds, longest = 0, 0.0
    with st.timed("site_search_s"):
        for i, p in enumerate([None] if picks is None else picks):
            if deadline - time.perf_counter() < 1.0 or st.gap_reached or interrupts.requested():
                break
            r, _, most = search_rounds(inst, pool, rec, st.best.payload["candidate"], score, deadline=deadline,
                                       gap=min(1e-4, opts.gap), log=st.log.note, picks=p,
                                       name=stage if p is None else f"{stage} {i + 1}/{len(picks)}",
                                       offer=lambda c: st.offer(c.solution, c.objective, candidate=c))
            rounds, longest = rounds + r, max(longest, most)
    key = "site_search" if picks is None else "picks_search"
    st.stats.update({f"{key}_rounds": rounds, f"{key}_gain": st.objective - before})
    return (max(0.0, deadline - time.perf_counter()) if limit is not None else 0.0), longest


def _window_search(st: RunState[LagrangianOptions], rec: PrimalRecovery, limit: float | None) -> None:
    """Restricted MILPs over time windows (:meth:`PrimalRecovery.window_search`),
    each half the horizon, half-overlapping, in order, each around
    the incumbent of the one before, within ``limit`` seconds in all."""
    inst = st.inst
    width = max(1, -(-inst.H // 2))
    los = list(range(0, max(1, inst.H - width + 1), max(1, width // 2)))
    if los[-1] + width < inst.H:
        los.append(inst.H - width)
    t0 = time.perf_counter()
    for i, lo in enumerate(los):
        left = None if limit is None else limit - (time.perf_counter() - t0)
        if (left is not None and left < 1.0) or interrupts.requested():
            break
        share = None if left is None else left / (len(los) - i)
        before = st.objective
        cand = rec.window_search(st.best.payload["candidate"], lo, lo + width, time_limit=share,
                                 gap=st.opts.gap / 2, threads=st.opts.threads)
        if cand is not None:
            st.offer(cand.solution, cand.objective, candidate=cand)
        st.log.note(f"window search periods {lo}..{lo + width - 1}: gain {st.objective - before:,.2f} "
                    f"({time.perf_counter() - t0:.2f} s so far)")


def _polish_share(st: RunState[LagrangianOptions], rec: PrimalRecovery, polish_reserve: float) -> float:
    """The seconds to keep for the polish: its reserve where it can use it
    (an incumbent to polish, and the full model built or its predicted
    build within half the reserve), else none."""
    return polish_reserve if st.best is not None and rec.full_model_build_s() <= 0.5 * polish_reserve else 0.0


def _polish(st: RunState[LagrangianOptions], pool: SubproblemPool, rec: PrimalRecovery, recent: list[np.ndarray],
            fixed: np.ndarray, *, extra: float = 0.0) -> None:
    """The final restricted MILPs, within ``polish_time`` plus ``extra``
    seconds (what the stage before it left) and the time left:
    time windows first (:func:`_window_search`, up to 60%), then the
    undecided jobs. Where reduced-cost fixing (``fixed``: triples no better
    schedule uses) has fixed at least half the triples, or leaves at most
    :data:`EXACT_ENDGAME_TRIPLES` free, the last MILP is over all the
    others instead (the exact endgame): then its bound is a global one."""
    opts = st.opts
    if (not opts.polish or st.best is None or "candidate" not in st.best.payload
            or st.gap_reached or interrupts.requested()):
        return
    limit = st.clock.cap(opts.polish_time + extra, reserve=st.finish_reserve)
    if limit is not None and limit < 1.0:
        return
    if limit is not None and rec.full_model_build_s() > 0.5 * limit:
        # on `large` a polish that first built the full model (52 s predicted) in 49 s gained nothing and ended
        # the run 6 s past its limit (HiGHS's presolve of a 600k-column MILP outran its time limit)
        st.log.note(f"polish skipped: building the full model (predicted {rec.full_model_build_s():.0f} s) would "
                    f"take over half of its {limit:.0f} s")
        st.stats["polish_skipped"] = "time"
        return
    half_fixed = fixed.size > 0 and fixed.mean() >= 0.5
    certify = half_fixed or int((~fixed).sum()) <= EXACT_ENDGAME_TRIPLES
    before = st.objective
    if not half_fixed:  # first time windows (jobs may cross sites there), in up to 60% of the polish's time
        with st.timed("polish_s"):
            _window_search(st, rec, None if limit is None else 0.6 * limit)
        limit = st.clock.cap(None if limit is None else limit - st.timings["polish_s"], reserve=st.finish_reserve)
        if (limit is not None and limit < 1.0) or interrupts.requested():
            st.stats["polish_gain"] = st.objective - before
            return
    restricted_milp(st, pool, rec, recent, fixed if certify else None, limit, "polish", race=st.opts.endgame_race)
    st.stats["polish_gain"] = st.objective - before


def _early_endgame(st: RunState[LagrangianOptions], pool: SubproblemPool, rec: PrimalRecovery,
                   recent: list[np.ndarray], fixed: np.ndarray) -> None:
    """The exact endgame before the site stages, where reduced-cost fixing
    leaves at most :data:`EXACT_ENDGAME_TRIPLES` triples free: a MILP over
    those triples, warm-started from the incumbent, whose bound is global;
    the stages after it skip once the gap is closed. It takes the time left
    (but the finish's reserve); without a time limit it runs to the gap
    asked, except after an iteration cap, where ``polish_time`` bounds it.
    Its seconds count with the polish's."""
    opts = st.opts
    if not _endgame_applies(st, fixed) or st.gap_reached or interrupts.requested():
        return
    limit = st.clock.left(st.finish_reserve)
    if limit is None and st.stop is TC.ITERATION_LIMIT:
        limit = opts.polish_time
    if limit is not None and (limit < 0.5 or rec.full_model_build_s() > 0.5 * limit):
        return
    before = st.objective
    restricted_milp(st, pool, rec, recent, fixed, limit, "exact endgame before the site stages",
                    race=st.opts.endgame_race)
    st.stats["early_endgame_gain"] = st.objective - before


def _endgame_applies(st: RunState[LagrangianOptions], fixed: np.ndarray) -> bool:
    """Whether the exact endgame may run before the site stages: asked for,
    an incumbent to start it from or none at all (HiGHS then starts from no
    schedule: on a generated instance with an islanded site and committed
    units every recovery's schedule was infeasible for the units, and the
    run ended without one where the optimum is -18,011.92), and at most
    :data:`EXACT_ENDGAME_TRIPLES` triples left free by reduced-cost
    fixing."""
    opts = st.opts
    return (opts.polish and opts.early_endgame and (st.best is None or "candidate" in st.best.payload)
            and fixed.size > 0 and int((~fixed).sum()) <= EXACT_ENDGAME_TRIPLES)
