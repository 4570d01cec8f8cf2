"""Response and request models shared by the API routers (they shape the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from faceleads.core.actor import Actor


class Problem(BaseModel):
    """RFC 9457 problem details: every API error has this shape."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": text}
    for code, text in (
        (401, "Not signed in or session expired"),
        (403, "Refused by the central policy (audited)"),
        (404, "Not found or not visible to your agency"),
        (422, "Invalid input (names the problem)"),
    )
}


class Me(BaseModel):
    """The signed-in user as the policy sees them (effective roles)."""

    user_id: int | None
    username: str
    agency_id: int
    agency_code: str
    roles: list[str]

    @classmethod
    def of(cls, actor: Actor) -> Me:
        return cls(
            user_id=actor.user_id,
            username=actor.username,
            agency_id=actor.agency_id,
            agency_code=actor.agency_code,
            roles=sorted(r.value for r in actor.roles),
        )


class SignInRequest(BaseModel):
    """Credentials; ``second_factor`` is a TOTP code or a recovery code when the account has TOTP."""

    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)
    second_factor: str | None = Field(default=None, max_length=64)


class SignInResponse(BaseModel):
    """A new session: send ``token`` as ``Authorization: Bearer <token>``."""

    token: str
    token_type: str = "bearer"
    expires_at: datetime
    second_factor: str
    user: Me


class FaceOut(BaseModel):
    """A detected face: box (x1, y1, x2, y2), five landmarks, detector score and quality measures."""

    number: int
    box: list[float]
    landmarks: list[list[float]]
    score: float
    quality: dict[str, float]
    # Which detection path found the face: detector, upscaled, padded or whole_crop (docs/detection.md).
    found_by: str = "detector"


class DetectResponse(BaseModel):
    """Faces found in an uploaded image (most prominent first); the image is not kept."""

    sha256: str
    width: int
    height: int
    format: str
    faces: list[FaceOut]


#: A database id in a path: bounded so that absurd numbers are a 422, not a database overflow.
Id = Annotated[int, PathParam(ge=1, le=2**53)]
