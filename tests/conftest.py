"""Figures that tests report (fault-injection counts, fuzzing answers) printed after the run."""

from __future__ import annotations

from typing import Any

FIGURES: list[tuple[str, str]] = []


def report_figure(section: str, line: str) -> None:
    FIGURES.append((section, line))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("Corridor figures")
    for section, line in FIGURES:
        terminalreporter.write_line(f"{section}: {line}")
