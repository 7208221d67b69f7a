"""Registration over HTTP: ``POST /cases`` on a running intake service against ``GET /health/live``
on the same server.

The intake service runs as its own process (as in ``make demo``), on the benchmark's Kafka and
PostgreSQL. The baseline is the cheapest request that server answers (FastAPI + uvicorn, no
database): the ratio is what a registration costs beyond the HTTP stack (validation, duplicate
check, the case and its outbox rows in one transaction). Both run with the same number of
concurrent clients. The service is stopped afterwards, so it does not consume the records the
other benchmarks write to the status topic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx

from bench.stats import Run, Series
from contracts.routes import RouteBook
from corridor.auth import Role
from devkit import scenario
from devkit.devinfra import procs
from devkit.devstack import service_specs

SERVICE = "intake"


async def _load(
    client: httpx.AsyncClient, count: int, concurrency: int, request: Callable[[int], Any], ok: set[int]
) -> Run:
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            i = next_index
            next_index += 1
            t = time.perf_counter()
            response = await request(i)
            latencies.append((time.perf_counter() - t) * 1000)
            if response.status_code not in ok:
                raise RuntimeError(
                    f"{response.request.method} {response.request.url}: "
                    f"{response.status_code} {response.text[:300]}"
                )

    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return Run(items=count, seconds=time.perf_counter() - start, latencies_ms=latencies)


async def _measure(
    url: str, cfg: Any, base: Series, measured: Series, progress: Callable[[str], None], token: str
) -> None:
    travel = date.today() + timedelta(days=30)
    warm = max(20, cfg.http_requests // 10)
    total = warm + cfg.http_requests * cfg.repeat
    bodies = [scenario.single_traveller(travel, key=f"bench/{i}-{time.time_ns()}") for i in range(total)]
    used = 0
    limits = httpx.Limits(
        max_connections=cfg.http_concurrency, max_keepalive_connections=cfg.http_concurrency
    )
    # A caseworker's token, as every registration needs: its verification is part of the cost.
    caseworker = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=30.0, limits=limits, headers=caseworker) as client:

        def live(_i: int) -> Any:
            return client.get(url + "/health/live")

        def register(i: int) -> Any:
            return client.post(url + "/cases", json=bodies[used + i])

        progress("registration: warm-up (not counted)")
        await _load(client, warm, cfg.http_concurrency, live, {200})
        await _load(client, warm, cfg.http_concurrency, register, {201})
        used += warm
        for rep in range(1, cfg.repeat + 1):
            run = await _load(client, cfg.http_requests, cfg.http_concurrency, live, {200})
            base.runs.append(run)
            run2 = await _load(client, cfg.http_requests, cfg.http_concurrency, register, {201})
            measured.runs.append(run2)
            used += cfg.http_requests
            progress(
                f"registration {rep}/{cfg.repeat}: /health/live {run.rate:,.0f}/s, "
                f"POST /cases {run2.rate:,.0f}/s (p50 {run2.p50:.1f} ms)"
            )


def run(cfg: Any, infra: Any, results: Any, progress: Callable[[str], None]) -> None:
    stack = infra.stack
    routes = RouteBook.load(stack.routes_file)
    ports = 4 + len({cp.checkpoint_id for r in routes.routes for cp in r.checkpoints})
    specs = service_specs(stack.routes_file, procs.free_ports(ports))
    stack.specs = {s.name: s for s in specs if s.name == SERVICE}
    stack.create_database_roles()  # the service connects as its own role, as on the platform
    started = time.monotonic()
    stack.start_service(SERVICE, timeout=120.0)
    progress(f"intake service ready after {time.monotonic() - started:.1f} s")
    try:
        label = f"{cfg.http_concurrency} concurrent clients"
        base = results.add(
            Series(
                "Registration",
                f"GET /health/live, {label} (baseline)",
                "requests/s",
                baseline=True,
                latency_label="request",
            )
        )
        measured = results.add(
            Series(
                "Registration",
                f"POST /cases (one traveller), {label}",
                "requests/s",
                latency_label="request",
                note="intake process; validation, duplicate check, case + outbox in 1 transaction",
            )
        )
        token = stack.token(Role.CASEWORKER, subject="bench")
        asyncio.run(_measure(stack.url(SERVICE), cfg, base, measured, progress, token))
    finally:
        stack.stop_service(SERVICE)
