"""The engine's progress on the Terminal: a heading per task, a line per resource, a spinner
naming what is being made."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pocctl.cli.terminal import Terminal, escape
from pocctl.cli.views import step_line, task_summary
from pocctl.engine import CREATE, DELETE, UPDATE

if TYPE_CHECKING:
    from pocctl.engine import Step
    from pocctl.lab import Task

_DOING = {CREATE: "creating", UPDATE: "updating", DELETE: "deleting"}


class ProgressReporter:
    """The engine's Reporter. ``removing``: `down` walks the build tasks backwards, so headings
    say what is removed (the tasks' titles, "Creating …", would read wrong); ``headings``:
    False where the screen already shows the task (the walkthrough)."""

    def __init__(self, term: Terminal, *, removing: bool = False, headings: bool = True) -> None:
        self.term = term
        self.removing = removing
        self.headings = headings

    def task_started(self, task: Task) -> None:
        if self.headings:
            heading = f"removing {task.summary}" if self.removing else task.title
            self.term.line(f"[bold]Task {task.number}[/] · {escape(heading)}")

    def step_started(self, step: Step) -> None:
        verb = _DOING.get(step.action)
        if verb:
            self.term.stop_spinner()
            self.term.spin(f"{verb} {escape(step.resource.name)}…")

    def step_done(self, step: Step) -> None:
        self.term.wait_over(step.resource.name)
        self.term.stop_spinner()
        self.term.line(step_line(step))
        arn = step.identity.get("arn") or step.identity.get("url") or ""
        if self.term.verbose and arn:
            self.term.line(f"      [dim]{escape(arn)}[/]")
        for change in step.changes:
            self.term.line(f"      [yellow]{escape(str(change))}[/]")

    def in_flight(self, names: list[str]) -> None:
        """A parallel `up`: one spinner naming what is being made right now."""
        if not names:
            self.term.stop_spinner()
            return
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        self.term.spin(f"making {escape(shown)}…")

    def task_done(self, task: Task, steps: list[Step], seconds: float) -> None:
        summary = task_summary(steps)
        self.term.line(f"  [dim]Task {task.number}: {summary} in {seconds:.1f} s[/]")

    def warn(self, text: str) -> None:
        self.term.warn(text)

    def info(self, text: str) -> None:
        self.term.info(text)
