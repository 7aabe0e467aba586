"""The exact endgame, shared by the Lagrangian method and Benders.

Reduced-cost fixing on a valid relaxation (the capacity-dualised
Lagrangian bound, or Benders' master LP) marks the job triples that no
schedule better than the incumbent uses. Where at most
:data:`EXACT_ENDGAME_TRIPLES` are left free, the exact endgame solves the
MILP over those triples (the full fixed-schedule model of
:class:`~carbonsched.fixed.FixedScheduleModel` with the fixed triples'
binaries at 0), warm-started from the incumbent (the Lagrangian's runs
from none where no recovery found a schedule). Its bound, or the
incumbent where that is larger, is a bound on the whole problem: a schedule
outside the restriction uses a fixed triple, so it is no better than the
incumbent. On several ranks the others search for schedules meanwhile
(:mod:`.endgame_search`), or with ``endgame_race`` (the Lagrangian's
option) solve the same MILP (:mod:`.race`). Where the schedule a restricted MILP ends with
leaves the gap open, its dispatch is re-solved on the pool
(:meth:`PrimalRecovery.redispatch`): HiGHS's incumbents come from
heuristics and dives whose dispatch is not optimal for their schedule.
"""

from __future__ import annotations

import time

import numpy as np

from .. import interrupts
from .driver import RunState
from .pool import SubproblemPool
from .race import RaceEntry, best_rank, race_bound
from .recovery import Candidate, PrimalRecovery, endgame_upper

__all__ = [
    "ENDGAME_AFTER_S",
    "ENDGAME_HANDOVER_SHARE",
    "ENDGAME_HANDOVER_WINDOW",
    "ENDGAME_HEURISTIC_EFFORT",
    "ENDGAME_OVERRUN_SHARE",
    "ENDGAME_SEARCH_TRIPLES",
    "EXACT_ENDGAME_GAP_SHARE",
    "EXACT_ENDGAME_TRIPLES",
    "REDISPATCH_MIN_S",
    "REDISPATCH_SHARE",
    "endgame_due",
    "lp_fixable",
    "restricted_milp",
]

#: the polish's last MILP is over every triple that reduced-cost fixing left free (a global bound: the exact
#: endgame) where at most this many are free; above, it is over the undecided jobs only. Measured with the
#: hand-over below: the exact endgame beat the site stages on generated instances of 394-8,786 triples (8,786:
#: 0.57% against 1.18% at 240 s); on `medium`, 35,476 triples, it left 2.3% where the site stages reach 0.5%
EXACT_ENDGAME_TRIPLES = 10000
#: the iterations before the exact endgame (the Lagrangian's dual iterations, Benders' LP phase) hand over to it
#: once bound and incumbent together moved less than ENDGAME_HANDOVER_SHARE of the gap over the last
#: ENDGAME_HANDOVER_WINDOW iterations (:func:`endgame_due`; the Lagrangian also waits for a recovery that missed).
#: The endgame then runs with the time left (on a generated 4-site week, 394 triples, the Lagrangian's dual
#: iterations had crept on for 600 iterations and 20 s, and the site relaxation and window search took 27 s more,
#: before a 5 s exact endgame that could not close the gap)
ENDGAME_HANDOVER_WINDOW = 20
ENDGAME_HANDOVER_SHARE = 0.1

#: the exact endgame's MILP stops at this share of the run's gap: its bound is global and HiGHS's gap is the
#: run's (same objective, offset included, same denominator), so the run is certified where HiGHS stops; the 1%
#: kept covers the incumbent's objective as recomputed from its schedule. At half the gap a generated
#: 8,786-triple instance ran on from 1% to 0.57% and to its 240 s limit (the monolithic solve stopped at 123 s)
EXACT_ENDGAME_GAP_SHARE = 0.99
#: where more than ENDGAME_SEARCH_TRIPLES triples are free, the exact endgame runs HiGHS with this
#: mip_heuristic_effort (its default: 0.05). On the budget-binding case (5,675 triples) 0.3 and 0.6 both found
#: 4,618,396 in 240 s, against 4,589,094 at the default (1.01% against 1.61%); on `small` (745) and a generated
#: 394-triple instance, where the endgame is for the proof, 0.3 took 33.8 and 15.8 s against 30.0 and 10.7 s
ENDGAME_HEURISTIC_EFFORT = 0.3
ENDGAME_SEARCH_TRIPLES = 2000
#: the exact endgame's MILP is handed its time less this share: HiGHS's branch and bound at the root of a large
#: MILP can run on past its limit and past the interrupt callback's (on the budget-binding case, 5,675 triples,
#: one solve given 220 s ended 3.6 s late and the run 1.1 s past its 240 s; others 0.1-0.6 s late)
ENDGAME_OVERRUN_SHARE = 0.015
#: and less these seconds, for what follows the solve within the stage (the schedule read back into Pyomo and
#: checked: 0.2 s on a 2,872-triple mid-size instance, 0.5 s on the budget-binding case, after which a 60 s
#: Benders run ended 0.17 s past its limit)
ENDGAME_AFTER_S = 0.5



#: after a restricted MILP whose schedule leaves the gap open, its dispatch is re-solved on the pool
#: (:meth:`PrimalRecovery.redispatch`) within this share of the MILP's time (at least REDISPATCH_MIN_S), kept back
#: from it: on the budget-binding case its rounds (2.1 s on one rank) took the exact endgame's 4,618,396 to
#: 4,621,358, from 1.01% to 0.95%
REDISPATCH_SHARE = 0.02
REDISPATCH_MIN_S = 0.5


def restricted_milp(st: RunState, pool: SubproblemPool, rec: PrimalRecovery, recent: list[np.ndarray],
                    fixed: np.ndarray | None, limit: float | None, stage: str, *, race: bool = False,
                    bound_name: str = "lagrangian_bound") -> None:
    """One restricted MILP (:meth:`PrimalRecovery.polish`) from the
    incumbent (``st.best``'s ``candidate``) within ``limit`` seconds: over
    the undecided jobs, or with ``fixed`` over every triple not fixed (the
    exact endgame), whose bound is then a global one; the run's bound before
    it goes to the stats as ``bound_name``. ``race``: on several ranks, the
    exact endgame runs on every rank (:mod:`.race`). Where its schedule
    leaves the gap open, its dispatch is re-solved on the pool
    (:meth:`PrimalRecovery.redispatch`, within :data:`REDISPATCH_SHARE` of
    ``limit``, kept back from the MILP)."""
    opts = st.opts
    before = st.objective
    t0 = time.perf_counter()
    # without a schedule yet (the exact endgame only): HiGHS starts from none, over every triple
    inc = st.best.payload["candidate"] if st.best is not None else None
    if fixed is not None and limit is not None:
        limit = limit * (1.0 - ENDGAME_OVERRUN_SHARE) - ENDGAME_AFTER_S
    redispatch_s = None if limit is None else max(REDISPATCH_MIN_S, REDISPATCH_SHARE * limit)
    if limit is not None:
        limit -= redispatch_s
    searching = fixed is not None and int((~fixed).sum()) > ENDGAME_SEARCH_TRIPLES
    # the other ranks race the same MILP (``race``), or else search for schedules (:mod:`.endgame_search`)
    racing = (fixed is not None and inc is not None and (race or opts.endgame_search) and pool.size > 1
              and rec.full_model_fits())
    gap = (EXACT_ENDGAME_GAP_SHARE if fixed is not None else 0.5) * opts.gap
    effort = ENDGAME_HEURISTIC_EFFORT if searching else None
    earlier = rec.fixed_last_info()  # the full model's last outcome before this stage (see exact_endgame_stop)
    with st.timed("polish_s"):
        if racing:  # every rank starts from the same full vector (kept in inc.x), not from its own dispatch MILP
            t1 = time.perf_counter()
            rec.start_x(inc, None if limit is None else 0.25 * limit)
            limit = None if limit is None else limit - (time.perf_counter() - t1)
        poll = pool.race_begin(dict(upper=endgame_upper(fixed, inc.starts), start_x=inc.x, start_triples=inc.starts,
                                    start_objective=inc.objective, limit=limit, gap=gap,
                                    effort=effort if race else ENDGAME_HEURISTIC_EFFORT,  # a search: for schedules
                                    search=not race)) if racing else None
        cand, free, bound = rec.polish(recent, inc, time_limit=limit, gap=gap, threads=opts.threads, fixed=fixed,
                                       heuristic_effort=effort, stop=poll)
        if racing:
            cand, bound = _race_end(st, pool, rec, cand, bound, time.perf_counter() - t0, race)
        gained = 0.0
        if cand is not None and _gap_open(st, cand.objective, bound if fixed is not None else None):
            # its share, and never past what the run has left (a MILP that ran past its own limit ate into it)
            left = st.clock.left(st.finish_reserve)
            if left is not None:
                redispatch_s = max(0.0, left if redispatch_s is None else min(redispatch_s, left))
            better = rec.redispatch(cand, redispatch_s)
            if better is not None:
                gained, cand = better.objective - cand.objective, better
                st.stats["redispatch_gain"] = st.stats.get("redispatch_gain", 0.0) + gained
    if cand is not None:
        st.offer(cand.solution, cand.objective, candidate=cand)
    info = rec.fixed_last_info()
    # how its MILP ended (the run's stop reason where it was the last stage); not an earlier solve's outcome where
    # the polish returned before solving (too little time left)
    if fixed is not None and info is not None and info is not earlier:
        st.stats["exact_endgame_stop"] = info.termination.value
    certified = fixed is not None and bound is not None
    if certified:  # no schedule better than the incumbent lies outside the restriction
        st.stats.setdefault(bound_name, st.bound)  # the bound before the exact endgame
        st.tighten(max(bound, st.objective))
        st.stats["restricted_milp_bound"] = bound
    what = f"MILP over every triple not fixed ({free} job(s), bound {bound:,.2f})" if certified \
        else f"restricted MILP over {free} undecided job(s)"
    found = (f"gain {st.objective - before:,.2f}" if inc is not None
             else f"from no schedule: {st.objective:,.2f}" if st.best is not None else "from no schedule: none")
    st.log.note(f"{stage}: {what} in {time.perf_counter() - t0:.2f} s, {found}"
                + (f" (the re-dispatch added {gained:,.2f} to its schedule)" if gained > 0 else ""))


def _gap_open(st: RunState, objective: float, bound: float | None) -> bool:
    """Whether a schedule worth ``objective`` ($) leaves the run's gap open
    against the run's bound, or against ``bound`` ($) where that is
    smaller (the exact endgame's, a global one); not after an interrupt."""
    b = st.bound if bound is None else min(st.bound, bound)
    return not interrupts.requested() and b - objective > st.opts.gap * max(1.0, abs(objective))


def _race_end(st: RunState, pool: SubproblemPool, rec: PrimalRecovery, cand: Candidate | None,
              bound: float | None, seconds: float, race: bool) -> tuple[Candidate | None, float | None]:
    """Rank 0's end of the endgame's race (``race``), or of its MILP
    beside the other ranks' search: its own schedule ``cand`` and
    ``bound`` against the other ranks'. Returns the best schedule and the
    smallest bound (a searching rank has none), and logs each rank's."""
    entries, columns = pool.race_end(RaceEntry(None if cand is None else cand.objective, bound, seconds))
    if columns is not None:
        won = rec.candidate_from(columns)
        if cand is None or won.objective > cand.objective:
            cand = won
    bound = race_bound(entries)
    ranks = ", ".join(f"rank {r} ({'seed ' + str(r) if race or r == 0 else 'search'}): "
                      + ("no schedule" if e.objective is None else f"{e.objective:,.2f}")
                      + ("" if e.bound is None else f" <= {e.bound:,.2f}") + f" in {e.seconds:.1f} s"
                      for r, e in enumerate(entries))
    what = "race" if race else "MILP and search"
    st.log.note(f"endgame {what}: {ranks}; best rank {best_rank(entries)}")
    key = "endgame_race" if race else "endgame_search"
    st.stats.update({f"{key}_winner": best_rank(entries),
                     f"{key}_schedules": sum(e.objective is not None for e in entries)})
    return cand, bound


def lp_fixable(z: float, reduced: np.ndarray, values: np.ndarray, incumbent: float, *,
               maximize: bool = True) -> np.ndarray:
    """Reduced-cost fixing on an LP relaxation: [triples] bool, the job
    binaries that no schedule better than ``incumbent`` ($) sets to 1.
    ``z``: the LP's optimum ($), a bound on the problem; ``reduced`` and
    ``values``: the binaries' reduced costs (HiGHS's convention: the change
    of the objective per unit of the column's bound) and values at that
    optimum. A binary at 0 whose reduced cost is ``d`` bounds every
    solution that sets it to 1 by ``z + d`` (maximising; ``z - d``
    minimising), by LP duality; it is fixable where that is below the
    incumbent by more than 1e-6 of it (the LP's duals are exact only to
    HiGHS's tolerances). A basic binary, or one above 0, is not."""
    at_zero = np.asarray(values) <= 1e-9
    d = np.asarray(reduced, dtype=float)
    loss = np.maximum(-d if maximize else d, 0.0)
    return at_zero & (z - loss < incumbent - 1e-6 * max(1.0, abs(incumbent)))


def endgame_due(trace: list[dict], *, window: int = ENDGAME_HANDOVER_WINDOW,
                share: float = ENDGAME_HANDOVER_SHARE) -> bool:
    """Whether the iterations before the exact endgame (the Lagrangian's
    dual iterations, Benders' LP phase) should hand over to it:
    over the last ``window`` iterations of ``trace`` (each with its
    ``bound`` and ``incumbent``, in $), the bound came down and the
    incumbent went up by less than ``share`` of the gap left, together. A
    rule on iterations, not seconds: without a time limit (which shares
    time between recoveries and dual steps) a run hands over at the same
    iteration on any machine and any number of ranks."""
    if len(trace) <= window:
        return False
    old, new = trace[-window - 1], trace[-1]
    vals = (old.get("bound"), new.get("bound"), old.get("incumbent"), new.get("incumbent"))
    if any(v is None or not np.isfinite(v) for v in vals):
        return False
    b0, b1, i0, i1 = vals
    return (b0 - b1) + (i1 - i0) < share * max(b1 - i1, 0.0)
