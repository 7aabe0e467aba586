"""Infeasibility diagnosis in words: which job, which budget.

Called when a model is infeasible. It tells apart the two causes MODEL.md
allows -- required jobs that cannot all be placed, and a carbon budget
below the least emissions reachable -- and names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo

from . import highs
from .clock import BudgetExhausted, Clock
from .constants import InfeasibilityCause, SolutionStatus
from .derived import emissions_floor, max_supply
from .instance import Instance
from .model import memory_check

__all__ = ["Diagnosis", "budget_below_least_emissions", "diagnose", "least_emissions", "static_required_job_problems",
           "unpowered_message", "unpowered_sites"]


@dataclass(frozen=True)
class Diagnosis:
    """Why an instance has no feasible schedule.

    ``status``: INFEASIBLE or BUDGET_INFEASIBLE once proven, None when the
    diagnosis could not tell (it ran out of time, or found the instance
    feasible after all); ``cause`` the reason as a value; ``messages`` in
    words; ``facts`` numbers behind them (least emissions, t)."""

    status: SolutionStatus | None
    cause: InfeasibilityCause
    messages: list[str]
    facts: dict = field(default_factory=dict)
    timed_out: bool = False


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


def least_emissions(inst: Instance, *, time_limit: float | None = None, clock: Clock | None = None
                    ) -> tuple[float | None, float | None, bool]:
    """Least emissions (tCO2) reachable with the required jobs and the idle
    load, budget ignored. Returns (best found, proven lower bound, proven
    infeasible): (None, None, True) when even that is infeasible, (None,
    bound, False) when time ran out first."""
    from .model import build_monolithic

    clock = clock or Clock(time_limit)
    t0 = clock.elapsed()
    m = build_monolithic(inst, with_budget=False, clock=clock)
    m.obj.deactivate()
    m.emin = pyo.Objective(expr=m.total_emissions, sense=pyo.minimize)
    p = highs.compile_model(m, clock=clock, build_s=clock.elapsed() - t0)
    info = highs.solve(p, time_limit=clock.left(), mip_gap=1e-6)
    if not info.has_solution:
        return None, info.bound, info.infeasible
    return info.objective, info.bound, False


def unpowered_message(inst: Instance, s: int) -> str:
    """The diagnosis of site ``s`` that cannot power its idle load."""
    return (f"sites[{s}] ({inst.site_ids[s]!r}) cannot power its idle load (idle_it_mw x pue) in any dispatch, "
            "even with no job and no inference served: check its grid import_max_mw, renewable_mw, generator "
            "and battery")


def unpowered_sites(inst: Instance, clock: Clock) -> list[str]:
    """One message per site whose energy LP (the shared site block,
    committed units relaxed, no budget) is infeasible at its idle load
    (idle IT x PUE): every source may go to zero there, so the site is
    infeasible at any load. The decompositions run the same test on their
    pool's site problems before they start."""
    from .decomposition.subproblem import SiteSubproblem

    P = inst.pue * inst.idle[:, None]
    out = []
    for s in range(inst.S):
        clock.check("the idle-load test of each site")
        if not SiteSubproblem(inst, s).evaluate(P[s], np.inf).feasible:
            out.append(unpowered_message(inst, s))
    return out


def _unplaceable_required(inst: Instance, clock: Clock) -> list[str] | None:
    """Make required jobs optional, maximise how many run (no budget), and
    name those left out (None: no answer in time)."""
    from .model import build_monolithic

    relaxed = inst.with_changes(required=np.zeros(inst.J, bool), budget=None)
    t0 = clock.elapsed()
    m = build_monolithic(relaxed, with_budget=False, clock=clock)
    m.obj.deactivate()
    jj, _, _ = inst.triples
    req_k = [k for k in range(jj.size) if inst.required[jj[k]]]
    m.nreq = pyo.Objective(expr=sum(m.compute.x[k] for k in req_k), sense=pyo.maximize)
    p = highs.compile_model(m, clock=clock, build_s=clock.elapsed() - t0)
    info = highs.solve(p, time_limit=clock.left())
    if not info.has_solution:
        if info.infeasible:
            return unpowered_sites(inst, clock) or [
                "even with no required jobs the system cannot power its idle load and inference: "
                "check it_capacity_mw/idle_it_mw against grid import_max_mw, renewables and generators"]
        return None
    p.load_into_pyomo()
    placed = {int(jj[k]) for k in req_k if (m.compute.x[k].value or 0) > 0.5}
    missing = [inst.job_ids[j] for j in np.flatnonzero(inst.required) if j not in placed]
    return [f"required jobs cannot all run together: at most {len(placed)} of "
            f"{int(inst.required.sum())} fit; left out: {', '.join(repr(j) for j in missing)}"]


def budget_below_least_emissions(inst: Instance) -> Diagnosis | None:
    """The cheap pre-solve proof: a carbon budget below a closed-form bound
    on the least reachable emissions is infeasible. None when the budget
    may be reachable or there is none. The bound is
    :func:`~carbonsched.derived.emissions_floor` (numpy, no model)."""
    if inst.budget is None:
        return None
    lb = float(emissions_floor(inst).sum())
    if lb <= inst.budget * (1 + 1e-9) + 1e-9:
        return None
    return Diagnosis(SolutionStatus.BUDGET_INFEASIBLE, InfeasibilityCause.CARBON_BUDGET, [
        f"carbon_budget_t = {inst.budget:g} t is below the least emissions reachable with the required jobs "
        f"and the idle load (proven >= {lb:.6g} t)"], {"least_emissions_bound_t": lb})


def diagnose(inst: Instance, *, time_limit: float | None = None) -> Diagnosis:
    """Explain why ``inst`` has no feasible schedule, within ``time_limit``
    seconds (None: no limit) in all."""
    clock = Clock(time_limit)
    static = static_required_job_problems(inst)
    if static:
        return Diagnosis(SolutionStatus.INFEASIBLE, InfeasibilityCause.REQUIRED_JOB_UNPLACEABLE, static)
    proof = budget_below_least_emissions(inst)
    if proof is not None:
        return proof
    fits, need, have = memory_check(inst)
    if not fits:
        return Diagnosis(None, InfeasibilityCause.UNDECIDED, [
            f"not diagnosed: its models would need about {need / 1024:.1f} GB, more than half of the "
            f"{have / 1024:.1f} GB available"])
    try:
        return _diagnose_by_models(inst, clock)
    except BudgetExhausted:
        return Diagnosis(None, InfeasibilityCause.UNDECIDED, ["the diagnosis ran out of time"], timed_out=True)


def _diagnose_by_models(inst: Instance, clock: Clock) -> Diagnosis:
    emin, ebound, proven = least_emissions(inst, clock=clock)
    if emin is None and not proven:
        facts = {"least_emissions_bound_t": ebound} if ebound is not None else {}
        if inst.budget is not None and ebound is not None and ebound > inst.budget * (1 + 1e-9) + 1e-9:
            return Diagnosis(SolutionStatus.BUDGET_INFEASIBLE, InfeasibilityCause.CARBON_BUDGET, [
                f"carbon_budget_t = {inst.budget:g} t is below the least reachable emissions (proven >= "
                f"{ebound:.6g} t)"], facts)
        return Diagnosis(None, InfeasibilityCause.UNDECIDED, ["the diagnosis ran out of time"], facts, timed_out=True)
    if emin is None:
        msgs = _unplaceable_required(inst, clock)
        if msgs is None:
            return Diagnosis(None, InfeasibilityCause.UNDECIDED, ["the diagnosis ran out of time"], timed_out=True)
        cause = (InfeasibilityCause.REQUIRED_JOBS_CONFLICT if msgs[0].startswith("required jobs cannot")
                 else InfeasibilityCause.IDLE_LOAD_UNPOWERED)
        return Diagnosis(SolutionStatus.INFEASIBLE, cause, msgs)
    facts = {"least_emissions_t": emin, "least_emissions_bound_t": ebound}
    if inst.budget is not None and (ebound if ebound is not None else emin) > inst.budget * (1 + 1e-9) + 1e-9:
        return Diagnosis(SolutionStatus.BUDGET_INFEASIBLE, InfeasibilityCause.CARBON_BUDGET, [
            f"carbon_budget_t = {inst.budget:g} t is below the least emissions reachable with the required "
            f"jobs and the idle load: {emin:.4g} t (proven >= {ebound:.4g} t)"], facts)
    return Diagnosis(None, InfeasibilityCause.UNEXPLAINED, [
        "neither a required job nor the carbon budget alone explains the lack of a schedule "
        f"(least emissions {emin:.4g} t <= budget)"], facts)
