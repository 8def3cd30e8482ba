"""POC-Lambda-1: store each order from the SQS queue in DynamoDB (handler ``store_order.handler``).

Improvements over the lab's code (Task 4.3):

* Idempotent: the key is the SQS ``messageId`` (stable across redeliveries) written with
  ``attribute_not_exists``, so a message delivered twice is stored once. The lab used a fresh
  ``uuid4`` per delivery, so every redelivery created a duplicate order (and a duplicate email).
* The order is stored as a DynamoDB map parsed from JSON (floats as ``Decimal``), not as an
  opaque string; a body that is not a JSON object is rejected.
* Partial batch response (``ReportBatchItemFailures``): one bad record is retried (and ends in
  the dead-letter queue) on its own instead of failing, and redelivering, the whole batch.
* No hard-coded names: the table and key come from ``TABLE_NAME`` / ``PARTITION_KEY``.
* The client is created on first use and reused while the container is warm, so importing the
  module is cheap and ``AWS_ENDPOINT_URL`` is honoured.

Standard library and boto3 only: that is what the Lambda runtime provides.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

DEFAULT_PARTITION_KEY = "orderID"

_client: Any = None  # boto3 DynamoDB client, created on first use
_serializer: Any = None  # boto3.dynamodb.types.TypeSerializer


class BadMessage(ValueError):
    """The record can never be stored as it is (retrying will not help)."""


def _dynamodb() -> tuple[Any, Any]:
    global _client, _serializer
    if _client is None:
        import boto3
        from boto3.dynamodb.types import TypeSerializer

        _client = boto3.client("dynamodb")
        _serializer = TypeSerializer()
    return _client, _serializer


def _log(level: str, message_id: str | None, reason: str) -> None:
    print(json.dumps({"level": level, "messageId": message_id, "reason": reason}))


def _reject_constant(name: str) -> Any:
    raise BadMessage(f"body contains {name}, which is not valid JSON")


def parse_order(body: Any) -> dict[str, Any]:
    """The record body as a JSON object, numbers with a fraction as ``Decimal``."""
    if not isinstance(body, str):
        raise BadMessage("body is missing")
    try:
        order = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise BadMessage(f"body is not valid JSON: {exc}") from None
    if not isinstance(order, dict):
        raise BadMessage(f"body is JSON {type(order).__name__}, not an object")
    return order


def received_at(record: dict[str, Any]) -> str | None:
    """ISO-8601 UTC time the message was sent to the queue, from ``SentTimestamp`` (ms)."""
    raw = (record.get("attributes") or {}).get("SentTimestamp")
    try:
        millis = int(raw)
        when = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=millis)
    except (TypeError, ValueError, OverflowError):
        return None
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _store(record: dict[str, Any], table: str, key: str) -> None:
    order = parse_order(record.get("body"))
    item: dict[str, Any] = {key: record["messageId"], "order": order}
    sent = received_at(record)
    if sent is not None:
        item["receivedAt"] = sent
    client, serializer = _dynamodb()
    try:
        typed = {name: serializer.serialize(value) for name, value in item.items()}
    except (TypeError, ArithmeticError) as exc:  # e.g. a number with more than 38 digits
        raise BadMessage(f"order cannot be stored in DynamoDB: {exc}") from None
    try:
        client.put_item(
            TableName=table,
            Item=typed,
            ConditionExpression="attribute_not_exists(#k)",
            ExpressionAttributeNames={"#k": key},
        )
    except client.exceptions.ConditionalCheckFailedException:
        _log("INFO", record["messageId"], "already stored (redelivery)")


def handler(event: dict[str, Any], context: Any = None) -> dict[str, list[dict[str, str]]]:
    """Store every record of an SQS batch; report the ones that could not be stored."""
    table = os.environ["TABLE_NAME"]
    key = os.environ.get("PARTITION_KEY") or DEFAULT_PARTITION_KEY
    failures: list[dict[str, str]] = []
    for record in event.get("Records") or []:
        message_id = record["messageId"]
        try:
            _store(record, table, key)
        except Exception as exc:  # one bad record must not fail the whole batch
            _log("ERROR", message_id, f"{type(exc).__name__}: {exc}")
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
