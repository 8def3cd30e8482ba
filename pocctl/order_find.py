"""Finding test orders wherever the handlers put them: by a marker each order's body carries.

A handler may store the order as a map, as a JSON string, nested, under any key; it may publish
plain JSON, DynamoDB typed JSON ({"S": ...}), indented, with a subject or not. In every case the
marker's characters ([a-z0-9-], nothing JSON escapes) appear verbatim somewhere in the row or
message, so a regular expression over its text finds it, at any depth of JSON-in-a-string.

New rows are read from the table's stream (DynamoDB Streams), from the moment the test starts:
it costs one GetRecords call per shard per poll, plus one per 1,000 new records, whatever the
table already holds; and each record carries the row's own time (ApproximateCreationDateTime).
A table without a stream of new images is scanned instead (paginated and bounded).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pocctl import aws

MARKER_FIELD = "pocctl_marker"
# Items one Scan poll reads at most (the fallback when the table has no stream of new images):
# a bigger table is read in part, and the report says so.
SCAN_LIMIT = 20_000
# GetRecords calls per shard per poll: 1,000 records each (the API's most).
_READS_PER_SHARD = 20


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]


def marker(run: str, number: int) -> str:
    return f"pocctl-{run}-{number}"


def marker_pattern(run: str) -> re.Pattern[str]:
    """Finds the markers of this run; the group is the order's number. ``-12`` never matches
    inside ``-123``: no digit may follow."""
    return re.compile(rf"pocctl-{re.escape(run)}-(\d+)(?!\d)")


def marked_body(body: str, mark: str) -> str:
    """The JSON object ``body`` with the marker added (the order's own fields kept)."""
    order = json.loads(body)
    if not isinstance(order, dict):
        raise ValueError("an order is a JSON object of fields")
    return json.dumps({**order, MARKER_FIELD: mark})


def numbers_in(text: str, pattern: re.Pattern[str]) -> set[int]:
    """The order numbers whose markers ``text`` carries (once each, however often repeated)."""
    return {int(n) for n in pattern.findall(text)}


@dataclass
class Row:
    """A row the table got, as one stream record (or one Scan item) shows it."""

    key: str  # the item's key attributes as canonical JSON: the same row, the same key
    text: str  # the item as JSON, searched for markers
    created: float | None  # epoch seconds: the stream's ApproximateCreationDateTime
    shard: str = ""
    sequence: str = ""


def _key(item: dict[str, Any], names: list[str]) -> str:
    return json.dumps({n: item.get(n) for n in names}, sort_keys=True, default=str)


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class StreamRows:
    """The table's new rows from its stream, from when start() ran (LATEST iterators)."""

    how = "stream"

    def __init__(self, ctx: Any, stream_arn: str) -> None:
        self.client = ctx.client("dynamodbstreams")
        self.arn = stream_arn
        self.iterators: dict[str, str | None] = {}
        self.last_seq: dict[str, str] = {}
        self._shards_read = aws.monotonic()

    def start(self) -> None:
        for shard in self._shards():
            if "EndingSequenceNumber" not in shard.get("SequenceNumberRange", {}):
                self.iterators[shard["ShardId"]] = self._iterator(shard["ShardId"], "LATEST")
            else:
                self.iterators[shard["ShardId"]] = None  # closed before the test: not ours

    def _shards(self) -> Iterator[dict[str, Any]]:
        args: dict[str, Any] = {"StreamArn": self.arn}
        while True:
            d = self.client.describe_stream(**args)["StreamDescription"]
            yield from d.get("Shards", [])
            if not d.get("LastEvaluatedShardId"):
                return
            args["ExclusiveStartShardId"] = d["LastEvaluatedShardId"]

    def _iterator(self, shard: str, kind: str, seq: str | None = None) -> str:
        args = {"StreamArn": self.arn, "ShardId": shard, "ShardIteratorType": kind}
        if seq:
            args["SequenceNumber"] = seq
        return str(self.client.get_shard_iterator(**args)["ShardIterator"])

    def poll(self) -> list[Row]:
        """The rows written since the last poll (INSERT and MODIFY records with a new image)."""
        if aws.monotonic() - self._shards_read >= 10:  # shards split: read new ones from start
            self._shards_read = aws.monotonic()
            for shard in self._shards():
                if shard["ShardId"] not in self.iterators:
                    self.iterators[shard["ShardId"]] = self._iterator(
                        shard["ShardId"], "TRIM_HORIZON"
                    )
        rows: list[Row] = []
        for shard, it in list(self.iterators.items()):
            if it is not None:
                rows += self._read(shard, it)
        return rows

    def _read(self, shard: str, it: str | None) -> list[Row]:
        rows: list[Row] = []
        for _ in range(_READS_PER_SHARD):
            if it is None:
                break
            try:
                resp = self.client.get_records(ShardIterator=it, Limit=1000)
            except Exception as e:
                if aws.error_code(e) != "ExpiredIteratorException":
                    raise
                last = self.last_seq.get(shard)
                kind = "AFTER_SEQUENCE_NUMBER" if last else "LATEST"
                it = self._iterator(shard, kind, last)
                continue
            records = resp.get("Records", [])
            rows += [r for r in map(lambda rec: _stream_row(rec, shard), records) if r]
            if records:
                self.last_seq[shard] = records[-1]["dynamodb"]["SequenceNumber"]
            it = resp.get("NextShardIterator")
            if len(records) < 1000:  # caught up: the rest comes with the next poll
                break
        self.iterators[shard] = it
        return rows


def _stream_row(record: dict[str, Any], shard: str) -> Row | None:
    d = record.get("dynamodb") or {}
    image = d.get("NewImage")
    if record.get("eventName") == "REMOVE" or image is None:
        return None
    return Row(
        key=json.dumps(d.get("Keys") or {}, sort_keys=True),
        text=json.dumps(image, default=str),
        created=_epoch(d.get("ApproximateCreationDateTime")),
        shard=shard,
        sequence=str(d.get("SequenceNumber", "")),
    )


class ScanRows:
    """Every row of the table, by a paginated Scan: for a table without a stream of new images.
    Each poll reads at most SCAN_LIMIT items; ``partial`` says when the table held more."""

    how = "scan"

    def __init__(self, ctx: Any, table: str, key_names: list[str]) -> None:
        self.client = ctx.client("dynamodb")
        self.table = table
        self.key_names = key_names
        self.partial = False

    def start(self) -> None:
        return None

    def poll(self) -> list[Row]:
        rows: list[Row] = []
        for items, cut in scan_pages(self.client, self.table, SCAN_LIMIT):
            rows += [Row(_key(i, self.key_names), json.dumps(i, default=str), None) for i in items]
            self.partial = self.partial or cut
        return rows


def scan_pages(
    client: Any, table: str, limit: int, **scan_args: Any
) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """The table's items, a Scan page at a time, ending with the page that reaches ``limit``
    items; each with whether the table held more than was read (True on a last, cut page)."""
    args: dict[str, Any] = {"TableName": table, **scan_args}
    seen = 0
    while True:
        resp = client.scan(**args)
        items = resp.get("Items", [])
        seen += len(items)
        more = bool(resp.get("LastEvaluatedKey"))
        yield items, more and seen >= limit
        if not more or seen >= limit:
            return
        args["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def row_source(ctx: Any) -> StreamRows | ScanRows:
    """The cheapest way to see the table's new rows: its stream when it carries new images."""
    cfg = ctx.cfg
    table = ctx.client("dynamodb").describe_table(TableName=cfg.table.name)["Table"]
    spec = table.get("StreamSpecification") or {}
    images = spec.get("StreamViewType") in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")
    if spec.get("StreamEnabled") and table.get("LatestStreamArn") and images:
        return StreamRows(ctx, table["LatestStreamArn"])
    keys = [k["AttributeName"] for k in table.get("KeySchema", [])]
    return ScanRows(ctx, cfg.table.name, keys)
