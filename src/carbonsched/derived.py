"""Quantities derived from an instance (and a schedule), used by several
methods: what a site can deliver, what a job may use, window sums of
prices, a schedule's facility load and per-site costs.

Pure numpy functions of the :class:`~carbonsched.instance.Instance` arrays.
The checker (:mod:`carbonsched.check`) recomputes what it needs on its own,
on purpose: it must not share code with the methods it checks.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .instance import Instance
from .solution import Solution

__all__ = ["budget_shares", "emissions_floor", "facility_load", "inference_load", "job_room", "load_matrix",
           "max_supply", "schedule_load", "shares_around", "site_cost_floor", "site_costs", "site_emission_cap",
           "unserved_penalty", "window_sums"]


def max_supply(inst: Instance) -> np.ndarray:
    """[S,H] the most facility power a site's microgrid can deliver (MW):
    import limit + renewables + battery discharge + generator maximum."""
    return (inst.imax[:, None] + inst.ren + np.where(inst.has_batt, inst.dis_max, 0.0)[:, None]
            + np.where(inst.has_gen, inst.gmax, 0.0)[:, None])


def job_room(inst: Instance) -> np.ndarray:
    """[S,H] IT MW available to training jobs: capacity less idle, and no
    more than the site can power (max supply / pue less idle)."""
    power_room = max_supply(inst) / inst.pue - inst.idle[:, None]
    return np.maximum(0.0, np.minimum(inst.cap[:, None] - inst.idle[:, None], power_room))


def unserved_penalty(inst: Instance) -> float:
    """The penalty ($) if no inference demand were served: sum of pen x L x
    dt. The compute side's value counts it as a constant (-) and earns it
    back on each MWh served (:func:`~carbonsched.compute.inference_margin`)."""
    return float((inst.pen[:, None] * inst.L).sum() * inst.dt)


def window_sums(inst: Instance, rho: np.ndarray) -> np.ndarray:
    """[triples] sum of ``rho[s, t]`` over each (job, site, start) triple's
    run periods (same unit as ``rho``)."""
    jj, ss, tt = inst.triples
    cs = np.zeros((inst.S, inst.H + 1))
    np.cumsum(rho, axis=1, out=cs[:, 1:])
    return cs[ss, tt + inst.dur[jj]] - cs[ss, tt]


def site_emission_cap(inst: Instance) -> np.ndarray:
    """[S] most emissions a site can produce over the horizon (t)."""
    gen = np.where(inst.has_gen, inst.gmax * inst.ef, 0.0)
    return ((inst.ci * inst.imax[:, None]).sum(axis=1) + gen * inst.H) * inst.dt


def site_cost_floor(inst: Instance) -> np.ndarray:
    """[S] a valid lower bound on any site's energy cost ($): every term is
    >= 0 except the grid's. Import at a negative price earns at most
    sum_t -pb imax dt, export at a positive price at most sum_t ps xmax dt
    (prices may be negative, as in real markets)."""
    earn = np.maximum(0.0, -inst.pb) * inst.imax[:, None] + np.maximum(0.0, inst.ps) * inst.xmax[:, None]
    return -earn.sum(axis=1) * inst.dt


def emissions_floor(inst: Instance) -> np.ndarray:
    """[S] a proven lower bound on each site's emissions (t) under any
    schedule, from the always-on load alone (idle IT x PUE).

    Two valid bounds, the larger taken per site, with ``c[t]`` the cleaner of
    grid intensity and generator emission factor (t/MWh):
    - energy: the battery ends no emptier than it starts and loses energy,
      so over the horizon grid + generator energy >= sum_t (P[t] - ren[t]);
      emissions >= min_t c[t] x that x dt;
    - power: in each period, load beyond renewables and full battery
      discharge comes from grid or generator: sum_t c[t] max(0, P[t] - ren[t]
      - discharge_mw) dt.
    """
    P = inst.pue * inst.idle[:, None]
    c = np.minimum(inst.ci, np.where(inst.has_gen, inst.ef, np.inf)[:, None])
    energy = np.maximum(0.0, (P - inst.ren).sum(axis=1)) * c.min(axis=1) * inst.dt
    dis = np.where(inst.has_batt, inst.dis_max, 0.0)[:, None]
    power = (c * np.maximum(0.0, P - inst.ren - dis)).sum(axis=1) * inst.dt
    return np.maximum(energy, power)


def facility_load(inst: Instance, sol: Solution) -> np.ndarray:
    """[S,H] facility power (MW, PUE included) of a schedule: idle + running
    jobs + inference, times PUE."""
    run = np.zeros((inst.S, inst.H))
    for jid, sid, t in sol.training:
        j, s = inst.job_index(jid), inst.site_index(sid)
        run[s, t:t + inst.dur[j]] += inst.pow[j]
    return inst.pue * (inst.idle[:, None] + run + inst.f_inf[:, None] * sol.inference.sum(axis=0))


def _run_cells(inst: Instance, triples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each period each triple runs: its cell ``s*H + t``, the triple's
    position in ``triples`` and its job's IT load (MW)."""
    jj, ss, tt = inst.triples
    triples = np.asarray(triples, dtype=int)
    dur = inst.dur[jj[triples]]
    pos = np.repeat(np.arange(triples.size), dur)
    offset = np.arange(int(dur.sum())) - np.repeat(np.cumsum(dur) - dur, dur)  # 0..dur-1 within each run
    return (ss[triples] * inst.H + tt[triples])[pos] + offset, pos, inst.pow[jj[triples]][pos]


def inference_load(inst: Instance, y: np.ndarray) -> np.ndarray:
    """[S,H] IT load (MW) of the inference flows ``y`` [pairs, H] (MW of
    demand served on each reachable (region, site) pair)."""
    _, sr = inst.region_pairs
    out = np.zeros((inst.S, inst.H))
    np.add.at(out, sr, inst.f_inf[sr][:, None] * y)
    return out


def schedule_load(inst: Instance, triples: np.ndarray) -> np.ndarray:
    """[S,H] IT load (MW) of the training schedule ``triples`` (indices
    into ``Instance.triples``)."""
    cells, _, mw = _run_cells(inst, triples)
    return np.bincount(cells, weights=mw, minlength=inst.S * inst.H).reshape(inst.S, inst.H)


def load_matrix(inst: Instance, triples: np.ndarray) -> sp.csc_matrix:
    """[S*H cells, len(triples)] each triple's IT load (MW) in the cells
    ``s*H + t`` of its run (column k sums to ``schedule_load`` of triple k)."""
    cells, pos, mw = _run_cells(inst, triples)
    return sp.csc_matrix((mw, (cells, pos)), shape=(inst.S * inst.H, np.asarray(triples).size))


def budget_shares(inst: Instance, sites: dict[str, np.ndarray]) -> np.ndarray | None:
    """[S] each site's share of the carbon budget around a dispatch
    ``sites`` (t): its own emissions plus an equal share of the budget's
    slack; they add up to the budget (None without one)."""
    if inst.budget is None:
        return None
    return shares_around(site_costs(inst, sites)[1], float(inst.budget))


def shares_around(emissions: np.ndarray, budget: float) -> np.ndarray:
    """[S] each site's ``emissions`` (t; nan counts as 0) plus an equal
    share of the ``budget``'s slack (t)."""
    em = np.nan_to_num(np.asarray(emissions, dtype=float))
    return em + max(0.0, budget - float(em.sum())) / em.size


def site_costs(inst: Instance, sites: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-site energy cost ($, carbon price included) and emissions (t) of
    the site arrays: each site's share of -OB, as the energy block defines it."""
    dt = inst.dt
    imp, g = sites["grid_import_mw"], sites["generator_mw"]
    emis = ((inst.ci * imp).sum(axis=1) + inst.ef * g.sum(axis=1)) * dt
    cost = ((inst.pb * imp).sum(axis=1) - (inst.ps * sites["grid_export_mw"]).sum(axis=1)
            + inst.cg * g.sum(axis=1) + inst.cd * (sites["battery_charge_mw"] + sites["battery_discharge_mw"]).sum(axis=1)
            ) * dt + inst.pc * imp.max(axis=1) + inst.carbon_price * emis
    return cost, emis
