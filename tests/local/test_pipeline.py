"""The whole chain offline: POST → API Gateway → SQS → Lambda 1 → DynamoDB → Streams →
Lambda 2 → SNS → an SQS subscriber of the topic."""

from __future__ import annotations

import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from support.localkit import build_stack, post, wait_for

from pocctl.local.runtime import LocalAWS

SPIKE = 500
SPIKE_DEADLINE = 60.0


def test_post_becomes_a_row_and_a_notification(local_aws: LocalAWS) -> None:
    stack = build_stack(local_aws.endpoint_url)
    order = {"customer": "ada", "items": ["book"], "total": 12.5}
    status, out = post(local_aws.invoke_url(stack.api_id, "prod"), json.dumps(order))
    assert status == 200, out
    message_id = out["messageId"]  # type: ignore[index]

    rows = wait_for(lambda: stack.rows(), what="the order's row")
    assert [r["orderID"]["S"] for r in rows] == [message_id]
    assert json.loads(rows[0]["order"]["S"]) == order

    notified: list[str] = []
    wait_for(lambda: stack.drain(stack.probe_url, notified) or notified, what="the notification")
    note = json.loads(notified[0])
    assert note["orderID"] == message_id and json.loads(note["order"]) == order


def test_latency_of_twenty_orders(local_aws: LocalAWS, capsys) -> None:  # type: ignore[no-untyped-def]
    """POST → notification latency, one order at a time (printed; bounded generously)."""
    stack = build_stack(local_aws.endpoint_url)
    url = local_aws.invoke_url(stack.api_id, "prod")
    # Warm both functions so the numbers measure the steady state.
    assert post(url, '{"warm": 1}')[0] == 200
    warm: list[str] = []
    wait_for(lambda: stack.drain(stack.probe_url, warm) or warm, what="the warm-up order")

    latencies = []
    for i in range(20):
        t0 = time.monotonic()
        status, out = post(url, json.dumps({"n": i}))
        assert status == 200
        got: list[str] = []
        wait_for(
            lambda got=got: stack.drain(stack.probe_url, got) or got,
            interval=0.01,
            what=f"order {i}'s notification",
        )
        assert json.loads(got[0])["orderID"] == out["messageId"]  # type: ignore[index]
        latencies.append(time.monotonic() - t0)
    p50 = statistics.median(latencies)
    with capsys.disabled():
        print(
            f"\n[measure] POST→notification over 20 orders: p50 {p50 * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms"
        )
    assert p50 < 2.0


def test_spike_of_concurrent_orders_each_stored_and_notified_once(
    local_aws: LocalAWS, capsys
) -> None:  # type: ignore[no-untyped-def]
    # The stage throttle at AWS's account default: this is about the pipeline, not the 429s the
    # lab's 100/s (burst 50) would answer to 16 clients at once (test_gateway covers those).
    stack = build_stack(local_aws.endpoint_url, throttle=(10000, 5000))
    url = local_aws.invoke_url(stack.api_id, "prod")
    started = time.monotonic()
    deadline = started + SPIKE_DEADLINE

    def send(i: int) -> str:
        status, out = post(url, json.dumps({"n": i}))
        assert status == 200, out
        return str(out["messageId"])  # type: ignore[index]

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(send, i) for i in range(SPIKE)]
        ids = [
            f.result(timeout=max(1.0, deadline - time.monotonic())) for f in as_completed(futures)
        ]
    posted = time.monotonic()
    assert len(set(ids)) == SPIKE

    notified: list[str] = []
    wait_for(
        lambda: stack.drain(stack.probe_url, notified) or len(notified) >= SPIKE,
        timeout=max(1.0, deadline - time.monotonic()),
        interval=0.1,
        what=f"{SPIKE} notifications",
    )
    drained = time.monotonic()
    rows = stack.rows()
    assert sorted(r["orderID"]["S"] for r in rows) == sorted(ids)  # each stored once
    # Anything late (a duplicate) would be visible by now: the pollers are idle.
    assert local_aws.wait_for_refresh(2)
    stack.drain(stack.probe_url, notified)
    counts: dict[str, int] = {}
    for n in notified:
        oid = json.loads(n)["orderID"]
        counts[oid] = counts.get(oid, 0) + 1
    assert set(counts) == set(ids) and set(counts.values()) == {1}  # each notified once
    assert stack.count(stack.dlq_url) == 0
    assert stack.count(stack.failures_url) == 0
    assert stack.count(stack.queue_url) == 0
    with capsys.disabled():
        print(
            f"\n[measure] spike of {SPIKE}: POSTs took {posted - started:.1f} s, drained "
            f"(all notified) {drained - started:.1f} s after the first POST"
        )
