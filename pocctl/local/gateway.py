"""API Gateway's REST data plane, as WSGI middleware on the embedded server's port.

``/restapis/{api_id}/{stage}/_user_request_/{path}`` (LocalStack's convention) executes the REST
API as configured on the embedded server, read through the API Gateway API: the stage's
deployment, resources and methods, request validator and JSON-schema model, the integration's
request parameters and template, the call to SQS as the integration's credentials role, and the
integration response chosen by selectionPattern. Configuration is re-read whenever the stage
points at a new deployment, so — as on AWS — a change takes effect at the next deployment.

Every region: the API is read in the region it was created in (on AWS the invoke URL's host
names it, https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-call-api.html:
``{restapi_id}.execute-api.{region}.amazonaws.com``; here the API id alone finds it), and the
SQS call is signed for the region the integration's URI names
(``arn:aws:apigateway:{region}:sqs:path/...``,
https://docs.aws.amazon.com/apigateway/latest/api/API_Integration.html).

TestInvokeMethod (the console's Test button) is answered here too, in ``wrap``, rather than by a
pinned moto patch: it is the data plane run on the control plane's current state, so it needs
what this class holds (the credentials role's sessions, the in-process sender, the template
engine), none of which moto's backend knows; a middleware also keeps it off moto's one-at-a-time
lock while the integration calls SQS back through the same server.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from moto.core import DEFAULT_ACCOUNT_ID

from pocctl.local.operation import operation_of
from pocctl.local.vtl import Input, PayloadError, TemplateError, Util, java_string, render

logger = logging.getLogger("pocctl.local")

# The account the embedded API Gateway's APIs belong to: moto's (pinned) default account.
ACCOUNT_ID = DEFAULT_ACCOUNT_ID

LogFn = Callable[[str], None]
ClientFactory = Callable[..., Any]

_SQS_URI = re.compile(r"^arn:aws[\w-]*:apigateway:([\w-]+):sqs:path/(\d{12})/([\w-]+)$")
_STATUS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    415: "Unsupported Media Type",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}


_INTEGRATION_MS = "pocctl.integration_latency_ms"  # the integration call's latency, per request


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]


def _error(status: int, message: str, error_type: str) -> Response:
    return Response(
        status,
        json.dumps({"message": message}).encode(),
        {"Content-Type": "application/json", "x-amzn-ErrorType": error_type},
    )


MISSING_TOKEN = (403, "Missing Authentication Token", "MissingAuthenticationTokenException")
# "Payload size: 10 MB" and "Integration timeout: 50 milliseconds - 29 seconds" (the default) are
# REST API quotas (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html).
# Over 10 MiB, API Gateway's front door refuses the request before any gateway response (a
# REQUEST_TOO_LARGE response set on the API is ignored): HTTP 413, "Content-Type: text;
# charset=utf-8", body "HTTP content length exceeded 10485760 bytes.", no x-amzn-RequestId
# (recorded in github.com/koki-develop/lgtm-generator issue #10; the same issue records
# {"message": "Request Too Long"} with x-amzn-ErrorType BadRequestException for the smaller,
# integration-side limit of a Lambda function).
PAYLOAD_TOO_LARGE = (
    413,
    b"HTTP content length exceeded 10485760 bytes.",
    [("Content-Type", "text; charset=utf-8")],
)
# INTEGRATION_TIMEOUT is a 504 gateway response (https://docs.aws.amazon.com/apigateway/latest/
# developerguide/supported-gateway-response-types.html) whose default template is
# {"message":$context.error.messageString}; its message is "Endpoint request timed out" and the
# x-amzn-ErrorType API Gateway sends with INTEGRATION_* errors is InternalServerErrorException
# (recorded in github.com/DataBiosphere/azul issues #6284 and #7470).
INTEGRATION_TIMEOUT = (504, "Endpoint request timed out", "InternalServerErrorException")
INTEGRATION_TIMEOUT_MS = 29_000
# The stage a console test runs in ($context.stage of TestInvokeMethod).
TEST_INVOKE_STAGE = "test-invoke-stage"
_TEST_INVOKE = re.compile(r"^/restapis/([^/]+)/resources/([^/]+)/methods/([^/]+)$")


@dataclass(frozen=True)
class Ids:
    """The ids API Gateway gives a request and sends back on every REST API response (recorded
    answers, e.g. botocore's HTTPHeaders of an execute-api call: ``x-amzn-requestid`` (a UUID,
    $context.requestId), ``x-amz-apigw-id`` (11 bytes in URL-safe base64, e.g. "C7_U9FBSPHcFkTQ=",
    $context.extendedRequestId),
    ``x-amzn-trace-id: Root=1-{8 hex: epoch seconds}-{24 hex};Sampled=0``)."""

    request_id: str
    apigw_id: str
    trace_id: str

    @classmethod
    def new(cls) -> Ids:
        trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
        apigw_id = base64.urlsafe_b64encode(uuid.uuid4().bytes[:11]).decode()
        return cls(str(uuid.uuid4()), apigw_id, trace)

    def headers(self) -> dict[str, str]:
        return {
            "x-amzn-RequestId": self.request_id,
            "x-amz-apigw-id": self.apigw_id,
            "X-Amzn-Trace-Id": self.trace_id,
        }


IDS = "pocctl.apigw_ids"


def _java_map(values: dict[str, Any]) -> str:
    """A map as the execution log prints it (Java's Map.toString: ``{a=1, b=2}``)."""
    return "{" + ", ".join(f"{k}={v}" for k, v in values.items()) + "}"


class ExecutionLog:
    """The execution log of a test invoke (TestInvokeMethod's ``log``, the console's Logs pane),
    in AWS's format, as recorded in the AWS Lambda Developer Guide's API Gateway tutorial
    (github.com/awsdocs/aws-lambda-developer-guide, with-on-demand-https-example: "Execution log
    for request ...\nSat Dec 03 01:39:37 UTC 2016 : Starting execution for request: ...").
    Disabled (``enabled=False``) for invoke-URL requests: nothing is kept."""

    def __init__(self, request_id: str, enabled: bool = True) -> None:
        self.lines: list[str] | None = (
            [f"Execution log for request {request_id}"] if enabled else None
        )

    def add(self, text: str) -> None:
        if self.lines is not None:
            stamp = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime())
            self.lines.append(f"{stamp} : {text}")

    def text(self) -> str:
        return "\n".join(self.lines or []) + "\n"


_NO_LOG = ExecutionLog("", enabled=False)


# AWS's account-level throttle in most regions: what a stage without its own limits gets.
ACCOUNT_RATE_LIMIT, ACCOUNT_BURST_LIMIT = 10000.0, 5000
TOO_MANY_REQUESTS = (429, "Too Many Requests", "TooManyRequestsException")


class TokenBucket:
    """API Gateway's throttle: ``burst`` requests at once, refilled at ``rate`` a second; a
    request that finds the bucket empty is answered 429 (the client should back off)."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()

    def set_limits(self, rate: float, burst: int) -> None:
        """A stage's new limits take effect at once (UpdateStage needs no deployment)."""
        with self._lock:
            if (rate, burst) != (self.rate, self.burst):
                self.rate, self.burst = rate, burst
                self._tokens = min(self._tokens, float(burst))

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


def stage_limits(stage_cfg: dict[str, Any]) -> tuple[float, int]:
    """The stage's default method throttle (methodSettings "*/*"), else the account's."""
    settings = (stage_cfg.get("methodSettings") or {}).get("*/*") or {}
    rate = settings.get("throttlingRateLimit")
    burst = settings.get("throttlingBurstLimit")
    return (
        float(ACCOUNT_RATE_LIMIT if rate is None else rate),
        int(ACCOUNT_BURST_LIMIT if burst is None else burst),
    )


@dataclass
class _Deployed:
    """One stage's deployed configuration."""

    deployment_id: str
    resources: list[dict[str, Any]]
    models: dict[str, dict[str, Any]]  # name -> parsed schema
    validators: dict[str, dict[str, Any]]
    variables: dict[str, str]
    throttle: TokenBucket
    checked: int = -1  # the control-plane generation this was last checked against


@dataclass
class _Call:
    """One method request: where it goes and what matched it."""

    api_id: str
    stage: str
    path: str
    method: str
    resource: dict[str, Any]
    method_cfg: dict[str, Any]
    path_params: dict[str, str]
    environ: dict[str, Any]
    ids: Ids


class ApiGateway:
    """The data plane; ``wrap`` is the WSGI middleware."""

    def __init__(
        self,
        clients: ClientFactory,
        *,
        log: LogFn,
        region: str,
        api_home: Callable[[str], tuple[str, str] | None] | None = None,
    ) -> None:
        self._clients = clients
        self._log = log
        self._region = region  # where an API no region knows is looked for (answers 404)
        # (account, region) a REST API id lives in (moto_hooks.rest_api_home), None if unknown.
        self._api_home = api_home or (lambda api_id: None)
        self._homes: dict[str, tuple[str, str]] = {}
        self._cache: dict[tuple[str, str], _Deployed] = {}
        self._generation = 0
        self._creds: dict[str, tuple[float, Any]] = {}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()
        self._http: Any = None
        self.endpoint_url = ""  # the embedded server itself; set by LocalAWS once it listens
        # Sends a signed request to the embedded server in-process (set by LocalAWS); over
        # HTTP to endpoint_url when None.
        self.send: Callable[[Any], Any] | None = None
        # (api id, stage, status, latency ms, integration latency ms or None) after each request
        self.on_request: Callable[[str, str, int, float, float | None], None] | None = None

    def mark_stale(self) -> None:
        """Re-check every stage's deployment at its next request."""
        with self._lock:
            self._generation += 1

    def forget(self) -> None:
        """Drop all cached configuration and role credentials (after a reset)."""
        with self._lock:
            self._generation += 1
            self._cache.clear()
            self._homes.clear()
            self._creds.clear()
            self._buckets.clear()

    def wrap(self, app: Any) -> Any:
        def middleware(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            op = operation_of(environ)
            if op.route is None:
                test_invoke = _TEST_INVOKE.match(str(environ.get("PATH_INFO", "")))
                if op.service == "apigateway" and op.method == "POST" and test_invoke:
                    return self._answer(
                        self.test_invoke(*test_invoke.groups(), environ), start_response
                    )
                if op.service == "apigateway" and op.mutating:
                    # A control-plane change (deployment, stage, method...): the next data-plane
                    # request re-checks the stage. Marked before and after moto applies it, so
                    # no request can settle on the old state in between; in steady state the
                    # data plane then makes no control-plane call at all.
                    self.mark_stale()
                    try:
                        return list(app(environ, start_response))
                    finally:
                        self.mark_stale()
                return app(environ, start_response)
            started = time.monotonic()
            try:
                resp = self.handle(*op.route, environ)
            except Exception as exc:
                logger.exception("API Gateway data plane failed")
                self._log(f"[API Gateway] internal error: {exc}")
                resp = _error(500, "Internal server error", "InternalServerErrorException")
            if self.on_request is not None:  # AWS/ApiGateway metrics (pocctl/local/metrics.py)
                latency = (time.monotonic() - started) * 1000
                self.on_request(
                    op.route[0], op.route[1], resp.status, latency, environ.get(_INTEGRATION_MS)
                )
            ids = environ.get(IDS) or Ids.new()
            for name, value in ids.headers().items():
                resp.headers.setdefault(name, value)
            return self._answer(resp, start_response)

        return middleware

    @staticmethod
    def _answer(resp: Response, start_response: Any) -> list[bytes]:
        # API Gateway answers application/json unless the method response says otherwise.
        resp.headers.setdefault("Content-Type", "application/json")
        start_response(
            f"{resp.status} {_STATUS.get(resp.status, 'Status')}",
            list(resp.headers.items()) + [("Content-Length", str(len(resp.body)))],
        )
        return [resp.body]

    # -- request processing ---------------------------------------------------------------

    def handle(self, api_id: str, stage: str, path: str, environ: dict[str, Any]) -> Response:
        ids = environ[IDS] = Ids.new()
        environ["pocctl.request_id"] = ids.request_id
        deployed = self._deployed(api_id, stage)
        if isinstance(deployed, Response):
            return deployed
        if not deployed.throttle.take():
            return _error(*TOO_MANY_REQUESTS)
        method = environ.get("REQUEST_METHOD", "GET").upper()
        found = _match(deployed.resources, path, method)
        if found is None:
            return _error(*MISSING_TOKEN)
        call = _Call(api_id, stage, path, method, *found, environ, ids)
        return self._execute(call, deployed, _NO_LOG)

    def _execute(self, call: _Call, deployed: _Deployed, log: ExecutionLog) -> Response:
        """The method request, the integration request, the call, the integration response."""
        body, headers, content_type, params = _method_request(call.environ, call.path_params)
        log.add(f"Starting execution for request: {call.ids.request_id}")
        log.add(f"HTTP Method: {call.method}, Resource Path: {call.path}")
        log.add(f"Method request path: {_java_map(params['path'])}")
        log.add(f"Method request query string: {_java_map(params['querystring'])}")
        log.add(f"Method request headers: {_java_map(headers)}")
        log.add(f"Method request body before transformations: {body}")
        invalid = self._validate(deployed, call.method_cfg, content_type, body, params)
        if invalid is not None:
            log.add(f"Request validation failed: {json.loads(invalid.body)['message']}")
            return invalid
        context = _context(
            call.environ, headers, call.ids.request_id, call.api_id, call.stage, call.method,
            call.resource, call.path, deployed, call.ids.apigw_id,
        )  # fmt: skip
        # "$context.accountId: The API owner's AWS account ID" (https://docs.aws.amazon.com/
        # apigateway/latest/developerguide/api-gateway-mapping-template-reference.html).
        home = self._home(call.api_id)
        if home is not None:
            context["accountId"] = home[0]
        variables = {
            "input": Input(body, params),
            "util": Util(),
            "context": context,
            "stageVariables": dict(deployed.variables),
        }
        integration = call.method_cfg.get("methodIntegration") or {}
        integration_body = self._integration_body(integration, content_type, body, variables)
        if isinstance(integration_body, Response):
            return integration_body
        int_headers, int_query = _integration_parameters(
            integration.get("requestParameters") or {}, params, deployed.variables, context
        )
        # A request template's $context.requestOverride wins over the parameter mappings
        # ("Use a mapping template to override an API's request and response parameters",
        # https://docs.aws.amazon.com/apigateway/latest/developerguide/
        # apigateway-override-request-response-parameters.html).
        int_headers.update(_override(context["requestOverride"], "header"))
        int_query.update(_override(context["requestOverride"], "querystring"))
        request = (integration_body, int_headers, int_query)
        return self._integrate(integration, request, params, variables, call, log)

    def _integrate(
        self,
        integration: dict[str, Any],
        request: tuple[str, dict[str, str], dict[str, str]],
        params: dict[str, Any],
        variables: dict[str, Any],
        call: _Call,
        log: ExecutionLog,
    ) -> Response:
        """The integration's call (within its timeout) and the integration response."""
        kind = integration.get("type")
        uri = str(integration.get("uri") or "")
        sqs = _SQS_URI.match(uri)
        if kind != "AWS" or not sqs:
            self._log(
                f"[API Gateway] integration {kind} {uri} is not supported locally "
                "(only AWS integrations with SQS path/ACCOUNT/QUEUE)"
            )
            return _error(500, "Internal server error", "InternalServerErrorException")
        region, account, queue = sqs.group(1), sqs.group(2), sqs.group(3)
        endpoint = f"https://sqs.{region}.amazonaws.com/{account}/{queue}"
        body, int_headers, int_query = request
        log.add(f"Endpoint request URI: {endpoint}")
        log.add(f"Endpoint request headers: {_java_map(int_headers)}")
        log.add(f"Endpoint request body after transformations: {body}")
        log.add(f"Sending request to {endpoint}")
        answer = self._call_in_time(
            integration, lambda: self._call_sqs(
                integration, (region, account, queue), body, int_headers, int_query
            )
        )  # fmt: skip
        if isinstance(answer, Response):
            log.add("Execution failed due to a timeout error")
            return answer
        (status, backend_headers, backend_body), latency = answer
        call.environ[_INTEGRATION_MS] = float(latency)
        log.add(f"Received response. Status: {status}, Integration latency: {latency} ms")
        log.add(f"Endpoint response headers: {_java_map(backend_headers)}")
        log.add(f"Endpoint response body before transformations: {backend_body}")
        resp = self._integration_response(
            integration, status, backend_headers, backend_body, params, variables,
            str(call.environ.get("HTTP_ACCEPT", "")),
        )  # fmt: skip
        resp.headers.setdefault("X-Amzn-Trace-Id", call.ids.trace_id)
        log.add(f"Method response body after transformations: {resp.body.decode('utf-8')}")
        log.add(f"Method response headers: {_java_map(resp.headers)}")
        log.add("Successfully completed execution")
        return resp

    def _call_in_time(
        self, integration: dict[str, Any], call: Callable[[], tuple[int, dict[str, str], str]]
    ) -> tuple[tuple[int, dict[str, str], str], int] | Response:
        """``call``'s answer and its latency in ms, or INTEGRATION_TIMEOUT's 504 once the
        integration's timeoutInMillis (default 29 s) has passed. As on AWS, a late backend call
        is not undone: it runs on in its (daemon) thread and its answer is dropped."""
        timeout_ms = int(integration.get("timeoutInMillis") or INTEGRATION_TIMEOUT_MS)
        done = threading.Event()
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append((True, call()))
            except BaseException as exc:  # handed to the request's thread
                outcome.append((False, exc))
            finally:
                done.set()

        started = time.monotonic()
        threading.Thread(target=run, name="apigw-integration", daemon=True).start()
        if not done.wait(timeout_ms / 1000):
            self._log(f"[API Gateway] the integration took over {timeout_ms} ms: 504")
            return _error(*INTEGRATION_TIMEOUT)
        ok, value = outcome[0]
        if not ok:
            raise value
        return value, int((time.monotonic() - started) * 1000)

    def test_invoke(
        self, api_id: str, resource_id: str, http_method: str, environ: dict[str, Any]
    ) -> Response:
        """TestInvokeMethod (https://docs.aws.amazon.com/apigateway/latest/api/
        API_TestInvokeMethod.html): "Simulate the invocation of a Method in your RestApi with
        headers, parameters, and an incoming request body". Runs the same path as the invoke URL
        but on the API's current resources: the console's Test works before any deployment
        ("Use the API Gateway console to test a REST API method", https://docs.aws.amazon.com/
        apigateway/latest/developerguide/how-to-test-method.html), with no throttle. Answers
        status, body, headers, multiValueHeaders, log and latency (ms)."""
        started = time.monotonic()
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            req = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
        except ValueError:
            return _error(400, "Invalid JSON in the request body", "BadRequestException")
        home = self._home(api_id)
        apigw = self._clients("apigateway", region=home[1] if home else self._region)
        try:
            resources, models, validators = self._read_deployment(apigw, api_id)
        except apigw.exceptions.NotFoundException:
            return _error(404, "Invalid API identifier specified", "NotFoundException")
        resource = next((r for r in resources if r.get("id") == resource_id), None)
        if resource is None:
            return _error(404, "Invalid Resource identifier specified", "NotFoundException")
        method = http_method.upper()
        method_cfg = (resource.get("resourceMethods") or {}).get(method)
        if method_cfg is None:
            return _error(404, "Invalid Method identifier specified", "NotFoundException")
        path, _, query = str(req.get("pathWithQueryString") or resource["path"]).partition("?")
        tmpl = [s for s in str(resource.get("path", "/")).split("/") if s]
        path_params = _match_template(tmpl, [s for s in path.split("/") if s]) or {}
        variables = {str(k): str(v) for k, v in (req.get("stageVariables") or {}).items()}
        deployed = _Deployed("", resources, models, validators, variables, TokenBucket(1, 1))
        fake = _test_environ(environ, method, path, query, req)
        ids = Ids.new()
        log = ExecutionLog(ids.request_id)
        call = _Call(api_id, TEST_INVOKE_STAGE, path, method, resource, method_cfg, path_params,
                     fake, ids)  # fmt: skip
        resp = self._execute(call, deployed, log)
        resp.headers.setdefault("Content-Type", "application/json")
        resp.headers.setdefault("X-Amzn-Trace-Id", ids.trace_id)
        log.add(f"Method completed with status: {resp.status}")
        out = {
            "status": resp.status,
            "body": resp.body.decode("utf-8", "replace"),
            "headers": resp.headers,
            "multiValueHeaders": {k: [v] for k, v in resp.headers.items()},
            "log": log.text(),
            "latency": int((time.monotonic() - started) * 1000),
        }
        return Response(200, json.dumps(out).encode(), {"Content-Type": "application/json"})

    def _integration_body(
        self, integration: dict[str, Any], content_type: str, body: str, variables: dict[str, Any]
    ) -> str | Response:
        """The request template for the content type, rendered; or the body passed through
        as passthroughBehavior allows."""
        templates = integration.get("requestTemplates") or {}
        passthrough = integration.get("passthroughBehavior") or "WHEN_NO_MATCH"
        template = templates.get(content_type)
        if template is None:
            if passthrough == "NEVER" or (passthrough == "WHEN_NO_TEMPLATES" and templates):
                return _error(415, "Unsupported Media Type", "UnsupportedMediaTypeException")
            return body
        try:
            return render(template, variables)
        except PayloadError as exc:
            # AWS's JSON parser refused the body that $input.path/json read: 400, as recorded
            # on API Gateway (github.com/ToQoz/api-gateway-mapping-template test/_.md).
            self._log(f"[API Gateway] request template could not read the payload: {exc}")
            return _error(400, exc.message, "BadRequestException")
        except TemplateError as exc:
            self._log(f"[API Gateway] request template failed: {exc}")
            return _error(500, "Internal server error", "InternalServerErrorException")

    def _deployed(self, api_id: str, stage: str) -> _Deployed | Response:
        """The stage's configuration, re-read when the stage points at a new deployment.

        After a control-plane change the next request checks the stage (one GetStage);
        otherwise the data plane makes no control-plane call at all.
        """
        key = (api_id, stage)
        with self._lock:
            cached = self._cache.get(key)
            generation = self._generation
        if cached is not None and cached.checked == generation:
            return cached
        home = self._home(api_id)
        apigw = self._clients("apigateway", region=home[1] if home else self._region)
        try:
            stage_cfg = apigw.get_stage(restApiId=api_id, stageName=stage)
        except apigw.exceptions.NotFoundException:
            with self._lock:
                self._cache.pop(key, None)
            try:
                apigw.get_rest_api(restApiId=api_id)
            except apigw.exceptions.NotFoundException:
                # On AWS an unknown API id has no host name at all; LocalStack answers this.
                return _error(
                    404,
                    f"The API id '{api_id}' does not correspond to a deployed API Gateway API",
                    "NotFoundException",
                )
            return _error(*MISSING_TOKEN)  # unknown stage: a routing miss, as on AWS
        deployment_id = str(stage_cfg.get("deploymentId") or "")
        if cached is not None and cached.deployment_id == deployment_id:
            # As on AWS, method and integration changes wait for the next deployment; stage
            # settings (variables, throttling) do not.
            cached.variables = dict(stage_cfg.get("variables") or {})
            self._bucket(key, stage_cfg)
            cached.checked = generation
            return cached
        resources, models, validators = self._read_deployment(apigw, api_id)
        deployed = _Deployed(
            deployment_id,
            resources,
            models,
            validators,
            dict(stage_cfg.get("variables") or {}),
            self._bucket(key, stage_cfg),
            checked=generation,
        )
        with self._lock:
            self._cache[key] = deployed
        return deployed

    def _home(self, api_id: str) -> tuple[str, str] | None:
        """(account, region) of the API, looked up once (an API never moves)."""
        with self._lock:
            home = self._homes.get(api_id)
        if home is None:
            home = self._api_home(api_id)
            if home is not None:
                with self._lock:
                    self._homes[api_id] = home
        return home

    def _read_deployment(
        self, apigw: Any, api_id: str
    ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
        """The API's resources (with their methods), models and request validators."""
        resources = []
        for page in apigw.get_paginator("get_resources").paginate(
            restApiId=api_id, embed=["methods"]
        ):
            resources.extend(page.get("items", []))
        models = {}
        for page in apigw.get_paginator("get_models").paginate(restApiId=api_id):
            for model in page.get("items", []):
                try:
                    models[model["name"]] = json.loads(model.get("schema") or "{}")
                except ValueError:
                    self._log(f"[API Gateway] model {model['name']} has an invalid schema")
        validators = {
            v["id"]: v for v in apigw.get_request_validators(restApiId=api_id).get("items", [])
        }
        return resources, models, validators

    def _bucket(self, key: tuple[str, str], stage_cfg: dict[str, Any]) -> TokenBucket:
        """The stage's one token bucket, with its current limits. One per stage, whatever the
        deployment, and made once: requests that re-read the stage at the same moment share
        it (a bucket each would let each of them through)."""
        limits = stage_limits(stage_cfg)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(*limits)
        bucket.set_limits(*limits)
        return bucket

    def _validate(
        self,
        deployed: _Deployed,
        method_cfg: dict[str, Any],
        content_type: str,
        body: str,
        params: dict[str, dict[str, str]],
    ) -> Response | None:
        validator = deployed.validators.get(str(method_cfg.get("requestValidatorId") or ""))
        if validator is None:
            return None
        if validator.get("validateRequestParameters"):
            missing = []
            for name, required in (method_cfg.get("requestParameters") or {}).items():
                parts = name.split(".")  # method.request.{querystring|header|path}.NAME
                if not required or len(parts) < 4:
                    continue
                where, key = parts[2], ".".join(parts[3:])
                values = params.get(where, {})
                present = (
                    any(k.lower() == key.lower() for k in values)
                    if where == "header"
                    else key in values
                )
                if not present:
                    missing.append(key)
            if missing:
                return _error(
                    400,
                    f"Missing required request parameters: [{', '.join(missing)}]",
                    "BadRequestException",
                )
        if validator.get("validateRequestBody"):
            models = method_cfg.get("requestModels") or {}
            model_name = models.get(content_type) or models.get("$default")
            schema = deployed.models.get(model_name) if model_name else None
            if schema is not None and not _valid_json(body, schema):
                return _error(400, "Invalid request body", "BadRequestException")
        return None

    def _credentials(self, role_arn: str) -> Any:
        """Temporary credentials of the integration's role (STS AssumeRole), cached."""
        from botocore.credentials import Credentials

        with self._lock:
            hit = self._creds.get(role_arn)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        from pocctl.local.iam_authz import trusts_service

        # API Gateway must be allowed to assume the role; if not, AWS answers 500 and logs
        # "Execution failed due to configuration error: API Gateway does not have permission
        # to assume the provided role" (the request fails before SQS is called).
        role = self._clients("iam").get_role(RoleName=role_arn.rsplit("/", 1)[-1])["Role"]
        if not trusts_service(role["AssumeRolePolicyDocument"], "apigateway.amazonaws.com"):
            raise PermissionError(
                "Execution failed due to configuration error: API Gateway does not have "
                f"permission to assume the provided role {role_arn}"
            )
        c = self._clients("sts").assume_role(
            RoleArn=role_arn, RoleSessionName="BackplaneAssumeRoleSession"
        )["Credentials"]
        creds = Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
        with self._lock:
            self._creds[role_arn] = (time.monotonic() + 600, creds)
        return creds

    def _call_sqs(
        self,
        integration: dict[str, Any],
        target: tuple[str, str, str],
        body: str,
        headers: dict[str, str],
        query: dict[str, str],
    ) -> tuple[int, dict[str, str], str]:
        """POST to SQS's query API as the credentials role; SQS's answer as API Gateway sees it.
        ``target``: (region, account, queue name) from the integration's URI."""
        from urllib.parse import urlencode

        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.httpsession import URLLib3Session

        from pocctl.local.server import in_process_signer

        role = integration.get("credentials")
        if not role:
            self._log("[API Gateway] the SQS integration has no credentials role")
            return 500, {}, json.dumps({"message": "Internal server error"})
        region, account, queue = target
        url = f"{self.endpoint_url}/{account}/{queue}"
        if query:
            url += "?" + urlencode(query)
        req = AWSRequest(
            method=str(integration.get("httpMethod") or "POST"),
            url=url,
            data=body.encode("utf-8"),
            headers=dict(headers),
        )
        # In process, SigV4's headers without its hashing (server.in_process_signer).
        signer = SigV4Auth if self.send is None else in_process_signer()
        signer(self._credentials(str(role)), "sqs", region).add_auth(req)
        if self.send is not None:
            resp = self.send(req.prepare())
        else:
            if self._http is None:
                self._http = URLLib3Session(max_pool_connections=50)
            resp = self._http.send(req.prepare())
        text = resp.content.decode("utf-8", "replace")
        try:
            as_json = json.dumps(_xml_to_json(text)) if text.lstrip().startswith("<") else text
        except ET.ParseError:
            as_json = text
        return resp.status_code, dict(resp.headers), as_json

    def _integration_response(
        self,
        integration: dict[str, Any],
        status: int,
        backend_headers: dict[str, str],
        backend_body: str,
        params: dict[str, dict[str, str]],
        variables: dict[str, Any],
        accept: str,
    ) -> Response:
        responses = integration.get("integrationResponses") or {}
        chosen = None
        default = None
        for ir in sorted(responses.values(), key=lambda r: str(r.get("statusCode"))):
            pattern = ir.get("selectionPattern")
            if not pattern:
                default = default or ir
            elif re.fullmatch(pattern, str(status)):
                chosen = ir
                break
        chosen = chosen or default
        if chosen is None:
            self._log(f"[API Gateway] no integration response matches status {status}")
            return _error(500, "Internal server error", "InternalServerErrorException")
        templates = chosen.get("responseTemplates") or {}
        content_type = next(
            (t for t in templates if t == accept.split(";")[0].strip()), "application/json"
        )
        template = templates.get(content_type)
        if template is None and templates:
            content_type, template = next(iter(templates.items()))
        override: dict[str, Any] = {"header": {}}
        if template:
            context = dict(variables["context"], responseOverride=override)
            out_vars = dict(variables, input=Input(backend_body, params), context=context)
            try:
                out = render(template, out_vars)
            except TemplateError as exc:
                self._log(f"[API Gateway] response template failed: {exc}")
                return _error(500, "Internal server error", "InternalServerErrorException")
        else:
            out = backend_body
        headers = {"Content-Type": content_type}
        for name, source in (chosen.get("responseParameters") or {}).items():
            if not name.startswith("method.response.header."):
                continue
            header = name[len("method.response.header.") :]
            if source.startswith("'") and source.endswith("'"):
                headers[header] = source[1:-1]
            elif source.startswith("integration.response.header."):
                wanted = source[len("integration.response.header.") :].lower()
                for k, v in backend_headers.items():
                    if k.lower() == wanted:
                        headers[header] = v
        # $context.responseOverride from the response template wins (same AWS page as above).
        headers.update(_override(override, "header"))
        status = _override_status(override.get("status"), chosen.get("statusCode"))
        return Response(status, out.encode("utf-8"), headers)


def _method_request(
    environ: dict[str, Any], path_params: dict[str, str]
) -> tuple[str, dict[str, str], str, dict[str, Any]]:
    """The method request: body, headers, content type and the parameters by location."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length).decode("utf-8", "replace") if length else ""
    headers = {
        k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    # API Gateway assumes application/json when the client sends no Content-Type.
    content_type = (headers.get("Content-Type") or "application/json").split(";")[0]
    content_type = content_type.strip().lower()
    query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    return (
        body,
        headers,
        content_type,
        {"path": path_params, "querystring": query, "header": headers},
    )


def _test_environ(
    environ: dict[str, Any], method: str, path: str, query: str, req: dict[str, Any]
) -> dict[str, Any]:
    """The method request a test invoke describes, as a WSGI environ."""
    body = str(req.get("body") or "").encode("utf-8")
    headers: dict[str, str] = {}
    for name, values in (req.get("multiValueHeaders") or {}).items():
        headers[str(name)] = ",".join(str(v) for v in values)
    headers.update({str(k): str(v) for k, v in (req.get("headers") or {}).items()})
    fake: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": environ.get("SERVER_NAME", "127.0.0.1"),
        "SERVER_PROTOCOL": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        "REMOTE_ADDR": environ.get("REMOTE_ADDR", "127.0.0.1"),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    for name, value in headers.items():
        if name.lower() == "content-type":
            fake["CONTENT_TYPE"] = value
        else:
            fake["HTTP_" + name.upper().replace("-", "_")] = value
    return fake


def _context(
    environ: dict[str, Any],
    headers: dict[str, str],
    request_id: str,
    api_id: str,
    stage: str,
    method: str,
    resource: dict[str, Any],
    path: str,
    deployed: _Deployed,
    apigw_id: str | None = None,
) -> dict[str, Any]:
    """``$context`` of a mapping template: every key "Variables for data transformations for API
    Gateway" lists for REST APIs (https://docs.aws.amazon.com/apigateway/latest/developerguide/
    api-gateway-mapping-template-reference.html). What an unsigned, unauthorised request has no
    value for (identity.caller, authorizer.principalId...) is null, rendered empty, as on AWS."""
    now = time.time()
    domain = headers.get("Host") or environ.get("SERVER_NAME", "127.0.0.1")
    return {
        "accountId": ACCOUNT_ID,
        "apiId": api_id,
        "authorizer": {"claims": None, "principalId": None},
        "awsEndpointRequestId": None,
        "deploymentId": deployed.deployment_id,
        # "The full domain name used to invoke the API. This should be the same as the
        # incoming Host header."; domainPrefix is its first label.
        "domainName": domain,
        "domainPrefix": domain.split(":")[0].split(".")[0],
        # The id API Gateway also sends as the x-amz-apigw-id header (Ids).
        "extendedRequestId": apigw_id or Ids.new().apigw_id,
        "httpMethod": method,
        "identity": _identity(environ, headers),
        "isCanaryRequest": False,
        "path": f"/{stage}/{path.lstrip('/')}" if path.strip("/") else f"/{stage}/",
        "protocol": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        "requestId": request_id,
        "requestOverride": {"header": {}, "path": {}, "querystring": {}},
        "responseOverride": {"header": {}},
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "requestTimeEpoch": int(now * 1000),
        "resourceId": resource.get("id"),
        "resourcePath": resource.get("path"),
        "stage": stage,
        "wafResponseCode": None,
        "webaclArn": None,
        "xrayTraceId": None,
    }


def _identity(environ: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """``$context.identity`` of an unsigned request without an API key (the lab's)."""
    names = [
        "accountId",
        "apiKey",
        "apiKeyId",
        "caller",
        "cognitoAuthenticationProvider",
        "cognitoAuthenticationType",
        "cognitoIdentityId",
        "cognitoIdentityPoolId",
        "principalOrgId",
        "clientCert",
        "user",
        "userArn",
        "vpcId",
        "vpceId",
    ]
    identity: dict[str, Any] = dict.fromkeys(names)
    identity["sourceIp"] = environ.get("REMOTE_ADDR", "127.0.0.1")
    identity["userAgent"] = headers.get("User-Agent")
    return identity


def _override(override: Any, where: str) -> dict[str, str]:
    """The values a template set in ``$context.{request,response}Override.<where>``."""
    values = override.get(where) if isinstance(override, dict) else None
    if not isinstance(values, dict):
        return {}
    return {str(k): java_string(v) for k, v in values.items() if v is not None}


def _override_status(status: Any, default: Any) -> int:
    try:
        code = int(str(status))
    except ValueError:
        return int(default or 200)
    return code if 100 <= code <= 599 else int(default or 200)


def _match(
    resources: list[dict[str, Any]], path: str, method: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]] | None:
    """The resource (most literal segments first) and method for ``path``."""
    segments = [s for s in path.split("/") if s]
    best: tuple[int, dict[str, Any], dict[str, str]] | None = None
    for res in resources:
        tmpl = [s for s in str(res.get("path", "/")).split("/") if s]
        params = _match_template(tmpl, segments)
        if params is None:
            continue
        literal = sum(1 for s in tmpl if not s.startswith("{"))
        methods = res.get("resourceMethods") or {}
        if method not in methods and "ANY" not in methods:
            continue
        if best is None or literal > best[0]:
            best = (literal, res, params)
    if best is None:
        return None
    methods = best[1]["resourceMethods"]
    return best[1], methods.get(method) or methods["ANY"], best[2]


def _match_template(tmpl: list[str], segments: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for i, t in enumerate(tmpl):
        if t.startswith("{") and t.endswith("+}"):
            if i >= len(segments):
                return None
            params[t[1:-2]] = "/".join(segments[i:])
            return params
        if i >= len(segments):
            return None
        if t.startswith("{") and t.endswith("}"):
            params[t[1:-1]] = segments[i]
        elif t != segments[i]:
            return None
    return params if len(tmpl) == len(segments) else None


def _integration_parameters(
    mapping: dict[str, str],
    params: dict[str, dict[str, str]],
    stage_vars: dict[str, str],
    context: dict[str, Any],
) -> tuple[dict[str, str], dict[str, str]]:
    """Render ``integration.request.{header,querystring}.X`` from literals and method params."""
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    for target, source in mapping.items():
        parts = target.split(".")
        if len(parts) < 4 or parts[0] != "integration" or parts[2] not in ("header", "querystring"):
            continue
        name = ".".join(parts[3:])
        if source.startswith("'") and source.endswith("'"):
            value: str | None = source[1:-1]
        elif source.startswith("method.request."):
            where, _, key = source[len("method.request.") :].partition(".")
            values = params.get(where, {})
            value = (
                next((v for k, v in values.items() if k.lower() == key.lower()), None)
                if where == "header"
                else values.get(key)
            )
        elif source.startswith("stageVariables."):
            value = stage_vars.get(source.split(".", 1)[1])
        elif source.startswith("context."):
            found: Any = context
            for part in source.split(".")[1:]:
                found = found.get(part) if isinstance(found, dict) else None
            value = None if found is None else java_string(found)
        else:
            value = None
        if value is not None:
            (headers if parts[2] == "header" else query)[name] = value
    return headers, query


def _valid_json(body: str, schema: dict[str, Any]) -> bool:
    """Body against a model's JSON schema (draft 4, as API Gateway models are)."""
    import jsonschema  # declared in pyproject.toml (moto[server] needs it too)

    try:
        doc = json.loads(body)
    except ValueError:
        return False
    try:
        jsonschema.Draft4Validator(schema).validate(doc)
    except jsonschema.ValidationError:
        return False
    except jsonschema.SchemaError as exc:
        logger.warning("model schema is invalid: %s", exc)
        return False
    return True


def _xml_to_json(text: str) -> dict[str, Any]:
    """SQS's XML answer as the JSON it sends to API Gateway (which asks for JSON)."""
    root = ET.fromstring(text)

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    def convert(el: ET.Element) -> Any:
        children = list(el)
        if not children:
            return el.text or ""
        out: dict[str, Any] = {}
        for c in children:
            key, value = local(c.tag), convert(c)
            if key in out:
                if not isinstance(out[key], list):
                    out[key] = [out[key]]
                out[key].append(value)
            else:
                out[key] = value
        return out

    if local(root.tag) == "ErrorResponse":  # SQS's JSON errors have no wrapper
        return dict(convert(root))
    return {local(root.tag): convert(root)}
