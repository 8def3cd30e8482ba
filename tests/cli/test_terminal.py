"""The Terminal on its own: a recorded rich Console in place of the screen, keys from a list."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console

from pocctl.cli.terminal import Abort, Column, Terminal

ESCAPE = re.compile(r"\x1b\[")
COLOUR = re.compile(r"\x1b\[[0-9;]*3[0-9][;m]")  # a foreground colour


def recorded(width: int = 80, **kwargs: Any) -> tuple[Terminal, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    term = Terminal(
        out=Console(file=out, width=width, highlight=False, soft_wrap=True),
        err=Console(file=err, width=width, highlight=False, soft_wrap=True),
        **kwargs,
    )
    return term, out, err


COLUMNS = [Column("#", justify="right"), Column("name"), Column("ARN", fold=True)]
ROWS = [["1", "queue", "arn:aws:sqs:us-east-1:123456789012:POC-Queue"], ["12", "table", "—"]]


def test_a_table_shows_its_headers_then_one_line_per_row() -> None:
    term, out, _ = recorded()
    term.table(COLUMNS, ROWS)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["#", "name", "ARN"]
    assert lines[1].split() == ["1", "queue", "arn:aws:sqs:us-east-1:123456789012:POC-Queue"]
    assert lines[2].split() == ["12", "table", "—"]
    assert len(lines) == 3
    # Right-justified: the one-digit number ends where the two-digit one does.
    assert lines[1].index("1") == lines[2].index("12") + 1


def test_a_boxed_table_draws_rules_and_an_unboxed_one_none() -> None:
    term, out, _ = recorded()
    term.table(COLUMNS, ROWS, boxed=True)
    boxed = out.getvalue()
    assert "━" in boxed and "│" in boxed  # rich's default box: heavy under the header
    term, out, _ = recorded()
    term.table(COLUMNS, ROWS)
    assert not set("━│┃─") & set(out.getvalue())


def test_quiet_hides_a_table_unless_it_is_the_answer() -> None:
    term, out, _ = recorded(quiet=True)
    term.table(COLUMNS, ROWS)
    term.line("chatter")
    assert out.getvalue() == ""
    term.table(COLUMNS, ROWS, answer=True)
    assert "POC-Queue" in out.getvalue()


def test_cells_are_markup_the_view_escapes() -> None:
    term, out, _ = recorded()
    term.table([Column("a"), Column("b")], [["[bold]x[/]", r"\[not markup]"]])
    assert out.getvalue().split() == ["a", "b", "x", "[not", "markup]"]


def test_a_narrow_terminal_folds_long_cells_within_its_width() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:" + "F" * 60
    term, out, _ = recorded(width=40)
    term.table([Column("kind"), Column("ARN", fold=True)], [["function", arn]])
    lines = out.getvalue().splitlines()
    assert len(lines) > 3 and max(len(line) for line in lines) <= 40
    # Folded, not cut: the whole ARN is there, in pieces.
    assert "".join(line[len("function ") :].strip() for line in lines[1:]) == arn
    term, out, _ = recorded(width=40)
    term.paragraph("word " * 30)
    lines = out.getvalue().splitlines()
    assert len(lines) > 3 and max(len(line) for line in lines) <= 40
    assert " ".join(out.getvalue().split()) == ("word " * 30).strip()


def test_abort_prints_one_line_and_exits_with_its_code() -> None:
    term, out, err = recorded()
    with pytest.raises(Abort) as raised:
        term.abort("the queue [POC-Queue] is gone", code=3)
    assert raised.value.exit_code == 3
    assert err.getvalue() == "error: the queue [POC-Queue] is gone\n"
    assert out.getvalue() == ""


def test_abort_with_a_hint_says_what_to_do_on_a_second_line() -> None:
    term, _, err = recorded()
    with pytest.raises(Abort) as raised:
        term.abort("no AWS region configured", hint="pass --region")
    assert raised.value.exit_code == 1
    assert err.getvalue().splitlines() == ["error: no AWS region configured", "  → pass --region"]


def keys(*typed: str) -> Iterator[str]:
    yield from typed
    raise EOFError


def test_read_key_ignores_other_keys_and_echoes_the_answer() -> None:
    typed = keys("x", "S", "q")
    term, out, _ = recorded(getchar=lambda: next(typed))
    answer = term.read_key("go? › ", {"\n": "run", "s": "skip", "q": "quit"})
    assert answer == "skip"  # "x" is not a key; "S" is "s"
    assert out.getvalue() == "go? › skip\n"
    assert next(typed) == "q"  # read no further than the answer


@pytest.mark.parametrize(("typed", "answer"), [(("\r",), "run"), ((), "quit"), (("",), "quit")])
def test_read_key_enter_and_end_of_input(typed: tuple[str, ...], answer: str) -> None:
    it = keys(*typed)
    term = Terminal(
        out=Console(file=io.StringIO(), width=80), getchar=lambda: next(it), quiet=False
    )
    assert term.read_key("› ", {"\n": "run", "s": "skip"}) == answer


def test_ctrl_c_at_a_prompt_answers_quit() -> None:
    def interrupted() -> str:
        raise KeyboardInterrupt

    term, out, _ = recorded(getchar=interrupted)
    assert term.read_key("› ", {"\n": "run"}) == "quit"
    assert out.getvalue() == "› quit\n"


def _terminal_on_a_tty(
    monkeypatch: pytest.MonkeyPatch, no_color: bool
) -> tuple[Terminal, io.StringIO]:
    # The Terminal's own Consoles, made to think they write to a colour terminal.
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    buf = io.StringIO()
    term = Terminal()
    term.out.file = buf
    return term, buf


@pytest.mark.parametrize("no_color", [False, True])
def test_no_color_leaves_out_every_colour(monkeypatch: pytest.MonkeyPatch, no_color: bool) -> None:
    term, buf = _terminal_on_a_tty(monkeypatch, no_color)
    term.success("stack is up")
    term.table([Column("status")], [["[green]exists[/]"]])
    term.json_block({"Action": "dynamodb:PutItem"})
    assert "stack is up" in buf.getvalue() and "PutItem" in buf.getvalue()
    assert bool(COLOUR.search(buf.getvalue())) is not no_color


def test_on_a_pipe_there_are_no_escape_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    buf = io.StringIO()  # not a terminal
    monkeypatch.setattr("sys.stdout", buf)
    term = Terminal()
    term.success("stack is up")
    term.table([Column("status")], [["[green]exists[/]"]])
    term.spin("making it…")  # no spinner off a terminal
    assert term._status is None
    assert "✓ stack is up" in buf.getvalue() and "exists" in buf.getvalue()
    assert not ESCAPE.search(buf.getvalue())


def test_json_is_plain_sorted_and_unwrapped(capsys: pytest.CaptureFixture[str]) -> None:
    Terminal().json({"b": "x" * 200, "a": 1})
    assert capsys.readouterr().out == '{\n  "a": 1,\n  "b": "' + "x" * 200 + '"\n}\n'


def test_debug_only_with_verbose() -> None:
    term, _, err = recorded()
    term.debug("quiet please")
    assert err.getvalue() == ""
    term, _, err = recorded(verbose=True)
    term.debug("said")
    assert err.getvalue() == "said\n"


def test_retry_lines_go_to_stderr_when_stdout_is_json_data() -> None:
    """A retry under --json (data_on_stdout) must not land between a script's JSON lines."""
    term, out, err = recorded()
    term.retrying("ThrottlingException from DescribeTable", 1.0)
    assert "ThrottlingException" in out.getvalue() and err.getvalue() == ""

    term, out, err = recorded()
    term.data_on_stdout = True
    term.retrying("ThrottlingException from DescribeTable", 1.0)
    assert out.getvalue() == "" and "ThrottlingException" in err.getvalue()


def test_every_json_option_marks_stdout_as_data() -> None:
    """Each command's --json goes through json_mode, so no command can forget it."""
    from pocctl.cli import main
    from pocctl.cli.app import json_mode

    flags = [
        (name, p)
        for name, cmd in main.commands.items()
        for p in cmd.params
        if "--json" in getattr(p, "opts", [])
    ]
    assert len(flags) >= 8
    assert all(p.callback is json_mode for _, p in flags), [n for n, p in flags]


def test_a_wait_no_step_ended_ends_with_the_command() -> None:
    """Its 'still …' ticker would otherwise go on printing after the command, into whatever
    stdout comes next (seen: a test-order --json in the same process)."""
    import click
    from click.testing import CliRunner

    from pocctl.cli import main

    seen: dict[str, Terminal] = {}

    @click.command("wait-and-return")
    @click.pass_obj
    def wait_and_return(app: Any) -> None:
        app.terminal.waiting("installing lambda1's requirements.txt (POC-Lambda-1)", 0.0)
        seen["terminal"] = app.terminal
        assert app.terminal._waits  # the wait is on while the command runs

    main.add_command(wait_and_return)
    try:
        assert CliRunner().invoke(main, ["wait-and-return"]).exit_code == 0
    finally:
        main.commands.pop("wait-and-return")
    assert seen["terminal"]._waits == {}
