"""Outcomes and transparency on the command line: ``faceleads lead outcome`` / ``lead outcomes`` (investigators sign
off what became of released leads) and ``faceleads report transparency`` (the public report as CSV and PDF).
docs/transparency.md. Thin shells over :mod:`faceleads.casework.outcomes` and
:mod:`faceleads.governance.transparency`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from faceleads.cli.common import AgencyOpt, JsonOpt, cli_errors, emit, err_console
from faceleads.cli.context import cli_actor, runtime
from faceleads.cli.lawful_cmds import parse_day
from faceleads.gallery.runtime import GalleryRuntime


def outcome_cmd(
    lead_id: Annotated[int, typer.Argument(help="Lead id (a released lead).", min=1)],
    outcome: Annotated[
        str, typer.Option("--outcome", help="corroborated, eliminated, no_further_action or charged.")
    ],
    notes: Annotated[str, typer.Option("--notes", help="What corroborated, eliminated or followed the lead.")],
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign off the outcome of a released lead (investigators); a later entry supersedes an earlier one."""
    from faceleads.casework import outcomes

    with cli_errors():
        rt = runtime()
        lead = outcomes.record_outcome(rt, cli_actor(rt, agency), lead_id, outcome.strip().lower(), notes)

        def line() -> None:
            assert lead.outcome is not None
            err_console.print(f"lead {lead.lead_id} ({lead.occurrence_number}): {lead.outcome.outcome}, signed off by "
                              f"{lead.outcome.signed_off_by} at {lead.outcome.signed_off_at:%Y-%m-%d %H:%M} UTC",
                              highlight=False)  # fmt: skip

        emit(lead.to_json(), as_json, line)


def outcomes_cmd(
    awaiting: Annotated[bool, typer.Option("--awaiting", help="Only released leads without an outcome.")] = False,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The agency's released leads and their outcomes."""
    from faceleads.casework import outcomes

    with cli_errors():
        rt = runtime()
        leads = outcomes.released_leads(rt, cli_actor(rt, agency), awaiting_only=awaiting)

        def table() -> Table:
            t = Table(title="released leads")
            for col in ("lead", "case", "offence", "released", "outcome", "signed off"):
                t.add_column(col)
            for lead in leads:
                o = lead.outcome
                signed = f"{o.signed_off_by} {o.signed_off_at:%Y-%m-%d}" if o else ""
                t.add_row(str(lead.lead_id), lead.occurrence_number, lead.offence, str(lead.released_at)[:16],
                          o.outcome if o else "awaiting", signed)  # fmt: skip
            return t

        emit([lead.to_json() for lead in leads], as_json, table)


def _signed_in(rt: GalleryRuntime) -> bool:
    from faceleads.cli.security_cmds import stored_token

    return bool(stored_token(rt.settings)) or not rt.settings.is_dev


def transparency_cmd(
    date_from: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")],
    date_to: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (UTC, inclusive).")],
    agency: Annotated[
        str | None,
        typer.Option("--agency", help="Agency reported on (default: yours; oversight: every agency at once; in dev "
                                      "mode without sign-in, the agency acted for)."),
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the CSV here.")] = None,
    pdf_out: Annotated[Path | None, typer.Option("--pdf", help="Write the PDF here.")] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """The agency's public transparency report for a period, as CSV and PDF (supervisors, auditors; oversight for
    any agency or every agency). Small counts are suppressed; nothing personal or biometric is in it. Without
    --csv/--pdf/--json the CSV goes to stdout."""
    from faceleads.governance.transparency import transparency_report

    with cli_errors():
        rt = runtime()
        # Signed in, you act as yourself and --agency names the agency reported on (refused unless yours, or you
        # hold the oversight role); the dev system actor acts for --agency.
        actor = cli_actor(rt, None) if _signed_in(rt) else cli_actor(rt, agency)
        formats = tuple(f for f, wanted in (("csv", csv_out is not None or not (pdf_out or as_json)),
                                            ("pdf", pdf_out is not None)) if wanted)  # fmt: skip
        output = transparency_report(rt, actor, parse_day(date_from, "--from"), parse_day(date_to, "--to"),
                                     agency_code=agency, formats=formats)  # fmt: skip
        if csv_out is not None and output.csv is not None:
            csv_out.write_text(output.csv, encoding="utf-8")
            err_console.print(f"wrote {csv_out}", highlight=False)
        if pdf_out is not None and output.pdf is not None:
            pdf_out.write_bytes(output.pdf)
            err_console.print(f"wrote {pdf_out}", highlight=False)

        def csv_on_stdout() -> None:
            if csv_out is None and pdf_out is None and output.csv is not None:
                typer.echo(output.csv, nl=False)

        emit(output.to_json(), as_json, csv_on_stdout)


def register(app: typer.Typer) -> None:
    """Add ``lead outcome``, ``lead outcomes`` and ``report transparency`` to the casework command groups."""
    from faceleads.cli.casework_cmds import lead_app, report_app

    lead_app.command("outcome")(outcome_cmd)
    lead_app.command("outcomes")(outcomes_cmd)
    report_app.command("transparency")(transparency_cmd)
