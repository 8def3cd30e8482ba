"""`pocctl logs`: the functions' output from CloudWatch Logs, interleaved by time.

Lambda writes each function's output to the log group /aws/lambda/<function>; the embedded AWS
does the same (pocctl/local/cwlogs.py). Like `aws logs tail` and `sam logs --tail`, this reads
FilterLogEvents, and `--follow` polls it.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import click

from pocctl.cli.app import EXIT_AWS, EXIT_USAGE, App, json_mode

if TYPE_CHECKING:
    from pocctl.observe import Follower, LogLine

POLL_SECONDS = 1.0  # --follow's interval: `aws logs tail --follow` polls about as often
INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


def functions_for(app: App, which: str | None) -> list[str]:
    """``lambda1``/``lambda2`` → the configured names; nothing → both; any other name is taken
    as a deployed function's own name."""
    cfg = app.cfg
    aliases = {"lambda1": cfg.lambda1.name, "lambda2": cfg.lambda2.name}
    if which is None:
        return [cfg.lambda1.name, cfg.lambda2.name]
    return [aliases.get(which.lower(), which)]


def _show(app: App, lines: list[LogLine], as_json: bool, width: int) -> None:
    from pocctl.cli import views

    for line in lines:
        if as_json:
            click.echo(json.dumps(line.as_json(), ensure_ascii=False))
        else:
            app.terminal.line(views.log_line(line, width), style=None)


def _deployed(app: App, name: str) -> bool:
    lam = app.ctx.client("lambda")
    try:
        lam.get_function(FunctionName=name)
    except lam.exceptions.ResourceNotFoundException:
        return False
    return True


def _say_missing(app: App, functions: list[str], as_json: bool, named: bool) -> None:
    """One line per function without a log group: it has not run, or it is not there."""
    for name in functions:
        with app.guard():
            deployed = _deployed(app, name)
        if not deployed and named:
            app.terminal.abort(f"there is no function {name}", code=EXIT_AWS)
        note = f"no logs yet for {name}: " + ("it has not run" if deployed else "not deployed")
        if as_json:
            app.terminal.err.print(f"[dim]{note}[/]")
        else:
            app.terminal.line(f"[dim]{note}[/]")


@click.command("logs")
@click.argument("function", required=False, metavar="[lambda1|lambda2|FUNCTION]")
@click.option("-f", "--follow", is_flag=True, help="keep printing new lines (Ctrl-C stops)")
@click.option(
    "--since",
    default="10m",
    show_default=True,
    metavar="TIME",
    help="from how long ago (30s, 10m, 2h, 1d) or an ISO time",
)
@click.option(
    "--filter", "pattern", metavar="PATTERN", help="CloudWatch Logs filter pattern, e.g. ERROR"
)
@click.option(
    "--json", "as_json", is_flag=True, callback=json_mode, help="one JSON object per line"
)
@click.pass_obj
def logs_command(
    app: App,
    function: str | None,
    follow: bool,
    since: str,
    pattern: str | None,
    as_json: bool,
) -> None:
    """The output of both functions (or FUNCTION), interleaved by time.

    Each line: its time (UTC), the function, and what the function printed
    (its START/END/REPORT lines too). Read from CloudWatch Logs, where
    Lambda writes each function's output (/aws/lambda/FUNCTION), on AWS
    and on `pocctl local` alike.

    \b
    Examples:
      pocctl logs                      both functions, the last 10 minutes
      pocctl logs lambda1 --since 1h
      pocctl logs --filter ERROR
      pocctl logs -f                   follow, as `aws logs tail --follow`
      pocctl logs --json | jq -r .message
    """
    from pocctl import observe

    try:
        start_ms = observe.parse_since(since)
    except ValueError as e:
        app.terminal.abort(str(e), code=EXIT_USAGE)
    names = functions_for(app, function)
    width = max(len(n) for n in names)
    with app.guard():
        follower = observe.Follower(app.ctx.client("logs"), names, start_ms, pattern)
        first = follower.poll()
    _show(app, first, as_json, width)
    _say_missing(app, sorted(follower.missing), as_json, named=function is not None)
    if not first and not follower.missing and not as_json:
        app.terminal.line(f"[dim]no log lines since {observe.iso_ms(start_ms)}[/]")
    if follow:
        _follow(app, follower, as_json, width)


def _follow(app: App, follower: Follower, as_json: bool, width: int) -> None:
    try:
        while True:
            time.sleep(POLL_SECONDS)  # a polling interval, not synchronisation
            with app.guard():
                lines = follower.poll()
            _show(app, lines, as_json, width)
    except KeyboardInterrupt:
        app.terminal.stop_spinner()
        raise click.exceptions.Exit(INTERRUPTED) from None


COMMANDS = [logs_command]
