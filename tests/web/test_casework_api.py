"""Casework through the REST API: case, request, evidence, edits, face choice, search, adjudication, blind
verification, release and the lead report — with the refusals along the way."""

from __future__ import annotations

import io
from typing import Any

from pypdf import PdfReader

from tests.casework.conftest import side_by_side
from tests.web.conftest import PEOPLE, WebEnv


def call(web: WebEnv, user: str, method: str, path: str, status: int, **kwargs: Any) -> Any:
    response = web.client.request(method, "/api/v1" + path, headers=web.headers(user), **kwargs)
    assert response.status_code == status, (user, method, path, response.status_code, response.text)
    if "json" in response.headers.get("content-type", ""):
        return response.json()
    return response


def test_case_flow_through_the_api(web: WebEnv) -> None:
    # Investigator: case, request, evidence (a two-face photo: Abdullah_Gul is enrolled, Aaron_Peirsol too).
    case = call(web, "investigator", "POST", "/cases", 201, json={
        "occurrence_number": "API-OCC-1", "offence": "ROB", "justification": "robbery at a bank, CCTV"})  # fmt: skip
    bad = call(web, "investigator", "POST", "/cases", 422, json={
        "occurrence_number": "API-OCC-2", "offence": "PARKING", "justification": "x"})  # fmt: skip
    assert "approved offence list" in bad["detail"]
    call(web, "investigator", "POST", "/cases", 422, json={
        "occurrence_number": "API-OCC-1", "offence": "ROB", "justification": "again"})  # fmt: skip
    request = call(web, "investigator", "POST", f"/cases/{case['id']}/requests", 201,
                   json={"purpose": "criminal-investigation", "justification": "identify the robber"})  # fmt: skip
    assert request["status"] == "ready"
    photo = side_by_side(PEOPLE["Abdullah_Gul"][2], PEOPLE["Aaron_Peirsol"][2])
    evidence = {"source": "CCTV 3", "obtained_by": "PC Smith", "legal_basis": "PACE s.19",
                "obtained_at": "2026-03-01T10:30:00Z"}  # fmt: skip
    probe = call(web, "investigator", "POST", f"/cases/{case['id']}/probes", 201, data=evidence,
                 files={"photo": ("cctv.jpg", photo, "image/jpeg")})  # fmt: skip
    call(web, "investigator", "POST", f"/cases/{case['id']}/probes", 422, data={**evidence, "obtained_at": "soon"},
         files={"photo": ("cctv.jpg", photo, "image/jpeg")})  # fmt: skip
    pid = probe["id"]

    # Analyst: faces, edits (logged), face choice, search.
    call(web, "investigator", "GET", f"/probes/{pid}/faces", 403)
    faces = call(web, "analyst", "GET", f"/probes/{pid}/faces", 200)
    assert len(faces) >= 2  # LFW photos hold background faces too
    call(web, "analyst", "PUT", f"/probes/{pid}/edits", 200, json={"edits": [{"op": "contrast", "factor": 1.2}]})
    refused = call(web, "analyst", "PUT", f"/probes/{pid}/edits", 422, json={"edits": [{"op": "warp"}]})
    assert "warp" in refused["detail"]
    assert len(call(web, "analyst", "GET", f"/probes/{pid}/edits", 200)) >= 1
    x1, y1, x2, y2 = faces[0]["box"]
    drawn = call(web, "analyst", "POST", f"/probes/{pid}/box", 200,
                 json={"box": [x1 - 20, y1 - 20, x2 + 20, y2 + 20]})  # fmt: skip
    assert drawn["face_source"] == "drawn" and drawn["searchable"]
    call(web, "analyst", "POST", f"/probes/{pid}/box", 422, json={"box": [50, 50, 10, 10]})
    chosen = call(web, "analyst", "POST", f"/probes/{pid}/face", 200, json={"face": 1})
    assert chosen["searchable"] and chosen["face_index"] == 1
    image = call(web, "analyst", "GET", f"/probes/{pid}/image?edited=false", 200)
    assert image.content.startswith(b"\x89PNG") and image.headers["cache-control"] == "no-store"
    call(web, "reviewer", "POST", f"/requests/{request['id']}/searches", 403, json={"probe_ids": [pid]})
    search = call(web, "analyst", "POST", f"/requests/{request['id']}/searches", 201,
                  json={"probe_ids": [pid], "top": 3})  # fmt: skip
    cs = search["id"]
    candidates = call(web, "analyst", "GET", f"/case-searches/{cs}/candidates", 200)
    assert len(candidates) == 3 and candidates[0]["subject_number"] in ("Abdullah_Gul", "Aaron_Peirsol")

    # Adjudication: submit refused while unmarked; then every candidate marked.
    unmarked = call(web, "analyst", "POST", f"/case-searches/{cs}/submission", 422)
    assert "unmarked" in unmarked["detail"] or "mark" in unmarked["detail"]
    call(web, "analyst", "PUT", f"/case-searches/{cs}/candidates/1/conclusion", 200,
         json={"conclusion": "possible_lead", "notes": "FIRST-ANALYST-SECRET", "checklist": {"eyes": "similar"}})
    for rank in (2, 3):
        call(web, "analyst", "PUT", f"/case-searches/{cs}/candidates/{rank}/conclusion", 200,
             json={"conclusion": "excluded", "notes": "different"})  # fmt: skip
    call(web, "analyst", "PUT", f"/case-searches/{cs}/candidates/9/conclusion", 404,
         json={"conclusion": "excluded", "notes": "n"})  # fmt: skip
    call(web, "analyst", "PUT", f"/case-searches/{cs}/candidates/1/conclusion", 422,
         json={"conclusion": "maybe", "notes": "n"})  # fmt: skip
    leads = call(web, "analyst", "POST", f"/case-searches/{cs}/submission", 200)
    assert [lead["status"] for lead in leads] == ["awaiting_verification"]
    lead_id = leads[0]["id"]

    # Blind verification by the reviewer (not the proposing analyst).
    call(web, "analyst", "GET", "/leads/queue", 403)  # the analyst holds no reviewer role
    assert lead_id in call(web, "reviewer", "GET", "/leads/queue", 200)
    task = call(web, "reviewer", "GET", f"/leads/{lead_id}/verification-task", 200)
    assert "FIRST-ANALYST-SECRET" not in str(task) and "conclusion" not in task
    call(web, "analyst", "POST", f"/leads/{lead_id}/verification", 403, json={"result": "agree", "notes": "n"})
    call(web, "investigator", "GET", f"/case-searches/{cs}/report", 422)  # nothing released yet
    verified = call(web, "reviewer", "POST", f"/leads/{lead_id}/verification", 200,
                    json={"result": "agree", "notes": "agree"})  # fmt: skip
    assert verified["status"] == "verified"

    # Release and report.
    call(web, "investigator", "POST", f"/leads/{lead_id}/release", 403)
    assert call(web, "analyst", "POST", f"/leads/{lead_id}/release", 200)["status"] == "released"
    report = call(web, "investigator", "GET", f"/case-searches/{cs}/report", 200)
    assert report.headers["content-type"] == "application/pdf" and len(report.headers["x-report-sha256"]) == 64
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(report.content)).pages)
    assert "API-OCC-1" in text

    detail = call(web, "supervisor", "GET", f"/cases/{case['id']}", 200)
    assert detail["leads"][0]["status"] == "released" and len(detail["searches"]) == 1
    assert call(web, "investigator", "GET", f"/leads/{lead_id}", 200)["status"] == "released"
    assert call(web, "analyst", "GET", f"/case-searches/{cs}", 200)["result"]["k"] == 3

    # Agency scope (another agency's ids answer exactly like missing ones) and roles.
    hidden = call(web, "analyst-b", "GET", f"/cases/{case['id']}", 404)
    assert hidden["detail"] == f"no case {case['id']}"
    assert call(web, "analyst-b", "GET", "/cases/999999", 404)["detail"] == "no case 999999"
    call(web, "analyst-b", "GET", f"/case-searches/{cs}", 404)
    call(web, "auditor", "GET", "/cases", 403)
    call(web, "admin", "GET", f"/probes/{pid}/image", 403)
    call(web, "records", "POST", "/cases", 403, json={"occurrence_number": "X", "offence": "ROB", "justification": "x"})
    closed = call(web, "investigator", "POST", f"/cases/{case['id']}/close", 200, json={"reason": "charged"})
    assert closed["status"] == "closed"
    assert [c["id"] for c in call(web, "investigator", "GET", "/cases?status=closed", 200)] == [case["id"]]


def test_purpose_needing_authorisation(web: WebEnv) -> None:
    body = {"occurrence_number": "API-OCC-EX", "offence": "ASSAULT", "justification": "missing person at risk"}
    case = call(web, "investigator", "POST", "/cases", 201, json=body)
    req = call(web, "investigator", "POST", f"/cases/{case['id']}/requests", 201,
               json={"purpose": "sensitive-investigation", "justification": "threat to life"})  # fmt: skip
    assert req["status"] == "awaiting_authorisation"
    call(web, "analyst", "POST", f"/requests/{req['id']}/authorisation", 403, json={"reason": "ok"})
    done = call(web, "supervisor", "POST", f"/requests/{req['id']}/authorisation", 200,
                json={"reason": "imminent risk", "grant": True})  # fmt: skip
    assert done["status"] == "ready" and "supervisor" in done["authorisation"]


def test_offences_and_purposes_lists(web: WebEnv) -> None:
    assert "ROB" in [o["code"] for o in call(web, "analyst", "GET", "/offences", 200)]
    assert "criminal-investigation" in [p["code"] for p in call(web, "auditor", "GET", "/purposes", 200)]
    call(web, "analyst", "POST", "/offences", 403, json={"code": "FRAUD", "title": "Fraud", "category": "standard"})
    call(web, "admin", "POST", "/offences", 201, json={"code": "FRAUD", "title": "Fraud", "category": "standard"})
    bad = call(web, "admin", "POST", "/offences", 422, json={"code": "ARSON", "title": "Arson", "category": "huge"})
    assert "category" in bad["detail"]
    call(web, "admin", "POST", "/purposes", 201, json={"code": "missing-person", "title": "Missing person"})


def test_video_evidence_becomes_probes(web: WebEnv, tmp_path: Any) -> None:
    from tests.casework.test_video import make_clip

    body = {"occurrence_number": "API-VID-1", "offence": "BURG", "justification": "burglary filmed by a doorbell"}
    case = call(web, "investigator", "POST", "/cases", 201, json=body)
    clip = tmp_path / "clip.avi"
    make_clip(clip, PEOPLE["Aaron_Peirsol"][1:4], PEOPLE["Adam_Sandler"][1])
    with clip.open("rb") as fh:
        intake = call(web, "investigator", "POST", f"/cases/{case['id']}/videos", 201,
                      data={"source": "doorbell", "obtained_by": "PC Jones", "legal_basis": "consent",
                            "obtained_at": "2026-02-02T20:00:00Z", "shots_per_track": "2"},
                      files={"video": ("clip.avi", fh, "video/x-msvideo")})  # fmt: skip
    assert len(intake["probes_by_track"]) >= 2 and len(intake["probe_ids"]) >= 2
    listed = call(web, "analyst", "GET", f"/cases/{case['id']}", 200)["probes"]
    assert {p["kind"] for p in listed} == {"video_frame"} and all(p["track_number"] for p in listed)
    bad = call(web, "investigator", "POST", f"/cases/{case['id']}/videos", 422,
               data={"source": "x", "obtained_by": "y", "legal_basis": "z", "obtained_at": "2026-02-02T20:00:00Z"},
               files={"video": ("clip.avi", b"not a video at all", "video/x-msvideo")})  # fmt: skip
    assert "video" in bad["detail"].lower()


def test_audit_export_and_sharing(web: WebEnv) -> None:
    csv_export = call(web, "auditor", "GET", "/audit/export?format=csv&action=login", 200)
    assert csv_export.text.startswith("seq,at,") and "login" in csv_export.text
    call(web, "analyst", "GET", "/audit/export", 403)
    call(web, "admin", "POST", "/admin/galleries", 201,
         json={"name": "custody", "legal_authority": "PACE", "purposes": ["criminal-investigation"]})
    share = call(web, "admin", "POST", "/admin/galleries/custody/shares", 201,
                 json={"agency_code": "AGB", "purposes": ["criminal-investigation"], "starts_on": "2020-01-01"})
    call(web, "admin", "POST", "/admin/galleries/nope/shares", 404,
         json={"agency_code": "AGB", "purposes": ["criminal-investigation"], "starts_on": "2020-01-01"})
    call(web, "analyst", "POST", "/admin/galleries", 403,
         json={"name": "x", "legal_authority": "y", "purposes": ["criminal-investigation"]})
    assert web.client.delete(f"/api/v1/admin/shares/{share['id']}", headers=web.headers("admin")).status_code == 204


def test_disagreement_goes_to_a_supervisor(web: WebEnv) -> None:
    body = {"occurrence_number": "API-DIS-1", "offence": "ROB", "justification": "robbery, second camera"}
    case = call(web, "investigator", "POST", "/cases", 201, json=body)
    req = call(web, "investigator", "POST", f"/cases/{case['id']}/requests", 201,
               json={"purpose": "criminal-investigation", "justification": "identify"})  # fmt: skip
    evidence = {"source": "CCTV 4", "obtained_by": "PC Smith", "legal_basis": "PACE s.19",
                "obtained_at": "2026-03-02T10:30:00Z"}  # fmt: skip
    photo = PEOPLE["Ai_Sugiyama"][1].read_bytes()
    probe = call(web, "investigator", "POST", f"/cases/{case['id']}/probes", 201, data=evidence,
                 files={"photo": ("cctv.jpg", photo, "image/jpeg")})  # fmt: skip
    call(web, "analyst", "POST", f"/probes/{probe['id']}/face", 200, json={"face": 1})
    cs = call(web, "analyst", "POST", f"/requests/{req['id']}/searches", 201,
              json={"probe_ids": [probe["id"]], "top": 2})["id"]  # fmt: skip
    call(web, "analyst", "PUT", f"/case-searches/{cs}/candidates/1/conclusion", 200,
         json={"conclusion": "possible_lead", "notes": "similar"})  # fmt: skip
    call(web, "analyst", "PUT", f"/case-searches/{cs}/candidates/2/conclusion", 200,
         json={"conclusion": "excluded", "notes": "different"})  # fmt: skip
    lead = call(web, "analyst", "POST", f"/case-searches/{cs}/submission", 200)[0]["id"]
    disputed = call(web, "reviewer", "POST", f"/leads/{lead}/verification", 200,
                    json={"result": "disagree", "notes": "ear shape differs"})  # fmt: skip
    assert disputed["status"] == "disputed"
    refused = call(web, "analyst", "POST", f"/leads/{lead}/release", 403)
    assert "only a verified lead" in refused["detail"]
    call(web, "analyst", "POST", f"/leads/{lead}/decision", 403, json={"decision": "verified", "reason": "mine"})
    decided = call(web, "supervisor", "POST", f"/leads/{lead}/decision", 200,
                   json={"decision": "rejected", "reason": "the reviewer's ear comparison is convincing"})
    assert decided["status"] == "rejected" and decided["supervisor"] == "supervisor"


def test_blind_verification_is_sealed_through_the_api(web: WebEnv) -> None:
    """analyst2 (analyst and reviewer) may verify analyst's lead: until they conclude, nothing of the search but the
    blind task and the proposed candidate's photos answers them; the dispute then goes to a supervisor."""
    body = {"occurrence_number": "API-BLIND-1", "offence": "ROB", "justification": "robbery, third camera"}
    case = call(web, "investigator", "POST", "/cases", 201, json=body)
    req = call(web, "investigator", "POST", f"/cases/{case['id']}/requests", 201,
               json={"purpose": "criminal-investigation", "justification": "identify", "priority": "urgent"})
    evidence = {"source": "CCTV 5", "obtained_by": "PC Smith", "legal_basis": "PACE s.19",
                "obtained_at": "2026-03-03T10:30:00Z"}  # fmt: skip
    probe = call(web, "investigator", "POST", f"/cases/{case['id']}/probes", 201, data=evidence,
                 files={"photo": ("cctv.jpg", PEOPLE["Adam_Sandler"][2].read_bytes(), "image/jpeg")})  # fmt: skip
    call(web, "analyst", "POST", f"/probes/{probe['id']}/face", 200, json={"face": 1})
    search = call(web, "analyst", "POST", f"/requests/{req['id']}/searches", 201,
                  json={"probe_ids": [probe["id"]], "top": 4})  # fmt: skip
    cs = search["id"]
    call(web, "analyst", "PUT", f"/case-searches/{cs}/candidates/1/conclusion", 200,
         json={"conclusion": "possible_lead", "reason_code": "features_consistent", "notes": "ANALYST-NOTE",
               "checklist": {"nose": "similar"}})
    refused = call(web, "analyst", "PUT", f"/case-searches/{cs}/candidates/2/conclusion", 422,
                   json={"conclusion": "excluded", "reason_code": "features_consistent"})
    assert "does not fit" in refused["detail"]
    assert call(web, "analyst", "POST", f"/case-searches/{cs}/exclusions", 200,
                json={"reason_code": "shape_differs"})["excluded_ranks"] == [2, 3, 4]
    (lead,) = call(web, "analyst", "POST", f"/case-searches/{cs}/submission", 200)
    candidates = call(web, "analyst", "GET", f"/case-searches/{cs}/candidates", 200)

    for path in (f"/case-searches/{cs}", f"/case-searches/{cs}/candidates", f"/searches/{search['search_id']}",
                 f"/case-searches/{cs}/report", f"/leads/{lead['id']}"):
        assert "sealed" in call(web, "analyst2", "GET", path, 403)["detail"], path
    assert call(web, "analyst2", "GET", f"/cases/{case['id']}", 200)["leads"] == []
    again = call(web, "analyst2", "POST", f"/requests/{req['id']}/searches", 403, json={"probe_ids": [probe["id"]]})
    assert "blind verification" in again["detail"]
    (item,) = [i for i in call(web, "analyst2", "GET", "/leads/queue/items", 200) if i["lead_id"] == lead["id"]]
    assert item["priority"] == "urgent" and item["case_occurrence"] == "API-BLIND-1"
    task = call(web, "analyst2", "GET", f"/leads/{lead['id']}/verification-task", 200)
    assert "rank" not in task and "score" not in task and "ANALYST-NOTE" not in str(task) and task["photos"]
    photo = call(web, "analyst2", "GET", f"/leads/{lead['id']}/photos/{task['image_id']}", 200)
    assert photo.headers["content-type"] == "image/jpeg" and photo.headers["cache-control"] == "no-store"
    call(web, "analyst2", "GET", f"/leads/{lead['id']}/photos/{candidates[1]['image_id']}", 404)
    call(web, "supervisor", "GET", f"/leads/{lead['id']}/dispute", 422)  # not disputed (yet)

    done = call(web, "analyst2", "POST", f"/leads/{lead['id']}/verification", 200,
                json={"result": "inconclusive", "notes": "pose too different", "checklist": {"nose": "not_visible"}})
    assert done["status"] == "disputed" and done["verifier_conclusion"] == "inconclusive"
    assert len(call(web, "analyst2", "GET", f"/case-searches/{cs}/candidates", 200)) == 4  # the seal lifted
    dispute = call(web, "supervisor", "GET", f"/leads/{lead['id']}/dispute", 200)
    assert dispute["analyst"]["notes"] == "ANALYST-NOTE" and dispute["verifier"]["checklist"] == {"nose": "not_visible"}
    original = call(web, "supervisor", "GET", f"/leads/{lead['id']}/photos/{dispute['image_id']}?view=original", 200)
    assert original.content[:2] == b"\xff\xd8" or original.content[:4] == b"\x89PNG"
    call(web, "reviewer", "GET", f"/leads/{lead['id']}/dispute", 403)
