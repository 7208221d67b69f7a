"""The Go programs the suite needs (Jaeger, Helm), built beside it instead of before it.

Each is built from its pinned module by its own Makefile rule (``make .cache/jaeger-…/jaeger``);
on a clean clone that takes minutes of CPU (Jaeger about four, Helm about one and a half, on two
cores), and only three test files need them. So the suite starts at once: ``start_background`` begins
the builds at the lowest CPU priority, where they take only what the tests leave idle, and a test
that needs a program calls ``ensure``, which waits for its build (a lock file per program) or runs
it itself when none is running. A build that fails fails the test that needed it, with make's output.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from corridor.settings import REPO_ROOT
from devkit.devinfra import procs

JAEGER = REPO_ROOT / ".cache" / "jaeger-1.76.0" / "jaeger"
HELM = REPO_ROOT / ".cache" / "helm-3.22.0" / "helm"
"""As the Makefile names them (its rules build them from tools/jaeger and tools/helm)."""

BUILD_TIMEOUT_SECONDS = 1800.0
"""A build at the lowest priority while the suite runs may take several times its usual minutes."""


class BuildFailed(RuntimeError):
    pass


def ensure(binary: Path, *, root: Path = REPO_ROOT, timeout: float = BUILD_TIMEOUT_SECONDS) -> Path:
    """``binary`` (a Makefile target under ``root``), built first if it is missing: waits for a build
    of it already running (``start_background``'s, or another test process's), never builds twice."""
    if binary.is_file():
        return binary
    with _build_lock(binary, root, timeout):
        if not binary.is_file():  # not built meanwhile by whoever held the lock
            _make(binary, root, timeout=timeout)
    return binary


def start_background(binaries: Sequence[Path], *, root: Path = REPO_ROOT) -> subprocess.Popen[bytes] | None:
    """Build the missing ones of ``binaries`` in a process of its own at the lowest CPU priority,
    one after the other in the order given; None if none is missing. Its output goes to a log under
    ``.cache`` (``ensure`` reports a failure again, by building in the foreground). Like every
    server the suite starts (``procs.spawn``), it dies with the process that started it."""
    missing = [b for b in binaries if not b.is_file()]
    if not missing:
        return None
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return procs.spawn(
        ["nice", "-n", "19", sys.executable, "-m", "devkit.devinfra.gotools", "--root", str(root)]
        + [str(b) for b in missing],
        root / ".cache" / "gotools-build.log",
        cwd=root,
        env={**os.environ, "PYTHONPATH": pythonpath},
    )


def stop_background(process: subprocess.Popen[bytes] | None) -> None:
    """End a background build the suite no longer needs (a run of a few tests), with its make and go
    children (its process group). Go's build cache keeps what it had compiled."""
    if process is not None:
        procs.terminate(process, grace=5.0)


@contextlib.contextmanager
def _build_lock(binary: Path, root: Path, timeout: float) -> Iterator[None]:
    lock = root / ".cache" / f"{binary.parent.name}.build.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BuildFailed(f"{binary}: a build held {lock} for over {timeout:.0f} s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _make(binary: Path, root: Path, *, timeout: float) -> None:
    target = binary.relative_to(root) if binary.is_absolute() else binary
    done = subprocess.run(
        ["make", "--no-print-directory", str(target)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0 or not (root / target).is_file():
        raise BuildFailed(
            f"`make {target}` failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )


def _main(argv: Sequence[str]) -> int:
    root = REPO_ROOT
    args = list(argv)
    if args[:1] == ["--root"]:
        root, args = Path(args[1]), args[2:]
    for name in args:
        binary = Path(name)
        try:
            ensure(binary if binary.is_absolute() else root / binary, root=root)
            print(f"built {binary}", flush=True)
        except BuildFailed as exc:
            print(exc, flush=True)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
