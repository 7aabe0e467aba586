"""Infeasibility diagnosis in words: which job, which budget.

Called when a model is infeasible. It tells apart the two causes MODEL.md
allows -- required jobs that cannot all be placed, and a carbon budget
below the least emissions reachable -- and names them.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from . import highs
from .instance import Instance

__all__ = ["diagnose", "least_emissions", "max_supply", "static_required_job_problems"]


def max_supply(inst: Instance) -> np.ndarray:
    """[S,H] the most facility power a site's microgrid can deliver (MW)."""
    return (inst.imax[:, None] + inst.ren + np.where(inst.has_batt, inst.dis_max, 0.0)[:, None]
            + np.where(inst.has_gen, inst.gmax, 0.0)[:, None])


def static_required_job_problems(inst: Instance) -> list[str]:
    """Required jobs that fit no (site, start) even on an otherwise empty
    system: IT capacity or deliverable power too small."""
    out = []
    supply = max_supply(inst)
    for j in np.flatnonzero(inst.required):
        ok_cap, ok_pow = False, False
        for s in np.flatnonzero(inst.allowed[j]):
            if inst.idle[s] + inst.pow[j] > inst.cap[s] + 1e-9:
                continue
            ok_cap = True
            need = inst.pue[s] * (inst.idle[s] + inst.pow[j])
            fits = need <= supply[s] + 1e-9
            d = int(inst.dur[j])
            for t0 in range(int(inst.rel[j]), int(inst.dl[j]) - d + 1):
                if fits[t0:t0 + d].all():
                    ok_pow = True
                    break
            if ok_pow:
                break
        jid = inst.job_ids[j]
        if not ok_cap:
            out.append(f"required job {jid!r} ({inst.pow[j]:g} MW) exceeds the free IT capacity "
                       f"(it_capacity_mw - idle_it_mw) of every site it may use")
        elif not ok_pow:
            out.append(f"required job {jid!r}: no allowed site can deliver its facility power "
                       f"(pue x (idle + {inst.pow[j]:g} MW)) for {int(inst.dur[j])} periods in its window "
                       f"[{int(inst.rel[j])}, {int(inst.dl[j])})")
    return out


def least_emissions(inst: Instance, *, time_limit: float | None = 60.0) -> tuple[float | None, float | None]:
    """Least emissions (tCO2) reachable with the required jobs and the idle
    load, budget ignored. Returns (best found, proven lower bound); (None,
    None) if even that is infeasible."""
    from .model import build_monolithic

    m = build_monolithic(inst, with_budget=False)
    m.obj.deactivate()
    m.emin = pyo.Objective(expr=m.total_emissions, sense=pyo.minimize)
    p = highs.compile_model(m)
    info = highs.solve(p, time_limit=time_limit, mip_gap=1e-6)
    if not info.has_solution:
        return None, None
    return info.objective, info.bound


def _unplaceable_required(inst: Instance, time_limit: float | None) -> list[str]:
    """Make required jobs optional, maximise how many run (no budget), and
    name those left out."""
    from .model import build_monolithic

    relaxed = inst.with_changes(required=np.zeros(inst.J, bool), budget=None)
    m = build_monolithic(relaxed, with_budget=False)
    m.obj.deactivate()
    jj, _, _ = inst.triples
    req_k = [k for k in range(jj.size) if inst.required[jj[k]]]
    m.nreq = pyo.Objective(expr=sum(m.compute.x[k] for k in req_k), sense=pyo.maximize)
    p = highs.compile_model(m)
    info = highs.solve(p, time_limit=time_limit)
    if not info.has_solution:
        return ["even with no required jobs the system cannot power its idle load and inference: "
                "check it_capacity_mw/idle_it_mw against grid import_max_mw, renewables and generators"]
    p.load_into_pyomo()
    placed = {int(jj[k]) for k in req_k if (m.compute.x[k].value or 0) > 0.5}
    missing = [inst.job_ids[j] for j in np.flatnonzero(inst.required) if j not in placed]
    return [f"required jobs cannot all run together: at most {len(placed)} of "
            f"{int(inst.required.sum())} fit; left out: {', '.join(repr(j) for j in missing)}"]


def diagnose(inst: Instance, *, time_limit: float | None = 60.0) -> tuple[str, list[str], dict]:
    """Explain why ``inst`` has no feasible schedule.

    Returns (status, messages, facts) where status is 'budget_infeasible'
    when the carbon budget is the cause and 'infeasible' otherwise."""
    static = static_required_job_problems(inst)
    if static:
        return "infeasible", static, {}
    emin, ebound = least_emissions(inst, time_limit=time_limit)
    if emin is None:
        return "infeasible", _unplaceable_required(inst, time_limit), {}
    facts = {"least_emissions_t": emin, "least_emissions_bound_t": ebound}
    if inst.budget is not None and (ebound if ebound is not None else emin) > inst.budget - 1e-9:
        return "budget_infeasible", [
            f"carbon_budget_t = {inst.budget:g} t is below the least emissions reachable with the required "
            f"jobs and the idle load: {emin:.4g} t (proven >= {ebound:.4g} t)"], facts
    return "infeasible", ["the model is infeasible, but neither a required job nor the carbon budget alone "
                          f"explains it (least emissions {emin:.4g} t <= budget); please report this instance"], facts
