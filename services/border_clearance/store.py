"""Border clearance persistence: expected arrivals, how cases reach the post, decisions.

``BorderStore`` is bound to one connection (a unit of work's, in its transaction) and answers in
the domain's dataclasses.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from contracts.border import CrossingRequirementPublished
from contracts.intake import EvidenceKind
from contracts.transport import ManifestIssued
from services.border_clearance.domain import (
    CaseDecision,
    CaseProgress,
    ExpectedVehicle,
    Hold,
    Manifest,
    Passenger,
    Requirement,
)


class BorderStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # --- manifests and how cases reach the post ---------------------------------------------

    async def save_manifest(self, m: ManifestIssued) -> bool:
        """Store a manifest unless a newer revision is already here; True if stored."""
        current = await self.conn.fetchval(
            "SELECT revision FROM manifests WHERE movement_id = $1 AND vehicle_id = $2",
            m.movement_id,
            m.vehicle_id,
        )
        if current is not None and current >= m.revision:
            return False
        await self.conn.execute(
            "DELETE FROM manifests WHERE movement_id = $1 AND vehicle_id = $2", m.movement_id, m.vehicle_id
        )
        await self.conn.execute(
            """INSERT INTO manifests (movement_id, vehicle_id, manifest_id, revision, route_id, departure_date)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            m.movement_id,
            m.vehicle_id,
            m.manifest_id,
            m.revision,
            m.route_id,
            m.departure_date,
        )
        await self.conn.executemany(
            """INSERT INTO expected_passengers (movement_id, vehicle_id, case_id, person_id, surname, given_names,
                   birth_date, sex, nationality, document_type, document_number)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
            [
                (
                    m.movement_id,
                    m.vehicle_id,
                    p.case_id,
                    p.person_id,
                    p.surname,
                    p.given_names,
                    p.birth_date,
                    p.sex,
                    p.nationality,
                    p.document_type.value,
                    p.document_number,
                )
                for p in m.passengers
            ],
        )
        return True

    async def erase_case(self, case_id: uuid.UUID, at: datetime) -> bool:
        """Anonymise the case's expected passengers and drop the notes about them; False if erased
        before."""
        first = await self.conn.fetchval(
            """INSERT INTO erasures (case_id, erased_at) VALUES ($1, $2)
               ON CONFLICT (case_id) DO NOTHING RETURNING true""",
            case_id,
            at,
        )
        if not first:
            return False
        await self.conn.execute(
            """UPDATE expected_passengers SET surname = '', given_names = '', document_number = '-',
                      birth_date = date_trunc('year', birth_date)::date
               WHERE case_id = $1""",
            case_id,
        )
        await self.conn.execute(
            "UPDATE decisions SET reason = NULL, document_check = NULL WHERE case_id = $1", case_id
        )
        return True

    async def record_departures(
        self, case_ids: Sequence[uuid.UUID], movement_id: str, vehicle_id: str
    ) -> None:
        """The cases aboard a vehicle that departed, in one statement (a departure the post
        already knows of stays as it was)."""
        await self.conn.execute(
            """INSERT INTO departures (case_id, movement_id, vehicle_id)
               SELECT unnest($1::uuid[]), $2, $3 ON CONFLICT DO NOTHING""",
            list(case_ids),
            movement_id,
            vehicle_id,
        )

    async def record_upstream_clearances(self, cleared: Sequence[tuple[uuid.UUID, str]]) -> None:
        """Cases cleared at another post (case, post), in one statement."""
        if not cleared:
            return
        await self.conn.execute(
            """INSERT INTO upstream_clearances (case_id, checkpoint_id)
               SELECT * FROM unnest($1::uuid[], $2::text[]) ON CONFLICT DO NOTHING""",
            [case_id for case_id, _ in cleared],
            [checkpoint_id for _, checkpoint_id in cleared],
        )

    async def lock_manifest(self, movement_id: str, vehicle_id: str) -> Manifest | None:
        """The vehicle's manifest, locked (``FOR UPDATE``) until the transaction ends: two officers
        clearing one vehicle at once decide each case once, one after the other."""
        row = await self.conn.fetchrow(
            """SELECT movement_id, vehicle_id, manifest_id, revision, route_id, departure_date
               FROM manifests WHERE movement_id = $1 AND vehicle_id = $2 FOR UPDATE""",
            movement_id,
            vehicle_id,
        )
        return Manifest(**dict(row)) if row is not None else None

    async def passengers(self, movement_id: str, vehicle_id: str) -> list[Passenger]:
        rows = await self.conn.fetch(
            """SELECT case_id, person_id, surname, given_names, birth_date, sex, nationality, document_type,
                      document_number
               FROM expected_passengers WHERE movement_id = $1 AND vehicle_id = $2
               ORDER BY case_id, person_id""",
            movement_id,
            vehicle_id,
        )
        return [Passenger(**dict(r)) for r in rows]

    async def progress_of(self, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, CaseProgress]:
        """What this post recorded about each case: its decision here, its departure, the posts that
        cleared it (one statement, one snapshot)."""
        if not case_ids:
            return {}
        rows = await self.conn.fetch(
            """SELECT c.case_id,
                      (SELECT bool_and(cleared) FROM decisions d WHERE d.case_id = c.case_id) AS decision,
                      EXISTS (SELECT 1 FROM departures p WHERE p.case_id = c.case_id) AS departed,
                      ARRAY(SELECT checkpoint_id FROM upstream_clearances u WHERE u.case_id = c.case_id)
                          AS cleared_at
               FROM unnest($1::uuid[]) AS c(case_id)""",
            case_ids,
        )
        return {
            r["case_id"]: CaseProgress(r["decision"], r["departed"], frozenset(r["cleared_at"])) for r in rows
        }

    async def save_decisions(
        self, decisions: list[CaseDecision], *, movement_id: str, vehicle_id: str, officer: str, at: datetime
    ) -> None:
        """Every person's decision in these cases, in one statement (the officer's words and the
        document check stay here)."""
        people = [(d.case_id, p) for d in decisions for p in d.people]
        await self.conn.execute(
            """INSERT INTO decisions (case_id, person_id, movement_id, vehicle_id, cleared, reason_code, reason,
                                      officer, decided_at, document_check)
               SELECT case_id, person_id, $7, $8, cleared, reason_code, reason, $9, $10, document_check
               FROM unnest($1::uuid[], $2::uuid[], $3::bool[], $4::text[], $5::text[], $6::text[])
                    AS p(case_id, person_id, cleared, reason_code, reason, document_check)""",
            [case_id for case_id, _ in people],
            [p.person_id for _, p in people],
            [p.cleared for _, p in people],
            [p.reason_code for _, p in people],
            [p.refusal.reason if p.refusal else None for _, p in people],
            [p.document_check for _, p in people],
            movement_id,
            vehicle_id,
            officer,
            at,
        )

    async def expected_arrivals(self) -> list[ExpectedVehicle]:
        rows = await self.conn.fetch(
            """SELECT m.movement_id, m.vehicle_id, m.revision AS manifest_revision, m.departure_date,
                      count(p.person_id) AS people, count(DISTINCT p.case_id) AS cases,
                      count(d.person_id) AS decided
               FROM manifests m
               LEFT JOIN expected_passengers p USING (movement_id, vehicle_id)
               LEFT JOIN decisions d ON d.person_id = p.person_id AND d.case_id = p.case_id
               GROUP BY m.movement_id, m.vehicle_id, m.revision, m.departure_date
               ORDER BY m.departure_date, m.movement_id, m.vehicle_id"""
        )
        return [ExpectedVehicle(**dict(r)) for r in rows]

    # --- requirements ------------------------------------------------------------------------

    async def add_requirement(
        self, req: CrossingRequirementPublished, published_by: str, reference: str | None = None
    ) -> bool:
        """False, adding nothing, when a requirement has this reference (one being added
        concurrently is waited for: the unique index decides)."""
        status = await self.conn.execute(
            """INSERT INTO requirements (requirement_id, code, description, evidence_kind, valid_hours,
                                         effective_from, published_by, published_at, reference,
                                         effective_until)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (reference) WHERE reference IS NOT NULL DO NOTHING""",
            req.requirement_id,
            req.code,
            req.description,
            req.evidence_kind.value,
            req.valid_hours,
            req.effective_from,
            published_by,
            req.published_at,
            reference,
            req.effective_until,
        )
        return status.endswith(" 1")

    async def lift_requirement(self, requirement_id: uuid.UUID, at: datetime) -> bool:
        """True if the requirement was active and is lifted now."""
        status = await self.conn.execute(
            "UPDATE requirements SET lifted_at = $2 WHERE requirement_id = $1 AND lifted_at IS NULL",
            requirement_id,
            at,
        )
        return status.endswith(" 1")

    async def requirements(self, reference: str | None = None) -> list[Requirement]:
        rows = await self.conn.fetch(
            """SELECT requirement_id, code, description, evidence_kind, valid_hours, effective_from,
                      published_by, published_at, lifted_at, reference, effective_until
               FROM requirements WHERE $1::text IS NULL OR reference = $1 ORDER BY published_at""",
            reference,
        )
        return [Requirement(**{**dict(r), "evidence_kind": EvidenceKind(r["evidence_kind"])}) for r in rows]

    # --- the hold list -----------------------------------------------------------------------

    async def hold(self, document_number: str, reason_code: str, reason: str, by: str) -> None:
        await self.conn.execute(
            """INSERT INTO hold_list (document_number, reason_code, reason, added_by) VALUES ($1, $2, $3, $4)
               ON CONFLICT (document_number) DO UPDATE SET reason_code = EXCLUDED.reason_code,
                   reason = EXCLUDED.reason, added_by = EXCLUDED.added_by, added_at = now()""",
            document_number,
            reason_code,
            reason,
            by,
        )

    async def release(self, document_number: str) -> bool:
        """True if the document was on the hold list."""
        status = await self.conn.execute("DELETE FROM hold_list WHERE document_number = $1", document_number)
        return status.endswith(" 1")

    async def holds_for(self, document_numbers: list[str]) -> dict[str, Hold]:
        rows = await self.conn.fetch(
            "SELECT document_number, reason_code, reason FROM hold_list WHERE document_number = ANY($1::text[])",
            document_numbers,
        )
        return {r["document_number"]: Hold(**dict(r)) for r in rows}
