"""How long a command takes to end after its solve: the console script's
end without the interpreter's teardown (``cli.run``) against returning
from ``main`` into the normal exit, the same command in one run each
(ratios, not timed assertions).

    python -m pytest bench/test_bench_process_end.py --benchmark-only

The command is ``solve medium --method lagrangian --time-limit L`` on 1
rank (CARBONSCHED_BENCH_LIMIT seconds, default 60; long enough for the
site stages to build their site blocks). extra_info holds, for each way
out, the wall seconds of the whole process, the run's own ``total_s`` and
their difference (the end: summary, write, teardown), how far past the
limit the process ended, and the ratio of the two ends. Both solutions
pass the checker. On `large` (2 ranks, 300 s) the teardown alone was 4 s,
304.1 s of wall clock before and 299.6 s after (docs/performance.md).
"""

import json
import os
import subprocess
import sys
import time

from carbonsched import load_instance, read_solution
from carbonsched.check import check_solution

WAYS = {
    "run": "from carbonsched.cli import run; import sys; sys.argv[0] = 'carbonsched'; run()",
    "main_then_exit": "from carbonsched.cli import main; import sys; sys.exit(main(sys.argv[1:]))",
}


def test_process_end_with_and_without_the_teardown(benchmark, tmp_path):
    limit = float(os.environ.get("CARBONSCHED_BENCH_LIMIT", 60))
    inst = load_instance("medium")

    def every():
        out = {}
        for way, code in WAYS.items():
            sol = tmp_path / f"{way}.json"
            args = ["solve", "medium", "--method", "lagrangian", "--time-limit", str(limit), "--out", str(sol),
                    "--quiet"]
            t = time.perf_counter()
            p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
            wall = time.perf_counter() - t
            assert p.returncode in (0, 1), p.stderr[-1500:]
            d = json.loads(sol.read_text())
            assert check_solution(inst, read_solution(d, inst)).ok
            out[way] = (wall, d["stats"]["timings_s"]["total_s"])
        return out

    out = benchmark.pedantic(every, rounds=1, iterations=1)
    for way, (wall, total) in out.items():
        benchmark.extra_info[way] = {"wall_s": wall, "total_s": total, "end_s": wall - total,
                                     "past_limit_s": wall - limit}
    benchmark.extra_info["end_ratio_run_over_main"] = ((out["run"][0] - out["run"][1])
                                                       / (out["main_then_exit"][0] - out["main_then_exit"][1]))
