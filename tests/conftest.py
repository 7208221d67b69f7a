"""Figures that tests report (fault-injection counts, fuzzing answers) printed after the run."""

from __future__ import annotations

import subprocess
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
# minutes of CPU that the tests mostly leave idle. A test that needs one waits for its build
# (``gotools.ensure``).
GO_TOOLS = {"jaeger": gotools.JAEGER, "helm": gotools.HELM}
_background: subprocess.Popen[bytes] | None = None


def pytest_collection_finish(session: pytest.Session) -> None:
    global _background
    wanted = []  # in the order the run first needs them
    for item in session.items:
        for mark in item.iter_markers("go_tool"):
            missing = [GO_TOOLS[name] for name in mark.args if not GO_TOOLS[name].is_file()]
            wanted += [binary for binary in missing if binary not in wanted]
            if missing:  # its time includes the wait for the build, not only its own
                item.add_marker(pytest.mark.timeout(gotools.BUILD_TIMEOUT_SECONDS))
    _background = gotools.start_background(wanted)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    gotools.stop_background(_background)
