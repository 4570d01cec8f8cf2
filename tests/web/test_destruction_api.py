"""Destruction through the API: request, checklist, decision by another person, execution, certificate; the
subject is gone from search and its photos can no longer be served."""

from __future__ import annotations

from faceleads.governance.destruction import CHECKLIST_ITEMS
from tests.web.conftest import PEOPLE, WebEnv
from tests.web.test_casework_api import call


def test_destruction_request_to_certificate(web: WebEnv) -> None:
    form = {"subject_number": "DESTROY-ME", "booking_number": "DESTROY-B1", "booking_date": "2019-05-05",
            "legal_authority": "PACE s.64A"}  # fmt: skip
    photo = ("p.jpg", PEOPLE["Albert_Costa"][0].read_bytes(), "image/jpeg")
    enrolled = call(web, "records", "POST", "/gallery/records", 201, data=form, files=[("photos", photo)])
    image_id = enrolled["photos"][0]["image_id"]
    call(web, "analyst", "POST", "/destruction/requests", 403,
         json={"subject_number": "DESTROY-ME", "requester": "the subject", "grounds": "acquitted at trial"})
    req = call(web, "records", "POST", "/destruction/requests", 201,
               json={"subject_number": "DESTROY-ME", "requester": "the subject", "grounds": "acquitted at trial"})
    rid = req["id"]
    denied = call(web, "supervisor", "POST", f"/destruction/requests/{rid}/decision", 422,
                  json={"approve": True, "reason": "all checks done"})  # checklist incomplete
    assert "checklist" in denied["detail"]
    for item in CHECKLIST_ITEMS:
        call(web, "supervisor", "POST", f"/destruction/requests/{rid}/checklist", 200,
             json={"item": item, "satisfied": True, "note": "checked"})  # fmt: skip
    approved = call(web, "supervisor", "POST", f"/destruction/requests/{rid}/decision", 200,
                    json={"approve": True, "reason": "eligible: acquitted, no hold"})  # fmt: skip
    assert approved["status"] == "approved"
    certificate = call(web, "records", "POST", f"/destruction/requests/{rid}/execution", 200)
    assert certificate == call(web, "auditor", "GET", f"/destruction/requests/{rid}/certificate", 200)
    assert call(web, "records", "GET", f"/destruction/requests/{rid}", 200)["status"] == "completed"
    gone = web.client.get(f"/api/v1/gallery/images/{image_id}", headers=web.headers("analyst"))
    assert gone.status_code in (404, 410), gone.text
    subjects = call(web, "analyst", "GET", "/gallery/subjects?number=DESTROY", 200)
    assert subjects["total"] == 0
    listed = call(web, "auditor", "GET", "/destruction/requests?status=completed", 200)
    assert rid in [r["id"] for r in listed]
