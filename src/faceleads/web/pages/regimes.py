"""Legal regimes and exigent ratifications (docs/regimes.md): each purpose's regime for the agency, the exigent
ratification window and the validity of prior authorisations (administrators); exigent searches with their
supervisor's ratification (supervisors ratify; auditors and oversight read).

Like every page they only call the domain services (``casework.regimes``), which authorise with the central policy
and audit every read, change and refusal; CSRF is the page routers' dependency (:mod:`faceleads.web.pages`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from faceleads.casework import regimes
from faceleads.core.policy import Action
from faceleads.core.regime import Regime
from faceleads.web.api.schemas import Id
from faceleads.web.deps import PageScope
from faceleads.web.pages.common import done, page_router
from faceleads.web.render import render

router = page_router()


@router.get("/regimes", response_class=HTMLResponse)
def regimes_page(request: Request, scope: PageScope) -> Response:
    """The agency's regimes: each purpose's regime, the exigent window, the validity of prior authorisations."""
    info = regimes.show_regimes(scope.rt, scope.actor)
    return render(request, "regimes.html", {"info": info, "regimes": [r.value for r in Regime],
                                            "can_edit": scope.may(Action.ADMIN_REGIMES, scope.actor.agency_id)})


@router.post("/regimes/purposes")
def regimes_purpose(
    request: Request,
    scope: PageScope,
    purpose: Annotated[str, Form(max_length=64)],
    regime: Annotated[str, Form(max_length=32)],
) -> Response:
    """Put a purpose in a regime (administrators)."""
    regimes.set_purpose_regime(scope.rt, scope.actor, purpose, regime)
    return done(request, "/regimes", f"Purpose {purpose.strip()} is now {regime.strip().replace('_', ' ')}.")


@router.post("/regimes/windows")
def regimes_windows(
    request: Request,
    scope: PageScope,
    exigent_window_hours: Annotated[int, Form(ge=1, le=regimes.MAX_WINDOW_HOURS)],
    authorisation_hours: Annotated[int, Form(ge=1, le=regimes.MAX_AUTHORISATION_HOURS)],
) -> Response:
    """Set the exigent ratification window and the prior-authorisation validity (administrators)."""
    info = regimes.set_windows(scope.rt, scope.actor, exigent_window_hours=exigent_window_hours,
                               authorisation_hours=authorisation_hours)  # fmt: skip
    return done(request, "/regimes", f"Windows saved: exigent searches ratified within {info.exigent_window_hours} h, "
                                     f"prior authorisations last {info.authorisation_hours} h.")


@router.get("/ratifications", response_class=HTMLResponse)
def ratifications_page(
    request: Request,
    scope: PageScope,
    state: Annotated[str, Query(pattern="^(open|pending|lapsed|decided|all)$")] = "open",
    agency: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """Exigent searches and their ratification: pending ones to ratify, lapsed ones flagged and locked (supervisors,
    auditors; oversight across agencies). The read is audited."""
    rows = regimes.list_ratifications(scope.rt, scope.actor, state=state, agency_code=agency or None)
    return render(request, "ratifications.html", {
        "rows": rows, "state": state, "agency": agency or "",
        "can_ratify": scope.may(Action.AUTHORISE_EXCEPTION, scope.actor.agency_id),
        "cross_agency": scope.may(Action.VIEW_RATIFICATIONS) and not scope.may(Action.VIEW_CASE),
    })  # fmt: skip


@router.post("/ratifications/{case_search_id}")
def ratify_page(
    request: Request,
    case_search_id: Id,
    scope: PageScope,
    reason: Annotated[str, Form(max_length=2000)],
    decision: Annotated[str, Form(pattern="^(ratify|refuse)$")],
) -> Response:
    """A supervisor ratifies (or refuses to ratify) an exigent search; there is no default decision."""
    info = regimes.ratify_search(scope.rt, scope.actor, case_search_id, reason, grant=decision == "ratify")
    return done(request, "/ratifications",
                f"Exigent search {info.case_search_id} ({info.occurrence_number}): {info.state.replace('_', ' ')}.")
