"""Better incumbents from the site blocks: a neighbourhood search that
stays decomposed.

Around a feasible schedule, give every job a *home* site -- the site it
runs at, or for a job that does not run, the site of its best triple at
the last prices -- and cut the coupling rows apart:

- job j may run only at its home, at any start there (its assignment row
  then lives in one site only);
- the routing to site s in (region, period) is at most the schedule's own
  (so demand is never over-served, whatever each site chooses);
- site s emits at most its own emissions plus an equal share of the
  budget's slack (so the budget holds).

What is left splits by site: each site's block of the site relaxation
(:class:`~carbonsched.decomposition.site_blocks.SiteBlock`, built once on
the rank that owns the site) solved at the true costs, with those bounds,
from the schedule's own starts as a MIP start. The schedule is feasible in
every site's problem, so the union of the site optima is a schedule at
least as good as the one searched around (up to the site MILPs' gaps). It
re-times every job within its site's exact energy costs -- battery, peak
charge, committed units -- which the prices that chose it only
approximate. The union's starts then go through the dispatch model (one
LP over all sites: routing re-optimised), and the result is offered as an
incumbent; rounds repeat around each new incumbent while they gain.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .. import interrupts
from ..check import evaluate
from ..derived import budget_shares, unserved_penalty
from ..instance import Instance
from .pool_schedule import plans_solution
from .recovery import Candidate, PrimalRecovery

__all__ = ["emission_caps", "homes", "search_rounds"]


def homes(inst: Instance, starts: np.ndarray, score: np.ndarray, picks: np.ndarray | None = None) -> np.ndarray:
    """[J] the home site of each job: where it runs in the schedule
    (triples ``starts``); for a job that does not run, the site of its
    best triple by ``score`` [triples] ($) if that is positive (or the job
    is required), else -1 -- or, where ``picks`` [J] (a site, or -1) names
    one, that site: the site relaxation's choice for the job
    (:func:`~carbonsched.decomposition.site_blocks.block_picks`)."""
    jj, ss, _ = inst.triples
    home = np.full(inst.J, -1, dtype=np.int64)
    if jj.size:
        order = np.lexsort((-score, jj))  # per job, best triple first
        first = order[np.r_[True, jj[order][1:] != jj[order][:-1]]]
        keep = (score[first] > 0) | inst.required[jj[first]]
        home[jj[first[keep]]] = ss[first[keep]]
    if picks is not None:
        home = np.where(picks >= 0, picks, home)
    starts = np.asarray(starts, dtype=np.int64)
    home[jj[starts]] = ss[starts]
    return home


def emission_caps(inst: Instance, sites: dict[str, np.ndarray]) -> np.ndarray:
    """[S] each site's emissions cap (t): its share of the budget around
    the dispatch ``sites`` (:func:`~carbonsched.derived.budget_shares`),
    inf without a budget."""
    caps = budget_shares(inst, sites)
    return np.full(inst.S, np.inf) if caps is None else caps


def search_rounds(inst: Instance, pool, rec: PrimalRecovery, incumbent: Candidate, score: np.ndarray, *,
                  deadline: float, gap: float, offer: Callable[[Candidate], object],
                  log: Callable[[str], None] | None = None, picks: np.ndarray | None = None,
                  name: str = "site search") -> tuple[int, float, float]:
    """Search around ``incumbent`` until ``deadline`` (perf_counter s) or a
    round gains nothing: each round one :meth:`SubproblemPool.site_search`
    (site MILPs to relative ``gap``) and one dispatch LP. ``score``
    [triples] ($) places the jobs that do not run, ``picks`` (see
    :func:`homes`) before it. Each better schedule goes to ``offer``.
    ``name`` begins each ``log`` line. Returns (rounds, total gain in $,
    the longest round's seconds)."""
    rounds, gain, longest = 0, 0.0, 0.0
    best = incumbent
    while True:
        left = deadline - time.perf_counter()
        if left < 1.0 or interrupts.requested():
            break
        t0 = time.perf_counter()
        jj = inst.triples[0]
        start = np.full(inst.J, -1, dtype=np.int64)
        start[jj[best.starts]] = best.starts
        res = pool.site_search(homes(inst, best.starts, score, picks), start, best.solution.inference,
                               emission_caps(inst, best.solution.sites), site_limit=0.6 * left, gap=gap,
                               round_limit=0.6 * left)
        rounds += 1
        t_sites = time.perf_counter() - t0
        starts = np.flatnonzero(res.x > 0.5)
        if np.array_equal(starts, np.sort(best.starts)):
            longest = max(longest, time.perf_counter() - t0)
            if log is not None:
                log(f"{name} round {rounds}: no better schedule, locally optimal ({time.perf_counter() - t0:.2f} s)")
            break
        plans = float(np.sum(res.value)) - unserved_penalty(inst)  # nan where a site found no point
        cand = None
        if np.isfinite(plans):  # the sites' plans as they are: a schedule, no solve needed
            sol = plans_solution(inst, starts, res.y, res.dispatch, rec.method)
            cand = Candidate(sol, evaluate(inst, sol).objective, starts, None)
        # the same starts re-routed over all sites by the dispatch LP (committed units then re-dispatched
        # exactly, which can take a MILP: capped at twice the pool round)
        routed = rec.from_starts(starts, time_limit=min(deadline - time.perf_counter(), max(2.0, 2.0 * t_sites)))
        if routed is not None and (cand is None or routed.objective > cand.objective):
            cand = routed
        better = cand is not None and cand.objective > best.objective + 1e-9 * max(1.0, abs(best.objective))
        longest = max(longest, time.perf_counter() - t0)
        if log is not None:
            obj = f"{cand.objective:,.2f}" if cand is not None else "none"
            log(f"{name} round {rounds}: {np.setdiff1d(starts, best.starts).size} start(s) changed, site plans "
                f"{plans:,.2f}, routed and dispatched {obj} (incumbent {best.objective:,.2f}), sites max "
                f"{np.nanmax(res.site_s):.2f} s, pool {t_sites:.2f} s, round {time.perf_counter() - t0:.2f} s")
        if not better:
            break
        gain += cand.objective - best.objective
        best = cand
        offer(cand)
    return rounds, gain, longest
