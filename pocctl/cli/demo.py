"""`pocctl demo`: the main job, offline, against an embedded AWS on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import click

from pocctl.cli.app import App


@click.command("demo")
@click.pass_obj
def demo_command(app: App) -> None:
    """Run up, status and down against an embedded AWS (no account needed).

    \b
    Example:
      pocctl demo
    """
    from pocctl.cli.down import run_down
    from pocctl.cli.status import run_status
    from pocctl.cli.up import run_up
    from pocctl.local.server import EmbeddedAWS

    term = app.terminal
    with EmbeddedAWS(port=0) as server, tempfile.TemporaryDirectory() as tmp:
        term.line(f"[bold]Embedded AWS[/] listening on {server.endpoint_url} (moto)")
        options = dataclasses.replace(
            app.options,
            endpoint_url=server.endpoint_url,
            local=True,
            state=Path(tmp) / "state.json",
        )
        local = App(options)
        local.terminal = term
        term.line("\n[bold]$ pocctl up[/]")
        run_up(local)
        term.line("\n[bold]$ pocctl status[/]")
        run_status(local)
        term.line("\n[bold]$ pocctl down --yes[/]")
        run_down(local, yes=True)
    term.success("demo finished: the stack was built, inspected and removed")


COMMANDS = [demo_command]
