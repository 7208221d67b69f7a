"""Border clearance rules, without I/O: the scan against the manifest, the hold list, a family
held together, and when a post may decide a case."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from contracts.routes import RouteBook
from corridor.mrz import check_digit
from corridor.settings import ServiceSettings
from services.border_clearance import domain
from services.border_clearance.domain import (
    AtPost,
    CaseProgress,
    DocumentCheck,
    Hold,
    Passenger,
    Refusal,
    Scan,
)

ROUTE = RouteBook.load(ServiceSettings.model_fields["routes_file"].default).routes[0]
FIRST, SECOND = ROUTE.checkpoints[0].checkpoint_id, ROUTE.checkpoints[1].checkpoint_id
TODAY = date(2026, 11, 30)


def td3(surname: str, number: str, born: date, *, nationality: str = "TJK", sex: str = "M") -> str:
    """A valid passport zone, check digits as ICAO Doc 9303 computes them."""
    line1 = f"P<{nationality}{surname}<<ALI".ljust(44, "<")[:44]
    num = number.ljust(9, "<")
    b, e = born.strftime("%y%m%d"), "310101"
    opt = "<" * 14
    body = f"{num}{check_digit(num)}{nationality}{b}{check_digit(b)}{sex}{e}{check_digit(e)}{opt}{check_digit(opt)}"
    return f"{line1}\n{body}{check_digit(body[0:10] + body[13:20] + body[21:43])}"


def passenger(case_id: uuid.UUID | None = None, number: str = "401234567", **changes: object) -> Passenger:
    values: dict[str, object] = {
        "case_id": case_id or uuid.uuid4(),
        "person_id": uuid.uuid4(),
        "surname": "KARIMOV",
        "given_names": "ALI",
        "birth_date": date(1990, 5, 1),
        "sex": "M",
        "nationality": "TJK",
        "document_type": "passport",
        "document_number": number,
    }
    return Passenger(**{**values, **changes})  # type: ignore[arg-type]


# --- when a post may decide ------------------------------------------------------------------


def test_the_first_post_has_no_previous_checkpoint_and_the_others_the_one_before() -> None:
    assert domain.previous_checkpoint(ROUTE, FIRST) is None
    assert domain.previous_checkpoint(ROUTE, SECOND) == FIRST
    assert (
        domain.previous_checkpoint(ROUTE, ROUTE.checkpoints[-1].checkpoint_id)
        == ROUTE.checkpoints[-2].checkpoint_id
    )


def test_at_the_first_post_a_case_arrives_when_its_vehicle_departs() -> None:
    waiting = CaseProgress(decision=None, departed=False, cleared_at=frozenset())
    assert domain.stage(waiting, None) is AtPost.EXPECTED
    assert domain.why_waiting(waiting, None) == "vehicle has not departed"
    departed = CaseProgress(decision=None, departed=True, cleared_at=frozenset())
    assert domain.stage(departed, None) is AtPost.ARRIVED
    assert domain.why_waiting(departed, None) is None


def test_further_on_a_case_arrives_only_when_the_post_before_cleared_it() -> None:
    # The departure alone does not bring it here, nor a clearance at another post.
    elsewhere = CaseProgress(decision=None, departed=True, cleared_at=frozenset({"uzb-oybek-exit"}))
    assert domain.stage(elsewhere, FIRST) is AtPost.EXPECTED
    assert domain.why_waiting(elsewhere, FIRST) == f"not yet cleared at {FIRST}"
    cleared_before = CaseProgress(decision=None, departed=False, cleared_at=frozenset({FIRST}))
    assert domain.stage(cleared_before, FIRST) is AtPost.ARRIVED
    assert domain.why_waiting(cleared_before, FIRST) is None


@pytest.mark.parametrize("decision, stage", [(True, AtPost.CLEARED), (False, AtPost.REFUSED)])
def test_a_case_is_decided_once(decision: bool, stage: AtPost) -> None:
    decided = CaseProgress(decision=decision, departed=True, cleared_at=frozenset({FIRST}))
    for previous in (None, FIRST):
        assert domain.stage(decided, previous) is stage
        assert domain.why_waiting(decided, previous) == "already decided"
    assert not domain.TRANSITIONS[stage]


def test_only_an_arrived_case_may_be_decided() -> None:
    assert domain.may_follow(AtPost.EXPECTED, AtPost.ARRIVED)
    assert domain.may_follow(AtPost.ARRIVED, AtPost.CLEARED) and domain.may_follow(
        AtPost.ARRIVED, AtPost.REFUSED
    )
    assert not domain.may_follow(AtPost.EXPECTED, AtPost.CLEARED)
    assert not domain.may_follow(AtPost.CLEARED, AtPost.REFUSED)
    assert set(domain.TRANSITIONS) == set(AtPost)


# --- the scan against the manifest -----------------------------------------------------------


def test_a_scan_of_the_document_on_the_manifest_matches() -> None:
    p = passenger()
    [check] = domain.check_documents(
        [Scan(p.person_id, td3("KARIMOV", "401234567", p.birth_date))], [p], TODAY
    )
    assert check.mismatches == () and check.note == "matches manifest" and check.refusal is None


def test_a_surname_matches_whatever_its_spacing_and_punctuation() -> None:
    p = passenger(surname="Abdul-Karimov")
    zone = td3("ABDUL<KARIMOV", "401234567", p.birth_date)
    assert domain.check_documents([Scan(p.person_id, zone)], [p], TODAY)[0].mismatches == ()


def test_fillers_in_the_manifest_document_number_are_ignored() -> None:
    p = passenger(number="4012345<<")
    assert (
        domain.check_documents([Scan(p.person_id, td3("KARIMOV", "4012345", p.birth_date))], [p], TODAY)[
            0
        ].mismatches
        == ()
    )


def test_every_field_that_differs_is_named_and_refuses_the_person() -> None:
    p = passenger()
    zone = td3("KARIMOVA", "409999999", date(1991, 5, 1), nationality="UZB", sex="F")
    [check] = domain.check_documents([Scan(p.person_id, zone)], [p], TODAY)
    assert check.mismatches == ("document_number", "birth_date", "nationality", "sex", "surname")
    assert check.note == "mismatch: document_number, birth_date, nationality, sex, surname"
    assert check.refusal == Refusal(
        p.person_id,
        "document_mismatch",
        "document differs from the manifest: document_number, birth_date, nationality, sex, surname",
        public_code="document_mismatch",
    )


def test_an_unreadable_scan_names_the_person_and_the_field_for_a_422() -> None:
    p, q = passenger(), passenger()
    good = td3("KARIMOV", "401234567", p.birth_date)
    misread = good[:-1] + str((int(good[-1]) + 1) % 10)
    with pytest.raises(domain.UnreadableScan) as caught:
        domain.check_documents([Scan(p.person_id, good), Scan(q.person_id, misread)], [p, q], TODAY)
    assert caught.value.status_code == 422
    assert caught.value.loc == ("body", "scans", str(q.person_id), "composite")
    assert "check digit" in caught.value.msg


def test_everyone_refused_or_scanned_must_be_on_the_manifest() -> None:
    p = passenger()
    stranger, other = uuid.uuid4(), uuid.uuid4()
    domain.check_named([p], [Refusal(p.person_id, "x_y", "why")], [Scan(p.person_id, "z")])
    with pytest.raises(domain.NotOnManifest) as caught:
        domain.check_named([p], [Refusal(stranger, "x_y", "why")], [Scan(other, "z")])
    assert caught.value.loc == ("body", "refusals")
    assert caught.value.msg == f"not on the manifest: {', '.join(sorted([str(stranger), str(other)]))}"


# --- who is refused, and a family held together ----------------------------------------------


def test_the_officer_first_then_the_document_then_the_hold_list_one_reason_each() -> None:
    officer_refused = passenger(number="1")
    mismatched_and_held = passenger(number="2")
    held = passenger(number="3")
    free = passenger(number="4")
    people = [officer_refused, mismatched_and_held, held, free]
    own_words = Refusal(officer_refused.person_id, "document_damaged", "torn")
    checks = [
        DocumentCheck(officer_refused.person_id, ("surname",)),
        DocumentCheck(mismatched_and_held.person_id, ("sex",)),
        DocumentCheck(mismatched_and_held.person_id, ("birth_date",)),  # scanned twice: the first counts
    ]
    holds = {n: Hold(n, "court_order", "ban") for n in ("1", "2", "3")}
    refused = domain.refusals(people, [own_words], checks, holds)
    assert refused[officer_refused.person_id] == own_words
    assert refused[mismatched_and_held.person_id].reason_code == "document_mismatch"
    assert refused[mismatched_and_held.person_id].reason == "document differs from the manifest: sex"
    # The hold's own code stays at this post; the public stream learns only that it was a hold.
    assert refused[held.person_id] == Refusal(
        held.person_id, "court_order", "ban", public_code="held_at_border"
    )
    assert refused[officer_refused.person_id].public_code == "refused_by_officer"
    assert refused[mismatched_and_held.person_id].public_code == "document_mismatch"
    assert free.person_id not in refused


def test_a_refusal_of_one_member_holds_the_whole_family() -> None:
    case = uuid.uuid4()
    mother, child = passenger(case), passenger(case, number="2")
    refused = {child.person_id: Refusal(child.person_id, "document_damaged", "Certificate torn")}
    decision = domain.decide([mother, child], refused)
    assert not decision.cleared and decision.outcome is AtPost.REFUSED
    assert decision.reason_code == "document_damaged"
    by_person = {p.person_id: p for p in decision.people}
    assert not by_person[mother.person_id].cleared and by_person[mother.person_id].refusal is None
    assert by_person[mother.person_id].reason_code == "family_member_refused"
    assert by_person[child.person_id].reason_code == "document_damaged"


def test_a_family_nobody_refused_is_cleared_with_its_document_checks() -> None:
    case = uuid.uuid4()
    a, b = passenger(case), passenger(case)
    checks = [DocumentCheck(a.person_id, ("sex",)), DocumentCheck(a.person_id, ())]  # the last scan is kept
    decision = domain.decide([a, b], {uuid.uuid4(): Refusal(uuid.uuid4(), "x_y", "someone else")}, checks)
    assert decision.cleared and decision.outcome is AtPost.CLEARED and decision.reason_code is None
    assert [(p.cleared, p.reason_code, p.document_check) for p in decision.people] == [
        (True, None, "matches manifest"),
        (True, None, None),
    ]


def test_the_first_refused_member_gives_the_family_its_public_reason() -> None:
    case = uuid.uuid4()
    a, b = passenger(case), passenger(case)
    refused = {
        b.person_id: Refusal(b.person_id, "court_order", "ban"),
        a.person_id: Refusal(a.person_id, "document_mismatch", "x"),
    }
    assert domain.decide([a, b], refused).reason_code == "document_mismatch"


def test_families_keep_the_manifest_order() -> None:
    c1, c2 = uuid.uuid4(), uuid.uuid4()
    people = [passenger(c1), passenger(c1), passenger(c2)]
    assert {k: [p.person_id for p in v] for k, v in domain.families(people).items()} == {
        c1: [people[0].person_id, people[1].person_id],
        c2: [people[2].person_id],
    }


# --- what the status stream says ---------------------------------------------------------------


def test_a_case_s_public_reason_is_where_its_first_refusal_came_from() -> None:
    a = passenger()
    b = passenger(a.case_id, "409999999")
    refused = {
        b.person_id: Refusal(b.person_id, "court_order", "ban", public_code="held_at_border"),
        a.person_id: Refusal(a.person_id, "no_visa", "Asel has no visa"),
    }
    decision = domain.decide([a, b], refused)
    assert (decision.reason_code, decision.public_reason_code) == ("no_visa", "refused_by_officer")
    assert domain.decide([a, b], {}).public_reason_code is None
