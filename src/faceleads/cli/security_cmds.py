"""``faceleads login/logout/whoami``, ``faceleads admin ...``, ``faceleads account ...`` and ``faceleads audit ...``.

The session token from ``faceleads login`` is kept in a file readable only by its owner (mode 0600,
``<data_dir>/.session`` or ``FACELEADS_SESSION_FILE``); ``FACELEADS_SESSION`` (a token) overrides it, for scripts.
Every command acts for the signed-in user and goes through the central policy; refusals are audited.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from faceleads.cli.common import cli_errors, console, emit, err_console, print_json
from faceleads.config import Settings, get_settings
from faceleads.core.actor import Actor
from faceleads.core.uow import transaction
from faceleads.datadir import secure_data_dir
from faceleads.db import create_schema, make_engine, make_session_factory
from faceleads.errors import AuthenticationError, SecondFactorEnrolmentRequired, ValidationError
from faceleads.governance import audit_integrity, audit_log
from faceleads.security import approvals, auth, users

login_help = "Sign in: username, password and (when enrolled) a TOTP or recovery code; keeps a session token."
admin_app = typer.Typer(
    name="admin",
    help="Administration: agencies, users, roles, certifications, and the approvals they wait for.",
    no_args_is_help=True,
)
account_app = typer.Typer(name="account", help="Your own account: password, TOTP second factor.", no_args_is_help=True)
audit_app = typer.Typer(
    name="audit", help="The tamper-evident audit log: verify, anchor, export, statistics.", no_args_is_help=True
)


# --- plumbing --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _factory_for(url: str) -> sessionmaker[Session]:
    engine = make_engine(url)
    create_schema(engine)
    return make_session_factory(engine)


def session_factory(settings: Settings | None = None) -> sessionmaker[Session]:
    """The database session factory for the configured database (schema brought up to date once per process)."""
    settings = settings or get_settings()
    secure_data_dir(settings)
    return _factory_for(settings.effective_database_url)


def session_file(settings: Settings) -> Path:
    """Where ``faceleads login`` keeps the session token."""
    return settings.session_file or (settings.data_dir / ".session")


def stored_token(settings: Settings) -> str | None:
    """The current session token: ``FACELEADS_SESSION`` if set, else the session file's content."""
    if settings.session:
        return settings.session.strip()
    path = session_file(settings)
    try:
        return path.read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        return None


def _write_token(path: Path, token: str) -> None:
    """Write the token so that only the owner can read it (created 0600; never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, token.encode("ascii"))
    finally:
        os.close(fd)


def current_actor(settings: Settings | None = None) -> Actor:
    """The signed-in user of this command line (slides the session's idle timeout).

    Raises :class:`AuthenticationError` when nobody is signed in or the session expired. Other domains' CLI
    commands use this to act for the signed-in user.
    """
    settings = settings or get_settings()
    token = stored_token(settings)
    if not token:
        raise AuthenticationError("not signed in: run 'faceleads login'")
    with transaction(session_factory(settings)) as session:
        return auth.actor_for_session(session, token, settings=settings)


def _read_password(prompt: str, *, confirm: bool = False) -> str:
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


# --- login / logout / whoami -----------------------------------------------------------------------------------


def login(
    username: Annotated[str, typer.Option("--username", "-u", prompt=True, help="Your user name.")],
    code: Annotated[
        str | None,
        typer.Option("--code", help="TOTP code or recovery code (prompted when omitted; blank if not enrolled)."),
    ] = None,
) -> None:
    """Sign in and keep the session token in a private file (mode 0600) under the data directory."""
    with cli_errors():
        settings = get_settings()
        password = _read_password("Password")
        if code is None:
            code = str(typer.prompt("TOTP or recovery code (blank if none)", default="", show_default=False))
        try:
            signed = auth.authenticate(session_factory(settings), username, password, code or None,
                                       settings=settings)  # fmt: skip
        except SecondFactorEnrolmentRequired as exc:
            # Keep the enrolment-only session so that 'faceleads account totp-enrol' works; nothing else does.
            _write_token(session_file(settings), exc.enrolment_token)
            raise
        path = session_file(settings)
        _write_token(path, signed.token)
        roles = ", ".join(sorted(signed.actor.roles)) or "none"
        err_console.print(
            f"signed in as [bold]{signed.actor.username}[/] ({signed.actor.agency_code}; roles: {roles}); "
            f"session ends after {settings.session_idle_minutes} min idle",
            highlight=False,
        )


def logout() -> None:
    """End the current session and forget its token."""
    with cli_errors():
        settings = get_settings()
        token = stored_token(settings)
        if not token:
            err_console.print("not signed in")
            return
        with transaction(session_factory(settings)) as session:
            auth.logout(session, token)
        with contextlib.suppress(FileNotFoundError):
            session_file(settings).unlink()
        err_console.print("signed out")


def whoami(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show the signed-in user, agency and effective roles."""
    with cli_errors():
        actor = current_actor()
        roles = sorted(actor.roles)
        data = {
            "username": actor.username,
            "user_id": actor.user_id,
            "agency": actor.agency_code,
            "agency_id": actor.agency_id,
            "roles": roles,
        }
        emit(data, json_out, lambda: console.print(
            f"{actor.username} @ {actor.agency_code} — roles: {', '.join(roles) or 'none'}",
            highlight=False,
        ))  # fmt: skip


# --- admin -----------------------------------------------------------------------------------------------------


@admin_app.command("bootstrap")
def admin_bootstrap(
    agency: Annotated[str, typer.Option("--agency", help="Code of the first agency, e.g. METRO.")],
    agency_name: Annotated[str, typer.Option("--agency-name", help="Its full name.")],
    username: Annotated[str, typer.Option("--username", help="User name of the first administrator.")],
) -> None:
    """Create the first agency and administrator (only on an empty system)."""
    with cli_errors():
        password = _read_password("Password for the administrator", confirm=True)
        user_id = users.bootstrap(session_factory(), agency, agency_name, username, password)
        err_console.print(f"created administrator {username!r} (user {user_id}) in agency {agency}")


@admin_app.command("agency-create")
def admin_agency_create(
    code: Annotated[str, typer.Argument(help="Agency code (upper case).")],
    name: Annotated[str, typer.Argument(help="Agency name.")],
    admin: Annotated[str, typer.Option("--admin", help="User name of the agency's first administrator.")],
    admin_name: Annotated[str, typer.Option("--admin-name", help="Display name of the administrator.")] = "",
) -> None:
    """System operators: create an agency with its first administrator (password prompted); audited."""
    with cli_errors():
        actor = current_actor()
        password = _read_password(f"Initial password for {admin}", confirm=True)
        info = users.create_agency(session_factory(), actor, code, name, admin_username=admin,
                                   admin_password=password, admin_display_name=admin_name)  # fmt: skip
        err_console.print(f"created agency {info.code} (id {info.id}) with its first administrator {admin!r}")


@admin_app.command("agency-list")
def admin_agency_list(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """System operators: every agency."""
    with cli_errors():
        rows = users.list_agencies(session_factory(), current_actor())

        def table() -> Table:
            t = Table("id", "code", "name")
            for a in rows:
                t.add_row(str(a.id), a.code, a.name)
            return t

        emit([{"id": a.id, "code": a.code, "name": a.name} for a in rows], json_out, table)


@admin_app.command("user-create")
def admin_user_create(
    username: Annotated[str, typer.Argument(help="New user name (lower case).")],
    agency: Annotated[str, typer.Option("--agency", help="Agency code (default: your own).")] = "",
    role: Annotated[list[str] | None, typer.Option("--role", help="Role to grant; repeat for several.")] = None,
    display_name: Annotated[str, typer.Option("--name", help="Display name.")] = "",
) -> None:
    """Create a user with an initial password (prompted) and roles."""
    with cli_errors():
        actor = current_actor()
        password = _read_password(f"Initial password for {username}", confirm=True)
        change = users.create_user(
            session_factory(),
            actor,
            agency or actor.agency_code,
            username,
            password,
            display_name=display_name,
            roles=role or [],
        )
        err_console.print(change.message, highlight=False)


@admin_app.command("user-list")
def admin_user_list(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the users of your agency with roles, lockout, TOTP and certification expiry."""
    with cli_errors():
        rows = users.list_users(session_factory(), current_actor())
        data = [
            {
                "username": r.username,
                "agency": r.agency_code,
                "roles": list(r.roles),
                "effective_roles": list(r.effective_roles),
                "active": r.active,
                "locked_until": r.locked_until.isoformat() if r.locked_until else None,
                "totp": r.totp_enabled,
                "certified_until": r.certified_until.isoformat() if r.certified_until else None,
            }
            for r in rows
        ]

        def table() -> Table:
            t = Table("user", "roles", "effective", "active", "locked until", "TOTP", "certified until")
            for r in rows:
                t.add_row(
                    r.username,
                    ", ".join(r.roles),
                    ", ".join(r.effective_roles),
                    "yes" if r.active else "no",
                    f"{r.locked_until:%Y-%m-%d %H:%M}" if r.locked_until else "",
                    "yes" if r.totp_enabled else "no",
                    f"{r.certified_until:%Y-%m-%d}" if r.certified_until else "",
                )
            return t

        emit(data, json_out, table)


@admin_app.command("role-grant")
def admin_role_grant(
    username: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Argument(help="Role: investigator, analyst, reviewer, supervisor, ...")],
) -> None:
    """Grant a role to a user of your agency (a biometric role waits for a second person's approval); system
    operators grant oversight and system_operator to users of any agency."""
    with cli_errors():
        change = users.grant_role(session_factory(), current_actor(), username, role)
        err_console.print(change.message, highlight=False)


@admin_app.command("role-revoke")
def admin_role_revoke(
    username: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Argument(help="Role to revoke.")],
) -> None:
    """Revoke a role from a user of your agency."""
    with cli_errors():
        changed = users.revoke_role(session_factory(), current_actor(), username, role)
        err_console.print("revoked" if changed else "not held")


@admin_app.command("certify")
def admin_certify(
    username: Annotated[str, typer.Argument(help="User name.")],
    expires: Annotated[str, typer.Option("--expires", help="Expiry date YYYY-MM-DD (exclusive).")],
    reference: Annotated[str, typer.Option("--reference", help="Course or certificate number.")] = "",
) -> None:
    """Training officers: record a facial-comparison certification (analysts and reviewers need a valid one); it
    takes effect once a second person approves it."""
    with cli_errors():
        expires_at = audit_log.parse_when(expires, "--expires")
        assert expires_at is not None
        change = users.certify(session_factory(), current_actor(), username, expires_at, reference=reference)
        err_console.print(change.message, highlight=False)


@admin_app.command("certification-revoke")
def admin_certification_revoke(username: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Revoke every current certification of a user."""
    with cli_errors():
        count = users.revoke_certifications(session_factory(), current_actor(), username)
        err_console.print(f"revoked {count} certification(s)")


@admin_app.command("password-reset")
def admin_password_reset(username: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Set a new password (prompted) for a user; their sessions end. For a user with a biometric role it waits for
    a second person's approval."""
    with cli_errors():
        actor = current_actor()
        password = _read_password(f"New password for {username}", confirm=True)
        change = users.reset_password(session_factory(), actor, username, password)
        err_console.print(change.message, highlight=False)


@admin_app.command("unlock")
def admin_unlock(username: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Lift a lockout after failed sign-ins."""
    with cli_errors():
        users.unlock(session_factory(), current_actor(), username)
        err_console.print(f"{username} unlocked")


@admin_app.command("user-deactivate")
def admin_user_deactivate(username: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Deactivate a user (sign-in refused, sessions ended; the user stays in the audit trail)."""
    with cli_errors():
        users.set_active(session_factory(), current_actor(), username, False)
        err_console.print(f"{username} deactivated")


@admin_app.command("user-activate")
def admin_user_activate(username: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Reactivate a deactivated user."""
    with cli_errors():
        users.set_active(session_factory(), current_actor(), username, True)
        err_console.print(f"{username} activated")


@admin_app.command("totp-reset")
def admin_totp_reset(username: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Remove a user's TOTP and recovery codes (lost device); they enrol again. For a user with a biometric role it
    waits for a second person's approval."""
    with cli_errors():
        change = users.reset_totp(session_factory(), current_actor(), username)
        err_console.print(change.message, highlight=False)


@admin_app.command("approvals")
def admin_approvals(
    status: Annotated[str, typer.Option("--status", help="pending, approved, rejected, expired or all.")] = "pending",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Requests waiting for a second person's approval (biometric roles, certifications, credential resets)."""
    with cli_errors():
        rows = approvals.list_approvals(session_factory(), current_actor(),
                                        status=None if status == "all" else status)  # fmt: skip

    def table() -> Table:
        t = Table("id", "agency", "change", "requested by", "requested", "expires", "status")
        for a in rows:
            t.add_row(str(a.id), a.agency_code, a.description, a.requested_by, f"{a.requested_at:%Y-%m-%d %H:%M}",
                      f"{a.expires_at:%Y-%m-%d %H:%M}", a.status + (f" by {a.decided_by}" if a.decided_by else ""))
        return t

    emit([a.to_json() for a in rows], json_out, table)


@admin_app.command("approve")
def admin_approve(
    approval_id: Annotated[int, typer.Argument(help="Approval request id.")],
    note: Annotated[str, typer.Option("--note", help="Why you approve (recorded).")] = "",
) -> None:
    """Supervisors: approve a request (not your own, nor for a user you created); its change takes effect."""
    with cli_errors():
        info = approvals.approve(session_factory(), current_actor(), approval_id, note)
        err_console.print(f"approved request {info.id}: {info.description}", highlight=False)


@admin_app.command("reject")
def admin_reject(
    approval_id: Annotated[int, typer.Argument(help="Approval request id.")],
    note: Annotated[str, typer.Option("--note", help="Why (required).")],
) -> None:
    """Reject a request (or withdraw your own)."""
    with cli_errors():
        info = approvals.reject(session_factory(), current_actor(), approval_id, note)
        err_console.print(f"request {info.id} {info.status}: {info.description}", highlight=False)


# --- account ---------------------------------------------------------------------------------------------------


@account_app.command("password")
def account_password() -> None:
    """Change your own password."""
    with cli_errors():
        actor = current_actor()
        old = _read_password("Current password")
        new = _read_password("New password", confirm=True)
        users.change_own_password(session_factory(), actor, old, new)
        err_console.print("password changed")


@account_app.command("totp-enrol")
def account_totp_enrol(
    qr: Annotated[Path | None, typer.Option("--qr", help="Write the QR code PNG here (mode 0600).")] = None,
) -> None:
    """Start TOTP enrolment: shows the secret and URI (and writes a QR code); confirm with totp-confirm."""
    with cli_errors():
        settings = get_settings()
        actor = current_actor(settings)
        enrolment = users.begin_totp_enrolment(session_factory(settings), actor, settings=settings)
        if qr is not None:
            fd = os.open(qr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, enrolment.qr_png)
            finally:
                os.close(fd)
            err_console.print(f"QR code written to {qr}")
        typer.echo(f"secret: {enrolment.secret}\nuri: {enrolment.uri}")
        err_console.print("add it to your authenticator app, then run: faceleads account totp-confirm CODE")


@account_app.command("totp-confirm")
def account_totp_confirm(code: Annotated[str, typer.Argument(help="The 6-digit code your app shows now.")]) -> None:
    """Finish TOTP enrolment; prints your recovery codes once — store them offline."""
    with cli_errors():
        settings = get_settings()
        actor = current_actor(settings)
        codes = users.confirm_totp_enrolment(session_factory(settings), actor, code, settings=settings)
        err_console.print("TOTP enabled. Recovery codes (each works once; they are not shown again):")
        for recovery in codes:
            typer.echo(recovery)


@account_app.command("recovery-codes")
def account_recovery_codes() -> None:
    """Replace your recovery codes with fresh ones (the old ones stop working)."""
    with cli_errors():
        codes = users.regenerate_recovery_codes(session_factory(), current_actor())
        for recovery in codes:
            typer.echo(recovery)


# --- audit -----------------------------------------------------------------------------------------------------


def _parse_anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise ValidationError(f"anchor {text!r} must look like SEQ:SHA256HEX (as printed by 'faceleads audit anchor')")
    return int(seq), digest.lower()


def _print_verdict(verdict: audit_integrity.Verdict, json_out: bool) -> None:
    """The verdict and its notes (what was checked, anchors refused)."""
    result = verdict.result

    def line() -> None:
        if result.ok:
            console.print(
                f"audit chain intact: {result.entries} entries, head {result.head_seq}:{result.head_hash} "
                f"({verdict.anchors_checked} anchor(s) checked)",
                soft_wrap=True,
            )
        else:
            console.print(
                f"[bold red]audit chain BROKEN at entry {result.first_bad_seq}:[/] {result.reason}", soft_wrap=True
            )

    emit(verdict.to_json(), json_out, line)
    for note in verdict.notes:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        list[str] | None, typer.Option("--anchor", help="An externally recorded SEQ:HASH to check; repeatable.")
    ] = None,
    anchor_file: Annotated[
        list[Path] | None,
        typer.Option("--anchor-file", help="Signed anchor JSON kept outside the system (from 'audit anchor')."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Walk the hash chain and check it against older data and every anchor; exit code 1 and the first bad entry
    when it was modified, deleted, inserted, reordered, cut or wiped. The verdict is made before the verification
    is audited; a failure to record it is printed beside the verdict, never instead of it."""
    with cli_errors():
        settings = get_settings()
        anchors = [_parse_anchor(a) for a in anchor or []]
        documents = []
        for path in anchor_file or []:
            if not path.is_file():
                raise ValidationError(f"anchor file {path} does not exist")
            documents.extend(audit_integrity.read_anchor_documents(path))
        # The service makes the verdict before recording it; a failure to record comes back with the verdict.
        verdict = audit_log.verify(session_factory(settings), current_actor(settings), settings, anchors=anchors,
                                   anchor_documents=documents)  # fmt: skip
    _print_verdict(verdict, json_out)
    if verdict.recording_problem is not None:
        err_console.print(f"[bold red]warning:[/] {verdict.recording_problem}", highlight=False, soft_wrap=True)
    if not verdict.ok:
        raise typer.Exit(code=1)


@audit_app.command("anchor")
def audit_anchor(
    out: Annotated[Path | None, typer.Option("--out", help="Also write the signed anchor JSON to this file.")] = None,
    short: Annotated[bool, typer.Option("--short", help="Print only SEQ:HASH.")] = False,
) -> None:
    """Verify the chain, then print a signed anchor (JSON: head sequence number, hash, time; Ed25519 signature)
    and append it to the anchor file. Give it to the oversight body: a later 'audit verify --anchor-file' fails if
    the log was cut or rewritten behind it. A broken chain is not anchored (exit code 1)."""
    with cli_errors():
        settings = get_settings()
        verdict, document = audit_log.anchor(session_factory(settings), current_actor(settings), settings)
    if verdict.recording_problem is not None:
        err_console.print(f"[bold red]warning:[/] {verdict.recording_problem}", highlight=False, soft_wrap=True)
    if document is None:
        _print_verdict(verdict, False)
        raise typer.Exit(code=1)
    if out is not None:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(document, indent=2) + "\n")
    if short:
        typer.echo(f"{document['seq']}:{document['hash']}")
    else:
        print_json(document)


@audit_app.command("export")
def audit_export(
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    since: Annotated[str | None, typer.Option("--since", help="From this day/time (UTC, inclusive).")] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Up to this day (inclusive) or time (exclusive).")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user name.")] = None,
    action: Annotated[str | None, typer.Option("--action", help="Only this action (e.g. login, search).")] = None,
    agency: Annotated[str | None, typer.Option("--agency", help="Agency code (auditors read their own).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")] = None,
) -> None:
    """Export audit entries of your agency as CSV or JSON, with filters."""
    with cli_errors():
        flt = audit_log.AuditFilter(
            since=audit_log.parse_when(since, "--since"),
            until=audit_log.parse_when(until, "--until", end=True),
            username=user,
            action=action,
        )
        body, count = audit_log.export(session_factory(), current_actor(), fmt, flt, agency_code=agency)
        if output is None:
            sys.stdout.write(body)
        else:
            with output.open("w", encoding="utf-8", newline="") as handle:
                handle.write(body)
        if output is not None:
            err_console.print(f"exported {count} entries to {output}")


@audit_app.command("stats")
def audit_stats(
    since: Annotated[str | None, typer.Option("--since", help="From this day (UTC).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Up to this day (inclusive).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Searches, leads, verified leads, conclusion outcomes and exigent ratifications by agency, legal regime,
    offence and month (public reporting)."""
    with cli_errors():
        flt = audit_log.AuditFilter(
            since=audit_log.parse_when(since, "--since"), until=audit_log.parse_when(until, "--until", end=True)
        )
        rows = audit_log.statistics(session_factory(), current_actor(), flt)

    def table() -> Table:
        t = Table("agency", "regime", "offence", "month", "searches", "leads", "verified", "excluded", "possible",
                  "inconclusive", "ratified", "refused")
        for row in rows:
            t.add_row(
                row["agency"],
                row["regime"],
                row["offence"],
                row["month"],
                *(
                    str(row[k])
                    for k in ("searches", "leads", "verified_leads", "excluded", "possible_lead", "inconclusive",
                              "ratified", "ratification_refused")
                ),
            )
        return t

    emit(rows, json_out, table)


@audit_app.command("partner-access")
def audit_partner_access(
    since: Annotated[str | None, typer.Option("--since", help="From this day (UTC).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Up to this day (inclusive).")] = None,
    partner: Annotated[str | None, typer.Option("--partner", help="Only this partner agency.")] = None,
    agency: Annotated[str | None, typer.Option("--agency", help="Oversight: the owning agency.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="At most this many.")] = 100,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every read of your agency's booking records by partner agencies (auditors, administrators, oversight)."""
    from faceleads.cli.context import runtime
    from faceleads.gallery import access

    with cli_errors():
        page = access.list_partner_accesses(
            runtime(), current_actor(), since=audit_log.parse_when(since, "--since"),
            until=audit_log.parse_when(until, "--until", end=True), partner=partner, agency_code=agency, limit=limit,
        )  # fmt: skip

    def summary() -> None:
        table = Table("when (UTC)", "owner", "partner", "user", "access", "subject", "image", "case")
        for a in page.accesses:
            table.add_row(f"{a.at:%Y-%m-%d %H:%M:%S}", a.owner_agency, a.partner_agency, a.partner_user, a.action,
                          a.subject_number or str(a.subject_id), str(a.image_id or ""), a.case or "")
        console.print(table)
        err_console.print(f"{page.total} access(es); by partner: "
                          + (", ".join(f"{k} {v}" for k, v in page.by_partner.items()) or "none"))

    emit(page.to_json(), json_out, summary)


def register(app: typer.Typer) -> None:
    """Attach the security and audit commands to the main ``faceleads`` app."""
    app.command("login", help=login_help)(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
    app.add_typer(admin_app)
    app.add_typer(account_app)
    app.add_typer(audit_app)
