"""MPI scaling of the site subproblem pool.

Run under mpiexec with K ranks; rank 0 prints one JSON line with the wall
time per pool round (all sites re-solved) for the Benders-style fixed-load
evaluation and the Lagrangian priced solve, and per whole Lagrangian dual
evaluation (compute side plus priced round) with the compute side overlapped
with the workers' sites (as the method runs it) and after it (sequential),
on a generated instance:

    for k in 1 2 4 8 16; do
        mpiexec -n $k python scripts/mpi_scaling.py --sites 100 --periods 168 --rounds 20
    done | python scripts/mpi_scaling.py --table

The instance is generated identically on every rank (same seed). Speed-up
is the ratio of the 1-rank time to the K-rank time, measured in one run of
the loop above.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def measure(args) -> None:
    from mpi4py import MPI

    from carbonsched.decomposition.pool import SubproblemPool
    from carbonsched.generate import GeneratorConfig, generate
    from carbonsched.instance import parse_instance

    comm = MPI.COMM_WORLD
    from carbonsched.config import LagrangianOptions
    from carbonsched.decomposition.lagrangian import evaluate_dual, setup_dual

    inst = parse_instance(generate(GeneratorConfig(sites=args.sites, regions=6, periods=args.periods,
                                                   jobs=args.jobs, seed=5, budget_basis="none")))
    pool = SubproblemPool(inst, comm)
    t0 = time.perf_counter()
    if not pool.is_root:
        pool.serve()
        return
    pool.calibrate()
    t_cal = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    base = inst.pue * (inst.idle[:, None] + 0.5 * (inst.cap - inst.idle)[:, None])
    t_eval = []
    for _ in range(args.rounds):
        t = time.perf_counter()
        pool.evaluate(base * rng.uniform(0.9, 1.1, base.shape), None)
        t_eval.append(time.perf_counter() - t)
    t_price = []
    for _ in range(args.rounds):
        t = time.perf_counter()
        pool.price(inst.pb * rng.uniform(0.8, 1.2, inst.pb.shape), 0.0)
        t_price.append(time.perf_counter() - t)
    lay, compute, _, u = setup_dual(inst, LagrangianOptions())
    t_dual, t_seq = [], []
    for i in range(args.rounds):
        # each evaluation at new multipliers (a second one at the same point would find every basis optimal);
        # positive scaling keeps every multiplier's sign; the order alternates
        ways = ((True, t_dual), (False, t_seq)) if i % 2 == 0 else ((False, t_seq), (True, t_dual))
        for overlap, out in ways:  # compute side while the workers solve, or first
            ui = u * rng.uniform(0.8, 1.2, u.shape)
            t = time.perf_counter()
            evaluate_dual(inst, lay, ui, compute, pool, overlap=overlap)
            out.append(time.perf_counter() - t)
    loads = pool.loads()
    pool.close()
    print(json.dumps({"ranks": pool.size, "sites": inst.S, "periods": inst.H, "jobs": inst.J, "calibrate_s": t_cal,
                      "eval_round_ms": 1e3 * float(np.median(t_eval)), "price_round_ms": 1e3 * float(np.median(t_price)),
                      "dual_overlapped_ms": 1e3 * float(np.median(t_dual)),
                      "dual_sequential_ms": 1e3 * float(np.median(t_seq)),
                      "load_imbalance": float(loads.max() / max(loads.mean(), 1e-12))}), flush=True)


def table() -> None:
    rows = [json.loads(line) for line in sys.stdin if line.startswith("{")]
    rows.sort(key=lambda r: r["ranks"])
    base = {k: rows[0][k] for k in ("eval_round_ms", "price_round_ms")}
    print("| ranks | fixed-load round (ms) | speed-up | priced round (ms) | speed-up | dual evaluation, "
          "overlapped (ms) | speed-up | sequential (ms) | load max/mean |")
    print("|---|---|---|---|---|---|---|---|---|")
    d0 = rows[0].get("dual_overlapped_ms")
    for r in rows:
        d = r.get("dual_overlapped_ms")
        dual = (f"{d:.1f} | {d0 / d:.2f} | {r['dual_sequential_ms']:.1f}" if d and d0 else "- | - | -")
        print(f"| {r['ranks']} | {r['eval_round_ms']:.1f} | {base['eval_round_ms'] / r['eval_round_ms']:.2f} | "
              f"{r['price_round_ms']:.1f} | {base['price_round_ms'] / r['price_round_ms']:.2f} | {dual} | "
              f"{r['load_imbalance']:.2f} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=100)
    ap.add_argument("--periods", type=int, default=168)
    ap.add_argument("--jobs", type=int, default=10, help="training jobs (the compute side's size)")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--table", action="store_true", help="read the JSON lines on stdin and print a table")
    a = ap.parse_args()
    table() if a.table else measure(a)
