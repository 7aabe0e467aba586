"""Weather to PV output and PUE, through pvlib (the optional ``[data]`` extra).

Nothing here is downloaded: pvlib's wheel carries hourly typical-year
weather (TMY3 ``723170TYA.CSV``, Greensboro NC; ``703165TY.csv``, Sand
Point AK; TMY2 ``12839.tm2``, Miami FL), the Linke turbidity climatology
for its clear-sky model, and an altitude map.

A site's PV (:func:`pv_and_temperature`):

1. irradiance -- from the TMY file the site names (its GHI, DNI, DHI and
   air temperature at the same day of year and local solar hour), or else
   clear-sky irradiance at the site's own coordinates (Ineichen with Linke
   turbidity) times an hourly clear-sky index taken from a TMY day sampled
   within +-15 days of the same day of year (so clouds come in realistic
   days, not as noise); DNI and DHI then from GHI by the Erbs model;
2. plane of array: a fixed rack tilted at the latitude (<= 35 deg), facing
   the equator, isotropic sky;
3. cell temperature: SAPM, open rack glass/glass;
4. DC power: PVWatts, -0.4 %/K, times the stated capacity (MW at 1000 W/m2
   and 25 C), no losses beyond temperature.

Ambient temperature: the TMY's, shifted by ``LAPSE_C_PER_DEG_LAT`` for each
degree of latitude the site lies poleward of the TMY station (an assumption
for sites without their own TMY, see docs/generator.md).

PUE (:func:`pue_from_temperature`): flat at ``PUE_FREE`` while outside air
can cool the hall (ambient at or below ``T_FREE_C``), then rising by
``PUE_SLOPE`` per kelvin, capped at ``PUE_MAX``. The threshold is the
upper edge of ASHRAE TC 9.9's recommended inlet envelope (18-27 C) less an
approach of 9 K; the slope is our assumption (docs/generator.md).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .errors import OptionError

__all__ = ["LAPSE_C_PER_DEG_LAT", "PUE_FREE", "PUE_MAX", "PUE_SLOPE", "REFERENCE_TMY", "T_FREE_C", "SiteWeather",
           "pue_from_temperature", "pv_and_temperature", "pv_power_mw", "require_pvlib", "tmy_annual_ghi_kwh_m2",
           "tmy_path", "tmy_weather"]

REFERENCE_TMY = "723170TYA.CSV"  # Greensboro NC, TMY3 (NREL), shipped in pvlib's wheel
LAPSE_C_PER_DEG_LAT = 0.4  # K colder per degree of latitude poleward of the TMY station
T_FREE_C = 18.0  # ambient at or below which economisers carry the cooling
PUE_FREE = 1.10
PUE_SLOPE = 0.012  # PUE per K above T_FREE_C
PUE_MAX = 1.45
MODULE_GAMMA = -0.004  # 1/K, PVWatts default
MAX_TILT_DEG = 35.0


def require_pvlib() -> Any:
    """Import pvlib, or say which extra brings it."""
    try:
        import pvlib
    except ImportError as e:
        raise OptionError("real weather needs pvlib, an optional dependency: pip install 'carbonsched[data]' "
                          f"({e})") from None
    return pvlib


def tmy_path(name: str) -> str:
    """Path of a TMY file: a name shipped in pvlib's data folder, or a path."""
    if os.path.exists(name):
        return name
    pvlib = require_pvlib()
    p = os.path.join(os.path.dirname(pvlib.__file__), "data", name)
    if not os.path.exists(p):
        raise OptionError(f"TMY file {name!r}: not a path, nor one of pvlib's data files "
                          "(723170TYA.CSV, 703165TY.csv, 12839.tm2)")
    return p


@dataclass(frozen=True)
class SiteWeather:
    """A TMY file read into arrays over the 365 x 24 hours of its year, in
    the station's local standard time, hour-ending as the file stamps it
    (``[day, hour]``): GHI, DNI, DHI (W/m2), air temperature (C), wind
    speed (m/s), and the station's latitude, longitude and UTC offset (h)."""

    ghi: np.ndarray
    dni: np.ndarray
    dhi: np.ndarray
    temp_air: np.ndarray
    wind_speed: np.ndarray
    latitude: float
    longitude: float
    utc_offset_h: float


@lru_cache(maxsize=8)
def tmy_weather(name: str = REFERENCE_TMY) -> SiteWeather:
    """Read a TMY2/TMY3 file through pvlib's readers."""
    pvlib = require_pvlib()
    path = tmy_path(name)
    if path.lower().endswith(".tm2"):
        data, meta = pvlib.iotools.read_tmy2(path)  # TMY2 keeps its own column names; TMY3's are mapped below
        data = data.rename(columns={"GHI": "ghi", "DNI": "dni", "DHI": "dhi", "DryBulb": "temp_air",
                                    "Wspd": "wind_speed"})
        lat, lon, tz = meta["latitude"], meta["longitude"], meta["TZ"]
    else:
        data, meta = pvlib.iotools.read_tmy3(path, coerce_year=2001, map_variables=True)
        lat, lon, tz = meta["latitude"], meta["longitude"], meta["TZ"]
    n = 365 * 24
    if len(data) < n:
        raise OptionError(f"TMY file {name!r}: {len(data)} hours, expected {n}")

    def grid(col: str) -> np.ndarray:
        return np.asarray(data[col], dtype=float)[:n].reshape(365, 24)

    return SiteWeather(grid("ghi"), grid("dni"), grid("dhi"), grid("temp_air"), grid("wind_speed"), float(lat),
                       float(lon), float(tz))


@lru_cache(maxsize=8)
def _clear_sky_index(name: str) -> np.ndarray:
    """[365, 24] the TMY's measured GHI over Ineichen clear-sky GHI at the
    station (NaN where the clear sky gives under 20 W/m2)."""
    pvlib = require_pvlib()
    import pandas as pd

    w = tmy_weather(name)
    times = pd.date_range("2001-01-01 00:30", periods=365 * 24, freq="h",
                          tz=f"Etc/GMT{-int(w.utc_offset_h):+d}")  # hour-ending stamps: mid-hour is 30 min before
    loc = pvlib.location.Location(w.latitude, w.longitude)
    cs = np.asarray(loc.get_clearsky(times.tz_convert("UTC"), model="ineichen")["ghi"], float).reshape(365, 24)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(cs >= 20.0, w.ghi / cs, np.nan)
    return np.clip(k, 0.0, 1.2)


def pue_from_temperature(temp_c: np.ndarray) -> np.ndarray:
    """PUE (>= 1) for ambient temperature ``temp_c`` (C), see the module docstring."""
    t = np.asarray(temp_c, dtype=float)
    return np.clip(PUE_FREE + PUE_SLOPE * np.maximum(0.0, t - T_FREE_C), PUE_FREE, PUE_MAX)


def pv_and_temperature(lat: float, lon: float, utc_hours: np.ndarray, capacity_mw: float, rng: np.random.Generator,
                       *, tmy: str | None = None, reference: str = REFERENCE_TMY) -> tuple[np.ndarray, np.ndarray]:
    """PV output (MW) and ambient temperature (C) of a site at (``lat``,
    ``lon``) for each UTC hour in ``utc_hours`` (numpy datetime64, hour
    starts), see the module docstring. ``tmy``: the site's own TMY file;
    otherwise clear sky at the site with clouds and temperature from
    ``reference``. ``rng`` draws the TMY days (seeded by the caller)."""
    pvlib = require_pvlib()
    import pandas as pd

    times = pd.DatetimeIndex(np.asarray(utc_hours, dtype="datetime64[s]")).tz_localize("UTC")
    mid = times + pd.Timedelta(minutes=30)
    solpos = pvlib.solarposition.get_solarposition(mid, lat, lon)
    zen = np.asarray(solpos["apparent_zenith"], float)
    azi = np.asarray(solpos["azimuth"], float)
    # local solar hour and day of year of each period, at the site
    solar_h = (mid.hour + mid.minute / 60.0 + lon / 15.0) % 24.0
    doy = (mid.day_of_year - 1 + np.floor((mid.hour + mid.minute / 60.0 + lon / 15.0) / 24.0)).astype(int) % 365
    w = tmy_weather(tmy or reference)
    # the TMY hour (hour-ending, station standard time) closest to the same local solar time at the station
    station_shift = w.longitude / 15.0 - w.utc_offset_h  # solar time - standard time at the station, h
    tmy_hour = np.floor((solar_h - station_shift) % 24.0).astype(int)  # index of the hour ending at +1
    if tmy is not None:
        day = doy
        ghi = w.ghi[day, tmy_hour]
        dni = w.dni[day, tmy_hour]
        dhi = w.dhi[day, tmy_hour]
        temp = w.temp_air[day, tmy_hour]
    else:
        # one sampled TMY day per site-local day, within +-15 days of the same day of year
        local_day = np.asarray((times + pd.to_timedelta(lon / 15.0, unit="h")).normalize().asi8)
        days, inv = np.unique(local_day, return_inverse=True)
        first_doy = np.array([doy[inv == i][0] for i in range(days.size)])
        picks = (first_doy + rng.integers(-15, 16, size=days.size)) % 365
        day = picks[inv]
        k = _clear_sky_index(reference)[day, tmy_hour]
        k = np.where(np.isnan(k), np.nanmean(_clear_sky_index(reference)[day], axis=1), k)
        k = np.nan_to_num(k, nan=1.0)
        loc = pvlib.location.Location(lat, lon)
        cs = np.asarray(loc.get_clearsky(mid, model="ineichen", solar_position=solpos)["ghi"], float)
        ghi = cs * k
        parts = pvlib.irradiance.erbs(ghi, zen, mid)
        dni = np.asarray(parts["dni"], float)
        dhi = np.asarray(parts["dhi"], float)
        temp = w.temp_air[day, tmy_hour] - LAPSE_C_PER_DEG_LAT * (abs(lat) - abs(w.latitude))
    wind = w.wind_speed[day, tmy_hour]
    pv = pv_power_mw(ghi, dni, dhi, temp, wind, zen, azi, lat, capacity_mw)
    return pv, np.asarray(temp, float)


def pv_power_mw(ghi, dni, dhi, temp_air, wind_speed, zenith, azimuth, lat: float, capacity_mw: float) -> np.ndarray:
    """Steps 2-4 of the module docstring: plane-of-array irradiance, SAPM
    cell temperature, PVWatts DC power (MW) for ``capacity_mw``."""
    pvlib = require_pvlib()
    tilt = min(abs(lat), MAX_TILT_DEG)
    surface_azimuth = 180.0 if lat >= 0 else 0.0
    poa = pvlib.irradiance.get_total_irradiance(tilt, surface_azimuth, zenith, azimuth, dni, ghi, dhi,
                                                model="isotropic")
    g = np.nan_to_num(np.asarray(poa["poa_global"], float), nan=0.0)
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_glass"]
    tc = pvlib.temperature.sapm_cell(g, temp_air, wind_speed, **params)
    dc = pvlib.pvsystem.pvwatts_dc(g, tc, capacity_mw, MODULE_GAMMA)
    return np.clip(np.nan_to_num(np.asarray(dc, float), nan=0.0), 0.0, None)


def tmy_annual_ghi_kwh_m2(name: str = REFERENCE_TMY) -> float:
    """Annual GHI of a TMY3 file (kWh/m2) summed straight from its CSV
    column ``GHI (W/m^2)`` with the csv module (an independent reading of
    the file, against which :func:`tmy_weather` is tested)."""
    with open(tmy_path(name), newline="") as fh:
        next(fh)  # station header
        rows = csv.DictReader(fh)
        return math.fsum(float(r["GHI (W/m^2)"]) for r in rows) / 1000.0
