"""A pocctl killed hard (os._exit, no cleanup) right after any of its mutating AWS calls never
leaves a mess: the next run converges to exactly one of everything, and `down` leaves nothing.

Every kill point of a cold `up` and of a `down` is tried, with and without the state file.
"""

from __future__ import annotations

from typing import Any

import pytest
from support.crash_hook import KILL_EXIT_CODE
from support.inventory import empty, inventory
from support.workspace import Workspace, make_workspace

# Mutating calls of a cold `up` and of a `down` of the full stack. If pocctl's calls change,
# test_kill_points_cover_every_mutating_call says so and these must be updated.
UP_CALLS = 37
DOWN_CALLS = 27

_reference: dict[str, Any] = {}


@pytest.fixture
def ws(tmp_path, embedded_server, call_recorder) -> Workspace:  # type: ignore[no-untyped-def]
    # An account left empty (by the last test's `down`) needs no reset, whose cold backends make
    # the first `up` 1 s slower; whatever another test left behind is reset.
    if not empty(inventory(embedded_server.endpoint_url)):
        embedded_server.reset()
    call_recorder.clear()
    return make_workspace(tmp_path, embedded_server.endpoint_url)


def reference(ws: Workspace) -> dict[str, Any]:
    """The inventory of a clean `up` (made once; the stack is deterministic)."""
    if not _reference:
        assert ws.cli("up").exit_code == 0
        _reference.update(inventory(ws.endpoint))
        assert ws.cli("down", "--yes").exit_code == 0
        assert empty(inventory(ws.endpoint))
    return _reference


def killed(ws: Workspace, k: int, *args: str) -> None:
    r = ws.subprocess(
        "--config",
        str(ws.config),
        "--state",
        str(ws.state),
        *args,
        env={"POCCTL_TEST_KILL_AFTER_MUTATING": str(k)},
    )
    assert r.exit_code == KILL_EXIT_CODE, f"not killed at call {k}: {r.output}"


def converges(ws: Workspace, ref: dict[str, Any]) -> None:
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    inv = inventory(ws.endpoint)
    assert inv == ref
    # exactly one of each: one API, one mapping per function, one subscription per endpoint
    assert [a[0] for a in inv["apis"]] == ["POC-API"]
    assert all(n == 1 for _, n in inv["mappings"])
    assert all(n == 1 for _, n in inv["subscriptions"])
    assert all(versions == 1 for _, versions in inv["policies"])
    r = ws.cli("down", "--yes")
    assert r.exit_code == 0, r.output
    assert empty(inventory(ws.endpoint)), inventory(ws.endpoint)


def test_kill_points_cover_every_mutating_call(ws: Workspace, call_recorder) -> None:  # type: ignore[no-untyped-def]
    aws_calls = call_recorder
    assert ws.cli("up").exit_code == 0
    assert len(aws_calls.mutating) == UP_CALLS
    aws_calls.clear()
    assert ws.cli("down", "--yes").exit_code == 0
    assert len(aws_calls.mutating) == DOWN_CALLS


@pytest.mark.parametrize("k", range(1, UP_CALLS + 1))
def test_up_killed_after_call_k_converges(ws: Workspace, k: int) -> None:
    ref = reference(ws)
    killed(ws, k, "up")
    converges(ws, ref)


@pytest.mark.parametrize("k", range(1, UP_CALLS + 1))
def test_up_killed_after_call_k_with_state_file_lost_converges(ws: Workspace, k: int) -> None:
    ref = reference(ws)
    killed(ws, k, "up")
    ws.state.unlink(missing_ok=True)
    converges(ws, ref)


@pytest.mark.parametrize("k", range(1, DOWN_CALLS + 1))
@pytest.mark.parametrize("lose_state", [False, True], ids=["state", "no-state"])
def test_down_killed_after_call_k_finishes_on_the_next_down(
    ws: Workspace, k: int, lose_state: bool
) -> None:
    ref = reference(ws)
    assert ws.cli("up").exit_code == 0
    killed(ws, k, "down", "--yes")
    if lose_state:
        ws.state.unlink(missing_ok=True)
    r = ws.cli("down", "--yes")
    assert r.exit_code == 0, r.output
    assert empty(inventory(ws.endpoint)), inventory(ws.endpoint)
    converges(ws, ref)  # and the account is fit for a new `up`
