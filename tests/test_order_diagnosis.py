"""Where a missing order stopped: what the DLQ and the failure queue hold (found by marker, and
left there), and the function's last error as each log format writes it."""

from __future__ import annotations

import json
import time

import pytest
from support.workspace import Workspace

from pocctl import aws, order_diagnosis, orders
from pocctl.config import load
from pocctl.resources.base import Context, Target


@pytest.fixture
def queues(ws: Workspace) -> Context:
    for task in ("iam", "queue"):
        r = ws.cli(task)
        assert r.exit_code == 0, r.output
    return Context(Target(load(ws.config), aws.Aws(region="us-east-1", endpoint_url=ws.endpoint)))


def _url(ctx: Context, name: str) -> str:
    return str(ctx.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def test_an_order_in_the_dlq_is_found_by_marker_and_left_there(queues: Context) -> None:
    sqs = queues.client("sqs")
    dlq = _url(queues, "POC-Queue-DLQ")
    for n in (1, 2):  # another run's order, then ours, as SQS moved them
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"pocctl_marker": f"pocctl-r-{n}"}))
    mine = orders.Order(2, "{}", marker="pocctl-r-2", status=200)
    (finding,) = order_diagnosis._not_stored(queues, [mine], time.time())
    assert finding.where == "in the DLQ POC-Queue-DLQ (ApproximateReceiveCount 1)"
    assert finding.why.startswith("POC-Lambda-1 has no trigger (event source mapping) on ")
    # both messages are visible again at once: the peek moved nothing
    attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "2"


def test_a_stream_record_in_lambda_2s_failure_queue_is_matched_by_its_sequence(
    queues: Context,
) -> None:
    sqs = queues.client("sqs")
    sqs.create_queue(QueueName="POC-Lambda-2-Failures")  # Task 7 makes it with Lambda 2
    info = {"shardId": "shard-1", "startSequenceNumber": "100", "endSequenceNumber": "120"}
    sqs.send_message(
        QueueUrl=_url(queues, "POC-Lambda-2-Failures"),
        MessageBody=json.dumps({"DDBStreamBatchInfo": info}),
    )
    inside = orders.Order(1, "{}", shard="shard-1", sequence="110")
    outside = orders.Order(2, "{}", shard="shard-1", sequence="121")
    other_shard = orders.Order(3, "{}", shard="shard-2", sequence="110")
    found = order_diagnosis._failure_records(queues, [inside, outside, other_shard])
    assert found == {1: "ApproximateReceiveCount 1"}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "[ERROR] KeyError: 'TABLE'\nTraceback (most recent call last):\n  File ...",
            ("KeyError", "'TABLE'"),
        ),
        (
            "[ERROR] Runtime.ImportModuleError: Unable to import module 'x': No module named 'y'",
            ("Runtime.ImportModuleError", "Unable to import module 'x': No module named 'y'"),
        ),
        (
            "[ERROR]\t2026-12-03T10:00:00.000Z\t1f2e\tcould not store the order\n",
            ("ERROR", "could not store the order"),
        ),
        (
            "2026-12-03T10:00:00.000Z 1f2e Task timed out after 3.00 seconds",
            ("Timeout", "Task timed out after 3.00 seconds"),
        ),
        (
            '{"level": "ERROR", "messageId": "m", "reason": "ClientError: AccessDenied"}',
            ("ClientError", "ClientError: AccessDenied"),
        ),
        (
            '{"level": "ERROR", "errorType": "ValueError", "errorMessage": "bad"}',
            ("ValueError", "bad"),
        ),
        ("START RequestId: 1f2e Version: $LATEST", None),
        ('{"level": "INFO", "reason": "already stored"}', None),
        ("{not json", None),
    ],
)
def test_errors_are_read_from_each_log_format(
    message: str, expected: tuple[str, str] | None
) -> None:
    assert order_diagnosis.parse_error(message) == expected
