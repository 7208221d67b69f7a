"""The operations board: what the day of a movement looks like, projected from public records.

Pure: the feeds (``feeds.py``) hand it status changes, vehicle movements, dead letters' headers and
the services' health; it answers snapshots. Nothing it holds names a person: a case is its
pseudonymous id, a count of members, statuses, places and public reason codes (the status stream's
contract), a dead letter is its consumer, its reason code and when it failed (never its body).
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts.routes import Checkpoint, Route, RouteBook
from contracts.status import CaseStatus, CaseStatusChanged
from contracts.transport import MovementDeparted, VehicleProgressRecorded

_S = CaseStatus

IN_MOTION = frozenset({_S.MANIFESTED, _S.DEPARTED, _S.EXIT_CLEARED, _S.ENTRY_CLEARED, _S.TRANSIT_INCIDENT})
"""Statuses of a case between its vehicle being planned and its arrival: the posts on its route
expect it (they have its manifest)."""

ON_THE_ROAD = frozenset({_S.DEPARTED, _S.EXIT_CLEARED, _S.ENTRY_CLEARED, _S.TRANSIT_INCIDENT})
"""Departed and not arrived: a case that stops changing here is stuck, at a post or on the way."""

HELD_CODES = frozenset({"held_at_border", "document_mismatch"})
"""A border post's public reasons for keeping a family back (hold list, documents), as against an
officer's refusal: both are ``refused_at_border`` on the stream."""

MAX_LISTED = 100
"""At most this many stuck cases or vehicles in a snapshot (the counts stay exact)."""


@dataclass(frozen=True)
class Step:
    status: CaseStatus
    at: datetime
    country: str | None
    place: str | None
    checkpoint_id: str | None
    movement_id: str | None
    reason_code: str | None
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "at": self.at.isoformat(),
            "country": self.country,
            "place": self.place,
            "checkpoint_id": self.checkpoint_id,
            "movement_id": self.movement_id,
            "reason_code": self.reason_code,
            "reason": self.reason,
        }


@dataclass
class CaseView:
    case_id: uuid.UUID
    members: int
    steps: list[Step] = field(default_factory=list)
    decided_at: dict[str, Step] = field(default_factory=dict)
    """checkpoint id -> the post's decision (cleared, refused or held)"""

    @property
    def last(self) -> Step:
        return self.steps[-1]


@dataclass
class VehicleView:
    movement_id: str
    vehicle_id: str
    case_ids: frozenset[uuid.UUID]
    departed_at: datetime
    checkpoint_id: str | None = None
    stage: str | None = None
    since: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.movement_id}/{self.vehicle_id}"


@dataclass
class DeadLetterTally:
    consumer: str
    topic: str
    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    last_at: datetime | None = None


@dataclass
class ServiceHealth:
    name: str
    ready: bool | None = None
    checks: dict[str, bool] = field(default_factory=dict)
    consumers: dict[str, dict[str, float]] = field(default_factory=dict)
    outbox_pending: float | None = None
    outbox_oldest_seconds: float | None = None
    problem: str | None = None
    """Why the page cannot say (unreachable, metrics refused): never a response body."""


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    lag: int
    partitions: int


class Board:
    """Every case's public timeline, every vehicle's last known place, dead letters by consumer
    and reason, the services' health and consumer lag; ``version`` changes with each of them."""

    def __init__(self, routes: RouteBook, *, stuck_after_seconds: float) -> None:
        self.routes = routes
        self.stuck_after_seconds = stuck_after_seconds
        self.cases: dict[uuid.UUID, CaseView] = {}
        self.vehicles: dict[str, VehicleView] = {}
        self.dead_letters: dict[str, DeadLetterTally] = {}
        self.services: dict[str, ServiceHealth] = {}
        self.lag: list[GroupLag] = []
        self.lag_problem: str | None = None
        self.records = Counter[str]()
        self.version = 0
        checkpoints: dict[str, Checkpoint] = {}
        for route in routes.routes:
            for cp in route.checkpoints:
                checkpoints.setdefault(cp.checkpoint_id, cp)
        self.checkpoints = checkpoints

    # --- what the feeds hand in ---------------------------------------------------------------

    def apply_status(self, change: CaseStatusChanged) -> None:
        place = change.place
        step = Step(
            status=change.status,
            at=change.occurred_at,
            country=place.country if place else None,
            place=place.name if place else None,
            checkpoint_id=place.checkpoint_id if place else None,
            movement_id=change.movement_id,
            reason_code=change.reason_code,
            reason=change.reason,
        )
        case = self.cases.get(change.case_id)
        if case is None:
            case = self.cases[change.case_id] = CaseView(change.case_id, change.members)
        case.members = change.members
        case.steps.append(step)
        if step.checkpoint_id and step.status in (_S.EXIT_CLEARED, _S.ENTRY_CLEARED, _S.REFUSED_AT_BORDER):
            case.decided_at[step.checkpoint_id] = step
        self.records["status"] += 1
        self.version += 1

    def apply_vehicle(self, event: MovementDeparted | VehicleProgressRecorded) -> None:
        key = f"{event.movement_id}/{event.vehicle_id}"
        if isinstance(event, MovementDeparted):
            known = self.vehicles.get(key)
            if known is None:
                self.vehicles[key] = VehicleView(
                    event.movement_id, event.vehicle_id, frozenset(event.case_ids), event.departed_at
                )
        else:
            vehicle = self.vehicles.get(key)
            if vehicle is None:  # its departure is on another partition's past, or was compacted
                vehicle = self.vehicles[key] = VehicleView(
                    event.movement_id, event.vehicle_id, frozenset(event.case_ids), event.at
                )
            # Records of one vehicle share a key, so they arrive in the order they were written.
            vehicle.case_ids = frozenset(event.case_ids)
            vehicle.checkpoint_id, vehicle.stage, vehicle.since = event.checkpoint_id, event.stage, event.at
        self.records["movements"] += 1
        self.version += 1

    def watch_dead_letters(self, names: list[str], prefix: str) -> None:
        """Every consumer's dead-letter topic, shown from the start with none: a quiet consumer is
        one the page knows about, not one it forgot."""
        for topic in names:
            self.dead_letters.setdefault(
                topic, DeadLetterTally(consumer=topic.removeprefix(prefix), topic=topic)
            )
        self.version += 1

    def apply_dead_letter(self, topic: str, consumer: str, reason: str, failed_at: datetime | None) -> None:
        tally = self.dead_letters.get(topic)
        if tally is None:
            tally = self.dead_letters[topic] = DeadLetterTally(consumer=consumer, topic=topic)
        tally.count += 1
        tally.reasons[reason or "unknown"] += 1
        if failed_at is not None and (tally.last_at is None or failed_at > tally.last_at):
            tally.last_at = failed_at
        self.records["dead_letters"] += 1
        self.version += 1

    def set_health(self, health: ServiceHealth) -> None:
        if self.services.get(health.name) != health:
            self.services[health.name] = health
            self.version += 1

    def set_lag(self, lag: list[GroupLag], problem: str | None = None) -> None:
        lag = sorted(lag, key=lambda g: (g.group, g.topic))
        if lag != self.lag or problem != self.lag_problem:
            self.lag, self.lag_problem = lag, problem
            self.version += 1

    # --- what the page shows ------------------------------------------------------------------

    def timeline(self, case_id: uuid.UUID) -> list[Step] | None:
        case = self.cases.get(case_id)
        return list(case.steps) if case else None

    def route_of(self, case: CaseView) -> Route | None:
        """The one route consistent with the checkpoints the case was decided at, or the
        deployment's only route; None when that is ambiguous (a case of a multi-route deployment
        not yet at any post: the status stream does not say its route)."""
        visited = set(case.decided_at)
        candidates = [r for r in self.routes.routes if visited <= {cp.checkpoint_id for cp in r.checkpoints}]
        return candidates[0] if len(candidates) == 1 else None

    def funnel(self) -> list[dict[str, Any]]:
        cases = Counter[CaseStatus]()
        people = Counter[CaseStatus]()
        for case in self.cases.values():
            cases[case.last.status] += 1
            people[case.last.status] += case.members
        return [{"status": s.value, "cases": cases[s], "people": people[s]} for s in CaseStatus]

    def crossings(self) -> list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {
            cp_id: {
                "checkpoint_id": cp_id,
                "post": cp.post,
                "crossing": cp.crossing,
                "country": cp.country,
                "direction": cp.direction,
                "expected": 0,
                "at_post": 0,
                "cleared": 0,
                "refused": 0,
                "held": 0,
            }
            for cp_id, cp in self.checkpoints.items()
        }
        at_post = {
            c: v.checkpoint_id
            for v in self.vehicles.values()
            if v.stage == "arrived" and v.checkpoint_id
            for c in v.case_ids
        }
        for case in self.cases.values():
            for cp_id, step in case.decided_at.items():
                row = rows.get(cp_id)
                if row is None:
                    continue
                if step.status is _S.REFUSED_AT_BORDER:
                    row["held" if step.reason_code in HELD_CODES else "refused"] += 1
                else:
                    row["cleared"] += 1
            if case.last.status not in IN_MOTION:
                continue
            route = self.route_of(case)
            if route is None:
                continue
            for cp in route.checkpoints:
                if cp.checkpoint_id not in case.decided_at:
                    rows[cp.checkpoint_id]["expected"] += 1
                    if at_post.get(case.case_id) == cp.checkpoint_id:
                        rows[cp.checkpoint_id]["at_post"] += 1
        return [rows[cp_id] for cp_id in self.checkpoints]

    def _where(self, vehicle: VehicleView) -> str:
        if vehicle.checkpoint_id is None:
            return "left the gathering point"
        cp = self.checkpoints.get(vehicle.checkpoint_id)
        name = f"{cp.post} ({cp.country})" if cp else vehicle.checkpoint_id
        if vehicle.stage == "arrived":
            return f"at {name}"
        found = self.routes.checkpoint(vehicle.checkpoint_id)
        if found is not None:
            route, _ = found
            i = route.index_of(vehicle.checkpoint_id)
            if i + 1 < len(route.checkpoints):
                nxt = route.checkpoints[i + 1]
                return f"left {name}, towards {nxt.post} ({nxt.country})"
            return f"left {name}, towards {route.reception_point.name}"
        return f"left {name}"

    def vehicles_on_road(self, now: datetime) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for v in self.vehicles.values():
            aboard = [
                self.cases[c]
                for c in v.case_ids
                if c in self.cases and self.cases[c].last.status in ON_THE_ROAD
            ]
            if not aboard:
                continue
            since = v.since or v.departed_at
            rows.append(
                {
                    "vehicle": v.key,
                    "movement_id": v.movement_id,
                    "vehicle_id": v.vehicle_id,
                    "where": self._where(v),
                    "checkpoint_id": v.checkpoint_id,
                    "stage": v.stage,
                    "since": since.isoformat(),
                    "cases": len(aboard),
                    "people": sum(c.members for c in aboard),
                    "stuck": (now - since).total_seconds() > self.stuck_after_seconds,
                }
            )
        rows.sort(key=lambda r: r["since"])
        return rows[:MAX_LISTED]

    def stuck(self, now: datetime) -> tuple[int, list[dict[str, Any]]]:
        found: list[dict[str, Any]] = []
        for case in self.cases.values():
            last = case.last
            waited = (now - last.at).total_seconds()
            # On the road only: a manifested case may wait days for its departure date.
            if last.status in ON_THE_ROAD and waited > self.stuck_after_seconds:
                found.append(
                    {
                        "case_id": str(case.case_id),
                        "status": last.status.value,
                        "where": last.place or "",
                        "country": last.country,
                        "movement_id": last.movement_id,
                        "since": last.at.isoformat(),
                        "minutes": round(waited / 60, 1),
                    }
                )
        found.sort(key=lambda r: r["since"])
        return len(found), found[:MAX_LISTED]

    def snapshot(self, now: datetime) -> dict[str, Any]:
        stuck_count, stuck = self.stuck(now)
        return {
            "version": self.version,
            "generated_at": now.isoformat(),
            "stuck_after_seconds": self.stuck_after_seconds,
            "totals": {
                "cases": len(self.cases),
                "people": sum(c.members for c in self.cases.values()),
                "records": dict(self.records),
            },
            "funnel": self.funnel(),
            "crossings": self.crossings(),
            "vehicles": self.vehicles_on_road(now),
            "stuck_count": stuck_count,
            "stuck": stuck,
            "dead_letters": [
                {
                    "consumer": t.consumer,
                    "topic": t.topic,
                    "count": t.count,
                    "reasons": dict(t.reasons.most_common()),
                    "last_at": t.last_at.isoformat() if t.last_at else None,
                }
                for t in sorted(self.dead_letters.values(), key=lambda t: t.consumer)
            ],
            "services": [
                {
                    "name": h.name,
                    "ready": h.ready,
                    "checks": h.checks,
                    "consumers": h.consumers,
                    "outbox_pending": h.outbox_pending,
                    "outbox_oldest_seconds": h.outbox_oldest_seconds,
                    "problem": h.problem,
                }
                for h in sorted(self.services.values(), key=lambda h: h.name)
            ],
            "lag": [
                {"group": g.group, "topic": g.topic, "lag": g.lag, "partitions": g.partitions}
                for g in self.lag
            ],
            "lag_problem": self.lag_problem,
        }
