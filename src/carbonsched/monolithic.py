"""The monolithic reference: the full MILP of MODEL.md solved by HiGHS."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from pyomo.environ import ConcreteModel

from . import highs
from .clock import BudgetExhausted, Clock
from .config import SolveOptions
from .constants import SolutionStatus
from .constants import TerminationCondition as TC
from .decomposition.pool import peak_rss_mb
from .diagnose import budget_below_least_emissions, diagnose
from .errors import SolverError
from .instance import Instance
from .model import MB_PER_ELEMENT, build_monolithic, extract_solution, memory_check
from .result import Result, finalize, write_final, write_in_progress
from .solution import Solution

__all__ = ["INCUMBENT_COST_SHARE", "INCUMBENT_EVERY_S", "Publish", "solve_monolithic", "status_of"]

#: with an incumbent file, HiGHS's improving solutions are written at most every INCUMBENT_EVERY_S seconds, and
#: at most every INCUMBENT_COST_SHARE^-1 times the last write's seconds (at most that share of the solve goes to
#: them); one found sooner is written at the first interrupt callback after that (`medium`: 0.1 s to read a
#: solution back, score and write it)
INCUMBENT_EVERY_S = 1.0
INCUMBENT_COST_SHARE = 0.05


def status_of(term: TC) -> SolutionStatus:
    """The solution file's status for a HiGHS run that found a schedule."""
    if term is TC.CONVERGED:
        return SolutionStatus.OPTIMAL
    if term is TC.TIME_LIMIT:
        return SolutionStatus.TIME_LIMIT
    if term is TC.INTERRUPTED:
        return SolutionStatus.INTERRUPTED
    return SolutionStatus.FEASIBLE


#: where a run's schedules go as it goes: ``publish(solution, bound=$ or None, wall_s=s)`` with HiGHS's improving
#: schedule and its dual bound; returns None where it was written, else why not (the run then stops publishing)
Publish = Callable[..., str | None]


def solve_monolithic(inst: Instance, opts: SolveOptions, *, clock: Clock | None = None, comm=None,
                     publish: Publish | None = None) -> Result:
    """Build the full MILP, solve it with HiGHS within what is left of the
    clock, and report; a schedule-less end is diagnosed in the time left.
    HiGHS's improving schedules go to ``publish`` as it runs (default: with
    ``opts.incumbent_file`` set, written there in progress; a caller that
    solves a view of its instance, as the compute-only baseline does,
    writes its own schedule of each).
    A build, translation or presolve predicted to outlast the time left is
    not started (the run ends as ``time_limit``): HiGHS does not stop inside
    its presolve (:data:`~carbonsched.highs.PRESOLVE_S_PER_NONZERO`)."""
    clock = clock or Clock(opts.time_limit)
    proof = budget_below_least_emissions(inst)
    if proof is not None:
        return finalize(inst, Solution.empty(inst, "monolithic", proof.status), bound=None,
                        timings={"total_s": clock.elapsed()}, stats=proof.facts, diagnosis=proof.messages)
    fits, need, have = memory_check(inst, share=0.8)  # xlarge: predicted 21.4 GB, killed at 23.7 GB unfinished
    if not fits:
        raise SolverError(f"the monolithic model of {inst.name!r} would need about {need / 1024:.1f} GB to build "
                          f"and translate ({MB_PER_ELEMENT * 1e3:.1f} MB per 1,000 columns and rows, measured), "
                          f"more than 80% of the {have / 1024:.1f} GB available: use --method lagrangian (over MPI ranks)")
    try:
        t0 = clock.elapsed()
        m = build_monolithic(inst, clock=clock)
        t_build = clock.elapsed() - t0
        p = highs.compile_model(m, clock=clock, build_s=t_build)
        # HiGHS does not stop inside its presolve: a solve whose presolve outlasts the time left is not started
        presolve_s = highs.PRESOLVE_S_PER_NONZERO * p.A.nnz
        clock.check(f"starting HiGHS (its presolve, about {presolve_s:.1f} s for {p.A.nnz:,} nonzeros, does not "
                    f"stop at the time limit)", needs=presolve_s)
    except BudgetExhausted as e:
        return finalize(inst, Solution.empty(inst, "monolithic", SolutionStatus.TIME_LIMIT), bound=None,
                        timings={"total_s": clock.elapsed()}, stats={"stop": TC.TIME_LIMIT.value}, diagnosis=[str(e)])
    if publish is None and opts.incumbent_file is not None:
        path = opts.incumbent_file

        def publish(sol: Solution, *, bound: float | None, wall_s: float) -> str | None:
            return write_in_progress(inst, sol, path, bound=bound, wall_s=wall_s)
    sink = None if publish is None else _incumbent_sink(inst, m, p, publish, clock)
    info = highs.solve(p, time_limit=clock.left(clock.finish_reserve), mip_gap=opts.gap, threads=opts.threads,
                       log=opts.solver_log, on_solution=sink)
    timings = {"build_s": t_build, "translate_s": p.compile_s, "solve_s": info.solve_s}
    stats = {"binaries": int(p.integer_cols.size), "columns": p.num_col, "rows": p.num_row,
             "peak_memory_mb_per_rank": [peak_rss_mb()],
             "nodes": info.nodes, "highs_status": info.raw_status, "stop": info.termination.value}
    if not info.has_solution:
        if info.infeasible:
            d = diagnose(inst, time_limit=clock.left())
            status = d.status or SolutionStatus.INFEASIBLE
            msgs, facts = d.messages, d.facts
        else:
            status = SolutionStatus.INTERRUPTED if info.termination is TC.INTERRUPTED else (
                SolutionStatus.TIME_LIMIT if info.termination is TC.TIME_LIMIT else SolutionStatus.NO_SOLUTION)
            msgs, facts = [f"no feasible schedule found ({info.raw_status})"], {}
        timings["total_s"] = clock.elapsed()
        return finalize(inst, Solution.empty(inst, "monolithic", status), bound=info.bound, timings=timings,
                        stats={**stats, **facts}, diagnosis=msgs)
    p.load_into_pyomo()
    sol = extract_solution(m, inst, "monolithic", status_of(info.termination).value)
    stats["solver_objective"] = info.objective
    timings["total_s"] = clock.elapsed()
    return write_final(finalize(inst, sol, bound=info.bound, timings=timings, stats=stats), inst, opts.incumbent_file)


def _incumbent_sink(inst: Instance, m: ConcreteModel, p: highs.HighsProblem, publish: Publish,
                    clock: Clock) -> Callable[[np.ndarray | None, float | None], None]:
    """The sink of HiGHS's improving solutions (``on_solution`` of
    :func:`carbonsched.highs.solve`): each is read back into the model
    ``m`` and handed to ``publish`` with HiGHS's dual bound (by default
    scored by the evaluator and written, status feasible,
    ``stats.in_progress``), at most every
    :data:`INCUMBENT_EVERY_S` seconds and within
    :data:`INCUMBENT_COST_SHARE` of the time; one found sooner waits for
    the first call after that (HiGHS's interrupt callback calls it with
    nothing new). A solution written before HiGHS had a bound (its
    heuristics run before the root LP) is written again once it has one."""
    state: dict = {"at": -np.inf, "cost": 0.0, "pending": None, "written": None, "unbounded": False, "bound": None}

    def sink(x: np.ndarray | None, bound: float | None) -> None:
        if bound is not None and np.isfinite(bound):
            state["bound"] = bound
        if x is not None:
            state["pending"] = x
        elif state["pending"] is None and state["unbounded"] and state["bound"] is not None:
            state["pending"] = state["written"]  # the file's schedule, now with a bound
        now = time.perf_counter()
        if state["pending"] is None or now - state["at"] < max(INCUMBENT_EVERY_S, state["cost"] / INCUMBENT_COST_SHARE):
            return
        x, state["pending"] = state["pending"], None
        p.load_into_pyomo(x)
        sol = extract_solution(m, inst, "monolithic", SolutionStatus.FEASIBLE.value)
        state["written"], state["unbounded"] = x, state["bound"] is None
        err = publish(sol, bound=state["bound"], wall_s=clock.elapsed())
        state["at"] = time.perf_counter()
        state["cost"] = state["at"] - now
        if err is not None:
            raise OSError(err)  # highs.solve drops the sink, with a warning

    return sink
