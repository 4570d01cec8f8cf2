"""Outcomes of released leads (:mod:`faceleads.casework.outcomes`) and the public transparency report
(:mod:`faceleads.governance.transparency`) through the API."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from faceleads.casework import outcomes
from faceleads.governance.transparency import transparency_report
from faceleads.web.api.schemas import ERRORS, Id
from faceleads.web.deps import ApiScope, run_blocking

router = APIRouter(tags=["transparency"], responses=ERRORS)


class OutcomeIn(BaseModel):
    outcome: str = Field(min_length=1, max_length=32,
                         description="corroborated, eliminated, no_further_action or charged")  # fmt: skip
    notes: str = Field(min_length=1, max_length=4000, description="What corroborated, eliminated or followed the lead")


@router.post("/leads/{lead_id}/outcome", status_code=201)
def record_outcome(lead_id: Id, body: OutcomeIn, scope: ApiScope) -> dict[str, Any]:
    """Sign off the outcome of a released lead (investigators); a later entry supersedes an earlier one."""
    return outcomes.record_outcome(scope.rt, scope.actor, lead_id, body.outcome.strip().lower(), body.notes).to_json()


@router.get("/released-leads")
def released(
    scope: ApiScope, awaiting: Annotated[bool, Query(description="Only leads without an outcome")] = False
) -> list[dict[str, Any]]:
    """Your agency's released leads and their outcomes."""
    return [lead.to_json() for lead in outcomes.released_leads(scope.rt, scope.actor, awaiting_only=awaiting)]


@router.get(
    "/reports/transparency",
    response_model=None,
    responses={200: {"content": {"text/csv": {}, "application/pdf": {}, "application/json": {}},
                     "description": "The report (small counts suppressed; no personal or biometric data)"}},
)  # fmt: skip
async def transparency(
    request: Request,
    scope: ApiScope,
    date_from: Annotated[date, Query(alias="from", description="First day (UTC)")],
    date_to: Annotated[date, Query(alias="to", description="Last day (UTC, inclusive)")],
    agency: Annotated[str | None, Query(max_length=32, description="Agency reported on (default: yours; "
                                                                    "oversight: every agency at once)")] = None,
    fmt: Annotated[str, Query(alias="format", pattern="^(csv|pdf|json)$")] = "json",
) -> Response | dict[str, Any]:
    """The agency's public transparency report for a period (supervisors, auditors; oversight for any agency, or every
    agency at once); the production is audited."""
    output = await run_blocking(request, transparency_report, scope.rt, scope.actor, date_from, date_to,
                                agency_code=agency, formats=(fmt,))  # fmt: skip
    name = f"transparency-{output.report.agency}-{date_from.isoformat()}-{date_to.isoformat()}"
    if fmt == "csv" and output.csv is not None:
        return Response(output.csv, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})  # fmt: skip
    if fmt == "pdf" and output.pdf is not None:
        return Response(output.pdf, media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'})  # fmt: skip
    return output.to_json()
