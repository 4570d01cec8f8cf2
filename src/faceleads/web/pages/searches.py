"""Searches: the quick search form (with the face picker), the candidate grid, the comparison view with the
conclusion form, excluding the remaining candidates, submitting the conclusions, and lead reports (issue, page with
the SHA-256, download, detached checksum, check a copy)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup

from faceleads.casework import adjudication, cases, probes, quick, reporting, searching
from faceleads.errors import NotFound
from faceleads.gallery import viewing
from faceleads.gallery.visibility import DEFAULT_PURPOSE
from faceleads.web.api.schemas import Id
from faceleads.web.deps import PageScope, run_blocking
from faceleads.web.pages import compare
from faceleads.web.pages.common import NO_STORE, done, page_router, redirect
from faceleads.web.render import label, render
from faceleads.web.security import read_upload

router = page_router()

FINDINGS = ("similar", "dissimilar", "not_visible")


def score_chart(scores: list[float], threshold: float) -> Markup:
    """A small SVG of the candidates' scores by rank with the calibrated threshold line (numbers only)."""
    width, height, pad = 640, 150, 30
    n = max(len(scores), 1)
    bar = (width - 2 * pad) / n
    lo, hi = min([0.0, *scores]), 1.0

    def y(v: float) -> float:
        return height - pad - (v - lo) / (hi - lo) * (height - 2 * pad)

    parts = [f'<svg class="score-chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="Scores of the {len(scores)} candidates by rank; the dashed line is the threshold '
             f'{threshold:.2f}">']  # fmt: skip
    for i, score in enumerate(scores):
        x = pad + i * bar + 2
        top = y(max(score, lo))
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{top:.1f}" width="{max(bar - 4, 1):.1f}" '
                     f'height="{max(y(lo) - top, 0):.1f}"><title>rank {i + 1}: {score:.3f}</title></rect>')  # fmt: skip
        if n <= 25 or i % 5 == 0:
            mid = x + (bar - 4) / 2
            parts.append(f'<text x="{mid:.1f}" y="{height - pad + 14}" text-anchor="middle">{i + 1}</text>')
    line = y(threshold)
    parts.append(f'<line class="line" x1="{pad}" x2="{width - pad}" y1="{line:.1f}" y2="{line:.1f}"/>')
    parts.append(f'<text x="{width - pad}" y="{line - 4:.1f}" text-anchor="end">threshold {threshold:.2f}</text>')
    parts.append(f'<text x="{pad}" y="14">score (cosine similarity) by rank</text></svg>')
    return Markup("".join(parts))  # only numbers formatted here: nothing to escape


# --- quick search ----------------------------------------------------------------------------------------------


@router.get("/search", response_class=HTMLResponse)
def quick_search_page(request: Request, scope: PageScope) -> Response:
    """The short form of a case search: an open case of the agency, a purpose, the justification and the photo."""
    form = quick.search_form(scope.rt, scope.actor)
    return render(request, "quick_search.html", {
        "cases": form.cases, "purposes": form.purposes, "default_purpose": DEFAULT_PURPOSE,
        "k": scope.rt.settings.candidate_list_length, "floor": scope.rt.settings.quality_floor,
    })  # fmt: skip


@router.post("/search/faces")
async def quick_search_faces(
    request: Request, scope: PageScope, image: Annotated[UploadFile, File()]
) -> JSONResponse:
    """The faces of the photo chosen in the quick search form, for the face picker (nothing is kept but the
    audit entry: detection is biometric processing)."""
    data = await read_upload(image, scope.rt.settings.max_file_bytes, "photo")
    found = await run_blocking(request, probes.detect_upload, scope.rt, scope.actor, data)
    return JSONResponse({"width": found.width, "height": found.height, "faces": found.faces}, headers=NO_STORE)


@router.get("/probes")
def old_probes_page() -> Response:
    """The former in-memory probe page: quick searches now run on a case."""
    return redirect("/search")


@router.post("/search")
async def quick_search_submit(
    request: Request,
    scope: PageScope,
    probe: Annotated[UploadFile, File()],
    case: Annotated[str, Form(max_length=100)],
    reason: Annotated[str, Form(max_length=4000)],
    legal_basis: Annotated[str, Form(max_length=2000)],
    purpose: Annotated[str, Form(max_length=64)] = DEFAULT_PURPOSE,
    source: Annotated[str, Form(max_length=2000)] = "",
    face: Annotated[int | None, Form(ge=1, le=1000)] = None,
    top: Annotated[int | None, Form(ge=2, le=50)] = None,
) -> Response:
    """Run the quick search through casework (request, evidence, probe, search); land on the candidate grid, where
    every candidate must be adjudicated."""
    data = await read_upload(probe, scope.rt.settings.max_file_bytes, "probe")
    result = await run_blocking(
        request, quick.quick_search, scope.rt, scope.actor, case, data, reason=reason, legal_basis=legal_basis,
        purpose=purpose, source=source.strip() or None, face=face, top=top, filename=probe.filename or "",
    )  # fmt: skip
    count = len(result.search.candidates)
    return done(request, f"/case-searches/{result.case_search_id}",
                f"Searched: {count} candidates to adjudicate on case {result.occurrence_number}.")


@router.get("/searches/{search_id}")
def old_results_page(search_id: Id, scope: PageScope) -> Response:
    """A recorded search is shown as the case search it belongs to (authorised and audited there)."""
    info = searching.show_search(scope.rt, scope.actor, search_id)
    return redirect(f"/case-searches/{info.id}")


# --- candidate grid, comparison, conclusions ---------------------------------------------------------------------


def _reason_choices() -> dict[str, list[tuple[str, str]]]:
    return {k: list(v) for k, v in adjudication.REASON_CODES.items()}


@router.get("/case-searches/{case_search_id}", response_class=HTMLResponse)
def case_results_page(request: Request, case_search_id: Id, scope: PageScope) -> Response:
    """The candidate grid beside the probe face: ranks, scores against the calibrated threshold, marks, a
    display-only score filter, excluding the remaining candidates with one reason, and submitting."""
    rt, actor = scope.rt, scope.actor
    info = searching.show_case_search(rt, actor, case_search_id)
    marks = adjudication.candidate_list(rt, actor, case_search_id)
    case = cases.show_case(rt, actor, info.case_id)
    leads = [lead for lead in adjudication.list_leads(rt, actor, info.case_id)
             if lead.case_search_id == case_search_id]  # fmt: skip
    unmarked = [c for c in marks if c.conclusion is None]
    threshold = rt.settings.similarity_threshold
    return render(request, "case_results.html", {
        "info": info, "candidates": marks, "case": case, "leads": leads, "unmarked": unmarked,
        "possible": [c for c in marks if c.conclusion == "possible_lead"], "own": all(c.marks_visible for c in marks),
        "probe_id": int(info.probes_used[0]["probe_id"]), "threshold": threshold,
        "threshold_basis": rt.settings.similarity_threshold_basis,
        "above": sum(1 for c in marks if c.score >= threshold),
        "chart": score_chart([c.score for c in marks], threshold),
        "exclusions": adjudication.REASON_CODES["excluded"], "reason_label": adjudication.reason_label,
    })  # fmt: skip


@router.get("/case-searches/{case_search_id}/compare/{rank}", response_class=HTMLResponse)
def case_compare_page(request: Request, case_search_id: Id, rank: Id, scope: PageScope) -> Response:
    """Comparison of the probe and candidate ``rank`` (aligned crops or originals, filmstrip of the candidate's
    photos, the probe in its scene) with the conclusion form: conclusion, reason code, notes, feature checklist."""
    rt, actor = scope.rt, scope.actor
    info = searching.show_case_search(rt, actor, case_search_id)
    marks = adjudication.candidate_list(rt, actor, case_search_id)
    candidate = next((c for c in marks if c.rank == rank), None)
    if candidate is None:
        raise NotFound(f"search {case_search_id} has no candidate ranked {rank}")
    probe_id = int(info.probes_used[0]["probe_id"])
    probe = probes.show_probe(rt, actor, probe_id)
    case = cases.show_case(rt, actor, info.case_id)
    occurrence = case.occurrence_number
    photos = viewing.subject_photos(rt, actor, candidate.subject_id, case=occurrence)
    ranks = [c.rank for c in marks]
    i = ranks.index(rank)

    def url(image_id: int, view: str) -> str:
        return f"/gallery/images/{image_id}?view={view}&case={occurrence}"

    def caption(photo: dict[str, Any]) -> str:
        return (f"Candidate #{candidate.rank} {candidate.subject_number} ({candidate.agency}), booking "
                f"{photo['booking_number']} of {photo['booking_date']}")  # fmt: skip

    view = compare.build(probe_id, probe.face_box, probe.face_landmarks, photos, candidate.image_id, url, caption,
                         f"Probe {probe_id} (as searched)")  # fmt: skip
    return render(request, "case_compare.html", {
        "info": info, "candidate": candidate, "ranks": [(c.rank, c.conclusion) for c in marks], "case": case,
        "view": view, "prev_rank": ranks[i - 1] if i > 0 else None, "next_rank": ranks[i + 1] if i + 1 < len(ranks)
        else None, "features": adjudication.FEATURES, "findings": FINDINGS,
        "submitted": info.status != "adjudicating", "reasons": _reason_choices(),
        "reasons_json": json.dumps(_reason_choices()), "reason_label": adjudication.reason_label,
    })  # fmt: skip


@router.post("/case-searches/{case_search_id}/candidates/{rank}/conclusion")
async def conclude_page(request: Request, case_search_id: Id, rank: Id, scope: PageScope) -> Response:
    """Record the conclusion, reason, notes and checklist; then go to the next unmarked candidate (or the grid)."""
    form = await request.form()
    conclusion = str(form.get("conclusion") or "")
    notes = str(form.get("notes") or "")[:4000]
    reason = str(form.get("reason_code") or "")[:32] or None
    checklist = {f: str(form.get(f"feature_{f}")) for f in adjudication.FEATURES if form.get(f"feature_{f}")}
    adjudication.adjudicate(scope.rt, scope.actor, case_search_id, rank, conclusion, notes, checklist,
                            reason_code=reason)  # fmt: skip
    marks = adjudication.candidate_list(scope.rt, scope.actor, case_search_id)
    following = next((c.rank for c in marks if c.conclusion is None and c.rank > rank), None)
    following = following or next((c.rank for c in marks if c.conclusion is None), None)
    message = f"Candidate #{rank} marked {label(conclusion).lower()}."
    if following is not None:
        return done(request, f"/case-searches/{case_search_id}/compare/{following}",
                    f"{message} Now candidate #{following}.")
    return done(request, f"/case-searches/{case_search_id}", f"{message} Every candidate is marked: review and submit.")


@router.post("/case-searches/{case_search_id}/exclude-remaining")
def exclude_remaining_page(
    request: Request,
    case_search_id: Id,
    scope: PageScope,
    reason_code: Annotated[str, Form(max_length=32)],
    notes: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Mark every candidate not yet marked as excluded, with one reason."""
    ranks = adjudication.exclude_remaining(scope.rt, scope.actor, case_search_id, reason_code, notes)
    return done(request, f"/case-searches/{case_search_id}",
                f"{len(ranks)} candidate(s) excluded ({adjudication.reason_label('excluded', reason_code)}).")


@router.post("/case-searches/{case_search_id}/submit")
def submit_page(request: Request, case_search_id: Id, scope: PageScope) -> Response:
    """Submit the conclusions; possible leads go to blind verification."""
    leads = adjudication.submit_adjudication(scope.rt, scope.actor, case_search_id)
    return done(request, f"/case-searches/{case_search_id}",
                f"Conclusions submitted. {len(leads)} possible lead(s) sent to blind verification."
                if leads else "Conclusions submitted: no possible lead.")


# --- lead reports ------------------------------------------------------------------------------------------------


@router.get("/case-searches/{case_search_id}/reports", response_class=HTMLResponse)
def reports_page(request: Request, case_search_id: Id, scope: PageScope) -> Response:
    """The lead reports issued for a search, and the button to issue one."""
    listing = reporting.reports_of_search(scope.rt, scope.actor, case_search_id)
    return render(request, "reports.html", {"listing": listing, "case_search_id": case_search_id})


@router.post("/case-searches/{case_search_id}/reports")
async def issue_report_page(request: Request, case_search_id: Id, scope: PageScope) -> Response:
    """Issue a lead report (recorded, kept encrypted, audited) and show its page with the SHA-256."""
    export = await run_blocking(request, reporting.export_report, scope.rt, scope.actor, case_search_id)
    return done(request, f"/lead-reports/{export.report_id}",
                f"Lead report {export.reference} issued; its SHA-256 is recorded.")


@router.get("/lead-reports/check", response_class=HTMLResponse)
def check_report_form(request: Request, scope: PageScope) -> Response:
    """Check a copy of a lead report against the reports faceleads issued."""
    return render(request, "report_check.html", {"result": None})


@router.post("/lead-reports/check", response_class=HTMLResponse)
async def check_report_page(request: Request, scope: PageScope, report: Annotated[UploadFile, File()]) -> Response:
    """Compute the SHA-256 of an uploaded copy and look it up (the check is audited)."""
    data = await read_upload(report, scope.rt.settings.max_file_bytes, "report")
    digest, found = await run_blocking(request, reporting.check_report, scope.rt, scope.actor, data)
    return render(request, "report_check.html", {"result": {"sha256": digest, "found": found,
                                                            "filename": report.filename or ""}})  # fmt: skip


@router.get("/lead-reports/{report_id}", response_class=HTMLResponse)
def report_record_page(request: Request, report_id: Id, scope: PageScope) -> Response:
    """A lead report's page: reference, SHA-256, who issued it when, the PDF and its detached checksum."""
    return render(request, "report.html", {"report": reporting.report_record(scope.rt, scope.actor, report_id)})


@router.get("/lead-reports/{report_id}/pdf")
async def report_pdf_page(request: Request, report_id: Id, scope: PageScope) -> Response:
    """The stored PDF (checked against its recorded SHA-256; the download is audited)."""
    pdf, record = await run_blocking(request, reporting.report_pdf, scope.rt, scope.actor, report_id)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{record.filename}"', "X-Report-SHA256": record.sha256,
        **NO_STORE})  # fmt: skip


@router.get("/lead-reports/{report_id}/sha256")
def report_checksum_page(report_id: Id, scope: PageScope) -> Response:
    """The detached checksum file (``sha256sum -c`` format)."""
    record = reporting.report_record(scope.rt, scope.actor, report_id)
    return Response(record.sha256_file(), media_type="text/plain", headers={
        "Content-Disposition": f'attachment; filename="{record.filename}.sha256"', **NO_STORE})  # fmt: skip
