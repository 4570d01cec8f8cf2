"""Shared command-line plumbing: consoles, error reporting and JSON output."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType

from faceleads.errors import FaceleadsError

#: Options shared by the domain commands.
AgencyOpt = Annotated[
    str | None,
    typer.Option("--agency", help="Agency code to act for (dev mode without sign-in; default FACELEADS_AGENCY)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")]

#: Human-facing output (tables, progress) goes to stderr so that ``--json`` leaves stdout pure JSON.
err_console = Console(stderr=True)
console = Console()


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn expected errors into a one-line message on stderr and exit code 2 (never a traceback)."""
    try:
        yield
    except FaceleadsError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        raise typer.Exit(code=2) from None


#: How :func:`emit` shows a result to a person: a line (Rich markup) or a Rich renderable, printed on stdout; a
#: callable, run only without ``--json``, that returns such a line or renderable or prints what it wants itself
#: (tables, lines on stderr) and returns None; or None for the payload itself as coloured, indented JSON.
HumanForm = RenderableType | Callable[[], RenderableType | None] | None


def print_json(data: Any, *, compact: bool = False) -> None:
    """Print one JSON document on stdout, and nothing else.

    Indented by two with non-ASCII text kept as is; ``compact`` prints it on one line with ``json.dumps``'s
    defaults instead (ASCII only), the form the ``evaluate`` commands print for scripts and benchmarks. ``data``
    must be JSON-native (the ``to_json()`` of the service results): anything else is a programming error and
    raises ``TypeError`` rather than being printed in some guessed form.
    """
    typer.echo(json.dumps(data) if compact else json.dumps(data, indent=2, ensure_ascii=False))


def emit(data: Any, as_json: bool, human: HumanForm = None, *, compact: bool = False) -> None:
    """Print a command's result: ``data`` as JSON on stdout under ``--json``, otherwise its ``human`` form.

    This is the one place a command decides between the two, so that ``--json`` always leaves stdout a single
    JSON document (:func:`print_json`, ``compact`` as there) and the human form never leaks into it. Without
    ``--json``: a string or Rich renderable ``human`` is printed on :data:`console`; a callable is run and what it
    returns, if not None, printed the same way; and when ``human`` is None, ``data`` itself is shown as coloured
    JSON (values JSON does not know, such as dates, printed with ``str``). Pass a callable when building the human
    form costs work or could fail on data the JSON form does not need.
    """
    if as_json:
        print_json(data, compact=compact)
        return
    if human is None:
        console.print_json(json.dumps(data, default=str))
        return
    shown = human() if callable(human) else human
    if shown is not None:
        console.print(shown)
