"""Two `up` at once on one state file: the second waits for the lock (pocctl.state.locked) and
then finds everything made, so there is one of everything and the state file is whole; a run
that cannot get the lock in time refuses clearly (exit 2) and touches nothing."""

from __future__ import annotations

import fcntl
import functools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support import CallRecorder, subprocess_env
from support.inventory import inventory
from support.workspace import Run, Workspace, make_workspace

from pocctl import state as pocctl_state
from pocctl.state import State

REFUSED = "another pocctl run holds "
_reference: list[tuple[dict[str, Any], int]] = []


def reference(ws: Workspace, calls: CallRecorder) -> tuple[dict[str, Any], int]:
    """Inventory and server-side count of mutating calls of one cold `up` (once per worker, in a
    workspace of its own)."""
    if not _reference:
        other = make_workspace(ws.dir / "reference", ws.endpoint)
        calls.clear()
        assert other.cli("up").exit_code == 0
        _reference.append((inventory(ws.endpoint), len(calls.mutating)))
        assert other.cli("down", "--yes").exit_code == 0
    return _reference[0]


def every_resource_key() -> set[str]:
    from pocctl.config import parse
    from pocctl.lab import BUILD_TASKS

    cfg = parse("")
    return {r.key for t in BUILD_TASKS for r in t.resources(cfg)}


@contextmanager
def lock_held(state: Path) -> Iterator[Path]:
    """Hold the state file's lock as another pocctl run would."""
    lock = state.with_name(state.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield lock
    finally:
        os.close(fd)


def _has_open(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fds / fd) == str(path) for fd in os.listdir(fds))
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll a condition another process makes true (there is no event to wait on)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def start_up(ws: Workspace) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "pocctl", "--endpoint-url", ws.endpoint]
    argv += ["--config", str(ws.config), "--state", str(ws.state), "up"]
    return subprocess.Popen(
        argv,
        cwd=ws.dir,
        env=subprocess_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> Run:
    out, err = proc.communicate(timeout=120)
    return Run(proc.returncode, out, err)


def test_two_ups_at_once_make_one_stack_and_a_whole_state_file(
    ws: Workspace, aws_calls: CallRecorder, record_property: Any
) -> None:
    ref_inventory, ref_mutating = reference(ws, aws_calls)
    aws_calls.clear()
    # Both processes start while the lock is held, so both really contend for it.
    with lock_held(ws.state) as lock:
        procs = [start_up(ws), start_up(ws)]
        wait_for(lambda: all(_has_open(p.pid, lock) for p in procs))
    runs = [finish(p) for p in procs]

    # Normally both succeed, the second after waiting; on a machine so slow that the first `up`
    # outlasts the 10 s wait, the second refuses — clearly, and having touched nothing.
    refused = [r for r in runs if r.exit_code == 2]
    assert all(r.exit_code == 0 for r in runs if r not in refused), [r.output for r in runs]
    assert len(refused) <= 1 and all(REFUSED in r.stderr for r in refused)
    record_property("second_run", "refused" if refused else "waited")
    made = [r for r in runs if "+ created" in r.stdout]
    assert len(made) == 1  # the other found everything made: it did not run alongside
    waited = [r for r in runs if r.exit_code == 0 and r not in made]
    assert all(" 0 created, 0 updated" in r.stdout for r in waited)
    # Not one mutating call more than a single cold `up`: no interleaving, no duplicate.
    assert len(aws_calls.mutating) == ref_mutating
    assert inventory(ws.endpoint) == ref_inventory
    loaded = State.load(ws.state)  # valid JSON, right schema
    assert set(loaded.resources) == every_resource_key()


def test_a_run_that_cannot_get_the_lock_refuses_clearly_and_touches_nothing(
    ws: Workspace, aws_calls: CallRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI waits 10 s for the lock; the same code with 0.3 s keeps the test fast.
    monkeypatch.setattr(pocctl_state, "locked", functools.partial(pocctl_state.locked, wait=0.3))
    with lock_held(ws.state) as lock:
        r = ws.cli("up")
        assert r.exit_code == 2, r.output
        assert f"{REFUSED}{lock}; wait for it to finish" in r.stderr
        assert "Traceback" not in r.output
        assert aws_calls.calls == []  # not even a read
        assert not ws.state.exists()
    r = ws.cli("up")  # the lock released: the same command succeeds
    assert r.exit_code == 0, r.output
    assert State.load(ws.state).resources


def test_a_run_waits_for_the_lock_and_goes_on_when_it_is_released(ws: Workspace) -> None:
    """A real process blocked on the lock proceeds as soon as it is free (well within 10 s)."""
    with lock_held(ws.state) as lock:
        proc = start_up(ws)
        wait_for(lambda: _has_open(proc.pid, lock))
        assert proc.poll() is None  # waiting, not refused
    r = finish(proc)
    assert r.exit_code == 0, r.output
    assert State.load(ws.state).resources
