"""`pocctl invoke`: run a deployed function once with an event and show what it did."""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING, Any

import click

from pocctl.cli.app import EXIT_AWS, App, json_mode
from pocctl.cli.terminal import Abort, escape

if TYPE_CHECKING:
    from pocctl.invoke import Invocation, Step44

SAMPLES = ("sqs", "dynamodb-insert", "apigateway")  # = pocctl.invoke.SAMPLES (startup time)
# The sample each of the stack's functions gets when no event is given: the one its trigger sends.
DEFAULT_SAMPLE = {"lambda1": "sqs", "lambda2": "dynamodb-insert"}


def show_invocation(app: App, inv: Invocation) -> None:
    """The result (pretty JSON) or the error, then the log tail as Lambda returned it."""
    term = app.terminal
    if inv.error:
        term.line(f"[red]✗[/] {escape(inv.function)} failed ([bold]{escape(inv.error)}[/]):")
    else:
        term.line(f"[green]✓[/] {escape(inv.function)} returned (status {inv.status}):")
    result = inv.result
    if inv.error and isinstance(result, dict) and "errorType" in result:
        # The traceback is in the log tail below, as the handler's runtime printed it.
        term.info(f"  {result['errorType']}: {result.get('errorMessage', '')}")
    elif isinstance(result, (dict, list)):
        term.json_block(result, indent=2)
    else:
        term.info(f"  {result if result is not None else '(no payload)'}")
    term.line("[dim]log tail (the last 4 KB, as Lambda returns it):[/]")
    for line in inv.log_tail.rstrip("\n").splitlines() or ["(empty)"]:
        term.info(f"  {line}")


def plain_row(row: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain JSON values (the console's "View DynamoDB JSON" off)."""
    from boto3.dynamodb.types import TypeDeserializer

    deser = TypeDeserializer()
    return json.loads(json.dumps({k: deser.deserialize(v) for k, v in row.items()}, default=_num))


def _num(v: Any) -> Any:
    from decimal import Decimal

    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, (set, frozenset)):
        return sorted(v, key=str)
    return str(v)


def _read_event(event_file: IO[str]) -> Any:
    text = event_file.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        name = "stdin" if event_file.name == "<stdin>" else event_file.name
        raise click.BadParameter(f"{name} is not JSON: {e}", param_hint="--event") from None


def run_invoke(
    app: App, function: str, event_file: IO[str] | None, sample: str | None, as_json: bool
) -> None:
    from pocctl import invoke as inv_mod

    if event_file is not None and sample is not None:
        raise click.UsageError("give --event or --sample, not both")
    event = _read_event(event_file) if event_file is not None else None
    with app.guard():
        name = inv_mod.function_name(app.cfg, function)
        which = inv_mod.which_of(app.cfg, name)
        if event is None:
            sample = sample or DEFAULT_SAMPLE.get(which or "")
            marker = _marker()
            event = inv_mod.sample_event(app.ctx, sample, marker) if sample else {}
        if not as_json:
            said = f"the {sample} sample" if sample else ("--event" if event_file else "{}")
            app.terminal.line(f"invoke {escape(name)} with {escape(said)}")
        inv = inv_mod.invoke(app.ctx, name, event)
    if as_json:
        app.terminal.json(inv.as_json())
    else:
        show_invocation(app, inv)
    if inv.error:
        raise Abort(EXIT_AWS)


def _marker() -> str:
    import uuid

    return uuid.uuid4().hex[:12]


@click.command("invoke")
@click.argument("function", metavar="FUNCTION")
@click.option(
    "--event",
    "event_file",
    type=click.File("r"),
    metavar="FILE|-",
    help="the event, a JSON file (- reads stdin)",
)
@click.option(
    "--sample",
    type=click.Choice(SAMPLES),
    help="the console's test-event template, filled in for this stack",
)
@click.option(
    "--json", "as_json", is_flag=True, callback=json_mode, help="the result as JSON, for scripts"
)
@click.pass_obj
def invoke_command(
    app: App, function: str, event_file: IO[str] | None, sample: str | None, as_json: bool
) -> None:
    """Run FUNCTION (lambda1, lambda2 or any function's name) once, as the
    console's Test button: show its result and the tail of its log. Exit 1
    when the function fails.

    Without --event or --sample, lambda1 gets the sqs sample and lambda2 the
    dynamodb-insert one (what their triggers send). The apigateway sample is
    the API Gateway proxy event: this pipeline's API sends to SQS itself, so
    its handlers find no Records in it and store nothing.

    \b
    Examples:
      pocctl invoke lambda1
      pocctl invoke lambda2 --sample dynamodb-insert
      pocctl invoke POC-Lambda-1 --event event.json
      echo '{"Records": []}' | pocctl invoke lambda1 --event -
    """
    run_invoke(app, function, event_file, sample, as_json)


def run_lambda1_test(app: App) -> Step44:
    """The lab's Step 4.4 (`pocctl lambda1 --test`, the walkthrough's Task 4): invoke Lambda 1
    with the SQS sample, show what it did, then the row it stored; exit 1 if it did not."""
    from pocctl import invoke as inv_mod

    term, cfg = app.terminal, app.cfg
    with app.guard():
        term.line(f"invoke {escape(cfg.lambda1.name)} with the sqs sample (Step 4.4)")
        test = inv_mod.lambda1_step_4_4(app.ctx)
    show_invocation(app, test.invocation)
    inv = test.invocation
    failures = isinstance(inv.result, dict) and inv.result.get("batchItemFailures")
    if inv.error or failures:
        why = "failed" if inv.error else "reported the test message as failed"
        term.abort(
            f"{cfg.lambda1.name} {why}",
            hint="the log tail above; `pocctl invoke lambda1` runs it again",
            code=EXIT_AWS,
        )
    if test.row is None:
        term.abort(
            f"{cfg.lambda1.name} succeeded but table {cfg.table.name} has no row for the test "
            f"message {test.message_id}",
            code=EXIT_AWS,
        )
    term.line(f"row stored in {escape(cfg.table.name)}:")
    term.json_block(plain_row(test.row), indent=2)
    key = cfg.table.partition_key
    value = next(iter((test.row.get(key) or {}).values()), "?")
    term.success(f"test event stored: {cfg.table.name} row {key}={value}")
    return test


COMMANDS = [invoke_command]
