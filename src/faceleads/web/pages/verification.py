"""Blind verification, supervisor decisions (purpose authorisations and disputed leads) and the release of leads."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from faceleads.casework import adjudication, probes
from faceleads.core.policy import Action
from faceleads.gallery import viewing
from faceleads.web.api.schemas import Id
from faceleads.web.deps import PageScope
from faceleads.web.pages.cases import work_queue
from faceleads.web.pages.common import page_router, redirect
from faceleads.web.render import render

router = page_router()


@router.get("/verification", response_class=HTMLResponse)
def verification_queue_page(request: Request, scope: PageScope) -> Response:
    """Leads awaiting blind verification by the actor."""
    return render(request, "verification.html", {"leads": adjudication.verification_queue(scope.rt, scope.actor)})


@router.get("/decisions", response_class=HTMLResponse)
def decisions_page(request: Request, scope: PageScope) -> Response:
    """A supervisor's decisions: purposes awaiting authorisation and disputed leads, with their forms."""
    scope.require(Action.AUTHORISE_EXCEPTION, "decisions", scope.actor.agency_id)
    return render(request, "decisions.html", {"queue": work_queue(scope)})


@router.get("/leads/{lead_id}/verify", response_class=HTMLResponse)
def verify_page(request: Request, lead_id: Id, scope: PageScope) -> Response:
    """The blind verification view: probe and candidate only (never the first analyst's conclusion)."""
    task = adjudication.verification_task(scope.rt, scope.actor, lead_id)
    probe_id = int(task.probes[0]["probe_id"])
    return render(request, "verify.html", {
        "task": task, "probe_id": probe_id, "probe_landmarks": probes.face_landmarks(scope.rt, scope.actor, probe_id),
        "cand_landmarks": viewing.landmarks(scope.rt, scope.actor, task.image_id),
    })  # fmt: skip


@router.post("/leads/{lead_id}/verify")
def verify_post(
    lead_id: Id,
    scope: PageScope,
    result: Annotated[str, Form(pattern="^(agree|disagree)$")],
    notes: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Record agree / disagree."""
    adjudication.verify_lead(scope.rt, scope.actor, lead_id, result, notes)
    return redirect("/verification?done=" + str(lead_id))


@router.post("/leads/{lead_id}/decide")
def decide_post(
    lead_id: Id,
    scope: PageScope,
    decision: Annotated[str, Form(pattern="^(verified|rejected)$")],
    reason: Annotated[str, Form(max_length=2000)],
) -> Response:
    """A supervisor decides a disputed lead."""
    adjudication.resolve_disagreement(scope.rt, scope.actor, lead_id, decision, reason)
    return redirect("/decisions")


@router.post("/leads/{lead_id}/release")
def release_post(lead_id: Id, scope: PageScope) -> Response:
    """Release a verified lead to the investigator."""
    info = adjudication.release_lead(scope.rt, scope.actor, lead_id)
    return redirect(f"/cases/{info.case_id}")
