"""`pocctl plan`: what `up` would do, from read-only calls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pocctl.cli import views
from pocctl.cli.app import EXIT_AWS, App, json_mode
from pocctl.cli.terminal import Abort
from pocctl.lab import BUILD_TASKS

if TYPE_CHECKING:
    from pocctl.engine import Step

# --detailed-exitcode, as Terraform's: 0 nothing to change, 1 an error, 2 changes to make.
EXIT_CHANGES = 2


def _report(app: App, steps: list[Step]) -> dict[str, Any]:
    """What `plan --json` prints: the target, each resource's action and differences, totals."""
    ctx = app.ctx
    counts = {a: sum(s.action == a for s in steps) for a in ("create", "update", "unchanged")}
    return {
        "account": ctx.account,
        "region": ctx.region,
        "endpoint": app.endpoint_url,
        "changes": counts["create"] + counts["update"] > 0,
        "counts": counts,
        "resources": [
            {
                "task": s.task.number,
                "kind": s.resource.kind,
                "type": s.resource.type,
                "key": s.resource.key,
                "name": s.resource.name,
                "action": s.action,
                "changes": [str(c) for c in s.changes],
                "arn": s.identity.get("arn"),
                "id": s.identity.get("id"),
                "url": s.identity.get("url"),
            }
            for s in steps
        ],
    }


@click.command("plan")
@click.option("--json", "as_json", is_flag=True, callback=json_mode, help="print the plan as JSON")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="exit 0 when nothing would change, 2 when something would, 1 on an error (Terraform's)",
)
@click.pass_obj
def plan_command(app: App, as_json: bool, detailed_exitcode: bool) -> None:
    """Show what `up` would create, update or leave (read-only).

    \b
    Examples:
      pocctl plan
      pocctl plan --json | jq '.resources[] | select(.action != "unchanged")'
      pocctl plan --detailed-exitcode || echo "changes (2) or an error (1)"
    """
    try:
        with app.engine(lock=False) as engine:
            steps = engine.plan(list(BUILD_TASKS))
    except Abort as e:
        # A config error exits 2 elsewhere (a usage error); here 2 means "changes".
        if detailed_exitcode and e.exit_code not in (0, EXIT_AWS):
            raise Abort(EXIT_AWS) from None
        raise
    report = _report(app, steps)
    if as_json:
        app.terminal.json(report)
    else:
        app.terminal.table(*views.plan_table(steps), boxed=True, answer=True)
        counts = report["counts"]
        app.terminal.line(
            f"{counts['create']} to create, {counts['update']} to update, "
            f"{counts['unchanged']} unchanged"
        )
    if detailed_exitcode and report["changes"]:
        raise click.exceptions.Exit(EXIT_CHANGES)


COMMANDS = [plan_command]
