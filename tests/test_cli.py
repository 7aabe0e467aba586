"""The command line, run as a user would (in-process, through main())."""

import json

import pytest

from carbonsched import ExitCode
from carbonsched.cli import main

from helpers import job, make, rich_tiny, site


def test_solve_default_writes_a_solution_that_check_accepts(tmp_path, capsys):
    out = tmp_path / "sol.json"
    assert main(["solve", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "status   optimal" in text and "objective breakdown" in text and "check    passed" in text
    assert main(["check", "paper-default", str(out)]) == 0
    assert "solution OK" in capsys.readouterr().out
    # a corrupted file is refused with the checker's exit code
    d = json.loads(out.read_text())
    d["objective"] += 10
    out.write_text(json.dumps(d))
    assert main(["check", "paper-default", str(out)]) == ExitCode.CHECK_FAILED
    assert "objective: file says" in capsys.readouterr().out


def test_bad_instance_is_an_error_naming_the_field(tmp_path, capsys):
    d = rich_tiny().to_dict()
    d["sites"][1]["battery"] = {"energy_mwh": 1, "charge_mw": 1, "discharge_mw": 1, "charge_eff": 1.2}
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    assert main(["solve", str(p)]) == 2
    err = capsys.readouterr().err
    assert "sites[1].battery.charge_eff: must be <= 1" in err and "Traceback" not in err


def test_generate_and_info(tmp_path, capsys):
    p = tmp_path / "g.json"
    assert main(["generate", "--family", "small", "--sites", "4", "--jobs", "7", "--seed", "5", "--out", str(p)]) == 0
    assert main(["info", str(p)]) == 0
    text = capsys.readouterr().out
    assert "sites 4" in text and "training jobs 7" in text and "binaries" in text


def test_unknown_method_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["solve", "--method", "magic"])
    assert ei.value.code == ExitCode.BAD_INPUT
    assert "invalid choice: 'magic'" in capsys.readouterr().err


def test_option_of_another_method_is_refused(capsys):
    assert main(["solve", "--method", "lagrangian", "--stabilize", "none"]) == ExitCode.BAD_INPUT
    assert "unknown option 'stabilize' for LagrangianOptions" in capsys.readouterr().err



@pytest.mark.parametrize("cmd", ["solve", "check", "generate", "info", "study"])
def test_help_of_every_command(cmd, capsys):
    with pytest.raises(SystemExit) as ei:
        main([cmd, "--help"])
    assert ei.value.code == 0
    out = capsys.readouterr().out
    assert "usage: carbonsched" in out
    if cmd == "solve":  # flags come from the option table, with units, defaults and the exit codes
        for text in ("--time-limit", "[s]", "--seed-lagrangian", "--no-heuristic", "--dual-update", "--checkpoint",
                     "15%", "130 interrupted"):
            assert text in out, text


def test_check_of_a_file_without_a_schedule_says_so(tmp_path, capsys):
    """`check` on the file an infeasible solve writes: it says there is no
    schedule to check (before: an AttributeError traceback); the same empty
    file claiming `optimal` is checked, and fails."""
    d = rich_tiny().to_dict()
    d["training_jobs"][0].update(required=True, power_mw=1e4)
    inst_path, out = tmp_path / "inf.json", tmp_path / "sol.json"
    inst_path.write_text(json.dumps(d))
    assert main(["solve", str(inst_path), "--out", str(out)]) == ExitCode.INFEASIBLE
    capsys.readouterr()
    assert main(["check", str(inst_path), str(out)]) == ExitCode.OK
    assert "no schedule to check: the solution reports status 'infeasible'" in capsys.readouterr().out
    s = json.loads(out.read_text())
    s["status"] = "optimal"
    out.write_text(json.dumps(s))
    assert main(["check", str(inst_path), str(out)]) == ExitCode.CHECK_FAILED
    assert "required job" in capsys.readouterr().out


def test_a_baseline_that_breaks_the_budget_exits_infeasible_not_check_failed(tmp_path, capsys):
    """energy-only places the 5 MW job without weighing its emissions: 1 t
    of idle load plus 2.5 t for the job, against a 1.2 t budget. Its
    schedule is reported budget_infeasible and breaks the budget and nothing
    else: exit 3, as its status says; before, exit 5, which reads as a bug."""
    inst = make(2, [site("a", idle=1, ci=0.5)], [job("j", 5, 1, 100)], carbon_budget_t=1.2)
    p = tmp_path / "inst.json"
    p.write_text(json.dumps(inst.to_dict()))
    assert main(["solve", str(p), "--method", "energy-only"]) == ExitCode.INFEASIBLE
    out = capsys.readouterr().out
    assert "status   budget_infeasible" in out and "[8] emissions 3.5" in out
    assert main(["solve", str(p)]) == ExitCode.OK  # the joint optimum leaves the job out


@pytest.mark.parametrize(("method", "elsewhere"), [("monolithic", False), ("lagrangian", False), ("compute-only", False),
                                                   ("energy-only", False), ("lagrangian", True)])
def test_solve_writes_the_final_solution_once_whoever_writes_it(tmp_path, capsys, monkeypatch, method, elsewhere):
    """``--out`` is also the run's incumbent file unless ``--incumbent-file``
    names another: the method's final write is then the file, and the
    command does not write it again; with another incumbent file, the
    command writes ``--out`` itself. Either way each file gets one final
    write, which the checker passes and which is the reported solution."""
    from carbonsched import solution

    finals: list[str] = []
    real = solution.atomic_write_text

    def spy(path, text):
        real(path, text)
        if "in_progress" not in json.loads(text)["stats"]:
            finals.append(str(path))

    monkeypatch.setattr(solution, "atomic_write_text", spy)
    out, inc = tmp_path / "sol.json", tmp_path / "inc.json"
    args = ["solve", "paper-default", "--method", method, "--out", str(out)]
    baseline = method.endswith("-only")  # a heuristic schedule: status feasible, exit 1
    assert main(args + (["--incumbent-file", str(inc)] if elsewhere else [])) == int(baseline)
    assert sorted(finals) == sorted([str(out)] + ([str(inc)] if elsewhere else []))
    text = capsys.readouterr().out
    assert f"solution written to {out}\n" in text
    d = json.loads(out.read_text())
    assert f"status   {d['status']}\n" in text and f"objective {d['objective']:,.2f}" in text
    assert d["status"] == ("feasible" if baseline else "optimal")
    assert main(["check", "paper-default", str(out)]) == 0
