"""Casework commands: ``offence``, ``purpose``, ``case``, ``probe``, ``adjudicate``, ``verify-lead``, ``lead``,
``report`` and ``retention`` (see docs/casework.md). Each command is a thin shell over
:mod:`faceleads.casework`; the web application calls the same functions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from faceleads.cli.common import AgencyOpt, JsonOpt, cli_errors, console, emit, err_console, print_json
from faceleads.cli.context import cli_actor, runtime
from faceleads.errors import ValidationError

offence_app = typer.Typer(help="The agency's approved offence list (administrators).", no_args_is_help=True)
purpose_app = typer.Typer(help="Search purposes and whether they need a supervisor's authorisation.",
                          no_args_is_help=True)
case_app = typer.Typer(help="Cases, requests for facial recognition, authorisations and searches.",
                       no_args_is_help=True)
probe_app = typer.Typer(help="Probe evidence: intake (photo, video), edits, face choice, quality override.",
                        no_args_is_help=True)
adjudicate_app = typer.Typer(help="Mark every candidate of a search, then submit.", no_args_is_help=True)
verify_app = typer.Typer(help="Blind verification of proposed leads by a second analyst.", no_args_is_help=True)
lead_app = typer.Typer(help="Leads: supervisor decisions on disagreements, release to the investigator.",
                       no_args_is_help=True)
report_app = typer.Typer(help="Lead reports (PDF) with their recorded SHA-256.", no_args_is_help=True)
retention_app = typer.Typer(help="Retention of case data and probes by offence category.", no_args_is_help=True)


def _parse_time(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{what} must be an ISO date/time such as 2026-01-31T22:15, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------------- offences, purposes


@offence_app.command("add")
def offence_add(
    code: Annotated[str, typer.Argument(help="Offence code, e.g. ROB.")],
    title: Annotated[str, typer.Argument(help="Offence title.")],
    category: Annotated[str, typer.Option("--category", help="Retention category (FACELEADS_RETENTION_DAYS keys).")],
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an offence to the agency's approved list."""
    from faceleads.casework import admin

    with cli_errors():
        rt = runtime()
        info = admin.add_offence(rt, cli_actor(rt, agency), code, title, category)
        emit(info.to_json(), as_json,
             f"offence {info.code} added ({info.category}: cases kept {info.retention_days} days)")


@offence_app.command("withdraw")
def offence_withdraw(
    code: Annotated[str, typer.Argument(help="Offence code.")],
    restore: Annotated[bool, typer.Option("--restore", help="Put a withdrawn offence back on the list.")] = False,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw an offence from the list (existing cases keep it), or restore it."""
    from faceleads.casework import admin

    with cli_errors():
        rt = runtime()
        info = admin.set_offence_active(rt, cli_actor(rt, agency), code, restore)
        emit(info.to_json(), as_json, f"offence {info.code}: active={info.active}")


@offence_app.command("list")
def offence_list(agency: AgencyOpt = None, as_json: JsonOpt = False) -> None:
    """The agency's offence list."""
    from faceleads.casework import admin

    with cli_errors():
        rt = runtime()
        rows = admin.list_offences(rt, cli_actor(rt, agency))

        def table() -> None:
            t = Table("code", "title", "category", "retention days", "active")
            for o in rows:
                t.add_row(o.code, o.title, o.category, str(o.retention_days), "yes" if o.active else "no")
            console.print(t)

        emit([o.to_json() for o in rows], as_json, table)


@purpose_app.command("add")
def purpose_add(
    code: Annotated[str, typer.Argument(help="Purpose code, e.g. criminal-investigation.")],
    title: Annotated[str, typer.Argument(help="Purpose title.")],
    requires_authorisation: Annotated[
        bool, typer.Option("--requires-authorisation", help="Searches need a supervisor's recorded authorisation.")
    ] = False,
    regime: Annotated[
        str | None,
        typer.Option("--regime", help="Also put it in this legal regime for your agency: investigative, exigent "
                     "(threat to life: searched at once, ratified afterwards, handled first) or live_deployment."),
    ] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a search purpose (galleries list the purposes they may be searched for)."""
    from faceleads.casework import admin

    with cli_errors():
        rt = runtime()
        info = admin.add_purpose(rt, cli_actor(rt, agency), code, title, requires_authorisation=requires_authorisation,
                                 regime=regime)  # fmt: skip
        emit(info.to_json(), as_json, f"purpose {info.code} added")


@purpose_app.command("list")
def purpose_list(as_json: JsonOpt = False) -> None:
    """Every purpose."""
    from faceleads.casework import admin

    with cli_errors():
        rows = admin.list_purposes(runtime())

        def table() -> None:
            t = Table("code", "title", "needs authorisation", "active")
            for p in rows:
                t.add_row(p.code, p.title, "yes" if p.requires_authorisation else "no", "yes" if p.active else "no")
            console.print(t)

        emit([p.to_json() for p in rows], as_json, table)


# --------------------------------------------------------------------------------------------- cases and requests


@case_app.command("open")
def case_open(
    occurrence: Annotated[str, typer.Argument(help="Occurrence number (unique within the agency).")],
    offence: Annotated[str, typer.Option("--offence", help="Offence code from the approved list.")],
    justification: Annotated[str, typer.Option("--justification", help="Why facial recognition is needed.")],
    investigator: Annotated[str | None, typer.Option("--investigator", help="Default: you.")] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a case."""
    from faceleads.casework import cases

    with cli_errors():
        rt = runtime()
        info = cases.open_case(rt, cli_actor(rt, agency), occurrence, offence, justification,
                               investigator=investigator)
        emit(info.to_json(), as_json,
             f"case {info.id} ({info.occurrence_number}) opened; data kept until {info.retention_until:%Y-%m-%d}")


@case_app.command("show")
def case_show(
    case_id: Annotated[int, typer.Argument(help="Case id.")],
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A case with its requests, probes, searches and leads."""
    from faceleads.casework import adjudication, cases, probes, searching

    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        data = cases.show_case(rt, actor, case_id).to_json()
        data["requests"] = [r.to_json() for r in cases.list_requests(rt, actor, case_id)]
        data["probes"] = [p.to_json() for p in probes.list_probes(rt, actor, case_id)]
        data["searches"] = searching.list_case_searches(rt, actor, case_id)
        data["leads"] = [lead.to_json() for lead in adjudication.list_leads(rt, actor, case_id)]
        emit(data, as_json)


@case_app.command("list")
def case_list(
    status: Annotated[str | None, typer.Option("--status", help="open, closed or purged.")] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The agency's cases."""
    from faceleads.casework import cases

    with cli_errors():
        rt = runtime()
        rows = cases.list_cases(rt, cli_actor(rt, agency), status=status)

        def table() -> None:
            t = Table("id", "occurrence", "offence", "investigator", "status", "opened")
            for c in rows:
                t.add_row(str(c.id), c.occurrence_number, c.offence_code, c.investigator, c.status,
                          f"{c.opened_at:%Y-%m-%d}")
            console.print(t)

        emit([c.to_json() for c in rows], as_json, table)


@case_app.command("close")
def case_close(
    case_id: Annotated[int, typer.Argument(help="Case id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the case is closed.")],
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close a case (its data stays until its retention period ends)."""
    from faceleads.casework import cases

    with cli_errors():
        rt = runtime()
        info = cases.close_case(rt, cli_actor(rt, agency), case_id, reason)
        emit(info.to_json(), as_json, f"case {info.id} closed")


@case_app.command("request")
def case_request(
    case_id: Annotated[int, typer.Argument(help="Case id.")],
    purpose: Annotated[str, typer.Option("--purpose", help="Purpose code.")],
    justification: Annotated[str, typer.Option("--justification", help="Why this search is necessary.")],
    priority: Annotated[
        str, typer.Option("--priority", help="routine, urgent or threat_to_life (the exigent regime: always the last).")
    ] = "routine",
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Request facial recognition on a case for a purpose."""
    from faceleads.casework import cases

    with cli_errors():
        rt = runtime()
        info = cases.open_request(rt, cli_actor(rt, agency), case_id, purpose, justification, priority=priority)
        emit(info.to_json(), as_json, f"request {info.id}: {info.status}")


@case_app.command("authorise")
def case_authorise(
    request_id: Annotated[int, typer.Argument(help="Request id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the purpose is authorised (or refused).")],
    refuse: Annotated[bool, typer.Option("--refuse", help="Refuse instead of authorising.")] = False,
    expires: Annotated[str | None, typer.Option("--expires", help="Expiry (ISO time; default: the agency's "
                                                "authorisation validity).")] = None,
    gallery: Annotated[list[int] | None, typer.Option("--gallery", help="Only this gallery id; repeatable.")] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Supervisor: authorise (or refuse) a request whose purpose needs it, with its scope (galleries) and expiry;
    who, when and why are recorded."""
    from faceleads.casework import cases

    with cli_errors():
        rt = runtime()
        until = _parse_time(expires, "--expires") if expires else None
        info = cases.authorise_request(rt, cli_actor(rt, agency), request_id, reason, grant=not refuse,
                                       expires_at=until, galleries=gallery or None)
        emit(info.to_json(), as_json, f"request {info.id}: {info.status}")


@case_app.command("search")
def case_search(
    request_id: Annotated[int, typer.Argument(help="Request id.")],
    probe: Annotated[list[int], typer.Option("--probe", help="Probe id; repeat to fuse several images of one person.")],
    top: Annotated[int | None, typer.Option("--top", min=2, max=50, help="Candidate list length.")] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the gallery for a request with one probe or several fused probes; the candidate list is stored."""
    from faceleads.casework import searching

    with cli_errors():
        rt = runtime()
        info = searching.run_search(rt, cli_actor(rt, agency), request_id, probe, top=top)

        def table() -> None:
            used = ", ".join(f"probe {u['probe_id']} [{u['edits_described']}]" for u in info.probes_used)
            err_console.print(f"case search {info.id} (search {info.search_id}); probes: {used}")
            t = Table("rank", "score", "subject", "agency", "booking", "date")
            for c in info.result["candidates"]:
                t.add_row(str(c["rank"]), f"{c['score']:.4f}", c["subject_number"], c["agency"],
                          c["booking_number"], c["booking_date"])
            console.print(t)
            err_console.print(info.result["notice"])

        emit(info.to_json(), as_json, table)


# --------------------------------------------------------------------------------------------- probes


def _progress_bar(enabled: bool):  # type: ignore[no-untyped-def]
    return Progress(TextColumn("[bold]analysing video"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, disable=not enabled)


@probe_app.command("add")
def probe_add(
    case_id: Annotated[int, typer.Argument(help="Case id.")],
    photo: Annotated[Path, typer.Argument(help="Evidence photo (JPEG, PNG, BMP, TIFF, WebP).")],
    source: Annotated[str, typer.Option("--source", help="Where it came from (camera, device, witness...).")],
    obtained_by: Annotated[str, typer.Option("--obtained-by", help="Who obtained it.")],
    obtained_at: Annotated[str, typer.Option("--obtained-at", help="When (ISO date/time, UTC if no zone).")],
    legal_basis: Annotated[str, typer.Option("--legal-basis", help="The legal basis for holding it.")],
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Take in an evidence photo (hashed, stored encrypted, never altered) as a probe."""
    from faceleads.casework import probes

    with cli_errors():
        rt = runtime()
        info = probes.add_photo(rt, cli_actor(rt, agency), case_id, photo, source=source, obtained_by=obtained_by,
                                obtained_at=_parse_time(obtained_at, "--obtained-at"), legal_basis=legal_basis)
        emit(info.to_json(), as_json,
             f"probe {info.id} (evidence sha256 {info.evidence_sha256}); next: faceleads probe faces {info.id}")


@probe_app.command("video")
def probe_video(
    case_id: Annotated[int, typer.Argument(help="Case id.")],
    video: Annotated[Path, typer.Argument(help="Recorded video (MP4, AVI, MKV, MOV).")],
    source: Annotated[str, typer.Option("--source", help="Where it came from.")],
    obtained_by: Annotated[str, typer.Option("--obtained-by", help="Who obtained it.")],
    obtained_at: Annotated[str, typer.Option("--obtained-at", help="When (ISO date/time).")],
    legal_basis: Annotated[str, typer.Option("--legal-basis", help="The legal basis for holding it.")],
    every: Annotated[float | None, typer.Option("--every", help="Seconds between sampled frames.")] = None,
    shots: Annotated[int, typer.Option("--shots", min=1, max=20, help="Best shots kept per track.")] = 3,
    min_observations: Annotated[int, typer.Option("--min-observations", min=1, help="Drop shorter tracks.")] = 2,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Take in a recorded video: sample frames, track faces, make each track's best shots into probes."""
    from faceleads.casework import probes

    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        with _progress_bar(not as_json) as bar:
            task = bar.add_task("video", total=None)
            intake = probes.add_video(
                rt, actor, case_id, video, source=source, obtained_by=obtained_by,
                obtained_at=_parse_time(obtained_at, "--obtained-at"), legal_basis=legal_basis, every_s=every,
                shots_per_track=shots, min_observations=min_observations,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )

        def human() -> None:
            tracks = intake.analysis["tracks"]
            assert isinstance(tracks, list)
            t = Table("track", "seen", "from s", "to s", "probe ids (best first)", "frame times s")
            for tr in tracks:
                t.add_row(str(tr["track"]), str(tr["observations"]), str(tr["first_time_s"]),
                          str(tr["last_time_s"]), ", ".join(map(str, intake.probes_by_track.get(tr["track"], []))),
                          ", ".join(str(s["time_s"]) for s in tr["best_shots"]))
            console.print(t)

        emit(intake.to_json(), as_json, human)


@probe_app.command("show")
def probe_show(probe_id: Annotated[int, typer.Argument(help="Probe id.")], agency: AgencyOpt = None) -> None:
    """A probe: evidence hash, edit list, chosen face, quality against the floor, override."""
    from faceleads.casework import probes

    with cli_errors():
        rt = runtime()
        print_json(probes.show_probe(rt, cli_actor(rt, agency), probe_id).to_json())


@probe_app.command("faces")
def probe_faces(
    probe_id: Annotated[int, typer.Argument(help="Probe id.")],
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The faces found in the (edited) probe with their quality, to pick one."""
    from faceleads.casework import probes

    with cli_errors():
        rt = runtime()
        rows = probes.detect_faces(rt, cli_actor(rt, agency), probe_id)

        def table() -> None:
            t = Table("face", "box", "quality", "detector")
            for f in rows:
                t.add_row(str(f.index), ", ".join(f"{v:.0f}" for v in f.box), f"{f.quality:.3f}",
                          f"{f.detector_score:.3f}")
            console.print(t)
            err_console.print(f"quality floor: {rt.settings.quality_floor}")

        emit([f.to_json() for f in rows], as_json, table)


@probe_app.command("pick")
def probe_pick(
    probe_id: Annotated[int, typer.Argument(help="Probe id.")],
    face: Annotated[int, typer.Option("--face", min=1, help="Face number from 'probe faces'.")] = 1,
    agency: AgencyOpt = None,
) -> None:
    """Choose the face to search."""
    from faceleads.casework import probes

    with cli_errors():
        rt = runtime()
        print_json(probes.pick_face(rt, cli_actor(rt, agency), probe_id, face).to_json())


@probe_app.command("box")
def probe_box(
    probe_id: Annotated[int, typer.Argument(help="Probe id.")],
    box: Annotated[str, typer.Argument(help="x1,y1,x2,y2 in pixels of the edited probe.")],
    agency: AgencyOpt = None,
) -> None:
    """Draw a box around a face the detector missed; landmarks are found inside it."""
    from faceleads.casework import probes

    with cli_errors():
        try:
            values = [float(v) for v in box.split(",")]
        except ValueError:
            raise ValidationError(f"box must be four numbers x1,y1,x2,y2, got {box!r}") from None
        rt = runtime()
        print_json(probes.draw_box(rt, cli_actor(rt, agency), probe_id, values).to_json())


@probe_app.command("edit")
def probe_edit(
    probe_id: Annotated[int, typer.Argument(help="Probe id.")],
    edits: Annotated[str, typer.Argument(help="Edit list as JSON, or @file.json; '[]' restores the original.")],
    agency: AgencyOpt = None,
) -> None:
    """Replace the probe's edit list, e.g. '[{"op":"crop","x":10,"y":10,"width":200,"height":200},
    {"op":"equalize","method":"clahe"},{"op":"gamma","gamma":1.3}]'. Operations: crop, rotate, flip, brightness,
    contrast, gamma, equalize, denoise, sharpen (docs/casework.md). The original is never changed.
    """
    from faceleads.casework import probes

    with cli_errors():
        text = Path(edits[1:]).read_text(encoding="utf-8") if edits.startswith("@") else edits
        rt = runtime()
        print_json(probes.set_edits(rt, cli_actor(rt, agency), probe_id, text).to_json())


@probe_app.command("history")
def probe_history(probe_id: Annotated[int, typer.Argument(help="Probe id.")], agency: AgencyOpt = None) -> None:
    """Every version of the probe's edit list."""
    from faceleads.casework import probes

    with cli_errors():
        rt = runtime()
        print_json(probes.edit_history(rt, cli_actor(rt, agency), probe_id))


@probe_app.command("override")
def probe_override(
    probe_id: Annotated[int, typer.Argument(help="Probe id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why a probe below the quality floor may be searched.")],
    agency: AgencyOpt = None,
) -> None:
    """Supervisor: allow a probe below the quality floor to be searched (reason recorded)."""
    from faceleads.casework import probes

    with cli_errors():
        rt = runtime()
        print_json(probes.override_quality(rt, cli_actor(rt, agency), probe_id, reason).to_json())


@probe_app.command("image")
def probe_image(
    probe_id: Annotated[int, typer.Argument(help="Probe id.")],
    out: Annotated[Path, typer.Option("--out", help="PNG file to write.")],
    original: Annotated[bool, typer.Option("--original", help="The original instead of the edited probe.")] = False,
    agency: AgencyOpt = None,
) -> None:
    """Write the probe image (edited by default) as PNG; the view is audited."""
    from faceleads.casework import probes

    with cli_errors():
        rt = runtime()
        out.write_bytes(probes.probe_image(rt, cli_actor(rt, agency), probe_id, edited=not original))
        err_console.print(f"wrote {out}")


# --------------------------------------------------------------------------------------------- adjudication


@adjudicate_app.command("list")
def adjudicate_list(
    case_search_id: Annotated[int, typer.Argument(help="Case search id.")],
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The stored candidate list with your marks so far."""
    from faceleads.casework import adjudication

    with cli_errors():
        rt = runtime()
        rows = adjudication.candidate_list(rt, cli_actor(rt, agency), case_search_id)

        def table() -> None:
            t = Table("rank", "score", "subject", "agency", "booking", "conclusion", "notes")
            for c in rows:
                t.add_row(str(c.rank), f"{c.score:.4f}", c.subject_number, c.agency, c.booking_number,
                          c.conclusion or "-", (c.notes or "")[:40])
            console.print(t)

        emit([c.to_json() for c in rows], as_json, table)


@adjudicate_app.command("mark")
def adjudicate_mark(
    case_search_id: Annotated[int, typer.Argument(help="Case search id.")],
    rank: Annotated[int, typer.Argument(help="Candidate rank.")],
    conclusion: Annotated[str, typer.Option("--conclusion", help="excluded, possible_lead or inconclusive.")],
    notes: Annotated[str, typer.Option("--notes", help="Why (needed for a possible lead, reason 'other').")] = "",
    reason: Annotated[
        str | None, typer.Option("--reason", help="Reason code, e.g. features_differ (see docs/casework.md).")
    ] = None,
    feature: Annotated[
        list[str] | None,
        typer.Option("--feature", help="Checklist entry FEATURE=similar|dissimilar|not_visible (repeatable)."),
    ] = None,
    agency: AgencyOpt = None,
) -> None:
    """Mark one candidate (optionally with the morphological feature checklist)."""
    from faceleads.casework import adjudication

    with cli_errors():
        checklist = _checklist(feature)
        rt = runtime()
        view = adjudication.adjudicate(rt, cli_actor(rt, agency), case_search_id, rank, conclusion, notes,
                                       checklist, reason_code=reason)  # fmt: skip
        print_json(view.to_json())


def _checklist(feature: list[str] | None) -> dict[str, str]:
    checklist: dict[str, str] = {}
    for item in feature or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValidationError(f"--feature expects FEATURE=FINDING, got {item!r}")
        checklist[key.strip()] = value.strip()
    return checklist


@adjudicate_app.command("exclude-remaining")
def adjudicate_exclude_remaining(
    case_search_id: Annotated[int, typer.Argument(help="Case search id.")],
    reason: Annotated[str, typer.Option("--reason", help="Exclusion reason code, e.g. features_differ.")],
    notes: Annotated[str, typer.Option("--notes", help="Optional note (needed for reason 'other').")] = "",
    agency: AgencyOpt = None,
) -> None:
    """Mark every candidate not marked yet as excluded, with one reason."""
    from faceleads.casework import adjudication

    with cli_errors():
        rt = runtime()
        ranks = adjudication.exclude_remaining(rt, cli_actor(rt, agency), case_search_id, reason, notes)
        print_json({"excluded_ranks": ranks})


@adjudicate_app.command("submit")
def adjudicate_submit(
    case_search_id: Annotated[int, typer.Argument(help="Case search id.")],
    agency: AgencyOpt = None,
) -> None:
    """Submit the conclusions (every candidate must be marked); possible leads go to blind verification."""
    from faceleads.casework import adjudication

    with cli_errors():
        rt = runtime()
        leads = adjudication.submit_adjudication(rt, cli_actor(rt, agency), case_search_id)
        print_json({"leads": [lead.to_json() for lead in leads]})


@adjudicate_app.command("photo")
def adjudicate_photo(
    candidate_id: Annotated[int, typer.Argument(help="Candidate id (from 'adjudicate list' or 'verify-lead show').")],
    out: Annotated[Path, typer.Option("--out", help="PNG file to write.")],
    agency: AgencyOpt = None,
) -> None:
    """Write a candidate's booking photo (PNG) for side-by-side comparison; the view is audited."""
    from faceleads.casework import adjudication

    with cli_errors():
        rt = runtime()
        out.write_bytes(adjudication.candidate_photo(rt, cli_actor(rt, agency), candidate_id))
        err_console.print(f"wrote {out}")


@verify_app.command("queue")
def verify_queue(agency: AgencyOpt = None) -> None:
    """Leads awaiting verification that you may verify (never your own)."""
    from faceleads.casework import adjudication

    with cli_errors():
        rt = runtime()
        print_json({"lead_ids": adjudication.verification_queue(rt, cli_actor(rt, agency))})


@verify_app.command("show")
def verify_show(lead_id: Annotated[int, typer.Argument(help="Lead id.")], agency: AgencyOpt = None) -> None:
    """The blind view of a lead: probe and candidate, without the first analyst's conclusion."""
    from faceleads.casework import adjudication

    with cli_errors():
        rt = runtime()
        print_json(adjudication.verification_task(rt, cli_actor(rt, agency), lead_id).to_json())


@verify_app.command("record")
def verify_record(
    lead_id: Annotated[int, typer.Argument(help="Lead id.")],
    result: Annotated[
        str, typer.Option("--result", help="Your conclusion: possible_lead (agrees), inconclusive or excluded "
                                           "(disagree); or agree / disagree.")
    ],
    notes: Annotated[str, typer.Option("--notes", help="Why.")],
    feature: Annotated[
        list[str] | None,
        typer.Option("--feature", help="Your checklist entry FEATURE=similar|dissimilar|not_visible (repeatable)."),
    ] = None,
    agency: AgencyOpt = None,
) -> None:
    """Record your blind verification; a disagreement goes to a supervisor."""
    from faceleads.casework import adjudication

    with cli_errors():
        rt = runtime()
        print_json(adjudication.verify_lead(rt, cli_actor(rt, agency), lead_id, result, notes,
                                            _checklist(feature)).to_json())  # fmt: skip


@lead_app.command("review")
def lead_review(lead_id: Annotated[int, typer.Argument(help="Lead id.")], agency: AgencyOpt = None) -> None:
    """Supervisor: both conclusions of a disputed lead (analyst and verifier) with their notes."""
    from faceleads.casework import adjudication

    with cli_errors():
        rt = runtime()
        print_json(adjudication.disagreement_view(rt, cli_actor(rt, agency), lead_id))


@lead_app.command("resolve")
def lead_resolve(
    lead_id: Annotated[int, typer.Argument(help="Lead id.")],
    decision: Annotated[str, typer.Option("--decision", help="verified or rejected.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
    agency: AgencyOpt = None,
) -> None:
    """Supervisor: decide a disputed lead."""
    from faceleads.casework import adjudication

    with cli_errors():
        rt = runtime()
        print_json(adjudication.resolve_disagreement(rt, cli_actor(rt, agency), lead_id, decision, reason).to_json())


@lead_app.command("release")
def lead_release(lead_id: Annotated[int, typer.Argument(help="Lead id.")], agency: AgencyOpt = None) -> None:
    """Release a verified lead to the investigator (anything else is refused)."""
    from faceleads.casework import adjudication

    with cli_errors():
        rt = runtime()
        print_json(adjudication.release_lead(rt, cli_actor(rt, agency), lead_id).to_json())


@lead_app.command("list")
def lead_list(case_id: Annotated[int, typer.Argument(help="Case id.")], agency: AgencyOpt = None) -> None:
    """The leads of a case and their state."""
    from faceleads.casework import adjudication

    with cli_errors():
        rt = runtime()
        print_json([lead.to_json() for lead in adjudication.list_leads(rt, cli_actor(rt, agency), case_id)])


# --------------------------------------------------------------------------------------------- reports, retention


@report_app.command("export")
def report_export(
    case_search_id: Annotated[int, typer.Argument(help="Case search id.")],
    out: Annotated[Path, typer.Option("--out", help="PDF file to write.")],
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export the lead report PDF; its SHA-256 is recorded and the export audited."""
    from faceleads.casework import reporting

    with cli_errors():
        rt = runtime()
        export = reporting.export_report(rt, cli_actor(rt, agency), case_search_id)
        out.write_bytes(export.pdf)
        data = {"report_id": export.report_id, "file": str(out), "sha256": export.sha256, "lead_ids": export.lead_ids}
        emit(data, as_json, f"wrote {out} (sha256 {export.sha256})")


@report_app.command("list")
def report_list(case_id: Annotated[int, typer.Argument(help="Case id.")], agency: AgencyOpt = None) -> None:
    """The reports exported for a case, with their hashes."""
    from faceleads.casework import reporting

    with cli_errors():
        rt = runtime()
        print_json(reporting.list_reports(rt, cli_actor(rt, agency), case_id))


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be purged.")] = False,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Purge the case data and probes whose retention period (by offence category) has passed."""
    from faceleads.casework import retention

    with cli_errors():
        rt = runtime()
        report = retention.run_retention(rt, cli_actor(rt, agency), dry_run=dry_run)
        emit(report.to_json(), as_json,
             f"{'would purge' if dry_run else 'purged'} {len(report.cases)} case(s): "
             f"{report.evidence_purged} evidence file(s), {report.probes_purged} probe(s), "
             f"{report.blobs_deleted} blob(s)")


def register(app: typer.Typer) -> None:
    """Add the casework command groups to the main app."""
    app.add_typer(offence_app, name="offence")
    app.add_typer(purpose_app, name="purpose")
    app.add_typer(case_app, name="case")
    app.add_typer(probe_app, name="probe")
    app.add_typer(adjudicate_app, name="adjudicate")
    app.add_typer(verify_app, name="verify-lead")
    app.add_typer(lead_app, name="lead")
    app.add_typer(report_app, name="report")
    app.add_typer(retention_app, name="retention")
