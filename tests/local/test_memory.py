"""What a deleted resource held is freed, and the freed memory is given back to the system."""

from __future__ import annotations

import gc
import weakref
from typing import Any

from support.localkit import wait_for

from pocctl.local.memory import DELAY_SECONDS
from pocctl.local.server import local_client

ACCOUNT, REGION = "123456789012", "us-east-1"


def test_a_deleted_queues_messages_are_freed(aws_endpoint: str) -> None:
    from moto.sqs.models import sqs_backends

    sqs = local_client(aws_endpoint, "sqs")
    url = sqs.create_queue(QueueName="gone")["QueueUrl"]
    for i in range(20):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])
    queue = sqs_backends[ACCOUNT][REGION].get_queue("gone")
    kept = [weakref.ref(m) for m in queue._messages]
    assert len(kept) == 19
    del queue
    sqs.delete_queue(QueueUrl=url)
    gc.collect()
    # moto's instances_tracked held every message ever made, for good
    assert [r for r in kept if r() is not None] == []


def test_a_deleted_tables_items_are_freed_and_its_stream_stays_readable(
    aws_endpoint: str,
) -> None:
    from moto.dynamodb.models import dynamodb_backends

    ddb = local_client(aws_endpoint, "dynamodb")
    streams = local_client(aws_endpoint, "dynamodbstreams")
    ddb.create_table(
        TableName="gone",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    for i in range(5):
        ddb.put_item(TableName="gone", Item={"id": {"S": f"o{i}"}})
    stream = ddb.describe_table(TableName="gone")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=stream)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    table: Any = dynamodb_backends[ACCOUNT][REGION].get_table("gone")
    kept = [weakref.ref(item) for item in table.items.values()]
    assert len(kept) == 5
    del table
    answer = ddb.delete_table(TableName="gone")["TableDescription"]
    assert answer["ItemCount"] == 5  # DeleteTable's answer describes the table as it was
    gc.collect()
    assert [r for r in kept if r() is not None] == []
    # "the stream is automatically deleted after 24 hours" (DeleteTable): still readable
    records = streams.get_records(ShardIterator=iterator)["Records"]
    assert [r["dynamodb"]["NewImage"]["id"]["S"] for r in records] == [f"o{i}" for i in range(5)]


def test_deletions_give_memory_back_once_per_burst(embedded_server: Any, aws_endpoint: str) -> None:
    memory = embedded_server.memory
    memory.cancel()  # what earlier tests' deletions left pending
    memory.delay = 0.2
    before = memory.returns
    sqs = local_client(aws_endpoint, "sqs")
    urls = [sqs.create_queue(QueueName=f"q{i}")["QueueUrl"] for i in range(3)]
    sqs.list_queues()
    assert memory._timer is None  # reads and creations give nothing back
    for url in urls:
        sqs.delete_queue(QueueUrl=url)
    wait_for(lambda: memory.returns > before, timeout=15, what="memory given back")
    assert memory.returns == before + 1 and memory._timer is None
    memory.delay = DELAY_SECONDS


def test_weak_instances_list_the_live_ones_in_creation_order() -> None:
    from pocctl.local.moto_hooks import WeakInstances

    class Model:
        pass

    class Slotted:  # no __weakref__: kept strongly, as moto keeps every instance
        __slots__ = ("x",)

    tracked = WeakInstances()
    models = [Model() for _ in range(4)]
    slotted = Slotted()
    for m in [*models[:2], slotted, *models[2:]]:
        tracked.append(m)
    del models[1]
    gc.collect()
    assert list(tracked) == [models[0], slotted, models[1], models[2]]
    assert len(tracked) == 4
