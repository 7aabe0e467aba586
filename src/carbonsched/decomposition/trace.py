"""A one-line-per-iteration log, like a MIP solver's (and mpi-sppy's hub)."""

from __future__ import annotations

import sys

__all__ = ["IterationLog"]


def _fmt(key: str, v) -> str:
    if v is None:
        return "-"
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
    """Prints ``iter`` plus the given columns, one line per iteration, to
    stderr-free stdout (rank 0 only: the caller decides)."""

    def __init__(self, enabled: bool, columns: list[str], width: int = 14):
        self.enabled = enabled
        self.columns = ["iter"] + columns
        self.width = width

    def header(self, title: str) -> None:
        if not self.enabled:
            return
        print(title)
        print(" ".join(f"{c:>{6 if c in ('iter', 'phase', 'cuts') else self.width}}" for c in self.columns))
        sys.stdout.flush()

    def row(self, values: dict) -> None:
        if not self.enabled:
            return
        print(" ".join(f"{_fmt(c, values.get(c)):>{6 if c in ('iter', 'phase', 'cuts') else self.width}}"
                       for c in self.columns))
        sys.stdout.flush()

    def note(self, text: str) -> None:
        if self.enabled:
            print(text)
            sys.stdout.flush()
