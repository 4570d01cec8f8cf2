"""Web pages of the casework flow: cases and requests, probe evidence (edits with live preview, face choice, drawn
box), searches, the candidate grid, comparison with the conclusion form, blind verification, supervisor decisions,
release and the lead report. Every action calls a :mod:`faceleads.casework` service, which authorises and audits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from faceleads.casework import adjudication, admin, cases, probes, reporting, searching
from faceleads.casework.edits import parse_edits
from faceleads.core.policy import Action
from faceleads.errors import NotFound, ValidationError
from faceleads.gallery import viewing
from faceleads.web.api.schemas import Id
from faceleads.web.deps import PageScope, Scope, run_blocking
from faceleads.web.render import render
from faceleads.web.security import CSRF_HEADER, check_csrf, read_upload

router = APIRouter(include_in_schema=False)

Csrf = Annotated[str, Form(max_length=200)]
NO_STORE = {"Cache-Control": "no-store"}
FINDINGS = ("similar", "dissimilar", "not_visible")


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# --- queue (home) ----------------------------------------------------------------------------------------------


def work_queue(scope: Scope) -> dict[str, Any]:
    """What waits for the actor: leads to verify, requests to authorise, disputes to decide, released reports."""
    rt, actor = scope.rt, scope.actor
    queue: dict[str, Any] = {"verify": [], "authorise": [], "disputed": [], "released": [], "verified": [],
                             "cases": []}  # fmt: skip
    if scope.may(Action.VERIFY, actor.agency_id):
        queue["verify"] = adjudication.verification_queue(rt, actor)
    if not scope.may(Action.VIEW_CASE, actor.agency_id):
        return queue
    open_cases = cases.list_cases(rt, actor, status="open")[:50]
    queue["cases"] = open_cases[:10]
    for case in open_cases:
        if scope.may(Action.AUTHORISE_EXCEPTION, actor.agency_id):
            queue["authorise"] += [(case, r) for r in cases.list_requests(rt, actor, case.id)
                                   if r.status == "awaiting_authorisation"]  # fmt: skip
        for lead in adjudication.list_leads(rt, actor, case.id):
            if lead.status == "disputed" and scope.may(Action.DECIDE_DISAGREEMENT, actor.agency_id):
                queue["disputed"].append((case, lead))
            elif lead.status == "released":
                queue["released"].append((case, lead))
            elif lead.status == "verified" and scope.may(Action.RELEASE_LEAD, actor.agency_id):
                queue["verified"].append((case, lead))
    return queue


# --- cases -----------------------------------------------------------------------------------------------------


@router.get("/cases", response_class=HTMLResponse)
def cases_page(
    request: Request, scope: PageScope, status: Annotated[str | None, Query(pattern="^(open|closed)?$")] = None
) -> Response:
    """Cases of the agency (filter by status) and the form to open one."""
    listed = cases.list_cases(scope.rt, scope.actor, status=status or None)
    offences = [o for o in admin.list_offences(scope.rt, scope.actor) if o.active]
    return render(request, "cases.html", {"cases": listed, "offences": offences, "status": status or "",
                                          "can_open": scope.may(Action.OPEN_CASE, scope.actor.agency_id)})  # fmt: skip


@router.post("/cases")
def open_case_page(
    request: Request,
    scope: PageScope,
    csrf: Csrf,
    occurrence_number: Annotated[str, Form(max_length=100)],
    offence: Annotated[str, Form(max_length=50)],
    justification: Annotated[str, Form(max_length=4000)],
    investigator: Annotated[str, Form(max_length=150)] = "",
) -> Response:
    """Open a case."""
    check_csrf(request, csrf)
    info = cases.open_case(scope.rt, scope.actor, occurrence_number, offence, justification,
                           investigator=investigator.strip() or None)  # fmt: skip
    return _redirect(f"/cases/{info.id}")


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, case_id: Id, scope: PageScope) -> Response:
    """A case: requests, probes, searches and leads, with the actions the actor's roles allow."""
    rt, actor = scope.rt, scope.actor
    info = cases.show_case(rt, actor, case_id)
    purposes = [p for p in admin.list_purposes(rt) if p.active]
    may = {name: scope.may(action, actor.agency_id) for name, action in (
        ("request", Action.OPEN_CASE), ("evidence", Action.SUBMIT_EVIDENCE), ("authorise", Action.AUTHORISE_EXCEPTION),
        ("release", Action.RELEASE_LEAD), ("search", Action.SEARCH), ("report", Action.VIEW_REPORT),
        ("edit", Action.EDIT_PROBE), ("decide", Action.DECIDE_DISAGREEMENT))}  # fmt: skip
    return render(request, "case.html", {
        "case": info, "requests": cases.list_requests(rt, actor, case_id),
        "probes": probes.list_probes(rt, actor, case_id), "searches": searching.list_case_searches(rt, actor, case_id),
        "leads": adjudication.list_leads(rt, actor, case_id), "purposes": purposes, "may": may,
    })  # fmt: skip


@router.post("/cases/{case_id}/requests")
def open_request_page(
    request: Request,
    case_id: Id,
    scope: PageScope,
    csrf: Csrf,
    purpose: Annotated[str, Form(max_length=64)],
    justification: Annotated[str, Form(max_length=4000)],
) -> Response:
    """Request facial recognition for a purpose."""
    check_csrf(request, csrf)
    cases.open_request(scope.rt, scope.actor, case_id, purpose, justification)
    return _redirect(f"/cases/{case_id}")


@router.post("/requests/{request_id}/authorise")
def authorise_page(
    request: Request,
    request_id: Id,
    scope: PageScope,
    csrf: Csrf,
    reason: Annotated[str, Form(max_length=2000)],
    grant: Annotated[str, Form(pattern="^(grant|refuse)$")] = "grant",
    back: Annotated[str, Form(pattern="^(case|decisions)$")] = "case",
) -> Response:
    """A supervisor authorises or refuses a request's purpose."""
    check_csrf(request, csrf)
    info = cases.authorise_request(scope.rt, scope.actor, request_id, reason, grant=grant == "grant")
    return _redirect("/decisions" if back == "decisions" else f"/cases/{info.case_id}")


@router.post("/cases/{case_id}/probes")
async def add_probe_page(
    request: Request,
    case_id: Id,
    scope: PageScope,
    csrf: Csrf,
    photo: Annotated[UploadFile, File()],
    source: Annotated[str, Form(max_length=300)],
    obtained_by: Annotated[str, Form(max_length=150)],
    legal_basis: Annotated[str, Form(max_length=2000)],
    obtained_at: Annotated[str, Form(max_length=40, description="YYYY-MM-DDTHH:MM (UTC)")],
) -> Response:
    """Take in an evidence photo as a probe."""
    check_csrf(request, csrf)
    try:
        when = datetime.fromisoformat(obtained_at.strip())
    except ValueError:
        raise ValidationError(f"when the evidence was obtained ({obtained_at!r}) is not a date and time") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    data = await read_upload(photo, scope.rt.settings.max_file_bytes, "evidence photo")
    info = await run_blocking(request, probes.add_photo, scope.rt, scope.actor, case_id, data, source=source,
                              obtained_by=obtained_by, obtained_at=when, legal_basis=legal_basis,
                              filename=photo.filename or "")  # fmt: skip
    # Analysts go on to prepare the probe; an investigator returns to the case.
    if scope.may(Action.EDIT_PROBE, scope.actor.agency_id):
        return _redirect(f"/case-probes/{info.id}")
    return _redirect(f"/cases/{case_id}")


@router.post("/cases/{case_id}/videos")
async def add_video_page(
    request: Request,
    case_id: Id,
    scope: PageScope,
    csrf: Csrf,
    video: Annotated[UploadFile, File()],
    source: Annotated[str, Form(max_length=300)],
    obtained_by: Annotated[str, Form(max_length=150)],
    legal_basis: Annotated[str, Form(max_length=2000)],
    obtained_at: Annotated[str, Form(max_length=40)],
) -> Response:
    """Take in a recorded video: each face track's best shots become probes."""
    from faceleads.web.api.casework import add_video

    check_csrf(request, csrf)
    try:
        when = datetime.fromisoformat(obtained_at.strip())
    except ValueError:
        raise ValidationError(f"when the evidence was obtained ({obtained_at!r}) is not a date and time") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    await add_video(case_id, request, scope, video, source, obtained_by, legal_basis, when)
    return _redirect(f"/cases/{case_id}")


# --- probes ----------------------------------------------------------------------------------------------------


def edits_from_form(brightness: int, contrast: float, rotate: float, equalize: bool, sharpen: float) -> list[
    dict[str, Any]
]:
    """The edit list the probe page's controls describe (neutral controls add no step)."""
    steps: list[dict[str, Any]] = []
    if rotate:
        steps.append({"op": "rotate", "degrees": rotate})
    if equalize:
        steps.append({"op": "equalize", "method": "clahe"})
    if brightness:
        steps.append({"op": "brightness", "amount": brightness})
    if contrast != 1.0:
        steps.append({"op": "contrast", "factor": contrast})
    if sharpen:
        steps.append({"op": "sharpen", "amount": sharpen})
    return [e.to_json() for e in parse_edits(steps)]


def _controls(edits: list[dict[str, Any]]) -> dict[str, Any]:
    """Slider positions for a stored edit list (steps the page has no control for are listed, not lost)."""
    out: dict[str, Any] = {"brightness": 0, "contrast": 1.0, "rotate": 0, "equalize": False, "sharpen": 0.0}
    for step in edits:
        op = step.get("op")
        if op == "brightness":
            out["brightness"] = step["amount"]
        elif op == "contrast":
            out["contrast"] = step["factor"]
        elif op == "rotate":
            out["rotate"] = step["degrees"]
        elif op == "equalize":
            out["equalize"] = True
        elif op == "sharpen":
            out["sharpen"] = step["amount"]
    return out


@router.get("/case-probes/{probe_id}", response_class=HTMLResponse)
async def probe_page(request: Request, probe_id: Id, scope: PageScope) -> Response:
    """The probe: edited image with numbered face boxes and quality, edit controls with live preview, face choice,
    drawn box, quality override (supervisors) and the search form."""
    rt, actor = scope.rt, scope.actor
    info = probes.show_probe(rt, actor, probe_id)
    can_edit = scope.may(Action.EDIT_PROBE, actor.agency_id)
    # Investigators see their evidence; only examiners run detection, edit, pick faces and search.
    faces = await run_blocking(request, probes.detect_faces, rt, actor, probe_id) if can_edit else []
    # The evidence's size; the page script corrects it from the loaded image when edits rotate or crop it.
    width, height = info.width, info.height
    requests_ = [r for r in cases.list_requests(rt, actor, info.case_id) if r.status == "ready"]
    return render(request, "case_probe.html", {
        "probe": info, "faces": faces, "requests": requests_, "controls": _controls(info.edits),
        "width": width, "height": height, "k": rt.settings.candidate_list_length,
        "can_override": scope.may(Action.AUTHORISE_EXCEPTION, actor.agency_id), "can_edit": can_edit,
    })  # fmt: skip


@router.get("/case-probes/{probe_id}/image")
async def probe_image_page(
    request: Request, probe_id: Id, scope: PageScope, edited: Annotated[bool, Query()] = True
) -> Response:
    """The probe image (edited or original), audited, never cached."""
    png = await run_blocking(request, probes.probe_image, scope.rt, scope.actor, probe_id, edited=edited)
    return Response(png, media_type="image/png", headers=NO_STORE)


@router.get("/case-probes/{probe_id}/preview")
async def preview_page(
    request: Request,
    probe_id: Id,
    scope: PageScope,
    brightness: Annotated[int, Query(ge=-255, le=255)] = 0,
    contrast: Annotated[float, Query(ge=0.1, le=5.0)] = 1.0,
    rotate: Annotated[float, Query(ge=-360, le=360)] = 0.0,
    equalize: Annotated[bool, Query()] = False,
    sharpen: Annotated[float, Query(ge=0.0, le=5.0)] = 0.0,
) -> Response:
    """Live preview of an edit list applied to the original (nothing is saved; the view is audited)."""
    edits = edits_from_form(brightness, contrast, rotate, equalize, sharpen)
    body = await run_blocking(request, probes.preview_edits, scope.rt, scope.actor, probe_id, edits)
    return Response(body, media_type="image/jpeg", headers=NO_STORE)


@router.post("/case-probes/{probe_id}/edits")
async def save_edits_page(
    request: Request,
    probe_id: Id,
    scope: PageScope,
    csrf: Csrf,
    brightness: Annotated[int, Form(ge=-255, le=255)] = 0,
    contrast: Annotated[float, Form(ge=0.1, le=5.0)] = 1.0,
    rotate: Annotated[float, Form(ge=-360, le=360)] = 0.0,
    equalize: Annotated[bool, Form()] = False,
    sharpen: Annotated[float, Form(ge=0.0, le=5.0)] = 0.0,
) -> Response:
    """Save the edit list (a new logged version; the face must be picked again)."""
    check_csrf(request, csrf)
    edits = edits_from_form(brightness, contrast, rotate, equalize, sharpen)
    await run_blocking(request, probes.set_edits, scope.rt, scope.actor, probe_id, edits)
    return _redirect(f"/case-probes/{probe_id}")


@router.post("/case-probes/{probe_id}/face")
async def pick_face_page(
    request: Request, probe_id: Id, scope: PageScope, csrf: Csrf, face: Annotated[int, Form(ge=1, le=1000)]
) -> Response:
    """Choose a detected face."""
    check_csrf(request, csrf)
    await run_blocking(request, probes.pick_face, scope.rt, scope.actor, probe_id, face)
    return _redirect(f"/case-probes/{probe_id}")


@router.post("/case-probes/{probe_id}/box")
async def draw_box_page(request: Request, probe_id: Id, scope: PageScope) -> JSONResponse:
    """Use the face inside an analyst-drawn box (JSON {"box": [x1, y1, x2, y2]}; CSRF header)."""
    check_csrf(request, request.headers.get(CSRF_HEADER))
    try:
        payload = await request.json()
        box = [float(v) for v in payload["box"]]
    except (ValueError, KeyError, TypeError):
        raise ValidationError('send JSON {"box": [x1, y1, x2, y2]} in image pixels') from None
    info = await run_blocking(request, probes.draw_box, scope.rt, scope.actor, probe_id, box)
    return JSONResponse(info.to_json(), headers=NO_STORE)


@router.post("/case-probes/{probe_id}/override")
def override_page(
    request: Request, probe_id: Id, scope: PageScope, csrf: Csrf, reason: Annotated[str, Form(max_length=2000)]
) -> Response:
    """A supervisor's recorded quality override."""
    check_csrf(request, csrf)
    probes.override_quality(scope.rt, scope.actor, probe_id, reason)
    return _redirect(f"/case-probes/{probe_id}")


@router.post("/case-probes/{probe_id}/search")
async def search_page(
    request: Request,
    probe_id: Id,
    scope: PageScope,
    csrf: Csrf,
    request_id: Annotated[int, Form(ge=1, le=2**53)],
    top: Annotated[int | None, Form(ge=2, le=50)] = None,
    floor: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Search the gallery for a request with this probe."""
    check_csrf(request, csrf)
    try:
        score_floor = float(floor) if floor.strip() else None
    except ValueError:
        raise ValidationError(f"score floor {floor!r} is not a number") from None
    info = await run_blocking(request, searching.run_search, scope.rt, scope.actor, request_id, [probe_id], top=top,
                              floor=score_floor)  # fmt: skip
    return _redirect(f"/case-searches/{info.id}")


@router.get("/case-probes/{probe_id}/aligned")
async def probe_aligned_page(request: Request, probe_id: Id, scope: PageScope) -> Response:
    """The chosen probe face, aligned for comparison."""
    body, _ = await run_blocking(request, probes.aligned_face, scope.rt, scope.actor, probe_id)
    return Response(body, media_type="image/jpeg", headers=NO_STORE)


# --- searches, adjudication ------------------------------------------------------------------------------------


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
    check_csrf(request, str(form.get("csrf") or ""))
    conclusion = str(form.get("conclusion") or "")
    notes = str(form.get("notes") or "")[:4000]
    checklist = {f: str(form.get(f"feature_{f}")) for f in adjudication.FEATURES if form.get(f"feature_{f}")}
    adjudication.adjudicate(scope.rt, scope.actor, case_search_id, rank, conclusion, notes, checklist)
    marks = adjudication.candidate_list(scope.rt, scope.actor, case_search_id)
    following = next((c.rank for c in marks if c.conclusion is None and c.rank > rank), None)
    following = following or next((c.rank for c in marks if c.conclusion is None), None)
    if following is not None:
        return _redirect(f"/case-searches/{case_search_id}/compare/{following}")
    return _redirect(f"/case-searches/{case_search_id}")


@router.post("/case-searches/{case_search_id}/submit")
def submit_page(request: Request, case_search_id: Id, scope: PageScope, csrf: Csrf) -> Response:
    """Submit the conclusions; possible leads go to blind verification."""
    check_csrf(request, csrf)
    adjudication.submit_adjudication(scope.rt, scope.actor, case_search_id)
    return _redirect(f"/case-searches/{case_search_id}")


@router.get("/case-searches/{case_search_id}/report.pdf")
async def report_page(request: Request, case_search_id: Id, scope: PageScope) -> Response:
    """Download the lead report (the export is recorded and audited by the casework service)."""
    export = await run_blocking(request, reporting.export_report, scope.rt, scope.actor, case_search_id)
    return Response(export.pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="lead-report-{case_search_id}.pdf"', **NO_STORE})  # fmt: skip


# --- verification, decisions, release ---------------------------------------------------------------------------


@router.get("/verification", response_class=HTMLResponse)
def verification_queue_page(request: Request, scope: PageScope) -> Response:
    """Leads awaiting blind verification by the actor."""
    return render(request, "verification.html", {"leads": adjudication.verification_queue(scope.rt, scope.actor)})


@router.get("/decisions", response_class=HTMLResponse)
def decisions_page(request: Request, scope: PageScope) -> Response:
    """A supervisor's decisions: purposes awaiting authorisation and disputed leads, with their forms."""
    scope.require(Action.AUTHORISE_EXCEPTION, "decisions", scope.actor.agency_id)
    return render(request, "decisions.html", {"queue": work_queue(scope)})


@router.get("/leads/{lead_id}/verify", response_class=HTMLResponse)
def verify_page(request: Request, lead_id: Id, scope: PageScope) -> Response:
    """The blind verification view: probe and candidate only (never the first analyst's conclusion)."""
    task = adjudication.verification_task(scope.rt, scope.actor, lead_id)
    probe_id = int(task.probes[0]["probe_id"])
    return render(request, "verify.html", {
        "task": task, "probe_id": probe_id, "probe_landmarks": probes.face_landmarks(scope.rt, scope.actor, probe_id),
        "cand_landmarks": viewing.landmarks(scope.rt, scope.actor, task.image_id),
    })  # fmt: skip


@router.post("/leads/{lead_id}/verify")
def verify_post(
    request: Request,
    lead_id: Id,
    scope: PageScope,
    csrf: Csrf,
    result: Annotated[str, Form(pattern="^(agree|disagree)$")],
    notes: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Record agree / disagree."""
    check_csrf(request, csrf)
    adjudication.verify_lead(scope.rt, scope.actor, lead_id, result, notes)
    return _redirect("/verification?done=" + str(lead_id))


@router.post("/leads/{lead_id}/decide")
def decide_post(
    request: Request,
    lead_id: Id,
    scope: PageScope,
    csrf: Csrf,
    decision: Annotated[str, Form(pattern="^(verified|rejected)$")],
    reason: Annotated[str, Form(max_length=2000)],
) -> Response:
    """A supervisor decides a disputed lead."""
    check_csrf(request, csrf)
    adjudication.resolve_disagreement(scope.rt, scope.actor, lead_id, decision, reason)
    return _redirect("/decisions")


@router.post("/leads/{lead_id}/release")
def release_post(request: Request, lead_id: Id, scope: PageScope, csrf: Csrf) -> Response:
    """Release a verified lead to the investigator."""
    check_csrf(request, csrf)
    info = adjudication.release_lead(scope.rt, scope.actor, lead_id)
    return _redirect(f"/cases/{info.case_id}")



# --- destruction requests ---------------------------------------------------------------------------------------


@router.get("/destruction", response_class=HTMLResponse)
def destruction_page(request: Request, scope: PageScope) -> Response:
    """Destruction requests of the agency: request, checklist, decision, execution, certificate."""
    from faceleads.governance import destruction

    listed = destruction.list_requests(scope.rt, scope.actor)
    may = {name: scope.may(action, scope.actor.agency_id) for name, action in (
        ("request", Action.DESTRUCTION_REQUEST), ("decide", Action.DESTRUCTION_DECIDE),
        ("execute", Action.DESTRUCTION_EXECUTE))}  # fmt: skip
    return render(request, "destruction.html", {"requests": [r.to_json() for r in listed], "may": may})


@router.post("/destruction")
def destruction_request_post(
    request: Request,
    scope: PageScope,
    csrf: Csrf,
    subject_number: Annotated[str, Form(max_length=64)],
    requester: Annotated[str, Form(max_length=200)],
    grounds: Annotated[str, Form(max_length=4000)],
) -> Response:
    """Record a destruction request."""
    from faceleads.governance import destruction

    check_csrf(request, csrf)
    subject_id = destruction.find_subject_id(scope.rt, scope.actor, subject_number)
    destruction.request_destruction(scope.rt, scope.actor, subject_id, requester=requester, grounds=grounds)
    return _redirect("/destruction")


@router.post("/destruction/{request_id}/checklist")
def destruction_checklist_post(
    request: Request,
    request_id: Id,
    scope: PageScope,
    csrf: Csrf,
    item: Annotated[str, Form(max_length=64)],
    satisfied: Annotated[str, Form(pattern="^(yes|no)$")],
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Record one checklist item."""
    from faceleads.governance import destruction

    check_csrf(request, csrf)
    destruction.record_checklist(scope.rt, scope.actor, request_id, item, satisfied == "yes", note)
    return _redirect("/destruction")


@router.post("/destruction/{request_id}/decision")
def destruction_decision_post(
    request: Request,
    request_id: Id,
    scope: PageScope,
    csrf: Csrf,
    decision: Annotated[str, Form(pattern="^(approve|deny)$")],
    reason: Annotated[str, Form(max_length=4000)],
) -> Response:
    """Approve or deny."""
    from faceleads.governance import destruction

    check_csrf(request, csrf)
    destruction.decide(scope.rt, scope.actor, request_id, approve=decision == "approve", reason=reason)
    return _redirect("/destruction")


@router.post("/destruction/{request_id}/execute")
async def destruction_execute_post(request: Request, request_id: Id, scope: PageScope, csrf: Csrf) -> Response:
    """Carry out an approved destruction."""
    from faceleads.governance import destruction

    check_csrf(request, csrf)
    await run_blocking(request, destruction.execute, scope.rt, scope.actor, request_id)
    return _redirect("/destruction")


@router.get("/destruction/{request_id}/certificate.json")
def destruction_certificate(request_id: Id, scope: PageScope) -> JSONResponse:
    """The destruction certificate."""
    from faceleads.governance import destruction

    return JSONResponse(destruction.certificate(scope.rt, scope.actor, request_id), headers={
        "Content-Disposition": f'attachment; filename="destruction-certificate-{request_id}.json"', **NO_STORE})
