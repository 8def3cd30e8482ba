"""The only owner of rich's Console: every line, spinner, table and error goes through here."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pocctl.engine import ABSENT, CREATE, DELETE, UNCHANGED, UPDATE, Step
from pocctl.lab import Task

_MARK = {
    CREATE: ("+", "green", "created"),
    UPDATE: ("~", "yellow", "updated"),
    UNCHANGED: ("=", "dim", "unchanged"),
    DELETE: ("-", "red", "deleted"),
    ABSENT: ("·", "dim", "already gone"),
}
_KIND = {
    "iam_policy": "policy",
    "iam_role": "role",
    "dynamodb_table": "table",
    "dynamodb_stream": "stream",
    "sqs_queue": "queue",
    "lambda_function": "function",
    "lambda_event_source_mapping": "trigger",
    "sns_topic": "topic",
    "sns_subscription": "email",
    "apigateway_rest_api": "api",
}
_PLAN_WORD = {CREATE: "create", UPDATE: "update", UNCHANGED: "unchanged"}


class Abort(click.exceptions.Exit):
    """Raised by Terminal.abort: the message is already printed."""


class Terminal:
    def __init__(self, *, verbose: bool = False, quiet: bool = False) -> None:
        self.verbose = verbose
        self.quiet = quiet
        self.out = Console(highlight=False, soft_wrap=False)
        # Errors are never hard-wrapped: one line a user can copy (and a test can match).
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self._status: Any = None
        self._last_wait: dict[str, float] = {}

    @property
    def interactive(self) -> bool:
        return self.out.is_terminal

    # -- plain messages ---------------------------------------------------------------------------

    def line(self, text: str = "", style: str | None = None) -> None:
        if not self.quiet:
            self.out.print(text, style=style)

    def info(self, text: str) -> None:
        self.line(escape(text))

    def success(self, text: str) -> None:
        self.line(f"[green]✓[/] {escape(text)}")

    def warn(self, text: str) -> None:
        self.err.print(f"[yellow]warning:[/] {escape(text)}")

    def debug(self, text: str) -> None:
        if self.verbose:
            self.err.print(f"[dim]{escape(text)}[/]")

    def abort(self, message: str, *, hint: str = "", code: int = 1) -> NoReturn:
        """The one exit path for expected errors: one clear line, then what to do."""
        self.stop_spinner()
        self.err.print(f"[bold red]error:[/] {escape(message)}")
        if hint:
            self.err.print(f"  [dim]→[/] {escape(hint)}")
        raise Abort(code)

    def json(self, data: Any) -> None:
        # Plain print: JSON must not be wrapped or coloured.
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")

    # -- progress (engine Reporter) ---------------------------------------------------------------

    def task_started(self, task: Task) -> None:
        self.line(f"[bold]Task {task.number}[/] · {escape(task.title)}")
        self._task_start = time.monotonic()

    def step_started(self, step: Step) -> None:
        verb = {CREATE: "creating", UPDATE: "updating", DELETE: "deleting"}.get(step.action)
        if verb and self.interactive and not self.quiet:
            self.stop_spinner()
            self._status = self.out.status(f"{verb} {escape(step.resource.name)}…")
            self._status.start()

    def step_done(self, step: Step) -> None:
        self.stop_spinner()
        mark, style, word = _MARK[step.action]
        arn = step.identity.get("arn") or step.identity.get("url") or ""
        took = f"{step.seconds:.1f} s" if step.action not in (UNCHANGED, ABSENT) else ""
        self.line(
            f"  [{style}]{mark} {word:<12}[/] {escape(step.resource.name)} [dim]{escape(took)}[/]"
        )
        if self.verbose and arn:
            self.line(f"      [dim]{escape(arn)}[/]")
        for change in step.changes:
            self.line(f"      [yellow]{escape(str(change))}[/]")

    def task_done(self, task: Task, steps: list[Step], seconds: float) -> None:
        pass

    def waiting(self, reason: str, elapsed: float) -> None:
        """A routine wait: on the spinner (a line with --verbose)."""
        if self._status is not None:
            self._status.update(f"{escape(reason)}…")
        if self.verbose:
            self.line(f"    [dim]… {escape(reason)}[/]")

    def retrying(self, reason: str, elapsed: float) -> None:
        """Waiting out an AWS error: a line saying why, then one per 10 s of the same wait."""
        if self._status is not None:
            self._status.update(f"{escape(reason)} ({elapsed:.0f} s)…")
        last = self._last_wait.get(reason)
        if last is not None and 0 <= elapsed - last < 10:
            return
        self._last_wait[reason] = elapsed
        self.line(f"    [yellow]…[/] {escape(reason)} [dim]({elapsed:.0f} s so far)[/]")

    def stop_spinner(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    # -- tables -----------------------------------------------------------------------------------

    def plan_table(self, steps: list[Step]) -> None:
        table = Table(title=None, show_lines=False, pad_edge=False, expand=False)
        table.add_column("task", justify="right")
        table.add_column("resource")
        table.add_column("action")
        table.add_column("what differs", overflow="fold")
        for s in steps:
            _, style, _ = _MARK[s.action]
            table.add_row(
                str(s.task.number),
                f"{_KIND.get(s.resource.type, s.resource.type)} {escape(s.resource.name)}",
                f"[{style}]{_PLAN_WORD.get(s.action, s.action)}[/]",
                "\n".join(escape(str(c)) for c in s.changes),
            )
        self.out.print(table)

    def status_table(self, rows: list[dict[str, Any]]) -> None:
        # Fits 80 columns: the ARN goes on its own line under the resource.
        table = Table(pad_edge=False, box=None, show_edge=False)
        table.add_column("#", justify="right")
        table.add_column("kind")
        table.add_column("resource / ARN", overflow="fold")
        table.add_column("status", overflow="fold")
        colour = {"exists": "green", "missing": "red", "drifted": "yellow"}
        for r in rows:
            note = f"\n{r['note']}" if r.get("note") else ""
            ident = r.get("arn") or r.get("id") or ""
            table.add_row(
                str(r["task"]),
                _KIND.get(r["type"], r["kind"]),
                escape(r["name"]) + (f"\n[dim]{escape(ident)}[/]" if ident else ""),
                f"[{colour.get(r['status'], '')}]{r['status']}[/][dim]{escape(note)}[/]",
            )
        self.out.print(table)

    def order_table(self, report: Any) -> None:
        """One row per order: its ID and its time for each hop; p50/p95 when there are several."""
        table = Table(pad_edge=False, box=None, show_edge=False)
        table.add_column("#", justify="right")
        table.add_column("order ID", overflow="fold")
        for hop in ("accepted", "stored", "notified"):
            table.add_column(hop, justify="right")

        def ms(v: float | None) -> str:
            return "[red]—[/]" if v is None else f"{v * 1000:.0f} ms"

        shown = report.orders if len(report.orders) <= 50 else report.orders[:20]
        for o in shown:
            table.add_row(
                str(o.number),
                escape(o.order_id or f"(HTTP {o.status})"),
                ms(o.accepted),
                ms(o.stored),
                ms(o.notified),
            )
        if len(report.orders) > len(shown):
            table.add_row("…", f"{len(report.orders) - len(shown)} more", "", "", "")
        if len(report.orders) > 1:
            for label, i in (("p50", 0), ("p95", 1)):
                cells = []
                for hop in ("accepted", "stored", "notified"):
                    p = report.percentiles(hop)
                    cells.append(ms(p[i]) if p else "—")
                table.add_row("", f"[bold]{label}[/]", *cells)
        if not self.quiet:
            self.out.print(table)
