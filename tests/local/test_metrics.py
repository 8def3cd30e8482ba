"""The CloudWatch metrics the embedded AWS publishes (pocctl/local/metrics.py), read back as any
client reads them: boto3's cloudwatch client against the server (GetMetricData,
GetMetricStatistics, ListMetrics), after known traffic through the whole pipeline."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.localkit import Stack, build_stack, deploy_function, post, wait_for

from pocctl.local import metrics as metrics_mod
from pocctl.local.runtime import LocalAWS
from pocctl.local.server import local_client

ORDERS = 5
DIRECT_OK, DIRECT_FAILED = 3, 1
FAILING = """
def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"ok": True}
"""


class Traffic:
    def __init__(self, aws: LocalAWS, stack: Stack, started: dt.datetime) -> None:
        self.aws, self.stack = aws, stack
        self.cw = local_client(aws.endpoint_url, "cloudwatch")
        # Whole minutes around the traffic: the datapoints are per minute.
        self.start = started.replace(second=0, microsecond=0) - dt.timedelta(minutes=1)

    def stat(self, namespace: str, metric: str, dims: dict[str, str], stat: str) -> float | None:
        """``stat`` over the traffic's minutes (Sum/SampleCount summed, Maximum the max)."""
        end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)
        got = self.cw.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "q",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": namespace,
                            "MetricName": metric,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                        },
                        "Period": 60,
                        "Stat": stat,
                    },
                }
            ],
            StartTime=self.start,
            EndTime=end,
        )["MetricDataResults"][0]["Values"]
        if not got:
            return None
        return max(got) if stat == "Maximum" else sum(got)

    def settled(self, namespace: str, metric: str, dims: dict[str, str], want: float) -> float:
        """Sum of ``metric`` once it reached ``want`` (the flusher writes once a second)."""
        wait_for(
            lambda: (self.stat(namespace, metric, dims, "Sum") or 0) >= want,
            what=f"{namespace} {metric} {dims} to reach {want}",
        )
        return self.stat(namespace, metric, dims, "Sum") or 0.0


@pytest.fixture(scope="module")
def traffic(local_aws_module: LocalAWS) -> Iterator[Traffic]:
    aws = local_aws_module
    aws.reset()
    started = dt.datetime.now(dt.timezone.utc)
    stack = build_stack(aws.endpoint_url)
    url = aws.invoke_url(stack.api_id, "prod")
    for i in range(ORDERS):
        assert post(url, json.dumps({"n": i}))[0] == 200
    assert post(url, "[]")[0] == 400  # not an object: the validator's 4XX
    notified: list[str] = []
    wait_for(
        lambda: stack.drain(stack.probe_url, notified) or len(notified) >= ORDERS,
        what="every order's notification",
    )
    # Sent by hand to the dead-letter queue: counted, as AWS counts it (a redrive is not).
    stack.client("sqs").send_message(QueueUrl=stack.dlq_url, MessageBody="by hand")
    lam, _ = deploy_function(aws.endpoint_url, "metered", {"m.py": FAILING}, "m.handler")
    for payload in [{}] * DIRECT_OK + [{"fail": True}] * DIRECT_FAILED:
        lam.invoke(FunctionName="metered", Payload=json.dumps(payload))
    yield Traffic(aws, stack, started)


def test_api_gateway_counts_requests_and_4xx_by_api_and_by_stage(traffic: Traffic) -> None:
    ns = "AWS/ApiGateway"
    for dims in ({"ApiName": "POC-API"}, {"ApiName": "POC-API", "Stage": "prod"}):
        assert traffic.settled(ns, "Count", dims, ORDERS + 1) == ORDERS + 1
        assert traffic.stat(ns, "4XXError", dims, "Sum") == 1
        assert traffic.stat(ns, "5XXError", dims, "Sum") == 0
        # One 0/1 sample per request: Average is the error rate, as AWS documents.
        assert traffic.stat(ns, "4XXError", dims, "SampleCount") == ORDERS + 1
        assert traffic.stat(ns, "Latency", dims, "SampleCount") == ORDERS + 1
        # The invalid request never reached the integration.
        assert traffic.stat(ns, "IntegrationLatency", dims, "SampleCount") == ORDERS
        latency = traffic.stat(ns, "Latency", dims, "Maximum")
        assert latency is not None and 0 < latency < 10_000


def test_sqs_counts_sent_received_deleted_and_samples_the_queue(traffic: Traffic) -> None:
    ns, queue = "AWS/SQS", {"QueueName": "POC-Queue"}
    assert traffic.settled(ns, "NumberOfMessagesSent", queue, ORDERS) == ORDERS
    assert traffic.settled(ns, "NumberOfMessagesDeleted", queue, ORDERS) == ORDERS
    assert (traffic.stat(ns, "NumberOfMessagesReceived", queue, "Sum") or 0) >= ORDERS
    # SNS's deliveries to the subscribed probe queue are SendMessage calls too.
    assert traffic.settled(ns, "NumberOfMessagesSent", {"QueueName": "probe"}, ORDERS) == ORDERS
    size = traffic.stat(ns, "SentMessageSize", queue, "Maximum")
    assert size == len(json.dumps({"n": 0}))
    # Gauges: sampled, one datapoint a minute; every order has been taken off the queue.
    wait_for(
        lambda: traffic.stat(ns, "ApproximateNumberOfMessagesVisible", queue, "Maximum") == 0,
        what="the queue's visible gauge",
    )
    dlq = {"QueueName": "POC-Queue-DLQ"}
    for gauge in ("ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"):
        assert traffic.stat(ns, gauge, dlq, "Maximum") == 0
    assert traffic.settled(ns, "NumberOfMessagesSent", dlq, 1) == 1
    wait_for(
        lambda: traffic.stat(ns, "ApproximateNumberOfMessagesVisible", dlq, "Maximum") == 1,
        what="the DLQ's visible gauge",
    )
    age = traffic.stat(ns, "ApproximateAgeOfOldestMessage", dlq, "Maximum")
    assert age is not None and 0 <= age < 120  # seconds
    # An empty queue has no oldest message: AWS reports the age only with one in the queue.
    failures = {"QueueName": "POC-Lambda-2-Failures"}  # never held a message
    assert traffic.stat(ns, "ApproximateAgeOfOldestMessage", failures, "Sum") is None


def test_lambda_counts_invocations_errors_and_duration(traffic: Traffic) -> None:
    ns, total = "AWS/Lambda", DIRECT_OK + DIRECT_FAILED
    for dims in ({"FunctionName": "metered"}, {"FunctionName": "metered", "Resource": "metered"}):
        assert traffic.settled(ns, "Invocations", dims, total) == total
        assert traffic.stat(ns, "Errors", dims, "Sum") == DIRECT_FAILED
        assert traffic.stat(ns, "Throttles", dims, "Sum") == 0
        assert traffic.stat(ns, "Duration", dims, "SampleCount") == total
        duration = traffic.stat(ns, "Duration", dims, "Maximum")
        assert duration is not None and 0 < duration < 5000
    running = traffic.stat(ns, "ConcurrentExecutions", {"FunctionName": "metered"}, "Maximum")
    assert running == 1  # one invocation at a time
    # The stream trigger's batches carry IteratorAge; the SQS trigger's do not.
    assert traffic.stat(ns, "IteratorAge", {"FunctionName": "POC-Lambda-2"}, "SampleCount")
    assert traffic.stat(ns, "IteratorAge", {"FunctionName": "POC-Lambda-1"}, "SampleCount") is None
    assert (traffic.stat(ns, "Invocations", {"FunctionName": "POC-Lambda-1"}, "Sum") or 0) >= 1


def test_sns_counts_published_and_delivered(traffic: Traffic) -> None:
    ns, topic = "AWS/SNS", {"TopicName": "POC-Topic"}
    assert traffic.settled(ns, "NumberOfMessagesPublished", topic, ORDERS) == ORDERS
    assert traffic.settled(ns, "NumberOfNotificationsDelivered", topic, ORDERS) == ORDERS
    assert traffic.stat(ns, "NumberOfNotificationsFailed", topic, "Sum") is None
    size = traffic.stat(ns, "PublishSize", topic, "Maximum")
    assert size is not None and size > 10


def test_list_metrics_and_get_metric_statistics_see_them(traffic: Traffic) -> None:
    traffic.settled("AWS/SNS", "NumberOfMessagesPublished", {"TopicName": "POC-Topic"}, ORDERS)
    listed = traffic.cw.list_metrics(Namespace="AWS/ApiGateway", MetricName="Count")["Metrics"]
    dims = {tuple(sorted(d["Name"] for d in m["Dimensions"])) for m in listed}
    assert dims == {("ApiName",), ("ApiName", "Stage")}
    stats = traffic.cw.get_metric_statistics(
        Namespace="AWS/SNS",
        MetricName="NumberOfMessagesPublished",
        Dimensions=[{"Name": "TopicName", "Value": "POC-Topic"}],
        StartTime=traffic.start,
        EndTime=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1),
        Period=60,
        Statistics=["Sum", "SampleCount"],
    )["Datapoints"]
    assert sum(p["Sum"] for p in stats) == ORDERS
    assert all(p["Unit"] == "Count" for p in stats)


def test_one_datapoint_per_metric_and_minute_however_many_events(traffic: Traffic) -> None:
    """The current minute's datum is updated in place: moto's list does not grow per event."""
    from moto.cloudwatch.models import cloudwatch_backends

    traffic.settled("AWS/SQS", "NumberOfMessagesSent", {"QueueName": "POC-Queue"}, ORDERS)
    with traffic.aws.server.lock:
        data = list(cloudwatch_backends["123456789012"]["us-east-1"].metric_data)
    keys = [
        (d.namespace, d.name, tuple((x.name, x.value) for x in d.dimensions), d.timestamp)
        for d in data
    ]
    assert len(keys) == len(set(keys))


def test_recording_costs_microseconds_per_order() -> None:
    """What one order costs the pipeline in metric recording (about 9 samples: the request,
    send, receive, delete, two invocations, the publish, the delivery), measured."""
    m = metrics_mod.Metrics(lock=None)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:f"
    where = ("123456789012", "us-east-1", "AWS/SQS")
    rounds = 2000
    # CPU time of this thread: wall time would measure the other processes on a busy machine.
    t0 = time.thread_time()
    for _ in range(rounds):
        m.api_request("abc", "prod", 200, 3.0, 2.0)
        for metric in ("NumberOfMessagesSent", "NumberOfMessagesReceived", "Deleted"):
            m.sample(*where, metric, (("QueueName", "q"),), 1.0)
        for _ in range(2):
            m.invocation_started(arn)
            m.invocation_ended(arn, False, 5.0, None)
        m.sample(*where, "Published", (("TopicName", "t"),), 1.0)
        m.sample(*where, "Delivered", (("TopicName", "t"),), 1.0)
    per_order_us = (time.thread_time() - t0) / rounds * 1e6
    print(f"metric recording: {per_order_us:.1f} µs per order")
    assert per_order_us < 1000  # generous: about 28 µs of CPU here


# -- the moto behaviour metrics.py relies on (moto is pinned) -------------------------------


def test_moto_aggregates_statistic_sets_per_period(local_aws: LocalAWS) -> None:
    """GetMetricData with Period 60 on a statistic set: Sum, SampleCount, Average (Sum /
    SampleCount), Minimum, Maximum, as CloudWatch computes them; StartTime starts the periods."""
    cw = local_client(local_aws.endpoint_url, "cloudwatch")
    minute = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    cw.put_metric_data(
        Namespace="Test",
        MetricData=[
            {
                "MetricName": "m",
                "Dimensions": [{"Name": "D", "Value": "v"}],
                "Timestamp": minute,
                "StatisticValues": {"SampleCount": 4, "Sum": 10, "Minimum": 1, "Maximum": 4},
                "Unit": "Milliseconds",
            }
        ],
    )
    results: dict[str, Any] = {}
    for stat in ("Sum", "SampleCount", "Average", "Minimum", "Maximum"):
        got = cw.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "q",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "Test",
                            "MetricName": "m",
                            "Dimensions": [{"Name": "D", "Value": "v"}],
                        },
                        "Period": 60,
                        "Stat": stat,
                    },
                }
            ],
            StartTime=minute,
            EndTime=minute + dt.timedelta(minutes=1),
        )["MetricDataResults"][0]
        results[stat] = got["Values"]
        assert got["Timestamps"][0].replace(tzinfo=None) == minute.replace(tzinfo=None)
    assert results == {
        "Sum": [10.0],
        "SampleCount": [4.0],
        "Average": [2.5],
        "Minimum": [1.0],
        "Maximum": [4.0],
    }


def test_a_flush_costs_under_a_millisecond_of_the_server_lock(traffic: Traffic) -> None:
    """Once a second the flusher holds the server's lock: sampling the stack's queues and
    writing the minute's datapoints must not hold up the requests (measured, printed)."""
    m = traffic.aws.metrics
    rounds = 50
    t0 = time.thread_time()
    for _ in range(rounds):
        m.invocation_ended("arn:aws:lambda:us-east-1:123456789012:function:f", False, 1.0, None)
        m.flush()
    per_flush_ms = (time.thread_time() - t0) / rounds * 1000
    print(f"metrics flush: {per_flush_ms:.2f} ms CPU")
    assert per_flush_ms < 5  # generous: about 0.15 ms of CPU here
