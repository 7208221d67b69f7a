"""The recipes in docs/integration.md, run exactly as written against the real broker."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import uuid
from datetime import date

import httpx

from contracts.routes import Route
from contracts.status import CaseStatus
from corridor.settings import REPO_ROOT
from devkit import scenario
from devkit.devstack import Stack
from opstools.statusreader import StatusStream

GUIDE = REPO_ROOT / "docs" / "integration.md"


def recipe(name: str) -> str:
    match = re.search(rf"<!-- recipe: {name} -->\n```\w+\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    assert match, f"recipe {name} is missing from {GUIDE}"
    return match.group(1)


async def run(args: list[str], env: dict[str, str]) -> str:
    done = await asyncio.to_thread(
        subprocess.run, args, capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def kcat_can_scram() -> bool:
    """kcat on librdkafka 2.6.1 or later: older ones fail SCRAM against Kafka 4.x (librdkafka#4895)."""
    kcat = shutil.which("kcat")
    assert kcat, "kcat is installed by `make setup` (Debian package kcat)"
    version = re.search(
        r"librdkafka (\d+)\.(\d+)\.(\d+)", subprocess.run([kcat, "-V"], capture_output=True, text=True).stdout
    )
    assert version, "kcat -V names its librdkafka"
    return tuple(int(v) for v in version.groups()) >= (2, 6, 1)


async def fails(args: list[str], env: dict[str, str]) -> str:
    done = await asyncio.to_thread(
        subprocess.run, args, capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )
    assert done.returncode != 0, f"{args[0]} unexpectedly succeeded:\n{done.stdout}"
    return done.stdout + done.stderr


async def test_every_recipe_in_the_integration_guide_works(
    stack: Stack, stream: StatusStream, route: Route, client: httpx.AsyncClient, travel_date: date
) -> None:
    case_id = await scenario.register(client, stack, scenario.single_traveller(travel_date))
    await stream.wait_for([case_id], CaseStatus.ELIGIBLE, 60)
    await scenario.run_movement(
        client, stack, stream, route, travel_date, vehicles=[("BUS-G", 45)], expect=[case_id]
    )
    await stream.wait_for([case_id], CaseStatus.ARRIVED, 60)
    tjk = stack.kafka_access("mission-tjk")
    assert tjk.username and tjk.password
    env = {
        "BOOTSTRAP": stack.bootstrap,
        "KAFKA_USERNAME": tjk.username,
        "KAFKA_PASSWORD": tjk.password.get_secret_value(),
    }

    report = re.sub(r"^CASE_ID=\S+", f"CASE_ID={case_id}", recipe("kcat-report"), flags=re.MULTILINE)
    if kcat_can_scram():
        followed = await run(["bash", "-euo", "pipefail", "-c", recipe("kcat-follow")], env)
        assert f"case={case_id}" in followed and "ce_type=org.corridor.case.status-changed.v1" in followed
        await run(["bash", "-euo", "pipefail", "-c", report], env)
    else:
        # What the guide says of Debian 12's kcat: the broker refuses its SCRAM exchange, so the
        # same report goes through confluent-kafka's newer librdkafka.
        refused = await fails(["bash", "-euo", "pipefail", "-c", recipe("kcat-follow")], env)
        # (with -q kcat says only that it reached no broker; without, the SASL error)
        assert "SASL authentication error" in refused or "Broker transport failure" in refused, refused
        await run(
            [sys.executable, "-c", recipe("confluent-report")],
            {**env, "CASE_ID": str(case_id), "STATUS": "received"},
        )
    await stream.wait_for([case_id], CaseStatus.RECEIVED, 30)

    await run(
        [sys.executable, "-c", recipe("confluent-report")],
        {**env, "CASE_ID": str(case_id), "STATUS": "closed"},
    )
    await stream.wait_for([case_id], CaseStatus.CLOSED, 30)

    consumed = await run(
        [
            sys.executable,
            "-c",
            recipe("confluent-consume").replace("reception-centre", f"guide-{uuid.uuid4()}"),
        ],
        env,
    )
    mine = [line.split()[2] for line in consumed.splitlines() if str(case_id) in line]
    assert mine == [s.value for s in stream.statuses(case_id)]
    assert mine[-2:] == ["received", "closed"]
