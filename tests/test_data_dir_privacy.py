"""A fresh start leaves nothing under the data directory readable by another local account.

Real processes, started the way an operator starts them (``faceleads ...`` on the command line and
``faceleads serve``) from a shell whose umask is the usual 022: every file they create — the database and its
WAL/SHM files, the keystore, the master key, the session file, encrypted blobs, bulk-job error reports, the
evaluation cache, backups — must be private (directories 0700, files 0600).
"""

from __future__ import annotations

import csv
import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import LFW_DIR

PW = "Tr0ub4dor&3-horse"


# What a login shell usually has: files 0644, directories 0755. Passed as Popen's ``umask``, set in C in the child:
# a ``preexec_fn`` runs Python in a forked copy of this multi-threaded process (gRPC threads from the Milvus tests),
# where gRPC's finalisers can abort the child before it execs.
SHELL_UMASK = 0o022


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEADS_")}
    env.update({"FACELEADS_DATA_DIR": str(data_dir), "FACELEADS_AGENCY": "DEV", **extra})
    return env


def _faceleads(env: dict[str, str], *args: str, stdin: str = "", ok: tuple[int, ...] = (0,)) -> str:
    proc = subprocess.run([sys.executable, "-m", "faceleads.cli.main", *args], env=env, input=stdin, text=True,
                          capture_output=True, timeout=600, umask=SHELL_UMASK)  # fmt: skip
    assert proc.returncode in ok, f"faceleads {' '.join(args)}: {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _exposed(*roots: Path) -> list[str]:
    """Every file or folder under ``roots`` that group or others may access (links ignored)."""
    found = []
    for root in roots:
        for path in [root, *root.rglob("*")]:
            info = path.lstat()
            if not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o077:
                found.append(f"{path.relative_to(root.parent)} {stat.S_IMODE(info.st_mode):04o}")
    return found


def _photos(n: int) -> list[Path]:
    """``n`` photos, two by two of the same person."""
    people: dict[str, list[Path]] = {}
    with (LFW_DIR / "labels.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            people.setdefault(row["identity"], []).append(LFW_DIR / row["path"])
    pairs = [photos[:2] for photos in people.values() if len(photos) >= 2]
    return [photo for pair in pairs[: n // 2] for photo in pair]


def test_command_line_fresh_start_is_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(data)
    photos = _photos(4)
    manifest = tmp_path / "batch" / "m.csv"
    manifest.parent.mkdir()
    for photo in photos[:3]:
        (manifest.parent / photo.name).write_bytes(photo.read_bytes())
    manifest.write_text("agency,subject,booking,date,authority,photo\n"
                        f"DEV,S1,B1,2021-01-01,PACE,{photos[0].name}\n"
                        f"DEV,S2,B2,2021-01-01,PACE,{photos[2].name}\n"
                        "DEV,S3,B3,2021-01-01,PACE,missing.jpg\n", encoding="utf-8")  # fmt: skip
    # Enrolment (database + WAL/SHM, keystore, master key, blobs), with an error report kept in the data dir, under
    # an authority on the agency's list (the lawful gallery: docs/gallery.md).
    _faceleads(env, "authority", "add", "PACE", "--title", "PACE 1984 s.64A")
    _faceleads(env, "enroll", "bulk", str(manifest), "--workers", "1", "--errors", str(data / "errors.csv"),
               ok=(0, 3))  # fmt: skip (3 = partial failure; 0 before exit codes existed)
    # Evaluation writes its template cache under the data directory.
    pairs = tmp_path / "pairs.csv"
    a1, a2, b1, b2 = photos
    pairs.write_text(f"path_a,path_b,same,fold\n{a1},{a2},1,1\n{a1},{b1},0,1\n{b1},{b2},1,2\n{a2},{b2},0,2\n",
                     encoding="utf-8")  # fmt: skip
    _faceleads(env, "evaluate", "verify", "--pairs", str(pairs), "--json")
    # Accounts, a session file, the audit log, a backup with its key escrow copy.
    _faceleads(env, "admin", "bootstrap", "--agency", "DEV", "--agency-name", "Dev", "--username", "chief",
               stdin=f"{PW}\n{PW}\n")  # fmt: skip
    _faceleads(env, "login", "-u", "chief", "--code", "", stdin=f"{PW}\n")
    _faceleads(env, "audit", "verify")
    backups = tmp_path / "backups"
    _faceleads(env, "backup", str(backups / "b1"), "--keys", str(backups / "escrow" / "keys.db"))
    names = {p.name for p in data.rglob("*")}
    assert {"faceleads.db", "keystore.db", "master.key", ".session", "errors.csv"} <= names, names
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert _exposed(data, backups / "b1", backups / "escrow") == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_server_fresh_start_is_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = _free_port()
    env = _env(data, FACELEADS_ADMIN_PASSWORD=PW, FACELEADS_WEB_PORT=str(port), FACELEADS_WORKERS="1")
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "faceleads.cli.main", "serve", "--demo"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, text=True, umask=SHELL_UMASK)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "server did not start"
            try:
                if httpx.get(base + "/api/v1/openapi.json", timeout=10).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        output = (tmp_path / "serve.log").read_text()
        password = re.search(r"^\s+records\s+(\S+)$", output, re.MULTILINE)
        assert password, output[-3000:]
        with httpx.Client(base_url=base, timeout=120) as client:
            credentials = {"username": "records", "password": password.group(1)}
            token = client.post("/api/v1/auth/sign-in", json=credentials).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            manifest = "agency,subject,booking,date,authority,photo\nDEV,X1,XB1,2021-01-01,PACE,photos/none.jpg\n"
            job = client.post("/api/v1/jobs/bulk-enrolment", headers=headers,
                              files={"manifest": ("m.csv", manifest.encode(), "text/csv")}).json()  # fmt: skip
            deadline = time.monotonic() + 300
            while job["status"] not in ("done", "failed"):
                assert time.monotonic() < deadline, f"the bulk job did not finish: {job}"
                time.sleep(0.2)
                job = client.get(f"/api/v1/jobs/{job['job_id']}", headers=headers).json()
            assert job["report"]["errors"] == 1
            assert client.get(f"/api/v1/jobs/{job['job_id']}/errors.csv", headers=headers).status_code == 200
        names = {p.name for p in data.rglob("*")}
        # The job's input went through the blob store and its error report is in the jobs table (the queue is in
        # the database): the files written are the database, the keystore and the store's shards.
        assert {"faceleads.db", "faceleads.db-wal", "faceleads.db-shm", "keystore.db", "store"} <= names, names
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert _exposed(data) == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_existing_installation_is_tightened_at_start_and_checked_by_selfcheck(tmp_path: Path) -> None:
    """An installation made before the rule (0755/0644 everywhere): selfcheck fails, the next start fixes it."""
    data = tmp_path / "data"
    env = _env(data)
    _faceleads(env, "admin", "bootstrap", "--agency", "DEV", "--agency-name", "Dev", "--username", "chief",
               stdin=f"{PW}\n{PW}\n")  # fmt: skip
    (data / "jobs" / "old").mkdir(parents=True)
    (data / "jobs" / "old" / "errors.csv").write_text("row,reason\n", encoding="utf-8")
    for path in [data, *data.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    report = _faceleads(env, "selfcheck", ok=(1,))
    assert "not private" in report and "errors.csv" in report and "FAILED" in report
    _faceleads(env, "gallery", "list", "--agency", "DEV")  # any command that opens the data directory
    assert _exposed(data) == []
    assert "self-check passed" in _faceleads(env, "selfcheck")
