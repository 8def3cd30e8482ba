"""`pocctl walkthrough`: the lab's Tasks 1–10, one screen per task, and `pocctl task N --explain`.

Each screen says what the task builds and why, shows exactly what pocctl will send (each
resource's ``desired()``: the values ``create``/``update`` send) and what the engine would do
(``plan_one``, read-only), then asks; the run is the same ``Engine.up`` every command uses.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pocctl.cli import views
from pocctl.cli.app import EXIT_AWS, EXIT_INTERRUPTED, App
from pocctl.cli.terminal import Abort, Terminal, escape
from pocctl.engine import UNCHANGED, Step
from pocctl.lab import BUILD_TASKS, TASKS, TEARDOWN, TEARDOWN_TASK, TEST, TEST_TASK, Task

if TYPE_CHECKING:
    from pocctl.resources.base import Resource

# Tasks 9 and 10 build nothing; their screens say what they do instead.
_MORE = {
    1: "One departure from the lab: the lab also attaches AWS's managed policy "
    "AmazonAPIGatewayPushToCloudWatchLogs to the API role, which may read and write every log "
    "group of the account, for API Gateway's own logs. pocctl sets up no API logging, so it "
    "leaves it off: set api.cloudwatch_logs_policy to true in config.yaml to attach it as the "
    "lab does.",
    4: "After it runs, the lab's Step 4.4 tests the function with the console's SQS test "
    "event: the walkthrough offers it (t), and `pocctl lambda1 --test` runs it any time.",
    9: "Each hop is timed: accepted by the API, stored in the table by Lambda 1, published to "
    "the topic by Lambda 2. A temporary queue subscribed to the topic sees the notification, so "
    "no inbox is needed, and it is removed afterwards, whatever happens. The email to "
    "topic.notification_email arrives only once its subscription is confirmed (Step 6.2); on "
    "the embedded AWS, `pocctl inbox` shows it.",
}
_RUN, _SKIP, _QUIT, _INTERRUPTED = "run", "skip", "quit", "interrupted"


# -- where to look at a resource ------------------------------------------------------------------


def console_url(
    resource: Resource, identity: dict[str, Any], region: str, partition: str = "aws"
) -> str | None:
    """The AWS console page of a resource; None where there is none (or another partition)."""
    if partition != "aws":
        return None
    return resource.console_url(identity, region)


def cli_command(
    resource: Resource,
    identity: dict[str, Any],
    endpoint: str,
    region: str,
    credentials: list[str] | None = None,
) -> list[str] | None:
    """The AWS CLI command that shows a resource on another endpoint (the embedded AWS has no
    console), as argument pairs: ["aws", "--endpoint-url URL", …]; ``credentials``: what a fresh
    shell needs to sign as this run does (see ``cli_credentials``)."""
    args = resource.cli_args(identity)
    if args is None:
        return None
    # Quote each value; keep "--option value" together so a wrapped line never splits a pair.
    quoted = [" ".join(shlex.quote(w) for w in a.split(" ", 1)) for a in args]
    where = [f"--endpoint-url {shlex.quote(endpoint)}", f"--region {region}"]
    env = [c for c in credentials or [] if not c.startswith("--")]  # VAR=value, before `aws`
    options = [c for c in credentials or [] if c.startswith("--")]
    return [*env, "aws", *where, *options, *quoted]


def cli_credentials(app: App) -> list[str]:
    """What an `aws` command pasted into a fresh shell needs to sign as this run: the profile it
    used, or the embedded AWS's public key `testing` (never any other key: it may be secret)."""
    if app.options.profile and not app.options.local:
        return [f"--profile {shlex.quote(app.options.profile)}"]
    creds = app.aws.session.get_credentials()
    if creds is not None and creds.access_key == "testing":
        return ["AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing"]
    return []


def shell_lines(units: list[str], width: int) -> list[str]:
    """Join command units greedily into lines of at most ``width``, continued with `\\`."""
    lines: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current} {unit}" if current else unit
        prefix = "  " if lines else ""
        if current and len(prefix + candidate) + 2 > width:
            lines.append(prefix + current + " \\")
            current = unit
        else:
            current = candidate
    lines.append(("  " if lines else "") + current)
    return lines


# -- screens --------------------------------------------------------------------------------------


def _value(v: Any) -> str:
    if v is None:
        return "— (made by an earlier task)"
    return v if isinstance(v, str) else json.dumps(v)


def show_desired(app: App, resource: Resource) -> None:
    """What pocctl sends for ``resource``: its ``desired()``, scalars as rows, documents as JSON."""
    from pocctl.invoke import function_code
    from pocctl.resources import lambda_

    term, ctx = app.terminal, app.ctx
    want = resource.desired(ctx)
    term.line(f"  [bold]{views.titled(resource)}[/]")
    rows = [(k, _value(v)) for k, v in want.items() if not isinstance(v, (dict, list))]
    is_function = isinstance(resource, lambda_.Function)
    code = function_code(app.cfg, resource.which) if is_function else None  # type: ignore[attr-defined]
    if code is not None:
        rows.append(("code", f"zip of {_relative(code.path)}"))
    if not want:
        rows.append(("settings", "none: the name is all it needs"))
    term.settings(rows)
    for k, v in want.items():
        if isinstance(v, (dict, list)):
            term.line(f"    [dim]{escape(k)}[/]")
            term.json_block(v, indent=4)
    if code is not None:
        from pocctl.cli.codeview import show_code

        shown = code.module_file
        show_code(term, shown, code.handler, _relative(shown) if shown else "")


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def show_plan(term: Terminal, steps: list[Step]) -> None:
    for s in steps:
        term.line(views.plan_line(s))
        for change in s.changes:
            term.folded(str(change), indent=6, style="yellow")


def _plan(app: App, task: Task) -> list[Step]:
    _look_again(app)
    with app.engine(lock=False) as engine:
        return [engine.plan_one(task, r) for r in task.resources(app.cfg)]


def show_screen(app: App, task: Task) -> list[Step]:
    """Everything before the prompt: title, why, what will be sent, what will happen."""
    term = app.terminal
    term.rule(f"Task {task.number} of {len(TASKS)} · {task.title}")
    term.paragraph(" ".join(p for p in (task.why, _MORE.get(task.number)) if p))
    if task.action == TEST:
        _show_test_order(app)
        return []
    if task.action == TEARDOWN:
        _show_teardown(app)
        return []
    with app.guard():
        term.heading("What pocctl will send")
        for resource in task.resources(app.cfg):
            show_desired(app, resource)
        steps = _plan(app, task)
    term.heading("What happens next")
    show_plan(term, steps)
    return steps


def _show_test_order(app: App) -> None:
    from pocctl import orders
    from pocctl.aws import AwsError

    term = app.terminal
    term.heading("What happens next")
    with app.guard():
        try:
            url: str | None = orders.find_invoke_url(app.ctx)
        except AwsError as e:
            url = None
            term.line(f"  [yellow]{escape(str(e))}[/]: Task 8 makes it; test-order would fail")
    term.line("  POST one order to the API's invoke URL:")
    if url:
        term.folded(url, indent=4)
    term.json_block(json.loads(orders.default_body(0, "RUN")), indent=4)
    term.paragraph(
        f"then watch for it in table {app.cfg.table.name} (stored once) and on topic "
        f"{app.cfg.topic.name} (notified once), for up to 60 s",
        indent=2,
    )


def _show_teardown(app: App) -> None:
    term = app.terminal
    term.heading("What happens next")
    _look_again(app)
    with app.guard(), app.engine(lock=False) as engine:
        steps = [engine.plan_one(t, r) for t in BUILD_TASKS for r in t.resources(app.cfg)]
    for s in reversed(steps):
        term.line(views.teardown_line(s))


def _look_again(app: App) -> None:
    """Drop the run's shared reads: the user may have changed things (in the console, in
    another terminal) while reading the last screen."""
    app.ctx.cache.clear()


def show_made(app: App, steps: list[Step]) -> None:
    """Names, ARNs, and where to look: the console, or the AWS CLI on another endpoint."""
    term = app.terminal
    endpoint = app.endpoint_url
    region = app.ctx.region
    term.heading("What it made")
    for s in steps:
        r, ident = s.resource, s.identity
        term.line(f"  [bold]{views.titled(r)}[/]")
        if ident.get("arn"):
            term.folded(str(ident["arn"]), indent=4)
        address, pending, invoke_url = r.address(ident), r.pending(ident), r.invoke_url(ident)
        if address:
            term.folded(address, indent=4)
        if pending:
            term.line(f"    [yellow]{escape(pending)}[/]")
        if endpoint:
            units = cli_command(r, ident, endpoint, region, cli_credentials(app))
            if units:
                term.shell(shell_lines(units, term.out.width - 4), indent=4)
        else:
            url = console_url(r, ident, region, app.aws.partition)
            if url:
                term.folded(url, indent=4, style="cyan", link=url)
        if invoke_url:
            term.line("    invoke URL:")
            term.folded(invoke_url, indent=4)


# -- running --------------------------------------------------------------------------------------


def run_build_task(app: App, task: Task) -> list[Step]:
    from pocctl.cli.app import _hint
    from pocctl.cli.progress import ProgressReporter
    from pocctl.engine import StepFailed

    _look_again(app)
    # No task headings: the screen shows the task.
    with app.engine(reporter=ProgressReporter(app.terminal, headings=False)) as engine:
        try:
            steps = engine.up([task])
        except StepFailed as e:
            hint = _hint(e.cause)
            app.terminal.abort(
                str(e),
                hint=(f"{hint}; then " if hint else "")
                + f"`{app.cmd('walkthrough')}` resumes at Task {task.number}",
                code=EXIT_AWS,
            )
    show_made(app, steps)
    return steps


def first_not_done(app: App) -> int:
    """The first build task whose resources are not all there and unchanged (AWS is asked, not
    the state file); the test task (9) when Tasks 1–8 are done (Task 9 can always run again)."""
    _look_again(app)
    with app.engine(lock=False) as engine:
        for task in BUILD_TASKS:
            if any(engine.plan_one(task, r).action != UNCHANGED for r in task.resources(app.cfg)):
                return task.number
    return TEST_TASK.number


def _ask(term: Terminal, task: Task, interactive: bool) -> str:
    if not interactive:
        return _RUN
    term.line()
    return term.read_key(
        f"Enter: run Task {task.number} · s: skip · q: quit › ",
        {"\n": _RUN, "r": _RUN, "s": _SKIP, "q": _QUIT},
        interrupt=_INTERRUPTED,
    )


def walkthrough(app: App, *, start: int | None, yes: bool) -> None:
    term = app.terminal
    interactive = not yes and sys.stdin.isatty()
    app.announce()
    with app.guard():
        first = start if start is not None else first_not_done(app)
        term.rule("pocctl walkthrough")
        term.paragraph(
            "The lab's Tasks 1–10, one screen each: what the task builds and why, exactly "
            "what pocctl will send, and what it made."
        )
    if start is None and first > 1:
        done = "Task 1 is" if first == 2 else f"Tasks 1–{first - 1} are"
        term.paragraph(f"{done} done: resuming at Task {first} (--from N starts elsewhere).")
    if not interactive:
        why = "--yes" if yes else "no terminal"
        term.paragraph(f"Running straight through ({why}).")
    skipped: list[int] = []
    failed = False
    for task in (t for t in TASKS if t.number >= first):
        with term.paged():  # a screen taller than the window waits for space, as `more`
            show_screen(app, task)
        if task.action == TEARDOWN:
            _teardown(app, interactive=interactive, yes=yes)
            break
        answer = _ask(term, task, interactive)
        if answer in (_QUIT, _INTERRUPTED):
            term.paragraph(
                f"Stopped before Task {task.number}; what was made is kept. "
                f"`{app.cmd('walkthrough')}` resumes at the first task not done."
            )
            if answer == _INTERRUPTED:  # Ctrl-C: 130, as anywhere else
                raise Abort(EXIT_INTERRUPTED)
            return
        if answer == _SKIP:
            skipped.append(task.number)
            term.line(f"[dim]skipped Task {task.number}[/]")
            continue
        term.line(f"\n[bold]▶ running Task {task.number}[/]")
        with _interruptible(app, task):
            if task.action == TEST:
                failed = not _run_test_order(app)
            else:
                run_build_task(app, task)
                _offer_step_4_4(app, task, interactive)
    done = "walkthrough finished" + (
        f"; skipped: {', '.join(f'Task {n}' for n in skipped)}" if skipped else ""
    )
    if failed:
        term.abort(
            f"{done}, but Task 9 failed (see above)",
            hint=f"`{app.cmd('status')}` shows what is missing; "
            f"`{app.cmd('test-order')}` tries again",
            code=EXIT_AWS,
        )
    term.success(done)


def _offer_step_4_4(app: App, task: Task, interactive: bool) -> None:
    """After Task 4, the lab's Step 4.4: invoke Lambda 1 with an SQS test event, show the
    result, its log tail and the row it stored (`pocctl lambda1 --test`)."""
    if task.command != "lambda1" or not interactive:
        return
    term = app.terminal
    term.line()
    answer = term.read_key(
        "t: test it as the lab's Step 4.4 (an SQS test event) · Enter: go on › ",
        {"t": "test", "\n": "on", "r": "on", "s": "on", "q": "on"},
    )
    if answer != "test":
        return
    from pocctl.cli.invoke import run_lambda1_test

    term.line("\n[bold]▶ Step 4.4[/]")
    try:
        run_lambda1_test(app)
    except Abort:  # already said why; the walkthrough goes on to Task 5
        pass


def _run_test_order(app: App) -> bool:
    from pocctl.cli.test_order import run_test_order

    try:
        return run_test_order(app)
    except Abort:  # already said why; the walkthrough goes on to Task 10
        return False


def _teardown(app: App, *, interactive: bool, yes: bool) -> None:
    from pocctl.cli.down import run_down

    term = app.terminal
    answer = ""
    if interactive:
        term.line()
        answer = term.read_key(
            f"Tear everything down in {app.ctx.region}? y: yes · n: keep it › ",
            {"y": "yes", "n": "no", "\n": "no", "q": "no"},
            interrupt=_INTERRUPTED,
        )
        go = answer == "yes"
    else:
        go = yes
        if not yes:
            term.paragraph(
                f"Not torn down: without a terminal, that takes --yes "
                f"(or `{app.cmd('down', '--yes')}`)."
            )
    if not go:
        term.paragraph(f"Kept the stack: `{app.cmd('down')}` removes it when you are done.")
        if answer == _INTERRUPTED:
            raise Abort(EXIT_INTERRUPTED)
        return
    term.line("\n[bold]▶ running Task 10[/]")
    with _interruptible(app, TEARDOWN_TASK):
        run_down(app, yes=True)


@contextlib.contextmanager
def _interruptible(app: App, task: Task) -> Iterator[None]:
    """Ctrl-C during a run: say what is kept and how to go on, instead of click's "Aborted!"."""
    term = app.terminal
    try:
        yield
    except KeyboardInterrupt:
        term.stop_spinner()
        term.wait_over()
        term.line()
        term.paragraph(
            f"Interrupted during Task {task.number}: what it made so far is kept (the state file "
            f"is written after each resource). `{app.cmd('walkthrough')}` resumes at the first "
            "task not done."
        )
        raise Abort(EXIT_INTERRUPTED) from None


def explain(app: App, task: Task) -> None:
    """One task's screen, without running it (read-only calls only)."""
    show_screen(app, task)
    app.terminal.line(
        f"\n[dim]Nothing was changed. `{escape(app.cmd('task', str(task.number)))}` runs it; "
        f"`{escape(app.cmd('walkthrough', '--from', str(task.number)))}` walks from here.[/]"
    )


@click.command("walkthrough")
@click.option(
    "--from",
    "start",
    type=click.IntRange(1, 10),
    metavar="N",
    help="start at Task N  [default: the first task not done]",
)
@click.option("-y", "--yes", is_flag=True, help="run straight through, tear down at the end")
@click.pass_obj
def walkthrough_command(app: App, start: int | None, yes: bool) -> None:
    """Walk through the lab's Tasks 1–10, one screen per task.

    Each screen explains the task, shows exactly what pocctl will send and
    what it would change, then asks: Enter runs it, s skips it, q quits (what
    was made is kept; the next walkthrough resumes at the first task not done).
    Without a terminal, or with --yes, it runs straight through.

    \b
    Examples:
      pocctl walkthrough
      pocctl walkthrough --from 4
      pocctl --local walkthrough --yes > walkthrough.txt
    """
    walkthrough(app, start=start, yes=yes)


COMMANDS = [walkthrough_command]
