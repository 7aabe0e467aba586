"""Exceptions raised by carbonsched.

Every error a user can cause carries a message that names what is wrong in
their own terms (a field path, a job id, a budget), never a solver code.
"""

from __future__ import annotations


class CarbonschedError(Exception):
    """Base class for all errors carbonsched raises on purpose."""


class InstanceError(CarbonschedError, ValueError):
    """An instance file breaks a rule of MODEL.md section 1.

    ``problems`` lists every broken rule as ``"path: message"``.
    """

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        head = f"invalid instance {source}" if source else "invalid instance"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head} ({len(self.problems)} problem(s)):\n{lines}")


class SolutionFormatError(CarbonschedError, ValueError):
    """A solution file cannot be read (missing keys, wrong lengths)."""
