"""The independent solution checker (MODEL.md section 5).

It reads an instance and a solution only -- it never builds the model --
and recomputes every constraint, the objective OB and the emissions with
numpy. Because it shares no code with the model builders, it catches the
model's own mistakes. Tolerances: 1e-5 MW absolute plus 1e-6 relative to
the size of the quantities compared.

:func:`evaluate` gives the objective broken into its terms (used by every
method's report); :func:`check_solution` adds the constraint checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .constants import SolutionStatus
from .instance import Instance
from .solution import Solution

__all__ = ["ABS_TOL", "REL_TOL", "Breakdown", "CheckReport", "check_solution", "evaluate"]

ABS_TOL = 1e-5
REL_TOL = 1e-6


@dataclass(frozen=True)
class Breakdown:
    """OB and its terms ($), emissions (tCO2) and usage figures."""

    objective: float
    job_value: float
    inference_revenue: float  # sum (rev - rc lat) y dt
    unserved_penalty: float  # sum pen (L - served) dt  (a cost, >= 0)
    import_cost: float
    export_revenue: float
    generator_cost: float
    degradation_cost: float
    peak_cost: float
    carbon_cost: float
    emissions_t: float
    jobs_run: int
    inference_served_frac: float
    facility_energy_mwh: float

    @property
    def energy_cost(self) -> float:
        """Net energy bill: import - export + generator + degradation + peak ($)."""
        return (self.import_cost - self.export_revenue + self.generator_cost + self.degradation_cost
                + self.peak_cost)

    def as_dict(self) -> dict[str, float]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["energy_cost"] = self.energy_cost
        return d


@dataclass
class CheckReport:
    """The checker's verdict: ``ok`` and every violation; ``breakdown`` for a
    schedule, None for a file that holds none (``status``: what it reports)."""

    ok: bool
    violations: list[str] = field(default_factory=list)
    breakdown: Breakdown | None = None
    status: str | None = None

    @property
    def only_budget(self) -> bool:
        """The schedule breaks the carbon budget and nothing else (what a
        baseline reported ``budget_infeasible`` shows by design)."""
        return bool(self.violations) and all(v.startswith("[8]") for v in self.violations)

    def __str__(self) -> str:
        if self.ok and self.breakdown is None:
            return (f"no schedule to check: the solution reports status {self.status!r} and holds no schedule "
                    "(no job, no dispatch)")
        if self.ok:
            b = self.breakdown
            return f"solution OK: objective {b.objective:,.2f} $, emissions {b.emissions_t:,.3f} t"
        return f"{len(self.violations)} violation(s):\n" + "\n".join(f"  - {v}" for v in self.violations)


def _run_matrix(inst: Instance, sol: Solution) -> tuple[np.ndarray, list[str], int]:
    """IT MW of training per [site, period], structural problems, jobs run."""
    probs: list[str] = []
    run = np.zeros((inst.S, inst.H))
    seen: set[str] = set()
    for i, (jid, sid, start) in enumerate(sol.training):
        if jid not in inst.job_ids:
            probs.append(f"training[{i}]: unknown job {jid!r}")
            continue
        if sid not in inst.site_ids:
            probs.append(f"training[{i}]: unknown site {sid!r} for job {jid!r}")
            continue
        j, s = int(inst.job_index(jid)), int(inst.site_index(sid))
        if jid in seen:
            probs.append(f"[1] job {jid!r} is scheduled more than once")
        seen.add(jid)
        if not inst.allowed[j, s]:
            probs.append(f"job {jid!r} may not run at site {sid!r}")
        if start < inst.rel[j] or start + inst.dur[j] > inst.dl[j]:
            probs.append(f"job {jid!r}: start {start} outside its window "
                         f"[{inst.rel[j]}, {inst.dl[j] - inst.dur[j]}]")
        a, e = max(0, int(start)), min(inst.H, int(start) + int(inst.dur[j]))
        if a < e:
            run[s, a:e] += inst.pow[j]
    for jr in np.flatnonzero(inst.required):
        if inst.job_ids[jr] not in seen:
            probs.append(f"[1] required job {inst.job_ids[jr]!r} is not scheduled")
    return run, probs, len(seen)


def evaluate(inst: Instance, sol: Solution) -> Breakdown:
    """Recompute OB and its terms from the solution's arrays (no checks).
    The peak import is taken as max_t imp (the optimal choice of pk)."""
    dt = inst.dt
    run, _, njobs = _run_matrix(inst, sol)
    y = sol.inference
    st = sol.sites
    job_value = float(sum(inst.val[inst.job_index(j)] for j, _, _ in sol.training if j in inst.job_ids))
    lat = np.nan_to_num(inst.lat, nan=0.0)
    margin = inst.rev[:, None] - inst.routing_cost * lat  # [R,S]
    inf_rev = float((margin[:, :, None] * y).sum() * dt)
    served = y.sum(axis=1)  # [R,H]
    unserved = float((inst.pen[:, None] * (inst.L - served)).sum() * dt)
    imp, exp, ch, dis, g = (st["grid_import_mw"], st["grid_export_mw"], st["battery_charge_mw"],
                            st["battery_discharge_mw"], st["generator_mw"])
    imp_cost = float((inst.pb * imp).sum() * dt)
    exp_rev = float((inst.ps * exp).sum() * dt)
    gen_cost = float((inst.cg[:, None] * g).sum() * dt)
    deg = float((inst.cd[:, None] * (ch + dis)).sum() * dt)
    peak = float((inst.pc * (imp.max(axis=1) if inst.H else 0)).sum())
    emis = float(((inst.ci * imp).sum() + (inst.ef[:, None] * g).sum()) * dt)
    carbon = inst.carbon_price * emis
    ob = job_value + inf_rev - unserved - (imp_cost - exp_rev + gen_cost + deg) - peak - carbon
    total_L = float(inst.L.sum())
    it = inst.idle[:, None] + run + inst.f_inf[:, None] * y.sum(axis=0)
    return Breakdown(objective=ob, job_value=job_value, inference_revenue=inf_rev, unserved_penalty=unserved,
                     import_cost=imp_cost, export_revenue=exp_rev, generator_cost=gen_cost,
                     degradation_cost=deg, peak_cost=peak, carbon_cost=carbon, emissions_t=emis,
                     jobs_run=njobs, inference_served_frac=float(served.sum() / total_L) if total_L else 1.0,
                     facility_energy_mwh=float((inst.pue * it).sum() * dt))


def _tol(*mags: np.ndarray | float) -> np.ndarray | float:
    m: np.ndarray | float = 0.0
    for a in mags:
        m = np.maximum(m, np.abs(a))
    return ABS_TOL + REL_TOL * m


def check_solution(inst: Instance, sol: Solution, *, check_reported: bool = True) -> CheckReport:
    """Check every constraint of MODEL.md section 3 and the reported
    objective and emissions. Returns all violations, not only the first."""
    v: list[str] = []
    dt = inst.dt
    if (sol.status not in (SolutionStatus.OPTIMAL, SolutionStatus.FEASIBLE) and sol.objective is None
            and not sol.training and not np.any(sol.inference) and not any(np.any(a) for a in sol.sites.values())):
        return CheckReport(ok=True, status=sol.status)  # no schedule (infeasible, or stopped before one was found)
    run, probs, _ = _run_matrix(inst, sol)
    v += probs
    y = sol.inference
    st = sol.sites

    def report(tag: str, mask: np.ndarray, what: str, amount: np.ndarray) -> None:
        idx = np.argwhere(mask)
        if idx.size:
            first = tuple(int(i) for i in idx[0])
            where = ", ".join(str(x) for x in first)
            v.append(f"[{tag}] {what}: {idx.shape[0]} violation(s), first at ({where}) by {float(amount[first]):.6g}")

    # 2. IT capacity
    it = inst.idle[:, None] + run + inst.f_inf[:, None] * y.sum(axis=0)
    over = it - inst.cap[:, None]
    report("2", over > _tol(inst.cap[:, None]), "IT capacity exceeded at (site, period)", over)
    # 3. inference
    report("3", y < -ABS_TOL, "negative inference flow at (region, site, period)", -y)
    excess = y.sum(axis=1) - inst.L
    report("3", excess > _tol(inst.L), "inference served above demand at (region, period)", excess)
    unreach = ~inst.reach[:, :, None] & (np.abs(y) > ABS_TOL)
    report("3", unreach, "inference routed beyond latency SLO at (region, site, period)", np.abs(y))
    # 4. power balance
    imp, exp, ch, dis = (st["grid_import_mw"], st["grid_export_mw"], st["battery_charge_mw"], st["battery_discharge_mw"])
    ru, g, soc, on = st["renewable_used_mw"], st["generator_mw"], st["soc_mwh"], st["generator_on"]
    P = inst.pue * it
    bal = P + ch + exp - imp - dis - ru - g
    report("4", np.abs(bal) > _tol(P, imp, ru), "power balance off at (site, period)", bal)
    # 5. limits (and non-negativity)
    for name, arr in (("grid import", imp), ("grid export", exp), ("battery charge", ch),
                      ("battery discharge", dis), ("renewable used", ru), ("generator", g)):
        report("5", arr < -ABS_TOL, f"negative {name} at (site, period)", -arr)
    report("5", ru - inst.ren > _tol(inst.ren), "renewable used above available at (site, period)", ru - inst.ren)
    for name, arr, lim in (("grid import", imp, inst.imax), ("grid export", exp, inst.xmax),
                           ("battery charge", ch, np.where(inst.has_batt, inst.ch_max, 0.0)),
                           ("battery discharge", dis, np.where(inst.has_batt, inst.dis_max, 0.0))):
        d = arr - lim[:, None]
        report("5", d > _tol(lim[:, None]), f"{name} above its limit at (site, period)", d)
    # 6. battery
    d0 = soc[:, 0] - inst.soc0
    report("6", np.abs(d0) > _tol(inst.soc0), "initial state of charge differs from initial_soc_mwh at (site)", d0)
    nxt = soc[:, :-1] + (inst.eta_c[:, None] * ch - dis / inst.eta_d[:, None]) * dt
    dd = soc[:, 1:] - nxt
    report("6", np.abs(dd) > _tol(soc[:, 1:], inst.e_max[:, None]), "battery balance off at (site, period)", dd)
    emax = np.where(inst.has_batt, inst.e_max, 0.0)
    report("6", soc < -ABS_TOL, "negative state of charge at (site, period)", -soc)
    report("6", soc - emax[:, None] > _tol(emax[:, None]), "state of charge above energy_mwh at (site, period)",
           soc - emax[:, None])
    de = inst.soc0 - soc[:, -1]
    report("6", de > _tol(inst.soc0), "final state of charge below initial at (site)", de)
    # 7. generator
    gmax = np.where(inst.has_gen, inst.gmax, 0.0)
    dg = g - gmax[:, None]
    report("7", dg > _tol(gmax[:, None]), "generator above max_mw (or present without a generator) at (site, period)", dg)
    com = inst.committed
    if com.any():
        onc = on[com]
        report("7", (np.abs(onc) > ABS_TOL) & (np.abs(onc - 1) > ABS_TOL),
               "generator_on not 0 or 1 at (committed site #, period)", onc)
        gc_, gmin_, gmax_ = g[com], inst.gmin[com][:, None], inst.gmax[com][:, None]
        onr = np.round(onc)
        report("7", gc_ < gmin_ * onr - _tol(gmin_), "generator below min_mw while on at (committed site #, period)",
               gmin_ * onr - gc_)
        report("7", gc_ > gmax_ * onr + _tol(gmax_), "generator running while off at (committed site #, period)",
               gc_ - gmax_ * onr)
    b = evaluate(inst, sol)
    # 8. carbon budget
    if inst.budget is not None and b.emissions_t > inst.budget + ABS_TOL + REL_TOL * inst.budget:
        v.append(f"[8] emissions {b.emissions_t:.6f} t exceed the carbon budget {inst.budget:.6f} t")
    if check_reported:
        if sol.instance != inst.name:
            v.append(f"instance: the file is for {sol.instance!r}, the instance is {inst.name!r}")
        if sol.bound is not None and sol.objective is not None and \
                sol.bound < sol.objective - ABS_TOL - REL_TOL * max(1.0, abs(sol.objective)):
            v.append(f"bound: {sol.bound:.6f} is below the objective {sol.objective:.6f} (a bound on a "
                     "maximisation must be >= every feasible objective)")
        if sol.gap is not None and sol.bound is not None and sol.objective is not None:
            want = max(0.0, sol.bound - sol.objective) / max(1.0, abs(sol.objective))
            if abs(sol.gap - want) > 1e-6 + 1e-6 * want:
                v.append(f"gap: file says {sol.gap:.6g}, (bound - objective) / max(1, |objective|) = {want:.6g}")
        if sol.objective is None:
            v.append("objective: missing from the solution file")
        elif abs(sol.objective - b.objective) > ABS_TOL + REL_TOL * max(1.0, abs(b.objective)):
            v.append(f"objective: file says {sol.objective:.6f}, recomputed {b.objective:.6f}")
        if sol.emissions_t is None:
            v.append("emissions_t: missing from the solution file")
        elif abs(sol.emissions_t - b.emissions_t) > ABS_TOL + REL_TOL * max(1.0, b.emissions_t):
            v.append(f"emissions_t: file says {sol.emissions_t:.6f}, recomputed {b.emissions_t:.6f}")
    return CheckReport(ok=not v, violations=v, breakdown=b)
