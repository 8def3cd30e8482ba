"""Task 9: send orders through the API and follow each one to the table and to the topic.

A temporary probe queue, subscribed to the topic with raw delivery, sees every notification; it
is always deleted afterwards. The same code runs against AWS and the embedded AWS.
"""

from __future__ import annotations

import json
import statistics
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pocctl import arns, aws
from pocctl.aws import AwsError
from pocctl.resources.base import Context

# Orders per second by default: steady traffic, below what the embedded AWS gets through (a burst
# of 100 goes at ~40/s), so that test-order measures the pipeline, not a queue of its own making.
DEFAULT_RATE = 20.0
# Longest single sleep while an order waits for its time: a stop (Ctrl-C) is seen this soon.
_PACING_SLICE = 0.25


@dataclass
class Order:
    number: int
    body: str
    sent_at: float = 0.0
    status: int | None = None
    response: str = ""
    order_id: str | None = None
    accepted: float | None = None  # seconds from POST to the API's answer
    stored: float | None = None  # ... to the row being readable
    notified: float | None = None  # ... to the notification reaching the probe
    notifications: int = 0
    throttled: int = 0  # 429 answers retried before the API took the order

    @property
    def ok(self) -> bool:
        return self.stored is not None and self.notifications == 1


@dataclass
class Report:
    orders: list[Order]
    url: str
    seconds: float
    duplicates: int = 0
    stray: int = 0  # notifications for orders this run did not send
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(o.ok for o in self.orders)

    def percentiles(self, attr: str) -> tuple[float, float] | None:
        values = sorted(getattr(o, attr) for o in self.orders if getattr(o, attr) is not None)
        if not values:
            return None
        return _pct(values, 50), _pct(values, 95)


def _pct(values: list[float], p: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def default_body(i: int, run: str) -> str:
    return json.dumps(
        {"item": "all-purpose cleaner", "quantity": i + 1, "customer": f"pocctl-test-{run}"}
    )


# A throttled POST is sent again after 0.1, 0.2, 0.4 ... 3.2 s (6.3 s in all), then reported.
THROTTLE_RETRIES = 6
THROTTLE_BACKOFF = 0.1


def post(url: str, body: str, timeout: float = 30.0) -> tuple[int, str]:
    req = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (the API's URL)
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def probe_queue_policy(queue_arn: str, topic_arn: str) -> dict[str, Any]:
    """Only this topic may send to the probe."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TopicOnly",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }


class Probe:
    """A queue subscribed to the topic for the length of a test; always removed by close()."""

    def __init__(self, ctx: Context, topic_arn: str) -> None:
        self.ctx = ctx
        self.topic_arn = topic_arn
        self.name = f"pocctl-probe-{uuid.uuid4().hex[:12]}"
        self.url: str | None = None
        self.subscription: str | None = None

    def open(self) -> None:
        sqs, sns = self.ctx.client("sqs"), self.ctx.client("sns")
        arn = arns.queue(self.ctx, self.name)
        policy = probe_queue_policy(arn, self.topic_arn)
        self.url = sqs.create_queue(
            QueueName=self.name,
            Attributes={"Policy": json.dumps(policy), "MessageRetentionPeriod": "3600"},
            tags={"pocctl": "test-order-probe"},
        )["QueueUrl"]
        self.subscription = sns.subscribe(
            TopicArn=self.topic_arn,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "true"},
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]

    def receive(self, wait: int = 1) -> list[str]:
        sqs = self.ctx.client("sqs")
        msgs = sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
        ).get("Messages", [])
        if msgs:
            sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)
                ],
            )
        return [m["Body"] for m in msgs]

    def close(self) -> None:
        if self.subscription:
            try:
                self.ctx.client("sns").unsubscribe(SubscriptionArn=self.subscription)
            finally:
                self.subscription = None
        if self.url:
            try:
                self.ctx.client("sqs").delete_queue(QueueUrl=self.url)
            finally:
                self.url = None


def run(
    ctx: Context,
    url: str,
    *,
    count: int = 1,
    body: str | None = None,
    timeout: float = 60.0,
    concurrency: int = 10,
    rate: float | None = DEFAULT_RATE,
    progress: Callable[[str], None] = lambda s: None,
) -> Report:
    """POST ``count`` orders to ``url`` and wait until each is stored and notified (or timeout).

    Open loop: order i (from 0) is sent ``i / rate`` seconds after the first, whatever became of
    the orders before it, with at most ``concurrency`` POSTs in flight; ``rate`` 0 or None sends
    as fast as ``concurrency`` allows.
    """
    if rate is not None and rate < 0:
        raise ValueError(f"rate must be 0 (unpaced) or more orders per second, not {rate}")
    cfg = ctx.cfg
    topic = arns.topic(ctx)
    run_id = uuid.uuid4().hex[:8]
    orders = [
        Order(i + 1, body if body is not None else default_body(i, run_id)) for i in range(count)
    ]
    probe = Probe(ctx, topic)
    start = aws.monotonic()
    report = Report(orders, url, 0.0)
    accepted = Accepted()
    try:
        probe.open()
        progress(f"probe queue {probe.name} subscribed to {cfg.topic.name}")
        _send_and_follow(
            ctx,
            probe,
            report,
            url,
            rate=rate,
            concurrency=concurrency,
            timeout=timeout,
            accepted=accepted,
        )
        report.problems.extend(
            f"order {o.number}: the API answered {o.status}: {o.response.strip()[:200]}"
            for o in orders
            if o.status != 200 or not o.order_id
        )
        progress(f"{len(accepted.orders)} of {count} orders accepted and followed")
    finally:
        probe.close()
    report.seconds = aws.monotonic() - start
    report.problems.extend(_unfinished(report.orders))
    return report


def _send_and_follow(
    ctx: Context,
    probe: Probe,
    report: Report,
    url: str,
    *,
    rate: float | None,
    concurrency: int,
    timeout: float,
    accepted: Accepted,
) -> None:
    """Send the report's orders on their schedule, and follow each one meanwhile."""
    stop = threading.Event()  # set when following fails or is interrupted: send no more
    first = aws.monotonic()  # when order 1 is due

    def send(o: Order) -> None:
        _send(o, url, first=first, rate=rate, stop=stop, accepted=accepted)

    # Orders are followed while the rest are still being sent: an order's times are when
    # it was seen stored and notified, not when the last POST came back.
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(report.orders)))) as pool:
        sending = [pool.submit(send, o) for o in report.orders]
        try:
            _follow(
                ctx,
                probe,
                accepted,
                report,
                sending=lambda: not all(f.done() for f in sending),
                timeout=timeout,
            )
        except BaseException:
            # e.g. Ctrl-C: the orders not yet sent are not sent (a paced run has many).
            stop.set()
            for f in sending:
                f.cancel()
            raise
        for f in sending:
            f.result()  # a POST that raised (not an HTTP error: those are answers) fails here


def _unfinished(orders: list[Order]) -> list[str]:
    """What became of each accepted order that did not go through exactly once."""
    problems = []
    for o in orders:
        if o.order_id and o.stored is None:
            problems.append(f"order {o.number} ({o.order_id}) was not stored in time")
        elif o.order_id and o.notifications == 0:
            problems.append(f"order {o.number} ({o.order_id}) was stored but not notified")
        elif o.notifications > 1:
            problems.append(f"order {o.number} was notified {o.notifications} times")
    return problems


def _send(
    o: Order,
    url: str,
    *,
    first: float,
    rate: float | None,
    stop: threading.Event,
    accepted: Accepted,
) -> None:
    """POST order ``o`` when it is due (``first`` + its place / ``rate``), unless ``stop``."""
    if rate:
        due = first + (o.number - 1) / rate
        while not stop.is_set() and (wait := due - aws.monotonic()) > 0:
            aws.sleep(min(wait, _PACING_SLICE))
    if stop.is_set():
        return
    o.sent_at = aws.monotonic()  # latencies count from the POST, not from the schedule
    o.status, o.response = post(url, o.body)
    # 429: the stage throttle refused the order (nothing was enqueued); back off and
    # send it again, as an AWS client should. Its times include the wait.
    while o.status == 429 and o.throttled < THROTTLE_RETRIES and not stop.is_set():
        aws.sleep(THROTTLE_BACKOFF * 2**o.throttled)
        o.throttled += 1
        o.status, o.response = post(url, o.body)
    o.accepted = aws.monotonic() - o.sent_at
    if o.status == 200:
        try:
            o.order_id = json.loads(o.response).get("messageId") or None
        except (json.JSONDecodeError, AttributeError):
            o.order_id = None
    if o.order_id:
        accepted.add(o)


class Accepted:
    """The orders the API accepted so far, by order ID; filled by the sending threads."""

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self._lock = threading.Lock()

    def add(self, o: Order) -> None:
        with self._lock:
            self.orders[o.order_id or ""] = o

    def snapshot(self) -> dict[str, Order]:
        with self._lock:
            return dict(self.orders)


def _follow(
    ctx: Context,
    probe: Probe,
    accepted: Accepted,
    report: Report,
    *,
    sending: Callable[[], bool],
    timeout: float,
) -> None:
    """Follow the orders to the table and the probe until all are seen, or ``timeout`` seconds
    after the last POST was answered."""
    key = ctx.cfg.table.partition_key
    known: dict[str, Order] = {}
    unstored: set[str] = set()
    unnotified: set[str] = set()
    early: list[str] = []  # notifications seen before their POST's answer was read
    deadline: float | None = None

    def note(oid: str | None, now: float) -> bool:
        o = known.get(oid or "")
        if o is None:
            return False
        o.notifications += 1
        if o.notifications == 1:
            o.notified = now - o.sent_at
            unnotified.discard(oid or "")
        else:
            report.duplicates += 1
        return True

    while True:
        still_sending = sending()  # read before the snapshot: no order can slip between them
        for oid, o in accepted.snapshot().items():
            if oid not in known:
                known[oid] = o
                unstored.add(oid)
                unnotified.add(oid)
        now = aws.monotonic()
        early = [oid for oid in early if not note(oid, now)]
        if not still_sending and deadline is None:
            deadline = now + timeout
        if not (still_sending or unstored or unnotified) or (deadline and now >= deadline):
            break
        _look_up_stored(ctx, known, unstored)
        # The long poll paces the loop: no sleeping.
        for body in probe.receive(wait=1 if (unnotified or still_sending) else 0):
            oid = _order_id(body, key)
            if not note(oid, aws.monotonic()):
                early.append(oid or "")
    # A last look for duplicates that arrived with the final notifications.
    for body in probe.receive(wait=0):
        oid = _order_id(body, key)
        if not note(oid, aws.monotonic()):
            early.append(oid or "")
    report.stray += len(early)


def _look_up_stored(ctx: Context, known: dict[str, Order], unstored: set[str]) -> None:
    """Mark the orders of ``unstored`` the table holds now as stored, and drop them from it."""
    ddb = ctx.client("dynamodb")
    table, key = ctx.cfg.table.name, ctx.cfg.table.partition_key
    for chunk in _chunks(sorted(unstored), 100):
        resp = ddb.batch_get_item(
            RequestItems={
                table: {
                    "Keys": [{key: {"S": oid}} for oid in chunk],
                    "ProjectionExpression": "#k",
                    "ExpressionAttributeNames": {"#k": key},
                }
            }
        )
        now = aws.monotonic()
        for item in resp.get("Responses", {}).get(table, []):
            oid = item[key]["S"]
            known[oid].stored = now - known[oid].sent_at
            unstored.discard(oid)


def _order_id(body: str, key: str) -> str | None:
    try:
        msg = json.loads(body)
    except json.JSONDecodeError:
        return None
    return msg.get(key) if isinstance(msg, dict) else None


def _chunks(items: list[str], n: int) -> list[list[str]]:
    return [items[i : i + n] for i in range(0, len(items), n)]


def find_invoke_url(ctx: Context) -> str:
    from pocctl.resources.apigateway import RestApi

    api = RestApi(ctx.cfg)
    observed = api.find(ctx)
    if observed is None or not observed.get("stage"):
        raise AwsError(
            f"REST API {ctx.cfg.api.name} is not deployed",
            hint="run `pocctl up` (or `pocctl api`) first",
        )
    return api.identity(ctx, observed)["url"]
