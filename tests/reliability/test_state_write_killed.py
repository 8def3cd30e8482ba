"""A pocctl killed hard inside a state file write (tests/support/crash_hook.py: half the temp file
written; temp file complete but not renamed; renamed but the directory not fsynced) never leaves
the state file unreadable: it is the old or the new complete JSON, and the next run converges.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.crash_hook import KILL_EXIT_CODE
from support.inventory import empty, inventory
from support.workspace import Workspace, make_workspace

from pocctl.state import State

# (command, which save of the run, where in it): the first write (no state file yet), and one in
# the middle at every point; `down` rewrites the file as it forgets resources.
CASES = [
    ("up", "first", "writing"),
    ("up", "middle", "writing"),
    ("up", "middle", "before-replace"),
    ("up", "middle", "after-replace"),
    ("down", "middle", "before-replace"),
]


class _Counted:
    inventory: dict[str, Any]
    saves: dict[str, int]


_reference: list[_Counted] = []


def reference(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> _Counted:
    """A clean `up` and `down` in-process, counting State.save calls (once per worker; in a
    workspace of its own, so the test's state file starts absent)."""
    if not _reference:
        ws = make_workspace(ws.dir / "reference", ws.endpoint)
        ref = _Counted()
        calls = {"n": 0}
        original = State.save

        def save(self: State) -> None:
            calls["n"] += 1
            original(self)

        with monkeypatch.context() as m:
            m.setattr(State, "save", save)
            assert ws.cli("up").exit_code == 0
            up, calls["n"] = calls["n"], 0
            ref.inventory = inventory(ws.endpoint)
            assert ws.cli("down", "--yes").exit_code == 0
            ref.saves = {"up": up, "down": calls["n"]}
        _reference.append(ref)
    return _reference[0]


def _temp_files(state: Path) -> list[Path]:
    return sorted(state.parent.glob(f".{state.name}.*.tmp"))


def _read(path: Path) -> dict[str, Any] | None:
    """The JSON in ``path``, or None if it is not complete JSON."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


@pytest.mark.parametrize("command,which,point", CASES, ids=["-".join(c) for c in CASES])
def test_a_kill_inside_a_state_write_leaves_old_or_new_and_the_next_run_converges(
    ws: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    which: str,
    point: str,
    record_property: Any,
) -> None:
    ref = reference(ws, monkeypatch)
    saves = ref.saves[command]
    n = {"first": 1, "middle": saves // 2, "last": saves}[which]
    record_property("kill_at_save", f"{n} of {saves}")
    if command == "down":
        assert ws.cli("up").exit_code == 0

    args = ["--config", str(ws.config), "--state", str(ws.state), command]
    r = ws.subprocess(
        *args,
        *(["--yes"] if command == "down" else []),
        env={"POCCTL_TEST_KILL_IN_STATE_SAVE": f"{n}:{point}"},
    )
    assert r.exit_code == KILL_EXIT_CODE, f"not killed in save {n}: {r.output}"

    temps = _temp_files(ws.state)
    if point == "after-replace":
        assert temps == []  # the temp file is the state file now
        assert _read(ws.state) is not None
    else:
        [temp] = temps  # the write that was cut short
        new = _read(temp)
        assert (new is None) == (point == "writing")  # torn, or complete but never renamed
        if n == 1 and command == "up":
            assert not ws.state.exists()  # the first write never became the state file
        else:
            old = _read(ws.state)
            assert old is not None and old != new
    if ws.state.exists():
        State.load(ws.state)  # readable by pocctl itself, schema and all

    # The next run converges; a stray temp file is harmless.
    if command == "down":
        r2 = ws.cli("down", "--yes")
        assert r2.exit_code == 0, r2.output
        assert empty(inventory(ws.endpoint))
        return
    r2 = ws.cli("up")
    assert r2.exit_code == 0, r2.output
    assert inventory(ws.endpoint) == ref.inventory
    assert State.load(ws.state).resources
