"""Benchmark 6d: is the embedded AWS's cost per operation flat in the size of a queue, a table,
a stream and a log stream?

For each size N (1,000 and 10,000 unless POCCTL_BENCH_FLAT_SIZES says otherwise): an empty
account, then the order pipeline's own operations measured on the server (its CPU seconds, read
through bench/server.py's /__bench/cpu, so the client's botocore work is not counted) after
preloading N items (each measurement the least of 3 runs):

- SendMessage into a queue holding N visible messages (a spike's backlog);
- ReceiveMessage (10) + DeleteMessageBatch from that backlog, per message;
- PutItem into a table of N items with a stream of N records;
- GetRecords (100 at a time) of the newest records of that N-record stream, per record;
- PutLogEvents (10 events) into a log stream of N events.

Bounded: N is capped at 20,000 and each measurement at OPS operations.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from bench.common import BENCH_UA, Bench, Section, Server

SIZES_ENV = "POCCTL_BENCH_FLAT_SIZES"
DEFAULT_SIZES = (1000, 10000)
MAX_SIZE = 20000
OPS = 200
REPEATS = 3
# Flat: within 20% (issue 15 asks the end-to-end rate at 10,000 to be within 10% of 1,000's;
# one operation measured alone on a shared machine varies by 10-15% between runs, even as the
# least of three). What was not flat grew 1.4-2.4x from 1,000 to 10,000.
FLAT_RATIO = 1.20


def sizes() -> tuple[int, ...]:
    raw = os.environ.get(SIZES_ENV, "")
    got = tuple(min(MAX_SIZE, int(x)) for x in raw.split(",") if x.strip()) if raw else ()
    return got or DEFAULT_SIZES


def _client(server: Server, service: str) -> Any:
    from pocctl.local.server import local_client

    return local_client(server.endpoint, service, user_agent_extra=BENCH_UA)


def _cpu_per(server: Server, n: int, work: Callable[[], None]) -> float:
    """Server CPU seconds per unit of ``work`` (which does ``n`` units): the least of REPEATS
    runs, the one least disturbed by whatever else the (shared) machine did meanwhile."""
    best = float("inf")
    for _ in range(REPEATS):
        before = server.cpu()["server"]
        work()
        best = min(best, (server.cpu()["server"] - before) / n)
    return best


def _queue(server: Server, size: int) -> dict[str, float]:
    sqs = _client(server, "sqs")
    url = sqs.create_queue(QueueName="flat-queue", Attributes={"VisibilityTimeout": "300"})[
        "QueueUrl"
    ]
    for start in range(0, size, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": f"preloaded {start + i}"}
                for i in range(min(10, size - start))
            ],
        )

    def send() -> None:
        for i in range(OPS):
            sqs.send_message(QueueUrl=url, MessageBody=f"measured {i}")

    def receive_delete() -> None:
        for _ in range(OPS // 10):
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
                ],
            )

    return {
        "SendMessage (queue of N)": _cpu_per(server, OPS, send),
        "ReceiveMessage + DeleteMessageBatch, per message (queue of N)": _cpu_per(
            server, OPS // 10 * 10, receive_delete
        ),
    }


def _table(server: Server, size: int) -> dict[str, float]:
    ddb = _client(server, "dynamodb")
    streams = _client(server, "dynamodbstreams")
    ddb.create_table(
        TableName="flat-table",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    arn = ddb.describe_table(TableName="flat-table")["Table"]["LatestStreamArn"]

    def item(i: int) -> dict[str, Any]:
        return {"id": {"S": f"order-{i}"}, "item": {"S": "all-purpose cleaner"}, "n": {"N": str(i)}}

    for start in range(0, size, 25):
        ddb.batch_write_item(
            RequestItems={
                "flat-table": [
                    {"PutRequest": {"Item": item(i)}} for i in range(start, min(size, start + 25))
                ]
            }
        )
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    latest = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]

    def put() -> None:
        for i in range(OPS):
            ddb.put_item(TableName="flat-table", Item=item(size + i))

    def read() -> None:
        it, got = latest, 0
        for _ in range(OPS):  # bounded: OPS records come in OPS / 100 reads
            resp = streams.get_records(ShardIterator=it, Limit=100)
            got += len(resp["Records"])
            it = resp["NextShardIterator"]
            if got >= OPS:
                return
        raise RuntimeError(f"GetRecords read {got} of the {OPS} new records")

    return {
        "PutItem (table of N items, stream on)": _cpu_per(server, OPS, put),
        "GetRecords, per record (stream of N records)": _cpu_per(server, OPS, read),
    }


def _logs(server: Server, size: int) -> dict[str, float]:
    logs = _client(server, "logs")
    logs.create_log_group(logGroupName="flat-group")
    logs.create_log_stream(logGroupName="flat-group", logStreamName="s")
    now = int(time.time() * 1000)
    for start in range(0, size, 5000):
        logs.put_log_events(
            logGroupName="flat-group",
            logStreamName="s",
            logEvents=[
                {"timestamp": now, "message": f"preloaded {i}"}
                for i in range(start, min(size, start + 5000))
            ],
        )

    def put() -> None:
        for i in range(OPS // 10):
            logs.put_log_events(
                logGroupName="flat-group",
                logStreamName="s",
                logEvents=[{"timestamp": now, "message": f"measured {i}.{j}"} for j in range(10)],
            )

    return {"PutLogEvents of 10 (log stream of N events)": _cpu_per(server, OPS // 10, put)}


def measure(server: Server, size: int) -> dict[str, float]:
    server.reset()
    out: dict[str, float] = {}
    for part in (_queue, _table, _logs):
        out.update(part(server, size))
    return out


def run(b: Bench) -> list[Section]:
    ns = sizes()
    results = {}
    measure(b.server, 20)  # warm-up: first calls load botocore models and moto's handlers
    for n in ns:
        b.log(f"flatness: preloading {n:,} messages / items / records / events")
        results[n] = measure(b.server, n)
    b.server.reset()
    s = Section(
        "flatness", "6d. Flatness: cost per operation vs the size of a queue, table, stream"
    )
    s.para(
        "Server CPU per operation (the embedded AWS's process, read on the server), each after "
        f"preloading N messages / items / stream records / log events; {OPS} operations each. "
        f"Flat: the cost at the largest N within {FLAT_RATIO:.2f}× the cost at the smallest "
        "(sizes: POCCTL_BENCH_FLAT_SIZES)."
    )
    first, last = ns[0], ns[-1]
    rows, flat_all = [], True
    for op in results[first]:
        ratio = results[last][op] / results[first][op] if results[first][op] else 0.0
        flat = ratio <= FLAT_RATIO
        flat_all &= flat
        rows.append(
            [op]
            + [f"{results[n][op] * 1e3:.2f} ms" for n in ns]
            + [f"{ratio:.2f}×", "flat" if flat else "**grows**"]
        )
    s.table(["operation"] + [f"N = {n:,}" for n in ns] + [f"{last:,} vs {first:,}", ""], rows)
    s.goal(
        f"cost per operation flat from {first:,} to {last:,} (≤ {FLAT_RATIO:.2f}×)",
        "all flat" if flat_all else "not all flat",
        flat_all,
    )
    return [s]
