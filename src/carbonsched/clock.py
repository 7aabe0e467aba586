"""The wall-clock budget of a run.

A :class:`Clock` starts when the command (or the ``solve`` call) starts and
is handed down to every step -- build, calibration, recovery, polish,
diagnosis -- so that each takes what is left of one budget, not a budget of
its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["Clock"]


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

    def cap(self, seconds: float | None, reserve: float = 0.0) -> float | None:
        """The smaller of ``seconds`` and what is left (None: neither limits)."""
        left = self.left(reserve)
        if seconds is None:
            return left
        return seconds if left is None else min(seconds, left)
