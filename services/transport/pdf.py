"""Printable manifests (PDF) for the people at the border post and on the bus."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fpdf import FPDF

from contracts.transport import ManifestPassenger
from services.transport.domain import inert_cell

# Debian's fonts-dejavu-core (the Makefile and the image install it). DejaVu Sans covers Latin with
# the Uzbek and Tajik letters (ʻ U+02BB, ō, ḩ), Cyrillic with Tajik's ғ ӣ қ ӯ ҳ ҷ, and Greek.
DEBIAN_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


class MissingFont(RuntimeError):
    pass


@dataclass(frozen=True)
class ManifestFonts:
    """A Unicode TrueType font, regular and bold: names print exactly as registered, in any script
    intake accepts (PDF core fonts are Latin-1: "Gʻulom" printed as "G?ulom", Cyrillic not at all)."""

    regular: Path
    bold: Path

    @classmethod
    def dejavu(cls, directory: Path = DEBIAN_DEJAVU) -> ManifestFonts:
        fonts = cls(directory / "DejaVuSans.ttf", directory / "DejaVuSans-Bold.ttf")
        missing = [str(p) for p in (fonts.regular, fonts.bold) if not p.is_file()]
        if missing:
            raise MissingFont(
                f"manifest font not found: {', '.join(missing)}; install Debian's fonts-dejavu-core "
                "or set CORRIDOR_MANIFEST_FONT_DIR to a directory holding DejaVuSans.ttf and DejaVuSans-Bold.ttf"
            )
        return fonts


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
    fonts: ManifestFonts,
) -> bytes:
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.add_font("Manifest", "", str(fonts.regular))
    pdf.add_font("Manifest", "B", str(fonts.bold))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Manifest", "B", 14)
    pdf.cell(0, 8, f"Passenger manifest - {movement_id} / {vehicle_id}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Manifest", "", 10)
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
    pdf.set_font("Manifest", "B", 9)
    for w, h in zip(widths, headers, strict=True):
        pdf.cell(w, 7, h, border=1)
    pdf.ln()
    pdf.set_font("Manifest", "", 9)
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
            # Inert as in the CSV: text copied from the PDF into a spreadsheet is no formula either.
            # A name longer than its column shrinks to fit rather than run into the next cell.
            text = inert_cell(v)
            size = 9.0
            while size > 5 and pdf.get_string_width(text) > w - 2:
                size -= 0.5
                pdf.set_font_size(size)
            pdf.cell(w, 6, text, border=1)
            pdf.set_font_size(9)
        pdf.ln()
    return bytes(pdf.output())
