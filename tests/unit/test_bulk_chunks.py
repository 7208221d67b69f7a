"""A bulk import in chunks decides each row as registering the rows one after the other would:
the pure matching of a chunk (``duplicates.matches_in_order``) and the chunk's use case
(``usecases.register_cases``) on the fake store, at every chunk size."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest

from contracts.intake import CaseProfiled, CaseRegistered
from contracts.status import CaseStatus, CaseStatusChanged
from services.intake import usecases
from services.intake.domain import RegisterCase, RegistrationRejected
from services.intake.duplicates import CANDIDATES_PER_KEY, Holder, Match, keys_for, matches_in_order
from tests.unit.intake_doubles import (
    CTX,
    KARIMOVA,
    NAZAROV,
    NAZAROV_IN_CYRILLIC,
    NOW,
    FakeIntakeStore,
    person,
    prepared,
    registration,
    unit,
)


def _holder() -> Holder:
    return Holder(uuid.uuid4(), uuid.uuid4())


def _keys(surname: str, number: str, cyrillic: str | None = None) -> Any:
    return keys_for(
        document_number=number,
        document_country="TJK",
        surname=surname,
        given_names="Bakhodur",
        birth_date=date(1970, 1, 1),
        surname_cyrillic=cyrillic,
        given_names_cyrillic="Баходур" if cyrillic else None,
    )


def test_a_person_is_matched_against_those_before_them_in_the_chunk_and_those_recorded() -> None:
    recorded, first, second, third = _holder(), _holder(), _holder(), _holder()
    old = _keys("Karimov", "A1")
    people = [
        (first, _keys("Dzhuraev", "B1")),  # matches nothing before it
        (second, _keys("Djuraev", "B2", cyrillic="Джураев")),  # first's name, by its Cyrillic spelling
        (third, _keys("Karimov", "A1")),  # the recorded person: document and name
    ]
    found = matches_in_order(people, {pair: [recorded] for pair in [("document", old.document)]})
    assert found == [Match(second, first, "name"), Match(third, recorded, "document")]
    # Nobody is matched against a person after them: the first of a pair is never the flagged one.
    assert all(m.person != first for m in found)


def test_the_same_case_is_never_a_match_and_candidates_are_capped_per_key() -> None:
    case = uuid.uuid4()
    spouse, principal = Holder(uuid.uuid4(), case), Holder(uuid.uuid4(), case)
    assert matches_in_order([(spouse, _keys("Rahimov", "C1")), (principal, _keys("Rahimov", "C1"))], {}) == []

    many = [_holder() for _ in range(CANDIDATES_PER_KEY + 5)]
    newcomer = _holder()
    keys = _keys("Rahimov", "C1")
    found = matches_in_order([(newcomer, keys)], {("document", keys.document): many})
    assert [m.other for m in found] == many[:CANDIDATES_PER_KEY]


def _rows() -> list[RegisterCase]:
    """Rows of a file: repeats of one person in both scripts and by document, some far apart, a
    family, and a row the checks reject."""
    return [
        registration(NAZAROV, key="r0"),
        registration(person("principal", "Murod", "Rahimov", "1979-01-30", "400765432"), key="r1"),
        registration(NAZAROV_IN_CYRILLIC, key="r2"),  # r0's man: a name match
        registration(KARIMOVA, key="r3"),
        registration(  # unknown route: rejected, the rest of its chunk goes on
            person("principal", "Sitora", "Nazarova", "2016-11-20", "401000009"),
            key="r4",
            route_id="kaz-nowhere",
        ),
        registration(  # a family whose spouse is r3 by her passport
            person("principal", "Rustam", "Aliev", "1980-01-01", "402000001"),
            person("spouse", "Dilnoza", "Alieva", "1959-01-01", "400998877"),
            key="r5",
        ),
        registration(
            person("principal", "Murod", "Rahimov", "1979-01-30", "400765432"), key="r6"
        ),  # r1 again
        registration(NAZAROV, key="r0"),  # r0's own key again: nothing new
    ]


async def _one_by_one(store: FakeIntakeStore, rows: list[RegisterCase]) -> list[tuple[Any, ...]]:
    outcomes = []
    for command in rows:
        try:
            done = await usecases.register_case(command, unit(store), CTX, now=NOW)
        except RegistrationRejected:
            outcomes.append(("rejected",))
            continue
        outcomes.append(
            (done.case_id, done.created, [(f.other_case_id, f.basis) for f in done.duplicate_flags])
        )
    return outcomes


async def _in_chunks(store: FakeIntakeStore, rows: list[RegisterCase], size: int) -> list[tuple[Any, ...]]:
    outcomes: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), size):
        ready = prepared(rows[start : start + size])
        done = iter(await usecases.register_cases([n for n in ready if n], unit(store), now=NOW))
        for n in ready:
            if n is None:
                outcomes.append(("rejected",))
            else:
                d = next(done)
                outcomes.append(
                    (d.case_id, d.created, [(f.other_case_id, f.basis) for f in d.duplicate_flags])
                )
    return outcomes


def _by_row(outcomes: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Outcomes with case ids replaced by the row that created the case (ids are random)."""
    row_of = {o[0]: i for i, o in enumerate(outcomes) if len(o) > 1 and o[1]}
    return [
        o if len(o) == 1 else (row_of.get(o[0], "earlier"), o[1], [(row_of[c], b) for c, b in o[2]])
        for o in outcomes
    ]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
async def test_chunks_of_any_size_decide_every_row_as_one_by_one_does(size: int) -> None:
    rows = _rows()
    expected = _by_row(await _one_by_one(FakeIntakeStore(), rows))
    assert expected == [
        (0, True, []),
        (1, True, []),
        (2, True, [(0, "name")]),
        (3, True, []),
        ("rejected",),
        (5, True, [(3, "document")]),
        (6, True, [(1, "document")]),
        (0, False, []),
    ]
    store = FakeIntakeStore()
    assert _by_row(await _in_chunks(store, rows, size)) == expected
    # Everything written once: six cases, seven people, each person's keys, three flags.
    assert len(store.cases) == 6 and len(store.persons) == 7 and len(store.flags) == 3


async def test_each_case_has_its_status_then_its_registration_then_its_profile() -> None:
    store = FakeIntakeStore()
    uow = unit(store)
    ready = [usecases.prepare_registration(c, CTX, NOW) for c in _rows()[:4]]
    await usecases.register_cases(ready, uow, now=NOW)
    kinds = [(type(p.event), p.key) for p in uow.published]
    assert kinds == [
        (kind, str(n.case.case_id))
        for n in ready
        for kind in (CaseStatusChanged, CaseRegistered, CaseProfiled)
    ]
    assert all(e.status is CaseStatus.REGISTERED for e in uow.events(CaseStatusChanged))
    assert store.calls[0] == "lock for import"


async def test_importing_the_same_rows_again_creates_nothing() -> None:
    store = FakeIntakeStore()
    rows = [r for r in _rows() if r.route_id == "kaz-uzb-tjk"]
    first = await _in_chunks(store, rows, 3)
    cases, persons, keys, flags = len(store.cases), len(store.persons), len(store.keys), len(store.flags)
    uow = unit(store)
    again = await usecases.register_cases(
        [usecases.prepare_registration(r, CTX, NOW) for r in rows], uow, now=NOW
    )
    assert [d.created for d in again] == [False] * len(rows)
    assert [d.case_id for d in again] == [o[0] for o in first[:-1]] + [first[0][0]]
    assert (len(store.cases), len(store.persons), len(store.keys), len(store.flags)) == (
        cases,
        persons,
        keys,
        flags,
    )
    assert uow.published == []
