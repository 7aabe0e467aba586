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

    def __reduce__(self):  # pickled whole (MPI broadcasts it from rank 0)
        return (type(self), (self.problems, self.source))


class SolutionFormatError(CarbonschedError, ValueError):
    """A solution file cannot be read (missing keys, wrong lengths)."""


class InstanceNotFoundError(CarbonschedError, FileNotFoundError):
    """An instance path that does not exist and names no shipped instance."""


class OptionError(CarbonschedError, ValueError):
    """An unknown option, an option of another method, or a value outside
    its domain; the message names the option."""


class OutputError(CarbonschedError, OSError):
    """The solution file (or a figure folder) cannot be written."""


class SolverError(CarbonschedError, RuntimeError):
    """HiGHS gave no usable verdict on a problem that must have one (a site
    subproblem, a master); the message names the problem and the status."""
