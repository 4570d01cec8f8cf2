"""The probe page: the edited probe with its faces, enhancement controls with a live preview (saved as a logged,
non-destructive edit list), face choice, a drawn box for a missed face, the supervisor's quality override, and the
search form."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from faceleads.casework import cases, probes, searching
from faceleads.casework.edits import parse_edits
from faceleads.core.policy import Action
from faceleads.errors import ValidationError
from faceleads.web.api.schemas import Id
from faceleads.web.deps import PageScope, run_blocking
from faceleads.web.pages.common import NO_STORE, done, page_router, redirect
from faceleads.web.render import render

router = page_router()


def edits_from_form(brightness: int, contrast: float, rotate: float, equalize: bool, sharpen: float) -> list[
    dict[str, Any]
]:
    """The edit list the probe page's controls describe (neutral controls add no step)."""
    steps: list[dict[str, Any]] = []
    if rotate:
        steps.append({"op": "rotate", "degrees": rotate})
    if equalize:
        steps.append({"op": "equalize", "method": "clahe"})
    if brightness:
        steps.append({"op": "brightness", "amount": brightness})
    if contrast != 1.0:
        steps.append({"op": "contrast", "factor": contrast})
    if sharpen:
        steps.append({"op": "sharpen", "amount": sharpen})
    return [e.to_json() for e in parse_edits(steps)]


def _controls(edits: list[dict[str, Any]]) -> dict[str, Any]:
    """Slider positions for a stored edit list (steps the page has no control for are listed, not lost)."""
    out: dict[str, Any] = {"brightness": 0, "contrast": 1.0, "rotate": 0, "equalize": False, "sharpen": 0.0}
    for step in edits:
        op = step.get("op")
        if op == "brightness":
            out["brightness"] = step["amount"]
        elif op == "contrast":
            out["contrast"] = step["factor"]
        elif op == "rotate":
            out["rotate"] = step["degrees"]
        elif op == "equalize":
            out["equalize"] = True
        elif op == "sharpen":
            out["sharpen"] = step["amount"]
    return out


@router.get("/case-probes/{probe_id}", response_class=HTMLResponse)
async def probe_page(request: Request, probe_id: Id, scope: PageScope) -> Response:
    """The probe: edited image with numbered face boxes and quality, edit controls with live preview, face choice,
    drawn box, quality override (supervisors) and the search form."""
    rt, actor = scope.rt, scope.actor
    info = probes.show_probe(rt, actor, probe_id)
    can_edit = scope.may(Action.EDIT_PROBE, actor.agency_id)
    # Investigators see their evidence; only examiners run detection, edit, pick faces and search.
    faces = await run_blocking(request, probes.detect_faces, rt, actor, probe_id) if can_edit else []
    # The evidence's size; the page script corrects it from the loaded image when edits rotate or crop it.
    width, height = info.width, info.height
    requests_ = [r for r in cases.list_requests(rt, actor, info.case_id) if r.status == "ready"]
    return render(request, "case_probe.html", {
        "probe": info, "faces": faces, "requests": requests_, "controls": _controls(info.edits),
        "width": width, "height": height, "k": rt.settings.candidate_list_length,
        "can_override": scope.may(Action.AUTHORISE_EXCEPTION, actor.agency_id), "can_edit": can_edit,
    })  # fmt: skip


@router.get("/case-probes/{probe_id}/image")
async def probe_image_page(
    request: Request, probe_id: Id, scope: PageScope, edited: Annotated[bool, Query()] = True
) -> Response:
    """The probe image (edited or original), audited, never cached."""
    png = await run_blocking(request, probes.probe_image, scope.rt, scope.actor, probe_id, edited=edited)
    return Response(png, media_type="image/png", headers=NO_STORE)


@router.get("/case-probes/{probe_id}/preview")
async def preview_page(
    request: Request,
    probe_id: Id,
    scope: PageScope,
    brightness: Annotated[int, Query(ge=-255, le=255)] = 0,
    contrast: Annotated[float, Query(ge=0.1, le=5.0)] = 1.0,
    rotate: Annotated[float, Query(ge=-360, le=360)] = 0.0,
    equalize: Annotated[bool, Query()] = False,
    sharpen: Annotated[float, Query(ge=0.0, le=5.0)] = 0.0,
) -> Response:
    """Live preview of an edit list applied to the original (nothing is saved; the view is audited)."""
    edits = edits_from_form(brightness, contrast, rotate, equalize, sharpen)
    body = await run_blocking(request, probes.preview_edits, scope.rt, scope.actor, probe_id, edits)
    return Response(body, media_type="image/jpeg", headers=NO_STORE)


@router.post("/case-probes/{probe_id}/edits")
async def save_edits_page(
    request: Request,
    probe_id: Id,
    scope: PageScope,
    brightness: Annotated[int, Form(ge=-255, le=255)] = 0,
    contrast: Annotated[float, Form(ge=0.1, le=5.0)] = 1.0,
    rotate: Annotated[float, Form(ge=-360, le=360)] = 0.0,
    equalize: Annotated[bool, Form()] = False,
    sharpen: Annotated[float, Form(ge=0.0, le=5.0)] = 0.0,
) -> Response:
    """Save the edit list (a new logged version; the face must be picked again)."""
    edits = edits_from_form(brightness, contrast, rotate, equalize, sharpen)
    info = await run_blocking(request, probes.set_edits, scope.rt, scope.actor, probe_id, edits)
    return done(request, f"/case-probes/{probe_id}",
                f"Edits saved (logged): {info.edits_described or 'none'}. Choose the face again.")


@router.post("/case-probes/{probe_id}/face")
async def pick_face_page(
    request: Request, probe_id: Id, scope: PageScope, face: Annotated[int, Form(ge=1, le=1000)]
) -> Response:
    """Choose a detected face (one click on its box or thumbnail)."""
    info = await run_blocking(request, probes.pick_face, scope.rt, scope.actor, probe_id, face)
    return done(request, f"/case-probes/{probe_id}", f"Face {face} chosen (quality {info.quality or 0:.2f}).")


@router.post("/case-probes/{probe_id}/box")
async def draw_box_page(request: Request, probe_id: Id, scope: PageScope) -> JSONResponse:
    """Use the face inside an analyst-drawn box (JSON {"box": [x1, y1, x2, y2]}; CSRF header)."""
    try:
        payload = await request.json()
        box = [float(v) for v in payload["box"]]
    except (ValueError, KeyError, TypeError):
        raise ValidationError('send JSON {"box": [x1, y1, x2, y2]} in image pixels') from None
    info = await run_blocking(request, probes.draw_box, scope.rt, scope.actor, probe_id, box)
    return JSONResponse(info.to_json(), headers=NO_STORE)


@router.post("/case-probes/{probe_id}/override")
def override_page(
    request: Request, probe_id: Id, scope: PageScope, reason: Annotated[str, Form(max_length=2000)]
) -> Response:
    """A supervisor's recorded quality override."""
    probes.override_quality(scope.rt, scope.actor, probe_id, reason)
    return done(request, f"/case-probes/{probe_id}", "Quality override recorded.")


@router.post("/case-probes/{probe_id}/search")
async def search_page(
    request: Request,
    probe_id: Id,
    scope: PageScope,
    request_id: Annotated[int, Form(ge=1, le=2**53)],
    top: Annotated[int | None, Form(ge=2, le=50)] = None,
    floor: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Search the gallery for a request with this probe."""
    try:
        score_floor = float(floor) if floor.strip() else None
    except ValueError:
        raise ValidationError(f"score floor {floor!r} is not a number") from None
    info = await run_blocking(request, searching.run_search, scope.rt, scope.actor, request_id, [probe_id], top=top,
                              floor=score_floor)  # fmt: skip
    return redirect(f"/case-searches/{info.id}")


@router.get("/case-probes/{probe_id}/aligned")
async def probe_aligned_page(request: Request, probe_id: Id, scope: PageScope) -> Response:
    """The chosen probe face, aligned for comparison."""
    body, _ = await run_blocking(request, probes.aligned_face, scope.rt, scope.actor, probe_id)
    return Response(body, media_type="image/jpeg", headers=NO_STORE)
