"""moto's backends are not thread-safe; the embedded AWS lets one request at a time reach them
(but for long polls and Lambda Invoke), so concurrent callers — a parallel `up`, the pollers
beside a flood of orders — never see the HTTP 500 "dictionary changed size during iteration"."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config

from pocctl.local.server import EmbeddedAWS

THREADS = 6
ROUNDS = 40


@pytest.fixture
def server(aws_endpoint: str, embedded_server: EmbeddedAWS) -> Iterator[EmbeddedAWS]:
    """The suite's embedded AWS (moto's state is process-wide), reset before and after."""
    yield embedded_server
    embedded_server.reset()


def _client(server: EmbeddedAWS, service: str):  # type: ignore[no-untyped-def]
    # No retries: a 500 must show, not be retried away.
    cfg = Config(retries={"total_max_attempts": 1}, max_pool_connections=THREADS * 2)
    return boto3.client(
        service, region_name="us-east-1", endpoint_url=server.endpoint_url, config=cfg
    )


def test_concurrent_iam_writes_never_answer_500(server: EmbeddedAWS) -> None:
    """CreatePolicy adds to the dict AttachRolePolicy walks: the race a parallel `up` hit."""
    iam = _client(server, "iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    doc = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
    )
    errors: list[str] = []

    def work(t: int) -> None:
        for i in range(ROUNDS):
            try:
                arn = iam.create_policy(PolicyName=f"p-{t}-{i}", PolicyDocument=doc)["Policy"][
                    "Arn"
                ]
                iam.create_role(RoleName=f"r-{t}-{i}", AssumeRolePolicyDocument=trust)
                iam.attach_role_policy(RoleName=f"r-{t}-{i}", PolicyArn=arn)
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(f"{type(e).__name__}: {e}"[:200])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads)
    assert errors == []
    assert len(iam.list_policies(Scope="Local", MaxItems=1000)["Policies"]) >= THREADS * ROUNDS


def test_a_long_poll_does_not_hold_up_other_requests(server: EmbeddedAWS) -> None:
    sqs = _client(server, "sqs")
    url = sqs.create_queue(QueueName="long-poll")["QueueUrl"]
    started, done = threading.Event(), threading.Event()

    def poll() -> None:
        started.set()
        sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)
        done.set()

    th = threading.Thread(target=poll)
    th.start()
    assert started.wait(5)
    # While the long poll waits for a message, another request goes through and ends it.
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    assert done.wait(5), "the long poll never saw the message"
    th.join(5)


class Trickler:
    """A client that sends a request's headers, then its body one byte every ``every`` seconds,
    never finishing it (it announced more bytes than it sends)."""

    def __init__(self, endpoint: str, path: str, headers: dict[str, str], every: float = 2.0):
        parts = urlsplit(endpoint)
        lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", "Content-Length: 100000"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock = socket.create_connection((str(parts.hostname), int(parts.port or 80)))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + b"{")
        self.sent = 1
        self._stop = threading.Event()
        self._every = every
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.sock.sendall(b" ")
                self.sent += 1
            except OSError:
                return

    def answered(self) -> bool:
        """Whether the server has answered (or closed) yet."""
        self.sock.setblocking(False)
        try:
            return self.sock.recv(1, socket.MSG_PEEK) is not None
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            self.sock.setblocking(True)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


SIGNED = (
    "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/{}/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
)


def test_a_trickling_client_delays_no_other_request(server: EmbeddedAWS) -> None:
    """Bodies trickling in, one byte every 2 s, on every protocol's path (issue 9: they held
    the lock moto runs under, and an order POST and a ListQueues waited 29 s). 100 requests
    beside them each answer within 1 s."""
    sqs, ddb = _client(server, "sqs"), _client(server, "dynamodb")
    url = sqs.create_queue(QueueName="beside-a-trickler")["QueueUrl"]
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    tricklers = [
        Trickler(
            server.endpoint_url,
            "/",
            {
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "AmazonSQS.CreateQueue",
                "Authorization": SIGNED.format("sqs"),
            },
        ),
        Trickler(
            server.endpoint_url,
            "/",
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": SIGNED.format("iam"),
            },
        ),
        Trickler(
            server.endpoint_url,
            "/2015-03-31/functions",
            {"Content-Type": "application/json", "Authorization": SIGNED.format("lambda")},
        ),
    ]
    try:
        latencies = []
        for i in range(100):
            started = time.monotonic()
            if i % 3 == 0:
                sqs.list_queues()
            elif i % 3 == 1:
                sqs.send_message(QueueUrl=url, MessageBody=str(i))
            else:
                ddb.put_item(TableName="t", Item={"k": {"S": str(i)}})
            latencies.append(time.monotonic() - started)
        assert not any(t.answered() for t in tricklers), "the tricklers were cut off early"
    finally:
        for t in tricklers:
            t.close()
    assert max(latencies) < 1.0, sorted(latencies)[-5:]
    assert ddb.scan(TableName="t")["Count"] == 33
