"""Task 9: send orders through the API and follow each one to the table and to the topic.

A temporary probe queue, subscribed to the topic with raw delivery, sees every notification; it
is always deleted afterwards. The same code runs against AWS and the embedded AWS.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pocctl import arns, aws, order_find
from pocctl.aws import AwsError
from pocctl.resources.base import Context

# Orders per second by default: steady traffic, below what the embedded AWS gets through (a burst
# of 100 goes at ~40/s), so that test-order measures the pipeline, not a queue of its own making.
DEFAULT_RATE = 20.0
# Longest single sleep while an order waits for its time: a stop (Ctrl-C) is seen this soon.
_PACING_SLICE = 0.25
# Seconds between two reads of the table's new rows while notifications keep coming: a row's
# time is its own (its stream record's), so reading it later changes only the counters.
ROWS_EVERY = 0.25
# The probe receives each notification once for the whole test: hidden for 12 h (SQS's most)
# instead of deleted, which saves a DeleteMessageBatch per receive; close() deletes the queue.
_HIDDEN = 43200


@dataclass
class Order:
    number: int
    body: str
    marker: str = ""  # in the body: how its row and notification are found, whatever their shape
    sent_at: float = 0.0  # aws.monotonic() at the POST
    sent_wall: float = 0.0  # time.time() at the POST: AWS's own times are wall-clock times
    status: int | None = None
    response: str = ""
    order_id: str | None = None  # the API's messageId, when it answers one
    accepted: float | None = None  # seconds from POST to the API's answer
    stored: float | None = None  # ... to the row being written (see _settle_times)
    notified: float | None = None  # ... to the notification reaching the probe
    notifications: int = 0
    throttled: int = 0  # 429 answers retried before the API took the order
    rows: list[str] = field(default_factory=list)  # keys of the rows carrying its marker
    writes: int = 0  # stream records carrying its marker (a row written again counts again)
    shard: str = ""  # its row's stream record: matched against Lambda 2's failure records
    sequence: str = ""
    seen_stored: float | None = None  # when pocctl first saw its row / notification
    seen_notified: float | None = None
    row_created: float | None = None  # epoch: the stream record's ApproximateCreationDateTime
    notification_sent: float | None = None  # epoch: SQS's SentTimestamp on the probe message

    @property
    def answered(self) -> bool:
        """The API took it (a 2xx answer)."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def ok(self) -> bool:
        return self.stored is not None and self.notifications == 1 and len(self.rows) <= 1


@dataclass
class Report:
    orders: list[Order]
    url: str
    seconds: float
    duplicates: int = 0
    stray: int = 0  # notifications carrying no marker of this run
    problems: list[str] = field(default_factory=list)
    run_id: str = ""
    started_wall: float = 0.0
    found_by: str = ""  # "stream" or "scan": how rows were found
    stray_rows: int = 0  # rows written during the run that carry no marker of this run
    samples: dict[str, str] = field(default_factory=dict)  # a stray row / notification, as seen
    notes: list[str] = field(default_factory=list)  # what test-order could not tell
    diagnosis: list[Any] = field(default_factory=list)  # order_diagnosis.Finding

    @property
    def ok(self) -> bool:
        return not self.problems and all(o.ok for o in self.orders)

    def percentiles(self, attr: str) -> tuple[float, float] | None:
        values = sorted(getattr(o, attr) for o in self.orders if getattr(o, attr) is not None)
        if not values:
            return None
        return _pct(values, 50), _pct(values, 95)


@dataclass
class Counts:
    """How far the orders got so far: test-order's live counters."""

    count: int
    sent: int = 0
    accepted: int = 0
    stored: int = 0
    notified: int = 0
    elapsed: float = 0.0

    def line(self) -> str:
        return (
            f"sent {self.sent}/{self.count} · accepted {self.accepted} · stored {self.stored} · "
            f"notified {self.notified} · {self.elapsed:.0f} s"
        )


def report_json(report: Report) -> dict[str, Any]:
    """The whole report as `test-order --json` writes it (times in seconds since each POST)."""
    keys = ("number", "marker", "order_id", "status", "accepted", "stored", "notified")
    orders = [
        {
            **{k: getattr(o, k) for k in keys},
            "notifications": o.notifications,
            "rows": o.rows,
            "throttled": o.throttled,
            "ok": o.ok,
        }
        for o in report.orders
    ]
    pct = {h: report.percentiles(h) for h in ("accepted", "stored", "notified")}
    return {
        "ok": report.ok,
        "url": report.url,
        "run_id": report.run_id,
        "seconds": report.seconds,
        "rows_found_by": report.found_by,
        "orders": orders,
        "percentiles": {h: {"p50": p[0], "p95": p[1]} if p else None for h, p in pct.items()},
        "duplicates": report.duplicates,
        "stray_notifications": report.stray,
        "stray_rows": report.stray_rows,
        "samples": report.samples,
        "problems": report.problems,
        "notes": report.notes,
        "diagnosis": [f.to_json() for f in report.diagnosis],
    }


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
        self.opened = False

    def open(self) -> None:
        self.opened = True
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

    def receive(self, wait: int = 1) -> list[tuple[str, int | None]]:
        """The notifications that arrived, each with SQS's SentTimestamp (ms)."""
        sqs = self.ctx.client("sqs")
        msgs = sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait,
            VisibilityTimeout=_HIDDEN,
            AttributeNames=["SentTimestamp"],
        ).get("Messages", [])
        return [(m["Body"], _int((m.get("Attributes") or {}).get("SentTimestamp"))) for m in msgs]

    def close(self) -> None:
        if self.subscription is None and self.opened:
            # Stopped (Ctrl-C) while a create call was in flight: AWS may have made what this
            # object never recorded, so look it up by name.
            self.subscription, self.url = self._find_subscription(), self.url or self._find_url()
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

    def _find_url(self) -> str | None:
        try:
            return self.ctx.client("sqs").get_queue_url(QueueName=self.name)["QueueUrl"]
        except Exception:  # QueueDoesNotExist: the create never happened
            return None

    def _find_subscription(self) -> str | None:
        arn = arns.queue(self.ctx, self.name)
        pages = self.ctx.client("sns").get_paginator("list_subscriptions_by_topic")
        try:
            for page in pages.paginate(TopicArn=self.topic_arn):
                for sub in page.get("Subscriptions", []):
                    if sub.get("Endpoint") == arn and sub["SubscriptionArn"].startswith("arn:"):
                        return str(sub["SubscriptionArn"])
        except Exception:  # the topic is gone: nothing of ours is subscribed to it
            return None
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


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
    counters: Callable[[Counts], None] = lambda c: None,
    diagnose: bool = True,
) -> Report:
    """POST ``count`` orders to ``url`` and wait until each is stored and notified (or timeout).

    Open loop: order i (from 0) is sent ``i / rate`` seconds after the first, whatever became of
    the orders before it, with at most ``concurrency`` POSTs in flight; ``rate`` 0 or None sends
    as fast as ``concurrency`` allows. Each body carries a marker (``pocctl_marker``) by which
    its row and its notification are found. ``counters`` is told how far the orders got, about
    once a second; when an order is missing, ``diagnose`` looks for where it stopped.
    """
    if rate is not None and rate < 0:
        raise ValueError(f"rate must be 0 (unpaced) or more orders per second, not {rate}")
    run_id = order_find.new_run_id()
    orders = []
    for i in range(count):
        mark = order_find.marker(run_id, i + 1)
        text = order_find.marked_body(body if body is not None else default_body(i, run_id), mark)
        orders.append(Order(i + 1, text, marker=mark))
    probe = Probe(ctx, arns.topic(ctx))
    start = aws.monotonic()
    report = Report(orders, url, 0.0, run_id=run_id, started_wall=time.time())
    try:
        rows = order_find.row_source(ctx)
        report.found_by = rows.how
        rows.start()
        probe.open()
        progress(f"probe queue {probe.name} subscribed to {ctx.cfg.topic.name}")
        follower = Follower(report, probe, rows, counters, start)
        _send_and_follow(follower, url, rate=rate, concurrency=concurrency, timeout=timeout)
        report.problems.extend(
            f"order {o.number}: the API answered {o.status}: {o.response.strip()[:200]}"
            for o in orders
            if o.status is not None and not o.answered
        )
        progress(f"{sum(o.answered for o in orders)} of {count} orders accepted and followed")
    finally:
        probe.close()
    report.seconds = aws.monotonic() - start
    for o in orders:
        _settle_times(o)
    report.problems.extend(_unfinished(report.orders))
    report.notes.extend(_blind_spots(report, rows))
    if diagnose and any(o.answered and not o.ok for o in orders):
        from pocctl import order_diagnosis

        report.diagnosis = order_diagnosis.diagnose(ctx, report)
    return report


class Follower:
    """Follows the orders to the table (its new rows) and to the topic (the probe), by marker."""

    def __init__(
        self,
        report: Report,
        probe: Probe,
        rows: Any,
        counters: Callable[[Counts], None],
        start: float,
    ) -> None:
        self.report, self.probe, self.rows = report, probe, rows
        self.counters, self.start = counters, start
        self.pattern = order_find.marker_pattern(report.run_id)
        self.by_number = {o.number: o for o in report.orders}
        self.rows_polled = -ROWS_EVERY
        self.idle = True  # the last probe poll brought nothing
        self.open = set(self.by_number)  # orders not yet both stored and notified
        self.counted = -1.0  # when the counters were last told

    def pending(self) -> bool:
        """An order the API took is not yet stored and notified."""
        done = [n for n in self.open if self.by_number[n].rows and self.by_number[n].notifications]
        self.open.difference_update(done)
        return any(self.by_number[n].answered for n in self.open)

    def look(self, wait: int) -> None:
        """A poll of the table's new rows (at most every ROWS_EVERY s while notifications keep
        coming), then one (long) poll of the probe."""
        now = aws.monotonic()
        if wait == 0 or self.idle or now - self.rows_polled >= ROWS_EVERY:
            self.rows_polled = now
            for row in self.rows.poll():
                self._row(row)
        received = self.probe.receive(wait=wait)
        self.idle = not received
        for body, sent_ms in received:
            self._notification(body, sent_ms)
        if aws.monotonic() - self.counted >= 0.5:  # a terminal shows no faster; 10,000 orders
            self.counted = aws.monotonic()
            self.counters(self.counts())

    def counts(self) -> Counts:
        orders = self.report.orders
        return Counts(
            len(orders),
            sent=sum(o.sent_at > 0 for o in orders),
            accepted=sum(o.answered for o in orders),
            stored=sum(bool(o.rows) for o in orders),
            notified=sum(o.notifications > 0 for o in orders),
            elapsed=aws.monotonic() - self.start,
        )

    def _row(self, row: order_find.Row) -> None:
        numbers = order_find.numbers_in(row.text, self.pattern)
        found = [self.by_number[n] for n in numbers if n in self.by_number]
        if not found and self.rows.how == "stream":  # a Scan sees every older row too
            self.report.stray_rows += 1
            self.report.samples.setdefault("row", row.text[:300])
        now = aws.monotonic()
        for o in found:
            if self.rows.how == "stream":  # a Scan sees the same row again on every poll
                o.writes += 1
            if row.key in o.rows:
                continue
            o.rows.append(row.key)
            if len(o.rows) == 1:
                o.seen_stored = now - o.sent_at
                o.row_created, o.shard, o.sequence = row.created, row.shard, row.sequence

    def _notification(self, body: str, sent_ms: int | None) -> None:
        numbers = order_find.numbers_in(body, self.pattern)
        found = [self.by_number[n] for n in numbers if n in self.by_number]
        if not found:
            self.report.stray += 1
            self.report.samples.setdefault("notification", body[:300])
        now = aws.monotonic()
        for o in found:
            o.notifications += 1
            if o.notifications > 1:
                self.report.duplicates += 1
                continue
            o.seen_notified = now - o.sent_at
            o.notification_sent = sent_ms / 1000 if sent_ms else None


def _settle_times(o: Order) -> None:
    """An order's stored and notified times, from AWS's own clocks where they tell them.

    stored: when the table's stream says the row was written (ApproximateCreationDateTime); AWS
    rounds that down to the second, so a whole second counts as its end. It is never later than
    when pocctl first saw the row, nor than the notification the row caused: the earliest of
    these is taken, so notified never comes before stored. A table without a stream (Scan): when
    pocctl first saw the row, or the notification, whichever came first.
    notified: SQS's SentTimestamp of the probe's message (ms), else when pocctl received it.
    """
    if o.notifications:
        times = [o.seen_notified]
        if o.notification_sent is not None:
            times.append(o.notification_sent - o.sent_wall)
        o.notified = min(t for t in times if t is not None)
    if o.rows:
        times = [o.seen_stored, o.notified]
        if o.row_created is not None:
            coarse = o.row_created == int(o.row_created)
            times.append(o.row_created + (1.0 if coarse else 0.0) - o.sent_wall)
        o.stored = min(t for t in times if t is not None)


def _send_and_follow(
    follower: Follower,
    url: str,
    *,
    rate: float | None,
    concurrency: int,
    timeout: float,
) -> None:
    """Send the report's orders on their schedule, and follow each one meanwhile."""
    stop = threading.Event()  # set when following fails or is interrupted: send no more
    first = aws.monotonic()  # when order 1 is due
    orders = follower.report.orders

    def send(o: Order) -> None:
        _send(o, url, first=first, rate=rate, stop=stop)

    # Orders are followed while the rest are still being sent: an order's times are when
    # it was seen stored and notified, not when the last POST came back.
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(orders)))) as pool:
        sending = [pool.submit(send, o) for o in orders]
        try:
            _follow(
                follower,
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
        name = f"order {o.number} ({o.order_id or o.marker})"
        if o.answered and not o.rows:
            problems.append(f"{name} was not stored in time")
        elif o.answered and o.notifications == 0:
            problems.append(f"{name} was stored but not notified")
        if len(o.rows) > 1:
            problems.append(f"{name} was stored {len(o.rows)} times: rows {', '.join(o.rows)}")
        if o.notifications > 1:
            problems.append(f"{name} was notified {o.notifications} times")
    return problems


def _blind_spots(report: Report, rows: Any) -> list[str]:
    """What the report cannot tell, given how the handlers store the orders."""
    notes = []
    if report.found_by == "scan":
        notes.append(
            "the table has no stream of new images: rows were found by Scan, and a row written "
            "twice under the same key looks like one"
        )
        if getattr(rows, "partial", False):
            notes.append(
                f"the table holds more than {order_find.SCAN_LIMIT:,} rows: each Scan read only "
                "part of it, so an order reported missing may be there"
            )
    rewritten = [o.number for o in report.orders if o.writes > len(o.rows)]
    if rewritten:
        notes.append(
            f"{len(rewritten)} order(s) had their row written again under the same key "
            f"(e.g. order {rewritten[0]}): the key scheme hides a repeat, so a duplicate "
            "delivery cannot be told from an update"
        )
    if report.stray_rows and not any(o.rows for o in report.orders):
        notes.append(
            f"{report.stray_rows} row(s) written during the test carry no order marker: the "
            "handler does not store the order's body as sent, so rows cannot be matched to "
            f"orders (the first: {report.samples.get('row', '')})"
        )
    return notes


def _send(
    o: Order,
    url: str,
    *,
    first: float,
    rate: float | None,
    stop: threading.Event,
) -> None:
    """POST order ``o`` when it is due (``first`` + its place / ``rate``), unless ``stop``."""
    if rate:
        due = first + (o.number - 1) / rate
        while not stop.is_set() and (wait := due - aws.monotonic()) > 0:
            aws.sleep(min(wait, _PACING_SLICE))
    if stop.is_set():
        return
    o.sent_wall = time.time()
    o.sent_at = aws.monotonic()  # latencies count from the POST, not from the schedule
    o.status, o.response = post(url, o.body)
    # 429: the stage throttle refused the order (nothing was enqueued); back off and
    # send it again, as an AWS client should. Its times include the wait.
    while o.status == 429 and o.throttled < THROTTLE_RETRIES and not stop.is_set():
        aws.sleep(THROTTLE_BACKOFF * 2**o.throttled)
        o.throttled += 1
        o.status, o.response = post(url, o.body)
    o.accepted = aws.monotonic() - o.sent_at
    if o.answered:
        try:
            o.order_id = json.loads(o.response).get("messageId") or None
        except (json.JSONDecodeError, AttributeError):
            o.order_id = None


def _follow(follower: Follower, *, sending: Callable[[], bool], timeout: float) -> None:
    """Follow the orders to the table and the probe until all are seen, or ``timeout`` seconds
    after the last POST was answered."""
    deadline: float | None = None
    while True:
        still_sending = sending()  # read before pending(): no order can slip between them
        pending = follower.pending()
        now = aws.monotonic()
        if not still_sending and deadline is None:
            deadline = now + timeout
        if not (still_sending or pending) or (deadline and now >= deadline):
            break
        # The probe's long poll paces the loop: no sleeping.
        follower.look(wait=1)
    # A last look for duplicates that arrived with the final notifications.
    follower.look(wait=0)


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
