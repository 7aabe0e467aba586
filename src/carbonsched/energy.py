"""The site energy block (MODEL.md sections 2-3, energy side), written once.

:func:`build_site_energy` puts one site's microgrid on a Pyomo block: grid
import/export, battery, curtailable renewables, generator, peak import and
emissions. It is used unchanged by the monolithic model, the Benders and
Lagrangian site subproblems and the baselines. The block does not know
where its load comes from: it exposes

- ``b.supplied[t]`` (MW): imp + dis + ru + g - ch - exp, the power the
  microgrid delivers to the facility; the caller links it to the facility
  load ``P[s,t]``;
- ``b.emissions`` (tCO2): sum_t (ci imp + ef g) dt;
- ``b.cost`` ($): energy cost + degradation + peak charge + carbon price x
  emissions, i.e. everything the site contributes to -OB.

Components a site lacks (battery, generator) are not created; the
extraction helpers return zeros for them.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from .instance import Instance

__all__ = ["build_site_energy", "site_arrays"]


def build_site_energy(b: pyo.Block, inst: Instance, s: int) -> pyo.Block:
    """Build site ``s``'s energy model on block ``b`` and return it."""
    H, dt = inst.H, inst.dt
    T = range(H)
    b.T = pyo.Set(initialize=T, ordered=True)
    ren = inst.ren[s]
    b.imp = pyo.Var(b.T, bounds=(0.0, float(inst.imax[s])))
    b.exp = pyo.Var(b.T, bounds=(0.0, float(inst.xmax[s])))
    b.ru = pyo.Var(b.T, bounds=lambda _b, t: (0.0, float(ren[t])))
    supplied = {t: b.imp[t] + b.ru[t] - b.exp[t] for t in T}
    cost_terms = [float(inst.pb[s, t] * dt) * b.imp[t] - float(inst.ps[s, t] * dt) * b.exp[t] for t in T]
    emis_terms = [float(inst.ci[s, t] * dt) * b.imp[t] for t in T]

    if inst.has_batt[s]:
        b.ch = pyo.Var(b.T, bounds=(0.0, float(inst.ch_max[s])))
        b.dis = pyo.Var(b.T, bounds=(0.0, float(inst.dis_max[s])))
        b.soc = pyo.Var(range(H + 1), bounds=(0.0, float(inst.e_max[s])))
        b.soc[0].fix(float(inst.soc0[s]))
        ec, ed = float(inst.eta_c[s]), float(inst.eta_d[s])
        b.soc_balance = pyo.Constraint(
            b.T, rule=lambda _b, t: _b.soc[t + 1] == _b.soc[t] + ec * dt * _b.ch[t] - (dt / ed) * _b.dis[t])
        b.soc_end = pyo.Constraint(expr=b.soc[H] >= float(inst.soc0[s]))
        for t in T:
            supplied[t] = supplied[t] + b.dis[t] - b.ch[t]
        if inst.cd[s] > 0:
            cost_terms += [float(inst.cd[s] * dt) * (b.ch[t] + b.dis[t]) for t in T]

    if inst.has_gen[s]:
        gmax, gmin = float(inst.gmax[s]), float(inst.gmin[s])
        if gmin > 0:
            b.g = pyo.Var(b.T, bounds=(0.0, gmax))
            b.on = pyo.Var(b.T, domain=pyo.Binary)
            b.g_min = pyo.Constraint(b.T, rule=lambda _b, t: _b.g[t] >= gmin * _b.on[t])
            b.g_max = pyo.Constraint(b.T, rule=lambda _b, t: _b.g[t] <= gmax * _b.on[t])
        else:
            b.g = pyo.Var(b.T, bounds=(0.0, gmax))
        for t in T:
            supplied[t] = supplied[t] + b.g[t]
        cost_terms += [float(inst.cg[s] * dt) * b.g[t] for t in T]
        emis_terms += [float(inst.ef[s] * dt) * b.g[t] for t in T]

    if inst.pc[s] > 0:
        b.pk = pyo.Var(bounds=(0.0, float(inst.imax[s])))
        b.peak = pyo.Constraint(b.T, rule=lambda _b, t: _b.pk >= _b.imp[t])
        cost_terms.append(float(inst.pc[s]) * b.pk)

    b.supplied = pyo.Expression(b.T, initialize=supplied)
    b.emissions = pyo.Expression(expr=pyo.quicksum(emis_terms))
    cp = float(inst.carbon_price)
    energy_cost = pyo.quicksum(cost_terms)
    b.cost = pyo.Expression(expr=energy_cost + cp * b.emissions if cp else energy_cost)
    return b


def _vals(b: pyo.Block, name: str, n: int) -> np.ndarray:
    comp = b.component(name)
    if comp is None:
        return np.zeros(n)
    return np.array([pyo.value(comp[t]) if comp[t].value is not None else 0.0 for t in range(n)])


def site_arrays(b: pyo.Block, inst: Instance, s: int) -> dict[str, np.ndarray]:
    """Read a solved energy block into the solution file's site arrays."""
    H = inst.H
    out = {
        "grid_import_mw": _vals(b, "imp", H), "grid_export_mw": _vals(b, "exp", H),
        "battery_charge_mw": _vals(b, "ch", H), "battery_discharge_mw": _vals(b, "dis", H),
        "soc_mwh": _vals(b, "soc", H + 1) if b.component("soc") is not None else np.full(H + 1, inst.soc0[s]),
        "renewable_used_mw": _vals(b, "ru", H), "generator_mw": _vals(b, "g", H),
    }
    if b.component("on") is not None:
        out["generator_on"] = np.round(_vals(b, "on", H))
    else:
        out["generator_on"] = (out["generator_mw"] > 1e-9).astype(float)
    # clean solver noise: tiny negatives
    for v in out.values():
        v[np.abs(v) < 1e-10] = 0.0
    return out
