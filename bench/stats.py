"""Repetitions, medians, spreads and ratios; and a description of the machine the run is on."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shutil
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Run:
    """One repetition of one path: how many items in how many seconds, and per-item latencies."""

    items: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("nan")

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p95(self) -> float:
        return percentile(self.latencies_ms, 95)


@dataclass
class Series:
    """Every repetition of one path of one benchmark."""

    group: str
    name: str
    unit: str  # what the rate counts: "events/s", "records/s", "requests/s"
    baseline: bool = False
    latency_label: str = ""
    note: str = ""
    runs: list[Run] = field(default_factory=list)

    def rates(self) -> list[float]:
        return [r.rate for r in self.runs]

    @property
    def median_rate(self) -> float:
        return statistics.median(self.rates())

    def spread_pct(self) -> float:
        """(max - min) / median of the repetitions' rates, in percent."""
        rates = self.rates()
        return 100.0 * (max(rates) - min(rates)) / self.median_rate if len(rates) > 1 else 0.0

    def median_p(self, q: int) -> float:
        values = [percentile(r.latencies_ms, q) for r in self.runs if r.latencies_ms]
        return statistics.median(values) if values else float("nan")

    def median_extra(self, key: str) -> float:
        values = [r.extra[key] for r in self.runs if key in r.extra]
        return statistics.median(values) if values else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "name": self.name,
            "unit": self.unit,
            "baseline": self.baseline,
            "rates": self.rates(),
            "median_rate": self.median_rate,
            "spread_pct": self.spread_pct(),
            "latency_p50_ms": [percentile(r.latencies_ms, 50) for r in self.runs if r.latencies_ms],
            "latency_p95_ms": [percentile(r.latencies_ms, 95) for r in self.runs if r.latencies_ms],
            "extra": [r.extra for r in self.runs],
        }


def ratios(measured: Series, baseline: Series) -> tuple[float, float, float]:
    """Median rate over median baseline rate, and the lowest and highest per-repetition ratio.

    Repetitions are interleaved (baseline, paths, baseline, paths...), so repetition i of each
    path ran under the same conditions: those pairs give the range.
    """
    pairs = [m / b for m, b in zip(measured.rates(), baseline.rates(), strict=False)]
    return measured.median_rate / baseline.median_rate, min(pairs), max(pairs)


# ------------------------------------------------------------------------------ the machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def _java_version() -> str:
    java = shutil.which("java")
    if java is None:
        return "none"
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = (out.stderr or out.stdout).splitlines()
    return first[0].strip() if first else "unknown"


def _git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return f"{rev}{' (uncommitted changes)' if dirty else ''}" if rev else "unknown"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    """Cores, memory, load and versions: what a reader needs to compare two runs' figures."""
    from devkit.devinfra import KAFKA_VERSION

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(_mem_total_gib(), 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "kafka": KAFKA_VERSION,
        "java": _java_version(),
        "packages": {
            p: _version(p) for p in ("aiokafka", "asyncpg", "faststream", "pydantic", "fastapi", "uvicorn")
        },
        "git": _git_revision(),
    }


# ------------------------------------------------------------------------------ who used the CPU


@dataclass
class CpuClock:
    """Machine-wide busy CPU time (/proc/stat) against this process's own and its reaped children's
    (the servers and the intake service, once stopped): how much CPU others took during the run."""

    machine_busy: float
    machine_total: float
    ours: float

    @classmethod
    def now(cls) -> CpuClock:
        busy = total = float("nan")
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
            tick = os.sysconf("SC_CLK_TCK")
            idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
            total = sum(fields[:8]) / tick  # user..steal; guest time is already in user
            busy = total - idle / tick
        except (OSError, ValueError, IndexError):
            pass
        t = os.times()
        return cls(busy, total, t.user + t.system + t.children_user + t.children_system)

    def since(self, start: CpuClock) -> dict[str, float]:
        busy = self.machine_busy - start.machine_busy
        ours = self.ours - start.ours
        return {
            "available_core_seconds": self.machine_total - start.machine_total,
            "busy_core_seconds": busy,
            "ours_core_seconds": ours,
            "others_core_seconds": max(0.0, busy - ours),
        }


def cpu_seconds(pid: int | None, *, children: bool = False) -> float:
    """User and system CPU time of a process (/proc/<pid>/stat, fields 14-15), with its waited-for
    children's (16-17) if ``children``; 0 once it is gone."""
    if pid is None:
        return 0.0
    return _stat_cpu(Path(f"/proc/{pid}/stat"), children=children)


def _stat_cpu(stat_file: Path, *, children: bool = False) -> float:
    """User and system CPU time in a process's or a thread's ``stat`` file; 0 once it is gone."""
    try:
        stat = stat_file.read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 onwards
    return sum(int(f) for f in fields[11 : 15 if children else 13]) / os.sysconf("SC_CLK_TCK")


def jit_cpu(pid: int | None) -> float:
    """CPU time of a JVM's JIT compiler threads ("C1 CompilerThread0", "C2 CompilerThread1", ...):
    work a long-running broker did long ago, done again by one started for a benchmark."""
    if pid is None:
        return 0.0
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0
    total = 0.0
    for thread in threads:
        with contextlib.suppress(OSError):  # the thread ended
            if (thread / "comm").read_text().startswith(("C1 Compiler", "C2 Compiler")):
                total += _stat_cpu(thread / "stat")
    return total


def machine_line(info: dict[str, Any], load_before: tuple[float, float, float]) -> str:
    """The machine and its load average before the run and now, under a benchmark's figures."""
    return (
        f"Machine: {info.get('cpu', '?')}, {os.cpu_count()} cores; load average before "
        f"{' '.join(f'{x:.2f}' for x in load_before)}, after {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def postgres_cpu(pid: int | None) -> float:
    """The postmaster, the backends it waited for, and every backend still running."""
    total = cpu_seconds(pid, children=True)
    for child in Path("/proc").iterdir():
        if child.name.isdigit():
            try:
                stat = (child / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                total += cpu_seconds(int(child.name), children=True)
    return total
