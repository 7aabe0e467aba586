"""Decompositions: Benders and Lagrangian over a shared MPI subproblem pool.

Importing a method's module registers it in :data:`carbonsched.solve.METHODS`.
"""

from .pool import SubproblemPool, lpt_assignment
from .subproblem import SiteSubproblem

__all__ = ["SiteSubproblem", "SubproblemPool", "lpt_assignment"]
