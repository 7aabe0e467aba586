import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

#: lines the decomposition tests add: method, instance, objective, bound, gap, monolithic optimum
GAP_REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if GAP_REPORT:
        terminalreporter.section("decomposition gaps per instance (vs the monolithic optimum)")
        for line in GAP_REPORT:
            terminalreporter.write_line(line)
