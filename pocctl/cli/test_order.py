"""`pocctl test-order` (Task 9): orders through the whole pipeline, timed hop by hop."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from pocctl.cli import views
from pocctl.cli.app import EXIT_AWS, EXIT_USAGE, App, json_mode
from pocctl.cli.inbox import local_inbox_url
from pocctl.cli.terminal import escape

if TYPE_CHECKING:
    from pocctl.orders import Report

# = pocctl.orders.DEFAULT_RATE, which is not imported here: it pulls in urllib, ssl and
# more, and the CLI loads it only when an order is sent (startup time).
DEFAULT_RATE = 20.0


def run_test_order(
    app: App,
    *,
    count: int = 1,
    body: str | None = None,
    timeout: float = 60.0,
    rate: float = DEFAULT_RATE,
    concurrency: int = 10,
    as_json: bool = False,
) -> bool:
    from pocctl import orders
    from pocctl.resources.sns import EmailSubscription

    term = app.terminal
    say = term.debug if as_json else term.line  # --json: nothing but the report on stdout
    with app.guard():
        ctx = app.ctx
        url = orders.find_invoke_url(ctx)
        pace = _pace(count, rate, concurrency)
        say(f"POST {count} order{'s' if count > 1 else ''} to {url}{pace}")
        try:
            report = orders.run(
                ctx,
                url,
                count=count,
                body=body,
                timeout=timeout,
                rate=rate,
                concurrency=concurrency,
                progress=term.debug,
                # Live counters on the spinner: only on a terminal, not with -q (Terminal.spin).
                counters=lambda c: term.spin(c.line()),
            )
        finally:
            term.stop_spinner()
        email = None
        if app.cfg.topic.notification_email:
            email = EmailSubscription(app.cfg).find(ctx)
    if as_json:
        term.json(orders.report_json(report))
    else:
        term.table(*views.order_table(report))
    _say_what_followed(app, report, count, email)
    if not report.ok:
        _say_what_went_wrong(app, report)
        term.abort(
            f"{sum(not o.ok for o in report.orders)} of {count} orders did not make it through",
            hint="`pocctl status` shows what is missing; `pocctl logs` shows the functions' output",
            code=EXIT_AWS,
        )
    for note in report.notes:
        term.warn(note)
    if not as_json:
        term.success(f"{count} of {count} orders stored once and notified once")
    return True


def _say_what_went_wrong(app: App, report: Report) -> None:
    """The problems, where each missing order stopped, and what test-order could not tell."""
    err = app.terminal.err
    for problem in report.problems[:20]:
        err.print(f"[red]✗[/] {escape(problem)}")
    if len(report.problems) > 20:
        err.print(f"[red]✗[/] … and {len(report.problems) - 20} more problems")
    for line in views.diagnosis_lines(report):
        err.print(line)
    for note in report.notes:
        app.terminal.warn(note)


def _pace(count: int, rate: float, concurrency: int) -> str:
    if count == 1:
        return ""
    if rate:
        return f" at {rate:g} orders/s"
    return f", {min(concurrency, count)} at a time, as fast as they are answered"


def _say_what_followed(app: App, report: Report, count: int, email: dict[str, Any] | None) -> None:
    """Throttled POSTs, and whether the notification email can arrive."""
    term = app.terminal
    throttled = sum(o.throttled > 0 for o in report.orders)
    if throttled:
        term.warn(
            f"{throttled} of {count} POSTs were throttled (429) by the stage and sent again: "
            "lower --rate, or raise api.throttling_rate_limit / throttling_burst_limit"
        )
    if not app.cfg.topic.notification_email:
        return
    if email is None:
        term.warn(f"{app.cfg.topic.notification_email} is not subscribed: run `pocctl topic`")
    elif not email.get("confirmed"):
        # AWS delivers nothing to a pending subscription (the confirmation link comes first).
        how = (
            "`pocctl inbox --confirm` opens the link in the confirmation email"
            if local_inbox_url(app)
            else f"click the link in the confirmation email sent to {email['endpoint']}"
        )
        term.warn(
            f"the subscription of {email['endpoint']} is pending confirmation: no notification "
            f"reaches it until the link is clicked ({how})"
        )
    elif local_inbox_url(app):
        term.info(f"the notification email to {email['endpoint']}: `pocctl inbox` shows it")
    else:
        term.info(f"check the inbox of {email['endpoint']} for the notification")


@click.command("test-order")
@click.option(
    "--count",
    "-n",
    type=click.IntRange(1, 10000),
    default=1,
    show_default=True,
    help="orders to send",
)
@click.option("--body", metavar="JSON", help="send this JSON object instead of a sample order")
@click.option(
    "--timeout",
    type=click.FloatRange(1, 3600),
    default=60.0,
    show_default=True,
    help="seconds to wait, after the last POST is answered, for every order to be stored and "
    "notified",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=DEFAULT_RATE,
    show_default=True,
    help="orders per second, sent on a fixed schedule; 0 = as fast as possible",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="most POSTs in flight at once",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    callback=json_mode,
    help="write the whole report (orders, timings, problems, diagnosis) as JSON on stdout",
)
@click.pass_obj
def test_order_command(
    app: App,
    count: int,
    body: str | None,
    timeout: float,
    rate: float,
    concurrency: int,
    as_json: bool,
) -> None:
    """Task 9: POST orders and follow each one to the table and the topic.

    A temporary queue subscribed to the topic sees the notifications; it is
    always removed. Exits 0 only when every order was stored once and notified
    once.

    \b
    Examples:
      pocctl test-order
      pocctl test-order --count 20
      pocctl test-order --count 100 --rate 50
      pocctl test-order --count 100 --rate 0     # a burst, 10 at a time
      pocctl test-order --body '{"item": "soap", "quantity": 3}'
      pocctl test-order --json > report.json

    Each order carries a field pocctl_marker by which its row and its
    notification are found, however the handlers store and publish it. When
    an order is missing, test-order says at which hop it stopped, where it is
    now (queue, DLQ, failure queue, a row without a notification) and the
    function's last logged error.
    """
    if body is not None:
        try:
            if not isinstance(json.loads(body), dict):
                app.terminal.abort(
                    "--body must be a JSON object of fields (test-order adds its pocctl_marker)",
                    code=EXIT_USAGE,
                )
        except json.JSONDecodeError as e:
            app.terminal.abort(f"--body is not JSON: {e}", code=EXIT_USAGE)
        except RecursionError:  # the parser recurses per level: 100,000 `[` run out of stack
            app.terminal.abort(
                "--body is nested too deeply to parse; an order is a JSON object of fields",
                code=EXIT_USAGE,
            )
    run_test_order(
        app,
        count=count,
        body=body,
        timeout=timeout,
        rate=rate,
        concurrency=concurrency,
        as_json=as_json,
    )


COMMANDS = [test_order_command]
