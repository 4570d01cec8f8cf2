"""Gallery commands: ``enroll record|bulk|nist``, ``reindex``, ``search`` (a case search's short form, run by
casework) and ``gallery create|list|share|subject|photo``."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from faceleads.cli.common import AgencyOpt, JsonOpt, cli_errors, console, emit, err_console
from faceleads.cli.context import cli_actor, runtime
from faceleads.gallery.bulk import BatchReport, ProgressCallback, enrol_manifest, write_error_report
from faceleads.gallery.enrolment import RecordInput, enrol_record, parse_birth_year, parse_date, parse_sex
from faceleads.gallery.visibility import DEFAULT_PURPOSE

WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", min=0, max=256, help="Worker processes (default one per core; 0 = in-process)."),
]
ErrorsOpt = Annotated[
    Path | None,
    typer.Option("--errors", help="Write the error report CSV here (default: next to the input)."),
]

enroll_app = typer.Typer(
    help="Enrol booking records (one record, a CSV manifest, or ANSI/NIST-ITL files).", no_args_is_help=True
)
gallery_app = typer.Typer(help="Galleries and their sharing agreements.", no_args_is_help=True)


@contextmanager
def _progress(description: str, enabled: bool = True):  # type: ignore[no-untyped-def]
    """A Rich progress bar on stderr with count, rate and ETA; yields a (done, total) callback."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, disable=not enabled, transient=False) as bar:
        task = bar.add_task(description, total=None, rate="")

        def update(done: int, total: int) -> None:
            speed = bar.tasks[0].speed
            bar.update(task, completed=done, total=total, rate=f"{speed:.1f} photos/s" if speed else "")

        yield update


#: Exit codes of ``enroll bulk`` / ``enroll nist`` (docs/gallery.md): scripts must not mistake a failed batch for
#: a good one. 2 stays "refused before it started" (``cli_errors``: bad manifest, not signed in...).
EXIT_OK = 0  # no row failed (warnings allowed)
EXIT_ALL_FAILED = 1  # every row failed: nothing enrolled or already enrolled
EXIT_PARTIAL = 3  # some rows failed, others enrolled: see the error report


def batch_exit_code(report: BatchReport) -> int:
    """The exit code a bulk run ends with (:data:`EXIT_OK`, :data:`EXIT_PARTIAL` or :data:`EXIT_ALL_FAILED`)."""
    if report.errors == 0:
        return EXIT_OK
    return EXIT_ALL_FAILED if report.enrolled + report.skipped == 0 else EXIT_PARTIAL


def _print_report(report: BatchReport, errors_path: Path | None, as_json: bool) -> None:
    """Write the error report, print the summary, and end with :func:`batch_exit_code`."""
    if errors_path is not None:
        write_error_report(report, errors_path)
    code = batch_exit_code(report)
    data = report.as_dict()
    data["error_report"] = str(errors_path) if errors_path else None
    data["exit_code"] = code

    def summary() -> None:
        err_console.print(
            f"batch {report.batch_id}: {report.total} row(s): {report.enrolled} enrolled, {report.skipped} skipped "
            f"(already enrolled), {report.errors} error(s), {report.warnings} warning(s); "
            f"{report.processed_this_run} processed in this run"
        )
        if errors_path is not None and report.error_rows:
            err_console.print(f"error report: {errors_path}")
        if code == EXIT_ALL_FAILED:
            err_console.print("[bold red]every row failed:[/] nothing was enrolled (see the error report)")
        elif code == EXIT_PARTIAL:
            err_console.print(f"[yellow]{report.errors} row(s) failed[/] (see the error report); exit code {code}")

    emit(data, as_json, summary)
    raise typer.Exit(code)


@enroll_app.command("record")
def enroll_record_cmd(
    photos: Annotated[list[Path], typer.Argument(help="The record's photo file(s).")],
    subject: Annotated[str, typer.Option("--subject", help="The agency's subject (person) number.")],
    booking: Annotated[str, typer.Option("--booking", help="Booking number (unique within the agency).")],
    booking_date: Annotated[str, typer.Option("--date", help="Booking date, YYYY-MM-DD.")],
    authority: Annotated[str, typer.Option("--authority", help="Legal authority for holding the photos.")],
    charge: Annotated[str, typer.Option("--charge", help="Charge text.")] = "",
    gallery: Annotated[str | None, typer.Option("--gallery", help="Gallery name (default: bookings).")] = None,
    sex: Annotated[str | None, typer.Option("--sex", help="M, F or X (fairness measurement only).")] = None,
    birth_year: Annotated[int | None, typer.Option("--birth-year", help="Year of birth (fairness only).")] = None,
    group: Annotated[str | None, typer.Option("--group", help="Population group (fairness only).")] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Enrol one booking record with its photos (all or nothing)."""
    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        rec = RecordInput(
            subject_number=subject.strip(),
            booking_number=booking.strip(),
            booking_date=parse_date(booking_date, "booking date"),
            legal_authority=authority.strip(),
            charge=charge.strip(),
            gallery=gallery,
            sex=parse_sex(sex),
            birth_year=parse_birth_year(str(birth_year) if birth_year is not None else None),
            population_group=group,
        )
        result = enrol_record(rt, actor, rec, photos)
        rows = [
            {
                "photo": str(p),
                "status": o.status,
                "image_id": o.image_id,
                "template_id": o.template_id,
                "warning": o.warning,
            }
            for p, o in zip(photos, result.photos, strict=True)
        ]

        def lines() -> None:
            for row in rows:
                note = f"  [yellow]{row['warning']}[/]" if row["warning"] else ""
                console.print(f"{row['photo']}: {row['status']} (image {row['image_id']}){note}")

        emit({"subject_id": result.subject_id, "booking": result.encounter_booking, "photos": rows}, as_json, lines)


@enroll_app.command("bulk")
def enroll_bulk_cmd(
    manifest: Annotated[Path, typer.Argument(help="Manifest CSV (columns in docs/gallery.md).")],
    photos_root: Annotated[
        Path | None,
        typer.Option(
            "--photos-root",
            help="Folder every photo must lie inside (default: the manifest's folder). Photo paths stay relative "
            "to the manifest.",
        ),
    ] = None,
    workers: WorkersOpt = None,
    errors: ErrorsOpt = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Enrol every row of a manifest CSV; resumable (re-run after an interruption) and idempotent.

    Columns: agency, subject, booking, date, authority, photo (relative to the manifest, inside --photos-root),
    and optionally sex, birth_year, group, charge, gallery, capture_date. Row problems go to the error report and
    never stop the batch. Exit code 0: no row failed; 3: some rows failed; 1: every row failed.
    """
    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        errors_path = errors or manifest.with_name(manifest.stem + ".errors.csv")
        with _progress(f"enrolling {manifest.name}", enabled=not as_json) as update:
            report = enrol_manifest(
                rt, actor, manifest, photo_root=photos_root, workers=workers, progress=update
            )
        _print_report(report, errors_path, as_json)


@enroll_app.command("nist")
def enroll_nist_cmd(
    files: Annotated[list[Path], typer.Argument(help="ANSI/NIST-ITL transaction file(s) (Type-2 + Type-10).")],
    authority: Annotated[str, typer.Option("--authority", help="Legal authority for holding the photos.")],
    gallery: Annotated[str | None, typer.Option("--gallery", help="Gallery name (default: bookings).")] = None,
    workers: WorkersOpt = None,
    errors: ErrorsOpt = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Enrol the facial images (Type-10, IMT FACE) of NIST transactions with their Type-2 record details.

    Exit code 0: no photo or file failed; 3: some failed; 1: every one failed (e.g. no file could be read).
    """
    from faceleads.gallery.nist import enrol_nist

    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        errors_path = errors or files[0].with_name(files[0].stem + ".errors.csv")
        with _progress("enrolling NIST files", enabled=not as_json) as update:
            report = enrol_nist(
                rt, actor, files, authority=authority, gallery=gallery, workers=workers, progress=update
            )
        _print_report(report, errors_path, as_json)


def reindex_cmd(
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
    check: Annotated[
        bool, typer.Option("--check", help="Only count the stale templates per model version; change nothing.")
    ] = False,
) -> None:
    """Re-embed the agency's templates made by another model version (flip averaging, an added or upgraded model).

    Per-model templates already held are reused; missing models run on the face re-aligned from the stored
    landmarks of the decrypted original.
    """
    from faceleads.gallery.reindex import reindex

    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        with _progress(f"re-embedding for {rt.model_version}", enabled=not (as_json or check)) as update:
            report = reindex(rt, actor, progress=update, dry_run=check)

        def summary() -> None:
            if check:
                err_console.print(f"running template version: {report.model_version}")
                for version, count in sorted(report.stale_versions.items()):
                    err_console.print(f"  {count} stale template(s) of {version} (not searched until reindexed)")
                if not report.stale_versions:
                    err_console.print("  no stale templates")
                return
            err_console.print(
                f"{report.reembedded} template(s) re-embedded with {report.model_version} "
                f"({report.reused} per-model template(s) reused, computed {report.computed or 'none'}), "
                f"{report.failed} failed"
            )
            for problem in report.problems:
                err_console.print(f"  [yellow]{problem}[/]")

        emit(report.as_dict(), as_json, summary)


def search_cmd(
    probe: Annotated[Path, typer.Argument(help="Probe photo (kept as encrypted case evidence, never enrolled).")],
    case: Annotated[str, typer.Option("--case", help="Occurrence number of an open case of your agency.")],
    reason: Annotated[str, typer.Option("--reason", help="Justification of the request (why this search).")],
    legal_basis: Annotated[
        str | None, typer.Option("--legal-basis", help="Legal basis for holding the probe photo (required).")
    ] = None,
    offence: Annotated[str | None, typer.Option("--offence", help="If given, must be the case's offence.")] = None,
    purpose: Annotated[str, typer.Option("--purpose", help="Purpose of the search.")] = DEFAULT_PURPOSE,
    request: Annotated[
        int | None, typer.Option("--request", help="Use this request of the case instead of opening one.")
    ] = None,
    source: Annotated[str | None, typer.Option("--source", help="Where the photo came from.")] = None,
    obtained_by: Annotated[str | None, typer.Option("--obtained-by", help="Who obtained it (default: you).")] = None,
    face: Annotated[int | None, typer.Option("--face", help="Which face of the probe (1 = most prominent).")] = None,
    top: Annotated[int | None, typer.Option("--top", help="Candidate list length, 2-50 (default 20).")] = None,
    floor: Annotated[float | None, typer.Option("--floor", help="Leave out candidates scoring below this.")] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search a probe face on an open case of your agency (the short form of the casework flow).

    Opens a request on the case for the purpose (or uses --request), takes the photo in as evidence, picks the face
    and searches with every rule of the purpose. Exit status 2, and nothing stored but the audited refusal, when
    the case is not an open case of your agency. Every candidate must then be adjudicated ('faceleads adjudicate').
    Candidates are investigative leads, never identifications.
    """
    from faceleads.casework.quick import quick_search

    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        result = quick_search(
            rt, actor, case, probe, reason=reason, legal_basis=legal_basis or "", offence=offence, purpose=purpose,
            request_id=request, source=source, obtained_by=obtained_by, face=face, top=top, floor=floor,
        )  # fmt: skip

        def candidates() -> None:
            search = result.search
            table = Table(
                title=f"case {result.occurrence_number}, case search {result.case_search_id}: "
                f"{len(search.candidates)} candidate(s) from {search.gallery_size} template(s) — leads, not "
                "identifications"
            )
            for column in ("rank", "score", "agency", "subject", "booking", "date", "image", "other photos"):
                table.add_column(column, justify="right" if column in ("rank", "score", "image") else "left")
            for c in search.candidates:
                table.add_row(
                    str(c.rank),
                    f"{c.score:.3f}",
                    c.agency,
                    c.subject_number,
                    c.booking_number,
                    c.booking_date.isoformat(),
                    str(c.image_id),
                    str(len(c.other_image_ids)),
                )
            console.print(table)
            console.print(
                f"request {result.request_id}{' (opened)' if result.request_opened else ''}, probe {result.probe_id}: "
                f"face {search.face_index} of {search.faces_found}, quality {(search.probe_quality or 0):.2f}; "
                f"model {search.model_version}"
            )
            err_console.print(
                f"next: mark every candidate (faceleads adjudicate mark {result.case_search_id} RANK --conclusion ... "
                f"--notes ...), then faceleads adjudicate submit {result.case_search_id}"
            )

        emit(result.to_json(), as_json, candidates)


@gallery_app.command("create")
def gallery_create_cmd(
    name: Annotated[str, typer.Argument(help="Gallery name (unique within the agency).")],
    authority: Annotated[str, typer.Option("--authority", help="Legal authority the gallery is held under.")],
    purposes: Annotated[
        list[str] | None, typer.Option("--purpose", help="Purpose it may be searched for (repeat).")
    ] = None,
    agency: AgencyOpt = None,
) -> None:
    """Create a gallery of your agency."""
    from faceleads.gallery.galleries import create_gallery

    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        gallery_id = create_gallery(rt, actor, name, authority, purposes or [DEFAULT_PURPOSE])
        console.print(f"gallery {name!r} created (id {gallery_id})")


@gallery_app.command("list")
def gallery_list_cmd(agency: AgencyOpt = None, as_json: JsonOpt = False) -> None:
    """List your agency's galleries and the galleries shared with it."""
    from faceleads.gallery.galleries import list_galleries

    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        rows = list_galleries(rt, actor)

        def table() -> Table:
            t = Table(title="galleries")
            for column in ("id", "agency", "name", "purposes", "templates", "shared with / by"):
                t.add_column(column)
            for r in rows:
                t.add_row(
                    str(r["id"]),
                    r["agency"],
                    r["name"],
                    ", ".join(r["purposes"]),
                    str(r["templates"]),
                    "; ".join(r["shares"]),
                )
            return t

        emit(rows, as_json, table)


@gallery_app.command("subject")
def gallery_subject_cmd(
    subject_id: Annotated[int, typer.Argument(help="Subject id.")],
    case: Annotated[str | None, typer.Option("--case", help="The case this look-up is for (audited).")] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A subject's bookings and photo ids (own agency, or shared with it); the read is audited."""
    from dataclasses import asdict

    from faceleads.gallery import viewing

    with cli_errors():
        rt = runtime()
        detail = viewing.subject_detail(rt, cli_actor(rt, agency), subject_id, case=case)
        data = asdict(detail)
        for encounter in data["encounters"]:
            encounter["booking_date"] = encounter["booking_date"].isoformat()

        def table() -> Table:
            t = Table(title=f"subject {detail.subject_number} ({detail.agency}), gallery {detail.gallery_id}")
            for column in ("booking", "date", "charge", "photos"):
                t.add_column(column)
            for e in detail.encounters:
                t.add_row(e.booking_number, e.booking_date.isoformat(), e.charge, " ".join(map(str, e.image_ids)))
            return t

        emit(data, as_json, table)


@gallery_app.command("photo")
def gallery_photo_cmd(
    image_id: Annotated[int, typer.Argument(help="Image id.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Write the photo to this file.")],
    aligned: Annotated[bool, typer.Option("--aligned", help="The aligned comparison crop instead of the original.")]
    = False,
    case: Annotated[str | None, typer.Option("--case", help="The case this view is for (audited).")] = None,
    agency: AgencyOpt = None,
) -> None:
    """Write an enrolled photo to a file (own agency, or shared with it); every view is audited."""
    from faceleads.gallery import viewing

    with cli_errors():
        rt = runtime()
        body, media = viewing.photo(rt, cli_actor(rt, agency), image_id, view="aligned" if aligned else "original",
                                    case=case)  # fmt: skip
        out.write_bytes(body)
        err_console.print(f"wrote {out} ({media}, {len(body)} bytes)")


@gallery_app.command("share")
def gallery_share_cmd(
    name: Annotated[str, typer.Argument(help="Your gallery to share.")],
    with_agency: Annotated[str, typer.Option("--with", help="Agency code to share with.")],
    purposes: Annotated[list[str], typer.Option("--purpose", help="Purpose the share allows (repeat).")],
    start: Annotated[str | None, typer.Option("--start", help="First day, YYYY-MM-DD (default today).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="End day (exclusive), YYYY-MM-DD.")] = None,
    agreement: Annotated[str, typer.Option("--agreement", help="Reference of the sharing agreement.")] = "",
    agency: AgencyOpt = None,
) -> None:
    """Share one of your galleries with another agency for listed purposes and dates."""
    from faceleads.gallery.galleries import share_gallery

    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        starts = parse_date(start, "start date") if start else date.today()
        ends = parse_date(end, "end date") if end else None
        share_id = share_gallery(rt, actor, name, with_agency, purposes, starts, ends, agreement)
        console.print(f"gallery {name!r} shared with {with_agency.upper()} (share {share_id})")


def register(app: typer.Typer) -> None:
    """Add the gallery commands to the main app."""
    app.add_typer(enroll_app, name="enroll")
    app.add_typer(gallery_app, name="gallery")
    app.command("reindex")(reindex_cmd)
    app.command("search")(search_cmd)


__all__ = ["ProgressCallback", "register"]
