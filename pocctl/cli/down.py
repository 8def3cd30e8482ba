"""`pocctl down` (Task 10): everything removed, in reverse order."""

from __future__ import annotations

import sys
import time

import click

from pocctl.cli.app import EXIT_USAGE, App
from pocctl.cli.progress import ProgressReporter
from pocctl.engine import CREATE
from pocctl.lab import BUILD_TASKS


def survey(app: App) -> tuple[list[str], list[tuple[str, str, int]]]:
    """What `down` would delete (one line each) and, for every queue it deletes that holds
    messages, (queue, what its messages are, how many): the order queue, its DLQ, Lambda 2's
    failure queue, and queues a rename left behind. Read-only."""
    from pocctl.cli import views
    from pocctl.resources import sqs

    cfg = app.cfg
    queues = [
        (cfg.queue.name, "orders not stored yet"),
        (cfg.queue.dead_letter_queue, "orders that failed"),
        (cfg.lambda2.on_failure_queue, "records of failed notifications"),
    ]
    with app.engine(lock=False) as engine:
        steps = [s for s in engine.plan(list(BUILD_TASKS)) if s.action != CREATE]
        lines = [views.teardown_line(s) for s in reversed(steps)]
        for left in engine.left_behind(list(BUILD_TASKS)):
            if left.main.find(left.ctx) is not None:
                lines.append(f"  [red]- delete[/]    {views.titled(left.main)} [dim](renamed)[/]")
                if left.main.type == "sqs_queue":
                    queues.append(
                        (left.main.name, "orders, in a queue config.yaml no longer names")
                    )
        counts = [(name, what, sqs.queued_messages(app.ctx, name) or 0) for name, what in queues]
    return lines, [c for c in counts if c[2]]


def _lost(counts: list[tuple[str, str, int]]) -> str:
    total = sum(n for _, _, n in counts)
    parts = ", ".join(f"{n} in {name} ({what})" for name, what, n in counts)
    return f"{total} message{'s' if total != 1 else ''} would be lost: {parts}"


def run_down(app: App, *, yes: bool) -> None:
    app.announce()
    # Looked at first: a queue's messages go with it, and with them the orders they carry.
    lines, counts = survey(app)
    if not lines:
        app.terminal.info(f"nothing to remove: no resource of the stack exists in {app.aws.region}")
        return
    if not yes and not sys.stdin.isatty():
        app.terminal.abort(
            "down deletes every resource of the stack; confirm with --yes",
            code=EXIT_USAGE,
        )
    if not yes:  # what it will delete, before asking (with --yes, each line as it goes)
        app.terminal.line(f"down deletes {len(lines)} resource{'s' if len(lines) != 1 else ''}:")
        for line in lines:
            app.terminal.line(line)
        said = f"{_lost(counts)}. " if counts else "The queues hold no messages. "
        question = f"{said}Delete the whole order pipeline in {app.aws.region}?"
        if not app.confirm(question):
            app.terminal.abort("nothing deleted", code=EXIT_USAGE)
    elif counts:
        app.terminal.warn(f"deleting the queues: {_lost(counts)}")
    start = time.monotonic()
    with app.engine(reporter=ProgressReporter(app.terminal, removing=True)) as engine:
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

    Works without the state file: resources are found by their names. First
    it counts the messages in the order queue, its dead-letter queue and
    Lambda 2's failure queue, and says how many would be lost.

    \b
    Example:
      pocctl down --yes
    """
    run_down(app, yes=yes)


COMMANDS = [down_command]
