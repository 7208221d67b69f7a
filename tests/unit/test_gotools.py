"""Building the Go programs beside the suite (devkit/devinfra/gotools.py), with real make and
processes on a Makefile of the test's own: a build runs once however many wait for it, a failure
says why, and a build the suite no longer needs leaves no process behind."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pytest

from corridor.settings import REPO_ROOT
from devkit.devinfra import gotools

TOOL = "out/tool"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "Makefile").write_text(
        f"{TOOL}:\n\techo run >> runs.log\n\tsleep 1\n\tmkdir -p out\n\techo '#!/bin/sh' > $@\n\n"
        "broken/tool:\n\techo 'no such module: example.org/tool' >&2\n\texit 3\n\n"
        "slow/tool:\n\techo $$$$ > slow.pid\n\tsleep 60\n"
    )
    return tmp_path


def runs(root: Path) -> int:
    log = root / "runs.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_missing_program_is_built_once_however_many_need_it_at_once(root: Path) -> None:
    binary = root / TOOL
    got: list[Path] = []
    threads = [
        threading.Thread(target=lambda: got.append(gotools.ensure(binary, root=root))) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [binary] * 3 and binary.is_file()
    assert runs(root) == 1
    gotools.ensure(binary, root=root)  # there: nothing to do
    assert runs(root) == 1


def test_a_test_waits_for_the_build_begun_beside_the_suite(root: Path) -> None:
    binary = root / TOOL
    background = gotools.start_background([binary], root=root)
    assert background is not None
    try:
        deadline = time.monotonic() + 30
        while runs(root) == 0:  # the background build has the lock and is running the recipe
            assert time.monotonic() < deadline and background.poll() is None
            time.sleep(0.05)
        assert gotools.ensure(binary, root=root) == binary
        assert background.wait(timeout=30) == 0
    finally:
        gotools.stop_background(background)
    assert runs(root) == 1
    assert gotools.start_background([binary], root=root) is None  # nothing missing: nothing started


def test_a_failed_build_says_why(root: Path) -> None:
    with pytest.raises(gotools.BuildFailed, match=r"(?s)make broken/tool.*exit 2.*no such module"):
        gotools.ensure(root / "broken/tool", root=root)


def test_a_build_no_longer_needed_is_stopped_with_its_children(root: Path) -> None:
    background = gotools.start_background([root / "slow/tool"], root=root)
    assert background is not None
    deadline = time.monotonic() + 30
    while not (root / "slow.pid").exists() or not (root / "slow.pid").read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    recipe_shell = int((root / "slow.pid").read_text())
    gotools.stop_background(background)
    assert background.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(recipe_shell, 0)


def test_the_programs_are_where_the_makefile_builds_them() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    named = dict(re.findall(r"^(JAEGER|HELM) := (\S+)$", makefile, re.MULTILINE))
    assert REPO_ROOT / named["JAEGER"] == gotools.JAEGER
    assert REPO_ROOT / named["HELM"] == gotools.HELM
