"""What `pocctl watch` shows: the pipeline's figures, hop by hop, read from AWS as it is.

One ``Watcher.snapshot()`` makes a bounded number of calls, the same on AWS and on the embedded
AWS: one GetMetricData for every CloudWatch metric (AWS/ApiGateway, AWS/Lambda, AWS/SNS), one
GetQueueAttributes per queue (the queue's own counters: CloudWatch's SQS gauges are sampled
once a minute on AWS), one Scan page of the table, and FilterLogEvents per function for its
latest error (only events newer than the last refresh's).

Rows: DescribeTable's ItemCount is refreshed "approximately every six hours"
(https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TableDescription.html), so
a fresh test run would show 0. A Scan with Select=COUNT counts the rows now; it is bounded to
one page (at most 1 MB read, 128 read units eventually consistent), and a bigger table shows
"at least N" — cheap for the lab's table, never a full scan every second.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Clients = Callable[[str], Any]

# The log term of a function's error: Lambda writes an unhandled exception as one event
# "[ERROR] Type: message" + its traceback, and logging's errors carry "[ERROR]" too. A single
# term is the filter pattern both AWS and the embedded AWS (moto) understand.
ERROR_TERM = "ERROR"
_ERROR_PAGES = 3  # FilterLogEvents pages read per function and refresh, at most


@dataclass(frozen=True)
class Names:
    """The stack's resource names (from config.yaml)."""

    api: str
    stage: str
    queue: str
    dlq: str
    lambda1: str
    table: str
    lambda2: str
    failures: str
    topic: str

    @classmethod
    def from_config(cls, cfg: Any) -> Names:
        return cls(
            api=cfg.api.name,
            stage=cfg.api.stage,
            queue=cfg.queue.name,
            dlq=cfg.queue.dead_letter_queue,
            lambda1=cfg.lambda1.name,
            table=cfg.table.name,
            lambda2=cfg.lambda2.name,
            failures=cfg.lambda2.on_failure_queue,
            topic=cfg.topic.name,
        )


def _metric(qid: str, namespace: str, name: str, dims: dict[str, str], stat: str) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
            },
            "Period": 60,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def metric_queries(names: Names) -> list[dict[str, Any]]:
    """Every metric `watch` shows, as GetMetricData queries (one call)."""
    api = {"ApiName": names.api, "Stage": names.stage}
    queries = [
        _metric("api_count", "AWS/ApiGateway", "Count", api, "SampleCount"),
        _metric("api_4xx", "AWS/ApiGateway", "4XXError", api, "Sum"),
        _metric("api_5xx", "AWS/ApiGateway", "5XXError", api, "Sum"),
        _metric("api_latency_sum", "AWS/ApiGateway", "Latency", api, "Sum"),
        _metric("api_latency_n", "AWS/ApiGateway", "Latency", api, "SampleCount"),
    ]
    for key, fn in (("l1", names.lambda1), ("l2", names.lambda2)):
        dims = {"FunctionName": fn}
        queries += [
            _metric(f"{key}_invocations", "AWS/Lambda", "Invocations", dims, "Sum"),
            _metric(f"{key}_errors", "AWS/Lambda", "Errors", dims, "Sum"),
            _metric(f"{key}_throttles", "AWS/Lambda", "Throttles", dims, "Sum"),
            _metric(f"{key}_duration_sum", "AWS/Lambda", "Duration", dims, "Sum"),
            _metric(f"{key}_duration_n", "AWS/Lambda", "Duration", dims, "SampleCount"),
            _metric(f"{key}_duration_max", "AWS/Lambda", "Duration", dims, "Maximum"),
        ]
    queries.append(
        _metric("l2_iterator_age", "AWS/Lambda", "IteratorAge", {"FunctionName": names.lambda2},
                "Maximum")
    )  # fmt: skip
    topic = {"TopicName": names.topic}
    queries += [
        _metric("sns_published", "AWS/SNS", "NumberOfMessagesPublished", topic, "Sum"),
        _metric("sns_delivered", "AWS/SNS", "NumberOfNotificationsDelivered", topic, "Sum"),
        _metric("sns_failed", "AWS/SNS", "NumberOfNotificationsFailed", topic, "Sum"),
    ]
    return queries


def window(now: float, minutes: int) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in whole minutes covering the last ``minutes`` minutes up to now: the
    datapoints are per minute, and aligned periods count each datapoint once."""
    end = dt.datetime.fromtimestamp((now // 60 + 1) * 60, dt.timezone.utc)
    return end - dt.timedelta(minutes=minutes + 1), end


def fold_results(results: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each query's figure over the window: Maximum's max, the others' sum (None: no data)."""
    folded: dict[str, float | None] = {}
    for r in results:
        values = [float(v) for v in r.get("Values", [])]
        if not values:
            folded[r["Id"]] = None
        elif r["Id"].endswith(("_max", "_age")):
            folded[r["Id"]] = max(values)
        else:
            folded[r["Id"]] = sum(values)
    return folded


def _count(value: float | None) -> int:
    return int(round(value or 0))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _ratio(total: float | None, n: float | None) -> float | None:
    return round(total / n, 1) if total is not None and n else None


class Watcher:
    """The figures of one stack, refreshed by ``snapshot()``; keeps what refreshes share (queue
    URLs, each function's log cursor and latest error)."""

    def __init__(self, clients: Clients, names: Names, *, minutes: int = 60) -> None:
        self._clients = clients
        self.names = names
        self.minutes = minutes
        self._urls: dict[str, str] = {}
        self._log_cursor: dict[str, int] = {}
        self._last_error: dict[str, dict[str, Any] | None] = {}

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        start, end = window(now, self.minutes)
        m = self._metrics(start, end)
        n = self.names
        return {
            "time": dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(timespec="seconds"),
            "window_minutes": self.minutes,
            "api": {
                "name": n.api,
                "stage": n.stage,
                "requests": _count(m["api_count"]),
                "4xx": _count(m["api_4xx"]),
                "5xx": _count(m["api_5xx"]),
                "latency_ms_avg": _ratio(m["api_latency_sum"], m["api_latency_n"]),
            },
            "queue": {**self._queue(n.queue), "dlq": self._queue(n.dlq)},
            "lambda1": self._function("l1", n.lambda1, m, start),
            "table": {"name": n.table, **self._rows()},
            "stream": {"iterator_age_ms_max": _round(m["l2_iterator_age"])},
            "lambda2": {
                **self._function("l2", n.lambda2, m, start),
                "failure_queue": self._queue(n.failures),
            },
            "topic": {
                "name": n.topic,
                "published": _count(m["sns_published"]),
                "delivered": _count(m["sns_delivered"]),
                "failed": _count(m["sns_failed"]),
            },
        }

    def _metrics(self, start: dt.datetime, end: dt.datetime) -> dict[str, float | None]:
        cw = self._clients("cloudwatch")
        queries = metric_queries(self.names)
        results: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
        for _ in range(10):  # a window's datapoints fit one page; NextToken just in case
            page = cw.get_metric_data(**kwargs)
            results.extend(page.get("MetricDataResults", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        merged: dict[str, dict[str, Any]] = {}
        for r in results:
            merged.setdefault(r["Id"], {"Id": r["Id"], "Values": []})["Values"] += r["Values"]
        folded = fold_results(list(merged.values()))
        return {q["Id"]: folded.get(q["Id"]) for q in queries}

    def _queue(self, name: str) -> dict[str, Any]:
        sqs = self._clients("sqs")
        try:
            url = self._urls.get(name) or sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attrs = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
        except sqs.exceptions.QueueDoesNotExist:
            self._urls.pop(name, None)
            return {"name": name, "exists": False}
        self._urls[name] = url
        return {
            "name": name,
            "exists": True,
            "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
        }

    def _rows(self) -> dict[str, Any]:
        ddb = self._clients("dynamodb")
        try:
            page = ddb.scan(TableName=self.names.table, Select="COUNT")
        except ddb.exceptions.ResourceNotFoundException:
            return {"exists": False, "rows": None, "rows_at_least": False}
        return {
            "exists": True,
            "rows": int(page.get("Count", 0)),
            "rows_at_least": "LastEvaluatedKey" in page,  # more than one page: a lower bound
        }

    def _function(
        self, key: str, name: str, m: dict[str, float | None], start: dt.datetime
    ) -> dict[str, Any]:
        return {
            "name": name,
            "invocations": _count(m[f"{key}_invocations"]),
            "errors": _count(m[f"{key}_errors"]),
            "throttles": _count(m[f"{key}_throttles"]),
            "duration_ms_avg": _ratio(m[f"{key}_duration_sum"], m[f"{key}_duration_n"]),
            "duration_ms_max": _round(m[f"{key}_duration_max"]),
            "last_error": self._latest_error(name, int(start.timestamp() * 1000)),
        }

    def _latest_error(self, function: str, since_ms: int) -> dict[str, Any] | None:
        """The function's latest error event in the window (FilterLogEvents, bounded, reading
        only what is newer than the last refresh's)."""
        from pocctl.observe import log_events

        cursor = max(self._log_cursor.get(function, 0), since_ms)
        events = log_events(
            self._clients("logs"),
            function,
            cursor,
            pattern=ERROR_TERM,
            max_pages=_ERROR_PAGES,
        )
        if events is None:
            return None  # the function never ran: no log group yet
        latest = self._last_error.get(function)
        for e in events:
            if latest is None or e["timestamp"] >= latest["timestamp"]:
                latest = _error_event(e)
        if latest is not None and latest["timestamp"] < since_ms:
            latest = None  # older than the window
        self._last_error[function] = latest
        if latest is not None:
            self._log_cursor[function] = latest["timestamp"] + 1
        return latest


def _error_event(e: dict[str, Any]) -> dict[str, Any]:
    message = str(e.get("message", "")).strip()
    first = next((ln for ln in message.splitlines() if ln.strip()), "")
    first = first.replace("[ERROR]", "").strip()
    return {
        "timestamp": int(e["timestamp"]),
        "time": dt.datetime.fromtimestamp(e["timestamp"] / 1000, dt.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "message": first,
        "log_stream": e.get("logStreamName"),
    }
