"""The exact endgame's primal search, on the ranks that would wait.

On several ranks the exact endgame's MILP runs on rank 0 alone (without
``endgame_race``); the other ranks search for schedules meanwhile, on
their own copy of the full fixed model, and the best schedule of all is
kept (:mod:`.race` carries the messages). A searching rank reports no
bound: its MILPs are restricted, so their bounds hold for nothing global,
and the run's bound is rank 0's alone.

One pass of the search (:func:`search_pass`), repeated with the best
schedule so far while time is left and a pass gains:

1. the LP relaxation of the exact endgame's MILP (job binaries within
   its upper bounds, committed units relaxed): its support, the triples
   it runs at all, with the start's, are the pass's triples;
2. a MILP over those triples with the committed units' on/off relaxed,
   from the start, HiGHS's heuristics at ``effort`` (the exact endgame's
   :data:`~.endgame.ENDGAME_HEURISTIC_EFFORT`; a RINS-like neighbourhood:
   which jobs run, where and when);
3. its schedule dispatched at the best commitment rounded from its relaxed
   dispatch (:func:`~.recovery.best_commitment`, LPs).

Why: on the budget-binding 10 x 168 x 60 case on a 2-core Intel Xeon at
2.8 GHz, HiGHS spends the exact endgame's whole 160 s in root cut
separation (5-6 s a round) and finds nothing better than its start
(4,535,308). The same MILP over the LP's 190 support triples, units
integer, also ends its 90 s at the root with nothing better. With the
units relaxed its root ends after 55 s and RINS finds a schedule worth
4,613,782 relaxed, 4,595,714 at the rounded commitment, where the
dispatch MILP of that schedule reaches 4,598,171 in 55 s.

The schedule found depends on the number of ranks (one rank searches
nothing): the bound and the certified gap's meaning do not.

A limit: HiGHS calls the interrupt callback, which polls for rank 0's
end, between its steps but not inside its sub-MIP heuristics, and a
searching rank may be in one (RINS: 20 s on the case above) when rank 0
ends early (its gap reached, or an interrupt). Rank 0 then waits for it:
12-17 s past the stop in standalone passes on that case, 33 s after a
Ctrl-C in a 2-rank run. Time limits held in every run measured (the
budget-binding runs ended at 229.5-234.1 s of 240): the searching rank's
MILP ends :data:`SEARCH_COMMIT_S` before rank 0's, and the callback
stops it before a step as long as its longest so far; a first long
sub-MIP near the end could still run past it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..fixed import FixedScheduleModel
from .recovery import best_commitment

__all__ = ["SEARCH_COMMIT_S", "SEARCH_MIN_S", "SUPPORT_ABOVE", "SearchOutcome", "search", "search_pass"]

#: a triple is in the LP's support where the LP runs it above this share
SUPPORT_ABOVE = 1e-6
#: seconds kept back from a pass's MILP for the commitment's LPs after it
SEARCH_COMMIT_S = 1.0
#: a pass is begun only with at least these seconds left
SEARCH_MIN_S = 3.0


@dataclass
class SearchOutcome:
    """The search's best schedule: its objective ($, the full model's, as
    HiGHS reports it) and the full model's column vector (None: none
    found); ``passes``: the passes run; ``seconds``: wall clock."""

    objective: float | None
    x: np.ndarray | None
    passes: int
    seconds: float


def search_pass(fx: FixedScheduleModel, upper: np.ndarray, start_x: np.ndarray, start_triples: np.ndarray,
                floor: float, *, time_limit: float | None, seed: int, effort: float | None,
                stop: Callable[[], bool] | None = None) -> tuple[float | None, np.ndarray | None]:
    """One pass of the module docstring from a feasible start (``start_x``,
    the full model's column vector of the schedule ``start_triples``)
    within ``upper`` [triples] (the job binaries' upper bounds, the lower
    ones 0) in ``time_limit`` seconds (None: none). ``seed`` and
    ``effort``: HiGHS's random seed and heuristic effort; ``stop``: a poll
    that ends the pass's MILP. Returns (objective $, column vector) of the
    schedule it ends with, or (None, None) where it found none (no time,
    the LP or MILP gave nothing, or the MILP's schedule, units relaxed, is
    worth no more than ``floor`` $: no commitment of it can beat that, so
    none is tried)."""
    t0 = time.perf_counter()

    def left() -> float | None:
        return None if time_limit is None else time_limit - (time.perf_counter() - t0)

    nk = fx.x_cols.size
    lower = np.zeros(nk)
    sol, _, _ = fx.solve_bounds(lower, upper, integer_x=False, integer_units=False, time_limit=left(),
                                method="search")
    if sol is None:
        return None, None
    inner = (fx.x_values() > SUPPORT_ABOVE).astype(float) * (np.asarray(upper) > 0)
    inner[np.asarray(start_triples, dtype=int)] = 1.0
    limit = left()
    if limit is not None:
        limit -= SEARCH_COMMIT_S
        if limit < 0.5:
            return None, None
    sol, relaxed, _ = fx.solve_bounds(lower, inner, integer_units=False, start=start_x, time_limit=limit,
                                      heuristic_effort=effort, seed=seed, stop=stop, method="search")
    if sol is None or relaxed is None or relaxed <= floor + 1e-9 * max(1.0, abs(floor)):
        return None, None
    starts = np.flatnonzero(fx.x_values() > 0.5)
    rest = left()
    _, obj, x = best_commitment(fx, starts, sol.sites["generator_mw"],
                                time_limit=None if rest is None else max(rest, 0.1), method="search")
    return obj, x


def search(fx: FixedScheduleModel, upper: np.ndarray, start_x: np.ndarray, start_triples: np.ndarray,
           start_objective: float, *, time_limit: float | None, seed: int, effort: float | None,
           stop: Callable[[], bool]) -> SearchOutcome:
    """Passes of :func:`search_pass`, each from the best schedule so far
    (at first the start, worth ``start_objective`` $), while ``stop()`` is
    False, at least :data:`SEARCH_MIN_S` of ``time_limit`` seconds (None:
    none) are left and the last pass gained. The outcome holds a schedule
    only where it beats the start."""
    t0 = time.perf_counter()
    best_obj, best_x, best_triples = float(start_objective), start_x, np.asarray(start_triples, dtype=int)
    found: np.ndarray | None = None
    passes = 0
    while not stop():
        left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
        if left is not None and left < SEARCH_MIN_S:
            break
        passes += 1
        obj, x = search_pass(fx, upper, best_x, best_triples, best_obj, time_limit=left,
                             seed=seed + 7 * (passes - 1), effort=effort, stop=stop)
        if obj is None or x is None or obj <= best_obj + 1e-9 * max(1.0, abs(best_obj)):
            break
        best_obj, best_x, found = obj, x, x
        best_triples = np.flatnonzero(fx.x_values(x) > 0.5)
    return SearchOutcome(best_obj if found is not None else None, found, passes, time.perf_counter() - t0)
