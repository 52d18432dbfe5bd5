"""The table of injected faults and checks of every fault test, in pytest's terminal summary.
Each fault test runs on a whole system of its own (the kit's ``fresh_system``): faults kill
processes, so nothing is shared."""

from __future__ import annotations

import pytest

from tests.faults.support import FaultReport

REPORTS = pytest.StashKey[list[tuple[str, FaultReport]]]()


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> FaultReport:
    """The test's table; shown in the terminal summary whether the test passes or fails."""
    report = FaultReport()
    request.config.stash.setdefault(REPORTS, []).append((request.node.nodeid, report))
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reports = terminalreporter.config.stash.get(REPORTS, [])
    if not reports:
        return
    failed = {
        report.nodeid
        for key in ("failed", "error")
        for report in terminalreporter.stats.get(key, [])
    }
    terminalreporter.section("faults injected and checks made")
    for nodeid, report in reports:
        outcome = "FAILED" if nodeid in failed else "passed"
        terminalreporter.write_line(f"{nodeid} ({outcome})", bold=True, red=outcome == "FAILED")
        for line in report.lines():
            terminalreporter.write_line(f"  {line}")
