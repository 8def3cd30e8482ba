"""`pocctl demo`: the main job, offline, against an embedded AWS on 127.0.0.1."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from pocctl.cli.app import App


@click.command("demo")
@click.option(
    "--count",
    type=click.IntRange(1, 1000),
    default=3,
    show_default=True,
    help="orders test-order sends",
)
@click.pass_obj
def demo_command(app: App, count: int) -> None:
    """Run up, test-order, status and down on an embedded AWS (no account needed).

    \b
    Example:
      pocctl demo
    """
    import tempfile

    from pocctl.cli.down import run_down
    from pocctl.cli.status import run_status
    from pocctl.cli.test_order import run_test_order
    from pocctl.cli.up import run_up
    from pocctl.local.runtime import LocalAWS

    term = app.terminal
    with LocalAWS(port=0, log=term.debug) as aws, tempfile.TemporaryDirectory() as tmp:
        term.line(
            f"[bold]Embedded AWS[/] on {aws.endpoint_url}: moto, plus pocctl's Lambda "
            "pollers, executor and API Gateway"
        )
        options = dataclasses.replace(
            app.options,
            endpoint_url=aws.endpoint_url,
            local=True,
            state=Path(tmp) / "state.json",
        )
        local = App(options)
        local.terminal = term
        term.line("\n[bold]$ pocctl up[/]   [dim]# Tasks 1–8[/]")
        run_up(local)
        term.line(f"\n[bold]$ pocctl test-order --count {count}[/]   [dim]# Task 9[/]")
        try:
            run_test_order(local, count=count, timeout=60)
        finally:
            term.line("\n[bold]$ pocctl status[/]")
            run_status(local)
            term.line("\n[bold]$ pocctl down --yes[/]   [dim]# Task 10[/]")
            run_down(local, yes=True)
    term.success("demo finished: built, tested with real orders, and removed — all offline")


COMMANDS = [demo_command]
