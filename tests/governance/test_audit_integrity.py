"""Attacks on the audit log through direct database access, end to end through ``faceleads audit ...``:

* a forged entry appended after the head, or a deleted head row, must neither crash ``audit verify`` (verdict
  first, recorded without colliding) nor stop later audited actions (the chain is re-anchored, loudly);
* an emptied or cut log beside older data is tampering, and signed anchors kept outside the database (the anchor
  file, an oversight body's copy) catch a log truncated or rewritten behind them.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from typer.testing import CliRunner

from faceleads.cli.main import app
from faceleads.core.audit import AuditEntry, compute_hash
from tests.security.test_security_cli import PW


@pytest.fixture()
def auditor(cli: CliRunner) -> CliRunner:
    """A fresh system with its administrator and an auditor signed in on the command line."""
    run(cli, "admin", "bootstrap", "--agency", "METRO", "--agency-name", "Metro", "--username", "chief",
        input=f"{PW}\n{PW}\n")  # fmt: skip
    run(cli, "login", "-u", "chief", input=f"{PW}\n\n")
    run(cli, "admin", "user-create", "auditor1", "--role", "auditor", input=f"{PW}\n{PW}\n")
    run(cli, "logout")
    run(cli, "login", "-u", "auditor1", input=f"{PW}\n\n")
    return cli


def run(runner: CliRunner, *args: str, input: str | None = None, code: int = 0) -> str:
    result = runner.invoke(app, list(args), input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args} crashed: {result.exception!r}\n{result.output}"
    )
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.output


def _db(tmp_path: Path) -> sqlite3.Connection:
    """The attacker's direct connection, append-only triggers dropped."""
    conn = sqlite3.connect(tmp_path / "data" / "faceleads.db", isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    return conn


def _append_forgery(conn: sqlite3.Connection) -> int:
    """A well-formed entry chained onto the last one, with a correct hash, but the head row left alone."""
    seq, prev = conn.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    forged = AuditEntry(seq=seq + 1, at=__import__("datetime").datetime(2026, 1, 1), user_id=None, username="chief",
                        agency_id=1, agency_code="METRO", action="permission_change", object_ref="user:2",
                        case_ref=None, purpose=None, outcome="ok", details_json="{}", prev_hash=prev)  # fmt: skip
    conn.execute(
        "INSERT INTO audit_log (seq, at, user_id, username, agency_id, agency_code, action, object_ref, case_ref, "
        "purpose, outcome, details_json, prev_hash, entry_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (forged.seq, "2026-01-01 00:00:00.000000", None, "chief", 1, "METRO", "permission_change", "user:2", None,
         None, "ok", "{}", prev, compute_hash(forged)),
    )  # fmt: skip
    return int(forged.seq)


def _actions(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "data" / "faceleads.db") as conn:
        return [a for (a,) in conn.execute("SELECT action FROM audit_log ORDER BY seq")]


# --- item 3: a broken head never crashes verify and never stops the service ----------------------------------


def test_verify_after_a_forged_entry_beyond_the_head_prints_its_verdict_and_records_it(
    auditor: CliRunner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    forged = _append_forgery(_db(tmp_path))
    with caplog.at_level(logging.CRITICAL, logger="faceleads.audit"):
        out = run(auditor, "audit", "verify", "--json", code=1)
    verdict = json.loads(out[: out.rindex("}") + 1])
    assert verdict["ok"] is False and verdict["first_bad_seq"] == forged and verdict["highest_seq"] == forged
    assert "head" in verdict["reason"]
    # The verification was recorded after the forged entry, without colliding with it, and an alert went out.
    actions = _actions(tmp_path)
    assert actions[-2:] == ["audit_chain_break", "audit_verify"]
    assert any("AUDIT CHAIN BROKEN" in r.getMessage() for r in caplog.records)
    again = json.loads(run(auditor, "audit", "verify", "--json", code=1))
    assert again["first_bad_seq"] == forged and "re-anchored" in again["reason"]


def test_a_deleted_head_row_does_not_stop_later_audited_actions(auditor: CliRunner, tmp_path: Path) -> None:
    _db(tmp_path).execute("DELETE FROM audit_chain_head")
    run(auditor, "logout")  # audited
    run(auditor, "login", "-u", "auditor1", input=f"{PW}\n\n")  # audited: sign-in keeps working
    actions = _actions(tmp_path)
    assert "audit_chain_break" in actions and actions[-1] == "login"
    verdict = json.loads(run(auditor, "audit", "verify", "--json", code=1))
    assert verdict["ok"] is False and "head" in verdict["reason"]


# --- item 4: empty or cut logs, anchors outside the database -------------------------------------------------


def test_a_wiped_log_beside_older_data_is_tampering(auditor: CliRunner, tmp_path: Path) -> None:
    conn = _db(tmp_path)
    conn.execute("DELETE FROM audit_log")
    conn.execute("DELETE FROM audit_chain_head")
    conn.close()
    verdict = json.loads(run(auditor, "audit", "verify", "--json", code=1))
    assert verdict["ok"] is False and "wiped" in verdict["reason"], verdict


def test_a_log_cut_and_restarted_is_tampering(auditor: CliRunner, tmp_path: Path) -> None:
    conn = _db(tmp_path)
    conn.execute("DELETE FROM audit_log")
    conn.execute("DELETE FROM audit_chain_head")
    conn.execute("UPDATE users SET created_at = '2025-06-01 08:00:00.000000'")  # the users are a year old
    conn.close()
    run(auditor, "logout")
    run(auditor, "login", "-u", "auditor1", input=f"{PW}\n\n")  # a fresh chain starts: 1, 2, ... all well-formed
    verdict = json.loads(run(auditor, "audit", "verify", "--json", code=1))
    assert verdict["ok"] is False and "cut" in verdict["reason"], verdict


def test_signed_anchor_outside_the_database_catches_a_truncated_log(auditor: CliRunner, tmp_path: Path) -> None:
    """The attacker deletes the last entries and moves the head back consistently: the chain itself looks intact,
    but the anchor written outside the database (and the oversight body's copy) remembers how long it was."""
    document = json.loads(run(auditor, "audit", "anchor"))
    kept = tmp_path / "oversight-anchor.json"
    kept.write_text(json.dumps(document), encoding="utf-8")
    # An oversight body checks the anchor with the public key alone.
    body = json.dumps({k: document[k] for k in ("format", "seq", "hash", "entries", "at", "first_entry_at")},
                      sort_keys=True, separators=(",", ":")).encode()  # fmt: skip
    Ed25519PublicKey.from_public_bytes(base64.b64decode(document["public_key"])).verify(
        base64.b64decode(document["signature"]), body
    )
    anchored = document["seq"]
    conn = _db(tmp_path)
    conn.execute("DELETE FROM audit_log WHERE seq >= ?", (anchored - 1,))
    seq, digest = conn.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    conn.execute("UPDATE audit_chain_head SET seq = ?, head_hash = ? WHERE id = 1", (seq, digest))
    conn.close()
    verdict = json.loads(run(auditor, "audit", "verify", "--json", code=1))
    assert verdict["ok"] is False and verdict["first_bad_seq"] == anchored and verdict["anchors_checked"] >= 1
    # Even with the anchor file gone too, the copy the oversight body kept catches it.
    anchors = tmp_path / "data" / "keys" / "audit-anchors.jsonl"
    assert anchors.is_file() and oct(anchors.stat().st_mode & 0o777) == "0o600"
    anchors.unlink()
    # Without any anchor a consistent truncation is invisible to the chain: the documented limit.
    assert json.loads(run(auditor, "audit", "verify", "--json"))["ok"] is True
    verdict = json.loads(run(auditor, "audit", "verify", "--anchor-file", str(kept), "--json", code=1))
    assert verdict["ok"] is False and "anchor" in verdict["reason"]


def test_a_forged_anchor_is_ignored(auditor: CliRunner, tmp_path: Path) -> None:
    document = json.loads(run(auditor, "audit", "anchor"))
    document["seq"] += 1000  # claims a longer log than there ever was
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document), encoding="utf-8")
    result = CliRunner().invoke(app, ["audit", "verify", "--anchor-file", str(forged), "--json"])
    assert result.exit_code == 0, result.output
    assert "ignored an anchor: anchor altered" in json.loads(result.stdout)["notes"][0]


# --- the governance services: authorised, audited, one path for CLI and API -----------------------------------


def test_verify_and_anchor_are_authorised_and_audited(auditor: CliRunner, tmp_path: Path) -> None:
    """``audit verify`` and ``audit anchor`` go through ``governance.audit_log``: a role without the audit actions
    is refused before anything is read or written (and the refusal is in the log); an anchor is recorded."""
    anchors = tmp_path / "data" / "keys" / "audit-anchors.jsonl"
    written = anchors.read_text(encoding="utf-8").count("\n") if anchors.exists() else 0
    short = run(auditor, "audit", "anchor", "--short").strip()
    assert _actions(tmp_path)[-1] == "audit_anchor"
    assert anchors.read_text(encoding="utf-8").count("\n") == written + 1
    run(auditor, "logout")
    run(auditor, "login", "-u", "chief", input=f"{PW}\n\n")
    run(auditor, "admin", "user-create", "clerk1", "--role", "records_officer", input=f"{PW}\n{PW}\n")
    run(auditor, "logout")
    run(auditor, "login", "-u", "clerk1", input=f"{PW}\n\n")
    run(auditor, "audit", "verify", "--anchor", short, code=2)
    run(auditor, "audit", "anchor", code=2)
    with sqlite3.connect(tmp_path / "data" / "faceleads.db") as conn:
        refused = conn.execute(
            "SELECT action, outcome FROM audit_log WHERE username = 'clerk1' AND outcome = 'denied'"
        ).fetchall()
    assert ("audit_verify", "denied") in refused and len(refused) == 2
    assert anchors.read_text(encoding="utf-8").count("\n") == written + 1  # no anchor for a refused request
