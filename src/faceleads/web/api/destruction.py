"""Destruction requests through :mod:`faceleads.governance.destruction`: request, eligibility checklist, decision,
execution (crypto-shredding) and certificate."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from faceleads.governance import destruction
from faceleads.web.api.schemas import ERRORS, Id
from faceleads.web.deps import ApiScope, run_blocking

router = APIRouter(prefix="/destruction", tags=["destruction"], responses=ERRORS)


class DestructionIn(BaseModel):
    subject_number: str = Field(min_length=1, max_length=64)
    requester: str = Field(min_length=1, max_length=200)
    grounds: str = Field(min_length=1, max_length=4000)


class ChecklistIn(BaseModel):
    item: str = Field(min_length=1, max_length=64)
    satisfied: bool
    note: str = Field(default="", max_length=1000)


class DecisionIn(BaseModel):
    approve: bool
    reason: str = Field(min_length=1, max_length=4000)


@router.get("/requests")
def list_requests(
    scope: ApiScope, status: Annotated[str | None, Query(max_length=32)] = None
) -> list[dict[str, Any]]:
    """Your agency's destruction requests, newest first."""
    return [r.to_json() for r in destruction.list_requests(scope.rt, scope.actor, status)]


@router.post("/requests", status_code=201)
def request_destruction(body: DestructionIn, scope: ApiScope) -> dict[str, Any]:
    """Record a request to destroy a subject's records (records officers)."""
    subject_id = destruction.find_subject_id(scope.rt, scope.actor, body.subject_number)
    return destruction.request_destruction(scope.rt, scope.actor, subject_id, requester=body.requester,
                                           grounds=body.grounds).to_json()  # fmt: skip


@router.get("/requests/{request_id}")
def get_request(request_id: Id, scope: ApiScope) -> dict[str, Any]:
    """One request with its checklist and progress."""
    return destruction.get_request(scope.rt, scope.actor, request_id).to_json()


@router.post("/requests/{request_id}/checklist")
def record_checklist(request_id: Id, body: ChecklistIn, scope: ApiScope) -> dict[str, Any]:
    """Record one eligibility checklist item."""
    return destruction.record_checklist(scope.rt, scope.actor, request_id, body.item, body.satisfied,
                                        body.note).to_json()  # fmt: skip


@router.post("/requests/{request_id}/decision")
def decide(request_id: Id, body: DecisionIn, scope: ApiScope) -> dict[str, Any]:
    """Approve (every checklist item satisfied) or deny, with a reason; not by the user who recorded it."""
    return destruction.decide(scope.rt, scope.actor, request_id, approve=body.approve, reason=body.reason).to_json()


@router.post("/requests/{request_id}/execution")
async def execute(request_id: Id, request: Request, scope: ApiScope) -> dict[str, Any]:
    """Carry out an approved destruction (resumable); returns the certificate."""
    return await run_blocking(request, destruction.execute, scope.rt, scope.actor, request_id)


@router.get("/requests/{request_id}/certificate")
def certificate(request_id: Id, scope: ApiScope) -> dict[str, Any]:
    """The destruction certificate (checked against its recorded SHA-256)."""
    return destruction.certificate(scope.rt, scope.actor, request_id)
