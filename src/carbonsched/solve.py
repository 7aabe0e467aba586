"""Solving: the monolithic reference and the method switch.

``solve(inst, method=...)`` is the one entry point the CLI, the study and
the tests use; decompositions and baselines register themselves in
:data:`METHODS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from . import highs
from .diagnose import diagnose
from .instance import Instance
from .model import build_monolithic, extract_solution
from .result import Result, finalize
from .solution import Solution

__all__ = ["METHODS", "SolveOptions", "solve", "solve_monolithic"]


@dataclass(frozen=True)
class SolveOptions:
    """Options shared by all methods. ``gap`` is the relative gap at which
    to stop (HiGHS ``mip_rel_gap`` for the monolithic model), ``time_limit``
    in seconds (None: none), ``threads`` for HiGHS (None: its default)."""

    time_limit: float | None = None
    gap: float = 1e-4
    threads: int | None = None
    log: bool = False
    max_iterations: int = 200
    verbose: bool = True
    extra: tuple = ()

    def get(self, key: str, default=None):
        return dict(self.extra).get(key, default)


def solve_monolithic(inst: Instance, opts: SolveOptions = SolveOptions()) -> Result:
    """Build the full MILP, solve it with HiGHS, and report."""
    t0 = time.perf_counter()
    m = build_monolithic(inst)
    t_build = time.perf_counter() - t0
    p = highs.compile_model(m)
    info = highs.solve(p, time_limit=opts.time_limit, mip_gap=opts.gap, threads=opts.threads, log=opts.log)
    timings = {"build_s": t_build, "translate_s": p.compile_s, "solve_s": info.solve_s}
    stats = {"binaries": int(p.integer_cols.size), "columns": p.num_col, "rows": p.num_row,
             "nodes": info.nodes, "highs_status": info.raw_status}
    if not info.has_solution:
        if info.termination == "infeasible":
            status, msgs, facts = diagnose(inst, time_limit=opts.time_limit or 60.0)
            stats.update(facts)
        else:
            status, msgs = "time_limit", [f"no feasible solution found before the time limit ({info.raw_status})"]
        timings["total_s"] = time.perf_counter() - t0
        return finalize(inst, Solution.empty(inst, "monolithic", status), bound=info.bound, timings=timings,
                        stats=stats, diagnosis=msgs)
    p.load_into_pyomo()
    status = "optimal" if info.termination == "optimal" else "time_limit"
    sol = extract_solution(m, inst, "monolithic", status)
    stats["solver_objective"] = info.objective
    timings["total_s"] = time.perf_counter() - t0
    return finalize(inst, sol, bound=info.bound, timings=timings, stats=stats)


METHODS: dict[str, Callable[[Instance, SolveOptions], Result]] = {"monolithic": solve_monolithic}


def solve(inst: Instance, method: str = "monolithic", opts: SolveOptions = SolveOptions()) -> Result:
    """Solve ``inst`` with the named method (see :data:`METHODS`)."""
    _register_optional_methods()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(sorted(METHODS))}")
    return METHODS[method](inst, opts)


def _register_optional_methods() -> None:
    """Import the modules that add methods (decompositions, baselines)."""
    import importlib

    for mod in ("carbonsched.decomposition.benders", "carbonsched.decomposition.lagrangian",
                "carbonsched.baselines"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
