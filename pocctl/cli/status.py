"""`pocctl status`: every resource, whether it exists, and whether it drifted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pocctl.cli import views
from pocctl.cli.app import App, json_mode
from pocctl.lab import BUILD_TASKS

if TYPE_CHECKING:
    from pocctl.engine import Step

_STATUS = {"create": "missing", "update": "drifted", "unchanged": "exists"}


def collect(app: App) -> tuple[list[Step], dict[str, Any]]:
    """The steps of a read-only look at every resource, and the report `--json` prints."""
    with app.engine(lock=False) as engine:
        steps = engine.status(list(BUILD_TASKS))
        ctx = engine.ctx
    rows = [_row(s) for s in steps]
    invoke_url = next(
        (u for s in steps if (u := s.resource.invoke_url(s.identity)) is not None), None
    )
    return steps, {
        "account": ctx.account,
        "region": ctx.region,
        "endpoint": app.endpoint_url,
        "invoke_url": invoke_url,
        "resources": rows,
    }


def _row(s: Step) -> dict[str, Any]:
    """Any resource's status row: what it is, whether it exists or drifted, its identity."""
    row = {
        "task": s.task.number,
        "kind": s.resource.noun.replace(" ", "_"),
        "type": s.resource.type,
        "key": s.resource.key,
        "name": s.resource.name,
        "status": _STATUS[s.action],
        "arn": s.identity.get("arn"),
        "id": s.identity.get("id"),
        "url": s.identity.get("url"),
        "changes": [str(c) for c in s.changes],
        "note": s.resource.status_note(s.observed) if s.observed else "",
    }
    if s.changes:
        row["note"] = ", ".join(c.field for c in s.changes)
    return row


def run_status(app: App, as_json: bool = False) -> dict[str, Any]:
    steps, report = collect(app)
    if as_json:
        app.terminal.json(report)
        return report
    # The table shows each resource's one-word kind; the JSON keeps its type-derived "kind".
    rows = [{**r, "kind": s.resource.kind} for s, r in zip(steps, report["resources"], strict=True)]
    app.terminal.table(*views.status_table(rows), answer=True)
    if report["invoke_url"]:
        app.terminal.line(f"invoke URL: {report['invoke_url']}")
    return report


@click.command("status")
@click.option("--json", "as_json", is_flag=True, callback=json_mode, help="print the same as JSON")
@click.pass_obj
def status_command(app: App, as_json: bool) -> None:
    """Show every resource: exists, missing or drifted, with its ARN.

    \b
    Examples:
      pocctl status
      pocctl status --json | jq '.resources[] | select(.status != "exists")'
    """
    run_status(app, as_json)


COMMANDS = [status_command]
