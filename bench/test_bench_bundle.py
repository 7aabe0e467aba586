"""The bundle master's cuts: the same dual iterations with 30 cuts a part
(the sites' default) and with 60, with each part's oldest loose cut dropped
(the default) against its oldest, the compute side's part at 10 cuts
against 30 in the same seconds, the sites' parts at the cap (the default)
against 30 in the same seconds, and the box halving after 20 null steps in
a row (the default) against at each, in one run each (ratios, not timed
assertions).

    python -m pytest bench/test_bench_bundle.py --benchmark-only

On CARBONSCHED_BENCH_INSTANCE (default ``medium``; a path or a shipped
name), CARBONSCHED_BENCH_ITERATIONS iterations each (default 160), 1 rank.
extra_info holds, per cut limit, the master LP's seconds and the least L
(an upper bound on the optimum: lower is better), and the ratios. The
master's rows are dense over all multipliers for the compute side's part,
so its time grows fast with the cuts kept.
"""

import os
import time

import numpy as np

from carbonsched.config import LagrangianOptions
from carbonsched.decomposition import lagrangian
from carbonsched.decomposition.lagrangian import evaluate_dual, setup_dual
from carbonsched.decomposition.pool import SubproblemPool
from carbonsched.instance import load_instance


def _iterate(inst, max_cuts: int, iterations: int, compute_cuts: int | None = None,
             seconds: float | None = None, shrink_after: int | None = None) -> dict:
    """``iterations`` bundle iterations (or as many as fit in ``seconds``)
    with ``max_cuts`` cuts a part, the compute side's part ``compute_cuts``
    (default: the same), the box halving after ``shrink_after`` null steps
    in a row (default: the bundle's)."""
    lay, compute, update, u = setup_dual(inst, LagrangianOptions())
    update.max_cuts = max_cuts
    update.max_compute_cuts = max_cuts if compute_cuts is None else compute_cuts
    if shrink_after is not None:
        update.shrink_after = shrink_after
    pool = SubproblemPool(inst, None)
    pool.calibrate()
    best, master_s, t0 = np.inf, 0.0, time.perf_counter()
    done = 0
    while done < iterations and (seconds is None or time.perf_counter() - t0 < seconds):
        done += 1
        pt, _ = evaluate_dual(inst, lay, u, compute, pool)
        best = min(best, pt.L)
        t = time.perf_counter()
        u = update.step(pt)
        master_s += time.perf_counter() - t
    pool.close()
    return {"least_L": best, "master_s": master_s, "total_s": time.perf_counter() - t0, "iterations": done,
            "serious": update.serious, "null": update.null}


def _report(benchmark, out: dict, label: str, a, b, keys=("master_s", "least_L")) -> None:
    """Each run's figures under ``{label}_{key}`` and the ratios ``a`` over ``b``."""
    for k, r in out.items():
        assert np.isfinite(r["least_L"])
        benchmark.extra_info[f"{label}_{k}"] = r
    for key in keys:
        benchmark.extra_info[f"{key}_{a}_over_{b}"] = out[a][key] / out[b][key]


def test_bundle_cut_limit_30_vs_60(benchmark):
    inst = load_instance(os.environ.get("CARBONSCHED_BENCH_INSTANCE", "medium"))
    n = int(os.environ.get("CARBONSCHED_BENCH_ITERATIONS", 160))

    def both():
        return {c: _iterate(inst, c, n, compute_cuts=c) for c in (30, 60)}

    _report(benchmark, benchmark.pedantic(both, rounds=1, iterations=1), "cuts", 30, 60)


def _drop_oldest(part: np.ndarray, loose: np.ndarray, keep) -> np.ndarray:
    """The rule before: each part over its ``keep`` (one, or one per part)
    drops its oldest cuts, binding or not."""
    cap = {int(c): int(keep if np.isscalar(keep) else keep[c]) for c in np.unique(part)}
    out = [np.flatnonzero(part == c)[:-cap[c]] for c in cap if np.count_nonzero(part == c) > cap[c]]
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def test_bundle_drops_loose_vs_oldest_cuts(benchmark, monkeypatch):
    inst = load_instance(os.environ.get("CARBONSCHED_BENCH_INSTANCE", "medium"))
    n = int(os.environ.get("CARBONSCHED_BENCH_ITERATIONS", 160))

    def both():
        out = {"loose": _iterate(inst, 30, n, compute_cuts=30)}
        with monkeypatch.context() as m:
            m.setattr(lagrangian, "drop_cuts", _drop_oldest)
            out["oldest"] = _iterate(inst, 30, n, compute_cuts=30)
        return out

    _report(benchmark, benchmark.pedantic(both, rounds=1, iterations=1), "drop", "loose", "oldest")


def test_bundle_compute_cuts_10_vs_30_in_the_same_time(benchmark):
    """The compute side's part (its cuts dense over all multipliers) with
    10 cuts (the default) against 30, the sites' parts at 30: first 30 for
    the iterations, then 10 for as many as fit in the same seconds."""
    inst = load_instance(os.environ.get("CARBONSCHED_BENCH_INSTANCE", "medium"))
    n = int(os.environ.get("CARBONSCHED_BENCH_ITERATIONS", 160))

    def both():
        out = {30: _iterate(inst, 30, n, compute_cuts=30)}
        out[10] = _iterate(inst, 30, 100 * n, compute_cuts=10, seconds=out[30]["total_s"])
        return out

    _report(benchmark, benchmark.pedantic(both, rounds=1, iterations=1), "compute_cuts", 10, 30,
            keys=("iterations", "least_L"))


def test_bundle_box_halves_after_20_null_steps_vs_each(benchmark):
    """The box halving after 20 null steps in a row (the default) against
    at each null step (the rule before), the same seconds of dual
    iterations each (CARBONSCHED_BENCH_SECONDS, default 60), the compute
    side's cuts at their default. Lower least L is better: the
    budget-binding 10 x 168 x 60 case (LP bound 4,690,870) gave 4,701,375
    against 4,721,842, `medium` 12,156,518 against 12,181,982."""
    inst = load_instance(os.environ.get("CARBONSCHED_BENCH_INSTANCE", "medium"))
    seconds = float(os.environ.get("CARBONSCHED_BENCH_SECONDS", 60))
    cap = lagrangian.bundle_cut_cap(setup_dual(inst, LagrangianOptions())[0].n)

    def both():
        return {k: _iterate(inst, cap, 10**9, compute_cuts=cap, seconds=seconds, shrink_after=k) for k in (20, 1)}

    _report(benchmark, benchmark.pedantic(both, rounds=1, iterations=1), "shrink_after", 20, 1,
            keys=("iterations", "least_L"))


def test_bundle_site_cuts_at_the_cap_vs_30_in_the_same_seconds(benchmark):
    """The sites' parts at :func:`~carbonsched.decomposition.lagrangian.bundle_cut_cap`
    (the default; 10 on `medium` and `large`, 20 on the budget-binding
    10 x 168 x 60 case, 30 on the test cases) against 30 (the rule
    before), the compute side at the cap in both, the same seconds of dual
    iterations each (CARBONSCHED_BENCH_SECONDS, default 60). Lower least L
    is better: `medium` 12,159,571 (411 iterations) against 12,165,101
    (263); `large` in 300 s 62,713,020 against 62,732,094 (240)."""
    inst = load_instance(os.environ.get("CARBONSCHED_BENCH_INSTANCE", "medium"))
    seconds = float(os.environ.get("CARBONSCHED_BENCH_SECONDS", 60))
    cap = lagrangian.bundle_cut_cap(setup_dual(inst, LagrangianOptions())[0].n)

    def both():
        return {"cap": _iterate(inst, cap, 10**9, compute_cuts=cap, seconds=seconds),
                "30": _iterate(inst, 30, 10**9, compute_cuts=cap, seconds=seconds)}

    _report(benchmark, benchmark.pedantic(both, rounds=1, iterations=1), "site_cuts", "cap", "30",
            keys=("iterations", "least_L", "master_s"))
