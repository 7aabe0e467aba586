"""Command line: ``carbonsched solve | check | generate | info | study``.

Run ``carbonsched COMMAND --help`` for each command's options. Exit codes
of ``solve``: 0 a solution (optimal, feasible or time limit), 2 an error or
an infeasible instance (with its diagnosis), 3 a solution the checker
rejects (a bug: please report it). Under
``mpiexec -n K carbonsched solve ...`` all ranks take part in a
decomposition; rank 0 prints and writes files.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from .errors import CarbonschedError

__all__ = ["main"]

METHOD_HELP = ("monolithic (the reference MILP), benders, lagrangian, energy-only, compute-only")


def _rank() -> int:
    try:
        from mpi4py import MPI

        return MPI.COMM_WORLD.Get_rank()
    except Exception:  # pragma: no cover - mpi4py is a dependency
        return 0


def _add_solver_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help="wall-clock limit in seconds; the best solution and bound so far are returned")
    p.add_argument("--gap", type=float, default=1e-4, metavar="G",
                   help="stop at this relative gap (bound - objective) / max(1, |objective|) (default 1e-4)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="HiGHS threads (default: HiGHS decides)")
    p.add_argument("--max-iterations", type=int, default=200, metavar="K",
                   help="iteration limit for the decompositions (default 200)")
    p.add_argument("--solver-log", action="store_true", help="show the HiGHS log")
    p.add_argument("--quiet", action="store_true", help="no per-iteration log")


def _add_ablations(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("ablations (applied to the instance before solving)")
    g.add_argument("--no-battery", action="store_true", help="remove every battery")
    g.add_argument("--no-routing", action="store_true",
                   help="serve each region only at its lowest-latency reachable site")
    g.add_argument("--no-carbon", action="store_true", help="drop the carbon budget")
    g.add_argument("--renewable-scale", type=float, default=None, metavar="K",
                   help="multiply every site's available renewable power by K")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="carbonsched",
        description="Carbon-aware compute-power scheduling of geo-distributed AI data centres with microgrids. "
                    "The model and the instance/solution formats are those of MODEL.md.")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    p = sub.add_parser("solve", help="solve an instance and print a summary",
                       description="Solve an instance (default: the shipped paper-default) and print the objective "
                                   "and its breakdown, emissions vs budget, the schedule, bound, gap and timings.")
    p.add_argument("instance", nargs="?", default=None,
                   help="instance file, or the name of a shipped one (default: paper-default)")
    p.add_argument("--method", default="monolithic", help=f"one of: {METHOD_HELP} (default monolithic)")
    p.add_argument("--out", type=Path, default=None, metavar="SOL.json", help="write the solution file here")
    p.add_argument("--plots", type=Path, default=None, metavar="DIR", help="write figures (PNG) into DIR")
    p.add_argument("--stabilize", choices=["none", "inout"], default=None,
                   help="Benders: in-out (core point) stabilisation (default inout)")
    p.add_argument("--dual-update", choices=["bundle", "subgradient"], default=None,
                   help="Lagrangian: dual update (default bundle)")
    p.add_argument("--keep-capacity", action="store_true",
                   help="Lagrangian: keep IT capacity in the compute problem (a MILP) instead of pricing it")
    p.add_argument("--no-heuristic", action="store_true",
                   help="Benders: no incumbents from repairing the LP master's job choice")
    p.add_argument("--no-polish", action="store_true",
                   help="Lagrangian: skip the final restricted-MILP polish")
    _add_solver_options(p)
    _add_ablations(p)

    p = sub.add_parser("check", help="check a solution file against an instance",
                       description="Recompute every constraint, the objective and the emissions of a solution "
                                   "file without building any model; exit 1 on a violation.")
    p.add_argument("instance")
    p.add_argument("solution")

    p = sub.add_parser("generate", help="generate a synthetic instance",
                       description="Seeded synthetic instance on a world map. Start from a family (sizes and "
                                   "seed) and override any size.")
    from .generate import FAMILIES

    p.add_argument("--family", default="small", choices=list(FAMILIES),
                   help="preset sizes (default small): " + "; ".join(
                       f"{k}: {c.sites} sites x {c.periods} periods, {c.jobs} jobs" for k, c in FAMILIES.items()))
    p.add_argument("--sites", type=int)
    p.add_argument("--regions", type=int)
    p.add_argument("--periods", type=int)
    p.add_argument("--jobs", type=int)
    p.add_argument("--period-hours", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--name")
    p.add_argument("--budget-fraction", type=float, help="budget = this fraction of the basis' emissions")
    p.add_argument("--budget-basis", choices=["estimate", "optimum", "none"],
                   help="estimate: expected load from the grid at mean intensity; optimum: the unconstrained "
                        "joint optimum (solved); none: no budget")
    p.add_argument("--out", type=Path, required=True, metavar="FILE")

    p = sub.add_parser("info", help="print an instance's sizes",
                       description="Sites, periods, jobs and the monolithic model's binaries, variables and "
                                   "constraints (counted without building it).")
    p.add_argument("instance", nargs="?", default=None)

    p = sub.add_parser("study", help="the paper's study: joint vs baselines and ablations",
                       description="Run joint, compute-only, energy-only and the ablations on one instance; print "
                                   "one table and write it as CSV and Markdown.")
    p.add_argument("instance", nargs="?", default=None)
    p.add_argument("--method", default="monolithic", help="method for the joint runs (default monolithic)")
    p.add_argument("--out-dir", type=Path, default=Path("study-out"), metavar="DIR",
                   help="where the table (CSV, Markdown) goes (default ./study-out)")
    p.add_argument("--plots", type=Path, default=None, metavar="DIR", help="write figures (PNG) into DIR")
    p.add_argument("--renewable-scales", default="0,0.5,1,1.5,2", metavar="K,K,...",
                   help="renewable-scale sweep (default 0,0.5,1,1.5,2)")
    _add_solver_options(p)
    return ap


def apply_ablations(inst, args):
    from .ablations import ablate

    return ablate(inst, no_battery=args.no_battery, no_routing=args.no_routing, no_carbon=args.no_carbon,
                  renewable_scale=args.renewable_scale)


def _solve_options(args):
    from .solve import SolveOptions

    extra = []
    for key in ("stabilize", "dual_update"):
        v = getattr(args, key, None)
        if v is not None:
            extra.append((key, v))
    if getattr(args, "keep_capacity", False):
        extra.append(("keep_capacity", True))
    if getattr(args, "no_heuristic", False):
        extra.append(("heuristic", False))
    if getattr(args, "no_polish", False):
        extra.append(("polish", False))
    return SolveOptions(time_limit=args.time_limit, gap=args.gap, threads=args.threads, log=args.solver_log,
                        max_iterations=args.max_iterations, verbose=not args.quiet, extra=tuple(extra))


def cmd_solve(args) -> int:
    from .instance import load_instance
    from .report import format_result
    from .solution import write_solution
    from .solve import solve

    inst = apply_ablations(load_instance(args.instance), args)
    res = solve(inst, args.method, _solve_options(args))
    if _rank() != 0:
        return 0
    print(format_result(inst, res))
    if args.out:
        write_solution(res.solution, inst, args.out)
        print(f"\nsolution written to {args.out}")
    if args.plots:
        from .plots import plot_solution

        files = plot_solution(inst, res.solution, args.plots)
        print(f"figures written to {args.plots}: {', '.join(f.name for f in files)}")
    if res.status not in ("optimal", "feasible", "time_limit"):
        return 2  # infeasible / budget_infeasible: diagnosed above
    return 3 if (res.check is not None and not res.check.ok) else 0


def cmd_check(args) -> int:
    from .check import check_solution
    from .instance import load_instance
    from .solution import read_solution

    inst = load_instance(args.instance)
    sol = read_solution(args.solution, inst)
    rep = check_solution(inst, sol)
    print(rep)
    return 0 if rep.ok else 1


def cmd_generate(args) -> int:
    from .generate import family_config, generate
    from .instance import parse_instance

    cfg = family_config(args.family, sites=args.sites, regions=args.regions, periods=args.periods, jobs=args.jobs,
                        period_hours=args.period_hours, seed=args.seed, name=args.name,
                        budget_fraction=args.budget_fraction, budget_basis=args.budget_basis)
    if args.name is None and any(v is not None for v in (args.sites, args.periods, args.jobs, args.seed)):
        cfg = replace(cfg, name=f"{args.family}-s{cfg.sites}-h{cfg.periods}-j{cfg.jobs}-seed{cfg.seed}")
    d = generate(cfg)
    parse_instance(d, source="generated")  # never write a file we would refuse
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(d, fh, indent=1)
    print(f"wrote {args.out}: {cfg.sites} sites, {cfg.periods} periods, {cfg.jobs} jobs, {cfg.regions} regions, "
          f"budget {d['carbon_budget_t']} t")
    return 0


def cmd_info(args) -> int:
    from .instance import load_instance
    from .model import model_size
    from .report import format_info

    inst = load_instance(args.instance)
    print(format_info(inst, model_size(inst)))
    return 0


def cmd_study(args) -> int:
    from .instance import load_instance
    from .study import run_study

    inst = load_instance(args.instance)
    scales = [float(x) for x in args.renewable_scales.split(",") if x.strip()]
    run_study(inst, method=args.method, opts=_solve_options(args), out_dir=args.out_dir, plots=args.plots,
              renewable_scales=scales, echo=_rank() == 0)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"solve": cmd_solve, "check": cmd_check, "generate": cmd_generate, "info": cmd_info,
                "study": cmd_study}[args.cmd](args)
    except (CarbonschedError, FileNotFoundError, ValueError) as e:
        print(f"carbonsched: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
