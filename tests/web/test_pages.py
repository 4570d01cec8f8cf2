"""Web pages through a browser-like client: every page renders for the roles that may see it and is refused (403,
audited) for the others; forms work end to end for the pages the browser tests do not drive."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient

from faceleads.governance.destruction import CHECKLIST_ITEMS
from faceleads.web.render import NAV
from tests.web.conftest import ROLE_USERS, WebEnv
from tests.web.test_security import browser_sign_in, csrf_of, page_client

PAGES = {href for _, href, _ in NAV}


def test_navigation_matches_permissions(web: WebEnv) -> None:
    for user in ROLE_USERS:
        client = page_client(web)
        browser_sign_in(client, user)
        home = client.get("/")
        assert home.status_code == 200 and "Your queue" in home.text
        linked = {href for href in PAGES if f'href="{href}"' in home.text}
        for href in PAGES - {"/"}:
            response = client.get(href)
            if href in linked:
                assert response.status_code == 200, (user, href, response.status_code)
            else:
                assert response.status_code == 403, (user, href, response.status_code)
                assert "may not" in response.text


def test_quick_search_page_runs_through_casework(web: WebEnv) -> None:
    from tests.web.conftest import LEGAL_BASIS, OPEN_CASE, PEOPLE

    client = page_client(web)
    browser_sign_in(client, "analyst")
    form = client.get("/search")
    assert form.status_code == 200 and f'value="{OPEN_CASE}"' in form.text
    token = csrf_of(form.text)
    assert client.get("/probes", follow_redirects=False).headers["location"] == "/search"
    with open(PEOPLE["Abdullah_Gul"][1], "rb") as fh:
        searched = client.post("/search", data={"csrf": token, "case": OPEN_CASE, "purpose": "criminal-investigation",
                                                "reason": "quick look at a CCTV still", "legal_basis": LEGAL_BASIS,
                                                "face": "1", "top": "3"},
                               files={"probe": ("p.jpg", fh, "image/jpeg")}, follow_redirects=False)  # fmt: skip
    assert searched.status_code == 303, searched.text
    grid_url = searched.headers["location"]
    assert grid_url.startswith("/case-searches/")
    grid = client.get(grid_url)
    assert grid.status_code == 200 and "Abdullah_Gul" in grid.text
    compare = client.get(grid_url + "/compare/1")
    assert compare.status_code == 200 and 'id="probe-crop"' in compare.text
    # Another agency's analyst cannot reach this case search (answered like a missing one).
    other = page_client(web)
    browser_sign_in(other, "analyst-b")
    assert other.get(grid_url).status_code == 404
    # Without an open case of the agency, the page refuses and nothing is searched.
    with open(PEOPLE["Abdullah_Gul"][1], "rb") as fh:
        refused = client.post("/search", data={"csrf": token, "case": "NOT-A-CASE", "reason": "curious",
                                               "legal_basis": LEGAL_BASIS},
                              files={"probe": ("p.jpg", fh, "image/jpeg")})  # fmt: skip
    assert refused.status_code == 403 and "is not a case of AGA" in refused.text


def test_destruction_and_admin_pages(web: WebEnv) -> None:
    records = page_client(web)
    browser_sign_in(records, "records")
    token = csrf_of(records.get("/destruction").text)
    made = records.post("/destruction", data={"csrf": token, "subject_number": "Ai_Sugiyama", "requester": "subject",
                                              "grounds": "never charged, records held in error"},
                        follow_redirects=False)  # fmt: skip
    assert made.status_code == 303
    supervisor = page_client(web)
    browser_sign_in(supervisor, "supervisor")
    page = supervisor.get("/destruction")
    token = csrf_of(page.text)
    request_id = int(page.text.split('id="destruction-')[1].split('"')[0])
    for item in CHECKLIST_ITEMS:
        supervisor.post(f"/destruction/{request_id}/checklist", data={"csrf": token, "item": item, "satisfied": "yes"})
    decided = supervisor.post(f"/destruction/{request_id}/decision", data={
        "csrf": token, "decision": "approve", "reason": "eligible after review"}, follow_redirects=False)  # fmt: skip
    assert decided.status_code == 303
    done = records.post(f"/destruction/{request_id}/execute", data={"csrf": csrf_of(records.get("/destruction").text)},
                        follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    page = records.get("/destruction").text
    assert "Completed" in page and "certificate.pdf" in page
    certificate = records.get(f"/destruction/{request_id}/certificate.json")
    assert certificate.status_code == 200 and certificate.json()
    pdf = records.get(f"/destruction/{request_id}/certificate.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    from pypdf import PdfReader

    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Certificate of destruction" in text and "requester_identity_verified" not in text.split("Its content")[0]
    assert str(certificate.json()["request_id"]) in text

    admin = page_client(web)
    browser_sign_in(admin, "admin")
    token = csrf_of(admin.get("/admin").text)
    # Certifications are recorded by training officers, and approved by a second person (docs/regimes.md).
    certified = admin.post("/admin/users/analyst2/certify", data={"csrf": token, "expires_on": "2099-12-31"},
                           follow_redirects=False)  # fmt: skip
    assert certified.status_code == 403 and "training_officer" in certified.text
    granted = admin.post("/admin/users/auditor/roles", data={"csrf": token, "role": "supervisor", "change": "grant"},
                         follow_redirects=False)  # fmt: skip
    assert granted.status_code == 303
    assert "waiting for a second person" in admin.get(granted.headers["location"]).text
    assert admin.post("/admin/users/admin/roles", data={"csrf": token, "role": "analyst"}).status_code == 403
    for path, form in (
        ("/admin/offences", {"code": "ARSON", "title": "Arson", "category": "serious"}),
        ("/admin/purposes", {"code": "missing-child", "title": "Missing child", "requires_authorisation": "true"}),
        ("/admin/galleries", {"name": "archive", "legal_authority": "PACE", "purposes": "criminal-investigation"}),
        ("/admin/shares", {"gallery": "archive", "agency_code": "AGB", "purposes": "criminal-investigation",
                           "starts_on": "2024-01-01"}),
    ):
        done = admin.post(path, data={"csrf": token, **form}, follow_redirects=False)
        assert done.status_code == 303, (path, done.text)
    page = admin.get("/admin").text
    assert "ARSON" in page and "missing-child" in page
    refused = admin.post("/admin/offences", data={"csrf": token, "code": "X", "title": "X", "category": "eternal"})
    assert refused.status_code == 422 and "category" in refused.text


def test_audit_page_verify_and_statistics(web: WebEnv) -> None:
    client: TestClient = page_client(web)
    browser_sign_in(client, "auditor")
    page = client.get("/audit?outcome=denied")
    assert page.status_code == 200
    verified = client.post("/audit/verify", data={"csrf": csrf_of(page.text)})
    assert verified.status_code == 200 and "Chain intact" in verified.text
    stats = client.get("/statistics?since=2020-01-01")
    assert stats.status_code == 200 and stats.text.count('<svg class="chart"') == 3
    bad = client.get("/statistics?since=tomorrow")
    assert bad.status_code == 422
    exported = client.get("/api-export/audit.csv?action=login")
    assert exported.status_code == 200 and exported.text.startswith("seq,at,")
    assert "audit_export" in client.get("/audit?action=audit_export").text


def test_case_probe_page_tools(web: WebEnv) -> None:
    from tests.web.conftest import PEOPLE

    investigator = page_client(web)
    browser_sign_in(investigator, "investigator")
    token = csrf_of(investigator.get("/cases").text)
    opened = investigator.post("/cases", data={"csrf": token, "occurrence_number": "PAGE-1", "offence": "ROB",
                                               "justification": "robbery"}, follow_redirects=False)  # fmt: skip
    case_url = opened.headers["location"]
    investigator.post(case_url + "/requests", data={"csrf": token, "purpose": "criminal-investigation",
                                                    "justification": "identify"})  # fmt: skip
    with open(PEOPLE["Abdullah_Gul"][1], "rb") as fh:
        added = investigator.post(case_url + "/probes", data={
            "csrf": token, "source": "cctv", "obtained_by": "pc", "legal_basis": "pace",
            "obtained_at": "2026-01-01T10:00"}, files={"photo": fh}, follow_redirects=False)  # fmt: skip
    assert added.status_code == 303 and added.headers["location"] == case_url + "#evidence"
    analyst = page_client(web)
    browser_sign_in(analyst, "analyst")
    case_page = analyst.get(case_url).text
    probe_url = "/case-probes/" + case_page.split('href="/case-probes/')[1].split('"')[0]
    page = analyst.get(probe_url)
    assert page.status_code == 200 and 'data-face="1"' in page.text
    token = csrf_of(page.text)
    preview = analyst.get(probe_url + "/preview?brightness=30&contrast=1.2&equalize=true")
    assert preview.status_code == 200 and preview.content[:2] == b"\xff\xd8"
    assert analyst.get(probe_url + "/preview?contrast=99").status_code == 422
    saved = analyst.post(probe_url + "/edits", data={"csrf": token, "brightness": "10", "contrast": "1.0",
                                                     "rotate": "0", "sharpen": "0"}, follow_redirects=False)
    assert saved.status_code == 303
    after = analyst.get(probe_url).text
    assert "brightness(amount=10)" in after and "Edits saved (logged)" in after  # the success message, shown once
    assert "Edits saved (logged)" not in analyst.get(probe_url).text
    drawn = analyst.post(probe_url + "/box", json={"box": [50, 50, 200, 210]}, headers={"X-CSRF-Token": token})
    assert drawn.status_code == 200 and drawn.json()["face_source"] == "drawn"
    missed = analyst.post(probe_url + "/box", json={"box": [0, 0, 12, 12]}, headers={"X-CSRF-Token": token})
    assert missed.status_code == 422
    assert analyst.post(probe_url + "/override", data={"csrf": token, "reason": "urgent"}).status_code == 403
    picked = analyst.post(probe_url + "/face", data={"csrf": token, "face": "1"}, follow_redirects=False)
    assert picked.status_code == 303
    aligned = analyst.get(probe_url + "/aligned")
    assert aligned.status_code == 200 and aligned.headers["cache-control"] == "no-store"
    request_id = analyst.get(probe_url).text.split('name="request_id"><option value="')[1].split('"')[0]
    searched = analyst.post(probe_url + "/search", data={"csrf": token, "request_id": request_id, "top": "2"},
                            follow_redirects=False)  # fmt: skip
    assert searched.status_code == 303
    results = analyst.get(searched.headers["location"])
    assert results.status_code == 200 and "Abdullah_Gul" in results.text


def test_supervisor_decisions_page(web: WebEnv) -> None:
    from tests.web.test_casework_api import call

    body = {"occurrence_number": "PAGE-EX-1", "offence": "ASSAULT", "justification": "person at risk"}
    case = call(web, "investigator", "POST", "/cases", 201, json=body)
    req = call(web, "investigator", "POST", f"/cases/{case['id']}/requests", 201,
               json={"purpose": "sensitive-investigation", "justification": "threat to life"})  # fmt: skip
    supervisor = page_client(web)
    browser_sign_in(supervisor, "supervisor")
    assert 'href="/decisions"' in supervisor.get("/").text
    page = supervisor.get("/decisions")
    assert page.status_code == 200 and "PAGE-EX-1" in page.text
    no_choice = supervisor.post(f"/requests/{req['id']}/authorise", data={
        "csrf": csrf_of(page.text), "reason": "imminent risk to life", "back": "decisions"})  # fmt: skip
    assert no_choice.status_code == 422 and "Grant is required" in no_choice.text  # no default decision
    done = supervisor.post(f"/requests/{req['id']}/authorise", data={
        "csrf": csrf_of(page.text), "reason": "imminent risk to life", "grant": "grant", "back": "decisions"},
        follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/decisions"
    assert call(web, "investigator", "GET", f"/cases/{case['id']}", 200)["requests"][0]["status"] == "ready"
    analyst = page_client(web)
    browser_sign_in(analyst, "analyst")
    assert analyst.get("/decisions").status_code == 403
