"""Test harness only: kill the process hard right after its k-th mutating AWS call.

Read from POCCTL_TEST_KILL_AFTER_MUTATING by sitecustomize_guard/ in subprocesses started by
tests; pocctl itself knows nothing of it.
"""

from __future__ import annotations

import os

KILL_EXIT_CODE = 137
_READ = ("Get", "List", "Describe", "Head")


def install() -> None:
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
