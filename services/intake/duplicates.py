"""Duplicate detection keys, without I/O.

The same person may be registered twice: by two field offices, once in Latin and once in Cyrillic
script, or with a typo in a transliteration. Two keys catch most of it: the travel document
(type-independent number and issuing country) and the normalised name with the birth date, built
from both scripts with the transliteration habits of Tajik and Russian records folded together.
Matches are flagged for a caseworker, never merged automatically.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

# Cyrillic (Russian and Tajik letters) to Latin, as passports and field forms spell them.
_CYRILLIC = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "ғ": "gh",
    "д": "d",
    "е": "e",
    "ё": "yo",
    "ж": "zh",
    "з": "z",
    "и": "i",
    "ӣ": "i",
    "й": "y",
    "к": "k",
    "қ": "q",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ӯ": "u",
    "ф": "f",
    "х": "kh",
    "ҳ": "h",
    "ц": "ts",
    "ч": "ch",
    "ҷ": "j",
    "ш": "sh",
    "щ": "shch",
    "ъ": "",
    "ы": "y",
    "ь": "",
    "э": "e",
    "ю": "yu",
    "я": "ya",
}
# Spelling variants that records of the same name use interchangeably, folded to one form.
_FOLDS = (
    ("dzh", "j"),
    ("zh", "j"),
    ("kh", "h"),
    ("gh", "g"),
    ("q", "k"),
    ("yo", "o"),
    ("yu", "u"),
    ("ya", "a"),
    ("aye", "ae"),
    ("oye", "oe"),
    ("iy", "i"),
    ("y", "i"),
    ("w", "v"),
    ("x", "h"),
    ("ee", "i"),
    ("oo", "u"),
)


def transliterate(text: str) -> str:
    out = []
    for ch in text.lower():
        out.append(_CYRILLIC.get(ch, ch))
    return "".join(out)


@functools.lru_cache(maxsize=65_536)  # an import repeats the same given names thousands of times
def normalise_name(text: str) -> str:
    """Lower case, Latin letters only, variants folded, doubled letters collapsed."""
    ascii_text = unicodedata.normalize("NFKD", transliterate(text)).encode("ascii", "ignore").decode()
    letters = "".join(ch for ch in ascii_text.lower() if ch.isalpha())
    for old, new in _FOLDS:
        letters = letters.replace(old, new)
    collapsed: list[str] = []
    for ch in letters:
        if not collapsed or collapsed[-1] != ch:
            collapsed.append(ch)
    # Feminine and masculine forms of a family name (Nazarov/Nazarova) are different people only
    # with another birth date, which the key includes.
    return "".join(collapsed)


class _Document(Protocol):
    @property
    def number(self) -> str: ...
    @property
    def issuing_country(self) -> str: ...


class PersonLike(Protocol):
    """A registered person or a person in a registration command."""

    @property
    def document(self) -> _Document: ...
    @property
    def surname(self) -> str: ...
    @property
    def given_names(self) -> str: ...
    @property
    def birth_date(self) -> date: ...
    @property
    def surname_cyrillic(self) -> str | None: ...
    @property
    def given_names_cyrillic(self) -> str | None: ...


@dataclass(frozen=True)
class PersonKeys:
    document: str
    names: frozenset[str]


def keys_for(
    *,
    document_number: str,
    document_country: str,
    surname: str,
    given_names: str,
    birth_date: date,
    surname_cyrillic: str | None = None,
    given_names_cyrillic: str | None = None,
) -> PersonKeys:
    names = {f"{normalise_name(surname)}|{normalise_name(given_names)}|{birth_date.isoformat()}"}
    if surname_cyrillic and given_names_cyrillic:
        names.add(
            f"{normalise_name(surname_cyrillic)}|{normalise_name(given_names_cyrillic)}|{birth_date.isoformat()}"
        )
    return PersonKeys(
        document=f"{document_country}|{document_number.upper().rstrip('<').replace(' ', '')}",
        names=frozenset(names),
    )


def keys_of(person: PersonLike) -> PersonKeys:
    return keys_for(
        document_number=person.document.number,
        document_country=person.document.issuing_country,
        surname=person.surname,
        given_names=person.given_names,
        birth_date=person.birth_date,
        surname_cyrillic=person.surname_cyrillic,
        given_names_cyrillic=person.given_names_cyrillic,
    )


def lock_ids(people: Iterable[PersonKeys]) -> list[int]:
    """The advisory lock ids of these people's keys: signed 32-bit, unique, in ascending order.

    Registrations that share a key take its lock before looking for candidates, so the later one
    sees the earlier one's keys. Taken in one order by everyone, locks shared by several keys cannot
    deadlock; two keys on one id only make their registrations wait for each other. The hash is
    fixed (not Python's salted ``hash``): every intake process must compute the same id.
    """
    ids: set[int] = set()
    for keys in people:
        for key in (f"document:{keys.document}", *(f"name:{k}" for k in keys.names)):
            digest = hashlib.blake2b(key.encode(), digest_size=4).digest()
            ids.add(int.from_bytes(digest, "big", signed=True))
    return sorted(ids)


KeyPair = tuple[str, str]
"""A duplicate key with its kind: ("document", ...) or ("name", ...)."""

CANDIDATES_PER_KEY = 10
"""A handful of candidates is enough for a caseworker to act on; a name shared by hundreds of
registrations must not turn one registration into hundreds of flags."""


def key_pairs(keys: PersonKeys) -> list[KeyPair]:
    """A person's keys in the order a registration records and looks them up: document first."""
    return [("document", keys.document)] + [("name", k) for k in sorted(keys.names)]


@dataclass(frozen=True)
class Holder:
    """A person holding a key, in their case."""

    person_id: uuid.UUID
    case_id: uuid.UUID


@dataclass(frozen=True)
class Match:
    """A person who may be a person of another case, and the kind of key they share."""

    person: Holder
    other: Holder
    basis: str


def matches_in_order(
    people: Sequence[tuple[Holder, PersonKeys]], recorded: Mapping[KeyPair, Sequence[Holder]]
) -> list[Match]:
    """What registering ``people`` one after the other, in this order, would flag: each person
    against the holders of each of their keys recorded before (``recorded``, at most
    ``CANDIDATES_PER_KEY`` a key) and the people before them in the sequence, never their own
    case's, at most ``CANDIDATES_PER_KEY`` candidates a key, and a pair once (on the first kind of
    key that matched, document before name)."""
    seen: dict[KeyPair, list[Holder]] = {}
    found: list[Match] = []
    for person, keys in people:
        paired: set[uuid.UUID] = set()
        for pair in key_pairs(keys):
            candidates = [
                h for h in (*recorded.get(pair, ()), *seen.get(pair, ())) if h.case_id != person.case_id
            ]
            for other in list(dict.fromkeys(candidates))[:CANDIDATES_PER_KEY]:
                if other.person_id not in paired:
                    paired.add(other.person_id)
                    found.append(Match(person, other, pair[0]))
            seen.setdefault(pair, []).append(person)
    return found
