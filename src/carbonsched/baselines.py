"""The paper's baselines (MODEL.md section 6), scored by the same OB.

- ``energy-only``: an energy-unaware compute rule (jobs by value per MWh,
  required first, earliest start at the first allowed site with room;
  inference to the lowest-latency eligible site with room, then the next),
  then the energy dispatch optimised for that fixed load, budget enforced.
- ``compute-only``: compute optimised as if every site drew all its power
  from the grid (no battery, generator, renewables or export; grid price,
  grid intensity, the budget applied to that), then the passive energy
  rule: renewables first, surplus exported up to the limit and the rest
  curtailed, deficit imported, the generator only where import would
  exceed its limit, battery idle.

A baseline whose fixed load cannot meet the budget or the power balance is
reported with status ``budget_infeasible`` / ``infeasible`` and its
emissions; its schedule is still in the file, so the checker names what it
breaks.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import highs
from .check import evaluate
from .clock import BudgetExhausted, Clock
from .config import SolveOptions
from .constants import SolutionStatus
from .constants import TerminationCondition as TC
from .derived import facility_load
from .fixed import FixedScheduleModel
from .instance import Instance
from .monolithic import solve_monolithic
from .result import Result, finalize, write_final, write_in_progress
from .solution import SITE_SERIES, Solution

__all__ = [
    "energy_unaware_schedule",
    "grid_only_view",
    "passive_dispatch",
    "solve_compute_only",
    "solve_energy_only",
]


def energy_unaware_schedule(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    """The energy-only compute rule. Returns (triple indices, y [pairs, H])."""
    jj, ss, tt = inst.triples
    room = inst.cap[:, None] - inst.idle[:, None] + np.zeros((inst.S, inst.H))
    mwh = inst.pow * inst.dur * inst.dt
    order = sorted(range(inst.J), key=lambda j: (not inst.required[j], -inst.val[j] / mwh[j], j))
    placed = []
    for j in order:
        ks = np.flatnonzero(jj == j)
        if ks.size == 0:
            continue
        # earliest start first, then the first allowed site in file order
        ks = ks[np.lexsort((ss[ks], tt[ks]))]
        d = int(inst.dur[j])
        for k in ks:
            s, t0 = ss[k], tt[k]
            if np.all(room[s, t0:t0 + d] >= inst.pow[j] - 1e-9):
                room[s, t0:t0 + d] -= inst.pow[j]
                placed.append(int(k))
                break
    rr, sr = inst.region_pairs
    y = np.zeros((rr.size, inst.H))
    for r in range(inst.R):
        ks = np.flatnonzero(rr == r)
        ks = ks[np.argsort(inst.lat[r, sr[ks]], kind="stable")]
        for t in range(inst.H):
            need = inst.L[r, t]
            for k in ks:
                if need <= 1e-12:
                    break
                s = sr[k]
                take = min(need, max(0.0, room[s, t]) / inst.f_inf[s])
                if take > 0:
                    y[k, t] = take
                    room[s, t] -= take * inst.f_inf[s]
                    need -= take
    return np.array(sorted(placed), dtype=int), y


def solve_energy_only(inst: Instance, opts: SolveOptions, *, clock: Clock | None = None) -> Result:
    """The energy-only baseline (MODEL.md section 6)."""
    clock = clock or Clock(opts.time_limit)
    starts, y = energy_unaware_schedule(inst)
    try:
        fm = FixedScheduleModel(inst, clock=clock)
    except BudgetExhausted as e:
        return finalize(inst, Solution.empty(inst, "energy-only", SolutionStatus.TIME_LIMIT), bound=None,
                        timings={"total_s": clock.elapsed()}, diagnosis=[str(e)])
    sol, _ = fm.solve(starts, y=y, method="energy-only", time_limit=clock.left())
    diag: list[str] = []
    if sol is not None:
        sol.status = SolutionStatus.FEASIBLE.value  # a heuristic schedule; its dispatch is optimal for that load
    elif fm.last_info is not None and not fm.last_info.infeasible:  # out of time (or interrupted), not a proof
        stopped = SolutionStatus.INTERRUPTED if fm.last_info.termination is TC.INTERRUPTED else SolutionStatus.TIME_LIMIT
        sol = Solution.empty(inst, "energy-only", stopped)
        diag = [f"energy-only: the dispatch for its fixed load ended {fm.last_info.raw_status} without a schedule"]
    else:
        _, sol, diag = _explain_fixed_failure(inst, fm, starts, y, "energy-only", clock)
    res = finalize(inst, sol, bound=None, timings={"total_s": clock.elapsed()},
                   stats={"jobs_placed": len(starts)}, diagnosis=diag)
    return write_final(res, inst, opts.incumbent_file)


def _explain_fixed_failure(inst: Instance, fm: FixedScheduleModel, starts, y, method: str,
                           clock: Clock) -> tuple[str, Solution, list[str]]:
    """The fixed load failed: without the budget, is it powerable? (The
    same model, its budget row lifted: no rebuild.)"""
    if inst.budget is not None:
        row = fm.p.row_of(fm.m.budget)
        fm.p.h.changeRowBounds(row, -highs.INF, highs.INF)
        sol, _ = fm.solve(starts, y=y, method=method, time_limit=clock.left())
        fm.p.h.changeRowBounds(row, -highs.INF, float(inst.budget))
        if sol is not None:
            e = evaluate(inst, sol).emissions_t
            sol.status = "budget_infeasible"
            return "budget_infeasible", sol, [
                f"{method}: its fixed load needs {e:,.3f} t at least cost, above carbon_budget_t = {inst.budget:g} t"]
    sol = Solution.empty(inst, method, "infeasible")
    return "infeasible", sol, [f"{method}: its fixed load cannot be powered at some site and period "
                               "(import, renewables, generator and battery together fall short)"]


def grid_only_view(inst: Instance) -> Instance:
    """The instance as compute-only sees it: every site on the grid alone."""
    z = np.zeros(inst.S)
    return inst.with_changes(name=f"{inst.name}+grid-only", has_batt=np.zeros(inst.S, bool), e_max=z, ch_max=z,
                             dis_max=z, soc0=z, cd=z, has_gen=np.zeros(inst.S, bool), gmax=z, gmin=z,
                             ren=np.zeros_like(inst.ren), xmax=z)


def passive_dispatch(inst: Instance, P: np.ndarray) -> tuple[dict[str, np.ndarray], bool]:
    """The passive energy rule for facility load ``P`` [S,H] (MW). Returns
    (site arrays, balanced): renewables first; surplus exported up to the
    limit, the rest curtailed; deficit imported up to the limit; the
    generator covers the rest (at least its minimum once on; its excess
    displaces import); battery idle."""
    S, H = inst.S, inst.H
    to_load = np.minimum(inst.ren, P)
    exp = np.minimum(inst.ren - to_load, inst.xmax[:, None])
    ru = to_load + exp  # renewables used: to the load and to export; the rest is curtailed
    deficit = P - to_load
    imp = np.minimum(deficit, inst.imax[:, None])
    rest = deficit - imp
    gmax = np.where(inst.has_gen, inst.gmax, 0.0)[:, None]
    gmin = np.where(inst.committed, inst.gmin, 0.0)[:, None]
    g = np.where(rest > 1e-12, np.clip(rest, gmin, gmax), 0.0)
    imp = np.maximum(0.0, deficit - g)  # a generator held at its minimum displaces import
    balanced = bool(np.all(np.abs(imp + g + ru - exp - P) <= 1e-6 * (1 + P)))
    sites = {"grid_import_mw": imp, "grid_export_mw": exp, "battery_charge_mw": np.zeros((S, H)),
             "battery_discharge_mw": np.zeros((S, H)), "soc_mwh": np.repeat(inst.soc0[:, None], H + 1, axis=1),
             "renewable_used_mw": ru, "generator_mw": g, "generator_on": (g > 1e-12).astype(float)}
    assert set(sites) == set(SITE_SERIES)
    return sites, balanced


def solve_compute_only(inst: Instance, opts: SolveOptions, *, clock: Clock | None = None) -> Result:
    """The compute-only baseline (MODEL.md section 6). With
    ``opts.incumbent_file``, each improving schedule of its MILP is written
    there as it goes, passively dispatched on the real instance (one that the
    passive rule cannot power, or that breaks the budget, is not, nor one
    worth less on the instance than the last one written), and the final
    solution at the end."""
    clock = clock or Clock(opts.time_limit)
    view = grid_only_view(inst)
    path = opts.incumbent_file
    written = [-np.inf]  # the instance's objective ($) of the schedule in the file

    def publish(grid_sol: Solution, *, bound: float | None, wall_s: float) -> str | None:
        sol, diag, value = _passive_schedule(inst, grid_sol)
        if diag or value <= written[0]:
            return None  # the file keeps the better schedule it holds
        written[0] = value
        return write_in_progress(inst, sol, path, bound=None, wall_s=wall_s)  # the view's bound bounds nothing here

    inner = solve_monolithic(view, replace(opts, incumbent_file=None), clock=clock,
                             publish=None if path is None else publish)
    if inner.objective is None:
        sol = Solution.empty(inst, "compute-only", inner.status)
        return finalize(inst, sol, bound=None, timings={"total_s": clock.elapsed()},
                        diagnosis=[f"compute-only (grid-only view): {d}" for d in inner.diagnosis])
    sol, diag, _ = _passive_schedule(inst, inner.solution)
    res = finalize(inst, sol, bound=None, timings={"total_s": clock.elapsed()},
                   stats={"grid_only_objective": inner.objective}, diagnosis=diag)
    return write_final(res, inst, path)


def _passive_schedule(inst: Instance, grid_sol: Solution) -> tuple[Solution, list[str], float]:
    """Compute-only's schedule of the instance from its grid-only view's
    solution ``grid_sol``: the same jobs and routing, the passive dispatch.
    Returns (solution, diagnosis, its objective $): status feasible and no
    diagnosis, or ``infeasible`` / ``budget_infeasible`` and why (objective
    -inf where the passive rule cannot power the load)."""
    sites, balanced = passive_dispatch(inst, facility_load(inst, grid_sol))
    sol = Solution(inst.name, "compute-only", "feasible", None, None, None, None, list(grid_sol.training),
                   grid_sol.inference.copy(), sites)
    if not balanced:
        sol.status = "infeasible"
        return sol, ["compute-only: the passive rule cannot power its load at some site and period"], -np.inf
    b = evaluate(inst, sol)
    e = b.emissions_t
    if inst.budget is not None and e > inst.budget * (1 + 1e-9) + 1e-9:
        sol.status = "budget_infeasible"
        return sol, [f"compute-only: the passive dispatch emits {e:,.3f} t, above carbon_budget_t = "
                     f"{inst.budget:g} t"], b.objective
    return sol, [], b.objective

