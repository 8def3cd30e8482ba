"""The engine's progress on a recorded Terminal: headings, a line per step, the spinner."""

from __future__ import annotations

import io

from rich.console import Console

from pocctl import config, lab
from pocctl.cli.progress import ProgressReporter
from pocctl.cli.terminal import Terminal
from pocctl.engine import ABSENT, CREATE, DELETE, UPDATE, Reporter, SilentReporter, Step
from pocctl.resources.base import Change

CFG = config.parse("")
TASK = lab.task(3)
QUEUE = TASK.resources(CFG)[0]


def recorded(*, interactive: bool = False, verbose: bool = False) -> tuple[Terminal, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=100, highlight=False, force_terminal=interactive)
    return Terminal(out=console, err=console, verbose=verbose), out


def plain(out: io.StringIO) -> list[str]:
    return [line.rstrip() for line in out.getvalue().splitlines()]


def test_a_task_reads_heading_then_steps_then_totals() -> None:
    term, out = recorded()
    progress = ProgressReporter(term)
    steps = [
        Step(TASK, QUEUE, CREATE, seconds=1.25),
        Step(TASK, QUEUE, UPDATE, [Change("DelaySeconds", 0, 5)], seconds=0.5),
    ]
    progress.task_started(TASK)
    for step in steps:
        progress.step_done(step)
    progress.task_done(TASK, steps, 2.0)
    assert plain(out) == [
        f"Task 3 · {TASK.title}",
        f"  + created      {QUEUE.name} 1.2 s",
        f"  ~ updated      {QUEUE.name} 0.5 s",
        "      DelaySeconds: 0 → 5",
        "  Task 3: 1 created, 1 updated in 2.0 s",
    ]


def test_removing_headings_say_what_is_removed() -> None:
    term, out = recorded()
    progress = ProgressReporter(term, removing=True)
    progress.task_started(TASK)
    progress.step_done(Step(TASK, QUEUE, DELETE, seconds=0.3))
    progress.step_done(Step(TASK, QUEUE, ABSENT))
    assert plain(out) == [
        f"Task 3 · removing {TASK.summary}",
        f"  - deleted      {QUEUE.name} 0.3 s",
        f"  · already gone {QUEUE.name}",
    ]


def test_without_headings_only_steps_and_totals_show() -> None:
    term, out = recorded()
    progress = ProgressReporter(term, headings=False)
    progress.task_started(TASK)
    progress.task_done(TASK, [], 0.0)
    assert plain(out) == ["  Task 3: nothing to do in 0.0 s"]


def test_verbose_shows_each_arn_under_its_step() -> None:
    term, out = recorded(verbose=True)
    arn = "arn:aws:sqs:us-east-1:123456789012:POC-Queue"
    ProgressReporter(term).step_done(Step(TASK, QUEUE, CREATE, identity={"arn": arn}))
    assert plain(out)[1] == f"      {arn}"


def test_the_spinner_names_what_is_in_flight_and_stops_when_nothing_is() -> None:
    term, _ = recorded(interactive=True)
    progress = ProgressReporter(term)
    progress.in_flight(["a", "b", "c", "d", "e"])
    assert term._status is not None
    assert str(term._status.status) == "making a, b, c and 2 more…"
    progress.in_flight(["a"])
    assert str(term._status.status) == "making a…"
    progress.in_flight([])
    assert term._status is None


def test_warnings_go_to_the_terminal() -> None:
    term, out = recorded()
    ProgressReporter(term).warn("the trigger keeps reading from LATEST")
    assert plain(out) == ["warning: the trigger keeps reading from LATEST"]


def test_both_reporters_have_everything_the_engine_calls() -> None:
    # A Protocol lists its members; each reporter must have each one (the engine calls them
    # without looking first).
    members = [m for m in vars(Reporter) if not m.startswith("_")]
    assert {"in_flight", "warn", "info", "step_done"} <= set(members)
    for reporter in (SilentReporter, ProgressReporter):
        assert [m for m in members if not callable(getattr(reporter, m, None))] == []
