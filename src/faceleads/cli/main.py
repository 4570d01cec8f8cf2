"""The ``faceleads`` command line: one Typer app with a sub-command per domain."""

from __future__ import annotations

import typer

from faceleads.cli import (
    casework_cmds,
    evaluate_cmds,
    gallery_cmds,
    governance_cmds,
    lawful_cmds,
    live_cmds,
    regime_cmds,
    security_cmds,
    transparency_cmds,
    vision_cmds,
    web_cmds,
    worker_cmds,
)
from faceleads.datadir import private_umask

app = typer.Typer(
    name="faceleads",
    help="Retrospective facial recognition for investigations: every candidate is a lead, never an identification.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

@app.callback()
def _start() -> None:
    """Runs before every command: files this process creates are private to its owner (umask 0o077)."""
    private_umask()


vision_cmds.register(app)
evaluate_cmds.register(app)
security_cmds.register(app)
gallery_cmds.register(app)
casework_cmds.register(app)
web_cmds.register(app)
governance_cmds.register(app)
worker_cmds.register(app)
regime_cmds.register(app)
live_cmds.register(app)
lawful_cmds.register(app)
transparency_cmds.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
