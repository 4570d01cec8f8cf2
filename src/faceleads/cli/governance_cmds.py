"""``faceleads destruction request|checklist|decide|execute|list|show|certificate``, ``faceleads backup`` and
``faceleads restore`` (docs/destruction.md, docs/backup.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from faceleads.cli.common import AgencyOpt, JsonOpt, cli_errors, console, emit, err_console, print_json
from faceleads.cli.context import cli_actor, runtime
from faceleads.config import get_settings
from faceleads.errors import ValidationError
from faceleads.governance import backup as backups
from faceleads.governance import destruction

RequestArg = Annotated[int, typer.Argument(help="Destruction request id.", min=1)]

destruction_app = typer.Typer(
    name="destruction",
    help="Destruction requests: record, checklist, decide, execute (crash-safe), certificate.",
    no_args_is_help=True,
)


@contextmanager
def _progress(enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """A Rich progress bar on stderr; yields a (label, done, total) callback."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, disable=not enabled, transient=False) as bar:
        tasks: dict[str, TaskID] = {}

        def update(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done, total=total)

        yield update


def _show(view: destruction.RequestView, as_json: bool) -> None:
    emit(view.to_json(), as_json, lambda: _request_table(view))


def _request_table(view: destruction.RequestView) -> Table:
    data = view.to_json()
    table = Table(title=f"destruction request {view.id}", show_header=False)
    for key in ("agency", "subject_id", "subject_number", "subject_status", "requester", "grounds", "recorded_by",
                "recorded_at", "status", "decision_reason", "decided_by", "decided_at", "step", "runs",
                "completed_at", "certificate_sha256"):  # fmt: skip
        table.add_row(key, "" if data[key] is None else str(data[key]))
    for item in view.criteria:
        entry = view.checklist.get(item["code"])
        mark = "—" if entry is None else ("satisfied" if entry.get("satisfied") else "NOT satisfied")
        note = f" ({entry.get('note')})" if entry and entry.get("note") else ""
        found = item.get("assessment") or {}
        records = f" [records: {found['explanation']}]" if found.get("verdict") is not None else ""
        table.add_row(f"checklist: {item['code']}", f"{mark}{note}{records}")
    return table


def _print_checklist(view: destruction.RequestView) -> None:
    for criterion in view.criteria:
        entry = view.checklist.get(criterion["code"])
        mark = "—" if entry is None else ("yes" if entry.get("satisfied") else "NO")
        found = criterion.get("assessment") or {}
        hint = f" [records: {found['explanation']}]" if found.get("verdict") is not None else ""
        console.print(f"[bold]{criterion['code']}[/] ({mark}): {criterion['text']}{hint}", highlight=False)


@destruction_app.command("request")
def request_cmd(
    requester: Annotated[str, typer.Option("--requester", help="Who asks (person, representative, court, review).")],
    grounds: Annotated[str, typer.Option("--grounds", help="Grounds for destruction (e.g. acquittal on 2024-03-01).")],
    subject: Annotated[str | None, typer.Option("--subject", help="Subject number in your agency.")] = None,
    subject_id: Annotated[int | None, typer.Option("--subject-id", help="Subject database id.", min=1)] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a destruction request for one subject (records officer)."""
    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        if (subject is None) == (subject_id is None):
            raise ValidationError("name the subject with exactly one of --subject NUMBER or --subject-id ID")
        sid = subject_id if subject_id is not None else destruction.find_subject_id(rt, actor, subject or "")
        _show(destruction.request_destruction(rt, actor, sid, requester=requester, grounds=grounds), as_json)


@destruction_app.command("checklist")
def checklist_cmd(
    request_id: RequestArg,
    item: Annotated[
        str | None,
        typer.Argument(help="Checklist item (the agency's criteria, e.g. requester_identity_verified). Omit to list "
                       "the request's items."),
    ] = None,
    satisfied: Annotated[
        bool, typer.Option("--satisfied/--not-satisfied", help="Whether the item is satisfied.")
    ] = True,
    note: Annotated[str, typer.Option("--note", help="What was checked, or why it is not satisfied.")] = "",
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record one eligibility checklist item of a request, or show the checklist (records officer, supervisor)."""
    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        if item is None:
            view = destruction.get_request(rt, actor, request_id)
            data = {"items": view.to_json()["items"], "criteria": view.criteria, "checklist": view.checklist}
            emit(data, as_json, lambda: _print_checklist(view))
            return
        _show(destruction.record_checklist(rt, actor, request_id, item, satisfied, note), as_json)


@destruction_app.command("decide")
def decide_cmd(
    request_id: RequestArg,
    reason: Annotated[str, typer.Option("--reason", help="Written reason for the decision.")],
    approve: Annotated[bool, typer.Option("--approve/--deny", help="Approve or deny the request.")],
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve (every checklist item satisfied) or deny a request, with a written reason."""
    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        _show(destruction.decide(rt, actor, request_id, approve=approve, reason=reason), as_json)


@destruction_app.command("execute")
def execute_cmd(request_id: RequestArg, agency: AgencyOpt = None, as_json: JsonOpt = False) -> None:
    """Carry out an approved destruction; re-run it to resume after an interruption (records officer)."""
    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        with _progress(not as_json) as update:
            cert = destruction.execute(rt, actor, request_id, progress=update)

        def line() -> None:
            counts = ", ".join(f"{k} {v}" for k, v in cert["destroyed"].items())
            err_console.print(
                f"request {request_id}: subject {cert['subject_id']} destroyed ({counts}); "
                f"data key {cert['data_key_destroyed']} shredded. Certificate: faceleads destruction certificate "
                f"{request_id}",
                highlight=False,
            )

        emit(cert, as_json, line)


@destruction_app.command("list")
def list_cmd(
    status: Annotated[str | None, typer.Option("--status", help="Only requests of this status.")] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Your agency's destruction requests, newest first."""
    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        views = destruction.list_requests(rt, actor, status)

        def table() -> Table:
            t = Table(title="destruction requests")
            for col in ("id", "subject", "status", "step", "requester", "recorded", "decided by"):
                t.add_column(col)
            for v in views:
                data = v.to_json()
                t.add_row(str(v.id), v.subject_number, v.status, data["step"], v.requester,
                          str(data["recorded_at"])[:19], v.decided_by or "")  # fmt: skip
            return t

        emit([v.to_json() for v in views], as_json, table)


@destruction_app.command("show")
def show_cmd(request_id: RequestArg, agency: AgencyOpt = None, as_json: JsonOpt = False) -> None:
    """One destruction request with its checklist, decision and progress."""
    with cli_errors():
        rt = runtime()
        _show(destruction.get_request(rt, cli_actor(rt, agency), request_id), as_json)


@destruction_app.command("certificate")
def certificate_cmd(
    request_id: RequestArg,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the certificate JSON to this file.")] = None,
    agency: AgencyOpt = None,
) -> None:
    """Print the destruction certificate (checked against its recorded SHA-256) as JSON."""
    with cli_errors():
        rt = runtime()
        cert = destruction.certificate(rt, cli_actor(rt, agency), request_id)
        if out is not None:
            import json

            out.write_text(json.dumps(cert, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print_json(cert)


def backup_cmd(
    dest: Annotated[Path, typer.Argument(help="New (or empty) directory for the backup.")],
    keys: Annotated[
        Path | None,
        typer.Option("--keys", help="Also write the keystore escrow copy to this file (keep it apart from DEST)."),
    ] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Back up the database and the encrypted blob store while the system runs (administrator).

    The keystore is not included: use --keys for a separate escrow copy.
    """
    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        with _progress(not as_json) as update:
            report = backups.backup(rt, actor, dest, keys_dest=keys, progress=update)

        def summary() -> None:
            err_console.print(
                f"backup {report.path}: {report.files} file(s), {report.bytes} bytes, {report.blobs} blob(s); "
                f"manifest SHA-256 {report.manifest_sha256}"
                + (f"; keys escrow copy {report.keys_path}" if report.keys_path else "; keystore NOT included"),
                highlight=False,
            )
            if report.referenced_missing:
                err_console.print(
                    f"[yellow]warning:[/] {report.referenced_missing} blob(s) referenced by the database were not in "
                    "the store (destroyed meanwhile or damaged store)"
                )

        emit(report.as_dict(), as_json, summary)


def restore_cmd(
    src: Annotated[Path, typer.Argument(help="Backup directory written by 'faceleads backup'.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite a data directory that is in use.")] = False,
    keys: Annotated[
        Path | None, typer.Option("--keys", help="Also restore this keystore escrow copy (destructions stay).")
    ] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Restore a backup into the data directory (system stopped); destroyed subjects stay destroyed (administrator)."""
    with cli_errors():
        settings = get_settings()
        actor = None
        if backups.sqlite_path(settings).is_file():
            # An existing installation: the restore service checks (and audits) its administrator's permission.
            rt = runtime()
            actor = cli_actor(rt, agency)
            rt.close()
        with _progress(not as_json) as update:
            report = backups.restore(settings, src, actor=actor, force=force, keys_src=keys, progress=update)

        def summary() -> None:
            err_console.print(
                f"restored {src} (taken {report.backup_created_at}); {report.blobs_copied} blob(s) copied; "
                f"{len(report.reconciled_subjects)} subject(s) destroyed since the backup were destroyed again",
                highlight=False,
            )
            if report.unreadable_subjects:
                err_console.print(
                    f"[yellow]warning:[/] {len(report.unreadable_subjects)} subject(s) have no data key in the "
                    "keystore: restore the keys escrow copy (--keys)"
                )
            if report.open_destructions:
                ids = " ".join(str(i) for i in report.open_destructions)
                err_console.print(f"destruction(s) in progress in the backup: run 'faceleads destruction execute' "
                                  f"{ids}")  # fmt: skip

        emit(report.as_dict(), as_json, summary)


def register(app: typer.Typer) -> None:
    """Add the governance commands to the main app."""
    app.add_typer(destruction_app, name="destruction")
    app.command("backup")(backup_cmd)
    app.command("restore")(restore_cmd)
