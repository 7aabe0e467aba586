"""Foundation benchmarks: instance loading, model build/translation, and the
monolithic solve on two sizes.

    python -m pytest bench/test_bench_foundation.py --benchmark-only

The figures that matter are ratios in one run (build vs translate vs solve),
which docs/performance.md records; no timing is asserted.
"""

import pytest

from carbonsched import SolveOptions, highs, solve
from carbonsched.generate import GeneratorConfig, generate
from carbonsched.instance import load_instance, parse_instance, resolve_instance_path
from carbonsched.model import build_monolithic


@pytest.mark.parametrize("name", ["paper-default", "medium"])
def test_load_instance(benchmark, name):
    resolve_instance_path(name)
    inst = benchmark(load_instance, name)
    benchmark.extra_info["triples"] = int(inst.triples[0].size)


@pytest.mark.parametrize("name", ["small", "medium"])
def test_build_model(benchmark, name):
    inst = load_instance(name)
    inst.triples  # noqa: B018  (cache outside the timing)
    m = benchmark.pedantic(build_monolithic, args=(inst,), rounds=3, iterations=1)
    benchmark.extra_info["variables"] = m.nvariables()


@pytest.mark.parametrize("name", ["small", "medium"])
def test_translate_to_highs(benchmark, name):
    inst = load_instance(name)
    m = build_monolithic(inst)
    p = benchmark.pedantic(highs.compile_model, args=(m,), rounds=3, iterations=1)
    benchmark.extra_info["columns"] = p.num_col
    benchmark.extra_info["rows"] = p.num_row


BENCH_SIZES = {
    "paper-default": lambda: load_instance("paper-default"),
    "gen-4x48x16": lambda: parse_instance(generate(GeneratorConfig(sites=4, regions=3, periods=48, jobs=16, seed=5,
                                                                   committed_share=0.0))),
}


@pytest.mark.parametrize("name", list(BENCH_SIZES))
def test_monolithic_solve(benchmark, name):
    inst = BENCH_SIZES[name]()
    res = benchmark.pedantic(solve, args=(inst, "monolithic", SolveOptions(gap=1e-4, threads=1)), rounds=2,
                             iterations=1)
    assert res.check.ok
    benchmark.extra_info.update({k: round(v, 4) for k, v in res.timings.items()})
    benchmark.extra_info["objective"] = res.objective
