"""The integration guide's retry recipe (docs/integration.md, ``curl-retry``), run as written
through a link that loses the first answer: the registration is made once, and curl's retry with
the same ``Idempotency-Key`` is answered the first registration."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import date, timedelta
from pathlib import Path

import asyncpg

from corridor.auth import Role
from devkit import scenario
from devkit.devstack import Stack
from tests.integration.lossy import LosesTheFirstAnswer
from tests.integration.test_integration_guide import recipe


async def test_the_guides_retry_recipe_registers_once_through_a_link_that_loses_the_answer(
    stack: Stack, tmp_path: Path
) -> None:
    body = scenario.single_traveller(date.today() + timedelta(days=200))
    given = body["members"][0]["given_names"]
    (tmp_path / "registration.json").write_text(json.dumps(body))
    token = stack.token(Role.INTEGRATION_CLIENT, subject="kaz-registry")
    relay = LosesTheFirstAnswer(stack.url("intake"))
    async with relay as url:
        env = {**os.environ, "INTAKE_URL": url, "TOKEN": token}
        done = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-euo", "pipefail", "-c", recipe("curl-retry")],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
            cwd=tmp_path,
        )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert relay.connections >= 2, "the first answer was not lost: nothing was retried"
    answer = json.loads((tmp_path / "answer.json").read_text())
    headers = (tmp_path / "answer-headers.txt").read_text().lower()
    assert answer["created"] is True and "idempotent-replayed: true" in headers, (answer, headers)
    conn = await asyncpg.connect(stack.postgres.dsn(stack.specs["intake"].database))
    try:
        rows = await conn.fetch("SELECT case_id FROM persons WHERE given_names = $1", given)
    finally:
        await conn.close()
    assert [str(r["case_id"]) for r in rows] == [answer["case_id"]]
