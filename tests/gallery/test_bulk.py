"""Bulk enrolment from a manifest: every error-report reason, flags, duplicate runs, kill -9 and resume."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy.exc
from PIL import Image as PILImage
from sqlalchemy import func, select, text

from faceleads.cli.context import cli_actor
from faceleads.db import make_engine
from faceleads.errors import ValidationError
from faceleads.gallery.bulk import enrol_manifest, write_error_report
from faceleads.gallery.models import EnrolmentBatch, EnrolmentRow, FaceTemplate, Image, Subject
from faceleads.gallery.runtime import GalleryRuntime
from tests.conftest import LFW_DIR, lfw_identities
from tests.dbs import database_env, engine_url
from tests.gallery.conftest import write_manifest
from tests.lawful import list_authorities, search_on_case

PEOPLE = lfw_identities()
AUTH = "Custody Records Act s.12"
MULTI_FACE = PEOPLE["Abdel_Nasser_Assidi"][0]  # three people in the picture


def _rows_for(names: list[str], start: int = 0, agency: str = "MET") -> list[list[str]]:
    return [
        [agency, name, f"BK{start + i}", "2020-06-01", AUTH, str(PEOPLE[name][0]), ""] for i, name in enumerate(names)
    ]


def _read_errors(path: Path) -> dict[int, dict[str, str]]:
    with path.open(newline="") as fh:
        return {int(r["row"]): r for r in csv.DictReader(fh)}


def _staged(photos: Path, source: Path) -> str:
    """A copy of ``source`` under ``photos`` (manifest photos must lie inside the manifest's folder)."""
    (photos / source.name).write_bytes(source.read_bytes())
    return f"photos/{source.name}"


def test_error_report_names_every_problem_and_never_stops(rt, tmp_path) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    photos = tmp_path / "photos"
    photos.mkdir()
    corrupt = photos / "corrupt.jpg"
    corrupt.write_bytes(PEOPLE["AJ_Cook"][0].read_bytes()[:3000])  # truncated JPEG
    noface = photos / "wall.png"
    PILImage.radial_gradient("L").convert("RGB").resize((300, 300)).save(noface)
    rows = [
        ["MET", "S1", "B1", "2020-06-01", AUTH, _staged(photos, PEOPLE["Aaron_Peirsol"][0]), "M"],  # 1 fine
        ["MET", "S2", "B2", "2020-06-01", AUTH, "photos/missing.jpg", ""],  # 2 missing file
        ["MET", "S3", "B3", "2020-06-01", AUTH, "photos/corrupt.jpg", ""],  # 3 corrupt image
        ["MET", "S4", "B4", "2020-06-01", AUTH, "photos/wall.png", ""],  # 4 no face: kept, flagged
        ["MET", "S5", "B5", "2020-06-01", AUTH, _staged(photos, MULTI_FACE), ""],  # 5 several faces: enrolled, flagged
        ["MET", "S6", "B1", "2020-06-01", AUTH, _staged(photos, PEOPLE["Ai_Sugiyama"][0]), ""],  # 6 booking B1 is S1's
        ["MET", "S7", "B7", "2020-02-30", AUTH, _staged(photos, PEOPLE["AJ_Cook"][0]), ""],  # 7 bad date
        ["MET", "S8", "B8", "2020-06-01", AUTH, _staged(photos, PEOPLE["Abdullah_Gul"][0]), "Q"],  # 8 bad sex code
        ["OTH", "S9", "B9", "2020-06-01", AUTH, _staged(photos, PEOPLE["Abdullah_Gul"][1]), ""],  # 9 another agency
        ["MET", "S1", "B1", "2021-06-01", AUTH, _staged(photos, PEOPLE["Aaron_Peirsol"][1]), "M"],  # 10 B1 other date
        ["MET", "S11", "B11", "2020-06-01", "", _staged(photos, PEOPLE["Abdullah_Gul"][2]), ""],  # 11 no authority
        ["MET", "S12", "B12", "2020-06-01", AUTH, _staged(photos, PEOPLE["Adam_Sandler"][0]), ""],  # 12 fine
    ]
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    report = enrol_manifest(rt, actor, manifest, workers=1, photo_root=tmp_path)
    errors_csv = tmp_path / "errors.csv"
    write_error_report(report, errors_csv)
    problems = _read_errors(errors_csv)
    expected = {
        2: ("error", "cannot be used: give the path, relative to the manifest, of an image file"),
        3: ("error", "corrupt or unreadable image"),
        4: ("warning", "no usable face"),
        5: ("warning", "3 faces found"),
        6: ("error", "duplicate booking number 'B1' with conflicting data: already recorded with subject S1"),
        7: ("error", "bad booking date '2020-02-30'"),
        8: ("error", "bad sex 'Q'"),
        9: ("error", "agency OTH is not the enrolling user's agency"),
        10: (
            "error",
            "duplicate booking number 'B1' with conflicting data: already recorded with date 2020-06-01",
        ),
        11: ("error", "legal authority is required"),
    }
    assert set(problems) == set(expected)
    for row, (status, reason) in expected.items():
        assert problems[row]["status"] == status, problems[row]
        assert reason in problems[row]["reason"], problems[row]
    assert problems[3]["photo"] == "photos/corrupt.jpg"
    assert (report.enrolled, report.errors, report.warnings) == (4, 8, 2)
    with rt.session_factory() as session:
        images = {
            s: i
            for s, i in session.execute(
                select(Subject.subject_number, Image).join(Image, Image.subject_id == Subject.id)
            )
        }
        assert set(images) == {"S1", "S4", "S5", "S12"}
        assert images["S4"].flags == ["no_face"] and images["S4"].template is None
        assert images["S4"].store_address is not None  # the photo is kept
        assert images["S5"].flags == ["multiple_faces"] and images["S5"].face_count == 3
        assert images["S5"].template is not None
        assert images["S1"].flags == [] and images["S1"].template is not None
    # The enrolled multi-face photo is searchable through its most prominent face.
    found = search_on_case(rt, actor, MULTI_FACE, case="C", offence="O", reason="R", top=2)
    assert found.candidates[0].subject_number == "S5"


def test_structural_manifest_problems_refuse_the_file(rt, tmp_path) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    bad = write_manifest(
        tmp_path / "m.csv", [["MET", "S", "B", "2020-01-01"]], header=["agency", "subject", "booking", "date"]
    )
    with pytest.raises(ValidationError, match="lacks column\\(s\\) authority, photo"):
        enrol_manifest(rt, actor, bad, workers=0)
    with pytest.raises(ValidationError, match="does not exist"):
        enrol_manifest(rt, actor, tmp_path / "nope.csv", workers=0)


def test_duplicate_runs_are_idempotent(rt, tmp_path) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    names = ["AJ_Cook", "Aaron_Peirsol", "Ai_Sugiyama", "Abdullah_Gul"]
    manifest = write_manifest(tmp_path / "m1.csv", _rows_for(names))
    first = enrol_manifest(rt, actor, manifest, workers=0, photo_root=LFW_DIR)
    assert (first.enrolled, first.processed_this_run) == (4, 4)
    again = enrol_manifest(rt, actor, manifest, workers=0, photo_root=LFW_DIR)
    assert (again.enrolled, again.processed_this_run, again.batch_id) == (4, 0, first.batch_id)
    # Another manifest listing the same photos (and one new one): the known photos are skipped by hash.
    rows = _rows_for(names) + _rows_for(["Adam_Sandler"], start=10)
    other = enrol_manifest(rt, actor, write_manifest(tmp_path / "m2.csv", rows[::-1]), workers=0,
                           photo_root=LFW_DIR)  # fmt: skip
    assert (other.enrolled, other.skipped, other.errors) == (1, 4, 0)
    with rt.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Image)) == 5
        assert session.scalar(select(func.count()).select_from(FaceTemplate)) == 5
        assert session.scalar(select(func.count()).select_from(EnrolmentBatch)) == 2
    assert len(list(rt.store.addresses())) == 5


class _RowCounter:
    """Counts the batch's recorded rows from outside the enrolling process (a second connection)."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)

    def __call__(self) -> int:
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(text("SELECT count(*) FROM enrolment_rows")).scalar_one())
        except sqlalchemy.exc.OperationalError:
            return 0  # schema not created yet (SQLite: the child process creates the file)
        except sqlalchemy.exc.ProgrammingError:
            return 0


def _live_members(pgid: int, wait: float = 60.0) -> list[int]:
    """Processes of group ``pgid`` that are still running (zombies awaiting their reaper count as dead)."""
    deadline = time.monotonic() + wait
    while True:
        live = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                live.append(int(stat.parent.name))
        if not live or time.monotonic() >= deadline:
            return live
        time.sleep(0.1)


def _list_authorities(settings, engine) -> None:  # type: ignore[no-untyped-def]
    """Put the manifest's authority on the list of the agency the CLI subprocess enrols for."""
    listing = GalleryRuntime(settings, face_engine=engine)
    list_authorities(listing, "DEV")
    listing.close()


@pytest.mark.slow
def test_kill_minus_nine_and_resume(settings, engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    names = [n for n, photos in PEOPLE.items() if len(photos) >= 2][:45]
    rows = []
    for i, name in enumerate(names):
        rows.append(["DEV", name, f"K{i}a", "2019-09-09", AUTH, str(PEOPLE[name][0]), ""])
        rows.append(["DEV", name, f"K{i}b", "2020-10-10", AUTH, str(PEOPLE[name][1]), ""])
    manifest = write_manifest(tmp_path / "kill.csv", rows)
    _list_authorities(settings, engine)
    env = {**os.environ, **database_env(settings.data_dir), "FACELEADS_AGENCY": "DEV"}
    cmd = [
        sys.executable,
        "-m",
        "faceleads.cli.main",
        "enroll",
        "bulk",
        str(manifest),
        "--photos-root",
        str(LFW_DIR),
        "--workers",
        "2",
        "--json",
    ]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    count_rows = _RowCounter(engine_url(settings.data_dir))
    deadline = time.monotonic() + 240
    while count_rows() < 12:
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "bulk enrolment made no progress"
        time.sleep(0.05)
    assert len(_live_members(proc.pid, wait=0)) >= 3, "parent and two worker processes are running"
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its worker processes, mid-batch
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _live_members(proc.pid) == [], "nothing of the process group survives"
    done_before = count_rows()
    assert 12 <= done_before < len(rows), "the kill must land mid-batch"

    rt = GalleryRuntime(settings, face_engine=engine)
    actor = cli_actor(rt, "DEV")
    # An orphan blob, as left by a kill between the blob write and the commit, is swept on resume.
    with rt.session_factory() as session:
        key_id = session.scalars(select(Subject.key_id).order_by(Subject.id)).first()
    orphan = rt.store.put(key_id, b"half-enrolled photo", "gallery-image|orphan")
    resumed = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    with rt.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Image)) == len(rows)
        assert session.scalar(select(func.count()).select_from(FaceTemplate)) == len(rows)
        assert session.scalar(select(func.count()).select_from(Subject)) == len(names)
        statuses = session.execute(select(EnrolmentRow.status, func.count()).group_by(EnrolmentRow.status)).all()
        assert dict(statuses) == {"enrolled": len(rows)}
        batch = session.scalars(select(EnrolmentBatch)).one()
        assert batch.runs == 2 and batch.finished_at is not None
        referenced = set(session.scalars(select(Image.store_address)))
    assert not rt.store.exists(orphan)
    assert set(rt.store.addresses()) == referenced, "no orphan files"
    assert not list(rt.store.root.rglob(".tmp-*"))
    rt.verify_index() if rt.index_built else rt.sync_index()
    rt.verify_index()
    hit = search_on_case(
        rt,
        actor,
        PEOPLE[names[3]][2] if len(PEOPLE[names[3]]) > 2 else PEOPLE[names[3]][1],
        case="C",
        offence="O",
        reason="R",
        top=3,
    )
    assert hit.candidates[0].subject_number == names[3]


@pytest.mark.slow
def test_worker_killed_mid_batch_is_reported_and_resumable(settings, engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    names = [n for n, photos in PEOPLE.items() if len(photos) >= 2][45:75]
    rows = [["DEV", name, f"W{i}", "2019-09-09", AUTH, str(PEOPLE[name][0]), ""] for i, name in enumerate(names)]
    manifest = write_manifest(tmp_path / "workers.csv", rows)
    _list_authorities(settings, engine)
    env = {**os.environ, **database_env(settings.data_dir), "FACELEADS_AGENCY": "DEV"}
    cmd = [sys.executable, "-m", "faceleads.cli.main", "enroll", "bulk", str(manifest), "--photos-root",
           str(LFW_DIR), "--workers", "2", "--json"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    count_rows = _RowCounter(engine_url(settings.data_dir))
    deadline = time.monotonic() + 240
    while count_rows() < 5:
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "bulk enrolment made no progress"
        time.sleep(0.05)
    workers = [p for p in _live_members(proc.pid, wait=0) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert len(workers) == 2
    for pid in workers:
        os.kill(pid, signal.SIGKILL)  # only the workers: the parent must notice and stop cleanly
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err.decode()[-2000:]
    assert "worker process died" in err.decode()
    resumed = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    rt = GalleryRuntime(settings, face_engine=engine)
    with rt.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Image)) == len(rows)
        referenced = set(session.scalars(select(Image.store_address)))
    assert set(rt.store.addresses()) == referenced


def test_error_report_neutralises_formula_cells(rt, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """CSV injection: text from the manifest reaches the error report, which a records officer opens in Excel."""
    actor = cli_actor(rt, "MET")
    rows = [["MET", "=HYPERLINK(\"http://evil.example\")", "@B1", "2020-06-01", AUTH, "-missing.jpg", ""]]
    report = enrol_manifest(rt, actor, write_manifest(tmp_path / "inject.csv", rows), workers=0)
    errors_csv = tmp_path / "errors.csv"
    write_error_report(report, errors_csv)
    row = _read_errors(errors_csv)[1]
    assert row["subject"] == "'=HYPERLINK(\"http://evil.example\")"
    assert row["booking"] == "'@B1" and row["photo"] == "'-missing.jpg"
    for cell in row.values():
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row


def test_photos_must_lie_inside_the_manifest_folder(rt, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Command line too: by default photos resolve inside the manifest's folder (links followed first)."""
    actor = cli_actor(rt, "MET")
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "out.jpg").symlink_to(PEOPLE["Aaron_Peirsol"][1])
    rows = [
        ["MET", "P1", "PB1", "2020-06-01", AUTH, "out.jpg", ""],  # a link pointing outside
        ["MET", "P2", "PB2", "2020-06-01", AUTH, "../../../../../../" + str(PEOPLE["AJ_Cook"][0]).lstrip("/"), ""],
        ["MET", "P3", "PB3", "2020-06-01", AUTH, "/etc/hostname", ""],
    ]
    manifest = folder / "m.csv"
    with manifest.open("w", newline="") as fh:
        csv.writer(fh).writerows([["agency", "subject", "booking", "date", "authority", "photo", "sex"], *rows])
    report = enrol_manifest(rt, actor, manifest, workers=0)
    assert (report.enrolled, report.errors) == (0, 3)
    assert all("cannot be used" in r["reason"] for r in report.error_rows), report.error_rows
    # An explicit root that holds the photos accepts them (the operator's choice on the command line).
    widened = enrol_manifest(rt, actor, manifest, workers=0, photo_root=LFW_DIR)
    assert widened.enrolled == 2 and widened.errors == 1  # /etc/hostname is absolute: always refused
