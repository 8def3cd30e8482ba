"""What the walkthrough shows of a handler file: whole when short, else from the handler's def,
bounded, with what is left said (pocctl.cli.codeview)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from pocctl.cli.codeview import excerpt, show_code
from pocctl.cli.terminal import Terminal


def _file(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "lambda_function.py"
    p.write_text(body)
    return p


def test_a_short_file_is_shown_whole(tmp_path: Path) -> None:
    p = _file(tmp_path, "import os\n\n\ndef lambda_handler(event, context):\n    return 1\n")
    ex = excerpt(p, "lambda_handler")
    assert (ex.start, ex.total, ex.more) == (1, 5, 0)
    assert ex.lines[3] == "def lambda_handler(event, context):"


def test_a_long_file_starts_at_the_handler_with_its_decorator_and_is_bounded(
    tmp_path: Path,
) -> None:
    body = "".join(f"X{i} = {i}\n" for i in range(40))
    body += "@wrap\ndef lambda_handler(event, context):\n" + "    pass\n" * 50
    ex = excerpt(_file(tmp_path, body), "lambda_handler", max_lines=30)
    assert ex.start == 41 and ex.lines[0] == "@wrap"
    assert len(ex.lines) == 30 and ex.more == 92 - 40 - 30


def test_no_such_def_or_a_syntax_error_shows_the_start(tmp_path: Path) -> None:
    body = "def other(:\n" + "x = 1\n" * 40
    ex = excerpt(_file(tmp_path, body), "lambda_handler", max_lines=30)
    assert ex.start == 1 and ex.lines[0] == "def other(:" and ex.more == 11


def test_shown_with_path_line_numbers_and_what_is_left(tmp_path: Path) -> None:
    body = "# header\n" * 40 + "def handler(event, context):\n" + "    x = 1\n" * 40
    out = Console(width=80, record=True, no_color=True)
    show_code(Terminal(out=out), _file(tmp_path, body), "m.handler", "code/lambda_function.py")
    text = out.export_text()
    assert "code/lambda_function.py (lines 41–70 of 81; the whole file is zipped)" in text
    assert "41 def handler(event, context):" in text
    assert "… 11 more lines in code/lambda_function.py" in text


def test_a_missing_module_is_said(tmp_path: Path) -> None:
    out = Console(width=80, record=True, no_color=True)
    show_code(Terminal(out=out), None, "app.main", "")
    assert "no file defines app.main yet" in out.export_text()
