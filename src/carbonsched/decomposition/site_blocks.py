"""A bound beyond the LP relaxation: the site-block relaxation
(Dantzig-Wolfe by site).

The Lagrangian method dualises the IT capacity, so its compute side has the
integrality property and its bound is the LP relaxation bound (Geoffrion).
This relaxation dualises instead the rows that couple sites:

- each job's assignment row, ``sum_k x_k <= 1`` (``= 1`` if required), with
  multiplier ``lam[j]`` ($; >= 0, free for a required job);
- each (region, period) serve row, ``sum_s y[r,s,t] <= L[r,t]``, with
  ``nu[r,t]`` ($ per MW of demand served for one period, >= 0);
- the carbon budget, with ``mu`` ($/t, >= 0).

What is left splits by site: site ``s``'s jobs within its IT capacity, its
share of the routing and its microgrid -- a MILP per site, built once on
:meth:`Instance.site_only` by the same compute and energy builders as the
monolithic model, re-solved with new objective coefficients only. For any
multipliers

    D(lam, nu, mu) = const + sum_j lam_j + sum nu L + mu B + sum_s z_s

with ``z_s`` the site MILP's optimum less ``const`` (the unserved-demand
penalty, -sum pen L dt, which every block carries once), is an upper bound
on OB, and it stays one with each ``z_s`` replaced by the site MILP's own
dual bound: the site MILPs may stop at a gap or a time limit. Its minimum
over the multipliers lies between the MILP optimum and the LP bound.

Multipliers that are near-optimal for the LP come for free from a
capacity-dualised Lagrangian point (``rho``, ``mu``): each job's best score
and each (region, period)'s best margin at ``rho`` (:func:`from_prices`).
:func:`column_generation` then moves them (stabilised column generation,
each round a round of site MILPs on the pool).

Lagrangian reduced-cost fixing (:func:`fixable_triples`) is valid at any
point of the capacity-dualised dual: a triple whose forced use would drop
L(u) below the incumbent can be fixed at 0 in any better schedule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .. import highs
from ..compute import inference_margin, priced_margin
from ..derived import unserved_penalty, window_sums
from ..energy import site_arrays
from ..instance import Instance
from ..model import build_monolithic
from ..solution import SITE_SERIES
from .box_step import next_radius

__all__ = [
    "BlockRound",
    "PricedSites",
    "SiteBlock",
    "SiteMaster",
    "SiteMultipliers",
    "block_picks",
    "column_generation",
    "dual_value",
    "fixable_triples",
    "from_prices",
    "job_best",
    "lagrangian_site_bounds",
    "multiplier_scale",
]


@dataclass(frozen=True)
class SiteMultipliers:
    """The multipliers of the rows the site relaxation dualises:
    ``lam`` [J] $, ``nu`` [R,H] $ per MW-period, ``mu`` $/t."""

    lam: np.ndarray
    nu: np.ndarray
    mu: float


@dataclass
class BlockRound:
    """One round of site MILPs at given multipliers. ``bound`` [S]: each
    site's proven bound on ``z_s`` ($); ``value`` [S]: the unpriced objective
    (net of ``const``) of its best point found, a plan (nan without one); ``jobs`` [S,J]: how many starts of
    each job that point runs at the site; ``served`` [S,R,H] (MW) and
    ``emissions`` [S] (t) of that point; ``site_s`` [S] seconds."""

    bound: np.ndarray
    value: np.ndarray
    jobs: np.ndarray
    served: np.ndarray
    emissions: np.ndarray
    site_s: np.ndarray


def block_picks(rnd: BlockRound) -> np.ndarray:
    """[J] the site whose block runs each job in round ``rnd`` (the first
    such site where several do: the blocks are priced apart), -1 where none
    does. Near the relaxation's optimal multipliers these are where the
    relaxation wants the jobs; the site search takes them as homes for the
    jobs that a schedule leaves out (:func:`~.site_search.homes`)."""
    ran = rnd.jobs > 0.5  # [S, J]
    return np.where(ran.any(axis=0), ran.argmax(axis=0), -1).astype(np.int64)


class SiteBlock:
    """Site ``s``'s block of the site relaxation in a persistent highspy
    model: the monolithic model of :meth:`Instance.site_only` (no budget,
    no required job), whose objective coefficients on the job, routing,
    grid-import and generator columns change with the multipliers."""

    def __init__(self, inst: Instance, s: int):
        t0 = time.perf_counter()
        self.inst, self.s = inst, s
        one = inst.site_only(s)
        m = build_monolithic(one, with_budget=False)
        self.one, self.m = one, m  # (the compiled model's column map keeps m alive anyway)
        self.p = highs.compile_model(m, interruptible=True)
        c = m.compute
        jj, ss, _ = inst.triples
        self.jobs = jj[ss == s]  # job of each of this site's triples, in global order
        self.x = self.p.cols_of(c.x[k] for k in c.K)
        rr, sr = inst.region_pairs
        self.regions = rr[sr == s]
        H = inst.H
        self.y = np.array([[self.p.col.get(c.y[k, t], -1) for t in range(H)] for k in range(self.regions.size)],
                          dtype=np.int64).reshape(self.regions.size, H)
        e = m.site[0]
        self.imp = self.p.cols_of(e.imp[t] for t in range(H))
        self.g = self.p.cols_of(e.g[t] for t in range(H)) if e.component("g") is not None else None
        self.c0 = np.asarray(self.p.cost, dtype=float).copy()
        self.const = -unserved_penalty(inst)
        # for the neighbourhood search (:meth:`search`): global triple and pair indices, each job's assignment row,
        # the routing columns' own upper bounds (the demand), and an emissions row added on first use
        self.triples = np.flatnonzero(ss == s)
        self.pairs = np.flatnonzero(sr == s)
        self.assign_jobs = np.array(sorted(c.Jset), dtype=np.int64)
        self.assign_rows = np.array([self.p.row_of(c.assign[j]) for j in self.assign_jobs], dtype=np.int32)
        self.y_ub = inst.L[self.regions]  # [pairs of s, H] MW
        self.em_row: int | None = None
        self.build_s = time.perf_counter() - t0

    def _costs(self, mult: SiteMultipliers) -> np.ndarray:
        inst, s = self.inst, self.s
        c = self.c0.copy()
        ok = self.x >= 0
        c[self.x[ok]] -= mult.lam[self.jobs[ok]]
        yok = self.y >= 0
        c[self.y[yok]] -= np.broadcast_to(mult.nu[self.regions], self.y.shape)[yok]
        if mult.mu:
            c[self.imp] -= mult.mu * inst.ci[s] * inst.dt
            if self.g is not None:
                c[self.g] -= mult.mu * inst.ef[s] * inst.dt
        return c

    def solve(self, mult: SiteMultipliers, *, time_limit: float | None, gap: float, threads: int | None = None,
              lp_time_limit: float | None = None) -> tuple[float, float, np.ndarray, np.ndarray, float, float]:
        """(bound, value, starts per job [J], served [R,H], emissions, seconds)
        at ``mult``: the bound on the priced objective ``z_s``, and the best
        point's own (unpriced) objective, both net of ``const``. The LP
        relaxation is solved first (within ``lp_time_limit``, default
        ``time_limit``) and its optimum counts where the MILP (within what
        is left of ``time_limit``), stopped early, has no better bound. No
        bound at all: nan (the round then gives no bound on OB)."""
        t0 = time.perf_counter()
        inst, H = self.inst, self.inst.H
        c = self._costs(mult)
        self.p.h.changeColsCost(c.size, np.arange(c.size, dtype=np.int32), c)
        bound = None
        if self.p.integer_cols.size:
            # the LP relaxation first: its optimum is a bound that a MILP stopped early (before its root LP) may lack
            self.p.set_integrality(relax=True)
            lp = highs.solve(self.p, time_limit=time_limit if lp_time_limit is None else lp_time_limit)
            self.p.set_integrality(relax=False)
            bound = lp.objective if lp.optimal else None
        left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
        if not self.p.integer_cols.size and lp_time_limit is not None:  # an LP block: the LP's own time
            left = lp_time_limit
        info = highs.solve(self.p, time_limit=max(left, 0.05) if left is not None else None, mip_gap=gap,
                           threads=threads)
        if info.bound is not None:
            bound = info.bound if bound is None else min(bound, info.bound)
        jobs = np.zeros(inst.J)
        served = np.zeros((inst.R, H))
        value, emissions = float("nan"), 0.0
        if info.has_solution:
            v = self.p.values()
            value = float(self.c0 @ v) + self.p.offset - self.const  # the plan's own objective, unpriced
            xs = np.where(self.x >= 0, v[np.maximum(self.x, 0)], 0.0)
            np.add.at(jobs, self.jobs, xs)
            yv = np.where(self.y >= 0, v[np.maximum(self.y, 0)], 0.0)
            np.add.at(served, self.regions, yv)
            emissions = float(inst.ci[self.s] @ v[self.imp] * inst.dt)
            if self.g is not None:
                emissions += float(inst.ef[self.s] * v[self.g].sum() * inst.dt)
        if bound is None:
            bound = float("nan")
        return float(bound) - self.const, value, jobs, served, emissions, time.perf_counter() - t0


    def _emission_row(self) -> int:
        """The row ``emissions of s <= cap`` (t), added on first use, free
        (cap inf) whenever :meth:`search` is not running."""
        if self.em_row is None:
            inst = self.inst
            cols = [self.imp]
            vals = [inst.ci[self.s] * inst.dt]
            if self.g is not None:
                cols.append(self.g)
                vals.append(np.full(self.g.size, inst.ef[self.s] * inst.dt))
            ok = np.concatenate(cols) >= 0
            self.p.add_row(-highs.INF, highs.INF, np.concatenate(cols)[ok], np.concatenate(vals)[ok])
            self.em_row = self.p.num_row - 1
        return self.em_row

    def search(self, allowed: np.ndarray, required: np.ndarray, served_cap: np.ndarray, em_cap: float,
               start: np.ndarray, *, time_limit: float | None, gap: float, threads: int | None = None
               ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray | None, float]:
        """This site's best plan in a neighbourhood of a schedule, at the
        true (unpriced) costs: its jobs may run at any start ``allowed``
        ([triples of s] bool, global order); the jobs ``required`` ([J]
        bool) must run here; routing to s at most ``served_cap`` ([pairs of
        s, H] MW); emissions at most ``em_cap`` (t). ``start`` ([triples of
        s] bool): the schedule's own starts here, offered as a MIP start
        (they are feasible when the caps are the schedule's own). Returns
        (value net of ``const`` in $, or nan without a point; x [triples of
        s], routing y [pairs of s, H] (MW) and dispatch
        [len(SITE_SERIES), H+1] of the best point, or ``start``,
        ``served_cap`` and None without one; seconds). The block
        is put back as it was (bounds and rows) before returning."""
        t0 = time.perf_counter()
        h, H = self.p.h, self.inst.H
        highs._check(h.changeColsCost(self.c0.size, np.arange(self.c0.size, dtype=np.int32), self.c0),
                     "site block: costs")
        ok = self.x >= 0
        xc = self.x[ok].astype(np.int32)
        yok = self.y >= 0
        yc = self.y[yok].astype(np.int32)
        req = required[self.assign_jobs]
        req_rows = self.assign_rows[req]
        er = self._emission_row()
        try:
            h.changeColsBounds(xc.size, xc, np.zeros(xc.size), np.asarray(allowed, float)[ok])
            h.changeColsBounds(yc.size, yc, np.zeros(yc.size), np.minimum(served_cap, self.y_ub)[yok])
            if req_rows.size:
                h.changeRowsBounds(req_rows.size, req_rows, np.ones(req_rows.size), np.ones(req_rows.size))
            h.changeRowBounds(er, -highs.INF, float(em_cap) if np.isfinite(em_cap) else highs.INF)
            x0 = np.asarray(start, float)[ok]
            # the schedule's own starts first (x fixed: the site's dispatch at its caps), whose whole column vector
            # then starts the search, so the site never ends below the schedule it searches around
            h.changeColsBounds(xc.size, xc, x0, x0)
            first = highs.solve(self.p, time_limit=time_limit, mip_gap=gap, threads=threads)
            h.changeColsBounds(xc.size, xc, np.zeros(xc.size), np.asarray(allowed, float)[ok])
            v0 = self.p.values().copy() if first.has_solution else None
            if v0 is not None:
                self.p.set_start(v0)
            left = None if time_limit is None else max(0.05, time_limit - (time.perf_counter() - t0))
            info = highs.solve(self.p, time_limit=left, mip_gap=gap, threads=threads)
            v = self.p.values() if info.has_solution else v0
            if v is not None and v0 is not None and float(self.c0 @ v) < float(self.c0 @ v0):
                v = v0
            if v is not None:
                value = float(self.c0 @ v) + self.p.offset - self.const
                x = np.where(ok, v[np.maximum(self.x, 0)], 0.0)
                y = np.where(yok, v[np.maximum(self.y, 0)], 0.0)
                self.p.load_into_pyomo(v)
                arrs = site_arrays(self.m.site[0], self.one, 0)
                disp = np.zeros((len(SITE_SERIES), H + 1))
                for i, k in enumerate(SITE_SERIES):
                    disp[i, :arrs[k].size] = arrs[k]
            else:
                value, x, y = float("nan"), np.asarray(start, float).copy(), np.minimum(served_cap, self.y_ub)
                disp = None
        finally:
            h.changeColsBounds(xc.size, xc, np.zeros(xc.size), np.ones(xc.size))
            h.changeColsBounds(yc.size, yc, np.zeros(yc.size), self.y_ub[yok])
            if req_rows.size:
                h.changeRowsBounds(req_rows.size, req_rows, np.full(req_rows.size, -highs.INF),
                                   np.ones(req_rows.size))
            h.changeRowBounds(er, -highs.INF, highs.INF)
        return value, x, y, disp, time.perf_counter() - t0


def from_prices(inst: Instance, rho: np.ndarray, mu: float) -> SiteMultipliers:
    """Multipliers from a capacity-dualised Lagrangian point: ``rho`` [S,H]
    ($ per IT MW for one period) and ``mu`` ($/t). ``lam[j]`` is job j's
    best score (value less its IT load priced at rho; at least 0 unless the
    job is required), ``nu[r,t]`` the best margin of serving region r in
    period t (at least 0). At the LP dual optimum these are the LP's duals
    of the rows the site relaxation dualises."""
    jj, _, _ = inst.triples
    lam = job_best(inst, inst.val[jj] - inst.pow[jj] * window_sums(inst, rho))
    rr, sr = inst.region_pairs
    nu = np.zeros((inst.R, inst.H))
    if rr.size:
        coef = priced_margin(inst, rho)
        np.maximum.at(nu, rr, coef)
    return SiteMultipliers(lam, nu, float(mu))


@dataclass(frozen=True)
class PricedSites:
    """What a capacity-dualised Lagrangian point knows about each site: its
    prices ``rho`` [S,H] ($ per IT MW for one period: pi dt pue + lam),
    the capacity multipliers ``lam`` [S,H] ($ per MW-period), the carbon
    price ``mu`` ($/t), each triple's ``score`` (val - pow x window sum of
    rho, $) and each site's energy value ``energy`` [S] (the optimum of its
    priced energy problem at those prices: its part f_s of L, $): enough
    to bound every site block without solving it
    (:func:`lagrangian_site_bounds`)."""

    rho: np.ndarray
    lam: np.ndarray
    mu: float
    score: np.ndarray
    energy: np.ndarray


def lagrangian_site_bounds(inst: Instance, mult: SiteMultipliers, pts: PricedSites) -> np.ndarray | None:
    """[S] an upper bound on each site block's ``z_s`` at ``mult`` ($),
    without a solve: the block's own Lagrangian bound with its capacity and
    power rows dualised at the prices of ``pts`` (weak duality) --

        phi_s = sum_t lam cap - sum_t rho idle
                + sum_j max(0, max_(k of j at s) score_k - lam_j)
                + sum_(pairs to s, t) max(0, margin dt - nu - f_inf rho) L
                + energy_s

    valid only at the carbon price the energy values were found at (None
    where ``mult.mu`` differs). At :func:`from_prices` of the same point
    the job and routing terms vanish and D from these bounds is that
    point's L(u). It stands in for a site whose MILP a round had no time
    for, so a round cut short still gives a bound."""
    if not np.isclose(mult.mu, pts.mu, rtol=1e-12, atol=1e-12):
        return None
    S = inst.S
    phi = (pts.lam * inst.cap[:, None]).sum(axis=1) - (pts.rho * inst.idle[:, None]).sum(axis=1) + pts.energy
    jj, ss, _ = inst.triples
    if jj.size:
        best = np.zeros((inst.J, S))  # max(0, best score less lam_j) of each job at each site
        np.maximum.at(best, (jj, ss), pts.score - mult.lam[jj])
        phi = phi + best.sum(axis=0)
    rr, sr = inst.region_pairs
    if rr.size:
        coef = priced_margin(inst, pts.rho) - mult.nu[rr]
        np.add.at(phi, sr, (np.maximum(coef, 0.0) * inst.L[rr]).sum(axis=1))
    return phi


def dual_value(inst: Instance, mult: SiteMultipliers, site_bounds: np.ndarray,
               fallback: np.ndarray | None = None) -> float:
    """D at ``mult`` from the sites' bounds on ``z_s`` ($): an upper bound on
    OB. A site without a bound (nan) takes its ``fallback`` bound [S]
    (:func:`lagrangian_site_bounds`); without one, D is inf."""
    if fallback is not None:
        site_bounds = np.where(np.isnan(site_bounds), fallback, site_bounds)
    if np.isnan(site_bounds).any():
        return float("inf")
    const = -unserved_penalty(inst)
    has = np.zeros(inst.J, dtype=bool)
    has[inst.triples[0]] = True
    budget = mult.mu * inst.budget if inst.budget is not None else 0.0
    return (const + float(mult.lam[has].sum()) + float((mult.nu * inst.L).sum()) + budget
            + float(np.sum(site_bounds)))


class SiteMaster:
    """The Dantzig-Wolfe master over site plans, stabilised by a box on the
    multipliers: an LP in highspy that picks a convex combination of each
    site's plans (columns from the site blocks) within the dualised rows --
    each job at most once (exactly once if required), demand per (region,
    period), the budget. Every dualised row ``i`` also has an excess column
    (coefficient -1, cost ``-(c_i + r_i)``) and a shortage column (+1, cost
    ``c_i - r_i``, at least 0 on an inequality row): by LP duality they keep
    the row's dual within ``[c_i - r_i, c_i + r_i]``, so the master's value
    is the minimum of D's cutting-plane model over the box around the
    centre ``c``, and its row duals are that minimiser (a box-step method
    on D, in its primal form: column generation)."""

    def __init__(self, inst: Instance):
        self.inst = inst
        J, R, H, S = inst.J, inst.R, inst.H, inst.S
        n = J + R * H + (inst.budget is not None)  # the dualised rows
        self.n = n
        self.p = highs.new_lp(np.zeros(2 * n), np.full(2 * n, highs.INF), np.zeros(2 * n), name="site master",
                              maximize=True)
        rhs = np.concatenate([np.ones(J), inst.L.ravel(), [inst.budget] if inst.budget is not None else []])
        self.equality = np.concatenate([inst.required, np.zeros(n - J, dtype=bool)])
        for i in range(n):  # row i: plans + shortage_i - excess_i (<= or ==) rhs_i
            self.p.add_row(float(rhs[i]) if self.equality[i] else -highs.INF, float(rhs[i]),
                           np.array([i, n + i]), np.array([-1.0, 1.0]))
        for _ in range(S):  # convexity: [0, 1] until the site has a plan, then = 1
            self.p.add_row(0.0, 1.0, np.zeros(0), np.zeros(0))
        self.has_plan = np.zeros(S, dtype=bool)
        self.row_serve = J
        self.row_budget = J + R * H
        self.row_conv = n

    def vector(self, mult: SiteMultipliers) -> np.ndarray:
        """The multipliers as one vector in row order."""
        parts = [mult.lam, mult.nu.ravel()] + ([np.array([mult.mu])] if self.inst.budget is not None else [])
        return np.concatenate(parts).astype(float)

    def multipliers(self, d: np.ndarray) -> SiteMultipliers:
        inst = self.inst
        lam = np.where(inst.required, d[:inst.J], np.maximum(d[:inst.J], 0.0))
        nu = np.maximum(d[self.row_serve:self.row_budget].reshape(inst.R, inst.H), 0.0)
        mu = max(float(d[self.row_budget]), 0.0) if inst.budget is not None else 0.0
        return SiteMultipliers(lam, nu, mu)

    def set_box(self, centre: np.ndarray, radius: np.ndarray) -> None:
        n = self.n
        lo = np.where(self.equality, centre - radius, np.maximum(centre - radius, 0.0))
        cost = np.concatenate([-(centre + radius), lo])
        highs._check(self.p.h.changeColsCost(2 * n, np.arange(2 * n, dtype=np.int32), cost), "site master: box")

    def add(self, s: int, value: float, jobs: np.ndarray, served: np.ndarray, emissions: float) -> None:
        """A plan of site ``s``: its objective net of const ($), starts per
        job [J], demand served [R,H] (MW), emissions (t)."""
        inst = self.inst
        jr = np.flatnonzero(np.abs(jobs) > 1e-9)
        sr = np.flatnonzero(np.abs(served.ravel()) > 1e-9)
        idx = [jr, self.row_serve + sr]
        vals = [jobs[jr], served.ravel()[sr]]
        if inst.budget is not None:
            idx.append(np.array([self.row_budget]))
            vals.append(np.array([emissions]))
        idx.append(np.array([self.row_conv + s]))
        vals.append(np.array([1.0]))
        idx_a = np.concatenate(idx).astype(np.int32)
        highs._check(self.p.h.addCol(float(value), 0.0, highs.INF, idx_a.size, idx_a,
                                     np.concatenate(vals).astype(float)), "site master: adding a plan")
        if not self.has_plan[s]:
            self.has_plan[s] = True
            highs._check(self.p.h.changeRowBounds(self.row_conv + s, 1.0, 1.0), "site master: convexity")

    @property
    def complete(self) -> bool:
        """Every site has a plan: only then is the master's value the
        cutting-plane model of D (a site MILP may end its first round
        without a feasible point)."""
        return bool(self.has_plan.all())

    def add_round(self, rnd: BlockRound) -> None:
        for s in range(self.inst.S):
            if np.isfinite(rnd.value[s]):
                self.add(s, float(rnd.value[s]), rnd.jobs[s], rnd.served[s], float(rnd.emissions[s]))

    def solve(self) -> tuple[float, np.ndarray]:
        """(the model's minimum over the box incl. const, its minimiser as a
        vector)."""
        inst = self.inst
        info = highs.solve(self.p)
        if not info.optimal:
            raise ArithmeticError(f"site master LP ended {info.raw_status}")
        return float(info.objective) - unserved_penalty(inst), self.p.row_duals()[:self.n].copy()


def multiplier_scale(inst: Instance) -> SiteMultipliers:
    """A natural size for each multiplier, to shape the box: a job's value,
    a region's margin per MW-period, the grid price over its intensity."""
    rr, _ = inst.region_pairs
    marg = np.zeros(inst.R)
    if rr.size:
        np.maximum.at(marg, rr, inference_margin(inst) * inst.dt)
    price = max(1.0, float(np.mean(inst.pb)))
    return SiteMultipliers(np.maximum(inst.val, 1.0), np.repeat(np.maximum(marg, 1.0)[:, None], inst.H, axis=1),
                           price / max(0.05, float(np.mean(inst.ci))))


def column_generation(inst: Instance, mult: SiteMultipliers, solve_round, *, deadline: float, log=None,
                      tol: float = 1e-6, radius: float = 0.01, priced: PricedSites | None = None
                      ) -> tuple[float, SiteMultipliers, list[tuple[float, float]]]:
    """Minimise D from ``mult`` by stabilised column generation (see
    :class:`SiteMaster`) until ``deadline`` (perf_counter seconds) or until
    the predicted decrease at the centre is below ``tol`` (relative) with
    the model's minimiser inside the box: the cutting-plane model is convex
    and below D, so the centre is then its global minimum, and D there is
    within the site MILPs' gaps of the least D (on the box's edge, the box
    widens instead). ``solve_round(mult)`` returns a
    :class:`BlockRound` (None: out of time); ``radius``: the box's first
    half-width as a share of :func:`multiplier_scale`. Serious step when D
    falls by at least 10% of the predicted decrease; the box doubles after
    a good one (up to 10) and halves after each null step (down to 1e-3;
    :func:`~.box_step.next_radius`, the bundle's rule with
    ``shrink_after=1``: a stage of 2-16 rounds has no room to wait, and
    waiting 3 or 5 null steps measured the same, docs/performance.md). Returns the best D, its
    multipliers, and (D, model minimum) per round; ``log(D, model, round)``
    sees each round. ``priced``: a Lagrangian point whose
    :func:`lagrangian_site_bounds` stand in for the sites a round had no
    time for."""
    master = SiteMaster(inst)
    scale = master.vector(multiplier_scale(inst))
    centre, centre_D = master.vector(mult), np.inf
    best, best_m = np.inf, mult
    trace: list[tuple[float, float]] = []
    pred = None
    null_run = 0  # null steps in a row
    while time.perf_counter() < deadline:
        rnd = solve_round(mult)
        if rnd is None:
            break
        fallback = None
        if priced is not None and np.isnan(rnd.bound).any():
            fallback = lagrangian_site_bounds(inst, mult, priced)
        D = dual_value(inst, mult, rnd.bound, fallback)
        if best > D:
            best, best_m = D, mult
        serious = pred is None or centre_D - 0.1 * pred >= D  # (without a model: any better D)
        null_run = 0 if serious else null_run + 1
        radius = next_radius(radius, serious=serious, good=pred is not None and centre_D - 0.5 * pred >= D,
                             null_run=null_run, any_serious=True, shrink_after=1, most=10.0)
        if serious and centre_D > D:
            centre, centre_D = master.vector(mult), D
        master.add_round(rnd)
        r = radius * scale
        master.set_box(centre, r)
        model, d = master.solve()
        pred = centre_D - model if master.complete else None
        trace.append((D, model))
        if log is not None:
            log(D, model, rnd)
        if pred is not None and pred <= tol * max(1.0, abs(centre_D)):
            # the centre is the model's minimum over the box; if the minimiser is inside the box, the model (convex,
            # <= D) has no lower point anywhere and the centre is optimal; on the box's edge, widen it and go on
            lo = np.where(master.equality, centre - r, np.maximum(centre - r, 0.0))
            edge = (d >= centre + r - 1e-9 * (1 + np.abs(r))) | ((d <= lo + 1e-9 * (1 + np.abs(r))) & (lo > 0))
            if not edge.any() or radius >= 10.0:
                break
            radius = min(4.0 * radius, 10.0)
        mult = master.multipliers(d)
    return best, best_m, trace


def job_best(inst: Instance, score: np.ndarray) -> np.ndarray:
    """[J] each job's best triple score (``score`` over triples), at least 0
    for a job that may be left out; 0 for a job without a triple."""
    best = np.full(inst.J, -np.inf)
    np.maximum.at(best, inst.triples[0], score)
    best = np.where(inst.required, best, np.maximum(best, 0.0))
    return np.where(np.isfinite(best), best, 0.0)


def fixable_triples(inst: Instance, L: float, score: np.ndarray, incumbent: float) -> np.ndarray:
    """[triples] bool: triples that no schedule better than ``incumbent``
    uses, by the capacity-dualised Lagrangian bound ``L`` at a point whose
    triple scores are ``score``. Forcing triple k of job j changes that
    bound by ``score_k - best_j`` (``best_j``: the job's best score, or 0 if
    it may be left out), so k is fixable when ``L + score_k - best_j <
    incumbent``."""
    jj, _, _ = inst.triples
    loss = job_best(inst, score)[jj] - score
    return L - loss < incumbent - 1e-9 * max(1.0, abs(incumbent))
