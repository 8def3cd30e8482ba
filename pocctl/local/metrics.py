"""The CloudWatch metrics AWS's services publish, published by the embedded AWS into moto's
CloudWatch backend, so GetMetricData, GetMetricStatistics and ListMetrics from any client (the
console's graphs, `aws cloudwatch`, `pocctl watch`) see them as on AWS.

Each event (an API request, a message sent, an invocation, a Publish) is one ``sample`` call:
a dict update under a lock, no AWS call. A flusher thread writes the samples once a second into
one datapoint per metric per minute (AWS's standard resolution: API Gateway "sends metric data
to CloudWatch every minute", the others alike), updating the current minute's datapoint in
place, so the backend holds one datum per metric and minute however busy the pipeline is.

Namespaces, metric names, dimensions and units are AWS's:

- AWS/ApiGateway (https://docs.aws.amazon.com/apigateway/latest/developerguide/
  api-gateway-metrics-and-dimensions.html): Count, 4XXError, 5XXError (one 0/1 sample per
  request: Sum is the count, Average the rate), Latency, IntegrationLatency (Milliseconds), by
  ApiName and by ApiName + Stage. Per Method/Resource only with detailed metrics: not published.
- AWS/SQS (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/
  sqs-available-cloudwatch-metrics.html), by QueueName: NumberOfMessagesSent (SendMessage and
  SendMessageBatch; not the moves to a dead-letter queue, as the page says),
  NumberOfMessagesReceived, NumberOfEmptyReceives, NumberOfMessagesDeleted, SentMessageSize,
  and the gauges ApproximateNumberOfMessagesVisible/NotVisible/Delayed and
  ApproximateAgeOfOldestMessage (Seconds; only while a message is in the queue).
- AWS/Lambda (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html), by
  FunctionName and by FunctionName + Resource (the function's name: every invocation here is
  unqualified): Invocations, Errors and Throttles ("binary indicators of the outcome": one
  sample each per invocation), Duration (Milliseconds), ConcurrentExecutions (also with no
  dimension: the account's), IteratorAge (Milliseconds, stream mappings: the age of the batch's
  last record when it is sent to the function).
- AWS/SNS (https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html), by
  TopicName: NumberOfMessagesPublished, PublishSize (Bytes), NumberOfNotificationsDelivered,
  NumberOfNotificationsFailed.

Where this differs from AWS (the banner says so too): the SQS gauges are sampled every second
and the minute's datapoint holds the latest sample (AWS samples once a minute and publishes a
few minutes late), so a fresh test run shows at once; every queue is sampled, also one AWS
would call inactive; Throttles is always 0 (the embedded Lambda has no concurrency limit);
IteratorAge has the stream record's 1 s resolution; nothing of AWS/DynamoDB is published.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("pocctl.local.metrics")

Dims = tuple[tuple[str, str], ...]
# (account, region, namespace, metric, dimensions, unit, minute start (epoch s))
Key = tuple[str, str, str, str, Dims, str, int]

FLUSH_INTERVAL = 1.0
_KEEP_MINUTES = 3  # datapoints still updated in place; older ones are final

# The one recorder of this process (set by LocalAWS.start): moto's patched methods, which have
# no other way to reach it, record through it; None records nothing.
_current: Metrics | None = None


def current() -> Metrics | None:
    return _current


class _Stat:
    __slots__ = ("n", "total", "low", "high")

    def __init__(self, value: float) -> None:
        self.n, self.total, self.low, self.high = 1, value, value, value

    def add(self, value: float) -> None:
        self.n += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)


class Metrics:
    """The in-process aggregator and its flusher; ``lock`` is the embedded server's request
    lock (moto's objects change one request at a time)."""

    def __init__(
        self,
        lock: Any,
        *,
        interval: float = FLUSH_INTERVAL,
        api_names: Callable[[str], tuple[str, str, str] | None] | None = None,
    ) -> None:
        self._lock = lock
        self._interval = interval
        # api id -> (account, region, ApiName), resolved at flush time (under ``lock``)
        self._api_names = api_names or _api_name
        self._pending: dict[Key, _Stat] = {}
        self._gauges: dict[Key, float] = {}
        self._api: dict[tuple[str, str, str, str, int], _Stat] = {}
        self._running: dict[str, int] = {}
        self._total_running = 0
        self._mutex = threading.Lock()
        self._written: dict[Key, tuple[Any, Any]] = {}  # key -> (backend, datum)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- recording (any thread; cheap) ------------------------------------------------------

    def sample(
        self, account: str, region: str, namespace: str, metric: str, dims: Dims,
        value: float, unit: str = "Count",
    ) -> None:  # fmt: skip
        self.samples(account, region, namespace, [(metric, dims, value, unit)])

    def samples(
        self, account: str, region: str, namespace: str, items: list[tuple[str, Dims, float, str]]
    ) -> None:
        """Several samples of one service at once: one clock read, one lock."""
        minute = _minute(time.time())
        pending = self._pending
        with self._mutex:
            for metric, dims, value, unit in items:
                key = (account, region, namespace, metric, dims, unit, minute)
                stat = pending.get(key)
                if stat is None:
                    pending[key] = _Stat(value)
                else:
                    stat.add(value)

    def api_request(
        self, api_id: str, stage: str, status: int, latency_ms: float, integration_ms: float | None
    ) -> None:
        """One request to a stage's invoke URL, answered ``status``."""
        minute = _minute(time.time())
        values = [
            ("Count", 1.0, "Count"),
            ("4XXError", float(400 <= status < 500), "Count"),
            ("5XXError", float(status >= 500), "Count"),
            ("Latency", latency_ms, "Milliseconds"),
        ]
        if integration_ms is not None:
            values.append(("IntegrationLatency", integration_ms, "Milliseconds"))
        with self._mutex:
            for metric, value, unit in values:
                key = (api_id, stage, metric, unit, minute)
                stat = self._api.get(key)
                if stat is None:
                    self._api[key] = _Stat(value)
                else:
                    stat.add(value)

    def invocation_started(self, function_arn: str) -> None:
        account, region, name = _function(function_arn)
        with self._mutex:
            running = self._running[function_arn] = self._running.get(function_arn, 0) + 1
            self._total_running += 1
            total = self._total_running
        self.samples(account, region, "AWS/Lambda", [
            ("ConcurrentExecutions", (("FunctionName", name),), running, "Count"),
            ("ConcurrentExecutions", (), total, "Count"),
        ])  # fmt: skip

    def invocation_ended(
        self, function_arn: str, failed: bool, duration_ms: float, iterator_age_ms: float | None
    ) -> None:
        account, region, name = _function(function_arn)
        with self._mutex:
            self._running[function_arn] = max(0, self._running.get(function_arn, 1) - 1)
            self._total_running = max(0, self._total_running - 1)
        items: list[tuple[str, Dims, float, str]] = []
        for dims in ((("FunctionName", name),), (("FunctionName", name), ("Resource", name))):
            items += [
                ("Invocations", dims, 1.0, "Count"),
                ("Errors", dims, float(failed), "Count"),
                ("Throttles", dims, 0.0, "Count"),
                ("Duration", dims, duration_ms, "Milliseconds"),
            ]
            if iterator_age_ms is not None:
                items.append(("IteratorAge", dims, iterator_age_ms, "Milliseconds"))
        self.samples(account, region, "AWS/Lambda", items)

    # -- flushing ---------------------------------------------------------------------------

    def start(self) -> None:
        global _current
        _current = self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="pocctl-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        global _current
        if _current is self:
            _current = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:  # a metric never takes the embedded AWS down
                logger.exception("could not publish metrics")

    def flush(self) -> None:
        """Write what was sampled since the last flush, and sample the queues, into moto."""
        with self._mutex:
            pending, self._pending = self._pending, {}
            api, self._api = self._api, {}
        with self._lock:
            gauges = _queue_gauges(time.time())
            for (api_id, stage, metric, unit, minute), stat in api.items():
                home = self._api_names(api_id)
                if home is None:  # not an API (an unknown id answers 404): AWS has no metric
                    continue
                account, region, name = home
                for dims in ((("ApiName", name),), (("ApiName", name), ("Stage", stage))):
                    key = (account, region, "AWS/ApiGateway", metric, dims, unit, minute)
                    _merge(pending, key, stat)
            for key, value in pending.items():
                self._write(key, value, replace=False)
            for key, gauge in gauges.items():
                self._write(key, _Stat(gauge), replace=True)
        oldest = _minute(time.time()) - 60 * _KEEP_MINUTES
        self._written = {k: v for k, v in self._written.items() if k[6] >= oldest}

    def _write(self, key: Key, stat: _Stat, *, replace: bool) -> None:
        from moto.cloudwatch.models import MetricAggregatedDatum, cloudwatch_backends

        account, region, namespace, metric, dims, unit, minute = key
        backend = cloudwatch_backends[account][region]
        written = self._written.get(key)
        if written is not None and written[0] is backend and not replace:
            datum = written[1]
            datum.min = min(datum.min, stat.low)
            datum.max = max(datum.max, stat.high)
            datum.sum += stat.total
            datum.sample_count += stat.n
            return
        if written is not None and written[0] is backend:
            datum = written[1]
            datum.min, datum.max, datum.sum, datum.sample_count = (
                stat.low, stat.high, stat.total, stat.n,
            )  # fmt: skip
            return
        # A new minute, or a reset backend (moto's reset makes new backends).
        datum = MetricAggregatedDatum(
            namespace=namespace,
            name=metric,
            min_stat=stat.low,
            max_stat=stat.high,
            sample_count=stat.n,
            sum_stat=stat.total,
            dimensions=[{"Name": n, "Value": v} for n, v in dims],
            # moto compares naive UTC datetimes (what it parses StartTime/EndTime into).
            timestamp=dt.datetime.fromtimestamp(minute, dt.timezone.utc).replace(tzinfo=None),
            unit=unit,
        )
        backend.metric_data.append(datum)
        self._written[key] = (backend, datum)


def _minute(t: float) -> int:
    return int(t // 60 * 60)


def _merge(into: dict[Key, _Stat], key: Key, stat: _Stat) -> None:
    have = into.get(key)
    if have is None:
        copy = _Stat(stat.low)
        copy.n, copy.total, copy.high = stat.n, stat.total, stat.high
        into[key] = copy
        return
    have.n += stat.n
    have.total += stat.total
    have.low = min(have.low, stat.low)
    have.high = max(have.high, stat.high)


def _function(arn: str) -> tuple[str, str, str]:
    parts = arn.split(":")  # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
    return parts[4], parts[3], parts[6]


def _api_name(api_id: str) -> tuple[str, str, str] | None:
    """(account, region, name) of REST API ``api_id`` (call under the server's lock)."""
    from moto.apigateway.models import apigateway_backends

    for account, region, backend in apigateway_backends.iter_backends():
        api = backend.apis.get(api_id)
        if api is not None:
            return str(account), str(region), str(api.name)
    return None


def _queue_gauges(now: float) -> dict[Key, float]:
    """Every queue's gauges now (call under the server's lock)."""
    from moto.sqs.models import sqs_backends

    minute = _minute(now)
    found: dict[Key, float] = {}
    for account, region, backend in sqs_backends.iter_backends():
        for name, queue in list(backend.queues.items()):
            dims = (("QueueName", name),)
            where = (str(account), str(region), "AWS/SQS")
            counts = {
                "ApproximateNumberOfMessagesVisible": queue.approximate_number_of_messages,
                "ApproximateNumberOfMessagesNotVisible": (
                    queue.approximate_number_of_messages_not_visible
                ),
                "ApproximateNumberOfMessagesDelayed": queue.approximate_number_of_messages_delayed,
            }
            for metric, value in counts.items():
                found[(*where, metric, dims, "Count", minute)] = float(value)
            sent = [m.sent_timestamp for m in queue._messages if m.sent_timestamp]
            if sent:
                age = max(0.0, now - min(sent) / 1000)
                found[(*where, "ApproximateAgeOfOldestMessage", dims, "Seconds", minute)] = age
    return found


def stream_iterator_age_ms(event: Any, now: float) -> float | None:
    """IteratorAge of a stream batch: now minus its last record's creation time (None for
    anything but a DynamoDB stream batch)."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not records or not isinstance(records[-1], dict):
        return None
    last = records[-1]
    if last.get("eventSource") != "aws:dynamodb":
        return None
    created = (last.get("dynamodb") or {}).get("ApproximateCreationDateTime")
    if not isinstance(created, (int, float)):
        return None
    return max(0.0, (now - float(created)) * 1000)


# -- moto patches (registered in moto_hooks.PATCHES) ---------------------------------------


def sqs_sent(original: Any) -> Any:
    """SQSBackend.send_message (SendMessage, each entry of SendMessageBatch, SNS's delivery to
    a subscribed queue): NumberOfMessagesSent, SentMessageSize."""

    def send_message(self: Any, queue_name: str, message_body: str, *a: Any, **kw: Any) -> Any:
        message = original(self, queue_name, message_body, *a, **kw)
        m = _current
        if m is not None:
            where = (self.account_id, self.region_name, "AWS/SQS")
            dims = (("QueueName", queue_name),)
            size = float(len(message_body.encode("utf-8")))
            m.samples(*where, [
                ("NumberOfMessagesSent", dims, 1.0, "Count"),
                ("SentMessageSize", dims, size, "Bytes"),
            ])  # fmt: skip
        return message

    return send_message


def sqs_received(original: Any) -> Any:
    """SQSResponse.receive_message (ReceiveMessage; moto's backend method is another patch's):
    NumberOfMessagesReceived, NumberOfEmptyReceives."""

    def receive_message(self: Any) -> Any:
        answer = original(self)
        m = _current
        result = getattr(answer, "result", None)
        if m is not None and isinstance(result, dict):
            backend = self.sqs_backend
            where = (backend.account_id, backend.region_name, "AWS/SQS")
            dims = (("QueueName", self._get_queue_name()),)
            count = len(result.get("Messages") or [])
            if count:
                m.sample(*where, "NumberOfMessagesReceived", dims, float(count))
            else:
                m.sample(*where, "NumberOfEmptyReceives", dims, 1.0)
        return answer

    return receive_message


def sqs_deleted(original: Any) -> Any:
    """SQSBackend.delete_message (DeleteMessage, each entry of DeleteMessageBatch)."""

    def delete_message(self: Any, queue_name: str, receipt_handle: str) -> Any:
        result = original(self, queue_name, receipt_handle)
        m = _current
        if m is not None:
            where = (self.account_id, self.region_name, "AWS/SQS")
            m.sample(*where, "NumberOfMessagesDeleted", (("QueueName", queue_name),), 1.0)
        return result

    return delete_message


def sns_published(original: Any) -> Any:
    """SNSBackend.publish to a topic (Publish, each entry of PublishBatch):
    NumberOfMessagesPublished, PublishSize."""

    def publish(self: Any, message: str, arn: str | None, *a: Any, **kw: Any) -> Any:
        message_id = original(self, message, arn, *a, **kw)
        m = _current
        if m is not None and arn and ":sns:" in arn and arn.count(":") == 5:
            where = (self.account_id, self.region_name, "AWS/SNS")
            dims = (("TopicName", arn.rsplit(":", 1)[1]),)
            size = float(len(message.encode("utf-8")))
            m.samples(*where, [
                ("NumberOfMessagesPublished", dims, 1.0, "Count"),
                ("PublishSize", dims, size, "Bytes"),
            ])  # fmt: skip
        return message_id

    return publish


def notification(topic_arn: str, *, delivered: bool) -> None:
    """One notification of ``topic_arn`` delivered (or failed) to a subscription."""
    m = _current
    if m is None:
        return
    _, _, _, region, account, name = topic_arn.split(":")
    metric = "NumberOfNotificationsDelivered" if delivered else "NumberOfNotificationsFailed"
    m.sample(account, region, "AWS/SNS", metric, (("TopicName", name),), 1.0)
