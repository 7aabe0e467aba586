"""The MPI subproblem pool shared by Benders and the Lagrangian method.

Rank 0 runs the algorithm and calls the pool; every other rank sits in
:meth:`SubproblemPool.serve` for the whole run. Each rank builds the
:class:`SiteSubproblem` of the sites it owns once and keeps it; each call
only sends new data. Data travels as plain float64 buffers (``Bcast`` out,
``Reduce(SUM)`` back: every rank writes the rows of its own sites, zeros
elsewhere), so no Python object is pickled in the hot loop except a tiny
command header.

Sites are first spread by an estimate of their size; :meth:`calibrate`
then solves every site once at its idle load, spreads the sites again by
the measured solve time (longest-processing-time first; a site that moves
is built once on its new rank), and clears every solver's basis. During
the run, at fixed call counts (:data:`RESPREAD_AT`), the sites are spread
again by the seconds measured since the last spread, and every basis is
cleared again, moved or not. From the calibration on, each site sees the
same sequence of solves whatever the number of ranks, so the run is
deterministic: 1, 2 or K ranks (or no ``mpiexec`` at all) give the same
iterates and the same answer. The one exception is the exact endgame's
race (``--endgame-race``, off by default; :mod:`.race`), where every rank
solves the endgame's MILP with its own seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..instance import Instance
from ..solution import SITE_SERIES
from . import race
from .site_blocks import BlockRound, SiteBlock, SiteMultipliers
from .subproblem import SiteSubproblem

if TYPE_CHECKING:
    from ..fixed import FixedScheduleModel

__all__ = ["PoolEval", "PoolPrice", "PoolSearch", "SubproblemPool", "block_plan", "comm_rank", "get_comm", "lpt_assignment",
           "peak_rss_mb", "respread", "run_on_pool"]

_EVAL, _EXACT, _PRICE, _CALIBRATE, _STOP, _MEMORY, _BLOCKS, _SEARCH, _RESPREAD, _RACE = range(10)

#: the energy subproblems' calls (evaluate, price) before which they are spread again by the seconds measured
#: since the last spread; every solver's basis is cleared at each of them, on any number of ranks, so that each
#: site still sees the same sequence of solves whatever the number of ranks
RESPREAD_AT = frozenset({10, 40, 160, 640, 2560})
#: a new spread is taken only where it cuts the busiest rank's load by more than this share
RESPREAD_GAIN = 0.1
#: seconds a failing rank waits, after printing its error, before MPI_Abort (see ``_abort``)
ABORT_GRACE_S = 0.5


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB; ru_maxrss is in kB on Linux)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Linux/macOS
        return float("nan")
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    import sys

    return kb / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)


def get_comm():
    """MPI.COMM_WORLD, or None when mpi4py cannot start (serial fallback)."""
    try:
        from mpi4py import MPI

        return MPI.COMM_WORLD
    except Exception:  # pragma: no cover - mpi4py is a dependency
        return None


def comm_rank(comm=None) -> int:
    """This process's rank in ``comm`` (default COMM_WORLD; 0 without MPI)."""
    comm = comm if comm is not None else get_comm()
    return comm.Get_rank() if comm is not None else 0


def lpt_assignment(times: np.ndarray, ranks: int, *, base: np.ndarray | None = None) -> np.ndarray:
    """Owner rank per site: longest-processing-time-first greedy on the
    measured (or estimated) times, each rank starting from its ``base``
    load (default 0); ties broken by site index."""
    owner = np.zeros(times.size, dtype=int)
    load = np.zeros(ranks) if base is None else np.array(base, dtype=float)
    for s in sorted(range(times.size), key=lambda i: (-times[i], i)):
        r = int(np.argmin(load))
        owner[s] = r
        load[r] += times[s]
    return owner


def block_plan(inst: Instance, ranks: int, owner: np.ndarray | None, times: np.ndarray) -> np.ndarray:
    """Owner rank per site block of the site relaxation and search. With no
    plan yet (``owner`` None): longest-processing-time-first on an estimate,
    the site's triples plus H per routing pair. Then, once every block has
    a measured time (``times`` [S] s, the last call's), LPT on those times,
    taken only where it cuts the busiest rank's load by a fifth (a moved
    block is rebuilt once on its new rank); else ``owner`` as it is."""
    if owner is None:
        est = (np.bincount(inst.triples[1], minlength=inst.S)
               + inst.H * np.bincount(inst.region_pairs[1], minlength=inst.S) + 1.0)
        return lpt_assignment(est.astype(float), ranks)
    if (times > 0).all():
        return respread(owner, times, ranks, gain=0.2)
    return owner


def respread(owner: np.ndarray, times: np.ndarray, ranks: int, *, gain: float,
             base: np.ndarray | None = None) -> np.ndarray:
    """LPT on the measured ``times`` [S] (s), each rank starting from its
    ``base`` load (s; rank 0's own work), where that cuts the busiest rank's
    load by more than the share ``gain``; else ``owner`` as it is."""
    if ranks > 1:
        base = np.zeros(ranks) if base is None else np.asarray(base, dtype=float)
        plan = lpt_assignment(times, ranks, base=base)
        if (np.bincount(plan, times, ranks) + base).max() < (1.0 - gain) * (np.bincount(owner, times, ranks)
                                                                          + base).max():
            return plan
    return owner


@dataclass
class PoolEval:
    """Fixed-load results for all sites (see :class:`SiteEval`)."""

    feasible: np.ndarray  # [S] bool
    cost: np.ndarray  # [S]
    g_load: np.ndarray  # [S,H]
    g_alloc: np.ndarray  # [S]
    exact_failed: np.ndarray  # [S] bool
    site_s: np.ndarray  # [S] solve seconds
    rank_s: np.ndarray  # [ranks] busy seconds of each rank in this call
    dispatch: np.ndarray | None = None  # [S, series, H+1] with exact=True
    g_gen: np.ndarray | None = None  # [S,H] dQ/dgen where a committed unit's output was fixed, else zeros
    emissions: np.ndarray | None = None  # [S] t of each feasible site's dispatch (nan where infeasible)


@dataclass
class PoolPrice:
    value: np.ndarray  # [S] min of cost + mu E - pi.supplied
    supplied: np.ndarray  # [S,H]
    emissions: np.ndarray  # [S]
    site_s: np.ndarray
    rank_s: np.ndarray


@dataclass
class PoolSearch:
    """One round of the site neighbourhood search (:meth:`SubproblemPool.site_search`):
    ``value`` [S] each site's plan value net of const ($; nan: no point
    found, the schedule's own starts kept), ``x`` [triples] the plans' job
    columns, ``y`` [pairs, H] their routing (MW), ``dispatch`` [S,
    len(SITE_SERIES), H+1] their dispatch (zeros where value is nan),
    ``site_s`` [S] seconds."""

    value: np.ndarray
    x: np.ndarray
    y: np.ndarray
    dispatch: np.ndarray
    site_s: np.ndarray


class SubproblemPool:
    """Owns the site subproblems across ranks. Call the solve methods on
    rank 0 only; other ranks call :meth:`serve`."""

    def __init__(self, inst: Instance, comm=None, *, rebalance: bool = True):
        self.inst = inst
        self.comm = comm if comm is not None else get_comm()
        self.size = self.comm.Get_size() if self.comm is not None else 1
        self.rank = self.comm.Get_rank() if self.comm is not None else 0
        # size estimate: periods x (1 + battery + generator), committed units weigh 5x
        est = inst.H * (1 + inst.has_batt + inst.has_gen + 4 * inst.committed).astype(float)
        self.owner = lpt_assignment(est, self.size)
        self.subs: dict[int, SiteSubproblem] = {}
        self.blocks: dict[int, SiteBlock] = {}  # the site relaxation's MILPs, built on first use
        # the blocks are spread on their own (their MILPs' times have little to do with the energy LPs'): first
        # by their triples, then by their measured seconds (see _plan_blocks)
        self.block_owner: np.ndarray | None = None
        self.block_time = np.zeros(inst.S)  # rank 0: each block's seconds in the last call
        self.block_site_time = np.zeros(inst.S)  # rank 0: each block's seconds over the run
        self.block_moves = 0
        self.site_time = np.zeros(inst.S)
        self.lp_calls = 0  # evaluate and price calls so far (RESPREAD_AT counts them)
        self.lp_time = np.zeros(inst.S)  # each site's seconds in LP rounds (what the re-spread balances)
        self.spread_base = np.zeros(inst.S)  # lp_time at the last spread
        self.root_work_s = 0.0  # rank 0's own work while the workers solve (see note_root_work)
        self.root_base = 0.0  # root_work_s at the last spread
        self._pending: tuple[np.ndarray, float] | None = None  # the prices between price_begin and price_end
        self.respreads = 0  # spreads after the calibration that moved sites
        self.site_moves = 0  # energy subproblems they moved
        self.calibration_s = np.zeros(inst.S)
        self.build_s = 0.0
        self.rebalance = rebalance
        self.calls = 0
        self.closed = False
        self._race_comm = None  # the race's own communicator (see race_begin), made at the first race
        self._race_model: FixedScheduleModel | None = None  # ranks > 0: their copy of the full fixed model, built at the first race

    # ------------------------------------------------------------------
    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def _mine(self) -> np.ndarray:
        return np.flatnonzero(self.owner == self.rank)

    def _sub(self, s: int) -> SiteSubproblem:
        sub = self.subs.get(s)
        if sub is None:
            sub = SiteSubproblem(self.inst, s)
            self.subs[s] = sub
            self.build_s += sub.build_s
        return sub

    def _do_calibrate(self) -> np.ndarray:
        S = self.inst.S
        buf = np.zeros(S)
        load = self.inst.pue * self.inst.idle[:, None]
        for s in self._mine():
            s = int(s)
            sub = self._sub(s)
            buf[s] = sub.evaluate(load[s], np.inf).solve_s + 1e-9 * sub.ncol
        return buf

    def _finish_calibrate(self) -> None:
        for s in list(self.subs):
            if self.owner[s] != self.rank:
                del self.subs[s]
        for s in self._mine():
            self._sub(int(s)).reset()

    def calibrate(self) -> None:
        """Build every subproblem, time one solve of each, spread the sites
        by those times, and reset all solvers (see the module docstring)."""
        self._command(_CALIBRATE)
        times = self._reduce(self._do_calibrate())
        self.calibration_s = times
        if self.rebalance and self.size > 1:
            owner = lpt_assignment(times, self.size)
        else:
            owner = self.owner
        self.owner = self._bcast(owner)
        self._finish_calibrate()

    def _bcast(self, obj):
        return self.comm.bcast(obj, root=0) if self.size > 1 else obj

    def _command(self, cmd: int, arg: object = 0.0) -> None:
        """Rank 0 announces a command. The barrier pairs with the workers'
        sleeping wait in :meth:`_next_command`."""
        if self.size > 1:
            self.comm.Ibarrier().Wait()  # a nonblocking barrier matches only another one
            self.comm.bcast((cmd, arg), root=0)

    def _next_command(self) -> tuple[int, Any]:
        """Workers wait for the next command without spinning: MPICH polls
        in a blocking call, which would take CPU from rank 0's master solve
        when ranks share cores. A non-blocking barrier tested every 0.2 ms
        sleeps instead."""
        req = self.comm.Ibarrier()
        while not req.Test():
            time.sleep(2e-4)
        return self.comm.bcast(None, root=0)

    def _Bcast(self, arr: np.ndarray) -> np.ndarray:
        if self.size > 1:
            self.comm.Bcast(arr, root=0)
        return arr

    def _reduce(self, buf: np.ndarray) -> np.ndarray:
        if self.size == 1:
            return buf
        from mpi4py import MPI

        out = np.zeros_like(buf) if self.is_root else None
        self.comm.Reduce(buf, out, op=MPI.SUM, root=0)
        return out

    # ------------------------------------------------------------------
    # the work each rank does for one command
    def _do_eval(self, P: np.ndarray, b: np.ndarray, exact: bool, limit: float = 0.0,
                 gen: np.ndarray | None = None, mu: float = 0.0) -> np.ndarray:
        S, H = self.inst.S, self.inst.H
        nser = len(SITE_SERIES)
        width = 2 * H + 6 + (nser * (H + 1) if exact else 0)
        buf = np.zeros((S + 1, max(width, self.size)))
        t_rank = time.perf_counter()
        mine = [int(s) for s in self._mine()]
        for i, s in enumerate(mine):
            # exact: the rank's sites share what is left of ``limit`` (s; 0: no limit)
            share = max(0.05, (t_rank + limit - time.perf_counter()) / (len(mine) - i)) if limit > 0 else None
            fix = None if gen is None or np.isnan(gen[s]).any() else gen[s]
            r = self._sub(s).evaluate(P[s], float(b[s]), exact=exact, time_limit=share, gen=fix, mu=mu)
            row = buf[s]
            row[0] = 1.0 if r.feasible else 0.0
            row[1] = r.cost
            row[2] = r.g_alloc
            row[3] = 1.0 if r.exact_failed else 0.0
            row[4] = r.solve_s
            row[5] = r.emissions
            row[6:6 + H] = r.g_load
            if r.g_gen is not None:
                row[6 + H:6 + 2 * H] = r.g_gen
            if exact and r.feasible:
                row[6 + 2 * H:6 + 2 * H + nser * (H + 1)] = self._sub(s).dispatch_arrays().ravel()
        buf[S, self.rank] = time.perf_counter() - t_rank
        return buf

    def _do_price(self, pi: np.ndarray, mu: float) -> np.ndarray:
        S, H = self.inst.S, self.inst.H
        buf = np.zeros((S + 1, max(H + 3, self.size)))
        t_rank = time.perf_counter()
        for s in self._mine():
            s = int(s)
            val, sup, em, dt = self._sub(s).price(pi[s], mu)
            buf[s, 0], buf[s, 1], buf[s, 2] = val, em, dt
            buf[s, 3:3 + H] = sup
        buf[S, self.rank] = time.perf_counter() - t_rank
        return buf

    def _do_blocks(self, lam: np.ndarray, nu: np.ndarray, head: np.ndarray, owner: np.ndarray) -> np.ndarray:
        inst = self.inst
        S, J, RH = inst.S, inst.J, inst.R * inst.H
        mu, limit, gap, deadline_in = (float(v) for v in head)
        buf = np.zeros((S + 1, max(4 + J + RH, self.size)))
        t_rank = time.perf_counter()
        deadline = t_rank + deadline_in
        mult = SiteMultipliers(lam, nu, mu)
        mine = self._adopt_blocks(owner)
        for i, s in enumerate(mine):
            if self._past(deadline):  # no bound and no plan from this site this round
                buf[s, :2] = np.nan
                continue
            blk = self._block(s)
            # the round's time is shared among this rank's sites still to solve
            share = max(0.05, (deadline - time.perf_counter()) / (len(mine) - i))
            # the LP may use what is left of the round: without its bound the round proves nothing
            # one HiGHS thread a rank when there are several: HiGHS's MIP worker threads wait busily, and two ranks'
            # pools on shared cores slowed a site MILP 20-fold (1.2 s alone, 23 s beside another rank on medium)
            bound, value, jobs, served, em, sec = blk.solve(mult, time_limit=min(limit, share), gap=gap,
                                                            lp_time_limit=max(0.05, deadline - time.perf_counter()),
                                                            threads=1 if self.size > 1 else None)
            row = buf[s]
            row[0], row[1], row[2], row[3] = bound, value, em, sec
            row[4:4 + J] = jobs
            row[4 + J:4 + J + RH] = served.ravel()
        buf[S, self.rank] = time.perf_counter() - t_rank
        return buf

    def _plan_blocks(self) -> np.ndarray:
        """Rank 0: who holds each site block for the next call (see
        :func:`block_plan`)."""
        plan = block_plan(self.inst, self.size, self.block_owner, self.block_time)
        if self.block_owner is not None:
            self.block_moves += int((plan != self.block_owner).sum())
        self.block_owner = plan
        return np.ascontiguousarray(plan, dtype=np.int64)

    def _adopt_blocks(self, owner: np.ndarray) -> list[int]:
        """Take rank 0's block plan: drop the blocks this rank no longer
        holds; return the sites it holds."""
        self.block_owner = owner.copy()
        for s in [s for s in self.blocks if owner[s] != self.rank]:
            del self.blocks[s]
        return [int(s) for s in np.flatnonzero(owner == self.rank)]

    @staticmethod
    def _past(deadline: float) -> bool:
        """The round's ``deadline`` (perf_counter s) has passed: the rank's
        sites still to go are left out of the round, built or not. A block
        takes seconds to build (on `large`, 1 rank, the blocks built after
        the deadline had taken the run 6 s past its limit), and even a built
        one costs its model update and two solves at their 0.05 s floor. On
        `large` (2 ranks) a site relaxation round that began with little
        time left had 38 sites without a bound, each of which the loop went
        on to solve, and the run ended 5 s past its limit: the likeliest
        cause (not re-run to confirm it)."""
        return time.perf_counter() >= deadline

    def _block(self, s: int) -> SiteBlock:
        blk = self.blocks.get(s)
        if blk is None:
            blk = self.blocks[s] = SiteBlock(self.inst, s)
            self.build_s += blk.build_s
        return blk

    def _do_search(self, home: np.ndarray, start: np.ndarray, served: np.ndarray, em_cap: np.ndarray,
                   head: np.ndarray, owner: np.ndarray) -> np.ndarray:
        inst = self.inst
        S, K, PH = inst.S, inst.triples[0].size, inst.region_pairs[0].size * inst.H
        nd = len(SITE_SERIES) * (inst.H + 1)
        limit, gap, deadline_in = (float(v) for v in head)
        buf = np.zeros(2 * S + K + PH + S * nd + self.size)
        ybuf = buf[2 * S + K:2 * S + K + PH].reshape(-1, inst.H)
        dbuf = buf[2 * S + K + PH:2 * S + K + PH + S * nd].reshape(S, nd)
        t_rank = time.perf_counter()
        deadline = t_rank + deadline_in
        jj = inst.triples[0]
        on = np.zeros(K, dtype=bool)
        on[start[start >= 0]] = True
        mine = self._adopt_blocks(owner)
        ss, (rr, sr) = inst.triples[1], inst.region_pairs
        for i, s in enumerate(mine):
            if self._past(deadline):  # as a site that found no point: its own starts, routing and dispatch
                tri, pairs = np.flatnonzero(ss == s), np.flatnonzero(sr == s)
                buf[s] = np.nan
                buf[2 * S + tri] = on[tri] & (home[jj[tri]] == s)
                ybuf[pairs] = np.minimum(served[rr[pairs], s], inst.L[rr[pairs]])
                continue
            blk = self._block(s)
            share = max(0.05, (deadline - time.perf_counter()) / (len(mine) - i))
            allowed = home[jj[blk.triples]] == s  # a job's own start elsewhere is no start here
            value, x, y, disp, sec = blk.search(allowed, inst.required & (home == s), served[blk.regions, s],
                                                float(em_cap[s]), on[blk.triples] & allowed,
                                                time_limit=min(limit, share), gap=gap,
                                                threads=1 if self.size > 1 else None)
            buf[s], buf[S + s] = value, sec
            buf[2 * S + blk.triples] = x
            ybuf[blk.pairs] = y
            if disp is not None:
                dbuf[s] = disp.ravel()
        buf[2 * S + K + PH + S * nd + self.rank] = time.perf_counter() - t_rank
        return buf

    # ------------------------------------------------------------------
    # rank 0 API
    def site_search(self, home: np.ndarray, start: np.ndarray, served: np.ndarray, em_cap: np.ndarray, *,
                    site_limit: float, gap: float, round_limit: float) -> PoolSearch:
        """One round of the site neighbourhood search on the site blocks
        (:meth:`SiteBlock.search`): job j may run only at site ``home[j]``
        (-1: nowhere), at any start there; ``start`` [J] each job's triple in
        the schedule searched around (-1: none), the MIP start; routing to
        each site at most ``served`` [R,S,H] (MW); each site's emissions at
        most ``em_cap`` [S] (t). Site MILPs within ``site_limit`` seconds and
        relative ``gap``, a rank's sites together within ``round_limit``."""
        inst = self.inst
        S, K = inst.S, inst.triples[0].size
        home = np.ascontiguousarray(home, dtype=np.int64)
        start = np.ascontiguousarray(start, dtype=np.int64)
        served = np.ascontiguousarray(served, dtype=float)
        em_cap = np.ascontiguousarray(em_cap, dtype=float)
        head = np.array([site_limit, gap, round_limit], dtype=float)
        owner = self._plan_blocks()
        self._command(_SEARCH)
        for arr in (home, start, served, em_cap, head, owner):
            self._Bcast(arr)
        buf = self._reduce(self._do_search(home, start, served, em_cap, head, owner))
        PH, nd = inst.region_pairs[0].size * inst.H, len(SITE_SERIES) * (inst.H + 1)
        out = PoolSearch(value=buf[:S].copy(), x=buf[2 * S:2 * S + K].copy(),
                         y=buf[2 * S + K:2 * S + K + PH].reshape(-1, inst.H).copy(),
                         dispatch=buf[2 * S + K + PH:2 * S + K + PH + S * nd].reshape(S, len(SITE_SERIES),
                                                                                        inst.H + 1).copy(),
                         site_s=buf[S:2 * S].copy())
        self._after_blocks(out.site_s)
        return out

    def site_blocks(self, mult: SiteMultipliers, *, site_limit: float, gap: float, round_limit: float) -> BlockRound:
        """Solve every site's block of the site relaxation
        (:mod:`.site_blocks`) at ``mult``: each site MILP within
        ``site_limit`` seconds and relative ``gap``, a rank's sites together
        within ``round_limit`` seconds."""
        inst = self.inst
        S, J, R, H = inst.S, inst.J, inst.R, inst.H
        lam = np.ascontiguousarray(mult.lam, dtype=float)
        nu = np.ascontiguousarray(mult.nu, dtype=float)
        head = np.array([mult.mu, site_limit, gap, round_limit], dtype=float)
        owner = self._plan_blocks()
        self._command(_BLOCKS)
        for arr in (lam, nu, head, owner):
            self._Bcast(arr)
        buf = self._reduce(self._do_blocks(lam, nu, head, owner))
        out = BlockRound(bound=buf[:S, 0].copy(), value=buf[:S, 1].copy(), emissions=buf[:S, 2].copy(),
                         site_s=buf[:S, 3].copy(), jobs=buf[:S, 4:4 + J].copy(),
                         served=buf[:S, 4 + J:4 + J + R * H].reshape(S, R, H).copy())
        self._after_blocks(out.site_s)  # the rank loads of the summary count the site MILPs too
        return out

    def evaluate(self, P: np.ndarray, b: np.ndarray | None, *, exact: bool = False,
                 time_limit: float | None = None, gen: np.ndarray | None = None, mu: float = 0.0) -> PoolEval:
        """Solve every site for facility load ``P`` [S,H] (MW) within
        allocations ``b`` [S] (t; None = no budget). ``exact``: committed
        units' MILPs, a rank's sites within ``time_limit`` seconds together.
        ``gen`` [S,H] (MW, not with ``exact``): the committed units' output
        to fix, NaN rows at sites whose output stays free. ``mu`` ($/t): a
        carbon price in the sites' objectives (``cost`` includes it)."""
        S, H = self.inst.S, self.inst.H
        P = np.ascontiguousarray(P, dtype=float)
        b = np.full(S, np.inf) if b is None else np.ascontiguousarray(b, dtype=float)
        gen = np.full((S, H), np.nan) if gen is None or exact else np.ascontiguousarray(gen, dtype=float)
        limit = 0.0 if time_limit is None else max(float(time_limit), 1e-3)
        self._maybe_respread()
        self._command(_EXACT if exact else _EVAL, (limit, float(mu)))
        self._Bcast(P)
        self._Bcast(b)
        self._Bcast(gen)
        buf = self._reduce(self._do_eval(P, b, exact, limit, gen, float(mu)))
        out = self._unpack_eval(buf, exact)
        self._after_call(out.site_s, lp=not exact)
        return out

    def _unpack_eval(self, buf: np.ndarray, exact: bool) -> PoolEval:
        S, H = self.inst.S, self.inst.H
        nser = len(SITE_SERIES)
        disp = None
        if exact:
            disp = buf[:S, 6 + 2 * H:6 + 2 * H + nser * (H + 1)].reshape(S, nser, H + 1).copy()
        return PoolEval(feasible=buf[:S, 0] > 0.5, cost=buf[:S, 1].copy(), g_load=buf[:S, 6:6 + H].copy(),
                        g_alloc=buf[:S, 2].copy(), exact_failed=buf[:S, 3] > 0.5, site_s=buf[:S, 4].copy(),
                        rank_s=buf[S, :self.size].copy(), dispatch=disp, g_gen=buf[:S, 6 + H:6 + 2 * H].copy(),
                        emissions=buf[:S, 5].copy())

    def price(self, pi: np.ndarray, mu: float) -> PoolPrice:
        """Solve every site's priced problem at prices ``pi`` [S,H] ($/MWh)
        and carbon price ``mu`` ($/t)."""
        self.price_begin(pi, mu)
        return self.price_end()

    def price_begin(self, pi: np.ndarray, mu: float) -> None:
        """The first half of :meth:`price`: send the prices, so the workers
        start on their sites while rank 0 does its own work (the compute
        side) before :meth:`price_end` solves its sites and collects."""
        pi = np.ascontiguousarray(pi, dtype=float)
        self._maybe_respread()
        self._command(_PRICE, float(mu))
        self._Bcast(pi)
        self._pending = (pi, float(mu))

    def price_end(self) -> PoolPrice:
        """The second half of :meth:`price`: rank 0's sites, then every
        rank's answers."""
        if self._pending is None:
            raise RuntimeError("price_end without price_begin")
        S, H = self.inst.S, self.inst.H
        pi, mu = self._pending
        self._pending = None
        buf = self._reduce(self._do_price(pi, mu))
        out = PoolPrice(value=buf[:S, 0].copy(), emissions=buf[:S, 1].copy(), site_s=buf[:S, 2].copy(),
                        supplied=buf[:S, 3:3 + H].copy(), rank_s=buf[S, :self.size].copy())
        self._after_call(out.site_s)
        return out

    def note_root_work(self, seconds: float) -> None:
        """Rank 0's own seconds between :meth:`price_begin` and
        :meth:`price_end`: the spread counts them as load on rank 0."""
        self.root_work_s += float(seconds)

    def _after_call(self, site_s: np.ndarray, *, lp: bool = True) -> None:
        """Count an energy call; ``lp``: an LP round (priced, or fixed
        load relaxed), whose seconds the re-spread balances -- not the
        committed units' MILPs of an exact re-dispatch, which are rare and
        time-limited (on `large` one site's MILPs outweighed the other 49
        sites' LPs together, and the re-spread put those 49 on one rank)."""
        self.calls += 1
        self.lp_calls += 1
        self.site_time += site_s
        if lp:
            self.lp_time += site_s

    def _maybe_respread(self) -> None:
        """Rank 0, before an energy call: at the calls of
        :data:`RESPREAD_AT`, spread the sites again by their seconds since the
        last spread (:func:`respread`: only where it cuts the busiest rank's
        load by more than :data:`RESPREAD_GAIN`; a moved site is built once on
        its new rank), and clear every solver's basis, as the calibration
        does -- on any number of ranks, one included, so the run stays
        deterministic."""
        if not self.rebalance or self.lp_calls not in RESPREAD_AT:
            return
        recent = self.lp_time - self.spread_base
        self.spread_base = self.lp_time.copy()
        base = np.zeros(self.size)
        base[0] = self.root_work_s - self.root_base  # rank 0 starts on its sites only after its own work
        self.root_base = self.root_work_s
        owner = (respread(self.owner, recent, self.size, gain=RESPREAD_GAIN, base=base) if (recent > 0).all()
                 else self.owner)
        moved = int((owner != self.owner).sum())
        self.respreads += int(moved > 0)
        self.site_moves += moved
        self._command(_RESPREAD)
        self.owner = self._bcast(np.ascontiguousarray(owner))
        self._finish_calibrate()

    def _after_blocks(self, site_s: np.ndarray) -> None:
        self.calls += 1
        self.block_time = site_s.copy()
        self.block_site_time += site_s

    def close(self) -> None:
        """Release the worker ranks (rank 0 only; idempotent)."""
        if not self.closed and self.is_root:
            self._command(_STOP)
        self.closed = True

    def peak_memory_mb(self) -> list[float]:
        """Peak resident memory of every rank (MB), gathered on rank 0."""
        self._command(_MEMORY)
        return self._reduce(self._do_memory()).tolist()

    def _do_memory(self) -> np.ndarray:
        buf = np.zeros(self.size)
        buf[self.rank] = peak_rss_mb()
        return buf

    def sites_per_rank(self) -> list[int]:
        """How many sites each rank owns."""
        return np.bincount(self.owner, minlength=self.size).tolist()

    def loads(self) -> np.ndarray:
        """Measured solve seconds per rank under the current assignment."""
        out = np.bincount(self.owner, weights=self.site_time, minlength=self.size)
        if self.block_owner is not None:
            out += np.bincount(self.block_owner, weights=self.block_site_time, minlength=self.size)
        return out

    # ------------------------------------------------------------------
    # the exact endgame's race (see .race)
    def race_begin(self, task: dict) -> Callable[[], bool]:
        """Start the other ranks on the exact endgame's MILP (rank 0 only,
        more than one rank): ``task`` holds ``upper`` [triples] (the job
        binaries' upper bounds; the lower ones are 0), ``start_x`` (rank 0's
        incumbent column vector, or None) and ``start_triples`` (its
        schedule), ``limit`` (seconds, None: none), ``gap``, ``effort``
        (HiGHS's heuristic effort, None: its default); with ``search``
        true, the other ranks search for schedules instead
        (:mod:`.endgame_search`, from ``start_x``, worth
        ``start_objective``) until rank 0 ends. Rank 0 then solves the
        MILP with seed 0 and the returned stop poll, and calls
        :meth:`race_end`."""
        self._command(_RACE)
        self._bcast(task)
        return race.stop_poll(self._race())

    def race_end(self, entry: race.RaceEntry) -> tuple[list[race.RaceEntry], np.ndarray | None]:
        """Rank 0's end of the race (:func:`.race.finish`): every rank's
        entry, and the winner's column vector where another rank won."""
        return race.finish(self._race(), entry, None)

    def _race(self):
        if self._race_comm is None:
            self._race_comm = self.comm.Dup()  # collective: every rank is in the race when this runs
        return self._race_comm

    def _do_race(self) -> None:
        from ..fixed import FixedScheduleModel
        from ..model import memory_check
        from . import endgame_search

        task = self._bcast(None)
        t0 = time.perf_counter()
        comm = self._race()
        poll = race.stop_poll(comm)
        limit = task["limit"]
        objective = bound = x = None
        if self._race_model is None and memory_check(self.inst)[0] and not poll():
            self._race_model = FixedScheduleModel(self.inst)
        fx = self._race_model
        left = None if limit is None else limit - (time.perf_counter() - t0)
        start_x = task["start_x"]
        if fx is not None and start_x is not None and start_x.size != fx.p.num_col:
            start_x = None  # not this model's columns: start from the schedule alone
        if task.get("search"):  # rank 0 solves the MILP alone: search for schedules until it ends (no bound)
            if fx is not None and start_x is not None and (left is None or left > 1.0) and not poll():
                found = endgame_search.search(fx, task["upper"], start_x, task["start_triples"],
                                              task["start_objective"], time_limit=left, seed=self.rank,
                                              effort=task["effort"], stop=poll)
                objective, x = found.objective, found.x
            while not poll():  # ending first would stop rank 0's MILP (race.finish tells every rank)
                time.sleep(race.POLL_EVERY_S)
        elif fx is not None and (left is None or left > 1.0) and not poll():
            sol, objective, bound = fx.solve_restricted(
                np.zeros(task["upper"].size), task["upper"], start=start_x,
                start_triples=task["start_triples"] if start_x is None else None, time_limit=left, gap=task["gap"],
                threads=1, heuristic_effort=task["effort"], seed=self.rank, stop=poll)
            x = fx.last_x if sol is not None else None
        race.finish(comm, race.RaceEntry(objective, bound, time.perf_counter() - t0), x)

    # ------------------------------------------------------------------
    # ranks > 0
    def serve(self) -> None:
        """Worker loop: answer rank 0's commands until it closes the pool."""
        S, H = self.inst.S, self.inst.H
        while True:
            cmd, arg = self._next_command()
            if cmd == _STOP:
                self.closed = True
                return
            if cmd == _CALIBRATE:
                self._reduce(self._do_calibrate())
                self.owner = self._bcast(None)
                self._finish_calibrate()
                continue
            if cmd == _MEMORY:
                self._reduce(self._do_memory())
                continue
            if cmd == _RESPREAD:
                self.owner = self._bcast(None)
                self._finish_calibrate()
                continue
            if cmd == _RACE:
                self._do_race()
                continue
            if cmd in (_EVAL, _EXACT):
                P = self._Bcast(np.empty((S, H)))
                b = self._Bcast(np.empty(S))
                gen = self._Bcast(np.empty((S, H)))
                limit, mu = arg
                self._reduce(self._do_eval(P, b, cmd == _EXACT, limit, gen, mu))
            elif cmd == _PRICE:
                pi = self._Bcast(np.empty((S, H)))
                self._reduce(self._do_price(pi, arg))
            elif cmd == _BLOCKS:
                lam = self._Bcast(np.empty(self.inst.J))
                nu = self._Bcast(np.empty((self.inst.R, H)))
                head = self._Bcast(np.empty(4))
                owner = self._Bcast(np.empty(S, dtype=np.int64))
                self._reduce(self._do_blocks(lam, nu, head, owner))
            elif cmd == _SEARCH:
                inst = self.inst
                home = self._Bcast(np.empty(inst.J, dtype=np.int64))
                start = self._Bcast(np.empty(inst.J, dtype=np.int64))
                served = self._Bcast(np.empty((inst.R, S, H)))
                em_cap = self._Bcast(np.empty(S))
                head = self._Bcast(np.empty(3))
                owner = self._Bcast(np.empty(S, dtype=np.int64))
                self._reduce(self._do_search(home, start, served, em_cap, head, owner))


def run_on_pool(inst: Instance, opts, root_fn, *, method: str, clock, comm=None):
    """Run a decomposition: rank 0 calls ``root_fn(inst, opts, pool, clock)``
    and returns its result; the other ranks serve the pool and return a
    :class:`~carbonsched.result.WorkerReport`.

    An error on any rank ends every rank at once: the failing rank prints
    its message (a traceback for what is not a :class:`CarbonschedError`,
    i.e. a bug) and aborts the communicator, since the others may be
    waiting for it inside a collective."""
    from ..result import WorkerReport

    pool = SubproblemPool(inst, comm if comm is not None else get_comm())
    if not pool.is_root:
        try:
            pool.serve()
        except BaseException as e:
            _abort(pool, e)
        mine = [inst.site_ids[int(s)] for s in pool._mine()]
        return WorkerReport(rank=pool.rank, method=method, sites=mine,
                            busy_s=float(pool.site_time[pool.owner == pool.rank].sum()))
    try:
        return root_fn(inst, opts, pool, clock)
    except BaseException as e:
        if pool.size > 1:
            _abort(pool, e)
        raise
    finally:
        pool.close()


def _abort(pool: SubproblemPool, e: BaseException) -> None:
    """Print this rank's error once and end every rank of the job."""
    import sys
    import traceback

    from ..constants import ExitCode
    from ..errors import CarbonschedError

    prefix = f"[rank {pool.rank}] " if pool.size > 1 else ""
    if isinstance(e, CarbonschedError):
        print(f"{prefix}carbonsched: error: {e}", file=sys.stderr, flush=True)
    elif isinstance(e, KeyboardInterrupt):
        print(f"{prefix}carbonsched: stopped at once ({e})", file=sys.stderr, flush=True)
    else:
        traceback.print_exc()
        sys.stderr.flush()
    code = ExitCode.INTERRUPTED if isinstance(e, KeyboardInterrupt) else ExitCode.BAD_INPUT
    if pool.comm is not None and pool.size > 1:
        # MPI_Abort has the process manager kill every rank at once; output still in flight from this rank's
        # stderr pipe to mpiexec can be dropped (seen in about 1 of 30 runs under mpich's hydra). A short wait
        # lets the forwarder deliver the message before the kill.
        time.sleep(ABORT_GRACE_S)
        pool.comm.Abort(int(code))
