"""Event source mappings polled the way AWS polls them."""

from __future__ import annotations

import json

from support.localkit import build_stack, wait_for, zipped

from pocctl.local.pollers import batch_item_failures
from pocctl.local.runtime import LocalAWS


def _send_batch(stack, bodies: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    resp = stack.client("sqs").send_message_batch(
        QueueUrl=stack.queue_url,
        Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)],
    )
    assert not resp.get("Failed")
    return [e["MessageId"] for e in sorted(resp["Successful"], key=lambda e: int(e["Id"]))]


def _sqs_mapping(stack) -> str:  # type: ignore[no-untyped-def]
    return stack.client("lambda").create_event_source_mapping(
        EventSourceArn=stack.queue_arn,
        FunctionName="POC-Lambda-1",
        BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )["UUID"]


def test_batch_item_failures_reads_responses_as_aws_does() -> None:
    ids = ["a", "b"]
    assert batch_item_failures(None, ids) == []
    assert batch_item_failures({}, ids) == []
    assert batch_item_failures({"batchItemFailures": []}, ids) == []
    assert batch_item_failures({"batchItemFailures": None}, ids) == []
    assert batch_item_failures({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids) == ["b"]
    # invalid responses fail the whole batch
    assert batch_item_failures({"batchItemFailures": [{"itemIdentifier": ""}]}, ids) is None
    assert batch_item_failures({"batchItemFailures": [{"itemIdentifier": "zz"}]}, ids) is None
    assert batch_item_failures({"batchItemFailures": [{"id": "a"}]}, ids) is None
    assert batch_item_failures("nonsense", ids) is None


def test_poison_message_alone_goes_to_the_dlq(local_aws: LocalAWS, log_lines) -> None:  # type: ignore[no-untyped-def]
    """One batch of ten, one poison: nine stored, the poison retried until maxReceiveCount (3),
    then moved to the DLQ by the queue's RedrivePolicy."""
    # Short visibility for quick retries; AWS refuses a mapping whose queue's visibility timeout
    # is below the function's timeout, so the function gets the same 6 s: a cold start with nine
    # writes on a loaded machine has taken over 3 s, and a timed-out batch would be retried whole.
    stack = build_stack(local_aws.endpoint_url, visibility_timeout=6, mappings=False, api=False)
    bodies = [json.dumps({"item": i}) for i in range(9)] + [json.dumps({"poison": True})]
    ids = _send_batch(stack, bodies)
    _sqs_mapping(stack)  # created after the sends, so the ten arrive as one batch

    wait_for(lambda: stack.count(stack.dlq_url) == 1, timeout=60, what="the poison in the DLQ")
    rows = stack.rows()
    assert sorted(r["orderID"]["S"] for r in rows) == sorted(ids[:9])
    dead: list[str] = []
    stack.drain(stack.dlq_url, dead)
    assert dead == [bodies[9]]
    wait_for(lambda: stack.count(stack.queue_url) == 0, what="the queue to empty")

    # Lambda 1 saw the poison exactly maxReceiveCount times. The 4th receive moves it to the DLQ
    # while the 3rd delivery's invocation may still be running (an invocation may outlast the
    # visibility timeout): wait for its line, then no 4th can ever come.
    def seen() -> int:
        return len(log_lines.having(f"could not store {ids[9]}"))

    wait_for(lambda: seen() >= 3, what="the poison's third delivery to be handled")
    assert seen() == 3


def test_disabled_mapping_stops_reenabled_resumes_deleted_stops(local_aws: LocalAWS) -> None:
    stack = build_stack(local_aws.endpoint_url, api=False)
    lam, sqs = stack.client("lambda"), stack.client("sqs")
    uuid = stack.sqs_mapping
    wait_for(lambda: uuid in local_aws.polled_mappings(), what="the mapping to be polled")
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody='{"n": 1}')
    wait_for(lambda: len(stack.rows()) == 1, what="the first order stored")

    lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert uuid not in local_aws.polled_mappings()  # in effect before the call returned
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody='{"n": 2}')
    assert local_aws.wait_for_refresh(3)  # several refreshes: nothing restarts the poller
    assert stack.count(stack.queue_url) == 1 and len(stack.rows()) == 1

    lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    wait_for(lambda: len(stack.rows()) == 2, what="the held order stored after re-enabling")

    lam.delete_event_source_mapping(UUID=uuid)
    assert uuid not in local_aws.polled_mappings()
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody='{"n": 3}')
    assert local_aws.wait_for_refresh(3)
    assert stack.count(stack.queue_url) == 1 and len(stack.rows()) == 2


def test_stream_mapping_disable_resumes_from_checkpoint(local_aws: LocalAWS) -> None:
    stack = build_stack(local_aws.endpoint_url, api=False)
    lam, ddb = stack.client("lambda"), stack.client("dynamodb")
    notified: list[str] = []

    def notifications() -> list[str]:
        stack.drain(stack.probe_url, notified)
        return [json.loads(n)["orderID"] for n in notified]

    ddb.put_item(TableName="orders", Item={"orderID": {"S": "a"}})
    wait_for(lambda: notifications() == ["a"], what="the first notification")

    lam.update_event_source_mapping(UUID=stack.stream_mapping, Enabled=False)
    wait_for(lambda: stack.stream_mapping not in local_aws.polled_mappings(), what="stop")
    ddb.put_item(TableName="orders", Item={"orderID": {"S": "b"}})
    assert local_aws.wait_for_refresh(3)
    assert notifications() == ["a"]

    lam.update_event_source_mapping(UUID=stack.stream_mapping, Enabled=True)
    wait_for(lambda: notifications() == ["a", "b"], what="the held record, once")
    ddb.put_item(TableName="orders", Item={"orderID": {"S": "c"}})
    wait_for(lambda: notifications() == ["a", "b", "c"], what="in order, nothing repeated")


def test_failing_notification_goes_to_on_failure_destination(local_aws: LocalAWS) -> None:
    """Lambda 2 fails on one record: bisecting isolates it, it is retried MaximumRetryAttempts
    times, then its batch info goes to the on-failure queue; the other records are notified
    once and the failed record is still readable from the stream (nothing lost)."""
    stack = build_stack(local_aws.endpoint_url, mappings=False, api=False)
    ddb = stack.client("dynamodb")
    orders = {f"o{i}": {"i": i, **({"fail2": True} if i == 3 else {})} for i in range(6)}
    for oid, order in orders.items():
        ddb.put_item(
            TableName="orders", Item={"orderID": {"S": oid}, "order": {"S": json.dumps(order)}}
        )
    stack.client("lambda").create_event_source_mapping(
        EventSourceArn=stack.stream_arn,
        FunctionName="POC-Lambda-2",
        StartingPosition="TRIM_HORIZON",
        BatchSize=100,
        MaximumRetryAttempts=3,
        BisectBatchOnFunctionError=True,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": stack.failures_arn}},
    )
    failures: list[str] = []
    wait_for(
        lambda: stack.drain(stack.failures_url, failures) or failures,
        timeout=30,
        what="the on-failure record",
    )
    record = json.loads(failures[0])
    info = record["DDBStreamBatchInfo"]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 4  # 1 + 3 retries
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert info["batchSize"] == 1 and info["streamArn"] == stack.stream_arn
    assert info["startSequenceNumber"] == info["endSequenceNumber"]

    notified: list[str] = []
    wait_for(
        lambda: stack.drain(stack.probe_url, notified) or len(notified) >= 5,
        what="the good orders notified",
    )
    assert sorted(json.loads(n)["orderID"] for n in notified) == ["o0", "o1", "o2", "o4", "o5"]

    streams = stack.client("dynamodbstreams")
    it = streams.get_shard_iterator(
        StreamArn=stack.stream_arn,
        ShardId=info["shardId"],
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=info["startSequenceNumber"],
    )["ShardIterator"]
    lost = streams.get_records(ShardIterator=it, Limit=1)["Records"][0]
    assert lost["dynamodb"]["Keys"]["orderID"]["S"] == "o3"
    assert len(failures) == 1


REPORTS_ONE_FAILURE = """
SEEN = set()
def handler(event, context):
    seqs = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
    print("batch " + ",".join(r["dynamodb"]["Keys"]["orderID"]["S"] for r in event["Records"]))
    # the second record fails the first time it is seen
    second = seqs[1] if len(seqs) > 1 else None
    if second and second not in SEEN:
        SEEN.add(second)
        return {"batchItemFailures": [{"itemIdentifier": second}]}
    return {"batchItemFailures": []}
"""


def test_stream_partial_failure_retries_from_the_failed_record(
    local_aws: LocalAWS, log_lines
) -> None:  # type: ignore[no-untyped-def]
    stack = build_stack(
        local_aws.endpoint_url, mappings=False, api=False, notify_src=REPORTS_ONE_FAILURE
    )
    ddb = stack.client("dynamodb")
    for oid in ("a", "b", "c"):
        ddb.put_item(TableName="orders", Item={"orderID": {"S": oid}})
    stack.client("lambda").create_event_source_mapping(
        EventSourceArn=stack.stream_arn,
        FunctionName="POC-Lambda-2",
        StartingPosition="TRIM_HORIZON",
        BatchSize=100,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    wait_for(lambda: len(log_lines.having("[POC-Lambda-2] batch")) >= 3, what="three batches")
    batches = [line.split("batch ")[1] for line in log_lines.having("[POC-Lambda-2] batch")]
    # a,b,c -> b fails -> b,c (b's retry: c is now its second record and fails once) -> c
    assert batches[:3] == ["a,b,c", "b,c", "c"]


def test_function_update_applies_to_the_next_batch(local_aws: LocalAWS) -> None:
    stack = build_stack(local_aws.endpoint_url, api=False)
    sqs, lam = stack.client("sqs"), stack.client("lambda")
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody='{"n": 1}')
    wait_for(lambda: len(stack.rows()) == 1, what="stored by v1")
    v2 = """
import os, boto3
ddb = boto3.client("dynamodb")
def handler(event, context):
    for r in event["Records"]:
        ddb.put_item(TableName=os.environ["TABLE_NAME"],
                     Item={"orderID": {"S": "v2-" + r["messageId"]}})
    return {"batchItemFailures": []}
"""
    lam.update_function_code(FunctionName="POC-Lambda-1", ZipFile=zipped({"store_order.py": v2}))
    lam.get_waiter("function_updated_v2").wait(FunctionName="POC-Lambda-1")
    mid = sqs.send_message(QueueUrl=stack.queue_url, MessageBody='{"n": 2}')["MessageId"]
    wait_for(
        lambda: any(r["orderID"]["S"] == f"v2-{mid}" for r in stack.rows()), what="stored by v2"
    )


SLOW_ON_FLAG = """
import json, os, time
import boto3

ddb = boto3.client("dynamodb")

def handler(event, context):
    for record in event["Records"]:
        if json.loads(record["body"]).get("slow"):
            print("sleeping past the timeout")
            time.sleep(30)
        ddb.put_item(TableName=os.environ["TABLE_NAME"],
                     Item={"orderID": {"S": record["messageId"]}})
    return {"batchItemFailures": []}
"""


def test_timed_out_batch_is_retried_then_dead_lettered(local_aws: LocalAWS, log_lines) -> None:  # type: ignore[no-untyped-def]
    """A handler past its timeout is killed; its messages come back after the visibility
    timeout and, still timing out, reach the DLQ after maxReceiveCount. Other messages, in
    batches of their own, are stored."""
    stack = build_stack(
        local_aws.endpoint_url,
        visibility_timeout=2,
        lambda1_timeout=1,
        api=False,
        store_src=SLOW_ON_FLAG,
    )
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps({"slow": True}))
    wait_for(lambda: stack.count(stack.dlq_url) == 1, timeout=40, what="the slow one in the DLQ")

    # The 4th receive moves it to the DLQ while the 3rd invocation may still run: the Init phase
    # (importing boto3, over 1 s under load) does not count against the 1 s timeout, as on AWS,
    # so an invocation can outlast the 2 s visibility timeout. Wait for its end; no 4th can come.
    def timeouts() -> int:
        lines = log_lines.having("Task timed out after 1.00 seconds")
        return len([line for line in lines if line.startswith("[POC-Lambda-1] ")])

    wait_for(lambda: timeouts() >= 3, what="the third delivery to time out")
    assert timeouts() == 3
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps({"fine": True}))
    wait_for(lambda: len(stack.rows()) == 1, what="a normal order stored afterwards")
