"""The monolithic MILP of MODEL.md: compute block + one energy block per
site, linked by the power balance and the carbon budget.

The physics lives in :mod:`carbonsched.compute` and
:mod:`carbonsched.energy`; this module only wires them together and reads
a solved model back into a :class:`~carbonsched.solution.Solution`.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from .clock import Clock
from .compute import build_compute, compute_arrays
from .energy import build_site_energy, site_arrays
from .highs import gc_paused
from .instance import Instance
from .solution import SITE_SERIES, Solution

__all__ = ["BUILD_S_PER_ELEMENT", "MB_PER_ELEMENT", "available_memory_mb", "build_monolithic", "estimate_build_s",
           "extract_solution", "memory_check", "model_elements", "model_size"]


def build_monolithic(inst: Instance, *, relax: bool = False, with_budget: bool = True,
                     capacity: bool = True, job_load: bool = False, clock: Clock | None = None) -> pyo.ConcreteModel:
    """The full-horizon model maximising OB. ``relax=True`` gives its LP
    relaxation in the job binaries; ``with_budget=False`` drops the carbon
    budget row (the model keeps ``m.total_emissions`` either way);
    ``job_load=True`` has no job columns, the training load enters as fixed
    columns ``m.compute.run[s, t]`` (see :func:`~carbonsched.compute.build_compute`).
    With a ``clock``, the build stops (:class:`~carbonsched.clock.BudgetExhausted`)
    between blocks once the time is up."""
    if clock is not None:
        clock.check("building the model", needs=estimate_build_s(inst, job_load=job_load))
    with gc_paused():
        m = pyo.ConcreteModel(name=inst.name)
        m.compute = pyo.Block()
        build_compute(m.compute, inst, relax=relax, capacity=capacity, job_load=job_load)
        m.site = pyo.Block(range(inst.S))
        for s in range(inst.S):
            if clock is not None:
                clock.check("building the model")
            build_site_energy(m.site[s], inst, s)
        m.link = pyo.Constraint(range(inst.S), range(inst.H),
                                rule=lambda _m, s, t: _m.site[s].supplied[t] == _m.compute.P[s, t])
        m.total_emissions = pyo.Expression(expr=sum(m.site[s].emissions for s in range(inst.S)))
        if with_budget and inst.budget is not None:
            m.budget = pyo.Constraint(expr=m.total_emissions <= float(inst.budget))
        m.obj = pyo.Objective(expr=m.compute.value - sum(m.site[s].cost for s in range(inst.S)),
                              sense=pyo.maximize)
    return m


def extract_solution(m: pyo.ConcreteModel, inst: Instance, method: str, status: str) -> Solution:
    """Read the variable values of a solved monolithic-shaped model."""
    started, y = compute_arrays(m.compute, inst)
    sites = {k: np.zeros((inst.S, inst.H + 1) if k == "soc_mwh" else (inst.S, inst.H)) for k in SITE_SERIES}
    for s in range(inst.S):
        for k, a in site_arrays(m.site[s], inst, s).items():
            sites[k][s] = a
    training = [(inst.job_ids[j], inst.site_ids[s], t) for j, s, t in started]
    return Solution(inst.name, method, status, None, None, None, None, training, y, sites)


#: seconds to build one column or row of the monolithic model in Pyomo, measured on the 2-core development
#: machine (medium: 3.7 s for about 80,000 columns and rows); used to refuse a build that cannot finish in time
BUILD_S_PER_ELEMENT = 5e-5


def estimate_build_s(inst: Instance, *, job_load: bool = False) -> float:
    """Predicted seconds to build the monolithic model (see BUILD_S_PER_ELEMENT)."""
    return BUILD_S_PER_ELEMENT * model_elements(inst, job_load=job_load)


#: peak resident MB per model element (column or row) while building and translating the monolithic model,
#: measured on `large` (3,790 MB for 651,562 elements; scripts/build_memory.py)
MB_PER_ELEMENT = 5.8e-3


def available_memory_mb() -> float:
    """Memory the kernel says is available now (MB; /proc/meminfo
    MemAvailable), inf where that cannot be read."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("inf")


def memory_check(inst: Instance, *, job_load: bool = False, share: float = 0.5) -> tuple[bool, float, float]:
    """(fits, predicted peak MB, available MB): whether building the
    monolithic model (``job_load``: without job columns) is predicted
    (:data:`MB_PER_ELEMENT`) to take at most ``share`` of the memory
    available now."""
    need = MB_PER_ELEMENT * model_elements(inst, job_load=job_load)
    have = available_memory_mb()
    return need <= share * have, need, have


def model_elements(inst: Instance, *, job_load: bool = False) -> int:
    """Columns + rows of the monolithic model (``job_load``: without the
    job columns and their assignment rows, with S x H load columns)."""
    size = model_size(inst)
    n = size["variables"] + size["constraints"]
    if job_load:
        n -= size["job_site_start_triples"] + len(set(inst.triples[0].tolist())) - inst.S * inst.H
    return int(n)


def model_size(inst: Instance) -> dict[str, int]:
    """Model sizes without building it (fast, for ``carbonsched info``)."""
    jj, _, _ = inst.triples
    rr, _ = inst.region_pairs
    H, S = inst.H, inst.S
    nb = int(inst.has_batt.sum())
    ng = int(inst.has_gen.sum())
    nc = int(inst.committed.sum())
    npk = int((inst.pc > 0).sum())
    binaries = jj.size + nc * H
    cont = rr.size * H + S * 3 * H + nb * (3 * H) + ng * H + npk
    rows = (len(set(jj.tolist())) + len({int(r) for r in rr}) * H + S * H  # assign, serve, capacity
            + S * H  # link
            + nb * (H + 1) + nc * 2 * H + npk * H + (1 if inst.budget is not None else 0))
    return {"binaries": int(binaries), "continuous": int(cont), "variables": int(binaries + cont),
            "constraints": int(rows), "job_site_start_triples": int(jj.size),
            "region_site_pairs": int(rr.size)}
