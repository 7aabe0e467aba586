"""scripts/random_sweep.py: random generated instances, every method run
over ``mpiexec -n 2`` as a user would, against the monolithic optimum."""

import csv
import random

from helpers import load_script


def _module():
    return load_script("random_sweep")


def test_flags_name_what_is_wrong():
    flags = _module().flags
    assert flags(100.0, 99.0, 101.0, 0) == []
    assert flags(100.0, 100.5, 101.0, 0) == ["objective above the optimum"]
    assert flags(100.0, 99.0, 99.5, 1) == ["check failed", "bound below the optimum"]
    assert flags(None, 99.0, 99.5, 0) == []  # no reference: only the checker speaks
    assert flags(100.0, None, 120.0, 0, reference="optimal", status="infeasible") == [
        "infeasible, where the monolithic solve is optimal"]
    assert flags(None, 99.0, 120.0, 0, reference="budget_infeasible", status="feasible") == [
        "a schedule, where the monolithic solve is budget_infeasible"]
    assert flags(None, None, None, 0, reference="infeasible", status="budget_infeasible") == []
    assert flags(100.0, None, 100.0, 0, reference="optimal", status="no_solution", mono_objective=100.0) == [
        "no schedule, where the monolithic solve found one"]
    assert flags(100.0, None, 120.0, 0, reference="optimal", status="time_limit", mono_objective=100.0) == []
    # a reference stopped by its time limit: its schedule and bound bracket the answer instead
    assert flags(None, 99.0, 101.0, 0, reference="time_limit", mono_objective=98.0, mono_bound=102.0) == []
    assert flags(None, 103.0, 97.0, 0, reference="time_limit", mono_objective=98.0, mono_bound=102.0) == [
        "objective above the monolithic bound", "bound below the monolithic schedule's objective"]


def test_sizes_draw_within_their_ranges():
    mod = _module()
    for size, (sites, regions, periods, jobs) in mod.SIZES.items():
        for seed in range(50):
            c = mod.draw_config(seed, size)
            assert sites[0] <= c.sites <= sites[1] and regions[0] <= c.regions <= regions[1]
            assert c.periods in periods and jobs[0] <= c.jobs <= jobs[1]


def test_edits_are_drawn_per_seed_and_each_gives_a_valid_instance():
    mod = _module()
    assert mod.draw_edits(2003, 1.0) == mod.draw_edits(2003, 1.0) and mod.draw_edits(2003, 0.0) == []
    assert {e for s in range(2000, 2100) for e in mod.draw_edits(s, 1.0)} == set(mod.EDITS)
    for edit in mod.EDITS.values():
        d = mod.generate(mod.draw_config(2003))
        edit(d, random.Random(0))
        mod.parse_instance(d)  # raises on an invalid edit


def test_an_edit_that_makes_the_instance_infeasible_is_agreed_on(tmp_path):
    """Seed 2012 gets 'required jobs collide': two required jobs at one site
    whose windows overlap and whose power together exceeds its room."""
    mod = _module()
    assert mod.draw_edits(2012, 1.0) == ["required jobs collide"]
    out = tmp_path / "sweep.csv"
    assert mod.main(["--seeds", "2012:2013", "--edits", "1", "--ranks", "2", "--time-limit", "60",
                     "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [r["method"] for r in rows] == ["lagrangian", "benders"]
    for r in rows:
        assert r["reference"] == "infeasible" and r["status"] == "infeasible" and not r["flags"], r


def test_two_seeds_bracket_the_optimum_over_two_ranks(tmp_path):
    mod = _module()
    out = tmp_path / "sweep.csv"
    assert mod.main(["--seeds", "1000:1002", "--ranks", "2", "--time-limit", "60", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [(r["seed"], r["method"]) for r in rows] == [("1000", "lagrangian"), ("1000", "benders"),
                                                        ("1001", "lagrangian"), ("1001", "benders")]
    for r in rows:
        assert r["check"] == "ok" and not r["flags"], r
        opt, obj, bnd = float(r["optimum"]), float(r["objective"]), float(r["bound"])
        # both close the gap here: each seed's one committed unit is not what decides the optimum
        assert r["status"] == "optimal" and bnd >= opt - 1e-6 * opt and obj >= opt * (1 - 1e-4), r
