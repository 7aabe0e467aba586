"""Ablations of MODEL.md section 6, as pure functions Instance -> Instance.

They apply to any method: the changed instance is solved as usual.
"""

from __future__ import annotations

import numpy as np

from .errors import OptionError
from .instance import Instance

__all__ = ["ablate", "no_battery", "no_carbon", "no_routing", "scale_renewables"]


def no_battery(inst: Instance) -> Instance:
    """Remove every battery."""
    z = np.zeros(inst.S)
    return inst.with_changes(name=f"{inst.name}+no-battery", has_batt=np.zeros(inst.S, bool), e_max=z, ch_max=z,
                             dis_max=z, soc0=z, cd=z)


def no_routing(inst: Instance) -> Instance:
    """Each region may be served only by its lowest-latency reachable site
    (ties: the first site in file order)."""
    lat = np.full_like(inst.lat, np.nan)
    reach = inst.reach
    for r in range(inst.R):
        ok = np.flatnonzero(reach[r])
        if ok.size:
            s = ok[np.argmin(inst.lat[r, ok])]
            lat[r, s] = inst.lat[r, s]
    return inst.with_changes(name=f"{inst.name}+no-routing", lat=lat)


def no_carbon(inst: Instance) -> Instance:
    """Drop the carbon budget."""
    return inst.with_changes(name=f"{inst.name}+no-carbon", budget=None)


def scale_renewables(inst: Instance, k: float) -> Instance:
    """Multiply available renewable power by ``k`` >= 0."""
    if not (k >= 0 and np.isfinite(k)):
        raise OptionError(f"--renewable-scale must be a finite number >= 0, got {k}")
    return inst.with_changes(name=f"{inst.name}+ren-x{k:g}", ren=inst.ren * k)


def ablate(inst: Instance, *, no_battery: bool = False, no_routing: bool = False, no_carbon: bool = False,
           renewable_scale: float | None = None) -> Instance:
    """Apply the chosen ablations in a fixed order."""
    out = inst
    if no_battery:
        out = globals()["no_battery"](out)
    if no_routing:
        out = globals()["no_routing"](out)
    if no_carbon:
        out = globals()["no_carbon"](out)
    if renewable_scale is not None and renewable_scale != 1.0:
        out = scale_renewables(out, renewable_scale)
    return out
