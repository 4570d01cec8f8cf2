"""``faceleads serve``: the web application and REST API on http://127.0.0.1:8000 (docs/web.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from faceleads.cli.common import cli_errors, console, err_console
from faceleads.config import get_settings
from faceleads.errors import ConfigurationError


def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default FACELEADS_WEB_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Port (default FACELEADS_WEB_PORT, 8000).")
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load demo users and a demo gallery from the model wheel's sample photos.")
    ] = False,
) -> None:
    """Start the web app and REST API; on first start create the first administrator (password printed once)."""
    import uvicorn

    from faceleads.gallery.runtime import GalleryRuntime
    from faceleads.web.app import create_app
    from faceleads.web.demo import ADMIN_USERNAME, DEMO_REFUSED, ensure_admin, load_demo

    settings = get_settings()
    with cli_errors():
        if demo and not settings.is_dev:
            raise ConfigurationError(DEMO_REFUSED)  # before anything is created or printed
        rt = GalleryRuntime(settings)
        created = ensure_admin(rt, settings.admin_password)
        if created is not None:
            shown = "(from FACELEADS_ADMIN_PASSWORD)" if settings.admin_password else created
            err_console.print(
                f"[bold]first start:[/] administrator [bold]{ADMIN_USERNAME}[/] of agency {settings.agency.upper()} "
                f"created; password: [bold]{shown}[/] (shown once)",
                highlight=False,
                soft_wrap=True,
            )
        if demo:
            with err_console.status("loading the demo gallery (face detection on the sample photos)..."):
                report = load_demo(rt)
            if report.skipped:
                err_console.print("demo data already loaded (demo passwords were shown when it was created)")
            else:
                err_console.print(f"demo gallery: {report.subjects} subjects enrolled. Demo users (shown once):")
                for username, password in report.passwords.items():
                    err_console.print(f"  {username:<13} {password}", highlight=False)
                err_console.print(
                    "Sign in as 'investigator' to open a case with players.jpg (model folder) as evidence, then as "
                    "'analyst' to search; or try 'Quick search' as the analyst.",
                    soft_wrap=True,
                )
    bind_host = host or settings.web_host
    bind_port = port or settings.web_port
    console.print(
        f"faceleads web app on http://{bind_host}:{bind_port}  (API schema: /api/v1/openapi.json)", highlight=False
    )
    app = create_app(settings, runtime=rt, warm=True)
    uvicorn.run(app, host=bind_host, port=bind_port, log_level="info", server_header=False, proxy_headers=False)
    rt.close()


def register(app: typer.Typer) -> None:
    """Attach ``serve`` to the main ``faceleads`` app."""
    app.command("serve")(serve)
