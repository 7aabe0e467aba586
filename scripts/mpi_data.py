"""What the ranks move, and what it costs: the instance's load against its
broadcast, and a pool round's messages against the round.

Run under mpiexec with K >= 2 ranks on an instance file; rank 0 prints one
JSON line:

    mpiexec -n 2 python scripts/mpi_data.py large.json --rounds 20

- ``load_s``: the slowest rank's read and parse of the file (what
  ``carbonsched solve`` does today: every rank reads it);
  ``bcast_s``: rank 0's parse plus the broadcast of the parsed instance
  (pickled) to the others, the alternative.
- ``price_round_ms``: one Lagrangian pool round (every site's LP at new
  prices), median; ``price_messages_ms``: the same round's messages alone
  (the prices' broadcast and the answers' reduction, no solve) and their
  bytes per rank. The share of the round in messages is what sending only
  changed data could save at most.
- The same for the fixed-load (Benders) round.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time

import numpy as np


def _median_ms(fn, rounds: int) -> float:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return 1e3 * float(np.median(out))


def measure(args) -> None:
    from mpi4py import MPI

    from carbonsched.decomposition.pool import SubproblemPool
    from carbonsched.instance import load_instance, parse_instance

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    comm.Barrier()
    t = time.perf_counter()
    inst = load_instance(args.instance)
    load_s = comm.reduce(time.perf_counter() - t, op=MPI.MAX, root=0)
    comm.Barrier()
    t = time.perf_counter()
    if rank == 0:
        with open(args.instance) as f:
            raw = f.read()
        parsed = parse_instance(json.loads(raw))
        blob = pickle.dumps(parsed, protocol=pickle.HIGHEST_PROTOCOL)
    else:
        blob = None
    blob = comm.bcast(blob, root=0)
    if rank != 0:
        pickle.loads(blob)
    comm.Barrier()
    bcast_s = time.perf_counter() - t
    pool = SubproblemPool(inst, comm)
    if not pool.is_root:
        pool.serve()
        # the bare messages: the same shapes as a round's, no solve
        S, H = inst.S, inst.H
        for _ in range(args.rounds):
            pi = np.empty((S, H))
            comm.Bcast(pi, root=0)
            comm.Reduce(np.zeros((S + 1, max(H + 3, comm.Get_size()))), None, op=MPI.SUM, root=0)
        for _ in range(args.rounds):
            P, b = np.empty((S, H)), np.empty(S)
            comm.Bcast(P, root=0)
            comm.Bcast(b, root=0)
            comm.Reduce(np.zeros((S + 1, max(H + 3, comm.Get_size()))), None, op=MPI.SUM, root=0)
        return
    pool.calibrate()
    rng = np.random.default_rng(0)
    S, H = inst.S, inst.H
    base = inst.pue * (inst.idle[:, None] + 0.5 * (inst.cap - inst.idle)[:, None])
    price_ms = _median_ms(lambda: pool.price(inst.pb * rng.uniform(0.8, 1.2, inst.pb.shape), 0.0), args.rounds)
    eval_ms = _median_ms(lambda: pool.evaluate(base * rng.uniform(0.9, 1.1, base.shape), None), args.rounds)
    loads = pool.loads()
    pool.close()
    width = max(H + 3, comm.Get_size())
    out = np.zeros((S + 1, width))

    def price_messages():
        comm.Bcast(np.ascontiguousarray(inst.pb * 1.0), root=0)
        comm.Reduce(np.zeros((S + 1, width)), out, op=MPI.SUM, root=0)

    def eval_messages():
        comm.Bcast(np.ascontiguousarray(base * 1.0), root=0)
        comm.Bcast(np.zeros(S), root=0)
        comm.Reduce(np.zeros((S + 1, width)), out, op=MPI.SUM, root=0)

    price_msg_ms = _median_ms(price_messages, args.rounds)
    eval_msg_ms = _median_ms(eval_messages, args.rounds)
    print(json.dumps({
        "instance": inst.name, "ranks": comm.Get_size(), "sites": S, "periods": H, "jobs": inst.J,
        "load_s": load_s, "bcast_s": bcast_s, "instance_pickle_mb": len(blob) / 2**20,
        "price_round_ms": price_ms, "price_messages_ms": price_msg_ms,
        "price_bytes_per_rank": 8 * (S * H + (S + 1) * width),
        "eval_round_ms": eval_ms, "eval_messages_ms": eval_msg_ms,
        "eval_bytes_per_rank": 8 * (S * H + S + (S + 1) * width),
        "load_imbalance": float(loads.max() / max(loads.mean(), 1e-12))}), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("instance", help="instance JSON file (MODEL.md format)")
    ap.add_argument("--rounds", type=int, default=20, help="rounds per median")
    measure(ap.parse_args())
