"""`pocctl down` (Task 10): everything removed, in reverse order."""

from __future__ import annotations

import sys
import time

import click

from pocctl.cli.app import EXIT_USAGE, App
from pocctl.cli.progress import ProgressReporter
from pocctl.lab import BUILD_TASKS


def queued(app: App) -> list[tuple[str, str, int]]:
    """(queue, what its messages are, how many) for every queue `down` deletes that holds any:
    the order queue, its DLQ, Lambda 2's failure queue, and queues a rename left behind."""
    from pocctl.resources import sqs

    cfg = app.cfg
    queues = [
        (cfg.queue.name, "orders not stored yet"),
        (cfg.queue.dead_letter_queue, "orders that failed"),
        (cfg.lambda2.on_failure_queue, "records of failed notifications"),
    ]
    with app.engine(lock=False) as engine:
        queues += [
            (left.main.name, "orders, in a queue config.yaml no longer names")
            for left in engine.left_behind(list(BUILD_TASKS))
            if left.main.type == "sqs_queue"
        ]
        counts = [(name, what, sqs.queued_messages(app.ctx, name) or 0) for name, what in queues]
    return [c for c in counts if c[2]]


def _lost(counts: list[tuple[str, str, int]]) -> str:
    total = sum(n for _, _, n in counts)
    parts = ", ".join(f"{n} in {name} ({what})" for name, what, n in counts)
    return f"{total} message{'s' if total != 1 else ''} would be lost: {parts}"


def run_down(app: App, *, yes: bool) -> None:
    if not yes and not sys.stdin.isatty():
        app.terminal.abort(
            "down deletes every resource of the stack; confirm with --yes",
            code=EXIT_USAGE,
        )
    # Counted first: a queue's messages go with it, and with them the orders they carry.
    counts = queued(app)
    if not yes:
        region = app.aws.region
        said = f"{_lost(counts)}. " if counts else "The queues hold no messages. "
        question = f"{said}Delete the whole order pipeline in {region}?"
        if not click.confirm(question, default=False):
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
