"""The parallel `up`: the resources' needs (Resource.needs) are a real, acyclic graph that the
lab's order honours; the engine runs independent resources at the same time, never starts one
before its needs are made, shows the run in the lab's order, and on a failure starts nothing new
and names the first failure in the lab's order."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from pocctl import config, lab
from pocctl.engine import CREATE, Engine, SilentReporter, StepFailed
from pocctl.lab import Task
from pocctl.resources.base import Context, Observed, Resource, Target
from pocctl.state import State

BARRIER_TIMEOUT = 10.0


def test_every_need_names_a_resource_of_the_lab() -> None:
    cfg = config.parse("topic:\n  notification_email: me@example.com\n")
    resources = [r for _, r in lab.all_resources(cfg)]
    keys = [r.key for r in resources]
    assert any(r.needs for r in resources)
    for r in resources:
        assert set(r.needs) <= set(keys), (r.key, r.needs)


def test_the_labs_order_makes_every_need_first() -> None:
    cfg = config.parse("topic:\n  notification_email: me@example.com\n")
    resources = [r for _, r in lab.all_resources(cfg)]
    keys = [r.key for r in resources]
    for r in resources:
        for need in r.needs:
            assert keys.index(need) < keys.index(r.key), f"{need} must come before {r.key}"


class FakeAws:
    account_id = "123456789012"
    region = "us-east-1"
    partition = "aws"


class Fake(Resource):
    """Made by create(), which runs ``action`` first (to block, check or fail)."""

    type = "fake_thing"

    def __init__(
        self, key: str, made: dict[str, float], action: Any = None, needs: tuple[str, ...] = ()
    ) -> None:
        super().__init__(key, key, needs)
        self.made, self.action = made, action
        self.calls = 0

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {}

    def find(self, ctx: Context) -> Observed | None:
        return None

    def create(self, ctx: Context) -> Observed:
        self.calls += 1
        if self.action:
            self.action(self)
        self.made[self.key] = len(self.made)
        return {"arn": f"arn:fake:{self.key}"}


class Recorder(SilentReporter):
    """What a reporter is shown; the rest (in_flight, warn, info) is silent."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def task_started(self, task: Task) -> None:
        self.lines.append(f"task {task.number}")

    def step_started(self, step: Any) -> None:
        self.lines.append("spinner per step")  # a parallel run must not show these

    def step_done(self, step: Any) -> None:
        self.lines.append(f"  {step.action} {step.resource.key}")

    def task_done(self, task: Task, steps: list[Any], seconds: float) -> None:
        self.lines.append(f"done {task.number} ({len(steps)})")


def make_task(number: int, resources: list[Resource]) -> Task:
    return Task(number, f"t{number}", "title", "summary", "why", lambda cfg: resources)


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    ctx = Context(Target(config.parse(""), FakeAws()))  # type: ignore[arg-type]
    return Engine(ctx, State(tmp_path / "state.json"), reporter=Recorder())


def test_independent_resources_run_at_the_same_time_and_needs_come_first(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: dict[str, float] = {}
    # "a" and "b" need nothing: each waits at the barrier for the other, which only works
    # when both are in flight at once (a one-at-a-time run breaks the barrier and fails).
    together = threading.Barrier(2, timeout=BARRIER_TIMEOUT)

    def meet(r: Fake) -> None:
        together.wait()

    def check_needs(r: Fake) -> None:
        assert {"a", "b"} <= made.keys(), f"{r.key} started before its needs were made"

    a, b = Fake("a", made, meet), Fake("b", made, meet)
    c = Fake("c", made, check_needs, needs=("a", "b"))
    tasks = [make_task(1, [a]), make_task(2, [b, c])]
    steps = engine.up(tasks, parallel=True)
    assert [s.resource.key for s in steps] == ["a", "b", "c"]
    assert all(s.action == CREATE for s in steps)
    assert made["c"] == 2 and {made["a"], made["b"]} == {0, 1}
    assert [a.calls, b.calls, c.calls] == [1, 1, 1]
    assert set(engine.state.resources) == {"a", "b", "c"}  # each recorded


def test_the_run_is_shown_in_the_labs_order_whatever_finishes_first(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: dict[str, float] = {}
    later_first = threading.Event()

    def wait_for_task_3(r: Fake) -> None:  # task 1's resource ends after task 3's
        assert later_first.wait(BARRIER_TIMEOUT)

    def finish(r: Fake) -> None:
        later_first.set()

    tasks = [
        make_task(1, [Fake("slow", made, wait_for_task_3)]),
        make_task(2, []),
        make_task(3, [Fake("quick", made, finish), Fake("other", made)]),
    ]
    engine.up(tasks, parallel=True)
    assert made["slow"] > made["quick"]
    assert engine.reporter.lines == [  # type: ignore[attr-defined]
        "task 1",
        "  create slow",
        "done 1 (1)",
        "task 2",
        "done 2 (0)",
        "task 3",
        "  create quick",
        "  create other",
        "done 3 (2)",
    ]


def test_a_failure_starts_nothing_new_and_names_the_first_in_lab_order(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: dict[str, float] = {}
    both_failing = threading.Barrier(2, timeout=BARRIER_TIMEOUT)

    def fail(r: Fake) -> None:
        both_failing.wait()
        raise RuntimeError(f"{r.key} broke")

    ok = Fake("ok", made)
    never = Fake("needs_failed", made, needs=("early",))
    tasks = [
        make_task(1, [Fake("early", made, fail), ok]),
        make_task(2, [Fake("late", made, fail), never]),
    ]
    with pytest.raises(StepFailed) as e:
        engine.up(tasks, parallel=True)
    assert "early broke" in str(e.value)  # not "late", whichever thread failed first
    assert never.calls == 0
    assert "ok" in engine.state.resources  # what was made is recorded
    assert "early" not in engine.state.resources


def test_sequential_is_one_at_a_time_in_the_labs_order(engine: Engine) -> None:
    made: dict[str, float] = {}
    flying = []

    def alone(r: Fake) -> None:
        flying.append(threading.current_thread().name)

    tasks = [make_task(1, [Fake("x", made, alone)]), make_task(2, [Fake("y", made, alone)])]
    engine.up(tasks)
    assert list(made) == ["x", "y"]
    assert flying == [threading.main_thread().name] * 2
    assert "spinner per step" in engine.reporter.lines  # type: ignore[attr-defined]
