"""Fixtures of the walkthrough tests: one `pocctl local` per test, pty screens cleaned up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.workspace import Workspace, make_workspace
from support.wtkit import LocalServer, Screen


@pytest.fixture
def local_endpoint() -> Iterator[str]:
    server = LocalServer()
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def lws(tmp_path: Path, local_endpoint: str) -> Workspace:
    """A workspace (config.yaml, handlers/) pointed at its own `pocctl local`."""
    return make_workspace(tmp_path, local_endpoint)


@pytest.fixture
def walkthrough(lws: Workspace) -> Iterator[Callable[..., Screen]]:
    """Start `pocctl walkthrough ARGS…` in ``lws`` under a pty; never leaves a process behind."""
    made: list[Screen] = []

    def start(*args: str) -> Screen:
        made.append(Screen(lws, *args))
        return made[-1]

    yield start
    for s in made:
        s.close()
