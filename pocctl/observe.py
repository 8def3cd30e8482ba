"""Reading what the pipeline did: the functions' logs (CloudWatch Logs), the table's rows, and
the dead letters (SQS). The same calls on AWS and on the embedded AWS; no terminal here.

Logs are read with FilterLogEvents, paginated, as `aws logs tail` does; `--follow` polls it (the
embedded AWS cannot serve StartLiveTail: an HTTP/2 event stream on a `streaming-` host).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_SINCE = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> int:
    """Epoch milliseconds for ``30s``/``10m``/``2h``/``1d``/``1w`` ago, or an ISO-8601 time
    (a time without a zone is UTC); ValueError with what is accepted otherwise."""
    now = time.time() if now is None else now
    text = text.strip()
    m = _SINCE.fullmatch(text)
    if m:
        return int((now - int(m.group(1)) * _UNIT_SECONDS[m.group(2)]) * 1000)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give a duration (30s, 10m, 2h, 1d) or an ISO time "
            "(2026-12-03T19:00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(when.timestamp() * 1000)


def iso_ms(millis: int) -> str:
    when = dt.datetime.fromtimestamp(millis / 1000, tz=dt.timezone.utc)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log_group(function_name: str) -> str:
    """Where Lambda writes a function's logs (https://docs.aws.amazon.com/lambda/latest/dg/
    monitoring-cloudwatchlogs.html): /aws/lambda/<function name>."""
    return f"/aws/lambda/{function_name}"


@dataclass(frozen=True)
class LogLine:
    function: str
    timestamp: int  # epoch ms
    stream: str
    message: str
    event_id: str

    def as_json(self) -> dict[str, str]:
        return {
            "function": self.function,
            "timestamp": iso_ms(self.timestamp),
            "stream": self.stream,
            "message": self.message.rstrip("\n"),
        }


def log_events(
    logs: Any,
    function: str,
    start_ms: int,
    *,
    end_ms: int | None = None,
    pattern: str | None = None,
    max_pages: int | None = None,
) -> list[dict[str, Any]] | None:
    """FilterLogEvents' events of ``function``'s log group from ``start_ms`` (every page, or
    the first ``max_pages``); None when the group does not exist (the function has not run).
    The one reader of a function's logs: `pocctl logs`, watch's and test-order's last error."""
    kwargs: dict[str, Any] = {"logGroupName": log_group(function), "startTime": start_ms}
    if end_ms is not None:
        kwargs["endTime"] = end_ms
    if pattern:
        kwargs["filterPattern"] = pattern
    out: list[dict[str, Any]] = []
    try:
        pages = logs.get_paginator("filter_log_events").paginate(**kwargs)
        for number, page in enumerate(pages, 1):
            out += page.get("events", [])
            if max_pages is not None and number >= max_pages:
                break
    except logs.exceptions.ResourceNotFoundException:
        return None
    return out


def read_logs(
    logs: Any, function: str, start_ms: int, pattern: str | None = None
) -> list[LogLine] | None:
    """Every event of ``function``'s log group from ``start_ms`` (all pages); None when the
    group does not exist (the function has not run)."""
    events = log_events(logs, function, start_ms, pattern=pattern)
    if events is None:
        return None
    return [
        LogLine(function, e["timestamp"], e["logStreamName"], e["message"], e["eventId"])
        for e in events
    ]


def interleave(lines: Iterable[LogLine]) -> list[LogLine]:
    """By time; events of the same millisecond keep their function's order."""
    return sorted(lines, key=lambda line: line.timestamp)


class Follower:
    """New log lines of several functions, each once, across polls.

    Each poll asks FilterLogEvents from a little before the newest event seen (events can be
    ingested after a later one was: each function's output is shipped when its invocation
    ends) and drops the event IDs already printed.
    """

    LOOKBACK_MS = 60_000

    def __init__(self, logs: Any, functions: list[str], start_ms: int, pattern: str | None) -> None:
        self.logs, self.functions, self.pattern = logs, functions, pattern
        self.start_ms = start_ms
        self.newest = start_ms
        self.seen: dict[tuple[str, str], int] = {}
        self.missing: set[str] = set()

    def poll(self) -> list[LogLine]:
        since = max(self.start_ms, self.newest - self.LOOKBACK_MS)
        fresh: list[LogLine] = []
        self.missing = set()
        for function in self.functions:
            lines = read_logs(self.logs, function, since, self.pattern)
            if lines is None:
                self.missing.add(function)
                continue
            for line in lines:
                key = (function, line.event_id)
                if key not in self.seen:
                    self.seen[key] = line.timestamp
                    fresh.append(line)
        if fresh:
            self.newest = max(self.newest, *(line.timestamp for line in fresh))
        # IDs older than the window can never come back: forget them (bounded memory).
        floor = self.newest - 2 * self.LOOKBACK_MS
        self.seen = {k: ts for k, ts in self.seen.items() if ts >= floor}
        return interleave(fresh)


# -- the table's rows ---------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A deserialized DynamoDB value as plain JSON: Decimal → int/float, sets → sorted lists,
    binary → base64."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v) for v in value), key=repr)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if hasattr(value, "value") and isinstance(value.value, (bytes, bytearray)):  # boto3 Binary
        return base64.b64encode(bytes(value.value)).decode()
    return value


def scan_rows(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of ``table`` (all pages), as plain JSON."""
    from boto3.dynamodb.types import TypeDeserializer

    des = TypeDeserializer()
    rows = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page.get("Items", []):
            rows.append({k: plain(des.deserialize(v)) for k, v in item.items()})
    return rows


# The time Lambda 1 stores with each order (handlers/store_order.py: the message's SentTimestamp
# as ISO-8601 UTC), by which rows sort newest first.
TIME_ATTRIBUTE = "receivedAt"


def newest_first(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """``rows`` newest first by their time attribute, rows without it last; and whether every
    row had one (if none has, the order is the table's, which means nothing)."""
    timed = [r for r in rows if isinstance(r.get(TIME_ATTRIBUTE), str)]
    untimed = [r for r in rows if not isinstance(r.get(TIME_ATTRIBUTE), str)]
    timed.sort(key=lambda r: r[TIME_ATTRIBUTE], reverse=True)
    return timed + untimed, not untimed


# -- redrive ------------------------------------------------------------------------------------

ACTIVE = ("RUNNING", "CANCELLING")


def wait_for_move(
    sqs: Any,
    source_arn: str,
    *,
    timeout: float = 600.0,
    on_wait: Callable[[str, float], None] | None = None,
) -> dict[str, Any]:
    """The newest message move task of ``source_arn`` once it is no longer running."""
    started = time.monotonic()
    interval = 0.2
    while True:
        results = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1)["Results"]
        task: dict[str, Any] = results[0] if results else {}
        if task.get("Status") not in ACTIVE:
            return task
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            raise TimeoutError(f"the move from {source_arn} still runs after {timeout:.0f} s")
        if on_wait:
            moved = task.get("ApproximateNumberOfMessagesMoved", 0)
            on_wait(f"moving messages ({moved} so far)", elapsed)
        time.sleep(interval)  # a polling interval, bounded: AWS moves up to 500 messages/s
        interval = min(interval * 2, 2.0)


@dataclass
class FailedBatch:
    """One on-failure record of a stream mapping (an invocation record: which stream records
    failed, not the records themselves) and the receipt handle it was received with."""

    record: dict[str, Any]
    receipt_handle: str

    @property
    def info(self) -> dict[str, Any]:
        return dict(self.record.get("DDBStreamBatchInfo") or {})


def failed_batches(sqs: Any, url: str, limit: int = 1000) -> list[FailedBatch]:
    """Lambda 2's on-failure records, received with a visibility timeout so each is read once;
    ``release`` makes the ones not re-processed visible again."""
    import json

    out: list[FailedBatch] = []
    while len(out) < limit:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300)
        messages = got.get("Messages", [])
        if not messages:
            break
        for m in messages:
            try:
                body = json.loads(m["Body"])
            except ValueError:
                body = {"body": m["Body"]}
            record = body if isinstance(body, dict) else {"body": body}
            out.append(FailedBatch(record, m["ReceiptHandle"]))
    return out


def release(sqs: Any, url: str, batches: list[FailedBatch]) -> None:
    """Make ``batches`` visible again at once: they stay in the queue, unchanged."""
    for i in range(0, len(batches), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": b.receipt_handle, "VisibilityTimeout": 0}
                for n, b in enumerate(batches[i : i + 10])
            ],
        )


def stream_records(streams: Any, info: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The stream records a failure record names (startSequenceNumber..endSequenceNumber of its
    shard), read back from the stream as Lambda read them; None when the stream no longer has
    them (DynamoDB Streams keeps records 24 hours: https://docs.aws.amazon.com/amazondynamodb/
    latest/developerguide/Streams.html)."""
    from botocore.exceptions import ClientError, ParamValidationError

    try:
        first, last = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
        iterator = streams.get_shard_iterator(
            StreamArn=info["streamArn"],
            ShardId=info["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=info["startSequenceNumber"],
        )["ShardIterator"]
    except (KeyError, ValueError, ClientError, ParamValidationError):
        return None
    out: list[dict[str, Any]] = []
    for _ in range(1000):  # bounded: a shard holds at most 24 hours of records
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        for r in page.get("Records", []):
            if int(r["dynamodb"]["SequenceNumber"]) > last:
                return out
            if int(r["dynamodb"]["SequenceNumber"]) >= first:
                out.append(_as_lambda_delivers(r, info["streamArn"]))
        iterator = page.get("NextShardIterator")
        if not iterator or not page.get("Records"):
            break
    return out or None


def _as_lambda_delivers(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """GetRecords' record as the stream mapping puts it in the event: eventSourceARN added,
    ApproximateCreationDateTime in epoch seconds (https://docs.aws.amazon.com/lambda/latest/dg/
    with-ddb.html, its sample event)."""
    rec = dict(record)
    ddb = dict(rec.get("dynamodb", {}))
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, dt.datetime):
        ddb["ApproximateCreationDateTime"] = round(created.timestamp())
    rec["dynamodb"] = ddb
    rec["eventSourceARN"] = stream_arn
    return rec


def reinvoke(lambda_client: Any, function: str, records: list[dict[str, Any]]) -> str | None:
    """Invoke ``function`` with ``records`` as its stream mapping would; None when it handled
    every record, else what went wrong."""
    import json

    resp = lambda_client.invoke(
        FunctionName=function,
        Payload=json.dumps({"Records": records}, default=str).encode(),
    )
    payload = resp["Payload"].read()
    try:
        answer = json.loads(payload or b"null")
    except ValueError:
        answer = None
    if resp.get("FunctionError"):
        kind = answer.get("errorType", "error") if isinstance(answer, dict) else "error"
        message = answer.get("errorMessage", "") if isinstance(answer, dict) else ""
        return f"{kind}: {message}".strip(": ")
    failed = answer.get("batchItemFailures") if isinstance(answer, dict) else None
    if failed:
        return f"{len(failed)} record(s) reported as failed (batchItemFailures)"
    return None
