"""Quick search: the short form of a case search. It needs an open case of your agency; it opens (or uses) a
request on it, takes the probe in as evidence and searches through the casework service, so the candidates land in
the normal adjudication flow (``/case-searches/{id}``). There is no candidate list outside casework.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile

from faceleads.casework import quick, searching
from faceleads.gallery.visibility import DEFAULT_PURPOSE
from faceleads.web.api.schemas import DB_ID_MAX, ERRORS, Id
from faceleads.web.deps import ApiScope, run_blocking
from faceleads.web.security import read_upload

router = APIRouter(prefix="/searches", tags=["search"], responses=ERRORS)

NOTICE = "Candidates are investigative leads, not identifications; corroborate independently."


@router.post("", status_code=201)
async def run_search(
    request: Request,
    scope: ApiScope,
    probe: Annotated[UploadFile, File(description="The probe photo (kept as encrypted case evidence, never enrolled)")],
    case: Annotated[str, Form(min_length=1, max_length=100, description="Occurrence number of an open case")],
    reason: Annotated[str, Form(min_length=1, max_length=4000, description="Justification of the request")],
    legal_basis: Annotated[str, Form(min_length=1, max_length=2000, description="Legal basis for the evidence")],
    purpose: Annotated[str, Form(min_length=1, max_length=64)] = DEFAULT_PURPOSE,
    offence: Annotated[str | None, Form(max_length=50, description="If given, must be the case's offence")] = None,
    request_id: Annotated[int | None, Form(ge=1, le=DB_ID_MAX, description="Use this request of the case")] = None,
    source: Annotated[str | None, Form(max_length=2000, description="Where the photo came from")] = None,
    obtained_by: Annotated[str | None, Form(max_length=200, description="Who obtained it (default: you)")] = None,
    obtained_at: Annotated[datetime | None, Form(description="When it was obtained (default: now)")] = None,
    face: Annotated[int | None, Form(ge=1, le=1000, description="Face number (1 = most prominent)")] = None,
    top: Annotated[int | None, Form(ge=2, le=50, description="Candidate list length")] = None,
    floor: Annotated[float | None, Form(ge=-1.0, le=1.0, description="Drop candidates below this score")] = None,
) -> dict[str, Any]:
    """Search a probe face on an open case of your agency through the casework flow; every candidate must then be
    adjudicated (``/api/v1/case-searches/{case_search_id}``)."""
    data = await read_upload(probe, scope.rt.settings.max_file_bytes, "probe")
    result = await run_blocking(
        request, quick.quick_search, scope.rt, scope.actor, case, data, reason=reason, legal_basis=legal_basis,
        purpose=purpose, offence=offence, request_id=request_id, source=source, obtained_by=obtained_by,
        obtained_at=obtained_at, face=face, top=top, floor=floor, filename=probe.filename or "",
    )  # fmt: skip
    return result.to_json()


@router.get("/{search_id}")
def get_search(search_id: Id, scope: ApiScope) -> dict[str, Any]:
    """The case search that recorded search ``search_id``, with its stored candidate list (the view is audited)."""
    info = searching.show_search(scope.rt, scope.actor, search_id).to_json()
    result = info.pop("result")
    info["case_search_id"] = info.pop("id")
    return {**result, **info, "notice": NOTICE}
