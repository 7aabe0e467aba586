"""The exact endgame raced across ranks.

On several ranks, the exact endgame's MILP (every triple that
reduced-cost fixing left free, warm-started from the incumbent) runs on
rank 0 alone, one HiGHS thread, while the other ranks search for
schedules (:mod:`.endgame_search`); the messages below carry both. With
``endgame_race`` on, every rank solves the same MILP instead, on its own
copy of the full fixed model, with its own seed: rank ``r`` takes seed
``r``, so rank 0 keeps HiGHS's default. The path HiGHS's search takes, and
the schedule it ends with, depend on the seed (and on the start).

- The first rank to end its solve (its gap reached, its time up or an
  interrupt) tells the others, whose interrupt callbacks poll for that
  message (:func:`stop_poll`), and they stop.
- The race's schedule is the best rank's: the winner sends its column
  vector to rank 0, which reads it back through its own copy of the model.
- Its bound is the smallest of the ranks' bounds. Each is a bound on the
  same MILP, and the fixing argument makes it global as before.

It is off by default: it makes the answer depend on the number of ranks,
and it did not pay on this 2-core machine (2 ranks, measured):

- The budget-binding 10 x 168 x 60 case (5,675 triples free), 240 s: seed 1
  ended at 4,607,935 where seed 0 ended at 4,618,396, as alone. The race
  kept seed 0's schedule and seed 1's slightly smaller bound: 1.010%
  against 1.012%, in both of two runs. (HiGHS alone for 200 s: seed 7
  reached 4,620,971.)
- A generated 10 x 168 x 110 instance (8,786 triples), gap 1%: rank 1
  certified at 43.8 s, but rank 0 returned only at 53.7 s. HiGHS does not
  call the interrupt callback inside its sub-MIP heuristics, so a rank can
  answer the stop seconds late. The run took 56.6 s against 42.3 s for
  rank 0 alone.

The message protocol runs on a duplicate of the pool's communicator, so
no message of the race can match one of the pool's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["RaceEntry", "best_rank", "finish", "race_bound", "stop_poll"]

#: the tags of the race's messages: "my solve ended", and the winner's column vector
STOP_TAG, COLUMNS_TAG = 1, 2
#: seconds between two polls for another rank's end (an MPI_Iprobe each)
POLL_EVERY_S = 0.05


@dataclass(frozen=True)
class RaceEntry:
    """One rank's outcome: its schedule's objective and its bound ($, None
    where it has none) and its solve's wall-clock seconds."""

    objective: float | None
    bound: float | None
    seconds: float


def stop_poll(comm, *, every_s: float = POLL_EVERY_S) -> Callable[[], bool]:
    """A poll for the interrupt callback: True once another rank of
    ``comm`` has ended its solve (it stays True), checked at most every
    ``every_s`` seconds."""
    from mpi4py import MPI

    state = {"at": 0.0, "seen": False}

    def poll() -> bool:
        if not state["seen"]:
            now = time.perf_counter()
            if now - state["at"] >= every_s:
                state["at"] = now
                state["seen"] = bool(comm.Iprobe(source=MPI.ANY_SOURCE, tag=STOP_TAG))
        return bool(state["seen"])

    return poll


def best_rank(entries: list[RaceEntry]) -> int:
    """The rank whose schedule is best (the lowest such rank on a tie); -1
    where no rank has one."""
    best, where = -np.inf, -1
    for r, e in enumerate(entries):
        if e.objective is not None and e.objective > best:
            best, where = e.objective, r
    return where


def race_bound(entries: list[RaceEntry]) -> float | None:
    """The race's bound: the smallest finite bound of any rank (None where
    none has one)."""
    bounds = [e.bound for e in entries if e.bound is not None and np.isfinite(e.bound)]
    return min(bounds) if bounds else None


def finish(comm, entry: RaceEntry, x: np.ndarray | None) -> tuple[list[RaceEntry], np.ndarray | None]:
    """End this rank's part of the race (collective over ``comm``): tell
    every other rank that this solve has ended, take their messages that
    theirs have (one from each, so none is left behind), gather the
    entries on rank 0, and have the winner, where it is not rank 0, send
    its column vector ``x`` there. Returns on rank 0 (the entries by rank,
    the winner's column vector or None where rank 0 won or no rank has a
    schedule), on the others ([], None)."""
    from mpi4py import MPI

    me, n = comm.Get_rank(), comm.Get_size()
    sent = [comm.isend(None, dest=r, tag=STOP_TAG) for r in range(n) if r != me]
    for r in range(n):
        if r != me:
            comm.recv(source=r, tag=STOP_TAG)
    MPI.Request.waitall(sent)
    entries = comm.gather(entry, root=0)
    winner = comm.bcast(best_rank(entries) if me == 0 else None, root=0)
    columns = None
    if winner > 0 and me == winner:
        comm.send(x, dest=0, tag=COLUMNS_TAG)
    elif winner > 0 and me == 0:
        columns = comm.recv(source=winner, tag=COLUMNS_TAG)
    return (entries if me == 0 else []), columns
