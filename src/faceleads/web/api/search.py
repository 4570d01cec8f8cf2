"""1:N search of a probe photo: the request needs a case, an offence, a reason and a purpose; the result is stored."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile

from faceleads.core.policy import Action
from faceleads.gallery.search import load_search, search
from faceleads.gallery.visibility import DEFAULT_PURPOSE
from faceleads.web.api.schemas import ERRORS, Id
from faceleads.web.deps import ApiScope, run_blocking
from faceleads.web.security import read_upload

router = APIRouter(prefix="/searches", tags=["search"], responses=ERRORS)


def stored_search_json(record: Any) -> dict[str, Any]:
    """A stored search record as JSON (candidates best first)."""
    return {
        "search_id": record.id,
        "case_number": record.case_number,
        "offence_code": record.offence_code,
        "reason": record.reason,
        "purpose": record.purpose,
        "username": record.username,
        "probe_sha256": record.probe_sha256,
        "face_index": record.face_index,
        "probe_quality": record.probe_quality,
        "model_version": record.model_version,
        "score_fusion": record.score_fusion,
        "gallery_size": record.gallery_size,
        "k": record.k,
        "score_floor": record.score_floor,
        "created_at": record.created_at.isoformat(),
        "candidates": [
            {
                "rank": c.rank,
                "score": round(c.score, 4),
                "subject_id": c.subject_id,
                "encounter_id": c.encounter_id,
                "image_id": c.image_id,
                # A subject destroyed since the search stays in the list, shown as destroyed (no images).
                "subject_status": c.subject.status,
            }
            for c in record.candidates
        ],
        "notice": "Candidates are investigative leads, not identifications; corroborate independently.",
    }


@router.post("", status_code=201)
async def run_search(
    request: Request,
    scope: ApiScope,
    probe: Annotated[UploadFile, File(description="The probe photo (never stored or enrolled)")],
    case: Annotated[str, Form(min_length=1, max_length=100)],
    offence: Annotated[str, Form(min_length=1, max_length=50)],
    reason: Annotated[str, Form(min_length=1, max_length=2000)],
    purpose: Annotated[str, Form(min_length=1, max_length=64)] = DEFAULT_PURPOSE,
    face: Annotated[int | None, Form(ge=1, le=1000, description="Face number (1 = most prominent)")] = None,
    top: Annotated[int | None, Form(ge=2, le=50, description="Candidate list length")] = None,
    floor: Annotated[float | None, Form(ge=-1.0, le=1.0, description="Drop candidates below this score")] = None,
) -> dict[str, Any]:
    """Search a probe face against every gallery your agency may see for the purpose; the search is recorded."""
    scope.require(Action.SEARCH, "search:new", scope.actor.agency_id, case=case[:100])
    data = await read_upload(probe, scope.rt.settings.max_file_bytes, "probe")
    result = await run_blocking(
        request, search, scope.rt, scope.actor, data, case=case, offence=offence, reason=reason, purpose=purpose,
        face=face, top=top, floor=floor,
    )  # fmt: skip
    return result.to_json()


@router.get("/{search_id}")
def get_search(search_id: Id, scope: ApiScope) -> dict[str, Any]:
    """A stored search of your agency with its candidate list."""
    return stored_search_json(load_search(scope.rt, scope.actor, search_id))
