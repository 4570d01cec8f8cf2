"""The gallery: subjects the agency may see, a subject's bookings, and enrolled photos (authorised and audited by
the gallery service, never cached)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from faceleads.gallery import viewing
from faceleads.gallery.visibility import DEFAULT_PURPOSE
from faceleads.web.api.schemas import Id
from faceleads.web.deps import PageScope, run_blocking
from faceleads.web.pages.common import NO_STORE, page_router
from faceleads.web.render import render

router = page_router()


@router.get("/gallery", response_class=HTMLResponse)
def gallery_page(
    request: Request,
    scope: PageScope,
    number: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """Subjects visible to the agency (the listing is authorised and audited by the gallery service)."""
    page = viewing.list_subjects(scope.rt, scope.actor, purpose=DEFAULT_PURPOSE, number=number, limit=50,
                                 offset=offset)  # fmt: skip
    return render(request, "gallery.html", {"page": page, "number": number or "", "offset": offset})


@router.get("/gallery/subjects/{subject_id}", response_class=HTMLResponse)
def subject_page(request: Request, subject_id: Id, scope: PageScope) -> Response:
    """A subject's bookings and photos."""
    return render(request, "subject.html", {"subject": viewing.subject_detail(scope.rt, scope.actor, subject_id)})


@router.get("/gallery/images/{image_id}")
async def gallery_image_page(
    request: Request,
    image_id: Id,
    scope: PageScope,
    view: Annotated[str, Query(pattern="^(original|aligned)$")] = "original",
    case: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """An enrolled photo for the pages (authorised and audited by the gallery service, never cached)."""
    body, media = await run_blocking(request, viewing.photo, scope.rt, scope.actor, image_id, view=view, case=case)
    return Response(body, media_type=media, headers=NO_STORE)
