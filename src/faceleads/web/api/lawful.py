"""The lawful gallery through the API: the agency's legal authorities and the review of records not on the list
(:mod:`faceleads.gallery.authorities`), disposition events and the destruction they schedule
(:mod:`faceleads.governance.dispositions`), and the destruction eligibility criteria
(:mod:`faceleads.governance.criteria`). Thin adapters: the services authorise and audit."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from faceleads.gallery import authorities
from faceleads.gallery.dispositions import parse_kind
from faceleads.governance import criteria, dispositions
from faceleads.web.api.schemas import ERRORS
from faceleads.web.deps import ApiScope

router = APIRouter(tags=["lawful gallery"], responses=ERRORS)


class AuthorityIn(BaseModel):
    code: str = Field(min_length=1, max_length=64, description="Short code, e.g. PACE-64A")
    title: str = Field(min_length=1, max_length=500, description="The authority as cited")
    description: str = Field(default="", max_length=2000)


class WithdrawIn(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2000)


class ReviewIn(BaseModel):
    to: str = Field(min_length=1, max_length=64, description="Code of the listed authority")
    reason: str = Field(min_length=1, max_length=2000, description="What was checked")
    from_text: str | None = Field(default=None, max_length=2000, description="Every booking enrolled under this text")
    booking: str | None = Field(default=None, max_length=64, description="Or one booking number")


class DispositionIn(BaseModel):
    booking_number: str = Field(min_length=1, max_length=64)
    kind: str = Field(min_length=1, max_length=32, description="withdrawn, dismissed, acquitted or pardoned")
    occurred_on: date
    reference: str = Field(min_length=1, max_length=200, description="Court or prosecution reference")


class RuleIn(BaseModel):
    action: str = Field(pattern="^(destroy|retain)$")
    waiting_days: int = Field(default=0, ge=0, le=36500)


class RunIn(BaseModel):
    dry_run: bool = False


class CriterionIn(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=1000)
    check: str = Field(default="manual", max_length=32)
    parameter: int | None = Field(default=None, ge=0, le=36500)


@router.get("/authorities")
def list_authorities(
    scope: ApiScope, active_only: Annotated[bool, Query(description="Leave out withdrawn entries")] = False
) -> list[dict[str, Any]]:
    """Your agency's list of legal authorities, with the bookings held under each."""
    return [a.to_json() for a in authorities.list_authorities(scope.rt, scope.actor, include_withdrawn=not active_only)]


@router.post("/authorities", status_code=201)
def add_authority(body: AuthorityIn, scope: ApiScope) -> dict[str, Any]:
    """Add a legal authority to the list (administrators)."""
    return authorities.add_authority(scope.rt, scope.actor, body.code, body.title, body.description).to_json()


@router.post("/authorities/withdrawal")
def withdraw_authority(body: WithdrawIn, scope: ApiScope) -> dict[str, Any]:
    """Withdraw an entry: no enrolment under it, and its bookings are not searched until reviewed."""
    return authorities.withdraw_authority(scope.rt, scope.actor, body.code, body.reason).to_json()


@router.get("/authorities/compliance")
def compliance(
    scope: ApiScope, details: Annotated[bool, Query(description="List the bookings (records officers)")] = False
) -> dict[str, Any]:
    """Bookings held under an authority not on the list (not searched until reviewed); the read is audited."""
    return authorities.compliance(scope.rt, scope.actor, details=details).to_json()


@router.post("/authorities/review")
def review(body: ReviewIn, scope: ApiScope) -> dict[str, Any]:
    """Re-attribute bookings awaiting review to a listed authority (records officers)."""
    count = authorities.reattribute(scope.rt, scope.actor, body.to, body.reason, from_text=body.from_text,
                                    booking=body.booking)  # fmt: skip
    return {"reattributed": count, "authority": body.to}


@router.post("/dispositions", status_code=201)
def record_disposition(body: DispositionIn, scope: ApiScope) -> dict[str, Any]:
    """Record a disposition event of one of your bookings; returns the subject's destruction schedule (a request is
    opened at once when due)."""
    return dispositions.record_disposition(scope.rt, scope.actor, body.booking_number, parse_kind(body.kind),
                                           body.occurred_on, body.reference, source="api").to_json()  # fmt: skip


@router.get("/dispositions/schedule")
def disposition_schedule(scope: ApiScope) -> list[dict[str, Any]]:
    """Subjects with disposition events and where their destruction stands."""
    return [s.to_json() for s in dispositions.schedule_report(scope.rt, scope.actor)]


@router.post("/dispositions/run")
def disposition_run(body: RunIn, scope: ApiScope) -> dict[str, Any]:
    """Open a destruction request for every subject that has fallen due (records officers)."""
    return dispositions.run(scope.rt, scope.actor, dry_run=body.dry_run).to_json()


@router.get("/dispositions/policy")
def disposition_policy(scope: ApiScope) -> list[dict[str, Any]]:
    """The agency's disposition policy: per kind, destroy after N days or keep."""
    return [r.to_json() for r in dispositions.list_rules(scope.rt, scope.actor)]


@router.put("/dispositions/policy/{kind}")
def set_disposition_rule(kind: str, body: RuleIn, scope: ApiScope) -> dict[str, Any]:
    """Set the policy for one kind of disposition (administrators)."""
    return dispositions.set_rule(scope.rt, scope.actor, parse_kind(kind), body.action, body.waiting_days).to_json()


@router.get("/destruction-criteria")
def list_criteria(scope: ApiScope) -> list[dict[str, Any]]:
    """The agency's destruction eligibility checklist."""
    return [c.to_json() for c in criteria.list_criteria(scope.rt, scope.actor)]


@router.post("/destruction-criteria", status_code=201)
def add_criterion(body: CriterionIn, scope: ApiScope) -> dict[str, Any]:
    """Add an item to the checklist (administrators)."""
    return criteria.add_criterion(scope.rt, scope.actor, body.code, body.text, check=body.check,
                                  parameter=body.parameter).to_json()  # fmt: skip


@router.post("/destruction-criteria/withdrawal")
def withdraw_criterion(body: WithdrawIn, scope: ApiScope) -> dict[str, Any]:
    """Withdraw an item (administrators); open requests keep their checklist."""
    return criteria.withdraw_criterion(scope.rt, scope.actor, body.code, body.reason).to_json()
