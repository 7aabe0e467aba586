"""Does the site relaxation pay for its time? The Lagrangian method with
and without it (``site_bound``), same time limit, one run each; and the
share of triples that reduced-cost fixing fixes.

    python -m pytest bench/test_bench_site_bound.py --benchmark-only

On a generated budget-binding instance (CARBONSCHED_BENCH_SITES x 168 h x
CARBONSCHED_BENCH_JOBS jobs, budget 70% of the estimate; defaults 4 and
16, sized for CI) and on the shipped ``small``, each capped at
CARBONSCHED_BENCH_LIMIT seconds (default 60). extra_info holds both runs:
incumbent, bound, gap, the Lagrangian bound before the site relaxation
and after it, its rounds and seconds, and the triples fixed.
"""

import os

import pytest

from carbonsched import solve
from carbonsched.instance import load_instance

from cases import generated_budget_binding

LIMIT = float(os.environ.get("CARBONSCHED_BENCH_LIMIT", 60))


def _budget_binding():
    return generated_budget_binding(int(os.environ.get("CARBONSCHED_BENCH_SITES", 4)),
                                    int(os.environ.get("CARBONSCHED_BENCH_JOBS", 16)))


INSTANCES = {"generated_budget_70pct": _budget_binding, "small": lambda: load_instance("small")}


@pytest.mark.parametrize("name", list(INSTANCES))
def test_site_relaxation_vs_lagrangian_bound(benchmark, name):
    inst = INSTANCES[name]()

    def both():
        return {on: solve(inst, "lagrangian", gap=1e-4, time_limit=LIMIT, site_bound=on) for on in (False, True)}

    out = benchmark.pedantic(both, rounds=1, iterations=1)
    for on, res in out.items():
        assert res.check.ok, res.check.violations
        st = res.solution.stats
        benchmark.extra_info["site_bound" if on else "lagrangian_only"] = {
            "objective": res.objective, "bound": res.bound, "gap": res.gap,
            "lagrangian_bound": st.get("lagrangian_bound"), "site_relaxation_bound": st.get("site_relaxation_bound"),
            "site_relaxation_rounds": st.get("site_relaxation_rounds"),
            "site_bound_s": st["timings_s"].get("site_bound_s", 0.0),
            "fixed_share": st["reduced_cost_fixed"] / max(1, st["triples"])}
    benchmark.extra_info["gap_ratio_off_over_on"] = (out[False].gap or 0.0) / max(out[True].gap or 0.0, 1e-12)
