"""Server-rendered web pages (Jinja2) for analysts, reviewers, supervisors, records officers, auditors, admins.

Pages authenticate with the session cookie and check the CSRF token on every form; they call the same domain
services and the same :class:`~faceleads.web.deps.Scope` as the API. Images are served only by the authorised,
audited, ``no-store`` endpoints below.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, time
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select

from faceleads.casework import quick, searching
from faceleads.core.actor import Actor
from faceleads.core.policy import Action
from faceleads.core.uow import transaction
from faceleads.errors import AuthenticationError, NotFound, SecondFactorEnrolmentRequired
from faceleads.gallery import viewing
from faceleads.gallery.enrolment import RecordInput, enrol_record, parse_birth_year, parse_date, parse_sex
from faceleads.gallery.visibility import DEFAULT_PURPOSE
from faceleads.security import auth, users
from faceleads.web.api.audit_routes import audit_page, statistics, verify
from faceleads.web.api.jobs import start_bulk_job
from faceleads.web.api.schemas import Id
from faceleads.web.deps import DbSession, PageScope, Runtime, get_jobs, page_token, run_blocking
from faceleads.web.jobs import JobRunner
from faceleads.web.render import render
from faceleads.web.security import (
    SESSION_COOKIE,
    check_csrf,
    clear_cookie,
    client_address,
    read_upload,
    set_cookie,
)

router = APIRouter(include_in_schema=False)

Csrf = Annotated[str, Form(max_length=200)]
Jobs = Annotated[JobRunner, Depends(get_jobs)]
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
    try:
        result = await run_blocking(
            request, auth.authenticate, rt.session_factory, username, password, second_factor or None,
            settings=rt.settings, client=f"web {client_address(request)}",
            limiter=request.app.state.sign_in_limiter, address=client_address(request),
        )  # fmt: skip
    except AuthenticationError as exc:
        page = render(request, "sign_in.html", {"next": _safe_next(next), "error": str(exc), "username": username},
                      status_code=403 if isinstance(exc, SecondFactorEnrolmentRequired) else 401)  # fmt: skip
        if isinstance(exc, SecondFactorEnrolmentRequired):  # a session for the account's TOTP enrolment only
            set_cookie(page, request, rt.settings, SESSION_COOKIE, exc.enrolment_token, 15 * 60)
        return page
    response = _redirect(_safe_next(next))
    set_cookie(response, request, rt.settings, SESSION_COOKIE, result.token, rt.settings.session_max_hours * 3600)
    return response


@router.post("/sign-out")
def sign_out(request: Request, rt: Runtime, csrf: Csrf) -> Response:
    """End the session and clear the cookie."""
    check_csrf(request, csrf)
    token = page_token(request)
    if token:
        with transaction(rt.session_factory) as session:
            auth.logout(session, token)
    response = _redirect("/sign-in")
    clear_cookie(response, request, rt.settings, SESSION_COOKIE)
    return response


# --- home ----------------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request, scope: PageScope) -> Response:
    """The user's queue: leads to verify, requests to authorise, their latest case searches, what else they can do."""
    from faceleads.web.case_pages import work_queue

    recent = searching.recent_case_searches(scope.rt, scope.actor) if scope.may(Action.SEARCH) else []
    return render(request, "home.html", {"searches": recent, "scope": scope, "Action": Action,
                                         "queue": work_queue(scope)})  # fmt: skip


# --- quick search --------------------------------------------------------------------------------------------


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
    return _redirect("/search")


@router.post("/search")
async def quick_search_submit(
    request: Request,
    scope: PageScope,
    csrf: Csrf,
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
    check_csrf(request, csrf)
    data = await read_upload(probe, scope.rt.settings.max_file_bytes, "probe")
    result = await run_blocking(
        request, quick.quick_search, scope.rt, scope.actor, case, data, reason=reason, legal_basis=legal_basis,
        purpose=purpose, source=source.strip() or None, face=face, top=top, filename=probe.filename or "",
    )  # fmt: skip
    return _redirect(f"/case-searches/{result.case_search_id}")


@router.get("/searches/{search_id}")
def old_results_page(search_id: Id, scope: PageScope) -> Response:
    """A recorded search is shown as the case search it belongs to (authorised and audited there)."""
    info = searching.show_search(scope.rt, scope.actor, search_id)
    return _redirect(f"/case-searches/{info.id}")


# --- gallery -------------------------------------------------------------------------------------------------


@router.get("/gallery", response_class=HTMLResponse)
def gallery_page(
    request: Request,
    scope: PageScope,
    number: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """Subjects visible to the agency (the listing is authorised and audited by the gallery service)."""
    page = viewing.list_subjects(scope.rt, scope.actor, purpose=DEFAULT_PURPOSE, number=number, limit=50,
                                 offset=offset)  # fmt: skip
    return render(request, "gallery.html", {"page": page, "number": number or "", "offset": offset})


@router.get("/gallery/subjects/{subject_id}", response_class=HTMLResponse)
def subject_page(request: Request, subject_id: Id, scope: PageScope) -> Response:
    """A subject's bookings and photos."""
    return render(request, "subject.html", {"subject": viewing.subject_detail(scope.rt, scope.actor, subject_id)})


@router.get("/gallery/images/{image_id}")
async def gallery_image_page(
    request: Request,
    image_id: Id,
    scope: PageScope,
    view: Annotated[str, Query(pattern="^(original|aligned)$")] = "original",
    case: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """An enrolled photo for the pages (authorised and audited by the gallery service, never cached)."""
    body, media = await run_blocking(request, viewing.photo, scope.rt, scope.actor, image_id, view=view, case=case)
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
    page = audit_page(scope, since=since, until=until, username=username, action=action,
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
    page = audit_page(scope, limit=100) if scope.may(Action.AUDIT_READ, scope.actor.agency_id) else None
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

    return export(scope, "csv", since or None, until or None, username or None, action or None)


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
    rows = statistics(scope, since, until)
    from markupsafe import Markup

    # bar_chart escapes every text it writes, so its SVG is safe to insert as markup.
    charts = [Markup(bar_chart(rows, "searches", "Searches per month")),
              Markup(bar_chart(rows, "leads", "Possible leads per month")),
              Markup(bar_chart(rows, "verified_leads", "Verified leads per month"))]  # fmt: skip
    from faceleads.governance.audit_log import regime_totals

    return render(request, "statistics.html", {"rows": rows, "charts": charts, "since": since or "",
                                               "until": until or "", "by_regime": regime_totals(rows)})  # fmt: skip


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
                                          "can_certify": scope.may(Action.ADMIN_CERTIFICATIONS, scope.actor.agency_id),
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
    change = users.create_user(scope.rt.session_factory, scope.actor, scope.actor.agency_code, username.strip(),
                               password, display_name=display_name, roles=roles or [])  # fmt: skip
    return _redirect("/admin?message=" + quote(change.message))


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
    if change == "grant":
        message = users.grant_role(scope.rt.session_factory, scope.actor, username, role).message
    else:
        users.revoke_role(scope.rt.session_factory, scope.actor, username, role)
        message = f"revoke {role} for {username}: done"
    return _redirect("/admin?message=" + quote(message))


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
    change = users.certify(scope.rt.session_factory, scope.actor, username,
                           datetime.combine(day, time.max, tzinfo=UTC), reference=reference)  # fmt: skip
    return _redirect("/admin?message=" + quote(change.message))


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

