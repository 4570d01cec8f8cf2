"""Server-rendered web pages (Jinja2) for analysts, reviewers, supervisors, records officers, auditors, admins.

Pages authenticate with the session cookie and check the CSRF token on every form; they call the same domain
services and the same :class:`~faceleads.web.deps.Scope` as the API. Images are served only by the authorised,
audited, ``no-store`` endpoints below.
"""

from __future__ import annotations

import contextlib
import html
from datetime import UTC, datetime, time
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select

from faceleads.core.actor import Actor
from faceleads.core.policy import Action
from faceleads.core.uow import transaction
from faceleads.errors import AuthenticationError, NotFound, ValidationError
from faceleads.gallery.enrolment import RecordInput, enrol_record, parse_birth_year, parse_date, parse_sex
from faceleads.gallery.models import SearchRecord
from faceleads.gallery.search import load_search, search
from faceleads.gallery.visibility import DEFAULT_PURPOSE
from faceleads.security import auth, users
from faceleads.vision.imaging import load_image
from faceleads.web.api.audit_routes import audit_page, statistics, verify
from faceleads.web.api.gallery import subject_detail, visible_subjects
from faceleads.web.api.jobs import start_bulk_job
from faceleads.web.api.schemas import Id
from faceleads.web.deps import DbSession, PageScope, Runtime, Scope, get_jobs, get_probes, page_token, run_blocking
from faceleads.web.jobs import JobRunner
from faceleads.web.media import Probe, ProbeFace, ProbeWorkspace, compare_crop, gallery_image, gallery_landmarks
from faceleads.web.render import render
from faceleads.web.security import (
    CSRF_HEADER,
    SESSION_COOKIE,
    check_csrf,
    clear_cookie,
    client_address,
    read_upload,
    set_cookie,
)

router = APIRouter(include_in_schema=False)

Csrf = Annotated[str, Form(max_length=200)]
Probes = Annotated[ProbeWorkspace, Depends(get_probes)]
Jobs = Annotated[JobRunner, Depends(get_jobs)]
MAX_PROBE_FACES = 30
NO_STORE = {"Cache-Control": "no-store"}


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _safe_next(target: str | None) -> str:
    """Only local absolute paths are followed after sign-in (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _optional_actor(request: Request, rt: Runtime) -> Actor | None:
    token = page_token(request)
    if not token:
        return None
    try:
        with transaction(rt.session_factory) as session:
            actor = auth.actor_for_session(session, token, settings=rt.settings)
    except AuthenticationError:
        return None
    request.state.actor = actor
    return actor


# --- sign-in -------------------------------------------------------------------------------------------------


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    """The sign-in form (username, password, second factor)."""
    return render(request, "sign_in.html", {"next": _safe_next(next), "error": None})


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    rt: Runtime,
    csrf: Csrf,
    username: Annotated[str, Form(max_length=150)],
    password: Annotated[str, Form(max_length=1024)],
    second_factor: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    """Check the credentials (rate limited), open a session and set the session cookie."""
    check_csrf(request, csrf)
    request.app.state.sign_in_limiter.check(client_address(request), username)
    try:
        result = await run_blocking(
            request, auth.authenticate, rt.session_factory, username, password, second_factor or None,
            settings=rt.settings, client=f"web {client_address(request)}",
        )  # fmt: skip
    except AuthenticationError as exc:
        return render(request, "sign_in.html", {"next": _safe_next(next), "error": str(exc), "username": username},
                      status_code=401)  # fmt: skip
    response = _redirect(_safe_next(next))
    set_cookie(response, request, rt.settings, SESSION_COOKIE, result.token, rt.settings.session_max_hours * 3600)
    return response


@router.post("/sign-out")
def sign_out(request: Request, rt: Runtime, probes: Probes, csrf: Csrf) -> Response:
    """End the session, forget the user's probes, clear the cookie."""
    check_csrf(request, csrf)
    token = page_token(request)
    if token:
        with transaction(rt.session_factory) as session:
            actor = None
            with contextlib.suppress(AuthenticationError):
                actor = auth.actor_for_session(session, token, settings=rt.settings)
            auth.logout(session, token)
        if actor is not None:
            probes.drop_user(actor.user_id)
    response = _redirect("/sign-in")
    clear_cookie(response, request, rt.settings, SESSION_COOKIE)
    return response


# --- home ----------------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request, scope: PageScope, probes: Probes, session: DbSession) -> Response:
    """The user's queue: open probes, recent searches; what else their roles let them do."""
    recent: list[SearchRecord] = []
    if scope.may(Action.SEARCH):
        recent = list(
            session.scalars(
                select(SearchRecord)
                .where(SearchRecord.agency_id == scope.actor.agency_id, SearchRecord.user_id == scope.actor.user_id)
                .order_by(SearchRecord.id.desc())
                .limit(20)
            )
        )
    from faceleads.web.case_pages import work_queue

    return render(request, "home.html", {"probes": probes.mine(scope.actor), "searches": recent,
                                         "scope": scope, "Action": Action, "queue": work_queue(scope)})  # fmt: skip


# --- probes and search ---------------------------------------------------------------------------------------


def _analyse_probe(scope: Scope, data: bytes, filename: str, workspace: ProbeWorkspace) -> Probe:
    image = load_image(data, scope.rt.settings)
    faces = scope.rt.face_engine.detect(image.pixels, max_faces=MAX_PROBE_FACES)
    found = [ProbeFace.from_face(i, f) for i, f in enumerate(faces, start=1)]
    return workspace.add(scope.actor, data, image.sha256, image.width, image.height, filename, found)


@router.get("/probes", response_class=HTMLResponse)
def probes_page(request: Request, scope: PageScope, probes: Probes) -> Response:
    """Upload a probe; the user's probes in this session."""
    scope.require(Action.EDIT_PROBE, "probe:list", scope.actor.agency_id)
    return render(request, "probes.html", {"probes": probes.mine(scope.actor)})


@router.post("/probes")
async def upload_probe(
    request: Request, scope: PageScope, probes: Probes, csrf: Csrf, probe: Annotated[UploadFile, File()]
) -> Response:
    """Safe intake and face detection of an uploaded probe; the probe stays in memory only."""
    check_csrf(request, csrf)
    scope.require(Action.EDIT_PROBE, "probe:upload", scope.actor.agency_id)
    data = await read_upload(probe, scope.rt.settings.max_file_bytes, "probe")
    held = await run_blocking(request, _analyse_probe, scope, data, probe.filename or "probe", probes)
    return _redirect(f"/probes/{held.probe_id}")


@router.get("/probes/{probe_id}", response_class=HTMLResponse)
def probe_page(request: Request, probe_id: str, scope: PageScope, probes: Probes) -> Response:
    """The probe with numbered face boxes and quality; pick a face, preview edits, draw a box, search."""
    scope.require(Action.VIEW_PROBE_IMAGE, f"probe:{probe_id[:40]}", scope.actor.agency_id)
    probe = probes.get(scope.actor, probe_id)
    return render(request, "probe.html", {"probe": probe, "purpose": DEFAULT_PURPOSE,
                                          "floor": scope.rt.settings.quality_floor,
                                          "k": scope.rt.settings.candidate_list_length})  # fmt: skip


def _probe_image(scope: Scope, probe: Probe) -> Response:
    scope.require(Action.VIEW_PROBE_IMAGE, f"probe:{probe.sha256}", scope.actor.agency_id)
    from faceleads.web.media import _media_type

    return Response(probe.data, media_type=_media_type(probe.data), headers=NO_STORE)


@router.get("/probes/{probe_id}/image")
def probe_image(probe_id: str, scope: PageScope, probes: Probes) -> Response:
    """The probe original, exactly as uploaded (own workspace only; never cached)."""
    return _probe_image(scope, probes.get(scope.actor, probe_id))


def _probe_face(probe: Probe, number: int) -> ProbeFace:
    for face in probe.faces:
        if face.number == number:
            return face
    raise NotFound(f"the probe has no face {number}")


def _probe_crop(scope: Scope, probe: Probe, number: int) -> bytes:
    face = _probe_face(probe, number)
    image = load_image(probe.data, scope.rt.settings)
    body, _ = compare_crop(image.pixels, face.landmarks)
    return body


@router.get("/probes/{probe_id}/faces/{number}/aligned")
async def probe_face_aligned(
    request: Request, probe_id: str, number: Id, scope: PageScope, probes: Probes
) -> Response:
    """The aligned comparison crop of one probe face."""
    scope.require(Action.VIEW_PROBE_IMAGE, f"probe:{probe_id[:40]}", scope.actor.agency_id)
    probe = probes.get(scope.actor, probe_id)
    body = await run_blocking(request, _probe_crop, scope, probe, number)
    return Response(body, media_type="image/jpeg", headers=NO_STORE)


def _draw_box(scope: Scope, probe: Probe, box: list[float]) -> ProbeFace:
    image = load_image(probe.data, scope.rt.settings)
    x1, y1, x2, y2 = box
    if not (0 <= x1 < x2 <= image.width and 0 <= y1 < y2 <= image.height) or (x2 - x1) < 8 or (y2 - y1) < 8:
        raise ValidationError("the drawn box must lie inside the image and be at least 8 pixels wide and high")
    face = scope.rt.face_engine.detect_in_box(image.pixels, box)
    if face is None:
        from faceleads.errors import NoFaceError

        raise NoFaceError("no face found inside the drawn box: draw it a little larger around the whole face")
    found = ProbeFace.from_face(0, face, drawn=True)
    # Numbering follows the search's (engine) order; a drawn face that the whole-image detection also found
    # keeps that number, otherwise it cannot be searched by number yet (noted on the page).
    for existing in probe.faces:
        if _iou(existing.box, found.box) > 0.5:
            return existing
    probe.faces.append(found)
    return found


def _iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@router.post("/probes/{probe_id}/box")
async def draw_box(request: Request, probe_id: str, scope: PageScope, probes: Probes) -> JSONResponse:
    """Look for a face inside an analyst-drawn box (JSON {"box": [x1, y1, x2, y2]}; CSRF header)."""
    check_csrf(request, request.headers.get(CSRF_HEADER))
    scope.require(Action.EDIT_PROBE, f"probe:{probe_id[:40]}", scope.actor.agency_id)
    probe = probes.get(scope.actor, probe_id)
    try:
        payload = await request.json()
        box = [float(v) for v in payload["box"]]
        if len(box) != 4:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise ValidationError('send JSON {"box": [x1, y1, x2, y2]} in image pixels') from None
    face = await run_blocking(request, _draw_box, scope, probe, box)
    return JSONResponse(face.to_json(), headers=NO_STORE)


@router.post("/probes/{probe_id}/search")
async def probe_search(
    request: Request,
    probe_id: str,
    scope: PageScope,
    probes: Probes,
    csrf: Csrf,
    face: Annotated[int, Form(ge=1, le=1000)],
    case: Annotated[str, Form(max_length=100)],
    offence: Annotated[str, Form(max_length=50)],
    reason: Annotated[str, Form(max_length=2000)],
    purpose: Annotated[str, Form(max_length=64)] = DEFAULT_PURPOSE,
    top: Annotated[int | None, Form(ge=2, le=50)] = None,
    floor: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Search the chosen face; the search and its result are recorded by the gallery domain."""
    check_csrf(request, csrf)
    probe = probes.get(scope.actor, probe_id)
    chosen = _probe_face(probe, face)
    if chosen.drawn:
        raise ValidationError("this face was found only inside a drawn box; searching drawn faces needs casework")
    try:
        score_floor = float(floor) if floor.strip() else None
    except ValueError:
        raise ValidationError(f"score floor {floor!r} is not a number") from None
    result = await run_blocking(
        request, search, scope.rt, scope.actor, probe.data, case=case, offence=offence, reason=reason,
        purpose=purpose, face=face, top=top, floor=score_floor,
    )  # fmt: skip
    probe.searches.append(result.search_id)
    return _redirect(f"/searches/{result.search_id}")


def _probe_for_search(probes: ProbeWorkspace, actor: Actor, search_id: int) -> Probe | None:
    for probe in probes.mine(actor):
        if search_id in probe.searches:
            return probe
    return None


@router.get("/searches/{search_id}", response_class=HTMLResponse)
def results_page(request: Request, search_id: Id, scope: PageScope, probes: Probes) -> Response:
    """The candidate list as a grid with ranks and scores; score-floor filter; links to comparison."""
    record = load_search(scope.rt, scope.actor, search_id)
    probe = _probe_for_search(probes, scope.actor, search_id)
    return render(request, "results.html", {"search": record, "probe": probe,
                                            "numbers": _subject_numbers(scope, record)})  # fmt: skip


def _subject_numbers(scope: Scope, record: SearchRecord) -> dict[int, str]:
    """Subject numbers and agencies of a candidate list (as recorded, already scoped to the search's galleries)."""
    from faceleads.db import Agency
    from faceleads.gallery.models import Subject

    ids = [c.subject_id for c in record.candidates]
    if not ids:
        return {}
    with scope.rt.session_factory() as session:
        rows = session.execute(
            select(Subject.id, Subject.subject_number, Agency.code)
            .join(Agency, Agency.id == Subject.agency_id)
            .where(Subject.id.in_(ids))
        ).all()
    return {sid: f"{number} ({code})" for sid, number, code in rows}


@router.get("/searches/{search_id}/compare/{rank}", response_class=HTMLResponse)
def compare_page(request: Request, search_id: Id, rank: Id, scope: PageScope, probes: Probes) -> Response:
    """Probe and candidate side by side, eyes aligned, synchronised zoom/pan, landmarks, blend and flicker."""
    record = load_search(scope.rt, scope.actor, search_id)
    candidate = next((c for c in record.candidates if c.rank == rank), None)
    if candidate is None:
        raise NotFound(f"search {search_id} has no candidate at rank {rank}")
    probe = _probe_for_search(probes, scope.actor, search_id)
    probe_landmarks = None
    if probe is not None:
        face = _probe_face(probe, record.face_index)
        import numpy as np

        from faceleads.vision.align import transform_points
        from faceleads.web.media import compare_matrix

        pts = transform_points(np.asarray(face.landmarks, dtype=np.float32), compare_matrix(face.landmarks))
        probe_landmarks = [[round(float(x), 1), round(float(y), 1)] for x, y in pts]
    with scope.rt.session_factory() as session:
        subject = subject_detail(scope, session, candidate.subject_id)
    others = [i for e in subject.encounters for i in e.image_ids if i != candidate.image_id]
    return render(request, "compare.html", {
        "search": record, "candidate": candidate, "probe": probe, "probe_landmarks": probe_landmarks,
        "cand_landmarks": gallery_landmarks(scope, candidate.image_id), "subject": subject, "others": others,
        "ranks": [c.rank for c in record.candidates],
        "features": ["Face shape", "Hairline", "Eyebrows", "Eyes", "Nose", "Ears", "Mouth and lips", "Chin",
                     "Scars, marks, tattoos", "Facial hair"],
    })  # fmt: skip


# --- gallery -------------------------------------------------------------------------------------------------


@router.get("/gallery", response_class=HTMLResponse)
def gallery_page(
    request: Request,
    scope: PageScope,
    session: DbSession,
    number: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """Subjects visible to the agency."""
    page = visible_subjects(scope, session, DEFAULT_PURPOSE, number, 50, offset)
    return render(request, "gallery.html", {"page": page, "number": number or "", "offset": offset})


@router.get("/gallery/subjects/{subject_id}", response_class=HTMLResponse)
def subject_page(request: Request, subject_id: Id, scope: PageScope, session: DbSession) -> Response:
    """A subject's bookings and photos."""
    return render(request, "subject.html", {"subject": subject_detail(scope, session, subject_id)})


@router.get("/gallery/images/{image_id}")
async def gallery_image_page(
    request: Request,
    image_id: Id,
    scope: PageScope,
    view: Annotated[str, Query(pattern="^(original|aligned)$")] = "original",
    case: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """An enrolled photo for the pages (authorised, audited, never cached)."""
    body, media = await run_blocking(request, gallery_image, scope, image_id, view=view, case=case)
    return Response(body, media_type=media, headers=NO_STORE)


# --- enrolment -----------------------------------------------------------------------------------------------


@router.get("/enrol", response_class=HTMLResponse)
def enrol_page(request: Request, scope: PageScope, jobs: Jobs) -> Response:
    """Single record upload and bulk jobs."""
    scope.require(Action.ENROL, "enrol", scope.actor.agency_id)
    return render(request, "enrol.html", {"jobs": [j.to_json() for j in jobs.list(scope.actor)], "result": None})


@router.post("/enrol/record", response_class=HTMLResponse)
async def enrol_record_page(
    request: Request,
    scope: PageScope,
    jobs: Jobs,
    csrf: Csrf,
    subject_number: Annotated[str, Form(max_length=64)],
    booking_number: Annotated[str, Form(max_length=64)],
    booking_date: Annotated[str, Form(max_length=20)],
    legal_authority: Annotated[str, Form(max_length=2000)],
    photos: Annotated[list[UploadFile], File()],
    charge: Annotated[str, Form(max_length=2000)] = "",
    sex: Annotated[str, Form(max_length=1)] = "",
    birth_year: Annotated[str, Form(max_length=4)] = "",
) -> Response:
    """Enrol one booking record from the form."""
    check_csrf(request, csrf)
    scope.require(Action.ENROL, "subject:new", scope.actor.agency_id)
    record = RecordInput(
        subject_number=subject_number.strip(), booking_number=booking_number.strip(),
        booking_date=parse_date(booking_date, "booking date"), legal_authority=legal_authority.strip(),
        charge=charge.strip(), sex=parse_sex(sex), birth_year=parse_birth_year(birth_year),
    )  # fmt: skip
    data = [await read_upload(p, scope.rt.settings.max_file_bytes, f"photo {p.filename or ''}".strip()) for p in photos]
    result = await run_blocking(request, enrol_record, scope.rt, scope.actor, record, data, source="web form")
    return render(request, "enrol.html", {"jobs": [j.to_json() for j in jobs.list(scope.actor)], "result": result})


@router.post("/enrol/bulk")
async def enrol_bulk_page(
    request: Request,
    scope: PageScope,
    jobs: Jobs,
    csrf: Csrf,
    manifest: Annotated[UploadFile, File()],
    photos: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Start a bulk enrolment job from an uploaded manifest and zip of photos."""
    check_csrf(request, csrf)
    if photos is not None and not photos.filename:
        photos = None  # the browser sends an empty part when no file was chosen
    job = await start_bulk_job(scope, jobs, manifest, photos, None)
    return _redirect(f"/enrol/jobs/{job.job_id}")


@router.get("/enrol/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str, scope: PageScope, jobs: Jobs) -> Response:
    """A bulk job's progress (updated live) and its error report."""
    scope.require(Action.ENROL, f"job:{job_id[:40]}", scope.actor.agency_id)
    return render(request, "job.html", {"job": jobs.get(scope.actor, job_id).to_json()})


@router.get("/enrol/jobs/{job_id}/status")
def job_status(job_id: str, scope: PageScope, jobs: Jobs) -> JSONResponse:
    """Job status as JSON for the page's progress bar."""
    scope.require(Action.ENROL, f"job:{job_id[:40]}", scope.actor.agency_id)
    return JSONResponse(jobs.get(scope.actor, job_id).to_json(), headers=NO_STORE)


@router.get("/enrol/jobs/{job_id}/errors.csv")
def job_errors(job_id: str, scope: PageScope, jobs: Jobs) -> Response:
    """The job's error report."""
    scope.require(Action.ENROL, f"job:{job_id[:40]}", scope.actor.agency_id)
    job = jobs.get(scope.actor, job_id)
    if job.error_report is None or not job.error_report.exists():
        raise NotFound("this job has no error report")
    return Response(job.error_report.read_bytes(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="enrolment-{job_id}-errors.csv"', **NO_STORE})  # fmt: skip


# --- audit and statistics ------------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_log_page(
    request: Request,
    scope: PageScope,
    session: DbSession,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    username: Annotated[str | None, Query(max_length=150)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(max_length=32)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """The audit log of the agency with filters and a verify button."""
    page = audit_page(scope, session, since=since, until=until, username=username, action=action,
                      outcome=outcome, limit=100, offset=offset)  # fmt: skip
    filters = {"since": since or "", "until": until or "", "username": username or "", "action": action or "",
               "outcome": outcome or ""}  # fmt: skip
    return render(request, "audit.html", {"page": page, "filters": filters, "offset": offset, "verified": None,
                                          "can_verify": scope.may(Action.AUDIT_VERIFY)})  # fmt: skip


@router.post("/audit/verify", response_class=HTMLResponse)
def audit_verify_page(request: Request, scope: PageScope, session: DbSession, csrf: Csrf) -> Response:
    """Verify the hash chain and show the result."""
    check_csrf(request, csrf)
    result = verify(scope)
    page = audit_page(scope, session, limit=100) if scope.may(Action.AUDIT_READ, scope.actor.agency_id) else None
    return render(request, "audit.html", {"page": page, "filters": {}, "offset": 0, "verified": result,
                                          "can_verify": True})  # fmt: skip


@router.get("/api-export/audit.csv")
def audit_export_page(
    scope: PageScope,
    session: DbSession,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    username: Annotated[str | None, Query(max_length=150)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The audit export (CSV) for the page's filters; the export is audited."""
    from faceleads.web.api.audit_routes import export

    return export(scope, session, "csv", since or None, until or None, username or None, action or None)


def bar_chart(rows: list[dict[str, Any]], key: str, label: str) -> str:
    """A small server-side SVG bar chart of ``key`` per month (no script, no external library)."""
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["month"]] = totals.get(row["month"], 0) + int(row[key])
    months = sorted(totals)[-12:]
    width, height, pad = 560, 180, 28
    peak = max([totals[m] for m in months] + [1])
    bar = (width - 2 * pad) / max(len(months), 1)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(label)}">',
             f'<text x="{pad}" y="14" class="chart-title">{html.escape(label)}</text>']  # fmt: skip
    for i, month in enumerate(months):
        value = totals[month]
        h = (height - 2 * pad - 10) * value / peak
        x = pad + i * bar + 4
        y = height - pad - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar - 8, 2):.1f}" height="{h:.1f}" class="bar">'
                     f"<title>{html.escape(month)}: {value}</title></rect>")  # fmt: skip
        parts.append(f'<text x="{x + (bar - 8) / 2:.1f}" y="{height - pad + 14}" class="axis" text-anchor="middle">'
                     f"{html.escape(month[2:])}</text>")  # fmt: skip
        parts.append(f'<text x="{x + (bar - 8) / 2:.1f}" y="{y - 3:.1f}" class="value" text-anchor="middle">{value}'
                     "</text>")  # fmt: skip
    if not months:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="axis">no data yet</text>')
    parts.append("</svg>")
    return "".join(parts)


@router.get("/statistics", response_class=HTMLResponse)
def statistics_page(
    request: Request,
    scope: PageScope,
    session: DbSession,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Searches, leads and outcomes by agency, offence and month, with charts."""
    rows = statistics(scope, session, since, until)
    from markupsafe import Markup

    # bar_chart escapes every text it writes, so its SVG is safe to insert as markup.
    charts = [Markup(bar_chart(rows, "searches", "Searches per month")),
              Markup(bar_chart(rows, "leads", "Possible leads per month")),
              Markup(bar_chart(rows, "verified_leads", "Verified leads per month"))]  # fmt: skip
    return render(request, "statistics.html", {"rows": rows, "charts": charts, "since": since or "",
                                               "until": until or ""})  # fmt: skip


# --- administration ------------------------------------------------------------------------------------------


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, scope: PageScope, session: DbSession, message: str | None = None) -> Response:
    """Users of the agency with roles and certifications; forms to create users, grant roles, certify."""
    people = users.list_users(scope.rt.session_factory, scope.actor)
    from faceleads.db import Agency

    agencies = list(session.scalars(select(Agency).order_by(Agency.code))) if scope.may(Action.ADMIN_AGENCIES) else []
    from faceleads.casework import admin as lists

    can_lists = scope.may(Action.ADMIN_OFFENCES, scope.actor.agency_id)
    return render(request, "admin.html", {"users": people, "agencies": agencies, "message": message,
                                          "can_admin": scope.may(Action.ADMIN_USERS, scope.actor.agency_id),
                                          "can_lists": can_lists,
                                          "can_galleries": scope.may(Action.MANAGE_GALLERY, scope.actor.agency_id),
                                          "offences": lists.list_offences(scope.rt, scope.actor) if can_lists else [],
                                          "purposes": lists.list_purposes(scope.rt) if can_lists else [],
                                          "categories": sorted(scope.rt.settings.retention_days),
                                          "roles": [r.value for r in __import__("faceleads.core.actor",
                                                    fromlist=["Role"]).Role]})  # fmt: skip


@router.post("/admin/users")
def admin_create_user(
    request: Request,
    scope: PageScope,
    csrf: Csrf,
    username: Annotated[str, Form(max_length=150)],
    password: Annotated[str, Form(max_length=1024)],
    display_name: Annotated[str, Form(max_length=200)] = "",
    roles: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Create a user in the administrator's agency."""
    check_csrf(request, csrf)
    users.create_user(scope.rt.session_factory, scope.actor, scope.actor.agency_code, username.strip(), password,
                      display_name=display_name, roles=roles or [])  # fmt: skip
    return _redirect("/admin?message=" + quote(f"user {username.strip()} created"))


@router.post("/admin/users/{username}/roles")
def admin_role(
    request: Request,
    username: str,
    scope: PageScope,
    csrf: Csrf,
    role: Annotated[str, Form(max_length=32)],
    change: Annotated[str, Form(pattern="^(grant|revoke)$")] = "grant",
) -> Response:
    """Grant or revoke a role."""
    check_csrf(request, csrf)
    fn = users.grant_role if change == "grant" else users.revoke_role
    fn(scope.rt.session_factory, scope.actor, username, role)
    return _redirect("/admin?message=" + quote(f"{change} {role} for {username}: done"))


@router.post("/admin/users/{username}/certify")
def admin_certify(
    request: Request,
    username: str,
    scope: PageScope,
    csrf: Csrf,
    expires_on: Annotated[str, Form(max_length=10)],
    reference: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Record a certification valid to the end of ``expires_on``."""
    check_csrf(request, csrf)
    day = parse_date(expires_on, "expiry date")
    users.certify(scope.rt.session_factory, scope.actor, username, datetime.combine(day, time.max, tzinfo=UTC),
                  reference=reference)  # fmt: skip
    return _redirect("/admin?message=" + quote(f"{username} certified until {day.isoformat()}"))


@router.post("/admin/offences")
def admin_offence(
    request: Request,
    scope: PageScope,
    csrf: Csrf,
    code: Annotated[str, Form(max_length=50)],
    title: Annotated[str, Form(max_length=200)],
    category: Annotated[str, Form(max_length=50)],
) -> Response:
    """Add an offence to the agency's approved list."""
    from faceleads.casework import admin as lists

    check_csrf(request, csrf)
    lists.add_offence(scope.rt, scope.actor, code, title, category)
    return _redirect("/admin?message=" + quote(f"offence {code.strip()} added"))


@router.post("/admin/purposes")
def admin_purpose(
    request: Request,
    scope: PageScope,
    csrf: Csrf,
    code: Annotated[str, Form(max_length=64)],
    title: Annotated[str, Form(max_length=200)],
    requires_authorisation: Annotated[bool, Form()] = False,
) -> Response:
    """Add a search purpose."""
    from faceleads.casework import admin as lists

    check_csrf(request, csrf)
    lists.add_purpose(scope.rt, scope.actor, code, title, requires_authorisation=requires_authorisation)
    return _redirect("/admin?message=" + quote(f"purpose {code.strip()} added"))


@router.post("/admin/galleries")
def admin_gallery(
    request: Request,
    scope: PageScope,
    csrf: Csrf,
    name: Annotated[str, Form(max_length=100)],
    legal_authority: Annotated[str, Form(max_length=2000)],
    purposes: Annotated[str, Form(max_length=1000, description="comma-separated purpose codes")],
) -> Response:
    """Create a gallery with its legal authority and purposes."""
    from faceleads.gallery.galleries import create_gallery

    check_csrf(request, csrf)
    create_gallery(scope.rt, scope.actor, name, legal_authority, [p.strip() for p in purposes.split(",") if p.strip()])
    return _redirect("/admin?message=" + quote(f"gallery {name.strip()} created"))


@router.post("/admin/shares")
def admin_share(
    request: Request,
    scope: PageScope,
    csrf: Csrf,
    gallery: Annotated[str, Form(max_length=100)],
    agency_code: Annotated[str, Form(max_length=32)],
    purposes: Annotated[str, Form(max_length=1000)],
    starts_on: Annotated[str, Form(max_length=10)],
    ends_on: Annotated[str, Form(max_length=10)] = "",
    agreement_ref: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Record a sharing agreement: one of the agency's galleries searchable by another agency."""
    from faceleads.gallery.galleries import share_gallery

    check_csrf(request, csrf)
    share_gallery(scope.rt, scope.actor, gallery, agency_code, [p.strip() for p in purposes.split(",") if p.strip()],
                  parse_date(starts_on, "start date"), parse_date(ends_on, "end date") if ends_on.strip() else None,
                  agreement_ref)  # fmt: skip
    return _redirect("/admin?message=" + quote(f"gallery {gallery.strip()} shared with {agency_code.strip()}"))


@router.post("/admin/users/{username}/unlock")
def admin_unlock(request: Request, username: str, scope: PageScope, csrf: Csrf) -> Response:
    """Lift a lockout."""
    check_csrf(request, csrf)
    users.unlock(scope.rt.session_factory, scope.actor, username)
    return _redirect("/admin?message=" + quote(f"{username} unlocked"))

