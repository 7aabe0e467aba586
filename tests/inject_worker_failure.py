"""Run the CLI on an MPI worker rank whose site solves fail after a few
calls (tests/test_reliability.py): ``python inject_worker_failure.py KIND
solve ...`` with KIND ``bug`` (a RuntimeError: a traceback is expected) or
``solver`` (a SolverError: a one-line message is expected)."""

import sys

from carbonsched.cli import main
from carbonsched.decomposition import subproblem
from carbonsched.errors import SolverError

kind = sys.argv[1]
calls = {"n": 0}
original = subproblem.SiteSubproblem.price


def failing_price(self, pi, mu):
    calls["n"] += 1
    if calls["n"] > 5:
        if kind == "bug":
            raise RuntimeError("injected worker bug")
        raise SolverError("injected: site subproblem ended Solve error")
    return original(self, pi, mu)


subproblem.SiteSubproblem.price = failing_price
sys.exit(main(sys.argv[2:]))
