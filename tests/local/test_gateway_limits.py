"""API Gateway's limits, headers and console Test on the embedded data plane, over HTTP.

413 past the 10 MB payload quota without reading the rest, 504 past the integration timeout, the
ids API Gateway sends on every answer, and TestInvokeMethod (the console's Test button).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from support.localkit import build_stack, post, wait_for

from pocctl.local.runtime import LocalAWS

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def stack(local_aws: LocalAWS):  # type: ignore[no-untyped-def]
    return build_stack(local_aws.endpoint_url, mappings=False)


def _raw_post(url: str, length: int, sent: bytes, wait: float = 10.0) -> tuple[int, dict, bytes]:
    """POST with ``Content-Length: length`` but only ``sent`` of the body, then read the answer
    (the rest of the body is never sent)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=wait) as sock:
        head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
        sock.sendall(head.encode() + sent)
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before an answer: {raw!r}"
            raw += chunk
        head_text, _, rest = raw.partition(b"\r\n\r\n")
        lines = head_text.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        want = int(headers.get("content-length", "0"))
        while len(rest) < want:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return int(lines[0].split()[1]), headers, rest


def _get(url: str, body: str) -> tuple[int, dict[str, str], bytes]:
    import http.client

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", parts.path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _assert_ids(headers: dict[str, str]) -> None:
    """The ids API Gateway sends on every REST API answer (see gateway.Ids)."""
    assert UUID.match(headers["x-amzn-requestid"]), headers
    assert re.fullmatch(r"[A-Za-z0-9_-]{15}=", headers["x-amz-apigw-id"]), headers
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Sampled=0", headers["x-amzn-trace-id"])


@pytest.mark.parametrize(
    "length", [10 * 1024 * 1024 + 1, 11 * 1000 * 1000], ids=["10MiB+1", "11MB"]
)
def test_a_payload_over_10_mb_answers_413_without_the_rest_of_the_body(
    local_aws: LocalAWS,
    stack: Any,
    length: int,
) -> None:
    started = time.monotonic()
    status, headers, body = _raw_post(
        local_aws.invoke_url(stack.api_id, "prod"), length, b'{"a": "' + b"x" * 65536
    )
    # Answered from the headers alone: well within the 5 s a silent client is given.
    assert time.monotonic() - started < 4
    # As recorded on AWS (pocctl/local/gateway.py PAYLOAD_TOO_LARGE): the front door's plain
    # refusal, before API Gateway gives the request an id.
    assert status == 413
    assert body == b"HTTP content length exceeded 10485760 bytes."
    assert headers["content-type"] == "text; charset=utf-8"
    assert "x-amzn-requestid" not in headers and "x-amzn-errortype" not in headers
    assert stack.count(stack.queue_url) == 0


def test_a_chunked_payload_over_10_mb_is_refused_at_its_first_chunk_over_the_limit(
    local_aws: LocalAWS, stack: Any
) -> None:
    """Transfer-Encoding: chunked (no Content-Length to judge by): a chunk that would take the
    body past 10 MiB is refused from its size line, before its data is sent."""
    parts = urlsplit(local_aws.invoke_url(stack.api_id, "prod"))
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode()
            + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % (11 * 1000 * 1000)
        )
        raw = b""
        while b"exceeded" not in raw:
            chunk = sock.recv(65536)
            assert chunk, raw
            raw += chunk
    assert raw.startswith(b"HTTP/1.1 413 ")
    assert raw.endswith(b"HTTP content length exceeded 10485760 bytes.")
    assert stack.count(stack.queue_url) == 0


def test_a_payload_of_10_mb_or_less_is_not_refused_as_too_large(
    local_aws: LocalAWS, stack: Any
) -> None:
    # 2 MB is over SQS's message size limit: SQS's own 400 comes back, not API Gateway's 413.
    status, out = post(
        local_aws.invoke_url(stack.api_id, "prod"), json.dumps({"x": "y" * 2 * 10**6})
    )
    assert status == 400 and "Error" in out, out


def test_every_answer_carries_api_gateway_s_ids(local_aws: LocalAWS, stack: Any) -> None:
    url = local_aws.invoke_url(stack.api_id, "prod")
    status, headers, body = _get(url, '{"a": 1}')
    assert status == 200 and headers["content-type"] == "application/json"
    _assert_ids(headers)
    assert "x-amzn-errortype" not in headers
    status, headers, body = _get(url, "[1]")  # the validator refuses it
    assert status == 400 and json.loads(body) == {"message": "Invalid request body"}
    assert headers["x-amzn-errortype"] == "BadRequestException"
    _assert_ids(headers)
    again = _get(url, '{"a": 1}')[1]
    assert again["x-amzn-requestid"] != headers["x-amzn-requestid"]
    assert again["x-amz-apigw-id"] != headers["x-amz-apigw-id"]


def _set_timeout(stack: Any, millis: int) -> None:
    """The integration's timeoutInMillis, redeployed (PutIntegration replaces the integration
    and its responses, so they are put back)."""
    ag = stack.client("apigateway")
    root = next(r["id"] for r in ag.get_resources(restApiId=stack.api_id)["items"])
    old = ag.get_integration(restApiId=stack.api_id, resourceId=root, httpMethod="POST")
    keys = ("type", "uri", "credentials", "requestParameters", "requestTemplates")
    ag.put_integration(
        restApiId=stack.api_id,
        resourceId=root,
        httpMethod="POST",
        integrationHttpMethod=old["httpMethod"],
        passthroughBehavior=old["passthroughBehavior"],
        timeoutInMillis=millis,
        **{k: old[k] for k in keys},
    )
    for code, resp in old["integrationResponses"].items():
        ag.put_integration_response(
            restApiId=stack.api_id,
            resourceId=root,
            httpMethod="POST",
            statusCode=code,
            **{k: resp[k] for k in ("selectionPattern", "responseTemplates") if k in resp},
        )
    ag.create_deployment(restApiId=stack.api_id, stageName="prod")


class _SlowSqs:
    """The data plane's in-process sender held until released (at most 10 s): an SQS that
    answers only when the test lets it."""

    def __init__(self, local_aws: LocalAWS) -> None:
        self.gateway = local_aws._gateway  # where the data plane sends its SQS call
        self.release = threading.Event()
        self.real_send = self.gateway.send

    def __enter__(self) -> _SlowSqs:
        def slow_send(request: Any) -> Any:
            self.release.wait(10)  # bounded: a failing test never leaves a thread for long
            return self.real_send(request)

        self.gateway.send = slow_send
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.gateway.send = self.real_send


def test_an_integration_over_its_timeout_answers_504(local_aws: LocalAWS, stack: Any) -> None:
    """timeoutInMillis 50 (AWS's minimum) and an SQS that answers only when the test lets it:
    504 "Endpoint request timed out" as soon as the 50 ms have passed."""
    _set_timeout(stack, 50)
    with _SlowSqs(local_aws):
        started = time.monotonic()
        status, headers, body = _get(local_aws.invoke_url(stack.api_id, "prod"), '{"a": 1}')
        elapsed = time.monotonic() - started
    assert status == 504
    assert json.loads(body) == {"message": "Endpoint request timed out"}
    assert headers["x-amzn-errortype"] == "InternalServerErrorException"
    _assert_ids(headers)
    assert elapsed < 5  # the 504 did not wait for SQS (held up to 10 s)
    # As on AWS, the late call is not undone: SQS enqueues it once it gets it.
    wait_for(lambda: stack.count(stack.queue_url) == 1, timeout=10, what="the late message")


def test_test_invoke_method_times_out_as_the_method_does(local_aws: LocalAWS, stack: Any) -> None:
    _set_timeout(stack, 50)
    with _SlowSqs(local_aws):
        out = stack.client("apigateway").test_invoke_method(
            restApiId=stack.api_id, resourceId=stack.api_root(), httpMethod="POST", body='{"a": 1}'
        )
    assert out["status"] == 504
    assert json.loads(out["body"]) == {"message": "Endpoint request timed out"}
    lines = out["log"].rstrip("\n").split("\n")
    assert lines[-2].endswith(" : Execution failed due to a timeout error")
    assert lines[-1].endswith(" : Method completed with status: 504")


def test_within_its_timeout_the_integration_answers(local_aws: LocalAWS, stack: Any) -> None:
    _set_timeout(stack, 5000)
    status, out = post(local_aws.invoke_url(stack.api_id, "prod"), '{"a": 1}')
    assert status == 200 and "messageId" in out


# -- TestInvokeMethod -------------------------------------------------------------------------


def test_test_invoke_method_runs_the_method_and_returns_the_console_s_log(
    local_aws: LocalAWS, stack: Any
) -> None:
    ag = stack.client("apigateway")
    body = json.dumps({"item": "book", "qty": 2})
    out = ag.test_invoke_method(
        restApiId=stack.api_id, resourceId=stack.api_root(), httpMethod="POST", body=body
    )
    assert out["status"] == 200, out
    msgs = stack.client("sqs").receive_message(QueueUrl=stack.queue_url)["Messages"]
    assert len(msgs) == 1 and msgs[0]["Body"] == body
    assert json.loads(out["body"]) == {"messageId": msgs[0]["MessageId"]}
    assert out["headers"]["Content-Type"] == "application/json"
    assert out["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert isinstance(out["latency"], int) and out["latency"] >= 0
    log = out["log"]
    first, *lines = log.rstrip("\n").split("\n")
    request_id = first.removeprefix("Execution log for request ")
    assert UUID.match(request_id), first
    stamp = r"[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} UTC \d{4} : "
    assert all(re.match(stamp, line) for line in lines), log
    texts = [re.sub(stamp, "", line, count=1) for line in lines]
    queue_uri = "https://sqs.us-east-1.amazonaws.com/" + stack.queue_url.split("/", 3)[3]
    expected_in_order = [
        f"Starting execution for request: {request_id}",
        "HTTP Method: POST, Resource Path: /",
        f"Method request body before transformations: {body}",
        f"Endpoint request URI: {queue_uri}",
        "Endpoint request body after transformations: Action=SendMessage&MessageBody=",
        f"Sending request to {queue_uri}",
        "Received response. Status: 200, Integration latency: ",
        "Method response body after transformations: ",
        "Successfully completed execution",
        "Method completed with status: 200",
    ]
    at = 0
    for wanted in expected_in_order:
        found = next((i for i in range(at, len(texts)) if texts[i].startswith(wanted)), None)
        assert found is not None, f"{wanted!r} missing (in order) from:\n{log}"
        at = found + 1
    assert texts[-1] == "Method completed with status: 200"
    method_headers = next(t for t in texts if t.startswith("Method response headers: {"))
    assert "X-Amzn-Trace-Id=Root=1-" in method_headers and "Content-Type=application/json" in (
        method_headers
    )
    assert out["headers"]["X-Amzn-Trace-Id"].startswith("Root=1-")


def test_test_invoke_method_calls_sqs_as_the_integration_s_role(
    local_aws: LocalAWS, stack: Any
) -> None:
    """IAM is enforced for the role's session, as for the invoke URL: without sqs:SendMessage
    SQS answers 403, which the 4XX integration response passes on; nothing is queued."""
    stack.client("iam").delete_role_policy(RoleName="APIGateway-SQS", PolicyName="kit")
    out = stack.client("apigateway").test_invoke_method(
        restApiId=stack.api_id, resourceId=stack.api_root(), httpMethod="POST", body='{"a": 1}'
    )
    assert out["status"] == 400, out
    assert "Received response. Status: 403, Integration latency: " in out["log"]
    assert "AccessDenied" in out["body"]
    assert stack.count(stack.queue_url) == 0


def test_test_invoke_method_uses_the_current_resources_not_the_deployment(
    local_aws: LocalAWS, stack: Any
) -> None:
    ag = stack.client("apigateway")
    root = stack.api_root()
    url = local_aws.invoke_url(stack.api_id, "prod")
    assert "messageId" in post(url, '{"a": 1}')[1]  # the stage serves its deployment
    stack.respond_with('{"stage": "$context.stage", "v": "$stageVariables.v"}')  # not deployed
    out = ag.test_invoke_method(
        restApiId=stack.api_id,
        resourceId=root,
        httpMethod="POST",
        body='{"a": 1}',
        stageVariables={"v": "42"},
    )
    assert out["status"] == 200
    assert json.loads(out["body"]) == {"stage": "test-invoke-stage", "v": "42"}
    # The deployed stage still answers with the old template.
    assert "messageId" in post(url, '{"a": 1}')[1]


def test_test_invoke_method_reports_a_refused_request_in_its_status_and_log(
    local_aws: LocalAWS, stack: Any
) -> None:
    ag = stack.client("apigateway")
    out = ag.test_invoke_method(
        restApiId=stack.api_id, resourceId=stack.api_root(), httpMethod="POST", body="[1]"
    )
    assert out["status"] == 400
    assert json.loads(out["body"]) == {"message": "Invalid request body"}
    assert out["log"].rstrip("\n").endswith("Method completed with status: 400")
    assert stack.count(stack.queue_url) == 0


def test_test_invoke_method_of_a_missing_method_is_not_found(
    local_aws: LocalAWS, stack: Any
) -> None:
    ag = stack.client("apigateway")
    with pytest.raises(ag.exceptions.NotFoundException):
        ag.test_invoke_method(restApiId=stack.api_id, resourceId=stack.api_root(), httpMethod="GET")
    with pytest.raises(ag.exceptions.NotFoundException):
        ag.test_invoke_method(restApiId=stack.api_id, resourceId="nope00", httpMethod="POST")


def test_an_empty_body_goes_through_the_lab_s_template_as_an_empty_object(
    local_aws: LocalAWS, stack: Any
) -> None:
    """The lab's validator refuses an empty body (400); with body validation off, the lab's
    template reads the empty payload as {} (pocctl.local.vtl.Input), and {} is what is queued."""
    ag = stack.client("apigateway")
    validator = ag.get_request_validators(restApiId=stack.api_id)["items"][0]
    out = ag.test_invoke_method(
        restApiId=stack.api_id, resourceId=stack.api_root(), httpMethod="POST", body=""
    )
    assert (out["status"], json.loads(out["body"])) == (400, {"message": "Invalid request body"})
    ag.update_request_validator(
        restApiId=stack.api_id,
        requestValidatorId=validator["id"],
        patchOperations=[{"op": "replace", "path": "/validateRequestBody", "value": "false"}],
    )
    out = ag.test_invoke_method(
        restApiId=stack.api_id, resourceId=stack.api_root(), httpMethod="POST", body=""
    )
    assert out["status"] == 200, out
    assert (
        "Endpoint request body after transformations: Action=SendMessage&MessageBody=%7B%7D\n"
        in (out["log"])
    )
    msgs = stack.client("sqs").receive_message(QueueUrl=stack.queue_url)["Messages"]
    assert [m["Body"] for m in msgs] == ["{}"]
