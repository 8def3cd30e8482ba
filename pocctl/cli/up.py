"""`pocctl up`: Tasks 1–8 in order."""

from __future__ import annotations

import time
from typing import Any

import click

from pocctl.cli import views
from pocctl.cli.app import App
from pocctl.lab import BUILD_TASKS


def run_up(app: App, *, sequential: bool = False) -> None:
    start = time.monotonic()
    with app.engine() as engine:
        steps = engine.up(list(BUILD_TASKS), parallel=not sequential)
        state = engine.state
    app.terminal.line()
    app.terminal.table(*views.resource_table(steps))
    made = sum(s.action == "create" for s in steps)
    changed = sum(s.action == "update" for s in steps)
    app.terminal.success(
        f"stack is up: {made} created, {changed} updated, "
        f"{len(steps) - made - changed} unchanged in {time.monotonic() - start:.1f} s"
    )
    api = state.get("api") or {}
    if api.get("url"):
        app.terminal.line(f"  invoke URL: [bold]{api['url']}[/]")
        app.terminal.line(
            f"  try it: curl -X POST -H 'Content-Type: application/json' "
            f'-d \'{{"item": "soap", "quantity": 2}}\' {api["url"]}'
        )
    _say_confirm(app, steps)


def _say_confirm(app: App, steps: list[Any]) -> None:
    """The lab's Step 6.2: an email subscription delivers nothing until it is confirmed."""
    from pocctl.cli.inbox import local_inbox_url

    for s in steps:
        if s.resource.pending(s.identity) is None:
            continue
        how = (
            f"`{app.cmd('inbox', '--confirm')}` (the embedded AWS keeps the email)"
            if local_inbox_url(app)
            else 'click the link in the email "AWS Notification - Subscription Confirmation"'
        )
        app.terminal.warn(
            f"confirm the subscription of {s.resource.name} (Step 6.2): {how}; "
            "no notification reaches it until then"
        )


@click.command("up")
@click.option(
    "--sequential",
    is_flag=True,
    help="make one resource at a time, in the lab's order (default: in parallel)",
)
@click.pass_obj
def up_command(app: App, sequential: bool) -> None:
    """Create or converge the whole stack (Tasks 1–8).

    Safe to run any number of times: what exists is adopted, what drifted is
    put back, and a complete stack makes no changes. Resources that do not
    need each other are made at the same time (the waits for IAM, the table
    and the functions overlap); the output still reads task by task.

    \b
    Example:
      pocctl up
      pocctl up --sequential
    """
    run_up(app, sequential=sequential)


COMMANDS = [up_command]
