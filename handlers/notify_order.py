"""POC-Lambda-2: publish each new order from the DynamoDB stream to SNS (``notify_order.handler``).

Improvements over the lab's code (Task 7.3):

* Only INSERT records are published; the lab also mailed every MODIFY and REMOVE (a REMOVE has
  no NewImage at all, so the lab's handler crashed on it and blocked the shard).
* The message is the item as plain JSON (``{"price": 9.5}``) instead of DynamoDB typed JSON
  (``{"price": {"N": "9.5"}}``), with sorted keys so it is stable.
* Partial batch response (``ReportBatchItemFailures``): a stream is retried from the first
  failed record, so that record and every later one are reported and the later ones are not
  published now. Nothing is published twice and order is kept; the lab's code re-published the
  whole batch after any error.
* A batch that runs short of time stops publishing and reports the rest as failed, so the
  retry starts where it stopped: a timeout would make Lambda retry the whole batch (bisected)
  and send again everything already published.
* No hard-coded ARN: the topic comes from ``TOPIC_ARN``.
* The client is created on first use and reused while the container is warm, so importing the
  module is cheap and ``AWS_ENDPOINT_URL`` is honoured.

Standard library and boto3 only: that is what the Lambda runtime provides.
"""

from __future__ import annotations

import base64
import json
import os
from decimal import Decimal
from typing import Any

SUBJECT = "New Order Notification"
# Time kept back for one more publish: below it, the rest of the batch is left to the retry.
# At most a fifth of the invocation's time, so a short timeout still makes progress.
RESERVE_MS = 2000

_client: Any = None  # boto3 SNS client, created on first use
_deserializer: Any = None  # boto3.dynamodb.types.TypeDeserializer


def _sns() -> Any:
    global _client
    if _client is None:
        import boto3

        _client = boto3.client("sns")
    return _client


def _log(level: str, sequence_number: str | None, reason: str) -> None:
    print(json.dumps({"level": level, "sequenceNumber": sequence_number, "reason": reason}))


def _plain(value: Any) -> Any:
    """A deserialized DynamoDB value as something ``json.dumps`` accepts."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):  # SS / NS / BS (one type each): a sorted list
        return sorted(_plain(v) for v in value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if hasattr(value, "value") and isinstance(value.value, bytes):  # boto3 Binary
        return base64.b64encode(value.value).decode("ascii")
    return value


def plain_item(new_image: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB typed JSON (``{"price": {"N": "9.5"}}``) to plain JSON (``{"price": 9.5}``)."""
    global _deserializer
    if _deserializer is None:
        from boto3.dynamodb.types import TypeDeserializer

        _deserializer = TypeDeserializer()
    return {k: _plain(_deserializer.deserialize(v)) for k, v in new_image.items()}


def _publish(record: dict[str, Any], topic_arn: str) -> None:
    new_image = record["dynamodb"].get("NewImage")
    if new_image is None:
        raise ValueError("INSERT without NewImage: the stream view type must include new images")
    message = json.dumps(plain_item(new_image), indent=2, sort_keys=True)
    _sns().publish(TopicArn=topic_arn, Subject=SUBJECT, Message=message)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, list[dict[str, str]]]:
    """Publish the INSERT records of a stream batch; report the first failure and all after it."""
    topic_arn = os.environ["TOPIC_ARN"]
    failures: list[dict[str, str]] = []
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    reserve = min(RESERVE_MS, remaining() // 5) if remaining else 0
    published = 0
    for record in event.get("Records") or []:
        sequence_number = record["dynamodb"]["SequenceNumber"]
        if failures:  # Lambda resumes from the first failure: do not publish past it
            failures.append({"itemIdentifier": sequence_number})
            continue
        if record.get("eventName") != "INSERT":
            continue
        if published and remaining and remaining() < reserve:
            _log("WARNING", sequence_number, "running out of time: the retry goes on from here")
            failures.append({"itemIdentifier": sequence_number})
            continue
        published += 1
        try:
            _publish(record, topic_arn)
        except Exception as exc:  # report, so Lambda retries from this record
            _log("ERROR", sequence_number, f"{type(exc).__name__}: {exc}")
            failures.append({"itemIdentifier": sequence_number})
    return {"batchItemFailures": failures}
