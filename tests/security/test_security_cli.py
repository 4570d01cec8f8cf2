"""The command line end to end: bootstrap, login (0600 token file), admin commands, audit verify/export/stats."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from typer.testing import CliRunner

from faceleads.cli.main import app
from tests.dbs import RawSql, engine_url

PW = "Correct-Horse-Battery-9"


def run(runner: CliRunner, *args: str, input: str | None = None, code: int = 0) -> str:
    result = runner.invoke(app, list(args), input=input)
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.output


def flat(text: str) -> str:
    """Rich wraps long messages at the terminal width: compare with whitespace collapsed."""
    return " ".join(text.split())


def login(runner: CliRunner, username: str) -> None:
    run(runner, "login", "-u", username, input=f"{PW}\n\n")


def test_cli_identity_and_audit(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "admin", "bootstrap", "--agency", "METRO", "--agency-name", "Metro Police", "--username", "chief",
        input=f"{PW}\n{PW}\n")  # fmt: skip
    run(cli, "whoami", code=2)  # not signed in yet
    login(cli, "chief")
    token_file = tmp_path / "data" / ".session"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    me = json.loads(run(cli, "whoami", "--json"))
    assert me["username"] == "chief" and me["agency"] == "METRO"
    assert me["roles"] == ["administrator", "system_operator"]

    run(cli, "admin", "user-create", "auditor1", "--role", "auditor", input=f"{PW}\n{PW}\n")
    out = flat(run(cli, "admin", "user-create", "analyst1", "--role", "analyst", input=f"{PW}\n{PW}\n"))
    assert "waiting for a second person's approval" in out
    run(cli, "admin", "user-create", "trainer1", "--role", "training_officer", input=f"{PW}\n{PW}\n")
    run(cli, "admin", "user-create", "sgt", "--role", "supervisor", input=f"{PW}\n{PW}\n")
    run(cli, "admin", "user-create", "op2", "--role", "system_operator", input=f"{PW}\n{PW}\n")
    assert "training_officer" in flat(run(cli, "admin", "certify", "analyst1", "--expires", "2099-01-01", code=2))
    run(cli, "admin", "agency-create", "COUNTY", "County Sheriff", "--admin", "county-chief", input=f"{PW}\n{PW}\n")
    assert "COUNTY" in run(cli, "admin", "agency-list")
    pending = json.loads(run(cli, "admin", "approvals", "--json"))
    assert sorted(a["description"] for a in pending) == ["grant the role analyst to analyst1",
                                                          "grant the role supervisor to sgt"]
    # Nobody approves their own request; METRO has no supervisor yet, so a second system operator approves the first.
    first = next(a["id"] for a in pending if a["role"] == "supervisor")
    assert "requester cannot approve" in flat(run(cli, "admin", "approve", str(first), code=2))
    run(cli, "logout")
    login(cli, "op2")
    assert [a["id"] for a in json.loads(run(cli, "admin", "approvals", "--json"))] == [first]
    run(cli, "admin", "approve", str(first), "--note", "first supervisor of METRO, confirmed by phone")
    run(cli, "logout")
    login(cli, "trainer1")
    assert "waiting" in flat(run(cli, "admin", "certify", "analyst1", "--expires", "2099-01-01", "--reference",
                                 "COURSE-1"))  # fmt: skip
    run(cli, "logout")
    login(cli, "sgt")
    for request in json.loads(run(cli, "admin", "approvals", "--json")):
        run(cli, "admin", "approve", str(request["id"]))
    run(cli, "logout")
    login(cli, "chief")
    listing = json.loads(run(cli, "admin", "user-list", "--json"))
    assert {u["username"]: u["effective_roles"] for u in listing} == {
        "analyst1": ["analyst"], "auditor1": ["auditor"], "chief": ["administrator", "system_operator"],
        "op2": ["system_operator"], "sgt": ["supervisor"], "trainer1": ["training_officer"],
    }  # fmt: skip
    # The administrator reads no audit entries and no images.
    assert "needs one of the roles auditor" in flat(run(cli, "audit", "export", code=2))

    run(cli, "logout")
    assert not token_file.exists()
    login(cli, "auditor1")
    assert "intact" in run(cli, "audit", "verify")
    anchor = run(cli, "audit", "anchor", "--short").strip()
    seq, _, digest = anchor.partition(":")
    assert seq.isdigit() and len(digest) == 64
    assert "intact" in run(cli, "audit", "verify", "--anchor", anchor)

    out_file = tmp_path / "audit.json"
    run(cli, "audit", "export", "--format", "json", "--action", "permission_change", "--output", str(out_file))
    exported = json.loads(out_file.read_text())
    assert sorted(e["details"]["change"] for e in exported) == ["certify", "grant_role", "grant_role"]
    assert all(e["details"]["approval_id"] for e in exported)  # every one applied by a second person
    csv_text = run(cli, "audit", "export", "--format", "csv", "--user", "chief")
    assert csv_text.splitlines()[0].startswith("seq,at,user_id,username")
    assert "needs one of the roles" in flat(run(cli, "admin", "user-create", "x-user", input=f"{PW}\n{PW}\n", code=2))
    assert json.loads(run(cli, "audit", "stats", "--json")) == []
    assert "own agency only" in flat(run(cli, "audit", "export", "--agency", "COUNTY", code=2))

    # Tamper with entry 3 by direct SQL: verification fails, names it, exits non-zero.
    raw = RawSql(engine_url(tmp_path / "data")).drop_audit_triggers()
    raw.execute("UPDATE audit_log SET outcome = 'denied' WHERE seq = 3")
    raw.close()
    report = json.loads(run(cli, "audit", "verify", "--json", code=1))
    assert report["ok"] is False and report["first_bad_seq"] == 3 and "modified" in report["reason"]
    assert "BROKEN at entry 3" in flat(run(cli, "audit", "verify", code=1))


def test_cli_bad_login_is_refused(cli: CliRunner) -> None:
    run(cli, "admin", "bootstrap", "--agency", "METRO", "--agency-name", "Metro", "--username", "chief",
        input=f"{PW}\n{PW}\n")  # fmt: skip
    out = run(cli, "login", "-u", "chief", input="wrong-password-1\n\n", code=2)
    assert "sign-in refused" in out
    run(cli, "logout")  # harmless when not signed in


def test_cli_totp_enrolment_and_recovery_sign_in(cli: CliRunner, tmp_path: Path) -> None:
    from faceleads.db import utcnow
    from faceleads.security import totp

    run(cli, "admin", "bootstrap", "--agency", "METRO", "--agency-name", "Metro", "--username", "chief",
        input=f"{PW}\n{PW}\n")  # fmt: skip
    login(cli, "chief")
    qr = tmp_path / "qr.png"
    out = run(cli, "account", "totp-enrol", "--qr", str(qr))
    assert qr.read_bytes().startswith(b"\x89PNG") and stat.S_IMODE(qr.stat().st_mode) == 0o600
    secret = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("secret: "))
    assert "otpauth://totp/faceleads:chief%40METRO?secret=" + secret in out
    assert "does not match" in flat(run(cli, "account", "totp-confirm", "12345", code=2))
    out = run(cli, "account", "totp-confirm", totp.code_at(secret, utcnow()))
    codes = [line for line in out.splitlines() if len(line) == 19 and line.count("-") == 3]
    assert len(codes) == 10
    run(cli, "logout")
    assert "sign-in refused" in flat(run(cli, "login", "-u", "chief", "--code", "", input=f"{PW}\n", code=2))
    run(cli, "login", "-u", "chief", "--code", codes[0], input=f"{PW}\n")
    assert json.loads(run(cli, "whoami", "--json"))["username"] == "chief"
    run(cli, "logout")
    assert "sign-in refused" in flat(run(cli, "login", "-u", "chief", "--code", codes[0], input=f"{PW}\n", code=2))
