"""pocctl.local.operation: the one place that says which AWS operation a request is, checked
against requests as boto3 really sends them (botocore prepares and signs them; nothing is sent)."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest

from pocctl.local.operation import OPERATION, Operation, operation_of, parse_operation

ENDPOINT = "http://127.0.0.1:4566"


def _prepared(service: str, operation: str, **params: Any) -> Any:
    """The request botocore would send for ``operation`` (signed with fake credentials)."""
    session = botocore.session.get_session()
    client = session.create_client(
        service,
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    captured: dict[str, Any] = {}

    def capture(request: Any, **_: Any) -> Any:
        captured["request"] = request
        raise _Captured

    client.meta.events.register_first("before-send", capture)
    with pytest.raises(_Captured):
        getattr(client, operation)(**params)
    return captured["request"]


class _Captured(Exception):
    pass


def _environ(request: Any) -> tuple[dict[str, Any], bytes]:
    url = urlsplit(request.url)
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "PATH_INFO": url.path,
        "QUERY_STRING": url.query,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
    }
    for k, v in request.headers.items():
        v = v.decode() if isinstance(v, bytes) else v
        key = k.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = v
    return environ, body


@pytest.mark.parametrize(
    ("service", "call", "params", "expected"),
    [
        ("sqs", "list_queues", {}, ("sqs", "ListQueues", "json")),
        ("sqs", "receive_message", {"QueueUrl": "q"}, ("sqs", "ReceiveMessage", "json")),
        ("dynamodb", "put_item", {"TableName": "t", "Item": {}}, ("dynamodb", "PutItem", "json")),
        (
            "dynamodbstreams",
            "get_records",
            {"ShardIterator": "i"},
            ("dynamodb", "GetRecords", "json"),
        ),
        ("iam", "list_roles", {}, ("iam", "ListRoles", "query")),
        ("sns", "publish", {"TopicArn": "t", "Message": "m"}, ("sns", "Publish", "query")),
        ("sts", "get_caller_identity", {}, ("sts", "GetCallerIdentity", "query")),
        ("lambda", "invoke", {"FunctionName": "f"}, ("lambda", "Invoke", "rest")),
        (
            "lambda",
            "create_event_source_mapping",
            {"FunctionName": "f", "EventSourceArn": "arn:aws:sqs:us-east-1:1:q"},
            ("lambda", "CreateEventSourceMapping", "rest"),
        ),
        (
            "lambda",
            "update_event_source_mapping",
            {"UUID": "0" * 36},
            ("lambda", "UpdateEventSourceMapping", "rest"),
        ),
        (
            "lambda",
            "delete_event_source_mapping",
            {"UUID": "0" * 36},
            ("lambda", "DeleteEventSourceMapping", "rest"),
        ),
        ("lambda", "list_event_source_mappings", {}, ("lambda", "ListEventSourceMappings", "rest")),
        (
            "lambda",
            "invoke_async",
            {"FunctionName": "f", "InvokeArgs": b"{}"},
            ("lambda", "InvokeAsync", "rest"),
        ),
        ("apigateway", "create_deployment", {"restApiId": "a"}, None),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_boto3_requests_are_named_as_aws_names_them(service, call, params, expected) -> None:  # type: ignore[no-untyped-def]
    environ, body = _environ(_prepared(service, call, **params))
    op = parse_operation(environ, body)
    if expected is None:  # REST operations the embedded AWS does not act on: method and path
        assert op.protocol == "rest" and op.name.startswith(op.method + " /"), op
        assert op.service == service
    else:
        assert (op.service, op.name, op.protocol) == expected


def test_invoke_async_is_not_the_invoke_api() -> None:
    environ, body = _environ(
        _prepared("lambda", "invoke_async", FunctionName="f", InvokeArgs=b"{}")
    )
    op = parse_operation(environ, body)
    assert op.name == "InvokeAsync" and not op.is_lambda_invoke and not op.waits


def test_only_long_polls_and_lambda_invoke_wait() -> None:
    def op_of(service: str, call: str, **params: Any) -> Operation:
        return parse_operation(*_environ(_prepared(service, call, **params)))

    assert op_of("sqs", "receive_message", QueueUrl="q").waits
    assert op_of("lambda", "invoke", FunctionName="f").waits
    assert not op_of("sqs", "send_message", QueueUrl="q", MessageBody="b").waits
    assert not op_of("dynamodb", "scan", TableName="t").waits


def test_the_invoke_url_and_the_admin_api_are_told_apart_from_aws_apis() -> None:
    invoke = parse_operation(
        {"REQUEST_METHOD": "POST", "PATH_INFO": "/restapis/abc/prod/_user_request_/orders"}, b""
    )
    assert invoke.protocol == "invoke-url" and invoke.route == ("abc", "prod", "/orders")
    root = parse_operation(
        {"REQUEST_METHOD": "POST", "PATH_INFO": "/restapis/abc/prod/_user_request_"}, b""
    )
    assert root.route == ("abc", "prod", "/")
    admin = parse_operation({"REQUEST_METHOD": "POST", "PATH_INFO": "/moto-api/reset"}, b"")
    assert (admin.service, admin.protocol) == ("moto-api", "admin")


def test_an_unsigned_request_is_still_named_from_its_target_action_or_path() -> None:
    target = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "HTTP_X_AMZ_TARGET": "AmazonSQS.X"}
    assert parse_operation(target, b"{}").service == "sqs"
    form = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
    }
    assert parse_operation(form, b"Action=CreateQueue&QueueName=q").name == "CreateQueue"
    query = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "Action=ListUsers"}
    assert parse_operation(query, b"").protocol == "query"
    lam = {"REQUEST_METHOD": "POST", "PATH_INFO": "/2015-03-31/functions/f/invocations"}
    assert parse_operation(lam, b"").is_lambda_invoke


def test_operation_of_reuses_the_pipelines_answer_or_parses_and_puts_the_body_back() -> None:
    known = Operation("sqs", "ListQueues", "json")
    assert operation_of({OPERATION: known}) is known
    body = b"Action=ListRoles&Version=2010-05-08"
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    assert operation_of(environ).name == "ListRoles"
    assert environ["wsgi.input"].read() == body  # still there for moto
    assert environ[OPERATION].name == "ListRoles"


def test_a_presigned_request_names_its_service_from_the_credential() -> None:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/b/k",
        "QUERY_STRING": "X-Amz-Credential=testing%2F20240101%2Fus-east-1%2Fs3%2Faws4_request",
    }
    assert parse_operation(environ, b"").service == "s3"
