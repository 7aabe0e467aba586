import pytest

#: lines the decomposition tests add: method, instance, objective, bound, gap, monolithic optimum
GAP_REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if GAP_REPORT:
        terminalreporter.section("decomposition gaps per instance (vs the monolithic optimum)")
        for line in GAP_REPORT:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def optima():
    """For each decomposition case: (instance, monolithic result solved to
    1e-9, LP relaxation bound with committed units relaxed too), computed
    once for the Benders and Lagrangian tests alike."""
    from carbonsched import highs, solve
    from carbonsched.model import build_monolithic

    from cases import CASES

    out = {}
    for name, make in CASES.items():
        inst = make()
        mono = solve(inst, "monolithic", gap=1e-9)
        assert mono.status == "optimal"
        p = highs.compile_model(build_monolithic(inst, relax=True))
        p.set_integrality(relax=True)
        out[name] = (inst, mono, highs.solve(p).objective)
    return out
