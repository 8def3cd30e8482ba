"""One command per lab task (`pocctl iam`, `pocctl table`, …) and `pocctl task N`."""

from __future__ import annotations

import click

from pocctl import lab
from pocctl.cli.app import App
from pocctl.lab import BUILD_TASKS, TEARDOWN, TEST, Task


def run_tasks(app: App, tasks: list[Task]) -> None:
    with app.engine() as engine:
        engine.up(tasks)


def _task_command(task: Task) -> click.Command:
    @click.pass_obj
    def command(app: App) -> None:
        run_tasks(app, [task])

    command.__doc__ = (
        f"Task {task.number}: {task.summary}.\n\n\b\nExample:\n  pocctl {task.command}"
    )
    return click.command(task.command, help=command.__doc__)(command)


@click.command("lambda1")
@click.option("--test", is_flag=True, help="then invoke it with a sample SQS event (Step 4.4)")
@click.pass_obj
def lambda1_command(app: App, test: bool) -> None:
    """Task 4: POC-Lambda-1 and its SQS trigger.

    With --test, invoke it with a sample SQS event and check the row it stored
    (the lab's Step 4.4).

    \b
    Examples:
      pocctl lambda1
      pocctl lambda1 --test
    """
    run_tasks(app, [lab.by_command("lambda1")])
    if test:
        from pocctl.cli.invoke import run_lambda1_test

        run_lambda1_test(app)


@click.command("task")
@click.argument("number", type=click.IntRange(1, 10))
@click.option("--explain", is_flag=True, help="show what it would send and do; run nothing")
@click.pass_obj
def task_command(app: App, number: int, explain: bool) -> None:
    """Run lab task NUMBER (1–10), the same as its own command.

    \b
    Examples:
      pocctl task 4             # the same as: pocctl lambda1
      pocctl task 4 --explain   # its walkthrough screen, without running it
    """
    task = lab.task(number)
    if explain:
        from pocctl.cli.walkthrough import explain as explain_task

        explain_task(app, task)
        return
    if task.action == TEARDOWN:
        from pocctl.cli.down import run_down

        run_down(app, yes=False)
        return
    if task.action == TEST:
        from pocctl.cli.test_order import run_test_order

        run_test_order(app)
        return
    run_tasks(app, [task])


COMMANDS = [
    *(lambda1_command if t.command == "lambda1" else _task_command(t) for t in BUILD_TASKS),
    task_command,
]
