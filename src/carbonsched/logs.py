"""Logging: one ``carbonsched`` logger tree, quiet unless configured.

Library code logs through ``logging.getLogger(__name__)`` (children of
``carbonsched``); the package adds only a :class:`logging.NullHandler`, so
``solve()`` called from Python prints nothing unless the caller configures
logging. The CLI calls :func:`configure` once: messages go to standard
output, one flushed line each, and under MPI every rank's lines but rank
0's carry a ``[rank K]`` prefix.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

__all__ = ["LOGGER", "configure", "unconfigure"]

LOGGER = "carbonsched"


class _RankFilter(logging.Filter):
    """Adds ``record.rank_prefix``: '' on rank 0 (or serial), '[rank K] ' elsewhere."""

    def __init__(self, rank: int, size: int):
        super().__init__()
        self.prefix = f"[rank {rank}] " if size > 1 and rank != 0 else ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.rank_prefix = self.prefix
        return True


class _FlushingHandler(logging.StreamHandler):
    """A stream handler that survives a closed or broken stream (a pipe
    closed by ``head``): it stops writing instead of raising."""

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ValueError, OSError)):
            self.setStream(_NullStream())
            return
        super().handleError(record)


class _NullStream:
    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


def configure(level: int = logging.INFO, *, rank: int = 0, size: int = 1, stream: TextIO | None = None) -> logging.Handler:
    """Send ``carbonsched`` log records of ``level`` and above to ``stream``
    (default: standard output), with a per-rank prefix under MPI. Returns
    the handler (for :func:`unconfigure`)."""
    logger = logging.getLogger(LOGGER)
    handler = _FlushingHandler(stream if stream is not None else sys.stdout)
    handler.addFilter(_RankFilter(rank, size))
    handler.setFormatter(logging.Formatter("%(rank_prefix)s%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler


def unconfigure(handler: logging.Handler) -> None:
    """Undo :func:`configure`."""
    logger = logging.getLogger(LOGGER)
    logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
