"""Primal recovery: from a (relaxed) job choice to a feasible schedule.

:func:`repair_schedule` turns one choice per job (which may overload a
site, or leave a required job out) into a schedule that fits IT capacity
and the most power each site can deliver, greedily by priority. The
routing and the energy dispatch for that schedule are then an LP
(:class:`~carbonsched.fixed.FixedScheduleModel`).
"""

from __future__ import annotations

import numpy as np

from .diagnose import max_supply
from .instance import Instance

__all__ = ["repair_schedule", "job_room", "window_sums"]


def job_room(inst: Instance) -> np.ndarray:
    """[S,H] IT MW available to training jobs: capacity less idle, and no
    more than the site can power (max supply / pue less idle)."""
    power_room = max_supply(inst) / inst.pue - inst.idle[:, None]
    return np.maximum(0.0, np.minimum(inst.cap[:, None] - inst.idle[:, None], power_room))


def window_sums(inst: Instance, rho: np.ndarray) -> np.ndarray:
    """[triples] sum of ``rho[s, t]`` over each triple's run periods."""
    jj, ss, tt = inst.triples
    cs = np.zeros((inst.S, inst.H + 1))
    np.cumsum(rho, axis=1, out=cs[:, 1:])
    return cs[ss, tt + inst.dur[jj]] - cs[ss, tt]


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
