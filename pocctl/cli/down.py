"""`pocctl down` (Task 10): everything removed, in reverse order."""

from __future__ import annotations

import sys
import time

import click

from pocctl.cli.app import EXIT_USAGE, App
from pocctl.lab import BUILD_TASKS


def run_down(app: App, *, yes: bool) -> None:
    if not yes:
        if not sys.stdin.isatty():
            app.terminal.abort(
                "down deletes every resource of the stack; confirm with --yes",
                code=EXIT_USAGE,
            )
        region = app.aws.region
        if not click.confirm(f"Delete the whole order pipeline in {region}?", default=False):
            app.terminal.abort("nothing deleted", code=EXIT_USAGE)
    start = time.monotonic()
    app.terminal.removing = True
    with app.engine() as engine:
        steps = engine.down(list(BUILD_TASKS))
        # Keys of resources no longer in config (e.g. a removed email) went with their parents.
        engine.state.resources.clear()
        engine.state.save()
    deleted = sum(s.action == "delete" for s in steps)
    app.terminal.success(
        f"stack is down: {deleted} deleted, {len(steps) - deleted} already gone "
        f"in {time.monotonic() - start:.1f} s"
    )


@click.command("down")
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@click.pass_obj
def down_command(app: App, yes: bool) -> None:
    """Task 10: delete every resource of the stack (reverse order).

    Works without the state file: resources are found by their names.

    \b
    Example:
      pocctl down --yes
    """
    run_down(app, yes=yes)


COMMANDS = [down_command]
