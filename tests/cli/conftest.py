"""Fixtures shared by the CLI suites."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from support.localproc import LocalProcess


@pytest.fixture(scope="module")
def local_process() -> Iterator[LocalProcess]:
    """One real `pocctl local` on a free port for the test module, stopped as a user stops it
    (Ctrl-C), which must end it with exit code 0."""
    server = LocalProcess("--port", "0")
    yield server
    assert server.stop(signal.SIGINT) == 0, server.lines
