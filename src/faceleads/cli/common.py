"""Shared command-line plumbing: consoles, error reporting and JSON output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

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


def print_json(data: Any) -> None:
    """Print one JSON document on stdout, and nothing else."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
