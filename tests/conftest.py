"""Figures that tests report (fault-injection counts, fuzzing answers) printed after the run."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from devkit.devinfra import gotools

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


# The Go programs some tests need (``@pytest.mark.go_tool("jaeger")``) are built beside the suite,
# at the lowest CPU priority, from the moment it has collected its tests: on a clean clone they cost
# minutes of CPU that the tests mostly leave idle. The tests that need a program not built yet run
# last, so the build has the whole run to finish; one still building is waited for
# (``gotools.ensure``).
GO_TOOLS = {"jaeger": gotools.JAEGER, "helm": gotools.HELM}
_background: subprocess.Popen[bytes] | None = None


def _missing_tools(item: pytest.Item) -> list[Path]:
    return [
        GO_TOOLS[name]
        for mark in item.iter_markers("go_tool")
        for name in mark.args
        if not GO_TOOLS[name].is_file()
    ]


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    waiting = [item for item in items if _missing_tools(item)]
    if waiting:
        items[:] = [item for item in items if item not in waiting] + waiting  # each kept in its order
        for item in waiting:  # its time includes the wait for the build, not only its own
            item.add_marker(pytest.mark.timeout(gotools.BUILD_TIMEOUT_SECONDS))


def pytest_collection_finish(session: pytest.Session) -> None:
    global _background
    wanted: list[Path] = []  # in the order the run first needs them
    for item in session.items:
        wanted += [binary for binary in _missing_tools(item) if binary not in wanted]
    _background = gotools.start_background(wanted)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    gotools.stop_background(_background)
