"""Real hourly prices and carbon intensity, shipped with the package.

The data (``carbonsched/data/``, see its ``LICENSE.md``) are four 14-day
windows of 2018 (from Monday 8 January, 9 April, 9 July and 8 October,
00:00 UTC) for five bidding zones: DE, FR, NL, CH, CZ.

- **Prices**: SMARD.de (Bundesnetzagentur) day-ahead prices, EUR/MWh, CC BY
  4.0; converted to $ at ``USD_PER_EUR`` (the ECB's 2018 average reference
  rate). DE is the DE-AT-LU price until 30 September 2018 and DE-LU after.
- **Carbon intensity**: ENTSO-E Transparency Platform actual generation per
  production type, grouped into fuels, times lifecycle emission factors
  (:data:`EMISSION_FACTORS`): the intensity of the zone's own generation
  (imports and exports are not traced).
- **Wind**: the zone's wind output over its largest hourly output in 2018,
  a capacity-factor proxy for a site's own wind farm.

Pure Python and numpy; no optional dependency.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from .errors import OptionError

__all__ = ["EMISSION_FACTORS", "USD_PER_EUR", "ZONES", "ZoneSeries", "data_windows", "zone_series"]

USD_PER_EUR = 1.181  # ECB euro reference rate, 2018 annual average (1.1810 USD per EUR)

#: lifecycle emissions, t CO2-eq per MWh generated, by fuel group. IPCC AR5 WG III Annex III, Table A.III.2
#: (Schloemer et al. 2014), medians: coal 0.820 (pulverised coal), gas 0.490 (combined cycle), biomass 0.230
#: (dedicated), geothermal 0.038, hydro 0.024, nuclear 0.012, solar 0.048 (utility PV), wind 0.011 (onshore).
#: Oil is not in that table: 0.840, the median for oil in IPCC SRREN (2011) Annex II. Assumptions, not from the
#: IPCC: waste and other renewables as biomass (0.230), 'other' (mostly fossil CHP) as gas (0.490), pumped
#: storage 0 (its charging energy was counted where it was generated).
EMISSION_FACTORS: dict[str, float] = {
    "coal": 0.820, "gas": 0.490, "oil": 0.840, "biomass": 0.230, "geothermal": 0.038, "hydro": 0.024,
    "nuclear": 0.012, "solar": 0.048, "wind": 0.011, "waste": 0.230, "other_renewable": 0.230, "other": 0.490,
    "pumped_storage": 0.0,
}

ZONES = {"DE": "Germany", "FR": "France", "NL": "Netherlands", "CH": "Switzerland", "CZ": "Czech Republic"}


@dataclass(frozen=True)
class ZoneSeries:
    """A zone's hourly series over a horizon: ``utc_hours`` (datetime64[h]),
    ``price`` ($/MWh), ``intensity`` (t/MWh), ``wind_cf`` (0..1) and the
    generation mix ``mix`` {fuel: MW}."""

    zone: str
    utc_hours: np.ndarray
    price: np.ndarray
    intensity: np.ndarray
    wind_cf: np.ndarray
    mix: dict[str, np.ndarray]


def _read(name: str) -> list[dict[str, str]]:
    text = resources.files("carbonsched").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


@lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """(hours, {zone: {column: values}} of generation, {zone: price EUR/MWh})."""
    prices = _read("smard_day_ahead_2018.csv")
    hours = np.array([r["utc_hour"].rstrip("Z") for r in prices], dtype="datetime64[h]")
    price = {z: np.array([float(r[z]) for r in prices]) for z in ZONES}
    gen: dict[str, dict[str, list[float]]] = {z: {} for z in ZONES}
    gen_hours: dict[str, list] = {z: [] for z in ZONES}
    for r in _read("entsoe_generation_2018.csv"):
        z = r["zone"]
        gen_hours[z].append(r["utc_hour"].rstrip("Z"))
        for k, v in r.items():
            if k not in ("utc_hour", "zone"):
                gen[z].setdefault(k, []).append(float(v))
    for z in ZONES:
        if not np.array_equal(np.array(gen_hours[z], dtype="datetime64[h]"), hours):
            raise OptionError(f"shipped data: generation hours of zone {z} differ from the price hours")
    return hours, {z: {k: np.array(v) for k, v in cols.items()} for z, cols in gen.items()}, price


def data_windows() -> list[tuple[np.datetime64, np.datetime64]]:
    """The shipped windows as (first hour, hour after the last), UTC."""
    hours = _tables()[0]
    breaks = np.flatnonzero(np.diff(hours) != np.timedelta64(1, "h")) + 1
    starts = np.r_[0, breaks]
    ends = np.r_[breaks, hours.size]
    return [(hours[a], hours[b - 1] + np.timedelta64(1, "h")) for a, b in zip(starts, ends)]


def zone_series(zone: str, start: str | np.datetime64, hours: int) -> ZoneSeries:
    """``hours`` hourly values of ``zone`` from ``start`` (UTC, e.g.
    '2018-07-09' or '2018-07-09T06'); the whole span must lie in one
    shipped window (:func:`data_windows`)."""
    if zone not in ZONES:
        raise OptionError(f"zone {zone!r}: the shipped data cover {', '.join(ZONES)}")
    allh, gen, price = _tables()
    try:
        t0 = np.datetime64(str(start), "h")
    except ValueError:
        raise OptionError(f"start {start!r}: not a date (use e.g. 2018-07-09 or 2018-07-09T06)") from None
    i = int(np.searchsorted(allh, t0))
    span = allh[i:i + hours]
    want = t0 + np.arange(hours) * np.timedelta64(1, "h")
    if span.size != hours or not np.array_equal(span, want):
        wins = ", ".join(f"{a} to {b}" for a, b in data_windows())
        raise OptionError(f"start {t0} + {hours} h: not inside one shipped data window (UTC): {wins}")
    cols = {k: v[i:i + hours] for k, v in gen[zone].items()}
    mix = {k: v for k, v in cols.items() if k in EMISSION_FACTORS}
    total = sum(mix.values())
    emitted = sum(EMISSION_FACTORS[k] * v for k, v in mix.items())
    with np.errstate(invalid="ignore", divide="ignore"):
        intensity = np.where(total > 0, emitted / total, np.nan)
    if np.isnan(intensity).any():
        raise OptionError(f"shipped data: zone {zone} reports no generation in some hour from {t0}")
    return ZoneSeries(zone, want, price[zone][i:i + hours] * USD_PER_EUR, intensity, cols["wind_cf"], mix)
