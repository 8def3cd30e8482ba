"""`test-order --rate`: orders leave on an open-loop schedule (order i at i / rate seconds), or as
fast as --concurrency allows with rate 0.

orders.run runs unchanged against the in-process embedded AWS (the probe queue, the table
reads); only the API's POST is replaced by what the pipeline would do with the order (a row
and a notification), and pocctl's clock by a fake one, so no real time is waited or measured."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from support.faults import FakeClock
from support.workspace import Workspace

from pocctl import arns, aws, orders
from pocctl.config import load
from pocctl.resources.base import Context, Target

START = 1000.0  # FakeClock's time at first


class LockedClock(FakeClock):
    """A fake clock several sending threads may sleep on at once: no advance is lost."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += seconds


@pytest.fixture
def pipeline(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Context:
    """The table and the topic test-order follows; a POST stores the row and publishes the
    notification at once, as POC-Lambda-1 and POC-Lambda-2 would: the row holds the body,
    the notification the row (so both carry the order's pocctl_marker)."""
    for task in ("table", "topic"):
        r = ws.cli(task)
        assert r.exit_code == 0, r.output
    ctx = Context(Target(load(ws.config), aws.Aws(region="us-east-1", endpoint_url=ws.endpoint)))
    ddb, sns = ws.client("dynamodb"), ws.client("sns")
    table, key, topic = ctx.cfg.table.name, ctx.cfg.table.partition_key, arns.topic(ctx)

    def post(url: str, body: str, timeout: float = 30.0) -> tuple[int, str]:
        oid = str(uuid.uuid4())
        ddb.put_item(TableName=table, Item={key: {"S": oid}, "order": {"S": body}})
        sns.publish(TopicArn=topic, Message=json.dumps({key: oid, "order": body}))
        return 200, json.dumps({"messageId": oid})

    # With the clock fake, test-order's timeout never comes: a bound on its loop instead.
    receive = orders.Probe.receive
    polls = iter(range(2000))

    def receive_at_once(self: orders.Probe, wait: int = 1) -> list[tuple[str, int | None]]:
        assert next(polls, None) is not None, "test-order kept following for 2000 polls"
        return receive(self, 0)  # no real long poll: fake time has no use for it

    monkeypatch.setattr(orders, "post", post)
    monkeypatch.setattr(orders.Probe, "receive", receive_at_once)
    return ctx


def use_clock(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> FakeClock:
    monkeypatch.setattr(aws, "sleep", clock.sleep)
    monkeypatch.setattr(aws, "monotonic", clock.monotonic)
    return clock


def test_a_paced_run_sends_order_i_at_i_over_rate(
    pipeline: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = use_clock(monkeypatch, FakeClock(now=START))
    rate = 2.5  # 0.4 s apart: more than one pacing slice each
    report = orders.run(pipeline, "http://127.0.0.1:9/", count=5, rate=rate, concurrency=1)
    assert report.ok, report.problems
    assert [o.sent_at for o in report.orders] == pytest.approx(
        [START + i / rate for i in range(5)], abs=1e-9
    )
    assert sum(clock.slept) == pytest.approx(4 / rate)  # waited for the schedule, no longer
    assert max(clock.slept) <= orders._PACING_SLICE


def test_a_paced_run_never_sends_early_with_several_posts_in_flight(
    pipeline: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_clock(monkeypatch, LockedClock())
    rate = 20.0
    report = orders.run(pipeline, "http://127.0.0.1:9/", count=8, rate=rate, concurrency=4)
    assert report.ok, report.problems
    for i, o in enumerate(report.orders):
        assert o.sent_at >= START + i / rate - 1e-9, (i, o.sent_at)


@pytest.mark.parametrize("rate", [0, None])
def test_an_unpaced_run_does_not_wait(
    pipeline: Context, monkeypatch: pytest.MonkeyPatch, rate: float | None
) -> None:
    clock = use_clock(monkeypatch, LockedClock())
    report = orders.run(pipeline, "http://127.0.0.1:9/", count=6, rate=rate, concurrency=3)
    assert report.ok, report.problems
    assert clock.slept == []
    assert [o.sent_at for o in report.orders] == [START] * 6


def test_an_interrupted_paced_run_sends_no_more_orders(
    pipeline: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while following: the orders not yet due are not sent (real clock; the second
    order is due 100 s after the first, the run stops long before)."""
    posted: list[str] = []
    post = orders.post

    def counted(url: str, body: str, timeout: float = 30.0) -> tuple[int, str]:
        posted.append(body)
        return post(url, body, timeout)

    def interrupted(self: orders.Probe, wait: int = 1) -> list[tuple[str, int | None]]:
        raise KeyboardInterrupt

    monkeypatch.setattr(orders, "post", counted)
    monkeypatch.setattr(orders.Probe, "receive", interrupted)
    with pytest.raises(KeyboardInterrupt):
        orders.run(pipeline, "http://127.0.0.1:9/", count=5, rate=0.01, concurrency=3)
    assert len(posted) <= 1
    sqs = pipeline.client("sqs")
    assert not [u for u in sqs.list_queues().get("QueueUrls", []) if "pocctl-probe" in u]


def test_a_negative_rate_is_refused(pipeline: Context) -> None:
    with pytest.raises(ValueError, match="rate"):
        orders.run(pipeline, "http://127.0.0.1:9/", count=2, rate=-1)


# -- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """orders.run's arguments, each time the CLI calls it; every order goes through."""
    calls: list[dict[str, Any]] = []

    def run(ctx: Context, url: str, **kwargs: Any) -> orders.Report:
        calls.append(kwargs)
        sent = [
            orders.Order(i + 1, "{}", order_id=f"id-{i}", accepted=0.01, stored=0.1)
            for i in range(kwargs["count"])
        ]
        for o in sent:
            o.notified, o.notifications = 0.2, 1
        return orders.Report(sent, url, 1.0)

    monkeypatch.setattr(orders, "run", run)
    monkeypatch.setattr(orders, "find_invoke_url", lambda ctx: "http://127.0.0.1:9/prod")
    return calls


def test_the_cli_passes_rate_and_concurrency_on(ws: Workspace, runs: list[dict[str, Any]]) -> None:
    r = ws.cli("test-order", "--count", "30", "--rate", "2.5", "--concurrency", "4")
    assert r.exit_code == 0, r.output
    assert (runs[0]["count"], runs[0]["rate"], runs[0]["concurrency"]) == (30, 2.5, 4)
    assert "POST 30 orders to http://127.0.0.1:9/prod at 2.5 orders/s" in r.stdout
    assert "30 of 30 orders stored once and notified once" in r.stdout


def test_the_cli_paces_at_the_default_rate_unless_told(
    ws: Workspace, runs: list[dict[str, Any]]
) -> None:
    from pocctl.cli import test_order

    assert test_order.DEFAULT_RATE == orders.DEFAULT_RATE  # the CLI's copy of the constant
    r = ws.cli("test-order", "--count", "3")
    assert r.exit_code == 0, r.output
    assert (runs[0]["rate"], runs[0]["concurrency"]) == (orders.DEFAULT_RATE, 10)
    assert f"POST 3 orders to http://127.0.0.1:9/prod at {orders.DEFAULT_RATE:g} orders/s" in (
        r.stdout
    )
    r = ws.cli("test-order", "--count", "30", "--rate", "0")
    assert r.exit_code == 0, r.output
    assert runs[1]["rate"] == 0
    assert "POST 30 orders to http://127.0.0.1:9/prod, 10 at a time" in r.stdout


@pytest.mark.parametrize(
    "args",
    [["--rate", "-1"], ["--rate", "fast"], ["--concurrency", "0"], ["--concurrency", "2.5"]],
    ids=" ".join,
)
def test_the_cli_refuses_a_bad_rate_or_concurrency(
    ws: Workspace, runs: list[dict[str, Any]], args: list[str]
) -> None:
    r = ws.cli("test-order", *args)
    assert r.exit_code == 2, r.output
    assert "Usage:" in r.output
    assert args[0] in r.output
    assert runs == []
