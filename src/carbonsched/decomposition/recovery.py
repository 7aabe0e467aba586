"""Primal recovery: from a (relaxed) job choice to a feasible schedule.

Shared by the Lagrangian method (its compute-side choices) and Benders
(its LP-phase master solutions, as incumbents for the integer phase).

:func:`repair_schedule` turns one choice per job (which may overload a
site, or leave a required job out) into a schedule that fits IT capacity
and the most power each site can deliver, greedily by priority. The
routing and the energy dispatch for that schedule are then an LP
(:class:`~carbonsched.fixed.FixedScheduleModel`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..check import evaluate
from ..clock import BudgetExhausted, Clock
from ..derived import facility_load, job_room, site_costs
from ..fixed import FixedScheduleModel
from ..instance import Instance
from ..solution import SITE_SERIES, Solution

__all__ = ["Candidate", "PrimalRecovery", "repair_schedule"]


@dataclass
class Candidate:
    """A feasible schedule from recovery: the solution, its OB ($), the
    triples it starts and the fixed-schedule model's column vector (a MIP
    start for the polish)."""

    solution: Solution
    objective: float
    starts: np.ndarray
    x: np.ndarray | None


def repair_schedule(inst: Instance, chosen: np.ndarray, score: np.ndarray, *,
                    room: np.ndarray | None = None, drop: np.ndarray | None = None) -> np.ndarray | None:
    """A capacity-feasible set of triples.

    ``chosen[j]``: the triple index picked for job j (or -1); ``score[k]``:
    the desirability of triple k ($, e.g. value less priced energy). Jobs go
    in order -- required first, then by their chosen score -- each to its
    chosen triple if it fits, else to its best-scoring alternative with a
    positive score (any alternative for a required job). Jobs in ``drop``
    are left out unless required. Returns the triple indices, or None when
    a required job finds no room."""
    jj, ss, tt = inst.triples
    room = job_room(inst) if room is None else room.copy()
    first = np.searchsorted(jj, np.arange(inst.J))
    last = np.searchsorted(jj, np.arange(inst.J), side="right")
    prio = np.where(chosen >= 0, score[np.maximum(chosen, 0)], -np.inf)
    order = sorted(range(inst.J), key=lambda j: (not inst.required[j], -prio[j], j))
    placed = []
    for j in order:
        if drop is not None and drop[j] and not inst.required[j]:
            continue
        if chosen[j] < 0 and not inst.required[j]:
            continue
        ks = np.arange(first[j], last[j])
        if ks.size == 0:
            if inst.required[j]:
                return None
            continue
        alt = ks[np.argsort(-score[ks], kind="stable")]
        if not inst.required[j]:
            alt = alt[score[alt] > 0]
        cands = [chosen[j]] + [k for k in alt if k != chosen[j]] if chosen[j] >= 0 else list(alt)
        d, pw = int(inst.dur[j]), inst.pow[j]
        for k in cands:
            s, t0 = ss[k], tt[k]
            if np.all(room[s, t0:t0 + d] >= pw - 1e-9):
                room[s, t0:t0 + d] -= pw
                placed.append(int(k))
                break
        else:
            if inst.required[j]:
                return None
    return np.array(sorted(placed), dtype=int)


class PrimalRecovery:
    """Turns job choices into feasible schedules.

    ``from_choice(chosen, score)``: repair, solve the fixed-schedule LP
    (committed units relaxed, their sites then re-dispatched exactly on the
    subproblem pool); when the budget or power cannot be met, drop the
    weakest optional jobs (score per MWh) and retry. ``polish(recent,
    incumbent)``: a restricted MILP over the jobs whose choice is
    undecided, started from the incumbent. Both return a :class:`Candidate`
    (or None); the caller keeps the best."""

    def __init__(self, inst: Instance, pool, method: str, clock: Clock | None = None):
        self.inst, self.pool, self.method, self.clock = inst, pool, method, clock
        self._fixed: FixedScheduleModel | None = None  # built at the first recovery, within the clock
        self.seen: set = set()
        self.recoveries = 0
        self.recovery_s = 0.0
        self.polish_s = 0.0

    @property
    def fixed(self) -> FixedScheduleModel:
        """The fixed-schedule model, built on first use (raises
        :class:`BudgetExhausted` when the clock runs out while building)."""
        if self._fixed is None:
            self._fixed = FixedScheduleModel(self.inst, clock=self.clock)
        return self._fixed

    def _exact_units(self, sol: Solution) -> Solution | None:
        """Re-dispatch every site exactly (MILP where committed) for the LP's
        facility load, each within its LP emissions plus an equal share of
        the budget left over. None if a committed site cannot follow."""
        inst = self.inst
        P = facility_load(inst, sol)
        st = sol.sites
        _, E = site_costs(inst, st)
        b = None
        if inst.budget is not None:
            b = E + max(0.0, inst.budget - float(E.sum())) / inst.S
        ev = self.pool.evaluate(P, b, exact=True)
        if not ev.feasible.all():
            return None
        for i, k in enumerate(SITE_SERIES):
            st[k] = ev.dispatch[:, i, : inst.H + 1 if k == "soc_mwh" else inst.H].copy()
        return sol

    def from_choice(self, chosen: np.ndarray, score: np.ndarray, time_limit: float | None = None) -> Candidate | None:
        """A feasible schedule from one job choice, or None (nothing new,
        nothing feasible found, or no time left to build the model)."""
        try:
            return self._from_choice(chosen, score, time_limit)
        except BudgetExhausted:
            return None

    def _from_choice(self, chosen: np.ndarray, score: np.ndarray, time_limit: float | None) -> Candidate | None:
        inst = self.inst
        t0 = time.perf_counter()
        drop = np.zeros(inst.J, bool)
        out = None
        for attempt in range(4):
            starts = repair_schedule(inst, chosen, score, drop=drop)
            if starts is None:
                break
            key = tuple(starts.tolist())
            if key in self.seen:
                break
            self.seen.add(key)
            units = bool(inst.committed.any())
            sol, _ = self.fixed.solve(starts, time_limit=time_limit, method=self.method, relax_units=units)
            x_lp = self.fixed.last_x if sol is not None else None
            if sol is not None and units:
                sol = self._exact_units(sol)
                if sol is None:
                    sol, _ = self.fixed.solve(starts, time_limit=time_limit, method=self.method)
                    x_lp = self.fixed.last_x if sol is not None else None
            self.recoveries += 1
            if sol is not None:
                out = Candidate(sol, evaluate(inst, sol).objective, starts, x_lp)
                break
            opt = [j for j in range(inst.J) if chosen[j] >= 0 and not inst.required[j] and not drop[j]]
            if not opt:
                break
            per_mwh = np.array([score[chosen[j]] / (inst.pow[j] * inst.dur[j] * inst.dt) for j in opt])
            k = max(1, int(len(opt) * (0.1, 0.25, 0.5, 1.0)[attempt]))
            drop[np.array(opt)[np.argsort(per_mwh)[:k]]] = True
        self.recovery_s += time.perf_counter() - t0
        return out

    def polish(self, recent: list[np.ndarray], incumbent: Candidate, *, time_limit: float | None, gap: float,
               threads: int | None = None) -> tuple[Candidate | None, int]:
        """Restricted MILP: jobs whose choice was the same in ``recent`` (job
        choices of the last iterations) and in the incumbent are fixed; the
        others may take any triple they took recently, the incumbent's, or
        none (if optional). Returns (a candidate or None, free jobs)."""
        inst = self.inst
        t0 = time.perf_counter()
        nk = inst.triples[0].size
        lower = np.zeros(nk)
        upper = np.zeros(nk)
        upper[incumbent.starts] = 1.0
        for ch in recent:
            upper[ch[ch >= 0]] = 1.0
        jj, _, _ = inst.triples
        free_jobs = 0
        for j in range(inst.J):
            ks = np.flatnonzero((jj == j) & (upper > 0))
            if ks.size == 0:
                continue  # never chosen: stays off
            inc = np.intersect1d(ks, incumbent.starts)
            if ks.size == 1 and inc.size == 1 and all(ch[j] == ks[0] for ch in recent):
                lower[ks] = 1.0  # decided: keep it
            else:
                free_jobs += 1
        sol, _, _ = self.fixed.solve_restricted(lower, upper, start=incumbent.x, time_limit=time_limit, gap=gap,
                                                threads=threads, method=self.method)
        self.polish_s += time.perf_counter() - t0
        if sol is None:
            return None, free_jobs
        xc = self.fixed.x_cols
        starts = np.flatnonzero(np.where(xc >= 0, self.fixed.last_x[np.maximum(xc, 0)], 0.0) > 0.5)
        return Candidate(sol, evaluate(inst, sol).objective, starts, self.fixed.last_x), free_jobs
