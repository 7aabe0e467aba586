"""Figures (matplotlib, PNG): power stack per site, battery state of
charge, a Gantt chart of training jobs, inference routing over time, and
the study's benefit/emission bars. Every figure has a title, units and a
legend."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from .derived import facility_load
from .instance import Instance
from .solution import Solution

__all__ = ["plot_solution", "plot_study", "plot_sweep"]


def _save(fig, path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return Path(path)


def _grid(n: int) -> tuple[int, int]:
    cols = min(3, n)
    return (n + cols - 1) // cols, cols


def _hours(inst: Instance) -> np.ndarray:
    """Period edges 0, dt, ..., H dt (H + 1 values) for step plots."""
    return np.arange(inst.H + 1) * inst.dt


def _ext(a: np.ndarray) -> np.ndarray:
    """Repeat the last value so a step plot shows the final period."""
    return np.append(a, a[-1])


def plot_power(inst: Instance, sol: Solution, path: Path) -> Path:
    """Stacked supply (grid import, renewables used, generator, battery
    discharge) against the facility load, per site."""
    rows, cols = _grid(inst.S)
    fig = Figure(figsize=(5.2 * cols, 3.4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    x = _hours(inst)
    st = sol.sites
    load = facility_load(inst, sol)
    for s in range(inst.S):
        ax = axes[s // cols][s % cols]
        parts = [_ext(st[k][s]) for k in ("renewable_used_mw", "grid_import_mw", "generator_mw",
                                           "battery_discharge_mw")]
        ax.stackplot(x, *parts, labels=["renewables used", "grid import", "generator", "battery discharge"],
                     colors=["#4caf50", "#9e9e9e", "#ff7043", "#42a5f5"], alpha=0.85, step="post")
        ax.step(x, _ext(load[s]), where="post", color="black", lw=1.4, label="facility load")
        ax.step(x, _ext(load[s] + st["battery_charge_mw"][s] + st["grid_export_mw"][s]), where="post",
                color="black", lw=0.8, ls="--", label="load + charge + export")
        ax.set_title(inst.site_ids[s])
        ax.set_ylabel("MW")
        ax.set_xlabel("hour")
    for k in range(inst.S, rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{inst.name} ({sol.method}): power supply vs facility load")
    return _save(fig, path)


def plot_soc(inst: Instance, sol: Solution, path: Path) -> Path:
    fig = Figure(figsize=(8, 3.5))
    ax = fig.subplots()
    x = np.arange(inst.H + 1) * inst.dt
    shown = 0
    for s in np.flatnonzero(inst.has_batt):
        ax.plot(x, sol.sites["soc_mwh"][s], label=f"{inst.site_ids[s]} ({inst.e_max[s]:.0f} MWh)")
        shown += 1
    ax.set_xlabel("hour")
    ax.set_ylabel("state of charge (MWh)")
    ax.set_title(f"{inst.name} ({sol.method}): battery state of charge")
    if shown:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no batteries", ha="center", transform=ax.transAxes)
    return _save(fig, path)


def plot_gantt(inst: Instance, sol: Solution, path: Path) -> Path:
    """Training jobs by site (rows) over time, bar height ~ power."""
    fig = Figure(figsize=(10, 0.8 + 1.1 * inst.S))
    ax = fig.subplots()
    cmap = matplotlib.colormaps.get_cmap("tab20")
    by_site: dict[int, list] = {}
    for jid, sid, t in sol.training:
        by_site.setdefault(inst.site_index(sid), []).append((t, inst.job_index(jid)))
    for s, jobs in by_site.items():
        lanes: list[int] = []  # end period of the last job in each lane
        placed = []
        for t, j in sorted(jobs):
            lane = next((i for i, end in enumerate(lanes) if end <= t), None)
            if lane is None:
                lanes.append(0)
                lane = len(lanes) - 1
            lanes[lane] = t + int(inst.dur[j])
            placed.append((t, j, lane))
        hgt = 0.84 / len(lanes)
        for t, j, lane in placed:
            yc = s - 0.42 + hgt * (lane + 0.5)
            ax.barh(yc, inst.dur[j] * inst.dt, left=t * inst.dt, height=hgt * 0.92, color=cmap(j % 20),
                    edgecolor="black", lw=0.5)
            if inst.J <= 40:
                ax.text((t + inst.dur[j] / 2) * inst.dt, yc, f"{inst.job_ids[j]} {inst.pow[j]:.0f} MW",
                        ha="center", va="center", fontsize=6)
    ax.set_yticks(range(inst.S), inst.site_ids)
    ax.set_xlim(0, inst.H * inst.dt)
    ax.set_xlabel("hour")
    ax.set_title(f"{inst.name} ({sol.method}): training jobs by site ({len(sol.training)} of {inst.J} run)")
    return _save(fig, path)


def plot_inference(inst: Instance, sol: Solution, path: Path) -> Path:
    """Inference served per region, stacked by serving site, vs demand."""
    rows, cols = _grid(max(1, inst.R))
    fig = Figure(figsize=(5.2 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    x = _hours(inst)
    colors = matplotlib.colormaps.get_cmap("tab10")
    for r in range(inst.R):
        ax = axes[r // cols][r % cols]
        sites = [s for s in range(inst.S) if np.any(sol.inference[r, s] > 1e-9)]
        if sites:
            ax.stackplot(x, *[_ext(sol.inference[r, s]) for s in sites], labels=[inst.site_ids[s] for s in sites],
                         colors=[colors(s % 10) for s in sites], step="post", alpha=0.85)
        ax.step(x, _ext(inst.L[r]), where="post", color="black", lw=1.2, label="demand")
        ax.set_title(f"{inst.region_ids[r]} (SLO {inst.slo[r]:.0f} ms)")
        ax.set_ylabel("IT MW")
        ax.set_xlabel("hour")
        ax.legend(fontsize=7, loc="upper left")
    for k in range(inst.R, rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(f"{inst.name} ({sol.method}): inference routed by region and site")
    return _save(fig, path)


def plot_solution(inst: Instance, sol: Solution, out_dir: str | Path, prefix: str = "") -> list[Path]:
    """All solution figures into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = f"{prefix}{sol.method}-"
    return [plot_power(inst, sol, out / f"{p}power.png"), plot_soc(inst, sol, out / f"{p}soc.png"),
            plot_gantt(inst, sol, out / f"{p}gantt.png"), plot_inference(inst, sol, out / f"{p}inference.png")]


def plot_study(rows: list[dict], path: str | Path, title: str) -> Path:
    """Operational benefit and emissions per scenario, side by side."""
    names = [r["scenario"] for r in rows]
    ob = [r["benefit"] if r["benefit"] is not None else np.nan for r in rows]
    em = [r["emissions_t"] if r["emissions_t"] is not None else np.nan for r in rows]
    fig = Figure(figsize=(13, 0.8 + 0.45 * len(rows)))
    a1, a2 = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(rows))
    colors = ["#1e88e5" if r["feasible"] else "#e53935" for r in rows]
    ref = ob[0]
    a1.barh(y, (np.array(ob) - ref) / 1e3, color=colors)
    a1.axvline(0, color="black", lw=0.8)
    a1.set_yticks(y, names)
    a1.invert_yaxis()
    a1.set_xlabel(f"operational benefit minus {names[0]}'s {ref / 1e3:,.1f} k$ (k$)")
    a1.set_title("operational benefit vs the first row (red: infeasible)")
    a2.barh(y, em, color="#6d4c41")
    budget = next((r["budget_t"] for r in rows if r.get("budget_t")), None)
    if budget:
        a2.axvline(budget, color="red", ls="--", label=f"carbon budget {budget:,.0f} t")
        a2.legend(fontsize=8)
    a2.set_xlabel("emissions (tCO2)")
    a2.set_title("emissions")
    fig.suptitle(title)
    return _save(fig, path)


def plot_sweep(points: dict[str, list[tuple[float, float | None, float | None]]], path: str | Path,
               title: str) -> Path:
    """Benefit and emissions against the renewable scale k, one line per
    method: ``points[method] = [(k, benefit, emissions), ...]``."""
    fig = Figure(figsize=(11, 3.8))
    a1, a2 = fig.subplots(1, 2)
    for name, pts in points.items():
        pts = sorted(pts)
        k = [p[0] for p in pts]
        a1.plot(k, [np.nan if p[1] is None else p[1] / 1e3 for p in pts], marker="o", label=name)
        a2.plot(k, [np.nan if p[2] is None else p[2] for p in pts], marker="o", label=name)
    a1.set_xlabel("renewable scale k")
    a1.set_ylabel("operational benefit (k$)")
    a1.set_title("benefit")
    a2.set_xlabel("renewable scale k")
    a2.set_ylabel("emissions (tCO2)")
    a2.set_title("emissions")
    a1.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)
