"""Command line: ``carbonsched solve | check | generate | info | study``.

Run ``carbonsched COMMAND --help`` for each command's options. Under
``mpiexec -n K carbonsched solve ...`` all ranks take part in a
decomposition: rank 0 reads and validates the instance and sends it to the
others, prints, and writes files.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from . import interrupts, logs
from .clock import Clock, process_start
from .config import BendersOptions, DecompositionOptions, LagrangianOptions, SolveOptions, add_option_arguments
from .constants import ExitCode, SolutionStatus, exit_code
from .errors import CarbonschedError, InstanceError, OptionError
from .methods import METHODS
from .result import Result

__all__ = ["build_parser", "main"]

EXIT_HELP = "exit status: " + "; ".join(f"{int(c)} {c.name.lower().replace('_', ' ')}: {_doc}" for c, _doc in (
    (ExitCode.OK, "optimal within --gap"),
    (ExitCode.FEASIBLE, "a schedule, gap above --gap (time or iteration limit, stall)"),
    (ExitCode.BAD_INPUT, "bad instance, option or output path"),
    (ExitCode.INFEASIBLE, "proven infeasible or budget-infeasible, with a diagnosis"),
    (ExitCode.NO_SCHEDULE, "stopped before any schedule was found"),
    (ExitCode.CHECK_FAILED, "the checker rejected the solution"),
    (ExitCode.INTERRUPTED, "SIGINT/SIGTERM: best schedule and bound written"),
))

OPTION_GROUPS = (("solver options (every method)", SolveOptions),
                 ("decomposition options (benders, lagrangian)", DecompositionOptions),
                 ("Benders options", BendersOptions),
                 ("Lagrangian options", LagrangianOptions))


def _comm():
    try:
        from mpi4py import MPI

        return MPI.COMM_WORLD
    except Exception:  # pragma: no cover - mpi4py is a dependency
        return None


def _rank_size() -> tuple[int, int]:
    comm = _comm()
    return (comm.Get_rank(), comm.Get_size()) if comm is not None else (0, 1)


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
                    "The model and the instance/solution formats are those of MODEL.md.",
        epilog="solve " + EXIT_HELP)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    methods = "; ".join(f"{m.name}: {m.summary}" for m in METHODS.values())
    p = sub.add_parser("solve", help="solve an instance and print a summary",
                       description="Solve an instance (default: the shipped paper-default) and print the objective "
                                   "and its breakdown, emissions vs budget, the schedule, bound, gap and timings. "
                                   "Ctrl-C (SIGINT) or SIGTERM stops at the next safe point and still writes the "
                                   "best schedule and bound.", epilog=EXIT_HELP)
    p.add_argument("instance", nargs="?", default=None,
                   help="instance file, or the name of a shipped one (default: paper-default)")
    p.add_argument("--method", default="monolithic", choices=list(METHODS), metavar="METHOD",
                   help=f"{methods} (default monolithic)")
    p.add_argument("--out", type=Path, default=None, metavar="SOL.json",
                   help="write the solution file here (checked before the solve; written atomically); the "
                        "monolithic solve and the decompositions also keep their best schedule so far in it as "
                        "they go (see --incumbent-file), so that a run killed outright leaves it on disk")
    p.add_argument("--plots", type=Path, default=None, metavar="DIR", help="write figures (PNG) into DIR")
    p.add_argument("--quiet", action="store_true", help="no progress log, only the summary")
    add_option_arguments(p, OPTION_GROUPS)
    _add_ablations(p)

    p = sub.add_parser("check", help="check a solution file against an instance",
                       description="Recompute every constraint, the objective and the emissions of a solution "
                                   "file without building any model.",
                       epilog=f"exit status: 0 the solution passes; {int(ExitCode.BAD_INPUT)} unreadable input; "
                              f"{int(ExitCode.CHECK_FAILED)} a violation")
    p.add_argument("instance")
    p.add_argument("solution")

    p = sub.add_parser("generate", help="generate an instance (synthetic, or from real data with --real)",
                       description="Seeded synthetic instance on a world map. Start from a family (sizes and "
                                   "seed) and override any size. With --real, the sites sit in five European "
                                   "bidding zones (DE, FR, NL, CH, CZ) with real 2018 day-ahead prices, the carbon "
                                   "intensity of each zone's generation mix, and PV and PUE from weather through "
                                   "pvlib (pip install 'carbonsched[data]'); docs/generator.md says what comes "
                                   "from where.")
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
    p.add_argument("--real", action="store_true",
                   help="real prices, carbon intensity and weather (needs the [data] extra)")
    p.add_argument("--start", metavar="DATE",
                   help="with --real: first hour of the horizon, UTC (default 2018-07-09); the horizon must lie in "
                        "one shipped 14-day window starting 2018-01-08, 2018-04-09, 2018-07-09 or 2018-10-08")
    p.add_argument("--out", type=Path, required=True, metavar="FILE")

    p = sub.add_parser("info", help="print an instance's sizes",
                       description="Sites, periods, jobs and the monolithic model's binaries, variables and "
                                   "constraints (counted without building it).")
    p.add_argument("instance", nargs="?", default=None)

    p = sub.add_parser("study", help="the paper's study: joint vs baselines and ablations",
                       description="Run joint, compute-only, energy-only and the ablations on one instance; print "
                                   "one table and write it as CSV and Markdown.")
    p.add_argument("instance", nargs="?", default=None)
    p.add_argument("--method", default="monolithic", choices=list(METHODS), metavar="METHOD",
                   help="method for the joint runs (default monolithic)")
    p.add_argument("--out-dir", type=Path, default=Path("study-out"), metavar="DIR",
                   help="where the table (CSV, Markdown) goes (default ./study-out)")
    p.add_argument("--plots", type=Path, default=None, metavar="DIR", help="write figures (PNG) into DIR")
    p.add_argument("--renewable-scales", default="0,0.5,1,1.5,2", metavar="K,K,...",
                   help="renewable-scale sweep (default 0,0.5,1,1.5,2)")
    p.add_argument("--quiet", action="store_true", help="no progress log")
    add_option_arguments(p, OPTION_GROUPS[:1])
    return ap


def _given_options(args: argparse.Namespace) -> dict:
    """The solver options the user gave (flags default to SUPPRESS, so the
    options classes keep their defaults)."""
    from dataclasses import fields

    names = {f.name for _, cls in OPTION_GROUPS for f in fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names}


def apply_ablations(inst, args):
    from .ablations import ablate

    return ablate(inst, no_battery=args.no_battery, no_routing=args.no_routing, no_carbon=args.no_carbon,
                  renewable_scale=args.renewable_scale)


def _prepare(args: argparse.Namespace):
    """(instance after ablations, method, options) for ``solve``: bad
    options fail before the instance is read, the output path before any work."""
    from .config import make_options
    from .instance import load_instance
    from .solution import check_writable

    options = make_options(METHODS[args.method].options, **_given_options(args))
    if args.out is not None:
        check_writable(args.out)
        if options.incumbent_file is None:
            options = replace(options, incumbent_file=args.out)  # the best schedule so far is on disk from the first
    if options.incumbent_file is not None:
        check_writable(options.incumbent_file)
    return apply_ablations(load_instance(args.instance), args), args.method, options


def _on_rank0_then_everywhere(fn, comm):
    """Run ``fn`` on rank 0 and send its result (or its error) to every
    rank, so that the ranks never disagree on the instance, the method or
    the options: a worker's own command line is not read."""
    if comm is None or comm.Get_size() == 1:
        return fn()
    out, err = None, None
    if comm.Get_rank() == 0:
        try:
            out = fn()
        except CarbonschedError as e:
            err = e
    out, err = comm.bcast((out, err), root=0)
    if err is not None:
        raise err if comm.Get_rank() == 0 else _Quiet(int(ExitCode.BAD_INPUT))
    return out


class _Quiet(Exception):
    """A worker rank ends with this exit code; rank 0 already said why."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def cmd_solve(args, clock: Clock) -> int:
    from .methods import solve
    from .report import format_result
    from .solution import write_solution_or_fallback

    comm = _comm()
    inst, method, options = _on_rank0_then_everywhere(lambda: _prepare(args), comm)
    with interrupts.handling_signals():
        res = solve(inst, method, options, comm=comm, clock=clock)
    if not isinstance(res, Result):  # a worker rank: rank 0 reports
        return 0
    written = None
    if args.out is not None:  # the method wrote it already where --out set its incumbent file and the write held
        same = res.written_to is not None and Path(res.written_to) == Path(args.out)
        written = Path(args.out) if same else write_solution_or_fallback(res.solution, inst, args.out)
    _print(format_result(inst, res))
    if written is not None:
        _print(f"\nsolution written to {written}" + ("" if written == args.out else
                                                     f" (could not write {args.out}: see the error above)"))
    if args.plots and res.breakdown is not None:
        from .plots import plot_solution

        files = plot_solution(inst, res.solution, args.plots)
        _print(f"figures written to {args.plots}: {', '.join(f.name for f in files)}")
    # a schedule reported budget_infeasible (a baseline's fixed load) that breaks the budget and nothing else says
    # what its status says: exit 3, not the checker's 5 (which means a bug)
    check_ok = None if res.check is None else (
        res.check.ok or (res.status == SolutionStatus.BUDGET_INFEASIBLE and res.check.only_budget))
    code = exit_code(res.status, res.breakdown is not None, check_ok)
    if written is not None and written != args.out:
        code = ExitCode.BAD_INPUT
    _print(f"exit status {int(code)} ({code.name.lower()})")
    return int(code)


def cmd_check(args, clock: Clock) -> int:
    from .check import check_solution
    from .instance import load_instance
    from .solution import read_solution

    inst = load_instance(args.instance)
    sol = read_solution(args.solution, inst)
    rep = check_solution(inst, sol)
    _print(str(rep))
    return int(ExitCode.OK if rep.ok else ExitCode.CHECK_FAILED)


def cmd_generate(args, clock: Clock) -> int:
    from .generate import family_config, generate
    from .instance import parse_instance
    from .solution import atomic_write_text, check_writable

    check_writable(args.out)
    cfg = family_config(args.family, sites=args.sites, regions=args.regions, periods=args.periods, jobs=args.jobs,
                        period_hours=args.period_hours, seed=args.seed, name=args.name,
                        budget_fraction=args.budget_fraction, budget_basis=args.budget_basis,
                        real=True if args.real else None, start=args.start)
    if args.start is not None and not args.real:
        raise OptionError("--start applies only with --real")
    if args.name is None and (args.real or any(v is not None for v in (args.sites, args.periods, args.jobs,
                                                                        args.seed))):
        cfg = replace(cfg, name=f"{'real-' if args.real else ''}{args.family}-s{cfg.sites}-h{cfg.periods}"
                                f"-j{cfg.jobs}-seed{cfg.seed}")
    d = generate(cfg)
    parse_instance(d, source="generated")  # never write a file we would refuse
    atomic_write_text(args.out, json.dumps(d, indent=1))
    _print(f"wrote {args.out}: {cfg.sites} sites, {cfg.periods} periods, {cfg.jobs} jobs, {cfg.regions} regions, "
           f"budget {d['carbon_budget_t']} t")
    return 0


def cmd_info(args, clock: Clock) -> int:
    from .instance import load_instance
    from .model import model_size
    from .report import format_info

    inst = load_instance(args.instance)
    _print(format_info(inst, model_size(inst)))
    return 0


def cmd_study(args, clock: Clock) -> int:
    from .instance import load_instance
    from .study import run_study

    inst = load_instance(args.instance)
    try:
        scales = [float(x) for x in args.renewable_scales.split(",") if x.strip()]
    except ValueError:
        raise InstanceError([f"--renewable-scales: not a comma-separated list of numbers: "
                             f"{args.renewable_scales!r}"]) from None
    from .config import make_options

    opts = make_options(SolveOptions, **_given_options(args))
    with interrupts.handling_signals():
        run_study(inst, method=args.method, opts=opts, out_dir=args.out_dir, plots=args.plots,
                  renewable_scales=scales, echo=_rank_size()[0] == 0)
    return 0


def _print(text: str) -> None:
    """Print to stdout; a closed pipe (``| head``) costs nothing."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        _silence_stdout()


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    clock_start = process_start()  # a time limit counts from the command's start: imports and reading count too
    for stream in (sys.stdout, sys.stderr):  # an unprintable name (a lone surrogate) must not crash the output
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    rank, size = _rank_size()
    handler = logs.configure(logging.WARNING if getattr(args, "quiet", False) or rank != 0 else logging.INFO,
                             rank=rank, size=size)
    try:
        clock = Clock(getattr(args, "time_limit", None), start=clock_start)
        return {"solve": cmd_solve, "check": cmd_check, "generate": cmd_generate, "info": cmd_info,
                "study": cmd_study}[args.cmd](args, clock)
    except _Quiet as q:
        return q.code
    except CarbonschedError as e:
        prefix = f"[rank {rank}] " if size > 1 else ""
        print(f"{prefix}carbonsched: error: {e}", file=sys.stderr, flush=True)
        return int(ExitCode.BAD_INPUT)
    except BrokenPipeError:
        _silence_stdout()
        return 0
    finally:
        logs.unconfigure(handler)


def run() -> None:
    """The console script (and ``python -m carbonsched``): :func:`main`,
    then the process ends without the interpreter's teardown. The output is
    flushed, the exit handlers run (logging's) and MPI is finalized first;
    on several ranks, every rank exits with the run's code.
    Why: freeing a run's models at interpreter exit (Pyomo's object graphs
    are collected one by one) took 4 s on `large` after a 2-rank, 300-s run
    that had built the site relaxation's blocks, all of it past the time
    limit (304.1 s of wall clock for --time-limit 300)."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    mpi = sys.modules.get("mpi4py.MPI")
    running = mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized()
    if running and mpi.COMM_WORLD.Get_size() > 1:
        # every rank ends with the run's code (a worker's own is 0): mpiexec reports one of them, and which one
        # depends on the order they end in (after a SIGTERM, 0 in 2 runs of 3 without this)
        code = mpi.COMM_WORLD.allreduce(code, op=mpi.MAX)
    atexit._run_exitfuncs()
    if running:
        mpi.Finalize()  # mpi4py finalizes from a C exit hook, which os._exit skips
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
