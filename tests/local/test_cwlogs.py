"""The log shipper writes within PutLogEvents' limits and never loses a batch for another's sake."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from support.localkit import wait_for

from pocctl.local.cwlogs import (
    EVENT_OVERHEAD,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    LogShipper,
    batches,
    split_message,
)
from pocctl.local.runtime import LocalAWS
from pocctl.local.server import local_client

T0 = 1_700_000_000_000


def _cost(batch: list[tuple[int, str]]) -> int:
    return sum(len(m.encode()) + EVENT_OVERHEAD for _, m in batch)


def test_split_message_keeps_every_byte_and_never_cuts_a_character() -> None:
    text = "é" * 200_000 + "tail"  # 400,004 bytes of UTF-8, two bytes per "é"
    parts = split_message(text)
    assert len(parts) == 2 and "".join(parts) == text
    assert all(len(p.encode()) <= MAX_EVENT_BYTES for p in parts)
    assert split_message("short\n") == ["short\n"]


def test_batches_respect_count_size_and_span_limits_in_order() -> None:
    many = [(T0 + i, f"line {i}\n") for i in range(MAX_BATCH_EVENTS + 5)]
    out = batches(many)
    assert [len(b) for b in out] == [MAX_BATCH_EVENTS, 5]
    assert [e for b in out for e in b] == many

    big = [(T0, "y" * 200_000 + "\n") for _ in range(12)]  # ~2.4 MB in all
    out = batches(big)
    assert all(_cost(b) <= MAX_BATCH_BYTES for b in out) and len(out) == 3
    assert sum(len(b) for b in out) == 12

    day = 24 * 3600 * 1000
    out = batches([(T0, "a\n"), (T0 + day + 1, "b\n")])
    assert out == [[(T0, "a\n")], [(T0 + day + 1, "b\n")]]


def test_batches_are_chronological_even_if_the_clock_stepped_back() -> None:
    out = batches([(T0 + 5, "a\n"), (T0 + 1, "b\n")])
    assert out == [[(T0 + 5, "a\n"), (T0 + 5, "b\n")]]


def test_an_empty_message_is_not_sent_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pocctl.local")
    assert batches([(T0, ""), (T0, "x\n")]) == [[(T0, "x\n")]]
    assert "empty log event" in caplog.text


def _read_all(client: Any, group: str, stream: str) -> list[str]:
    out: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    while True:
        page = client.get_log_events(**kwargs)
        out += [e["message"] for e in page["events"]]
        if not page["events"] or page["nextForwardToken"] == kwargs.get("nextToken"):
            return out
        kwargs["nextToken"] = page["nextForwardToken"]


def test_the_shipper_writes_more_than_one_call_holds(local_aws: LocalAWS) -> None:
    client = local_client(local_aws.endpoint_url, "logs")
    shipper = LogShipper(lambda region: client)
    try:
        now = int(time.time() * 1000)
        events = [(now, f"{i}\n") for i in range(12_000)] + [(now, "z" * 300_000 + "\n")]
        shipper("/test/many", "s", events, "us-east-1")
        shipper.flush()
    finally:
        shipper.stop()
    got = _read_all(client, "/test/many", "s")
    assert got[:12_000] == [f"{i}\n" for i in range(12_000)]
    assert "".join(got[12_000:]) == "z" * 300_000 + "\n"


class _FailingSecond:
    """A logs client whose second PutLogEvents call fails (a server hiccup)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.exceptions = real.exceptions
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def put_log_events(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("server hiccup")
        return self._real.put_log_events(**kwargs)


def test_a_failed_batch_is_reported_and_the_others_still_written(
    local_aws: LocalAWS, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="pocctl.local")
    real = local_client(local_aws.endpoint_url, "logs")
    failing = _FailingSecond(real)
    shipper = LogShipper(lambda region: failing)
    try:
        now = int(time.time() * 1000)
        events = [(now, f"{i}\n") for i in range(MAX_BATCH_EVENTS * 3)]
        shipper("/test/hiccup", "s", events, "us-east-1")
        shipper.flush()
    finally:
        shipper.stop()
    got = _read_all(real, "/test/hiccup", "s")
    assert got == [f"{i}\n" for i in range(MAX_BATCH_EVENTS)] + [
        f"{i}\n" for i in range(2 * MAX_BATCH_EVENTS, 3 * MAX_BATCH_EVENTS)
    ]
    assert (
        f"could not write {MAX_BATCH_EVENTS} log events (of {3 * MAX_BATCH_EVENTS})" in caplog.text
    )
    assert "server hiccup" in caplog.text


class _Gated:
    """A logs client that counts PutLogEvents per stream and holds the first call until let go,
    so that what is queued meanwhile is waiting when the shipper next gathers."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.exceptions = real.exceptions
        self.calls: dict[str, int] = {}
        self.gate = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def put_log_events(self, **kwargs: Any) -> Any:
        stream = kwargs["logStreamName"]
        self.calls[stream] = self.calls.get(stream, 0) + 1
        if stream == "gate":
            assert self.gate.wait(30)
        return self._real.put_log_events(**kwargs)


def test_invocations_queued_together_are_one_write_per_log_stream_in_order(
    local_aws: LocalAWS,
) -> None:
    real = local_client(local_aws.endpoint_url, "logs")
    gated = _Gated(real)
    shipper = LogShipper(lambda region: gated)
    try:
        now = int(time.time() * 1000)
        shipper("/test/joined", "gate", [(now, "first\n")], "us-east-1")
        wait_for(lambda: gated.calls.get("gate") == 1, timeout=30)
        for i in range(20):  # two execution environments, one invocation after another
            shipper(
                "/test/joined",
                "a",
                [(now + i, f"START {i}\n"), (now + i, f"END {i}\n")],
                "us-east-1",
            )
            shipper("/test/joined", "b", [(now + i, f"b {i}\n")], "us-east-1")
        gated.gate.set()
        shipper.flush()
    finally:
        shipper.stop()
    assert gated.calls == {"gate": 1, "a": 1, "b": 1}
    assert _read_all(real, "/test/joined", "a") == [
        line for i in range(20) for line in (f"START {i}\n", f"END {i}\n")
    ]
    assert _read_all(real, "/test/joined", "b") == [f"b {i}\n" for i in range(20)]
