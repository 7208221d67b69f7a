"""Figures that tests report (fault-injection counts, fuzzing answers) printed after the run."""

from __future__ import annotations

from typing import Any

from hypothesis import settings

FIGURES: list[tuple[str, str]] = []


def report_figure(section: str, line: str) -> None:
    FIGURES.append((section, line))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("Corridor figures")
    for section, line in FIGURES:
        terminalreporter.write_line(f"{section}: {line}")


# Hypothesis' per-example deadline fails a test that was only slow: on a machine shared by several
# runs (CI, the mutation run) an example can take 400 ms for want of a core. Correctness, not speed,
# is what these properties check.
settings.register_profile("corridor", deadline=None)
settings.load_profile("corridor")
