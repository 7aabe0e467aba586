"""A schedule from the pool's site problems alone: recovery at any scale.

The keep LP of :mod:`.recovery` routes and dispatches a job choice over all
sites at once. On ``xlarge`` (100 sites x 720 h) that LP has 0.71 M columns
and one rank solves it while the others wait: on a 2.8 GHz Xeon the first
recovery ran 1,768 s of a 1,800 s run and returned no schedule. Where the
keep LP does not finish within its share of the time, recovery goes on here,
where each site's problem is a few thousand columns, solved by the rank that
owns it:

1. the choice, repaired to fit IT capacity and deliverable power
   (:func:`~.recovery.repair_schedule`);
2. inference routed greedily into the IT room the schedule leaves, region
   by region, the pair of largest margin first (:func:`route_inference`;
   the recovery passes the margins priced at the dual point);
3. every site's energy LP at that facility load (:meth:`SubproblemPool.evaluate`).
   A site that cannot power it sheds the jobs that run where its phase-1
   problem is short, least score per MW-period first, as many as cover the
   shortfall (or, with no optional job there, halves the inference routed
   to it in those periods); repeat;
4. where the sites' least-cost dispatch emits more than the budget, the
   least carbon price at which their dispatch does not (:func:`carbon_price`:
   a bisection, each step one pool call). Where even the least-emitting
   dispatch breaks the budget, the jobs and the site-periods' inference that
   cost the most tonnes for their value are shed until their tonnes (at the
   grid's intensity) cover the excess; repeat from 3;
5. rounds of price-directed moves (:func:`_improve`): at the sites'
   marginal costs, shed jobs worth their load come back where they fit, and
   the routing moves a step towards its greedy routing; a round is kept
   where OB grows within the budget;
6. rounds against peak charges, site by site (:func:`_shave_rounds`): with
   the rest fixed a site's cost depends on its own load alone, so in one
   pool call every site tries to take less inference near its highest net
   load (then to take demand left unserved below it, then to let go of a
   job whose load costs more than its value) and keeps that or not by
   itself. The move rounds' global step fails where any site loses, and a
   peak charge's marginal cost holds for one MW only;
7. the sites dispatched exactly (committed units' MILPs, within
   :data:`EXACT_SHARE` of the time left), each within its emissions at that
   price plus an equal share of the budget's slack (the shares add up to the
   budget); a committed site that finds no dispatch sheds one job, and the
   loop goes on.

Every round that does not end the loop sheds load, so the loop ends. The
schedule is feasible by construction: capacity and routing by steps 1-2, the
sites' power by 3, the budget by 4-7. Measured on the first Lagrangian choice
(1 rank; before step 6 in brackets): `medium` 11.73 M (11.67 M) against
11.87 M for the keep LP; `large` 60.27 M in 35.8 s (59.63 M) against
61.76 M in 50.6 s (most of the difference is peak charges, 8.13 M against
6.24 M: the LP spreads the peaks by routing and by dropping jobs in part);
the budget-binding 10 x 168 x 60 case 3.76 M (3.59 M; 27 of 60 jobs shed)
against 4.31 M -- the LP weighs each job against its emissions at once,
where this sheds by estimates; `xlarge`, the value before the exact
dispatch, 214.45 M (209.51 M), step 6 taking 23 s. So it stands in only
where the LP does not finish.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from ..check import evaluate
from ..compute import inference_margin
from ..derived import inference_load, job_room, schedule_load, shares_around, unserved_penalty, window_sums
from ..instance import Instance
from ..solution import SITE_SERIES, Solution

__all__ = ["PoolSchedule", "carbon_price", "plans_solution", "route_inference", "schedule_on_pool"]

#: a site that must shed and has no optional job left halves the inference routed to it in the periods that fail;
#: below this share of its room it is given up (its idle load alone cannot be powered)
THROTTLE_FLOOR = 1e-6
#: the committed sites' exact dispatch (their MILPs) may take this share of the time left; a site whose MILP has
#: found no dispatch by then sheds a job (on `xlarge` a 720-hour unit-commitment MILP per site can run for minutes)
EXACT_SHARE = 0.25
#: rounds of price-directed moves (:func:`_improve`) at most, and the smallest step they take
IMPROVE_ROUNDS, IMPROVE_MIN_STEP = 40, 1.0 / 16
#: the site-by-site rounds against peak charges (:func:`_shave_rounds`): at most SHAVE_ROUNDS, ending after
#: SHAVE_PATIENCE in a row that keep nothing; a site first shaves within SHAVE_START x (its highest net load - its
#: mean). First Lagrangian choice, 1 rank: `large` 59.63 M -> 60.27 M with 0.3 (0.1: 60.13 M, 0.03: 60.13 M)
SHAVE_ROUNDS, SHAVE_START, SHAVE_PATIENCE = 40, 0.3, 3
#: the carbon prices ($/t) the bisection searches between: at MU_MAX a site's least-cost dispatch is its least
#: emitting one (grid prices are 1e1-1e3 $/MWh, intensities 1e-2-1 t/MWh)
MU_START, MU_MAX = 1.0, 1e6
#: the carbon price's bisection ends within this share of the price
MU_TOL = 0.02


@dataclass
class PoolSchedule:
    """What :func:`schedule_on_pool` found: the solution (None: none), its
    value ($), the triples it runs, the pool rounds it took, the jobs it shed
    and its seconds."""

    solution: Solution | None
    objective: float | None
    starts: np.ndarray
    rounds: int
    shed: int
    seconds: float


def route_inference(inst: Instance, room: np.ndarray, margin: np.ndarray | None = None,
                    demand: np.ndarray | None = None) -> np.ndarray:
    """[pairs, H] inference flows (MW) into the IT room ``room`` [S,H] (MW),
    region by region, each region's demand to its reachable sites in order
    of ``margin`` [pairs] or [pairs, H] (default
    :func:`~carbonsched.compute.inference_margin`, $/MWh; only its order and
    sign count), only where it is positive. ``demand`` [R,H] (MW): what is
    left to route (default: all of it)."""
    rr, sr = inst.region_pairs
    H = inst.H
    y = np.zeros((rr.size, H))
    if rr.size == 0:
        return y
    m = inference_margin(inst) if margin is None else np.asarray(margin, dtype=float)
    m = np.broadcast_to(m[:, None] if m.ndim == 1 else m, (rr.size, H))
    room = np.maximum(0.0, np.asarray(room, dtype=float)).copy()
    f = inst.f_inf
    cols = np.arange(H)
    for r in np.unique(rr):
        ks = np.flatnonzero(rr == r)
        order = ks[np.argsort(-m[ks], axis=0, kind="stable")]  # [pairs of r, H], best pair first per period
        left = np.asarray((inst.L if demand is None else demand)[r], dtype=float).copy()
        for k in order:
            s = sr[k]
            fs = f[s]
            most = np.divide(room[s, cols], fs, out=np.full(H, np.inf), where=fs > 0)
            amt = np.where(m[k, cols] > 0, np.minimum(left, most), 0.0)
            y[k, cols] = amt
            room[s, cols] -= fs * amt
            left -= amt
    return y


def plans_solution(inst: Instance, starts: np.ndarray, y: np.ndarray, dispatch: np.ndarray,
                   method: str) -> Solution:
    """The schedule that the sites' plans make together: training
    ``starts`` (triples), routing ``y`` [pairs, H] (MW) and each site's
    dispatch [S, len(SITE_SERIES), H+1]."""
    jj, ss, tt = inst.triples
    H = inst.H
    training = [(inst.job_ids[jj[k]], inst.site_ids[ss[k]], int(tt[k])) for k in np.sort(starts)]
    rr, sr = inst.region_pairs
    inference = np.zeros((inst.R, inst.S, H))
    inference[rr, sr] = y
    sites = {k: dispatch[:, i, :H + 1 if k == "soc_mwh" else H].copy() for i, k in enumerate(SITE_SERIES)}
    return Solution(inst.name, method, "feasible", None, None, None, None, training, inference, sites)


def _load(inst: Instance, starts: np.ndarray, throttle: np.ndarray,
          margin: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(routing [pairs, H] MW, facility load [S,H] MW) of the schedule
    ``starts`` with inference routed into ``throttle`` x the room it leaves."""
    run = schedule_load(inst, starts)
    y = route_inference(inst, throttle * np.maximum(0.0, job_room(inst) - run), margin)
    return y, _facility(inst, run, y)


def _facility(inst: Instance, run: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[S,H] facility load (MW) of the training load ``run`` [S,H] (IT MW)
    and the inference flows ``y`` [pairs, H]."""
    return inst.pue * (inst.idle[:, None] + run + inference_load(inst, y))


def _shed_site(inst: Instance, starts: np.ndarray, score: np.ndarray, s: int, periods: np.ndarray,
               need: float) -> np.ndarray:
    """The triples of ``starts`` that site ``s`` sheds: its optional jobs
    running in ``periods`` [H] bool, least ``score`` per facility MW-period
    run there first, until those MW-periods reach ``need``; at least one."""
    jj, ss, tt = inst.triples
    mine = starts[(ss[starts] == s) & ~inst.required[jj[starts]]]
    if mine.size == 0:
        return mine
    per_mw = periods * inst.pue[s]  # facility MW-periods per IT MW
    cum = np.concatenate([[0.0], np.cumsum(per_mw)])
    d = inst.dur[jj[mine]]
    relief = inst.pow[jj[mine]] * (cum[tt[mine] + d] - cum[tt[mine]])
    mine, relief = mine[relief > 0], relief[relief > 0]
    if mine.size == 0:
        return mine
    order = np.argsort(score[mine] / relief, kind="stable")
    upto = int(np.searchsorted(np.cumsum(relief[order]), need)) + 1
    return mine[order[:upto]]


def _job_tonnes(inst: Instance, triples: np.ndarray) -> np.ndarray:
    """[len(triples)] each triple's facility energy at its site's grid
    intensity (t): what shedding it saves where the grid is marginal."""
    jj, ss, tt = inst.triples
    per_mw = inst.pue * inst.ci * inst.dt  # t per IT MW for one period
    cum = np.concatenate([np.zeros((inst.S, 1)), np.cumsum(per_mw, axis=1)], axis=1)
    k = np.asarray(triples, dtype=np.int64)
    return inst.pow[jj[k]] * (cum[ss[k], tt[k] + inst.dur[jj[k]]] - cum[ss[k], tt[k]])


def _shed_tonnes(inst: Instance, starts: np.ndarray, score: np.ndarray, y: np.ndarray,
                 need: float) -> tuple[np.ndarray, np.ndarray]:
    """What to shed for ``need`` tonnes, least value per tonne (at the
    grid's intensity) first, until the tonnes reach ``need``: (the optional
    triples of ``starts`` to drop, by ``score``; [S,H] bool the site-periods
    whose inference, ``y`` [pairs, H] MW, to route elsewhere or leave
    unserved, by the pairs' margin -- an upper bound on what that loses)."""
    jj, sr = inst.triples[0], inst.region_pairs[1]
    jobs = starts[~inst.required[jj[starts]]]
    job_t = _job_tonnes(inst, jobs)
    inf_mw = inference_load(inst, y)
    inf_val = np.zeros((inst.S, inst.H))
    np.add.at(inf_val, sr, inference_margin(inst)[:, None] * inst.dt * y)
    cell_t = (inst.pue * inst.ci * inst.dt * inf_mw).ravel()
    cells = np.flatnonzero(cell_t > 1e-9)
    tonnes = np.concatenate([job_t, cell_t[cells]])
    value = np.concatenate([score[jobs], inf_val.ravel()[cells]])
    ok = tonnes > 1e-9
    idx = np.flatnonzero(ok)[np.argsort(value[ok] / tonnes[ok], kind="stable")]
    take = idx[:int(np.searchsorted(np.cumsum(tonnes[idx]), need)) + 1]
    mask = np.zeros(inst.S * inst.H, dtype=bool)
    mask[cells[take[take >= jobs.size] - jobs.size]] = True
    return jobs[take[take < jobs.size]], mask.reshape(inst.S, inst.H)


def carbon_price(pool, P: np.ndarray, budget: float, *, deadline: float | None = None):
    """(mu $/t, the pool's evaluation at it) where the sites, each at its
    least cost plus ``mu`` per tonne for load ``P`` [S,H] (MW), emit at most
    ``budget`` (t) in all: the least such price within :data:`MU_TOL` (by
    bisection on log mu between :data:`MU_START` and :data:`MU_MAX`; where
    the deadline passes first, the least found so far). (None, the
    evaluation at ``MU_MAX``) where even that emits more: the load's
    emissions floor is above the budget."""
    ev = pool.evaluate(P, None, mu=MU_MAX)
    if not ev.feasible.all() or float(np.nansum(ev.emissions)) > budget:
        return None, ev
    lo, hi, at_hi = np.log(MU_START), np.log(MU_MAX), ev
    while hi - lo > np.log1p(MU_TOL) and (deadline is None or time.perf_counter() < deadline):
        mid = 0.5 * (lo + hi)
        ev = pool.evaluate(P, None, mu=float(np.exp(mid)))
        if ev.feasible.all() and float(np.nansum(ev.emissions)) <= budget:
            hi, at_hi = mid, ev
        else:
            lo = mid
    return float(np.exp(hi)), at_hi


def _fit(inst: Instance, triples: np.ndarray, worth: np.ndarray, free: np.ndarray) -> np.ndarray:
    """The triples, best ``worth`` first, that fit one by one into the IT
    room ``free`` [S,H] (MW; used up as they go), one per job."""
    jj, ss, tt = inst.triples
    out: list[int] = []
    taken: set[int] = set()
    for k in triples[np.argsort(-worth[triples], kind="stable")]:
        j, s, t0 = int(jj[k]), int(ss[k]), int(tt[k])
        d, pw = int(inst.dur[j]), float(inst.pow[j])
        if j not in taken and np.all(free[s, t0:t0 + d] >= pw - 1e-9):
            free[s, t0:t0 + d] -= pw
            out.append(int(k))
            taken.add(j)
    return np.array(out, dtype=np.int64)


def _true_cost(ev, mu: float) -> np.ndarray:
    """[S] the sites' cost ($) in an evaluation at carbon price ``mu``,
    less the carbon price's part."""
    return np.asarray(ev.cost) - mu * np.nan_to_num(np.asarray(ev.emissions))


def _worth(inst: Instance, ev) -> np.ndarray:
    """[triples] each triple's value less its load at the sites' marginal
    costs in the evaluation ``ev`` ($)."""
    jj = inst.triples[0]
    return inst.val[jj] - inst.pow[jj] * window_sums(inst, inst.pue * ev.g_load)


def _lp_value(inst: Instance, keep: np.ndarray, y: np.ndarray, ev, mu: float) -> float:
    """OB ($) of the schedule ``keep`` with routing ``y`` and the sites'
    dispatch of ``ev`` (an evaluation at carbon price ``mu`` $/t)."""
    q = _true_cost(ev, mu)
    return float(inst.val[inst.triples[0][keep]].sum() + (inference_margin(inst)[:, None] * inst.dt * y).sum()
                 - unserved_penalty(inst) - q.sum())


def _improve(inst: Instance, pool, keep: np.ndarray, y: np.ndarray, P: np.ndarray, ev, mu: float,
             budget: float | None, throttle: np.ndarray, deadline: float | None, shed: np.ndarray):
    """Rounds of price-directed moves from a schedule the sites can power
    within the budget (``ev``: the pool's evaluation of load ``P`` at carbon
    price ``mu``). At the sites' marginal costs (``ev.g_load``, carbon
    included): the jobs of ``shed`` (triples shed before) worth more than
    their load are taken back, best first, where they fit beside the
    schedule and its inference; and the inference routing moves a step
    towards its greedy routing (:func:`route_inference`, margins less the
    marginal cost of the IT load). A round is kept where the sites can power
    the new load within the budget and OB grows; else the step halves.
    Returns (keep, y, P, ev, rounds).

    Jobs are not dropped here: on `large` (first Lagrangian choice), dropping
    the jobs worth less than their load at the marginal costs -- all of them,
    or the worst share ``step`` of them -- left 57.9 M and 58.9 M against
    59.6 M without (the keep LP: 61.8 M); the marginal cost of a peak period
    holds for one MW, not for every job that runs through it."""
    sr = inst.region_pairs[1]
    best = _lp_value(inst, keep, y, ev, mu)
    step, rounds = 0.5, 0
    base = inference_margin(inst)[:, None] * inst.dt
    while rounds < IMPROVE_ROUNDS and step >= IMPROVE_MIN_STEP and (deadline is None or time.perf_counter() < deadline):
        per_it = inst.pue * ev.g_load  # $ per IT MW for one period at each site-period's marginal cost
        worth_all = _worth(inst, ev)
        keep2 = keep
        back = np.setdiff1d(shed, keep)
        if back.size:
            free = job_room(inst) - schedule_load(inst, keep) - inference_load(inst, y)
            keep2 = np.sort(np.concatenate([keep, _fit(inst, back[worth_all[back] > 0], worth_all, free)]))
        room = throttle * np.maximum(0.0, job_room(inst) - schedule_load(inst, keep2))
        y2 = (1.0 - step) * y + step * route_inference(inst, room, base - inst.f_inf[sr][:, None] * per_it[sr])
        P2 = _facility(inst, schedule_load(inst, keep2), y2)
        ev2 = pool.evaluate(P2, None, mu=mu)
        rounds += 1
        ok = ev2.feasible.all() and (budget is None or float(np.nansum(ev2.emissions)) <= budget)
        value = _lp_value(inst, keep2, y2, ev2, mu) if ok else -np.inf
        if value > best + 1e-9 * max(1.0, abs(best)):
            keep, y, P, ev, best = keep2, y2, P2, ev2, value
        else:
            step *= 0.5
    return keep, y, P, ev, rounds


def _pick(ok: np.ndarray, new, old):
    """A pool evaluation taking site ``s``'s results from ``new`` where
    ``ok[s]`` and from ``old`` elsewhere (each site's results depend on its
    own load only)."""
    def sel(a, b):
        if a is None or b is None:
            return None
        a, b = np.asarray(a), np.asarray(b)
        return np.where(ok.reshape((-1,) + (1,) * (a.ndim - 1)), a, b) if a.shape[:1] == ok.shape else b
    return dataclasses.replace(old, **{f.name: sel(getattr(new, f.name), getattr(old, f.name))
                                       for f in dataclasses.fields(old) if f.name not in ("rank_s", "dispatch")})


def _shave_rounds(inst: Instance, pool, keep: np.ndarray, y: np.ndarray, P: np.ndarray, ev, mu: float,
                  budget: float | None, deadline: float | None):
    """Rounds of site-by-site moves against peak charges. With the rest of
    the schedule fixed, a site's cost depends on its own load only, so in
    each step every site tries a change in the same pool call and keeps it
    or not by itself (where its cost falls by more than the value it gives
    up, and the sites together stay within the budget):

    - shave: a site takes less inference where its net load (facility
      load less renewables, MW) is within ``delta`` of its highest;
      ``delta`` grows by half where that was kept and halves where not;
    - fill: the demand not served goes, at the sites' marginal costs,
      into the room each site has below its highest net load;
    - drop: a site lets go of its optional job worth least at its marginal
      costs, where the job's load costs more than its value (the next
      job is tried where it did not).

    Ends after :data:`SHAVE_PATIENCE` rounds in a row that keep nothing, or
    :data:`SHAVE_ROUNDS` rounds. Returns (keep, y, P, ev, pool calls)."""
    jj, ss, _ = inst.triples
    sr = inst.region_pairs[1]
    margin = inference_margin(inst)[:, None] * inst.dt
    net = np.maximum(0.0, P - inst.ren)
    delta = SHAVE_START * (net.max(axis=1) - net.mean(axis=1))
    skip = np.zeros(inst.S, dtype=np.int64)  # jobs a site has kept after trying to drop them
    calls = idle = 0
    q = _true_cost(ev, mu)
    for _ in range(SHAVE_ROUNDS):
        if idle >= SHAVE_PATIENCE or (deadline is not None and time.perf_counter() >= deadline):
            break
        kept = False
        # shave
        net = np.maximum(0.0, P - inst.ren)
        inf = inference_load(inst, y)
        cut = np.minimum(np.maximum(0.0, net - (net.max(axis=1) - delta)[:, None]) / inst.pue, inf)  # IT MW
        if (cut > 1e-9).any():
            y2 = y * np.divide(inf - cut, inf, out=np.ones_like(inf), where=inf > 1e-12)[sr]
            lost = np.zeros(inst.S)
            np.add.at(lost, sr, (margin * (y - y2)).sum(axis=1))
            ok, ev, q = _site_step(pool, P - inst.pue * cut, ev, q, mu, budget, lost, cut.sum(axis=1) > 1e-9)
            calls += 1
            y, P = np.where(ok[sr][:, None], y2, y), np.where(ok[:, None], P - inst.pue * cut, P)
            delta = np.where(ok, 1.5 * delta, 0.5 * delta)
            kept |= bool(ok.any())
        # fill
        net = np.maximum(0.0, P - inst.ren)
        room = np.maximum(0.0, np.minimum((net.max(axis=1)[:, None] - net) / inst.pue,
                                          job_room(inst) - schedule_load(inst, keep) - inference_load(inst, y)))
        served = np.zeros((inst.R, inst.H))
        np.add.at(served, inst.region_pairs[0], y)
        add = route_inference(inst, room, margin - inst.f_inf[sr][:, None] * (inst.pue * ev.g_load)[sr],
                              demand=np.maximum(0.0, np.asarray(inst.L, dtype=float) - served))
        if (add > 1e-9).any():
            gain = np.zeros(inst.S)
            np.add.at(gain, sr, (margin * add).sum(axis=1))
            P2 = P + inst.pue * inference_load(inst, add)
            ok, ev, q = _site_step(pool, P2, ev, q, mu, budget, -gain, gain > 0)
            calls += 1
            y, P = np.where(ok[sr][:, None], y + add, y), np.where(ok[:, None], P2, P)
            kept |= bool(ok.any())
        # drop
        worth = _worth(inst, ev)
        opt = keep[~inst.required[jj[keep]] & (worth[keep] < 0)]
        opt = opt[np.lexsort((worth[opt], ss[opt]))]  # by site, least worth first
        pos = np.arange(opt.size) - np.searchsorted(ss[opt], ss[opt])
        pick = opt[pos == skip[ss[opt]]]
        if pick.size:
            picked = np.zeros(inst.S, dtype=bool)
            picked[ss[pick]] = True
            P2 = P - inst.pue * schedule_load(inst, pick)
            val = np.zeros(inst.S)
            np.add.at(val, ss[pick], inst.val[jj[pick]])
            ok, ev, q = _site_step(pool, P2, ev, q, mu, budget, val, picked)
            calls += 1
            gone = pick[ok[ss[pick]]]
            keep = np.setdiff1d(keep, gone)
            P = np.where(ok[:, None], P2, P)
            skip[ss[pick[~ok[ss[pick]]]]] += 1
            kept |= bool(ok.any())
        idle = 0 if kept else idle + 1
    return keep, y, P, ev, calls


def _site_step(pool, P2: np.ndarray, ev, q: np.ndarray, mu: float, budget: float | None, given: np.ndarray,
               tried: np.ndarray):
    """Evaluate the load ``P2`` [S,H] (MW); site s keeps its part where it
    ``tried`` and its cost falls by more than ``given[s]`` ($, what the change
    gives up), and the sites then stay within ``budget`` (t; else none
    keeps). Returns ([S] kept, the evaluation of the loads kept, their
    costs)."""
    ev2 = pool.evaluate(P2, None, mu=mu)
    q2 = _true_cost(ev2, mu)
    ok = tried & ev2.feasible & (q - q2 > given + 1e-9 * np.maximum(1.0, np.abs(q)))
    if ok.any() and budget is not None:
        em = np.where(ok, np.nan_to_num(np.asarray(ev2.emissions)), np.nan_to_num(np.asarray(ev.emissions)))
        if float(em.sum()) > budget:
            ok[:] = False
    if not ok.any():
        return ok, ev, q
    return ok, _pick(ok, ev2, ev), np.where(ok, q2, q)


def schedule_on_pool(inst: Instance, pool, starts: np.ndarray, score: np.ndarray, *, method: str,
                     deadline: float | None = None, margin: np.ndarray | None = None) -> PoolSchedule:
    """The schedule of the module docstring from the capacity-feasible
    triples ``starts``, shedding by ``score`` [triples] ($), before
    ``deadline`` (``time.perf_counter`` s; None: none). Routing by
    ``margin`` (see :func:`route_inference`)."""
    t0 = time.perf_counter()
    keep = first = np.sort(np.asarray(starts, dtype=np.int64))
    throttle = np.ones((inst.S, inst.H))
    budget = None if inst.budget is None else float(inst.budget)
    rounds = shed = 0

    def out(sol: Solution | None) -> PoolSchedule:
        obj = None if sol is None else evaluate(inst, sol).objective
        if sol is not None:
            sol.objective = obj
        return PoolSchedule(sol, obj, keep, rounds, shed, time.perf_counter() - t0)

    while deadline is None or time.perf_counter() < deadline:
        y, P = _load(inst, keep, throttle, margin)
        ev = pool.evaluate(P, None)
        rounds += 1
        drop: list[np.ndarray] = []
        bad = ~ev.feasible
        mu = 0.0
        if not bad.any() and budget is not None and float(np.nansum(ev.emissions)) > budget:
            # the sites' dispatch at a carbon price that brings them within the budget; where none does at this
            # load, shed the jobs that cost the most tonnes for their score
            price, at = carbon_price(pool, P, budget, deadline=deadline)
            if price is None:
                gone, cells = _shed_tonnes(inst, keep, score, y, float(np.nansum(at.emissions)) - budget)
                if gone.size == 0 and not cells.any():
                    return out(None)  # nothing left to shed: the idle load and required jobs break the budget
                throttle[cells] = 0.0
                shed += gone.size
                keep = np.setdiff1d(keep, gone)
                continue
            mu, ev = price, at
        exact_failed = np.zeros(inst.S, dtype=bool)
        if not bad.any():
            keep, y, P, ev, gained = _improve(inst, pool, keep, y, P, ev, mu, budget, throttle, deadline,
                                              np.setdiff1d(first, keep))
            rounds += gained
            before = keep.size
            keep, y, P, ev, gained = _shave_rounds(inst, pool, keep, y, P, ev, mu, budget, deadline)
            rounds += gained
            shed += before - keep.size
            share = None if budget is None else shares_around(ev.emissions, budget)
            left = None if deadline is None else max(0.05, EXACT_SHARE * (deadline - time.perf_counter()))
            ex = pool.evaluate(P, share, exact=True, time_limit=left)
            rounds += 1
            if ex.feasible.all():
                assert ex.dispatch is not None
                return out(plans_solution(inst, keep, y, ex.dispatch, method))
            exact_failed = bad = ~ex.feasible
        for s in np.flatnonzero(bad):
            # a site that cannot power its load sheds the jobs running where the phase-1 problem is short (as
            # many as cover the shortfall); a committed site whose units cannot follow sheds one job
            periods = np.ones(inst.H, dtype=bool) if exact_failed[s] else np.abs(ev.g_load[s]) > 1e-9
            need = 0.0 if exact_failed[s] else float(ev.cost[s])
            gone = _shed_site(inst, keep, score, int(s), periods, need)
            if gone.size:
                drop.append(gone)
                continue
            if throttle[s].max() < THROTTLE_FLOOR:  # nothing left to shed: idle load alone fails here
                return out(None)
            throttle[s, periods if periods.any() else slice(None)] *= 0.5
        if drop:
            gone = np.concatenate(drop)
            shed += gone.size
            keep = np.setdiff1d(keep, gone)
    return out(None)
