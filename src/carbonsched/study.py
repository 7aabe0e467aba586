"""The paper's study: joint scheduling vs the baselines, and ablations.

``run_study`` solves one instance with the joint model, both baselines,
the ablations (no battery, no routing flexibility, no carbon budget), a
joint run held to the cleaner baseline's emissions, and a renewable-scale
sweep (joint and both baselines), and writes one table as CSV and
Markdown (plus figures with ``plots``).
"""

from __future__ import annotations

import csv
from pathlib import Path

from . import ablations
from .config import SolveOptions
from .decomposition.pool import get_comm
from .instance import Instance
from .methods import solve
from .result import Result

__all__ = ["COLUMNS", "run_study", "study_rows"]

COLUMNS = ["scenario", "method", "status", "benefit", "emissions_t", "budget_t", "compute_value",
           "inference_revenue", "energy_cost", "export_revenue", "jobs_run", "inference_served_pct", "gap",
           "wall_s", "feasible"]


def _row(scenario: str, inst: Instance, res: Result) -> dict:
    b = res.breakdown
    feasible = res.status in ("optimal", "feasible", "time_limit", "interrupted") and b is not None and (
        res.check is None or res.check.ok)
    return {
        "scenario": scenario, "method": res.method, "status": res.status,
        "benefit": b.objective if b else None, "emissions_t": b.emissions_t if b else None,
        "budget_t": inst.budget, "compute_value": (b.job_value + b.inference_revenue - b.unserved_penalty) if b else None,
        "inference_revenue": b.inference_revenue if b else None, "energy_cost": b.energy_cost if b else None,
        "export_revenue": b.export_revenue if b else None, "jobs_run": b.jobs_run if b else None,
        "inference_served_pct": 100 * b.inference_served_frac if b else None, "gap": res.gap,
        "wall_s": res.timings.get("total_s"), "feasible": feasible,
    }


def study_rows(inst: Instance, method: str = "monolithic", opts: SolveOptions | None = None,
               renewable_scales=(0.0, 0.5, 1.0, 1.5, 2.0), keep_results: dict | None = None) -> list[dict]:
    """Solve every scenario and return the table rows (dicts of COLUMNS)."""
    rows: list[dict] = []

    def run(scenario: str, variant: Instance, m: str) -> Result | None:
        res = solve(variant, m, opts)
        if not isinstance(res, Result):  # a worker rank under mpiexec: rank 0 keeps the rows
            return None
        rows.append(_row(scenario, variant, res))
        if keep_results is not None:
            keep_results[(scenario, m)] = (variant, res)
        return res

    run("joint", inst, method)
    base = {m: run(m, inst, m) for m in ("compute-only", "energy-only")}
    run("joint, no battery", ablations.no_battery(inst), method)
    run("joint, no routing flexibility", ablations.no_routing(inst), method)
    run("energy-only, no routing flexibility", ablations.no_routing(inst), "energy-only")
    run("joint, no carbon budget", ablations.no_carbon(inst), method)
    cleaner = [r.emissions for r in base.values() if r is not None and r.emissions is not None]
    cap = (min(cleaner) if inst.budget is None else min(min(cleaner), inst.budget)) if cleaner else None
    comm = get_comm()
    if comm is not None and comm.Get_size() > 1:
        cap = comm.bcast(cap, root=0)  # every rank must run the same sequence of solves
    if cap is not None:
        run("joint, at the cleaner baseline's emissions", inst.with_changes(budget=cap), method)
    for k in renewable_scales:
        if k == 1.0:
            continue
        v = ablations.scale_renewables(inst, k)
        for m in (method, "compute-only", "energy-only"):
            run(f"renewables x{k:g} ({'joint' if m == method else m})", v, m)
    return rows


def _fmt(v, col: str) -> str:
    if v is None:
        return "-"
    if col in ("benefit", "compute_value", "inference_revenue", "energy_cost", "export_revenue"):
        return f"{v:,.0f}"
    if col in ("emissions_t", "budget_t"):
        return f"{v:,.1f}"
    if col == "inference_served_pct":
        return f"{v:.1f}"
    if col == "gap":
        return f"{v:.1e}"
    if col == "wall_s":
        return f"{v:.2f}"
    return str(v)


def to_markdown(rows: list[dict]) -> str:
    cols = [c for c in COLUMNS if c not in ("feasible", "budget_t")]
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    return head + "".join("| " + " | ".join(_fmt(r[c], c) for c in cols) + " |\n" for r in rows)


def run_study(inst: Instance, *, method: str = "monolithic", opts: SolveOptions | None = None,
              out_dir: str | Path = "study-out", plots: str | Path | None = None,
              renewable_scales=(0.0, 0.5, 1.0, 1.5, 2.0), echo: bool = True) -> list[dict]:
    """Run the study, write ``study.csv`` and ``study.md`` into ``out_dir``
    (and figures into ``plots``), print the table, return the rows."""
    keep: dict = {}
    rows = study_rows(inst, method, opts, renewable_scales, keep_results=keep)
    if not echo:
        return rows
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "study.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    md = to_markdown(rows)
    (out / "study.md").write_text(f"# Study: {inst.name}\n\n{md}")
    print(f"study of {inst.name} (joint = {method}); benefit and costs in $, emissions in t, budget "
          f"{inst.budget if inst.budget is not None else 'none'} t\n")
    print(md)
    print(f"written: {out / 'study.csv'}, {out / 'study.md'}")
    if plots:
        from .plots import plot_solution, plot_study, plot_sweep

        p = Path(plots)
        p.mkdir(parents=True, exist_ok=True)
        files = [plot_study([r for r in rows if not r["scenario"].startswith("renewables")], p / "study-bars.png",
                            f"{inst.name}: joint vs baselines and ablations")]
        sweep: dict[str, list] = {}
        for r in rows:
            if r["scenario"] in ("joint", "compute-only", "energy-only"):
                k, who = 1.0, r["scenario"]
            elif r["scenario"].startswith("renewables x"):
                k = float(r["scenario"].split("x")[1].split(" ")[0])
                who = r["scenario"].split("(")[1].rstrip(")")
            else:
                continue
            sweep.setdefault(who, []).append((k, r["benefit"] if r["feasible"] else None, r["emissions_t"]))
        files.append(plot_sweep(sweep, p / "study-renewables.png", f"{inst.name}: renewable-scale sweep"))
        for (scenario, _m), (variant, res) in keep.items():
            if scenario in ("joint", "compute-only", "energy-only") and res.breakdown is not None:
                files += plot_solution(variant, res.solution, p)
        print(f"figures: {', '.join(str(f) for f in files)}")
    return rows
