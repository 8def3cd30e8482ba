"""Plan with read-only calls, then apply: the only code that mutates AWS.

Every resource is planned just before it is applied (so it sees what the previous one made) and
the state file is written right after it, so a run killed anywhere loses at most the resource it
was making — and the next run finds that one by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from pocctl.lab import Task
from pocctl.resources.base import Change, Context, Observed, Resource
from pocctl.state import State

CREATE, UPDATE, UNCHANGED, DELETE, ABSENT = "create", "update", "unchanged", "delete", "absent"

# How many times one resource is looked up and changed when AWS answers an error a fresh look
# can settle (see Engine._attempt): transient 5xx/throttling past botocore's own retries, or a
# resource that changed under the plan (the lost answer of an earlier attempt).
STEP_ATTEMPTS = 4


@dataclass
class Step:
    task: Task
    resource: Resource
    action: str
    changes: list[Change] = field(default_factory=list)
    observed: Observed | None = None
    identity: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class StepFailed(Exception):
    """A resource could not be made or removed; says which task, which resource, what AWS said."""

    def __init__(self, step: Step, cause: BaseException) -> None:
        from pocctl import aws

        self.step, self.cause = step, cause
        if isinstance(cause, aws.AwsError):
            said = str(cause)
        elif aws.error_code(cause):
            said = f"AWS said {aws.error_code(cause)}: {aws.error_message(cause)}"
        else:
            said = f"{type(cause).__name__}: {cause}"
        verb = {CREATE: "create", UPDATE: "update", DELETE: "delete"}.get(step.action, "look up")
        super().__init__(
            f"Task {step.task.number} ({step.task.command}): could not {verb} "
            f"{step.resource.type.split('_', 1)[1].replace('_', ' ')} {step.resource.name}: {said}"
        )


class Reporter(Protocol):
    def task_started(self, task: Task) -> None: ...
    def step_started(self, step: Step) -> None: ...
    def step_done(self, step: Step) -> None: ...
    def task_done(self, task: Task, steps: list[Step], seconds: float) -> None: ...


class SilentReporter:
    def task_started(self, task: Task) -> None:
        pass

    def step_started(self, step: Step) -> None:
        pass

    def step_done(self, step: Step) -> None:
        pass

    def task_done(self, task: Task, steps: list[Step], seconds: float) -> None:
        pass


class Engine:
    def __init__(self, ctx: Context, state: State, reporter: Reporter | None = None) -> None:
        self.ctx = ctx
        self.state = state
        self.reporter: Reporter = reporter or SilentReporter()
        ctx.known = state.resources
        ctx.record = self._record_partial

    def _record_partial(self, key: str, entry: dict[str, Any]) -> None:
        self.state.record(key, {**self.state.resources.get(key, {}), **entry})

    def _record(self, step: Step) -> None:
        r = step.resource
        self.state.record(
            r.key,
            {"type": r.type, "name": r.name, "task": step.task.number, **step.identity},
        )

    # -- read-only --------------------------------------------------------------------------------

    def plan_one(self, task: Task, resource: Resource) -> Step:
        observed = resource.find(self.ctx)
        if observed is None:
            return Step(task, resource, CREATE)
        changes = resource.diff(self.ctx, observed)
        step = Step(task, resource, UPDATE if changes else UNCHANGED, changes, observed)
        step.identity = resource.identity(self.ctx, observed)
        return step

    def plan(self, tasks: list[Task]) -> list[Step]:
        """What `up` would do, from read-only calls."""
        return [self.plan_one(t, r) for t in tasks for r in t.resources(self.ctx.cfg)]

    def status(self, tasks: list[Task]) -> list[Step]:
        """Like plan, but does not fail on one broken resource: every row is reported."""
        return self.plan(tasks)

    # -- mutating ---------------------------------------------------------------------------------

    def _attempt(self, resource: Resource, once: Callable[[], Step]) -> Step:
        """Run ``once`` (look the resource up, then change it); when AWS answers an error that
        a fresh look can settle, run it again, at most STEP_ATTEMPTS times in all.

        Safe because every attempt starts from ``find``: a resource the failed attempt made
        after all (its answer lost) is adopted, not made twice.
        """
        from pocctl import aws

        start = time.monotonic()
        for attempt in range(1, STEP_ATTEMPTS + 1):
            try:
                return once()
            except Exception as e:
                transient = aws.transient(e)
                reason = transient or aws.outdated_plan(e)
                if reason is None or attempt == STEP_ATTEMPTS:
                    raise
                self.ctx.on_retry(
                    f"{reason}; looking at {resource.name} again", time.monotonic() - start
                )
                self.ctx.cache.clear()  # reads shared within the run are stale now
                if transient:  # botocore has backed off already: wait a little longer each time
                    aws.sleep(aws.RETRY_INTERVAL * attempt)
        raise AssertionError("unreachable")

    def _make(self, task: Task, resource: Resource, tried: list[Step]) -> Step:
        """One attempt of `up` for one resource; ``tried[-1]`` is the step it got to."""
        tried.append(Step(task, resource, "find"))
        step = tried[-1] = self.plan_one(task, resource)
        self.reporter.step_started(step)
        if step.action == CREATE:
            observed = resource.create(self.ctx)
            step.identity = resource.identity(self.ctx, observed)
        elif step.action == UPDATE:
            assert step.observed is not None
            observed = resource.update(self.ctx, step.observed, step.changes)
            step.identity = resource.identity(self.ctx, observed)
        return step

    def _remove(self, task: Task, resource: Resource, tried: list[Step]) -> Step:
        """One attempt of `down` for one resource; ``tried[-1]`` is the step it got to."""
        tried.append(Step(task, resource, "find"))
        observed = resource.find(self.ctx)
        step = tried[-1] = Step(
            task, resource, ABSENT if observed is None else DELETE, [], observed
        )
        self.reporter.step_started(step)
        if observed is not None:
            step.identity = resource.identity(self.ctx, observed)
            resource.delete(self.ctx, observed)
        return step

    def up(self, tasks: list[Task]) -> list[Step]:
        done: list[Step] = []
        for task in tasks:
            self.reporter.task_started(task)
            t0 = time.monotonic()
            steps = []
            for resource in task.resources(self.ctx.cfg):
                start = time.monotonic()
                tried: list[Step] = []
                try:
                    step = self._attempt(resource, partial(self._make, task, resource, tried))
                except Exception as e:
                    raise StepFailed(tried[-1], e) from e
                step.seconds = time.monotonic() - start
                self._record(step)
                self.reporter.step_done(step)
                steps.append(step)
            self.reporter.task_done(task, steps, time.monotonic() - t0)
            done.extend(steps)
        return done

    def down(self, tasks: list[Task]) -> list[Step]:
        """Remove the resources of ``tasks`` in reverse order; what is gone already is skipped."""
        done: list[Step] = []
        for task in reversed(tasks):
            self.reporter.task_started(task)
            t0 = time.monotonic()
            steps = []
            for resource in reversed(task.resources(self.ctx.cfg)):
                start = time.monotonic()
                tried: list[Step] = []
                try:
                    step = self._attempt(resource, partial(self._remove, task, resource, tried))
                except Exception as e:
                    raise StepFailed(tried[-1], e) from e
                step.seconds = time.monotonic() - start
                self.state.forget(resource.key)
                self.reporter.step_done(step)
                steps.append(step)
            self.reporter.task_done(task, steps, time.monotonic() - t0)
            done.extend(steps)
        return done
