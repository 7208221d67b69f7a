"""The deployment's Prometheus rules are valid, and every alert fires on the series it is for and
stays quiet just short of them (promtool's rule unit tests, deploy/prometheus/tests)."""

from __future__ import annotations

import subprocess

from devkit.devinfra.prometheus import RULES_DIR, binary, rule_files


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary("promtool")), *args], capture_output=True, text=True, timeout=120, cwd=RULES_DIR
    )


def test_the_rules_are_valid() -> None:
    files = rule_files()
    assert {p.name for p in files} >= {"alerts.yml", "thresholds.yml"}
    checked = promtool("check", "rules", *map(str, files))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_has_a_unit_test_and_they_pass() -> None:
    tests = sorted((RULES_DIR / "tests").glob("*.yml"))
    assert tests
    ran = promtool("test", "rules", *map(str, tests))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    tested = "".join(t.read_text() for t in tests)
    alerts = [
        line.split(":", 1)[1].strip()
        for line in (RULES_DIR / "alerts.yml").read_text().splitlines()
        if line.strip().startswith("- alert:")
    ]
    assert len(alerts) >= 6
    for alert in alerts:
        assert f"alertname: {alert}" in tested, f"{alert} has no rule unit test"
