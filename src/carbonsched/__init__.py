"""carbonsched: carbon-aware compute-power scheduling of geo-distributed AI
data centres that run their own microgrids.

Quick use::

    from carbonsched import load_instance, solve
    res = solve(load_instance("paper-default"), "monolithic")
    print(res.objective, res.bound, res.gap)
"""

from .check import check_solution, evaluate
from .errors import CarbonschedError, InstanceError, SolutionFormatError
from .instance import Instance, load_instance, parse_instance
from .result import Result
from .solution import Solution, read_solution, write_solution
from .solve import METHODS, SolveOptions, solve

__version__ = "0.1.0"
__all__ = [
           "METHODS",
           "CarbonschedError",
           "Instance",
           "InstanceError",
           "Result",
           "Solution",
           "SolutionFormatError",
           "SolveOptions",
           "check_solution",
           "evaluate",
           "load_instance",
           "parse_instance",
           "read_solution",
           "solve",
           "write_solution",
]
