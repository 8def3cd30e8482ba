"""`pocctl plan`: what `up` would do, from read-only calls."""

from __future__ import annotations

import click

from pocctl.cli import views
from pocctl.cli.app import App
from pocctl.lab import BUILD_TASKS


@click.command("plan")
@click.pass_obj
def plan_command(app: App) -> None:
    """Show what `up` would create, update or leave (read-only).

    \b
    Example:
      pocctl plan
    """
    with app.engine(lock=False) as engine:
        steps = engine.plan(list(BUILD_TASKS))
    app.terminal.table(*views.plan_table(steps), boxed=True, answer=True)
    counts = {a: sum(s.action == a for s in steps) for a in ("create", "update", "unchanged")}
    app.terminal.line(
        f"{counts['create']} to create, {counts['update']} to update, "
        f"{counts['unchanged']} unchanged"
    )


COMMANDS = [plan_command]
