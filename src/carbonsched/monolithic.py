"""The monolithic reference: the full MILP of MODEL.md solved by HiGHS."""

from __future__ import annotations

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
from .result import Result, finalize
from .solution import Solution

__all__ = ["solve_monolithic", "status_of"]


def status_of(term: TC) -> SolutionStatus:
    """The solution file's status for a HiGHS run that found a schedule."""
    if term is TC.CONVERGED:
        return SolutionStatus.OPTIMAL
    if term is TC.TIME_LIMIT:
        return SolutionStatus.TIME_LIMIT
    if term is TC.INTERRUPTED:
        return SolutionStatus.INTERRUPTED
    return SolutionStatus.FEASIBLE


def solve_monolithic(inst: Instance, opts: SolveOptions, *, clock: Clock | None = None, comm=None) -> Result:
    """Build the full MILP, solve it with HiGHS within what is left of the
    clock, and report; a schedule-less end is diagnosed in the time left.
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
    info = highs.solve(p, time_limit=clock.left(clock.finish_reserve), mip_gap=opts.gap, threads=opts.threads,
                       log=opts.solver_log)
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
    return finalize(inst, sol, bound=info.bound, timings=timings, stats=stats)
