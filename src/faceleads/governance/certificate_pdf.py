"""The destruction certificate as a readable PDF: a pure renderer from the certificate (the JSON document whose
SHA-256 is recorded when the destruction completes) to PDF bytes (reportlab).

The PDF restates the JSON and prints the JSON's SHA-256, so a reader can tie the two together; the JSON stays the
record of truth (it is what the recorded hash covers).
"""

from __future__ import annotations

import io
import json
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

LABELS: tuple[tuple[str, str], ...] = (
    ("request_id", "Destruction request"),
    ("agency", "Agency"),
    ("subject_id", "Subject record id"),
    ("subject_reference", "Subject reference (tombstone)"),
    ("requester", "Requested by"),
    ("grounds", "Grounds"),
    ("recorded_by", "Request recorded by"),
    ("recorded_at", "Request recorded at"),
    ("decision", "Decision"),
    ("decision_reason", "Reason for the decision"),
    ("decided_by", "Decided by"),
    ("decided_at", "Decided at"),
    ("executed_by", "Executed by"),
    ("execution_started_at", "Execution started at"),
    ("completed_by", "Completed by"),
    ("completed_at", "Completed at"),
    ("runs", "Execution runs"),
    ("data_key_destroyed", "Data key destroyed"),
    ("data_key_confirmed_destroyed", "Key confirmed unreadable"),
)


def render_certificate(certificate: dict[str, Any], json_sha256: str, checklist_text: dict[str, str]) -> bytes:
    """Render a destruction certificate to PDF bytes."""
    buffer = io.BytesIO()
    styles = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=styles["BodyText"], fontSize=9, leading=11)

    def p(text: object) -> Paragraph:
        return Paragraph(escape(str(text)), small)

    grid = TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                       ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke)])  # fmt: skip
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                            bottomMargin=15 * mm, title=f"Destruction certificate {certificate.get('request_id')}",
                            author="faceleads")  # fmt: skip
    rows = [(label, certificate.get(key)) for key, label in LABELS if key in certificate]
    story: list[object] = [
        Paragraph("Certificate of destruction of biometric records", styles["Title"]),
        p(str(certificate.get("statement", ""))),
        Spacer(1, 4 * mm),
        Table([[p(k), p("" if v is None else v)] for k, v in rows], colWidths=[55 * mm, 125 * mm], style=grid),
        Spacer(1, 4 * mm),
        Paragraph("Eligibility checklist", styles["Heading2"]),
        Table([[p(checklist_text.get(item, item)), p("satisfied" if ok else "NOT satisfied")]
               for item, ok in dict(certificate.get("checklist") or {}).items()],
              colWidths=[150 * mm, 30 * mm], style=grid),
        Spacer(1, 4 * mm),
        Paragraph("What was destroyed", styles["Heading2"]),
        Table([[p(k.replace("_", " ")), p(v)] for k, v in dict(certificate.get("destroyed") or {}).items()]
              or [[p("nothing recorded"), p("")]], colWidths=[100 * mm, 80 * mm], style=grid),
        Spacer(1, 4 * mm),
        Paragraph("Checking this certificate", styles["Heading2"]),
        p("The record of truth is the certificate document (JSON) kept by faceleads, whose SHA-256 was recorded "
          f"when the destruction completed: {json_sha256}. Download it from the Destruction page and compute its "
          "SHA-256 (sha256sum / shasum -a 256 / Get-FileHash) to check it. Its content:"),
        Spacer(1, 2 * mm),
        Paragraph(escape(json.dumps(certificate, indent=1, sort_keys=True)).replace("\n", "<br/>"),
                  ParagraphStyle("mono", parent=small, fontName="Courier", fontSize=7, leading=8)),
    ]
    doc.build(story)
    return buffer.getvalue()


__all__ = ["render_certificate"]
