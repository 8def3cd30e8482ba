"""The handler code a function runs, as the walkthrough's Tasks 4 and 7 show it.

What is shown is read from the file that is zipped (not from pocctl's own copy), so the screen
shows whatever the learner's code is. A short file is shown whole; a longer one from its handler
function (found with ast, never imported), bounded to MAX_LINES with what is left said.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from pocctl.cli.terminal import Terminal, _Indented, escape

MAX_LINES = 30  # a screen of 24 rows pages; more than this is a file to open, not to read here


@dataclass
class Excerpt:
    path: Path
    start: int  # 1-based first line shown
    lines: list[str]
    total: int  # lines in the file

    @property
    def more(self) -> int:
        return self.total - (self.start - 1) - len(self.lines)


def excerpt(path: Path, function: str, max_lines: int = MAX_LINES) -> Excerpt:
    """The whole file when it fits, else ``function``'s definition onwards (the file's start
    when it defines no such function or does not parse), at most ``max_lines`` lines."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    start = 1
    if len(lines) > max_lines:
        start = _def_line(text, function) or 1
    shown = lines[start - 1 : start - 1 + max_lines]
    return Excerpt(path, start, shown, len(lines))


def _def_line(text: str, function: str) -> int | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            return first
    return None


def show_code(term: Terminal, path: Path | None, handler: str, shown_path: str) -> None:
    """``path``'s code, syntax-highlighted with line numbers, headed by its path and bounded."""
    if term.quiet:
        return
    if path is None or not path.is_file():
        term.line(f"    [yellow]no file defines {escape(handler)} yet[/]")
        return
    ex = excerpt(path, handler.rsplit(".", 1)[-1])
    where = f"lines {ex.start}–{ex.start + len(ex.lines) - 1} of {ex.total}"
    term.line(f"    [dim]{escape(shown_path)} ({where}; the whole file is zipped)[/]")
    from rich.syntax import Syntax

    syntax = Syntax(
        "\n".join(ex.lines),
        "python",
        theme="ansi_dark",
        background_color="default",
        line_numbers=True,
        start_line=ex.start,
        word_wrap=True,
    )
    term.out.print(_Indented(syntax, 4), soft_wrap=False)
    if ex.more > 0:
        term.line(f"    [dim]… {ex.more} more lines in {escape(shown_path)}[/]")
