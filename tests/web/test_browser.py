"""Browser tests: Playwright driving Debian's chromium against the real app served by uvicorn on a loopback port,
with the demo users and gallery. They walk each role's flow:

- investigator: opens a case with an urgent request and adds a multi-face photo; later receives the released lead
  report, checks its SHA-256 and a copy;
- analyst: prepares the probe (live preview, one-click face choice), searches, compares (landmarks, zoom, wipe,
  full-resolution images, keyboard pan and shortcuts), marks two possible leads and excludes the rest with one
  reason, submits (confirmation dialog), releases a verified lead and issues the lead report;
- reviewer: verifies blind — every attempt to reach the candidate list fails, through the pages and the API — then
  agrees with one lead and disagrees with the other;
- supervisor: decides the dispute on a page showing both sides with the images (no default choice), reads QA;
- records officer: enrols, runs a bulk job, processes a destruction (checklist without defaults, confirmation,
  certificate PDF);
- auditor and administrator: audit log (fits 800 px), statistics, QA per agency, users; everyone's account page
  (password, authenticator app).

axe-core (npm, installed by scripts/install-web-tests.sh into web-tests/node_modules) is injected into every page
and must report no serious or critical violation; the last test checks that every HTML page of the app was
checked. Screenshots go to artifacts/screenshots/; with FACELEADS_DOC_SCREENSHOTS=1 the main screens of each role
are also written, optimised, to docs/img/.

Skipped when /usr/bin/chromium or the playwright package is missing (``make test`` installs both).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from faceleads.gallery.runtime import GalleryRuntime
from faceleads.vision.models import default_model_dir
from faceleads.web.app import create_app
from faceleads.web.demo import ensure_admin, load_demo
from tests.conftest import REPO_ROOT
from tests.dbs import settings_for
from tests.lawful import list_authorities
from tests.web.conftest import PEOPLE

CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO_ROOT / "web-tests" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = REPO_ROOT / "artifacts" / "screenshots"
DOC_SHOTS = REPO_ROOT / "docs" / "img"
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
PLAYERS = default_model_dir() / "players.jpg"

sync_api = pytest.importorskip("playwright.sync_api")
# Playwright's defaults (5 s for an expect, 30 s for an action or navigation) are short for a loaded 2-core CI
# machine rendering pages that run searches and draw images; a passing wait returns at once, so a generous bound
# costs nothing and only turns a slow machine's pass into a pass rather than a flake.
EXPECT_TIMEOUT_MS = 60_000
ACTION_TIMEOUT_MS = 120_000
sync_api.expect.set_options(timeout=EXPECT_TIMEOUT_MS)
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (make test does)")

# Every HTML page checked by axe: route template -> an address checked.
CHECKED: dict[str, str] = {}


def listening_socket() -> socket.socket:
    """A loopback socket bound to a free port, handed to uvicorn as is: asking for a free port, releasing it and
    binding it again later would race with any other process (other test runs share the machine)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def serve_in_thread(app: Any) -> tuple[Any, threading.Thread, str]:
    """Start uvicorn for ``app`` in a daemon thread on a socket of its own; (server, thread, base URL)."""
    import uvicorn

    sock = listening_socket()
    port = int(sock.getsockname()[1])
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return uv, thread, f"http://127.0.0.1:{port}"


@dataclass
class Server:
    url: str
    rt: GalleryRuntime
    passwords: dict[str, str]
    app: Any
    ids: dict[str, Any] = field(default_factory=dict)  # shared by the flow's steps


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine: Any) -> Iterator[Server]:
    """The app with the demo users and gallery, served by uvicorn in a background thread."""
    # A role no other step signs in with requires an authenticator app, so that its enrolment flow is walked.
    settings = settings_for(tmp_path_factory.mktemp("browser") / "data", totp_required_roles=["training_officer"],
                            sign_in_attempts_per_address=100_000)  # every role signs in from one address
    rt = GalleryRuntime(settings, face_engine=engine)
    ensure_admin(rt, ADMIN_PASSWORD)
    report = load_demo(rt)
    list_authorities(rt, "DEV")  # the authorities the test records are held under (tests/lawful.py)
    passwords = {"admin": ADMIN_PASSWORD, **report.passwords}
    app = create_app(settings, runtime=rt)
    uv, thread, url = serve_in_thread(app)
    yield Server(url, rt, passwords, app)
    uv.should_exit = True
    thread.join(10)
    rt.close()


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    assert AXE.is_file(), f"axe-core is missing at {AXE}: run bash scripts/install-web-tests.sh (make test does)"
    with sync_api.sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield instance
        instance.close()


def template_of(url: str) -> str:
    """/cases/12?x=1 -> /cases/{}; job ids (hex) too."""
    path = url.split("://", 1)[-1].split("/", 1)[-1].split("?")[0].split("#")[0]
    parts = ["{}" if re.fullmatch(r"\d+|[0-9a-f]{16,64}", p) else p for p in path.split("/")]
    return "/" + "/".join(parts)


def shot(page: Any, name: str, *, doc: bool = False) -> None:
    """Screenshot to artifacts/; with FACELEADS_DOC_SCREENSHOTS=1 also an optimised copy in docs/img/."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    if doc and os.environ.get("FACELEADS_DOC_SCREENSHOTS") == "1":
        from PIL import Image

        raw = page.screenshot(full_page=False)
        image = Image.open(io.BytesIO(raw)).convert("RGB")
        image = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        image.save(DOC_SHOTS / f"ui-{name}.png", optimize=True)


AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 6).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').slice(0, 200))}));
}"""


def check(page: Any, name: str | None = None, *, doc: bool = False) -> None:
    """axe-core on the page as shown: no serious or critical violation; then the screenshot."""
    wait_images(page)
    violations = page.evaluate(AXE_RUN)
    assert not violations, f"{page.url}: {violations}"
    CHECKED[template_of(page.url)] = page.url
    if name:
        shot(page, name, doc=doc)


def wait_images(page: Any, timeout: float = 90.0) -> None:
    """Wait until every image on the page has loaded (polling: the page's CSP forbids Playwright's eval-based
    wait_for_function, which is itself a check that the policy is in force)."""
    deadline = time.monotonic() + timeout
    script = ("() => Array.from(document.images).every(i => !i.getAttribute('src') || i.loading === 'lazy' "
              "|| (i.complete && i.naturalWidth > 0))")
    while not page.evaluate(script):
        assert time.monotonic() < deadline, "images did not load"
        time.sleep(0.1)


def new_page(browser: Any, width: int = 1280, height: int = 900) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    errors: list[str] = []
    # Script errors only: a refused form's 4xx answer is logged by the browser as a failed resource, on purpose.
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
            and not msg.text.startswith("Failed to load resource") else None)  # fmt: skip
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    return page


def sign_in(browser: Any, server: Server, username: str, **size: int) -> Any:
    page = new_page(browser, **size)
    page.goto(server.url + "/")
    assert "/sign-in" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", server.passwords[username])
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_url(server.url + "/")
    return page


def submit(page: Any, action: Any, timeout: float = 120_000) -> None:
    """Do something that submits a form, and wait for the page it leads to (the same address included)."""
    with page.expect_navigation(timeout=timeout):
        action()


def confirm(page: Any) -> None:
    """Accept the confirmation dialog of an irreversible action and wait for the page it leads to."""
    dialog = page.locator("#confirm-dialog")
    sync_api.expect(dialog).to_be_visible()
    assert page.locator("#confirm-text").inner_text().strip()
    submit(page, lambda: page.click("#confirm-ok"))


def flash(page: Any) -> str:
    """The success message announced on the page."""
    sync_api.expect(page.locator("#announcer .flash")).to_be_visible()
    return str(page.locator("#announcer .flash").inner_text())


def test_sign_in_and_errors_keep_what_was_typed(browser: Any, server: Server) -> None:
    page = new_page(browser)
    page.goto(server.url + "/sign-in")
    check(page, "sign-in")
    page.fill("input[name=username]", "analyst")
    page.fill("input[name=password]", "wrong-password-1")
    page.click("#sign-in-form button[type=submit]")
    assert page.locator("p.error").is_visible()
    page.context.close()

    page = sign_in(browser, server, "analyst")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["fl_session"]["httpOnly"] and cookies["fl_session"]["sameSite"] == "Strict"
    # A refused form keeps every field as typed and says what is wrong, in words for people.
    page.goto(server.url + "/cases")
    for attempt in range(2):
        page.fill("#new-case input[name=occurrence_number]", "OCC-DUP-1")
        page.select_option("#new-case select[name=offence]", "ROB")
        page.fill("#new-case textarea[name=justification]", "Robbery of a courier; typed text must survive")
        if attempt == 0:
            submit(page, lambda: page.click("#new-case button[type=submit]"))
            assert "Case OCC-DUP-1 opened" in flash(page)
            page.goto(server.url + "/cases")
        else:
            page.click("#new-case button[type=submit]")
    error = page.locator("#new-case .form-error")
    sync_api.expect(error).to_contain_text("already used")
    assert page.locator("#new-case textarea[name=justification]").input_value().endswith("must survive")
    assert page.url.endswith("/cases")
    check(page, "cases-error")
    assert not page.errors, page.errors
    page.context.close()


def test_roles_walk_the_case_through_blind_verification_and_a_dispute(browser: Any, server: Server) -> None:
    ids = server.ids
    # --- investigator: case, urgent request, evidence ---------------------------------------------------------
    page = sign_in(browser, server, "investigator")
    check(page)
    page.goto(server.url + "/cases")
    page.fill("#new-case input[name=occurrence_number]", "OCC-2026-0777")
    page.select_option("#new-case select[name=offence]", "ROB")
    page.fill("#new-case textarea[name=justification]", "Armed robbery at a petrol station; suspects on CCTV")
    submit(page, lambda: page.click("#new-case button[type=submit]"))
    case_url = page.url.split("#")[0]
    ids["case"] = int(case_url.rsplit("/", 1)[1])
    page.select_option("#new-request select[name=priority]", "urgent")
    page.fill("#new-request textarea[name=justification]", "Identify the robber seen on camera 3")
    submit(page, lambda: page.click("#new-request button[type=submit]"))
    assert "Ready to search" in page.locator("#requests").inner_text()
    assert "Urgent" in page.locator("#requests").inner_text()
    page.set_input_files("#new-probe input[name=photo]", str(PLAYERS))
    page.fill("#new-probe input[name=source]", "CCTV camera 3, forecourt")
    page.fill("#new-probe input[name=obtained_by]", "PC 1234 Smith")
    page.fill("#new-probe input[name=legal_basis]", "Seized under PACE s.19")
    page.fill("#new-probe input[name=obtained_at]", "2026-03-01T10:30")
    submit(page, lambda: page.click("#new-probe button[type=submit]"))
    assert page.url == case_url + "#evidence"
    assert "Evidence received" in flash(page)
    assert page.locator("#evidence img").count() == 1  # the evidence thumbnail
    assert "Evidence received, hashed and stored encrypted" in page.locator("#custody").inner_text()
    check(page, "investigator-case", doc=True)
    page.context.close()

    # --- analyst: prepare, search, compare, adjudicate -----------------------------------------------------------
    page = sign_in(browser, server, "analyst")
    sync_api.expect(page.locator("#work-table a.work-prepare")).to_have_count(1)
    assert "Urgent" in page.locator("#work-table").inner_text()
    check(page, "analyst-home", doc=True)
    submit(page, lambda: page.locator("#work-table a.work-prepare").click())
    probe_url = page.url
    ids["probe"] = int(probe_url.rsplit("/", 1)[1])
    wait_images(page)
    page.locator("#edit-form input[name=brightness]").fill("20")
    deadline = time.monotonic() + 60
    while "/preview?" not in (page.locator("#probe-img").get_attribute("src") or ""):
        assert time.monotonic() < deadline, "live preview did not start"
        time.sleep(0.1)
    wait_images(page)
    submit(page, lambda: page.click("#edit-form button[type=submit]"))
    assert "Edits saved" in flash(page)
    # Face thumbnails are drawn; the crowd's tiny faces wait behind "below the quality floor".
    sync_api.expect(page.locator("#face-form .face-pick:not(.low) canvas").first).to_be_visible()
    assert page.locator("#face-form .face-pick:not(.low)").count() >= 2
    check(page, "analyst-probe", doc=True)
    # One click on the box of face 2 chooses it.
    submit(page, lambda: page.locator('#probe-boxes g.face[data-face="2"] rect').first.click(force=True))
    assert "Face 2 chosen" in flash(page)
    assert page.locator('#face-form .face-pick[value="2"]').get_attribute("aria-pressed") == "true"
    page.fill("#search-form input[name=top]", "5")
    submit(page, lambda: page.click("#search-form button[type=submit]"))
    results_url = page.url
    ids["cs"] = int(results_url.rsplit("/", 1)[1])
    assert page.locator("li.candidate").count() == 5
    assert float(page.locator("li.candidate").first.get_attribute("data-score") or 0) > 0.9
    assert page.locator(".probe-card img").is_visible(), "the probe face beside the candidates"
    assert "threshold" in page.locator("svg.score-chart").inner_html()
    assert "not a probability" in page.locator("main").inner_text()
    page.locator("#score-floor").fill("0.5")
    assert page.locator("li.candidate.hidden").count() == 4
    page.locator("#score-floor").fill("-0.2")
    check(page, "analyst-candidates", doc=True)

    # Comparison view: tools, keyboard, conclusion with a reason code and a checklist.
    submit(page, lambda: page.locator("li.candidate a").first.click())
    wait_images(page)
    page.click("#toggle-landmarks")
    assert page.locator(".compare.show-landmarks").count() == 1
    assert page.locator('[data-pane=probe] svg.landmarks.crop circle').count() == 5
    page.click("#zoom-in")
    transforms = page.eval_on_selector_all(".layer", "els => els.map(e => e.style.transform)")
    assert len(set(transforms)) == 1 and "scale(1.25)" in transforms[0], "zoom is synchronised"
    page.keyboard.press("z")
    page.keyboard.press("ArrowRight")
    moved = page.eval_on_selector_all(".layer", "els => els.map(e => e.style.transform)")
    assert len(set(moved)) == 1 and moved != transforms, "keyboard pan moves both views"
    page.locator("#wipe").fill("50")
    assert "inset(0px 0px 0px 50%)" in (page.locator("#cand-crop").get_attribute("style") or "")
    page.locator("#wipe").fill("0")
    page.locator("#cand-brightness").fill("150")
    assert "brightness(1.5)" in (page.locator("#cand-crop").get_attribute("style") or "")
    page.click("#toggle-originals")
    deadline = time.monotonic() + 90
    loaded = ("() => { const i = document.getElementById('cand-orig'); "
              "return i.complete && i.naturalWidth > 0 && !!i.style.width; }")
    while not page.evaluate(loaded):
        assert time.monotonic() < deadline, "full-resolution images did not load"
        time.sleep(0.1)
    assert page.locator("#probe-orig").is_visible() and page.locator("#cand-orig").is_visible()
    page.click("#toggle-originals")
    assert page.locator("#filmstrip button").count() >= 1 and page.locator("details.scene-box").count() == 1
    page.locator("h1").click()
    page.keyboard.press("p")
    assert page.locator("input[name=conclusion][value=possible_lead]").is_checked()
    page.select_option("select[name=reason_code]", "features_consistent")
    page.fill("textarea[name=notes]", "SECRET-FIRST-ANALYST-NOTE: same eyebrows and nose")
    page.select_option("#feature-eyes", "similar")
    page.select_option("#feature-nose", "similar")
    page.select_option("#feature-ears", "similar")
    check(page, "analyst-compare", doc=True)
    assert not page.errors, page.errors
    submit(page, lambda: page.locator("textarea[name=notes]").press("Control+Enter"))
    assert page.url.endswith("/compare/2")
    assert "Candidate #1 marked possible lead" in flash(page)
    page.check("input[name=conclusion][value=possible_lead]")
    page.select_option("select[name=reason_code]", "features_consistent")
    page.fill("textarea[name=notes]", "similar face shape; worth a second look")
    page.select_option("#feature-ears", "similar")
    submit(page, lambda: page.click("#conclude"))
    assert page.url.endswith("/compare/3")
    page.goto(results_url)
    # The rest are excluded with one reason (confirmation dialog), then everything is submitted.
    page.select_option("#exclude-form select[name=reason_code]", "features_differ")
    page.click("#exclude-form button[type=submit]")
    confirm(page)
    assert "3 candidate(s) excluded" in flash(page)
    assert page.locator("li.candidate.marked-excluded").count() == 3
    page.click("#submit-form button[type=submit]")
    assert "2 possible lead(s)" in page.locator("#confirm-text").inner_text()
    confirm(page)
    assert "2 possible lead(s) sent to blind verification" in flash(page)
    assert page.locator("#search-leads").inner_text().count("Awaiting blind verification") == 2
    with server.rt.session_factory() as session:
        from sqlalchemy import select

        from faceleads.casework.models import CaseSearch, Lead

        ids["leads"] = list(session.scalars(select(Lead.id).where(Lead.case_search_id == ids["cs"]).order_by(Lead.id)))
        cs_row = session.get(CaseSearch, ids["cs"])
        assert cs_row is not None
        ids["search"], ids["request"] = cs_row.search_id, cs_row.request_id
    page.context.close()

    # --- reviewer: blind verification; every way to the candidate list fails -----------------------------------
    page = sign_in(browser, server, "reviewer")
    assert page.locator("#work-table a.work-verify").count() == 2
    page.goto(server.url + "/verification")
    assert "OCC-2026-0777" in page.locator("#verify-queue").inner_text()
    check(page, "reviewer-queue", doc=True)
    cs, case_id, search_id = ids["cs"], ids["case"], ids["search"]
    for path in (f"/case-searches/{cs}", f"/case-searches/{cs}/compare/1", f"/case-searches/{cs}/compare/3",
                 f"/searches/{search_id}", f"/case-searches/{cs}/reports"):
        response = page.goto(server.url + path)
        assert response is not None and response.status == 403, path
        assert "sealed" in page.locator("main").inner_text(), path
    page.goto(server.url + f"/cases/{case_id}")
    assert "sealed" in page.locator("#searches").inner_text()
    assert "No lead" in page.locator("#leads").inner_text()
    assert f"/case-searches/{cs}" not in page.content()
    check(page, "reviewer-case-sealed")
    api = httpx.Client(base_url=server.url + "/api/v1", timeout=60)
    token = api.post("/auth/sign-in", json={"username": "reviewer", "password": server.passwords["reviewer"]}).json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    for path in (f"/case-searches/{cs}", f"/case-searches/{cs}/candidates", f"/searches/{search_id}",
                 f"/case-searches/{cs}/report", f"/leads/{ids['leads'][0]}"):
        response = api.get(path, headers=headers)
        assert response.status_code == 403 and "sealed" in response.json()["detail"], (path, response.text)
    assert api.get(f"/cases/{case_id}", headers=headers).json()["leads"] == []
    research = api.post(f"/requests/{ids['request']}/searches", headers=headers, json={"probe_ids": [ids["probe"]]})
    assert research.status_code == 403 and "blind verification" in research.json()["detail"]
    task = api.get(f"/leads/{ids['leads'][0]}/verification-task", headers=headers).json()
    assert "rank" not in task and "score" not in task and "SECRET" not in str(task)

    page.goto(server.url + f"/leads/{ids['leads'][0]}/verify")
    wait_images(page)
    body = page.content()
    for hidden in ("SECRET-FIRST-ANALYST-NOTE", "features_consistent", "data-score", "similar face shape"):
        assert hidden not in body, hidden
    assert page.locator("#probe-crop").is_visible() and page.locator("#cand-crop").is_visible()
    page.locator("h1").click()
    page.keyboard.press("p")
    assert page.locator("#verify-form input[name=result][value=possible_lead]").is_checked()
    page.fill("#verify-form textarea[name=notes]", "independent comparison: same nose and eyebrows")
    page.select_option("#feature-eyes", "similar")
    page.select_option("#feature-ears", "dissimilar")
    check(page, "reviewer-verify", doc=True)
    page.click("#verify-form button[type=submit]")
    confirm(page)
    assert page.url.endswith("/verification") and "is verified" in flash(page)
    page.goto(server.url + f"/leads/{ids['leads'][1]}/verify")
    page.check("#verify-form input[name=result][value=excluded]")
    page.fill("#verify-form textarea[name=notes]", "VERIFIER-NOTE: ear lobes clearly differ")
    page.select_option("#feature-ears", "dissimilar")
    page.click("#verify-form button[type=submit]")
    confirm(page)
    assert "disputed" in flash(page)
    assert "Nothing to verify" in page.locator("#verify-queue").inner_text()
    # Concluded: the seal lifts, but the first analyst's marks stay the analyst's.
    response = page.goto(server.url + f"/case-searches/{cs}")
    assert response is not None and response.status == 200
    assert "SECRET-FIRST-ANALYST-NOTE" not in page.content() and "Marks are the analyst's" in page.content()
    page.context.close()

    # --- supervisor: the dispute, both sides with the images, no default -----------------------------------------
    page = sign_in(browser, server, "supervisor")
    assert page.locator("#work-table a.work-decide").count() == 1
    check(page, "supervisor-home", doc=True)
    page.goto(server.url + "/decisions")
    check(page, "supervisor-decisions")
    submit(page, lambda: page.locator("#decide-leads a", has_text="Review lead").click())
    wait_images(page)
    sides = page.locator("#both-sides").inner_text()
    assert "similar face shape" in sides and "VERIFIER-NOTE" in sides
    differ = page.locator("#both-sides tr.diff")
    assert differ.count() == 1 and "Ears" in differ.inner_text()
    assert page.locator("#probe-crop").is_visible() and page.locator("#cand-crop").is_visible()
    assert not page.locator("#decide-form input[name=decision]:checked").count(), "no default decision"
    check(page, "supervisor-dispute", doc=True)
    page.fill("#decide-form textarea[name=reason]", "ear lobes differ at 4x zoom")
    page.click("#decide-form button[type=submit]")
    assert page.locator("#decide-form .form-error, #decide-form :invalid").count() >= 1  # the browser asks for a choice
    page.check("#decide-form input[name=decision][value=rejected]")
    page.click("#decide-form button[type=submit]")
    confirm(page)
    assert page.url.endswith("/decisions") and "rejected" in flash(page)
    # The evidence links of the decision work for a supervisor.
    response = page.goto(server.url + f"/cases/{case_id}")
    assert response is not None and response.status == 200
    page.goto(server.url + "/qa")
    qa_text = page.locator("#qa-examiners").inner_text()
    assert "analyst" in qa_text and "reviewer" in qa_text and "50%" in qa_text
    check(page, "supervisor-qa", doc=True)
    page.context.close()

    # --- analyst: release the verified lead, issue the report -----------------------------------------------------
    page = sign_in(browser, server, "analyst")
    assert page.locator("#work-table a.work-release").count() == 1
    page.goto(case_url)
    page.click("#leads button.release")
    confirm(page)
    assert page.url.endswith("#leads") and "released to the investigator" in flash(page)
    submit(page, lambda: page.locator("#leads a.report").first.click())
    check(page, "analyst-reports")
    submit(page, lambda: page.click("#issue-report button[type=submit]"))
    assert re.search(r"/lead-reports/\d+$", page.url)
    shown = page.locator("#report-sha256").inner_text().strip()
    with page.expect_download() as download:
        page.click("#report-download")
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF") and hashlib.sha256(pdf).hexdigest() == shown
    check(page, "analyst-report", doc=True)
    page.context.close()

    # --- investigator: receives the report, checks a copy ---------------------------------------------------------
    page = sign_in(browser, server, "investigator")
    assert page.locator("#work-table a.work-receive").count() == 1
    check(page, "investigator-home", doc=True)
    page.goto(case_url)
    submit(page, lambda: page.locator("#reports a").first.click())
    with page.expect_download() as download:
        page.click("#report-checksum")
    checksum = Path(download.value.path()).read_text()
    assert checksum.startswith(shown) and checksum.rstrip().endswith(".pdf")
    with page.expect_download() as download:
        page.click("#report-download")
    received = Path(download.value.path()).read_bytes()
    assert received == pdf
    from pypdf import PdfReader

    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(received)).pages)
    for needle in ("OCC-2026-0777", "not an identification", "CCTV camera 3, forecourt", "PC 1234 Smith",
                   "Seized under PACE s.19", "Chain of custody", "Edit history", "brightness(amount=20)"):
        assert needle in text, needle
    page.goto(server.url + "/lead-reports/check")
    page.set_input_files("#check-form input[name=report]", files=[
        {"name": "copy.pdf", "mimeType": "application/pdf", "buffer": received}])  # fmt: skip
    submit(page, lambda: page.click("#check-form button[type=submit]"))
    assert "Match" in page.locator("#check-result").inner_text()
    check(page, "investigator-report-check")
    page.goto(server.url + "/lead-reports/check")
    page.set_input_files("#check-form input[name=report]", files=[
        {"name": "changed.pdf", "mimeType": "application/pdf", "buffer": received + b"\n"}])  # fmt: skip
    submit(page, lambda: page.click("#check-form button[type=submit]"))
    assert "No match" in page.locator("#check-result").inner_text()
    # The investigator signs off what the investigation made of the released lead (docs/transparency.md).
    page.goto(server.url + "/outcomes?awaiting=true")
    row = page.locator(f"#lead-{ids['leads'][0]}")
    assert "awaiting" in row.inner_text()
    check(page)
    row.locator("select[name=outcome]").select_option("corroborated")
    row.locator("textarea[name=notes]").fill("Phone records place him at the petrol station")
    submit(page, lambda: row.locator("button[type=submit]").click())
    assert "corroborated signed off" in flash(page)
    assert "Phone records place him" in page.locator(f"#lead-{ids['leads'][0]}").inner_text()
    check(page, "investigator-outcomes")
    assert not page.errors, page.errors
    page.context.close()


def test_quick_search_face_picker_and_box_drawing(browser: Any, server: Server) -> None:
    page = sign_in(browser, server, "analyst")
    page.goto(server.url + "/cases")
    page.fill("#new-case input[name=occurrence_number]", "OCC-QUICK-1")
    page.select_option("#new-case select[name=offence]", "BURG")
    page.fill("#new-case textarea[name=justification]", "Burglary; a still from the doorbell camera")
    submit(page, lambda: page.click("#new-case button[type=submit]"))
    quick_case = page.url.split("#")[0]
    page.goto(server.url + "/search")
    page.select_option("#quick-search select[name=case]", "OCC-QUICK-1")
    page.fill("#quick-search textarea[name=reason]", "second look at the forecourt still")
    page.fill("#quick-search input[name=legal_basis]", "Seized under PACE s.19")
    page.set_input_files("#quick-search input[name=probe]", str(PLAYERS))
    sync_api.expect(page.locator("#quick-picker .face-pick:not(.low) canvas").first).to_be_visible(timeout=60_000)
    assert page.locator("#face-number-label").is_hidden()
    # The same picker as the probe page: one click on a thumbnail chooses the face.
    page.locator('#quick-picker .face-pick[data-face="2"]').click()
    assert page.locator("#quick-search input[name=face]").input_value() == "2"
    assert page.locator('#quick-picker .face-pick[data-face="2"]').get_attribute("aria-pressed") == "true"
    check(page, "analyst-quick-search", doc=True)
    submit(page, lambda: page.click("#quick-search button[type=submit]"))
    assert re.search(r"/case-searches/\d+$", page.url)
    server.ids["quick_cs"] = int(page.url.rsplit("/", 1)[1])
    assert float(page.locator("li.candidate").first.get_attribute("data-score") or 0) > 0.9
    # The gallery, as the analyst sees it.
    page.goto(server.url + "/gallery")
    check(page)
    submit(page, lambda: page.locator("main a[href^='/gallery/subjects/']").first.click())
    check(page)
    # A drawn box that cannot be used says why.
    page.goto(quick_case)
    submit(page, lambda: page.locator("#probes a[href^='/case-probes/']").first.click())
    wait_images(page)
    page.click("#draw-box")
    box = page.locator("#probe-stage").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 24, box["y"] + 23)
    page.mouse.up()
    sync_api.expect(page.locator("#draw-status")).to_contain_text("too small")
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] - 60)
    page.mouse.down()
    page.mouse.move(box["x"] + 60, box["y"] + box["height"] - 2)
    page.mouse.up()
    sync_api.expect(page.locator("#draw-status")).to_contain_text("No face was found in that box", timeout=60_000)
    assert not page.errors, page.errors
    page.context.close()


def test_compare_is_usable_at_390_px(browser: Any, server: Server) -> None:
    page = sign_in(browser, server, "analyst", width=390, height=844)
    page.goto(server.url + f"/case-searches/{server.ids['quick_cs']}/compare/1")
    wait_images(page)
    width = page.locator("#probe-crop").bounding_box()["width"]
    assert width >= 300, f"the probe face is {width} px wide at 390 px"
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    check(page, "analyst-compare-390")
    page.context.close()


def test_lawful_gallery_and_the_transparency_report(browser: Any, server: Server, tmp_path: Path) -> None:
    """The lawful gallery (docs/gallery.md): a records officer's enrolment under an authority that is not on the
    list is refused on the page; an administrator adds an authority. The transparency report
    (docs/transparency.md): an auditor produces it and downloads its PDF."""
    from pypdf import PdfReader

    scraped = "scraped from public social media profiles"
    page = sign_in(browser, server, "records")
    page.goto(server.url + "/enrol")
    page.fill("input[name=subject_number]", "WEB-SCRAPED")
    page.fill("input[name=booking_number]", "WEB-BS")
    page.fill("input[name=booking_date]", "2024-03-01")
    page.fill("input[name=legal_authority]", scraped)
    page.set_input_files("#enrol-form input[name=photos]", str(PEOPLE["Abdullah_Gul"][0]))
    page.click("#enrol-form button[type=submit]")
    sync_api.expect(page.locator("#enrol-form .form-error")).to_contain_text(
        f"'{scraped}' is not on DEV's list of legal authorities")
    shot(page, "records-enrol-refused-unlisted-authority")
    page.goto(server.url + "/lawful")
    assert "Records awaiting review" in page.locator("#compliance").inner_text()
    check(page)
    page.context.close()

    page = sign_in(browser, server, "admin")
    page.goto(server.url + "/lawful")
    page.fill("#authority-form input[name=code]", "IMM-141")
    page.fill("#authority-form input[name=title]", "Immigration Act 1999 s.141")
    submit(page, lambda: page.click("#authority-form button[type=submit]"))
    assert "Added IMM-141" in flash(page)
    assert "Immigration Act 1999 s.141" in page.locator("#authorities").inner_text()
    check(page, "admin-lawful-gallery")
    page.context.close()

    page = sign_in(browser, server, "auditor")
    page.goto(server.url + "/transparency")
    check(page)
    page.fill("#transparency-form input[name=from]", "2020-01-01")
    submit(page, lambda: page.click("#transparency-form button[type=submit]"))
    sync_api.expect(page.locator("#section-searches")).to_be_visible()
    main = page.locator("main").inner_text()
    assert "counts from 1 to 4 are shown as <5" in main and "Exigent" in main
    check(page, "auditor-transparency-report")
    with page.expect_download() as download:
        page.click("#downloads a:has-text('Download PDF')")
    path = tmp_path / "report.pdf"
    download.value.save_as(path)
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(str(path)).pages)
    assert "Transparency report" in text and "no personal or biometric data" in text
    assert not page.errors, page.errors
    page.context.close()


def test_records_officer_enrols_and_destroys(browser: Any, server: Server) -> None:
    page = sign_in(browser, server, "records")
    page.goto(server.url + "/enrol")
    check(page)
    photo = PEOPLE["Abdullah_Gul"][0]
    page.fill("input[name=subject_number]", "WEB-0001")
    page.fill("input[name=booking_number]", "WEB-B0001")
    page.fill("input[name=booking_date]", "2021-03-04")
    page.fill("input[name=legal_authority]", "PACE 1984 s.64A")
    page.set_input_files("#enrol-form input[name=photos]", str(photo))
    submit(page, lambda: page.click("#enrol-form button[type=submit]"))
    assert "Record enrolled" in flash(page)
    check(page, "records-enrol", doc=True)

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
    submit(page, lambda: page.click("#bulk-form button[type=submit]"))
    assert re.search(r"/enrol/jobs/[0-9a-f]+$", page.url)
    sync_api.expect(page.locator("#job-status")).to_have_text("done", timeout=60_000)
    assert "enrolled 2" in page.locator("#job-report").inner_text()
    with page.expect_download() as download:
        page.click("#job-errors-link")
    assert "missing.jpg" in Path(download.value.path()).read_text()
    check(page, "records-bulk-job")

    # Destruction: request, checklist with no default, decision, execution after a confirmation, certificate.
    page.goto(server.url + "/destruction")
    page.fill("#destruction-form input[name=subject_number]", "WEB-0001")
    page.fill("#destruction-form input[name=requester]", "the subject, in writing")
    page.fill("#destruction-form textarea[name=grounds]", "acquitted; records must be destroyed")
    submit(page, lambda: page.click("#destruction-form button[type=submit]"))
    assert "recorded" in flash(page)
    request = page.locator("section.destruction-request").first
    assert request.locator("input[name=satisfied]:checked").count() == 0, "the checklist has no default"
    for form_id in [f.get_attribute("id") for f in request.locator("form.checklist-form").all()]:
        form = page.locator(f"#{form_id}")
        form.locator("input[name=satisfied][value=yes]").check()
        form.locator("input[name=note]").fill("checked with the court record")
        submit(page, lambda: form.locator("button[type=submit]").click())  # noqa: B023
        assert "satisfied" in flash(page)
    check(page, "records-destruction", doc=True)
    decision = page.locator("form.decision-form").first
    assert decision.locator("input[name=decision]:checked").count() == 0
    decision.locator("input[name=decision][value=approve]").check()
    decision.locator("input[name=reason]").fill("eligible: acquitted, no other proceedings")
    decision.locator("button[type=submit]").click()
    page.click("#confirm-ok")
    # Separation of duties: the officer who recorded the request may not decide it; the form says so, as typed.
    sync_api.expect(decision.locator(".form-error")).to_contain_text("another records officer or a supervisor")
    assert decision.locator("input[name=reason]").input_value().startswith("eligible")
    supervisor = sign_in(browser, server, "supervisor")
    supervisor.goto(server.url + "/destruction")
    decision = supervisor.locator("form.decision-form").first
    assert decision.locator("input[name=decision]:checked").count() == 0, "the decision has no default"
    decision.locator("input[name=decision][value=approve]").check()
    decision.locator("input[name=reason]").fill("eligible: acquitted, no other proceedings")
    decision.locator("button[type=submit]").click()
    confirm(supervisor)
    assert "approved" in flash(supervisor)
    check(supervisor, "supervisor-destruction")
    supervisor.context.close()
    page.reload()
    page.locator("section.destruction-request form[id^=execute] button").first.click()
    assert "cannot be undone" in page.locator("#confirm-text").inner_text()
    confirm(page)
    assert "carried out" in flash(page)
    with page.expect_download() as download:
        page.locator("a.certificate-pdf").first.click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")
    assert not page.errors, page.errors
    page.context.close()


def test_auditor_admin_and_accounts(browser: Any, server: Server) -> None:
    page = sign_in(browser, server, "auditor", width=800, height=900)
    page.goto(server.url + "/audit")
    assert page.locator("table.audit tbody tr").count() >= 1
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 800, "the audit log fits 800 px"
    check(page)
    page.click("#verify-button")
    assert "Chain intact" in page.locator("#verify-result").inner_text()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(server.url + "/audit?action=view_candidates&outcome=denied")
    assert "sealed" in page.locator("table.audit").inner_text(), "the blind-verification refusals are audited"
    check(page, "auditor-audit", doc=True)
    page.goto(server.url + "/statistics")
    assert page.locator("svg.chart").count() == 3
    check(page, "auditor-statistics")
    page.goto(server.url + "/qa")
    assert page.locator("#qa-examiners").count() == 0 and page.locator("#qa-agencies tbody tr").count() >= 1
    check(page)
    response = page.goto(server.url + "/gallery")
    assert response is not None and response.status == 403
    page.context.close()

    page = sign_in(browser, server, "admin")
    page.goto(server.url + "/admin")
    page.fill("#new-user input[name=username]", "newanalyst")
    page.fill("#new-user input[name=password]", "a-Long-pa55word")
    page.check('#new-user input[name=roles][value="analyst"]')
    submit(page, lambda: page.click("#new-user button[type=submit]"))
    message = page.locator("p.ok").inner_text()
    assert "created user 'newanalyst'" in message and "waiting for a second person's approval" in message
    check(page, "admin-users", doc=True)
    # The agency's legal regimes and the partner accesses to its records.
    page.goto(server.url + "/regimes")
    assert "exigent" in page.locator("#regime-purposes").inner_text()
    check(page)
    page.goto(server.url + "/partner-access")
    check(page)
    page.context.close()

    # Separation of duties: the analyst role takes effect only when a supervisor approves it.
    page = sign_in(browser, server, "supervisor")
    page.goto(server.url + "/approvals")
    row = page.locator("#approvals tr", has_text="grant the role analyst to newanalyst")
    assert row.locator("input[name=decision]:checked").count() == 0, "the decision has no default"
    row.locator("input[name=decision][value=approve]").check()
    row.locator("input[name=note]").fill("new analyst, start date confirmed")
    row.locator("button[type=submit]").click()
    confirm(page)
    assert "approved" in flash(page)
    check(page, "supervisor-approvals")
    page.context.close()

    # Account: change the password (a mismatch keeps the form), add an authenticator app, sign in with it.
    import pyotp

    page = sign_in(browser, server, "records")
    page.goto(server.url + "/account")
    check(page, "account")
    old = server.passwords["records"]
    page.fill("#password-form input[name=current_password]", old)
    page.fill("#password-form input[name=new_password]", "Another-l0ng-passphrase")
    page.fill("#password-form input[name=repeat_password]", "Another-l0ng-passphrase!")
    page.click("#password-form button[type=submit]")
    sync_api.expect(page.locator("#password-form .form-error")).to_contain_text("differ")
    page.fill("#password-form input[name=repeat_password]", "Another-l0ng-passphrase")
    submit(page, lambda: page.click("#password-form button[type=submit]"))
    assert "Password changed" in flash(page)
    server.passwords["records"] = "Another-l0ng-passphrase"
    submit(page, lambda: page.click("#totp-form button[type=submit]"))
    assert page.locator("#totp-qr").is_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    check(page, "account-totp", doc=True)
    page.fill("#totp-confirm input[name=code]", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.click("#totp-confirm button[type=submit]")
    sync_api.expect(page.locator("#totp-confirm .form-error")).to_contain_text("does not match")
    assert page.locator("#totp-qr").is_visible(), "the QR code stays on the page"
    page.fill("#totp-confirm input[name=code]", pyotp.TOTP(secret).now())
    page.click("#totp-confirm button[type=submit]")
    sync_api.expect(page.locator("#recovery-codes li")).to_have_count(10)
    recovery = page.locator("#recovery-codes li").first.inner_text().strip()
    check(page)
    page.context.close()
    page = new_page(browser)
    page.goto(server.url + "/sign-in")
    page.fill("input[name=username]", "records")
    page.fill("input[name=password]", "Another-l0ng-passphrase")
    page.fill("input[name=second_factor]", recovery)  # the app's code was just used: a recovery code signs in
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_url(server.url + "/")
    page.goto(server.url + "/account")
    assert page.locator("#totp-state").inner_text() == "on"
    page.context.close()


def _actor(server: Server, username: str) -> Any:
    from faceleads.security.auth import actor_for_user
    from faceleads.security.models import User

    with server.rt.session_factory() as session:
        return actor_for_user(session, session.query(User).filter(User.username == username).one())


def test_exigent_search_ratified_agencies_and_a_required_authenticator(browser: Any, server: Server) -> None:
    """Legal regimes and separation of duties on the pages: an exigent search (demo purpose in the exigent regime)
    waits on the supervisor's home page and is ratified (no default decision, confirmation); the system operator
    creates an agency; a role that requires an authenticator app (here: training officer) leads its first sign-in
    to the account page's enrolment, then to a sign-in with the code."""
    import pyotp

    from faceleads.casework import cases
    from faceleads.casework.quick import quick_search
    from faceleads.gallery.enrolment import RecordInput, enrol_record
    from faceleads.gallery.galleries import create_gallery
    from faceleads.web.demo import DEMO_AUTHORITY

    rt, exigent = server.rt, "exigent-threat-to-life"
    create_gallery(rt, _actor(server, "admin"), "urgent", DEMO_AUTHORITY, [exigent])
    enrol_record(rt, _actor(server, "records"), RecordInput("EXI-0001", "EXI-B0001", date(2021, 2, 1), DEMO_AUTHORITY,
                                                           gallery="urgent"), [PEOPLE["Abdullah_Gul"][0]])  # fmt: skip
    investigator = _actor(server, "investigator")
    case = cases.open_case(rt, investigator, "OCC-EXI-1", "ASSAULT", "Child abducted from a playground")
    declared = cases.open_request(rt, investigator, case.id, exigent, "Child abducted an hour ago; photo from CCTV")
    assert declared.status == "ready" and declared.regime == "exigent" and declared.priority == "threat_to_life"
    searched = quick_search(rt, _actor(server, "analyst"), "OCC-EXI-1", PEOPLE["Abdullah_Gul"][1], reason="exigent",
                            legal_basis="Seized under PACE s.19", purpose=exigent, request_id=declared.id, top=2)

    page = sign_in(browser, server, "supervisor")
    sync_api.expect(page.locator("#queue-ratify")).to_contain_text("OCC-EXI-1")
    check(page)
    submit(page, lambda: page.locator("#queue-ratify a").first.click())
    form = page.locator(f"#ratify-{searched.case_search_id}")
    assert form.locator("input[name=decision]:checked").count() == 0, "the decision has no default"
    form.locator("input[name=decision][value=ratify]").check()
    form.locator("input[name=reason]").fill("Credible threat to life; DI on call agreed")
    form.locator("button[type=submit]").click()
    confirm(page)
    assert "ratified" in flash(page)
    page.goto(server.url + "/ratifications?state=decided")
    assert "Credible threat to life" in page.locator("#ratifications").inner_text()
    check(page, "supervisor-ratifications")
    page.context.close()

    page = sign_in(browser, server, "operator")
    page.goto(server.url + "/operator")
    check(page)
    page.fill("#new-agency input[name=code]", "NEWAG")
    page.fill("#new-agency input[name=name]", "New agency")
    page.fill("#new-agency input[name=admin_username]", "newag-admin")
    page.fill("#new-agency input[name=admin_password]", "Newag-l0ng-passphrase")
    page.click("#new-agency button[type=submit]")
    confirm(page)
    assert "Agency NEWAG created" in flash(page)
    assert "NEWAG" in page.locator("#agencies").inner_text()
    page.context.close()

    # The training officer's role requires an authenticator app (the server's FACELEADS_TOTP_REQUIRED_ROLES): the
    # right password opens an enrolment-only session on the account page, and nothing else.
    page = new_page(browser)
    page.goto(server.url + "/sign-in")
    page.fill("input[name=username]", "training")
    page.fill("input[name=password]", server.passwords["training"])
    submit(page, lambda: page.click("#sign-in-form button[type=submit]"))
    assert page.url.startswith(server.url + "/account")
    assert "require an authenticator app" in flash(page)
    sync_api.expect(page.locator("#enrolment-only")).to_be_visible()
    check(page)
    response = page.goto(server.url + "/approvals")
    assert response is not None and response.status == 403, "an enrolment-only session reaches nothing else"
    page.goto(server.url + "/account")
    submit(page, lambda: page.click("#totp-form button[type=submit]"))
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.fill("#totp-confirm input[name=code]", pyotp.TOTP(secret).now())
    page.click("#totp-confirm button[type=submit]")
    sync_api.expect(page.locator("#recovery-codes li")).to_have_count(10)
    assert "sign in again" in page.locator("main").inner_text()
    page.goto(server.url + "/account")
    assert "/sign-in" in page.url, "the enrolment session ended with the enrolment"
    page.fill("input[name=username]", "training")
    page.fill("input[name=password]", server.passwords["training"])
    deadline = time.monotonic() + 35
    code = pyotp.TOTP(secret).now()
    while pyotp.TOTP(secret).now() == code:  # the enrolment used this step's code: wait for the next one
        assert time.monotonic() < deadline
        time.sleep(0.5)
    page.fill("input[name=second_factor]", pyotp.TOTP(secret).now())
    submit(page, lambda: page.click("#sign-in-form button[type=submit]"))
    assert page.url == server.url + "/account", "back where the session ended"
    assert page.locator("#totp-state").inner_text() == "on" and page.locator("#enrolment-only").count() == 0
    page.goto(server.url + "/approvals")
    sync_api.expect(page.locator("#record-certification")).to_be_visible()
    check(page)
    assert not page.errors, page.errors
    page.context.close()


def html_pages(app: Any) -> set[str]:
    """Every HTML page of the app, from its route table, as templates ('/cases/{}')."""
    from fastapi import routing
    from fastapi.responses import HTMLResponse

    pages = set()
    for route in routing.iter_route_contexts(app.routes):
        methods = set(route.methods or ())
        if route.path and "GET" in methods and getattr(route, "response_class", None) is HTMLResponse:
            pages.add(re.sub(r"\{[^}]+\}", "{}", route.path))
    return pages


def is_live_page(template: str) -> bool:
    """The live deployment pages are walked, and checked by axe the same way, by tests/live/test_browser.py: over a
    deployment whose camera really ran (an alert on screen), which needs that module's fixtures."""
    return template == "/live" or template.startswith("/live/")


def test_every_page_was_checked_for_accessibility(browser: Any, server: Server) -> None:
    """The axe check above ran on every HTML page of the app (from the app's route table)."""
    pages = html_pages(server.app)
    assert len(pages) >= 20, pages
    assert any(is_live_page(p) for p in pages), "the live pages moved: update is_live_page"
    # Pages only reachable through a form's answer (not a GET of their own) are checked where they render.
    missing = sorted(p for p in pages - set(CHECKED) if not is_live_page(p))
    assert not missing, f"pages never checked by axe: {missing}"
