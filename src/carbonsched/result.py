"""The result every method returns, and the one path that finalises it.

:func:`finalize` takes a schedule (a :class:`Solution` with arrays filled),
scores it with the checker's :func:`~carbonsched.check.evaluate` (the same
OB for every method), fills objective, emissions, bound and gap, and runs
the checker. Methods never compute their reported objective themselves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .check import Breakdown, CheckReport, check_solution, evaluate
from .constants import SolutionStatus
from .instance import Instance
from .solution import Solution, try_write_solution

__all__ = ["Result", "WorkerReport", "finalize", "relative_gap", "write_in_progress"]


def relative_gap(bound: float | None, objective: float | None, *, maximize: bool = True) -> float | None:
    """(bound - objective) / max(1, |objective|), as MODEL.md section 5 (for a
    minimisation, objective - bound); never negative; None without both."""
    if bound is None or objective is None:
        return None
    diff = bound - objective if maximize else objective - bound
    return max(0.0, diff) / max(1.0, abs(objective))


@dataclass
class Result:
    """A method's outcome: the solution file's content plus the objective
    breakdown, timings (s), an infeasibility diagnosis and the check."""

    solution: Solution
    breakdown: Breakdown | None
    timings: dict[str, float] = field(default_factory=dict)
    diagnosis: list[str] = field(default_factory=list)
    check: CheckReport | None = None
    #: the file the method itself wrote this solution to, whole and final (its ``incumbent_file``); None where
    #: it wrote none, so that the caller writes it (``solve --out`` then does not write it a second time)
    written_to: Path | None = None

    @property
    def status(self) -> str:
        return self.solution.status

    @property
    def objective(self) -> float | None:
        return self.solution.objective

    @property
    def bound(self) -> float | None:
        return self.solution.bound

    @property
    def gap(self) -> float | None:
        return self.solution.gap

    @property
    def emissions(self) -> float | None:
        return self.solution.emissions_t

    @property
    def method(self) -> str:
        return self.solution.method


def finalize(inst: Instance, sol: Solution, *, bound: float | None, timings: dict[str, float] | None = None,
             stats: dict | None = None, diagnosis: list[str] | None = None, run_check: bool = True) -> Result:
    """Score ``sol`` with the independent evaluator, fill the headline
    numbers, and check it. An infeasible outcome (no schedule) passes
    through with its diagnosis."""
    timings = dict(timings or {})
    sol.stats = {**sol.stats, **(stats or {}), "timings_s": timings}
    if sol.stats.get("empty"):  # no schedule at all (infeasible, or stopped before any was found)
        sol.bound = bound
        return Result(sol, None, timings, list(diagnosis or []), None)
    b = evaluate(inst, sol)
    sol.objective = b.objective
    sol.emissions_t = b.emissions_t
    if bound is not None and bound < b.objective:
        # a bound from a solver tolerance can sit a hair under the incumbent
        bound = b.objective if b.objective - bound <= 1e-6 * max(1.0, abs(b.objective)) else bound
    sol.bound = bound
    sol.gap = relative_gap(bound, b.objective)
    rep = check_solution(inst, sol) if run_check else None
    return Result(sol, b, timings, list(diagnosis or []), rep)



def write_final(res: Result, inst: Instance, path: Path | str | None) -> Result:
    """Write a run's final solution to its incumbent file ``path`` (None:
    none) and record it in ``res.written_to``; a write that fails is logged
    and left to the caller (``written_to`` stays None: ``solve --out`` then
    writes it, or saves it elsewhere and says so). Returns ``res``."""
    if path is None:
        return res
    err = try_write_solution(res.solution, inst, path)
    if err is None:
        res.written_to = Path(path)
    else:
        logging.getLogger(__name__).warning("cannot write the solution to %s (%s)", path, err)
    return res


def write_in_progress(inst: Instance, sol: Solution, path: Path | str, *, bound: float | None,
                      **stats: Any) -> str | None:
    """Write ``sol``, a schedule found while a run goes, to ``path`` as the
    run's solution so far: scored by the evaluator (``finalize`` without
    the checker), status feasible, ``bound`` ($, None: none yet, or not
    finite), ``stats`` with ``in_progress`` true. ``sol`` is changed. Returns
    None where it was written, else why not (the run goes on without it)."""
    sol.status = SolutionStatus.FEASIBLE.value
    finalize(inst, sol, bound=bound if bound is not None and np.isfinite(bound) else None, run_check=False,
             stats={"in_progress": True, **stats})
    return try_write_solution(sol, inst, path)


@dataclass(frozen=True)
class WorkerReport:
    """What a worker rank of a decomposition returns once the pool closes:
    its rank, the sites it solved and its busy seconds. (Rank 0 returns the
    :class:`Result`.)"""

    rank: int
    method: str
    sites: list[str]
    busy_s: float
