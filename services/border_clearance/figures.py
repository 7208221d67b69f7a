"""The post's queue as Prometheus gauges: how many cases are expected, at the post waiting for an
officer, cleared and refused, and how long the longest-waiting one has waited.

Labels are the checkpoint and the stage only (bounded); no case id, no person.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

import asyncpg
from prometheus_client import CollectorRegistry, Gauge

from contracts.routes import RouteBook
from services.border_clearance.domain import AtPost, CaseProgress, QueuedCase, previous_checkpoint, stage


async def queue(conn: asyncpg.Connection) -> list[QueuedCase]:
    """Every case on a manifest to this post with what the post recorded about it (one statement;
    nothing about the people)."""
    rows = await conn.fetch(
        """SELECT c.case_id, c.route_id,
                  (SELECT bool_and(cleared) FROM decisions d WHERE d.case_id = c.case_id) AS decision,
                  (SELECT noted_at FROM departures d WHERE d.case_id = c.case_id) AS departed_at,
                  ARRAY(SELECT checkpoint_id FROM upstream_clearances u WHERE u.case_id = c.case_id
                        ORDER BY checkpoint_id) AS cleared_at,
                  ARRAY(SELECT noted_at FROM upstream_clearances u WHERE u.case_id = c.case_id
                        ORDER BY checkpoint_id) AS cleared_noted
           FROM (SELECT DISTINCT ON (p.case_id) p.case_id, m.route_id
                 FROM expected_passengers p JOIN manifests m USING (movement_id, vehicle_id)
                 ORDER BY p.case_id, m.received_at DESC) c"""
    )
    return [
        QueuedCase(
            r["route_id"],
            CaseProgress(r["decision"], r["departed_at"] is not None, frozenset(r["cleared_at"])),
            r["departed_at"],
            dict(zip(r["cleared_at"], r["cleared_noted"], strict=True)),
        )
        for r in rows
    ]


def tally(
    queue: Iterable[QueuedCase], routes: RouteBook, checkpoint_id: str, now: datetime
) -> tuple[Counter[AtPost], float]:
    """Cases by stage at this post, and the longest wait (seconds) of a case that arrived and is
    not decided yet (0 when none waits)."""
    counts: Counter[AtPost] = Counter()
    longest = 0.0
    for case in queue:
        route = routes.get(case.route_id)
        previous = previous_checkpoint(route, checkpoint_id) if route is not None else None
        at = stage(case.progress, previous)
        counts[at] += 1
        reached = case.reached_at(previous)
        if at is AtPost.ARRIVED and reached is not None:
            longest = max(longest, (now - reached).total_seconds())
    return counts, longest


def crossing_figures(
    registry: CollectorRegistry, routes: RouteBook, checkpoint_id: str
) -> Callable[[asyncpg.Connection], Awaitable[None]]:
    """The gauges, in ``registry``, and the reader that sets them from the post's database."""
    cases = Gauge(
        "corridor_crossing_cases",
        "Cases on manifests to a border post by stage: expected (not here yet), arrived (at the "
        "post, held until an officer decides), cleared, refused",
        ["checkpoint", "stage"],
        registry=registry,
    )
    waiting = Gauge(
        "corridor_crossing_oldest_waiting_age_seconds",
        "How long the case waiting longest at the post (arrived, not decided) has waited; 0 when none waits",
        ["checkpoint"],
        registry=registry,
    )

    async def read(conn: asyncpg.Connection) -> None:
        now = await conn.fetchval("SELECT clock_timestamp()")
        counts, longest = tally(await queue(conn), routes, checkpoint_id, now)
        for at in AtPost:
            cases.labels(checkpoint_id, at.value).set(counts[at])
        waiting.labels(checkpoint_id).set(longest)

    return read
