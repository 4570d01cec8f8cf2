"""The casework commands end to end in dev mode (real models, real photos, a temporary data directory)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceleads.cli import context
from faceleads.cli.main import app
from faceleads.config import Settings
from faceleads.gallery.runtime import GalleryRuntime
from tests.casework.conftest import AUTHORITY, lfw_people, side_by_side

runner = CliRunner()


@pytest.fixture
def cli_rt(settings: Settings, engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[GalleryRuntime]:  # type: ignore[no-untyped-def]
    rt = GalleryRuntime(settings, face_engine=engine)
    monkeypatch.setattr(context, "_runtime", rt)
    yield rt
    rt.close()


def run(*args: str) -> dict | list:  # type: ignore[type-arg]
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (args, result.output)
    out = result.stdout.strip()
    return json.loads(out) if out[:1] in ("{", "[") else {}


def test_cli_case_to_adjudication(cli_rt: GalleryRuntime, tmp_path: Path) -> None:
    people = list(lfw_people().items())[:3]
    run("offence", "add", "BURG", "Burglary", "--category", "standard", "--json")
    run("purpose", "add", "criminal-investigation", "Criminal investigation", "--json")
    run("gallery", "create", "custody", "--authority", AUTHORITY, "--purpose", "criminal-investigation")
    run("authority", "add", "PACE-64A", "--title", AUTHORITY, "--json")  # only listed authorities may be enrolled
    for n, (_, photos) in enumerate(people, start=1):
        run("enroll", "record", str(photos[0]), "--subject", f"S{n}", "--booking", f"B{n}", "--date",
            f"2021-0{n}-01", "--authority", AUTHORITY, "--gallery", "custody", "--json")
    case = run("case", "open", "DEV/1", "--offence", "BURG", "--justification", "Burglary, doorbell camera",
               "--json")
    assert isinstance(case, dict) and case["offence_category"] == "standard"
    req = run("case", "request", str(case["id"]), "--purpose", "criminal-investigation", "--justification",
              "Identify the burglar", "--json")
    assert isinstance(req, dict) and req["status"] == "ready"
    still = tmp_path / "still.jpg"
    still.write_bytes(side_by_side(people[0][1][1], people[1][1][1]))
    probe = run("probe", "add", str(case["id"]), str(still), "--source", "doorbell camera", "--obtained-by",
                "PC 1", "--obtained-at", "2026-01-02T03:04", "--legal-basis", "consent of owner", "--json")
    assert isinstance(probe, dict)
    pid = str(probe["id"])
    faces = run("probe", "faces", pid, "--json")
    assert isinstance(faces, list) and len(faces) >= 2
    edited = run("probe", "edit", pid, '[{"op": "equalize", "method": "clahe"}]')
    assert isinstance(edited, dict) and edited["edits"][0]["op"] == "equalize"
    run("probe", "pick", pid, "--face", "1")
    found = run("case", "search", str(req["id"]), "--probe", pid, "--top", "2", "--json")
    assert isinstance(found, dict) and len(found["result"]["candidates"]) == 2
    assert found["probes_used"][0]["edits_described"].startswith("equalize")
    cs = str(found["id"])
    bad = runner.invoke(app, ["adjudicate", "submit", cs])
    assert bad.exit_code == 2 and "unmarked" in bad.output
    run("adjudicate", "mark", cs, "1", "--conclusion", "possible_lead", "--notes", "same hairline",
        "--feature", "hairline=similar")
    run("adjudicate", "mark", cs, "2", "--conclusion", "excluded", "--notes", "different nose")
    leads = run("adjudicate", "submit", cs)
    assert isinstance(leads, dict) and len(leads["leads"]) == 1
    lead = str(leads["leads"][0]["id"])
    # The dev actor proposed the lead: it may neither verify it nor release it unverified.
    own = runner.invoke(app, ["verify-lead", "record", lead, "--result", "agree", "--notes", "x"])
    assert own.exit_code == 2
    unverified = runner.invoke(app, ["lead", "release", lead])
    assert unverified.exit_code == 2 and "only a verified lead" in unverified.output
    png = tmp_path / "probe.png"
    assert runner.invoke(app, ["probe", "image", pid, "--out", str(png), "--original"]).exit_code == 0
    assert png.read_bytes().startswith(b"\x89PNG")
    dry = run("retention", "run", "--dry-run", "--json")
    assert isinstance(dry, dict) and dry["cases"] == []
