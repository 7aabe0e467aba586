"""The full model with the training schedule (and optionally the inference
routing) fixed: what is left is an LP (plus committed-unit binaries).

Built and translated once; each call only changes column bounds. Used by
the Lagrangian primal recovery (fix the schedule, route and dispatch) and
by the energy-only baseline (fix schedule and routing, dispatch).
"""

from __future__ import annotations

import time

import numpy as np

from . import highs
from .clock import Clock
from .instance import Instance
from .model import build_monolithic, extract_solution
from .solution import Solution

__all__ = ["FixedScheduleModel"]


class FixedScheduleModel:
    """``solve(starts)`` with ``starts`` an array of triple indices (see
    ``Instance.triples``) returns the best routing and dispatch for that
    schedule, or None when it cannot be powered or meet the budget.

    ``job_load=True`` builds it without a column per job triple: the
    schedule enters as its IT load per (site, period), so the model is the
    size of the energy and routing parts alone (on ``large``: 0.2 million
    columns and rows instead of 0.65 million); only :meth:`solve` is
    available then, not the bounds on triples of :meth:`solve_bounds`."""

    def __init__(self, inst: Instance, *, clock: Clock | None = None, job_load: bool = False):
        t0 = time.perf_counter()
        self.inst = inst
        self.job_load = job_load
        self.m = build_monolithic(inst, clock=clock, job_load=job_load)
        self.p = highs.compile_model(self.m, clock=clock, build_s=time.perf_counter() - t0)
        c = self.m.compute
        jj, _, _ = inst.triples
        self.x_cols = self.p.cols_of(c.x[k] for k in c.K).astype(np.int32)
        self.run_cols = (np.array([[self.p.col[c.run[s, t]] for t in range(inst.H)] for s in range(inst.S)],
                                  dtype=np.int32).ravel() if job_load else None)
        rr, _ = inst.region_pairs
        self.y_cols = np.array([[self.p.col.get(c.y[k, t], -1) for t in range(inst.H)] for k in range(rr.size)],
                               dtype=np.int32).reshape(rr.size, inst.H)
        self.y_ub = np.array([[c.y[k, t].ub for t in range(inst.H)] for k in range(rr.size)],
                             dtype=float).reshape(rr.size, inst.H)
        ints = self.p.integer_cols
        self.x_int = np.intersect1d(ints, self.x_cols[self.x_cols >= 0])  # integer columns of the jobs
        self.unit_int = np.setdiff1d(ints, self.x_int)  # and of committed units
        self.build_s = time.perf_counter() - t0
        self.last_x: np.ndarray | None = None
        self.last_info: highs.SolveInfo | None = None  # the last solve's outcome (infeasible, or out of time)
        self.solves = 0
        self.solve_s = 0.0

    def solve(self, starts: np.ndarray, *, y: np.ndarray | None = None, time_limit: float | None = None,
              method: str = "fixed", relax_units: bool = False) -> tuple[Solution | None, float | None]:
        """Fix x to the given starts (and y [pairs, H] if given), solve.
        ``relax_units=True`` relaxes committed generators' binaries (an LP;
        the caller then re-dispatches those sites exactly). Returns
        (solution or None, solver objective or None)."""
        if self.job_load:
            inst = self.inst
            jj, ss, tt = inst.triples
            run = np.zeros((inst.S, inst.H))
            for k in np.asarray(starts, dtype=int):
                run[ss[k], tt[k]:tt[k] + inst.dur[jj[k]]] += inst.pow[jj[k]]
            self.p.h.changeColsBounds(self.run_cols.size, self.run_cols, run.ravel(), run.ravel())
            sol, obj, _ = self.solve_bounds(np.zeros(0), np.zeros(0), y=y, time_limit=time_limit, method=method,
                                            integer_x=False, integer_units=not relax_units, gap=1e-6)
            if sol is not None:
                sol.training = [(inst.job_ids[jj[k]], inst.site_ids[ss[k]], int(tt[k]))
                                for k in sorted(np.asarray(starts, dtype=int))]
                obj += float(inst.val[jj[np.asarray(starts, dtype=int)]].sum())  # the model leaves job values out
            return sol, obj
        val = np.zeros(self.x_cols.size)
        val[np.asarray(starts, dtype=int)] = 1.0
        sol, obj, _ = self.solve_bounds(val, val, y=y, time_limit=time_limit, method=method, integer_x=False,
                                        integer_units=not relax_units, gap=1e-6)
        return sol, obj

    def solve_restricted(self, lower: np.ndarray, upper: np.ndarray, *, start: np.ndarray | None = None,
                         start_triples: np.ndarray | None = None, time_limit: float | None = None,
                         gap: float = 1e-4, threads: int | None = None,
                         method: str = "polish") -> tuple[Solution | None, float | None, float | None]:
        """The full MILP with each triple's binary bounded by ``lower`` and
        ``upper`` (0/1 arrays over triples): a restricted MILP over the jobs
        left free. ``start``: a full column vector to start from (e.g. the
        incumbent's ``last_x``), or ``start_triples``: just the schedule
        (HiGHS completes the rest). Returns (solution, objective, bound)."""
        return self.solve_bounds(lower, upper, start=start, start_triples=start_triples, time_limit=time_limit,
                                 gap=gap, threads=threads, method=method)

    def solve_bounds(self, lower: np.ndarray, upper: np.ndarray, *, y: np.ndarray | None = None,
                     integer_x: bool = True, integer_units: bool = True, start: np.ndarray | None = None,
                     start_triples: np.ndarray | None = None, time_limit: float | None = None, gap: float = 1e-4,
                     threads: int | None = None, method: str = "fixed") -> tuple[Solution | None, float | None, float | None]:
        """Solve with each triple's x within [``lower``, ``upper``] (arrays
        over triples), y fixed to ``y`` [pairs, H] if given; ``integer_x`` /
        ``integer_units``: keep the job / committed-unit binaries integer
        (else relaxed). Returns (solution or None, objective, bound); the
        column vector is kept in ``last_x``, the outcome in ``last_info``."""
        t0 = time.perf_counter()
        h = self.p.h
        self.p.set_integrality(relax=not integer_x, cols=self.x_int)
        self.p.set_integrality(relax=not integer_units, cols=self.unit_int)
        ok = self.x_cols >= 0
        if ok.any():
            h.changeColsBounds(int(ok.sum()), self.x_cols[ok], np.asarray(lower, float)[ok],
                               np.asarray(upper, float)[ok])
        yc = self.y_cols.ravel()
        yok = yc >= 0
        if y is not None:
            yv = np.asarray(y, float).ravel()
            h.changeColsBounds(int(yok.sum()), yc[yok], yv[yok], yv[yok])
        else:
            h.changeColsBounds(int(yok.sum()), yc[yok], np.zeros(int(yok.sum())), self.y_ub.ravel()[yok])
        if start is not None:
            self.p.set_start(start)
        elif start_triples is not None:  # the schedule alone: HiGHS completes routing and dispatch
            ok = self.x_cols >= 0
            val = np.zeros(self.x_cols.size)
            val[np.asarray(start_triples, dtype=int)] = 1.0
            self.p.set_partial_start(self.x_cols[ok], val[ok])
        info = highs.solve(self.p, time_limit=time_limit, mip_gap=gap, threads=threads)
        self.last_info = info
        self.solves += 1
        self.solve_s += time.perf_counter() - t0
        if not info.has_solution:
            return None, None, info.bound
        self.last_x = self.p.values().copy()
        self.p.load_into_pyomo()
        return extract_solution(self.m, self.inst, method, "feasible"), info.objective, info.bound

    def x_values(self) -> np.ndarray:
        """[triples] x of the last solve (0 for a triple without a column)."""
        return np.where(self.x_cols >= 0, self.last_x[np.maximum(self.x_cols, 0)], 0.0)
