"""Fault injection for in-process runs: answer chosen AWS calls with an error, and a fake clock
so pocctl's waits take no real time while their logic runs unchanged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class Fault:
    operation: str  # botocore operation name, e.g. "CreateFunction"
    code: str
    message: str
    times: int | None  # None: for ever
    status: int = 400
    seen: int = 0


@dataclass
class FakeClock:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Faults:
    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(
        self, operation: str, code: str, message: str, times: int | None = 1, status: int = 400
    ) -> Fault:
        fault = Fault(operation, code, message, times, status)
        self.faults.append(fault)
        return fault

    def handler(self, model: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        for f in self.faults:
            if f.operation == model.name and (f.times is None or f.seen < f.times):
                f.seen += 1
                parsed = {
                    "Error": {"Code": f.code, "Message": f.message},
                    "ResponseMetadata": {"HTTPStatusCode": f.status},
                }
                return AWSResponse("http://127.0.0.1/", f.status, {}, None), parsed
        return None


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    from pocctl import aws

    c = FakeClock()
    monkeypatch.setattr(aws, "sleep", c.sleep)
    monkeypatch.setattr(aws, "monotonic", c.monotonic)
    return c


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Faults:
    """Every client pocctl makes in this test answers the registered faults first."""
    from pocctl import aws

    f = Faults()
    original: Callable[..., Any] = aws.Aws.client

    def client(self: aws.Aws, service: str) -> Any:
        fresh = service not in self._clients
        c = original(self, service)
        if fresh:
            c.meta.events.register_first("before-call", f.handler)
        return c

    monkeypatch.setattr(aws.Aws, "client", client)
    return f
