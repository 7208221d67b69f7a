"""Reporting's use cases on an in-memory store: the projection, the HXL exports' arguments, and when
a situation report is generated (on demand, and once for the previous day)."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from contracts.envelope import CloudEvent
from contracts.intake import AgeBand, CaseProfiled, ProfiledMember
from contracts.routes import RouteBook
from contracts.status import CaseStatus, CaseStatusChanged, Place
from corridor.errors import Invalid, NotFound
from devkit.devstack import DEFAULT_ROUTES
from services.reporting import usecases
from services.reporting.domain import Profile, StatusRecord
from services.reporting.sitrep import RequirementChange
from services.reporting.store import ReportingStore, StoredReport

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
CTX = usecases.Context(routes=RouteBook.load(DEFAULT_ROUTES), threshold=5, tz=UTC)


@dataclass
class FakeStore:
    records: list[StatusRecord] = field(default_factory=list)
    profiled: dict[uuid.UUID, tuple[Profile, datetime]] = field(default_factory=dict)
    changes: list[RequirementChange] = field(default_factory=list)
    stored: dict[date, StoredReport] = field(default_factory=dict)

    async def add_statuses(self, records: Sequence[StatusRecord]) -> None:
        self.records.extend(records)

    async def save_profiles(self, profiles: Sequence[tuple[Profile, datetime]]) -> None:
        assert len({p.case_id for p, _ in profiles}) == len(profiles)  # one statement: each case once
        for p, profiled_at in profiles:
            if p.case_id not in self.profiled or self.profiled[p.case_id][1] <= profiled_at:
                self.profiled[p.case_id] = (p, profiled_at)

    async def add_requirement_change(self, c: RequirementChange) -> None:
        self.changes.append(c)

    async def status_records(self, until: datetime | None = None) -> list[StatusRecord]:
        return [r for r in self.records if until is None or r.occurred_at < until]

    async def profiles(self) -> dict[Any, Profile]:
        return {k: p for k, (p, _) in self.profiled.items()}

    async def requirement_changes(self) -> list[RequirementChange]:
        return list(self.changes)

    async def save_report(self, report: StoredReport) -> None:
        self.stored[report.day] = report

    async def report(self, day: date) -> StoredReport | None:
        return self.stored.get(day)

    async def reports(self) -> list[tuple[date, datetime]]:
        return [(d, r.generated_at) for d, r in sorted(self.stored.items(), reverse=True)]


@dataclass
class FakeUnit:
    store: FakeStore
    at: datetime = NOW

    def now(self) -> datetime:
        return self.at


def test_the_fake_store_has_the_real_store_s_methods() -> None:
    def methods(cls: type) -> set[str]:
        return {n for n, f in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")}

    assert methods(FakeStore) == methods(ReportingStore)


def profiled(case_id: uuid.UUID, at: datetime, members: int) -> CaseProfiled:
    return CaseProfiled(
        case_id=case_id,
        profiled_at=at,
        route_id="kaz-uzb-tjk",
        registered_on=at.date(),
        planned_travel_date=at.date(),
        origin_city="Karaganda",
        members=[ProfiledMember(sex="F", age_band=AgeBand.ADULT)] * members,
    )


async def test_the_newest_profile_stands_whatever_order_they_are_read_in() -> None:
    store, case = FakeStore(), uuid.uuid4()
    newer, older = profiled(case, NOW, 2), profiled(case, NOW - timedelta(hours=1), 1)
    await usecases.on_case_profiles([envelope(newer)], FakeUnit(store), CTX)
    await usecases.on_case_profiles([envelope(older)], FakeUnit(store), CTX)
    assert len((await store.profiles())[case].members) == 2
    # Both in one run, in either order; and a profile of the same time read later replaces it.
    for run in ([newer, older], [older, newer]):
        store = FakeStore()
        await usecases.on_case_profiles([envelope(p) for p in run], FakeUnit(store), CTX)
        assert len((await store.profiles())[case].members) == 2
    store, same_time = FakeStore(), profiled(case, NOW, 3)
    await usecases.on_case_profiles([envelope(newer), envelope(same_time)], FakeUnit(store), CTX)
    assert len((await store.profiles())[case].members) == 3


def envelope(event: CaseProfiled) -> CloudEvent:
    return CloudEvent.new(event, source="/missions/KAZ/intake")


async def test_a_status_change_is_kept_with_its_place_and_reason() -> None:
    store, case = FakeStore(), uuid.uuid4()
    change = CaseStatusChanged(
        case_id=case,
        status=CaseStatus.REFUSED_AT_BORDER,
        occurred_at=NOW,
        members=2,
        place=Place(country="UZB", name="Gisht-Kuprik", checkpoint_id="uzb-zhibek-zholy-entry"),
        movement_id="MOV-1",
        reason_code="refused_by_officer",
    )
    await usecases.on_status_changes(
        [CloudEvent.new(change, source="/missions/KAZ/transport")], FakeUnit(store), CTX
    )
    [kept] = store.records
    assert (kept.status, kept.checkpoint_id, kept.country, kept.reason_code, kept.movement_id) == (
        "refused_at_border",
        "uzb-zhibek-zholy-entry",
        "UZB",
        "refused_by_officer",
        "MOV-1",
    )


async def test_status_changes_read_together_are_kept_in_their_order() -> None:
    store, case = FakeStore(), uuid.uuid4()
    statuses = [CaseStatus.REGISTERED, CaseStatus.ELIGIBLE, CaseStatus.MANIFESTED, CaseStatus.DEPARTED]
    changes = [
        CloudEvent.new(CaseStatusChanged(case_id=case, status=s, occurred_at=NOW, members=1), source="/x")
        for s in statuses
    ]
    await usecases.on_status_changes(changes, FakeUnit(store), CTX)
    assert [r.status for r in store.records] == [s.value for s in statuses]


async def test_the_daily_export_needs_its_day_and_an_unknown_export_is_not_found() -> None:
    unit = FakeUnit(FakeStore())
    with pytest.raises(Invalid):
        await usecases.hxl_report("daily", unit, CTX)
    with pytest.raises(NotFound):
        await usecases.hxl_report("weekly", unit, CTX, day=NOW.date())
    text = await usecases.hxl_report("daily", unit, CTX, day=NOW.date())
    assert text.splitlines()[1].startswith("#date,#indicator+code")


def units_of(store: FakeStore, at: datetime) -> Any:
    @asynccontextmanager
    async def units() -> AsyncIterator[FakeUnit]:
        yield FakeUnit(store, at)

    return units


async def test_yesterday_s_report_is_generated_once_after_the_day_ended() -> None:
    store = FakeStore()
    case = uuid.uuid4()
    store.records.append(StatusRecord(case, "registered", NOW - timedelta(days=1), 1))
    yesterday = NOW.date() - timedelta(days=1)
    assert await usecases.report_previous_day(units_of(store, NOW), CTX) == yesterday
    first = store.stored[yesterday]
    assert first.pdf.startswith(b"%PDF") and "Registered" in first.html
    assert await usecases.report_previous_day(units_of(store, NOW + timedelta(hours=1)), CTX) is None
    # Asked for later, the report sent stays the one sent.
    later = FakeUnit(store, NOW + timedelta(hours=5))
    assert await usecases.situation_report(yesterday, later, CTX) is first


async def test_a_report_of_a_day_not_over_is_made_when_asked_and_a_future_day_is_refused() -> None:
    store = FakeStore()
    early = FakeUnit(store, NOW)
    first = await usecases.situation_report(NOW.date(), early, CTX)
    again = await usecases.situation_report(NOW.date(), FakeUnit(store, NOW + timedelta(hours=1)), CTX)
    assert again.generated_at > first.generated_at  # the day goes on: made again
    with pytest.raises(Invalid):
        await usecases.situation_report(NOW.date() + timedelta(days=1), early, CTX)
