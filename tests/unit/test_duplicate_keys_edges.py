"""Duplicate keys at their edges (issue 16): which document a number is, which names a person is
found by, and the advisory lock ids the keys take in PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import date
from typing import Any

import pytest

from services.intake.domain import PersonIn
from services.intake.duplicates import (
    Holder,
    Match,
    PersonKeys,
    keys_for,
    keys_of,
    lock_ids,
    matches_in_order,
    normalise_name,
    transliterate,
)
from tests.paths import REPO

BORN = date(1986, 3, 14)


def nazarov(**changes: Any) -> PersonKeys:
    """Farrukh Nazarov's keys, with the given details changed."""
    details: dict[str, Any] = {
        "document_number": "401234567",
        "document_country": "TJK",
        "surname": "Nazarov",
        "given_names": "Farrukh",
        "birth_date": BORN,
    }
    return keys_for(**(details | changes))


def document_key(number: str, country: str = "TJK") -> str:
    return nazarov(document_number=number, document_country=country).document


# --- the document a number is ---------------------------------------------------------------------


# Keys are stored with each registration and looked up by every later one (and by the bulk import):
# their written form is what makes a new registration meet the earlier ones, so it is pinned.
@pytest.mark.parametrize(
    ("number", "country", "key"),
    [
        ("401234567", "TJK", "TJK|401234567"),
        ("AB1234567", "TJK", "TJK|AB1234567"),
        ("ab1234567", "TJK", "TJK|AB1234567"),
        ("AB 123 4567", "TJK", "TJK|AB1234567"),
        ("AB1234567<<", "TJK", "TJK|AB1234567"),
        ("AB1234567", "UZB", "UZB|AB1234567"),
        # A final X is a character of the number, not filler.
        ("AB123456X", "TJK", "TJK|AB123456X"),
        ("AB123456X<", "TJK", "TJK|AB123456X"),
    ],
)
def test_a_document_key_is_the_country_and_the_number_without_filler_or_spaces(
    number: str, country: str, key: str
) -> None:
    assert document_key(number, country) == key


def test_numbers_differing_only_in_a_final_x_are_two_documents() -> None:
    assert document_key("AB123456X") != document_key("AB123456")


# --- the names a person is found by ---------------------------------------------------------------


def member(**changes: Any) -> PersonIn:
    body: dict[str, Any] = {
        "role": "principal",
        "given_names": "Farrukh",
        "surname": "Nazarov",
        "birth_date": BORN.isoformat(),
        "sex": "M",
        "nationality": "TJK",
        "document": {
            "type": "passport",
            "number": "401234567",
            "issuing_country": "TJK",
            "expires_on": "2030-01-01",
        },
    }
    for field, value in changes.items():
        if field in ("number", "issuing_country"):
            body["document"][field] = value
        else:
            body[field] = value
    return PersonIn.model_validate(body)


def meet(one: PersonKeys, other: PersonKeys) -> set[str]:
    """What two people's keys share: "document", "name", both or neither."""
    shared = set()
    if one.document == other.document:
        shared.add("document")
    if one.names & other.names:
        shared.add("name")
    return shared


# A field office typed the Latin name wrong but also took it in Cyrillic; another office typed it
# right. Only the Cyrillic spelling of the first can bring the two records together.
MISTYPED = {"surname": "Nasyrov", "given_names": "Firuz"}
CYRILLIC = {"surname_cyrillic": "Назаров", "given_names_cyrillic": "Фаррух"}


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        (MISTYPED | CYRILLIC | {"number": "401234500"}, {}, {"name"}),
        (MISTYPED | {"number": "401234500"}, {}, set()),
        # A surname in Cyrillic without the given names (or the reverse) is no name key of its own.
        (MISTYPED | {"surname_cyrillic": "Назаров", "number": "401234500"}, {}, set()),
        (MISTYPED | {"given_names_cyrillic": "Фаррух", "number": "401234500"}, {}, set()),
        (MISTYPED, {}, {"document"}),
        # The same number from another country is another document.
        (MISTYPED | {"issuing_country": "UZB"}, {}, set()),
        (CYRILLIC | {"issuing_country": "UZB"}, {}, {"name"}),
    ],
)
def test_who_meets_whom(first: dict[str, str], second: dict[str, str], shared: set[str]) -> None:
    assert meet(keys_of(member(**first)), keys_of(member(**second))) == shared


def test_one_cyrillic_name_alone_adds_no_name_key() -> None:
    for partial in ({"surname_cyrillic": "Назаров"}, {"given_names_cyrillic": "Фаррух"}):
        keys = nazarov(surname="Nasyrov", given_names="Firuz", **partial)
        assert keys.names == {"nasirov|firuz|1986-03-14"}


@pytest.mark.parametrize(
    ("written", "latin"),
    [
        ("Nazarov Farrukh", "nazarov farrukh"),
        ("Назаров Фаррух", "nazarov farrukh"),
        ("O'Neil-Назаров", "o'neil-nazarov"),
        ("Ҷӯраев 2", "juraev 2"),
    ],
)
def test_transliteration_keeps_latin_letters_and_everything_that_is_not_a_letter(
    written: str, latin: str
) -> None:
    assert transliterate(written) == latin


@pytest.mark.parametrize(
    ("written", "plain"),
    [("Müller", "Muller"), ("Şükürov", "Sukurov"), ("Nazárov", "Nazarov"), ("Ġafurov", "Gafurov")],
)
def test_diacritics_are_dropped_from_a_name_not_refused(written: str, plain: str) -> None:
    assert normalise_name(written) == normalise_name(plain)


# --- the advisory lock ids ------------------------------------------------------------------------

INT4 = range(-(2**31), 2**31)


def crowd(n: int) -> list[PersonKeys]:
    return [
        keys_for(
            document_number=f"40{i:07d}",
            document_country="TJK",
            surname=f"Nazarov{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}",
            given_names="Farrukh",
            birth_date=BORN,
            surname_cyrillic="Назаров",
            given_names_cyrillic="Фаррух",
        )
        for i in range(n)
    ]


def test_lock_ids_are_postgresql_int4_values_one_per_key_in_ascending_order() -> None:
    people = crowd(200)
    distinct_keys = {p.document for p in people} | {n for p in people for n in p.names}
    ids = lock_ids(people)
    # pg_advisory_xact_lock(int4, int4): a value outside int4 is refused by the database.
    assert all(isinstance(i, int) and i in INT4 for i in ids)
    assert ids == sorted(set(ids))
    assert len(ids) == len(distinct_keys)  # no two of these keys share a lock


def test_people_sharing_a_key_share_its_lock_id_and_no_other() -> None:
    one, other = crowd(2)
    shared = lock_ids([one]), lock_ids([other])
    # Both carry the same Cyrillic name key: exactly that lock is common to them.
    assert len(set(shared[0]) & set(shared[1])) == 1
    assert lock_ids([one, other]) == sorted(set(shared[0]) | set(shared[1]))


def test_every_intake_process_computes_the_same_lock_ids() -> None:
    # Python's str hash is salted per process: an id from it would differ between two intake
    # processes, and two registrations of one person would not wait for each other.
    code = (
        "import json; from datetime import date; from services.intake.duplicates import keys_for, lock_ids; "
        "print(json.dumps(lock_ids([keys_for(document_number='401234567', document_country='TJK', "
        "surname='Nazarov', given_names='Farrukh', birth_date=date(1986, 3, 14))])))"
    )
    here = lock_ids([nazarov()])
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(done.stdout) == here


def test_a_pair_sharing_the_document_and_the_name_is_flagged_once_on_the_document() -> None:
    # One flag a pair: a caseworker resolves the pair, not each key it shares.
    earlier, later = Holder(uuid.uuid4(), uuid.uuid4()), Holder(uuid.uuid4(), uuid.uuid4())
    keys = nazarov(surname_cyrillic="Назаров", given_names_cyrillic="Фаррух")
    assert matches_in_order([(earlier, keys), (later, keys)], {}) == [Match(later, earlier, "document")]
