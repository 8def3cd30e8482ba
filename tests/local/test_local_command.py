"""`pocctl local` as a user runs it (a real subprocess): it stops within 5 s on SIGTERM or
Ctrl-C whatever clients are connected, serves only this machine's tools, and keeps moto's
admin API off unless --admin (issue 9)."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from support import subprocess_env
from support.localkit import LAMBDA_TRUST, SIGNED, permissions, request, signed, zipped
from support.localproc import LocalProcess


class LocalCommand(LocalProcess):
    """`pocctl local --port 0 ARGS`, without AWS-managed policies (faster to start)."""

    def __init__(self, *args: str) -> None:
        super().__init__(
            "--port", "0", *args, env=subprocess_env(MOTO_IAM_LOAD_MANAGED_POLICIES="false")
        )

    def stop_by(self, signum: int, within: float) -> float:
        """Send ``signum``; the process must exit 0 within ``within`` s. Returns the time taken."""
        started = time.monotonic()
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {within} s after signal {signum}") from None
        took = time.monotonic() - started
        assert code == 0, self.lines
        self.wait_for_line("embedded AWS stopped", timeout=5)
        return took


@pytest.fixture
def local() -> Iterator[LocalCommand]:
    p = LocalCommand()
    yield p
    p.kill()


def _hold_a_body_open(endpoint: str) -> socket.socket:
    """A client that sent headers and part of its body, and sends the rest one byte at a time."""
    parts = urlsplit(endpoint)
    sock = socket.create_connection((str(parts.hostname), int(parts.port or 80)), timeout=10)
    head = (
        f"POST / HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS.CreateQueue\r\n"
        f"Authorization: {SIGNED}\r\nContent-Length: 100000\r\n\r\n{{"
    )
    sock.sendall(head.encode())
    return sock


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_it_stops_within_5_s_while_clients_hold_connections_open(
    local: LocalCommand, signum: int
) -> None:
    held = [_hold_a_body_open(local.endpoint) for _ in range(3)]
    parts = urlsplit(local.endpoint)
    silent = socket.create_connection((str(parts.hostname), int(parts.port or 80)))
    for s in held:
        s.sendall(b" ")
    # Connections are accepted in order: once this one is answered, the server is reading the
    # held bodies (and, with them still open, answers others).
    signed(local.endpoint, "sqs").list_queues()
    try:
        took = local.stop_by(signum, within=5)
    finally:
        for s in [*held, silent]:
            s.close()
    assert took < 5


def test_without_admin_the_admin_api_is_off_and_the_banner_says_so(local: LocalCommand) -> None:
    text = "\n".join(local.lines)
    assert "moto's admin API (/moto-api) is off; --admin turns it on." in text
    assert "without a sandbox: deploy only code you trust" in text
    sqs = signed(local.endpoint, "sqs")
    sqs.create_queue(QueueName="kept")
    status, _, body = request(local.endpoint, "POST", "/moto-api/reset", {})
    assert status == 403 and b"--admin" in body
    assert sqs.get_queue_url(QueueName="kept")


def test_a_foreign_host_and_a_web_page_are_refused(local: LocalCommand) -> None:
    port = urlsplit(local.endpoint).port
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "AmazonSQS.ListQueues",
        "Authorization": SIGNED,
    }
    status, _, _ = request(local.endpoint, "POST", "/", headers, b"{}", host=f"evil.example:{port}")
    assert status == 403
    status, _, _ = request(
        local.endpoint, "POST", "/", {**headers, "Origin": "https://evil.example"}, b"{}"
    )
    assert status == 403
    status, got, _ = request(local.endpoint, "POST", "/", headers, b"{}")
    assert status == 200 and not [k for k in got if k.startswith("access-control-")]


def test_with_admin_reset_works_and_the_banner_says_so() -> None:
    p = LocalCommand("--admin")
    try:
        assert "moto's admin API is ON (--admin)" in "\n".join(p.lines)
        sqs = signed(p.endpoint, "sqs")
        sqs.create_queue(QueueName="gone")
        status, _, _ = request(p.endpoint, "POST", "/moto-api/reset", {})
        assert status == 200
        assert sqs.list_queues().get("QueueUrls", []) == []
        p.stop_by(signal.SIGTERM, within=5)
    finally:
        p.kill()


SLOW = """
import boto3, time

def handler(event, context):
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="started")["QueueUrl"], MessageBody="")
    time.sleep(60)
"""


def test_it_stops_within_5_s_while_functions_run(local: LocalCommand) -> None:
    """A client waiting on Invoke, and a poller waiting on the function its mapping invoked:
    both functions run for a minute; SIGTERM still ends `pocctl local` within 5 s."""
    iam, lam = signed(local.endpoint, "iam"), signed(local.endpoint, "lambda")
    sqs = signed(local.endpoint, "sqs")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    # The function calls SQS back as its execution role (IAM is enforced).
    iam.put_role_policy(RoleName="r", PolicyName="sqs", PolicyDocument=permissions(["sqs:*"]))
    lam.create_function(
        FunctionName="slow",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": zipped({"app.py": SLOW})},
        Timeout=120,
    )
    started = sqs.create_queue(QueueName="started")["QueueUrl"]
    source = sqs.create_queue(QueueName="in", Attributes={"VisibilityTimeout": "720"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"]
    lam.create_event_source_mapping(
        EventSourceArn=arn["QueueArn"], FunctionName="slow", BatchSize=1
    )
    sqs.send_message(QueueUrl=source, MessageBody="go")

    def invoke() -> None:
        try:
            lam.invoke(FunctionName="slow")
        except Exception:  # noqa: BLE001 - the server goes away under the call: expected
            pass

    threading.Thread(target=invoke, daemon=True).start()
    seen = 0
    deadline = time.monotonic() + 30
    while seen < 2:  # both runs have started
        assert time.monotonic() < deadline, "the functions did not start"
        msgs = sqs.receive_message(QueueUrl=started, WaitTimeSeconds=1, MaxNumberOfMessages=2)
        for m in msgs.get("Messages", []):
            sqs.delete_message(QueueUrl=started, ReceiptHandle=m["ReceiptHandle"])
            seen += 1
    assert local.stop_by(signal.SIGTERM, within=5) < 5
