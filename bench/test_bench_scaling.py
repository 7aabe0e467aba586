"""The scaling sweep in its CI-sized preset (scripts/scaling.py --sweep ci):
3 and 6 sites x 24 and 48 h, monolithic, Lagrangian and Benders on 1 and 2
ranks, 10 s each. The full sweep is a script, not a test:

    python scripts/scaling.py --sweep full --out-dir scaling-out --plot
"""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "scaling.py"


def test_ci_sweep(benchmark, tmp_path):
    spec = importlib.util.spec_from_file_location("scaling", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = benchmark.pedantic(lambda: mod.sweep(**mod.SWEEPS["ci"], out_dir=tmp_path, echo=lambda *_: None),
                              rounds=1, iterations=1)
    assert all(r["check"] == "ok" for r in rows)
    benchmark.extra_info["rows"] = rows
