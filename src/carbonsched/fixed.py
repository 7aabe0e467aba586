"""The full model with the training schedule (and optionally the inference
routing) fixed: what is left is an LP (plus committed-unit binaries).

Built and translated once; each call only changes column bounds. Used by
the Lagrangian primal recovery (fix the schedule, route and dispatch) and
by the energy-only baseline (fix schedule and routing, dispatch).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from . import highs
from .clock import Clock
from .derived import load_matrix, schedule_load
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
        # [S, H] the committed units' on/off columns (-1 at a site without one)
        self.on_cols = np.array([[self.p.col.get(self.m.site[s].on[t], -1) if hasattr(self.m.site[s], "on") else -1
                                  for t in range(inst.H)] for s in range(inst.S)], dtype=np.int32)
        ints = self.p.integer_cols
        self.x_int = np.intersect1d(ints, self.x_cols[self.x_cols >= 0])  # integer columns of the jobs
        self.unit_int = np.setdiff1d(ints, self.x_int)  # and of committed units
        self.build_s = time.perf_counter() - t0
        self._run_a = None  # the run columns' part of the matrix (CSC), for keep_lp
        self.keep_lp_value: float | None = None  # the last keep LP's optimum ($, job shares in part)
        self.last_x: np.ndarray | None = None
        self.last_info: highs.SolveInfo | None = None  # the last solve's outcome (infeasible, or out of time)
        self.solves = 0
        self.solve_s = 0.0
        # seconds a time-limited MILP of this model ran past its limit (HiGHS checks its limit and the interrupt
        # callback only here and there: on `medium` a window MILP given 2.8 s took 5.0 s); later limits keep it back
        self.overrun_s = 0.0

    def solve(self, starts: np.ndarray, *, y: np.ndarray | None = None, time_limit: float | None = None,
              method: str = "fixed", relax_units: bool = False) -> tuple[Solution | None, float | None]:
        """Fix x to the given starts (and y [pairs, H] if given), solve.
        ``relax_units=True`` relaxes committed generators' binaries (an LP;
        the caller then re-dispatches those sites exactly). Returns
        (solution or None, solver objective or None)."""
        if self.job_load:
            inst = self.inst
            jj = inst.triples[0]
            run = schedule_load(inst, starts)
            self.p.h.changeColsBounds(self.run_cols.size, self.run_cols, run.ravel(), run.ravel())
            sol, obj, _ = self.solve_bounds(np.zeros(0), np.zeros(0), y=y, time_limit=time_limit, method=method,
                                            integer_x=False, integer_units=not relax_units, gap=1e-6)
            if sol is not None:
                sol.training = self._training(starts)
                obj += float(inst.val[jj[np.asarray(starts, dtype=int)]].sum())  # the model leaves job values out
            return sol, obj
        val = np.zeros(self.x_cols.size)
        val[np.asarray(starts, dtype=int)] = 1.0
        sol, obj, _ = self.solve_bounds(val, val, y=y, time_limit=time_limit, method=method, integer_x=False,
                                        integer_units=not relax_units, gap=1e-6)
        return sol, obj

    def solve_committed(self, starts: np.ndarray, on: np.ndarray, *, time_limit: float | None = None,
                        method: str = "fixed") -> tuple[Solution | None, float | None]:
        """The schedule ``starts`` with the committed units' on/off fixed to
        ``on`` [S, H] (0/1, a solution's ``generator_on``): an LP over
        routing and dispatch, which moves load and emissions between sites
        at that commitment. Returns (solution or None, objective $)."""
        ok = self.on_cols >= 0
        cols = self.on_cols[ok]
        v = np.round(np.asarray(on, dtype=float)[ok])
        h = self.p.h
        h.changeColsBounds(cols.size, cols, v, v)
        try:
            return self.solve(starts, time_limit=time_limit, method=method, relax_units=True)
        finally:
            h.changeColsBounds(cols.size, cols, np.zeros(cols.size), np.ones(cols.size))

    def keep_lp(self, starts: np.ndarray, *, time_limit: float | None = None,
                method: str = "fixed") -> tuple[np.ndarray | None, Solution | None, float | None]:
        """The jobs of ``starts`` (triples) worth keeping, by one LP
        (``job_load`` models only): each job ``j`` runs a share ``z_j`` in
        [0, 1] of its triple (1 for a required job), its load ``z_j * pow_j``
        MW in every period of its run, and earns ``z_j * val_j`` $; units
        relaxed. Where the whole schedule breaks the carbon budget or the
        sites' power, the LP drops, in part, the jobs that cost the budget,
        or the power, more than they are worth. The jobs it runs in part are
        then dropped whole and the LP re-solved warm (their load is at most
        the LP's in every site and period, so the sites can power it).
        Returns (the kept triples, their routing and dispatch, objective $);
        (None, None, None) where the LP has no answer (not even the required
        jobs fit, or no time left: ``last_info``), and (kept, None, None)
        where only the re-solve has none."""
        if not self.job_load:
            raise ValueError("keep_lp needs the dispatch model (job_load=True)")
        inst, p = self.inst, self.p
        h = p.h
        jj = inst.triples[0]
        starts = np.asarray(starts, dtype=int)
        n = starts.size
        if n == 0:  # nothing to weigh: the empty schedule, dispatched
            sol, obj = self.solve(starts, time_limit=time_limit, method=method, relax_units=True)
            return (starts, sol, obj) if sol is not None else (None, None, None)
        if self._run_a is None:
            self._run_a = p.A[:, self.run_cols].tocsc()  # rows x (S*H), run column of (s, t) at s*H + t
        load = load_matrix(inst, starts)  # z_k adds pow_j to run[s, t] over the run of triple k
        z_a = (self._run_a @ load).tocsc()
        z_a.sort_indices()
        val = inst.val[jj[starts]] + load.T @ p.cost[self.run_cols]
        lower = inst.required[jj[starts]].astype(float)
        zero = np.zeros(self.run_cols.size)
        h.changeColsBounds(self.run_cols.size, self.run_cols, zero, zero)
        self._free_y()
        p.set_integrality(relax=True, cols=self.unit_int)
        n0 = p.num_col
        z_cols = np.arange(n0, n0 + n, dtype=np.int32)
        highs._check(h.addCols(n, val if p.maximize else -val, lower, np.ones(n), int(z_a.nnz),
                               z_a.indptr[:-1].astype(np.int32), z_a.indices.astype(np.int32),
                               z_a.data.astype(float)), "keep LP: adding the job shares")
        t0 = time.perf_counter()
        try:
            info = highs.solve(p, time_limit=time_limit)
            self.last_info = info
            if not info.has_solution:
                return None, None, None
            self.keep_lp_value = info.objective
            whole = p.values()[n0:n0 + n] >= 1.0 - 1e-6
            keep = starts[whole]
            h.changeColsBounds(n, z_cols, whole.astype(float), whole.astype(float))
            info = highs.solve(p, time_limit=time_limit if time_limit is None
                               else max(0.0, time_limit - (time.perf_counter() - t0)))
            self.last_info = info
            if not info.has_solution:
                return keep, None, None
            x = p.values()
            self.last_x = x[:n0].copy()
            p.load_into_pyomo(self.last_x)
            sol = extract_solution(self.m, inst, method, "feasible")
            sol.training = self._training(keep)
            return keep, sol, info.objective
        finally:
            self.solves += 1
            self.solve_s += time.perf_counter() - t0
            highs._check(h.deleteCols(n, z_cols), "keep LP: deleting the job shares")

    def _training(self, starts: np.ndarray) -> list:
        """The solution file's training list of the schedule ``starts``."""
        jj, ss, tt = self.inst.triples
        ids, sites = self.inst.job_ids, self.inst.site_ids
        return [(ids[jj[k]], sites[ss[k]], int(tt[k])) for k in sorted(np.asarray(starts, dtype=int))]

    def _free_y(self) -> None:
        """Routing columns back to [0, their bound]."""
        yc = self.y_cols.ravel()
        ok = yc >= 0
        self.p.h.changeColsBounds(int(ok.sum()), yc[ok], np.zeros(int(ok.sum())), self.y_ub.ravel()[ok])

    def solve_restricted(self, lower: np.ndarray, upper: np.ndarray, *, start: np.ndarray | None = None,
                         start_triples: np.ndarray | None = None, time_limit: float | None = None,
                         gap: float = 1e-4, threads: int | None = None, method: str = "polish",
                         heuristic_effort: float | None = None, seed: int = 0,
                         stop: Callable[[], bool] | None = None
                         ) -> tuple[Solution | None, float | None, float | None]:
        """The full MILP with each triple's binary bounded by ``lower`` and
        ``upper`` (0/1 arrays over triples): a restricted MILP over the jobs
        left free. ``start``: a full column vector to start from (e.g. the
        incumbent's ``last_x``), or ``start_triples``: just the schedule
        (HiGHS completes the rest). ``heuristic_effort``, ``seed`` and
        ``stop``: as :func:`carbonsched.highs.solve` takes them. Returns
        (solution, objective, bound)."""
        return self.solve_bounds(lower, upper, start=start, start_triples=start_triples, time_limit=time_limit,
                                 gap=gap, threads=threads, method=method, heuristic_effort=heuristic_effort,
                                 seed=seed, stop=stop)

    def solve_bounds(self, lower: np.ndarray, upper: np.ndarray, *, y: np.ndarray | None = None,
                     integer_x: bool = True, integer_units: bool = True, start: np.ndarray | None = None,
                     start_triples: np.ndarray | None = None, time_limit: float | None = None, gap: float = 1e-4,
                     threads: int | None = None, method: str = "fixed", heuristic_effort: float | None = None,
                     seed: int = 0, stop: Callable[[], bool] | None = None
                     ) -> tuple[Solution | None, float | None, float | None]:
        """Solve with each triple's x within [``lower``, ``upper``] (arrays
        over triples), y fixed to ``y`` [pairs, H] if given; ``integer_x`` /
        ``integer_units``: keep the job / committed-unit binaries integer
        (else relaxed); ``heuristic_effort``, ``seed`` and ``stop``: as
        :func:`carbonsched.highs.solve` takes them. Returns (solution or None,
        objective, bound); the column vector is kept in ``last_x``, the
        outcome in ``last_info``."""
        if start is None and start_triples is not None and (integer_x or integer_units):
            start, time_limit = self._full_start(start_triples, y, time_limit, method)
            if start is not None:
                start_triples = None
        t0 = time.perf_counter()
        h = self.p.h
        self.p.set_integrality(relax=not integer_x, cols=self.x_int)
        self.p.set_integrality(relax=not integer_units, cols=self.unit_int)
        ok = self.x_cols >= 0
        if ok.any():
            h.changeColsBounds(int(ok.sum()), self.x_cols[ok], np.asarray(lower, float)[ok],
                               np.asarray(upper, float)[ok])
        if y is not None:
            yc = self.y_cols.ravel()
            yok = yc >= 0
            yv = np.asarray(y, float).ravel()
            h.changeColsBounds(int(yok.sum()), yc[yok], yv[yok], yv[yok])
        else:
            self._free_y()
        if start is not None:
            self.p.set_start(start)
        elif start_triples is not None:  # the schedule alone: HiGHS completes routing and dispatch
            ok = self.x_cols >= 0
            val = np.zeros(self.x_cols.size)
            val[np.asarray(start_triples, dtype=int)] = 1.0
            self.p.set_partial_start(self.x_cols[ok], val[ok])
        limit = None if time_limit is None else max(0.05, time_limit - self.overrun_s)
        t1 = time.perf_counter()
        info = highs.solve(self.p, time_limit=limit, mip_gap=gap, threads=threads, heuristic_effort=heuristic_effort,
                           seed=seed, stop=stop)
        if limit is not None and (integer_x or integer_units):
            self.overrun_s = max(0.5 * self.overrun_s, time.perf_counter() - t1 - limit)
        self.last_info = info
        self.solves += 1
        self.solve_s += time.perf_counter() - t0
        if not info.has_solution:
            return None, None, info.bound
        return self.solution_from(self.p.values(), method), info.objective, info.bound

    def _full_start(self, start_triples: np.ndarray, y: np.ndarray | None, time_limit: float | None,
                    method: str) -> tuple[np.ndarray | None, float | None]:
        """A full column vector for a MIP start given as a schedule alone:
        the schedule's best routing and dispatch (its x fixed), within a
        quarter of ``time_limit``. HiGHS completes a partial start itself
        with a sub-MIP its time limit does not bound: in a Benders endgame
        given 15 s on a mid-size instance with committed units, 4.5 s of
        19 s. Returns (the vector or None, the time limit left)."""
        t0 = time.perf_counter()
        val = np.zeros(self.x_cols.size)
        val[np.asarray(start_triples, dtype=int)] = 1.0
        sol, _, _ = self.solve_bounds(val, val, y=y, integer_x=False, gap=1e-6, method=method,
                                      time_limit=None if time_limit is None else 0.25 * time_limit)
        left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
        return (None if sol is None else self.last_x.copy()), left

    def solution_from(self, x: np.ndarray, method: str) -> Solution:
        """The solution of the column vector ``x`` of this model (from this
        object's solve, or another rank's copy of the same model), kept in
        ``last_x``."""
        if x.size != self.p.num_col:
            raise ValueError(f"a column vector of {x.size} entries for a model of {self.p.num_col} columns")
        self.last_x = np.array(x, dtype=float)
        self.p.load_into_pyomo(self.last_x)
        return extract_solution(self.m, self.inst, method, "feasible")

    def x_values(self, x: np.ndarray | None = None) -> np.ndarray:
        """[triples] x of the column vector ``x`` of this model (None: of
        the last solve; 0 for a triple without a column)."""
        x = self.last_x if x is None else x
        return np.where(self.x_cols >= 0, x[np.maximum(self.x_cols, 0)], 0.0)

