"""Human-readable summaries of instances and results (what the CLI prints)."""

from __future__ import annotations

import numpy as np

from .instance import Instance
from .result import Result

__all__ = ["format_info", "format_result"]


def _money(v: float) -> str:
    return f"{v:>14,.2f} $"


def format_result(inst: Instance, res: Result) -> str:
    sol = res.solution
    out = [f"instance {inst.name}: {inst.S} sites x {inst.H} periods of {inst.dt:g} h, {inst.J} jobs, "
           f"{inst.R} regions", f"method   {sol.method}", f"status   {sol.status}"]
    if res.diagnosis:
        out.append("diagnosis:")
        out += [f"  - {d}" for d in res.diagnosis]
    if res.breakdown is None:
        if sol.bound is not None:
            out.append(f"bound    {sol.bound:,.2f} $")
        return "\n".join(out + _timing_lines(res))
    b = res.breakdown
    gap = f"{sol.gap:.4%}" if sol.gap is not None else "n/a"
    bound = f"{sol.bound:,.2f} $" if sol.bound is not None else "none"
    out += [f"objective {b.objective:,.2f} $   bound {bound}   gap {gap}", "",
            "objective breakdown (operational benefit, $):",
            f"  training job value     {_money(b.job_value)}",
            f"  inference revenue      {_money(b.inference_revenue)}   (net of routing cost)",
            f"  unserved penalty       {_money(-b.unserved_penalty)}",
            f"  grid import            {_money(-b.import_cost)}",
            f"  grid export            {_money(b.export_revenue)}",
            f"  generator fuel         {_money(-b.generator_cost)}",
            f"  battery degradation    {_money(-b.degradation_cost)}",
            f"  peak charge            {_money(-b.peak_cost)}",
            f"  carbon price           {_money(-b.carbon_cost)}",
            f"  = operational benefit  {_money(b.objective)}", ""]
    budget = f"{inst.budget:,.3f} t ({b.emissions_t / inst.budget:.1%} used)" if inst.budget else "none"
    out.append(f"emissions {b.emissions_t:,.3f} tCO2   budget {budget}")
    out.append(f"jobs run  {b.jobs_run} of {inst.J}   inference served {b.inference_served_frac:.2%}   "
               f"facility energy {b.facility_energy_mwh:,.1f} MWh")
    if sol.training:
        out.append("")
        out.append("training schedule (job  site  start..end  MW):")
        for jid, sid, t in sorted(sol.training, key=lambda e: (e[1], e[2])):
            j = inst.job_index(jid)
            out.append(f"  {jid:<16} {sid:<18} {t:>4}..{t + int(inst.dur[j]):<4} {inst.pow[j]:>7.2f}")
    if inst.R:
        served = sol.inference.sum(axis=2) * inst.dt  # [R,S] MWh
        out.append("")
        out.append("inference served (MWh by region -> site):")
        for r, rid in enumerate(inst.region_ids):
            parts = [f"{inst.site_ids[s]} {served[r, s]:,.1f}" for s in np.flatnonzero(served[r] > 1e-6)]
            out.append(f"  {rid:<16} {', '.join(parts) if parts else '-'}  of {inst.L[r].sum() * inst.dt:,.1f}")
    if res.check is not None:
        out.append("")
        out.append(f"check    {'passed' if res.check.ok else 'FAILED'}")
        if not res.check.ok:
            out += [f"  - {v}" for v in res.check.violations]
    return "\n".join(out + _timing_lines(res))


def _timing_lines(res: Result) -> list[str]:
    t = res.timings
    if not t:
        return []
    parts = ", ".join(f"{k.removesuffix('_s')} {v:.3f} s" for k, v in t.items())
    lines = ["", f"timings  {parts}"]
    spread, load = res.solution.stats.get("sites_per_rank"), res.solution.stats.get("rank_load_s")
    mem = res.solution.stats.get("peak_memory_mb_per_rank") or []
    if spread and load and len(spread) > 1:
        mean = sum(load) / len(load)
        lines.append("ranks    " + ", ".join(
            f"rank {r}: {n} sites, {t:.2f} s" + (f", {mem[r]:,.0f} MB" if r < len(mem) else "")
            for r, (n, t) in enumerate(zip(spread, load)))
            + (f"  (max/mean load {max(load) / mean:.2f})" if mean > 0 else ""))
    elif mem:
        lines.append(f"memory   peak {max(mem):,.0f} MB")
    st = {k: v for k, v in res.solution.stats.items() if k not in ("timings_s", "trace", "rank_load_s",
                                                                    "sites_per_rank", "peak_memory_mb_per_rank")}
    if st:
        lines.append("stats    " + ", ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}"
                                           for k, v in st.items()))
    return lines


def format_info(inst: Instance, size: dict[str, int]) -> str:
    lines = [f"instance {inst.name}",
             f"  sites {inst.S}, periods {inst.H} x {inst.dt:g} h, training jobs {inst.J} "
             f"({int(inst.required.sum())} required), regions {inst.R}",
             f"  batteries {int(inst.has_batt.sum())}, generators {int(inst.has_gen.sum())} "
             f"({int(inst.committed.sum())} committed)",
             f"  carbon budget {inst.budget if inst.budget is not None else 'none'} t, carbon price "
             f"{inst.carbon_price:g} $/t",
             f"  IT capacity {inst.cap.sum():,.1f} MW, peak inference demand {inst.L.sum(axis=0).max() if inst.R else 0:,.1f} MW, "
             f"job energy {float((inst.pow * inst.dur).sum() * inst.dt):,.1f} MWh",
             "monolithic model size:"]
    lines += [f"  {k:<24} {v:>12,}" for k, v in size.items()]
    return "\n".join(lines)
