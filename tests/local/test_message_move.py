"""SQS DLQ redrive on the embedded AWS (pocctl/local/message_move.py): StartMessageMoveTask,
ListMessageMoveTasks and CancelMessageMoveTask with AWS's shapes and errors, through boto3."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _sqs(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "sqs",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _arn(sqs: Any, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


def _pair(sqs: Any, max_receive: int = 1) -> tuple[str, str, str, str]:
    """(source url, source arn, dlq url, dlq arn): a source queue whose redrive policy names
    the DLQ."""
    dlq = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    dlq_arn = _arn(sqs, dlq)
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive})
    src = sqs.create_queue(
        QueueName="orders", Attributes={"RedrivePolicy": policy, "VisibilityTimeout": "0"}
    )["QueueUrl"]
    return src, _arn(sqs, src), dlq, dlq_arn


def _to_dlq(sqs: Any, src: str, dlq: str, bodies: list[str]) -> list[str]:
    """Each body sent, received once (maxReceiveCount 1), then moved to the DLQ by the next
    receive, as SQS does."""
    for body in bodies:
        sqs.send_message(QueueUrl=src, MessageBody=body)
    for _ in range(3):
        sqs.receive_message(QueueUrl=src, MaxNumberOfMessages=10)
    counts = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    assert counts["Attributes"]["ApproximateNumberOfMessages"] == str(len(bodies))
    peek = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [m["MessageId"] for m in peek["Messages"]]


def _code(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = e.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_redrive_moves_the_dlq_back_to_its_source_and_lists_a_completed_task(
    aws_endpoint: str,
) -> None:
    sqs = _sqs(aws_endpoint)
    src, src_arn, dlq, dlq_arn = _pair(sqs)
    dead_ids = _to_dlq(sqs, src, dlq, ["a", "b", "c"])

    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert handle

    (task,) = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
    assert task["Status"] == "COMPLETED"
    assert task["SourceArn"] == dlq_arn
    assert task["ApproximateNumberOfMessagesMoved"] == 3
    assert task["ApproximateNumberOfMessagesToMove"] == 3
    assert isinstance(task["StartedTimestamp"], int)
    # Given only when the request gave them, and the handle only while it runs (AWS's shape).
    assert "DestinationArn" not in task and "MaxNumberOfMessagesPerSecond" not in task
    assert "TaskHandle" not in task

    got = sqs.receive_message(QueueUrl=src, MaxNumberOfMessages=10, AttributeNames=["All"])[
        "Messages"
    ]
    assert sorted(m["Body"] for m in got) == ["a", "b", "c"]
    # "All redriven messages are considered new messages and are assigned a new messageID and
    # enqueueTime": new IDs, sent after the task started, received for the first time.
    assert not {m["MessageId"] for m in got} & set(dead_ids)
    assert all(int(m["Attributes"]["SentTimestamp"]) >= task["StartedTimestamp"] for m in got)
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in got} == {"1"}
    assert "Messages" not in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)


def test_a_destination_and_a_rate_are_reported_and_the_list_is_newest_first(
    aws_endpoint: str,
) -> None:
    sqs = _sqs(aws_endpoint)
    src, _, dlq, dlq_arn = _pair(sqs)
    other = sqs.create_queue(QueueName="elsewhere")["QueueUrl"]
    other_arn = _arn(sqs, other)
    _to_dlq(sqs, src, dlq, ["x"])
    sqs.start_message_move_task(
        SourceArn=dlq_arn, DestinationArn=other_arn, MaxNumberOfMessagesPerSecond=5
    )
    sqs.start_message_move_task(SourceArn=dlq_arn)  # nothing left: moves 0

    newest = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]  # MaxResults default 1
    assert len(newest) == 1 and newest[0]["ApproximateNumberOfMessagesMoved"] == 0
    both = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=2)["Results"]
    assert both[1]["DestinationArn"] == other_arn
    assert both[1]["MaxNumberOfMessagesPerSecond"] == 5
    assert both[1]["ApproximateNumberOfMessagesMoved"] == 1
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=other)["Messages"]] == ["x"]


def test_a_fifo_dead_letter_queue_is_refused_not_moved_loosely(aws_endpoint: str) -> None:
    sqs = _sqs(aws_endpoint)
    dlq = sqs.create_queue(QueueName="d.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": _arn(sqs, dlq), "maxReceiveCount": 1})
    sqs.create_queue(QueueName="s.fifo", Attributes={"FifoQueue": "true", "RedrivePolicy": policy})
    with pytest.raises(ClientError) as e:
        sqs.start_message_move_task(SourceArn=_arn(sqs, dlq))
    # botocore reports the query-compatible code SQS sends with it
    assert _code(e)[0] == "AWS.SimpleQueueService.UnsupportedOperation"


def test_a_queue_that_is_no_dead_letter_queue_is_refused_as_aws_refuses_it(
    aws_endpoint: str,
) -> None:
    sqs = _sqs(aws_endpoint)
    _, src_arn, _, _ = _pair(sqs)
    with pytest.raises(ClientError) as e:
        sqs.start_message_move_task(SourceArn=src_arn)
    assert _code(e) == (
        "InvalidParameterValue",
        "Source queue must be configured as a Dead Letter Queue.",
        400,
    )


def test_missing_queues_a_bad_rate_and_bad_handles_answer_aws_s_errors(
    aws_endpoint: str,
) -> None:
    sqs = _sqs(aws_endpoint)
    _, _, _, dlq_arn = _pair(sqs)
    missing = dlq_arn.rsplit(":", 1)[0] + ":no-such-queue"
    with pytest.raises(ClientError) as e:
        sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=missing)
    assert _code(e) == (
        "ResourceNotFoundException",
        "The resource that you specified for the DestinationArn parameter doesn't exist.",
        404,
    )
    with pytest.raises(ClientError) as e:
        sqs.start_message_move_task(SourceArn=missing)
    assert _code(e)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=501)
    assert _code(e)[0] == "InvalidParameterValue"
    assert "MaxNumberOfMessagesPerSecond" in _code(e)[1]
    with pytest.raises(ClientError) as e:
        sqs.cancel_message_move_task(TaskHandle="not-a-handle")
    assert _code(e) == ("InvalidParameterValue", "Value for parameter TaskHandle is invalid.", 400)

    # A finished task cannot be cancelled: there is no task running under that handle.
    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    with pytest.raises(ClientError) as e:
        sqs.cancel_message_move_task(TaskHandle=handle)
    assert _code(e) == ("ResourceNotFoundException", "Task does not exist.", 404)
