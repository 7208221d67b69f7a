"""Registering and updating cases: one path for the HTTP API and the bulk import.

Each registration writes the case, its duplicate keys and flags, and its events in one
transaction; a registration key makes a repeat create nothing. The transaction first takes an
advisory lock per duplicate key, so two registrations of the same person at the same moment (in one
process or several, over HTTP or from an import) are made one after the other and the later one
flags the earlier.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from contracts import topics
from contracts.intake import CaseUpdated, Person
from contracts.routes import RouteBook
from contracts.status import CaseStatus, CaseStatusChanged
from corridor.outbox import enqueue
from services.intake import domain, store
from services.intake.duplicates import PersonLike, keys_of, lock_ids, normalise_name


class RegistrationRejected(ValueError):
    """The registration cannot be accepted as it stands; ``errors`` name the fields."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


@dataclass
class Registered:
    case_id: uuid.UUID
    created: bool
    duplicate_flags: list[dict[str, Any]] = field(default_factory=list)


def check(command: domain.RegisterCase, routes: RouteBook, now: datetime) -> None:
    errors: list[dict[str, Any]] = []
    if routes.get(command.route_id) is None:
        errors.append(
            {"loc": ("body", "route_id"), "msg": f"unknown route {command.route_id!r}", "type": "value_error"}
        )
    for problem in domain.validate_against_today(command, now.date()):
        where, msg = problem.split(": ", 1)
        errors.append({"loc": ("body", *where.split(".")), "msg": msg, "type": "value_error"})
    if errors:
        raise RegistrationRejected(errors)


async def register(
    conn: asyncpg.Connection, command: domain.RegisterCase, *, routes: RouteBook, source: str, now: datetime
) -> Registered:
    check(command, routes, now)
    if command.registration_key:
        existing = await store.case_for_key(conn, command.registration_key)
        if existing is not None:
            return Registered(existing, created=False)
    case = domain.build_case(command, case_id=uuid.uuid4(), now=now)
    try:
        async with conn.transaction():
            # Before anything else: a registration of the same person committing meanwhile is seen by
            # the lookups below, or waits for this one to commit and then sees it.
            await _lock_keys(conn, case.members)
            await store.insert_case(
                conn, case, registration_key=command.registration_key, status=CaseStatus.REGISTERED
            )
            flags = await _record_keys(conn, case.case_id, case.members)
            # Status first: the relay publishes a case's rows in order, so everything downstream of
            # CaseRegistered lands on the status stream after "registered".
            await enqueue(
                conn,
                CaseStatusChanged(
                    case_id=case.case_id,
                    status=CaseStatus.REGISTERED,
                    occurred_at=now,
                    members=len(case.members),
                ),
                topic=topics.STATUS,
                source=source,
            )
            await enqueue(conn, case, topic=topics.CASES, source=source)
    except asyncpg.UniqueViolationError:
        # The same registration key, committed by a concurrent request in the meantime.
        assert command.registration_key is not None
        existing = await store.case_for_key(conn, command.registration_key)
        assert existing is not None
        return Registered(existing, created=False)
    return Registered(case.case_id, created=True, duplicate_flags=flags)


async def update(
    conn: asyncpg.Connection,
    case_id: uuid.UUID,
    command: domain.UpdateCase,
    *,
    routes: RouteBook,
    source: str,
    now: datetime,
) -> CaseUpdated:
    """Replace a case's details before departure; members keep their ids by position and role.

    Runs in the caller's transaction, which holds the new keys' locks until it commits."""
    # Before the case's row lock, in the order registrations take them (a registration may wait for
    # that row, to flag this case, while holding its key locks).
    await _lock_keys(conn, command.members)
    row = await store.case_for_update(conn, case_id)
    if row is None:
        raise LookupError(f"no case {case_id}")
    current = CaseStatus(row["status"])
    if current not in domain.WITHDRAWABLE or await store.is_withdrawn(conn, case_id):
        raise PermissionError(f"case is {current.value}: it can be changed only before departure")
    check(command, routes, now)
    # A member keeps their id when name and birth date still match, so decisions, evidence and
    # manifests stay attached to the same person.
    known = {
        (normalise_name(r["surname"]), normalise_name(r["given_names"]), r["birth_date"]): r["person_id"]
        for r in await store.people_of(conn, case_id)
    }
    rebuilt = domain.build_case(command, case_id=case_id, now=now)
    members: list[Person] = []
    for m in rebuilt.members:
        same = known.pop((normalise_name(m.surname), normalise_name(m.given_names), m.birth_date), None)
        members.append(m.model_copy(update={"person_id": same}) if same else m)
    updated = CaseUpdated(
        case_id=case_id,
        registered_at=row["registered_at"],
        updated_at=now,
        route_id=command.route_id,
        planned_travel_date=command.planned_travel_date,
        consent=rebuilt.consent,
        members=members,
    )
    await store.replace_case(conn, updated)
    await _record_keys(conn, case_id, members)
    await enqueue(conn, updated, topic=topics.CASES, source=source)
    return updated


async def _lock_keys(conn: asyncpg.Connection, members: Sequence[PersonLike]) -> None:
    """Serialise, across processes, registrations and updates that may be the same person."""
    await store.lock_duplicate_keys(conn, lock_ids(keys_of(m) for m in members))


async def _record_keys(
    conn: asyncpg.Connection, case_id: uuid.UUID, members: list[Person]
) -> list[dict[str, Any]]:
    flags: list[dict[str, Any]] = []
    for person in members:
        keys = keys_of(person)
        pairs = [("document", keys.document)] + [("name", k) for k in sorted(keys.names)]
        for kind, key in pairs:
            await store.add_person_key(conn, person.person_id, case_id, kind, key)
            for other in await store.matching_people(conn, kind, key, exclude_case=case_id):
                flag = await store.flag_duplicate(
                    conn, case_id, person.person_id, other["case_id"], other["person_id"], kind
                )
                if flag is not None:
                    flags.append(flag)
    return flags
