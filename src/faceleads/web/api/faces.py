"""Face detection on an uploaded image (nothing is stored but the audit entry)."""

from __future__ import annotations

from fastapi import APIRouter, File, Request, UploadFile

from faceleads.casework import probes
from faceleads.web.api.schemas import ERRORS, DetectResponse, FaceOut
from faceleads.web.deps import ApiScope, run_blocking
from faceleads.web.security import read_upload

router = APIRouter(prefix="/faces", tags=["faces"], responses=ERRORS)


@router.post("/detect", response_model=DetectResponse)
async def detect(request: Request, scope: ApiScope, image: UploadFile = File(...)) -> DetectResponse:
    """Detect faces in an uploaded image: boxes, landmarks, detector score, quality and the detection path that
    found each face (``found_by``), most prominent first, at most 50. The image is not kept; the request is
    authorised and audited by the casework service."""
    data = await read_upload(image, scope.rt.settings.max_file_bytes, "image")
    found = await run_blocking(request, probes.detect_upload, scope.rt, scope.actor, data)
    return DetectResponse(sha256=found.sha256, width=found.width, height=found.height, format=found.format,
                          faces=[FaceOut(**face) for face in found.faces])  # fmt: skip
