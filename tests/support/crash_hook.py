"""Test harness only: kill the process hard right after its k-th mutating AWS call
(POCCTL_TEST_KILL_AFTER_MUTATING=k), or inside its n-th state file write
(POCCTL_TEST_KILL_IN_STATE_SAVE="n:point", see install_state_save_kill).

Read by sitecustomize_guard/ in subprocesses started by tests; pocctl itself knows nothing of it.
"""

from __future__ import annotations

import os

KILL_EXIT_CODE = 137
_READ = ("Get", "List", "Describe", "Head")


# Where inside State.save the process dies:
STATE_SAVE_POINTS = (
    "writing",  # part of the temp file written (and flushed), the rest never
    "before-replace",  # temp file complete and fsynced, not yet renamed over the state file
    "after-replace",  # renamed, the directory not yet fsynced
)


def install() -> None:
    install_state_save_kill()
    k = os.environ.get("POCCTL_TEST_KILL_AFTER_MUTATING")
    if not k:
        return
    limit = int(k)
    from botocore.client import BaseClient

    original = BaseClient._make_api_call
    count = 0

    def _make_api_call(self, operation_name, api_params):  # type: ignore[no-untyped-def]
        nonlocal count
        try:
            return original(self, operation_name, api_params)
        finally:
            if not operation_name.startswith(_READ):
                count += 1
                if count >= limit:
                    os._exit(KILL_EXIT_CODE)  # no cleanup, no finally blocks, no atexit

    BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]


def install_state_save_kill() -> None:
    """Kill inside the n-th call of pocctl.state.State.save at a point of STATE_SAVE_POINTS.

    pocctl.state's own code runs unchanged: only the ``os`` it sees is wrapped, so the kill
    lands between the very calls State.save makes.
    """
    spec = os.environ.get("POCCTL_TEST_KILL_IN_STATE_SAVE")
    if not spec:
        return
    n_text, point = spec.split(":", 1)
    n = int(n_text)
    assert point in STATE_SAVE_POINTS, point
    import pocctl.state as state

    saves = 0
    original_save = state.State.save

    def save(self):  # type: ignore[no-untyped-def]
        nonlocal saves
        saves += 1
        return original_save(self)

    def here(where: str) -> bool:
        return saves == n and point == where

    def write(fd, data):  # type: ignore[no-untyped-def]
        if here("writing"):  # half of it reaches the OS (os.write has no buffer), then death
            os.write(fd, bytes(data[: max(1, len(data) // 2)]))
            os._exit(KILL_EXIT_CODE)
        return os.write(fd, data)

    def replace(src, dst, **kwargs):  # type: ignore[no-untyped-def]
        if here("before-replace"):
            os._exit(KILL_EXIT_CODE)
        os.replace(src, dst, **kwargs)
        if here("after-replace"):
            os._exit(KILL_EXIT_CODE)

    class _Os:
        """pocctl.state's ``os``: the real one, but for these two calls."""

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(os, name)

    wrapped = _Os()
    wrapped.write, wrapped.replace = write, replace  # type: ignore[attr-defined]
    state.os = wrapped  # type: ignore[assignment]
    state.State.save = save  # type: ignore[method-assign]
