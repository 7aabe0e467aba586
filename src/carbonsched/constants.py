"""Status enums shared by every method, the solver interface and the CLI.

Three questions, three enums (as in ``pyomo.contrib.solver.common.results``):

- :class:`TerminationCondition` -- why a solve or a run stopped (a gap was
  reached, the time ran out, an interrupt, the model is infeasible, ...);
- :class:`SolutionStatus` -- what the solution file says about the schedule
  in it (MODEL.md section 5's ``status`` field, plus ``interrupted``);
- :class:`InfeasibilityCause` -- which cause the diagnosis found.

:class:`ExitCode` maps an outcome to the CLI's exit status. Every enum is a
``StrEnum`` (or ``IntEnum``), so it compares equal to its value and serialises
as it is.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

__all__ = ["ExitCode", "InfeasibilityCause", "SolutionStatus", "TerminationCondition", "exit_code"]


class TerminationCondition(StrEnum):
    """Why a HiGHS solve or a whole run stopped."""

    CONVERGED = "converged"  #: proven optimal within the requested gap
    TIME_LIMIT = "time_limit"  #: the wall-clock budget ran out
    ITERATION_LIMIT = "iteration_limit"  #: an explicit iteration (or HiGHS simplex/node) limit
    INTERRUPTED = "interrupted"  #: SIGINT/SIGTERM or a user interrupt
    OBJECTIVE_LIMIT = "objective_limit"  #: HiGHS objective bound or target reached
    SOLUTION_LIMIT = "solution_limit"  #: HiGHS solution limit
    STALLED = "stalled"  #: a decomposition found no further cut or improvement
    DUAL_CONVERGED = "dual_converged"  #: the dual method converged; the gap left is the relaxation's
    INFEASIBLE = "infeasible"  #: proven infeasible
    BUDGET_INFEASIBLE = "budget_infeasible"  #: infeasible because of the carbon budget
    UNBOUNDED = "unbounded"
    INFEASIBLE_OR_UNBOUNDED = "infeasible_or_unbounded"
    MEMORY_LIMIT = "memory_limit"
    ERROR = "error"  #: the solver gave no verdict (numerical trouble, load or model error)

    @property
    def is_limit(self) -> bool:
        """A budget (time, iterations, interrupt, ...) stopped the run: the
        answer is the best found so far, not a proof."""
        return self in _LIMITS


_LIMITS = frozenset({TerminationCondition.TIME_LIMIT, TerminationCondition.ITERATION_LIMIT,
                     TerminationCondition.INTERRUPTED, TerminationCondition.OBJECTIVE_LIMIT,
                     TerminationCondition.SOLUTION_LIMIT, TerminationCondition.MEMORY_LIMIT})


class SolutionStatus(StrEnum):
    """The solution file's ``status`` (MODEL.md section 5). ``interrupted``
    and ``no_solution`` are this package's additions: a run stopped by a
    signal (best schedule, if any, and bound in the file), and a run that
    ended without a schedule for another reason than time or a proof."""

    OPTIMAL = "optimal"  #: gap <= the requested gap
    FEASIBLE = "feasible"  #: a feasible schedule, gap above the request
    TIME_LIMIT = "time_limit"  #: the time limit stopped the run (schedule in the file if one was found)
    INTERRUPTED = "interrupted"  #: a signal stopped the run (schedule in the file if one was found)
    NO_SOLUTION = "no_solution"  #: the run ended (iteration cap, stall) with no schedule and no proof
    INFEASIBLE = "infeasible"  #: no feasible schedule exists (diagnosed)
    BUDGET_INFEASIBLE = "budget_infeasible"  #: the carbon budget cannot be met (diagnosed)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)


class InfeasibilityCause(StrEnum):
    """What :func:`carbonsched.diagnose.diagnose` found."""

    REQUIRED_JOB_UNPLACEABLE = "required_job_unplaceable"  #: a required job fits no (site, start) alone
    REQUIRED_JOBS_CONFLICT = "required_jobs_conflict"  #: required jobs cannot all run together
    IDLE_LOAD_UNPOWERED = "idle_load_unpowered"  #: the always-on load cannot be powered
    CARBON_BUDGET = "carbon_budget"  #: the budget is below the least reachable emissions
    UNEXPLAINED = "unexplained"  #: none of the above alone explains it
    UNDECIDED = "undecided"  #: the diagnosis ran out of time before it could tell


class ExitCode(IntEnum):
    """Exit status of ``carbonsched`` commands (also in README and ``--help``)."""

    OK = 0  #: optimal within the requested gap (``check``: the solution passes)
    FEASIBLE = 1  #: a schedule with a gap above the request (time or iteration limit, stall)
    BAD_INPUT = 2  #: bad input: instance, solution file, option or output path
    INFEASIBLE = 3  #: proven infeasible or budget-infeasible (diagnosed)
    NO_SCHEDULE = 4  #: stopped (time limit) before any feasible schedule was found
    CHECK_FAILED = 5  #: the checker rejected a solution (``check``; from ``solve`` a bug, please report)
    INTERRUPTED = 130  #: stopped by SIGINT/SIGTERM; best schedule and bound written where one exists


def exit_code(status: SolutionStatus | str, has_schedule: bool, check_ok: bool | None) -> ExitCode:
    """The CLI exit code of a finished solve."""
    status = SolutionStatus(status)
    if check_ok is False:
        return ExitCode.CHECK_FAILED
    if status is SolutionStatus.INTERRUPTED:
        return ExitCode.INTERRUPTED
    if status in (SolutionStatus.INFEASIBLE, SolutionStatus.BUDGET_INFEASIBLE):
        return ExitCode.INFEASIBLE
    if not has_schedule:
        return ExitCode.NO_SCHEDULE
    return ExitCode.OK if status is SolutionStatus.OPTIMAL else ExitCode.FEASIBLE
