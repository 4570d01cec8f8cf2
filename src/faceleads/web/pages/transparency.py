"""Outcomes of released leads and the public transparency report (docs/transparency.md): ``/outcomes`` (the
agency's released leads; investigators sign off each outcome) and ``/transparency`` (the report for a period, shown
and downloadable as CSV and PDF; oversight for any agency, or every agency at once).

Same services as the CLI and the API (:mod:`faceleads.web.api.transparency`), which authorise and audit; CSRF is the
page routers' dependency (:mod:`faceleads.web.pages`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from faceleads.casework import outcomes
from faceleads.core.policy import Action, reads_every_agency
from faceleads.errors import ValidationError
from faceleads.governance.transparency import transparency_report
from faceleads.web.api.schemas import Id
from faceleads.web.deps import PageScope, run_blocking
from faceleads.web.pages.common import NO_STORE, done, page_router
from faceleads.web.render import render

router = page_router()
From = Annotated[str | None, Query(alias="from", max_length=10)]
To = Annotated[str | None, Query(alias="to", max_length=10)]
AgencyCode = Annotated[str | None, Query(max_length=32)]


@router.get("/outcomes", response_class=HTMLResponse)
def outcomes_page(request: Request, scope: PageScope, awaiting: bool = False) -> Response:
    """The agency's released leads and their outcomes, with the sign-off form for investigators."""
    leads = outcomes.released_leads(scope.rt, scope.actor, awaiting_only=awaiting)
    may_record = scope.may(Action.RECORD_OUTCOME, scope.actor.agency_id)
    return render(request, "outcomes.html", {"leads": [lead.to_json() for lead in leads], "awaiting": awaiting,
                                             "outcomes": outcomes.OUTCOMES, "may_record": may_record})  # fmt: skip


@router.post("/outcomes/{lead_id}")
def outcome_post(
    request: Request,
    lead_id: Id,
    scope: PageScope,
    outcome: Annotated[str, Form(max_length=32)],
    notes: Annotated[str, Form(max_length=4000)],
) -> Response:
    """Sign off the outcome of a released lead (investigators)."""
    lead = outcomes.record_outcome(scope.rt, scope.actor, lead_id, outcome.strip().lower(), notes)
    assert lead.outcome is not None
    return done(request, f"/outcomes#lead-{lead.lead_id}",
                f"Lead {lead.lead_id}: {lead.outcome.outcome.replace('_', ' ')} signed off.")  # fmt: skip


def _day(text: str | None, what: str, default: date) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{what} must be a date YYYY-MM-DD, got {text!r}") from None


def _period(date_from: str | None, date_to: str | None) -> tuple[date, date]:
    today = date.today()
    return _day(date_from, "From", today - timedelta(days=365)), _day(date_to, "To", today)


@router.get("/transparency", response_class=HTMLResponse)
async def transparency_page(
    request: Request,
    scope: PageScope,
    date_from: From = None,
    date_to: To = None,
    agency: AgencyCode = None,
) -> Response:
    """The form, and — once a period is chosen — the report as it will be published, with CSV and PDF links."""
    start, end = _period(date_from, date_to)
    every = reads_every_agency(scope.actor, Action.TRANSPARENCY_REPORT)
    report = None
    if date_from or date_to:
        output = await run_blocking(request, transparency_report, scope.rt, scope.actor, start, end,
                                    agency_code=agency or None, formats=("json",))  # fmt: skip
        report = output.report
    else:
        # Nothing produced yet: still refuse (and audit) a user who may not produce the report at all.
        scope.require(Action.TRANSPARENCY_REPORT, "transparency_report", scope.actor.agency_id)
    sections: dict[str, list[dict[str, str]]] = {}
    if report is not None:
        for row in report.rows:
            sections.setdefault(row.section, []).append(
                {"measure": row.measure.replace("_", " "), "breakdown": row.breakdown.replace("_", " "),
                 "value": row.published})  # fmt: skip
    params = {"from": start.isoformat(), "to": end.isoformat(), **({"agency": agency} if agency else {})}
    return render(request, "transparency.html", {
        "report": report, "sections": sections, "from": start.isoformat(), "to": end.isoformat(),
        "agency": agency if (agency or every) else scope.actor.agency_code, "every": every,
        "query": urlencode(params), "header": report.header() if report else []})  # fmt: skip


@router.get("/transparency/report.{fmt}")
async def transparency_download(
    request: Request,
    fmt: str,
    scope: PageScope,
    date_from: From = None,
    date_to: To = None,
    agency: AgencyCode = None,
) -> Response:
    """The report as CSV or PDF (each production is audited)."""
    if fmt not in ("csv", "pdf"):
        raise ValidationError(f"the report comes as csv or pdf, not {fmt!r}")
    start, end = _period(date_from, date_to)
    output = await run_blocking(request, transparency_report, scope.rt, scope.actor, start, end,
                                agency_code=agency or None, formats=(fmt,))  # fmt: skip
    name = f"transparency-{output.report.agency}-{start.isoformat()}-{end.isoformat()}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', **NO_STORE}
    if fmt == "csv":
        return Response(output.csv or "", media_type="text/csv; charset=utf-8", headers=headers)
    return Response(output.pdf or b"", media_type="application/pdf", headers=headers)
