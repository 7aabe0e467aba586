"""The wall-clock budget of a run.

A :class:`Clock` starts when the command (or the ``solve`` call) starts and
is handed down to every step -- build, calibration, recovery, polish,
diagnosis -- so that each takes what is left of one budget, not a budget of
its own.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

__all__ = ["BudgetExhausted", "Clock", "process_start"]


def process_start() -> float:
    """The ``time.perf_counter`` reading at which this process started, so
    that a command's budget includes the interpreter's start and the
    imports (Linux ``/proc``; elsewhere: now)."""
    try:
        with open("/proc/self/stat") as fh:
            after_name = fh.read().rsplit(")", 1)[1].split()
        start_ticks = int(after_name[19])  # field 22 of proc(5), counted from the state field (3)
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        age = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
        return time.perf_counter() - min(max(0.0, age), 3600.0)
    except (OSError, ValueError, IndexError):
        return time.perf_counter()


class BudgetExhausted(Exception):
    """The time budget ran out in the middle of a step that cannot be
    interrupted from outside (building or translating a model). Methods
    catch it and end with status ``time_limit``; it never reaches the user."""

    def __init__(self, stage: str):
        super().__init__(f"time limit reached while {stage}")
        self.stage = stage


@dataclass(frozen=True)
class Clock:
    """``limit`` seconds (None: no limit) from ``start`` (``time.perf_counter``)."""

    limit: float | None = None
    start: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.start

    def left(self, reserve: float = 0.0) -> float | None:
        """Seconds left, keeping ``reserve`` seconds back (None: no limit;
        never negative)."""
        if self.limit is None:
            return None
        return max(0.0, self.limit - reserve - self.elapsed())

    def expired(self, reserve: float = 0.0) -> bool:
        """True once no time is left (``reserve`` seconds kept back)."""
        return self.limit is not None and self.elapsed() >= self.limit - reserve

    def check(self, stage: str, *, needs: float = 0.0) -> None:
        """Raise :class:`BudgetExhausted` if the time is up, or if less than
        ``needs`` seconds (the predicted length of the next step) are left."""
        left = self.left()
        if left is not None and left <= needs:
            raise BudgetExhausted(stage)

    @property
    def finish_reserve(self) -> float:
        """Seconds a timed run keeps back at its end for its summary, the
        checker, memory figures and the write: 2% of the limit, at most
        2.5 s (measured on medium at 120 s: a decomposition ended 0.5-1.3 s
        past its limit with none, 0.16 s past it with 1.5 s; the monolithic
        solve at 15 s ended 0.47 s past it with none). 0 without a limit."""
        return 0.0 if self.limit is None else min(2.5, 0.02 * self.limit)

    def cap(self, seconds: float | None, reserve: float = 0.0) -> float | None:
        """The smaller of ``seconds`` and what is left (None: neither limits)."""
        left = self.left(reserve)
        if seconds is None:
            return left
        return seconds if left is None else min(seconds, left)
