"""30% of AWS calls answer a throttling error or an HTTP 500/503 at random (seeded): `up` and
`down` still converge.

Faults are injected at the HTTP layer (botocore's ``before-send`` event) as responses in each
service's own protocol, so botocore's parser and its standard retry mode really run; only its
backoff sleep is made zero. In the "lost answer" variant some mutating calls answered 5xx reach
the server first (the answer, not the request, is lost; a throttled request never is), so
botocore's retry of a create meets what the first attempt made — pocctl must re-plan that
resource instead of failing. `up` is parallel, so the order of requests (and which of them the
seeded dice hit) differs from run to run: what holds is convergence, whatever the order.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from support.faults import on_every_client
from support.inventory import empty, inventory
from support.workspace import Workspace

RATE = 0.30
# pocctl's retries={"max_attempts": 8} counts retries: botocore sends a request up to 9 times.
BOTOCORE_ATTEMPTS = 9
SEEDS = [1234, 2025, 7, 99, 31337]
_READ = ("Get", "List", "Describe", "Head")


class _Body:
    """The ``raw`` of an AWSResponse: botocore only calls ``stream()``."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def throttle_response(protocol: str) -> tuple[int, dict[str, str], bytes]:
    """A throttling error as the service itself would spell it."""
    if protocol == "query":  # IAM, STS, SNS
        body = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
            "<Message>Rate exceeded</Message></Error><RequestId>chaos</RequestId></ErrorResponse>"
        )
        return 400, {"Content-Type": "text/xml"}, body.encode()
    if protocol == "rest-json":  # Lambda, API Gateway
        headers = {
            "x-amzn-ErrorType": "TooManyRequestsException",
            "Content-Type": "application/json",
        }
        return 429, headers, b'{"message": "Rate exceeded"}'
    # json: DynamoDB, SQS, CloudWatch Logs
    body = {"__type": "com.amazonaws.chaos#ThrottlingException", "message": "Rate exceeded"}
    return 400, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(body).encode()


@dataclass
class Chaos:
    """Answers a share of requests with a fault; counts what it did."""

    seed: int
    rate: float = RATE
    lost_answers: float = 0.0  # share of faulted mutating calls the server still carries out
    # Faults by operation, used up in order before any random one: "throttle", "500", "503",
    # or "lost" (carried out by the server, then answered 500).
    script: dict[str, list[str]] = field(default_factory=dict)
    injected: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)  # requests sent, by operation

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.lock = threading.Lock()

    @property
    def total(self) -> int:
        return sum(self.injected.values()) - self.injected["lost answer"]

    @property
    def calls(self) -> int:
        return sum(self.seen.values())

    def handler(self, client: Any) -> Callable[..., Any]:
        from botocore.awsrequest import AWSResponse

        protocol = client.meta.service_model.protocol

        def before_send(request: Any, event_name: str, **_: Any) -> Any:
            operation = event_name.rsplit(".", 1)[1]
            with self.lock:  # a parallel `up` sends from several threads
                self.seen[operation] += 1
                lost = False
                if self.script.get(operation):
                    kind = self.script[operation].pop(0)
                    lost, kind = kind == "lost", "500" if kind == "lost" else kind
                elif self.rng.random() < self.rate:
                    kind = self.rng.choice(["throttle", "500", "503"])
                    # A throttled request was refused, never carried out: only a 5xx can be
                    # the lost answer of a request the server acted on.
                    lost = (
                        kind != "throttle"
                        and not operation.startswith(_READ)
                        and self.rng.random() < self.lost_answers
                    )
                else:
                    return None
                if lost:
                    self.injected["lost answer"] += 1
                self.injected[kind] += 1
            if lost:
                client._endpoint.http_session.send(request)  # the server acts; the answer is lost
            if kind == "throttle":
                status, headers, body = throttle_response(protocol)
            else:
                status, headers, body = int(kind), {}, b""
            return AWSResponse(request.url, status, headers, _Body(body))

        return before_send


@pytest.fixture
def chaos_factory(monkeypatch: pytest.MonkeyPatch, clock) -> Callable[..., Chaos]:  # type: ignore[no-untyped-def]
    """Every client pocctl makes answers through the current Chaos; botocore's backoff is 0 s
    and pocctl's own waits use the fake clock, so retries cost no real time."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0)
    current: dict[str, Chaos] = {}

    def send(c: Any, **kwargs: Any) -> Any:
        chaos = current.get("c")
        return chaos.handler(c)(**kwargs) if chaos else None

    on_every_client(monkeypatch, "before-send", lambda c: lambda **kw: send(c, **kw))

    def make(seed: int = 0, **kwargs: Any) -> Chaos:
        current["c"] = Chaos(seed, **kwargs)
        return current["c"]

    return make


@dataclass
class Reference:
    inventory: dict[str, Any]
    up_ops: list[str]  # the mutating operations a cold `up` sends
    down_ops: list[str]


_reference: list[Reference] = []


def reference(ws: Workspace, chaos_factory: Callable[..., Chaos]) -> Reference:
    """A clean `up` and `down` (the stack is deterministic: made once per worker)."""
    if not _reference:
        up = chaos_factory(rate=0.0)
        assert ws.cli("up").exit_code == 0
        inv = inventory(ws.endpoint)
        down = chaos_factory(rate=0.0)
        assert ws.cli("down", "--yes").exit_code == 0
        _reference.append(Reference(inv, _mutating(up), _mutating(down)))
    return _reference[0]


def _mutating(chaos: Chaos) -> list[str]:
    return sorted(op for op in chaos.seen if not op.startswith(_READ))


def _up_then_down(ws: Workspace, chaos: Chaos, ref: Reference) -> int:
    """`up` converges to the reference stack and `down` empties the account, both under
    ``chaos``; returns the faults injected during `up`."""
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    up_faults = chaos.total
    assert inventory(ws.endpoint) == ref.inventory
    r = ws.cli("down", "--yes")
    assert r.exit_code == 0, r.output
    assert empty(inventory(ws.endpoint)), inventory(ws.endpoint)
    return up_faults


def _record(chaos: Chaos, record_property: Any) -> None:
    record_property("faults_injected", chaos.total)
    record_property("calls", chaos.calls)
    record_property("faults_by_kind", json.dumps(dict(chaos.injected), sort_keys=True))


@pytest.mark.parametrize("seed", SEEDS)
def test_up_and_down_converge_with_30_percent_faults(
    ws: Workspace, chaos_factory: Callable[..., Chaos], seed: int, record_property: Any
) -> None:
    ref = reference(ws, chaos_factory)
    chaos = chaos_factory(seed)
    up_faults = _up_then_down(ws, chaos, ref)
    _record(chaos, record_property)
    # Enough faults that the test means something: about RATE of every request.
    assert chaos.total >= 0.2 * chaos.calls and up_faults > 10 and chaos.total > up_faults


@pytest.mark.parametrize("seed", SEEDS)
def test_up_and_down_converge_when_faulted_calls_were_carried_out(
    ws: Workspace, chaos_factory: Callable[..., Chaos], seed: int, record_property: Any
) -> None:
    """Most faulted mutating calls (80% of the 5xx ones) reach the server first: a retried
    create meets its own earlier attempt (EntityAlreadyExists, a second REST API...) and pocctl
    still converges."""
    ref = reference(ws, chaos_factory)
    chaos = chaos_factory(seed, lost_answers=0.8)
    _up_then_down(ws, chaos, ref)
    _record(chaos, record_property)
    assert chaos.injected["lost answer"] > 5


def test_every_mutating_call_answered_500_after_it_was_carried_out(
    ws: Workspace, chaos_factory: Callable[..., Chaos], record_property: Any
) -> None:
    """The first call of every mutating operation of `up` and of `down` is carried out and then
    answered 500: creates that AWS cannot de-duplicate (CreateRestApi, CreateEventSourceMapping)
    are not retried by botocore but looked up again, so there is still one of each."""
    ref = reference(ws, chaos_factory)
    chaos = chaos_factory(rate=0.0, script={op: ["lost"] for op in ref.up_ops})
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    assert inventory(ws.endpoint) == ref.inventory
    assert "looking at POC-API again" in r.stdout
    assert chaos.injected["lost answer"] == len(ref.up_ops)
    chaos.script = {op: ["lost"] for op in ref.down_ops}
    r = ws.cli("down", "--yes")
    assert r.exit_code == 0, r.output
    assert empty(inventory(ws.endpoint)), inventory(ws.endpoint)
    assert chaos.injected["lost answer"] == len(ref.up_ops) + len(ref.down_ops)
    _record(chaos, record_property)


def test_a_fault_outlasting_botocores_retries_is_retried_by_pocctl(
    ws: Workspace, chaos_factory: Callable[..., Chaos], clock: Any
) -> None:
    """botocore gives up after 9 attempts; pocctl looks again and tries once more."""
    ref = reference(ws, chaos_factory)
    chaos = chaos_factory(rate=0.0, script={"CreateTable": ["503"] * BOTOCORE_ATTEMPTS})
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    assert "AWS answered 503; looking at orders again" in r.stdout
    assert chaos.seen["CreateTable"] == BOTOCORE_ATTEMPTS + 1
    assert inventory(ws.endpoint) == ref.inventory


def test_a_fault_that_never_ends_fails_clearly_after_bounded_attempts(
    ws: Workspace, chaos_factory: Callable[..., Chaos], clock: Any
) -> None:
    from pocctl.engine import STEP_ATTEMPTS

    reference(ws, chaos_factory)
    chaos = chaos_factory(rate=0.0, script={"CreateTable": ["503"] * 1000})
    r = ws.cli("up")
    assert r.exit_code == 1
    assert "Task 2 (table): could not create table orders: AWS said 503" in r.stderr
    assert chaos.seen["CreateTable"] == STEP_ATTEMPTS * BOTOCORE_ATTEMPTS
    assert "Traceback" not in r.output


def test_a_create_botocore_does_not_retry_gets_as_many_attempts_from_pocctl(
    ws: Workspace, chaos_factory: Callable[..., Chaos], clock: Any
) -> None:
    """CreateRestApi answered 5xx is not retried by botocore (it may have been carried out), so
    pocctl's own look-and-retry is all it gets: 8 faults in a row still converge, the 9th
    attempt's fault fails the run after exactly UNRETRIED_STEP_ATTEMPTS requests."""
    from pocctl.engine import UNRETRIED_STEP_ATTEMPTS

    ref = reference(ws, chaos_factory)
    faults = UNRETRIED_STEP_ATTEMPTS - 1
    chaos = chaos_factory(rate=0.0, script={"CreateRestApi": ["500", "503"] * (faults // 2)})
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    assert chaos.seen["CreateRestApi"] == faults + 1
    assert inventory(ws.endpoint) == ref.inventory
    assert ws.cli("down", "--yes").exit_code == 0

    chaos = chaos_factory(rate=0.0, script={"CreateRestApi": ["503"] * 1000})
    r = ws.cli("up")
    assert r.exit_code == 1
    assert "Task 8 (api): could not create rest api POC-API: AWS said 503" in r.stderr
    assert chaos.seen["CreateRestApi"] == UNRETRIED_STEP_ATTEMPTS
