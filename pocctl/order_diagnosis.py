"""Where a missing test order stopped: the hop, where the order is now, the function's last error.

Nothing here disturbs the pipeline. The order queue has a consumer (Lambda 1's trigger): it is
only counted (GetQueueAttributes), never received from, since a receive raises a message's
ApproximateReceiveCount toward the DLQ's maxReceiveCount. The DLQ and Lambda 2's failure queue
have no consumer: their messages are received for a moment (VisibilityTimeout 10 s) to be
matched by marker, and made visible again at once (ChangeMessageVisibility 0).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pocctl import arns, aws

# Messages one peek reads from a queue at most (10 per ReceiveMessage).
PEEK_LIMIT = 200
# Log events read at most when looking for a function's last error (FilterLogEvents pages).
LOG_PAGES = 5


@dataclass
class LogError:
    function: str
    type: str
    message: str
    log_stream: str
    time: float  # epoch seconds


@dataclass
class Finding:
    """Orders that stopped at the same hop and are in the same place."""

    hop: str  # e.g. "POC-Queue → POC-Lambda-1 → orders"
    orders: list[int]
    where: str  # where they are now
    error: LogError | None = None
    why: str = ""  # what test-order saw that explains it (a missing trigger, no error logged)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def diagnose(ctx: Any, report: Any) -> list[Finding]:
    """A finding per hop and place for the report's missing orders; a failed look is itself
    reported (as what could not be seen), never raised."""
    since = report.started_wall
    unstored = [o for o in report.orders if o.answered and not o.rows]
    unnotified = [o for o in report.orders if o.answered and o.rows and not o.notifications]
    findings: list[Finding] = []
    for orders, look in ((unstored, _not_stored), (unnotified, _not_notified)):
        if not orders:
            continue
        try:
            findings += look(ctx, orders, since)
        except Exception as e:  # noqa: BLE001 (a diagnosis must not hide the report)
            findings.append(
                Finding(
                    "?", [o.number for o in orders], "unknown", why=f"could not look: {_err(e)}"
                )
            )
    return findings


def _err(e: BaseException) -> str:
    return f"{aws.error_code(e) or type(e).__name__}: {aws.error_message(e)}"


def _not_stored(ctx: Any, orders: list[Any], since: float) -> list[Finding]:
    cfg = ctx.cfg
    hop = f"{cfg.queue.name} → {cfg.lambda1.name} → table {cfg.table.name}"
    sqs = ctx.client("sqs")
    why = _trigger_problem(ctx, cfg.lambda1.name, arns.queue(ctx, cfg.queue.name))
    visible, in_flight = _queue_counts(sqs, cfg.queue.name)
    in_dlq = _peek(sqs, cfg.queue.dead_letter_queue, lambda body: _markers(orders, body))
    places: dict[str, list[int]] = {}
    for o in orders:
        if o.number in in_dlq:
            where = (
                f"in the DLQ {cfg.queue.dead_letter_queue} "
                f"(ApproximateReceiveCount {in_dlq[o.number]})"
            )
        elif visible or in_flight:
            where = (
                f"in {cfg.queue.name}: {visible} message(s) visible, {in_flight} in flight "
                f"(received and not deleted: the function failed or is running; it comes back "
                f"after the {cfg.queue.visibility_timeout} s visibility timeout and goes to "
                f"{cfg.queue.dead_letter_queue} after {cfg.queue.max_receive_count} receives)"
            )
        else:
            where = (
                f"nowhere: not in {cfg.queue.name} nor in {cfg.queue.dead_letter_queue}, so "
                f"{cfg.lambda1.name} took it and reported success, but no row carries its marker"
            )
        places.setdefault(where, []).append(o.number)
    error = latest_error(ctx, cfg.lambda1.name, since)
    if not why and error is None:
        why = f"{cfg.lambda1.name} logged no error since the test began"
    return [Finding(hop, numbers, where, error, why) for where, numbers in places.items()]


def _not_notified(ctx: Any, orders: list[Any], since: float) -> list[Finding]:
    cfg = ctx.cfg
    hop = f"table {cfg.table.name} → stream → {cfg.lambda2.name} → {cfg.topic.name}"
    table = ctx.client("dynamodb").describe_table(TableName=cfg.table.name)["Table"]
    enabled = (table.get("StreamSpecification") or {}).get("StreamEnabled")
    stream = table.get("LatestStreamArn") if enabled else None
    why = (
        _trigger_problem(ctx, cfg.lambda2.name, stream)
        if stream
        else f"table {cfg.table.name} has no stream: nothing triggers {cfg.lambda2.name}"
    )
    failed = _failure_records(ctx, orders) if cfg.lambda2.on_failure_queue else {}
    places: dict[str, list[int]] = {}
    for o in orders:
        if o.number in failed:
            where = (
                f"a row without a notification; its stream record is in {cfg.lambda2.name}'s "
                f"failure queue {cfg.lambda2.on_failure_queue} ({failed[o.number]})"
            )
        else:
            where = "a row without a notification"
        places.setdefault(where, []).append(o.number)
    error = latest_error(ctx, cfg.lambda2.name, since)
    if not why and error is None:
        why = (
            f"{cfg.lambda2.name} logged no error since the test began: it ran (or was never "
            f"invoked) without publishing a message carrying the order to {cfg.topic.name}"
        )
    return [Finding(hop, numbers, where, error, why) for where, numbers in places.items()]


def _trigger_problem(ctx: Any, function: str, source_arn: str | None) -> str:
    """Why ``function`` gets nothing from ``source_arn``, or "" when its trigger is there."""
    resp = ctx.client("lambda").list_event_source_mappings(
        FunctionName=function, EventSourceArn=source_arn
    )
    mappings = resp.get("EventSourceMappings", [])
    if not mappings:
        return f"{function} has no trigger (event source mapping) on {source_arn}"
    states = {m.get("State") for m in mappings}
    if states & {"Enabled", "Enabling", "Creating", "Updating"}:
        return ""
    return f"{function}'s trigger on {source_arn} is {', '.join(sorted(map(str, states)))}"


def _queue_counts(sqs: Any, name: str) -> tuple[int, int]:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attrs.get("ApproximateNumberOfMessages", 0)),
        int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )


def _markers(orders: list[Any], body: str) -> list[int]:
    return [o.number for o in orders if o.marker and o.marker in body]


def _peek(sqs: Any, name: str, match: Callable[[str], list[int]]) -> dict[int, str]:
    """Orders whose messages are in queue ``name`` (no consumer), each with its receive count;
    every message read is made visible again. A queue that is not there holds nothing."""
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except Exception as e:
        if "NonExistentQueue" in aws.error_code(e) or "QueueDoesNotExist" in aws.error_code(e):
            return {}
        raise
    found: dict[int, str] = {}
    handles: list[str] = []
    try:
        while len(handles) < PEEK_LIMIT:
            msgs = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=10,
                AttributeNames=["ApproximateReceiveCount"],
            ).get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                handles.append(m["ReceiptHandle"])
                count = (m.get("Attributes") or {}).get("ApproximateReceiveCount", "?")
                for n in match(m.get("Body", "")):
                    found[n] = str(count)
    finally:
        for i in range(0, len(handles), 10):
            sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(j), "ReceiptHandle": h, "VisibilityTimeout": 0}
                    for j, h in enumerate(handles[i : i + 10])
                ],
            )
    return found


def _failure_records(ctx: Any, orders: list[Any]) -> dict[int, str]:
    """Orders whose stream record lies in a batch Lambda 2 gave up on: its failure queue holds
    the batch's shard and first and last sequence numbers, not the records."""

    def match(body: str) -> list[int]:
        try:
            info = json.loads(body).get("DDBStreamBatchInfo") or {}
            first, last = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return []
        return [
            o.number
            for o in orders
            if o.sequence.isdigit()
            and o.shard == info.get("shardId")
            and first <= int(o.sequence) <= last
        ]

    found = _peek(ctx.client("sqs"), ctx.cfg.lambda2.on_failure_queue, match)
    return {n: f"ApproximateReceiveCount {c}" for n, c in found.items()}


# -- the function's last error, from its log group ----------------------------------------------

# The Python runtime's unhandled error ("[ERROR] KeyError: 'TABLE'" then the traceback), a
# logging record ("[ERROR]\t<time>\t<request id>\t<message>"), a timeout, and JSON logs.
_RUNTIME = re.compile(r"^\[ERROR\] (?P<type>[\w.]+): ?(?P<message>[^\n]*)")
_LOGGING = re.compile(r"^\[ERROR\]\t\S+\t\S+\t(?P<message>[^\n]*)")
_TIMEOUT = re.compile(r"Task timed out after [\d.]+ seconds")


def parse_error(message: str) -> tuple[str, str] | None:
    """(error type, message) of a log event that reports an error, else None."""
    text = message.strip()
    if m := _RUNTIME.match(text):
        return m["type"], m["message"]
    if m := _LOGGING.match(text):
        return "ERROR", m["message"]
    if m := _TIMEOUT.search(text):
        return "Timeout", m.group(0)
    if text.startswith("{"):
        try:
            event = json.loads(text)
        except json.JSONDecodeError:
            return None
        if isinstance(event, dict) and str(event.get("level", "")).upper() == "ERROR":
            reason = str(event.get("errorMessage") or event.get("reason") or event.get("message"))
            kind = event.get("errorType") or reason.split(":", 1)[0]
            return str(kind), reason
    return None


def latest_error(ctx: Any, function: str, since: float) -> LogError | None:
    """The last error ``function`` logged since ``since`` (epoch s): bounded FilterLogEvents on
    /aws/lambda/<function>, from just before the test (a quarter second for clocks that
    differ) to now."""
    from pocctl.observe import log_events

    events = log_events(
        ctx.client("logs"),
        function,
        int((since - 0.25) * 1000),
        end_ms=int(time.time() * 1000) + 1000,
        max_pages=LOG_PAGES,
    )
    last: LogError | None = None
    for event in events or []:  # None: the function never ran (no log group)
        parsed = parse_error(event.get("message", ""))
        if parsed:
            last = LogError(
                function,
                parsed[0],
                parsed[1],
                event.get("logStreamName", ""),
                event.get("timestamp", 0) / 1000,
            )
    return last
