"""One LocalAWS per test module (moto's state is process-wide: it must not outlive the module,
or its pollers would act on other tests' stacks), reset before each test."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from pocctl.local.runtime import LocalAWS


class LogLines:
    """Collects what LocalAWS passes to its ``log`` callable."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def clear(self) -> None:
        with self._lock:
            self.lines.clear()

    def having(self, text: str) -> list[str]:
        with self._lock:
            return [line for line in self.lines if text in line]


@pytest.fixture(scope="module", autouse=True)
def _no_managed_policies() -> Iterator[None]:
    # Loading AWS-managed IAM policies costs ~1 s per reset; these tests never use them.
    # Restored afterwards to what every EmbeddedAWS sets (not to "unset").
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "false")
        yield
    # moto rebuilds an account's IAM backend when it resets it, reading the setting then: an
    # account last reset here would lack the AWS-managed policies in the next module, which
    # may use it without a reset of its own (an empty account needs none).
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


@pytest.fixture(scope="module")
def log_lines() -> LogLines:
    return LogLines()


@pytest.fixture(scope="module")
def local_aws_module(log_lines: LogLines) -> Iterator[LocalAWS]:
    # A short refresh interval keeps mapping changes quick to observe; the default is 1 s.
    with LocalAWS(port=0, log=log_lines, refresh_interval=0.2) as aws:
        yield aws


@pytest.fixture
def local_aws(local_aws_module: LocalAWS, log_lines: LogLines) -> Iterator[LocalAWS]:
    local_aws_module.reset()
    log_lines.clear()
    yield local_aws_module
