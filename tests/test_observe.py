"""pocctl.observe without AWS: --since, DynamoDB values as plain JSON, newest first, and the
follower printing each event once across polls."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from pocctl import observe

NOW = 1_796_000_000.0  # epoch seconds


@pytest.mark.parametrize(
    ("text", "seconds_ago"),
    [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1w", 604800)],
)
def test_since_durations(text: str, seconds_ago: int) -> None:
    assert observe.parse_since(text, now=NOW) == int((NOW - seconds_ago) * 1000)


def test_since_iso_times_utc_unless_they_say_otherwise() -> None:
    assert observe.parse_since("2026-12-03T19:00:00Z") == 1_796_324_400_000
    assert observe.parse_since("2026-12-03T19:00:00") == 1_796_324_400_000
    assert observe.parse_since("2026-12-03T20:00:00+01:00") == 1_796_324_400_000
    assert observe.iso_ms(1_796_324_400_123) == "2026-12-03T19:00:00.123Z"


@pytest.mark.parametrize("text", ["yesterday", "10", "m10", "-5m", ""])
def test_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="give a duration"):
        observe.parse_since(text)


def test_plain_turns_dynamodb_types_into_json_types() -> None:
    value = {"n": Decimal("3"), "f": Decimal("9.5"), "s": {"b", "a"}, "l": [Decimal("1")]}
    assert observe.plain(value) == {"n": 3, "f": 9.5, "s": ["a", "b"], "l": [1]}
    assert observe.plain(b"\x00\x01") == "AAE="


def test_newest_first_by_received_at_and_rows_without_it_last() -> None:
    rows = [
        {"orderID": "a", "receivedAt": "2026-12-03T19:00:00.001Z"},
        {"orderID": "b"},
        {"orderID": "c", "receivedAt": "2026-12-03T19:00:00.002Z"},
    ]
    ordered, all_timed = observe.newest_first(rows)
    assert [r["orderID"] for r in ordered] == ["c", "a", "b"]
    assert not all_timed
    assert observe.newest_first(rows[:1]) == (rows[:1], True)


class _Logs:
    """FilterLogEvents of a fake CloudWatch Logs: ``groups`` maps a group to its events."""

    class exceptions:  # noqa: N801 - botocore's spelling
        class ResourceNotFoundException(Exception):
            pass

    def __init__(self) -> None:
        self.groups: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[dict[str, Any]] = []

    def get_paginator(self, name: str) -> Any:
        assert name == "filter_log_events"
        return self

    def paginate(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        if kwargs["logGroupName"] not in self.groups:
            raise self.exceptions.ResourceNotFoundException()
        events = [
            e for e in self.groups[kwargs["logGroupName"]] if e["timestamp"] >= kwargs["startTime"]
        ]
        return [{"events": events[:1]}, {"events": events[1:]}]  # two pages


def _event(n: int, ts: int) -> dict[str, Any]:
    return {"timestamp": ts, "logStreamName": "s", "message": f"line {n}", "eventId": str(n)}


def test_follower_prints_each_event_once_interleaved_and_notes_missing_groups() -> None:
    logs = _Logs()
    logs.groups["/aws/lambda/one"] = [_event(1, 1000), _event(3, 3000)]
    follower = observe.Follower(logs, ["one", "two"], start_ms=0, pattern="ERROR")
    assert [line.message for line in follower.poll()] == ["line 1", "line 3"]
    assert follower.missing == {"two"}
    assert logs.calls[0]["filterPattern"] == "ERROR"

    logs.groups["/aws/lambda/two"] = [_event(2, 2000)]  # ingested late, older than line 3
    logs.groups["/aws/lambda/one"].append(_event(4, 4000))
    fresh = follower.poll()
    assert [(line.function, line.message) for line in fresh] == [
        ("two", "line 2"),
        ("one", "line 4"),
    ]
    assert follower.missing == set()
    assert follower.poll() == []


def test_log_events_reads_at_most_max_pages_and_passes_the_window() -> None:
    logs = _Logs()
    logs.groups["/aws/lambda/one"] = [_event(1, 1000), _event(2, 2000), _event(3, 3000)]
    events = observe.log_events(logs, "one", 0, end_ms=5000, pattern="ERROR", max_pages=1)
    assert [e["eventId"] for e in events or []] == ["1"]  # the second page is not read
    assert logs.calls[-1]["endTime"] == 5000 and logs.calls[-1]["filterPattern"] == "ERROR"
    every = observe.log_events(logs, "one", 0)
    assert [e["eventId"] for e in every or []] == ["1", "2", "3"]
    assert "endTime" not in logs.calls[-1]
    assert observe.log_events(logs, "two", 0, max_pages=1) is None  # no group: never ran
