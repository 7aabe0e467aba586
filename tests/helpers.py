"""Small instances built in code, for tests whose optimum is computed by hand."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

from carbonsched.instance import Instance, parse_instance


def site(sid: str = "a", *, cap: float = 10.0, idle: float = 0.0, pue=1.0, ren=0.0, imax: float = 100.0,
         xmax: float = 0.0, pb=10.0, ps=0.0, ci=0.0, pc: float = 0.0, battery: dict | None = None,
         generator: dict | None = None, f: float = 1.0) -> dict:
    d = {"id": sid, "it_capacity_mw": cap, "idle_it_mw": idle, "pue": pue, "renewable_mw": ren,
         "inference_power_factor": f,
         "grid": {"import_max_mw": imax, "export_max_mw": xmax, "import_price": pb, "export_price": ps,
                  "carbon_intensity_t_per_mwh": ci, "peak_charge_per_mw": pc}}
    if battery is not None:
        d["battery"] = battery
    if generator is not None:
        d["generator"] = generator
    return d


def job(jid: str, power: float, duration: int, value: float, *, release: int = 0, deadline: int | None = None,
        sites: list[str] | None = None, required: bool = False) -> dict:
    d = {"id": jid, "power_mw": power, "duration": duration, "release": release, "value": value,
         "required": required}
    if deadline is not None:
        d["deadline"] = deadline
    if sites is not None:
        d["sites"] = sites
    return d


def make(periods: int, sites: list[dict], jobs: list[dict] = (), regions: list[dict] = (), latency: dict | None = None,
         **top) -> Instance:
    d = {"name": top.pop("name", "test"), "periods": periods, "sites": list(sites), "training_jobs": list(jobs),
         "regions": list(regions), "latency_ms": latency or {}}
    d.update(top)
    return parse_instance(copy.deepcopy(d))


def rich_tiny() -> Instance:
    """Two sites with every feature (battery, committed generator, export,
    renewables, peak charge), one optional and one required job, a region."""
    return make(
        4,
        [site("a", cap=20, idle=1, pue=1.2, ren=[0, 5, 10, 0], imax=30, xmax=5, pb=[50, 40, 30, 80], ps=10, ci=0.4,
              pc=2, battery={"energy_mwh": 10, "charge_mw": 5, "discharge_mw": 5, "charge_eff": 0.9,
                             "discharge_eff": 0.9, "initial_soc_mwh": 5, "degradation_cost_per_mwh": 1},
              generator={"max_mw": 5, "min_mw": 2, "cost_per_mwh": 60, "emission_t_per_mwh": 0.5}),
         site("b", cap=10, pue=1.1, imax=15, pb=60, ci=0.1)],
        [job("j1", 8, 2, 2000), job("j2", 6, 3, 500, sites=["b"], required=True)],
        [{"id": "r1", "demand_mw": [2, 3, 4, 2], "revenue_per_mwh": 200, "unserved_penalty_per_mwh": 20,
          "latency_slo_ms": 50}],
        {"r1": {"a": 20, "b": 60}},
        carbon_budget_t=30.0, routing_cost_per_mwh_ms=0.05, name="rich-tiny")


def load_script(name: str):
    """A module of ``scripts/`` (not a package), loaded from its file."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def knapsacks(n: int = 60, m: int = 4):
    """A multi-knapsack MILP over ``n`` binaries (maximise), compiled to
    HiGHS, that HiGHS's presolve does not solve: it needs a search, so its
    interrupt callback runs."""
    import numpy as np
    import pyomo.environ as pyo

    from carbonsched import highs

    rng = np.random.default_rng(5)
    w, v = rng.integers(20, 100, size=(m, n)), rng.integers(10, 60, size=n)
    mdl = pyo.ConcreteModel(name="knapsacks")
    mdl.x = pyo.Var(range(n), domain=pyo.Binary)
    mdl.obj = pyo.Objective(expr=sum(int(v[i]) * mdl.x[i] for i in range(n)), sense=pyo.maximize)
    mdl.cap = pyo.Constraint(range(m), rule=lambda b, k: sum(int(w[k, i]) * b.x[i] for i in range(n))
                             <= int(w[k].sum()) // 3)
    return highs.compile_model(mdl)


def sweep_instance(seed: int, rate: float = 0.0, size: str = "small"):
    """The instance ``scripts/random_sweep.py`` solves for ``seed``: its
    generator draw at ``size`` and, with edit rate ``rate``, its edits."""
    import random

    from carbonsched.instance import parse_instance

    sweep = load_script("random_sweep")
    data = sweep.generate(sweep.draw_config(seed, size))
    rnd = random.Random(seed)
    for e in sweep.draw_edits(seed, rate):
        sweep.EDITS[e](data, rnd)
    return parse_instance(data)
