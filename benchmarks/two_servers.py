"""Two application servers on one PostgreSQL: how fast an enrolment and a destruction made through one server show
in the other's searches.

Usage: ``python benchmarks/two_servers.py [--json] [--rounds 3] [--database-url postgresql://...]``

It starts a throw-away PostgreSQL cluster (``scripts/pgtemp.py``; or uses ``--database-url``, a server URL whose
user may create databases and roles), with the main database and a keystore database owned by a role of its own,
seeds the demo users and gallery, and starts two ``faceleads serve`` processes on free loopback ports, each with
its own data directory (they share only the database, the keystore database and the blob-store folder, as hosts
share PostgreSQL and object storage). Sessions are in the database, so tokens from one server work on the other.

A searcher thread searches through server B all the time, the way an analyst does (casework API: a case request
with a probe of one person, ``POST /requests/{id}/searches``). Each round:

- ``enrol``: a records officer enrols a booking photo of the probe's person through server A;
  ``enrol_visible_ms`` = from A's response (committed) to the end of the first search on B, begun after it, that
  returns the new subject;
- ``destroy``: the record is destroyed through server A (request, checklist, decision, execution);
  ``destroy_gone_ms`` = from the start of A's execution request to the end of the first search on B, begun after
  it, that no longer returns the subject. A search begun after the execution returned that still returns it is an
  error, as is a failed request.

Printed (``--json``: one JSON object): servers, database, enrol_visible_ms and destroy_gone_ms (worst round),
searches, errors, search_qps, and per-round figures. Goal: both under 1,000 ms with 0 errors.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
FACES = ROOT / "tests" / "data" / "lfw-mini" / "images"
PERSON = "Aaron_Peirsol"  # four photos in the fixture set: the probe is the last, rounds enrol the others
ADMIN_PASSWORD = "Bench-first-" + secrets.token_hex(6)


@dataclass
class Search:
    started: float
    ended: float
    subjects: set[str]
    ok: bool


@dataclass
class Searcher:
    """Searches through one server in a loop, recording when each search ran and what it returned."""

    client: httpx.Client
    token: str
    request_id: int
    probe_id: int
    log: list[Search] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                made = self.client.post(f"/api/v1/requests/{self.request_id}/searches", headers=headers,
                                        json={"probe_ids": [self.probe_id], "top": 5})  # fmt: skip
                made.raise_for_status()
                found = self.client.get(f"/api/v1/case-searches/{made.json()['id']}/candidates", headers=headers)
                found.raise_for_status()
                subjects = {c["subject_number"] for c in found.json()}
                self.log.append(Search(started, time.monotonic(), subjects, True))
            except Exception as exc:  # counted, and the loop goes on
                self.errors.append(f"search: {exc}")
                self.log.append(Search(started, time.monotonic(), set(), False))

    def first(self, after: float, predicate: Any, timeout: float = 15.0) -> Search | None:
        """The first successful search begun at or after ``after`` satisfying ``predicate`` (waits for it)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for search in self.log[seen:]:
                if search.ok and search.started >= after and predicate(search):
                    return search
            seen = max(0, len(self.log) - 1)
            time.sleep(0.005)
        return None


def _server_env(base: dict[str, str], data_dir: Path) -> dict[str, str]:
    return {**base, "FACELEADS_DATA_DIR": str(data_dir)}


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server {url} exited with {proc.returncode}")
        try:
            if httpx.get(url + "/api/v1/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server {url} did not start")


def _sign_in(client: httpx.Client, username: str, password: str) -> str:
    response = client.post("/api/v1/auth/sign-in", json={"username": username, "password": password})
    response.raise_for_status()
    return str(response.json()["token"])


def _call(client: httpx.Client, token: str, method: str, path: str, **kw: Any) -> Any:
    response = client.request(method, "/api/v1" + path, headers={"Authorization": f"Bearer {token}"}, **kw)
    if response.status_code >= 400:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


def _seed(env: dict[str, str], data_dir: Path) -> dict[str, str]:
    """Demo users (one per role) and the demo gallery, in this process; returns the passwords."""
    os.environ.update(_server_env(env, data_dir))
    from faceleads.config import get_settings
    from faceleads.gallery.runtime import GalleryRuntime
    from faceleads.web.demo import ensure_admin, load_demo

    get_settings.cache_clear()
    rt = GalleryRuntime(get_settings())
    try:
        ensure_admin(rt, ADMIN_PASSWORD)
        return dict(load_demo(rt).passwords)
    finally:
        rt.close()


def run(rounds: int, database_url: str | None) -> dict[str, Any]:
    from pgtemp import TempPostgres, free_port
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from faceleads.db import make_engine, normalise_url

    work = Path(tempfile.mkdtemp(prefix="faceleads-two-servers-"))
    pg = None
    if database_url is None:
        pg = TempPostgres()  # its own folder: the postgres user must be able to reach it
        database_url = pg.start()
    procs: list[subprocess.Popen[bytes]] = []
    searcher: Searcher | None = None
    thread: threading.Thread | None = None
    try:
        suffix = secrets.token_hex(4)
        main_db, keys_db, keys_role = f"faceleads_{suffix}", f"faceleads_keys_{suffix}", f"faceleads_keys_{suffix}"
        admin = make_engine(database_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar()
            conn.execute(text(f'CREATE DATABASE "{main_db}"'))
            conn.execute(text(f"CREATE ROLE \"{keys_role}\" LOGIN PASSWORD 'keys-{suffix}'"))
            conn.execute(text(f'CREATE DATABASE "{keys_db}" OWNER "{keys_role}"'))
            conn.execute(text(f'REVOKE ALL ON DATABASE "{keys_db}" FROM PUBLIC'))
        base = make_url(normalise_url(database_url))
        env = {
            **os.environ,
            "FACELEADS_MODE": "production",
            "FACELEADS_DATABASE_URL": base.set(database=main_db).render_as_string(hide_password=False),
            "FACELEADS_KEYSTORE_URL": base.set(database=keys_db, username=keys_role, password=f"keys-{suffix}")
            .render_as_string(hide_password=False),
            "FACELEADS_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "FACELEADS_BLOB_STORE_DIR": str(work / "shared-store"),
            "FACELEADS_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "FACELEADS_AGENCY": "BENCH",
            "FACELEADS_ORT_THREADS": "1",
            "FACELEADS_WEB_INFERENCE_THREADS": "1",
        }
        passwords = _seed(env, work / "seed")
        urls = []
        for name in ("a", "b"):
            port = free_port()
            server_env = _server_env(env, work / f"server-{name}")
            log = open(work / f"server-{name}.log", "wb")  # noqa: SIM115 - kept open for the child
            procs.append(subprocess.Popen([sys.executable, "-m", "faceleads.cli.main", "serve", "--port", str(port)],
                                          env=server_env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))  # fmt: skip
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            _wait_ready(url, proc)
        a = httpx.Client(base_url=urls[0], timeout=120)
        b = httpx.Client(base_url=urls[1], timeout=120)
        records = _sign_in(a, "records", passwords["records"])
        supervisor = _sign_in(a, "supervisor", passwords["supervisor"])
        investigator = _sign_in(b, "investigator", passwords["investigator"])
        analyst = _sign_in(b, "analyst", passwords["analyst"])

        # The analyst's case on server B: one request, one probe (the person's last photo), face 1 chosen.
        case = _call(b, investigator, "POST", "/cases", json={
            "occurrence_number": f"BENCH-{suffix}", "offence": "ROB",
            "justification": "two-server propagation benchmark"})  # fmt: skip
        request = _call(b, investigator, "POST", f"/cases/{case['id']}/requests",
                        json={"purpose": "criminal-investigation", "justification": "benchmark searches"})
        photos = sorted((FACES / PERSON).glob("*.jpg"))
        probe = _call(b, investigator, "POST", f"/cases/{case['id']}/probes",
                      data={"source": "bench", "obtained_by": "bench", "legal_basis": "benchmark",
                            "obtained_at": "2026-01-01T00:00:00Z"},
                      files={"photo": ("probe.jpg", photos[-1].read_bytes(), "image/jpeg")})  # fmt: skip
        _call(b, analyst, "POST", f"/probes/{probe['id']}/face", json={"face": 1})

        searcher = Searcher(b, analyst, request["id"], probe["id"])
        thread = threading.Thread(target=searcher.run, daemon=True)
        thread.start()
        enrol_ms: list[float] = []
        destroy_ms: list[float] = []
        errors: list[str] = []
        started_all = time.monotonic()
        for r in range(min(rounds, len(photos) - 1)):
            number = f"BENCH-{suffix}-{r}"
            form = {"subject_number": number, "booking_number": f"BK-{suffix}-{r}", "booking_date": "2020-01-01",
                    "legal_authority": "benchmark"}  # fmt: skip
            _call(a, records, "POST", "/gallery/records", data=form,
                  files=[("photos", ("p.jpg", photos[r].read_bytes(), "image/jpeg"))])  # fmt: skip
            committed = time.monotonic()
            seen = searcher.first(committed, lambda s, n=number: n in s.subjects)
            if seen is None:
                errors.append(f"round {r}: the enrolment never showed on server B")
                continue
            enrol_ms.append((seen.ended - committed) * 1000)

            req = _call(a, records, "POST", "/destruction/requests", json={
                "subject_number": number, "requester": "the subject, via counsel",
                "grounds": "benchmark: acquitted at trial"})  # fmt: skip
            from faceleads.governance.destruction import CHECKLIST_ITEMS

            for item in CHECKLIST_ITEMS:
                _call(a, supervisor, "POST", f"/destruction/requests/{req['id']}/checklist",
                      json={"item": item, "satisfied": True, "note": "checked"})  # fmt: skip
            _call(a, supervisor, "POST", f"/destruction/requests/{req['id']}/decision",
                  json={"approve": True, "reason": "benchmark: eligible"})  # fmt: skip
            execute_start = time.monotonic()
            _call(a, records, "POST", f"/destruction/requests/{req['id']}/execution")
            executed = time.monotonic()
            gone = searcher.first(execute_start, lambda s, n=number: n not in s.subjects)
            if gone is None:
                errors.append(f"round {r}: the destroyed subject stayed in server B's results")
                continue
            destroy_ms.append((gone.ended - execute_start) * 1000)
            time.sleep(0.3)
            late = [s for s in searcher.log if s.ok and s.started >= executed and number in s.subjects]
            if late:
                errors.append(f"round {r}: {len(late)} search(es) after the destruction still returned the subject")
        searcher.stop.set()
        thread.join(120)
        elapsed = time.monotonic() - started_all
        done = [s for s in searcher.log if s.ok]
        all_errors = errors + searcher.errors
        return {
            "servers": 2,
            "database": f"PostgreSQL {version}",
            "enrol_visible_ms": round(max(enrol_ms), 1) if enrol_ms else None,
            "destroy_gone_ms": round(max(destroy_ms), 1) if destroy_ms else None,
            "searches": len(done),
            "errors": len(all_errors),
            "search_qps": round(len(done) / elapsed, 2) if elapsed > 0 else 0.0,
            "rounds": len(enrol_ms),
            "enrol_visible_ms_each": [round(v, 1) for v in enrol_ms],
            "destroy_gone_ms_each": [round(v, 1) for v in destroy_ms],
            "error_messages": all_errors[:10],
        }
    finally:
        if searcher is not None:
            searcher.stop.set()
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if pg is not None:
            pg.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rounds", type=int, default=3, help="enrol/destroy rounds (at most 3)")
    parser.add_argument("--database-url", help="an existing PostgreSQL server (user may create databases/roles)")
    args = parser.parse_args()
    result = run(args.rounds, args.database_url)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    if result["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
