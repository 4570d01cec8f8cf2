"""``faceleads live ...``: watch lists, deployments (prepare, authorise, run, stop), alerts, reports, statistics,
retention; and ``faceleads evaluate live``. Thin shells over :mod:`faceleads.live` (docs/live.md)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from faceleads.cli.common import AgencyOpt, JsonOpt, cli_errors, console, emit, err_console
from faceleads.cli.context import cli_actor, runtime
from faceleads.errors import ValidationError

live_app = typer.Typer(
    help="Live watch-list deployments: a separate, authorised, time-boxed mode (docs/live.md).", no_args_is_help=True
)
watchlist_app = typer.Typer(help="Named watch lists built from gallery subjects.", no_args_is_help=True)
live_app.add_typer(watchlist_app, name="watchlist")


def _time(text: str, what: str) -> datetime:
    value = text.strip()
    if value.startswith("+") and value[-1:] in {"m", "h"}:
        try:
            amount = float(value[1:-1])
        except ValueError:
            raise ValidationError(f"{what}: use an ISO time or +N m / +N h, got {text!r}") from None
        return datetime.now(UTC) + (timedelta(minutes=amount) if value.endswith("m") else timedelta(hours=amount))
    if value == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{what} must be an ISO time (2026-05-01T14:00), 'now' or +N m / +N h") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------------- watch lists


@watchlist_app.command("create")
def watchlist_create(
    name: Annotated[str, typer.Argument(help="Name of the list.")],
    description: Annotated[str, typer.Option("--description", help="What the list is for.")] = "",
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an empty watch list."""
    from faceleads.live import watchlists

    with cli_errors():
        rt = runtime()
        info = watchlists.create_watchlist(rt, cli_actor(rt, agency), name, description)
    emit(info.to_json(), as_json)


@watchlist_app.command("add")
def watchlist_add(
    watchlist_id: Annotated[int, typer.Argument(help="Watch list id.")],
    subject_number: Annotated[str, typer.Argument(help="Subject number in the gallery.")],
    reason: Annotated[str, typer.Option("--reason", help="Why this person is wanted, e.g. the warrant number.")],
    expires: Annotated[str, typer.Option("--expires", help="Entry expiry: ISO time or +N h.")],
    owner_agency: Annotated[
        str | None, typer.Option("--owner-agency", help="Agency code of a subject shared by another agency.")
    ] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put a gallery subject on a watch list."""
    from faceleads.live import watchlists

    with cli_errors():
        rt = runtime()
        entry = watchlists.add_entry(rt, cli_actor(rt, agency), watchlist_id, subject_number, reason,
                                     _time(expires, "--expires"), agency_code=owner_agency)  # fmt: skip
    emit(entry.to_json(), as_json)


@watchlist_app.command("remove")
def watchlist_remove(
    entry_id: Annotated[int, typer.Argument(help="Entry id.")], agency: AgencyOpt = None
) -> None:
    """Take an entry off its list."""
    from faceleads.live import watchlists

    with cli_errors():
        rt = runtime()
        watchlists.remove_entry(rt, cli_actor(rt, agency), entry_id)
    err_console.print(f"entry {entry_id} removed")


@watchlist_app.command("show")
def watchlist_show(
    watchlist_id: Annotated[int, typer.Argument(help="Watch list id.")], agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """A watch list with each entry's state (usable, expired, destroyed, not shared for live use)."""
    from faceleads.live import watchlists

    with cli_errors():
        rt = runtime()
        info = watchlists.get_watchlist(rt, cli_actor(rt, agency), watchlist_id, check_templates=True)
    emit(info.to_json(), as_json)


@watchlist_app.command("list")
def watchlist_list(agency: AgencyOpt = None, as_json: JsonOpt = False) -> None:
    """The agency's watch lists."""
    from faceleads.live import watchlists

    with cli_errors():
        rt = runtime()
        data = [w.to_json() for w in watchlists.list_watchlists(rt, cli_actor(rt, agency))]
    emit(data, as_json)


# --------------------------------------------------------------------------------------------- deployments


@live_app.command("prepare")
def prepare(
    watchlist: Annotated[int, typer.Option("--watchlist", help="Watch list id.")],
    location: Annotated[str, typer.Option("--location", help="Where the cameras are.")],
    legal_basis: Annotated[str, typer.Option("--legal-basis", help="The legal basis of the deployment.")],
    purpose: Annotated[str, typer.Option("--purpose", help="Why (e.g. locate wanted offenders at the hot spot).")],
    start: Annotated[str, typer.Option("--start", help="Start: ISO time, 'now' or +N m/h.")],
    end: Annotated[str, typer.Option("--end", help="End: ISO time or +N m/h (at most FACELEADS_LIVE_MAX_HOURS).")],
    camera: Annotated[
        list[str], typer.Option("--camera", help="NAME=SOURCE (file, rtsp://, http(s)://, device:N); repeat.")
    ],
    officer: Annotated[list[str], typer.Option("--officer", help="User name of an alert officer; repeat.")],
    threshold: Annotated[float, typer.Option("--threshold", help="Alert threshold (cosine similarity).")],
    signage_confirmed: Annotated[
        bool, typer.Option("--signage-confirmed", help="Public notice/signage is in place.")
    ] = False,
    signage_note: Annotated[str, typer.Option("--signage-note", help="What notice is in place, where.")] = "",
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Prepare a deployment for a supervisor to authorise (shows the expected false alert rate)."""
    from faceleads.live import deployments as d

    with cli_errors():
        cams = []
        for spec in camera:
            name, sep, source = spec.partition("=")
            cams.append(d.CameraInput(name.strip(), source) if sep else d.CameraInput("", spec))
        rt = runtime()
        info = d.create_deployment(rt, cli_actor(rt, agency), d.DeploymentInput(
            watchlist_id=watchlist, location=location, legal_basis=legal_basis, purpose=purpose,
            start_at=_time(start, "--start"), end_at=_time(end, "--end"), cameras=cams, officers=officer,
            threshold=threshold, signage_confirmed=signage_confirmed, signage_note=signage_note))  # fmt: skip
    _show(info, as_json)


def _show(info: Any, as_json: bool) -> None:
    emit(info.to_json(), as_json, lambda: _print_deployment(info))


def _print_deployment(info: Any) -> None:
    table = Table(title=f"deployment {info.id} ({info.status})", show_header=False)
    for key in ("location", "watchlist_name", "start_at", "end_at", "threshold", "signage_confirmed", "officers",
                "created_by", "authorised_by", "started_at", "stopped_at", "stop_reason", "frozen_size"):
        table.add_row(key, str(getattr(info, key)))
    for cam in info.cameras:
        table.add_row(f"camera {cam.position}", f"{cam.name}: {cam.source} [{cam.status}] frames {cam.frames_processed}"
                      f" dropped {cam.frames_dropped} faces {cam.faces} tracks {cam.tracks} alerts {cam.alerts}")
    console.print(table)
    if info.expected is not None:
        console.print(f"[bold]Expected false alert rate:[/] {info.expected.sentence()}")
    for note in info.notes:
        console.print(f"[yellow]note:[/] {note}")


def _deployment_cmd(name: str, doc: str, fn_name: str, *, note_option: str | None = None) -> None:
    def command(
        deployment_id: Annotated[int, typer.Argument(help="Deployment id.")],
        note: Annotated[str, typer.Option("--note", help="Note or reason recorded with the action.")] = "",
        agency: AgencyOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        from faceleads.live import deployments as d

        with cli_errors():
            rt = runtime()
            actor = cli_actor(rt, agency)
            fn = getattr(d, fn_name)
            info = fn(rt, actor, deployment_id, note) if note_option else fn(rt, actor, deployment_id)
        _show(info, as_json)

    command.__doc__ = doc
    live_app.command(name)(command)


_deployment_cmd("show", "One deployment (its effective status, cameras' counts, expected false alert rate).",
                "get_deployment")
_deployment_cmd("authorise", "Authorise a prepared deployment (supervisors; never one you prepared).",
                "authorise_deployment", note_option="note")
_deployment_cmd("refuse", "Refuse a prepared deployment, with the reason (--note).", "refuse_deployment",
                note_option="note")
_deployment_cmd("confirm-signage", "Record that public notice/signage is in place (--note: what, where).",
                "confirm_signage", note_option="note")
_deployment_cmd("cancel", "Withdraw a deployment that has not started.", "cancel_deployment")
_deployment_cmd("stop", "Stop a running deployment now (its cameras stop within a second).", "stop_deployment",
                note_option="note")  # fmt: skip


@live_app.command("list")
def list_cmd(
    status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The agency's deployments."""
    from faceleads.live import deployments as d

    with cli_errors():
        rt = runtime()
        rows = d.list_deployments(rt, cli_actor(rt, agency), status)
    emit([r.to_json() for r in rows], as_json)


@live_app.command("expected-rate")
def expected_rate_cmd(
    watchlist: Annotated[int, typer.Option("--watchlist", help="Watch list id.")],
    threshold: Annotated[float, typer.Option("--threshold", help="Alert threshold.")],
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Expected false alert rate of a threshold for a watch list, from the agency's latest calibration."""
    from faceleads.live import deployments as d

    with cli_errors():
        rt = runtime()
        rate = d.expected_for(rt, cli_actor(rt, agency), watchlist, threshold)
        if rate is None:
            raise ValidationError("no calibration stored for this agency: run `faceleads evaluate calibrate --save`")
    emit(rate.to_json(), as_json, rate.sentence)


@live_app.command("run")
def run_cmd(
    deployment_id: Annotated[int, typer.Argument(help="An authorised deployment.")],
    agency: AgencyOpt = None,
) -> None:
    """Start an authorised deployment (or restart the cameras of a running one whose workers died) and run its
    cameras here until it ends (its end time, `live stop`, Ctrl-C, or the sources end). Files are played at their
    own frame rate, as cameras."""
    from faceleads.live import deployments as d
    from faceleads.live.runner import DeploymentRunner

    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        current = d.get_deployment(rt, actor, deployment_id)
        if current.status == "running":  # its workers died (a restart): start its cameras again
            info = d.resume_cameras(rt, actor, deployment_id)
        else:
            info = d.start_deployment(rt, actor, deployment_id)
        runner = DeploymentRunner(rt.settings)
        runner.start(rt, deployment_id)
        err_console.print(f"deployment {deployment_id} running until {info.end_at.isoformat()} "
                          f"({info.frozen_size} listed people); Ctrl-C stops it")  # fmt: skip
        try:
            with Live(console=err_console, refresh_per_second=2) as live:
                while runner.is_running(deployment_id):
                    live.update(_camera_table(d.get_deployment(rt, actor, deployment_id)))
                    time.sleep(1.0)
                live.update(_camera_table(d.get_deployment(rt, actor, deployment_id)))
        except KeyboardInterrupt:
            d.stop_deployment(rt, actor, deployment_id, "stopped from the command line")
        finally:
            runner.stop(deployment_id)
        final = d.get_deployment(rt, actor, deployment_id)
        if final.status == "running":  # the sources ended before the end time
            final = d.stop_deployment(rt, actor, deployment_id, "camera sources ended")
    _show(final, False)


def _camera_table(info: Any) -> Table:
    table = Table(title=f"deployment {info.id}: {info.status} (until {info.end_at:%H:%M:%S})")
    for col in ("camera", "status", "frames", "dropped", "faces", "tracks", "alerts"):
        table.add_column(col)
    for c in info.cameras:
        table.add_row(c.name, c.status, str(c.frames_processed), str(c.frames_dropped), str(c.faces), str(c.tracks),
                      str(c.alerts))  # fmt: skip
    return table


# --------------------------------------------------------------------------------------------- alerts, reports


@live_app.command("alerts")
def alerts_cmd(
    deployment_id: Annotated[int, typer.Argument(help="Deployment id.")],
    after: Annotated[int, typer.Option("--after", help="Only alerts after this id.")] = 0,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A deployment's alerts (named alert officers; the images are in the web app)."""
    from faceleads.live import alerts

    with cli_errors():
        rt = runtime()
        rows = alerts.list_alerts(rt, cli_actor(rt, agency), deployment_id, after_id=after)
    emit([a.to_json() for a in rows], as_json)


@live_app.command("decide")
def decide_cmd(
    alert_id: Annotated[int, typer.Argument(help="Alert id.")],
    decision: Annotated[str, typer.Option("--decision", help="confirmed, false_alert or not_actioned.")],
    note: Annotated[str, typer.Option("--note", help="What was done (required when confirmed).")] = "",
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record the decision on an alert."""
    from faceleads.live import alerts

    with cli_errors():
        rt = runtime()
        info = alerts.decide_alert(rt, cli_actor(rt, agency), alert_id, decision, note)
    emit(info.to_json(), as_json)


@live_app.command("report")
def report_cmd(
    deployment_id: Annotated[int, typer.Argument(help="Deployment id.")],
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Write the PDF report here.")] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The deployment's report: duration, frames, faces, tracks, alerts, decisions, false alert rate, drops."""
    from faceleads.live import reports

    with cli_errors():
        rt = runtime()
        data = reports.report_data(rt, cli_actor(rt, agency), deployment_id)
        if pdf is not None:
            pdf.write_bytes(reports.render_pdf(data))
            err_console.print(f"PDF written to {pdf}")
    emit(data, as_json)


@live_app.command("stats")
def stats_cmd(
    since: Annotated[str, typer.Option("--since", help="Period start (ISO date/time).")],
    until: Annotated[str, typer.Option("--until", help="Period end, exclusive (ISO date/time).")],
    only: Annotated[str | None, typer.Option("--only-agency", help="One agency's figures.")] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per-agency deployment statistics for a period (for the transparency report)."""
    from faceleads.live import reports

    with cli_errors():
        rt = runtime()
        rows = reports.deployment_statistics(rt, cli_actor(rt, agency), _time(since, "--since"),
                                             _time(until, "--until"), agency_code=only)  # fmt: skip
    emit([r.to_json() for r in rows], as_json)


@live_app.command("retention")
def retention_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, delete nothing.")] = False,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete (crypto-shred) alert captures whose retention period has passed (records officers)."""
    from faceleads.live import alerts

    with cli_errors():
        rt = runtime()
        report = alerts.purge_expired_alerts(rt, cli_actor(rt, agency), dry_run=dry_run)
    emit(report.to_json(), as_json)


# --------------------------------------------------------------------------------------------- evaluate live


def evaluate_live(
    watchlist: Annotated[Path, typer.Option("--watchlist", help="CSV path,identity (paths relative to --images).")],
    images: Annotated[Path, typer.Option("--images", help="Folder of the watch-list photos.")],
    video: Annotated[Path, typer.Option("--video", help="Recorded video to run the live pipeline over.")],
    truth: Annotated[Path, typer.Option("--truth", help="CSV start_s,end_s,identity: who is in view when.")],
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Alert threshold (default FACELEADS_LIVE_DEFAULT_THRESHOLD).",
                                   min=-1.0, max=1.0)
    ] = None,
    save_calibration: Annotated[
        bool, typer.Option("--save-calibration",
                           help="Store the impostor comparisons seen as the agency's latest calibration.")
    ] = False,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """The live pipeline over a recorded video, scored against a truth file (no camera, nothing stored)."""
    from faceleads.config import get_settings
    from faceleads.live import evaluation
    from faceleads.vision.engine import FaceEngine

    settings = get_settings()
    t = settings.live_default_threshold if threshold is None else threshold
    with cli_errors():
        for path, what in ((watchlist, "--watchlist"), (truth, "--truth"), (video, "--video")):
            if not path.is_file():
                raise ValidationError(f"{what} {path} does not exist")
        engine = FaceEngine(settings)
        rows = evaluation.read_watchlist(watchlist, images)
        truth_rows = evaluation.read_truth(truth)
        wl = evaluation.build_watchlist(engine, rows, settings)
        with Progress(TextColumn("evaluate live"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err_console, transient=True, disable=not sys.stderr.isatty()) as progress:  # fmt: skip
            task = progress.add_task("frames", total=None)

            def step(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total or None)

            ev = evaluation.evaluate_video(engine, settings, wl, video, truth_rows, t, step)
        result = ev.result
        if save_calibration:
            from faceleads.evaluation.stored import save_calibration as save

            rt = runtime(settings)
            stored = save(rt.session_factory, cli_actor(rt, agency), source="live_evaluation",
                          model_version=engine.model_version, impostor_scores=ev.impostor_scores,
                          dataset=f"{video.name} with {watchlist.name}", threshold=t)  # fmt: skip
            result["calibration_id"] = stored.id
    emit(result, as_json, compact=True)


def register(app: typer.Typer) -> None:
    """Add ``live`` to the main app and ``live`` to ``evaluate``."""
    from faceleads.cli.evaluate_cmds import evaluate_app

    app.add_typer(live_app, name="live")
    evaluate_app.command("live")(evaluate_live)
