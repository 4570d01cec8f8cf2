"""Browser tests: Playwright driving Debian's chromium against the real app served by uvicorn on a loopback port.

The flow: an analyst signs in, opens a case and quick-searches a multi-face probe (the model wheel's players.jpg,
face 2) on it, lands on the case's candidate grid, opens the comparison view and uses its tools; a records officer
enrols a record and runs a bulk job; an auditor verifies the audit chain; an administrator manages users.
Screenshots of every page go to artifacts/screenshots/.

Skipped when /usr/bin/chromium or the playwright package is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import csv
import io
import re
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from faceleads.config import Settings
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.vision.models import default_model_dir
from faceleads.web.app import create_app
from faceleads.web.demo import ensure_admin, load_demo
from tests.conftest import REPO_ROOT
from tests.lawful import list_authorities
from tests.web.conftest import PEOPLE

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO_ROOT / "artifacts" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_PASSWORD = "Correct-h0rse-battery"

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (.ci/run installs it)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    rt: GalleryRuntime
    passwords: dict[str, str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine: Any) -> Iterator[Server]:
    """The app with the demo users and gallery, served by uvicorn in a background thread."""
    import uvicorn

    settings = Settings(data_dir=tmp_path_factory.mktemp("browser") / "data")
    rt = GalleryRuntime(settings, face_engine=engine)
    ensure_admin(rt, ADMIN_PASSWORD)
    report = load_demo(rt)
    list_authorities(rt, "DEV")  # the authorities the test records are held under (tests/lawful.py)
    passwords = {"admin": ADMIN_PASSWORD, **report.passwords}
    port = free_port()
    config = uvicorn.Config(create_app(settings, runtime=rt), host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield Server(f"http://127.0.0.1:{port}", rt, passwords)
    uv.should_exit = True
    thread.join(10)
    rt.close()


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield instance
        instance.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_images(page: Any, timeout: float = 30.0) -> None:
    """Wait until every image on the page has loaded (polling: the page's CSP forbids Playwright's eval-based
    wait_for_function, which is itself a check that the policy is in force)."""
    deadline = time.monotonic() + timeout
    script = "() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    while not page.evaluate(script):
        assert time.monotonic() < deadline, "images did not load"
        time.sleep(0.1)


def sign_in(browser: Any, server: Server, username: str) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    page.goto(server.url + "/")
    assert "/sign-in" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", server.passwords[username])
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_url(server.url + "/")
    return page


def test_analyst_probe_search_compare(browser: Any, server: Server) -> None:
    page = browser.new_page()
    page.goto(server.url + "/sign-in")
    shot(page, "01-sign-in")
    page.fill("input[name=username]", "analyst")
    page.fill("input[name=password]", "wrong-password-1")
    page.click("#sign-in-form button[type=submit]")
    assert page.locator("p.error").is_visible()
    page.close()

    page = sign_in(browser, server, "analyst")
    assert page.locator("text=Your queue").is_visible()
    shot(page, "02-home-analyst")
    # Session cookie: HttpOnly and SameSite=Strict (Secure is relaxed only for dev http on loopback).
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["fl_session"]["httpOnly"] and cookies["fl_session"]["sameSite"] == "Strict"

    # Every search runs on a registered, open case: the analyst opens one, then uses the quick search form.
    page.goto(server.url + "/cases")
    page.fill("#new-case input[name=occurrence_number]", "OCC-2026-0042")
    page.select_option("#new-case select[name=offence]", "ROB")
    page.fill("#new-case textarea[name=justification]", "Street robbery captured on CCTV")
    page.click("#new-case button[type=submit]")
    page.wait_for_url(re.compile(r".*/cases/\d+$"))
    page.goto(server.url + "/search")
    page.select_option("#quick-search select[name=case]", "OCC-2026-0042")
    page.fill("#quick-search textarea[name=reason]", "street robbery captured on CCTV")
    page.fill("#quick-search input[name=legal_basis]", "Shop CCTV seized under a production order")
    page.set_input_files("#quick-search input[name=probe]", str(default_model_dir() / "players.jpg"))
    page.fill("#quick-search input[name=face]", "2")
    shot(page, "03-quick-search")
    page.click("#quick-search button[type=submit]")
    page.wait_for_url(re.compile(r".*/case-searches/\d+$"))
    cards = page.locator("li.candidate")
    assert cards.count() >= 2
    top_score = float(page.locator("li.candidate").first.get_attribute("data-score") or 0)
    assert top_score > 0.9, "face 2 of players.jpg is enrolled in the demo gallery"
    wait_images(page)
    shot(page, "04-results")
    # The score floor filter hides candidates below it.
    page.locator("#score-floor").fill("0.5")
    assert page.locator("li.candidate.hidden").count() == cards.count() - 1

    page.locator("li.candidate a").first.click()
    page.wait_for_url(re.compile(r".*/compare/1$"))
    wait_images(page)
    assert page.locator("#probe-crop").is_visible() and page.locator("#cand-crop").is_visible()
    page.click("#toggle-landmarks")
    assert page.locator(".compare.show-landmarks").count() == 1
    page.click("#zoom-in")
    transforms = page.eval_on_selector_all(".layer", "els => els.map(e => e.style.transform)")
    assert len(set(transforms)) == 1 and "scale(1.25)" in transforms[0], "zoom is synchronised"
    page.locator("#blend").fill("50")
    assert page.locator("#cand-crop").get_attribute("style") == "opacity: 0.5;"
    shot(page, "05-compare")
    assert not page.errors, page.errors

    page.goto(server.url + "/gallery")
    assert page.locator("text=DEMO-0001").is_visible()
    shot(page, "06-gallery")
    page.context.close()


def test_case_flow_adjudication_verification_report(browser: Any, server: Server) -> None:
    """Investigator opens a case with evidence; analyst edits, picks a face, searches, compares and adjudicates; a
    second analyst verifies blind; the analyst releases; the investigator downloads the lead report."""
    # The investigator opens the case, requests facial recognition and submits the multi-face evidence photo.
    page = sign_in(browser, server, "investigator")
    page.goto(server.url + "/cases")
    page.fill("#new-case input[name=occurrence_number]", "OCC-2026-0777")
    page.select_option("#new-case select[name=offence]", "ROB")
    page.fill("#new-case textarea[name=justification]", "Armed robbery at a petrol station; suspects on CCTV")
    page.click("#new-case button[type=submit]")
    page.wait_for_url(re.compile(r".*/cases/\d+$"))
    case_url = page.url
    page.fill("#new-request textarea[name=justification]", "Identify the robber seen on camera 3")
    page.click("#new-request button[type=submit]")
    assert "ready" in page.locator("#requests").inner_text()
    page.set_input_files("#new-probe input[name=photo]", str(default_model_dir() / "players.jpg"))
    page.fill("#new-probe input[name=source]", "CCTV camera 3")
    page.fill("#new-probe input[name=obtained_by]", "PC 1234 Smith")
    page.fill("#new-probe input[name=legal_basis]", "Seized under PACE s.19")
    page.fill("#new-probe input[name=obtained_at]", "2026-03-01T10:30")
    page.click("#new-probe button[type=submit]")
    page.wait_for_url(case_url)
    assert "probe" in page.locator("#probes").inner_text()
    shot(page, "12-case-investigator")
    page.locator("#probes a").first.click()
    wait_images(page)
    assert page.locator("#probe-img").is_visible() and page.locator("#edit-form").count() == 0
    page.goto(case_url)
    page.context.close()

    # The analyst prepares the probe: live edit preview, saves the edit, picks face 2, searches.
    page = sign_in(browser, server, "analyst")
    assert page.locator("#queue-cases", has_text="OCC-2026-0777").is_visible()
    page.goto(case_url)
    page.locator("#probes a").first.click()
    page.wait_for_url(re.compile(r".*/case-probes/\d+$"))
    probe_url = page.url
    wait_images(page)
    page.locator("#edit-form input[name=brightness]").fill("20")
    deadline = time.monotonic() + 10
    while "/preview?" not in (page.locator("#probe-img").get_attribute("src") or ""):
        assert time.monotonic() < deadline, "live preview did not start"
        time.sleep(0.1)
    wait_images(page)
    page.click("#edit-form button[type=submit]")
    page.wait_for_url(probe_url)
    assert "brightness(amount=20)" in page.locator("p.muted").first.inner_text()
    page.locator('#probe-boxes g.face[data-face="2"] rect').click(force=True)
    assert page.locator('#face-form input[name=face][value="2"]').is_checked()
    page.click("#face-form button[type=submit]")
    page.wait_for_url(probe_url)
    assert page.locator("#search-form").is_visible()
    wait_images(page)
    shot(page, "13-case-probe")
    page.fill("#search-form input[name=top]", "3")
    page.click("#search-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/case-searches/\d+$"))
    results_url = page.url
    assert page.locator("li.candidate").count() == 3
    assert float(page.locator("li.candidate").first.get_attribute("data-score") or 0) > 0.9
    assert page.locator("#submit-form button").is_disabled()
    wait_images(page)
    shot(page, "14-case-results")

    # Adjudicate every candidate from the comparison view.
    page.locator("li.candidate a").first.click()
    page.wait_for_url(re.compile(r".*/compare/1$"))
    wait_images(page)
    page.click("#toggle-landmarks")
    page.click("#zoom-in")
    page.select_option("select[name=feature_eyes]", "similar")
    page.select_option("select[name=feature_nose]", "similar")
    page.check("input[name=conclusion][value=possible_lead]")
    page.fill("textarea[name=notes]", "SECRET-FIRST-ANALYST-NOTE: same eyebrows and nose")
    shot(page, "15-case-compare")
    assert not page.errors, page.errors
    page.click("#conclude")
    page.wait_for_url(re.compile(r".*/compare/2$"))
    for _ in range(2):
        page.check("input[name=conclusion][value=excluded]")
        page.fill("textarea[name=notes]", "different face shape")
        page.click("#conclude")
        page.wait_for_load_state()
    page.wait_for_url(results_url)
    page.click("#submit-form button")
    page.wait_for_url(results_url)
    assert "awaiting_verification" in page.locator("#search-leads").inner_text()
    page.context.close()

    # A second analyst verifies blind: the first analyst's conclusion and notes are nowhere on the page.
    page = sign_in(browser, server, "reviewer")
    page.locator("#queue-verify a").first.click()
    page.wait_for_url(re.compile(r".*/leads/\d+/verify$"))
    wait_images(page)
    body = page.content()
    assert "SECRET-FIRST-ANALYST-NOTE" not in body and "possible_lead" not in body
    shot(page, "16-verify-blind")
    page.check("#verify-form input[name=result][value=agree]")
    page.fill("#verify-form textarea[name=notes]", "independent comparison agrees")
    page.click("#verify-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/verification.*"))
    assert "Nothing to verify" in page.locator("#verify-queue").inner_text()
    page.context.close()

    # The analyst releases the verified lead to the investigator.
    page = sign_in(browser, server, "analyst")
    assert page.locator("#queue-release").is_visible()
    page.goto(case_url)
    page.click("#leads button.release")
    page.wait_for_url(case_url)
    assert "released" in page.locator("#leads").inner_text()
    page.context.close()

    # The investigator downloads the lead report.
    page = sign_in(browser, server, "investigator")
    shot(page, "17-home-investigator")
    with page.expect_download() as download:
        page.locator("#queue-released a.report").first.click()
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    from pypdf import PdfReader

    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "OCC-2026-0777" in text and "not an identification" in text.lower().replace("\n", " ")
    page.context.close()


def test_records_officer_enrols(browser: Any, server: Server) -> None:
    page = sign_in(browser, server, "records")
    page.goto(server.url + "/enrol")
    photo = PEOPLE["Abdullah_Gul"][0]
    page.fill("input[name=subject_number]", "WEB-0001")
    page.fill("input[name=booking_number]", "WEB-B0001")
    page.fill("input[name=booking_date]", "2021-03-04")
    page.fill("input[name=legal_authority]", "PACE 1984 s.64A")
    page.set_input_files("#enrol-form input[name=photos]", str(photo))
    page.click("#enrol-form button[type=submit]")
    assert page.locator("#enrol-result").is_visible()
    assert "enrolled" in page.locator("#enrol-result").inner_text()
    shot(page, "07-enrol")

    # Bulk: two good rows and one missing photo, from a manifest + zip.
    people = ["AJ_Cook", "Aaron_Peirsol"]
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(["agency", "subject", "booking", "date", "authority", "photo"])
    for i, name in enumerate(people):
        writer.writerow(["DEV", f"BULK-{i}", f"BULK-B{i}", "2020-02-02", "PACE", f"{name}.jpg"])
    writer.writerow(["DEV", "BULK-X", "BULK-BX", "2020-02-02", "PACE", "missing.jpg"])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for name in people:
            zf.write(PEOPLE[name][0], f"{name}.jpg")
    page.set_input_files("#bulk-form input[name=manifest]", files=[
        {"name": "manifest.csv", "mimeType": "text/csv", "buffer": manifest.getvalue().encode()}])  # fmt: skip
    page.set_input_files("#bulk-form input[name=photos]", files=[
        {"name": "photos.zip", "mimeType": "application/zip", "buffer": archive.getvalue()}])  # fmt: skip
    page.click("#bulk-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/enrol/jobs/[0-9a-f]+$"))
    sync_api.expect(page.locator("#job-status")).to_have_text("done", timeout=60_000)
    assert "enrolled 2" in page.locator("#job-report").inner_text()
    assert page.locator("#job-errors-link").is_visible()
    with page.expect_download() as download:
        page.click("#job-errors-link")
    report = Path(download.value.path()).read_text()
    assert "missing.jpg" in report
    shot(page, "08-bulk-job")
    page.context.close()


def test_auditor_and_admin_pages(browser: Any, server: Server) -> None:
    page = sign_in(browser, server, "auditor")
    page.goto(server.url + "/audit?action=login")
    assert page.locator("table.audit tbody tr").count() >= 1
    page.click("#verify-button")
    assert "Chain intact" in page.locator("#verify-result").inner_text()
    shot(page, "09-audit")
    page.goto(server.url + "/statistics")
    assert page.locator("svg.chart").count() == 3
    shot(page, "10-statistics")
    # The auditor sees no biometric page.
    response = page.goto(server.url + "/gallery")
    assert response is not None and response.status == 403
    page.context.close()

    page = sign_in(browser, server, "admin")
    page.goto(server.url + "/admin")
    page.fill("#new-user input[name=username]", "newanalyst")
    page.fill("#new-user input[name=password]", "a-Long-pa55word")
    page.check('#new-user input[name=roles][value="analyst"]')
    page.click("#new-user button[type=submit]")
    assert "user newanalyst created" in page.locator("p.ok").inner_text()
    assert page.locator("td", has_text="newanalyst").count() == 1
    shot(page, "11-admin")
    page.context.close()
