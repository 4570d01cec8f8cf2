"""Separation of duties: the requests that wait for a second person's approval (:mod:`faceleads.security.approvals`).

Administrators request biometric roles and credential resets, training officers certifications; a supervisor of the
same agency (neither the requester, nor the user concerned, nor whoever created that user) approves or rejects
them; a requester may withdraw their own request. Every step and every refusal is audited by the service.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from faceleads.security import approvals
from faceleads.web.api.schemas import ERRORS, Id
from faceleads.web.deps import ApiScope

router = APIRouter(prefix="/approvals", tags=["approvals"], responses=ERRORS)


class DecisionIn(BaseModel):
    note: str = Field(default="", max_length=2000)


class RejectIn(BaseModel):
    note: str = Field(min_length=1, max_length=2000)


@router.get("")
def list_approvals(
    scope: ApiScope,
    status: Annotated[str | None, Query(pattern="^(pending|approved|rejected|expired|all)$")] = "pending",
) -> list[dict[str, Any]]:
    """Approval requests of your agency (administrators, supervisors, training officers), newest first; a system
    operator sees the pending ones of agencies that have no approver yet."""
    chosen = None if status == "all" else status
    return [a.to_json() for a in approvals.list_approvals(scope.rt.session_factory, scope.actor, status=chosen)]


@router.post("/{approval_id}/approve")
def approve(approval_id: Id, body: DecisionIn, scope: ApiScope) -> dict[str, Any]:
    """Approve a pending request; its change takes effect at once (audited)."""
    return approvals.approve(scope.rt.session_factory, scope.actor, approval_id, body.note).to_json()


@router.post("/{approval_id}/reject")
def reject(approval_id: Id, body: RejectIn, scope: ApiScope) -> dict[str, Any]:
    """Reject a pending request with a reason (or withdraw your own)."""
    return approvals.reject(scope.rt.session_factory, scope.actor, approval_id, body.note).to_json()
