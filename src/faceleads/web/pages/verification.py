"""Blind verification (the verifier sees the probe and the one proposed candidate only), supervisor decisions
(purpose authorisations, quality overrides, disputed leads side by side) and the release of leads."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from faceleads.casework import adjudication, cases, dashboard
from faceleads.core.policy import Action
from faceleads.web.api.schemas import Id
from faceleads.web.deps import PageScope, run_blocking
from faceleads.web.pages import compare
from faceleads.web.pages.common import NO_STORE, done, page_router
from faceleads.web.render import label, render

router = page_router()

FINDINGS = ("similar", "dissimilar", "not_visible")
VERIFIER_CONCLUSIONS = (
    ("possible_lead", "Possible lead: the candidate may be the person in the probe"),
    ("inconclusive", "Inconclusive: the images do not allow a conclusion"),
    ("excluded", "Excluded: the candidate is not the person in the probe"),
)


def _lead_url(lead_id: int) -> Any:
    def url(image_id: int, view: str) -> str:
        return f"/leads/{lead_id}/photos/{image_id}?view={view}"

    return url


@router.get("/verification", response_class=HTMLResponse)
def verification_queue_page(request: Request, scope: PageScope) -> Response:
    """Leads awaiting blind verification by the actor, most urgent first, with case, offence and waiting time."""
    items = adjudication.verification_items(scope.rt, scope.actor)
    return render(request, "verification.html", {"items": items})


@router.get("/leads/{lead_id}/verify", response_class=HTMLResponse)
def verify_page(request: Request, lead_id: Id, scope: PageScope) -> Response:
    """The blind verification view: the probe and the one proposed candidate in the comparison view, with the
    verifier's own checklist and conclusion — nothing else of the search (no rank, score, other candidates or the
    first analyst's conclusion; the services refuse those while the lead awaits verification)."""
    task = adjudication.verification_task(scope.rt, scope.actor, lead_id)
    probe = task.probes[0]

    def caption(photo: dict[str, Any]) -> str:
        return f"Candidate {task.subject_number} ({task.agency}), booking {photo['booking_number']} of " \
               f"{photo['booking_date']}"

    view = compare.build(int(probe["probe_id"]), probe.get("face_box"), probe.get("landmarks_original"),
                         task.photos, task.image_id, _lead_url(lead_id), caption, "Probe (as searched)")  # fmt: skip
    return render(request, "verify.html", {"task": task, "view": view, "features": adjudication.FEATURES,
                                           "findings": FINDINGS, "conclusions": VERIFIER_CONCLUSIONS})  # fmt: skip


@router.get("/leads/{lead_id}/photos/{image_id}")
async def lead_photo_page(
    request: Request,
    lead_id: Id,
    image_id: Id,
    scope: PageScope,
    view: Annotated[str, Query(pattern="^(aligned|original)$")] = "aligned",
) -> Response:
    """A photo of a lead's candidate for its blind verifier or the supervisor deciding its dispute (audited)."""
    body, media = await run_blocking(request, adjudication.lead_photo, scope.rt, scope.actor, lead_id, image_id,
                                     view=view)  # fmt: skip
    return Response(body, media_type=media, headers=NO_STORE)


@router.post("/leads/{lead_id}/verify")
async def verify_post(request: Request, lead_id: Id, scope: PageScope) -> Response:
    """Record the verifier's own conclusion, notes and checklist."""
    form = await request.form()
    result = str(form.get("result") or "")
    notes = str(form.get("notes") or "")[:4000]
    checklist = {f: str(form.get(f"feature_{f}")) for f in adjudication.FEATURES if form.get(f"feature_{f}")}
    info = adjudication.verify_lead(scope.rt, scope.actor, lead_id, result, notes, checklist)
    outcome = ("verified: it can now be released" if info.status == "verified"
               else "disputed: a supervisor will decide")  # fmt: skip
    return done(request, "/verification", f"Verification of lead {lead_id} recorded; the lead is {outcome}.")


@router.get("/decisions", response_class=HTMLResponse)
def decisions_page(request: Request, scope: PageScope) -> Response:
    """A supervisor's decisions: requests awaiting authorisation, quality overrides asked, disputed leads."""
    scope.require(Action.AUTHORISE_EXCEPTION, "decisions", scope.actor.agency_id)
    rt, actor = scope.rt, scope.actor
    work = dashboard.work_items(rt, actor)
    requests = []
    for item in (i for i in work if i.kind == "authorise"):
        requests.append((item, cases.show_request(rt, actor, item.ref_id)))
    return render(request, "decisions.html", {
        "requests": requests, "overrides": [i for i in work if i.kind == "override"],
        "disputes": [i for i in work if i.kind == "decide"],
    })  # fmt: skip


@router.get("/leads/{lead_id}/dispute", response_class=HTMLResponse)
def dispute_page(request: Request, lead_id: Id, scope: PageScope) -> Response:
    """A disputed lead for the supervisor: the comparison view and both examiners' conclusions, reasons, notes and
    checklists side by side; the decision has no default."""
    dispute = adjudication.disagreement_view(scope.rt, scope.actor, lead_id)
    probe = dispute["probes"][0]

    def caption(photo: dict[str, Any]) -> str:
        return (f"Candidate #{dispute['rank']} {dispute['subject_number']} ({dispute['agency']}), booking "
                f"{photo['booking_number']} of {photo['booking_date']}")  # fmt: skip

    view = compare.build(int(probe["probe_id"]), probe.get("face_box"), probe.get("landmarks_original"),
                         dispute["photos"], dispute["image_id"], _lead_url(lead_id), caption,
                         "Probe (as searched)")  # fmt: skip
    analyst, verifier = dispute["analyst"], dispute["verifier"]
    features = [(f, analyst["checklist"].get(f), verifier["checklist"].get(f)) for f in adjudication.FEATURES]
    return render(request, "dispute.html", {"d": dispute, "view": view, "features": features,
                                            "findings_json": json.dumps(FINDINGS)})  # fmt: skip


@router.post("/leads/{lead_id}/decide")
def decide_post(
    request: Request,
    lead_id: Id,
    scope: PageScope,
    decision: Annotated[str, Form(pattern="^(verified|rejected)$")],
    reason: Annotated[str, Form(max_length=2000)],
) -> Response:
    """A supervisor decides a disputed lead (the form has no default choice)."""
    adjudication.resolve_disagreement(scope.rt, scope.actor, lead_id, decision, reason)
    return done(request, "/decisions", f"Lead {lead_id} decided: {label(decision).lower()}. Your reason is recorded.")


@router.post("/leads/{lead_id}/release")
def release_post(request: Request, lead_id: Id, scope: PageScope) -> Response:
    """Release a verified lead to the investigator."""
    info = adjudication.release_lead(scope.rt, scope.actor, lead_id)
    return done(request, f"/cases/{info.case_id}#leads", f"Lead {lead_id} released to the investigator.")
