"""``faceleads regime ...`` (legal regimes administered per agency) and ``faceleads ratification ...`` (exigent
searches and their supervisor's ratification). Thin shells over :mod:`faceleads.casework.regimes`; see
docs/regimes.md."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from faceleads.cli.common import AgencyOpt, JsonOpt, cli_errors, console, emit, err_console
from faceleads.cli.context import cli_actor, runtime

regime_app = typer.Typer(help="Legal regimes of your agency: each purpose's regime, the exigent window.",
                         no_args_is_help=True)
ratification_app = typer.Typer(help="Exigent searches: list pending and lapsed ones, ratify or refuse.",
                               no_args_is_help=True)


def _print_regimes(info: object) -> None:
    from faceleads.casework.regimes import RegimeSettings

    assert isinstance(info, RegimeSettings)
    console.print(f"agency {info.agency_code}: exigent searches ratified within {info.exigent_window_hours} h; "
                  f"prior authorisations last {info.authorisation_hours} h", highlight=False)
    table = Table("purpose", "title", "regime", "prior authorisation", "active")
    for p in info.purposes:
        prior = ("required" if p.requires_authorisation and p.regime == "investigative"
                 else "ratified afterwards" if p.regime == "exigent" else "no")
        table.add_row(p.code, p.title, p.regime, prior, "yes" if p.active else "no")
    console.print(table)


@regime_app.command("show")
def regime_show(agency: AgencyOpt = None, as_json: JsonOpt = False) -> None:
    """Your agency's regimes: windows and the regime of every purpose."""
    from faceleads.casework import regimes

    with cli_errors():
        rt = runtime()
        info = regimes.show_regimes(rt, cli_actor(rt, agency))
    emit(info.to_json(), as_json, lambda: _print_regimes(info))


@regime_app.command("set")
def regime_set(
    purpose: Annotated[str, typer.Argument(help="Purpose code.")],
    regime: Annotated[str, typer.Argument(help="investigative, exigent or live_deployment.")],
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Administrators: put a purpose in a legal regime for your agency (audited)."""
    from faceleads.casework import regimes

    with cli_errors():
        rt = runtime()
        info = regimes.set_purpose_regime(rt, cli_actor(rt, agency), purpose, regime)
    emit(info.to_json(), as_json, lambda: _print_regimes(info))


@regime_app.command("window")
def regime_window(
    exigent_hours: Annotated[
        int | None, typer.Option("--exigent-hours", min=1, max=336, help="Hours to ratify an exigent search.")
    ] = None,
    authorisation_hours: Annotated[
        int | None, typer.Option("--authorisation-hours", min=1, max=2160, help="Hours a prior authorisation lasts.")
    ] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Administrators: set the exigent ratification window and the validity of prior authorisations (audited)."""
    from faceleads.casework import regimes

    with cli_errors():
        rt = runtime()
        info = regimes.set_windows(rt, cli_actor(rt, agency), exigent_window_hours=exigent_hours,
                                   authorisation_hours=authorisation_hours)  # fmt: skip
    emit(info.to_json(), as_json, lambda: _print_regimes(info))


@ratification_app.command("list")
def ratification_list(
    state: Annotated[str, typer.Option("--state", help="open (default), pending, lapsed, decided or all.")] = "open",
    of_agency: Annotated[str | None, typer.Option("--of", help="Oversight: only this agency's.")] = None,
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Exigent searches by ratification state; lapsed ones are flagged and their candidates locked."""
    from faceleads.casework import regimes

    with cli_errors():
        rt = runtime()
        rows = regimes.list_ratifications(rt, cli_actor(rt, agency), state=state, agency_code=of_agency)

    def table() -> Table:
        t = Table("search", "agency", "case", "purpose", "analyst", "searched", "ratify by", "state")
        for r in rows:
            t.add_row(str(r.case_search_id), r.agency, r.occurrence_number, r.purpose, r.analyst,
                      f"{r.searched_at:%Y-%m-%d %H:%M}", f"{r.ratify_by:%Y-%m-%d %H:%M}" if r.ratify_by else "",
                      r.state + (" (LOCKED)" if r.locked else ""))
        return t

    emit([r.to_json() for r in rows], as_json, table)


def _decide(case_search_id: int, reason: str, grant: bool, agency: str | None, as_json: bool) -> None:
    from faceleads.casework import regimes

    with cli_errors():
        rt = runtime()
        info = regimes.ratify_search(rt, cli_actor(rt, agency), case_search_id, reason, grant=grant)
    emit(info.to_json(), as_json,
         lambda: err_console.print(f"case search {info.case_search_id}: {info.state.replace('_', ' ')}",
                                   highlight=False))


@ratification_app.command("ratify")
def ratification_ratify(
    case_search_id: Annotated[int, typer.Argument(help="Case search id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the exigent search was justified.")],
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Supervisors: ratify an exigent search (not one you ran or declared); a late ratification unlocks it."""
    _decide(case_search_id, reason, True, agency, as_json)


@ratification_app.command("refuse")
def ratification_refuse(
    case_search_id: Annotated[int, typer.Argument(help="Case search id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it was not justified.")],
    agency: AgencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Supervisors: refuse to ratify an exigent search; its candidates stay locked for good."""
    _decide(case_search_id, reason, False, agency, as_json)


def register(app: typer.Typer) -> None:
    """Add the regime and ratification command groups to the main app."""
    app.add_typer(regime_app, name="regime")
    app.add_typer(ratification_app, name="ratification")
