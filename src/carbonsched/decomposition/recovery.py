"""Primal recovery: from a (relaxed) job choice to a feasible schedule.

Shared by the Lagrangian method (its compute-side choices) and Benders
(its LP-phase master solutions, as incumbents for the integer phase).

A job choice (one triple per job, which may overload a site or break the
carbon budget) and a score per triple (its value less its priced energy)
become a schedule in up to two passes:

1. the choice, repaired greedily to fit IT capacity and deliverable power
   (:func:`repair_schedule`), weighed, routed and dispatched by the *keep
   LP* of the *dispatch model* (:class:`~carbonsched.fixed.FixedScheduleModel`
   with ``job_load=True``: no triple columns, the schedule enters as load;
   :meth:`~carbonsched.fixed.FixedScheduleModel.keep_lp`): each chosen job
   at its own triple runs a share in [0, 1] and earns that share of its
   value, so the LP drops the jobs that cost the budget or the sites'
   power more than they are worth; the jobs it runs whole are dispatched;
2. only where that schedule uses the whole carbon budget or cannot meet
   it, the carbon-aware pass on the full fixed-schedule model: an LP over
   the *candidate triples* -- each chosen job's choice and its best
   alternatives by score -- with ``x`` in [0, 1] keeps, moves or drops jobs
   to fit capacity, power and the budget, weighing each job's value against
   the energy and emissions it costs; then a dive: the whole jobs are
   fixed, the fractional ones in capacity-feasible batches (one at a time
   after a batch leaves no feasible LP; a triple that fails alone is
   closed), re-solving warm until every job is whole. The better of the
   two passes is kept. It is skipped where the full model would not fit in
   memory (:func:`~carbonsched.model.memory_check`).

Measured on the first Lagrangian choice (one LP each; `medium`, `large`,
the budget-binding 10 x 168 x 60): the keep LP gave 11.87 M, 61.76 M and
4.33 M against 11.83 M, 61.64 M and 4.21 M for the whole choice with
fixed load, in 1.2 s, 17.9 s and 0.2 s against 1.1 s, 7.2 s and 0.2 s.
Not kept: shedding load per site and period, priced at the value per
MW-period of the jobs running there, then dropping whole jobs where load
was shed (an LP the size of the fixed-load one): 4.07 M and 61.62 M, and
no faster (20.9 s on `large`).

Committed generators are relaxed in both; their sites are then re-dispatched
exactly on the subproblem pool -- unless the schedule's LP is worth no more
than a ``floor`` the caller gives (the incumbent's value): that LP bounds
the re-dispatched schedule from above, so it could not beat the floor.

Where the keep LP does not finish within :data:`KEEP_SHARE` of the time
left (at least :data:`KEEP_MIN_S`), or it is not predicted to
(:meth:`PrimalRecovery.keep_lp_s`), that recovery and every later one are made on the
pool's site problems instead (where the keep LP has finished once in the
run, one out of its share is a miss instead) (:mod:`.pool_schedule`): no model over all
sites, the sites' LPs in parallel, a carbon price by bisection for the
budget. Its schedules are worse where the budget binds, so it stands in
only at the scale where the LP does not pay. A keep LP whose last finished
run took longer than its share (or the recovery's time) now is not
tried at all: that recovery is a miss, at no cost.

Measured alternative, not kept (branch ``experiment/pool-recovery``): the
same recovery fully decomposed -- a routing master with the schedule fixed
against the pool's site LPs (Benders per schedule), or a budget split by
carbon-price bisection. Its Kelley tail needed 60 master rounds per
schedule: 0.5-2.6 s against 0.03 s for the LP on ``small``, 56 s against
0.5-4 s on ``medium``, with worse schedules.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import highs
from ..check import evaluate
from ..clock import BudgetExhausted, Clock
from ..derived import budget_shares, facility_load, job_room, site_costs
from ..fixed import FixedScheduleModel
from ..instance import Instance
from ..model import estimate_build_s, memory_check
from ..solution import SITE_SERIES, Solution
from .pool_schedule import PoolSchedule, schedule_on_pool

__all__ = ["COMMIT_AT", "Candidate", "PrimalRecovery", "best_commitment", "commitments", "endgame_upper",
           "repair_schedule"]

#: a schedule whose emissions are within this share of the budget has the budget binding (the exact
#: re-dispatch of committed sites leaves a little of the budget unused)
BINDING = 1e-3
#: most rounds of :meth:`PrimalRecovery.redispatch` (on the budget-binding case the third gained nothing)
REDISPATCH_ROUNDS = 5
#: a committed unit whose relaxed output (units' on/off relaxed) is at least one of these shares of its minimum
#: output is put on, elsewhere off; each share is one commitment, an LP at it (:func:`best_commitment`), the best
#: kept. On the budget-binding 10 x 168 x 60 case, for a schedule whose relaxed dispatch is worth 4,613,782:
#: 4,595,714 at 0.5, 4,592,929 at 1 (on only where the relaxed output already reaches the minimum), 4,566,764 at
#: any output above 0, against 4,598,171 for the schedule's dispatch MILP in 55 s (the LPs: 0.05-0.26 s each)
COMMIT_AT = (0.5, 1.0, 0.0)
#: the keep LP may take this share of the time left, at least KEEP_MIN_S seconds; out of it (having never finished
#: before), recoveries are made on the pool's site problems (:mod:`.pool_schedule`) from then on. On `xlarge` (a
#: keep LP over 0.71 M columns) the first recovery had run 1,768 s of 1,800 and returned none; on `large` the keep
#: LP took 17.9 s (EPYC) of 1,200 s
KEEP_SHARE, KEEP_MIN_S = 0.1, 10.0
#: the keep LP's predicted seconds: its dispatch model's predicted build b (s) plus KEEP_LP_PER_BUILD2 x b^2, the
#: simplex's growth with the model's size. This 2.8 GHz Xeon: `medium` b 3.9 s, LP 1-2 s; `large` b 17.9 s, LP about
#: 25 s (0.078 x b^2); `xlarge` b 81.8 s, LP not done at 1,500 s (0.08 x b^2 = 535 s: past its 177 s share, so it
#: is not tried, where it had cost the first recovery about 204 s)
KEEP_LP_PER_BUILD2 = 0.08


@dataclass
class Candidate:
    """A feasible schedule from recovery: the solution, its OB ($), the
    triples it starts and the fixed-schedule model's column vector (a MIP
    start for the polish)."""

    solution: Solution
    objective: float
    starts: np.ndarray
    x: np.ndarray | None


def _quarter(seconds: float | None) -> float | None:
    """A quarter of a time limit (None: none): what a MIP start's LP may take of its MILP's time."""
    return None if seconds is None else 0.25 * seconds


def keep_share(left: float | None) -> float | None:
    """Seconds the keep LP may take of ``left`` (None: no limit):
    :data:`KEEP_SHARE` of them, at least :data:`KEEP_MIN_S`."""
    return None if left is None else max(KEEP_SHARE * left, KEEP_MIN_S)


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

    ``from_choice(chosen, score)``: the two-stage recovery of the module
    docstring, over each chosen job's triple and its ``alternatives`` best
    others. ``polish(recent, incumbent)``: a restricted MILP over the jobs
    whose choice is undecided, started from the incumbent. Both return a
    :class:`Candidate` (or None: nothing new, nothing feasible, no time);
    the caller keeps the best."""

    def __init__(self, inst: Instance, pool, method: str, clock: Clock | None = None, *, alternatives: int = 2,
                 pool_only: bool = False):
        self.inst, self.pool, self.method, self.clock = inst, pool, method, clock
        self.alternatives = alternatives
        self.fractional_jobs = 0  # jobs the first LP split, over all recoveries
        self.dropped_in_dive = 0  # jobs dropped because fixing them left no feasible LP
        self.dive_batches = 0
        self.guided = 0  # recoveries that needed the LP over candidate triples
        self.dropped_by_lp = 0  # chosen jobs the dispatch model's keep LP dropped
        self.failed_batches = 0
        self._fixed: FixedScheduleModel | None = None  # built when first needed, within the clock
        self._dispatch: FixedScheduleModel | None = None
        self.rounded_commitments = 0  # recoveries dispatched by the LP at a rounded commitment, not a MILP
        self.skipped_full = 0  # carbon-aware passes left out because the full model would not fit in memory
        self.seen: set = set()
        self.recoveries = 0
        self.bounded_out = 0  # schedules not re-dispatched: their LP value could not beat the floor
        self.last_bounded: float | None = None  # the largest LP value of the last recovery's schedules so left out
        self.recovery_s = 0.0
        self.polish_s = 0.0
        self.pool_schedules = 0  # recoveries built on the pool's site problems (:mod:`.pool_schedule`)
        self.pool_shed = 0  # jobs they shed
        self.pool_s = 0.0
        # recoveries run on the pool only: asked for, or the dispatch model's keep LP did not finish within its share
        # of the time, having never finished before (or was not predicted to finish in it)
        self.pool_only = pool_only
        # seconds the last keep LP that finished took (None: none has in this run): one whose share is now shorter
        # is not tried (a miss), and one that runs out of its share after one finished is a miss too
        self.keep_lp_last_s: float | None = None
        self.keep_lp_skips = 0
        self.last_keep_skip: tuple[float, float] | None = None  # the last recovery's skip: (last LP s, its share s)
        self.last_pool: PoolSchedule | None = None  # the last recovery's pool schedule (None: it ran the keep LP)

    @property
    def keep_lp_finished(self) -> bool:
        """Whether a keep LP has finished in this run: then one out of its
        share later (a share that shrinks with the time left) is a miss, not
        a sign that it does not pay at this scale."""
        return self.keep_lp_last_s is not None

    @property
    def dispatch(self) -> FixedScheduleModel:
        """The dispatch model (schedule as load, no job columns), built on
        first use within the clock."""
        if self._dispatch is None:
            self._dispatch = FixedScheduleModel(self.inst, clock=self.clock, job_load=True)
        return self._dispatch

    def full_model_fits(self) -> bool:
        """Whether the full fixed model (a column per job triple, what the
        carbon-aware pass and the polish need) is built already, or its
        predicted peak memory is at most half of the memory available now
        (:func:`~carbonsched.model.memory_check`)."""
        return self._fixed is not None or memory_check(self.inst)[0]

    def full_model_build_s(self) -> float:
        """Predicted seconds to build and translate the full fixed model
        (0 once it is built): a polish that must first build it needs them."""
        if self._fixed is not None:
            return 0.0
        return estimate_build_s(self.inst) * (1.0 + highs.TRANSLATE_PER_BUILD)

    @property
    def fixed(self) -> FixedScheduleModel:
        """The fixed-schedule model, built on first use (raises
        :class:`BudgetExhausted` when the clock runs out while building)."""
        if self._fixed is None:
            self._fixed = FixedScheduleModel(self.inst, clock=self.clock)
        return self._fixed

    def _exact_units(self, sol: Solution, time_limit: float | None = None) -> Solution | None:
        """Re-dispatch every site exactly (MILP where committed) for the LP's
        facility load, each within its LP emissions plus an equal share of
        the budget left over, a rank's sites within ``time_limit`` seconds.
        None if a committed site cannot follow (or found no dispatch in
        time)."""
        inst = self.inst
        P = facility_load(inst, sol)
        st = sol.sites
        ev = self.pool.evaluate(P, budget_shares(inst, st), exact=True, time_limit=time_limit)
        if not ev.feasible.all():
            return None
        for i, k in enumerate(SITE_SERIES):
            st[k] = ev.dispatch[:, i, : inst.H + 1 if k == "soc_mwh" else inst.H].copy()
        return sol

    def start_x(self, cand: Candidate, time_limit: float | None = None) -> np.ndarray | None:
        """A full model's column vector for ``cand``, as a MIP start: its
        own (``cand.x``), or else its schedule routed and dispatched at its
        own commitment (its ``generator_on``) by the full model's LP
        (:meth:`FixedScheduleModel.solve_committed`), kept in ``cand.x``.
        Exact, as the on/off binaries are the only integers, and no worse
        than ``cand``'s own dispatch. None where that LP has no answer in
        time; the MILP then completes the schedule itself. It replaces the
        schedule's dispatch MILP: on the budget-binding case that MILP took
        all of its 42 s (a quarter of the exact endgame's time)."""
        if cand.x is None:
            sol, _ = self.fixed.solve_committed(cand.starts, cand.solution.sites["generator_on"],
                                                time_limit=time_limit, method=self.method)
            if sol is not None:
                cand.x = self.fixed.last_x.copy()
        return cand.x

    def _rounded_units(self, fx: FixedScheduleModel, sol: Solution, starts: np.ndarray,
                       time_limit: float | None) -> Solution | None:
        """The schedule ``starts`` dispatched at the best commitment
        rounded from ``sol`` (units relaxed; :func:`best_commitment`), so
        ``fx.last_x`` is then a feasible MIP start. Routing and dispatch are
        free, so a unit's minimum output can be absorbed by moving load
        between sites, which the per-site re-dispatch cannot. None where no
        such LP is feasible in time."""
        return best_commitment(fx, np.asarray(starts, dtype=int), sol.sites["generator_mw"], time_limit=time_limit,
                               method=self.method)[0]

    def redispatch(self, cand: Candidate, time_limit: float | None = None) -> Candidate | None:
        """``cand``'s schedule with a better dispatch, by rounds of two
        steps, each keeping what it is given feasible, until a round gains
        nothing, within ``time_limit`` seconds (None: none):

        - every site re-dispatched on the pool (:meth:`_exact_units`: each
          site's exact MILP at its facility load, within its emissions plus
          a share of the budget left), which re-commits the units;
        - the dispatch model with the committed units' on/off fixed
          (:meth:`FixedScheduleModel.solve_committed`, an LP), which moves
          load, by routing, and emissions between sites.

        A MILP's incumbent comes from a heuristic or a dive whose dispatch
        is feasible but not optimal for its schedule: on the budget-binding
        10 x 168 x 60 case, the exact endgame's 4,618,396 became 4,620,718
        after the first step and 4,621,358 after two rounds, in 2 s (the
        schedule's dispatch MILP, 57 s, reaches 4,622,946). Returns the
        better candidate (its column vector ``x`` still the old dispatch's:
        a feasible MIP start), or None where it gains nothing."""
        clock = self._step_clock(time_limit)
        best = cand
        try:
            for _ in range(REDISPATCH_ROUNDS):
                before = best
                for step in (self._sites_step, self._committed_step):
                    left = clock.left()
                    if left is not None and left < 0.05:
                        break
                    sol = step(best, left)
                    if sol is not None:
                        b = evaluate(self.inst, sol)
                        if b.objective > best.objective + 1e-9 * abs(best.objective) + 1e-6:
                            sol.objective, sol.emissions_t = b.objective, b.emissions_t
                            best = Candidate(sol, b.objective, best.starts, cand.x)
                if best is before:
                    break
        except BudgetExhausted:  # the dispatch model's build ran out of time: what the rounds gained stands
            pass
        return None if best is cand else best

    def _sites_step(self, cand: Candidate, time_limit: float | None) -> Solution | None:
        return self._exact_units(copy.deepcopy(cand.solution), time_limit)

    def _committed_step(self, cand: Candidate, time_limit: float | None) -> Solution | None:
        return self.dispatch.solve_committed(cand.starts, cand.solution.sites["generator_on"],
                                             time_limit=time_limit, method=self.method)[0]

    def from_choice(self, chosen: np.ndarray, score: np.ndarray, time_limit: float | None = None, *,
                    floor: float | None = None, margin: np.ndarray | None = None) -> Candidate | None:
        """A feasible schedule from one job choice (``chosen[j]``: a triple
        index or -1; ``score`` [triples] in $), or None (the same candidate
        triples as before, nothing feasible, no time left, or -- given a
        ``floor`` in $, the incumbent's value, on an instance with committed
        units -- a schedule whose LP value, units relaxed, is at most the
        floor: its exact re-dispatch could not beat it and is not run;
        ``last_bounded`` then holds the largest LP value so left out).
        Without committed units there is no re-dispatch to save and the
        floor is not used. ``margin`` [pairs, H] ($ per MW for one period):
        what the pool's schedule routes inference by (default: the pairs'
        margins, unpriced; :func:`~.pool_schedule.route_inference`)."""
        self.last_bounded = None
        self.last_pool = None
        self.last_keep_skip = None
        try:
            return self._from_choice(chosen, score, time_limit, floor, margin)
        except BudgetExhausted:
            return None

    def from_starts(self, starts: np.ndarray, time_limit: float | None = None) -> Candidate | None:
        """The schedule ``starts`` (triples; capacity-feasible) routed and
        dispatched at its best by the dispatch model, or None (infeasible,
        or no time left)."""
        if self.pool_only:
            return None
        clock = self._step_clock(time_limit)
        t0 = time.perf_counter()
        try:
            dm = self.dispatch
            sol, _ = dm.solve(starts, time_limit=clock.cap(time_limit), method=self.method, relax_units=True)
            return None if sol is None else self._finish(sol, time_limit, clock, dm, np.asarray(starts), None)
        except BudgetExhausted:
            return None
        finally:
            self.recovery_s += time.perf_counter() - t0

    def _step_clock(self, time_limit: float | None) -> Clock:
        """The clock one recovery runs on: ``time_limit`` seconds from now
        in all, each solve in it getting what is left of them (each had got
        the whole, and on the budget-binding case at 3 s a recovery given
        0.17 s took 0.29 s and ended the run 0.17 s past its limit); the
        run's clock where None."""
        if time_limit is not None:
            return Clock(limit=max(0.0, float(time_limit)))
        return self.clock if self.clock is not None else Clock()

    def _from_choice(self, chosen: np.ndarray, score: np.ndarray, time_limit: float | None,
                     floor: float | None, margin: np.ndarray | None) -> Candidate | None:
        t0 = time.perf_counter()
        try:
            return self._guided(chosen, score, time_limit, floor, margin)
        finally:
            self.recovery_s += time.perf_counter() - t0

    def candidate_triples(self, chosen: np.ndarray, score: np.ndarray) -> np.ndarray:
        """The triples a recovery may use: each chosen job's choice and its
        ``alternatives`` best other triples by ``score`` (positive score, or
        any for a required job); a required job left unchosen gets its best
        ``alternatives`` + 1."""
        inst = self.inst
        jj, _, _ = inst.triples
        first = np.searchsorted(jj, np.arange(inst.J))
        last = np.searchsorted(jj, np.arange(inst.J), side="right")
        out = []
        m = self.alternatives
        for j in np.flatnonzero((chosen >= 0) | inst.required):
            ks = np.arange(first[j], last[j])
            if ks.size == 0:
                continue
            if chosen[j] >= 0:
                out.append(int(chosen[j]))
                ks = ks[ks != chosen[j]]
            if not inst.required[j]:
                ks = ks[score[ks] > 0]
            take = m + (chosen[j] < 0)
            if ks.size > take:
                ks = ks[np.argpartition(-score[ks], take - 1)[:take]]
            out.extend(ks.tolist())
        return np.unique(np.array(out, dtype=int))

    def _fits(self, ks: np.ndarray, xv: np.ndarray, lower: np.ndarray, total_of: np.ndarray) -> np.ndarray:
        """A batch of fractional jobs to fix: jobs run at least half (over
        their triples ``ks``), most-run first, each at its triple of largest
        share that fits the IT room the fixed jobs leave (capacity and power,
        :func:`~carbonsched.derived.job_room`); jobs that fit nowhere wait."""
        inst = self.inst
        jj, ss, tt = inst.triples
        room = job_room(inst)
        for k in np.flatnonzero(lower > 0.5):
            room[ss[k], tt[k]:tt[k] + inst.dur[jj[k]]] -= inst.pow[jj[k]]
        out = []
        jobs = np.unique(jj[ks])
        for j in sorted(jobs[total_of[jobs] >= 0.5], key=lambda j: (-total_of[j], j)):
            mine = ks[jj[ks] == j]
            for k in mine[np.argsort(-xv[mine], kind="stable")]:
                d, pw = int(inst.dur[j]), inst.pow[j]
                if np.all(room[ss[k], tt[k]:tt[k] + d] >= pw - 1e-9):
                    room[ss[k], tt[k]:tt[k] + d] -= pw
                    out.append(int(k))
                    break
        return np.array(out, dtype=int)

    def _guided(self, chosen: np.ndarray, score: np.ndarray, time_limit: float | None,
                floor: float | None, margin: np.ndarray | None) -> Candidate | None:
        """The recovery of one job choice: the two passes of the module
        docstring, or -- where the keep LP does not finish within
        :data:`KEEP_SHARE` of the time left (or is not predicted to:
        :meth:`keep_lp_s`) and has never finished, then and in every later
        recovery -- the schedule made on the pool's site problems
        (:func:`~.pool_schedule.schedule_on_pool`)."""
        cand = self.candidate_triples(chosen, score)
        key = tuple(cand.tolist())
        if key in self.seen:  # the empty choice too is tried once: where no job is worth its power, it is the answer
            return None
        self.seen.add(key)
        self.recoveries += 1
        clock = self._step_clock(time_limit)
        share = keep_share(clock.left())
        if not self.pool_only and share is not None and self.keep_lp_s() > share:
            self.pool_only = True
        if not self.pool_only:
            lp = self._two_passes(chosen, score, cand, time_limit, floor, clock)
            if not self.pool_only:
                return lp
        return self._on_pool(chosen, score, clock, margin)

    def keep_lp_s(self) -> float:
        """Predicted seconds of the keep LP, its dispatch model's build
        included (:data:`KEEP_LP_PER_BUILD2`; 0 once the model is built: the
        LP has been tried by then)."""
        b = self.dispatch_build_s()
        return b + KEEP_LP_PER_BUILD2 * b * b

    def dispatch_build_s(self) -> float:
        """Predicted seconds to build and translate the dispatch model (0
        once it is built)."""
        if self._dispatch is not None:
            return 0.0
        return estimate_build_s(self.inst, job_load=True) * (1.0 + highs.TRANSLATE_PER_BUILD)

    def _on_pool(self, chosen: np.ndarray, score: np.ndarray, clock: Clock,
                 margin: np.ndarray | None) -> Candidate | None:
        """The choice, repaired to fit capacity and power, made a schedule on
        the pool's site problems (:func:`~.pool_schedule.schedule_on_pool`)."""
        t0 = time.perf_counter()
        starts = repair_schedule(self.inst, chosen, score)
        if starts is None:
            return None
        left = clock.left()
        got = schedule_on_pool(self.inst, self.pool, starts, score, method=self.method, margin=margin,
                               deadline=None if left is None else time.perf_counter() + left)
        self.pool_s += time.perf_counter() - t0
        self.last_pool = got
        if got.solution is None:
            return None
        self.pool_schedules += 1
        self.pool_shed += got.shed
        return Candidate(got.solution, float(got.objective), got.starts, None)

    def _two_passes(self, chosen: np.ndarray, score: np.ndarray, cand: np.ndarray, time_limit: float | None,
                    floor: float | None, clock: Clock) -> Candidate | None:
        """The two passes of the module docstring over the candidate
        triples ``cand``, within ``time_limit`` seconds on ``clock``; the
        keep LP within :data:`KEEP_SHARE` of them (out of it:
        ``pool_only`` is set and None returned)."""
        inst = self.inst
        # first the choice itself, repaired to fit capacity and power, routed and dispatched by the keep LP of the
        # dispatch model (no triple columns: small at any scale), which drops, in part, the chosen jobs that cost
        # the budget or the sites' power more than they are worth; enough wherever the budget does not bind
        first: Candidate | None = None
        starts = repair_schedule(inst, chosen, score)
        if starts is not None:
            share = keep_share(clock.left())
            own = clock.cap(time_limit)
            by_share = share is not None and own is not None and share < own
            room = share if own is None else own if share is None else min(share, own)
            if room is not None and self.keep_lp_last_s is not None and self.keep_lp_last_s > room:
                # it finished before in more seconds than it may take now (its share shrinks with the time left):
                # it would run out of them for no schedule (on `large` the last three recoveries spent 36 s so)
                self.keep_lp_skips += 1
                self.last_keep_skip = (self.keep_lp_last_s, room)
                return None
            first, lp_sol = self._keep_worth(starts, time_limit, clock, floor, keep_limit=share)
            info = self.dispatch.last_info
            if (first is None and self.last_bounded is None and info is not None
                    and not (info.infeasible or info.has_solution)):
                # out of time (a solved LP whose exact re-dispatch failed goes on to the full model); out of its
                # share of a longer time, the LP does not pay at this scale -- unless it finished before in this
                # run: on `large` (1,200 s) a keep LP out of a share shrunk to 35 s at 850 s had handed the last
                # recoveries to the pool, whose schedules (60.7 M) were 2% below the keep LP's
                self.pool_only = by_share and not self.keep_lp_finished
                return None
            # where the budget does not bind, which jobs run is a matter of capacity and price, which the choice
            # and the keep LP already weighed; where it binds (within BINDING of it), let the LP weigh each job's
            # value against its emissions, over the alternatives too -- on the full model, where it fits (a
            # schedule left out by the floor is judged by its LP's emissions)
            done = first.solution if first is not None else lp_sol if self.last_bounded is not None else None
            if done is not None and (inst.budget is None or float(site_costs(inst, done.sites)[1].sum())
                                     < inst.budget * (1.0 - BINDING)):
                return first
        if not self.full_model_fits():
            self.skipped_full += 1
            return first
        self.guided += 1
        second = self._guided_dive(cand, time_limit, clock, floor)
        if first is None or (second is not None and second.objective > first.objective):
            return second
        return first

    def _keep_worth(self, starts: np.ndarray, time_limit: float | None, clock: Clock,
                    floor: float | None, *, keep_limit: float | None = None
                    ) -> tuple[Candidate | None, Solution | None]:
        """The jobs of ``starts`` the keep LP of the dispatch model
        (:meth:`~carbonsched.fixed.FixedScheduleModel.keep_lp`) runs whole,
        each at its own triple, dispatched. The LP drops the jobs that cost
        the budget (or the sites' power) more than they are worth, in part;
        those in part are dropped whole; the LP within ``keep_limit``
        seconds too. Returns (the candidate or None, the LP's solution or
        None)."""
        dm = self.dispatch
        limit = clock.cap(time_limit)
        if keep_limit is not None:
            limit = keep_limit if limit is None else min(limit, keep_limit)
        t0 = time.perf_counter()
        keep, sol, _ = dm.keep_lp(starts, time_limit=limit, method=self.method)
        if sol is None:
            return None, None
        self.keep_lp_last_s = time.perf_counter() - t0
        self.dropped_by_lp += int(starts.size - keep.size)
        return self._finish(sol, time_limit, clock, dm, keep, floor), sol

    def _guided_dive(self, cand: np.ndarray, time_limit: float | None, clock: Clock,
                     floor: float | None) -> Candidate | None:
        """Stages 1 and 2 of the module docstring over the triples ``cand``."""
        inst, fx = self.inst, self.fixed
        nk = fx.x_cols.size
        # stage 1: the LP over the candidate triples (x in [0, 1]): which jobs to keep, where and when, within
        # capacity, power and the carbon budget; stage 2: dive -- fix the whole jobs and the clearest
        # fractional ones, re-solve (warm), until every job is whole; a fixing that leaves no feasible LP is
        # undone by dropping those jobs (the LP before it powered the rest with them, so it can without)
        jj = inst.triples[0]
        lower = np.zeros(nk)
        upper = np.zeros(nk)
        upper[cand] = 1.0
        last_fixed = np.zeros(0, dtype=int)
        saved_upper = upper.copy()
        single = False
        sol = None
        for dive in range(2 * inst.J + 2):
            sol, _, _ = fx.solve_bounds(lower, upper, integer_x=False, integer_units=False,
                                        time_limit=clock.cap(time_limit), method=self.method)
            if sol is None:
                if last_fixed.size == 0 or not (fx.last_info is not None and fx.last_info.infeasible):
                    return None  # no schedule within these triples, or no time left
                undo = np.isin(jj, jj[last_fixed])
                lower[undo] = 0.0
                if last_fixed.size > 1:  # a batch: undo it, fix only its clearest job next
                    self.failed_batches += 1
                    upper[undo] = saved_upper[undo]
                    single = True
                else:  # one job: close that triple; the job keeps its other open triples, or is dropped
                    upper[undo] = saved_upper[undo]
                    upper[last_fixed] = 0.0
                    self.dropped_in_dive += int(not upper[undo].any())
                last_fixed = np.zeros(0, dtype=int)
                continue
            xv = fx.x_values()
            whole = xv >= 1.0 - 1e-6
            frac = (xv > 1e-6) & ~whole
            lower[whole] = 1.0
            upper[(xv <= 1e-6) & (lower == 0.0)] = 0.0  # triples the LP left empty stay empty
            if not frac.any():
                break
            if dive == 0:
                self.fractional_jobs += int(np.unique(jj[frac]).size)
            # per fractional job its largest share; fix each job run at least half (over its triples) to its
            # largest share's triple, as a batch; after a batch failed, or when none is run half, the one job
            # with the largest share alone
            ks = np.flatnonzero(frac)
            order = ks[np.lexsort((-xv[ks], jj[ks]))]
            top = order[np.r_[True, jj[order][1:] != jj[order][:-1]]]
            fix = (self._fits(ks, xv, lower, np.bincount(jj, weights=xv, minlength=inst.J)) if not single
                   else top[:0])
            if fix.size == 0:
                fix = top[[int(np.argmax(xv[top]))]]
            self.dive_batches += int(fix.size > 1)
            single = False
            saved_upper = upper.copy()
            upper[np.isin(jj, jj[fix])] = 0.0
            upper[fix] = 1.0
            lower[fix] = 1.0
            last_fixed = fix
        if sol is None:
            return None
        return self._finish(sol, time_limit, clock, fx, np.flatnonzero(fx.x_values() > 0.5), floor)

    def _finish(self, sol: Solution, time_limit: float | None, clock: Clock, fx: FixedScheduleModel,
                starts: np.ndarray, floor: float | None) -> Candidate | None:
        """The candidate of ``fx``'s last solve (schedule ``starts``),
        committed units re-dispatched exactly. Its column vector is kept as
        a MIP start for the polish when ``fx`` is the full model.

        None without the re-dispatch where there is one to run (committed
        units), ``floor`` ($) is given and that
        solve -- an LP solved to optimality, units relaxed, the schedule
        whole -- is worth at most the floor: the LP relaxes the schedule's
        own MILP, and the re-dispatch (each site's MILP at the LP's load,
        within its emission share) restricts it, so neither can beat the
        floor. On `large` a recovery from a choice 3-5% below the incumbent
        spent most of its 17-36 s in that re-dispatch."""
        inst = self.inst
        x_lp = None if fx.job_load else fx.last_x
        info = fx.last_info
        if (floor is not None and inst.committed.any() and info is not None and info.optimal
                and info.objective is not None and info.objective <= floor - 1e-9 * max(1.0, abs(floor))):
            self.bounded_out += 1
            self.last_bounded = max(float(info.objective), -np.inf if self.last_bounded is None else self.last_bounded)
            return None
        if inst.committed.any():
            exact = self._exact_units(sol, clock.cap(time_limit))
            rounded = False
            if exact is None:  # a committed unit cannot follow the LP's load: the LP with the commitment rounded
                exact = self._rounded_units(fx, sol, starts, clock.cap(time_limit))
                rounded = exact is not None
                self.rounded_commitments += rounded
                x_lp = None if fx.job_load else fx.last_x
            if exact is None:  # nor that: its MILP, schedule fixed
                exact, _ = fx.solve(starts, time_limit=clock.cap(time_limit), method=self.method)
                x_lp = None if fx.job_load else fx.last_x
            sol = exact
            if sol is None:
                return None
            if rounded:  # units on wherever the LP used them at all: re-commit them at the load they now serve
                cand = Candidate(sol, evaluate(inst, sol).objective, starts, x_lp)
                return self.redispatch(cand, clock.cap(time_limit)) or cand
        return Candidate(sol, evaluate(inst, sol).objective, starts, x_lp)

    def window_search(self, incumbent: Candidate, t_lo: int, t_hi: int, *, time_limit: float | None, gap: float,
                      threads: int | None = None) -> Candidate | None:
        """Restricted MILP on a time window (a large-neighbourhood search
        that crosses sites, which the site search cannot): the jobs that
        start in periods [``t_lo``, ``t_hi``) in ``incumbent``, and those
        that do not run, may take any triple starting in the window (any
        site) or none; every other job keeps its triple. Routing and
        dispatch are free. Returns its best schedule (at least the
        incumbent, its MIP start), or None (no time, or no full model)."""
        inst = self.inst
        if not self.full_model_fits():
            return None
        t0 = time.perf_counter()
        jj, _, tt = inst.triples
        starts = np.asarray(incumbent.starts, dtype=np.int64)
        runs = np.zeros(inst.J, dtype=bool)
        runs[jj[starts]] = True
        free = ~runs
        free[jj[starts]] = (tt[starts] >= t_lo) & (tt[starts] < t_hi)
        upper = (free[jj] & (tt >= t_lo) & (tt < t_hi)).astype(float)
        upper[starts] = 1.0
        lower = np.zeros(jj.size)
        lower[starts[~free[jj[starts]]]] = 1.0
        try:
            fx = self.fixed  # may be built only now: its build and translation count against the limit
            if time_limit is not None:
                time_limit -= time.perf_counter() - t0
                if time_limit < 0.5:
                    return None
            t1 = time.perf_counter()
            start_x = self.start_x(incumbent, _quarter(time_limit))
            if time_limit is not None:
                time_limit = max(0.05, time_limit - (time.perf_counter() - t1))
            sol, _, _ = fx.solve_restricted(lower, upper, start=start_x,
                                            start_triples=starts if start_x is None else None,
                                            time_limit=time_limit, gap=gap, threads=threads, method=self.method)
        except BudgetExhausted:
            return None
        finally:
            self.polish_s += time.perf_counter() - t0
        if sol is None:
            return None
        return Candidate(sol, evaluate(inst, sol).objective, np.flatnonzero(fx.x_values() > 0.5), fx.last_x)

    def polish(self, recent: list[np.ndarray], incumbent: Candidate | None, *, time_limit: float | None, gap: float,
               threads: int | None = None, fixed: np.ndarray | None = None, heuristic_effort: float | None = None,
               seed: int = 0, stop: Callable[[], bool] | None = None
               ) -> tuple[Candidate | None, int, float | None]:
        """Restricted MILP: jobs whose choice was the same in ``recent`` (job
        choices of the last iterations) and in the incumbent are fixed; the
        others may take any triple they took recently, the incumbent's, or
        none (if optional). With ``fixed`` (triples that no schedule better
        than the incumbent uses, by reduced-cost fixing) the MILP is over
        every other triple instead (:func:`endgame_upper`), so its bound
        holds for the whole problem. ``heuristic_effort``, ``seed`` and
        ``stop``: as :func:`carbonsched.highs.solve` takes them. Without an
        ``incumbent`` (the exact endgame only: ``fixed`` given) HiGHS starts
        from no schedule. Returns (a candidate or None, free jobs, the
        MILP's bound)."""
        inst = self.inst
        if not self.full_model_fits():
            return None, 0, None
        if incumbent is None and fixed is None:
            raise ValueError("a restricted MILP over the undecided jobs needs an incumbent")
        inc_starts = np.zeros(0, dtype=int) if incumbent is None else np.asarray(incumbent.starts, dtype=int)
        t0 = time.perf_counter()
        nk = inst.triples[0].size
        lower = np.zeros(nk)
        upper = np.zeros(nk)
        upper[inc_starts] = 1.0
        for ch in recent:
            upper[ch[ch >= 0]] = 1.0
        jj, _, _ = inst.triples
        if fixed is not None:
            upper = endgame_upper(fixed, inc_starts)
            recent = []
        free_jobs = 0
        for j in range(inst.J):
            ks = np.flatnonzero((jj == j) & (upper > 0))
            if ks.size == 0:
                continue  # never chosen: stays off
            inc = np.intersect1d(ks, inc_starts)
            if fixed is None and ks.size == 1 and inc.size == 1 and all(ch[j] == ks[0] for ch in recent):
                lower[ks] = 1.0  # decided: keep it
            else:
                free_jobs += 1
        try:
            fx = self.fixed  # may be built only now: its build and translation count against the limit
            if time_limit is not None:
                time_limit -= time.perf_counter() - t0
                if time_limit < 1.0:
                    self.polish_s += time.perf_counter() - t0
                    return None, free_jobs, None
            t1 = time.perf_counter()
            start_x = None if incumbent is None else self.start_x(incumbent, _quarter(time_limit))
            if time_limit is not None:
                time_limit -= time.perf_counter() - t1
            sol, _, bound = fx.solve_restricted(lower, upper, start=start_x,
                                            start_triples=inc_starts if start_x is None and incumbent is not None
                                            else None,
                                            time_limit=time_limit, gap=gap, threads=threads, method=self.method,
                                            heuristic_effort=heuristic_effort, seed=seed, stop=stop)
        except BudgetExhausted:
            sol, bound = None, None
        self.polish_s += time.perf_counter() - t0
        if sol is None:
            return None, free_jobs, bound
        return self._candidate(sol), free_jobs, bound

    def fixed_last_info(self) -> highs.SolveInfo | None:
        """The outcome of the full fixed model's last solve (None: not built,
        or not solved yet)."""
        return None if self._fixed is None else self._fixed.last_info

    def candidate_from(self, x: np.ndarray) -> Candidate:
        """The candidate of a column vector of the full fixed model (another
        rank's solve of its own copy of that model)."""
        return self._candidate(self.fixed.solution_from(x, self.method))

    def _candidate(self, sol: Solution) -> Candidate:
        """The candidate of the full fixed model's last solution ``sol``."""
        starts = np.flatnonzero(self.fixed.x_values() > 0.5)
        return Candidate(sol, evaluate(self.inst, sol).objective, starts, self.fixed.last_x)


def commitments(inst: Instance, generator_mw: np.ndarray) -> list[np.ndarray]:
    """The distinct commitments [S, H] bool rounded from a relaxed dispatch
    (``generator_mw`` [S, H], MW, units' on/off relaxed), one per share of
    :data:`COMMIT_AT`: a committed unit is on where its output is at least
    that share of its minimum output (and above 0), off elsewhere; units
    that are not committed are left off (their on/off is not a column)."""
    g = np.asarray(generator_mw, dtype=float)
    gmin = np.asarray(inst.gmin, dtype=float)[:, None]
    committed = np.asarray(inst.committed, dtype=bool)[:, None]
    out: list[np.ndarray] = []
    for share in COMMIT_AT:
        on = committed & (g > 1e-9) & (g >= share * gmin - 1e-9)
        if not any(np.array_equal(on, o) for o in out):
            out.append(on)
    return out


def best_commitment(fx: FixedScheduleModel, starts: np.ndarray, generator_mw: np.ndarray, *,
                    time_limit: float | None = None, method: str = "fixed"
                    ) -> tuple[Solution | None, float | None, np.ndarray | None]:
    """The schedule ``starts`` routed and dispatched by ``fx`` at each
    commitment of :func:`commitments` (an LP each,
    :meth:`FixedScheduleModel.solve_committed`: exact, as the on/off
    binaries are the model's only integers besides the schedule's), in
    that order while ``time_limit`` seconds (None: none) last. Returns the
    best (solution, objective $, ``fx``'s column vector), or (None, None,
    None) where none is feasible in time; ``fx.last_x`` is then the best's
    vector (a caller's MIP start), not the last LP's."""
    t0 = time.perf_counter()
    best: tuple[Solution | None, float | None, np.ndarray | None] = (None, None, None)
    for on in commitments(fx.inst, generator_mw):
        left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
        if left is not None and left <= 0.0:
            break
        sol, obj = fx.solve_committed(starts, on.astype(float), time_limit=left, method=method)
        if sol is not None and obj is not None and (best[1] is None or obj > best[1]):
            best = (sol, obj, None if fx.last_x is None else fx.last_x.copy())
    if best[2] is not None:
        fx.last_x = best[2].copy()
    return best


def endgame_upper(fixed: np.ndarray, incumbent_starts: np.ndarray) -> np.ndarray:
    """[triples] the exact endgame's upper bounds on the job binaries: 1
    where reduced-cost fixing left the triple free or the incumbent runs it
    (fixing only removes schedules worse than the incumbent), else 0."""
    upper = np.where(fixed, 0.0, 1.0)
    upper[np.asarray(incumbent_starts, dtype=int)] = 1.0
    return upper
