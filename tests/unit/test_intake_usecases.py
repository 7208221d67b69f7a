"""Intake's use cases in memory: ``FakeUnitOfWork`` and a fake store with the real store's methods
(its lock methods only note that they were called). What is published, which status, which error.
The integration tests stay the proof on Kafka and PostgreSQL."""

from __future__ import annotations

import inspect
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from contracts import reasons, topics
from contracts.intake import (
    AgeBand,
    CaseProfiled,
    CaseRegistered,
    CaseWithdrawn,
    ErasureBasis,
    HealthEvidenceRecorded,
    PersonalDataErased,
)
from contracts.missions import CaseStatusReported, ReportableStatus
from contracts.status import CaseStatus, CaseStatusChanged
from corridor.consumer import Rejected, RetryLater
from corridor.errors import Conflict, Gone, Invalid, NotFound
from corridor.runtime import with_context
from services.intake import domain, usecases
from services.intake.domain import FlagStatus, RegistrationRejected
from services.intake.duplicates import keys_of, lock_ids
from services.intake.store import EventRef, IntakeStore
from tests.unit.intake_doubles import (
    CTX,
    FAMILY,
    KARIMOVA,
    NAZAROV,
    NAZAROV_IN_CYRILLIC,
    NOW,
    FakeIntakeStore,
    GuardedUnitOfWork,
    envelope,
    person,
    registered,
    registration,
    report,
    unit,
    units_for,
)

# --- the fake is the real store's double ---------------------------------------------------------


def test_the_fake_store_has_the_real_stores_methods() -> None:
    def methods(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(f).parameters)
            for name, f in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    assert methods(FakeIntakeStore) == methods(IntakeStore)


# --- registration ----------------------------------------------------------------------------------


async def test_a_registration_announces_registered_before_the_case() -> None:
    store = FakeIntakeStore()
    uow = unit(store)
    done = await usecases.register_case(registration(*FAMILY), uow, CTX)
    assert done.created and done.duplicate_flags == []
    assert [type(p.event) for p in uow.published] == [CaseStatusChanged, CaseRegistered, CaseProfiled]
    status, case, profiled = uow.published
    assert (status.topic, status.key) == ("corridor.case-status", str(done.case_id))
    assert status.event == CaseStatusChanged(
        case_id=done.case_id, status=CaseStatus.REGISTERED, occurred_at=NOW, members=3
    )
    assert case.topic == "intake.cases" and case.event.registered_at == NOW
    assert store.cases[done.case_id].status is CaseStatus.REGISTERED
    # What reporting may count, and nothing that names anyone.
    assert profiled.topic == topics.PROFILES
    assert [(m.sex, m.age_band) for m in profiled.event.members] == [
        ("M", AgeBand.ADULT),
        ("F", AgeBand.ADULT),
        ("M", AgeBand.CHILD),
    ]
    text = profiled.event.model_dump_json()
    assert not any(word in text for word in ("Farrukh", "Nazarov", "1985", "401000001"))


async def test_a_registration_takes_its_duplicate_key_locks_before_it_writes() -> None:
    store = FakeIntakeStore()
    command = registration(*FAMILY)
    case_id = await registered(store, command)
    expected = lock_ids(keys_of(m) for m in command.members)
    assert store.calls == [f"lock keys {expected}", f"insert {case_id}"]


async def test_the_same_registration_key_registers_once() -> None:
    store = FakeIntakeStore()
    first = await registered(store, registration(key="office-7/0001"))
    uow = unit(store)
    again = await usecases.register_case(registration(key="office-7/0001"), uow, CTX)
    assert (again.case_id, again.created) == (first, False)
    assert uow.published == [] and len(store.cases) == 1


async def test_a_key_taken_meanwhile_answers_the_case_that_took_it() -> None:
    store = FakeIntakeStore()
    other = await registered(store, registration(key="k-1"))

    class Racing(FakeIntakeStore):
        looked = False

        async def case_for_key(self, registration_key: str) -> uuid.UUID | None:
            # The first look-up runs before the concurrent registration commits.
            if not self.looked:
                self.looked = True
                return None
            return await super().case_for_key(registration_key)

    racing = Racing(cases=store.cases, persons=store.persons, keys=store.keys)
    uow = unit(racing)
    done = await usecases.register_case(registration(key="k-1"), uow, CTX)
    assert (done.case_id, done.created) == (other, False)
    assert uow.published == [] and racing.calls[0].startswith("lock keys")


async def test_a_registration_repeated_under_its_key_is_answered_what_the_first_answered() -> None:
    """Issue 17: the answer kept with the case, in its unit of work; the repeat writes nothing."""
    store = FakeIntakeStore()
    await registered(store, registration(NAZAROV, key="k-0"))
    first = await usecases.register_or_repeat(registration(NAZAROV_IN_CYRILLIC, key="k-1"), unit(store), CTX)
    assert first.created and not first.repeated and len(first.duplicate_flags) == 1
    assert store.answers[first.case_id] == ([first.duplicate_flags[0].flag_id], False)
    uow = unit(store)
    again = await usecases.register_or_repeat(registration(KARIMOVA, key="k-1"), uow, CTX)
    assert again == usecases.Registration(first.case_id, True, first.duplicate_flags, repeated=True)
    assert uow.published == [] and len(store.cases) == 2 and len(store.flags) == 1
    # Without a key there is nothing to find a repeat by (the Idempotency-Key covers that).
    done = await usecases.register_or_repeat(registration(KARIMOVA), unit(store), CTX)
    assert done.created and done.case_id not in store.answers


async def test_a_key_taken_meanwhile_is_answered_what_its_registration_answered() -> None:
    store = FakeIntakeStore()
    other = await usecases.register_or_repeat(registration(NAZAROV, key="k-1"), unit(store), CTX)

    class Racing(FakeIntakeStore):
        looked = False

        async def case_for_key(self, registration_key: str) -> uuid.UUID | None:
            if not self.looked:  # before the concurrent registration commits
                self.looked = True
                return None
            return await super().case_for_key(registration_key)

    racing = Racing(cases=store.cases, persons=store.persons, keys=store.keys, answers=store.answers)
    done = await usecases.register_or_repeat(registration(key="k-1"), unit(racing), CTX)
    assert done == usecases.Registration(other.case_id, True, [], repeated=True)


async def test_every_problem_of_a_registration_is_named() -> None:
    command = registration(
        person("principal", "Murod", "Rahimov", "2027-01-30", "400765432"),
        route_id="kaz-nowhere",
        planned_travel_date="2026-11-01",
    )
    store = FakeIntakeStore()
    uow = unit(store)
    with pytest.raises(RegistrationRejected) as caught:
        await usecases.register_case(command, uow, CTX)
    assert [(p.loc, p.msg) for p in caught.value.problems] == [
        (("route_id",), "unknown route 'kaz-nowhere'"),
        (("members", "0", "birth_date"), "is in the future"),
        (("planned_travel_date",), "is in the past"),
    ]
    assert isinstance(caught.value, Invalid) and caught.value.loc == ("body", "route_id")
    assert uow.published == [] and store.cases == {} and store.calls == []


async def test_the_same_person_registered_again_is_flagged_not_merged() -> None:
    store = FakeIntakeStore()
    first = await registered(store)
    again = registration(
        person(
            "principal",
            "Murod",
            "Rakhimov",  # another transliteration; another document
            "1979-01-30",
            "400999999",
            surname_cyrillic="Рахимов",
            given_names_cyrillic="Мурод",
        )
    )
    done = await usecases.register_case(again, unit(store), CTX)
    assert done.created and done.case_id != first
    assert [(f.other_case_id, f.basis) for f in done.duplicate_flags] == [(first, "name")]
    assert [f.status for f in store.flags] == [FlagStatus.OPEN]


async def test_a_shared_document_is_flagged_and_the_caseworker_resolves_it_once() -> None:
    store = FakeIntakeStore()
    first = await registered(store)
    done = await usecases.register_case(
        registration(person("principal", "Bakhodur", "Saidov", "1990-02-02", "400765432")), unit(store), CTX
    )
    (flag,) = done.duplicate_flags
    assert (flag.other_case_id, flag.basis) == (first, "document")
    resolve = domain.ResolveFlag(
        flag.flag_id, domain.ResolveDuplicate(decision="not_duplicate", note="two people"), "aida"
    )
    assert await usecases.resolve_duplicate_flag(resolve, unit(store)) is FlagStatus.NOT_DUPLICATE
    assert await usecases.list_duplicate_flags("open", None, unit(store)) == []
    with pytest.raises(domain.FlagNotOpen) as caught:
        await usecases.resolve_duplicate_flag(resolve, unit(store))
    assert isinstance(caught.value, NotFound) and caught.value.detail == f"no open flag {flag.flag_id}"


# --- changes -------------------------------------------------------------------------------------


async def test_a_change_keeps_the_ids_of_the_people_it_keeps() -> None:
    store = FakeIntakeStore()
    case_id = await registered(store, registration(*FAMILY))
    before = {p.given_names: p.person_id for p in await store.people_of(case_id)}
    corrected = registration(
        FAMILY[0], FAMILY[1], person("child", "Aziz", "Nazarov", "2015-05-21", "401000003")
    )
    store.calls.clear()
    uow = unit(store)
    updated = await usecases.update_case(domain.ChangeCase(case_id, corrected), uow, CTX)
    after = {m.given_names: m.person_id for m in updated.members}
    assert after["Farrukh"] == before["Farrukh"] and after["Malika"] == before["Malika"]
    assert after["Aziz"] != before["Aziz"]  # a corrected birth date: a new member record
    assert [p.event for p in uow.published][:1] == [updated]
    [profiled] = [p.event for p in uow.published][1:]
    assert isinstance(profiled, CaseProfiled) and len(profiled.members) == len(updated.members)
    assert uow.published[0].topic == "intake.cases" and updated.updated_at == NOW
    # The key locks first, then the case row: the order registrations take them.
    assert store.calls == [
        f"lock keys {lock_ids(keys_of(m) for m in corrected.members)}",
        f"lock case {case_id}",
    ]


@pytest.mark.parametrize("status", [CaseStatus.DEPARTED, CaseStatus.ARRIVED, CaseStatus.WITHDRAWN])
async def test_a_case_changes_only_before_departure(status: CaseStatus) -> None:
    store = FakeIntakeStore()
    case_id = await registered(store)
    store.cases[case_id].status = status
    uow = unit(store)
    with pytest.raises(domain.NotBeforeDeparture) as caught:
        await usecases.update_case(domain.ChangeCase(case_id, registration()), uow, CTX)
    assert isinstance(caught.value, Conflict)
    assert caught.value.detail == f"case is {status.value}: it can be changed only before departure"
    assert uow.published == []


async def test_a_withdrawn_case_does_not_change() -> None:
    store = FakeIntakeStore()
    case_id = await registered(store)
    await usecases.request_withdrawal(domain.RequestWithdrawal(case_id, "changed plans", "aida"), unit(store))
    with pytest.raises(domain.NotBeforeDeparture):
        await usecases.update_case(domain.ChangeCase(case_id, registration()), unit(store), CTX)


async def test_a_change_of_an_unknown_case_is_not_found_before_it_is_validated() -> None:
    with pytest.raises(domain.CaseNotFound):
        await usecases.update_case(
            domain.ChangeCase(uuid.uuid4(), registration(route_id="kaz-nowhere")),
            unit(FakeIntakeStore()),
            CTX,
        )


# --- withdrawal ------------------------------------------------------------------------------------


async def test_a_withdrawal_is_recorded_and_sent_to_transport_not_announced() -> None:
    store = FakeIntakeStore()
    case_id = await registered(store)
    units = units_for(store, then=CaseStatus.WITHDRAWN)
    answer = await usecases.withdraw_case(
        domain.RequestWithdrawal(case_id, "changed plans", "aida"), units, CTX
    )
    assert (answer.created, answer.pending, answer.status) == (True, False, "withdrawn")
    published = units.opened[0].published
    assert [(p.topic, type(p.event)) for p in published] == [("intake.cases", CaseWithdrawn)]
    assert published[0].event.withdrawn_at == NOW and store.withdrawals[case_id][1] == "aida"
    assert store.calls[-1] == f"lock case {case_id}"
    # Repeating it is safe: nothing recorded or sent twice.
    again = await usecases.withdraw_case(domain.RequestWithdrawal(case_id, "again", "aida"), units, CTX)
    assert (again.created, again.pending) == (False, False)
    assert all(u.published == [] for u in units.opened[1:])


async def test_a_withdrawal_not_settled_in_time_is_pending() -> None:
    store = FakeIntakeStore()
    case_id = await registered(store)
    answer = await usecases.withdraw_case(
        domain.RequestWithdrawal(case_id, "changed plans", "aida"), units_for(store), CTX
    )
    assert (answer.created, answer.pending, answer.status) == (True, True, "withdrawal_requested")


async def test_a_withdrawal_the_departure_overtook_is_too_late() -> None:
    store = FakeIntakeStore()
    case_id = await registered(store)
    with pytest.raises(domain.WithdrawalTooLate) as caught:
        await usecases.withdraw_case(
            domain.RequestWithdrawal(case_id, "changed plans", "aida"),
            units_for(store, then=CaseStatus.DEPARTED),
            CTX,
        )
    assert caught.value.status_code == 409
    assert caught.value.detail == "case is departed: its vehicle left before the withdrawal took effect"


async def test_a_case_on_the_road_cannot_be_withdrawn() -> None:
    store = FakeIntakeStore()
    case_id = await registered(store)
    store.cases[case_id].status = CaseStatus.EXIT_CLEARED
    uow = unit(store)
    with pytest.raises(domain.NotBeforeDeparture) as caught:
        await usecases.request_withdrawal(domain.RequestWithdrawal(case_id, "changed plans", "aida"), uow)
    assert caught.value.detail == "case is exit_cleared: withdrawal is possible only before departure"
    assert uow.published == [] and store.withdrawals == {}


async def test_an_unknown_case_cannot_be_withdrawn() -> None:
    with pytest.raises(domain.CaseNotFound):
        await usecases.request_withdrawal(
            domain.RequestWithdrawal(uuid.uuid4(), "changed plans", "aida"), unit(FakeIntakeStore())
        )


def test_the_outcome_of_a_withdrawal_is_withdrawn_or_any_status_on_the_road() -> None:
    settled = {s for s in CaseStatus if domain.withdrawal_settled(s)}
    assert settled == {CaseStatus.WITHDRAWN} | domain.ON_THE_ROAD
    assert CaseStatus.DEPARTED in settled and CaseStatus.ARRIVED in settled
    assert not settled & (domain.WITHDRAWABLE | {CaseStatus.NO_SHOW})


# --- health evidence -------------------------------------------------------------------------------


def evidence(person_id: uuid.UUID, taken_at: datetime) -> domain.RecordHealthEvidence:
    return domain.RecordHealthEvidence(
        person_id=person_id, kind="covid19_test", result="negative", taken_at=taken_at
    )


async def test_health_evidence_goes_to_the_restricted_topic_only() -> None:
    store = FakeIntakeStore()
    case_id = await registered(store)
    (member,) = await store.people_of(case_id)
    uow = unit(store)
    command = domain.AddHealthEvidence(case_id, evidence(member.person_id, NOW - timedelta(hours=5)), "nurse")
    event = await usecases.record_health_evidence(command, uow)
    (published,) = uow.published
    assert published.topic == topics.HEALTH_EVIDENCE and isinstance(published.event, HealthEvidenceRecorded)
    assert published.event.recorded_at == NOW and event.subject == str(case_id)
    assert store.evidence == [(published.event, "nurse")]


async def test_health_evidence_from_the_future_or_of_a_stranger_is_refused() -> None:
    store = FakeIntakeStore()
    case_id = await registered(store)
    (member,) = await store.people_of(case_id)
    with pytest.raises(Invalid) as future:
        await usecases.record_health_evidence(
            domain.AddHealthEvidence(case_id, evidence(member.person_id, NOW + timedelta(minutes=1)), "n"),
            unit(store),
        )
    assert (future.value.loc, future.value.msg) == (("body", "taken_at"), "is in the future")
    stranger = uuid.uuid4()
    with pytest.raises(domain.PersonNotInCase) as caught:
        await usecases.record_health_evidence(
            domain.AddHealthEvidence(case_id, evidence(stranger, NOW), "n"), unit(store)
        )
    assert caught.value.detail == f"no person {stranger} in case {case_id}"
    assert store.evidence == []


# --- reads -----------------------------------------------------------------------------------------


async def test_every_read_of_personal_data_is_recorded() -> None:
    store = FakeIntakeStore()
    case_id = await registered(store, registration(*FAMILY))
    case = await usecases.read_case(domain.ReadCase(case_id, "aida", "eligibility review"), unit(store))
    assert [m.given_names for m in case.members] == ["Farrukh", "Aziz", "Malika"]
    assert [(r.actor, r.purpose) for r in await usecases.case_access_log(case_id, unit(store))] == [
        ("aida", "eligibility review")
    ]
    with pytest.raises(domain.CaseNotFound):
        await usecases.read_case(domain.ReadCase(uuid.uuid4(), "aida", "curiosity"), unit(store))
    assert len(store.reads) == 1
    assert len(await usecases.query_access_log("aida", None, 10, unit(store))) == 1


async def test_the_timeline_is_the_status_stream_read_back() -> None:
    store = FakeIntakeStore()
    case_id = await registered(store)
    change = CaseStatusChanged(case_id=case_id, status=CaseStatus.ELIGIBLE, occurred_at=NOW, members=1)
    cause = envelope(change, source="/missions/KAZ/transport")
    uow = unit(store)
    for _ in range(2):  # a redelivery changes nothing
        await usecases.TIMELINE_IN_SETS[CaseStatusChanged]([cause], uow, ctx=CTX)
    (entry,) = await usecases.case_timeline(case_id, unit(store))
    assert (entry.status, entry.event) == (CaseStatus.ELIGIBLE, EventRef(cause.source, cause.id))
    assert store.cases[case_id].status is CaseStatus.ELIGIBLE
    assert await uow.known_status(case_id) is CaseStatus.ELIGIBLE


async def test_changes_read_together_leave_each_case_at_its_last() -> None:
    store = FakeIntakeStore()
    first, second = await registered(store), await registered(store)
    read = [
        envelope(CaseStatusChanged(case_id=c, status=s, occurred_at=NOW, members=1), source="/x")
        for c, s in [
            (first, CaseStatus.ELIGIBLE),
            (second, CaseStatus.ELIGIBLE),
            (first, CaseStatus.MANIFESTED),
            (first, CaseStatus.DEPARTED),
            (first, CaseStatus.TRANSIT_INCIDENT),  # an annotation: the case's status, not the guard's
        ]
    ]
    uow = unit(store)
    await usecases.record_status_changes(read, uow, CTX)
    assert [e.status for e in await usecases.case_timeline(first, unit(store))] == [
        CaseStatus.ELIGIBLE,
        CaseStatus.MANIFESTED,
        CaseStatus.DEPARTED,
        CaseStatus.TRANSIT_INCIDENT,
    ]
    assert (store.cases[first].status, store.cases[second].status) == (
        CaseStatus.TRANSIT_INCIDENT,
        CaseStatus.ELIGIBLE,
    )
    assert await uow.known_status(first) is CaseStatus.DEPARTED
    with pytest.raises(domain.CaseNotFound):
        await usecases.case_timeline(uuid.uuid4(), unit(store))


# --- missions' reports -----------------------------------------------------------------------------


async def arrived_case(store: FakeIntakeStore, uow: GuardedUnitOfWork) -> uuid.UUID:
    case_id = await registered(store, registration(*FAMILY))
    store.cases[case_id].status = CaseStatus.ARRIVED
    await uow.note_status(case_id, CaseStatus.ARRIVED)
    return case_id


async def test_a_reception_reported_after_arrival_is_republished_on_the_stream() -> None:
    store = FakeIntakeStore()
    received = report(uuid.uuid4(), ReportableStatus.RECEIVED)
    cause = envelope(received)
    uow = unit(store, cause=cause)
    case_id = await arrived_case(store, uow)
    received = received.model_copy(update={"case_id": case_id})
    handler = with_context(usecases.INBOUND_HANDLERS, ctx=CTX)[CaseStatusReported]
    await handler(received, uow)
    (published,) = uow.published
    assert published.event == CaseStatusChanged(
        case_id=case_id, status=CaseStatus.RECEIVED, occurred_at=NOW, members=3
    )
    assert published.extensions == {"originsource": cause.source, "originid": cause.id}
    assert store.cases[case_id].status is CaseStatus.RECEIVED
    assert store.calls[-1] == f"lock case {case_id}"


@pytest.mark.parametrize(
    ("code", "public"),
    [("vehicle_breakdown", "vehicle_breakdown"), ("asel_karimova_ill", "reported_by_mission")],
)
async def test_a_report_s_words_stay_in_intake_and_the_stream_gets_a_public_code(
    code: str, public: str
) -> None:
    store = FakeIntakeStore()
    uow = unit(store)
    case_id = await arrived_case(store, uow)
    words = "Asel Karimova (born 03.02.1988) fainted on the bus, taken to hospital"
    incident = CaseStatusReported(
        case_id=case_id,
        status=ReportableStatus.RECEIVED,
        occurred_at=NOW,
        reason_code=code,
        reason=words,
    )
    cause = envelope(incident)
    uow = unit(store, cause=cause)
    await uow.note_status(case_id, CaseStatus.ARRIVED)
    published = await usecases.apply_reported_status(incident, uow, CTX)
    change = published.data
    assert isinstance(change, CaseStatusChanged)
    # A code the stream does not carry may say anything (a name): the generic code instead.
    assert (change.reason_code, change.reason) == (public, reasons.text_of(public))
    # The mission's own code and words are on the case's timeline, for the host mission.
    await store.record_statuses([(published.source, published.id, change)])
    [entry] = await store.timeline(case_id)
    assert (entry.reason_code, entry.reason) == (code, words)


async def test_a_report_ahead_of_the_stream_is_retried_later() -> None:
    store = FakeIntakeStore()
    case_id = await registered(store)
    store.cases[case_id].status = CaseStatus.ENTRY_CLEARED
    early = report(case_id, ReportableStatus.RECEIVED)
    uow = unit(store, cause=envelope(early))
    with pytest.raises(RetryLater) as caught:
        await usecases.apply_reported_status(early, uow, CTX)
    assert caught.value.code == "illegal_transition" and uow.published == []


async def test_a_report_the_stream_guard_refuses_is_retried_later() -> None:
    store = FakeIntakeStore()
    case_id = await registered(store)
    store.cases[case_id].status = CaseStatus.ARRIVED  # as intake read it; the guard knows less
    received = report(case_id, ReportableStatus.RECEIVED)
    uow = unit(store, cause=envelope(received))
    await uow.note_status(case_id, CaseStatus.EXIT_CLEARED)
    with pytest.raises(RetryLater) as caught:
        await usecases.apply_reported_status(received, uow, CTX)
    assert caught.value.code == "illegal_transition" and uow.published == []


@pytest.mark.parametrize(
    ("source", "case", "code"),
    [
        ("/missions/UZB/transit-desk", "known", "unauthorised_source"),
        ("/missions/TJK/reception", "unknown", "unknown_case"),
    ],
)
async def test_a_report_that_never_fits_is_rejected(source: str, case: str, code: str) -> None:
    store = FakeIntakeStore()
    uow = unit(store)
    case_id = await arrived_case(store, uow) if case == "known" else uuid.uuid4()
    received = report(case_id, ReportableStatus.RECEIVED)
    with pytest.raises(Rejected) as caught:
        await usecases.apply_reported_status(received, unit(store, cause=envelope(received, source)), CTX)
    assert caught.value.code == code


async def test_a_report_that_could_never_be_stored_is_rejected_before_the_case_is_read() -> None:
    store = FakeIntakeStore()
    case_id = await registered(store)
    for unusable in (
        report(case_id, ReportableStatus.RECEIVED).model_copy(update={"reason": "a\x00b"}),
        report(case_id, ReportableStatus.RECEIVED).model_copy(
            update={"occurred_at": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))}
        ),
    ):
        store.calls.clear()
        with pytest.raises(Rejected) as caught:
            await usecases.apply_reported_status(unusable, unit(store, cause=envelope(unusable)), CTX)
        assert caught.value.code == "invalid_value" and store.calls == []


async def test_a_report_sent_over_http_and_kafka_is_applied_once() -> None:
    store = FakeIntakeStore()
    uow = unit(store)
    case_id = await arrived_case(store, uow)
    event = envelope(report(case_id, ReportableStatus.RECEIVED))
    first = await usecases.receive_report(event, uow, CTX)
    assert first.status_event_id is not None and not first.repeated and len(uow.published) == 1
    # The repeat (a lost answer) is answered the status change the first published (issue 17).
    again = await usecases.receive_report(event, uow, CTX)
    assert again == usecases.ReportAnswer(first.status_event_id, repeated=True)
    assert len(uow.published) == 1 and store.inbox == {(usecases.INBOUND, event.source, event.id)}


async def test_a_report_applied_from_kafka_and_sent_again_over_http_is_answered_its_status_change() -> None:
    store = FakeIntakeStore()
    event = envelope(report(uuid.uuid4(), ReportableStatus.RECEIVED))
    uow = unit(store, cause=event)
    case_id = await arrived_case(store, uow)
    event = envelope(report(case_id, ReportableStatus.RECEIVED))
    uow.cause = event
    store.inbox.add((usecases.INBOUND, event.source, event.id))  # as the consumer records it
    published = await usecases.apply_reported_status(event.data, uow, CTX)
    again = await usecases.receive_report(event, unit(store), CTX)
    assert again == usecases.ReportAnswer(published.id, repeated=True) and len(uow.published) == 1
    # A report applied before these ids were kept: a repeat still, without the id.
    earlier = envelope(report(case_id, ReportableStatus.RECEIVED))
    store.inbox.add((usecases.INBOUND, earlier.source, earlier.id))
    assert await usecases.receive_report(earlier, unit(store), CTX) == usecases.ReportAnswer(None, True)


def test_each_consumer_has_its_table() -> None:
    assert set(usecases.TIMELINE_IN_SETS) == {CaseStatusChanged}
    assert set(usecases.INBOUND_HANDLERS) == {CaseStatusReported}


# --- erasure of personal data --------------------------------------------------------------------


def erase(case_id: uuid.UUID, by: str = "aida") -> domain.EraseCase:
    return domain.EraseCase(case_id, ErasureBasis.DATA_SUBJECT_REQUEST, by)


@pytest.mark.parametrize("status", sorted(domain.ERASABLE))
async def test_an_ended_case_is_erased_here_and_everywhere_once(status: CaseStatus) -> None:
    store = FakeIntakeStore()
    case_id = await registered(store, registration(*FAMILY))
    store.cases[case_id].status = status
    uow = unit(store)
    erasure, created = await usecases.erase_personal_data(erase(case_id), uow)
    assert created and (erasure.basis, erasure.requested_by, erasure.erased_at) == (
        ErasureBasis.DATA_SUBJECT_REQUEST,
        "aida",
        NOW,
    )
    assert store.calls[-2:] == [f"lock case {case_id}", f"erase {case_id}"]
    sent, profiled = uow.published
    assert (sent.topic, sent.event) == (
        "intake.cases",
        PersonalDataErased(case_id=case_id, basis=ErasureBasis.DATA_SUBJECT_REQUEST, erased_at=NOW),
    )
    # Statistics keep sex and the exact age band (read before birth dates are truncated), no more.
    assert profiled.topic == topics.PROFILES and profiled.event.erased
    assert profiled.event.origin_city is None
    assert sorted((m.sex, m.age_band, tuple(m.vulnerabilities)) for m in profiled.event.members) == [
        ("F", AgeBand.ADULT, ()),
        ("M", AgeBand.ADULT, ()),
        ("M", AgeBand.CHILD, ()),
    ]
    assert all(p.surname == p.given_names == "" for c, p in store.persons.values() if c == case_id)
    assert uow.forgotten == [str(case_id)]  # no copy left in the outbox's published history
    again, created = await usecases.erase_personal_data(erase(case_id, "someone else"), unit(store))
    assert not created and again == erasure


@pytest.mark.parametrize("status", sorted(set(CaseStatus) - domain.ERASABLE))
async def test_a_case_still_in_the_process_is_not_erased(status: CaseStatus) -> None:
    store = FakeIntakeStore()
    case_id = await registered(store)
    store.cases[case_id].status = status
    uow = unit(store)
    with pytest.raises(domain.NotErasable, match="withdraw it first"):
        await usecases.erase_personal_data(erase(case_id), uow)
    assert uow.published == [] and store.erasures == {}


async def test_an_unknown_case_is_not_erased() -> None:
    with pytest.raises(NotFound):
        await usecases.erase_personal_data(erase(uuid.uuid4()), unit(FakeIntakeStore()))


async def test_after_erasure_the_case_cannot_be_read_changed_or_added_to() -> None:
    store = FakeIntakeStore()
    case_id = await registered(store)
    store.cases[case_id].status = CaseStatus.INELIGIBLE
    await usecases.erase_personal_data(erase(case_id), unit(store))
    person_id = next(p for p, (c, _) in store.persons.items() if c == case_id)
    evidence = domain.RecordHealthEvidence(
        person_id=person_id, kind="covid19_test", result="negative", taken_at=NOW
    )
    attempts = [
        lambda: usecases.read_case(domain.ReadCase(case_id, "aida", "case review"), unit(store)),
        lambda: usecases.update_case(domain.ChangeCase(case_id, registration()), unit(store), CTX),
        lambda: usecases.record_health_evidence(
            domain.AddHealthEvidence(case_id, evidence, "aida"), unit(store)
        ),
        lambda: usecases.request_withdrawal(domain.RequestWithdrawal(case_id, "note", "aida"), unit(store)),
    ]
    for attempt in attempts:
        with pytest.raises(Gone, match="was erased on"):
            await attempt()
    assert store.reads == [] and store.evidence == []


async def test_the_retention_sweep_erases_cases_ended_longer_ago_than_the_period() -> None:
    store = FakeIntakeStore()
    retention = timedelta(days=90)
    ctx = usecases.Context(CTX.routes, retention=retention)
    old, recent, active = [await registered(store) for _ in range(3)]
    for case_id, status, ended in (
        (old, CaseStatus.ARRIVED, NOW - retention - timedelta(minutes=1)),
        (recent, CaseStatus.WITHDRAWN, NOW - retention + timedelta(minutes=1)),
        (active, CaseStatus.ELIGIBLE, NOW - retention * 2),
    ):
        store.cases[case_id].status = status
        store.ended_at[case_id] = ended
    uow = unit(store)
    assert await usecases.expire_personal_data(uow, ctx) == [old]
    assert set(store.erasures) == {old}
    assert store.erasures[old].basis is ErasureBasis.RETENTION_EXPIRED
    assert store.erasures[old].requested_by == usecases.RETENTION_SWEEPER
    assert [type(p.event) for p in uow.published] == [PersonalDataErased, CaseProfiled]
    assert await usecases.expire_personal_data(unit(store), ctx) == []  # done once
