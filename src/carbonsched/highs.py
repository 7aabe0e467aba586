"""A small solver interface: a Pyomo model compiled once into a highspy model.

Every method (monolithic, Benders master and subproblems, Lagrangian
subproblems, baselines) goes through here, so there is one place that
talks to HiGHS. The model is translated once with Pyomo's
``LinearStandardFormCompiler``; after that, data changes (row bounds,
objective coefficients, new cut rows, integrality) are applied to the
highspy model directly by index, which is what keeps a decomposition's hot
loop free of Pyomo rebuilds.

Results follow the shape of ``pyomo.contrib.solver``: a termination
condition, the incumbent objective, the objective bound, the gap and the
timing, in a small frozen dataclass.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import highspy
import numpy as np
import pyomo.environ as pyo
import scipy.sparse  # noqa: F401  (imported here so its load time is not billed to the first translation)
from pyomo.common.collections import ComponentMap
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

__all__ = ["INF", "HighsProblem", "SolveInfo", "compile_model", "gc_paused", "solve"]

INF = highspy.kHighsInf


def _quiet_first_highs() -> None:
    """HiGHS prints a banner on stdout when the first Highs object of a
    process is made; make that first one with stdout pointed at /dev/null."""
    try:
        sys.stdout.flush()
        fd = os.dup(1)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        try:
            highspy.Highs()
        finally:
            os.dup2(fd, 1)
            os.close(fd)
            os.close(null)
    except OSError:  # no real stdout (embedded interpreters): keep the banner
        pass


_quiet_first_highs()


@contextmanager
def gc_paused():
    """Pause the garbage collector while building large Pyomo models
    (roughly halves build time: Pyomo allocates many small objects)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class HighsProblem:
    """A highspy model with the map back to the Pyomo components.

    ``col[var]`` is the column of a Pyomo variable; ``rows[con]`` the row(s)
    of a Pyomo constraint (two for a ranged one). ``maximize`` records the
    sense; objective values are always reported in the model's own sense.
    """

    h: highspy.Highs
    columns: list
    col: ComponentMap
    rows: ComponentMap
    maximize: bool
    offset: float
    integer_cols: np.ndarray
    compile_s: float = 0.0
    relaxed: bool = False
    A: object = None  # scipy CSR matrix of the rows as compiled (row i = Pyomo row i)
    cost: np.ndarray | None = None  # objective coefficients as compiled

    @property
    def num_col(self) -> int:
        return self.h.getNumCol()

    @property
    def num_row(self) -> int:
        return self.h.getNumRow()

    def cols_of(self, vars_) -> np.ndarray:
        """Column indices of an iterable of Pyomo variables (-1 if absent:
        a variable that appears in no constraint nor objective)."""
        return np.array([self.col.get(v, -1) for v in vars_], dtype=np.int64)

    def row_of(self, con) -> int:
        """The single row of an equality or one-sided constraint."""
        r = self.rows[con]
        if len(r) != 1:
            raise ValueError(f"constraint {con.name} has {len(r)} rows")
        return r[0]

    def values(self) -> np.ndarray:
        return np.asarray(self.h.getSolution().col_value)

    def row_duals(self) -> np.ndarray:
        """Row duals in HiGHS' convention: d(objective)/d(row activity bound)
        for the model as HiGHS sees it (minimisation or maximisation)."""
        return np.asarray(self.h.getSolution().row_dual)

    def load_into_pyomo(self, x: np.ndarray | None = None) -> None:
        """Copy a primal vector (default: the current solution) back onto the
        Pyomo variables."""
        x = self.values() if x is None else x
        for v, val in zip(self.columns, x):
            v.set_value(float(val), skip_validation=True)

    def set_start(self, x: np.ndarray) -> None:
        """Offer a full primal vector as a MIP start (HiGHS checks it)."""
        sol = highspy.HighsSolution()
        sol.col_value = np.asarray(x, dtype=float)
        sol.value_valid = True
        self.h.setSolution(sol)

    def add_row(self, lo: float, hi: float, cols: np.ndarray, vals: np.ndarray) -> None:
        """Append one row lo <= vals . x[cols] <= hi."""
        cols = np.asarray(cols, dtype=np.int32)
        self.h.addRow(float(lo), float(hi), int(cols.size), cols, np.asarray(vals, dtype=float))

    def set_integrality(self, relax: bool) -> None:
        """Relax the integer columns to continuous, or restore them."""
        if self.integer_cols.size == 0 or relax == self.relaxed:
            return
        self.relaxed = relax
        kind = highspy.HighsVarType.kContinuous if relax else highspy.HighsVarType.kInteger
        idx = self.integer_cols.astype(np.int32)
        self.h.changeColsIntegrality(idx.size, idx, np.full(idx.size, kind))


@dataclass(frozen=True)
class SolveInfo:
    """What one HiGHS solve returned.

    ``termination``: 'optimal' (within the requested gap), 'time_limit',
    'infeasible', 'unbounded' or 'error'. ``objective`` is the incumbent in
    the model's sense (None without one), ``bound`` the proven bound on it
    (upper for maximisation), ``gap`` = |bound - objective| / max(1, |objective|).
    """

    termination: str
    objective: float | None
    bound: float | None
    gap: float | None
    solve_s: float
    nodes: int = 0
    raw_status: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def has_solution(self) -> bool:
        return self.objective is not None


def compile_model(model: pyo.ConcreteModel, *, row_order=None, column_order=None) -> HighsProblem:
    """Translate a linear Pyomo model (one active objective) to highspy."""
    t0 = time.perf_counter()
    with gc_paused():
        info = LinearStandardFormCompiler().write(
            model, mixed_form=True, set_sense=None, row_order=row_order, column_order=column_order)
    obj = info.objectives[0]
    maximize = obj.sense == pyo.maximize
    n = len(info.columns)
    A = info.A.tocsc()
    m = A.shape[0]
    rhs = np.asarray(info.rhs, dtype=float)
    mult = np.array([r[1] for r in info.rows], dtype=int) if m else np.zeros(0, int)
    # mixed form: multiplier 0 is an equality, +1 a <= row, -1 a >= row
    lo = np.where(mult <= 0, rhs, -INF) if m else np.zeros(0)
    hi = np.where(mult >= 0, rhs, INF) if m else np.zeros(0)
    cols = info.columns
    lb = np.array([-INF if v.lb is None else v.lb for v in cols], dtype=float)
    ub = np.array([INF if v.ub is None else v.ub for v in cols], dtype=float)
    is_int = np.array([v.is_integer() for v in cols], dtype=bool)
    c = np.asarray(info.c.toarray()).ravel() if info.c.shape[0] else np.zeros(n)
    if c.size < n:
        c = np.concatenate([c, np.zeros(n - c.size)])

    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = m
    lp.col_cost_ = c
    lp.col_lower_ = lb
    lp.col_upper_ = ub
    lp.row_lower_ = lo
    lp.row_upper_ = hi
    lp.offset_ = float(info.c_offset[0]) if len(info.c_offset) else 0.0
    lp.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(float)
    lp.a_matrix_.num_col_ = n
    lp.a_matrix_.num_row_ = m
    if is_int.any():
        lp.integrality_ = [highspy.HighsVarType.kInteger if b else highspy.HighsVarType.kContinuous for b in is_int]
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(lp)

    col = ComponentMap((v, j) for j, v in enumerate(cols))
    rows = ComponentMap()
    for i, (con, _) in enumerate(info.rows):
        rows.setdefault(con, []).append(i)
    return HighsProblem(h=h, columns=list(cols), col=col, rows=rows, maximize=maximize,
                        offset=lp.offset_, integer_cols=np.flatnonzero(is_int), compile_s=time.perf_counter() - t0,
                        A=A.tocsr(), cost=c.copy())


_SCHED_THREADS: int | None = None


def _set_threads(h: highspy.Highs, threads: int | None) -> None:
    """HiGHS runs MIPs on one process-wide thread scheduler, fixed at its
    first use: asking another Highs object for a different thread count
    then fails with an error status. Reset the scheduler when the count
    changes, and give later solves without a request the same count."""
    global _SCHED_THREADS
    want = int(threads) if threads else _SCHED_THREADS
    if want is None:
        return
    if want != _SCHED_THREADS:
        highspy.Highs.resetGlobalScheduler(True)
        _SCHED_THREADS = want
    h.setOptionValue("threads", want)


_TERM = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnbounded: "unbounded",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
    highspy.HighsModelStatus.kIterationLimit: "time_limit",
    highspy.HighsModelStatus.kSolutionLimit: "time_limit",
    highspy.HighsModelStatus.kInterrupt: "time_limit",
    highspy.HighsModelStatus.kObjectiveBound: "time_limit",
}


def solve(p: HighsProblem, *, time_limit: float | None = None, mip_gap: float | None = None,
          threads: int | None = None, log: bool = False, presolve: bool | None = None) -> SolveInfo:
    """Run HiGHS on the compiled problem with the given options."""
    h = p.h
    h.setOptionValue("output_flag", bool(log))
    h.setOptionValue("time_limit", float(time_limit) if time_limit else INF)
    if mip_gap is not None:
        h.setOptionValue("mip_rel_gap", float(mip_gap))
    _set_threads(h, threads)
    if presolve is not None:
        h.setOptionValue("presolve", "on" if presolve else "off")
    t0 = time.perf_counter()
    h.run()
    st = h.getModelStatus()
    if _TERM.get(st, "error") == "error":
        # no verdict (numerical trouble, often from a warm start): retry cold, then without presolve
        h.clearSolver()
        h.run()
        st = h.getModelStatus()
        if _TERM.get(st, "error") == "error":
            h.clearSolver()
            h.setOptionValue("presolve", "off")
            h.run()
            h.setOptionValue("presolve", "choose")
            st = h.getModelStatus()
    dt = time.perf_counter() - t0
    info = h.getInfo()
    term = _TERM.get(st, "error")
    has_sol = info.primal_solution_status == 2  # kSolutionStatusFeasible
    is_mip = p.integer_cols.size > 0 and not p.relaxed
    obj = float(info.objective_function_value) if has_sol else None
    if is_mip:
        bound = float(info.mip_dual_bound)
        if not np.isfinite(bound):
            bound = None
    else:
        bound = obj if term == "optimal" else None
    gap = None
    if obj is not None and bound is not None:
        gap = abs(bound - obj) / max(1.0, abs(obj))
    return SolveInfo(termination=term, objective=obj, bound=bound, gap=gap, solve_s=dt,
                     nodes=int(getattr(info, "mip_node_count", 0) or 0), raw_status=h.modelStatusToString(st))
