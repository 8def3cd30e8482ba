"""Markers: how test-order tells its orders in any row or notification, and the times it keeps."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.workspace import Workspace

from pocctl import aws, order_find, orders
from pocctl.config import load
from pocctl.resources.base import Context, Target


def test_a_marker_is_found_at_any_depth_of_json_in_a_string() -> None:
    run = order_find.new_run_id()
    body = order_find.marked_body('{"item": "soap", "quantity": 2}', order_find.marker(run, 7))
    assert json.loads(body) == {
        "item": "soap",
        "quantity": 2,
        "pocctl_marker": f"pocctl-{run}-7",
    }
    typed = {"orderID": {"S": "x"}, "order": {"S": body}}  # the lab's row, as its stream shows
    published = json.dumps(typed, indent=4)  # the lab's Lambda 2 message
    wrapped = json.dumps({"Subject": "New order", "Message": json.dumps(published)})
    pattern = order_find.marker_pattern(run)
    for text in (body, published, wrapped, "New order: " + json.dumps(wrapped)):
        assert order_find.numbers_in(text, pattern) == {7}, text


def test_order_numbers_never_match_inside_longer_ones_nor_other_runs() -> None:
    pattern = order_find.marker_pattern("abc")
    assert order_find.numbers_in("pocctl-abc-12 pocctl-abc-123 pocctl-abc-12", pattern) == {
        12,
        123,
    }
    assert order_find.numbers_in("pocctl-abd-1 pocctl-abcd-2 pocctl-ab-3", pattern) == set()


def test_a_body_that_is_not_an_object_cannot_carry_a_marker() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        order_find.marked_body("[1]", "pocctl-x-1")


def _order(**times: float | None) -> orders.Order:
    o = orders.Order(1, "{}", sent_at=100.0, sent_wall=5000.0, status=200)
    o.rows, o.notifications = ["k"], 1
    for name, value in times.items():
        setattr(o, name, value)
    return o


def test_stored_is_the_rows_own_time_not_when_it_was_seen() -> None:
    o = _order(seen_stored=0.9, seen_notified=0.5, row_created=5000.123, notification_sent=5000.4)
    orders._settle_times(o)
    assert o.stored == pytest.approx(0.123)  # the stream's time, not the poll at 0.9 s
    assert o.notified == pytest.approx(0.4)  # SQS's SentTimestamp, before the poll saw it


def test_notified_never_comes_before_stored() -> None:
    # AWS rounds ApproximateCreationDateTime down to the second: 5000 means before 5001.
    o = _order(seen_stored=0.8, seen_notified=0.3, row_created=5000.0, notification_sent=None)
    orders._settle_times(o)
    assert o.stored == pytest.approx(0.3) and o.notified == pytest.approx(0.3)
    # Without a stream (Scan): first seen, but never after the notification the row caused.
    o = _order(seen_stored=2.0, seen_notified=1.2, row_created=None, notification_sent=None)
    orders._settle_times(o)
    assert o.stored is not None and o.notified is not None
    assert o.stored <= o.notified


def test_a_table_without_a_stream_is_scanned_and_each_row_found_by_marker(ws: Workspace) -> None:
    assert ws.cli("table").exit_code == 0  # Task 2 only: Task 5 enables the stream
    ddb = ws.client("dynamodb")
    ctx = Context(Target(load(ws.config), aws.Aws(region="us-east-1", endpoint_url=ws.endpoint)))
    source = order_find.row_source(ctx)
    assert isinstance(source, order_find.ScanRows)
    body = order_find.marked_body('{"item": "soap"}', "pocctl-run1-3")
    ddb.put_item(TableName="orders", Item={"orderID": {"S": "a"}, "o": {"M": {"b": {"S": body}}}})
    ddb.put_item(TableName="orders", Item={"orderID": {"S": "b"}, "o": {"S": "no marker"}})
    pattern = order_find.marker_pattern("run1")
    found = {r.key: order_find.numbers_in(r.text, pattern) for r in source.poll()}
    assert found == {'{"orderID": {"S": "a"}}': {3}, '{"orderID": {"S": "b"}}': set()}


def test_scan_pages_stop_at_the_limit_and_say_when_the_table_held_more() -> None:
    class _Pages:
        def __init__(self, pages: int) -> None:
            self.pages, self.calls = pages, []

        def scan(self, **args: Any) -> dict[str, Any]:
            self.calls.append(args)
            n = len(self.calls)
            more = {"LastEvaluatedKey": {"k": {"S": str(n)}}} if n < self.pages else {}
            return {"Items": [{"k": {"S": f"{n}-{i}"}} for i in range(3)], **more}

    big = _Pages(pages=10)
    got = list(order_find.scan_pages(big, "t", 5, ConsistentRead=True))
    assert [(len(items), cut) for items, cut in got] == [(3, False), (3, True)]
    assert big.calls[1] == {
        "TableName": "t",
        "ConsistentRead": True,
        "ExclusiveStartKey": {"k": {"S": "1"}},
    }
    whole = list(order_find.scan_pages(_Pages(pages=2), "t", 6))
    assert [cut for _, cut in whole] == [False, False]  # read to its end: nothing left out
