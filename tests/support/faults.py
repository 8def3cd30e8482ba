"""Fault injection for in-process runs: answer chosen AWS calls with an error, and a fake clock
so pocctl's waits take no real time while their logic runs unchanged."""

from __future__ import annotations

import threading
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
        self.lock = threading.Lock()

    def add(
        self, operation: str, code: str, message: str, times: int | None = 1, status: int = 400
    ) -> Fault:
        fault = Fault(operation, code, message, times, status)
        self.faults.append(fault)
        return fault

    def handler(self, model: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        with self.lock:  # a parallel `up` calls from several threads
            fault = next(
                (
                    f
                    for f in self.faults
                    if f.operation == model.name and (f.times is None or f.seen < f.times)
                ),
                None,
            )
            if fault is not None:
                fault.seen += 1
        if fault is None:
            return None
        parsed = {
            "Error": {"Code": fault.code, "Message": fault.message},
            "ResponseMetadata": {"HTTPStatusCode": fault.status},
        }
        return AWSResponse("http://127.0.0.1/", fault.status, {}, None), parsed


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    from pocctl import aws

    c = FakeClock()
    monkeypatch.setattr(aws, "sleep", c.sleep)
    monkeypatch.setattr(aws, "monotonic", c.monotonic)
    return c


def on_every_client(
    monkeypatch: pytest.MonkeyPatch, event: str, handler_for: Callable[[Any], Any]
) -> None:
    """Register ``handler_for(client)`` first for ``event`` on every client pocctl makes in this
    test, once per client (also when threads of a parallel `up` ask for one at the same time)."""
    from pocctl import aws

    original: Callable[..., Any] = aws.Aws.client
    lock = threading.Lock()
    done: set[int] = set()

    def client(self: aws.Aws, service: str) -> Any:
        c = original(self, service)
        with lock:
            if id(c) not in done:
                done.add(id(c))
                c.meta.events.register_first(event, handler_for(c))
        return c

    monkeypatch.setattr(aws.Aws, "client", client)


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Faults:
    """Every client pocctl makes in this test answers the registered faults first."""
    f = Faults()
    on_every_client(monkeypatch, "before-call", lambda c: f.handler)
    return f
