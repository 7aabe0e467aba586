"""Scaling study: methods x ranks x instance size, end to end, as users run them.

One command runs a sweep and writes ``scaling.csv`` (one row per run) and
``environment.json`` (versions, CPU, cores, the command) into ``--out-dir``;
``--plot`` adds log-log figures: time per iteration, time to the target gap
and peak memory against size (sites x periods), and speed-up against ranks.

    python scripts/scaling.py --sweep dev --out-dir scaling-out --plot
    python scripts/scaling.py --sites 50,100,200 --periods 168,720 --ranks 1,2,4,8,16 \\
        --methods lagrangian,benders --time-limit 1200 --out-dir big --plot

Every run is ``[mpiexec -n R] python -m carbonsched solve INSTANCE --method M
--time-limit T --gap G --out sol.json --quiet`` in a subprocess, on a
generated instance (seeded; jobs in proportion to sites; budget
``--budget-fraction`` of the generator's estimate, 0.7 by default, so the
budget binds). Wall time is measured around the subprocess; everything else
comes from the solution file (status, objective, bound, gap, iterations,
the per-iteration trace, per-rank peak memory, build time). The monolithic
method runs on one rank only.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEPS = {
    # sized for CI (bench/test_bench_scaling.py)
    "ci": dict(sites=[3, 6], periods=[24, 48], jobs_per_site=3, methods=["monolithic", "lagrangian", "benders"],
               ranks=[1, 2], time_limit=10.0),
    # the 2-core development machine (docs/scaling.md)
    "dev": dict(sites=[5, 10, 20], periods=[24, 168], jobs_per_site=10,
                methods=["monolithic", "lagrangian", "benders"], ranks=[1, 2], time_limit=30.0),
    # a cluster node or more: sites 5 -> 200, periods 24 -> 720
    "full": dict(sites=[5, 20, 50, 100, 200], periods=[24, 168, 720], jobs_per_site=15,
                 methods=["monolithic", "lagrangian", "benders"], ranks=[1, 2, 4, 8, 16], time_limit=1200.0),
}

COLUMNS = ["sites", "periods", "jobs", "size", "method", "ranks", "wall_s", "status", "stop", "objective", "bound",
           "gap", "iterations", "s_per_iteration", "time_to_gap_s", "build_s", "peak_mb_max", "peak_mb_rank0",
           "check"]


def _mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else "mpiexec"


def environment(argv: list[str]) -> dict:
    """Versions, CPU and cores, for the record next to the numbers."""
    import highspy
    import mpi4py
    import numpy
    import pyomo

    import carbonsched

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": " ".join(argv), "python": sys.version.split()[0],
            "carbonsched": carbonsched.__version__, "numpy": numpy.__version__, "pyomo": pyomo.__version__,
            "highspy": _highs_version(highspy), "mpi4py": mpi4py.__version__, "cpu": cpu,
            "cores": os.cpu_count(), "platform": platform.platform()}


def _highs_version(highspy) -> str:
    try:
        from highspy._core import _Highs

        return str(_Highs().version())
    except Exception:  # an older or newer highspy without it
        return getattr(highspy, "__version__", "?")


def make_instance(sites: int, periods: int, jobs: int, budget_fraction: float, seed: int, folder: Path) -> Path:
    from carbonsched.generate import GeneratorConfig, generate

    d = generate(GeneratorConfig(sites=sites, regions=max(2, sites // 4), periods=periods, jobs=jobs, seed=seed,
                                 budget_basis="estimate", budget_fraction=budget_fraction,
                                 name=f"scale-s{sites}-h{periods}-j{jobs}"))
    path = folder / f"{d['name']}.json"
    path.write_text(json.dumps(d))
    return path


def _time_to_gap(trace: list[dict], target: float) -> float | None:
    for row in trace:
        if row.get("gap") is not None and row["gap"] <= target:
            return row.get("t")
    return None


def run_one(instance: Path, method: str, ranks: int, time_limit: float, gap: float, folder: Path) -> dict:
    """One solve in a subprocess; the row of the CSV."""
    out = folder / f"{instance.stem}-{method}-r{ranks}.json"
    cmd = [sys.executable, "-m", "carbonsched", "solve", str(instance), "--method", method, "--time-limit",
           str(time_limit), "--gap", str(gap), "--out", str(out), "--quiet"]
    if ranks > 1:
        cmd = [_mpiexec(), "-n", str(ranks), *cmd]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=time_limit * 1.5 + 120)
    wall = time.perf_counter() - t
    row: dict = {"method": method, "ranks": ranks, "wall_s": round(wall, 3)}
    if not out.exists():
        row.update(status=f"no file (rc {proc.returncode})", check="-")
        return row
    d = json.loads(out.read_text())
    st = d.get("stats") or {}
    trace = st.get("trace") or []
    its = st.get("iterations")
    loop_s = (trace[-1]["t"] - trace[0]["t"]) / max(1, len(trace) - 1) if len(trace) > 1 else None
    mem = st.get("peak_memory_mb_per_rank") or []
    row.update(status=d["status"], stop=st.get("stop"), objective=d.get("objective"), bound=d.get("bound"),
               gap=d.get("gap"), iterations=its, s_per_iteration=loop_s,
               time_to_gap_s=_time_to_gap(trace, gap) if trace else (
                   st.get("timings_s", {}).get("total_s") if d.get("gap") is not None and d["gap"] <= gap else None),
               build_s=(st.get("timings_s") or {}).get("build_s"), peak_mb_max=max(mem) if mem else None,
               peak_mb_rank0=mem[0] if mem else None, check="ok" if proc.returncode in (0, 1, 4) else proc.returncode)
    return row


def sweep(sites, periods, jobs_per_site, methods, ranks, time_limit, *, gap=0.01, budget_fraction=0.7, seed=1,
          out_dir: Path, echo=print) -> list[dict]:
    """Run every (size, method, ranks) once; write scaling.csv as it goes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, open(out_dir / "scaling.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for s in sites:
            for h in periods:
                jobs = jobs_per_site * s
                inst = make_instance(s, h, jobs, budget_fraction, seed, Path(tmp))
                for m in methods:
                    for r in ([1] if m == "monolithic" else ranks):
                        row = {"sites": s, "periods": h, "jobs": jobs, "size": s * h,
                               **run_one(inst, m, r, time_limit, gap, Path(tmp))}
                        rows.append(row)
                        w.writerow(row)
                        fh.flush()
                        echo(f"{s:>4} sites {h:>4} h {jobs:>5} jobs  {m:<11} {r:>2} rank(s): {row['wall_s']:8.2f} s  "
                             f"{row.get('status')}  gap {row.get('gap')}  its {row.get('iterations')}  "
                             f"peak {row.get('peak_mb_max')} MB")
    return rows


def plot(rows: list[dict], out_dir: Path) -> list[Path]:
    """Log-log figures of the sweep."""
    from matplotlib.figure import Figure

    def series(key, method, ranks):
        pts = sorted((r["size"], r[key]) for r in rows if r["method"] == method and r["ranks"] == ranks
                     and isinstance(r.get(key), (int, float)) and r[key] and r[key] > 0)
        return [p[0] for p in pts], [p[1] for p in pts]

    files = []
    methods = sorted({r["method"] for r in rows})
    for key, label, name in (("s_per_iteration", "seconds per iteration", "time-per-iteration"),
                             ("time_to_gap_s", "seconds to the target gap", "time-to-gap"),
                             ("peak_mb_max", "peak memory of the largest rank (MB)", "memory")):
        fig = Figure(figsize=(6.4, 4.4))
        ax = fig.subplots()
        for m in methods:
            for rk in sorted({r["ranks"] for r in rows if r["method"] == m}):
                x, y = series(key, m, rk)
                if x:
                    ax.loglog(x, y, marker="o", label=f"{m}, {rk} rank(s)")
        ax.set_xlabel("size: sites x periods")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / f"scaling-{name}.png", dpi=110)
        files.append(out_dir / f"scaling-{name}.png")
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    biggest = max(r["size"] for r in rows)
    for m in methods:
        base = [r for r in rows if r["method"] == m and r["size"] == biggest and r["ranks"] == 1]
        pts = sorted((r["ranks"], base[0]["wall_s"] / r["wall_s"]) for r in rows
                     if base and r["method"] == m and r["size"] == biggest)
        if len(pts) > 1:
            ax.loglog([p[0] for p in pts], [p[1] for p in pts], marker="o", label=m)
    ax.set_xlabel("ranks")
    ax.set_ylabel(f"speed-up of the whole run (size {biggest})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "scaling-speedup.png", dpi=110)
    files.append(out_dir / "scaling-speedup.png")
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sweep", choices=list(SWEEPS), default="dev", help="a preset (default dev); flags override it")
    ap.add_argument("--sites", help="comma-separated site counts")
    ap.add_argument("--periods", help="comma-separated period counts")
    ap.add_argument("--jobs-per-site", type=int)
    ap.add_argument("--methods", help="comma-separated methods")
    ap.add_argument("--ranks", help="comma-separated rank counts")
    ap.add_argument("--time-limit", type=float, help="seconds per run")
    ap.add_argument("--gap", type=float, default=0.01, help="target gap (default 0.01)")
    ap.add_argument("--budget-fraction", type=float, default=0.7, help="budget as a share of the estimate")
    ap.add_argument("--out-dir", type=Path, default=Path("scaling-out"))
    ap.add_argument("--plot", action="store_true", help="also draw the log-log figures")
    a = ap.parse_args(argv)
    cfg = dict(SWEEPS[a.sweep])
    for key in ("sites", "periods", "ranks"):
        if getattr(a, key):
            cfg[key] = [int(v) for v in getattr(a, key).split(",")]
    if a.methods:
        cfg["methods"] = a.methods.split(",")
    if a.jobs_per_site:
        cfg["jobs_per_site"] = a.jobs_per_site
    if a.time_limit:
        cfg["time_limit"] = a.time_limit
    a.out_dir.mkdir(parents=True, exist_ok=True)
    (a.out_dir / "environment.json").write_text(json.dumps(environment(sys.argv), indent=1))
    rows = sweep(**cfg, gap=a.gap, budget_fraction=a.budget_fraction, out_dir=a.out_dir)
    print(f"written: {a.out_dir / 'scaling.csv'}, {a.out_dir / 'environment.json'}")
    if a.plot:
        print("figures: " + ", ".join(str(f) for f in plot(rows, a.out_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
