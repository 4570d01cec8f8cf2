"""REST API: every route, with a role x route authorisation matrix, real searches and enrolments, problem details."""

from __future__ import annotations

import csv
import io
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from faceleads.core.audit import AuditEntry
from tests.security.identity_helpers import PASSWORD
from tests.web.conftest import LEGAL_BASIS, OPEN_CASE, OPEN_CASE_B, PEOPLE, ROLE_USERS, WebEnv

SEARCH_FORM = {"case": OPEN_CASE, "offence": "ROB", "reason": "robbery on CCTV", "legal_basis": LEGAL_BASIS}


def photo(name: str, index: int = 0) -> tuple[str, bytes, str]:
    return (f"{name}.jpg", PEOPLE[name][index].read_bytes(), "image/jpeg")


# --- authorisation matrix --------------------------------------------------------------------------------------

# (method, path, request kwargs factory, roles allowed). Allowed roles must get past the policy (not 401/403);
# every other role must get 403 with a problem document.
def _routes(web: WebEnv) -> list[tuple[str, str, dict[str, Any], set[str]]]:
    img = web.image_ids["AJ_Cook"]
    sid = web.subject_ids["AJ_Cook"]
    return [
        ("GET", "/api/v1/gallery/galleries", {}, {"analyst", "reviewer", "supervisor", "records"}),
        ("GET", "/api/v1/gallery/subjects", {}, {"analyst", "reviewer", "supervisor", "records"}),
        ("GET", f"/api/v1/gallery/subjects/{sid}", {}, {"analyst", "reviewer", "supervisor", "records"}),
        ("GET", f"/api/v1/gallery/images/{img}", {}, {"analyst", "reviewer", "records"}),
        ("GET", f"/api/v1/gallery/images/{img}/landmarks", {}, {"analyst", "reviewer", "supervisor", "records"}),
        ("POST", "/api/v1/faces/detect", {"files": {"image": photo("AJ_Cook")}}, {"analyst"}),
        ("POST", "/api/v1/searches", {"files": {"probe": photo("Aaron_Peirsol", 1)}, "data": SEARCH_FORM}, {"analyst"}),
        ("GET", "/api/v1/jobs", {}, {"records"}),
        ("GET", "/api/v1/audit/entries", {}, {"auditor", "oversight"}),
        ("POST", "/api/v1/audit/verify", {}, {"auditor", "admin", "oversight", "operator"}),
        ("GET", "/api/v1/audit/stats", {}, {"auditor", "supervisor", "oversight"}),
        ("GET", "/api/v1/admin/agencies", {}, {"operator"}),
        ("GET", "/api/v1/admin/users", {}, {"admin", "supervisor", "training"}),
        ("POST", "/api/v1/admin/users/records/unlock", {}, {"admin"}),
        ("GET", "/api/v1/approvals", {}, {"admin", "supervisor", "training", "operator"}),
        ("GET", "/api/v1/regimes", {}, {"admin", "analyst", "reviewer", "investigator", "supervisor", "auditor",
                                        "oversight"}),
        ("PUT", "/api/v1/regimes/windows", {"json": {"exigent_window_hours": 48}}, {"admin"}),
        ("GET", "/api/v1/ratifications", {}, {"supervisor", "auditor", "oversight"}),
        ("GET", "/api/v1/partner-accesses", {}, {"auditor", "admin", "oversight"}),
    ]


def test_role_route_matrix(web: WebEnv) -> None:
    checked = 0
    for method, path, kwargs, allowed in _routes(web):
        for user in ROLE_USERS:
            response = web.client.request(method, path, headers=web.headers(user), **kwargs)
            if user in allowed:
                assert response.status_code < 400, (user, method, path, response.status_code, response.text)
            else:
                assert response.status_code == 403, (user, method, path, response.status_code, response.text)
                body = response.json()
                assert response.headers["content-type"].startswith("application/problem+json")
                assert body["status"] == 403 and user in body["detail"]
            checked += 1
    assert checked == len(_routes(web)) * len(ROLE_USERS)
    # Every refusal is in the audit log.
    with web.rt.session_factory() as session:
        denied = session.query(AuditEntry).filter(AuditEntry.outcome == "denied").count()
    assert denied >= checked // 2


def test_every_api_route_needs_a_session(web: WebEnv) -> None:
    schema = web.client.get("/api/v1/openapi.json").json()
    public = {"/api/v1/auth/sign-in"}
    count = 0
    for path, operations in schema["paths"].items():
        for method in operations:
            concrete = path.replace("{subject_id}", "1").replace("{image_id}", "1").replace("{job_id}", "x")
            concrete = concrete.replace("{username}", "analyst").replace("{role}", "analyst")
            response = web.client.request(method.upper(), concrete)
            if path in public:
                continue
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.headers["www-authenticate"] == "Bearer"
            count += 1
    assert count >= 20
    bad = web.client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not-a-real-token"})
    assert bad.status_code == 401 and "not signed in" in bad.json()["detail"]


# --- auth ------------------------------------------------------------------------------------------------------


def test_sign_in_me_sign_out(web: WebEnv) -> None:
    token = web.sign_in("reviewer")
    me = web.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json() == {"user_id": me.json()["user_id"], "username": "reviewer", "agency_id": web.agency_ids["AGA"],
                         "agency_code": "AGA", "roles": ["reviewer"]}  # fmt: skip
    out = web.client.post("/api/v1/auth/sign-out", headers={"Authorization": f"Bearer {token}"})
    assert out.status_code == 204
    again = web.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401


def test_sign_in_failures_and_rate_limit(web: WebEnv) -> None:
    wrong = web.client.post("/api/v1/auth/sign-in", json={"username": "auditor", "password": "nope-nope-nope"})
    assert wrong.status_code == 401
    assert wrong.json()["detail"].startswith("sign-in refused: wrong username, password or second factor")
    unknown = web.client.post("/api/v1/auth/sign-in", json={"username": "no-such-user", "password": "nope-nope-nope"})
    assert unknown.status_code == 401 and unknown.json()["detail"] == wrong.json()["detail"]  # no enumeration
    missing = web.client.post("/api/v1/auth/sign-in", json={"username": "auditor"})
    assert missing.status_code == 422 and "password" in missing.json()["detail"]
    # The per-(address, username) bucket holds 5 attempts: the next ones are refused before the password check.
    statuses = [
        web.client.post("/api/v1/auth/sign-in", json={"username": "nobody-here", "password": "x" * 12}).status_code
        for _ in range(7)
    ]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]
    limited = web.client.post("/api/v1/auth/sign-in", json={"username": "nobody-here", "password": PASSWORD})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    # Another username from the same address still works.
    other = web.client.post("/api/v1/auth/sign-in", json={"username": "auditor", "password": PASSWORD})
    assert other.status_code == 200
    # Every throttled attempt is in the audit log (the security service records it before refusing).
    with web.rt.session_factory() as session:
        throttled = session.query(AuditEntry).filter(AuditEntry.object_ref == "user:(throttled)").all()
    assert len(throttled) == 3
    assert all(e.action == "login" and e.outcome == "denied" and e.details["reason"] == "rate limited"
               and e.details["attempted_username"] == "nobody-here" for e in throttled)  # fmt: skip


# --- faces, gallery, search ------------------------------------------------------------------------------------


def test_detect_faces(web: WebEnv) -> None:
    response = web.client.post("/api/v1/faces/detect", headers=web.headers("analyst"),
                               files={"image": photo("AJ_Cook")})  # fmt: skip
    assert response.status_code == 200
    body = response.json()
    assert body["width"] == 250 and len(body["faces"]) >= 1
    face = body["faces"][0]
    assert face["number"] == 1 and len(face["landmarks"]) == 5 and 0 <= face["quality"]["overall"] <= 1
    assert face["found_by"] == "detector"  # the detection path (docs/detection.md)
    bad = web.client.post("/api/v1/faces/detect", headers=web.headers("analyst"),
                          files={"image": ("x.jpg", b"this is not an image", "image/jpeg")})  # fmt: skip
    assert bad.status_code == 422 and bad.json()["title"] == "Image refused"
    empty = web.client.post("/api/v1/faces/detect", headers=web.headers("analyst"),
                            files={"image": ("x.jpg", b"", "image/jpeg")})  # fmt: skip
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]


def test_a_small_file_with_huge_dimensions_is_decoded_reduced(web: WebEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """The decompression attack: a 143 KB PNG of 7000x7000 px (49 MP). The detector must receive a reduced
    picture (at most decode_reduce_pixels), while the answer still describes the original."""
    import struct
    import zlib

    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(b"\x00" + b"\x5a\x78\x96" * 7000) for _ in range(7000)) + comp.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 7000, 7000, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", idat) + chunk(b"IEND", b""))  # fmt: skip
    assert len(png) < 200_000
    engine = web.rt.face_engine
    seen: list[tuple[int, ...]] = []
    real_detect = engine.detect

    def spy(image: Any, **kwargs: Any) -> Any:  # observes what the real detector is given
        seen.append(tuple(image.shape))
        return real_detect(image, **kwargs)

    monkeypatch.setattr(engine, "detect", spy)
    response = web.client.post("/api/v1/faces/detect", headers=web.headers("analyst"),
                               files={"image": ("bomb.png", png, "image/png")})  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"], body["faces"]) == (7000, 7000, [])
    assert seen and all(h * w <= 24_000_000 for h, w, _ in seen), seen  # the default decode_reduce_pixels


def test_search_and_stored_result(web: WebEnv) -> None:
    response = web.client.post(
        "/api/v1/searches", headers=web.headers("analyst"), files={"probe": photo("Abdullah_Gul", 1)},
        data={**SEARCH_FORM, "top": "3"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["candidates"][0]["subject_number"] == "Abdullah_Gul"
    assert len(result["candidates"]) == 3 and "not identifications" in result["notice"]
    # The quick search went through casework: a request, the probe as evidence, a case search to adjudicate.
    assert result["occurrence_number"] == OPEN_CASE and result["request_opened"] and result["status"] == "adjudicating"
    marks = web.client.get(f"/api/v1/case-searches/{result['case_search_id']}/candidates",
                           headers=web.headers("analyst"))  # fmt: skip
    assert marks.status_code == 200 and [m["conclusion"] for m in marks.json()] == [None, None, None]
    stored = web.client.get(f"/api/v1/searches/{result['search_id']}", headers=web.headers("analyst"))
    assert stored.status_code == 200
    assert stored.json()["case_search_id"] == result["case_search_id"]
    assert [c["subject_id"] for c in stored.json()["candidates"]] == [c["subject_id"] for c in result["candidates"]]
    # Another agency's analyst cannot read it (404, not 403: its existence is not revealed).
    other = web.client.get(f"/api/v1/searches/{result['search_id']}", headers=web.headers("analyst-b"))
    assert other.status_code == 404
    assert other.json()["detail"] == web.client.get("/api/v1/searches/999999", headers=web.headers("analyst-b")).json()[
        "detail"
    ].replace("999999", str(result["search_id"]))
    # Bad input is a 422 naming the problem, never a 500.
    for data, files, needle in (
        ({**SEARCH_FORM, "top": "99"}, {"probe": photo("AJ_Cook")}, "top"),
        ({"case": OPEN_CASE, "offence": "ROB", "legal_basis": LEGAL_BASIS}, {"probe": photo("AJ_Cook")}, "reason"),
        (SEARCH_FORM, {"probe": ("p.png", b"\x89PNG\r\n\x1a\nbroken", "image/png")}, ""),
        ({**SEARCH_FORM, "face": "7"}, {"probe": photo("AJ_Cook")}, "face"),
        ({**SEARCH_FORM, "offence": "SHOP"}, {"probe": photo("AJ_Cook")}, "is for offence 'ROB'"),
    ):
        bad = web.client.post("/api/v1/searches", headers=web.headers("analyst"), files=files, data=data)
        assert bad.status_code == 422, bad.text
        assert needle in bad.json()["detail"]
    # No case, no search: an unknown occurrence number is refused (403) and nothing but the refusal is stored.
    with web.rt.session_factory() as session:
        before = session.query(AuditEntry).count()
    fake = web.client.post("/api/v1/searches", headers=web.headers("analyst"), files={"probe": photo("AJ_Cook")},
                           data={**SEARCH_FORM, "case": "FAKE-999"})  # fmt: skip
    assert fake.status_code == 403 and "'FAKE-999' is not a case of AGA" in fake.json()["detail"]
    with web.rt.session_factory() as session:
        added = session.query(AuditEntry).order_by(AuditEntry.seq).all()[before:]
    assert [(e.action, e.outcome, e.case_ref) for e in added] == [("search", "denied", "FAKE-999")]


def test_agency_scope_of_gallery(web: WebEnv) -> None:
    # AGB's analyst sees none of AGA's subjects (no sharing agreement); their ids answer like missing ones.
    page = web.client.get("/api/v1/gallery/subjects", headers=web.headers("analyst-b")).json()
    assert page["total"] == 0
    image = web.client.get(f"/api/v1/gallery/images/{web.image_ids['AJ_Cook']}", headers=web.headers("analyst-b"))
    assert image.status_code == 404 and image.json()["detail"] == f"no image {web.image_ids['AJ_Cook']}"
    subject = web.client.get(f"/api/v1/gallery/subjects/{web.subject_ids['AJ_Cook']}",
                             headers=web.headers("analyst-b"))  # fmt: skip
    assert subject.status_code == 404
    # AGA's case number is not a case of AGB; AGB's own case finds no gallery it may search.
    search = web.client.post("/api/v1/searches", headers=web.headers("analyst-b"), files={"probe": photo("AJ_Cook")},
                             data=SEARCH_FORM)  # fmt: skip
    assert search.status_code == 403 and "not a case of AGB" in search.json()["detail"]
    own = web.client.post("/api/v1/searches", headers=web.headers("analyst-b"), files={"probe": photo("AJ_Cook")},
                          data={**SEARCH_FORM, "case": OPEN_CASE_B})  # fmt: skip
    assert own.status_code == 403 and "no gallery may be searched" in own.json()["detail"]


def test_gallery_images_are_audited_and_never_cached(web: WebEnv) -> None:
    image_id = web.image_ids["Ai_Sugiyama"]
    with web.rt.session_factory() as session:
        before = session.query(AuditEntry).filter(AuditEntry.action == "view_gallery_image",
                                                  AuditEntry.object_ref == f"image:{image_id}").count()  # fmt: skip
    original = web.client.get(f"/api/v1/gallery/images/{image_id}?case=OCC-9", headers=web.headers("reviewer"))
    assert original.status_code == 200
    assert original.content == PEOPLE["Ai_Sugiyama"][0].read_bytes(), "decrypted original, byte for byte"
    assert original.headers["cache-control"] == "no-store" and original.headers["content-type"] == "image/jpeg"
    aligned = web.client.get(f"/api/v1/gallery/images/{image_id}?view=aligned", headers=web.headers("reviewer"))
    assert aligned.status_code == 200 and aligned.content[:2] == b"\xff\xd8"
    with web.rt.session_factory() as session:
        # Ordered by sequence number: PostgreSQL returns rows in no particular order without it.
        entries = (session.query(AuditEntry).filter(AuditEntry.action == "view_gallery_image",
                                                    AuditEntry.object_ref == f"image:{image_id}")
                   .order_by(AuditEntry.seq).all())  # fmt: skip
    assert len(entries) == before + 2
    assert entries[-2].case_ref == "OCC-9" and entries[-2].username == "reviewer"
    marks = web.client.get(f"/api/v1/gallery/images/{image_id}/landmarks", headers=web.headers("reviewer")).json()
    assert len(marks["landmarks"]) == 5
    missing = web.client.get("/api/v1/gallery/images/999999", headers=web.headers("reviewer"))
    assert missing.status_code == 404


def test_enrol_record(web: WebEnv) -> None:
    form = {"subject_number": "API-1", "booking_number": "API-B1", "booking_date": "2022-02-03",
            "legal_authority": "PACE s.64A", "sex": "F"}  # fmt: skip
    files = [("photos", photo("Adam_Sandler", 1)), ("photos", photo("Adam_Sandler", 2))]
    response = web.client.post("/api/v1/gallery/records", headers=web.headers("records"), data=form, files=files)
    assert response.status_code == 201, response.text
    body = response.json()
    assert [p["status"] for p in body["photos"]] == ["enrolled", "enrolled"]
    detail = web.client.get(f"/api/v1/gallery/subjects/{body['subject_id']}", headers=web.headers("records")).json()
    assert detail["subject_number"] == "API-1" and len(detail["encounters"][0]["image_ids"]) == 2
    conflict = web.client.post("/api/v1/gallery/records", headers=web.headers("records"),
                               data={**form, "booking_date": "2022-02-04"},
                               files=[("photos", photo("Adam_Sandler", 3))])  # fmt: skip
    assert conflict.status_code == 409 and "duplicate booking number" in conflict.json()["detail"]
    bad_date = web.client.post("/api/v1/gallery/records", headers=web.headers("records"),
                               data={**form, "booking_date": "03/02/2022"}, files=[("photos", photo("AJ_Cook"))])
    assert bad_date.status_code == 422 and "YYYY-MM-DD" in bad_date.json()["detail"]
    denied = web.client.post("/api/v1/gallery/records", headers=web.headers("analyst"), data=form, files=files)
    assert denied.status_code == 403


def _wait_job(web: WebEnv, user: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        status = web.client.get(f"/api/v1/jobs/{job_id}", headers=web.headers(user)).json()
        if status["status"] in ("done", "failed"):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


def test_bulk_enrolment_job(web: WebEnv) -> None:
    names = ["Abdullah_Gul", "Aaron_Peirsol"]
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(["agency", "subject", "booking", "date", "authority", "photo"])
    for i, name in enumerate(names):
        writer.writerow(["AGA", f"JOB-{i}", f"JOB-B{i}", "2021-01-01", "PACE", f"photos/{name}.jpg"])
    writer.writerow(["AGA", "JOB-X", "JOB-BX", "2021-01-01", "PACE", "photos/none.jpg"])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for name in names:
            zf.write(PEOPLE[name][2 if name == "Abdullah_Gul" else 1], f"photos/{name}.jpg")
    files = {"manifest": ("m.csv", manifest.getvalue().encode(), "text/csv"),
             "photos": ("p.zip", archive.getvalue(), "application/zip")}  # fmt: skip
    started = web.client.post("/api/v1/jobs/bulk-enrolment", headers=web.headers("records"), files=files)
    assert started.status_code == 202, started.text
    job = _wait_job(web, "records", started.json()["job_id"])
    assert job["status"] == "done" and job["report"]["enrolled"] == 2 and job["report"]["errors"] == 1
    assert job["progress"] == 1.0 and job["total"] == 3
    errors = web.client.get(f"/api/v1/jobs/{job['job_id']}/errors.csv", headers=web.headers("records"))
    assert errors.status_code == 200 and "photos/none.jpg" in errors.text
    listed = web.client.get("/api/v1/jobs", headers=web.headers("records")).json()
    assert job["job_id"] in [j["job_id"] for j in listed]
    # Another agency cannot see the job.
    other = web.client.get(f"/api/v1/jobs/{job['job_id']}", headers=web.headers("records-b"))
    assert other.status_code == 404


@pytest.mark.parametrize(
    ("member", "needle"),
    [("../evil.jpg", "unsafe path"), ("/abs.jpg", "unsafe path")],
)
def test_bulk_upload_refuses_unsafe_zips(web: WebEnv, member: str, needle: str) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(member, b"x")
    files = {"manifest": ("m.csv", b"agency,subject,booking,date,authority,photo\n", "text/csv"),
             "photos": ("p.zip", archive.getvalue(), "application/zip")}  # fmt: skip
    response = web.client.post("/api/v1/jobs/bulk-enrolment", headers=web.headers("records"), files=files)
    assert response.status_code == 422 and needle in response.json()["detail"]


def test_bulk_server_path_confined_to_imports(web: WebEnv) -> None:
    response = web.client.post("/api/v1/jobs/bulk-enrolment", headers=web.headers("records"),
                               data={"server_path": "../../../etc/passwd"})  # fmt: skip
    assert response.status_code == 422 and "import folder" in response.json()["detail"]
    neither = web.client.post("/api/v1/jobs/bulk-enrolment", headers=web.headers("records"), data={})
    assert neither.status_code == 422


def _bulk_upload(web: WebEnv, photos: list[str], zip_members: dict[str, bytes] | None = None) -> dict[str, Any]:
    """Upload a manifest naming ``photos`` (one row each, subjects PATH-0, PATH-1, ...) and wait for the job."""
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(["agency", "subject", "booking", "date", "authority", "photo"])
    for i, name in enumerate(photos):
        writer.writerow(["AGA", f"PATH-{i}", f"PATH-B{i}", "2021-01-01", "PACE", name])
    files: dict[str, Any] = {"manifest": ("m.csv", manifest.getvalue().encode(), "text/csv")}
    if zip_members is not None:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            for member, data in zip_members.items():
                zf.writestr(member, data)
        files["photos"] = ("p.zip", archive.getvalue(), "application/zip")
    started = web.client.post("/api/v1/jobs/bulk-enrolment", headers=web.headers("records"), files=files)
    assert started.status_code == 202, started.text
    return _wait_job(web, "records", started.json()["job_id"])


def _error_reasons(web: WebEnv, job: dict[str, Any]) -> dict[str, str]:
    report = web.client.get(f"/api/v1/jobs/{job['job_id']}/errors.csv", headers=web.headers("records"))
    assert report.status_code == 200
    return {row["photo"].lstrip("'"): row["reason"] for row in csv.DictReader(io.StringIO(report.text))}


def test_bulk_manifest_cannot_read_server_files(web: WebEnv, tmp_path: Path) -> None:
    """A manifest naming server files (absolute, climbing out, NUL, device) enrols nothing and reads nothing."""
    data_dir = web.settings.data_dir
    server_photo = PEOPLE["Alec_Baldwin"][1]  # a real face image the server process can read
    attacks = [
        str(server_photo),  # absolute path to an image outside the upload
        "../" * 12 + str(server_photo).lstrip("/"),  # climbing out with ..
        "../../faceleads.db",  # the database, next to the jobs folder
        "photos/../../../master.key",
        "ok.jpg\x00.png",
        "../" * 12 + "dev/zero",  # a device: endless
    ]
    good = PEOPLE["Alec_Baldwin"][0].read_bytes()
    job = _bulk_upload(web, [*attacks, "photos/ok.jpg"], {"photos/ok.jpg": good})
    assert job["status"] == "done" and job["report"]["enrolled"] == 1, job
    assert job["report"]["errors"] == len(attacks)
    reasons = _error_reasons(web, job)
    for name in attacks:
        assert "cannot be used" in reasons.get(name, reasons.get(name.replace("\x00", ""), "")), (name, reasons)
    # No server path disclosed: the job, and each reason apart from the photo path the uploader typed.
    texts = [str(job)] + [reason.replace(repr(photo), "<photo>") for photo, reason in reasons.items()]
    for text in texts:
        assert str(data_dir) not in text and str(server_photo.parent) not in text, text


def test_bulk_probing_master_key_and_missing_files_look_the_same(web: WebEnv) -> None:
    """The probing attack: the master key (exists, text), a missing file and a file outside the upload must get
    the same answer, so the error report cannot tell which server files exist or what they hold."""
    key = web.settings.effective_master_key_file
    assert key.is_file()
    probes = {
        "master key": "../../" + key.name,
        "missing": "../../no-such-file.key",
        "missing inside": "photos/absent.jpg",
        "text inside": "photos/notes.txt",
        "absolute key": str(key),
    }
    job = _bulk_upload(web, list(probes.values()), {"photos/notes.txt": b"just some text\n"})
    assert job["report"]["errors"] == len(probes) and job["report"]["enrolled"] == 0
    reasons = _error_reasons(web, job)
    neutral = {what: reasons[photo].replace(repr(photo), "<photo>") for what, photo in probes.items()}
    assert len(set(neutral.values())) == 1, neutral


def test_bulk_server_side_job_confined_to_the_import_folder(web: WebEnv) -> None:
    """A manifest in <data_dir>/imports: photos inside it enrol, a symbolic link pointing out is refused."""
    imports = web.settings.data_dir / "imports" / "batch-7"
    imports.mkdir(parents=True, exist_ok=True)
    (imports / "inside.jpg").write_bytes(PEOPLE["Alvaro_Uribe"][0].read_bytes())
    link = imports / "link.jpg"
    link.unlink(missing_ok=True)
    link.symlink_to(PEOPLE["Alvaro_Uribe"][1])  # an image outside the import folder
    keylink = imports / "key.jpg"
    keylink.unlink(missing_ok=True)
    keylink.symlink_to(web.settings.effective_master_key_file)
    fifo = imports / "pipe.jpg"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)  # would block a reader forever
    manifest = imports / "m.csv"
    manifest.write_text("agency,subject,booking,date,authority,photo\n"
                        "AGA,IMP-1,IMP-B1,2021-01-01,PACE,inside.jpg\n"
                        "AGA,IMP-2,IMP-B2,2021-01-01,PACE,link.jpg\n"
                        "AGA,IMP-3,IMP-B3,2021-01-01,PACE,key.jpg\n"
                        "AGA,IMP-4,IMP-B4,2021-01-01,PACE,../../master.key\n"
                        "AGA,IMP-5,IMP-B5,2021-01-01,PACE,pipe.jpg\n", encoding="utf-8")  # fmt: skip
    started = web.client.post("/api/v1/jobs/bulk-enrolment", headers=web.headers("records"),
                              data={"server_path": "batch-7/m.csv"})  # fmt: skip
    assert started.status_code == 202, started.text
    job = _wait_job(web, "records", started.json()["job_id"])
    assert job["report"]["enrolled"] == 1 and job["report"]["errors"] == 4, job
    reasons = _error_reasons(web, job)
    assert {photo for photo, reason in reasons.items() if "cannot be used" in reason} == {
        "link.jpg", "key.jpg", "../../master.key", "pipe.jpg"}  # fmt: skip


def test_bulk_upload_refuses_links_and_special_files_in_the_zip(web: WebEnv) -> None:
    for mode, needle in ((0o120777, "symbolic link"), (0o020644, "not a regular file")):
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            info = zipfile.ZipInfo("photos/x.jpg")
            info.external_attr = mode << 16
            zf.writestr(info, b"/etc/passwd")
        files = {"manifest": ("m.csv", b"agency,subject,booking,date,authority,photo\n", "text/csv"),
                 "photos": ("p.zip", archive.getvalue(), "application/zip")}  # fmt: skip
        response = web.client.post("/api/v1/jobs/bulk-enrolment", headers=web.headers("records"), files=files)
        assert response.status_code == 422 and needle in response.json()["detail"]


# --- audit and admin -------------------------------------------------------------------------------------------


def test_audit_entries_verify_stats(web: WebEnv) -> None:
    page = web.client.get("/api/v1/audit/entries?action=login&limit=5", headers=web.headers("auditor")).json()
    assert 1 <= len(page["entries"]) <= 5 and page["total"] >= len(page["entries"])
    assert all(e["action"] == "login" and e["agency_code"] == "AGA" for e in page["entries"])
    seqs = [e["seq"] for e in page["entries"]]
    assert seqs == sorted(seqs, reverse=True), "newest first"
    denied = web.client.get("/api/v1/audit/entries?outcome=denied", headers=web.headers("auditor")).json()
    assert all(e["outcome"] == "denied" for e in denied["entries"])
    bad = web.client.get("/api/v1/audit/entries?since=yesterday", headers=web.headers("auditor"))
    assert bad.status_code == 422 and "since" in bad.json()["detail"]
    verified = web.client.post("/api/v1/audit/verify", headers=web.headers("auditor")).json()
    assert verified["ok"] is True and verified["entries"] >= 10
    stats = web.client.get("/api/v1/audit/stats", headers=web.headers("auditor")).json()
    assert any(row["searches"] >= 1 for row in stats)
    # The auditor's own reads of the log are in the log.
    with web.rt.session_factory() as session:
        reads = session.query(AuditEntry).filter(AuditEntry.username == "auditor").all()
    actions = [e.action for e in reads]
    assert actions.count("audit_read") >= 3 and "audit_verify" in actions and "view_statistics" in actions
    assert any(e.action == "audit_read" and e.details["filter_action"] == "login" and e.details["returned"] >= 1
               for e in reads)  # fmt: skip


def test_admin_user_lifecycle(web: WebEnv) -> None:
    """Through the API: biometric roles, certifications and credential resets of biometric users wait (202) for a
    second person's approval (docs/regimes.md); everything else applies at once."""
    admin, training, supervisor = web.headers("admin"), web.headers("training"), web.headers("supervisor")
    created = web.client.post("/api/v1/admin/users", headers=admin, json={
        "username": "new.analyst", "password": "a-Long-pa55word", "roles": ["analyst"]})  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json()["pending"] and created.json()["approvals"][0]["role"] == "analyst"
    assert web.client.post("/api/v1/admin/users/new.analyst/certifications", headers=admin,
                           json={"expires_on": "2099-01-01"}).status_code == 403  # training officers certify
    certified = web.client.post("/api/v1/admin/users/new.analyst/certifications", headers=training,
                                json={"expires_on": "2099-01-01"})  # fmt: skip
    assert certified.status_code == 202 and certified.json()["pending"]
    granted = web.client.post("/api/v1/admin/users/new.analyst/roles", headers=admin, json={"role": "reviewer"})
    assert granted.status_code == 202
    listed = {u["username"]: u for u in web.client.get("/api/v1/admin/users", headers=admin).json()}
    assert listed["new.analyst"]["roles"] == [] and listed["new.analyst"]["effective_roles"] == []
    pending = web.client.get("/api/v1/approvals", headers=supervisor).json()
    mine = [a for a in pending if a["target"] == "new.analyst"]
    assert len(mine) == 3
    assert web.client.post(f"/api/v1/approvals/{mine[0]['id']}/approve", headers=admin,
                           json={}).status_code == 403  # the requester (and an administrator) cannot approve
    for request in mine:
        done = web.client.post(f"/api/v1/approvals/{request['id']}/approve", headers=supervisor, json={"note": "ok"})
        assert done.status_code == 200 and done.json()["status"] == "approved", done.text
    listed = {u["username"]: u for u in web.client.get("/api/v1/admin/users", headers=admin).json()}
    assert listed["new.analyst"]["effective_roles"] == ["analyst", "reviewer"]
    assert web.client.delete("/api/v1/admin/users/new.analyst/roles/reviewer", headers=admin).json()["changed"]
    reset = web.client.post("/api/v1/admin/users/new.analyst/password", headers=admin,
                            json={"password": "another-Pa55word"})  # fmt: skip
    assert reset.status_code == 202 and "waiting" in reset.json()["message"]
    rejected = web.client.post(f"/api/v1/approvals/{reset.json()['approvals'][0]['id']}/reject", headers=supervisor,
                               json={"note": "not requested by the user"})  # fmt: skip
    assert rejected.json()["status"] == "rejected"
    assert web.client.post("/api/v1/admin/users/new.analyst/active", headers=admin,
                           json={"active": False}).status_code == 204  # fmt: skip
    assert web.client.post("/api/v1/admin/users/new.analyst/totp-reset", headers=admin).status_code == 202
    assert web.client.delete("/api/v1/admin/users/new.analyst/certifications",
                             headers=training).json()["revoked"] == 1  # fmt: skip
    # Separation of duties: nobody changes their own roles.
    own = web.client.post("/api/v1/admin/users/admin/roles", headers=admin, json={"role": "analyst"})
    assert own.status_code == 403
    weak = web.client.post("/api/v1/admin/users", headers=admin, json={"username": "weak", "password": "short"})
    assert weak.status_code == 422 and "at least" in weak.json()["detail"]
    agency = web.client.post("/api/v1/admin/agencies", headers=admin, json={
        "code": "AGC", "name": "C police", "admin_username": "agc-chief", "admin_password": "a-Long-pa55word"})
    assert agency.status_code == 403  # agencies are created by a system operator
    operator = web.headers("operator")
    agency = web.client.post("/api/v1/admin/agencies", headers=operator, json={
        "code": "AGC", "name": "C police", "admin_username": "agc-chief", "admin_password": "a-Long-pa55word"})
    assert agency.status_code == 201 and agency.json()["first_admin"] == "agc-chief"
    assert "AGC" in [a["code"] for a in web.client.get("/api/v1/admin/agencies", headers=operator).json()]
    unknown = web.client.post("/api/v1/admin/users/ghost/unlock", headers=admin)
    assert unknown.status_code == 404


def test_openapi_schema(web: WebEnv) -> None:
    schema = web.client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for expected in ("/api/v1/auth/sign-in", "/api/v1/searches", "/api/v1/gallery/records",
                     "/api/v1/jobs/bulk-enrolment", "/api/v1/audit/verify", "/api/v1/admin/users"):  # fmt: skip
        assert expected in paths
    assert not any(p.startswith("/probes") or p == "/" for p in paths), "pages are not part of the API schema"


def test_sign_in_with_totp_second_factor(web: WebEnv) -> None:
    import pyotp

    from faceleads.security import users
    from faceleads.security.auth import actor_for_user
    from faceleads.security.models import User
    from faceleads.storage.crypto import load_master_key

    key = load_master_key(web.settings)
    with web.rt.session_factory() as session:
        actor = actor_for_user(session, session.query(User).filter(User.username == "analyst2").one())
    enrolment = users.begin_totp_enrolment(web.rt.session_factory, actor, key)
    codes = users.confirm_totp_enrolment(web.rt.session_factory, actor, pyotp.TOTP(enrolment.secret).now(), key)
    without = web.client.post("/api/v1/auth/sign-in", json={"username": "analyst2", "password": PASSWORD})
    assert without.status_code == 401
    recovery = web.client.post("/api/v1/auth/sign-in", json={"username": "analyst2", "password": PASSWORD,
                                                              "second_factor": codes[0]})  # fmt: skip
    assert recovery.status_code == 200 and recovery.json()["second_factor"] == "recovery"
    reused = web.client.post("/api/v1/auth/sign-in", json={"username": "analyst2", "password": PASSWORD,
                                                            "second_factor": codes[0]})  # fmt: skip
    assert reused.status_code == 401, "a recovery code works once"


def test_ids_past_the_database_range_and_nul_text_are_422(web: WebEnv) -> None:
    """PostgreSQL ids are 32-bit and its text cannot hold NUL: both are input errors, on every backend."""
    big = web.client.get("/api/v1/probes/2147483648", headers=web.headers("analyst"))
    assert big.status_code == 422
    search = web.client.post("/api/v1/searches", headers=web.headers("analyst"), data={
        "case": "OCC-1", "offence": "ROB", "reason": "x", "request_id": str(2**31)},
        files={"photo": ("p.jpg", b"not read", "image/jpeg")})  # fmt: skip
    assert search.status_code == 422 and "request_id" in search.text
    nul = web.client.post("/api/v1/cases", headers=web.headers("investigator"), json={
        "occurrence_number": "NUL-1", "offence": "ROB", "justification": "bad\x00byte"})  # fmt: skip
    # Refused by the service's text check (naming U+0000) before the database layer's NUL guard would.
    assert nul.status_code == 422 and "U+0000" in nul.json()["detail"]
