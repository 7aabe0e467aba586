"""One site's energy subproblem, built once and re-solved with new data.

The model is the shared energy block (:func:`carbonsched.energy.build_site_energy`)
plus two rows that tie it to the rest of the system:

- ``bal[t]``:  supplied[t] + short[t] - over[t] = P̂[t]   (facility load, MW)
- ``cap``:     emissions - excess <= b̂        (carbon allocation, t)

It is translated to highspy once; afterwards each solve only changes row
bounds (Benders), or objective coefficients (Lagrangian), by index, and
HiGHS re-solves from the previous basis. A committed generator's output
columns can be fixed by their bounds to an output ``gen`` [H] (MW) that
Benders' master chooses (with its on/off binaries): the on/off binaries,
which carry no cost, are then relaxed, and the site problem is an LP whose
value is exact for that output; the reduced costs of the output columns
are ``dQ/d gen[t]``. The slacks ``short``, ``over`` and ``excess`` are
fixed at zero except in the phase-1 problem that yields feasibility cuts
(``over``: a unit held at its minimum output can supply more than the
load).

Dual convention (checked in tests by finite differences): HiGHS' row dual
is d(objective)/d(row bound), so for the minimised site cost Q(P̂, b̂),
``dQ/dP̂[t] = dual(bal[t])`` ($/MW of load held for one period, i.e. $/MWh
x dt) and ``dQ/db̂ = dual(cap)`` ($/t, <= 0); with the committed unit's output
fixed, ``dQ/dgen[t] = reduced cost(g[t])`` ($/MW of output held for one period).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
import scipy.sparse as sp

from .. import highs
from ..energy import build_site_energy, site_arrays
from ..errors import SolverError
from ..instance import Instance
from ..solution import SITE_SERIES

__all__ = ["SiteEval", "SiteSubproblem"]

INF = highs.INF


@dataclass
class SiteEval:
    """Outcome of one fixed-load solve. ``feasible``: the load and allocation
    can be met; then ``cost`` = Q, ``g_load`` = dQ/dP̂ [H], ``g_alloc`` =
    dQ/db̂. Otherwise ``cost`` is the phase-1 infeasibility w > 0 and the
    gradients are those of w (for a feasibility cut). ``g_gen`` [H]: dQ/dgen
    (or dw/dgen) where a committed unit's output was fixed, else zeros. ``exact_failed``:
    the LP relaxation is feasible but the committed-unit MILP is not.
    ``emissions``: the dispatch's emissions (t) where feasible, else nan."""

    feasible: bool
    cost: float
    g_load: np.ndarray
    g_alloc: float
    solve_s: float
    exact_failed: bool = False
    g_gen: np.ndarray | None = None
    emissions: float = float("nan")


class SiteSubproblem:
    """Site ``s``'s energy problem in a persistent highspy model."""

    def __init__(self, inst: Instance, s: int):
        t0 = time.perf_counter()
        self.inst, self.s, self.H = inst, s, inst.H
        m = pyo.ConcreteModel(name=f"site-{inst.site_ids[s]}")
        m.e = pyo.Block()
        build_site_energy(m.e, inst, s)
        T = range(inst.H)
        m.short = pyo.Var(T, bounds=(0.0, 0.0))
        m.over = pyo.Var(T, bounds=(0.0, 0.0))
        m.excess = pyo.Var(bounds=(0.0, 0.0))
        m.bal = pyo.Constraint(T, rule=lambda _m, t: _m.e.supplied[t] + _m.short[t] - _m.over[t] == 0.0)
        m.cap = pyo.Constraint(expr=m.e.emissions - m.excess <= 0.0)
        m.obj = pyo.Objective(expr=m.e.cost, sense=pyo.minimize)
        self.m = m
        p = highs.compile_model(m, interruptible=False)
        self.p = p
        self.bal_rows = np.array([p.row_of(m.bal[t]) for t in T], dtype=np.int32)
        self.cap_row = np.int32(p.row_of(m.cap))
        self.short_cols = p.cols_of(m.short[t] for t in T).astype(np.int32)
        self.excess_col = np.int32(p.col[m.excess])
        over = p.cols_of(m.over[t] for t in T).astype(np.int32)
        self.slack_cols = np.concatenate([self.short_cols, over, [self.excess_col]]).astype(np.int32)
        # a committed unit's output columns (the master can fix them); the on/off binaries carry no cost
        self.gen_cols = (p.cols_of(m.e.g[t] for t in T).astype(np.int32) if inst.committed[s]
                         else np.zeros(0, np.int32))
        self.gmax = float(inst.gmax[s])
        self._gen_fixed = False
        A = p.A
        keep = np.ones(p.num_col)
        keep[self.slack_cols] = 0.0
        sup = (A[self.bal_rows] @ sp.diags(keep)).tocsr()
        sup.eliminate_zeros()
        emis = A[self.cap_row].toarray().ravel()
        emis[self.excess_col] = 0.0
        self.supply_coef = sup  # sparse [H, ncol]: supplied[t] = sup[t] @ x
        self.emis_coef = emis  # [ncol]: emissions = emis @ x
        self.c0 = p.cost.copy()
        self.ncol = p.num_col
        self.exact = p.integer_cols.size == 0  # an LP is always exact
        self.build_s = time.perf_counter() - t0
        self._mode = "fixed"
        self._mu = 0.0  # the carbon price ($/t) on the emissions in fixed-load mode

    def reset(self) -> None:
        """Forget the basis and return to fixed-load mode (deterministic
        restarts, see the pool's calibration)."""
        self._set_fixed(np.zeros(self.H), np.inf)
        self._set_gen(None)
        self.p.set_integrality(relax=True)
        self.p.h.clearSolver()

    # -- data updates ---------------------------------------------------
    def _set_fixed(self, P: np.ndarray, b: float, mu: float = 0.0) -> None:
        h = self.p.h
        P = np.asarray(P, dtype=float)
        h.changeRowsBounds(self.H, self.bal_rows, P, P)
        h.changeRowsBounds(1, np.array([self.cap_row]), np.array([-INF]), np.array([b if np.isfinite(b) else INF]))
        if self._mode != "fixed" or mu != self._mu:
            h.changeColsCost(self.ncol, np.arange(self.ncol, dtype=np.int32), self._fixed_cost(mu))
            self._mode, self._mu = "fixed", mu

    def _fixed_cost(self, mu: float) -> np.ndarray:
        """The fixed-load objective's costs at carbon price ``mu`` ($/t)."""
        return self.c0 if mu == 0.0 else self.c0 + mu * self.emis_coef

    def _set_gen(self, gen: np.ndarray | None) -> None:
        """Fix the committed unit's output columns at ``gen`` [H] (MW, in
        [0, gmax]), or free them (None)."""
        n = self.gen_cols.size
        if n == 0 or (gen is None and not self._gen_fixed):
            return
        if gen is None:
            self.p.h.changeColsBounds(n, self.gen_cols, np.zeros(n), np.full(n, self.gmax))
        else:
            v = np.clip(np.asarray(gen, dtype=float), 0.0, self.gmax)
            self.p.h.changeColsBounds(n, self.gen_cols, v, v)
        self._gen_fixed = gen is not None

    def _g_gen(self) -> np.ndarray:
        """dQ/dgen [H] of the last LP solve, with the output fixed."""
        if not self._gen_fixed:
            return np.zeros(self.H)
        return self.p.col_duals()[self.gen_cols].copy()

    def _emissions(self) -> float:
        """Emissions (t) of the last solve's dispatch."""
        return float(self.emis_coef @ self.p.values())

    def _phase1(self, on: bool) -> None:
        h = self.p.h
        n = self.slack_cols.size
        h.changeColsBounds(n, self.slack_cols, np.zeros(n), np.full(n, INF if on else 0.0))
        if on:
            c = np.zeros(self.ncol)
            c[self.slack_cols] = 1.0
        else:
            c = self._fixed_cost(self._mu)
        h.changeColsCost(self.ncol, np.arange(self.ncol, dtype=np.int32), c)

    # -- solves ---------------------------------------------------------
    def evaluate(self, P: np.ndarray, b: float, *, exact: bool = False, time_limit: float | None = None,
                 gen: np.ndarray | None = None, mu: float = 0.0) -> SiteEval:
        """Min site cost for facility load ``P`` [H] (MW) within ``b`` (t).
        ``exact=False`` relaxes a committed generator's binaries (valid cuts);
        ``exact=True`` solves the MILP (true feasible cost), within
        ``time_limit`` seconds: stopped there, its best dispatch counts
        (feasible, cost not proven least), and without one the site fails
        (``exact_failed``). ``gen`` [H] (MW, not with ``exact``) fixes the
        committed unit's output: an LP (the on/off binaries, which carry no
        cost, relaxed), exact for that output, whose cut has ``g_gen``. Ignored
        at a site without a committed unit. ``mu`` ($/t): a carbon price on
        the emissions, in the objective (``cost`` and the gradients then
        include it); 0 for Q itself."""
        t0 = time.perf_counter()
        self._set_fixed(P, b, mu)
        self._set_gen(None if exact else gen)
        self.p.set_integrality(relax=not exact)
        milp = exact and not self.exact  # a committed unit's binaries kept
        info = highs.solve(self.p, mip_gap=1e-9, time_limit=time_limit if milp else None)
        if milp and not info.optimal and not info.infeasible:
            # the committed units' MILP ran out of its time (on xlarge a 720-hour unit-commitment MILP per site,
            # without a limit, kept the first recovery busy past the run's limit)
            if info.has_solution:
                return SiteEval(True, info.objective, np.zeros(self.H), 0.0, time.perf_counter() - t0,
                                emissions=self._emissions())
            return SiteEval(False, 0.0, np.zeros(self.H), 0.0, time.perf_counter() - t0, exact_failed=True)
        if info.optimal:
            if exact and not self.exact:
                return SiteEval(True, info.objective, np.zeros(self.H), 0.0, time.perf_counter() - t0,
                                emissions=self._emissions())
            d = self.p.row_duals()
            return SiteEval(True, info.objective, d[self.bal_rows].copy(), float(d[self.cap_row]),
                            time.perf_counter() - t0, g_gen=self._g_gen(), emissions=self._emissions())
        if not info.infeasible:
            raise SolverError(f"site {self.inst.site_ids[self.s]}: subproblem ended {info.raw_status}")
        if exact and not self.exact:
            self.p.set_integrality(relax=True)
            lp = highs.solve(self.p)
            if lp.optimal:
                return SiteEval(False, 0.0, np.zeros(self.H), 0.0, time.perf_counter() - t0, exact_failed=True)
        # phase 1: least infeasibility w(P, b, gen) = min sum(short + over) + excess, its duals give the cut
        self.p.set_integrality(relax=True)
        self._phase1(True)
        info = highs.solve(self.p)
        d = self.p.row_duals()
        out = SiteEval(False, float(info.objective), d[self.bal_rows].copy(), float(d[self.cap_row]),
                       time.perf_counter() - t0, g_gen=self._g_gen())
        self._phase1(False)
        return out

    def price(self, pi: np.ndarray, mu: float) -> tuple[float, np.ndarray, float, float]:
        """Lagrangian site problem: min cost + mu x emissions - sum_t pi[t] dt
        supplied[t], with the balance and allocation rows free. ``pi`` in
        $/MWh, ``mu`` in $/t. Solved as the LP relaxation (a valid bound).
        Returns (min value, supplied [H] MW, emissions t, seconds)."""
        t0 = time.perf_counter()
        h = self.p.h
        self._set_gen(None)
        if self._mode != "priced":
            free = np.full(self.H, INF)
            h.changeRowsBounds(self.H, self.bal_rows, -free, free)
            h.changeRowsBounds(1, np.array([self.cap_row]), np.array([-INF]), np.array([INF]))
            self._mode = "priced"
        c = self.c0 + mu * self.emis_coef - self.inst.dt * (self.supply_coef.T @ np.asarray(pi, float))
        h.changeColsCost(self.ncol, np.arange(self.ncol, dtype=np.int32), c)
        self.p.set_integrality(relax=True)
        info = highs.solve(self.p)
        if not info.optimal:
            raise SolverError(f"site {self.inst.site_ids[self.s]}: priced subproblem ended {info.raw_status}")
        x = self.p.values()
        return info.objective, self.supply_coef @ x, float(self.emis_coef @ x), time.perf_counter() - t0

    def dispatch_arrays(self) -> np.ndarray:
        """The last solve's dispatch as [len(SITE_SERIES), H+1] (soc has H+1
        values; the others use the first H)."""
        self.p.load_into_pyomo()
        arrs = site_arrays(self.m.e, self.inst, self.s)
        out = np.zeros((len(SITE_SERIES), self.H + 1))
        for i, k in enumerate(SITE_SERIES):
            out[i, : arrs[k].size] = arrs[k]
        return out
