"""The method registry and the one entry point, :func:`solve`.

:data:`METHODS` lists every method with the options class it takes; it is
complete as soon as ``carbonsched`` is imported. ``solve(inst, method)``
builds that method's options from what it is given, starts the clock, and
runs the method. Under ``mpiexec`` the decompositions use every rank: rank
0 gets the :class:`~carbonsched.result.Result`, every other rank a
:class:`~carbonsched.result.WorkerReport` once the pool closes; the other
methods run on rank 0 alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .baselines import solve_compute_only, solve_energy_only
from .clock import Clock
from .config import BendersOptions, LagrangianOptions, SolveOptions, make_options
from .decomposition.benders import solve_benders
from .decomposition.lagrangian import solve_lagrangian
from .decomposition.pool import comm_rank
from .errors import OptionError
from .instance import Instance
from .monolithic import solve_monolithic
from .result import Result, WorkerReport

__all__ = ["METHODS", "Method", "solve"]


@dataclass(frozen=True)
class Method:
    """A registered method: its runner, its options class, whether it uses
    every MPI rank, and a one-line description."""

    name: str
    run: Callable[..., Result | WorkerReport]
    options: type[SolveOptions]
    parallel: bool
    summary: str


METHODS: Mapping[str, Method] = MappingProxyType({m.name: m for m in (
    Method("monolithic", solve_monolithic, SolveOptions, False, "the full MILP in HiGHS (the reference)"),
    Method("benders", solve_benders, BendersOptions, True,
           "multi-cut Benders: compute master, site energy subproblems over MPI"),
    Method("lagrangian", solve_lagrangian, LagrangianOptions, True,
           "Lagrangian relaxation of power, carbon and capacity; bundle dual update; primal recovery"),
    Method("energy-only", solve_energy_only, SolveOptions, False,
           "baseline: energy-unaware compute rule, then optimal dispatch"),
    Method("compute-only", solve_compute_only, SolveOptions, False,
           "baseline: compute optimised on grid prices, then the passive energy rule"),
)})


def solve(inst: Instance, method: str = "monolithic", options: SolveOptions | None = None, *, comm: Any = None,
          clock: Clock | None = None, **kwargs: Any) -> Result | WorkerReport:
    """Solve ``inst`` with ``method`` (a name in :data:`METHODS`).

    ``options``: the method's options object (or a :class:`SolveOptions`,
    whose shared fields carry over); keyword arguments override single
    options (``solve(inst, "benders", gap=1e-3, stabilize="none")``).
    ``comm``: an MPI communicator for the decompositions (default
    ``COMM_WORLD``). ``clock``: a running :class:`~carbonsched.clock.Clock`
    when the time budget started earlier (the CLI starts it before reading
    the instance); by default it starts now with ``options.time_limit``.

    Returns the :class:`Result` on rank 0 (and in a serial run); on the
    other ranks of a decomposition a :class:`WorkerReport`.
    """
    spec = METHODS.get(method)
    if spec is None:
        raise OptionError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    opts = make_options(spec.options, options, **kwargs)
    clock = clock or Clock(opts.time_limit)
    if not spec.parallel:
        rank = comm_rank(comm)
        if rank != 0:
            return WorkerReport(rank=rank, method=method, sites=[], busy_s=0.0)
        return spec.run(inst, opts, clock=clock)
    return spec.run(inst, opts, clock=clock, comm=comm)
