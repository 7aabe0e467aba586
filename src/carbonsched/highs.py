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
import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
import scipy.sparse  # noqa: F401  (imported here so its load time is not billed to the first translation)
from highspy import cb
from highspy._core import _Highs
from pyomo.common.collections import ComponentMap
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

from . import interrupts
from .clock import Clock
from .constants import TerminationCondition as TC
from .errors import SolverError
from .result import relative_gap

__all__ = ["INF", "PRESOLVE_S_PER_NONZERO", "TERMINATION", "HighsProblem", "SolveInfo", "compile_model", "gc_paused",
           "new_highs", "new_lp", "solve", "termination_of"]

INF = highspy.kHighsInf


def new_highs(*, interruptible: bool = False) -> tuple[Any, _Deadline | None]:
    """A silent HiGHS object. Made from highspy's core class with
    ``output_flag`` off before any other call, so nothing is printed (the
    Python wrapper's constructor prints a banner); nothing process-wide is
    touched. ``interruptible``: install the interrupt callback, which stops
    a solve when :func:`carbonsched.interrupts.requested` turns true or the
    solve's wall-clock deadline passes (for long solves; a site LP of a
    few milliseconds goes without). Returns (highs, its deadline holder or None)."""
    h = _Highs()
    h.setOptionValue("output_flag", False)
    if not interruptible:
        return h, None
    deadline = _Deadline()
    h.setCallback(_interrupt_callback, deadline)
    for kind in (cb.HighsCallbackType.kCallbackSimplexInterrupt, cb.HighsCallbackType.kCallbackIpmInterrupt,
                 cb.HighsCallbackType.kCallbackMipInterrupt):
        h.startCallback(kind)
    return h, deadline


class _Deadline:
    """The wall-clock deadline of the solve in progress (perf_counter s):
    ``at``, where the callback stops it, and ``end``, where it is meant to
    end; what else may stop it: ``poll``, a callable that returns True to
    stop (None: nothing else). ``last`` and ``longest``: when the callback
    was last called, and the longest wait between two of its calls in this
    solve (s). ``on_solution``: called with each improving MIP solution
    (the column vector, HiGHS's dual bound) and, between them, with
    (None, the dual bound) from the MIP interrupt callback (None: not
    asked for; see :func:`solve`)."""

    __slots__ = ("at", "end", "last", "longest", "on_solution", "poll")

    def __init__(self) -> None:
        self.at = self.end = float("inf")
        self.poll: Callable[[], bool] | None = None
        self.on_solution: Callable[[np.ndarray | None, float | None], None] | None = None
        self.last: float | None = None
        self.longest = 0.0


def _interrupt_callback(callback_type, message, data_out, data_in, deadline: _Deadline) -> None:
    improving = callback_type == cb.HighsCallbackType.kCallbackMipImprovingSolution
    if deadline.on_solution is not None and (improving or callback_type == cb.HighsCallbackType.kCallbackMipInterrupt):
        try:
            deadline.on_solution(np.array(data_out.mip_solution, dtype=float) if improving else None,
                                 float(data_out.mip_dual_bound))
        except Exception as e:  # a failing sink must not end the solve: it is dropped
            deadline.on_solution = None
            logging.getLogger(__name__).warning("the improving-solution sink failed (%s); no further calls", e)
        if improving:
            return
    # set the flag both ways: HiGHS keeps the callback's input between runs, so a flag left True by an
    # interrupted solve would stop the next solve of the same object at its first callback
    if data_in is not None:
        now = time.perf_counter()
        if deadline.last is not None:
            deadline.longest = max(deadline.longest, now - deadline.last)
        deadline.last = now
        data_in.user_interrupt = bool(interrupts.requested() or now > deadline.at
                                      or now + STEP_SHARE * deadline.longest > deadline.end
                                      or (deadline.poll is not None and deadline.poll()))


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

    h: Any  # highspy core Highs object (see new_highs)
    columns: list
    col: ComponentMap
    rows: ComponentMap
    maximize: bool
    offset: float
    integer_cols: np.ndarray
    name: str = "model"
    compile_s: float = 0.0
    relaxed: bool = False
    A: Any = None  # scipy CSR matrix of the rows as compiled (row i = Pyomo row i)
    cost: np.ndarray | None = None  # objective coefficients as compiled
    deadline: _Deadline | None = None  # the interrupt callback's deadline (None: not interruptible)
    added: list = field(default_factory=list)  # rows added after the build, (lo, hi, cols, vals), in row order
    is_integer: np.ndarray | None = None  # per integer_cols entry: integer now (None: all as ``relaxed`` says)

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
            raise SolverError(f"constraint {con.name} has {len(r)} rows")
        return r[0]

    def values(self) -> np.ndarray:
        return np.asarray(self.h.getSolution().col_value)

    def row_duals(self) -> np.ndarray:
        """Row duals in HiGHS' convention: d(objective)/d(row activity bound)
        for the model as HiGHS sees it (minimisation or maximisation)."""
        return np.asarray(self.h.getSolution().row_dual)

    def col_duals(self) -> np.ndarray:
        """Reduced costs in HiGHS' convention: d(objective)/d(column bound)
        for a column at a bound (e.g. fixed by lower = upper)."""
        return np.asarray(self.h.getSolution().col_dual)

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

    def set_partial_start(self, cols: np.ndarray, vals: np.ndarray) -> None:
        """Offer values of some columns as a MIP start; HiGHS completes the
        rest (with the integer ones among them fixed, an LP)."""
        cols = np.asarray(cols, dtype=np.int32)
        _check(self.h.setSolution(int(cols.size), cols, np.asarray(vals, dtype=float)), f"{self.name}: MIP start")

    def add_row(self, lo: float, hi: float, cols: np.ndarray, vals: np.ndarray) -> None:
        """Append one row lo <= vals . x[cols] <= hi (kept in ``added``, so
        a checkpoint can carry the rows a run has added: its cuts)."""
        cols = np.asarray(cols, dtype=np.int32)
        vals = np.asarray(vals, dtype=float)
        _check(self.h.addRow(float(lo), float(hi), int(cols.size), cols, vals), f"{self.name}: adding a row")
        self.added.append((float(lo), float(hi), cols, vals))

    def delete_added_rows(self, idx: np.ndarray) -> None:
        """Delete the rows ``idx`` (positions in ``added``) from HiGHS and
        the list. HiGHS keeps its basis only where every deleted row's slack
        is basic (see :meth:`added_rows_basic`); otherwise the next solve
        starts cold."""
        idx = np.unique(np.asarray(idx, dtype=np.int64))
        if idx.size == 0:
            return
        first = self.num_row - len(self.added)
        _check(self.h.deleteRows(int(idx.size), (first + idx).astype(np.int32)), f"{self.name}: deleting rows")
        for i in idx[::-1]:
            self.added.pop(int(i))

    def added_rows_basic(self) -> np.ndarray:
        """[len(added)] bool: the row's slack is basic in HiGHS's basis (the
        row is not binding; rows added since the last solve count as basic).
        All False without a valid basis."""
        b = self.h.getBasis()
        if not b.valid:
            return np.zeros(len(self.added), dtype=bool)
        first = self.num_row - len(self.added)
        basic = highspy.HighsBasisStatus.kBasic
        return np.array([st == basic for st in b.row_status[first:]], dtype=bool)

    def set_integrality(self, relax: bool, cols: np.ndarray | None = None) -> None:
        """Relax integer columns to continuous, or restore them: all of
        them, or only ``cols`` (a subset of ``integer_cols``). ``relaxed``
        is True once none is integer."""
        if self.integer_cols.size == 0:
            return
        if self.is_integer is None:
            self.is_integer = np.full(self.integer_cols.size, not self.relaxed)
        pos = (np.arange(self.integer_cols.size) if cols is None
               else np.searchsorted(self.integer_cols, np.asarray(cols, dtype=np.int64)))
        pos = pos[self.is_integer[pos] == relax]
        if pos.size:
            kind = highspy.HighsVarType.kContinuous if relax else highspy.HighsVarType.kInteger
            idx = self.integer_cols[pos].astype(np.int32)
            self.h.changeColsIntegrality(idx.size, idx, np.full(idx.size, kind))
            self.is_integer[pos] = not relax
        self.relaxed = not bool(self.is_integer.any())


#: translating a model to HiGHS takes about this share of the time it took to build it (measured on the
#: medium instance: 2.1 s for a 3.7 s build); used to refuse a translation that cannot finish in time
TRANSLATE_PER_BUILD = 0.6

#: HiGHS's MIP presolve takes about this many seconds per nonzero and does not stop inside it at the time limit
#: (measured with HiGHS 1.16: 4.8 s for `medium`'s 1.36 M nonzeros, 0.4 s for the 10 x 168 x 60 case's 0.24 M;
#: a 5 s compute-only run on `medium` handed HiGHS 3.3 s and got it back after 4.7 s); used to refuse a MIP
#: solve whose presolve cannot finish in time
PRESOLVE_S_PER_NONZERO = 4e-6
#: HiGHS's branch and bound returns up to about this long after its time limit (measured with HiGHS 1.16 on
#: `medium`, 2 threads: 0.44 s past a 12.6 s limit, 0.28 s past 27.4 s); a MIP is handed its time less this (at
#: most a tenth of it: a short solve, such as a site's MILP, keeps nearly all), so that it ends within its time
MIP_OVERRUN_S = 0.5
#: the interrupt callback stops a solve this many seconds past its end, behind HiGHS's own limit
DEADLINE_GRACE_S = 0.25
#: HiGHS checks its time limit and calls the interrupt callback only between its steps, and some steps are long:
#: on a generated 10-site instance with committed units each root separation round took 5 s without a call, and a
#: MILP given 31.2 s ended at 35.5 s. The callback stops a solve where this share of the longest wait between its
#: calls so far would take it past its end: the next such step would not end in time
STEP_SHARE = 1.0


def compile_model(model: pyo.ConcreteModel, *, row_order=None, column_order=None,
                  interruptible: bool = True, clock: Clock | None = None, build_s: float = 0.0) -> HighsProblem:
    """Translate a linear Pyomo model (one active objective) to highspy.
    ``interruptible=False`` for small problems solved in a hot loop (no
    interrupt callback; see :func:`new_highs`). With a ``clock``, a
    translation predicted (from ``build_s``, the build's seconds) to outlast
    the time left is not started (:class:`~carbonsched.clock.BudgetExhausted`)."""
    if clock is not None:
        clock.check("translating the model to HiGHS", needs=TRANSLATE_PER_BUILD * build_s)
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
    h, deadline = new_highs(interruptible=interruptible)
    _check(h.passModel(lp), f"passing {model.name} to HiGHS")

    col = ComponentMap((v, j) for j, v in enumerate(cols))
    rows = ComponentMap()
    for i, (con, _) in enumerate(info.rows):
        rows.setdefault(con, []).append(i)
    return HighsProblem(h=h, columns=list(cols), col=col, rows=rows, maximize=maximize,
                        offset=lp.offset_, integer_cols=np.flatnonzero(is_int), name=model.name,
                        compile_s=time.perf_counter() - t0, A=A.tocsr(), cost=c.copy(), deadline=deadline)


def new_lp(lower: np.ndarray, upper: np.ndarray, cost: np.ndarray, *, name: str = "lp",
           maximize: bool = False, interruptible: bool = False) -> HighsProblem:
    """An LP built directly in highspy (no Pyomo model behind it), with
    columns of the given bounds and costs and no rows yet; rows come by
    :meth:`HighsProblem.add_row`. Used for small masters (the bundle's)."""
    n = int(np.asarray(cost).size)
    h, deadline = new_highs(interruptible=interruptible)
    _check(h.addVars(n, np.asarray(lower, float), np.asarray(upper, float)), f"{name}: adding columns")
    _check(h.changeColsCost(n, np.arange(n, dtype=np.int32), np.asarray(cost, float)), f"{name}: setting costs")
    if maximize:
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    return HighsProblem(h=h, columns=[], col=ComponentMap(), rows=ComponentMap(), maximize=maximize, offset=0.0,
                        integer_cols=np.zeros(0, dtype=np.int64), name=name, deadline=deadline)


def _check(status: Any, what: str) -> None:
    """Raise :class:`SolverError` when a HiGHS call returns kError."""
    if status == highspy.HighsStatus.kError:
        raise SolverError(f"HiGHS failed {what}")


_SCHED_THREADS: int | None = None


def _set_threads(h: Any, threads: int | None) -> None:
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


_MS = highspy.HighsModelStatus
_BY_NAME = {
    "kOptimal": TC.CONVERGED, "kModelEmpty": TC.CONVERGED,
    "kInfeasible": TC.INFEASIBLE, "kUnboundedOrInfeasible": TC.INFEASIBLE_OR_UNBOUNDED, "kUnbounded": TC.UNBOUNDED,
    "kTimeLimit": TC.TIME_LIMIT, "kIterationLimit": TC.ITERATION_LIMIT, "kSolutionLimit": TC.SOLUTION_LIMIT,
    "kInterrupt": TC.INTERRUPTED, "kHighsInterrupt": TC.INTERRUPTED,
    "kObjectiveBound": TC.OBJECTIVE_LIMIT, "kObjectiveTarget": TC.OBJECTIVE_LIMIT, "kMemoryLimit": TC.MEMORY_LIMIT,
    "kNotset": TC.ERROR, "kLoadError": TC.ERROR, "kModelError": TC.ERROR, "kPresolveError": TC.ERROR,
    "kSolveError": TC.ERROR, "kPostsolveError": TC.ERROR, "kUnknown": TC.ERROR,
}
#: every HiGHS model status -> the package's termination condition (statuses by name, so a HiGHS
#: without one of them still loads; tests check that every status of the installed HiGHS is here)
TERMINATION: dict[Any, TC] = {getattr(_MS, n): tc for n, tc in _BY_NAME.items() if hasattr(_MS, n)}


def termination_of(status: Any) -> TC:
    """The termination condition of a HiGHS model status (ERROR for one
    this table does not know, e.g. from a newer HiGHS)."""
    return TERMINATION.get(status, TC.ERROR)


@dataclass(frozen=True)
class SolveInfo:
    """What one HiGHS solve returned.

    ``termination``: a :class:`~carbonsched.constants.TerminationCondition`
    (CONVERGED: optimal within the requested gap). ``objective`` is the
    incumbent in the model's sense (None without one), ``bound`` the proven
    bound on it (upper for maximisation), ``gap`` their relative gap.
    """

    termination: TC
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

    @property
    def optimal(self) -> bool:
        return self.termination is TC.CONVERGED

    @property
    def infeasible(self) -> bool:
        """Proven infeasible. HiGHS's presolve may only say 'infeasible or
        unbounded'; every model of this package has a bounded objective over
        its bounded variables, so that means infeasible here."""
        return self.termination in (TC.INFEASIBLE, TC.INFEASIBLE_OR_UNBOUNDED)


def _run_with_deadline(p: HighsProblem, left: float | None) -> Any:
    """One ``run``: HiGHS's own time limit (LPs measure it on a clock that
    keeps running across runs of the same object, so add what that clock
    already shows; MIPs stop late, so take MIP_OVERRUN_S off) and, for
    interruptible problems, the callback deadline."""
    h = p.h
    if left is None:
        h.setOptionValue("time_limit", INF)
    else:
        left = float(left)
        if p.integer_cols.size > 0 and not p.relaxed:
            h.setOptionValue("time_limit", max(1e-3, left - min(MIP_OVERRUN_S, 0.1 * left)))
        else:
            h.setOptionValue("time_limit", max(1e-3, left) + float(h.getRunTime()))
    return h.run()


def solve(p: HighsProblem, *, time_limit: float | None = None, mip_gap: float | None = None,
          threads: int | None = None, log: bool = False, presolve: bool | None = None,
          heuristic_effort: float | None = None, seed: int = 0,
          stop: Callable[[], bool] | None = None,
          on_solution: Callable[[np.ndarray | None, float | None], None] | None = None) -> SolveInfo:
    """Run HiGHS on the compiled problem. Every option is set on every call
    (nothing leaks from an earlier call): ``time_limit`` in seconds of wall
    clock for this solve (None: none), ``mip_gap`` (None: HiGHS's 1e-4),
    ``threads`` (None: as before), ``log`` HiGHS's own output, ``presolve``
    (None: HiGHS chooses), ``heuristic_effort`` HiGHS's
    ``mip_heuristic_effort`` (None: its default, 0.05), ``seed`` HiGHS's
    ``random_seed`` (0: its default). ``stop``: a callable the interrupt
    callback polls, True to stop the solve (interruptible problems only); a
    solve it stops reports ``time_limit``, as one the deadline stops.
    ``on_solution`` (interruptible problems only): called with each
    improving MIP solution HiGHS finds (the full column vector, in the
    model's columns, and HiGHS's dual bound then, in the model's sense,
    infinite before it has one), and with (None, the dual bound) at each
    MIP interrupt callback between them (where a sink may finish what it
    put off; not at the simplex's, which are far more frequent); an
    exception in it drops it for the rest of the solve, with a warning. A
    solve with no verdict (numerical trouble, often from a warm start) is
    retried cold, then without presolve, then with the interior-point
    solver."""
    h = p.h
    if (stop is not None or on_solution is not None) and p.deadline is None:
        raise ValueError(f"{p.name}: a solve with a stop poll or a solution sink needs an interruptible problem")
    h.setOptionValue("output_flag", bool(log))
    h.setOptionValue("mip_rel_gap", 1e-4 if mip_gap is None else float(mip_gap))
    h.setOptionValue("presolve", "choose" if presolve is None else ("on" if presolve else "off"))
    h.setOptionValue("mip_heuristic_effort", 0.05 if heuristic_effort is None else float(heuristic_effort))
    h.setOptionValue("random_seed", int(seed))
    _set_threads(h, threads)
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + float(time_limit)
    _arm(p, deadline, stop)
    if on_solution is not None:
        p.deadline.on_solution = on_solution
        h.startCallback(cb.HighsCallbackType.kCallbackMipImprovingSolution)
    try:
        st = _run_retrying(p, time_limit, deadline, presolve)
    finally:
        longest = p.deadline.longest if p.deadline is not None else None
        _arm(p, None, None)
        if on_solution is not None:
            h.stopCallback(cb.HighsCallbackType.kCallbackMipImprovingSolution)
            p.deadline.on_solution = None
    dt = time.perf_counter() - t0
    info = h.getInfo()
    term = termination_of(st)
    if term is TC.INTERRUPTED and not interrupts.requested():
        term = TC.TIME_LIMIT  # the callback's deadline, not a signal, stopped it
    # kSolutionStatusFeasible; an 'optimal' LP may report its point as slightly infeasible after unscaling
    has_sol = info.primal_solution_status == 2 or (term is TC.CONVERGED and st != _MS.kModelEmpty)
    is_mip = p.integer_cols.size > 0 and not p.relaxed
    obj = float(info.objective_function_value) if has_sol else None
    if is_mip:
        bound = float(info.mip_dual_bound)
        if not np.isfinite(bound):
            bound = None
    else:
        bound = obj if term is TC.CONVERGED else None
    gap = None
    if obj is not None and bound is not None:
        gap = relative_gap(bound, obj, maximize=p.maximize)
    extra = {} if longest is None else {"longest_step_s": longest}
    return SolveInfo(termination=term, objective=obj, bound=bound, gap=gap, solve_s=dt,
                     nodes=int(getattr(info, "mip_node_count", 0) or 0), raw_status=h.modelStatusToString(st),
                     extra=extra)


def _run_retrying(p: HighsProblem, time_limit: float | None, deadline: float | None,
                  presolve: bool | None) -> Any:
    """Run; where HiGHS gives no verdict (numerical trouble, often from a
    warm start), run again cold, then cold without presolve, then with the
    interior-point solver (with crossover). Returns HiGHS's model status."""
    h = p.h
    _run_with_deadline(p, time_limit)
    st = h.getModelStatus()
    if termination_of(st) is TC.ERROR:
        for cold_presolve, method in (("choose", "choose"), ("off", "choose"), ("choose", "ipm")):
            h.clearSolver()
            h.setOptionValue("presolve", cold_presolve)
            h.setOptionValue("solver", method)
            _run_with_deadline(p, None if deadline is None else deadline - time.perf_counter())
            st = h.getModelStatus()
            if termination_of(st) is not TC.ERROR:
                break
        h.setOptionValue("solver", "choose")
        h.setOptionValue("presolve", "choose" if presolve is None else ("on" if presolve else "off"))
    return st


def _arm(p: HighsProblem, end: float | None, stop: Callable[[], bool] | None = None) -> None:
    """Point the problem's interrupt callback (if it has one) at this
    solve's end (perf_counter s; None: none) and stop poll; it stops the
    solve :data:`DEADLINE_GRACE_S` after the end, as a safety net behind
    HiGHS's own limit, or before it where the longest wait between its calls
    so far would end past it (:data:`STEP_SHARE`)."""
    if p.deadline is not None:
        d = p.deadline
        d.end = float("inf") if end is None else end
        d.at = d.end + DEADLINE_GRACE_S
        d.poll = stop
        d.last, d.longest = None, 0.0
