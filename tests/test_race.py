"""The exact endgame raced across ranks (``--endgame-race``): the pure
rules that combine the ranks' outcomes, and a 2-rank run against the
monolithic optimum."""

import json

import pytest

from carbonsched.check import check_solution
from carbonsched.decomposition.race import RaceEntry, best_rank, race_bound
from carbonsched.solution import read_solution

from cases import generated_budget_binding_reference
from mpi_util import run_cli_mpi


def test_the_best_schedule_and_the_smallest_bound_count():
    """The race keeps the best rank's schedule (the lowest rank on a tie)
    and the smallest finite bound of any rank, whichever rank it comes
    from; a rank with neither counts for nothing."""
    entries = [RaceEntry(100.0, 130.0, 1.0), RaceEntry(110.0, 125.0, 1.0), RaceEntry(None, None, 0.5),
               RaceEntry(110.0, float("inf"), 2.0)]
    assert best_rank(entries) == 1
    assert race_bound(entries) == 125.0
    assert best_rank([RaceEntry(None, 120.0, 1.0)]) == -1
    assert race_bound([RaceEntry(None, None, 1.0)]) is None
    assert race_bound([RaceEntry(90.0, None, 1.0), RaceEntry(None, 140.0, 1.0)]) == 140.0


@pytest.mark.mpi
def test_the_endgame_race_solves_the_exact_endgame_on_every_rank(tmp_path):
    """On 2 ranks with ``--endgame-race``, the generated four-day instance
    whose dual iterations hand over to the exact endgame: both ranks solve
    its MILP and end with a schedule; the run certifies the gap asked, its
    bound at or above the monolithic schedule (solved to 1e-6) and its
    objective at or below the monolithic bound, and the checker passes."""
    inst, mono = generated_budget_binding_reference(4, 12, 96)
    p = tmp_path / "inst.json"
    p.write_text(json.dumps(inst.to_dict()))
    d = run_cli_mpi(2, [str(p), "--method", "lagrangian", "--gap", "1e-4", "--endgame-race"], tmp_path / "sol.json")
    st = d["stats"]
    tol = 1e-6 * abs(mono.objective)
    assert st["ranks"] == 2 and st["endgame_handover_at"] == st["iterations"]
    assert st["endgame_race_schedules"] == 2 and st["endgame_race_winner"] in (0, 1)
    assert check_solution(inst, read_solution(d, inst)).ok
    assert d["bound"] >= mono.objective - tol and d["objective"] <= mono.bound + tol
    assert d["bound"] - d["objective"] <= 1e-4 * abs(d["objective"])
