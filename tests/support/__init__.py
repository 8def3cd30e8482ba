"""Helpers shared by tests (a plain module: importing a conftest by name is ambiguous when
several folders have one)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
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

_READ = ("Get", "List", "Describe", "Head")


class CallRecorder:
    """WSGI middleware that records each AWS API call as (service-ish, operation, mutating).

    Independent of pocctl's own accounting: it reads what arrived at the server.
    """

    def __init__(self) -> None:
        import threading

        self.calls: list[tuple[str, bool]] = []
        self._lock = threading.Lock()
        # Called with each operation before it is served (a test may hold one there).
        self.gate: Callable[[str], None] | None = None

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
            if self.gate is not None:
                self.gate(op)
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
