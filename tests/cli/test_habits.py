"""The CLI follows its users' habits (issue 13, item 5), tried as they would: the real CLI as a
subprocess or under a pseudo-terminal, against one `pocctl local` shared by the module (reset
between tests). Global options after the subcommand, hints that work when pasted, the first line
naming the target, `down` on an empty account, a refused connection, `plan --json` /
`--detailed-exitcode`, piped output, Ctrl-C, waits said with their seconds, paging."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import click
import pexpect
import pyte
import pytest
from support import GUARD_SITE, subprocess_env
from support.localproc import LocalProcess
from support.workspace import Workspace, make_workspace
from support.wtkit import plain

from pocctl.cli import main
from pocctl.cli.globalopts import hoist

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProcess]:
    server = LocalProcess("--port", "0", "--admin")
    yield server
    server.stop()


@pytest.fixture
def lws(tmp_path: Path, local: LocalProcess) -> Workspace:
    req = urllib.request.Request(f"{local.endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:  # a clean embedded AWS per test
        resp.read()
    return make_workspace(tmp_path, local.endpoint)


def pocctl(
    ws: Workspace, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m pocctl ARGS` in the workspace, no endpoint in the environment: only what the
    arguments say (a pasted command line), stdout a pipe."""
    environ = subprocess_env(**(env or {}))
    environ.pop("COLUMNS", None)  # a pipe with no width asked for
    return subprocess.run(
        [sys.executable, "-m", "pocctl", *args],
        cwd=ws.dir,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def pasted(ws: Workspace, command: str) -> subprocess.CompletedProcess[str]:
    """A `pocctl …` command line as printed, run as if pasted into a shell."""
    words = shlex.split(command)
    assert words[0] == "pocctl", command
    return pocctl(ws, *words[1:])


def suggested(text: str, words: str) -> str:
    """The `pocctl … WORDS` a message suggests (between backquotes)."""
    m = re.search(r"`(pocctl [^`]*?" + re.escape(words) + r")`", text)
    assert m, f"no `pocctl … {words}` in {text!r}"
    return m.group(1)


# -- global options after the subcommand ---------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "parsed"),
    [
        (["up", "--local"], ["--local=", "up"]),
        (["up", "--local", "4567"], ["--local=4567", "up"]),
        (["--local", "up"], ["--local=", "up"]),  # not "up" taken as the port
        (
            ["status", "--region", "eu-west-1", "--json"],
            ["--region", "eu-west-1", "status", "--json"],
        ),
        (["up", "--region=eu-west-1", "-v"], ["--region=eu-west-1", "-v", "up"]),
        # a subcommand option's value stays its value, even when it looks like a global option
        (["test-order", "--body", "--local", "-q"], ["-q", "test-order", "--body", "--local"]),
        (["up", "--", "--local"], ["up", "--", "--local"]),  # after `--`, nothing is an option
        (["local", "--port", "5", "--profile", "p"], ["--profile", "p", "local", "--port", "5"]),
    ],
)
def test_global_options_are_moved_before_the_subcommand(argv: list[str], parsed: list[str]) -> None:
    assert hoist(main, click.Context(main), argv) == parsed


def test_an_option_the_subcommand_defines_itself_keeps_its_meaning_there() -> None:
    @click.group()
    @click.option("--region")
    def root(region: str | None) -> None: ...

    @root.command()
    @click.option("--region")
    def own(region: str | None) -> None: ...

    @root.command()
    def other() -> None: ...

    ctx = click.Context(root)
    assert hoist(root, ctx, ["own", "--region", "x"]) == ["own", "--region", "x"]
    assert hoist(root, ctx, ["other", "--region", "x"]) == ["--region", "x", "other"]


def test_options_after_the_subcommand_reach_the_stack_and_the_first_line_says_where(
    lws, local
) -> None:  # type: ignore[no-untyped-def]
    r = pocctl(lws, "up", "--local", local.port, "--region", "eu-west-1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == (
        f"account {ACCOUNT} · region eu-west-1 · endpoint http://127.0.0.1:{local.port}"
    )
    table = boto3.client("dynamodb", region_name="eu-west-1", endpoint_url=local.endpoint)
    assert table.describe_table(TableName="orders")["Table"]["TableStatus"] == "ACTIVE"
    # POCCTL_LOCAL_PORT names the port of a bare --local; the options follow `status` too.
    r = pocctl(
        lws,
        "status",
        "--json",
        "--local",
        "--region",
        "eu-west-1",
        env={"POCCTL_LOCAL_PORT": local.port},
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["region"] == "eu-west-1"
    assert report["endpoint"] == f"http://127.0.0.1:{local.port}"
    assert {row["status"] for row in report["resources"]} == {"exists"}


# -- hints that work when pasted -----------------------------------------------------------------


def test_a_hint_repeats_the_global_options_and_works_when_pasted(lws, local) -> None:  # type: ignore[no-untyped-def]
    r = pocctl(lws, "task", "2", "--explain", "--local", local.port, "--region", "eu-west-1")
    assert r.returncode == 0, r.stderr
    hint = suggested(r.stdout, "task 2")
    assert hint == f"pocctl --local {local.port} --region eu-west-1 task 2"
    ran = pasted(lws, hint)
    assert ran.returncode == 0, ran.stderr
    table = boto3.client("dynamodb", region_name="eu-west-1", endpoint_url=local.endpoint)
    assert table.describe_table(TableName="orders")["Table"]["TableName"] == "orders"


def test_a_hint_from_below_the_cli_gets_the_options_too(lws, local) -> None:  # type: ignore[no-untyped-def]
    """The resource layer, which knows no CLI options, says "run `pocctl iam` (Task 1) first";
    what the user reads names this run's endpoint, and pasted, it makes the roles."""
    r = pocctl(lws, "lambda1", "--local", local.port)
    assert r.returncode == 1
    hint = suggested(r.stderr, "iam")
    assert hint == f"pocctl --local {local.port} iam"
    assert pasted(lws, hint).returncode == 0
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=local.endpoint)
    assert iam.get_role(RoleName="Lambda-SQS-DynamoDB")["Role"]["RoleName"]


# -- a refused connection ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_connection_fails_at_once_with_a_hint(lws, capsys) -> None:  # type: ignore[no-untyped-def]
    port = free_port()  # closed again: nothing listens there
    start = time.monotonic()
    r = pocctl(lws, "status", "--local", str(port))
    took = time.monotonic() - start
    assert r.returncode == 1
    assert "Could not connect to the endpoint URL" in r.stderr
    assert f"nothing listens on port {port}: is `pocctl local` running?" in r.stderr
    assert f"`pocctl local --port {port}` starts it there" in r.stderr
    # A behaviour, not a speed target: botocore's backoff alone would take ~20 s. The process
    # start (imports) is most of this; the bound leaves room for a loaded machine.
    assert took < 5, took
    with capsys.disabled():
        print(f"\nrefused connection: pocctl status exited after {took:.2f} s")


# -- plan --json, --detailed-exitcode; piped output ----------------------------------------------


def test_plan_detailed_exitcode_json_and_piped_output_whole_and_unpadded(lws, local) -> None:  # type: ignore[no-untyped-def]
    r = pocctl(lws, "plan", "--local", local.port, "--detailed-exitcode", "--json")
    assert r.returncode == 2, r.stderr  # everything to create
    report = json.loads(r.stdout)
    assert report["changes"] is True
    assert report["counts"] == {"create": 18, "update": 0, "unchanged": 0}
    up = pocctl(lws, "up", "--local", local.port)
    assert up.returncode == 0, up.stderr
    plan = pocctl(lws, "plan", "--local", local.port, "--detailed-exitcode")
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.splitlines()[-1] == "0 to create, 0 to update, 18 unchanged"
    # Piped (stdout is not a terminal): every ARN and ID whole on one line, no trailing blanks.
    status = pocctl(lws, "status", "--local", local.port)
    report = json.loads(pocctl(lws, "status", "--local", local.port, "--json").stdout)
    idents = [row["arn"] or row["id"] for row in report["resources"] if row["arn"] or row["id"]]
    assert len(idents) >= 15
    for name, text in (("up", up.stdout), ("status", status.stdout)):
        lines = text.splitlines()
        for ident in idents:
            assert any(ident in line for line in lines), f"{name}: {ident} not whole on a line"
    assert report["invoke_url"] in status.stdout.splitlines()[-1]
    for name, text in (("up", up.stdout), ("status", status.stdout), ("plan", plan.stdout)):
        padded = [line for line in text.splitlines() if line != line.rstrip()]
        assert padded == [], f"{name}: lines with trailing blanks"
        assert "\x1b" not in text
    # A change made behind pocctl's back: 2 again.
    sqs = lws.client("sqs")
    sqs.set_queue_attributes(
        QueueUrl=sqs.get_queue_url(QueueName="POC-Queue")["QueueUrl"],
        Attributes={"VisibilityTimeout": "31"},
    )
    assert pocctl(lws, "plan", "--local", local.port, "--detailed-exitcode").returncode == 2
    # An error is 1, never 2 (which means changes), even a config error (2 elsewhere).
    lws.config.write_text("handlers_dir: handlers\nqueue: [\n")
    r = pocctl(lws, "plan", "--local", local.port, "--detailed-exitcode")
    assert r.returncode == 1, r.stderr
    assert pocctl(lws, "plan", "--local", local.port).returncode == 2  # without the flag


# -- down ----------------------------------------------------------------------------------------


def spawn(ws: Workspace, *args: str) -> pexpect.spawn:  # type: ignore[type-arg]
    return ws.terminal(*args, endpoint=False, TERM="xterm-256color")


def test_down_on_an_empty_account_says_so_and_asks_nothing(lws, local) -> None:  # type: ignore[no-untyped-def]
    child = spawn(lws, "down", "--local", local.port)
    child.expect(pexpect.EOF)
    child.close()
    out = plain(child.before)
    assert child.exitstatus == 0, out
    assert f"account {ACCOUNT} · region us-east-1 · endpoint {local.endpoint}" in out
    assert "nothing to remove: no resource of the stack exists in us-east-1" in out
    assert "[y/N]" not in out


def test_down_lists_what_it_will_delete_before_asking(lws, local) -> None:  # type: ignore[no-untyped-def]
    assert pocctl(lws, "up", "--local", local.port).returncode == 0
    child = spawn(lws, "down", "--local", local.port)
    child.expect(r"\[y/N\]: ")
    before = plain(child.before)
    assert "down deletes 18 resources:" in before
    for line in (
        "- delete    api POC-API",
        "- delete    function POC-Lambda-1",
        "- delete    table orders",
    ):
        assert line in before
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert lws.client("lambda").get_function(FunctionName="POC-Lambda-1")


# -- Ctrl-C --------------------------------------------------------------------------------------


def screen_of(raw: str) -> list[str]:
    """What an 80 × 24 terminal shows once ``raw`` (escapes and all) is written to it."""
    screen = pyte.Screen(80, 24)
    pyte.Stream(screen).feed(raw)  # the pty wrote \r\n already
    return [line.rstrip() for line in screen.display]


def test_ctrl_c_during_up_exits_130_saying_what_was_made_and_the_hint_finishes(
    ws, call_recorder
) -> None:  # type: ignore[no-untyped-def]
    """`up` is held at CreateFunction by the server (so the spinner is showing, and Tasks 1–3
    are made); Ctrl-C then: no spinner left on the screen, one line saying what was made and
    how to finish, exit 130. Pasted, the finishing command completes the stack."""
    held, release = threading.Event(), threading.Event()

    def gate(op: str) -> None:
        if op == "POST /2015-03-31/functions":
            held.set()
            release.wait(30)

    call_recorder.gate = gate
    child = spawn(ws, "--endpoint-url", ws.endpoint, "up", "--sequential")
    child.logfile_read = io.StringIO()
    try:
        assert held.wait(60), child.logfile_read.getvalue()
        child.expect("creating POC-Lambda-1…")  # the spinner
        child.sendintr()
        child.expect(r"stopped: made [^\r\n]*", timeout=30)
        line = plain(child.after)
        release.set()  # the call in flight ends on its own
        child.expect(pexpect.EOF, timeout=30)
        child.close()
    finally:
        release.set()
        call_recorder.gate = None
        child.close(force=True)
    assert child.exitstatus == 130
    screen = screen_of(child.logfile_read.getvalue())
    assert not any("creating POC-Lambda-1" in row for row in screen), screen
    assert any(row.startswith("stopped: made") for row in screen), screen
    assert "the table orders" in line and "queues POC-Queue-DLQ and POC-Queue" in line, line
    assert "the roles Lambda-SQS-DynamoDB, Lambda-DynamoDBStreams-SNS and APIGateway-SQS" in line
    up = suggested(line, " up")
    assert up == f"pocctl --endpoint-url {ws.endpoint} up"
    assert f"`pocctl --endpoint-url {ws.endpoint} down` removes them" in line
    r = pasted(ws, up)
    assert r.returncode == 0, r.stderr
    assert "stack is up" in r.stdout


# -- the walkthrough fits the window -------------------------------------------------------------

MORE = r"-- more -- space: next page"


def test_a_walkthrough_screen_taller_than_the_window_pages_and_the_result_stays(lws, local) -> None:  # type: ignore[no-untyped-def]
    child = spawn(lws, "walkthrough", "--local", local.port)
    child.logfile_read = io.StringIO()
    try:
        # Task 1's screen (three policy documents) is taller than 24 rows: the first page
        # stops with the window full, its first line still at the top.
        child.expect(MORE)
        screen = screen_of(child.logfile_read.getvalue())
        assert screen[0].startswith(f"account {ACCOUNT} · region us-east-1"), screen
        assert screen[-1].startswith("-- more --"), screen
        child.send(" ")
        while child.expect([MORE, r"Enter: run Task 1 · s: skip · q: quit › "]) == 0:
            child.send(" ")
        assert "+ create     role APIGateway-SQS" in plain(child.logfile_read.getvalue())
        child.send("\r")  # run Task 1
        # Its result is on the window, and stays there until a key: the next screen waits.
        child.expect(MORE)
        screen = screen_of(child.logfile_read.getvalue())
        shown = "\n".join(screen)
        assert "APIGateway-SQS" in shown and "iam get-role" in shown, screen
        assert "Task 2 of 10" not in shown
        child.send("q")  # stop paging: the rest of the screen at once, then the prompt
        child.expect(r"Enter: run Task 2 · s: skip · q: quit › ")
        assert "Task 2 of 10 · Creating a DynamoDB table" in plain(child.before)
        child.send("q")
        child.expect(pexpect.EOF)
        child.close()
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    # An `aws` command the screen showed, pasted into a fresh shell (no AWS_* variables).
    text = plain(child.logfile_read.getvalue())
    m = re.search(
        r"(AWS_ACCESS_KEY_ID=testing .*?\\\n(?:.*\\\n)*.*--role-name APIGateway-SQS)", text
    )
    assert m, text
    fresh = {
        "PATH": os.environ["PATH"],
        "HOME": str(lws.dir),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "PYTHONPATH": str(GUARD_SITE),  # the loopback guard, in the AWS CLI's Python too
    }
    r = subprocess.run(
        ["bash", "-c", m.group(1)], env=fresh, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, (m.group(1), r.stderr)
    assert json.loads(r.stdout)["Role"]["RoleName"] == "APIGateway-SQS"


# -- waits say what they wait on, and for how long -----------------------------------------------


def until(condition, timeout: float = 10):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return value


def test_a_wait_without_a_spinner_says_what_it_waits_on_and_the_seconds_elapsed() -> None:
    """A pipe or a log has no spinner: a wait that has lasted 2 s gets a line, as Terraform's
    "Still creating... [10s elapsed]", and no more once it is over."""
    from rich.console import Console

    from pocctl.cli.terminal import Terminal

    out = io.StringIO()
    term = Terminal(
        out=Console(file=out, width=80, soft_wrap=True), err=Console(file=io.StringIO())
    )
    term.waiting("waiting for function POC-Lambda-1 to become Active", 12.0)
    said = until(lambda: out.getvalue())
    assert said == "    … still waiting for function POC-Lambda-1 to become Active [12s elapsed]\n"
    term.wait_over("POC-Lambda-1")
    until(lambda: term._ticker is None)  # nothing left to say: the ticker has ended
    term.waiting("waiting for table orders to become ACTIVE", 0.0)  # new: not said yet
    assert out.getvalue() == said
    term.wait_over()


def test_the_local_banner_hints_work_in_a_fresh_shell(lws, local) -> None:  # type: ignore[no-untyped-def]
    """`pocctl local --port 0` picked a port: its banner says `--local PORT`, and its export line
    sets AWS_DEFAULT_REGION too (what boto3 and AWS CLI v1 read)."""
    banner = local.output
    assert f"  pocctl --local {local.port} up" in banner.splitlines()
    export = next(x for x in banner.splitlines() if x.strip().startswith("export "))
    assert "AWS_DEFAULT_REGION=us-east-1" in export and "AWS_REGION=us-east-1" in export
    aws = next(x for x in banner.splitlines() if " aws --endpoint-url" in x)
    assert aws.strip().startswith("AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws")
    assert "--region us-east-1" in aws
    # The banner's own suggestion, pasted, reaches the server.
    hint = next(x.strip() for x in banner.splitlines() if x.strip().endswith(" up"))
    r = pasted(lws, hint)
    assert r.returncode == 0, r.stderr
