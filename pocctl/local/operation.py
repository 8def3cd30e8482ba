"""Which AWS operation a request to the embedded AWS is, worked out once per request.

The request pipeline (pocctl.local.server.Pipeline) parses every request once, after reading its
body, and leaves the answer in ``environ[OPERATION]``; every middleware that needs to know what a
request is (the lock, the Invoke hook, the mapping watcher, the API Gateway data plane) reads it
there instead of looking at paths, headers and bodies again.

How AWS names an operation on the wire, by protocol (botocore's service models say which one a
service speaks):
- JSON (DynamoDB, DynamoDB Streams, SQS, CloudWatch Logs): ``X-Amz-Target: <Prefix>.<Operation>``;
- query (IAM, STS, SNS; SQS before 2023): ``Action=<Operation>`` in the form body or query string;
- REST (Lambda, API Gateway): the HTTP method and the path, e.g. ``POST
  /2015-03-31/functions/NAME/invocations`` is Lambda's Invoke.
A signed request names its service in its SigV4 credential scope
(``Credential=KEY/DATE/REGION/SERVICE/aws4_request``), which is also how moto routes it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

OPERATION = "pocctl.operation"

# LocalStack's convention for a REST API's invoke URL on the emulator's own port.
INVOKE_URL = re.compile(r"^/restapis/([^/]+)/([^/]+)/_user_request_(/.*)?$")
_LAMBDA_PATH = re.compile(r"^/(\d{4}-\d{2}-\d{2})/(.*)$")
_SCOPE = re.compile(r"Credential=[^/,\s]*/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")
# X-Amz-Target prefixes -> SigV4 signing names (botocore: metadata.targetPrefix / signingName).
_TARGET_SERVICES = {
    "DynamoDB_20120810": "dynamodb",
    "DynamoDBStreams_20120810": "dynamodb",
    "AmazonSQS": "sqs",
    "Logs_20140328": "logs",
}
_READ_PREFIXES = ("Get", "List", "Describe", "Head")


@dataclass(frozen=True)
class Operation:
    """``service`` is the SigV4 signing name ("sqs", "lambda", ...; "execute-api" for a deployed
    API's invoke URL, "moto-api" for moto's admin API, "" when unknown); ``protocol`` is "json",
    "query", "rest", "invoke-url" or "admin"; ``route`` holds (api_id, stage, path) for an
    invoke URL."""

    service: str
    name: str
    protocol: str
    method: str = "GET"
    route: tuple[str, str, str] | None = None

    @property
    def mutating(self) -> bool:
        if self.protocol in ("rest", "invoke-url", "admin"):
            return self.method not in ("GET", "HEAD", "OPTIONS")
        return not self.name.startswith(_READ_PREFIXES)

    @property
    def is_lambda_invoke(self) -> bool:
        """Lambda's synchronous-capable Invoke API (not the deprecated InvokeAsync)."""
        return self.service == "lambda" and self.name == "Invoke"

    @property
    def waits(self) -> bool:
        """Requests that may take long by design: an SQS long poll, and Lambda's Invoke (the
        function runs, and may call back into the embedded AWS, while the request is open)."""
        return self.is_lambda_invoke or (self.service == "sqs" and self.name == "ReceiveMessage")


def parse_operation(environ: dict[str, Any], body: bytes) -> Operation:
    """The operation of a request whose whole body is ``body``."""
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    path = str(environ.get("PATH_INFO", ""))
    if path.startswith("/moto-api") or path == "/favicon.ico":
        return Operation("moto-api", path, "admin", method)
    route = INVOKE_URL.match(path)
    if route:
        api_id, stage, rest = route.group(1), route.group(2), route.group(3) or "/"
        return Operation(
            "execute-api", f"{method} {rest}", "invoke-url", method, (api_id, stage, rest)
        )
    service = _signed_service(environ)
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        prefix, _, name = target.rpartition(".")
        return Operation(service or _TARGET_SERVICES.get(prefix, ""), name, "json", method)
    action = _query_action(environ, body)
    if action:
        return Operation(service, action, "query", method)
    if service == "lambda" or (not service and _LAMBDA_PATH.match(path)):
        return Operation("lambda", _lambda_name(method, path), "rest", method)
    if not service and path.startswith("/restapis"):
        service = "apigateway"
    return Operation(service, f"{method} {path}", "rest", method)


def operation_of(environ: dict[str, Any]) -> Operation:
    """The request's operation: the pipeline's, or parsed here (the body is put back) for an
    app used without the pipeline."""
    op = environ.get(OPERATION)
    if isinstance(op, Operation):
        return op
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    op = environ[OPERATION] = parse_operation(environ, body)
    return op


def _signed_service(environ: dict[str, Any]) -> str:
    found = _SCOPE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    if found:
        return found.group(1).lower()
    query = parse_qs(str(environ.get("QUERY_STRING", "")))
    credential = (query.get("X-Amz-Credential") or [""])[0].split("/")
    return credential[3].lower() if len(credential) == 5 else ""


def _query_action(environ: dict[str, Any], body: bytes) -> str:
    query = str(environ.get("QUERY_STRING", ""))
    if "Action=" in query:
        return (parse_qs(query).get("Action") or [""])[0]
    content_type = str(environ.get("CONTENT_TYPE", ""))
    if body and content_type.startswith("application/x-www-form-urlencoded") and b"Action=" in body:
        return (parse_qs(body.decode("utf-8", "replace")).get("Action") or [""])[0]
    return ""


def _lambda_name(method: str, path: str) -> str:
    """Lambda's REST operations that the embedded AWS acts on; others by method and path.
    Paths: https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html (and
    API_CreateEventSourceMapping.html, API_UpdateEventSourceMapping.html, ...)."""
    parts = [p for p in path.split("/") if p][1:]  # without the API version
    if len(parts) == 3 and parts[0] == "functions" and method == "POST":
        if parts[2] == "invocations":
            return "Invoke"
        if parts[2] == "invoke-async":
            return "InvokeAsync"
    if parts[:1] == ["event-source-mappings"]:
        if len(parts) == 1:
            return {"POST": "CreateEventSourceMapping"}.get(method, "ListEventSourceMappings")
        verbs = {"GET": "Get", "PUT": "Update", "DELETE": "Delete"}
        if len(parts) == 2 and method in verbs:
            return f"{verbs[method]}EventSourceMapping"
    return f"{method} {path}"
