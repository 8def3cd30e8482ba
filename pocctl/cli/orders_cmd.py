"""`pocctl orders` (the table's rows, newest first) and `pocctl redrive` (the dead letters back to
be processed, as the SQS console's "Start DLQ redrive")."""

from __future__ import annotations

import sys
from typing import Any

import click

from pocctl.cli.app import EXIT_AWS, EXIT_USAGE, App, json_mode


def _no_table(app: App) -> None:
    app.terminal.abort(
        f"there is no table {app.cfg.table.name}", hint="`pocctl up` creates it", code=EXIT_AWS
    )


@click.command("orders")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, callback=json_mode, help="the rows as plain JSON")
@click.pass_obj
def orders_command(app: App, limit: int, as_json: bool) -> None:
    """The orders stored in the table, newest first.

    Newest by the time Lambda 1 stores with each order (receivedAt: when the
    queue received it). --json prints the rows as plain JSON (numbers as
    numbers), for scripts.

    \b
    Examples:
      pocctl orders
      pocctl orders -n 5 --json | jq '.[0].order'
    """
    from pocctl import observe

    table, key = app.cfg.table.name, app.cfg.table.partition_key
    with app.guard():
        ddb = app.ctx.client("dynamodb")
        try:
            rows = observe.scan_rows(ddb, table)
        except ddb.exceptions.ResourceNotFoundException:
            _no_table(app)
    ordered, all_timed = observe.newest_first(rows)
    shown = ordered[:limit]
    if as_json:
        app.terminal.json(shown)
        return
    _print_rows(app, shown, len(rows), key, all_timed)


def _print_rows(app: App, shown: list[dict[str, Any]], total: int, key: str, timed: bool) -> None:
    from pocctl import observe
    from pocctl.cli import views

    term = app.terminal
    if not total:
        term.line(f"the table {app.cfg.table.name} is empty: `pocctl test-order` sends one")
        return
    attr = observe.TIME_ATTRIBUTE
    has_time = any(attr in row for row in shown)
    order = (
        "newest first"
        if timed
        else f"newest first, rows without {attr} last in no particular order"
        if has_time
        else f"in no particular order (the rows carry no {attr})"
    )
    term.line(f"{len(shown)} of {total} row(s) in {app.cfg.table.name}, {order}:")
    term.table(*views.order_rows_table(shown, key, observe.TIME_ATTRIBUTE), answer=True)


# -- redrive ------------------------------------------------------------------------------------


def _queue(app: App, name: str) -> tuple[str, str] | None:
    """(url, arn) of queue ``name``, None when it is not there."""
    from pocctl import arns
    from pocctl.resources.sqs import queue_url

    url = queue_url(app.ctx, name)
    return None if url is None else (url, arns.queue(app.ctx, name))


def _count(app: App, url: str) -> int:
    attrs = app.ctx.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0))


def _confirm(app: App, question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        app.terminal.abort(f"{question}: add --yes to do it without asking", code=EXIT_USAGE)
    if not click.confirm(question, default=False):
        app.terminal.abort("nothing moved", code=EXIT_USAGE)


def redrive_dlq(app: App, yes: bool) -> int:
    """Move the orders DLQ's messages back to the order queue; how many moved."""
    from pocctl import observe

    cfg, term, sqs = app.cfg, app.terminal, app.ctx.client("sqs")
    dlq, source = cfg.queue.dead_letter_queue, cfg.queue.name
    found = _queue(app, dlq)
    if found is None:
        term.abort(f"there is no queue {dlq}", hint="`pocctl up` creates it", code=EXIT_AWS)
    url, arn = found
    waiting = _count(app, url)
    if not waiting:
        term.line(f"{dlq} is empty: nothing to redrive")
        return 0
    _confirm(app, f"move {waiting} message(s) from {dlq} back to {source}?", yes)
    # No DestinationArn: back to the queue each message came from, as the console's
    # "Redrive to source queue(s)" (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/
    # APIReference/API_StartMessageMoveTask.html).
    sqs.start_message_move_task(SourceArn=arn)
    term.spin(f"moving messages from {dlq} to {source}")
    task = observe.wait_for_move(sqs, arn, on_wait=term.waiting)
    term.stop_spinner()
    moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
    if task.get("Status") != "COMPLETED":
        term.abort(
            f"the move from {dlq} ended {task.get('Status')}: {task.get('FailureReason', '')}"
            f" ({moved} moved)",
            code=EXIT_AWS,
        )
    term.success(f"moved {moved} message(s) from {dlq} back to {source}: Lambda 1 gets them again")
    return moved


def redrive_failures(app: App, yes: bool) -> tuple[int, int]:
    """Lambda 2's failure queue holds invocation records (which stream records failed), not
    orders: SQS's redrive cannot move them to a stream. Each batch is read back from the stream
    and Lambda 2 invoked with it, as its trigger would; a batch that succeeds leaves the queue.
    (re-processed, left)."""
    from pocctl import observe

    cfg, term = app.cfg, app.terminal
    name, fn = cfg.lambda2.on_failure_queue, cfg.lambda2.name
    found = _queue(app, name)
    if found is None:
        return 0, 0
    url, sqs = found[0], app.ctx.client("sqs")
    batches = observe.failed_batches(sqs, url)
    if not batches:
        return 0, 0
    term.line(f"{len(batches)} failed batch(es) of {fn} in {name} (which stream records failed):")
    for b in batches:
        term.info("  " + _batch_line(b))
    done: list[Any] = []
    try:
        _confirm(app, f"invoke {fn} again with these stream records?", yes)
        _reinvoke_each(app, batches, url, done)
    finally:  # whatever happens, what was not re-processed is visible again at once
        left = [b for b in batches if b not in done]
        observe.release(sqs, url, left)
    if done:
        term.success(f"re-processed {len(done)} batch(es) with {fn}; removed from {name}")
    if left:
        term.warn(f"{len(left)} batch(es) left in {name}: fix {fn} (`pocctl logs lambda2`)")
    return len(done), len(left)


def _batch_line(b: Any) -> str:
    info, ctx = b.info, b.record.get("requestContext") or {}
    return (
        f"{b.record.get('timestamp', '?')}  {info.get('batchSize', '?')} record(s) "
        f"{info.get('startSequenceNumber', '?')}..{info.get('endSequenceNumber', '?')} "
        f"of shard {info.get('shardId', '?')}: {ctx.get('condition', '?')} after "
        f"{ctx.get('approximateInvokeCount', '?')} invocation(s)"
    )


def _reinvoke_each(app: App, batches: list[Any], url: str, done: list[Any]) -> None:
    """Each batch's records read back from the stream and Lambda 2 invoked with them; the
    batches it handled are deleted from the failure queue at ``url`` and added to ``done``."""
    from pocctl import observe

    term, fn = app.terminal, app.cfg.lambda2.name
    streams, lam = app.ctx.client("dynamodbstreams"), app.ctx.client("lambda")
    sqs = app.ctx.client("sqs")
    for b in batches:
        records = observe.stream_records(streams, b.info)
        if records is None:
            term.warn(f"the stream no longer has {_batch_line(b)} (it keeps records 24 hours)")
            continue
        problem = observe.reinvoke(lam, fn, records)
        if problem:
            term.warn(f"{fn} failed again on {len(records)} record(s): {problem}")
            continue
        sqs.delete_message(QueueUrl=url, ReceiptHandle=b.receipt_handle)
        done.append(b)


@click.command("redrive")
@click.option("--yes", "-y", is_flag=True, help="do not ask before moving")
@click.pass_obj
def redrive_command(app: App, yes: bool) -> None:
    """Send the dead letters back to be processed.

    Moves the messages of the orders' dead-letter queue back to the order
    queue (StartMessageMoveTask, as the SQS console's "Start DLQ redrive"),
    waits for the move and says how many moved. Fix what made them fail first
    (`pocctl logs lambda1`), or they come back.

    Lambda 2's failure queue holds invocation records (which stream records
    failed), which SQS cannot move back to a stream: each batch is read back
    from the stream (it keeps records 24 hours) and Lambda 2 invoked with it,
    as its trigger would; the batches it handles leave the failure queue.

    \b
    Examples:
      pocctl logs lambda1 --filter ERROR    why they failed; fix it, then:
      pocctl redrive
      pocctl redrive --yes                  without asking (scripts)
    """
    with app.guard():
        redrive_dlq(app, yes)
        redrive_failures(app, yes)


COMMANDS = [orders_command, redrive_command]
