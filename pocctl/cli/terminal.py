"""The only owner of rich's Console: every line, spinner, table and error goes through here."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn

import click

from pocctl.engine import ABSENT, CREATE, DELETE, UNCHANGED, UPDATE

if TYPE_CHECKING:
    from pocctl.engine import Step
    from pocctl.lab import Task


# rich is imported when something is shown, not at start-up (`pocctl --help` needs none of it).
def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


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


class LogHandler(logging.Handler):
    """pocctl's own log records (the embedded AWS's pollers, executor, gateway) as terminal lines:
    one line each, with the traceback only under --verbose."""

    def __init__(self, terminal: Terminal) -> None:
        super().__init__()
        self.terminal = terminal

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            message = f"{message}: {type(exc).__name__}: {exc}"
        style = "yellow" if record.levelno >= logging.WARNING else "dim"
        self.terminal.err.print(f"[{style}]{escape(message)}[/]")
        if exc is not None and self.terminal.verbose:
            self.terminal.err.print_exception()


def route_logging(terminal: Terminal) -> None:
    logger = logging.getLogger("pocctl")
    logger.handlers = [LogHandler(terminal)]
    logger.setLevel(logging.DEBUG if terminal.verbose else logging.WARNING)
    logger.propagate = False


class Abort(click.exceptions.Exit):
    """Raised by Terminal.abort: the message is already printed."""


class Terminal:
    def __init__(self, *, verbose: bool = False, quiet: bool = False) -> None:
        self.verbose = verbose
        self.quiet = quiet
        from rich.console import Console

        # Long lines (commands, URLs) are not hard-wrapped, so they can be copied whole.
        self.out = Console(highlight=False, soft_wrap=True)
        # Errors are never hard-wrapped: one line a user can copy (and a test can match).
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self._status: Any = None
        self._last_wait: dict[str, float] = {}
        self.removing = False  # set by `down`: task headings say what is removed

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
        # `down` walks the build tasks backwards: their titles ("Creating ...") would read wrong.
        heading = f"removing {task.summary}" if self.removing else task.title
        self.line(f"[bold]Task {task.number}[/] · {escape(heading)}")
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

    def in_flight(self, names: list[str]) -> None:
        """A parallel `up`: one spinner naming what is being made right now."""
        if not names:
            self.stop_spinner()
            return
        if not self.interactive or self.quiet:
            return
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        if self._status is None:
            self._status = self.out.status(f"making {escape(shown)}…")
            self._status.start()
        else:
            self._status.update(f"making {escape(shown)}…")

    def task_done(self, task: Task, steps: list[Step], seconds: float) -> None:
        counts: dict[str, int] = {}
        for step in steps:
            word = _MARK[step.action][2]
            counts[word] = counts.get(word, 0) + 1
        summary = ", ".join(f"{n} {word}" for word, n in counts.items()) or "nothing to do"
        self.line(f"  [dim]Task {task.number}: {summary} in {seconds:.1f} s[/]")

    def resource_table(self, steps: list[Step]) -> None:
        """The closing table of `up`: every resource with its ARN (or URL / ID)."""
        from rich.table import Table

        table = Table(pad_edge=False, box=None, show_edge=False)
        table.add_column("kind")
        table.add_column("resource / ARN", overflow="fold")
        for s in steps:
            ident = s.identity.get("arn") or s.identity.get("url") or s.identity.get("id") or ""
            table.add_row(
                _KIND.get(s.resource.type, s.resource.type),
                escape(s.resource.name) + (f"\n[dim]{escape(ident)}[/]" if ident else ""),
            )
        if not self.quiet:
            self.out.print(table)

    def waiting(self, reason: str, elapsed: float) -> None:
        """A routine wait: on the spinner, with how long so far (a line with --verbose)."""
        if self._status is not None:
            self._status.update(_Elapsed(escape(reason), time.monotonic() - elapsed))
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
        from rich.table import Table

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
        from rich.table import Table

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
        from rich.table import Table

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

    # -- walkthrough screens ----------------------------------------------------------------------
    # These fit the width (soft_wrap=False): prose wraps, ARNs and URLs fold, commands are
    # pre-split into `\`-continued lines.

    def rule(self, title: str) -> None:
        if self.quiet:
            return
        self.out.print()
        if len(title) + 6 <= self.out.width:
            self.out.rule(f"[bold]{escape(title)}[/]", style="cyan")
        else:  # a rule would cut the title short
            self.out.rule(style="cyan")
            self.paragraph(title, style="bold")

    def heading(self, text: str) -> None:
        self.line(f"\n[bold]{escape(text)}[/]")

    def paragraph(self, text: str, indent: int = 0, style: str = "") -> None:
        if not self.quiet:
            from rich.text import Text

            body = _Indented(Text(text, style=style), indent)
            self.out.print(body, soft_wrap=False)

    def settings(self, rows: list[tuple[str, str]], indent: int = 4) -> None:
        """Name/value rows, the values folded (never cut) to fit the width."""
        if self.quiet or not rows:
            return

        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for name, value in rows:
            grid.add_row(escape(name), escape(value))
        self.out.print(_Indented(grid, indent), soft_wrap=False)

    def json_block(self, data: Any, indent: int = 4) -> None:
        """Syntax-highlighted JSON; ANSI colours so it follows the terminal's theme, and plain
        text without colour (NO_COLOR, a pipe)."""
        if self.quiet:
            return
        from rich.syntax import Syntax

        code = _fit_json(json.dumps(data, indent=2, ensure_ascii=False), self.out.width - indent)
        syntax = Syntax(code, "json", theme="ansi_dark", background_color="default", word_wrap=True)
        self.out.print(_Indented(syntax, indent), soft_wrap=False)

    def folded(self, text: str, indent: int = 4, style: str = "", link: str | None = None) -> None:
        """An ARN or URL on its own line(s): folded to the width, a hyperlink where supported."""
        if self.quiet:
            return
        from rich.style import Style
        from rich.text import Text

        t = Text(text, style=style, overflow="fold")
        if link:
            t.stylize(Style(link=link))
        self.out.print(_Indented(t, indent), soft_wrap=False)

    def shell(self, lines: list[str], indent: int = 4) -> None:
        """A command to copy: already split into lines that end in `\\` (see walkthrough)."""
        if self.quiet:
            return
        from rich.text import Text

        text = Text("\n".join(lines), no_wrap=True, overflow="ignore")
        self.out.print(_Indented(text, indent), crop=False)

    def read_key(self, prompt: str, keys: dict[str, str]) -> str:
        """Print ``prompt``, then read single keys until one in ``keys`` (key → answer).

        Ctrl-C, Ctrl-D and a closed input answer "quit". The answer is echoed after the prompt.
        """
        self.stop_spinner()
        self.out.print(escape(prompt), end="")
        answer = "quit"
        while True:
            try:
                ch = click.getchar()
            except (KeyboardInterrupt, EOFError):
                break
            if not ch:  # end of input
                break
            key = "\n" if ch[0] in "\r\n" else ch[0].lower()
            if key in keys:
                answer = keys[key]
                break
        self.out.print(escape(answer))
        return answer


def _fit_json(code: str, width: int) -> str:
    """Put a long value on the line under its key, and pull a line still too long to the left:
    whitespace between JSON tokens is free, so it stays valid JSON and copies whole."""
    out: list[str] = []
    for line in code.splitlines():
        head, sep, value = line.partition('": ')
        pad = len(line) - len(line.lstrip())
        if len(line) > width and sep and head.lstrip().startswith('"'):
            out += [head + '":', " " * (pad + 2) + value]
        else:
            out.append(line)
    fitted = []
    for line in out:
        text = line.lstrip()
        pad = min(len(line) - len(text), max(0, width - len(text)))
        fitted.append(" " * pad + text)
    return "\n".join(fitted)


class _Indented:
    """A renderable shifted right by ``indent`` columns, without trailing blanks (rich's Padding
    pads every line to the full width, which a recording or a test would keep)."""

    def __init__(self, renderable: Any, indent: int) -> None:
        self.renderable, self.indent = renderable, indent

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.segment import Segment

        width = max(options.max_width - self.indent, 20)
        lines = console.render_lines(self.renderable, options.update_width(width), pad=False)
        for line in lines:
            while line and not line[-1].text.strip() and not line[-1].control:
                line = line[:-1]
            if line:
                last = line[-1]
                line = [*line[:-1], Segment(last.text.rstrip(), last.style, last.control)]
                yield Segment(" " * self.indent)
            yield from line
            yield Segment.line()


class _Elapsed:
    """Spinner text that counts the seconds: rich renders it anew on every refresh."""

    def __init__(self, text: str, since: float) -> None:
        self.text, self.since = text, since

    def __rich__(self) -> str:
        return f"{self.text} ({time.monotonic() - self.since:.0f} s)…"
