"""How many cases each crossing's requirements hold back, as a Prometheus gauge: a requirement
published at short notice that many travellers cannot meet is what operations must see first.

Labels are the checkpoint only (bounded); no case id, no person.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from datetime import date

import asyncpg
from prometheus_client import CollectorRegistry, Gauge

from contracts.routes import RouteBook
from services.eligibility.domain import Requirement
from services.eligibility.store import EligibilityStore


async def held_by_requirements(conn: asyncpg.Connection) -> list[tuple[str, date]]:
    """(route, travel date) of each case not departed nor withdrawn whose latest decision is
    pending on the crossing requirements rule."""
    rows = await conn.fetch(
        """SELECT c.route_id, c.planned_travel_date FROM cases c
           JOIN LATERAL (SELECT outcome, rules FROM decisions d WHERE d.case_id = c.case_id
                         ORDER BY version DESC LIMIT 1) d ON true
           WHERE c.departed_at IS NULL AND c.withdrawn_at IS NULL AND d.outcome = 'pending'
             AND d.rules @> '[{"rule": "crossing_requirements_met", "outcome": "pending"}]'::jsonb"""
    )
    return [(r["route_id"], r["planned_travel_date"]) for r in rows]


def held_by_checkpoint(
    held: Iterable[tuple[str, date]], requirements: Iterable[Requirement], routes: RouteBook
) -> Counter[str]:
    """``held``: (route, travel date) of each case whose latest decision waits on a crossing
    requirement. Counted once at each checkpoint on its route with an active requirement in force
    on its travel date."""
    reqs = list(requirements)
    counts: Counter[str] = Counter({r.checkpoint_id: 0 for r in reqs})
    for route_id, travel_date in held:
        route = routes.get(route_id)
        if route is None:
            continue
        on_route = {cp.checkpoint_id for cp in route.checkpoints}
        for checkpoint in {
            r.checkpoint_id for r in reqs if r.checkpoint_id in on_route and r.applies_on(travel_date)
        }:
            counts[checkpoint] += 1
    return counts


def requirement_figures(
    registry: CollectorRegistry, routes: RouteBook
) -> Callable[[asyncpg.Connection], Awaitable[None]]:
    held = Gauge(
        "corridor_requirement_held_cases",
        "Cases not yet departed whose eligibility waits on a crossing requirement, by the "
        "checkpoint whose active requirement applies to them",
        ["checkpoint"],
        registry=registry,
    )

    async def read(conn: asyncpg.Connection) -> None:
        requirements = await EligibilityStore(conn).active_requirements()
        counts = held_by_checkpoint(await held_by_requirements(conn), requirements, routes)
        held.clear()  # a lifted requirement's checkpoint goes
        for checkpoint, n in counts.items():
            held.labels(checkpoint).set(n)

    return read
