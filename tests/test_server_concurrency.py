"""moto's backends are not thread-safe; the embedded AWS lets one request at a time reach them
(but for long polls and Lambda Invoke), so concurrent callers — a parallel `up`, the pollers
beside a flood of orders — never see the HTTP 500 "dictionary changed size during iteration"."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

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
