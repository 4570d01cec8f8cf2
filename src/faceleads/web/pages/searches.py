"""Searches: the quick search form, the candidate grid, the comparison view with the conclusion form, submitting
the conclusions, and the lead report."""

from __future__ import annotations

from typing import Annotated

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from faceleads.casework import adjudication, cases, probes, quick, reporting, searching
from faceleads.errors import NotFound
from faceleads.gallery import viewing
from faceleads.gallery.visibility import DEFAULT_PURPOSE
from faceleads.web.api.schemas import Id
from faceleads.web.deps import PageScope, run_blocking
from faceleads.web.pages.common import NO_STORE, page_router, redirect
from faceleads.web.render import render
from faceleads.web.security import read_upload

router = page_router()

FINDINGS = ("similar", "dissimilar", "not_visible")


# --- quick search ----------------------------------------------------------------------------------------------


@router.get("/search", response_class=HTMLResponse)
def quick_search_page(request: Request, scope: PageScope) -> Response:
    """The short form of a case search: an open case of the agency, a purpose, the justification and the photo."""
    form = quick.search_form(scope.rt, scope.actor)
    return render(request, "quick_search.html", {
        "cases": form.cases, "purposes": form.purposes, "default_purpose": DEFAULT_PURPOSE,
        "k": scope.rt.settings.candidate_list_length, "floor": scope.rt.settings.quality_floor,
    })  # fmt: skip


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
    return redirect(f"/case-searches/{result.case_search_id}")


@router.get("/searches/{search_id}")
def old_results_page(search_id: Id, scope: PageScope) -> Response:
    """A recorded search is shown as the case search it belongs to (authorised and audited there)."""
    info = searching.show_search(scope.rt, scope.actor, search_id)
    return redirect(f"/case-searches/{info.id}")


# --- candidate grid, comparison, conclusions ---------------------------------------------------------------------


@router.get("/case-searches/{case_search_id}", response_class=HTMLResponse)
def case_results_page(request: Request, case_search_id: Id, scope: PageScope) -> Response:
    """The candidate grid with ranks, scores, marks and the score-floor filter; submit when all are marked."""
    info = searching.show_case_search(scope.rt, scope.actor, case_search_id)
    marks = adjudication.candidate_list(scope.rt, scope.actor, case_search_id)
    case = cases.show_case(scope.rt, scope.actor, info.case_id)
    leads = [lead for lead in adjudication.list_leads(scope.rt, scope.actor, info.case_id)
             if lead.case_search_id == case_search_id]  # fmt: skip
    unmarked = sum(1 for c in marks if c.conclusion is None)
    return render(request, "case_results.html", {"info": info, "candidates": marks, "case": case, "leads": leads,
                                                 "unmarked": unmarked})  # fmt: skip


@router.get("/case-searches/{case_search_id}/compare/{rank}", response_class=HTMLResponse)
def case_compare_page(request: Request, case_search_id: Id, rank: Id, scope: PageScope) -> Response:
    """Comparison of the probe and candidate ``rank`` with the conclusion form and feature checklist."""
    info = searching.show_case_search(scope.rt, scope.actor, case_search_id)
    marks = adjudication.candidate_list(scope.rt, scope.actor, case_search_id)
    candidate = next((c for c in marks if c.rank == rank), None)
    if candidate is None:
        raise NotFound(f"search {case_search_id} has no candidate ranked {rank}")
    probe_id = int(info.probes_used[0]["probe_id"])
    case = cases.show_case(scope.rt, scope.actor, info.case_id)
    subject = viewing.subject_detail(scope.rt, scope.actor, candidate.subject_id, case=case.occurrence_number)
    others = [i for i in subject.image_ids if i != candidate.image_id]
    return render(request, "case_compare.html", {
        "info": info, "candidate": candidate, "ranks": [(c.rank, c.conclusion) for c in marks], "case": case,
        "probe_id": probe_id, "probe_landmarks": probes.face_landmarks(scope.rt, scope.actor, probe_id),
        "cand_landmarks": viewing.landmarks(scope.rt, scope.actor, candidate.image_id, case=case.occurrence_number),
        "others": others,
        "features": adjudication.FEATURES, "findings": FINDINGS, "submitted": info.status != "adjudicating",
    })  # fmt: skip


@router.post("/case-searches/{case_search_id}/candidates/{rank}/conclusion")
async def conclude_page(request: Request, case_search_id: Id, rank: Id, scope: PageScope) -> Response:
    """Record the conclusion, notes and checklist; then go to the next unmarked candidate (or the grid)."""
    form = await request.form()
    conclusion = str(form.get("conclusion") or "")
    notes = str(form.get("notes") or "")[:4000]
    checklist = {f: str(form.get(f"feature_{f}")) for f in adjudication.FEATURES if form.get(f"feature_{f}")}
    adjudication.adjudicate(scope.rt, scope.actor, case_search_id, rank, conclusion, notes, checklist)
    marks = adjudication.candidate_list(scope.rt, scope.actor, case_search_id)
    following = next((c.rank for c in marks if c.conclusion is None and c.rank > rank), None)
    following = following or next((c.rank for c in marks if c.conclusion is None), None)
    if following is not None:
        return redirect(f"/case-searches/{case_search_id}/compare/{following}")
    return redirect(f"/case-searches/{case_search_id}")


@router.post("/case-searches/{case_search_id}/submit")
def submit_page(case_search_id: Id, scope: PageScope) -> Response:
    """Submit the conclusions; possible leads go to blind verification."""
    adjudication.submit_adjudication(scope.rt, scope.actor, case_search_id)
    return redirect(f"/case-searches/{case_search_id}")


@router.get("/case-searches/{case_search_id}/report.pdf")
async def report_page(request: Request, case_search_id: Id, scope: PageScope) -> Response:
    """Download the lead report (the export is recorded and audited by the casework service)."""
    export = await run_blocking(request, reporting.export_report, scope.rt, scope.actor, case_search_id)
    return Response(export.pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="lead-report-{case_search_id}.pdf"', **NO_STORE})  # fmt: skip
