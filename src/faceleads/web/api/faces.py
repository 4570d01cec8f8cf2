"""Face detection on an uploaded image (nothing is stored)."""

from __future__ import annotations

from fastapi import APIRouter, File, Request, UploadFile

from faceleads.gallery.runtime import GalleryRuntime
from faceleads.security.policy import Action
from faceleads.vision.imaging import load_image
from faceleads.web.api.schemas import ERRORS, DetectResponse, FaceOut
from faceleads.web.deps import ApiScope, run_blocking
from faceleads.web.security import read_upload

router = APIRouter(prefix="/faces", tags=["faces"], responses=ERRORS)

MAX_FACES = 50


def detect_faces(rt: GalleryRuntime, data: bytes) -> DetectResponse:
    """Safe intake, then detection with quality (most prominent first, at most 50)."""
    image = load_image(data, rt.settings)
    faces = rt.face_engine.detect(image.pixels, max_faces=MAX_FACES)
    out = []
    for number, face in enumerate(faces, start=1):
        data_json = face.to_json()
        out.append(FaceOut(number=number, box=data_json["box"], landmarks=data_json["landmarks"],
                           score=data_json["score"], quality=data_json["quality"],
                           found_by=face.found_by))  # fmt: skip
    return DetectResponse(sha256=image.sha256, width=image.width, height=image.height, format=image.format, faces=out)


@router.post("/detect", response_model=DetectResponse)
async def detect(request: Request, scope: ApiScope, image: UploadFile = File(...)) -> DetectResponse:
    """Detect faces in an uploaded image: boxes, landmarks, detector score and quality. The image is not kept."""
    scope.require(Action.EDIT_PROBE, "probe:upload")
    data = await read_upload(image, scope.rt.settings.max_file_bytes, "image")
    return await run_blocking(request, detect_faces, scope.rt, data)
