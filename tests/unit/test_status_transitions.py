"""The legal order of a case's public statuses, defined once as data in the contracts."""

from __future__ import annotations

import pytest

from contracts.status import ANNOTATIONS, LEGAL_TRANSITIONS, CaseStatus, illegal_steps, is_legal
from tests.integration.conftest import JOURNEY

S = CaseStatus


def test_every_status_is_covered_once() -> None:
    keys = set(LEGAL_TRANSITIONS) - {None}
    assert keys | set(ANNOTATIONS) == set(CaseStatus)
    assert not keys & set(ANNOTATIONS)


def test_the_whole_journey_is_legal() -> None:
    assert illegal_steps([*JOURNEY, S.RECEIVED, S.CLOSED]) == []


def test_the_lost_withdrawal_of_issue_9_is_illegal() -> None:
    # What the stream read when a withdrawal was lost to a concurrent planning run.
    stream = [S.REGISTERED, S.ELIGIBLE, S.WITHDRAWN, S.MANIFESTED, S.DEPARTED, S.EXIT_CLEARED]
    assert illegal_steps(stream)[0] == (S.WITHDRAWN, S.MANIFESTED)


@pytest.mark.parametrize("taken_off", [S.WITHDRAWN, S.ON_HOLD, S.INELIGIBLE, S.ELIGIBLE])
def test_a_case_taken_off_a_vehicle_says_so(taken_off: CaseStatus) -> None:
    assert illegal_steps([S.REGISTERED, S.ELIGIBLE, S.MANIFESTED, taken_off]) == []


@pytest.mark.parametrize("blocked", [S.WITHDRAWN, S.ON_HOLD, S.INELIGIBLE, S.NO_SHOW])
def test_nobody_departs_unless_manifested_just_before(blocked: CaseStatus) -> None:
    assert not is_legal(blocked, S.DEPARTED)
    assert [before for before, statuses in LEGAL_TRANSITIONS.items() if S.DEPARTED in statuses] == [
        S.MANIFESTED
    ]


@pytest.mark.parametrize("final", [S.WITHDRAWN, S.CLOSED, S.REFUSED_AT_BORDER])
def test_final_statuses_have_no_successor(final: CaseStatus) -> None:
    assert all(not is_legal(final, s) for s in CaseStatus)


def test_a_withdrawal_after_departure_is_illegal() -> None:
    assert not is_legal(S.DEPARTED, S.WITHDRAWN)
    assert not is_legal(S.EXIT_CLEARED, S.WITHDRAWN)


def test_a_refused_family_is_cleared_nowhere_further() -> None:
    assert illegal_steps([*JOURNEY[:5], S.REFUSED_AT_BORDER, S.ENTRY_CLEARED]) == [
        (S.REFUSED_AT_BORDER, S.ENTRY_CLEARED)
    ]


def test_an_incident_annotates_the_journey_without_moving_it() -> None:
    on_the_way = [
        *JOURNEY[:5],
        S.TRANSIT_INCIDENT,
        S.ENTRY_CLEARED,
        S.EXIT_CLEARED,
        S.ENTRY_CLEARED,
        S.ARRIVED,
    ]
    assert illegal_steps(on_the_way) == []
    # Reported late, after the arrival it happened before; the reception still follows the arrival.
    assert illegal_steps([*JOURNEY, S.TRANSIT_INCIDENT, S.RECEIVED]) == []
    assert illegal_steps([S.REGISTERED, S.ELIGIBLE, S.TRANSIT_INCIDENT]) == [(S.ELIGIBLE, S.TRANSIT_INCIDENT)]
    assert illegal_steps([*JOURNEY, S.RECEIVED, S.TRANSIT_INCIDENT]) == [(S.RECEIVED, S.TRANSIT_INCIDENT)]


def test_the_first_status_is_registered() -> None:
    assert illegal_steps([S.ELIGIBLE]) == [(None, S.ELIGIBLE)]
    assert illegal_steps([S.REGISTERED, S.REGISTERED]) == [(S.REGISTERED, S.REGISTERED)]


def test_a_post_clears_a_case_once_and_posts_alternate_exit_and_entry() -> None:
    assert not is_legal(S.EXIT_CLEARED, S.EXIT_CLEARED)
    assert not is_legal(S.ENTRY_CLEARED, S.ENTRY_CLEARED)
    assert not is_legal(S.DEPARTED, S.ENTRY_CLEARED)
    assert not is_legal(S.EXIT_CLEARED, S.ARRIVED)
