"""Build time and peak memory at scale (issue 11): the monolithic model, and
what each rank of a decomposition holds.

For each instance file, in a fresh subprocess each (so peak resident memory
is that step's alone):

- ``monolithic``: read the instance, build the Pyomo model, translate it to
  HiGHS; report seconds of each and the peak resident memory (MB);
- ``lagrangian``: ``mpiexec -n R carbonsched solve --method lagrangian
  --max-iterations 1 --no-polish``: build, calibration, one iteration and
  its recovery; report build seconds and the peak memory of every rank
  (from the solution file's stats).

It also fits MB per model element (columns + rows, counted without building
by ``carbonsched info``) and says how many elements fit in ``--memory-gb``.

    python scripts/build_memory.py /tmp/large.json /tmp/xlarge.json --ranks 2 --out build_memory.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_BUILD = r"""
import json, sys, time, resource
t0 = time.perf_counter()
from carbonsched import load_instance, highs
from carbonsched.model import build_monolithic, model_size
inst = load_instance(sys.argv[1])
t1 = time.perf_counter()
m = build_monolithic(inst)
t2 = time.perf_counter()
p = highs.compile_model(m)
t3 = time.perf_counter()
size = model_size(inst)
print(json.dumps({"read_s": t1 - t0, "build_s": t2 - t1, "translate_s": t3 - t2,
                  "elements": size["variables"] + size["constraints"], "binaries": size["binaries"],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
"""


def _mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else "mpiexec"


def monolithic(path: str, timeout: float) -> dict:
    try:
        out = subprocess.run([sys.executable, "-c", _BUILD, path], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def lagrangian(path: str, ranks: int, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as d:
        sol = Path(d) / "sol.json"
        cmd = [_mpiexec(), "-n", str(ranks), sys.executable, "-m", "carbonsched", "solve", path, "--method",
               "lagrangian", "--max-iterations", "1", "--no-polish", "--quiet", "--out", str(sol)]
        t0 = time.perf_counter()
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"over {timeout:.0f} s"}
        wall = time.perf_counter() - t0
        if not sol.exists():
            return {"error": (out.stderr.strip().splitlines() or ["no solution file"])[-1]}
        st = json.loads(sol.read_text())["stats"]
    tm = st.get("timings_s", {})
    return {"wall_s": wall, "build_s": tm.get("build_s"), "recovery_s": tm.get("recovery_s"),
            "peak_mb_per_rank": st.get("peak_memory_mb_per_rank")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("instances", nargs="+")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per step (default 1800)")
    ap.add_argument("--memory-gb", type=float, default=24.0)
    ap.add_argument("--skip", default="", help="comma-separated: monolithic,lagrangian")
    ap.add_argument("--out", type=Path, default=Path("build_memory.csv"))
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    rows = []
    for path in a.instances:
        row: dict = {"instance": Path(path).stem}
        if "monolithic" not in skip:
            row.update({f"mono_{k}": v for k, v in monolithic(path, a.timeout).items()})
        if "lagrangian" not in skip:
            row.update({f"lag_{k}": v for k, v in lagrangian(path, a.ranks, a.timeout).items()})
        print(json.dumps(row), flush=True)
        rows.append(row)
    fits = [(r["mono_elements"], r["mono_peak_mb"]) for r in rows if "mono_peak_mb" in r]
    if fits:
        per = max(mb / el for el, mb in fits)  # the worst measured MB per element
        print(f"monolithic: at most {per * 1e6:,.0f} MB per million elements measured; "
              f"{a.memory_gb:g} GB holds about {a.memory_gb * 1024 / per / 1e6:,.1f} million elements", flush=True)
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "instance", k))
    with a.out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()})


if __name__ == "__main__":
    main()
