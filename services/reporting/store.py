"""Reporting's projection on PostgreSQL (asyncpg): status changes, profiles, requirement changes and
the situation reports generated."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from contracts.intake import AgeBand
from services.reporting.domain import Member, Profile, StatusRecord
from services.reporting.sitrep import RequirementChange


@dataclass(frozen=True)
class StoredReport:
    day: date
    generated_at: datetime
    threshold: int
    html: str
    pdf: bytes


class ReportingStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # --- the projection ------------------------------------------------------------------------

    async def add_statuses(self, records: Sequence[StatusRecord]) -> None:
        """In their order (``id`` follows it: reports order changes of one instant by it)."""
        if not records:
            return
        await self.conn.execute(
            """INSERT INTO status_changes (case_id, status, occurred_at, members, movement_id,
                                           checkpoint_id, place_name, country, reason_code)
               SELECT case_id, status, occurred_at, members, movement_id, checkpoint_id, place_name,
                      country, reason_code
               FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::int[], $5::text[], $6::text[],
                           $7::text[], $8::text[], $9::text[])
                   WITH ORDINALITY AS r(case_id, status, occurred_at, members, movement_id,
                                        checkpoint_id, place_name, country, reason_code, n)
               ORDER BY n""",
            [r.case_id for r in records],
            [r.status for r in records],
            [r.occurred_at for r in records],
            [r.members for r in records],
            [r.movement_id for r in records],
            [r.checkpoint_id for r in records],
            [r.place_name for r in records],
            [r.country for r in records],
            [r.reason_code for r in records],
        )

    async def save_profiles(self, profiles: Sequence[tuple[Profile, datetime]]) -> None:
        """Keep the newest profile of each case (one read late changes nothing), in one statement;
        each case once."""
        await self.conn.execute(
            """INSERT INTO profiles (case_id, profiled_at, route_id, registered_on, planned_travel_date,
                                     origin_city, members, erased)
               SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::date[], $5::date[],
                                    $6::text[], $7::jsonb[], $8::boolean[])
               ON CONFLICT (case_id) DO UPDATE SET
                   profiled_at = EXCLUDED.profiled_at, route_id = EXCLUDED.route_id,
                   registered_on = EXCLUDED.registered_on,
                   planned_travel_date = EXCLUDED.planned_travel_date,
                   origin_city = EXCLUDED.origin_city, members = EXCLUDED.members, erased = EXCLUDED.erased
               WHERE profiles.profiled_at <= EXCLUDED.profiled_at""",
            [p.case_id for p, _ in profiles],
            [at for _, at in profiles],
            [p.route_id for p, _ in profiles],
            [p.registered_on for p, _ in profiles],
            [p.planned_travel_date for p, _ in profiles],
            [p.origin_city for p, _ in profiles],
            [
                json.dumps([[m.sex, m.age_band.value, list(m.vulnerabilities)] for m in p.members])
                for p, _ in profiles
            ],
            [p.erased for p, _ in profiles],
        )

    async def add_requirement_change(self, c: RequirementChange) -> None:
        await self.conn.execute(
            """INSERT INTO requirement_changes (requirement_id, change, checkpoint_id, at, code, description,
                                                effective_from)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
            c.requirement_id,
            c.change,
            c.checkpoint_id,
            c.at,
            c.code,
            c.description,
            c.effective_from,
        )

    # --- what reports read -----------------------------------------------------------------------

    async def status_records(self, until: datetime | None = None) -> list[StatusRecord]:
        rows = await self.conn.fetch(
            """SELECT case_id, status, occurred_at, members, movement_id, checkpoint_id, place_name,
                      country, reason_code
               FROM status_changes WHERE $1::timestamptz IS NULL OR occurred_at < $1
               ORDER BY occurred_at, id""",
            until,
        )
        return [StatusRecord(**dict(r)) for r in rows]

    async def profiles(self) -> dict[uuid.UUID, Profile]:
        rows = await self.conn.fetch("SELECT * FROM profiles")
        return {
            r["case_id"]: Profile(
                case_id=r["case_id"],
                route_id=r["route_id"],
                registered_on=r["registered_on"],
                planned_travel_date=r["planned_travel_date"],
                origin_city=r["origin_city"],
                members=tuple(
                    Member(sex, AgeBand(band), tuple(vulnerabilities))
                    for sex, band, vulnerabilities in json.loads(r["members"])
                ),
                erased=r["erased"],
            )
            for r in rows
        }

    async def requirement_changes(self) -> list[RequirementChange]:
        """Every change; a lifting carries the code and text of what it lifts."""
        rows = await self.conn.fetch(
            """SELECT c.requirement_id, c.checkpoint_id, c.change, c.at,
                      coalesce(nullif(c.code, ''), p.code, '') AS code,
                      coalesce(nullif(c.description, ''), p.description, '') AS description,
                      coalesce(c.effective_from, p.effective_from) AS effective_from
               FROM requirement_changes c
               LEFT JOIN requirement_changes p ON p.requirement_id = c.requirement_id AND p.change = 'published'
               ORDER BY c.at"""
        )
        return [RequirementChange(**dict(r)) for r in rows]

    # --- situation reports -----------------------------------------------------------------------

    async def save_report(self, report: StoredReport) -> None:
        await self.conn.execute(
            """INSERT INTO situation_reports (day, generated_at, threshold, html, pdf)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (day) DO UPDATE SET generated_at = EXCLUDED.generated_at,
                   threshold = EXCLUDED.threshold, html = EXCLUDED.html, pdf = EXCLUDED.pdf""",
            report.day,
            report.generated_at,
            report.threshold,
            report.html,
            report.pdf,
        )

    async def report(self, day: date) -> StoredReport | None:
        row = await self.conn.fetchrow("SELECT * FROM situation_reports WHERE day = $1", day)
        return StoredReport(**dict(row)) if row is not None else None

    async def reports(self) -> list[tuple[date, datetime]]:
        rows = await self.conn.fetch("SELECT day, generated_at FROM situation_reports ORDER BY day DESC")
        return [(r["day"], r["generated_at"]) for r in rows]
