"""One command per lab task (`pocctl iam`, `pocctl table`, …) and `pocctl task N`."""

from __future__ import annotations

import click

from pocctl.cli.app import App
from pocctl.lab import BUILD_TASKS, TASKS, Task


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


@click.command("task")
@click.argument("number", type=click.IntRange(1, 10))
@click.pass_obj
def task_command(app: App, number: int) -> None:
    """Run lab task NUMBER (1–10), the same as its own command.

    \b
    Example:
      pocctl task 4        # the same as: pocctl lambda1
    """
    task = TASKS[number - 1]
    if task.number == 10:
        from pocctl.cli.down import run_down

        run_down(app, yes=False)
        return
    if task.number == 9:
        from pocctl.cli.test_order import run_test_order

        run_test_order(app)
        return
    run_tasks(app, [task])


COMMANDS = [*(_task_command(t) for t in BUILD_TASKS), task_command]
