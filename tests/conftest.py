"""Shared fixtures: fake credentials before any client exists, the loopback guard, and one
embedded AWS server (moto on 127.0.0.1) per test session, reset for every test that uses it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from support import (  # noqa: E402,F401
    FAKE_ENV,
    ROOT,
    CallRecorder,
    loopback_guard,  # noqa: E402
    subprocess_env,
)
from support.faults import clock, faults  # noqa: E402,F401  (fixtures)

# Set at import time, before any boto3 client can exist.
for _k, _v in FAKE_ENV.items():
    os.environ[_k] = _v
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
loopback_guard.install()


@pytest.fixture(scope="session")
def call_recorder() -> CallRecorder:
    return CallRecorder()


@pytest.fixture(scope="session")
def embedded_server(call_recorder: CallRecorder) -> Iterator[object]:
    from pocctl.local.server import EmbeddedAWS

    server = EmbeddedAWS(port=0, middleware=[call_recorder.wrap])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def aws_endpoint(embedded_server, call_recorder: CallRecorder, monkeypatch) -> str:  # type: ignore[no-untyped-def]
    """A clean embedded AWS for this test; yields its endpoint URL."""
    # moto reads this when reset() rebuilds its backends. Set it here, not only when the
    # session's server started: tests/local turns it off for its own module, and a worker that
    # ran those first would otherwise reset into an account without AWS-managed policies.
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    embedded_server.reset()
    call_recorder.clear()
    return embedded_server.endpoint_url


@pytest.fixture
def aws_calls(aws_endpoint: str, call_recorder: CallRecorder) -> CallRecorder:
    """Every AWS API call the server received during this test, seen from the server side."""
    return call_recorder


@pytest.fixture
def ws(tmp_path: Path, aws_endpoint: str):  # type: ignore[no-untyped-def]
    """A folder with config.yaml and a copy of handlers/, pointed at a clean embedded AWS."""
    from support.workspace import make_workspace

    return make_workspace(tmp_path, aws_endpoint)


@pytest.fixture
def stack(ws, aws_calls: CallRecorder):  # type: ignore[no-untyped-def]
    """A workspace whose stack is up; the call log starts empty."""
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    aws_calls.clear()
    return ws
