"""What every decomposition run shares: its state and its one way to end.

:class:`RunState` holds the incumbent, the proven bound, the iteration
trace, the timings and the clock; :meth:`RunState.stop_reason` is the one
place that decides whether a run must stop (interrupt, time, iteration
cap, gap). :func:`finish` turns a state into a :class:`Result` the same way
for Benders and the Lagrangian method: status from the stop reason and the
gap, a diagnosis when no schedule was found (within the time left), the
summary line, and :func:`~carbonsched.result.finalize`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import numpy as np

from .. import interrupts
from ..check import evaluate
from ..clock import Clock
from ..config import DecompositionOptions
from ..constants import SolutionStatus
from ..constants import TerminationCondition as TC
from ..diagnose import budget_below_least_emissions, diagnose, static_required_job_problems, unpowered_message
from ..instance import Instance
from ..result import Result, finalize, relative_gap, write_in_progress
from ..solution import Solution, try_write_solution
from .checkpoint import load_checkpoint, save_checkpoint
from .trace import IterationLog

__all__ = ["Incumbent", "RunState", "finish", "pool_unpowered_sites", "preflight"]


@dataclass
class Incumbent:
    """A feasible schedule, its objective OB ($) and what the method keeps
    beside it (a master vector, the triples started, ...)."""

    solution: Solution
    objective: float
    payload: dict[str, Any] = field(default_factory=dict)


OptsT = TypeVar("OptsT", bound=DecompositionOptions)


@dataclass
class RunState(Generic[OptsT]):
    """The state of a decomposition run on rank 0 (``opts``: the method's own options)."""

    inst: Instance
    method: str
    opts: OptsT
    clock: Clock
    log: IterationLog
    bound: float = np.inf
    best: Incumbent | None = None
    iteration: int = 0
    stop: TC | None = None
    trace: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    stats: dict[str, Any] = field(default_factory=dict)
    diagnosis: list[str] = field(default_factory=list)
    #: the method's own state for a checkpoint: () -> (header dict, arrays dict)
    snapshot: Callable[[], tuple[dict[str, Any], dict[str, np.ndarray]]] | None = None
    saved_at: float = 0.0
    resumed_from: int = 0  # iterations done before a resume

    # -- incumbent and bound ---------------------------------------------
    @property
    def objective(self) -> float:
        """The incumbent's OB, -inf without one."""
        return self.best.objective if self.best is not None else -np.inf

    @property
    def gap(self) -> float | None:
        return relative_gap(self.bound, self.best.objective) if self.best is not None else None

    @property
    def gap_reached(self) -> bool:
        """The gap is known and at or below the run's target (``opts.gap``):
        every stage ends there."""
        gap = self.gap
        return gap is not None and gap <= self.opts.gap

    def offer(self, solution: Solution, objective: float, **payload: Any) -> bool:
        """Keep ``solution`` if it beats the incumbent (and write it to
        ``opts.incumbent_file``); True if it did."""
        if objective > self.objective:
            self.best = Incumbent(solution, float(objective), payload)
            self.write_incumbent()
            return True
        return False

    def write_incumbent(self, final: Solution | None = None) -> bool:
        """Write the incumbent to ``opts.incumbent_file`` (if set), scored by
        the independent evaluator, with the bound proven by now, status
        feasible and ``stats.in_progress`` true; or ``final``, the run's
        finished solution, as it is. The write is atomic, so the file
        always holds a whole solution. A write that fails is logged once
        and not tried again: the run goes on, and its final solution is
        still the caller's to write. True where the file was written."""
        path = self.opts.incumbent_file
        if path is None or (final is None and self.best is None) or "incumbent_file_error" in self.stats:
            return False
        with self.timed("incumbent_file_s"):
            if final is not None:
                err = try_write_solution(final, self.inst, path)
            else:  # a copy: the incumbent's own status and stats are the run's to set at its end
                err = write_in_progress(self.inst, replace(self.best.solution, method=self.method), path,
                                        bound=self.bound, iterations=self.iteration, wall_s=self.clock.elapsed())
            if err is not None:
                self.stats["incumbent_file_error"] = err
                self.log.note(f"cannot write the incumbent to {path} ({err}); no further tries")
        return err is None

    def tighten(self, bound: float | None) -> None:
        """Take a new proven upper bound on OB (the smallest one counts)."""
        if bound is not None and np.isfinite(bound):
            self.bound = min(self.bound, float(bound))

    # -- stopping -----------------------------------------------------------
    @property
    def finish_reserve(self) -> float:
        """:attr:`Clock.finish_reserve` of the run's clock (s)."""
        return self.clock.finish_reserve

    def stop_reason(self, *, reserve: float = 0.0) -> TC | None:
        """Why the run must stop now, or None to go on: an interrupt, the
        time limit (``reserve`` seconds, and :attr:`finish_reserve`, kept
        back), the iteration cap, or the gap reached."""
        if interrupts.requested():
            return TC.INTERRUPTED
        if self.clock.expired(reserve + self.finish_reserve):
            return TC.TIME_LIMIT
        cap = self.opts.max_iterations
        if cap is not None and self.iteration >= cap:
            return TC.ITERATION_LIMIT
        if self.gap_reached:
            return TC.CONVERGED
        return None

    def stalled(self, window: int = 50, rel: float = 1e-6) -> bool:
        """Neither the bound nor the incumbent moved by more than ``rel``
        (relative) over the last ``window`` iterations."""
        if len(self.trace) <= window:
            return False
        old, new = self.trace[-window - 1], self.trace[-1]
        scale = max(1.0, abs(self.bound) if np.isfinite(self.bound) else 1.0)
        moved_b = (old.get("bound") or np.inf) - (new.get("bound") or np.inf)
        moved_i = (new.get("incumbent") or -np.inf) - (old.get("incumbent") or -np.inf)
        return not (moved_b > rel * scale or moved_i > rel * scale)

    # -- checkpoints ------------------------------------------------------------
    def checkpoint(self, *, force: bool = False) -> None:
        """Save the run's state to ``opts.checkpoint`` if ``checkpoint_every``
        seconds have passed since the last save (or ``force``)."""
        path = self.opts.checkpoint
        if path is None or self.snapshot is None:
            return
        now = self.clock.elapsed()
        if not force and now - self.saved_at < self.opts.checkpoint_every:
            return
        with self.timed("checkpoint_s"):
            header, arrays = self.snapshot()
            header.update(iteration=self.iteration, bound=self.bound if np.isfinite(self.bound) else None,
                          objective=self.best.objective if self.best is not None else None, trace=self.trace)
            save_checkpoint(path, method=self.method, inst=self.inst, header=header, arrays=arrays,
                            incumbent=self.best.solution if self.best is not None else None)
        self.saved_at = self.clock.elapsed()

    def restore(self) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """Load ``opts.resume`` (if given) into this state; returns the
        method's own (header, arrays) to restore the rest."""
        if self.opts.resume is None:
            return None
        header, arrays, inc = load_checkpoint(self.opts.resume, method=self.method, inst=self.inst)
        self.iteration = self.resumed_from = int(header["iteration"])
        self.tighten(header.get("bound"))
        self.trace = list(header.get("trace") or [])
        if inc is not None and header.get("objective") is not None:
            self.best = Incumbent(inc, float(header["objective"]))
            self.write_incumbent()
        self.log.note(f"resumed from {self.opts.resume} after {self.iteration} iterations: bound "
                      f"{self.bound:,.4f}, incumbent {self.objective:,.4f}")
        return header, arrays

    # -- timing and trace ---------------------------------------------------
    @contextmanager
    def timed(self, key: str) -> Iterator[None]:
        """Add the block's wall seconds to ``timings[key]``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[key] += time.perf_counter() - t0

    def record(self, row: dict[str, Any], *, iteration: int | None = None) -> None:
        """Add an iteration's row to the trace and print it; ``iteration``:
        its number in the log (None: the run's iteration count)."""
        row = {"iter": self.iteration if iteration is None else iteration, **row, "t": self.clock.elapsed()}
        self.trace.append(row)
        self.log.row(row)


def pool_unpowered_sites(inst: Instance, pool) -> list[str]:
    """The sites that cannot power their least load -- idle IT times PUE,
    no job and no inference -- in any dispatch, one message each; solved
    on the pool's site LPs (committed units relaxed, no budget). A load
    never needs less supply than a smaller one where every source may go
    to zero, as in the relaxation, so such a site is infeasible at every
    load and the instance has no schedule. Where the relaxation is
    feasible nothing is claimed."""
    ev = pool.evaluate(inst.pue * inst.idle[:, None], None)
    return [unpowered_message(inst, int(s)) for s in np.flatnonzero(~ev.feasible)]


def preflight(state: RunState[Any], pool) -> bool:
    """The proofs of infeasibility a decomposition runs before its first
    iteration, cheapest first: a required job that fits no site
    (closed form), a carbon budget below the emissions floor (closed form),
    a site that cannot power its idle load (:func:`pool_unpowered_sites`). On a
    proof it sets the run's stop and diagnosis and returns False: without
    one the Lagrangian's dual is unbounded and its bound falls without end."""
    inst = state.inst
    static = static_required_job_problems(inst)
    if static:
        state.stop, state.diagnosis = TC.INFEASIBLE, static
        return False
    proof = budget_below_least_emissions(inst)
    if proof is not None:
        state.stop, state.diagnosis = TC.BUDGET_INFEASIBLE, proof.messages
        return False
    unpowered = pool_unpowered_sites(inst, pool)
    if unpowered:
        state.stop, state.diagnosis = TC.INFEASIBLE, unpowered
        return False
    return True


def finish(state: RunState[Any], pool) -> Result:
    """End a run: status from the stop reason and the gap, a diagnosis if
    no schedule was found, the summary line, and the checked result."""
    inst, opts = state.inst, state.opts
    stop = state.stop or TC.STALLED
    state.checkpoint(force=True)
    stats = {**state.stats, "iterations": state.iteration, "resumed_after": state.resumed_from, "ranks": pool.size,
             "stop": stop.value, "peak_memory_mb_per_rank": pool.peak_memory_mb(),
             "trace": state.trace, "rank_load_s": pool.loads().tolist(), "sites_per_rank": pool.sites_per_rank(),
             "energy_respreads": pool.respreads, "energy_site_moves": pool.site_moves}
    if pool.block_owner is not None:  # the site blocks' own spread, and how many moved on measured times
        stats.update(site_blocks_per_rank=np.bincount(pool.block_owner, minlength=pool.size).tolist(),
                     site_block_moves=pool.block_moves)
    timings = dict(state.timings)
    bound = state.bound if np.isfinite(state.bound) else None
    if state.best is None:
        status, msgs, facts = _no_schedule(state, stop)
        timings["total_s"] = state.clock.elapsed()
        state.log.note(f"{state.method}: {status.value}, no feasible schedule; " + " ".join(msgs))
        return finalize(inst, Solution.empty(inst, state.method, status), bound=bound, timings=timings,
                        stats={**stats, **facts}, diagnosis=msgs)
    # the status rests on the schedule's own value, not on what the method claimed for it
    true_obj = evaluate(inst, state.best.solution).objective
    if abs(true_obj - state.best.objective) > 1e-6 * max(1.0, abs(true_obj)):
        state.log.note(f"{state.method}: the incumbent's value as the method computed it, "
                       f"{state.best.objective:,.4f}, is not its evaluation, {true_obj:,.4f}; the evaluation counts "
                       "(please report this)")
    gap = relative_gap(bound, true_obj)
    if gap is not None and gap <= opts.gap:
        status = SolutionStatus.OPTIMAL
    elif stop is TC.TIME_LIMIT:
        status = SolutionStatus.TIME_LIMIT
    elif stop is TC.INTERRUPTED:
        status = SolutionStatus.INTERRUPTED
    else:
        status = SolutionStatus.FEASIBLE
    if stop is TC.INTERRUPTED:
        state.log.note(f"{state.method}: {interrupts.reason() or 'stop requested'}; writing the best schedule so far")
    sol = state.best.solution
    sol.method, sol.status = state.method, status.value
    stats["incumbent_value"] = state.best.objective
    timings["total_s"] = state.clock.elapsed()
    res = finalize(inst, sol, bound=bound, timings=timings, stats=stats, diagnosis=state.diagnosis)
    if state.write_incumbent(final=res.solution):
        res.written_to = state.opts.incumbent_file
    state.log.note(f"{state.method} {status.value} ({stop.value}): objective {res.objective:,.4f}, bound "
                   f"{bound if bound is not None else float('nan'):,.4f}, gap "
                   f"{res.gap if res.gap is not None else float('nan'):.3e}, {state.iteration} iterations, "
                   f"{timings['total_s']:.2f} s")
    return res


def _no_schedule(state: RunState[Any], stop: TC) -> tuple[SolutionStatus, list[str], dict]:
    """Status and words for a run that ended without a schedule."""
    if stop in (TC.INFEASIBLE, TC.BUDGET_INFEASIBLE):
        return SolutionStatus(stop.value), state.diagnosis, {}
    if stop is TC.INTERRUPTED:
        return SolutionStatus.INTERRUPTED, ["interrupted before any feasible schedule was found"], {}
    left = state.clock.left()
    if left is not None and left < 1.0:
        return SolutionStatus.TIME_LIMIT, [f"stopped ({stop.value}) before any feasible schedule was found"], {}
    d = diagnose(state.inst, time_limit=left)
    if d.status is not None:
        return d.status, d.messages, d.facts
    return (SolutionStatus.TIME_LIMIT if stop is TC.TIME_LIMIT or d.timed_out else SolutionStatus.NO_SOLUTION,
            [f"stopped ({stop.value}) before any feasible schedule was found", *d.messages], d.facts)
