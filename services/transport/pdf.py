"""Printable manifests (PDF) for the people at the border post and on the bus."""

from __future__ import annotations

from datetime import datetime

from fpdf import FPDF

from contracts.transport import ManifestPassenger
from services.transport.domain import inert_cell


def manifest_pdf(
    *,
    movement_id: str,
    vehicle_id: str,
    route: str,
    departure: str,
    revision: int,
    passengers: list[ManifestPassenger],
    printed_at: datetime,
    printed_by: str,
) -> bytes:
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, f"Passenger manifest - {movement_id} / {vehicle_id}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(
        0,
        6,
        f"Route {route} - departure {departure} - revision {revision} - {len(passengers)} passengers",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.cell(
        0,
        6,
        f"Printed {printed_at:%Y-%m-%d %H:%M} UTC by {printed_by}. Personal data: handle as confidential.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(3)
    widths = (10, 55, 60, 28, 12, 22, 40, 40)
    headers = ("#", "Surname", "Given names", "Born", "Sex", "Nationality", "Document", "Number")
    pdf.set_font("Helvetica", "B", 9)
    for w, h in zip(widths, headers, strict=True):
        pdf.cell(w, 7, h, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    for i, p in enumerate(passengers, start=1):
        values = (
            str(i),
            p.surname,
            p.given_names,
            p.birth_date.isoformat(),
            p.sex,
            p.nationality,
            p.document_type.value.replace("_", " "),
            p.document_number,
        )
        for w, v in zip(widths, values, strict=True):
            # Core fonts are Latin-1: names arrive as written in the document's Latin script.
            # Inert as in the CSV: text copied from the PDF into a spreadsheet is no formula either.
            pdf.cell(w, 6, inert_cell(v).encode("latin-1", "replace").decode("latin-1"), border=1)
        pdf.ln()
    return bytes(pdf.output())
