"""Shared fixtures: fake credentials before any client exists, the loopback guard, and one
embedded AWS server (moto on 127.0.0.1) per test session, reset for every test that uses it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import loopback_guard  # noqa: E402
from faults import clock, faults  # noqa: E402,F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent
GUARD_SITE = Path(__file__).resolve().parent / "sitecustomize_guard"

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # No profile or config file of the developer's machine may leak into a test.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "NO_COLOR": "1",
}

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
def aws_endpoint(embedded_server, call_recorder: CallRecorder) -> str:  # type: ignore[no-untyped-def]
    """A clean embedded AWS for this test; yields its endpoint URL."""
    embedded_server.reset()
    call_recorder.clear()
    return embedded_server.endpoint_url


@pytest.fixture
def aws_calls(aws_endpoint: str, call_recorder: CallRecorder) -> CallRecorder:
    """Every AWS API call the server received during this test, seen from the server side."""
    return call_recorder


_READ = ("Get", "List", "Describe", "Head")


class CallRecorder:
    """WSGI middleware that records each AWS API call as (service-ish, operation, mutating).

    Independent of pocctl's own accounting: it reads what arrived at the server.
    """

    def __init__(self) -> None:
        import threading

        self.calls: list[tuple[str, bool]] = []
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    @property
    def mutating(self) -> list[str]:
        return [op for op, m in self.calls if m]

    @property
    def reads(self) -> list[str]:
        return [op for op, m in self.calls if not m]

    def wrap(self, app):  # type: ignore[no-untyped-def]
        import io
        from urllib.parse import parse_qs

        def middleware(environ, start_response):  # type: ignore[no-untyped-def]
            path = environ.get("PATH_INFO", "")
            if path.startswith("/moto-api"):
                return app(environ, start_response)
            method = environ.get("REQUEST_METHOD", "GET")
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            op = target.split(".")[-1] if target else ""
            if not op and method == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = environ["wsgi.input"].read(length) if length else b""
                environ["wsgi.input"] = io.BytesIO(body)
                fields = parse_qs(body.decode("utf-8", "replace"))
                op = fields.get("Action", [""])[0]
            if op:
                mutating = not op.startswith(_READ)
            else:  # REST protocols (Lambda, API Gateway): the verb says it
                op = f"{method} {path}"
                mutating = method not in ("GET", "HEAD")
            with self._lock:
                self.calls.append((op, mutating))
            return app(environ, start_response)

        return middleware


def subprocess_env(endpoint: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for a pocctl subprocess: fake credentials, loopback endpoint, the guard."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_ENV)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(GUARD_SITE), env.get("PYTHONPATH", "")) if p
    )
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    env.update(extra)
    return env


@pytest.fixture
def ws(tmp_path: Path, aws_endpoint: str):  # type: ignore[no-untyped-def]
    """A folder with config.yaml and a copy of handlers/, pointed at a clean embedded AWS."""
    from workspace import make_workspace

    return make_workspace(tmp_path, aws_endpoint)


@pytest.fixture
def stack(ws, aws_calls: CallRecorder):  # type: ignore[no-untyped-def]
    """A workspace whose stack is up; the call log starts empty."""
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    aws_calls.clear()
    return ws
