"""Legal regimes administered per agency, and exigent searches with their supervisor's ratification
(:mod:`faceleads.casework.regimes`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from faceleads.casework import regimes
from faceleads.web.api.schemas import ERRORS, Id
from faceleads.web.deps import ApiScope

router = APIRouter(tags=["regimes"], responses=ERRORS)


class PurposeRegimeIn(BaseModel):
    regime: str = Field(min_length=1, max_length=32, description="investigative, exigent or live_deployment")


class WindowsIn(BaseModel):
    exigent_window_hours: int | None = Field(default=None, ge=1, le=regimes.MAX_WINDOW_HOURS)
    authorisation_hours: int | None = Field(default=None, ge=1, le=regimes.MAX_AUTHORISATION_HOURS)


class RatificationIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    grant: bool = True


@router.get("/regimes")
def show_regimes(scope: ApiScope) -> dict[str, Any]:
    """Your agency's regimes: the exigent ratification window, the validity of prior authorisations, and the
    regime of every purpose."""
    return regimes.show_regimes(scope.rt, scope.actor).to_json()


@router.put("/regimes/purposes/{code}")
def set_purpose_regime(
    code: Annotated[str, Path(min_length=1, max_length=64)], body: PurposeRegimeIn, scope: ApiScope
) -> dict[str, Any]:
    """Put a purpose in a legal regime for your agency (administrators)."""
    return regimes.set_purpose_regime(scope.rt, scope.actor, code, body.regime).to_json()


@router.put("/regimes/windows")
def set_windows(body: WindowsIn, scope: ApiScope) -> dict[str, Any]:
    """Set your agency's exigent ratification window and prior-authorisation validity, in hours (administrators)."""
    return regimes.set_windows(scope.rt, scope.actor, exigent_window_hours=body.exigent_window_hours,
                               authorisation_hours=body.authorisation_hours).to_json()  # fmt: skip


@router.get("/ratifications")
def list_ratifications(
    scope: ApiScope,
    state: Annotated[str, Query(pattern="^(open|pending|lapsed|decided|all)$")] = "open",
    agency: Annotated[str | None, Query(max_length=32, description="oversight: one agency's code")] = None,
) -> list[dict[str, Any]]:
    """Exigent searches awaiting (or past) their ratification: supervisors and auditors of your agency, oversight
    across agencies. Lapsed ones are locked."""
    return [r.to_json() for r in regimes.list_ratifications(scope.rt, scope.actor, state=state, agency_code=agency)]


@router.post("/case-searches/{case_search_id}/ratification")
def ratify(case_search_id: Id, body: RatificationIn, scope: ApiScope) -> dict[str, Any]:
    """A supervisor (not the searching analyst) ratifies, or refuses to ratify, an exigent search."""
    return regimes.ratify_search(scope.rt, scope.actor, case_search_id, body.reason, grant=body.grant).to_json()
