"""POC-Lambda-2 (handlers/notify_order.py) against moto's in-process SNS (observed via SQS)."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import Binary, TypeSerializer
from botocore.config import Config
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
SUBJECT = "New Order Notification"


@pytest.fixture(autouse=True)
def _fast_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest.py turns this on for the embedded server; loading every AWS managed policy on
    # each mock_aws() start/stop costs ~1 s per test and these tests do not use IAM.
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "false")


def _load(name: str) -> ModuleType:
    path = ROOT / "handlers" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_handler_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


notify_order = _load("notify_order")
store_order = _load("store_order")


@dataclass
class Topic:
    arn: str
    raw_queue: str  # RawMessageDelivery=true: the body is exactly the published Message
    envelope_queue: str  # SNS JSON envelope: shows the Subject, which raw delivery drops

    def _receive(self, url: str) -> list[str]:
        sqs = boto3.client("sqs")
        bodies: list[str] = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            if not got.get("Messages"):
                return bodies
            for m in got["Messages"]:
                bodies.append(m["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def messages(self) -> list[str]:
        return self._receive(self.raw_queue)

    def envelopes(self) -> list[dict[str, Any]]:
        return [json.loads(b) for b in self._receive(self.envelope_queue)]


@pytest.fixture
def topic(monkeypatch: pytest.MonkeyPatch) -> Iterator[Topic]:
    """A topic with two SQS subscribers in a fresh moto; the handler's cached client is reset."""
    monkeypatch.setattr(notify_order, "_client", None)
    with mock_aws():
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        arn = sns.create_topic(Name="POC-Topic-test")["TopicArn"]
        urls = []
        for name, raw in (("raw", "true"), ("envelope", "false")):
            url = sqs.create_queue(QueueName=f"notify-{name}")["QueueUrl"]
            qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            sns.subscribe(
                TopicArn=arn,
                Protocol="sqs",
                Endpoint=qarn["Attributes"]["QueueArn"],
                Attributes={"RawMessageDelivery": raw},
            )
            urls.append(url)
        monkeypatch.setenv("TOPIC_ARN", arn)
        yield Topic(arn, *urls)


_ser = TypeSerializer()


def stream_record(seq: str, event_name: str, item: dict[str, Any] | None) -> dict[str, Any]:
    """A DynamoDB stream record as Lambda delivers it (view type NEW_IMAGE)."""
    data: dict[str, Any] = {
        "Keys": {"orderID": {"S": f"order-{seq}"}},
        "SequenceNumber": seq,
        "SizeBytes": 100,
        "StreamViewType": "NEW_IMAGE",
    }
    if item is not None:
        data["NewImage"] = {k: _ser.serialize(v) for k, v in item.items()}
    return {
        "eventID": f"ev-{seq}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": data,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/x",
    }


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


ORDER = {
    "orderID": "m-1",
    "receivedAt": "2023-11-14T22:13:20.123Z",
    "order": {"item": "soap", "price": Decimal("19.99"), "qty": Decimal("3"), "gift": False},
}
ORDER_PLAIN = {
    "orderID": "m-1",
    "receivedAt": "2023-11-14T22:13:20.123Z",
    "order": {"item": "soap", "price": 19.99, "qty": 3, "gift": False},
}


def test_insert_is_published_as_plain_json_with_subject(topic: Topic) -> None:
    result = notify_order.handler(event(stream_record("100", "INSERT", ORDER)), None)
    assert result == {"batchItemFailures": []}
    [message] = topic.messages()
    assert message == json.dumps(ORDER_PLAIN, indent=2, sort_keys=True)
    assert json.loads(message) == ORDER_PLAIN
    assert '"N"' not in message and '"S"' not in message  # no DynamoDB typed JSON
    [envelope] = topic.envelopes()
    assert envelope["Subject"] == SUBJECT
    assert envelope["Message"] == message
    assert envelope["TopicArn"] == topic.arn


def test_decimal_becomes_int_when_integral_else_float(topic: Topic) -> None:
    item = {"orderID": "m", "a": Decimal("2"), "b": Decimal("2.50"), "c": Decimal("1E+2")}
    notify_order.handler(event(stream_record("1", "INSERT", item)), None)
    published = json.loads(topic.messages()[0])
    assert published == {"orderID": "m", "a": 2, "b": 2.5, "c": 100}
    assert type(published["a"]) is int and type(published["c"]) is int
    assert type(published["b"]) is float


def test_sets_null_and_binary_become_json(topic: Topic) -> None:
    item = {
        "orderID": "m",
        "tags": {"b", "a"},
        "sizes": {Decimal("2"), Decimal("1.5")},
        "note": None,
        "blob": Binary(b"\x00\x01"),
    }
    notify_order.handler(event(stream_record("1", "INSERT", item)), None)
    assert json.loads(topic.messages()[0]) == {
        "orderID": "m",
        "tags": ["a", "b"],
        "sizes": [1.5, 2],
        "note": None,
        "blob": "AAE=",
    }


def test_modify_and_remove_are_skipped_not_failed(topic: Topic) -> None:
    result = notify_order.handler(
        event(
            stream_record("1", "MODIFY", {"orderID": "m-0", "qty": Decimal(5)}),
            stream_record("2", "INSERT", ORDER),
            stream_record("3", "REMOVE", None),  # REMOVE has no NewImage
            stream_record("4", "MODIFY", {"orderID": "m-1", "qty": Decimal(6)}),
        ),
        None,
    )
    assert result == {"batchItemFailures": []}
    assert [json.loads(m) for m in topic.messages()] == [ORDER_PLAIN]


def test_batch_of_inserts_is_published_in_order(topic: Topic) -> None:
    records = [stream_record(str(n), "INSERT", {"orderID": f"m-{n}"}) for n in range(1, 6)]
    assert notify_order.handler(event(*records), None) == {"batchItemFailures": []}
    assert [json.loads(m)["orderID"] for m in topic.messages()] == [f"m-{n}" for n in range(1, 6)]


def test_unknown_topic_reports_first_failure_and_every_later_record(
    topic: Topic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOPIC_ARN", topic.arn + "-does-not-exist")
    result = notify_order.handler(
        event(
            stream_record("1", "MODIFY", ORDER),  # skipped before the failure: not reported
            stream_record("2", "INSERT", ORDER),  # fails
            stream_record("3", "INSERT", ORDER),
            stream_record("4", "REMOVE", None),  # after the failure: reported too
        ),
        None,
    )
    assert result == {
        "batchItemFailures": [
            {"itemIdentifier": "2"},
            {"itemIdentifier": "3"},
            {"itemIdentifier": "4"},
        ]
    }
    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(logs) == 1  # one publish attempted, none after the failure
    assert logs[0]["sequenceNumber"] == "2" and logs[0]["level"] == "ERROR"
    assert "NotFound" in logs[0]["reason"]


def test_failure_mid_batch_stops_publishing_and_reports_the_rest(topic: Topic) -> None:
    huge = {"orderID": "big", "note": "x" * 300_000}  # over SNS's 256 KiB message limit
    result = notify_order.handler(
        event(
            stream_record("10", "INSERT", {"orderID": "first"}),
            stream_record("11", "INSERT", huge),
            stream_record("12", "INSERT", {"orderID": "after"}),
            stream_record("13", "MODIFY", {"orderID": "first"}),
        ),
        None,
    )
    assert result == {
        "batchItemFailures": [
            {"itemIdentifier": "11"},
            {"itemIdentifier": "12"},
            {"itemIdentifier": "13"},
        ]
    }
    # Only the record before the failure went out: a retry from "11" will not duplicate it.
    assert [json.loads(m)["orderID"] for m in topic.messages()] == ["first"]


def test_insert_without_new_image_is_a_failure(topic: Topic) -> None:
    result = notify_order.handler(
        event(stream_record("1", "INSERT", None), stream_record("2", "INSERT", ORDER)), None
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": "1"}, {"itemIdentifier": "2"}]}
    assert topic.messages() == []


def test_client_is_created_on_first_use_and_reused(topic: Topic) -> None:
    assert notify_order.handler(event(stream_record("1", "MODIFY", ORDER)), None) == {
        "batchItemFailures": []
    }
    assert notify_order._client is None  # nothing to publish, no client
    notify_order.handler(event(stream_record("2", "INSERT", ORDER)), None)
    first = notify_order._client
    assert first is not None
    notify_order.handler(event(stream_record("3", "INSERT", ORDER)), None)
    assert notify_order._client is first
    assert len(topic.messages()) == 2


def test_records_from_a_real_stream_after_store_order(
    topic: Topic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lambda 1 writes, the (moto) stream carries NEW_IMAGE records, Lambda 2 publishes them."""
    monkeypatch.setattr(store_order, "_client", None)
    monkeypatch.setattr(store_order, "_serializer", None)
    monkeypatch.setenv("TABLE_NAME", "orders-stream")
    ddb = boto3.client("dynamodb")
    stream_arn = ddb.create_table(
        TableName="orders-stream",
        KeySchema=[{"AttributeName": "orderID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "orderID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]["LatestStreamArn"]
    sqs_records = [
        {
            "messageId": "m-1",
            "body": '{"item": "soap", "price": 4.5}',
            "attributes": {"SentTimestamp": "1700000000123"},
        },
        {"messageId": "m-2", "body": '{"item": "mop", "price": 12}', "attributes": {}},
    ]
    assert store_order.handler({"Records": sqs_records}, None) == {"batchItemFailures": []}

    # botocore 1.44 sends stream calls to <account>.streams-ddb.<region>.amazonaws.com (the
    # account comes from the stream ARN), a host moto 5.2.5 does not route: DescribeStream
    # answers 404 "Not yet implemented". The classic endpoint works.
    streams = boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT"]

    assert notify_order.handler({"Records": records}, None) == {"batchItemFailures": []}
    assert [json.loads(m) for m in topic.messages()] == [
        {
            "orderID": "m-1",
            "order": {"item": "soap", "price": 4.5},
            "receivedAt": "2023-11-14T22:13:20.123Z",
        },
        {"orderID": "m-2", "order": {"item": "mop", "price": 12}},
    ]


class Clock:
    """A Lambda context whose remaining time drops by ``per_call`` ms at every look."""

    def __init__(self, start_ms: int, per_call: int) -> None:
        self.left, self.per_call = start_ms, per_call

    def get_remaining_time_in_millis(self) -> int:
        left = self.left
        self.left -= self.per_call
        return left


def test_a_batch_short_of_time_stops_and_leaves_the_rest_to_the_retry(topic: Topic) -> None:
    """10 s of time, each look costs 3 s: three records go out (7 s, then 4 s left when looked),
    then 1 s is under the 2 s reserve and the rest is reported, so a retry sends nothing twice
    (a timeout would have Lambda resend the whole batch)."""
    records = [stream_record(str(n), "INSERT", {"orderID": f"o{n}"}) for n in range(1, 6)]
    result = notify_order.handler(event(*records), Clock(10_000, 3_000))
    assert result == {"batchItemFailures": [{"itemIdentifier": s} for s in ("4", "5")]}
    assert [json.loads(m)["orderID"] for m in topic.messages()] == ["o1", "o2", "o3"]
    # the retry, with time enough, sends the rest once
    retry = notify_order.handler(event(*records[3:]), Clock(10_000, 1))
    assert retry == {"batchItemFailures": []}
    assert [json.loads(m)["orderID"] for m in topic.messages()] == ["o4", "o5"]


def test_a_short_timeout_still_publishes_at_least_one_record(topic: Topic) -> None:
    """With a 1 s timeout the reserve is 200 ms; the first record goes out even when less than
    that is left after the start, so every invocation makes progress."""
    records = [stream_record(str(n), "INSERT", {"orderID": f"o{n}"}) for n in range(1, 3)]
    result = notify_order.handler(event(*records), Clock(1_000, 900))
    assert result == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert [json.loads(m)["orderID"] for m in topic.messages()] == ["o1"]
