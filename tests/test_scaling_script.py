"""scripts/scaling.py keeps working: a tiny sweep writes its CSV, the
environment record and the figures, and every run's solution is valid."""

import csv
import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "scaling.py"


def _module():
    spec = importlib.util.spec_from_file_location("scaling", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tiny_sweep_writes_csv_environment_and_figures(tmp_path):
    mod = _module()
    assert mod.main(["--sites", "3", "--periods", "24", "--jobs-per-site", "2", "--methods", "monolithic,lagrangian",
                     "--ranks", "1,2", "--time-limit", "20", "--out-dir", str(tmp_path), "--plot"]) == 0
    rows = list(csv.DictReader((tmp_path / "scaling.csv").read_text().splitlines()))
    assert [(r["method"], r["ranks"]) for r in rows] == [("monolithic", "1"), ("lagrangian", "1"), ("lagrangian", "2")]
    for r in rows:
        assert r["check"] == "ok" and r["status"] in ("optimal", "feasible", "time_limit"), r
        assert float(r["bound"]) >= float(r["objective"]) and float(r["peak_mb_max"]) > 0
    env = json.loads((tmp_path / "environment.json").read_text())
    assert env["cores"] >= 1 and env["highspy"] not in ("", "?")
    assert all((tmp_path / f"scaling-{n}.png").stat().st_size > 5000
               for n in ("time-per-iteration", "time-to-gap", "memory", "speedup"))
