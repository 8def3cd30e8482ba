"""The embedded AWS's own clients call its app in-process: same answers as over HTTP, same
middleware (the server-side call recorder sees them), a 500 where the HTTP server would."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from pocctl.local.server import local_client


def _pair(server, service: str):  # type: ignore[no-untyped-def]
    over_http = local_client(server.endpoint_url, service)
    in_process = server.in_process(local_client(server.endpoint_url, service))
    return over_http, in_process


def test_answers_are_the_same_as_over_http(embedded_server, aws_endpoint, aws_calls) -> None:  # type: ignore[no-untyped-def]
    http, inproc = _pair(embedded_server, "sqs")
    url = inproc.create_queue(QueueName="in-process")["QueueUrl"]
    assert url == http.get_queue_url(QueueName="in-process")["QueueUrl"]
    assert url.startswith(embedded_server.endpoint_url)  # moto saw the same Host
    inproc.send_message(
        QueueUrl=url,
        MessageBody="hello",
        MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}},
    )
    got = http.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"][0]
    assert got["Body"] == "hello" and got["MessageAttributes"]["k"]["StringValue"] == "v"
    # Errors parse the same way: code, message, HTTP status.
    errors = []
    for client in (http, inproc):
        with pytest.raises(ClientError) as e:
            client.get_queue_url(QueueName="missing")
        errors.append(
            (e.value.response["Error"], e.value.response["ResponseMetadata"]["HTTPStatusCode"])
        )
    assert errors[0] == errors[1]
    # The in-process calls went through the server's middleware like any other.
    assert aws_calls.calls.count(("CreateQueue", True)) == 1
    assert aws_calls.calls.count(("GetQueueUrl", False)) == 3


def test_a_streaming_answer_reads_like_over_http(embedded_server, aws_endpoint) -> None:  # type: ignore[no-untyped-def]
    """GetObject-style streaming bodies (Lambda Invoke's Payload is one) read through read()."""
    http, inproc = _pair(embedded_server, "s3")
    inproc.create_bucket(Bucket="in-process")
    inproc.put_object(Bucket="in-process", Key="k", Body=b"x" * 70_000)
    assert inproc.get_object(Bucket="in-process", Key="k")["Body"].read() == b"x" * 70_000
    assert http.get_object(Bucket="in-process", Key="k")["Body"].read() == b"x" * 70_000


def test_an_exception_escaping_the_app_answers_500(
    embedded_server, aws_endpoint, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    _, inproc = _pair(embedded_server, "sqs")

    def broken(environ, start_response):  # type: ignore[no-untyped-def]
        raise RuntimeError("moto broke")

    monkeypatch.setattr(embedded_server, "app", broken)
    with pytest.raises(ClientError) as e:
        inproc.list_queues()
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_in_process_requests_carry_sigv4_headers_without_the_hashing(
    embedded_server, aws_endpoint
) -> None:  # type: ignore[no-untyped-def]
    """In-process clients sign with server.in_process_signer: the SigV4 Authorization header
    (access key, date, region, service) the server's checks and moto read, a zero signature;
    clients of other processes (over HTTP) still sign for real."""
    import re

    headers: list[dict[str, object]] = []
    for client in (
        embedded_server.in_process(local_client(aws_endpoint, "sqs", region="eu-west-1")),
        local_client(aws_endpoint, "sqs", region="eu-west-1"),
    ):
        client.meta.events.register(
            "before-send", lambda request, **_: headers.append(dict(request.headers))
        )
        url = client.create_queue(QueueName="signed")["QueueUrl"]
        # The region came from the credential scope: the queue is eu-west-1's.
        assert client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ].startswith("arn:aws:sqs:eu-west-1:")
    auth = [
        str(
            h["Authorization"].decode()
            if isinstance(h["Authorization"], bytes)
            else h["Authorization"]
        )
        for h in headers
    ]  # type: ignore[union-attr]
    scope = (
        r"^AWS4-HMAC-SHA256 Credential=testing/\d{8}/eu-west-1/sqs/aws4_request, "
        r"SignedHeaders=[a-z0-9;-]+, Signature="
    )
    assert re.match(scope + "0{64}$", auth[0])
    assert re.match(scope + "[0-9a-f]{64}$", auth[-1]) and not auth[-1].endswith("0" * 64)
    assert all("X-Amz-Date" in h for h in headers)
