"""`pocctl orders` and `pocctl redrive` as a user runs them against a real `pocctl local`: the
table's rows newest first after N test orders; the DLQ's messages moved back to the order queue
(StartMessageMoveTask) and stored by Lambda 1; Lambda 2's failure records listed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.localkit import wait_for
from support.localproc import LocalProcess
from support.workspace import Workspace, make_workspace

N = 3


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, local_process: LocalProcess) -> Workspace:
    w = make_workspace(tmp_path_factory.mktemp("orders"), local_process.endpoint)
    assert w.cli("up").exit_code == 0
    return w


def _rows(ws: Workspace, *args: str) -> list[dict[str, Any]]:
    run = ws.cli("orders", "--json", *args)
    assert run.exit_code == 0, run.output
    return json.loads(run.stdout)  # type: ignore[no-any-return]


def _queue_url(ws: Workspace, name: str) -> str:
    return str(ws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def test_orders_are_the_table_s_rows_newest_first(ws: Workspace) -> None:
    before = len(_rows(ws, "--limit", "1000"))
    # One POST every 50 ms, one at a time: each order reaches the queue after the one before.
    run = ws.cli("test-order", "--count", str(N), "--rate", "20", "--concurrency", "1")
    assert run.exit_code == 0, run.output
    rows = _rows(ws, "--limit", "1000")
    assert len(rows) == before + N
    # The sample orders' quantities count 1..N in the order they were sent.
    assert [r["order"]["quantity"] for r in rows[:N]] == list(range(N, 0, -1))
    assert [r["receivedAt"] for r in rows] == sorted((r["receivedAt"] for r in rows), reverse=True)
    assert set(rows[0]) == {"orderID", "order", "receivedAt"}
    assert isinstance(rows[0]["order"]["quantity"], int)  # a Decimal in DynamoDB

    assert _rows(ws, "--limit", "2") == rows[:2]
    table = ws.subprocess("orders", "--limit", "2")
    assert table.exit_code == 0, table.output
    assert f"2 of {before + N} row(s) in orders, newest first:" in table.stdout
    assert rows[0]["orderID"] in table.stdout and rows[1]["orderID"] in table.stdout
    assert table.stdout.index(rows[0]["orderID"]) < table.stdout.index(rows[1]["orderID"])
    assert rows[2]["orderID"] not in table.stdout


def test_redrive_moves_the_dlq_back_and_lambda_1_stores_the_orders(ws: Workspace) -> None:
    sqs = ws.client("sqs")
    dlq = _queue_url(ws, "POC-Queue-DLQ")
    for n in range(2):
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"item": f"dead letter {n}"}))

    asks = ws.subprocess("redrive")  # stdin is not a terminal: it cannot ask
    assert asks.exit_code == 2
    assert "add --yes" in asks.stderr

    run = ws.subprocess("redrive", "--yes")
    assert run.exit_code == 0, run.output
    assert "moved 2 message(s) from POC-Queue-DLQ back to POC-Queue" in run.stdout
    stored = wait_for(
        lambda: (
            [r for r in _rows(ws, "--limit", "1000") if "dead letter" in r["order"]["item"]]
            if len([r for r in _rows(ws, "--limit", "1000") if "dead letter" in r["order"]["item"]])
            == 2
            else None
        ),
        what="the redriven orders in the table",
        timeout=30.0,
    )
    assert sorted(r["order"]["item"] for r in stored) == ["dead letter 0", "dead letter 1"]

    again = ws.subprocess("redrive", "--yes")
    assert again.exit_code == 0, again.output
    assert "POC-Queue-DLQ is empty: nothing to redrive" in again.stdout


def _count(ws: Workspace, url: str) -> int:
    attrs = ws.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def _set_topic(ws: Workspace, topic_arn: str) -> str:
    """Point Lambda 2 at ``topic_arn``; its previous topic."""
    lam = ws.client("lambda")
    env = lam.get_function_configuration(FunctionName="POC-Lambda-2")["Environment"]["Variables"]
    before = env["TOPIC_ARN"]
    lam.update_function_configuration(
        FunctionName="POC-Lambda-2", Environment={"Variables": {**env, "TOPIC_ARN": topic_arn}}
    )
    lam.get_waiter("function_updated_v2").wait(FunctionName="POC-Lambda-2")
    return str(before)


def test_lambda_2_s_failed_batches_are_read_back_from_the_stream_and_reinvoked(
    ws: Workspace,
) -> None:
    failures = _queue_url(ws, "POC-Lambda-2-Failures")
    good = _set_topic(ws, good_arn := "arn:aws:sns:us-east-1:123456789012:no-such-topic")
    assert good != good_arn
    try:
        ws.client("sqs").send_message(
            QueueUrl=_queue_url(ws, "POC-Queue"), MessageBody=json.dumps({"item": "unsent"})
        )
        # Stored, then Lambda 2 fails on its stream record until its retries run out.
        wait_for(lambda: _count(ws, failures) == 1 or None, what="a failed batch", timeout=30.0)
    finally:
        _set_topic(ws, good)

    run = ws.subprocess("redrive", "--yes")
    assert run.exit_code == 0, run.output
    assert "1 failed batch(es) of POC-Lambda-2 in POC-Lambda-2-Failures" in run.stdout
    assert "RetryAttemptsExhausted" in run.stdout
    assert "re-processed 1 batch(es) with POC-Lambda-2; removed from POC-Lambda-2-Failures" in (
        run.stdout
    )
    assert _count(ws, failures) == 0


def test_a_failed_batch_the_stream_no_longer_has_is_left_in_the_queue(ws: Workspace) -> None:
    failures = _queue_url(ws, "POC-Lambda-2-Failures")
    record = {
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 4},
        "timestamp": "2026-12-03T19:00:00.000Z",
        "DDBStreamBatchInfo": {
            "shardId": "shardId-00000001700000000000-00000000",
            "startSequenceNumber": "000000000000000000100",
            "endSequenceNumber": "000000000000000000100",
            "batchSize": 1,
            "streamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/gone",
        },
    }
    ws.client("sqs").send_message(QueueUrl=failures, MessageBody=json.dumps(record))
    run = ws.subprocess("redrive", "--yes")
    assert run.exit_code == 0, run.output
    assert (
        "1 record(s) 000000000000000000100..000000000000000000100 of shard "
        "shardId-00000001700000000000-00000000: RetryAttemptsExhausted"
    ) in run.stdout
    assert "the stream no longer has" in run.stderr
    assert "1 batch(es) left in POC-Lambda-2-Failures" in run.stderr
    assert _count(ws, failures) == 1  # left where it was, visible again
    attrs = ws.client("sqs").get_queue_attributes(
        QueueUrl=failures, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "1"
