"""A one-line-per-iteration log, like a MIP solver's (and mpi-sppy's hub).

Lines go to the ``carbonsched.trace`` logger at INFO: the CLI shows them
(one flushed line each), ``solve()`` from Python stays quiet unless the
caller configures logging.
"""

from __future__ import annotations

import logging

__all__ = ["IterationLog"]

_log = logging.getLogger("carbonsched.trace")

#: header labels that differ from the row keys
_LABELS = {"t": "time_s"}


def _fmt(key: str, v) -> str:
    if v is None:
        return "-"
    if key == "t":
        return f"{v:.1f}"
    if key == "gap":
        return f"{v:.3e}" if v == v else "-"
    if key.endswith("_s"):
        return f"{v:.3f}"
    if isinstance(v, float):
        if v == float("inf"):
            return "inf"
        return f"{v:,.2f}"
    return str(v)


class IterationLog:
    """``iter``, the given columns and the run's elapsed seconds
    (``t``, shown as ``time_s``), one line per iteration."""

    def __init__(self, columns: list[str], width: int = 14):
        self.columns = ["iter", *columns, "t"]
        self.width = width

    def _w(self, c: str) -> int:
        return 6 if c in ("iter", "phase", "cuts") else 9 if c == "t" else self.width

    def header(self, title: str) -> None:
        _log.info(title)
        _log.info(" ".join(f"{_LABELS.get(c, c):>{self._w(c)}}" for c in self.columns))

    def row(self, values: dict) -> None:
        _log.info(" ".join(f"{_fmt(c, values.get(c)):>{self._w(c)}}" for c in self.columns))

    def note(self, text: str) -> None:
        _log.info(text)
