"""IAM enforced on the embedded AWS for what functions and integrations do.

A request signed with temporary credentials that the embedded STS issued for a role (a Lambda
function's execution role, API Gateway's integration role) is authorized as AWS authorizes it:
the operation's IAM action on the resource it acts on (``resource_of``) against the role's
identity policies (inline and attached managed ones, read from moto's IAM backend) and, where
AWS applies one, the resource's policy (the SQS queue policy), by pocctl.local.iam_policy. A
refusal is the service's own AccessDenied answer. Credentials the embedded AWS does not know are
refused as AWS refuses them; the local admin credentials (LOCAL_CREDENTIALS, what pocctl's CLI,
pollers, log shipper and tests use) stay unrestricted.

Why not moto's engine (moto.iam.access_control, turned on by INITIAL_NO_AUTH_ACTION_COUNT): it is
all or nothing for the process (pocctl's admin key "testing" is no IAM user, so every control
plane call would fail InvalidClientTokenId); it authorizes DynamoDB, SNS, Logs and Lambda
requests against the resource "*" (only SQS, IAM and STS name theirs: ``_determine_resource``),
ignores NotResource (a NotResource statement allows every resource), treats an Allow whose
condition does not hold as an explicit deny, matches actions case-sensitively with an unescaped
regex, never reads resource policies, and answers IAM's error for every service. What it does
and this does not: verify the SigV4 signature against the session's secret key (here the access
key and session token must match an issued session; the signature is checked for shape only,
by the pipeline's ``signature`` step).

Cost: the role's parsed policies are cached per role and dropped whenever a request that can
change them (any IAM write, an SQS queue-attribute or permission change, a reset) goes through
the server (``wrap``), before and after it runs; admin requests cost one dictionary lookup.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from pocctl.local.iam_policy import Caller, Decision, Policy, evaluate
from pocctl.local.iam_policy import Request as AuthzRequest
from pocctl.local.operation import Operation, operation_of
from pocctl.local.server import LOCAL_CREDENTIALS, Answer, Request, ServerLock

logger = logging.getLogger("pocctl.local")

ADMIN_KEY = LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]

# Requests that can change what a role may do: IAM writes, a queue's policy, a reset.
_SQS_POLICY_CHANGES = {
    "CreateQueue",
    "DeleteQueue",
    "SetQueueAttributes",
    "AddPermission",
    "RemovePermission",
}


# -- which resource an operation acts on -----------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What one request asks IAM: ``action`` on each of ``resources`` (all must be allowed)."""

    action: str
    resources: tuple[str, ...]
    shown: str = ""  # the resource as AWS's message names it (default: the first resource)


class Unmapped(Exception):
    """The embedded AWS does not know which resource the operation acts on."""


def _params(req: Request) -> dict[str, Any]:
    """The operation's parameters: the JSON body, or the query string and form body."""
    if req.op.protocol == "json":
        try:
            data = json.loads(req.body or b"{}")
        except ValueError as exc:
            raise Unmapped("its body is not JSON") from exc
        return data if isinstance(data, dict) else {}
    params = {k: v[0] for k, v in parse_qs(str(req.environ.get("QUERY_STRING", ""))).items()}
    if req.body and str(req.environ.get("CONTENT_TYPE", "")).startswith(
        "application/x-www-form-urlencoded"
    ):
        params.update({k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()})
    return params


def _need(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise Unmapped(f"it names no {name}")
    return value


# DynamoDB: SAR "Actions, resources, and condition keys for Amazon DynamoDB"
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html):
# item and table actions on table/NAME (an index query on table/NAME/index/INDEX), stream
# actions on table/NAME/stream/LABEL; ListTables and ListStreams have no resource type ("*").
_DDB_TABLE_OPS = {
    "PutItem",
    "GetItem",
    "UpdateItem",
    "DeleteItem",
    "DescribeTable",
    "Query",
    "Scan",
    "DescribeTimeToLive",
    "ConditionCheckItem",
}
_DDB_BATCH_OPS = {"BatchWriteItem", "BatchGetItem"}


def _table_arn(region: str, account: str, name: str) -> str:
    if name.startswith("arn:"):
        return name  # DynamoDB accepts a table ARN wherever it takes a TableName
    return f"arn:aws:dynamodb:{region}:{account}:table/{name}"


def _dynamodb(op: Operation, params: dict[str, Any], region: str, account: str) -> Target:
    action = f"dynamodb:{op.name}"
    if op.name in ("ListTables", "ListStreams"):
        shown = f"arn:aws:dynamodb:{region}:{account}:table/*" if op.name == "ListTables" else "*"
        return Target(action, ("*",), shown)
    if op.name in _DDB_TABLE_OPS:
        arn = _table_arn(region, account, _need(params, "TableName"))
        index = params.get("IndexName")
        if op.name in ("Query", "Scan") and isinstance(index, str) and index:
            arn = f"{arn}/index/{index}"
        return Target(action, (arn,))
    if op.name in _DDB_BATCH_OPS:
        tables = params.get("RequestItems")
        if not isinstance(tables, dict) or not tables:
            raise Unmapped("it names no RequestItems")
        return Target(action, tuple(_table_arn(region, account, t) for t in tables))
    if op.name in ("DescribeStream", "GetShardIterator"):
        return Target(action, (_need(params, "StreamArn"),))
    if op.name == "GetRecords":
        # moto's iterator is "STREAM_ARN|1|ID"; AWS authorizes GetRecords on the stream.
        stream = _need(params, "ShardIterator").split("|", 1)[0]
        if not stream.startswith("arn:"):
            raise Unmapped("its ShardIterator names no stream")
        return Target(action, (stream,))
    raise Unmapped("no resource mapping for it")


# SQS: SAR list_amazonsqs.html: every queue action on the queue ARN arn:aws:sqs:REGION:ACCOUNT:
# NAME; ListQueues has no resource type. The batch APIs are authorized as their single-message
# action ("SendMessageBatch" is no IAM action: sqs:SendMessage covers it, and so on).
_SQS_QUEUE_OPS = {
    "SendMessage",
    "ReceiveMessage",
    "DeleteMessage",
    "ChangeMessageVisibility",
    "GetQueueAttributes",
    "SetQueueAttributes",
    "PurgeQueue",
    "ListQueueTags",
    "DeleteQueue",
}
_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _queue_arn(url_or_path: str, region: str) -> str:
    parts = [p for p in urlsplit(url_or_path).path.split("/") if p]
    if len(parts) != 2 or not parts[0].isdigit():
        raise Unmapped(f"its queue URL {url_or_path!r} names no ACCOUNT/QUEUE")
    return f"arn:aws:sqs:{region}:{parts[0]}:{parts[1]}"


def _sqs(req: Request, params: dict[str, Any], region: str, account: str) -> Target:
    name = _SQS_BATCH.get(req.op.name, req.op.name)
    action = f"sqs:{name}"
    if name == "ListQueues":
        return Target(action, ("*",))
    if name in ("GetQueueUrl", "CreateQueue"):
        owner = str(params.get("QueueOwnerAWSAccountId") or account)
        return Target(action, (f"arn:aws:sqs:{region}:{owner}:{_need(params, 'QueueName')}",))
    if name in _SQS_QUEUE_OPS:
        url = params.get("QueueUrl")
        # The query protocol may name the queue in the path instead (API Gateway's integration
        # posts to /ACCOUNT/QUEUE).
        where = url if isinstance(url, str) and url else str(req.environ.get("PATH_INFO", ""))
        return Target(action, (_queue_arn(where, region),))
    raise Unmapped("no resource mapping for it")


# SNS: SAR list_amazonsns.html: topic actions on the topic ARN; ListTopics has none.
def _sns(op: Operation, params: dict[str, Any]) -> Target:
    action = f"sns:{op.name}"
    if op.name in ("ListTopics", "ListSubscriptions"):
        return Target(action, ("*",))
    if op.name == "Publish":
        topic = params.get("TopicArn") or params.get("TargetArn")
        if not isinstance(topic, str) or not topic:
            raise Unmapped("it publishes to no topic ARN (SMS is not mapped)")
        return Target(action, (topic,))
    if op.name in ("GetTopicAttributes", "Subscribe", "ListSubscriptionsByTopic", "PublishBatch"):
        name = "Publish" if op.name == "PublishBatch" else op.name
        return Target(f"sns:{name}", (_need(params, "TopicArn"),))
    raise Unmapped("no resource mapping for it")


# CloudWatch Logs: SAR list_amazoncloudwatchlogs.html puts CreateLogGroup on log-group:NAME and
# the stream actions on log-group:NAME:log-stream:STREAM; CloudWatch Logs' own guide says to
# grant group actions on log-group:NAME:* (pocctl/resources/iam.py, _logs_statements). Which one
# AWS evaluates is not documented consistently, so a group action must be allowed on BOTH forms:
# never more permissive whichever AWS uses.
def _logs(op: Operation, params: dict[str, Any], region: str, account: str) -> Target:
    action = f"logs:{op.name}"
    if op.name in ("DescribeLogGroups",):
        return Target(action, ("*",))
    group = f"arn:aws:logs:{region}:{account}:log-group:{_need(params, 'logGroupName')}"
    if op.name in ("CreateLogStream", "PutLogEvents", "GetLogEvents"):
        stream = _need(params, "logStreamName")
        return Target(action, (f"{group}:log-stream:{stream}",))
    if op.name in ("CreateLogGroup", "DeleteLogGroup", "DescribeLogStreams", "FilterLogEvents"):
        return Target(action, (group, f"{group}:*"), group)
    raise Unmapped("no resource mapping for it")


# Lambda: SAR list_awslambda.html: Invoke is lambda:InvokeFunction on the function ARN (with its
# qualifier, if the request names one); ListFunctions has no resource type.
def _lambda(req: Request, region: str, account: str) -> Target:
    op = req.op
    if op.name in ("Invoke", "InvokeAsync"):
        parts = [p for p in str(req.environ.get("PATH_INFO", "")).split("/") if p]
        name = unquote(parts[2]) if len(parts) > 2 else ""
        if not name:
            raise Unmapped("it names no function")
        if name.startswith("arn:"):
            arn = name
        elif ":function:" in name:  # ACCOUNT:function:NAME
            arn = f"arn:aws:lambda:{region}:{name}"
        else:
            arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
        qualifier = parse_qs(str(req.environ.get("QUERY_STRING", ""))).get("Qualifier")
        if qualifier and arn.count(":") == 6:
            arn = f"{arn}:{qualifier[0]}"
        return Target("lambda:InvokeFunction", (arn,))
    if op.method == "GET" and str(req.environ.get("PATH_INFO", "")).rstrip("/").endswith(
        "/functions"
    ):
        return Target("lambda:ListFunctions", ("*",))
    raise Unmapped("no resource mapping for it")


def resource_of(req: Request, region: str, account: str) -> Target:
    """The IAM action and resource ARN(s) of ``req``; Unmapped when the embedded AWS does not
    know them (the request is then refused: never more permissive than AWS)."""
    op = req.op
    if op.service == "dynamodb":
        return _dynamodb(op, _params(req), region, account)
    if op.service == "sqs":
        return _sqs(req, _params(req), region, account)
    if op.service == "sns":
        return _sns(op, _params(req))
    if op.service == "logs":
        return _logs(op, _params(req), region, account)
    if op.service == "lambda":
        return _lambda(req, region, account)
    raise Unmapped("no resource mapping for its service")


# -- AWS's answers ---------------------------------------------------------------------------

_REQUEST_ID = "00000000-0000-0000-0000-000000000000"


def _query_error(status: int, code: str, message: str) -> Answer:
    body = (
        '<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{_REQUEST_ID}</RequestId></ErrorResponse>"
    ).encode()
    return Answer(status, body, [("Content-Type", "text/xml")])


def _json_error(status: int, code: str, message: str, query_code: str = "") -> Answer:
    headers = [("Content-Type", "application/x-amz-json-1.0")]
    if query_code:
        # SQS's JSON protocol names the query-protocol code in x-amzn-query-error (botocore's
        # parsers use it, so clients see the same code as with the query protocol).
        headers.append(("x-amzn-query-error", f"{query_code};Sender"))
    body = json.dumps({"__type": f"com.amazon.coral.service#{code}", "message": message})
    return Answer(status, body.encode(), headers)


def _rest_error(status: int, code: str, message: str) -> Answer:
    body = json.dumps({"Type": "User", "message": message}).encode()
    return Answer(status, body, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)])


def access_denied(op: Operation, message: str) -> Answer:
    """Each service's refusal:
    - DynamoDB and CloudWatch Logs (JSON): AccessDeniedException, HTTP 400
      (DynamoDB API Reference, "Common errors" / Error handling: "AccessDeniedException ... 400";
      CloudWatch Logs API Reference, "Common Errors");
    - SQS: AccessDenied, HTTP 403 (SQS API Reference, "Common Errors"; e.g. aws/serverless-
      application-model#3633: "An error occurred (AccessDenied) when calling the
      SendMessageBatch operation: User: ... is not authorized to perform: sqs:sendmessage ...");
    - SNS: AuthorizationError, HTTP 403 (SNS API Reference, Publish: "AuthorizationError ...
      HTTP Status Code: 403"; its messages say "SNS:Publish", e.g. aws-ia/terraform-aws-
      control_tower_account_factory#151);
    - Lambda: AccessDeniedException, HTTP 403 (as AWS answers it, e.g. awslabs/aws-deployment-
      framework#460: "... is not authorized to perform: lambda:InvokeFunction on resource: ...
      because no identity-based policy allows the lambda:InvokeFunction action (Service:
      AWSLambda; Status Code: 403; Error Code: AccessDeniedException ...)");
    - any other query-protocol service (STS, IAM): AccessDenied, HTTP 403."""
    if op.service == "sns":
        return _query_error(403, "AuthorizationError", message)
    if op.service == "sqs":
        if op.protocol == "json":
            return _json_error(403, "AccessDeniedException", message, "AccessDenied")
        return _query_error(403, "AccessDenied", message)
    if op.protocol == "json":
        return _json_error(400, "AccessDeniedException", message)
    if op.protocol == "query":
        return _query_error(403, "AccessDenied", message)
    return _rest_error(403, "AccessDeniedException", message)


_INVALID_TOKEN = "The security token included in the request is invalid."
_EXPIRED_TOKEN = "The security token included in the request is expired"


def unrecognized(op: Operation, *, expired: bool = False) -> Answer:
    """Credentials AWS does not know ("Common Errors" of each API reference):
    InvalidClientTokenId (403) for query-protocol services, UnrecognizedClientException for
    JSON ones (400) and for Lambda (403); an expired session: ExpiredToken (query, 403) /
    ExpiredTokenException (JSON 400, REST 403)."""
    message = _EXPIRED_TOKEN if expired else _INVALID_TOKEN
    query_code = "ExpiredToken" if expired else "InvalidClientTokenId"
    json_code = "ExpiredTokenException" if expired else "UnrecognizedClientException"
    if op.protocol == "query":
        return _query_error(403, query_code, message)
    if op.protocol == "json":
        if op.service == "sqs":
            return _json_error(403, json_code, message, query_code)
        return _json_error(400, json_code, message)
    return _rest_error(403, json_code, message)


def denial_message(caller: Caller, target: Target, decision: Decision, service: str) -> str:
    """AWS's wording ("Troubleshoot access denied error messages", IAM User Guide,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html): "User:
    ARN is not authorized to perform: ACTION on resource: ARN because no identity-based policy
    allows the ACTION action" / "... with an explicit deny in an identity-based policy"."""
    action = target.action
    if service == "sns":
        action = "SNS:" + action.split(":", 1)[1]  # SNS's messages say "SNS:Publish"
    elif service == "sqs":
        action = action.lower()  # and SQS's "sqs:sendmessage"
    resource = target.shown or target.resources[0]
    head = f"User: {caller.arn} is not authorized to perform: {action} on resource: {resource}"
    if decision.denied_by == "identity":
        return f"{head} with an explicit deny in an identity-based policy"
    if decision.denied_by == "resource":
        return f"{head} with an explicit deny in a resource-based policy"
    return f"{head} because no identity-based policy allows the {action} action"


# -- credentials -----------------------------------------------------------------------------


def _credential(environ: dict[str, Any]) -> tuple[str, str, str]:
    """(access key, region, session token) of a SigV4-signed or presigned request."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    scope = auth.partition("Credential=")[2].partition(",")[0]
    token = str(environ.get("HTTP_X_AMZ_SECURITY_TOKEN", ""))
    if not scope:
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        scope = (query.get("X-Amz-Credential") or [""])[0]
        token = token or (query.get("X-Amz-Security-Token") or [""])[0]
    parts = scope.split("/")
    return parts[0], (parts[2] if len(parts) > 2 else ""), token


@dataclass(frozen=True)
class Session:
    caller: Caller
    token: str
    expires: float  # time.time()
    session_policy: Policy | None
    context: dict[str, list[str]] = field(default_factory=dict)  # the caller's condition keys


def _find_session(access_key: str) -> Session | None:
    """The role session moto's STS issued with ``access_key`` (None if it issued none)."""
    from moto.sts.models import sts_backends

    for account, by_partition in list(sts_backends.items()):
        for backend in list(by_partition.values()):
            for assumed in list(backend.assumed_roles):
                if assumed.access_key_id != access_key:
                    continue
                role_id = ""
                role = _role(assumed.account_id, assumed.role_arn)
                if role is not None:
                    role_id = role.id
                policy = Policy.parse("session policy", assumed.policy) if assumed.policy else None
                caller = Caller(account, assumed.role_arn, assumed.session_name, role_id)
                expires = assumed.expiration.timestamp()
                return Session(caller, assumed.session_token, expires, policy, caller.context())
    return None


def _role(account: str, role_arn: str) -> Any:
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["aws"]
    return next((r for r in list(backend.roles.values()) if r.arn == role_arn), None)


def _default_version(policy: Any) -> Any:
    return next(v.document for v in policy.versions if v.is_default)


def _identity_policies(caller: Caller) -> tuple[Policy, ...]:
    """The role's inline and attached managed policies, parsed (none if the role is gone: a
    deleted role's sessions can do nothing)."""
    role = _role(caller.account, caller.role_arn)
    if role is None:
        return ()
    found = [Policy.parse(f"inline {name}", doc) for name, doc in list(role.policies.items())]
    for arn, managed in list(role.managed_policies.items()):
        found.append(Policy.parse(arn, _default_version(managed)))
    return tuple(found)


def _queue_policy(queue_arn: str) -> tuple[Policy, ...]:
    from moto.sqs.models import sqs_backends

    _, _, _, region, account, name = queue_arn.split(":", 5)
    queue = sqs_backends[account][region].queues.get(name)
    text = getattr(queue, "policy", None) if queue is not None else None
    return (Policy.parse(f"queue policy of {name}", text),) if text else ()


# The moto 5.2.5 internals read above (not patched: moto_hooks' registry is for replacements),
# with their source hashes (moto_hooks.source_hash); tests/local/test_iam_authz.py fails when an
# upgrade changes one: AssumedRole's attributes (access_key_id, session_token, expiration,
# policy, role_arn), STSBackend.assumed_roles, Role.policies / managed_policies,
# IAMBackend.roles, Policy.versions, Queue.policy.
MOTO_READS = {
    "moto.sts.models:AssumedRole.__init__": "7a9e804024b6075d",
    "moto.sts.models:STSBackend.assume_role": "f32a21bb2eb0084c",
    "moto.iam.models:Role.__init__": "5aad9afbd86eefd1",
    "moto.iam.models:IAMBackend.__init__": "0aab2d3a734fac8b",
    "moto.iam.models:Policy.__init__": "596dbfb50a9af125",
    "moto.sqs.models:Queue.policy": "1cf8617511de6167",
}


# -- the authorizer --------------------------------------------------------------------------


class Authorizer:
    """The ``iam`` step of the request pipeline (``check``) and the middleware that keeps its
    cache current (``wrap``). ``lock`` is the server's: moto's backends are read under it."""

    def __init__(self, lock: ServerLock, *, clock: Callable[[], float] = time.time) -> None:
        self._lock = lock
        self._clock = clock
        self._generation = 0
        self._sessions: dict[str, tuple[int, Session]] = {}
        self._policies: dict[str, tuple[int, tuple[Policy, ...]]] = {}
        self._mutex = threading.Lock()
        self.stats = {"checked": 0, "denied": 0, "seconds": 0.0}

    # -- cache ------------------------------------------------------------------------------

    def forget(self) -> None:
        """Drop every cached session and policy (after a reset, or any change to IAM)."""
        with self._mutex:
            self._generation += 1
            self._sessions.clear()
            self._policies.clear()

    def wrap(self, app: Any) -> Any:
        """WSGI middleware: a request that may change a policy drops the cache before and after
        it runs, so no check can settle on the old state in between."""

        def middleware(environ: dict[str, Any], start_response: Any) -> Any:
            op = operation_of(environ)
            changes = (
                (op.service == "iam" and op.mutating)
                or (op.service == "sqs" and op.name in _SQS_POLICY_CHANGES)
                or (op.protocol == "admin" and op.mutating)  # moto's reset, seed, ...
            )
            if not changes:
                return app(environ, start_response)
            self.forget()
            try:
                return list(app(environ, start_response))
            finally:
                self.forget()

        return middleware

    def _cached(self, cache: dict[str, Any], key: str, load: Callable[[], Any]) -> Any:
        with self._mutex:
            hit = cache.get(key)
            generation = self._generation
        if hit is not None and hit[0] == generation:
            return hit[1]
        with self._lock:  # moto's backends are not thread-safe
            value = load()
        with self._mutex:
            # Not an unknown key's None: a stranger sending random keys must not grow the cache.
            if self._generation == generation and value is not None:
                cache[key] = (generation, value)
        return value

    # -- the check --------------------------------------------------------------------------

    def check(self, req: Request) -> Answer | None:
        """None (go on) or AWS's refusal."""
        if req.op.protocol in ("invoke-url", "admin"):
            return None
        key, region, token = _credential(req.environ)
        if key == ADMIN_KEY:
            return None
        started = time.perf_counter()
        try:
            return self._check(req, key, region, token)
        finally:
            self.stats["checked"] += 1
            self.stats["seconds"] += time.perf_counter() - started

    def _check(self, req: Request, key: str, region: str, token: str) -> Answer | None:
        op = req.op
        session = self._cached(self._sessions, key, lambda: _find_session(key))
        if session is None or token != session.token:
            logger.info("embedded AWS: %s %s refused: unknown credentials", op.service, op.name)
            return unrecognized(op)
        if self._clock() >= session.expires:
            return unrecognized(op, expired=True)
        caller = session.caller
        if op.service == "sts" and op.name == "GetCallerIdentity":
            # "No permissions are required to perform this operation" (STS API Reference,
            # GetCallerIdentity): even an explicit deny does not stop it.
            return None
        try:
            target = resource_of(req, region, caller.account)
        except Unmapped as exc:
            self.stats["denied"] += 1
            logger.warning(
                "embedded AWS: refused %s:%s for %s: the embedded AWS cannot authorize it (%s)",
                op.service,
                op.name,
                caller.arn,
                exc,
            )
            message = (
                f"User: {caller.arn} is not authorized to perform: {op.service}:{op.name} "
                "(the embedded AWS cannot authorize this operation for role credentials)"
            )
            return access_denied(op, message)
        decision = self._decide(caller, session, target, op)
        if decision.allowed:
            return None
        self.stats["denied"] += 1
        message = denial_message(caller, target, decision, op.service)
        logger.info("embedded AWS: %s", message)
        return access_denied(op, message)

    def _decide(self, caller: Caller, session: Session, target: Target, op: Operation) -> Decision:
        identity = self._cached(self._policies, caller.role_arn, lambda: _identity_policies(caller))
        for resource in target.resources:
            req = AuthzRequest(target.action, resource, caller, session.context)
            resource_policies: Iterable[Policy] = ()
            if op.service == "sqs" and resource.startswith("arn:aws:sqs:"):
                resource_policies = self._cached(
                    self._policies, resource, lambda r=resource: _queue_policy(r)
                )
            decision = evaluate(identity, req, resource_policies)
            if decision.allowed and session.session_policy is not None:
                # A session policy limits the role's permissions: both must allow
                # ("Session policies", IAM User Guide, access_policies.html#policies_session).
                inner = evaluate((session.session_policy,), req)
                decision = inner if not inner.allowed else decision
            if not decision.allowed:
                return decision
        return Decision(True)


# -- a function's execution-role credentials -------------------------------------------------

# How long a function's role session lasts: AssumeRole's default, and a role's default
# MaxSessionDuration (STS API Reference, AssumeRole, DurationSeconds: "the value ... defaults to
# one hour"). Lambda's maximum timeout is 900 s ("Lambda quotas", Function timeout).
SESSION_SECONDS = 3600
MAX_FUNCTION_TIMEOUT = 900
# A warm worker keeps the credentials it started with (they are its environment, as on AWS), so
# it is retired after WORKER_MAX_AGE and a session is handed to new workers only while it still
# outlives such a worker and its longest invocation: no handler ever sees expired credentials.
# AWS does not document when it renews a warm environment's credentials; it does end
# environments periodically ("Lambda execution environment lifecycle"), as this does.
WORKER_MAX_AGE = 1800
_RENEW_MARGIN = WORKER_MAX_AGE + MAX_FUNCTION_TIMEOUT + 60

LAMBDA_SERVICE = "lambda.amazonaws.com"
# CreateFunction's answer when the role's trust policy does not let Lambda assume it
# (Lambda API Reference, CreateFunction, InvalidParameterValueException).
CANNOT_ASSUME = "The role defined for the function cannot be assumed by Lambda."


class RoleNotAssumable(RuntimeError):
    pass


def trusts_service(document: Any, service: str) -> bool:
    """Whether a role's trust policy lets ``service`` call sts:AssumeRole (an Allow naming the
    service principal, and no Deny that covers it). Conditions are evaluated with an empty
    request context: a trust policy that depends on one is refused, never more permissive."""
    from pocctl.local.iam_policy import ALLOW, DENY, Unsupported, conditions_hold

    policy = Policy.parse("trust policy", document)
    probe = AuthzRequest("sts:AssumeRole", "*", Caller("", "arn:aws:iam:::role/-", "-"), {})
    allowed = False
    for st in policy.statements:
        principal = st.principal if isinstance(st.principal, dict) else {}
        services = principal.get("Service")
        named = st.principal == "*" or service in (
            services if isinstance(services, list) else [services]
        )
        if not named or not st.covers_action("sts:AssumeRole"):
            continue
        try:
            holds = not st.condition or conditions_hold(st.condition, probe)
        except Unsupported:
            holds = st.effect == DENY
        if holds and st.effect == DENY:
            return False
        allowed = allowed or (holds and st.effect == ALLOW)
    return allowed


@dataclass(frozen=True)
class _Issued:
    env: dict[str, str]
    expires: float


class ExecutionRoleCredentials:
    """``Executor``'s ``credentials``: a function's execution-role session from the embedded
    STS (AssumeRole, session name = the function's name, as Lambda names it:
    arn:aws:sts::ACCOUNT:assumed-role/ROLE/FUNCTION), renewed before it expires."""

    def __init__(
        self,
        sts: Any,
        iam: Any,
        *,
        clock: Callable[[], float] = time.time,
        session_seconds: int = SESSION_SECONDS,
        renew_margin: float = _RENEW_MARGIN,
    ) -> None:
        self._sts, self._iam = sts, iam
        self._clock = clock
        self._seconds = session_seconds
        self._margin = renew_margin
        self._issued: dict[tuple[str, str], _Issued] = {}
        self._mutex = threading.Lock()
        # forget() (a reset erased STS's sessions) bumps it: a session being issued across a
        # reset is not cached, or a later worker would start with credentials STS no longer has.
        self._generation = 0

    def __call__(self, spec: Any) -> dict[str, str]:
        key = (str(spec.role), str(spec.name))
        with self._mutex:
            hit = self._issued.get(key)
            generation = self._generation
        if hit is not None and hit.expires - self._clock() >= self._margin:
            return hit.env
        role_name = key[0].rsplit("/", 1)[-1]
        role = self._iam.get_role(RoleName=role_name)["Role"]
        if not trusts_service(role["AssumeRolePolicyDocument"], LAMBDA_SERVICE):
            raise RoleNotAssumable(CANNOT_ASSUME)
        c = self._sts.assume_role(
            RoleArn=key[0], RoleSessionName=key[1], DurationSeconds=self._seconds
        )["Credentials"]
        issued = _Issued(
            {
                "AWS_ACCESS_KEY_ID": c["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
                "AWS_SESSION_TOKEN": c["SessionToken"],
            },
            c["Expiration"].timestamp(),
        )
        with self._mutex:
            if generation == self._generation:
                self._issued[key] = issued
        return issued.env

    def forget(self) -> None:
        with self._mutex:
            self._issued.clear()
            self._generation += 1
