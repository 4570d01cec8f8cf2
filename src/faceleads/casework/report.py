"""The lead report PDF: a pure renderer from :class:`ReportData` to PDF bytes (reportlab).

The report states the case, the purpose and its authorisation, the probe (original and edited, with the edit list
used), the verified candidate(s) with booking details and scores, the analysts and reviewers with their times, the
model version and gallery size, and — on every page — the statement that the result is an investigative lead only.
The service layer (:mod:`faceleads.casework.reporting`) gathers the data, records the report's SHA-256 and audits
the export.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

DISCLAIMER = (
    "Investigative lead only, not an identification; must be corroborated by independent evidence."
)


@dataclass(frozen=True)
class ReportProbe:
    """One probe image of the search (several when templates were fused)."""

    label: str  # e.g. "probe 3 (photo, face 1)" or "probe 7 (video frame 120 at 4.80 s, track 2)"
    sha256: str  # of the original evidence bytes
    edits: str  # the edit list used, described
    quality: float | None
    weight: float | None  # fusion weight (None for a single probe)
    original_png: bytes | None = None
    edited_png: bytes | None = None
    scene_png: bytes | None = None  # the image as searched with the searched face's box drawn
    crop_png: bytes | None = None  # the searched face as an aligned comparison crop, landmarks marked
    provenance: list[tuple[str, str]] = field(default_factory=list)  # source, obtained by/when, legal basis ...
    edit_history: list[str] = field(default_factory=list)  # every version of the edit list, who and when


@dataclass(frozen=True)
class ReportPerson:
    """Who did what, when."""

    role: str  # "analyst", "verifier", "supervisor", "released by", ...
    username: str
    at: datetime
    note: str = ""


@dataclass(frozen=True)
class ReportCandidate:
    """A verified candidate with its booking details and score."""

    rank: int
    score: float
    subject_number: str
    agency: str
    booking_number: str
    booking_date: str
    conclusion: str
    verification: str
    photo_png: bytes | None = None
    crop_png: bytes | None = None  # aligned comparison crop with landmarks, same geometry as the probe's


@dataclass(frozen=True)
class ReportData:
    """Everything the lead report shows."""

    report_ref: str
    generated_at: datetime
    generated_by: str
    agency: str
    occurrence_number: str
    offence: str
    investigator: str
    case_justification: str
    purpose: str
    purpose_authorisation: str  # "not required" or "by <user> at <time>: <reason>"
    request_justification: str
    search_id: int
    searched_at: datetime
    model_version: str
    gallery_size: int
    galleries: str
    candidate_list_length: int
    quality_override: str  # "not needed" or "by ... : reason"
    probes: list[ReportProbe]
    candidates: list[ReportCandidate]
    people: list[ReportPerson] = field(default_factory=list)
    custody: list[tuple[str, str, str, str, str]] = field(default_factory=list)  # (seq, time, user, event, object)
    custody_total: int = 0


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _image(png: bytes | None, max_w: float, max_h: float) -> Image | Paragraph:
    styles = getSampleStyleSheet()
    if not png:
        return Paragraph("(image not available)", styles["Italic"])
    img = Image(io.BytesIO(png))
    scale = min(max_w / img.imageWidth, max_h / img.imageHeight)
    img.drawWidth, img.drawHeight = img.imageWidth * scale, img.imageHeight * scale
    return img


def render_lead_report(data: ReportData) -> bytes:
    """Render the report to PDF bytes (deterministic for the same data apart from reportlab's timestamps)."""
    buffer = io.BytesIO()
    styles = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=styles["BodyText"], fontSize=8, leading=10)
    warn = ParagraphStyle(
        "warn", parent=styles["BodyText"], fontSize=10, leading=13, textColor=colors.darkred, fontName="Helvetica-Bold"
    )

    def p(text: str, style: ParagraphStyle = small) -> Paragraph:
        return Paragraph(escape(text), style)

    def footer(canvas, doc) -> None:  # type: ignore[no-untyped-def]
        canvas.saveState()
        canvas.setFont("Helvetica-Bold", 8)
        canvas.setFillColor(colors.darkred)
        canvas.drawString(15 * mm, 10 * mm, DISCLAIMER)
        canvas.setFillColor(colors.black)
        canvas.setFont("Helvetica", 8)
        canvas.drawRightString(195 * mm, 10 * mm, f"{data.report_ref} - page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=18 * mm,
        title=f"Investigative lead report {data.report_ref}", author=data.generated_by,
        subject=DISCLAIMER,
    )
    grid = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
        ]
    )
    story: list[object] = [
        Paragraph("Facial recognition investigative lead report", styles["Title"]),
        Paragraph(escape(DISCLAIMER), warn),
        Spacer(1, 4 * mm),
        Paragraph("Case and request", styles["Heading2"]),
    ]
    case_rows = [
        ("Report", data.report_ref),
        ("Generated", f"{_ts(data.generated_at)} by {data.generated_by}"),
        ("Agency", data.agency),
        ("Occurrence number", data.occurrence_number),
        ("Offence", data.offence),
        ("Investigator", data.investigator),
        ("Case justification", data.case_justification),
        ("Purpose", data.purpose),
        ("Purpose authorisation", data.purpose_authorisation),
        ("Request justification", data.request_justification),
        ("Quality override", data.quality_override),
    ]
    story.append(Table([[p(k), p(v)] for k, v in case_rows], colWidths=[45 * mm, 135 * mm], style=grid))
    story += [Spacer(1, 4 * mm), Paragraph("Search", styles["Heading2"])]
    search_rows = [
        ("Search", f"#{data.search_id} at {_ts(data.searched_at)}"),
        ("Model version", data.model_version),
        ("Gallery size", f"{data.gallery_size} templates searched ({data.galleries})"),
        ("Candidate list length", str(data.candidate_list_length)),
        ("Probe images", f"{len(data.probes)}" + (" (templates fused, weighted by quality)" if len(data.probes) > 1
                                                 else "")),
    ]
    story.append(Table([[p(k), p(v)] for k, v in search_rows], colWidths=[45 * mm, 135 * mm], style=grid))
    boxed = TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")])
    story += [Spacer(1, 2 * mm), Paragraph("Verified candidate(s): face comparison", styles["Heading2"]),
              p("Both faces are aligned the same way (eyes, nose and mouth at the same place, same scale); the red "
                "dots are the landmarks the system found. The comparison itself was made by trained examiners.")]
    if not data.candidates:
        story.append(p("No verified candidate."))
    probe_crop = next((pr.crop_png for pr in data.probes if pr.crop_png), None)
    for c in data.candidates:
        facts = [
            f"rank {c.rank}, score {c.score:.4f} (cosine similarity; not a probability of identity)",
            f"subject {c.subject_number} ({c.agency})",
            f"booking {c.booking_number} of {c.booking_date}",
            f"analyst conclusion: {c.conclusion}",
            f"verification: {c.verification}",
        ]
        story.append(Table(
            [[p("Probe face (as searched)"), p(f"Candidate {c.subject_number}, booking {c.booking_date}")],
             [_image(probe_crop, 80 * mm, 80 * mm), _image(c.crop_png or c.photo_png, 80 * mm, 80 * mm)]],
            colWidths=[90 * mm, 90 * mm], style=boxed,
        ))  # fmt: skip
        story.append(Table([[_image(c.photo_png, 45 * mm, 55 * mm), [p(f) for f in facts]]],
                           colWidths=[50 * mm, 130 * mm], style=boxed))  # fmt: skip
        story.append(Spacer(1, 3 * mm))
    story += [Spacer(1, 2 * mm), Paragraph("Probe evidence: which face, provenance and edits", styles["Heading2"])]
    for probe in data.probes:
        facts = [
            f"{probe.label}",
            f"original SHA-256: {probe.sha256}",
            f"edits applied for the search: {probe.edits}",
            f"quality: {probe.quality:.3f}" if probe.quality is not None else "quality: n/a",
        ]
        if probe.weight is not None:
            facts.append(f"fusion weight: {probe.weight:.3f}")
        story.append(Table(
            [[p("The image as searched; the box marks the face searched"), p("Details")],
             [_image(probe.scene_png or probe.edited_png, 100 * mm, 80 * mm), [p(f) for f in facts]]],
            colWidths=[105 * mm, 75 * mm], style=boxed,
        ))  # fmt: skip
        if probe.provenance:
            story.append(Table([[p(k), p(v)] for k, v in probe.provenance], colWidths=[45 * mm, 135 * mm],
                               style=grid))  # fmt: skip
        history = probe.edit_history or ["no edit: the original was searched as received"]
        story.append(Table([[p("Edit history"), [p(h) for h in history]]], colWidths=[45 * mm, 135 * mm],
                           style=grid))  # fmt: skip
        story.append(Table(
            [[p("Original (as received, never altered)"), p("Edited (as searched)")],
             [_image(probe.original_png, 85 * mm, 60 * mm), _image(probe.edited_png, 85 * mm, 60 * mm)]],
            colWidths=[90 * mm, 90 * mm], style=boxed,
        ))  # fmt: skip
        story.append(Spacer(1, 3 * mm))
    story += [Spacer(1, 2 * mm), Paragraph("Analysts and reviewers", styles["Heading2"])]
    rows = [[p("Role"), p("User"), p("Time"), p("Note")]] + [
        [p(x.role), p(x.username), p(_ts(x.at)), p(x.note)] for x in data.people
    ]
    story.append(Table(rows, colWidths=[35 * mm, 40 * mm, 40 * mm, 65 * mm], style=TableStyle(
        [("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")])))
    story += [Spacer(1, 4 * mm), Paragraph("Chain of custody of the evidence", styles["Heading2"]),
              p("From the system's hash-chained audit log (entry numbers given): every receipt, view, edit, face "
                "choice, search and export of this evidence." + (
                    f" {data.custody_total} events; the first and last {len(data.custody)} are listed."
                    if data.custody_total > len(data.custody) else ""))]
    if data.custody:
        rows = [[p("Entry"), p("Time"), p("User"), p("Event"), p("Object")]] + [
            [p(seq), p(at), p(user), p(event), p(obj)] for seq, at, user, event, obj in data.custody]
        story.append(Table(rows, colWidths=[15 * mm, 38 * mm, 32 * mm, 65 * mm, 30 * mm], repeatRows=1,
                           style=TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                                             ("VALIGN", (0, 0), (-1, -1), "TOP")])))  # fmt: skip
    story += [Spacer(1, 4 * mm), Paragraph("Checking this report", styles["Heading2"]),
              p(f"faceleads records the SHA-256 of this file when it is generated (report {data.report_ref}) and "
                "gives it with the file: on the page the report is downloaded from and in the detached file "
                f"lead-report-{data.report_ref}.pdf.sha256. A file cannot contain its own hash, so it is not printed "
                "here. To check a copy, compute its SHA-256 and compare: 'sha256sum -c "
                f"lead-report-{data.report_ref}.pdf.sha256' (Linux), 'shasum -a 256 FILE' (macOS), 'Get-FileHash "
                "FILE -Algorithm SHA256' (Windows PowerShell), or upload it on faceleads' Check a lead report "
                "page, which looks the hash up among the reports recorded."),
              Spacer(1, 4 * mm), Paragraph(escape(DISCLAIMER), warn)]
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


__all__ = ["DISCLAIMER", "ReportCandidate", "ReportData", "ReportPerson", "ReportProbe", "render_lead_report"]
