"""Instance files: load, validate, and hold them as numpy arrays.

The file format is fixed by MODEL.md section 1. :func:`load_instance` (or
:func:`parse_instance` for an already-parsed dict) checks every rule before
any model is built and raises :class:`~carbonsched.errors.InstanceError`
listing each broken rule with its field path, e.g.
``sites[2].battery.charge_eff: must be in (0, 1]``.

One table of fields (:data:`SCHEMA`) drives both the parser and
:func:`instance_to_dict`: each entry names the JSON key, the
:class:`Instance` attribute, the kind (number, integer, series, flag), the
default and the allowed range. Unknown keys are refused with a "did you
mean" hint; the one optional addition is a free-form ``provenance`` object
at the top level (docs/model-notes.md).

The result is an immutable :class:`Instance` whose arrays are read-only and
in which every time series is expanded to an array of length ``H``. Units:
MW, MWh, $, tCO2, periods of ``dt`` hours.

Defaults where MODEL.md gives none (documented in docs/model-notes.md):
battery ``charge_eff``/``discharge_eff`` 1.0, ``initial_soc_mwh`` 0,
generator ``min_mw`` 0, job ``release`` 0, ``deadline`` H, ``value`` 0.
A deadline beyond ``H`` is allowed and means ``H``.

Magnitude limits (:data:`LIMITS`) refuse values no real instance has, before
anything is allocated: they catch unit mistakes (kW for MW, $/kWh for
$/MWh) and inputs that would exhaust memory.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InstanceError, InstanceNotFoundError

__all__ = ["LIMITS", "SCHEMA", "Instance", "default_instance_path", "load_instance", "parse_instance",
           "resolve_instance_path", "shipped_instances"]

#: Largest accepted magnitudes, each with the reason it is safe to refuse more.
LIMITS: dict[str, tuple[float, str]] = {
    "periods": (100_000, "11 years of hourly periods; more would not fit in memory once expanded"),
    "entities": (1_000_000, "sites, jobs or regions; more would not fit in memory once expanded"),
    "series_values": (2e8, "values in all expanded time series together (about 1.6 GB of float64)"),
    "pue": (10.0, "a PUE above 10 means cooling draws 9x the IT load: no data centre runs so"),
    "price": (1e5, "$/MWh; market price caps are below 1e4 $/MWh (a unit mistake, e.g. $/kWh x 1e6)"),
    "power": (1e6, "MW; a million MW is several countries' peak demand"),
    "energy": (1e8, "MWh; far above any battery"),
    "intensity": (10.0, "tCO2/MWh; the dirtiest generation emits about 1.2"),
    "money": (1e15, "$; no operational benefit comes near"),
    "latency": (1e6, "ms; over a quarter of an hour"),
    "file_bytes": (2 * 2**30, "bytes of JSON (2 GiB)"),
    "depth": (64, "levels of JSON nesting; the format needs 4"),
}


def _shipped_root():
    return resources.files("carbonsched") / "instances"


def shipped_instances() -> list[str]:
    """Names of the instances shipped inside the package."""
    return sorted(p.name.removesuffix(".json") for p in _shipped_root().iterdir() if p.name.endswith(".json"))


def resolve_instance_path(name_or_path: str | Path | None) -> Path:
    """Map ``None`` to the shipped ``paper-default``, a bare name
    (``medium``) to the shipped instance of that name, and a path to
    itself. Shipped instances are package data, so this works from any
    directory and for any kind of install."""
    if name_or_path is None:
        name_or_path = "paper-default"
    p = Path(name_or_path)
    if p.exists():
        if p.is_dir():
            raise InstanceNotFoundError(f"instance path is a directory, not a file: {p}")
        return p
    stem = p.name.removesuffix(".json")
    if p.parent == Path(".") and stem in shipped_instances():
        with resources.as_file(_shipped_root() / f"{stem}.json") as f:
            return Path(f)
    raise InstanceNotFoundError(f"instance file not found: {name_or_path} (shipped instances: "
                                f"{', '.join(shipped_instances())})")


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

    # optional (this package's additions to the format; docs/model-notes.md)
    site_located: np.ndarray = field(default_factory=lambda: np.zeros(0, bool), repr=False)  # [S] has a location
    site_lat: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # [S] degrees north
    site_lon: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # [S] degrees east
    region_located: np.ndarray = field(default_factory=lambda: np.zeros(0, bool), repr=False)
    region_lat: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    region_lon: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    provenance: Any = field(default=None, repr=False)  # optional free-form record of data sources

    def __post_init__(self) -> None:
        # arrays are read-only: an ablation makes new ones (with_changes), nothing edits them in place
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v.flags.writeable = False

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
        """A copy with some fields replaced (for ablations). The result is
        not re-validated; callers keep it consistent. Arrays given here are
        copied, so the caller's stay writable."""
        changes = {k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in changes.items()}
        return replace(self, **changes)

    def site_only(self, s: int) -> Instance:
        """Site ``s`` alone, as a one-site instance with every job and region
        kept: a job keeps its triples at ``s`` (in the same order as in
        :attr:`triples`), a region its pair with ``s`` if reachable. No job
        is required and there is no budget: the blocks of the site
        relaxation (:mod:`carbonsched.decomposition.site_blocks`) price
        those rows instead."""
        one = slice(s, s + 1)
        changes: dict[str, Any] = {f: getattr(self, f)[one] for f in _SITE_FIELDS if getattr(self, f).size}
        changes.update(site_ids=(self.site_ids[s],), allowed=self.allowed[:, one], lat=self.lat[:, one],
                       required=np.zeros(self.J, dtype=bool), budget=None, name=f"{self.name}[{self.site_ids[s]}]")
        return self.with_changes(**changes)

    def to_dict(self) -> dict:
        """The instance as a JSON-ready dict of MODEL.md format."""
        return instance_to_dict(self)


#: the Instance arrays indexed by site first ([S] or [S,H])
_SITE_FIELDS = ("cap", "idle", "pue", "f_inf", "ren", "imax", "xmax", "pb", "ps", "ci", "pc", "has_batt", "e_max",
                "ch_max", "dis_max", "eta_c", "eta_d", "soc0", "cd", "has_gen", "gmax", "gmin", "cg", "ef",
                "site_located", "site_lat", "site_lon")


# --------------------------------------------------------------------------
# The field table
# --------------------------------------------------------------------------
REQUIRED: Any = object()


@dataclass(frozen=True)
class Field:
    """One JSON key: its :class:`Instance` attribute, kind (``number``,
    ``integer``, ``series`` of H numbers or one number, ``flag``), default
    (REQUIRED: none; ``"H"``: the number of periods), range and the
    :data:`LIMITS` entry that bounds its magnitude."""

    key: str
    attr: str
    kind: str = "number"
    default: Any = REQUIRED
    lo: float | None = None
    lo_strict: bool = False
    hi: float | None = None
    limit: str | None = None
    nullable: bool = False


@dataclass(frozen=True)
class Group:
    """A nested object of a site (grid, battery, generator). ``presence``:
    the boolean attribute set where the object is given (None: required)."""

    key: str
    fields: tuple[Field, ...]
    presence: str | None = None


@dataclass(frozen=True)
class Section:
    """A top-level list of entities with ids (sites, jobs, regions)."""

    key: str
    ids: str
    fields: tuple[Field, ...]
    groups: tuple[Group, ...] = ()
    by_hand: tuple[str, ...] = ()  # keys read by hand (a job's "sites")
    required: bool = False


TOP = (
    Field("periods", "H", "integer", lo=1, limit="periods"),
    Field("period_hours", "dt", default=1.0, lo=0, lo_strict=True, hi=8784.0),
    Field("carbon_budget_t", "budget", default=None, lo=0, limit="money", nullable=True),
    Field("carbon_price_per_t", "carbon_price", default=0.0, lo=0, limit="price"),
    Field("routing_cost_per_mwh_ms", "routing_cost", default=0.0, lo=0, limit="price"),
)
SITES = Section("sites", "site_ids", (
    Field("it_capacity_mw", "cap", lo=0, limit="power"),
    Field("idle_it_mw", "idle", default=0.0, lo=0, limit="power"),
    Field("pue", "pue", "series", lo=1.0, limit="pue"),
    Field("inference_power_factor", "f_inf", default=1.0, lo=0, lo_strict=True, limit="power"),
    Field("renewable_mw", "ren", "series", default=0.0, lo=0, limit="power"),
), groups=(
    Group("grid", (
        Field("import_max_mw", "imax", lo=0, limit="power"),
        Field("export_max_mw", "xmax", default=0.0, lo=0, limit="power"),
        Field("import_price", "pb", "series", limit="price"),
        Field("export_price", "ps", "series", default=0.0, limit="price"),
        Field("carbon_intensity_t_per_mwh", "ci", "series", lo=0, limit="intensity"),
        Field("peak_charge_per_mw", "pc", default=0.0, lo=0, limit="money"),
    )),
    Group("battery", (
        Field("energy_mwh", "e_max", lo=0, limit="energy"),
        Field("charge_mw", "ch_max", lo=0, limit="power"),
        Field("discharge_mw", "dis_max", lo=0, limit="power"),
        Field("charge_eff", "eta_c", default=1.0, lo=0, lo_strict=True, hi=1.0),
        Field("discharge_eff", "eta_d", default=1.0, lo=0, lo_strict=True, hi=1.0),
        Field("initial_soc_mwh", "soc0", default=0.0, lo=0, limit="energy"),
        Field("degradation_cost_per_mwh", "cd", default=0.0, lo=0, limit="price"),
    ), presence="has_batt"),
    Group("generator", (
        Field("max_mw", "gmax", lo=0, limit="power"),
        Field("min_mw", "gmin", default=0.0, lo=0, limit="power"),
        Field("cost_per_mwh", "cg", default=0.0, lo=0, limit="price"),
        Field("emission_t_per_mwh", "ef", default=0.0, lo=0, limit="intensity"),
    ), presence="has_gen"),
    Group("location", (
        Field("lat", "site_lat", lo=-90.0, hi=90.0),
        Field("lon", "site_lon", lo=-180.0, hi=180.0),
    ), presence="site_located"),
), required=True)
JOBS = Section("training_jobs", "job_ids", (
    Field("power_mw", "pow", lo=0, lo_strict=True, limit="power"),
    Field("duration", "dur", "integer", lo=1, limit="periods"),
    Field("release", "rel", "integer", default=0, lo=0, limit="periods"),
    Field("deadline", "dl", "integer", default="H", lo=1, limit="periods"),
    Field("value", "val", default=0.0, lo=0, limit="money"),
    Field("required", "required", "flag", default=False),
), by_hand=("sites",))
REGIONS = Section("regions", "region_ids", (
    Field("demand_mw", "L", "series", lo=0, limit="power"),
    Field("revenue_per_mwh", "rev", lo=0, limit="price"),
    Field("unserved_penalty_per_mwh", "pen", default=0.0, lo=0, limit="price"),
    Field("latency_slo_ms", "slo", lo=0, limit="latency"),
), groups=(
    Group("location", (
        Field("lat", "region_lat", lo=-90.0, hi=90.0),
        Field("lon", "region_lon", lo=-180.0, hi=180.0),
    ), presence="region_located"),
))
#: the whole format: top-level fields, then the three entity sections
SCHEMA = (TOP, (SITES, JOBS, REGIONS))
TOP_KEYS = ("name", *(f.key for f in TOP), "sites", "training_jobs", "regions", "latency_ms", "provenance")


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------
class _Checker:
    """Collects problems as ``path: message`` strings."""

    def __init__(self, H: int | None):
        self.H = H
        self.problems: list[str] = []
        self.paths: list[str] = []  # each problem's path, in the same order

    def bad(self, path: str, msg: str) -> None:
        self.problems.append(f"{path}: {msg}")
        self.paths.append(path)

    def failed(self, *paths: str) -> bool:
        """Whether a problem was found at or under any of ``paths``: a rule
        across fields is not checked on a field that is already wrong (its
        value there is a placeholder)."""
        return any(q == p or q.startswith((p + ".", p + "[")) for q in self.paths for p in paths)

    def unknown_keys(self, obj: dict, known: tuple[str, ...], path: str) -> None:
        for k in obj:
            if k not in known:
                hint = difflib.get_close_matches(str(k), known, n=1, cutoff=0.6)
                where = f"{path}.{k}" if path else str(k)
                self.bad(where, "unknown key" + (f"; did you mean {hint[0]!r}?" if hint else
                                                 f" (known: {', '.join(known)})"))

    def scalar(self, v: Any, p: str, f: Field) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.bad(p, f"must be a number, got {type(v).__name__} {v!r}"[:200])
            return None
        if isinstance(v, int) and abs(v) > 1e15:  # an integer literal too large for a float
            self.bad(p, f"must be a finite number of sensible size, got an integer of {len(str(abs(v)))} digits")
            return None
        if not math.isfinite(v):
            self.bad(p, f"must be finite, got {v}")
            return None
        if f.kind == "integer" and float(v) != int(v):
            self.bad(p, f"must be an integer, got {v}")
            return None
        if f.lo is not None and (v <= f.lo if f.lo_strict else v < f.lo):
            self.bad(p, f"must be {'>' if f.lo_strict else '>='} {f.lo:g}, got {v:g}")
            return None
        if f.hi is not None and v > f.hi:
            self.bad(p, f"must be <= {f.hi:g}, got {v:g}")
            return None
        if f.limit is not None and abs(v) > LIMITS[f.limit][0]:
            lim, why = LIMITS[f.limit]
            self.bad(p, f"must be at most {lim:g} in size, got {v:g} ({why})")
            return None
        return int(v) if f.kind == "integer" else float(v)

    def value(self, obj: dict, f: Field, path: str) -> Any:
        """The field's value (series expanded to H), its default when
        absent, or None after recording a problem."""
        p = f"{path}.{f.key}" if path else f.key
        v = obj.get(f.key)
        if v is None:
            if f.nullable and f.key in obj:
                return None
            if f.default is REQUIRED:
                self.bad(p, "is required")
                return None
            d = self.H if f.default == "H" else f.default
            return np.full(self.H or 0, float(d)) if f.kind == "series" else d
        if f.kind == "flag":
            if not isinstance(v, bool):
                self.bad(p, f"must be true or false, got {v!r}"[:200])
                return None
            return v
        if f.kind == "series" and isinstance(v, list):
            if len(v) != self.H:
                self.bad(p, f"must have exactly periods={self.H} values, got {len(v)}")
                return None
            out = np.empty(len(v))
            n_bad = 0
            for i, x in enumerate(v):
                y = self.scalar(x, f"{p}[{i}]", f)
                if y is None:
                    n_bad += 1
                    if n_bad >= 3:
                        break
                else:
                    out[i] = y
            return out if n_bad == 0 else None
        y = self.scalar(v, p, f)
        if y is None or f.kind != "series":
            return y
        return np.full(self.H or 0, y)

    def entities(self, data: dict, sec: Section) -> tuple[list[str], dict[str, np.ndarray], list[dict | None]]:
        """Parse one section: its ids, one array per field (and group
        presence flags), and the raw items (for the keys read by hand)."""
        items = data.get(sec.key)
        if items is None:
            if sec.required:
                self.bad(sec.key, "is required")
            items = []
        elif not isinstance(items, list):
            self.bad(sec.key, f"must be a list, got {type(items).__name__}")
            items = []
        if sec.required and isinstance(data.get(sec.key), list) and not items:
            self.bad(sec.key, f"must list at least one {sec.key.rstrip('s')}")
        if len(items) > LIMITS["entities"][0]:
            self.bad(sec.key, f"has {len(items)} entries; at most {LIMITS['entities'][0]:g} ({LIMITS['entities'][1]})")
            items = []
        n, H = len(items), self.H or 0
        all_fields = [*sec.fields, *(f for g in sec.groups for f in g.fields)]
        arrays: dict[str, np.ndarray] = {}
        for f in all_fields:
            d = 0.0 if f.default in (REQUIRED, None) else (H if f.default == "H" else f.default)
            shape = (n, H) if f.kind == "series" else (n,)
            dtype = bool if f.kind == "flag" else (int if f.kind == "integer" else float)
            arrays[f.attr] = np.full(shape, d, dtype=dtype)
        for g in sec.groups:
            if g.presence:
                arrays[g.presence] = np.zeros(n, bool)
        ids: list[str] = []
        raw: list[dict | None] = []
        known = ("id", *(f.key for f in sec.fields), *(g.key for g in sec.groups), *sec.by_hand)
        for i, item in enumerate(items):
            path = f"{sec.key}[{i}]"
            if not isinstance(item, dict):
                self.bad(path, "must be an object")
                ids.append(f"#{i}")
                raw.append(None)
                continue
            raw.append(item)
            eid = item.get("id")
            if not isinstance(eid, str) or not eid:
                self.bad(f"{path}.id", "is required and must be a non-empty string")
                eid = f"#{i}"
            elif eid in ids:
                self.bad(f"{path}.id", f"duplicate {sec.key.rstrip('s').replace('training_', '')} id {eid!r}")
            ids.append(eid)
            self.unknown_keys(item, known, path)
            self._fill(item, sec.fields, path, arrays, i)
            for g in sec.groups:
                sub = item.get(g.key)
                gp = f"{path}.{g.key}"
                if sub is None:
                    if g.presence is None:
                        self.bad(gp, "is required")
                    continue
                if not isinstance(sub, dict):
                    self.bad(gp, f"must be an object, got {type(sub).__name__}")
                    continue
                if g.presence:
                    arrays[g.presence][i] = True
                self.unknown_keys(sub, tuple(f.key for f in g.fields), gp)
                self._fill(sub, g.fields, gp, arrays, i)
        return ids, arrays, raw

    def _fill(self, obj: dict, flds: tuple[Field, ...], path: str, arrays: dict[str, np.ndarray], i: int) -> None:
        for f in flds:
            v = self.value(obj, f, path)
            if v is not None:
                arrays[f.attr][i] = v


def _read_json(p: Path) -> Any:
    size = p.stat().st_size
    if size > LIMITS["file_bytes"][0]:
        raise InstanceError([f"(file): {size} bytes; at most {LIMITS['file_bytes'][0]:g} ({LIMITS['file_bytes'][1]})"],
                            str(p))
    try:
        with open(p, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as e:
        raise InstanceError([f"(file): not valid JSON: {e}"], str(p)) from None
    except UnicodeDecodeError as e:
        raise InstanceError([f"(file): not UTF-8 text: {e}"], str(p)) from None
    except RecursionError:
        raise InstanceError([f"(file): JSON nested too deeply (the format needs {4} levels)"], str(p)) from None
    except OSError as e:
        raise InstanceNotFoundError(f"cannot read instance file {p}: {e.strerror or e}") from None


def _depth(obj: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, stopping once past ``limit``."""
    stack = [(obj, 1)]
    deepest = 0
    while stack:
        o, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values() if isinstance(v, (dict, list)))
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o if isinstance(v, (dict, list)))
    return deepest


def load_instance(path: str | Path | None = None) -> Instance:
    """Read and validate an instance file (``None``: the shipped
    ``paper-default``; a bare name: a shipped instance)."""
    p = resolve_instance_path(path)
    return parse_instance(_read_json(p), source=str(p))


def parse_instance(data: Any, source: str | None = None) -> Instance:
    """Validate a parsed instance dict and build the :class:`Instance`."""
    if not isinstance(data, dict):
        raise InstanceError(["(top level): must be a JSON object"], source)
    if _depth(data, int(LIMITS["depth"][0])) > LIMITS["depth"][0]:
        raise InstanceError([f"(top level): nested deeper than {LIMITS['depth'][0]:g} levels ({LIMITS['depth'][1]})"],
                            source)
    c = _Checker(None)
    c.unknown_keys(data, TOP_KEYS, "")
    H = c.value(data, TOP[0], "")
    if H is None:
        raise InstanceError(c.problems, source)
    c.H = H
    n_series = H * sum(len(data.get(k) or []) if isinstance(data.get(k), list) else 0
                       for k in ("sites", "regions")) * 6
    if n_series > LIMITS["series_values"][0]:
        raise InstanceError([f"periods: {H} periods x the sites and regions make {n_series:g} series values; at most "
                             f"{LIMITS['series_values'][0]:g} ({LIMITS['series_values'][1]})"], source)
    top = {f.attr: c.value(data, f, "") for f in TOP[1:]}
    name = data.get("name", "unnamed")
    if not isinstance(name, str):
        c.bad("name", "must be a string")
        name = "unnamed"
    prov = data.get("provenance")
    if prov is not None and not isinstance(prov, dict):
        c.bad("provenance", "must be an object (free-form record of data sources)")
    site_ids, sa, _ = c.entities(data, SITES)
    job_ids, ja, jobs_raw = c.entities(data, JOBS)
    region_ids, ra, _ = c.entities(data, REGIONS)
    _site_rules(c, sa)
    allowed = _job_rules(c, ja, jobs_raw, site_ids, H)
    lat = _latency(c, data, region_ids, site_ids)
    if c.problems:
        raise InstanceError(c.problems, source)
    ja["dl"] = np.minimum(ja["dl"], H)
    return Instance(name=name, H=H, dt=top["dt"], budget=top["budget"], carbon_price=top["carbon_price"],
                    routing_cost=top["routing_cost"], site_ids=tuple(site_ids), **sa, job_ids=tuple(job_ids), **ja,
                    allowed=allowed, region_ids=tuple(region_ids), **ra, lat=lat, provenance=prov)


def _site_rules(c: _Checker, a: dict[str, np.ndarray]) -> None:
    """Rules across a site's fields."""
    for i in range(a["cap"].size):
        p = f"sites[{i}]"
        if a["idle"][i] > a["cap"][i] and not c.failed(f"{p}.idle_it_mw", f"{p}.it_capacity_mw"):
            c.bad(f"{p}.idle_it_mw", f"must be <= it_capacity_mw ({a['cap'][i]:g}), got {a['idle'][i]:g}")
        over = np.flatnonzero(a["ps"][i] > a["pb"][i] + 1e-12)
        if over.size and not c.failed(f"{p}.grid.export_price", f"{p}.grid.import_price"):
            t = int(over[0])
            c.bad(f"{p}.grid.export_price", f"must be <= import_price in every period; period {t}: "
                  f"{a['ps'][i][t]:g} > {a['pb'][i][t]:g} ({over.size} period(s))")
        if (a["has_batt"][i] and a["soc0"][i] > a["e_max"][i]
                and not c.failed(f"{p}.battery.initial_soc_mwh", f"{p}.battery.energy_mwh")):
            c.bad(f"{p}.battery.initial_soc_mwh", f"must be <= energy_mwh ({a['e_max'][i]:g}), got {a['soc0'][i]:g}")
        if a["has_gen"][i] and a["gmin"][i] > a["gmax"][i] and not c.failed(f"{p}.generator"):
            c.bad(f"{p}.generator.min_mw", f"must be <= max_mw ({a['gmax'][i]:g}), got {a['gmin'][i]:g}")


def _job_rules(c: _Checker, a: dict[str, np.ndarray], raw: list[dict | None], site_ids: list[str], H: int) -> np.ndarray:
    """A job's window, and its allowed sites as a [J,S] mask."""
    allowed = np.ones((len(raw), len(site_ids)), bool)
    for k, jb in enumerate(raw):
        if jb is None:
            continue
        p = f"training_jobs[{k}]"
        r, d, e = int(a["rel"][k]), int(a["dur"][k]), int(a["dl"][k])
        if r + d > min(e, H) and not c.failed(f"{p}.release", f"{p}.duration", f"{p}.deadline", "periods"):
            c.bad(f"{p}.deadline", f"window too short: release {r} + duration {d} > "
                  f"min(deadline {e}, periods {H}) = {min(e, H)}")
        sl = jb.get("sites")
        if sl is None:
            continue
        if not isinstance(sl, list) or not sl:
            c.bad(f"{p}.sites", "must be a non-empty list of site ids, or null for all sites")
            continue
        allowed[k] = False
        for q, sid in enumerate(sl):
            if isinstance(sid, str) and sid in site_ids:
                allowed[k, site_ids.index(sid)] = True
            else:
                c.bad(f"{p}.sites[{q}]", f"unknown site id {sid!r}"[:200])
    return allowed


def _latency(c: _Checker, data: dict, region_ids: list[str], site_ids: list[str]) -> np.ndarray:
    """latency_ms as an [R,S] array, nan where a pair is missing."""
    lat = np.full((len(region_ids), len(site_ids)), np.nan)
    lm = data.get("latency_ms") or {}
    if not isinstance(lm, dict):
        c.bad("latency_ms", "must be an object {region: {site: ms}}")
        return lat
    ms_field = Field("ms", "lat", lo=0, limit="latency")
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
            v = c.scalar(ms, f"latency_ms.{rid}.{sid}", ms_field)
            if v is not None:
                lat[region_ids.index(rid), site_ids.index(sid)] = v
    return lat


# --------------------------------------------------------------------------
# Back to the file format
# --------------------------------------------------------------------------
def _out(a: np.ndarray | float, f: Field) -> Any:
    if f.kind == "series":
        a = np.asarray(a, float)
        return float(a[0]) if a.size and np.all(a == a[0]) else [float(v) for v in a]
    if f.kind == "integer":
        return int(a)
    if f.kind == "flag":
        return bool(a)
    return float(a)


def instance_to_dict(inst: Instance) -> dict:
    """Serialise an :class:`Instance` (possibly changed by an ablation) back
    to the MODEL.md format, driven by the same field table as the parser."""
    out: dict[str, Any] = {"name": inst.name}
    for f in TOP:
        v = getattr(inst, f.attr)
        out[f.key] = None if v is None else _out(v, f)
    for sec in SCHEMA[1]:
        ids = getattr(inst, sec.ids)
        items = []
        for i, eid in enumerate(ids):
            d: dict[str, Any] = {"id": eid}
            d.update({f.key: _out(getattr(inst, f.attr)[i], f) for f in sec.fields})
            for g in sec.groups:
                if g.presence is None or getattr(inst, g.presence)[i]:
                    d[g.key] = {f.key: _out(getattr(inst, f.attr)[i], f) for f in g.fields}
            if sec is JOBS:
                d["sites"] = [inst.site_ids[s] for s in np.flatnonzero(inst.allowed[i])]
            items.append(d)
        out[sec.key] = items
    out["latency_ms"] = {rid: {inst.site_ids[s]: float(inst.lat[r, s]) for s in range(inst.S)
                               if not np.isnan(inst.lat[r, s])} for r, rid in enumerate(inst.region_ids)}
    if inst.provenance is not None:
        out["provenance"] = inst.provenance
    return out
