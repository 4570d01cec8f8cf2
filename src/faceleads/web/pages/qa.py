"""Examiner QA for supervisors: agreement between analysts and blind verifiers, dispute rate and time per
candidate, per examiner of the agency and per agency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from faceleads.casework import qa
from faceleads.gallery.enrolment import parse_date
from faceleads.web.deps import PageScope
from faceleads.web.pages.common import page_router
from faceleads.web.render import render

router = page_router()


@router.get("/qa", response_class=HTMLResponse)
def qa_page(
    request: Request,
    scope: PageScope,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The QA tables for a period (the read is authorised and audited by the casework service)."""
    start = parse_date(since, "start date") if since else None
    end = parse_date(until, "end date") if until else None
    report = qa.examiner_qa(scope.rt, scope.actor, since=start, until=end)
    return render(request, "qa.html", {"report": report, "since": since or "", "until": until or ""})
