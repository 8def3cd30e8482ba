"""`pocctl watch`: the architecture diagram alive in the terminal, hop by hop.

The figures come from pocctl.pipeline_view (CloudWatch metrics and the services' own counters,
the same calls on AWS and on the embedded AWS); this module only lays them out: one line per
hop from 80 columns, the figures under each hop's name below that (a narrow window).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import click

from pocctl.cli.app import App, json_mode
from pocctl.cli.terminal import Abort, escape

WIDE = 80  # from this width on, a hop's figures share its line
DIAGRAM = 112  # from this width on, the README's diagram: two rows of four boxes
_NAME_COLUMN = 30


def _chip(label: str, value: Any, *, bad: bool = False, warn: bool = False) -> str:
    text = f"{escape(label)} {escape(str(value))}" if label else escape(str(value))
    if bad:
        return f"[bold red]{text}[/]"
    if warn:
        return f"[yellow]{text}[/]"
    return text


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def _queue_chips(q: dict[str, Any], *, label: str = "", alarm: bool = False) -> list[str]:
    """A queue's counts; ``alarm``: any message in it is bad news (a DLQ, a failure queue)."""
    prefix = f"{label} " if label else ""
    if not q.get("exists"):
        named = f"{prefix}{q['name']} " if alarm else prefix
        return [f"[dim]{escape(named)}missing[/]"]
    if alarm:
        count = q["visible"] + q["in_flight"]
        return [_chip(f"{prefix}{q['name']}", count, bad=count > 0)]
    return [
        _chip(f"{prefix}visible", q["visible"]),
        _chip("in flight", q["in_flight"]),
        _chip("delayed", q["delayed"]),
    ]


def _function_chips(f: dict[str, Any]) -> list[str]:
    return [
        _chip("invocations", f["invocations"]),
        _chip("errors", f["errors"], bad=f["errors"] > 0),
        _chip("throttles", f["throttles"], warn=f["throttles"] > 0),
        _chip("duration avg", _ms(f["duration_ms_avg"])),
        _chip("max", _ms(f["duration_ms_max"])),
    ]


def hops(s: dict[str, Any]) -> list[tuple[str, str, list[str], str | None]]:
    """(hop, resource name, figures as markup, the function's last error) for each hop, in
    the pipeline's order."""
    api, queue, l1, table, l2, topic = (
        s["api"], s["queue"], s["lambda1"], s["table"], s["lambda2"], s["topic"],
    )  # fmt: skip
    rows = "missing" if not table.get("exists") else table["rows"]
    at_least = "≥ " if table.get("rows_at_least") else ""
    age = s["stream"]["iterator_age_ms_max"]
    return [
        ("API", f"{api['name']}/{api['stage']}", [
            _chip("requests", api["requests"]),
            _chip("4xx", api["4xx"], warn=api["4xx"] > 0),
            _chip("5xx", api["5xx"], bad=api["5xx"] > 0),
            _chip("latency", _ms(api["latency_ms_avg"])),
        ], None),
        ("queue", queue["name"],
         _queue_chips(queue) + _queue_chips(queue["dlq"], label="DLQ", alarm=True), None),
        ("Lambda 1", l1["name"], _function_chips(l1), _error_text(l1["last_error"])),
        ("table", table["name"], [_chip("rows", f"{at_least}{rows}")], None),
        ("stream", "", [_chip("iterator age", _ms(age) if age is not None else "—")], None),
        ("Lambda 2", l2["name"],
         _function_chips(l2) + _queue_chips(l2["failure_queue"], label="failures", alarm=True),
         _error_text(l2["last_error"])),
        ("topic", topic["name"], [
            _chip("published", topic["published"]),
            _chip("delivered", topic["delivered"]),
            _chip("failed", topic["failed"], bad=topic["failed"] > 0),
        ], None),
    ]  # fmt: skip


def _error_text(error: dict[str, Any] | None) -> str | None:
    if error is None:
        return None
    when = error["time"][11:19]
    return f"last error {when}: {error['message']}"


def _pack(chips: list[str], width: int, indent: int) -> list[str]:
    """Chips joined with two spaces, onto as many lines of ``width`` as they need."""
    from rich.text import Text

    lines: list[str] = []
    current, used = "", 0
    for chip in chips:
        size = Text.from_markup(chip).cell_len
        if current and used + 2 + size > width - indent:
            lines.append(current)
            current, used = "", 0
        current, used = (f"{current}  {chip}", used + 2 + size) if current else (chip, size)
    if current:
        lines.append(current)
    return lines


def _box(title: str, name: str, chips: list[str], inner: int, height: int) -> list[str]:
    """A hop as a box ``inner`` columns wide inside, ``height`` lines of content."""
    from rich.text import Text

    def fit(markup: str) -> str:
        text = Text.from_markup(markup)
        if text.cell_len > inner:
            text.truncate(inner, overflow="ellipsis")
            return escape(text.plain)  # cut: the style goes, the words stay
        return markup + " " * (inner - text.cell_len)

    if not title:
        return [" " * (inner + 4)] * (height + 2)
    rule = max(0, inner - len(title))
    body = [fit(escape(name))] + [fit(c) for c in chips]
    body += [" " * inner] * (height - len(body))
    return (
        [f"┌ [bold]{escape(title)}[/] {'─' * rule}┐"]
        + [f"│ {line} │" for line in body]
        + [f"└{'─' * (inner + 2)}┘"]
    )


def _diagram(s: dict[str, Any], width: int) -> list[str]:
    """The README's diagram, two rows of boxes: API → queue → Lambda 1 → table, then under
    the table its stream → Lambda 2 → topic, leftwards, beside the dead letters."""
    inner = (width - 3 * 4) // 4 - 4  # four boxes (inner + 4 wide) and three arrows
    queue, l1, table, l2, topic = (s[k] for k in ("queue", "lambda1", "table", "lambda2", "topic"))
    by_hop = {hop: (name, chips) for hop, name, chips, _ in hops(s)}
    dead = _queue_chips(queue["dlq"], alarm=True) + _queue_chips(l2["failure_queue"], alarm=True)
    top = [
        ("API", *by_hop["API"]),
        ("queue", queue["name"], _queue_chips(queue)),
        ("Lambda 1", l1["name"], _function_chips(l1)),
        ("table", *by_hop["table"]),
    ]
    bottom = [
        ("dead letters", "", dead),
        ("topic", *by_hop["topic"]),
        ("Lambda 2", l2["name"], _function_chips(l2)),
        ("stream", *by_hop["stream"]),
    ]
    lines: list[str] = []
    for row, arrow in ((top, " ─▶ "), (bottom, " ◀─ ")):
        height = max(1 + len(chips) for _, _, chips in row)
        boxes = [_box(t, n, c, inner, height) for t, n, c in row]
        for i in range(height + 2):
            joints = [arrow if i == 1 and j > (row is bottom) else "    " for j in range(1, 4)]
            parts = [boxes[0][i]] + [joints[j - 1] + boxes[j][i] for j in range(1, 4)]
            lines.append("".join(parts))
        if row is top:
            lines.append(" " * (3 * (inner + 8) + (inner + 4) // 2) + "↓")
    return lines


def render(s: dict[str, Any], width: int, *, region: str, cut: bool = True) -> list[str]:
    """The diagram as markup lines for a ``width``-column terminal (``cut``: an error line is
    cut to the width; a pipe gets it whole)."""
    where = f"[bold]pocctl watch[/] · {escape(region)}"
    when = f"last {s['window_minutes']} min · {s['time'][11:19]} UTC"
    if len(f"pocctl watch · {region} · {when}") <= width:
        lines = [f"{where} · {when}", ""]
    else:
        lines = [where, when, ""]
    if width >= DIAGRAM:
        lines += _diagram(s, width)
        for hop, _, _, error in hops(s):
            if error is not None:
                text = f"{hop}: {error}"
                text = text if not cut or len(text) <= width else text[: width - 1] + "…"
                lines.append(f"[red]{escape(text)}[/]")
        return lines
    wide = width >= WIDE
    for i, (hop, name, chips, error) in enumerate(hops(s)):
        arrow = "  " if i == 0 else "↓ "
        title = f"{arrow}[bold]{escape(hop)}[/] {escape(name)}"
        if wide:
            plain = f"{arrow}{hop} {name}"
            pad = " " * max(1, _NAME_COLUMN - len(plain))
            packed = _pack(chips, width, _NAME_COLUMN + 1)
            lines.append(f"{title}{pad}{packed[0] if packed else ''}")
            lines += [" " * (_NAME_COLUMN + 1) + p for p in packed[1:]]
        else:
            lines.append(title)
            lines += ["    " + p for p in _pack(chips, width, 4)]
        if error is not None:
            text = error if not cut or len(error) + 4 <= width else error[: width - 5] + "…"
            lines.append(f"    [red]{escape(text)}[/]")
    return lines


@click.command("watch")
@click.option("--once", is_flag=True, help="print one snapshot and exit (for scripts)")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.5),
    default=2.0,
    show_default=True,
    help="seconds between refreshes",
)
@click.option(
    "--minutes",
    type=click.IntRange(min=1, max=1440),
    default=60,
    show_default=True,
    help="the window the counts cover",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    callback=json_mode,
    help="the figures as JSON (one line a refresh)",
)
@click.pass_obj
def watch_command(app: App, once: bool, interval: float, minutes: int, as_json: bool) -> None:
    """Watch the pipeline hop by hop: requests, queue depths, invocations, errors, rows,
    notifications, dead letters, and each function's last error.

    Reads CloudWatch metrics (AWS/ApiGateway, AWS/Lambda, AWS/SNS) and the queues' and
    table's own counts; the same on AWS and on the embedded AWS. Ctrl-C stops it.

    \b
    Examples:
      pocctl --local watch
      pocctl watch --once
      pocctl watch --once --json | jq .queue.dlq.visible
    """
    from pocctl.pipeline_view import Names, Watcher

    with app.guard():
        watcher = Watcher(app.aws.client, Names.from_config(app.cfg), minutes=minutes)
        region = app.aws.region or ""
        try:
            if once:
                _show(app, watcher.snapshot(), region, as_json)
            elif app.terminal.interactive and not as_json:
                _live(app, watcher, region, interval)
            else:
                _stream(app, watcher, region, interval, as_json)
        except KeyboardInterrupt:
            raise Abort(130) from None


def _show(app: App, snapshot: dict[str, Any], region: str, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(_json_line({"region": region, **snapshot}) + "\n")
        sys.stdout.flush()
        return
    interactive = app.terminal.interactive
    # A pipe's width is unbounded (nothing is cut): lay it out as one line per hop, not as
    # boxes as wide as that width.
    width = app.terminal.out.width if interactive else min(app.terminal.out.width, WIDE)
    for line in render(snapshot, width, region=region, cut=interactive):
        app.terminal.out.print(line, soft_wrap=True, crop=False)


def _json_line(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, sort_keys=True)


def _stream(app: App, watcher: Any, region: str, interval: float, as_json: bool) -> None:
    """Not a terminal (or --json): a snapshot each refresh, one after another."""
    pause = threading.Event()
    while True:
        _show(app, watcher.snapshot(), region, as_json)
        if not as_json:
            app.terminal.out.print("")
        pause.wait(interval)


def _live(app: App, watcher: Any, region: str, interval: float) -> None:
    from pocctl import aws

    last: list[dict[str, Any]] = []

    def frame(width: int) -> str:
        try:
            last[:] = [watcher.snapshot()]
            problem = ""
        except Exception as e:  # keep watching: the endpoint may come back
            problem = f"[red]cannot read: {escape(aws.error_message(e))}[/]"
        if not last:
            return problem or "reading…"
        lines = render(last[0], width, region=region)
        return "\n".join(lines + ([problem] if problem else []))

    app.terminal.live(frame, interval=interval)


COMMANDS = [watch_command]
