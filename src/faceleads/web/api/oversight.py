"""Oversight across agencies and the owning agency's view of partner accesses (:mod:`faceleads.gallery.access`).

Oversight (a privacy commissioner, an external auditor) also reads the audit log and statistics of every agency
through ``/audit`` (``agency`` narrows it) and the ratifications through ``/ratifications``; it never reaches an
image or a template.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from faceleads.gallery import access
from faceleads.governance.audit_log import parse_when
from faceleads.web.api.schemas import ERRORS
from faceleads.web.deps import ApiScope

router = APIRouter(tags=["oversight"], responses=ERRORS)


@router.get("/partner-accesses")
def partner_accesses(
    scope: ApiScope,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    partner: Annotated[str | None, Query(max_length=32, description="only this partner agency's accesses")] = None,
    agency: Annotated[str | None, Query(max_length=32, description="oversight: the owning agency")] = None,
    limit: Annotated[int, Query(ge=1, le=access.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Every read of your agency's booking records by partner agencies (auditors, administrators; oversight for
    any agency), newest first, with a count per partner."""
    page = access.list_partner_accesses(
        scope.rt, scope.actor, since=parse_when(since, "since"), until=parse_when(until, "until", end=True),
        partner=partner, agency_code=agency, limit=limit, offset=offset,
    )  # fmt: skip
    return page.to_json()
