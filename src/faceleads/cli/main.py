"""The ``faceleads`` command line: one Typer app with a sub-command per domain."""

from __future__ import annotations

import typer

from faceleads.cli import vision_cmds

app = typer.Typer(
    name="faceleads",
    help="Retrospective facial recognition for investigations: every candidate is a lead, never an identification.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

vision_cmds.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
