"""scripts/scaling.py keeps working: a tiny sweep writes its CSV, the
environment record and the figures, and every run's solution is valid."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from carbonsched.instance import load_instance, resolve_instance_path

from helpers import load_script
from mpi_util import mpiexec

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "scaling.py"


def _module():
    return load_script("scaling")


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


@pytest.mark.mpi
def test_the_data_measurement_reports_each_rounds_messages_and_bytes():
    """scripts/mpi_data.py on 2 ranks: the bytes it reports are the pool
    round's message sizes for the instance (prices or loads [S,H] out,
    the answers [S+1, H+3] back), and a round's messages alone take less
    time than the round that sends them."""
    script = SCRIPT.parent / "mpi_data.py"
    inst = load_instance("small")
    path = resolve_instance_path("small")
    proc = subprocess.run([mpiexec(), "-n", "2", sys.executable, str(script), str(path), "--rounds", "3"],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    S, H = inst.S, inst.H
    assert row["ranks"] == 2 and (row["sites"], row["periods"]) == (S, H)
    assert row["price_bytes_per_rank"] == 8 * (S * H + (S + 1) * (H + 3))
    assert row["eval_bytes_per_rank"] == 8 * (S * H + S + (S + 1) * (H + 3))
    assert 0 < row["price_messages_ms"] < row["price_round_ms"]
    assert 0 < row["eval_messages_ms"] < row["eval_round_ms"]
    assert row["load_s"] > 0 and row["bcast_s"] > 0 and row["instance_pickle_mb"] > 0
