"""carbonsched: carbon-aware compute-power scheduling of geo-distributed AI
data centres that run their own microgrids.

Quick use::

    import carbonsched as cs
    res = cs.solve(cs.load_instance("paper-default"), "monolithic", gap=1e-4)
    print(res.status, res.objective, res.bound, res.gap)

``solve`` is quiet; configure the ``carbonsched`` logger (or use the CLI)
to see its progress. Importing the package changes no global state.
"""

import logging

from .check import Breakdown, CheckReport, check_solution, evaluate
from .clock import Clock
from .config import BendersOptions, DecompositionOptions, LagrangianOptions, SolveOptions
from .constants import ExitCode, InfeasibilityCause, SolutionStatus, TerminationCondition
from .errors import (
    CarbonschedError,
    InstanceError,
    InstanceNotFoundError,
    OptionError,
    OutputError,
    SolutionFormatError,
    SolverError,
)
from .instance import Instance, load_instance, parse_instance, shipped_instances
from .methods import METHODS, Method, solve
from .result import Result, WorkerReport
from .solution import Solution, read_solution, write_solution

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.2.0"
__all__ = [
    "METHODS",
    "BendersOptions",
    "Breakdown",
    "CarbonschedError",
    "CheckReport",
    "Clock",
    "DecompositionOptions",
    "ExitCode",
    "InfeasibilityCause",
    "Instance",
    "InstanceError",
    "InstanceNotFoundError",
    "LagrangianOptions",
    "Method",
    "OptionError",
    "OutputError",
    "Result",
    "Solution",
    "SolutionFormatError",
    "SolutionStatus",
    "SolveOptions",
    "SolverError",
    "TerminationCondition",
    "WorkerReport",
    "check_solution",
    "evaluate",
    "load_instance",
    "parse_instance",
    "read_solution",
    "shipped_instances",
    "solve",
    "write_solution",
]
