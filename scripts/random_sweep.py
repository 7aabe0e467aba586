"""A random sweep of small generated instances: every decomposition
against the monolithic optimum, as a user would run it (``mpiexec -n
RANKS carbonsched solve``), each solution through the checker.

    python scripts/random_sweep.py --seeds 1000:1024 --ranks 2 --time-limit 60 --out sweep.csv

Each seed draws its own generator settings (sites, regions, periods,
period length, jobs, budget basis and fraction, battery, generator and
committed-unit shares, required jobs, loads, carbon price), writes the
instance next to the CSV, solves it with HiGHS to ``--mono-gap`` (the
reference), then runs each method (its solution and its log,
``sweep-SEED.METHOD.json`` and ``.log``, beside the instance). A row is flagged where a method's
objective is above the optimum, its bound below it, or the checker
rejects its solution: any flag is a bug. The exit status is the number of
flagged rows (0: none).

``--edits RATE``: with probability RATE a seed's instance also gets one or
two structural edits (:data:`EDITS`: no jobs, no job worth its power, no
inference, unreachable latency SLOs, one site for every job, a site cut
off from the grid, required jobs that collide, a carbon budget below the
least emissions), some of which make it infeasible. A row is then also
flagged where the method and the monolithic solve disagree on whether a
schedule exists (a method that proves infeasibility on an instance the
monolithic solve schedules, or the reverse).

    python scripts/random_sweep.py --seeds 2000:2040 --edits 1 --out edits.csv

``--size mid`` draws larger instances (6-12 sites, 48-96 periods, 15-40
jobs), where the Lagrangian's site relaxation, reduced-cost fixing and
search run rather than its exact endgame; with ``--mono-time-limit`` the
reference may stop short of optimal, and then its schedule and bound
bracket the methods' answers: a bound below its schedule's objective, or
an objective above its bound, is flagged.

    python scripts/random_sweep.py --seeds 3000:3006 --size mid --mono-time-limit 90 --out mid.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from carbonsched import SolveOptions, solve
from carbonsched.generate import GeneratorConfig, generate
from carbonsched.instance import parse_instance

FIELDS = ["seed", "edits", "sites", "periods", "jobs", "period_hours", "budget_basis", "committed_sites", "reference",
          "optimum", "mono_objective", "mono_bound", "method", "rc", "status", "objective", "bound", "below_optimum",
          "gap", "check", "flags"]


#: instance sizes ``--size`` draws from: (sites, regions, periods, jobs) ranges
SIZES = {"small": ((2, 5), (1, 3), [6, 8, 12, 24], (2, 10)),
         "mid": ((6, 12), (2, 4), [48, 72, 96], (15, 40))}


def draw_config(seed: int, size: str = "small") -> GeneratorConfig:
    """The generator settings of one seed (deterministic) at ``size``."""
    rnd = random.Random(seed)
    sites, regions, periods, jobs = SIZES[size]
    return GeneratorConfig(
        name=f"sweep-{seed}", sites=rnd.randint(*sites), regions=rnd.randint(*regions), periods=rnd.choice(periods),
        jobs=rnd.randint(*jobs), period_hours=rnd.choice([1.0, 1.0, 0.5, 2.0]), seed=seed,
        budget_basis=rnd.choice(["none", "optimum", "optimum", "estimate"]), budget_fraction=rnd.uniform(0.5, 0.98),
        battery_share=rnd.random(), generator_share=rnd.random(), committed_share=rnd.random(),
        required_share=rnd.choice([0.0, 0.1, 0.3]), inference_load_share=rnd.uniform(0.1, 0.6),
        job_load_share=rnd.uniform(0.2, 0.9), carbon_price=rnd.choice([0.0, 0.0, 30.0]))


def _no_jobs(d: dict, rnd: random.Random) -> None:
    d["training_jobs"] = []


def _worthless_jobs(d: dict, rnd: random.Random) -> None:
    for j in d["training_jobs"]:
        j.update(value=0.01, required=False)


def _no_inference(d: dict, rnd: random.Random) -> None:
    for r in d["regions"]:
        r["demand_mw"] = [0.0] * len(r["demand_mw"])


def _unreachable_slo(d: dict, rnd: random.Random) -> None:
    for r in d["regions"]:
        r["latency_slo_ms"] = 0.5


def _one_site_for_all_jobs(d: dict, rnd: random.Random) -> None:
    sid = rnd.choice(d["sites"])["id"]
    for j in d["training_jobs"]:
        j["sites"] = [sid]


def _site_off_grid(d: dict, rnd: random.Random) -> None:
    g = rnd.choice(d["sites"])["grid"]
    g.update(import_max_mw=0.0, export_max_mw=0.0)


def _required_jobs_collide(d: dict, rnd: random.Random) -> None:
    s = rnd.choice(d["sites"])
    free, H = s["it_capacity_mw"] - s["idle_it_mw"], d["periods"]
    dur = max(1, H // 3)
    for j in d["training_jobs"][:2]:
        j.update(power_mw=round(0.6 * free, 3), duration=dur, release=0, deadline=min(H, dur + 1), required=True,
                 sites=[s["id"]])


def _budget_below_least_emissions(d: dict, rnd: random.Random) -> None:
    from carbonsched.diagnose import least_emissions

    emin = least_emissions(parse_instance(d))[0]
    if emin is not None:
        d["carbon_budget_t"] = emin * rnd.uniform(0.9, 0.999)


def _negative_prices(d: dict, rnd: random.Random) -> None:
    shift = rnd.uniform(30.0, 90.0)  # $/MWh: a share of the periods below zero, as in markets with surplus wind
    for s in d["sites"]:
        s["grid"]["import_price"] = [p - shift for p in s["grid"]["import_price"]]
        s["grid"]["export_price"] = [p - shift - 10.0 for p in s["grid"]["export_price"]]


#: structural edits ``--edits`` draws from, each ``(instance dict, rng) -> None``
EDITS = {"no jobs": _no_jobs, "no job worth its power": _worthless_jobs, "no inference": _no_inference,
         "unreachable SLOs": _unreachable_slo, "one site for every job": _one_site_for_all_jobs,
         "a site off the grid": _site_off_grid, "required jobs collide": _required_jobs_collide,
         "budget below the least emissions": _budget_below_least_emissions, "negative grid prices": _negative_prices}


def draw_edits(seed: int, rate: float) -> list[str]:
    """The edits of one seed (deterministic): none, or with probability
    ``rate`` one or two of :data:`EDITS`."""
    rnd = random.Random(seed * 7919 + 1)
    if rnd.random() >= rate:
        return []
    return rnd.sample(sorted(EDITS), rnd.choice([1, 1, 2]))


def flags(optimum: float | None, objective: float | None, bound: float | None, check_rc: int, *,
          reference: str = "optimal", status: str | None = None, mono_objective: float | None = None,
          mono_bound: float | None = None) -> list[str]:
    """What is wrong with one method's answer against the reference
    ``optimum`` ($): an objective above it, a bound below it (each beyond
    1e-6 relative), or a solution the checker rejects; and, given the
    monolithic solve's status ``reference`` and the method's ``status``,
    a disagreement on whether a schedule exists (a method that stopped
    without a schedule, not by its time limit, where the monolithic solve
    found one, ``mono_objective``, included)."""
    out = [] if check_rc == 0 else ["check failed"]
    proven = ("infeasible", "budget_infeasible")
    if status in proven and reference not in proven:
        out.append(f"{status}, where the monolithic solve is {reference}")
    if reference in proven and objective is not None:
        out.append(f"a schedule, where the monolithic solve is {reference}")
    if status == "no_solution" and mono_objective is not None:  # stopped without a schedule, and not by its time
        out.append("no schedule, where the monolithic solve found one")
    if optimum is not None:
        tol = 1e-6 * max(1.0, abs(optimum))
        if objective is not None and objective > optimum + tol:
            out.append("objective above the optimum")
        if bound is not None and bound < optimum - tol:
            out.append("bound below the optimum")
    else:  # a monolithic run stopped by its limit: its schedule and bound still bracket every valid answer
        if mono_bound is not None and objective is not None and objective > mono_bound + 1e-6 * max(1.0, abs(mono_bound)):
            out.append("objective above the monolithic bound")
        if mono_objective is not None and bound is not None and bound < mono_objective - 1e-6 * max(
                1.0, abs(mono_objective)):
            out.append("bound below the monolithic schedule's objective")
    return out


def run_seed(seed: int, methods: list[str], *, ranks: int, time_limit: float, gap: float, mono_gap: float,
             out_dir: Path, edit_rate: float = 0.0, size: str = "small",
             mono_time_limit: float | None = None) -> list[dict]:
    """One seed's rows (one per method)."""
    cfg = draw_config(seed, size)
    data = generate(cfg)
    edits = draw_edits(seed, edit_rate)
    rnd = random.Random(seed)
    for e in edits:
        EDITS[e](data, rnd)
    path = out_dir / f"sweep-{seed}.json"
    path.write_text(json.dumps(data))
    inst = parse_instance(data)
    mono = solve(inst, "monolithic", SolveOptions(gap=mono_gap, threads=1, time_limit=mono_time_limit))
    optimum = mono.objective if mono.status == "optimal" else None
    base = {"seed": seed, "edits": "; ".join(edits),
            **{k: asdict(cfg)[k] for k in ("sites", "periods", "jobs", "period_hours", "budget_basis")},
            "committed_sites": int(inst.committed.sum()), "reference": mono.status, "optimum": optimum,
            "mono_objective": mono.objective, "mono_bound": mono.bound}
    rows = []
    for m in methods:
        sol = out_dir / f"sweep-{seed}.{m}.json"
        sol.unlink(missing_ok=True)
        cmd = ["mpiexec", "-n", str(ranks)] if ranks > 1 else []
        cmd += [sys.executable, "-m", "carbonsched", "solve", str(path), "--method", m, "--gap", str(gap),
                "--time-limit", str(time_limit), "--quiet", "--out", str(sol)]
        run = subprocess.run(cmd, capture_output=True, text=True)
        rc = run.returncode
        # what the run said, beside its solution: a flagged row (a run that wrote no schedule) is read from it
        sol.with_suffix(".log").write_text(run.stdout + run.stderr)
        row = {**base, "method": m, "rc": rc}
        if sol.exists():
            s = json.loads(sol.read_text())
            ck = subprocess.run([sys.executable, "-m", "carbonsched", "check", str(path), str(sol)],
                                capture_output=True, text=True).returncode
            obj, bnd = s.get("objective"), s.get("bound")
            row.update(status=s.get("status"), objective=obj, bound=bnd, check="ok" if ck == 0 else "failed",
                       gap=s.get("gap"),
                       below_optimum=None if optimum is None or obj is None else (optimum - obj) / max(1.0, abs(optimum)),
                       flags="; ".join(flags(optimum, obj, bnd, ck, reference=mono.status, status=s.get("status"),
                                             mono_objective=mono.objective, mono_bound=mono.bound)))
        else:
            row.update(status="no solution file", flags="no solution file")
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1000:1024", help="first:end (end excluded) (default 1000:1024)")
    ap.add_argument("--methods", default="lagrangian,benders", help="comma-separated (default lagrangian,benders)")
    ap.add_argument("--ranks", type=int, default=2, help="MPI ranks of each decomposition run (default 2)")
    ap.add_argument("--time-limit", type=float, default=60.0, help="each method's limit [s] (default 60)")
    ap.add_argument("--gap", type=float, default=1e-4, help="each method's gap (default 1e-4)")
    ap.add_argument("--mono-gap", type=float, default=1e-7, help="the reference solve's gap (default 1e-7)")
    ap.add_argument("--edits", type=float, default=0.0,
                    help="share of seeds (0-1) whose instance gets one or two structural edits (default 0)")
    ap.add_argument("--size", choices=sorted(SIZES), default="small",
                    help="instance sizes: small (2-5 sites, 6-24 periods, 2-10 jobs) or mid (6-12 sites, 48-96 "
                         "periods, 15-40 jobs; give --mono-time-limit) (default small)")
    ap.add_argument("--mono-time-limit", type=float, default=None,
                    help="the reference solve's limit [s] (default none); where it stops short of optimal, its "
                         "schedule and bound bracket the methods' answers instead of the optimum")
    ap.add_argument("--out", default="sweep.csv", help="CSV of the rows; instances and solutions beside it")
    a = ap.parse_args(argv)
    lo, hi = (int(v) for v in a.seeds.split(":"))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    bad = 0
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        for seed in range(lo, hi):
            for row in run_seed(seed, a.methods.split(","), ranks=a.ranks, time_limit=a.time_limit, gap=a.gap,
                                mono_gap=a.mono_gap, out_dir=out.parent, edit_rate=a.edits, size=a.size,
                                mono_time_limit=a.mono_time_limit):
                w.writerow(row)
                fh.flush()
                bad += bool(row.get("flags"))
                below = row.get("below_optimum")
                edited = f"[{row['edits']}] " if row["edits"] else ""
                print(f"seed {seed} {edited}S{row['sites']} H{row['periods']} J{row['jobs']} committed {row['committed_sites']} "
                      f"{row['method']:10s} {row['status']:16s} below optimum "
                      f"{'-' if below is None else f'{below:.1e}'} gap {row.get('gap') or 0:.1e} check "
                      f"{row.get('check', '-')} {row.get('flags') or ''}", flush=True)
    print(f"{bad} flagged row(s)")
    return min(bad, 125)


if __name__ == "__main__":
    raise SystemExit(main())
