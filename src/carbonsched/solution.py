"""The solution file of MODEL.md section 5, as arrays.

A :class:`Solution` holds a schedule in array form (``y[R,S,H]``, site
series ``[S,H]``) plus the headline numbers every method reports. It reads
and writes the fixed JSON format; :mod:`carbonsched.check` verifies it
against an instance without any model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SolutionFormatError
from .instance import Instance

__all__ = ["SITE_SERIES", "STATUSES", "Solution", "facility_load", "read_solution", "write_solution"]

SITE_SERIES = ("grid_import_mw", "grid_export_mw", "battery_charge_mw", "battery_discharge_mw", "soc_mwh",
               "renewable_used_mw", "generator_mw", "generator_on")
STATUSES = ("optimal", "feasible", "infeasible", "time_limit", "budget_infeasible")


@dataclass
class Solution:
    """A schedule plus the method's report. Arrays: ``inference[R,S,H]``
    (MW), ``sites[name][S,H]`` (MW; ``soc_mwh`` is ``[S,H+1]`` MWh)."""

    instance: str
    method: str
    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    emissions_t: float | None
    training: list[tuple[str, str, int]]  # (job id, site id, start)
    inference: np.ndarray
    sites: dict[str, np.ndarray]
    stats: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def empty(inst: Instance, method: str, status: str) -> Solution:
        """A solution with no schedule, for infeasible outcomes."""
        S, H = inst.S, inst.H
        sites = {k: np.zeros((S, H + 1) if k == "soc_mwh" else (S, H)) for k in SITE_SERIES}
        return Solution(inst.name, method, status, None, None, None, None, [], np.zeros((inst.R, S, H)), sites,
                        {"empty": True})

    def to_dict(self, inst: Instance) -> dict:
        inf: dict[str, dict[str, list[float]]] = {}
        for r, rid in enumerate(inst.region_ids):
            row = {inst.site_ids[s]: _floats(self.inference[r, s]) for s in range(inst.S)
                   if np.any(self.inference[r, s] != 0)}
            if row:
                inf[rid] = row
        sites = {sid: {k: _floats(self.sites[k][s]) for k in SITE_SERIES} for s, sid in enumerate(inst.site_ids)}
        return {
            "instance": self.instance, "method": self.method, "status": self.status,
            "objective": _num(self.objective), "bound": _num(self.bound), "gap": _num(self.gap),
            "emissions_t": _num(self.emissions_t),
            "training": [{"job": j, "site": s, "start": int(t)} for j, s, t in self.training],
            "inference": inf, "sites": sites, "stats": _jsonable(self.stats),
        }


def _num(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _floats(a: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(a, float)]


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, (np.floating,)):
        return _num(float(o))
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, float):
        return _num(o)
    return o


def write_solution(sol: Solution, inst: Instance, path: str | Path) -> None:
    with open(path, "w") as fh:
        json.dump(sol.to_dict(inst), fh, indent=1)


def read_solution(path_or_dict: str | Path | dict, inst: Instance) -> Solution:
    """Read a solution file and map it onto the instance's ids. Structural
    problems (unknown ids, wrong lengths, missing site series) raise
    :class:`SolutionFormatError` naming the field; constraint violations are
    the checker's business."""
    if isinstance(path_or_dict, dict):
        d = path_or_dict
    else:
        try:
            with open(path_or_dict) as fh:
                d = json.load(fh)
        except json.JSONDecodeError as e:
            raise SolutionFormatError(f"{path_or_dict}: not valid JSON: {e}") from None
    if not isinstance(d, dict):
        raise SolutionFormatError("solution: must be a JSON object")
    S, H, R = inst.S, inst.H, inst.R
    probs: list[str] = []
    training = []
    for i, e in enumerate(d.get("training") or []):
        if not isinstance(e, dict) or not {"job", "site", "start"} <= set(e):
            probs.append(f"training[{i}]: needs job, site and start")
            continue
        st = e["start"]
        if isinstance(st, bool) or not isinstance(st, (int, float)) or float(st) != int(st):
            probs.append(f"training[{i}].start: must be an integer period, got {st!r}")
            continue
        training.append((str(e["job"]), str(e["site"]), int(st)))
    y = np.zeros((R, S, H))
    for rid, row in (d.get("inference") or {}).items():
        if rid not in inst.region_ids:
            probs.append(f"inference.{rid}: unknown region id")
            continue
        for sid, series in (row or {}).items():
            if sid not in inst.site_ids:
                probs.append(f"inference.{rid}.{sid}: unknown site id")
                continue
            a = _array(series, H, f"inference.{rid}.{sid}", probs)
            if a is not None:
                y[inst.region_ids.index(rid), inst.site_ids.index(sid)] = a
    sites = {k: np.zeros((S, H + 1) if k == "soc_mwh" else (S, H)) for k in SITE_SERIES}
    sd = d.get("sites") or {}
    for sid in sd:
        if sid not in inst.site_ids:
            probs.append(f"sites.{sid}: unknown site id")
    for s, sid in enumerate(inst.site_ids):
        if sid not in sd:
            probs.append(f"sites.{sid}: missing")
            continue
        for k in SITE_SERIES:
            n = H + 1 if k == "soc_mwh" else H
            if k not in sd[sid]:
                if k == "generator_on":
                    continue
                probs.append(f"sites.{sid}.{k}: missing")
                continue
            a = _array(sd[sid][k], n, f"sites.{sid}.{k}", probs)
            if a is not None:
                sites[k][s] = a
    status = d.get("status", "feasible")
    if status not in STATUSES:
        probs.append(f"status: must be one of {', '.join(STATUSES)}, got {status!r}")
    if probs:
        raise SolutionFormatError("solution file problems:\n" + "\n".join(f"  - {p}" for p in probs))
    return Solution(instance=d.get("instance", inst.name), method=d.get("method", "?"), status=status,
                    objective=d.get("objective"), bound=d.get("bound"), gap=d.get("gap"),
                    emissions_t=d.get("emissions_t"), training=training, inference=y, sites=sites,
                    stats=d.get("stats") or {})


def _array(v: Any, n: int, path: str, probs: list[str]) -> np.ndarray | None:
    if not isinstance(v, list) or len(v) != n:
        probs.append(f"{path}: must be a list of {n} numbers")
        return None
    try:
        a = np.array(v, dtype=float)
    except (TypeError, ValueError):
        probs.append(f"{path}: must hold numbers only")
        return None
    if not np.all(np.isfinite(a)):
        probs.append(f"{path}: must be finite")
        return None
    return a


def facility_load(inst: Instance, sol: Solution) -> np.ndarray:
    """[S,H] facility power (MW, PUE included) of a schedule: idle + running
    jobs + inference, times PUE. (The checker keeps its own copy on purpose.)"""
    run = np.zeros((inst.S, inst.H))
    for jid, sid, t in sol.training:
        j, s = inst.job_index(jid), inst.site_index(sid)
        run[s, t:t + inst.dur[j]] += inst.pow[j]
    return inst.pue * (inst.idle[:, None] + run + inst.f_inf[:, None] * sol.inference.sum(axis=0))
