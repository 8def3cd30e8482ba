"""The embedded AWS serves this machine's own tools only (issue 9): every request goes through
one pipeline (pocctl.local.server.Pipeline) that reads the body with a deadline, then refuses a
foreign Host, a web page's Origin, moto's admin API without --admin and an unsigned AWS API
call, and never sends a CORS header. Crafted requests go over real HTTP on 127.0.0.1
(http.client, headers exactly as written); boto3 signs as any SDK does."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from support.localkit import (
    LAMBDA_TRUST,
    SIGNED,
    build_stack,
    permissions,
    request,
    signed,
    wait_for,
    zipped,
)

from pocctl.local import server as server_mod
from pocctl.local.runtime import LocalAWS
from pocctl.local.server import API_BODY_LIMIT, INVOKE_BODY_LIMIT, EmbeddedAWS

LIST_QUEUES = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "AmazonSQS.ListQueues",
}
ORDER = b'{"item": "soap", "quantity": 1}'


def unsigned(endpoint: str, service: str) -> Any:
    """A boto3 client that sends no signature, as a web page's or curl's request would."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(signature_version=botocore.UNSIGNED, retries={"total_max_attempts": 1}),
    )


@pytest.fixture
def stack(local_aws: LocalAWS):  # type: ignore[no-untyped-def]
    return build_stack(local_aws.endpoint_url, mappings=False)


def _no_cors(headers: dict[str, str]) -> bool:
    return not [k for k in headers if k.startswith("access-control-")]


# -- Host ------------------------------------------------------------------------------------


def test_a_foreign_host_is_refused_on_every_path(local_aws: LocalAWS, stack) -> None:  # type: ignore[no-untyped-def]
    """DNS rebinding: a page at evil.example whose name now resolves to 127.0.0.1 sends its
    own name; so does any other name. Refused with one line, and nothing happens."""
    port = local_aws.server.port
    invoke = urlsplit(local_aws.invoke_url(stack.api_id, "prod")).path
    paths = [
        ("POST", "/", {**LIST_QUEUES, "Authorization": SIGNED}, b"{}"),
        ("GET", "/2015-03-31/functions/", {"Authorization": SIGNED}, b""),
        ("POST", invoke, {"Content-Type": "application/json"}, ORDER),
        ("POST", "/moto-api/reset", {}, b""),
    ]
    hosts = [f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", "127.0.0.1", ""]
    for method, path, headers, body in paths:
        for host in hosts:
            status, _, text = request(
                local_aws.endpoint_url, method, path, headers, body, host=host
            )
            assert status == 403, (path, host, status, text)
            assert text.count(b"\n") == 1 and b"Host" in text, text
    assert stack.count(stack.queue_url) == 0  # no order got through
    assert stack.client("sqs").get_queue_url(QueueName="probe")  # and no reset


def test_this_machines_names_with_the_servers_port_are_served(local_aws: LocalAWS) -> None:
    port = local_aws.server.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        status, _, text = request(
            local_aws.endpoint_url,
            "POST",
            "/",
            {**LIST_QUEUES, "Authorization": SIGNED},
            b"{}",
            host=host,
        )
        assert status == 200, (host, text)


def test_the_port_may_be_left_out_only_when_it_is_80() -> None:
    """Clients leave out HTTP's default port (80), and only that one."""
    from pocctl.local.operation import Operation
    from pocctl.local.server import Request, host_check

    op = Operation("sqs", "ListQueues", "json")

    def refused(port: int, host: str) -> bool:
        return host_check(lambda: port)(Request({"HTTP_HOST": host}, b"", op)) is not None

    assert not refused(80, "127.0.0.1") and not refused(80, "localhost:80")
    assert not refused(80, "[::1]") and not refused(4566, "[::1]:4566")
    assert refused(4566, "127.0.0.1") and refused(4566, "127.0.0.1:80")
    assert refused(4566, "127.0.0.1:4566,evil.example") and refused(80, "[::1]x")


# -- web pages -------------------------------------------------------------------------------


def test_a_web_pages_origin_is_refused_on_the_api_and_the_invoke_url(
    local_aws: LocalAWS, stack
) -> None:  # type: ignore[no-untyped-def]
    invoke = urlsplit(local_aws.invoke_url(stack.api_id, "prod")).path
    for origin in ("https://evil.example", "http://127.0.0.1.evil.example", "null"):
        for path, headers, body in (
            (invoke, {"Content-Type": "application/json"}, ORDER),
            ("/", {**LIST_QUEUES, "Authorization": SIGNED}, b"{}"),
        ):
            status, got, text = request(
                local_aws.endpoint_url, "POST", path, {**headers, "Origin": origin}, body
            )
            assert status == 403 and b"web page" in text, (origin, path, status, text)
            assert _no_cors(got)
    # A cross-site request a browser sends without Origin (an <img>, a link, a form's GET).
    status, _, text = request(
        local_aws.endpoint_url, "GET", invoke, {"Sec-Fetch-Site": "cross-site"}
    )
    assert status == 403, text
    assert stack.count(stack.queue_url) == 0


def test_a_loopback_origin_is_served_and_no_cors_header_is_ever_sent(
    local_aws: LocalAWS, stack
) -> None:  # type: ignore[no-untyped-def]
    invoke = urlsplit(local_aws.invoke_url(stack.api_id, "prod")).path
    origin = {"Origin": "http://localhost:3000"}
    status, got, text = request(
        local_aws.endpoint_url,
        "POST",
        invoke,
        {**origin, "Content-Type": "application/json"},
        ORDER,
    )
    assert status == 200, text
    assert _no_cors(got)
    assert stack.count(stack.queue_url) == 1
    # moto's answers carry flask-cors's headers inside; none leaves the server.
    status, got, _ = request(
        local_aws.endpoint_url,
        "POST",
        "/",
        {**LIST_QUEUES, **origin, "Authorization": SIGNED},
        b"{}",
    )
    assert status == 200 and _no_cors(got), got
    status, got, _ = request(
        local_aws.endpoint_url,
        "OPTIONS",
        "/",
        {**origin, "Access-Control-Request-Method": "POST", "Authorization": SIGNED},
    )
    assert _no_cors(got), got


def test_moto_itself_would_have_sent_cors_headers(local_aws: LocalAWS) -> None:
    """What the pipeline strips is really there: moto's app answers Access-Control-Allow-Origin."""
    from werkzeug.test import Client

    inner = Client(local_aws.server.pipeline.app)
    resp = inner.post(
        "/",
        data=b"{}",
        headers={**LIST_QUEUES, "Authorization": SIGNED, "Origin": "https://evil.example"},
        base_url=local_aws.endpoint_url,
    )
    assert resp.headers.get("Access-Control-Allow-Origin") is not None


# -- signatures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "call", "code", "status"),
    [
        ("sqs", lambda c: c.list_queues(), "MissingAuthenticationToken", 403),
        ("iam", lambda c: c.list_roles(), "MissingAuthenticationToken", 403),
        ("sns", lambda c: c.list_topics(), "MissingAuthenticationToken", 403),
        ("dynamodb", lambda c: c.list_tables(), "MissingAuthenticationTokenException", 400),
        ("lambda", lambda c: c.list_functions(), "MissingAuthenticationTokenException", 403),
        ("apigateway", lambda c: c.get_rest_apis(), "MissingAuthenticationTokenException", 403),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_an_unsigned_aws_api_request_gets_awss_error(
    local_aws: LocalAWS, service: str, call: Any, code: str, status: int
) -> None:
    with pytest.raises(ClientError) as e:
        call(unsigned(local_aws.endpoint_url, service))
    err = e.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == (code, status)


def test_a_browsers_simple_post_cannot_create_anything(local_aws: LocalAWS) -> None:
    """An HTML form can POST application/x-www-form-urlencoded anywhere, unsigned."""
    body = b"Action=CreateQueue&QueueName=from-a-page&Version=2012-11-05"
    status, _, text = request(
        local_aws.endpoint_url,
        "POST",
        "/",
        {"Content-Type": "application/x-www-form-urlencoded"},
        body,
    )
    assert status == 403 and b"<Code>MissingAuthenticationToken</Code>" in text, text
    assert "from-a-page" not in str(signed(local_aws.endpoint_url, "sqs").list_queues())


def test_a_malformed_signature_is_an_incomplete_signature(local_aws: LocalAWS) -> None:
    for auth in ("AWS testing:c2lnbmF0dXJl", "AWS4-HMAC-SHA256 Credential=x", "Bearer token"):
        status, _, text = request(
            local_aws.endpoint_url, "POST", "/", {**LIST_QUEUES, "Authorization": auth}, b"{}"
        )
        assert status == 400 and json.loads(text)["__type"] == "IncompleteSignature", text


def test_signed_requests_work_and_a_presigned_url_is_served(local_aws: LocalAWS) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=local_aws.endpoint_url,
        region_name="us-east-1",
        config=Config(signature_version="s3v4"),  # SigV2 is off on AWS for new buckets
    )
    s3.create_bucket(Bucket="presigned")
    s3.put_object(Bucket="presigned", Key="k", Body=b"hello")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "presigned", "Key": "k"})
    parts = urlsplit(url)
    assert "X-Amz-Signature=" in parts.query
    status, _, body = request(local_aws.endpoint_url, "GET", f"{parts.path}?{parts.query}", {})
    assert (status, body) == (200, b"hello")
    # The same URL without its signature is refused.
    status, _, _ = request(local_aws.endpoint_url, "GET", parts.path, {})
    assert status == 403


def test_the_invoke_url_stays_open_as_authorization_none_is_on_aws(
    local_aws: LocalAWS, stack
) -> None:  # type: ignore[no-untyped-def]
    invoke = urlsplit(local_aws.invoke_url(stack.api_id, "prod")).path
    status, _, text = request(
        local_aws.endpoint_url, "POST", invoke, {"Content-Type": "application/json"}, ORDER
    )
    assert status == 200, text
    assert "messageId" in json.loads(text)


# -- moto's admin API ------------------------------------------------------------------------


def test_the_admin_api_is_refused_without_admin(local_aws: LocalAWS) -> None:
    sqs = signed(local_aws.endpoint_url, "sqs")
    sqs.create_queue(QueueName="survivor")
    for method, path in (
        ("POST", "/moto-api/reset"),
        ("GET", "/moto-api/data.json"),
        ("POST", "/moto-api/recorder/start-recording"),
        ("GET", "/moto-api/recorder/download-recording"),
        ("POST", "/moto-api/seed?a=42"),
        ("POST", "/moto-api/config"),
        ("GET", "/moto-api/"),
    ):
        status, got, text = request(local_aws.endpoint_url, method, path, {"Authorization": SIGNED})
        assert status == 403 and b"--admin" in text and text.count(b"\n") == 1, (path, text)
        assert _no_cors(got)
    assert sqs.get_queue_url(QueueName="survivor")


def test_reset_is_in_process_and_needs_no_admin_api(local_aws: LocalAWS) -> None:
    sqs = signed(local_aws.endpoint_url, "sqs")
    sqs.create_queue(QueueName="gone-after-reset")
    local_aws.server.reset()
    assert sqs.list_queues().get("QueueUrls", []) == []


@pytest.fixture
def admin_server(local_aws: LocalAWS) -> Iterator[EmbeddedAWS]:
    """A second server with --admin's behaviour (moto's state is process-wide: it serves the
    same account as local_aws)."""
    with EmbeddedAWS(port=0, admin=True) as server:
        yield server


def test_with_admin_the_admin_api_works(admin_server: EmbeddedAWS) -> None:
    sqs = signed(admin_server.endpoint_url, "sqs")
    sqs.create_queue(QueueName="reset-over-http")
    status, _, _ = request(admin_server.endpoint_url, "GET", "/moto-api/data.json", {})
    assert status == 200
    status, _, text = request(admin_server.endpoint_url, "POST", "/moto-api/reset", {})
    assert status == 200, text
    assert sqs.list_queues().get("QueueUrls", []) == []
    # Still only for this machine's tools: a web page cannot reach it.
    status, _, _ = request(
        admin_server.endpoint_url, "POST", "/moto-api/reset", {"Origin": "https://evil.example"}
    )
    assert status == 403


def test_replaying_a_recording_does_not_deadlock(
    admin_server: EmbeddedAWS, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """moto's replay sends each recorded request to the server over HTTP from inside a request
    that holds the server's lock: the lock is given up around moto's own outgoing calls."""
    from moto.moto_api import recorder

    monkeypatch.setattr(recorder, "_location", str(tmp_path / "recording"))
    url = admin_server.endpoint_url
    for path in ("/moto-api/recorder/reset-recording", "/moto-api/recorder/start-recording"):
        assert request(url, "POST", path, {})[0] == 200
    sqs = signed(url, "sqs")
    sqs.create_queue(QueueName="recorded")
    assert request(url, "POST", "/moto-api/recorder/stop-recording", {})[0] == 200
    admin_server.reset()
    started = time.monotonic()
    status, _, text = request(url, "POST", "/moto-api/recorder/replay-recording", {})
    assert status == 200, text
    assert time.monotonic() - started < 10
    assert sqs.get_queue_url(QueueName="recorded")


# -- bodies ----------------------------------------------------------------------------------


def _open(endpoint: str, head: bytes) -> socket.socket:
    parts = urlsplit(endpoint)
    sock = socket.create_connection((str(parts.hostname), int(parts.port or 80)), timeout=10)
    sock.sendall(head)
    return sock


def _head(endpoint: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {urlsplit(endpoint).netloc}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status_of(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_a_body_over_the_limit_is_refused_before_it_is_sent(local_aws: LocalAWS, stack) -> None:  # type: ignore[no-untyped-def]
    invoke = urlsplit(local_aws.invoke_url(stack.api_id, "prod")).path
    for path, limit in (("/", API_BODY_LIMIT), (invoke, INVOKE_BODY_LIMIT)):
        headers = {**LIST_QUEUES, "Authorization": SIGNED, "Content-Length": str(limit + 1)}
        with _open(local_aws.endpoint_url, _head(local_aws.endpoint_url, path, headers)) as s:
            assert _status_of(s) == 413


def test_a_body_that_never_ends_is_cut_off_with_408(
    local_aws: LocalAWS, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_mod, "BODY_DEADLINE", 1.0)
    headers = {**LIST_QUEUES, "Authorization": SIGNED, "Content-Length": "100"}
    head = _head(local_aws.endpoint_url, "/", headers)
    with _open(local_aws.endpoint_url, head + b'{"Queue') as s:
        started = time.monotonic()
        stop = threading.Event()

        def trickle() -> None:  # one byte every 0.3 s: never idle long, never done
            while not stop.wait(0.3):
                try:
                    s.sendall(b" ")
                except OSError:
                    return

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        try:
            assert _status_of(s) == 408
        finally:
            stop.set()
            t.join(5)
        assert time.monotonic() - started < 4


def test_a_chunked_body_is_read_and_a_chunked_trickle_is_cut_off(
    local_aws: LocalAWS, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {**LIST_QUEUES, "Authorization": SIGNED, "Transfer-Encoding": "chunked"}
    head = _head(local_aws.endpoint_url, "/", headers)
    with _open(local_aws.endpoint_url, head + b"1\r\n{\r\n1;x=y\r\n}\r\n0\r\n\r\n") as s:
        assert _status_of(s) == 200
    monkeypatch.setattr(server_mod, "BODY_DEADLINE", 1.0)
    with _open(local_aws.endpoint_url, head + b"100\r\n{") as s:
        assert _status_of(s) == 408


# -- no call back into the server under its lock ----------------------------------------------

CALLS_BACK = """
import os, boto3

def handler(event, context):
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName="called-back")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=event["Records"][0]["Sns"]["Message"])
    return {}
"""


def test_an_sns_lambda_subscriber_runs_in_the_background_and_can_call_back(
    local_aws: LocalAWS,
) -> None:
    """SNS invokes a subscribed function from inside Publish, which holds the server's lock;
    the function calls back into the server. AWS invokes it asynchronously: so does the
    embedded AWS, and neither waits for the other."""
    iam, lam = signed(local_aws.endpoint_url, "iam"), signed(local_aws.endpoint_url, "lambda")
    sqs, sns = signed(local_aws.endpoint_url, "sqs"), signed(local_aws.endpoint_url, "sns")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    # The function calls SQS back as its execution role (IAM is enforced).
    iam.put_role_policy(RoleName="r", PolicyName="sqs", PolicyDocument=permissions(["sqs:*"]))
    fn = lam.create_function(
        FunctionName="calls-back",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": zipped({"app.py": CALLS_BACK})},
        Timeout=10,
    )["FunctionArn"]
    url = sqs.create_queue(QueueName="called-back")["QueueUrl"]
    topic = sns.create_topic(Name="t")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=fn)
    started = time.monotonic()
    sns.publish(TopicArn=topic, Message="hello")
    assert time.monotonic() - started < 2  # Publish did not wait for the function
    got = wait_for(
        lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages"),
        timeout=20,
        what="the function's call back",
    )
    assert got[0]["Body"] == "hello"
