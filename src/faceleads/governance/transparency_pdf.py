"""The transparency report as a PDF (reportlab): a pure renderer of an already suppressed
:class:`~faceleads.governance.transparency.TransparencyReport` — it prints the published values only."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from faceleads.governance.transparency import Row, TransparencyReport

SECTIONS: dict[str, tuple[str, str]] = {
    "searches": ("Searches", "Every 1:N search of the gallery made for one of the agency's cases, by the legal regime "
                 "it was made under (investigative: a case, an approved offence, a justification; exigent: threat to "
                 "life or victim identification, searched at once and ratified by a supervisor afterwards), and "
                 "supervisors' prior authorisations of purposes that need one."),
    "casework": ("Candidates and leads", "Candidates reviewed by analysts (each candidate of a list is marked), and "
                 "leads through blind verification, supervisor decisions and release to the investigator."),
    "outcomes": ("Outcomes of released leads", "The latest outcome signed off by an investigator, at the end of the "
                 "period, for each lead released in the period. A lead is never an identification."),
    "refusals": ("Refusals", "Actions the system refused to the agency's users (audited denials), by action."),
    "exigent": ("Exigent searches and their ratification", "Each exigent search made in the period, by where its "
                "supervisor's ratification stood at the end of the period: ratified within the agency's window, "
                "ratified late, refused, lapsed (not ratified within the window: its candidates are locked), or "
                "pending (still within the window)."),
    "destruction": ("Destruction of booking records", "Requests to destroy a person's booking photos, including those "
                    "opened by the agency's policy after a disposition (withdrawn, dismissed, acquitted, pardoned)."),
    "gallery": ("The gallery", "Bookings held under a legal authority on the agency's list, and bookings awaiting "
                "review (not searched meanwhile), at the time the report was produced."),
    "live": ("Live watch-list deployments", "Authorised, time-boxed deployments; faces that match nobody are "
             "discarded at once. Alerts are reviewed by an officer before anyone acts."),
    "accuracy": ("Accuracy: threshold calibration", "The latest stored calibration before the end of the period."),
    "accuracy_verify": ("Accuracy: verification (1:1) and demographic differentials",
                        "Latest stored measurement; rates per group at one common threshold, differentials = highest "
                        "over lowest group rate."),
    "accuracy_identify": ("Accuracy: identification (1:N) and demographic differentials",
                          "Latest stored measurement; FNIR = mated searches missed, FPIR = non-mated searches "
                          "returning a candidate above the threshold."),
}  # fmt: skip

NOTICE = ("Public report: counts and measured figures only. It contains no personal or biometric data. Every "
          "candidate is an investigative lead, never an identification.")  # fmt: skip


def _label(text: str) -> str:
    return text.replace("_", " ")


def render_pdf(report: TransparencyReport) -> bytes:
    """The report as PDF bytes."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    span = f"{report.period_from.isoformat()} to {report.period_to.isoformat()}"

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(15 * mm, 10 * mm, f"faceleads transparency report - {report.agency} - {span}")
        canvas.drawRightString(195 * mm, 10 * mm, f"page {doc.page}")
        canvas.restoreState()

    def p(text: Any, style: str = "BodyText") -> Paragraph:
        return Paragraph(escape("" if text is None else str(text)), styles[style])

    def table(rows: list[Row]) -> Table:
        data = [[p("measure"), p("breakdown"), p("value")]]
        data += [[p(_label(r.measure)), p(_label(r.breakdown)), p(r.published)] for r in rows]
        t = Table(data, colWidths=[55 * mm, 80 * mm, 35 * mm], repeatRows=1)
        t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke)]))  # fmt: skip
        return t

    header = {r.measure: r.published for r in report.header()}
    story: list[Any] = [
        p(f"Transparency report - {report.agency_name} ({report.agency})", "Title"),
        p(f"Period: {span} (UTC days, inclusive). Produced {header['generated_at']}."),
        p(NOTICE, "Italic"),
        p(f"Small counts: {header['suppression']}.", "Italic"),
        Spacer(1, 4 * mm),
    ]
    order: list[str] = []
    for row in report.rows:
        if row.section not in order:
            order.append(row.section)
    for section in order:
        title, explanation = SECTIONS.get(section, (_label(section).capitalize(), ""))
        story.append(p(title, "Heading2"))
        if explanation:
            story.append(p(explanation))
        story.append(table([r for r in report.rows if r.section == section]))
    doc = SimpleDocTemplate(buffer, pagesize=A4, title=f"Transparency report {report.agency} {span}",
                            author="faceleads", leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                            bottomMargin=18 * mm)  # fmt: skip
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


__all__ = ["NOTICE", "SECTIONS", "render_pdf"]
