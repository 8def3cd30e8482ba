"""Plan with read-only calls, then apply: the only code that mutates AWS.

Every resource is planned just before it is applied (so it sees what the previous one made) and
the state file is written right after it, so a run killed anywhere loses at most the resource it
was making — and the next run finds that one by name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # kept out of start-up: `pocctl --help` needs none of them
    from pocctl.lab import Task
    from pocctl.resources.base import Change, Context, Observed, Resource
    from pocctl.state import State

CREATE, UPDATE, UNCHANGED, DELETE, ABSENT = "create", "update", "unchanged", "delete", "absent"

# How many times one resource is looked up and changed when AWS answers an error a fresh look
# can settle (see Engine._attempt): transient 5xx/throttling past botocore's own retries, or a
# resource that changed under the plan (the lost answer of an earlier attempt).
STEP_ATTEMPTS = 4
# A create botocore does not retry on 5xx (aws.NOT_RETRIED_BY_BOTOCORE) gets only the engine's
# attempts: as many as botocore gives every other call, or 30% faults would fail ~1% of `up`s.
UNRETRIED_STEP_ATTEMPTS = 9


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
            f"{step.resource.noun} {step.resource.name}: {said}"
        )


class Reporter(Protocol):
    """What the engine says while it works (cli/progress.py shows it on the terminal)."""

    def task_started(self, task: Task) -> None: ...
    def step_started(self, step: Step) -> None: ...
    def step_done(self, step: Step) -> None: ...
    def task_done(self, task: Task, steps: list[Step], seconds: float) -> None: ...
    def in_flight(self, names: list[str]) -> None:
        """A parallel `up`: the names of what is being made right now ([] when nothing)."""

    def warn(self, text: str) -> None: ...
    def info(self, text: str) -> None: ...


class SilentReporter:
    def task_started(self, task: Task) -> None:
        pass

    def step_started(self, step: Step) -> None:
        pass

    def step_done(self, step: Step) -> None:
        pass

    def task_done(self, task: Task, steps: list[Step], seconds: float) -> None:
        pass

    def in_flight(self, names: list[str]) -> None:
        pass

    def warn(self, text: str) -> None:
        pass

    def info(self, text: str) -> None:
        pass


# State keys of resources a rename left behind: f"{LEFT}{key}/{old name}".
LEFT = "left/"


@dataclass
class LeftBehind:
    """A resource config.yaml named otherwise when it was made (with its trigger, for a
    function), and a Context whose config still names it so."""

    state_key: str
    key: str  # the resource's state key, e.g. "queue.orders"
    task: Task
    resources: list[Resource]
    ctx: Context

    @property
    def main(self) -> Resource:
        return next(r for r in self.resources if r.key == self.key)


class Engine:
    def __init__(self, ctx: Context, state: State, reporter: Reporter | None = None) -> None:
        # What the state file recorded, for resources to use as a hint (AWS is always asked).
        self.ctx = replace(ctx, known=state.resources)
        self.state = state
        self.reporter: Reporter = reporter or SilentReporter()
        # A parallel `up` records from several threads: one state write at a time.
        self._state_lock = threading.Lock()

    def _checkpoint(self, key: str, entry: dict[str, Any]) -> None:
        """Record what a create has made so far (Context.checkpoint), before it ends."""
        with self._state_lock:
            self.state.record(key, {**self.state.resources.get(key, {}), **entry})

    def _creating(self, resource: Resource) -> Context:
        """The run's context, with a checkpoint that records into ``resource``'s entry."""
        return replace(self.ctx, checkpoint=partial(self._checkpoint, resource.key))

    def _record(self, step: Step) -> None:
        r = step.resource
        with self._state_lock:
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
        a fresh look can settle, run it again, at most STEP_ATTEMPTS times in all (or
        UNRETRIED_STEP_ATTEMPTS when botocore did not retry the failed call itself).

        Safe because every attempt starts from ``find``: a resource the failed attempt made
        after all (its answer lost) is adopted, not made twice.
        """
        from pocctl import aws

        start = time.monotonic()
        for attempt in range(1, UNRETRIED_STEP_ATTEMPTS + 1):
            try:
                return once()
            except Exception as e:
                transient = aws.transient(e)
                reason = transient or aws.outdated_plan(e)
                limit = (
                    UNRETRIED_STEP_ATTEMPTS
                    if transient and not aws.retried_by_botocore(e)
                    else STEP_ATTEMPTS
                )
                if reason is None or attempt >= limit:
                    raise
                self.ctx.on_retry(
                    f"{reason}; looking at {resource.name} again", time.monotonic() - start
                )
                self.ctx.cache.clear()  # reads shared within the run are stale now (RunCache.clear)
                if transient:  # botocore has backed off already: wait a little longer each time
                    aws.sleep(aws.RETRY_INTERVAL * attempt)
        raise AssertionError("unreachable")

    def _make(
        self,
        task: Task,
        resource: Resource,
        on_started: Callable[[Step], None],
        tried: list[Step],
    ) -> Step:
        """One attempt of `up` for one resource; ``tried[-1]`` is the step it got to."""
        tried.append(Step(task, resource, "find"))
        step = tried[-1] = self.plan_one(task, resource)
        on_started(step)
        if len(tried) == 1:  # said once, not again on a retried attempt
            for note in resource.notes(self.ctx, step.observed):
                self._say("warn", note)
        if step.action == CREATE:
            observed = resource.create(self._creating(resource))
            step.identity = resource.identity(self.ctx, observed)
        elif step.action == UPDATE:
            assert step.observed is not None
            observed = resource.update(self.ctx, step.observed, step.changes)
            step.identity = resource.identity(self.ctx, observed)
        return step

    def _remove(
        self, task: Task, resource: Resource, tried: list[Step], ctx: Context | None = None
    ) -> Step:
        """One attempt of `down` for one resource; ``tried[-1]`` is the step it got to.
        ``ctx``: another config's (a resource left behind by a rename)."""
        ctx = ctx or self.ctx
        tried.append(Step(task, resource, "find"))
        observed = resource.find(ctx)
        step = tried[-1] = Step(
            task, resource, ABSENT if observed is None else DELETE, [], observed
        )
        self.reporter.step_started(step)
        if observed is not None:
            step.identity = resource.identity(ctx, observed)
            resource.delete(ctx, observed)
        return step

    def _step(self, resource: Resource, once: Callable[[list[Step]], Step]) -> Step:
        """``once(tried)`` under _attempt, timed; a failure names the step it got to."""
        start = time.monotonic()
        tried: list[Step] = []
        try:
            step = self._attempt(resource, partial(once, tried))
        except Exception as e:
            raise StepFailed(tried[-1], e) from e
        step.seconds = time.monotonic() - start
        return step

    def make_one(self, task: Task, resource: Resource, on_started: Callable[[Step], None]) -> Step:
        """Create or converge one resource, then record it in the state file."""
        step = self._step(resource, partial(self._make, task, resource, on_started))
        self._record(step)
        return step

    def up(self, tasks: list[Task], *, parallel: bool = False) -> list[Step]:
        """Create or converge the resources of ``tasks``: one at a time in the lab's order, or
        (``parallel``) each as soon as what it needs exists (Resource.needs), reported in lab order.
        Then what a rename in config.yaml left behind is removed, or said (see _keep_renamed)."""
        for task in tasks:
            for resource in task.resources(self.ctx.cfg):
                self._attempt(resource, partial(self._preflight, task, resource))
        self._keep_renamed(tasks)
        steps = self._up_parallel(tasks) if parallel else self._up_in_order(tasks)
        self._settle_renamed(tasks)
        return steps

    def _preflight(self, task: Task, resource: Resource) -> Step:
        resource.preflight(self.ctx)
        return Step(task, resource, "find")

    def _up_in_order(self, tasks: list[Task]) -> list[Step]:
        done: list[Step] = []
        for task in tasks:
            self.reporter.task_started(task)
            t0 = time.monotonic()
            steps = []
            for resource in task.resources(self.ctx.cfg):
                step = self.make_one(task, resource, self.reporter.step_started)
                self.reporter.step_done(step)
                steps.append(step)
            self.reporter.task_done(task, steps, time.monotonic() - t0)
            done.extend(steps)
        return done

    def _up_parallel(self, tasks: list[Task]) -> list[Step]:
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        from pocctl import lab

        work = [(t, r) for t in tasks for r in t.resources(self.ctx.cfg)]
        present = {r.key for _, r in work}
        needs = {r.key: set(lab.needs(r, present)) for _, r in work}
        report = InLabOrder(self.reporter, tasks, work)
        _ = self.ctx.account  # resolved once, before the threads share the context
        done: dict[str, Step] = {}
        pending = list(work)
        running: dict[Future[Step], Resource] = {}
        failures: list[StepFailed] = []

        def quiet(step: Step) -> None:
            pass  # the spinner names what is in flight (InLabOrder); no spinner per step

        pool = ThreadPoolExecutor(max_workers=max(1, len(work)), thread_name_prefix="pocctl-up")
        try:
            while pending or running:
                ready = [w for w in pending if needs[w[1].key] <= done.keys()]
                for task, resource in ready if not failures else []:
                    pending.remove((task, resource))
                    report.started(task, resource)
                    running[pool.submit(self.make_one, task, resource, quiet)] = resource
                if not running:
                    break  # a failure stopped new starts and everything in flight has ended
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    resource = running.pop(future)
                    try:
                        step = future.result()
                    except StepFailed as e:
                        failures.append(e)
                        report.failed(resource)
                        continue
                    done[resource.key] = step
                    report.done(step)
        except KeyboardInterrupt:
            report.flush(partial=True)  # what was made before Ctrl-C, shown (and said) in order
            raise
        finally:
            # On Ctrl-C, calls in flight end on their own; nothing new starts.
            pool.shutdown(wait=bool(failures), cancel_futures=True)
        if failures:
            report.flush(partial=True)
            # The first in the lab's order, whichever thread failed first: the same run fails
            # with the same message every time.
            order = [r.key for _, r in work]
            raise min(failures, key=lambda e: order.index(e.step.resource.key))
        return [done[r.key] for _, r in work]

    def down(self, tasks: list[Task]) -> list[Step]:
        """Remove the resources of ``tasks`` in reverse order; what is gone already is skipped."""
        done: list[Step] = []
        for task in reversed(tasks):
            self.reporter.task_started(task)
            t0 = time.monotonic()
            steps = []
            for resource in reversed(task.resources(self.ctx.cfg)):
                step = self._step(resource, partial(self._remove, task, resource))
                self.state.forget(resource.key)
                self.reporter.step_done(step)
                steps.append(step)
            for left in self.left_behind([task]):
                for resource in reversed(left.resources):
                    step = self._step(resource, partial(self._remove, task, resource, ctx=left.ctx))
                    self.reporter.step_done(step)
                    steps.append(step)
                self.state.forget(left.state_key)
            self.reporter.task_done(task, steps, time.monotonic() - t0)
            done.extend(steps)
        return done

    # -- what a rename in config.yaml left behind --------------------------------------------

    def _keep_renamed(self, tasks: list[Task]) -> None:
        """Before a run: a resource the state file recorded under another name than config.yaml
        gives it now is remembered as left behind (``left/<key>/<old name>``), so it is dealt
        with however this run ends: at its end, by the next `up`, or by `down`. Without the
        state file the old name is unknown, and the old resource stays."""
        from pocctl import lab

        numbers = {t.number for t in tasks}
        current = {r.key: r for t in tasks for r in t.resources(self.ctx.cfg)}
        for key, entry in list(self.state.resources.items()):
            name = entry.get("name")
            if key not in lab.NAMED_BY or entry.get("task") not in numbers or not name:
                continue
            now = current.get(key)
            if now is not None and now.name == name:
                continue
            self.state.record(f"{LEFT}{key}/{name}", {**entry, "left": key})
            if now is None:  # no longer in config at all (an email set to null)
                self.state.forget(key)

    def left_behind(self, tasks: list[Task]) -> list[LeftBehind]:
        """Resources left behind by a rename, of ``tasks``."""
        from pocctl import lab

        out = []
        numbers = {t.number for t in tasks}
        for state_key, entry in list(self.state.resources.items()):
            if not state_key.startswith(LEFT) or entry.get("task") not in numbers:
                continue
            key = entry["left"]
            cfg = lab.with_name(self.ctx.cfg, key, entry["name"])
            # The same cache and locks: IAM's snapshot stays shared, and marked when changed.
            ctx = self.ctx.with_cfg(cfg)
            task = lab.task(entry["task"])
            out.append(LeftBehind(state_key, key, task, lab.named_resources(cfg, key), ctx))
        return out

    def _settle_renamed(self, tasks: list[Task]) -> None:
        """After a successful run: remove what a rename left behind, unless it holds data
        (a table, a queue), which is left as it was, said, and removed by `down`.

        Only a run of every task removes anything: after `pocctl iam` alone, the functions of
        Task 4 and 7 still use a renamed role, and would break without it."""
        from pocctl import lab

        in_use = {(r.type, r.name) for _, r in lab.all_resources(self.ctx.cfg)}
        complete = {t.number for t in lab.BUILD_TASKS} <= {t.number for t in tasks}
        heading = ["Removing what config.yaml now names otherwise"]
        for left in self.left_behind(tasks):
            main = left.main
            if (main.type, main.name) in in_use:  # its name came back, or another key took it
                self.state.forget(left.state_key)
                continue
            observed = main.find(left.ctx)
            if observed is None:
                self.state.forget(left.state_key)
            elif main.holds_data:
                self._say("warn", self._left_note(left))
            elif not complete:
                self._say(
                    "warn",
                    f"{main.name} was renamed in config.yaml; it stays until `pocctl up` has "
                    "moved everything that uses it to the new one",
                )
            else:
                while heading:
                    self._say("info", heading.pop())
                for resource in reversed(left.resources):
                    step = self._step(
                        resource, partial(self._remove, left.task, resource, ctx=left.ctx)
                    )
                    self.reporter.step_done(step)
                self.state.forget(left.state_key)

    def _left_note(self, left: LeftBehind) -> str:
        from pocctl import lab

        main = left.main
        holding = main.holding(left.ctx)
        key = ".".join(lab.NAMED_BY[left.key])
        return (
            f"{key} changed: {main.noun} {main.name}, made before under that name, is left as it "
            f"was with {holding}; `pocctl down` deletes it with the stack"
        )

    def _say(self, how: str, text: str) -> None:
        (self.reporter.warn if how == "warn" else self.reporter.info)(text)


class InLabOrder:
    """Shows a parallel `up` as the lab reads: a task's lines come once it and every task before
    it are done; meanwhile one spinner names what is in flight."""

    def __init__(
        self, inner: Reporter, tasks: list[Task], work: list[tuple[Task, Resource]]
    ) -> None:
        self.inner = inner
        self.tasks = tasks
        self.keys = {t.number: [r.key for tt, r in work if tt is t] for t in tasks}
        self.steps: dict[int, dict[str, Step]] = {t.number: {} for t in tasks}
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.flying: list[Resource] = []
        self.next = 0  # index in tasks of the first task not shown yet
        self.flush()  # tasks with nothing to make are shown at once

    def started(self, task: Task, resource: Resource) -> None:
        self.first.setdefault(task.number, time.monotonic())
        self.flying.append(resource)
        self._spin()

    def done(self, step: Step) -> None:
        self.flying.remove(step.resource)
        self.steps[step.task.number][step.resource.key] = step
        self.last[step.task.number] = time.monotonic()
        self.flush()
        self._spin()

    def failed(self, resource: Resource) -> None:
        self.flying.remove(resource)
        self._spin()

    def flush(self, partial: bool = False) -> None:
        """Show every task that is complete and not yet shown, in order (``partial``: also what
        is done of the rest, after a failure)."""
        while self.next < len(self.tasks):
            task = self.tasks[self.next]
            got = self.steps[task.number]
            complete = len(got) == len(self.keys[task.number])
            if not complete and not partial:
                return
            steps = [got[k] for k in self.keys[task.number] if k in got]
            if steps or complete:
                self.inner.task_started(task)
                for step in steps:
                    self.inner.step_done(step)
            if complete:
                n = task.number
                seconds = self.last.get(n, 0.0) - self.first.get(n, 0.0)
                self.inner.task_done(task, steps, seconds)
            self.next += 1

    def _spin(self) -> None:
        self.inner.in_flight([r.name for r in self.flying])
