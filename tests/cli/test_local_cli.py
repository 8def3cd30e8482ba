"""`pocctl local` started as a real subprocess, used the way a learner uses it from a second
terminal: `up`, a plain HTTP POST, `test-order`, `lambda1 --test`; and `pocctl demo`."""

from __future__ import annotations

import getpass
import json
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import boto3
import pytest
from support import subprocess_env
from support.localkit import wait_for
from support.localproc import LocalProcess
from support.workspace import Workspace, make_workspace


class LocalServer(LocalProcess):
    """`pocctl local --port 0` in a subprocess; ``admin`` adds --admin (moto's /moto-api, for
    reset() between tests)."""

    def __init__(self, *extra: str, admin: bool = True) -> None:
        super().__init__("--port", "0", *(["--admin"] if admin else []), *extra)

    def reset(self) -> None:
        """moto's reset over HTTP: the admin API `pocctl local --admin` serves."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def stop(self, sig: int = signal.SIGINT) -> int:  # Ctrl-C
        return super().stop(sig)


@pytest.fixture(scope="module")
def local_server() -> Iterator[LocalServer]:
    server = LocalServer()
    yield server
    code = server.stop()
    assert code == 0, server.lines
    assert "embedded AWS stopped" in server.lines


@pytest.fixture
def lws(tmp_path: Path, local_server: LocalServer) -> Workspace:
    local_server.reset()
    return make_workspace(tmp_path, local_server.endpoint)


def client(endpoint: str, service: str):  # type: ignore[no-untyped-def]
    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint)


# The 30 s these tests have always given a wait; a call may pass its own timeout.
wait_until = partial(wait_for, timeout=30.0)


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def invoke_url(ws: Workspace) -> str:
    return json.loads(ws.state.read_text())["resources"]["api"]["url"]


def test_local_says_how_to_use_it(local_server: LocalServer) -> None:
    text = "\n".join(local_server.lines)
    assert f"export AWS_ENDPOINT_URL={local_server.endpoint}" in text
    assert "/restapis/<api-id>/<stage>/_user_request_/" in text
    user = getpass.getuser()
    assert f"Deployed Lambda functions run on this machine as {user}, without a sandbox" in text
    assert "moto's admin API is ON (--admin)" in text


def test_a_plain_http_post_is_stored_and_notified(lws: Workspace) -> None:
    assert lws.cli("up").exit_code == 0
    sqs, sns = client(lws.endpoint, "sqs"), client(lws.endpoint, "sns")
    probe = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
    probe_arn = sqs.get_queue_attributes(QueueUrl=probe, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn="arn:aws:sns:us-east-1:123456789012:POC-Topic",
        Protocol="sqs",
        Endpoint=probe_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    order = {"item": "floor soap & wax", "quantity": 4, "note": str(uuid.uuid4())}
    status, body = post(invoke_url(lws), json.dumps(order).encode())
    assert status == 200, body
    order_id = json.loads(body)["messageId"]

    ddb = client(lws.endpoint, "dynamodb")
    item = wait_until(
        lambda: ddb.get_item(TableName="orders", Key={"orderID": {"S": order_id}}).get("Item"),
        what="the row",
    )
    assert item["order"]["M"]["note"]["S"] == order["note"]
    assert item["order"]["M"]["item"]["S"] == "floor soap & wax"  # the & survived urlEncode
    msgs = wait_until(
        lambda: sqs.receive_message(QueueUrl=probe, WaitTimeSeconds=1).get("Messages"),
        what="the notification",
    )
    notification = json.loads(msgs[0]["Body"])
    assert notification["orderID"] == order_id
    assert notification["order"] == order


def test_a_body_that_is_not_a_json_object_is_refused_and_nothing_is_enqueued(
    lws: Workspace,
) -> None:
    assert lws.cli("up").exit_code == 0
    url = invoke_url(lws)
    for body in (b"[1, 2]", b'"a string"', b"not json", b"", b"{}"):
        status, text = post(url, body)
        assert status == 400, (body, text)
        assert "message" in json.loads(text)
    status, _ = post(url, b"item=soap", content_type="application/x-www-form-urlencoded")
    assert status == 415
    sqs = client(lws.endpoint, "sqs")
    q = sqs.get_queue_url(QueueName="POC-Queue")["QueueUrl"]
    attrs = sqs.get_queue_attributes(
        QueueUrl=q,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attrs == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
    ddb = client(lws.endpoint, "dynamodb")
    assert ddb.scan(TableName="orders")["Count"] == 0


def test_an_order_over_the_queues_size_limit_is_refused_and_the_largest_is_stored(
    lws: Workspace,
) -> None:
    """The queue pocctl makes takes at most 256 KiB (MaximumMessageSize): one byte more gets
    SQS's own error as a 400 and nothing is enqueued; an order of exactly that size goes all
    the way to the table (it fits DynamoDB's 400 KB item)."""
    from pocctl.resources.sqs import MAX_ORDER_BYTES

    assert lws.cli("up").exit_code == 0
    url = invoke_url(lws)
    head = '{"orderID": "big", "note": "'

    def order(size: int) -> bytes:
        return (head + "x" * (size - len(head) - 2) + '"}').encode()

    status, text = post(url, order(MAX_ORDER_BYTES + 1))
    assert status == 400, text
    error = json.loads(text)["Error"]
    assert error["Code"] in ("InvalidParameterValue", "InvalidParameterValueException")
    assert str(MAX_ORDER_BYTES) in error["Message"]
    sqs = client(lws.endpoint, "sqs")
    q = sqs.get_queue_url(QueueName="POC-Queue")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["All"])["Attributes"]
    assert attrs["MaximumMessageSize"] == str(MAX_ORDER_BYTES)
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"

    status, text = post(url, order(MAX_ORDER_BYTES))
    assert status == 200, text
    order_id = json.loads(text)["messageId"]
    ddb = client(lws.endpoint, "dynamodb")
    item = wait_until(
        lambda: ddb.get_item(TableName="orders", Key={"orderID": {"S": order_id}}).get("Item"),
        what="the largest order's row",
    )
    assert len(item["order"]["M"]["note"]["S"]) == MAX_ORDER_BYTES - len(head) - 2


def test_test_order_count_20_exits_0_with_timings(lws: Workspace) -> None:
    assert lws.cli("up").exit_code == 0
    r = lws.subprocess(
        "--config", str(lws.config), "--state", str(lws.state), "test-order", "--count", "20"
    )
    assert r.exit_code == 0, r.output
    assert "20 of 20 orders stored once and notified once" in r.stdout
    assert re.search(r"p50\s+\d+ ms\s+\d+ ms\s+\d+ ms", r.stdout), r.stdout
    assert re.search(r"p95\s+\d+ ms\s+\d+ ms\s+\d+ ms", r.stdout), r.stdout
    # the probe queue is gone and unsubscribed
    sqs, sns = client(lws.endpoint, "sqs"), client(lws.endpoint, "sns")
    assert not [u for u in sqs.list_queues().get("QueueUrls", []) if "pocctl-probe" in u]
    assert not [s for s in sns.list_subscriptions()["Subscriptions"] if s["Protocol"] == "sqs"]
    assert client(lws.endpoint, "dynamodb").scan(TableName="orders")["Count"] == 20


def test_test_order_at_a_rate_stores_and_notifies_every_order(lws: Workspace) -> None:
    assert lws.cli("up").exit_code == 0
    r = lws.cli("test-order", "--count", "8", "--rate", "100", "--concurrency", "3")
    assert r.exit_code == 0, r.output
    assert re.search(r"POST 8 orders to \S+ at 100 orders/s", r.stdout), r.stdout
    assert "8 of 8 orders stored once and notified once" in r.stdout
    assert client(lws.endpoint, "dynamodb").scan(TableName="orders")["Count"] == 8


def test_test_order_backs_off_when_the_stage_throttles_it(lws: Workspace) -> None:
    """A stage limited to 1 request/s (burst 1): two of three orders sent at once are answered
    429, as on AWS; test-order backs off, sends them again, and all three go through once."""
    lws.write_config("api:\n  throttling_rate_limit: 1\n  throttling_burst_limit: 1\n")
    assert lws.cli("up").exit_code == 0
    r = lws.cli("test-order", "--count", "3", "--rate", "0", "--concurrency", "3")
    assert r.exit_code == 0, r.output
    assert "2 of 3 POSTs were throttled (429) by the stage and sent again" in r.output, r.output
    assert "3 of 3 orders stored once and notified once" in r.stdout
    assert client(lws.endpoint, "dynamodb").scan(TableName="orders")["Count"] == 3


def test_test_order_follows_orders_while_the_rest_are_still_being_sent(
    lws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last POST is held until the probe has seen a notification: were orders followed
    only after every POST came back, it would wait for ever (here: fail after 30 s)."""
    from pocctl import orders
    from pocctl.aws import Aws
    from pocctl.config import load
    from pocctl.resources.base import Context, Target

    assert lws.cli("up").exit_code == 0
    notified = threading.Event()
    receive, post = orders.Probe.receive, orders.post

    def receive_and_tell(self, wait: int = 1) -> list[str]:  # type: ignore[no-untyped-def]
        bodies = receive(self, wait)
        if bodies:
            notified.set()
        return bodies

    def post_last_after_a_notification(url: str, body: str, timeout: float = 30.0):  # type: ignore[no-untyped-def]
        if '"quantity": 5' in body:  # the fifth (last) sample order
            assert notified.wait(30), "no notification was followed while sending"
        return post(url, body, timeout)

    monkeypatch.setattr(orders.Probe, "receive", receive_and_tell)
    monkeypatch.setattr(orders, "post", post_last_after_a_notification)
    ctx = Context(Target(load(lws.config), Aws(region="us-east-1", endpoint_url=lws.endpoint)))
    report = orders.run(ctx, invoke_url(lws), count=5, concurrency=1, timeout=30)
    assert report.ok, report.problems
    last = report.orders[-1]
    # an order was seen notified (and its time taken) before the last POST was answered
    assert last.accepted is not None
    seen = min(o.sent_at + (o.notified or float("inf")) for o in report.orders[:-1])
    assert seen <= last.sent_at + last.accepted


def test_test_order_fails_naming_what_is_missing_when_lambda2_has_no_trigger(
    lws: Workspace,
) -> None:
    assert lws.cli("up").exit_code == 0
    lam = client(lws.endpoint, "lambda")
    (m,) = lam.list_event_source_mappings(FunctionName="POC-Lambda-2")["EventSourceMappings"]
    lam.delete_event_source_mapping(UUID=m["UUID"])
    r = lws.cli("test-order", "--timeout", "3")
    assert r.exit_code == 1
    assert "was stored but not notified" in r.stderr
    assert "1 of 1 orders did not make it through" in r.stderr
    sqs = client(lws.endpoint, "sqs")
    assert not [u for u in sqs.list_queues().get("QueueUrls", []) if "pocctl-probe" in u]


def test_test_order_with_a_custom_body(lws: Workspace) -> None:
    assert lws.cli("up").exit_code == 0
    r = lws.cli("test-order", "--body", '{"item": "bleach", "quantity": 1}')
    assert r.exit_code == 0, r.output
    items = client(lws.endpoint, "dynamodb").scan(TableName="orders")["Items"]
    assert [i["order"]["M"]["item"]["S"] for i in items] == ["bleach"]


def test_lambda1_test_invokes_the_function_and_finds_the_row(lws: Workspace) -> None:
    for cmd in ("iam", "table", "queue"):
        assert lws.cli(cmd).exit_code == 0
    r = lws.cli("lambda1", "--test")
    assert r.exit_code == 0, r.output
    m = re.search(r"orders row orderID=([0-9a-f-]{36})", r.stdout)
    assert m, r.stdout
    item = client(lws.endpoint, "dynamodb").get_item(
        TableName="orders", Key={"orderID": {"S": m.group(1)}}
    )["Item"]
    assert item["order"]["M"]["item"]["S"] == "glass cleaner"


def test_demo_runs_the_whole_job_offline() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pocctl", "demo"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        cwd=Path(__file__).parent,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for text in (
        "stack is up: 18 created",
        "3 of 3 orders stored once and notified once",
        "stack is down: 18 deleted",
        "demo finished",
    ):
        assert text in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
