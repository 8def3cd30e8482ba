"""The only owner of rich's Console: every line, spinner, table and error goes through here.

It knows no domain: messages, a spinner of given text, tables of given columns and rows, text
widgets, key input. What pocctl's steps, orders and resources look like as rows is in
``pocctl.cli.views``; the engine's progress, in ``pocctl.cli.progress``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import click


# rich is imported when something is shown, not at start-up (`pocctl --help` needs none of it).
def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


UNBOUNDED = 100_000  # columns of a non-terminal's "width": nothing reaches it
RULE_WIDTH = 80  # a rule's width where the output has none (a pipe)
MORE_PROMPT = "-- more -- space: next page · Enter: next line · q: stop paging"
WAIT_SHOWN_AFTER, WAIT_SAID_EVERY = 2.0, 10.0  # seconds: a wait is said once it lasts this long


@dataclass(frozen=True)
class Column:
    """A table column: its header, how cells line up, and whether long cells fold (ARNs)."""

    header: str
    justify: Literal["left", "right"] = "left"
    fold: bool = False


class Abort(click.exceptions.Exit):
    """Raised by Terminal.abort: the message is already printed."""


class Terminal:
    def __init__(
        self,
        *,
        verbose: bool = False,
        quiet: bool = False,
        out: Any = None,
        err: Any = None,
        getchar: Callable[[], str] | None = None,
    ) -> None:
        """``out``/``err``: rich Consoles to write to (a test's recording); ``getchar``: where
        keys come from (click's, reading the terminal, by default)."""
        self.verbose = verbose
        self.quiet = quiet
        from rich.console import Console

        # Long lines (commands, URLs) are not hard-wrapped, so they can be copied whole.
        self._rows = _RowCounter(sys.stdout) if out is None and sys.stdout.isatty() else None
        self.out = out or Console(file=self._rows, highlight=False, soft_wrap=True)
        if self._rows is not None:
            self._rows.width = lambda: self.out.width
        if out is None and not self.out.is_terminal and "COLUMNS" not in os.environ:
            # A pipe or a file: nothing is wrapped, folded or cut, so an ARN, URL or ID is
            # whole on its line for grep and scripts (COLUMNS=N asks for N columns instead).
            self.out.width = UNBOUNDED
        # Errors are never hard-wrapped: one line a user can copy (and a test can match).
        self.err = err or Console(stderr=True, highlight=False, soft_wrap=True)
        self._getchar = getchar or click.getchar
        self._status: Any = None
        self._last_wait: dict[str, float] = {}
        self._waits: dict[str, list[float]] = {}  # reason → [since, elapsed when last said]
        self._waits_lock = threading.Lock()
        # Set when stdout carries data (--json): progress lines then go to stderr.
        self.data_on_stdout = False
        self._ticker: threading.Thread | None = None
        # The command line that repeats this run's global options ("pocctl --local"): a command
        # suggested in a message (`pocctl down` removes it) gets them, so it works when pasted.
        self.prog = "pocctl"

    @property
    def interactive(self) -> bool:
        return self.out.is_terminal

    # -- plain messages ---------------------------------------------------------------------------

    def pasteable(self, text: str, markup: bool = False) -> str:
        """``text`` with each `pocctl …` it suggests written with this run's global options
        (see App.cmd); one already written so, and `pocctl local`/`demo` (they reach no
        stack), stay as they are."""
        given = self.prog.removeprefix("pocctl").strip()
        if not given:
            return text
        prog = escape(self.prog) if markup else self.prog
        suggested = re.compile(rf"`pocctl (?!{re.escape(given)}[ `]|local\b|demo\b)")
        return suggested.sub(lambda m: f"`{prog} ", text)

    def line(self, text: str = "", style: str | None = None) -> None:
        if not self.quiet:
            self.out.print(self.pasteable(text, markup=True), style=style)

    def progress(self, text: str) -> None:
        """A line about a wait or a retry: on stdout with the rest, on stderr when stdout is
        data (``--json``), so a script's JSON is never interleaved with it."""
        if self.data_on_stdout:
            if not self.quiet:
                self.err.print(self.pasteable(text, markup=True))
        else:
            self.line(text)

    def info(self, text: str) -> None:
        self.line(escape(text))

    def success(self, text: str) -> None:
        self.line(f"[green]✓[/] {escape(text)}")

    def warn(self, text: str) -> None:
        self.err.print(f"[yellow]warning:[/] {escape(self.pasteable(text))}")

    def debug(self, text: str) -> None:
        if self.verbose:
            self.err.print(f"[dim]{escape(text)}[/]")

    def abort(self, message: str, *, hint: str = "", code: int = 1) -> NoReturn:
        """The one exit path for expected errors: one clear line, then what to do."""
        self.stop_spinner()
        self.wait_over()
        self.err.print(f"[bold red]error:[/] {escape(self.pasteable(message))}")
        if hint:
            self.err.print(f"  [dim]→[/] {escape(self.pasteable(hint))}")
        raise Abort(code)

    def json(self, data: Any) -> None:
        # Plain print: JSON must not be wrapped or coloured.
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")

    # -- spinner --------------------------------------------------------------------------------

    def spin(self, text: str) -> None:
        """Show ``text`` (markup) on the spinner, starting one if none runs; only on a terminal,
        and not with --quiet."""
        if not self.interactive or self.quiet:
            return
        if self._status is None:
            self._status = self.out.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def waiting(self, reason: str, elapsed: float) -> None:
        """A routine wait, ``elapsed`` seconds in: on the spinner, with how long so far (a line
        with --verbose). Without a spinner (a pipe, a log), a line once it has lasted 2 s and one
        every 10 s after, as Terraform's "Still creating... [10s elapsed]", until
        ``wait_over``."""
        since = time.monotonic() - elapsed
        if self._status is not None:
            self._status.update(_Elapsed(escape(reason), since))
        if self.verbose and reason not in self._waits:
            self.progress(f"    [dim]… {escape(reason)}[/]")
        with self._waits_lock:
            self._waits.setdefault(reason, [since, -WAIT_SAID_EVERY])
            if self._ticker is None or not self._ticker.is_alive():
                self._ticker = threading.Thread(target=self._tick, daemon=True, name="waits")
                self._ticker.start()

    def wait_over(self, about: str = "") -> None:
        """The waits whose reason names ``about`` have ended (all of them, given nothing)."""
        with self._waits_lock:
            for reason in [r for r in self._waits if about in r]:
                del self._waits[reason]

    def _tick(self) -> None:
        while True:
            with self._waits_lock:
                if not self._waits:
                    self._ticker = None
                    return
                due = []
                now = time.monotonic()
                for reason, said in self._waits.items():
                    age = now - said[0]
                    if age >= WAIT_SHOWN_AFTER and age - said[1] >= WAIT_SAID_EVERY:
                        said[1] = age
                        due.append((reason, age))
            if self._status is None:  # a spinner shows the seconds itself
                for reason, age in due:
                    self.progress(f"    [dim]… still {escape(f'{reason} [{age:.0f}s elapsed]')}[/]")
            time.sleep(0.25)  # a display refresh, not synchronisation

    def retrying(self, reason: str, elapsed: float) -> None:
        """Waiting out an AWS error: a line saying why, then one per 10 s of the same wait."""
        if self._status is not None:
            self._status.update(f"{escape(reason)} ({elapsed:.0f} s)…")
        last = self._last_wait.get(reason)
        if last is not None and 0 <= elapsed - last < 10:
            return
        self._last_wait[reason] = elapsed
        self.progress(f"    [yellow]…[/] {escape(reason)} [dim]({elapsed:.0f} s so far)[/]")

    def stop_spinner(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    # -- tables -----------------------------------------------------------------------------------

    def table(
        self,
        columns: Sequence[Column],
        rows: Iterable[Sequence[str]],
        *,
        boxed: bool = False,
        answer: bool = False,
    ) -> None:
        """A table of ``rows`` (cells in markup) under ``columns``. ``boxed``: ruled lines
        around and under the header; ``answer``: it is what the command was asked for, so
        --quiet shows it too."""
        if self.quiet and not answer:
            return
        from rich.table import Table

        # Unboxed fits 80 columns: no rules around the cells.
        box: dict[str, Any] = {} if boxed else {"box": None, "show_edge": False}
        table = Table(pad_edge=False, **box)
        for c in columns:
            table.add_column(c.header, justify=c.justify, overflow="fold" if c.fold else "ellipsis")
        for row in rows:
            table.add_row(*row)
        if self.out.width < UNBOUNDED:
            self.out.print(table)
            return
        # rich pads every cell to its column's width, the last one too: not in a pipe.
        with self.out.capture() as captured:
            self.out.print(table)
        for line in captured.get().splitlines():
            self.out.print(line.rstrip(), markup=False, highlight=False)

    # -- live view -------------------------------------------------------------------------------

    def live(self, frame: Callable[[int], str], *, interval: float) -> NoReturn:
        """Redraw ``frame(width)`` (markup lines) in place every ``interval`` seconds until
        Ctrl-C, which restores the screen and propagates (KeyboardInterrupt)."""
        import threading

        from rich.live import Live
        from rich.text import Text

        pause = threading.Event()
        with Live(console=self.out, auto_refresh=False, redirect_stdout=False) as view:
            while True:
                text = Text.from_markup(frame(self.out.width), overflow="ellipsis")
                text.no_wrap = True
                view.update(text, refresh=True)
                pause.wait(interval)

    # -- text widgets -----------------------------------------------------------------------------
    # These fit the width (soft_wrap=False): prose wraps, ARNs and URLs fold, commands are
    # pre-split into `\`-continued lines.

    def rule(self, title: str) -> None:
        if self.quiet:
            return
        from rich.rule import Rule

        self.out.print()
        width = min(self.out.width, RULE_WIDTH) if self.out.width >= UNBOUNDED else self.out.width
        if len(title) + 6 <= width:
            self.out.print(Rule(f"[bold]{escape(title)}[/]", style="cyan"), width=width)
        else:  # a rule would cut the title short
            self.out.print(Rule(style="cyan"), width=width)
            self.paragraph(title, style="bold")

    def heading(self, text: str) -> None:
        self.line(f"\n[bold]{escape(text)}[/]")

    def paragraph(self, text: str, indent: int = 0, style: str = "") -> None:
        if not self.quiet:
            from rich.text import Text

            body = _Indented(Text(self.pasteable(text), style=style), indent)
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

    # -- paging ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def paged(self) -> Iterator[None]:
        """What the block prints, shown a window at a time as `more` does (space: the next
        page, Enter: one more line, q: the rest without stopping), counting what is already on
        the window since the last key, so that stays visible until a key is pressed. Only on a
        terminal whose rows are counted; elsewhere the block prints as it goes."""
        if self._rows is None or not self.interactive or self.quiet:
            yield
            return
        capture = self.out.capture()
        capture.__enter__()
        try:
            yield
        except BaseException:
            capture.__exit__(None, None, None)
            self._rows.write(capture.get())  # failing: shown as it is, no key to wait for
            raise
        capture.__exit__(None, None, None)
        self.page(capture.get())

    def page(self, text: str) -> None:
        """``text`` (rendered, with its escapes) a window at a time; see ``paged``."""
        assert self._rows is not None
        paging = True
        for line in text.splitlines(keepends=True):
            rows = self._rows.rows_of(line, self.out.width)
            if paging and self._rows.rows + rows > self.out.height - 1:
                paging = self._more()
            self._rows.write(line)
        self._rows.flush()

    def _more(self) -> bool:
        """The `more` prompt; True to go on paging, False (q) to print the rest at once."""
        assert self._rows is not None
        self._rows.write(f"\x1b[7m{MORE_PROMPT}\x1b[0m")
        self._rows.flush()
        while True:
            try:
                ch = self._getchar()
            except (KeyboardInterrupt, EOFError):
                ch = "q"
            key = (ch or "q")[0].lower()
            if key in " \r\nq":
                break
        self._rows.write("\r\x1b[2K")  # the prompt is not part of the page
        self._rows.rows = self.out.height - 2 if key in "\r\n" else 0
        return key != "q"

    def read_key(self, prompt: str, keys: dict[str, str], *, interrupt: str = "quit") -> str:
        """Print ``prompt``, then read single keys until one in ``keys`` (key → answer).

        Ctrl-D and a closed input answer "quit"; Ctrl-C answers ``interrupt`` ("quit" unless
        the caller tells them apart). The answer is echoed after the prompt.
        """
        self.stop_spinner()
        self.out.print(escape(prompt), end="")
        answer = "quit"
        while True:
            try:
                ch = self._getchar()
            except KeyboardInterrupt:
                answer = interrupt
                break
            except EOFError:
                break
            if not ch:  # end of input
                break
            key = "\n" if ch[0] in "\r\n" else ch[0].lower()
            if key in keys:
                answer = keys[key]
                break
        self.out.print(escape(answer))
        if self._rows is not None:
            self._rows.rows = 1  # a key was pressed: the window holds the answer's line
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


class _RowCounter:
    """The terminal's output, counting the rows written since the last key (for paging)."""

    _ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.rows = 0
        self.width: Callable[[], int] = lambda: 80  # the console's, once it exists

    def rows_of(self, line: str, width: int) -> int:
        """Rows a line takes on a terminal ``width`` columns wide (long lines wrap there)."""
        from rich.cells import cell_len

        plain = self._ESCAPES.sub("", line).rstrip("\n").split("\r")[-1]
        return max(1, -(-cell_len(plain) // max(width, 1))) if line.endswith("\n") else 0

    def write(self, text: str) -> int:
        width = self.width()
        self.rows += sum(self.rows_of(line, width) for line in text.splitlines(keepends=True))
        return int(self._stream.write(text))

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, flush, …
        return getattr(self._stream, name)


class _Elapsed:
    """Spinner text that counts the seconds: rich renders it anew on every refresh."""

    def __init__(self, text: str, since: float) -> None:
        self.text, self.since = text, since

    def __rich__(self) -> str:
        return f"{self.text} ({time.monotonic() - self.since:.0f} s)…"
