"""Instance files: load, validate, and hold them as numpy arrays.

The file format is fixed by MODEL.md section 1. :func:`load_instance` (or
:func:`parse_instance` for an already-parsed dict) checks every rule before
any model is built and raises :class:`~carbonsched.errors.InstanceError`
listing each broken rule with its field path, e.g.
``sites[2].battery.charge_eff: must be in (0, 1]``.

The result is an immutable :class:`Instance` in which every time series is
expanded to an array of length ``H``. Units: MW, MWh, $, tCO2, periods of
``dt`` hours.

Defaults where MODEL.md gives none (documented in docs/model-notes.md):
battery ``charge_eff``/``discharge_eff`` 1.0, ``initial_soc_mwh`` 0,
generator ``min_mw`` 0, job ``release`` 0, ``deadline`` H, ``value`` 0.
A deadline beyond ``H`` is allowed and means ``H``.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InstanceError

__all__ = ["Instance", "default_instance_path", "load_instance", "parse_instance", "resolve_instance_path"]

INSTANCE_DIR = Path(__file__).resolve().parents[2] / "instances"


def _shipped_dirs() -> list[Path]:
    return [INSTANCE_DIR, Path.cwd() / "instances"]


def resolve_instance_path(name_or_path: str | Path | None) -> Path:
    """Map ``None`` to the shipped ``paper-default`` and a bare name
    (``medium``) to the shipped file ``instances/medium.json``."""
    if name_or_path is None:
        name_or_path = "paper-default"
    p = Path(name_or_path)
    if p.exists():
        return p
    for d in _shipped_dirs():
        for cand in (d / p.name, d / f"{p.name}.json"):
            if cand.exists():
                return cand
    raise FileNotFoundError(f"instance file not found: {name_or_path}")


def default_instance_path() -> Path:
    return resolve_instance_path(None)


# --------------------------------------------------------------------------
# The instance object
# --------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Instance:
    """A validated instance. Arrays are indexed ``[site, period]``,
    ``[job]``, ``[region, period]`` and ``[region, site]``."""

    name: str
    H: int
    dt: float  # hours per period
    budget: float | None  # tCO2 over the horizon
    carbon_price: float  # $/tCO2
    routing_cost: float  # $/(MWh ms)

    site_ids: tuple[str, ...]
    cap: np.ndarray  # [S] IT MW
    idle: np.ndarray  # [S] IT MW always drawn
    pue: np.ndarray  # [S,H]
    f_inf: np.ndarray  # [S] IT MW per MW of inference demand
    ren: np.ndarray  # [S,H] MW available
    imax: np.ndarray  # [S] MW
    xmax: np.ndarray  # [S] MW
    pb: np.ndarray  # [S,H] $/MWh import
    ps: np.ndarray  # [S,H] $/MWh export
    ci: np.ndarray  # [S,H] tCO2/MWh
    pc: np.ndarray  # [S] $/MW peak import

    has_batt: np.ndarray  # [S] bool
    e_max: np.ndarray  # [S] MWh
    ch_max: np.ndarray  # [S] MW
    dis_max: np.ndarray  # [S] MW
    eta_c: np.ndarray  # [S]
    eta_d: np.ndarray  # [S]
    soc0: np.ndarray  # [S] MWh
    cd: np.ndarray  # [S] $/MWh

    has_gen: np.ndarray  # [S] bool
    gmax: np.ndarray  # [S] MW
    gmin: np.ndarray  # [S] MW
    cg: np.ndarray  # [S] $/MWh
    ef: np.ndarray  # [S] tCO2/MWh

    job_ids: tuple[str, ...]
    pow: np.ndarray  # [J] IT MW
    dur: np.ndarray  # [J] periods (int)
    rel: np.ndarray  # [J] first allowed start (int)
    dl: np.ndarray  # [J] deadline, already min(deadline, H) (int)
    val: np.ndarray  # [J] $
    allowed: np.ndarray  # [J,S] bool
    required: np.ndarray  # [J] bool

    region_ids: tuple[str, ...]
    L: np.ndarray  # [R,H] IT MW
    rev: np.ndarray  # [R] $/MWh
    pen: np.ndarray  # [R] $/MWh unserved
    slo: np.ndarray  # [R] ms
    lat: np.ndarray  # [R,S] ms, nan where unreachable

    raw: dict = field(repr=False, default_factory=dict)

    # -- sizes ---------------------------------------------------------
    @property
    def S(self) -> int:
        return len(self.site_ids)

    @property
    def J(self) -> int:
        return len(self.job_ids)

    @property
    def R(self) -> int:
        return len(self.region_ids)

    @cached_property
    def committed(self) -> np.ndarray:
        """[S] bool: the site has a generator with a minimum output (binary)."""
        return self.has_gen & (self.gmin > 0)

    @cached_property
    def reach(self) -> np.ndarray:
        """[R,S] bool: region r may be served at site s (lat <= slo)."""
        with np.errstate(invalid="ignore"):
            return np.nan_to_num(self.lat, nan=np.inf) <= self.slo[:, None]

    @cached_property
    def triples(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The valid (job, site, start) triples as three int arrays, sorted
        by job, then site, then start. Only these are indexed in models."""
        js, ss, ts = [], [], []
        for j in range(self.J):
            starts = np.arange(self.rel[j], self.dl[j] - self.dur[j] + 1)
            for s in np.flatnonzero(self.allowed[j]):
                js.append(np.full(starts.size, j))
                ss.append(np.full(starts.size, s))
                ts.append(starts)
        if not js:
            e = np.zeros(0, dtype=int)
            return e, e, e
        return (np.concatenate(js).astype(int), np.concatenate(ss).astype(int), np.concatenate(ts).astype(int))

    @cached_property
    def region_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Reachable (region, site) pairs as two int arrays."""
        r, s = np.nonzero(self.reach)
        return r.astype(int), s.astype(int)

    def site_index(self, site_id: str) -> int:
        return self.site_ids.index(site_id)

    def job_index(self, job_id: str) -> int:
        return self.job_ids.index(job_id)

    def with_changes(self, **changes: Any) -> Instance:
        """A copy with some arrays replaced (for ablations). The result is
        not re-validated; callers keep it consistent."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """The instance as a JSON-ready dict of MODEL.md format."""
        return instance_to_dict(self)


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------
class _Checker:
    """Collects problems as ``path: message`` strings."""

    def __init__(self, H: int | None):
        self.H = H
        self.problems: list[str] = []

    def bad(self, path: str, msg: str) -> None:
        self.problems.append(f"{path}: {msg}")

    def number(self, obj: dict, key: str, path: str, *, default: Any = ..., lo: float | None = None,
               lo_strict: bool = False, hi: float | None = None, integer: bool = False,
               allow_none: bool = False) -> Any:
        p = f"{path}.{key}" if path else key
        if not isinstance(obj, dict) or key not in obj or (obj[key] is None and not allow_none):
            if default is ...:
                self.bad(p, "is required")
                return None
            return default
        v = obj[key]
        if v is None and allow_none:
            return None
        return self._scalar(v, p, lo=lo, lo_strict=lo_strict, hi=hi, integer=integer)

    def _scalar(self, v: Any, p: str, *, lo=None, lo_strict=False, hi=None, integer=False) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.bad(p, f"must be a number, got {type(v).__name__} {v!r}"[:200])
            return None
        if not math.isfinite(v):
            self.bad(p, f"must be finite, got {v}")
            return None
        if integer and float(v) != int(v):
            self.bad(p, f"must be an integer, got {v}")
            return None
        if lo is not None and (v <= lo if lo_strict else v < lo):
            self.bad(p, f"must be {'>' if lo_strict else '>='} {lo:g}, got {v:g}")
            return None
        if hi is not None and v > hi:
            self.bad(p, f"must be <= {hi:g}, got {v:g}")
            return None
        return int(v) if integer else float(v)

    def series(self, obj: dict, key: str, path: str, *, default: Any = ..., lo: float | None = None) -> np.ndarray | None:
        """A number or a list of exactly H numbers, expanded to length H."""
        p = f"{path}.{key}" if path else key
        if not isinstance(obj, dict) or key not in obj or obj[key] is None:
            if default is ...:
                self.bad(p, "is required")
                return None
            return np.full(self.H or 0, float(default))
        v = obj[key]
        if isinstance(v, list):
            if self.H is not None and len(v) != self.H:
                self.bad(p, f"must have exactly periods={self.H} values, got {len(v)}")
                return None
            out = np.empty(len(v))
            ok = True
            for i, x in enumerate(v):
                y = self._scalar(x, f"{p}[{i}]", lo=lo)
                if y is None:
                    ok = False
                    if sum(1 for q in self.problems if q.startswith(p + "[")) >= 3:
                        break
                else:
                    out[i] = y
            return out if ok else None
        y = self._scalar(v, p, lo=lo)
        return None if y is None else np.full(self.H or 0, y)

    def string(self, obj: dict, key: str, path: str) -> str | None:
        p = f"{path}.{key}" if path else key
        v = obj.get(key) if isinstance(obj, dict) else None
        if not isinstance(v, str) or not v:
            self.bad(p, "is required and must be a non-empty string")
            return None
        return v

    def mapping(self, obj: dict, key: str, path: str, *, required: bool = True) -> dict | None:
        p = f"{path}.{key}" if path else key
        if not isinstance(obj, dict) or obj.get(key) is None:
            if required:
                self.bad(p, "is required")
            return None
        v = obj[key]
        if not isinstance(v, dict):
            self.bad(p, f"must be an object, got {type(v).__name__}")
            return None
        return v

    def listing(self, obj: dict, key: str, *, required: bool = True) -> list | None:
        v = obj.get(key)
        if v is None:
            if required:
                self.bad(key, "is required")
            return None if required else []
        if not isinstance(v, list):
            self.bad(key, f"must be a list, got {type(v).__name__}")
            return None
        return v


def load_instance(path: str | Path | None = None) -> Instance:
    """Read and validate an instance file (``None``: the shipped
    ``paper-default``; a bare name: a shipped instance)."""
    p = resolve_instance_path(path)
    try:
        with open(p) as fh:
            data = json.load(fh)
    except json.JSONDecodeError as e:
        raise InstanceError([f"(file): not valid JSON: {e}"], str(p)) from None
    return parse_instance(data, source=str(p))


def parse_instance(data: Any, source: str | None = None) -> Instance:
    """Validate a parsed instance dict and build the :class:`Instance`."""
    if not isinstance(data, dict):
        raise InstanceError(["(top level): must be a JSON object"], source)
    c = _Checker(None)
    H = c.number(data, "periods", "", integer=True, lo=1)
    if H is None:
        raise InstanceError(c.problems, source)
    c.H = H
    name = data.get("name", "unnamed")
    if not isinstance(name, str):
        c.bad("name", "must be a string")
    dt = c.number(data, "period_hours", "", default=1.0, lo=0, lo_strict=True)
    budget = c.number(data, "carbon_budget_t", "", default=None, lo=0, allow_none=True)
    cprice = c.number(data, "carbon_price_per_t", "", default=0.0, lo=0)
    rcost = c.number(data, "routing_cost_per_mwh_ms", "", default=0.0, lo=0)

    # ---- sites -----------------------------------------------------------
    sites = c.listing(data, "sites")
    if sites is not None and len(sites) == 0:
        c.bad("sites", "must list at least one site")
    sites = sites or []
    S = len(sites)
    z = lambda: np.zeros(S)
    cap, idle, f_inf, imax, xmax, pc = z(), z(), z(), z(), z(), z()
    pue, ren, pb, ps, ci = (np.ones((S, H)), np.zeros((S, H)), np.zeros((S, H)), np.zeros((S, H)), np.zeros((S, H)))
    has_batt, has_gen = np.zeros(S, bool), np.zeros(S, bool)
    e_max, ch_max, dis_max, soc0, cd = z(), z(), z(), z(), z()
    eta_c, eta_d = np.ones(S), np.ones(S)
    gmax, gmin, cg, ef = z(), z(), z(), z()
    site_ids: list[str] = []
    for i, st in enumerate(sites):
        p = f"sites[{i}]"
        if not isinstance(st, dict):
            c.bad(p, "must be an object")
            site_ids.append(f"#{i}")
            continue
        sid = c.string(st, "id", p) or f"#{i}"
        if sid in site_ids:
            c.bad(f"{p}.id", f"duplicate site id {sid!r}")
        site_ids.append(sid)
        cap[i] = c.number(st, "it_capacity_mw", p, lo=0) or 0.0
        v = c.number(st, "idle_it_mw", p, default=0.0, lo=0)
        if v is not None and v > cap[i]:
            c.bad(f"{p}.idle_it_mw", f"must be <= it_capacity_mw ({cap[i]:g}), got {v:g}")
        idle[i] = v or 0.0
        x = c.series(st, "pue", p, lo=1.0)
        pue[i] = x if x is not None else 1.0
        f_inf[i] = c.number(st, "inference_power_factor", p, default=1.0, lo=0, lo_strict=True) or 1.0
        x = c.series(st, "renewable_mw", p, default=0.0, lo=0)
        ren[i] = x if x is not None else 0.0
        g = c.mapping(st, "grid", p)
        if g is not None:
            gp = f"{p}.grid"
            imax[i] = c.number(g, "import_max_mw", gp, lo=0) or 0.0
            xmax[i] = c.number(g, "export_max_mw", gp, default=0.0, lo=0) or 0.0
            x = c.series(g, "import_price", gp)
            pb[i] = x if x is not None else 0.0
            x = c.series(g, "export_price", gp, default=0.0)
            if x is not None:
                over = np.flatnonzero(x > pb[i] + 1e-12)
                if over.size:
                    t = int(over[0])
                    c.bad(f"{gp}.export_price", f"must be <= import_price in every period; period {t}: "
                          f"{x[t]:g} > {pb[i][t]:g} ({over.size} period(s))")
                ps[i] = x
            x = c.series(g, "carbon_intensity_t_per_mwh", gp, lo=0)
            ci[i] = x if x is not None else 0.0
            pc[i] = c.number(g, "peak_charge_per_mw", gp, default=0.0, lo=0) or 0.0
        b = c.mapping(st, "battery", p, required=False)
        if b is not None:
            bp = f"{p}.battery"
            has_batt[i] = True
            e_max[i] = c.number(b, "energy_mwh", bp, lo=0) or 0.0
            ch_max[i] = c.number(b, "charge_mw", bp, lo=0) or 0.0
            dis_max[i] = c.number(b, "discharge_mw", bp, lo=0) or 0.0
            eta_c[i] = c.number(b, "charge_eff", bp, default=1.0, lo=0, lo_strict=True, hi=1.0) or 1.0
            eta_d[i] = c.number(b, "discharge_eff", bp, default=1.0, lo=0, lo_strict=True, hi=1.0) or 1.0
            v = c.number(b, "initial_soc_mwh", bp, default=0.0, lo=0)
            if v is not None and v > e_max[i]:
                c.bad(f"{bp}.initial_soc_mwh", f"must be <= energy_mwh ({e_max[i]:g}), got {v:g}")
            soc0[i] = v or 0.0
            cd[i] = c.number(b, "degradation_cost_per_mwh", bp, default=0.0, lo=0) or 0.0
        gen = c.mapping(st, "generator", p, required=False)
        if gen is not None:
            gp = f"{p}.generator"
            has_gen[i] = True
            gmax[i] = c.number(gen, "max_mw", gp, lo=0) or 0.0
            v = c.number(gen, "min_mw", gp, default=0.0, lo=0)
            if v is not None and v > gmax[i]:
                c.bad(f"{gp}.min_mw", f"must be <= max_mw ({gmax[i]:g}), got {v:g}")
            gmin[i] = v or 0.0
            cg[i] = c.number(gen, "cost_per_mwh", gp, default=0.0, lo=0) or 0.0
            ef[i] = c.number(gen, "emission_t_per_mwh", gp, default=0.0, lo=0) or 0.0

    # ---- training jobs ----------------------------------------------------
    jobs = c.listing(data, "training_jobs", required=False) or []
    J = len(jobs)
    pw, val = np.zeros(J), np.zeros(J)
    dur, rel, dl = np.ones(J, int), np.zeros(J, int), np.full(J, H, int)
    allowed = np.ones((J, S), bool)
    required = np.zeros(J, bool)
    job_ids: list[str] = []
    for k, jb in enumerate(jobs):
        p = f"training_jobs[{k}]"
        if not isinstance(jb, dict):
            c.bad(p, "must be an object")
            job_ids.append(f"#{k}")
            continue
        jid = c.string(jb, "id", p) or f"#{k}"
        if jid in job_ids:
            c.bad(f"{p}.id", f"duplicate job id {jid!r}")
        job_ids.append(jid)
        pw[k] = c.number(jb, "power_mw", p, lo=0, lo_strict=True) or 0.0
        d = c.number(jb, "duration", p, integer=True, lo=1)
        r = c.number(jb, "release", p, default=0, integer=True, lo=0)
        e = c.number(jb, "deadline", p, default=H, integer=True, lo=1)
        val[k] = c.number(jb, "value", p, default=0.0, lo=0) or 0.0
        if d is not None and r is not None and e is not None:
            end = min(e, H)
            if r + d > end:
                c.bad(f"{p}.deadline", f"window too short: release {r} + duration {d} > "
                      f"min(deadline {e}, periods {H}) = {end}")
            dur[k], rel[k], dl[k] = d, r, end
        req = jb.get("required", False)
        if req is None:
            req = False
        if not isinstance(req, bool):
            c.bad(f"{p}.required", f"must be true or false, got {req!r}")
            req = False
        required[k] = req
        sl = jb.get("sites")
        if sl is not None:
            if not isinstance(sl, list) or not sl:
                c.bad(f"{p}.sites", "must be a non-empty list of site ids, or null for all sites")
            else:
                allowed[k] = False
                for q, sid in enumerate(sl):
                    if sid not in site_ids:
                        c.bad(f"{p}.sites[{q}]", f"unknown site id {sid!r}")
                    else:
                        allowed[k, site_ids.index(sid)] = True

    # ---- regions and latency --------------------------------------------
    regions = c.listing(data, "regions", required=False) or []
    R = len(regions)
    L = np.zeros((R, H))
    rev, pen, slo = np.zeros(R), np.zeros(R), np.zeros(R)
    region_ids: list[str] = []
    for k, rg in enumerate(regions):
        p = f"regions[{k}]"
        if not isinstance(rg, dict):
            c.bad(p, "must be an object")
            region_ids.append(f"#{k}")
            continue
        rid = c.string(rg, "id", p) or f"#{k}"
        if rid in region_ids:
            c.bad(f"{p}.id", f"duplicate region id {rid!r}")
        region_ids.append(rid)
        x = c.series(rg, "demand_mw", p, lo=0)
        L[k] = x if x is not None else 0.0
        rev[k] = c.number(rg, "revenue_per_mwh", p, lo=0) or 0.0
        pen[k] = c.number(rg, "unserved_penalty_per_mwh", p, default=0.0, lo=0) or 0.0
        slo[k] = c.number(rg, "latency_slo_ms", p, lo=0) or 0.0
    lat = np.full((R, S), np.nan)
    lm = data.get("latency_ms", {})
    if lm is None:
        lm = {}
    if not isinstance(lm, dict):
        c.bad("latency_ms", "must be an object {region: {site: ms}}")
        lm = {}
    for rid, row in lm.items():
        if rid not in region_ids:
            c.bad(f"latency_ms.{rid}", f"unknown region id {rid!r}")
            continue
        if not isinstance(row, dict):
            c.bad(f"latency_ms.{rid}", "must be an object {site: ms}")
            continue
        for sid, ms in row.items():
            if sid not in site_ids:
                c.bad(f"latency_ms.{rid}.{sid}", f"unknown site id {sid!r}")
                continue
            if ms is None:
                continue
            v = c._scalar(ms, f"latency_ms.{rid}.{sid}", lo=0)
            if v is not None:
                lat[region_ids.index(rid), site_ids.index(sid)] = v

    if c.problems:
        raise InstanceError(c.problems, source)
    return Instance(
        name=name, H=H, dt=dt, budget=budget, carbon_price=cprice, routing_cost=rcost,
        site_ids=tuple(site_ids), cap=cap, idle=idle, pue=pue, f_inf=f_inf, ren=ren, imax=imax, xmax=xmax,
        pb=pb, ps=ps, ci=ci, pc=pc, has_batt=has_batt, e_max=e_max, ch_max=ch_max, dis_max=dis_max,
        eta_c=eta_c, eta_d=eta_d, soc0=soc0, cd=cd, has_gen=has_gen, gmax=gmax, gmin=gmin, cg=cg, ef=ef,
        job_ids=tuple(job_ids), pow=pw, dur=dur, rel=rel, dl=dl, val=val, allowed=allowed, required=required,
        region_ids=tuple(region_ids), L=L, rev=rev, pen=pen, slo=slo, lat=lat, raw=copy.deepcopy(data),
    )


def _series_out(a: np.ndarray) -> float | list[float]:
    a = np.asarray(a, float)
    if a.size and np.all(a == a[0]):
        return float(a[0])
    return [float(v) for v in a]


def instance_to_dict(inst: Instance) -> dict:
    """Serialise an :class:`Instance` (possibly changed by an ablation)
    back to the MODEL.md format."""
    sites = []
    for s, sid in enumerate(inst.site_ids):
        d: dict[str, Any] = {
            "id": sid, "it_capacity_mw": float(inst.cap[s]), "idle_it_mw": float(inst.idle[s]),
            "pue": _series_out(inst.pue[s]), "inference_power_factor": float(inst.f_inf[s]),
            "renewable_mw": _series_out(inst.ren[s]),
            "grid": {"import_max_mw": float(inst.imax[s]), "export_max_mw": float(inst.xmax[s]),
                     "import_price": _series_out(inst.pb[s]), "export_price": _series_out(inst.ps[s]),
                     "carbon_intensity_t_per_mwh": _series_out(inst.ci[s]),
                     "peak_charge_per_mw": float(inst.pc[s])},
        }
        if inst.has_batt[s]:
            d["battery"] = {"energy_mwh": float(inst.e_max[s]), "charge_mw": float(inst.ch_max[s]),
                            "discharge_mw": float(inst.dis_max[s]), "charge_eff": float(inst.eta_c[s]),
                            "discharge_eff": float(inst.eta_d[s]), "initial_soc_mwh": float(inst.soc0[s]),
                            "degradation_cost_per_mwh": float(inst.cd[s])}
        if inst.has_gen[s]:
            d["generator"] = {"max_mw": float(inst.gmax[s]), "min_mw": float(inst.gmin[s]),
                              "cost_per_mwh": float(inst.cg[s]), "emission_t_per_mwh": float(inst.ef[s])}
        sites.append(d)
    jobs = [{"id": jid, "power_mw": float(inst.pow[j]), "duration": int(inst.dur[j]), "release": int(inst.rel[j]),
             "deadline": int(inst.dl[j]), "value": float(inst.val[j]),
             "sites": [inst.site_ids[s] for s in np.flatnonzero(inst.allowed[j])],
             "required": bool(inst.required[j])} for j, jid in enumerate(inst.job_ids)]
    regions = [{"id": rid, "demand_mw": _series_out(inst.L[r]), "revenue_per_mwh": float(inst.rev[r]),
                "unserved_penalty_per_mwh": float(inst.pen[r]), "latency_slo_ms": float(inst.slo[r])}
               for r, rid in enumerate(inst.region_ids)]
    lat = {rid: {inst.site_ids[s]: float(inst.lat[r, s]) for s in range(inst.S) if not np.isnan(inst.lat[r, s])}
           for r, rid in enumerate(inst.region_ids)}
    return {"name": inst.name, "periods": inst.H, "period_hours": inst.dt, "carbon_budget_t": inst.budget,
            "carbon_price_per_t": inst.carbon_price, "routing_cost_per_mwh_ms": inst.routing_cost,
            "sites": sites, "training_jobs": jobs, "regions": regions, "latency_ms": lat}
