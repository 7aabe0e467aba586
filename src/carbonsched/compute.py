"""The compute block (MODEL.md sections 2-3, compute side), written once.

:func:`build_compute` puts the training placement and inference routing on
a Pyomo block. Only valid (job, site, start) triples and reachable
(region, site) pairs are indexed. It exposes

- ``b.x[k]`` binary for triple ``k`` of ``inst.triples``;
- ``b.y[k, t]`` MW of pair ``k`` of ``inst.region_pairs`` in period ``t``;
- ``b.IT[s, t]`` (IT MW) and ``b.P[s, t]`` (facility MW = pue x IT);
- ``b.value`` ($): job value + inference revenue net of routing cost -
  unserved penalty, i.e. the compute side's share of OB.

``capacity=False`` leaves out the IT capacity rows (used by the Lagrangian
method, which prices them instead). ``job_load=True`` builds the routing
side alone: instead of ``x``, the training jobs' IT load is a column
``b.run[s, t]`` (MW) whose bounds the caller fixes to a schedule's load, and
``b.value`` leaves out the jobs' value (the recovery's dispatch model: a
schedule's routing and dispatch without a column per job triple).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyomo.environ as pyo

from .derived import unserved_penalty
from .instance import Instance

__all__ = ["add_facility_load", "build_compute", "compute_arrays", "coverage", "inference_margin", "priced_margin"]


def coverage(inst: Instance) -> dict[tuple[int, int], list[int]]:
    """{(site, period): [triple indices running then]} for all triples."""
    jj, ss, tt = inst.triples
    cov: dict[tuple[int, int], list[int]] = defaultdict(list)
    for k in range(jj.size):
        s, t0, d = int(ss[k]), int(tt[k]), int(inst.dur[jj[k]])
        for t in range(t0, t0 + d):
            cov[(s, t)].append(k)
    return cov


def build_compute(b: pyo.Block, inst: Instance, *, capacity: bool = True, relax: bool = False,
                  job_load: bool = False) -> pyo.Block:
    """Build the compute side on block ``b`` and return it.

    ``relax=True`` makes ``x`` continuous in [0, 1] (LP relaxation);
    ``job_load=True`` replaces the jobs by a load column per (site, period)
    (see the module docstring).
    """
    H, dt, S = inst.H, inst.dt, inst.S
    jj, ss, tt = inst.triples
    if job_load:
        jj, ss, tt = jj[:0], ss[:0], tt[:0]
    rr, sr = inst.region_pairs
    b.K = pyo.RangeSet(0, jj.size - 1) if jj.size else pyo.Set(initialize=[])
    b.x = pyo.Var(b.K, domain=pyo.UnitInterval if relax else pyo.Binary)
    b.Q = pyo.RangeSet(0, rr.size - 1) if rr.size else pyo.Set(initialize=[])
    b.T = pyo.Set(initialize=range(H), ordered=True)
    b.y = pyo.Var(b.Q, b.T, bounds=lambda _b, k, t: (0.0, float(inst.L[rr[k], t])))

    by_job: dict[int, list[int]] = defaultdict(list)
    for k, j in enumerate(jj):
        by_job[int(j)].append(k)
    b.Jset = pyo.Set(initialize=sorted(by_job))

    def _assign(_b, j):
        e = pyo.quicksum(_b.x[k] for k in by_job[j])
        return e == 1 if inst.required[j] else e <= 1

    b.assign = pyo.Constraint(b.Jset, rule=_assign)

    by_region: dict[int, list[int]] = defaultdict(list)
    for k, r in enumerate(rr):
        by_region[int(r)].append(k)
    b.Rset = pyo.Set(initialize=sorted(by_region))
    b.serve = pyo.Constraint(b.Rset, b.T, rule=lambda _b, r, t: pyo.quicksum(
        _b.y[k, t] for k in by_region[r]) <= float(inst.L[r, t]))

    cov = coverage(inst) if not job_load else {}
    pairs_at: dict[int, list[int]] = defaultdict(list)
    for k, s in enumerate(sr):
        pairs_at[int(s)].append(k)
    pw = inst.pow

    def _it(_b, s, t):
        terms = [float(pw[jj[k]]) * _b.x[k] for k in cov.get((s, t), ())]
        terms += [float(inst.f_inf[s]) * _b.y[k, t] for k in pairs_at.get(s, ())]
        return float(inst.idle[s]) + pyo.quicksum(terms)

    b.S = pyo.Set(initialize=range(S), ordered=True)
    if job_load:
        b.run = pyo.Var(b.S, b.T, bounds=(0.0, 0.0))
        b.IT = pyo.Expression(b.S, b.T, rule=lambda _b, s, t: _it(_b, s, t) + _b.run[s, t])
    else:
        b.IT = pyo.Expression(b.S, b.T, rule=_it)
    b.P = pyo.Expression(b.S, b.T, rule=lambda _b, s, t: float(inst.pue[s, t]) * _b.IT[s, t])
    if capacity:
        b.capacity = pyo.Constraint(
            b.S, b.T, rule=lambda _b, s, t: _b.IT[s, t] <= float(inst.cap[s])
            if job_load or (s, t) in cov or pairs_at.get(s) else pyo.Constraint.Skip)

    marg = inference_margin(inst)
    val_terms = [float(inst.val[jj[k]]) * b.x[k] for k in range(jj.size)]
    val_terms += [float(marg[k] * dt) * b.y[k, t] for k in range(rr.size) for t in range(H)]
    const = -unserved_penalty(inst)
    b.value = pyo.Expression(expr=const + pyo.quicksum(val_terms))
    return b


def add_facility_load(m: pyo.Block, inst: Instance) -> None:
    """Give ``m.compute``'s facility load its own variables ``m.Pv[s,t]``
    (MW, = P[s,t]), so that a master or a priced compute problem can put
    cuts or prices on them by column."""
    m.Pv = pyo.Var(range(inst.S), range(inst.H), bounds=(0.0, None))
    m.Pdef = pyo.Constraint(range(inst.S), range(inst.H),
                            rule=lambda _m, s, t: _m.Pv[s, t] == _m.compute.P[s, t])


def inference_margin(inst: Instance) -> np.ndarray:
    """[pairs] $/MWh earned per MWh served on each reachable (region, site)
    pair: revenue - routing cost x latency + the unserved penalty avoided."""
    rr, sr = inst.region_pairs
    return inst.rev[rr] - inst.routing_cost * inst.lat[rr, sr] + inst.pen[rr]


def priced_margin(inst: Instance, rho: np.ndarray) -> np.ndarray:
    """[pairs, H] $ per MW served for one period on each reachable (region,
    site) pair, less its IT load priced at ``rho`` [S,H] ($ per IT MW for
    one period): what the relaxations that price capacity and power weigh
    routing by."""
    _, sr = inst.region_pairs
    return inference_margin(inst)[:, None] * inst.dt - inst.f_inf[sr][:, None] * rho[sr]


def compute_arrays(b: pyo.Block, inst: Instance) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """Read a solved compute block: the started triples (j, s, start) and
    the inference array y[R, S, H] (MW)."""
    jj, ss, tt = inst.triples
    started = [(int(jj[k]), int(ss[k]), int(tt[k])) for k in b.K if (b.x[k].value or 0.0) > 0.5]
    rr, sr = inst.region_pairs
    y = np.zeros((inst.R, inst.S, inst.H))
    for k in range(rr.size):
        y[rr[k], sr[k]] = [b.y[k, t].value or 0.0 for t in range(inst.H)]
    y[np.abs(y) < 1e-10] = 0.0
    return started, y
