"""Typed solve options, one frozen dataclass per method.

Each option is declared once, here, with its default, its unit and a
domain that is checked when the options object is made (the
``pyomo.contrib.solver.common.config`` idea, in plain dataclasses). The
CLI builds its flags from these declarations (:func:`add_option_arguments`),
so a default lives in one place only.

- :class:`SolveOptions`: every method (monolithic and the baselines use it
  as it is);
- :class:`DecompositionOptions`: what Benders and the Lagrangian method share;
- :class:`BendersOptions`, :class:`LagrangianOptions`: each method's own.

An unknown option, or one of another method, is an :class:`OptionError`
that names it.
"""

from __future__ import annotations

import argparse
import difflib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from .errors import OptionError

__all__ = ["BendersOptions", "DecompositionOptions", "LagrangianOptions", "SolveOptions", "add_option_arguments",
           "make_options"]


# --------------------------------------------------------------------------
# domains: callables value -> value (normalised) or ValueError with the reason
def _positive_float(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError(f"must be a number, got {v!r}")
    x = float(v)
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"must be a finite number > 0, got {v!r}")
    return x


def _nonneg_float(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError(f"must be a number, got {v!r}")
    x = float(v)
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"must be a finite number >= 0, got {v!r}")
    return x


def _unit_interval(v: Any) -> float:
    x = _positive_float(v)
    if x > 1:
        raise ValueError(f"must be in (0, 1], got {v!r}")
    return x


def _positive_int(v: Any) -> int:
    if isinstance(v, bool) or float(v) != int(v):
        raise ValueError(f"must be an integer, got {v!r}")
    if int(v) < 1:
        raise ValueError(f"must be >= 1, got {v!r}")
    return int(v)


def _nonneg_int(v: Any) -> int:
    if isinstance(v, bool) or float(v) != int(v) or int(v) < 0:
        raise ValueError(f"must be an integer >= 0, got {v!r}")
    return int(v)


def _boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, got {v!r}")
    return v


def _path(v: Any) -> Path:
    if not isinstance(v, (str, Path)) or not str(v):
        raise ValueError(f"must be a file path, got {v!r}")
    return Path(v)


def _one_of(*choices: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {v!r}")
        return str(v)

    check.choices = choices  # type: ignore[attr-defined]
    return check


def option(default: Any, doc: str, domain: Callable[[Any], Any], *, unit: str | None = None,
           optional: bool = False) -> Any:
    """Declare an option: its default, a one-line doc, its domain (a
    normalising check), its unit; ``optional``: ``None`` is allowed."""
    return field(default=default, metadata={"doc": doc, "domain": domain, "unit": unit, "optional": optional})


# --------------------------------------------------------------------------
@dataclass(frozen=True)
class SolveOptions:
    """Options every method takes."""

    time_limit: float | None = option(
        None, "wall-clock budget of the whole solve, from its start: build, calibration, recovery and diagnosis "
              "count; the best schedule and bound so far are returned (none: no limit)",
        _positive_float, unit="s", optional=True)
    gap: float = option(1e-4, "stop at this relative gap (bound - objective) / max(1, |objective|)", _nonneg_float)
    threads: int | None = option(None, "HiGHS threads (none: HiGHS decides)", _positive_int, optional=True)
    solver_log: bool = option(False, "show HiGHS's own log", _boolean)
    incumbent_file: Path | None = option(
        None, "write each new incumbent, with the bound proven by then, to this solution file as the run goes "
              "(status feasible, stats.in_progress true), and the run's final solution at its end, so that a run "
              "killed outright (SIGKILL, a batch system's walltime) leaves its best schedule on disk; "
              "solve --out FILE sets it to FILE (compute-only writes its MILP's schedules passively dispatched, "
              "without a bound; energy-only has one schedule, written at its end)", _path, optional=True)

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None and f.metadata.get("optional"):
                continue
            try:
                object.__setattr__(self, f.name, f.metadata["domain"](v))
            except (TypeError, ValueError) as e:
                raise OptionError(f"option {f.name}: {e}") from None


@dataclass(frozen=True)
class DecompositionOptions(SolveOptions):
    """Options Benders and the Lagrangian method share."""

    max_iterations: int | None = option(
        None, "stop after this many iterations (none: no cap; the gap and the time limit govern)",
        _positive_int, optional=True)
    checkpoint: Path | None = option(None, "save the run's state to this file every checkpoint_every seconds "
                                           "and at the end", _path, optional=True)
    checkpoint_every: float = option(30.0, "seconds between checkpoints", _positive_float, unit="s")
    resume: Path | None = option(None, "continue the run saved in this checkpoint file (same instance and "
                                       "method)", _path, optional=True)
    endgame_search: bool = option(
        True, "on more than one rank, while rank 0 solves the exact endgame's MILP, the other ranks search for "
              "schedules (a MILP over the triples its LP relaxation runs, committed units relaxed, then the "
              "commitment rounded) and the best schedule counts; the bound stays rank 0's (off: they wait, and the "
              "schedule does not depend on the number of ranks)", _boolean)
    recovery: str = option(
        "auto", "how recoveries route and dispatch a job choice: auto -- the keep LP over all sites (the dispatch "
                "model), and where it does not finish within 10% of the time left (at least 10 s), the pool's site "
                "problems from then on; pool -- always the pool's site problems, with no model over all sites "
                "(routing by the priced margins, a carbon price by bisection for the budget; worse schedules where "
                "the budget binds, for instances where the LP would not finish)", _one_of("auto", "pool"))


@dataclass(frozen=True)
class BendersOptions(DecompositionOptions):
    """Multi-cut Benders (see :mod:`carbonsched.decomposition.benders`)."""

    stabilize: str = option("inout", "LP phase: in-out (core point) stabilisation, or none",
                            _one_of("inout", "none"))
    inout_lambda: float = option(0.5, "in-out: weight of the master point in the separation point",
                                 _unit_interval)
    lp_iterations: int = option(100, "most iterations of the LP phase before the integer phase", _positive_int)
    heuristic: bool = option(True, "incumbents from repairing the LP master's job choice", _boolean)
    refine: bool = option(
        True, "integer phase: at each master schedule that gets a new cut, fix its job binaries and iterate the "
              "master LP (routing, loads, allocations) with the sites' cuts until none is violated: cheap cuts "
              "around that schedule, and its best routing as an incumbent", _boolean)
    seed_lagrangian: int = option(
        1000, "cross-decomposition: first run at most this many Lagrangian (bundle) iterations on the pool; "
              "every site problem solved at prices gives the master a valid optimality cut, and their repaired "
              "job choices give incumbents. The seed ends sooner where its bound and incumbent stall (moved less "
              "than 10% of the gap over 50 iterations), where the master LP turns out cheap (at iteration 30 it "
              "solves within 10 seed iterations' time) or, with a time limit, at a quarter of it (0: off, plain "
              "Benders from an empty master; on medium in 300 s: 67% gap plain, 1.8% seeded)", _nonneg_int)
    exact_endgame: bool = option(
        True, "at the end of the LP phase, where reduced-cost fixing on the master LP leaves at most 10,000 job "
              "triples free, solve the MILP over those triples (the full model, started from the incumbent, "
              "whose bound is global) with all the time left instead of the integer phase (without a time "
              "limit: to the gap asked); the integer phase follows only if time is left and the gap is open; "
              "needs the heuristic", _boolean)


def _share(v: Any) -> float:
    v = _positive_float(v)
    if v > 1.0:
        raise ValueError("must be in (0, 1]")
    return v


@dataclass(frozen=True)
class LagrangianOptions(DecompositionOptions):
    """Lagrangian relaxation (see :mod:`carbonsched.decomposition.lagrangian`)."""

    dual_update: str = option("bundle", "dual update: box-step bundle or Polyak subgradient",
                              _one_of("bundle", "subgradient"))
    keep_capacity: bool = option(False, "keep IT capacity in the compute problem (a MILP) instead of pricing it",
                                 _boolean)
    recover_every: int = option(5, "primal recovery every this many iterations (and in each of the first 10)",
                                _positive_int)
    recovery_share: float = option(0.6, "with a time limit, a due recovery is skipped while recoveries have taken "
                                   "more than this share of the run's time so far (the dual steps get the rest); "
                                   "the share falls as share / (1 + misses / 2) with each recovery in a row that "
                                   "did not beat the incumbent; without a time limit every due recovery runs, so "
                                   "the run does not depend on the machine's speed", _share)
    polish: bool = option(True, "finish with restricted MILPs: over time windows, where jobs may change site, "
                          "then over the undecided jobs", _boolean)
    early_endgame: bool = option(
        True, "where reduced-cost fixing leaves at most 10,000 triples free, end the dual iterations once the "
              "bound and incumbent move less than 10% of the gap over 20 iterations and a recovery misses, "
              "and run the polish's exact endgame "
              "before the site search and relaxation (a MILP over those triples, started from the incumbent, "
              "whose bound is global; the stages after it run only if it did not close the gap), with all the "
              "time left (without a time limit: to the gap asked; after an iteration cap: within polish_time)",
        _boolean)
    endgame_race: bool = option(
        False, "on more than one rank, every rank solves the exact endgame's MILP with its own HiGHS seed (rank r: "
               "seed r), the first to finish stops the others, and the best schedule and the smallest bound count "
               "(off: rank 0 alone, beside the others' endgame_search)", _boolean)
    polish_time: float = option(30.0, "most seconds for the final polish (at most 15% of a time limit), plus "
                                "what the stage before it leaves (the site relaxation, or the site search); "
                                "the dual iterations take it (and the site search's) while they close the gap "
                                "faster than those stages would",
                                _positive_float, unit="s")
    site_bound: bool = option(
        True, "after the site search, before the polish, bound with the site relaxation (Dantzig-Wolfe by "
              "site: job assignment, demand and budget priced, each site's jobs, capacity and microgrid a MILP on "
              "the pool), which can go below the LP relaxation bound", _boolean)
    site_bound_time: float = option(30.0, "seconds for the site relaxation: without a time limit, its most; with "
                                    "one, what the dual iterations leave for it (at most 20% of the limit), and it "
                                    "then also takes what the site search leaves and the polish does not need",
                                    _positive_float, unit="s")
    site_gap: float = option(1e-5, "relative gap each site MILP of the site relaxation is solved to (its own "
                                   "bound counts, so a looser gap only weakens the bound)", _share)
    site_search: bool = option(
        True, "after the dual iterations, search for a better schedule on the site blocks: each job may move to any "
              "start at its own site, each site's routing and emissions capped at the incumbent's (plus a share "
              "of the budget's slack); the site MILPs run on the pool, rounds repeat while they gain", _boolean)
    site_search_time: float = option(30.0, "seconds for the site search (at most 15% of a time limit; the "
                                           "dual iterations take it while they close the gap faster); where "
                                           "they end early (stalled, converged), it also gets half the time "
                                           "they leave beyond the stages' reserves (all of it without the site "
                                           "relaxation)",
                                     _positive_float, unit="s")


OptionsT = TypeVar("OptionsT", bound=SolveOptions)


def make_options(cls: type[OptionsT], base: SolveOptions | None = None, /, **kwargs: Any) -> OptionsT:
    """Options of class ``cls`` from ``base`` (of ``cls``, or of one of its
    bases: its shared fields carry over) and keyword overrides. Unknown
    keywords, and a ``base`` of an unrelated method, raise :class:`OptionError`."""
    names = [f.name for f in fields(cls)]
    unknown = [k for k in kwargs if k not in names]
    if unknown:
        k = unknown[0]
        hint = difflib.get_close_matches(k, names, n=1)
        raise OptionError(f"unknown option {k!r} for {cls.__name__}" + (f"; did you mean {hint[0]!r}?" if hint else
                          f"; known: {', '.join(names)}"))
    if base is None:
        return cls(**kwargs)
    if isinstance(base, cls):
        return replace(base, **kwargs) if kwargs else base
    if not isinstance(base, SolveOptions) or not issubclass(cls, type(base)):
        raise OptionError(f"{type(base).__name__} cannot configure a method that takes {cls.__name__}")
    shared = {f.name: getattr(base, f.name) for f in fields(base)}
    return cls(**{**shared, **kwargs})


# --------------------------------------------------------------------------
# the CLI's view of the declarations
def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_option_arguments(parser: argparse.ArgumentParser, groups: Iterable[tuple[str, type[SolveOptions]]],
                         *, skip: Iterable[str] = ()) -> None:
    """Add one flag per option to ``parser``: each group names a class, and
    lists only the options its parent groups did not already list. Flags
    default to ``argparse.SUPPRESS`` so that only what the user gave
    reaches the options object (the dataclass keeps the default)."""
    seen: set[str] = set(skip)
    for title, cls in groups:
        g = parser.add_argument_group(title)
        for f in fields(cls):
            if f.name in seen:
                continue
            seen.add(f.name)
            dom = f.metadata["domain"]
            unit = f" [{f.metadata['unit']}]" if f.metadata.get("unit") else ""
            default = "none" if f.default is None else f.default
            helptext = f"{f.metadata['doc']}{unit} (default {default})".replace("%", "%%")  # argparse formats help
            if dom is _boolean:
                if f.default is True:
                    g.add_argument(_flag("no_" + f.name), dest=f.name, action="store_false", default=argparse.SUPPRESS,
                                   help=f"turn off: {f.metadata['doc']}".replace("%", "%%"))
                else:
                    g.add_argument(_flag(f.name), dest=f.name, action="store_true", default=argparse.SUPPRESS,
                                   help=helptext)
                continue
            choices = getattr(dom, "choices", None)
            metavar = None if choices else f.name.split("_")[-1].upper()
            g.add_argument(_flag(f.name), dest=f.name, default=argparse.SUPPRESS, choices=choices, metavar=metavar,
                           type=_cli_type(dom), help=helptext)


def _cli_type(dom: Callable[[Any], Any]) -> Callable[[str], Any]:
    """argparse type: the string parsed as the option's kind of number (the
    domain itself is checked when the options object is made, in one place)."""
    if dom in (_positive_int, _nonneg_int):
        return lambda s: _int_text(s)
    if dom in (_positive_float, _nonneg_float, _unit_interval):
        return float
    return str


def _int_text(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {s!r}") from None


