"""The situation report drawn: two charts (matplotlib, Agg), one HTML page and one PDF page (fpdf2).

Text and charts use DejaVu Sans (bundled with matplotlib, so every machine that runs reporting has
it), which prints Latin, Cyrillic (Kazakh, Tajik, Uzbek, Russian), Greek and more: a crossing's or
a city's name prints as intake holds it.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.dates as mdates
from fpdf import FPDF
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as Chart
from matplotlib.ticker import MaxNLocator

from services.reporting.domain import Shown, shown_text
from services.reporting.sitrep import RequirementChange, SituationReport

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONT = FONT_DIR / "DejaVuSans.ttf"
FONT_BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"
TITLE = "Corridor daily situation report"


@dataclass(frozen=True)
class Charts:
    crossings: bytes
    """PNG: the day's people cleared and refused at each crossing"""
    returns: bytes
    """PNG: people returned (arrived), cumulative, to the report's day"""


def _value(v: Shown) -> int:
    return 0 if v is None else v


def _png(chart: Chart) -> bytes:
    out = io.BytesIO()
    FigureCanvasAgg(chart).print_png(out)
    return out.getvalue()


def _chart() -> tuple[Chart, Any]:
    # A Figure of its own on the Agg canvas, not pyplot's global state: reports may be drawn in
    # worker threads, and a service has no display.
    chart = Chart(figsize=(5.2, 3.2), dpi=150, layout="tight")
    return chart, chart.subplots()


def charts(report: SituationReport) -> Charts:
    t = report.threshold
    flow, ax = _chart()
    names = [c.name for c in report.crossings]
    positions = range(len(names))
    cleared = [_value(c.cleared) for c in report.crossings]
    refused = [_value(c.refused) for c in report.crossings]
    bars = ax.barh([p - 0.2 for p in positions], cleared, height=0.4, label="cleared", color="#1f77b4")
    bars_refused = ax.barh(
        [p + 0.2 for p in positions], refused, height=0.4, label="refused", color="#d62728"
    )
    for bar, shown in zip(bars, (c.cleared for c in report.crossings), strict=True):
        ax.annotate(
            shown_text(shown, t),
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    for bar, shown in zip(bars_refused, (c.refused for c in report.crossings), strict=True):
        ax.annotate(
            shown_text(shown, t),
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    ax.set_yticks(list(positions), names, fontsize=7)
    ax.invert_yaxis()  # the route's order, top down
    ax.set_xlabel("people")
    ax.set_title(f"Through each crossing, {report.day:%d %B %Y}", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=2, frameon=False)
    ax.margins(x=0.15)

    returns, ax2 = _chart()
    days = [d for d, _ in report.cumulative_returns]
    totals = [n for _, n in report.cumulative_returns]
    ax2.plot(days, totals, marker="o", markersize=3, color="#2ca02c")
    ax2.fill_between(days, totals, alpha=0.2, color="#2ca02c")
    ax2.annotate(
        shown_text(report.returned_to_date, t),
        (days[-1], totals[-1]),
        xytext=(0, 5),
        textcoords="offset points",
        ha="center",
        fontsize=7,
    )
    ax2.set_xlim(days[0] - timedelta(days=1), days[-1] + timedelta(days=1))
    ax2.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, len(days) // 7)))
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    ax2.set_ylabel("people returned")
    ax2.set_title("Returns of the operation, cumulative", fontsize=9)
    ax2.tick_params(axis="x", labelsize=7)
    ax2.set_ylim(bottom=0, top=max(max(totals) * 1.15, 1))
    return Charts(crossings=_png(flow), returns=_png(returns))


def _rows(report: SituationReport) -> list[tuple[str, str, str]]:
    t = report.threshold
    return [(h.label, shown_text(h.cases, t), shown_text(h.people, t)) for h in report.headlines]


def _returned_line(report: SituationReport) -> str:
    t = report.threshold
    return (
        f"Returned today: {shown_text(report.returned_women, t)} women and girls, "
        f"{shown_text(report.returned_children, t)} children (0-17), "
        f"{shown_text(report.returned_elderly, t)} older people (60+), "
        f"{shown_text(report.returned_vulnerable, t)} with a vulnerability. "
        f"Returned since the operation began: {shown_text(report.returned_to_date, t)}."
    )


def _change_line(c: RequirementChange) -> str:
    if c.change == "published":
        since = f", for travel from {c.effective_from:%d %B %Y}" if c.effective_from else ""
        return f"{c.checkpoint_id}: requirement {c.code} published{since} — {c.description}"
    return f"{c.checkpoint_id}: requirement {c.code or c.requirement_id} lifted"


def suppression_note(report: SituationReport) -> str:
    return (
        f"Figures from 1 to {report.threshold - 1} are shown as <{report.threshold} so that no one can "
        "be singled out. Counts are of cases (families travelling together) and of people; "
        "see docs/reporting.md for how each figure is computed."
    )


def to_html(report: SituationReport, drawn: Charts) -> str:
    e = html.escape
    t = report.threshold

    def img(png: bytes, alt: str) -> str:
        return f'<img alt="{e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'

    headline = "".join(
        f"<tr><th scope=row>{e(a)}</th><td>{e(b)}</td><td>{e(c)}</td></tr>" for a, b, c in _rows(report)
    )
    holds = (
        "".join(
            f"<tr><td>{e(h.reason or h.reason_code or 'no reason given')}</td>"
            f"<td>{e(shown_text(h.new_today, t))}</td><td>{e(shown_text(h.on_hold_at_end, t))}</td></tr>"
            for h in report.holds
        )
        or "<tr><td colspan=3>Nobody held.</td></tr>"
    )
    changes = "".join(f"<li>{e(_change_line(c))}</li>" for c in report.changes) or "<li>No change.</li>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(TITLE)} — {report.day:%Y-%m-%d}</title>
<style>
 body {{ font-family: "DejaVu Sans", sans-serif; max-width: 60rem; margin: 1rem auto; font-size: 14px; }}
 table {{ border-collapse: collapse; margin: .5rem 0; }} th, td {{ border: 1px solid #bbb; padding: .2rem .5rem; }}
 td {{ text-align: right; }} .charts img {{ width: 48%; }} .note {{ color: #555; font-size: 12px; }}
</style></head><body>
<h1>{e(TITLE)}</h1>
<p>{report.day:%A %d %B %Y} — generated {report.generated_at:%Y-%m-%d %H:%M %Z}</p>
<h2>Headline figures of the day</h2>
<table><thead><tr><th>Figure</th><th>Cases</th><th>People</th></tr></thead><tbody>{headline}</tbody></table>
<p>{e(_returned_line(report))}</p>
<div class="charts">{img(drawn.crossings, "People cleared and refused at each crossing")}
{img(drawn.returns, "People returned, cumulative")}</div>
<h2>Holds and their reasons</h2>
<table><thead><tr><th>Reason</th><th>Held today</th><th>On hold at the end of the day</th></tr></thead>
<tbody>{holds}</tbody></table>
<h2>What changed</h2><ul>{changes}</ul>
<p class="note">{e(suppression_note(report))}</p>
</body></html>
"""


def to_pdf(report: SituationReport, drawn: Charts) -> bytes:
    """One A4 page: headline, charts, holds, changes."""
    t = report.threshold
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=False)  # one page: lists are cut to fit, never spilled
    pdf.add_font("DejaVu", "", str(FONT))
    pdf.add_font("DejaVu", "B", str(FONT_BOLD))
    pdf.set_title(f"{TITLE} {report.day:%Y-%m-%d}")
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.cell(0, 8, TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 10)
    pdf.cell(
        0,
        6,
        f"{report.day:%A %d %B %Y} — generated {report.generated_at:%Y-%m-%d %H:%M %Z}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    pdf.set_font("DejaVu", "B", 11)
    pdf.cell(0, 7, "Headline figures of the day", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    with pdf.table(
        col_widths=(70, 25, 25),
        width=120,
        align="LEFT",
        line_height=5.2,
        text_align=("LEFT", "RIGHT", "RIGHT"),
    ) as table:
        table.row(("Figure", "Cases", "People"))
        for row in _rows(report):
            table.row(row)
    pdf.ln(2)
    pdf.multi_cell(0, 5, _returned_line(report), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    y = pdf.get_y()
    pdf.image(io.BytesIO(drawn.crossings), x=10, y=y, w=93)
    pdf.image(io.BytesIO(drawn.returns), x=107, y=y, w=93)
    pdf.set_y(y + 60)
    pdf.set_font("DejaVu", "B", 11)
    pdf.cell(0, 7, "Holds and their reasons", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8)
    holds = report.holds[:8]
    with pdf.table(col_widths=(130, 25, 35), line_height=4.6, text_align=("LEFT", "RIGHT", "RIGHT")) as table:
        table.row(("Reason", "Held today", "On hold at day's end"))
        for h in holds:
            table.row(
                (
                    h.reason or h.reason_code or "no reason given",
                    shown_text(h.new_today, t),
                    shown_text(h.on_hold_at_end, t),
                )
            )
        if not holds:
            table.row(("Nobody held.", "", ""))
    if len(report.holds) > len(holds):
        pdf.cell(
            0,
            5,
            f"... and {len(report.holds) - len(holds)} more reasons (HTML report)",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    pdf.ln(2)
    pdf.set_font("DejaVu", "B", 11)
    pdf.cell(0, 7, "What changed", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8)
    for c in report.changes[:5] or ():
        pdf.multi_cell(0, 4.5, "• " + _change_line(c), new_x="LMARGIN", new_y="NEXT")
    if not report.changes:
        pdf.cell(0, 5, "No crossing requirement was published or lifted.", new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(-22)
    pdf.set_font("DejaVu", "", 7)
    pdf.multi_cell(0, 3.8, suppression_note(report), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
