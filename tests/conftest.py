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
    "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
    "NO_COLOR": "1",
}

# Set at import time, before any boto3 client can exist.
for _k, _v in FAKE_ENV.items():
    os.environ[_k] = _v
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
loopback_guard.install()


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[object]:
    from pocctl.local.server import EmbeddedAWS

    server = EmbeddedAWS(port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def aws_endpoint(embedded_server) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A clean embedded AWS for this test; yields its endpoint URL."""
    embedded_server.reset()
    yield embedded_server.endpoint_url
    embedded_server.reset()


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
