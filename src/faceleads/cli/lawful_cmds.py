"""The lawful gallery on the command line: ``faceleads authority ...`` (the agency's list of legal authorities and
the review of records not on it), ``faceleads disposition ...`` (disposition events and the destruction they
schedule) and ``faceleads destruction criteria ...`` (the eligibility checklist). docs/gallery.md, "Lawful gallery",
and docs/destruction.md. Thin shells over the domain services, which authorise and audit.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.table import Table

from faceleads.cli.common import AgencyOpt, JsonOpt, cli_errors, console, emit, err_console
from faceleads.cli.context import cli_actor, runtime
from faceleads.errors import ValidationError
from faceleads.gallery import authorities
from faceleads.governance import criteria, dispositions

authority_app = typer.Typer(
    help="The agency's list of legal authorities (enrolment accepts only these) and the review of records not on it.",
    no_args_is_help=True,
)
disposition_app = typer.Typer(
    help="Disposition events of bookings (withdrawn, dismissed, acquitted, pardoned) and the destruction they "
    "schedule under the agency's policy.",
    no_args_is_help=True,
)
criteria_app = typer.Typer(
    help="The agency's destruction eligibility checklist (administrators).", no_args_is_help=True
)


def parse_day(text: str, what: str) -> date:
    """A ``YYYY-MM-DD`` date with a clear error."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{what} must be a date YYYY-MM-DD, got {text!r}") from None


# --------------------------------------------------------------------------------------------- authorities


@authority_app.command("list")
def authority_list(
    active_only: Annotated[bool, typer.Option("--active-only", help="Leave out withdrawn entries.")] = False,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The agency's legal authorities, with the number of bookings held under each."""
    with cli_errors():
        rt = runtime()
        entries = authorities.list_authorities(rt, cli_actor(rt, agency), include_withdrawn=not active_only)

        def table() -> Table:
            t = Table(title="legal authorities")
            for col in ("code", "authority", "state", "bookings"):
                t.add_column(col)
            for e in entries:
                state = "active" if e.active else f"withdrawn {str(e.withdrawn_at)[:10]}"
                t.add_row(e.code, e.title, state, str(e.bookings))
            return t

        emit([e.to_json() for e in entries], as_json, table)


@authority_app.command("add")
def authority_add(
    code: Annotated[str, typer.Argument(help="Short code, e.g. PACE-64A.")],
    title: Annotated[str, typer.Option("--title", help="The authority as cited, e.g. 'PACE 1984 s.64A'.")],
    description: Annotated[str, typer.Option("--description", help="What it covers (optional).")] = "",
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a legal authority to the agency's list (administrators)."""
    with cli_errors():
        rt = runtime()
        entry = authorities.add_authority(rt, cli_actor(rt, agency), code, title, description)
        emit(entry.to_json(), as_json, lambda: err_console.print(f"added {entry.code}: {entry.title}", highlight=False))


@authority_app.command("withdraw")
def authority_withdraw(
    code: Annotated[str, typer.Argument(help="Code of the entry.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (at least 10 characters).")],
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw an authority: no new enrolment under it; its bookings are not searched until reviewed."""
    with cli_errors():
        rt = runtime()
        entry = authorities.withdraw_authority(rt, cli_actor(rt, agency), code, reason)
        emit(entry.to_json(), as_json, lambda: err_console.print(
            f"withdrew {entry.code}; {entry.bookings} booking(s) held under it now await review "
            "(faceleads authority compliance)", highlight=False))  # fmt: skip


@authority_app.command("compliance")
def authority_compliance(
    details: Annotated[bool, typer.Option("--details", help="List the bookings (records officers).")] = False,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Bookings held under an authority that is not on the list (not searched until reviewed)."""
    with cli_errors():
        rt = runtime()
        report = authorities.compliance(rt, cli_actor(rt, agency), details=details)

        def lines() -> None:
            console.print(f"{report.agency}: {report.listed_bookings} booking(s) held under a listed authority, "
                          f"{report.unlisted_bookings} awaiting review", highlight=False)  # fmt: skip
            for group in report.unlisted:
                console.print(f"- {group.authority!r} ({group.state}): {group.bookings} booking(s) of "
                              f"{group.subjects} subject(s), {group.photos_not_searched} photo(s) not searched",
                              highlight=False)  # fmt: skip
                for rec in group.records:
                    console.print(f"    booking {rec['booking_number']} ({rec['booking_date']}), subject "
                                  f"{rec['subject_number']}", highlight=False)  # fmt: skip

        emit(report.to_json(), as_json, lines)


@authority_app.command("review")
def authority_review(
    to: Annotated[str, typer.Option("--to", help="Code of the listed authority the records are held under.")],
    reason: Annotated[str, typer.Option("--reason", help="What was checked (at least 10 characters).")],
    from_text: Annotated[
        str | None, typer.Option("--from-text", help="Every booking awaiting review enrolled under this text.")
    ] = None,
    booking: Annotated[str | None, typer.Option("--booking", help="One booking number.")] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-attribute bookings awaiting review to a listed authority after checking the records (records officers)."""
    with cli_errors():
        rt = runtime()
        count = authorities.reattribute(rt, cli_actor(rt, agency), to, reason, from_text=from_text, booking=booking)
        emit({"reattributed": count, "authority": to}, as_json,
             lambda: err_console.print(f"{count} booking(s) now held under {to} and searched again", highlight=False))


# --------------------------------------------------------------------------------------------- dispositions


def _schedule_table(rows: list[dispositions.Schedule], title: str) -> None:
    table = Table(title=title)
    for col in ("subject", "state", "due on", "request", "events", "why"):
        table.add_column(col)
    for s in rows:
        events = "; ".join(f"{e['booking_number']} {e['kind']} {e['occurred_on']}" for e in s.events)
        request = f"{s.request_id} ({s.request_status})" if s.request_id else ""
        table.add_row(s.subject_number, s.state, s.due_on.isoformat() if s.due_on else "", request, events, s.reason)
    console.print(table)


@disposition_app.command("record")
def disposition_record(
    booking: Annotated[str, typer.Option("--booking", help="Booking number of your agency.")],
    kind: Annotated[str, typer.Option("--kind", help="withdrawn, dismissed, acquitted or pardoned.")],
    on: Annotated[str, typer.Option("--date", help="Date of the disposition, YYYY-MM-DD.")],
    reference: Annotated[str, typer.Option("--reference", help="Court or prosecution reference.")],
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a disposition event; the subject's destruction is scheduled under the agency's policy (a request is
    opened at once when it is due)."""
    from faceleads.gallery.dispositions import parse_kind

    with cli_errors():
        rt = runtime()
        done = dispositions.record_disposition(rt, cli_actor(rt, agency), booking, parse_kind(kind),
                                               parse_day(on, "--date"), reference, source="cli")  # fmt: skip

        def line() -> None:
            s = done.schedule
            news = "recorded" if done.new else "already recorded"
            err_console.print(f"{news}: booking {done.booking_number} {done.kind} on {done.occurred_on} "
                              f"(ref {done.reference}); subject {s.subject_number}: {s.state}"
                              + (f", due {s.due_on}" if s.due_on else "") + f" - {s.reason}",
                              highlight=False)  # fmt: skip

        emit(done.to_json(), as_json, line)


@disposition_app.command("policy")
def disposition_policy(
    kind: Annotated[str | None, typer.Argument(help="Kind to set; omit to show the policy.")] = None,
    destroy_after: Annotated[
        int | None, typer.Option("--destroy-after", help="Destroy the records this many days after the disposition.",
                                 min=0)
    ] = None,
    retain: Annotated[bool, typer.Option("--retain", help="Keep the records after this kind of disposition.")] = False,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Show the agency's disposition policy, or set it for one kind (administrators)."""
    from faceleads.gallery.dispositions import parse_kind

    with cli_errors():
        rt = runtime()
        actor = cli_actor(rt, agency)
        if kind is not None:
            if retain == (destroy_after is not None):
                raise ValidationError("give exactly one of --destroy-after DAYS or --retain")
            dispositions.set_rule(rt, actor, parse_kind(kind), dispositions.RETAIN if retain else dispositions.DESTROY,
                                  destroy_after or 0)  # fmt: skip
        rules = dispositions.list_rules(rt, actor)

        def lines() -> None:
            for r in rules:
                what = ("keep the records" if r.action == dispositions.RETAIN
                        else f"destroy after {r.waiting_days} day(s)")  # fmt: skip
                console.print(f"{r.kind}: {what}{' (default)' if r.default else ''}", highlight=False)

        emit([r.to_json() for r in rules], as_json, lines)


@disposition_app.command("report")
def disposition_report(agency: AgencyOpt = None, as_json: JsonOpt = False) -> None:
    """Subjects with disposition events: scheduled, due, retained (and why), or with their destruction request."""
    with cli_errors():
        rt = runtime()
        rows = dispositions.schedule_report(rt, cli_actor(rt, agency))
        emit([r.to_json() for r in rows], as_json,
             lambda: _schedule_table(rows, "destruction scheduled by dispositions"))


@disposition_app.command("run")
def disposition_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what is due.")] = False,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a destruction request for every subject whose disposition waiting period is over (records officers);
    run it daily, and after a manifest with disposition columns."""
    with cli_errors():
        rt = runtime()
        done = dispositions.run(rt, cli_actor(rt, agency), dry_run=dry_run)

        def summary() -> None:
            _schedule_table(done.schedules, "disposition run (dry run)" if dry_run else "disposition run")
            err_console.print(f"{done.opened} destruction request(s) opened", highlight=False)

        emit(done.to_json(), as_json, summary)


# --------------------------------------------------------------------------------------------- criteria


@criteria_app.command("list")
def criteria_list(agency: AgencyOpt = None, as_json: JsonOpt = False) -> None:
    """The agency's destruction eligibility checklist."""
    with cli_errors():
        rt = runtime()
        items = criteria.list_criteria(rt, cli_actor(rt, agency))

        def lines() -> None:
            for c in items:
                how = c.check if c.parameter is None else f"{c.check} {c.parameter}"
                state = "" if c.active else " [withdrawn]"
                console.print(f"[bold]{c.code}[/] ({how}){state}: {c.text}", highlight=False)

        emit([c.to_json() for c in items], as_json, lines)


@criteria_app.command("add")
def criteria_add(
    code: Annotated[str, typer.Argument(help="Code, e.g. under_18_at_booking.")],
    text: Annotated[str, typer.Option("--text", help="What the officer checks.")],
    check: Annotated[
        str, typer.Option("--check", help="manual, max_age_at_booking (--parameter years) or waiting_period "
                                          "(--parameter days).")
    ] = "manual",
    parameter: Annotated[int | None, typer.Option("--parameter", help="Years or days (computed checks).")] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Add an item to the checklist (administrators); new requests use it."""
    with cli_errors():
        rt = runtime()
        item = criteria.add_criterion(rt, cli_actor(rt, agency), code, text, check=check, parameter=parameter)
        emit(item.to_json(), as_json, lambda: err_console.print(f"added criterion {item.code}", highlight=False))


@criteria_app.command("withdraw")
def criteria_withdraw(
    code: Annotated[str, typer.Argument(help="Code of the item.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (at least 10 characters).")],
    agency: AgencyOpt = None,
) -> None:
    """Withdraw an item (administrators); open requests keep the checklist they were recorded with."""
    with cli_errors():
        rt = runtime()
        criteria.withdraw_criterion(rt, cli_actor(rt, agency), code, reason)
        err_console.print(f"withdrew criterion {code}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``authority``, ``disposition`` and ``destruction criteria`` to the main app."""
    from faceleads.cli.governance_cmds import destruction_app

    app.add_typer(authority_app, name="authority")
    app.add_typer(disposition_app, name="disposition")
    destruction_app.add_typer(criteria_app, name="criteria")
