"""Every policy pocctl generates: least privilege, linted by parliament, sufficient and no more.

The documents come from pocctl's own code (managed_policy_documents, Role.desired, the queue
policy, the probe queue policy), built on a Context whose account the embedded AWS answers.
Sufficiency is checked with a small IAM evaluator (Allow statements; Action and Resource with
IAM's ``*`` and ``?`` wildcards; actions case-insensitive) against every AWS call each role's
principal makes: the handler's own calls (read from the handler's source), Lambda's pollers,
Lambda's logging, and API Gateway's integration.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import ROOT

from pocctl import arns
from pocctl.resources import iam, sqs
from pocctl.resources.base import Context, Target

ACCOUNT, REGION = "123456789012", "us-east-1"
# A stream's label is a timestamp chosen by DynamoDB when the stream is enabled.
STREAM_LABEL = "2026-01-01T00:00:00.000"
# Lambda names a log stream per execution environment: date, version, random id.
LOG_STREAM = "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef"

MANAGED = ("write_dynamodb", "read_sqs", "sns_publish", "streams_read")
ROLES = ("lambda1", "lambda2", "apigateway")

# Granted but used by no call below: the lab's own policies have them (Task 1), and issue 2
# keeps at least the lab's actions. Each is read-only and scoped as tightly as IAM allows.
LAB_EXTRAS = {
    "dynamodb:DescribeTable": "in the lab's Lambda-Write-DynamoDB; store_order never calls it",
    "sns:GetTopicAttributes": "in the lab's Lambda-SNS-Publish; notify_order never calls it",
    "sns:ListTopics": "in the lab's Lambda-SNS-Publish; notify_order never calls it",
}
# Attached only when config.yaml asks (api.cloudwatch_logs_policy: true), never by default: an
# AWS-managed policy whose content is AWS's (read and write on every log group of the account).
AWS_MANAGED_EXTRAS = {
    "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs": (
        "the lab attaches it to APIGateway-SQS (Task 1, role 3) for API Gateway's execution logs"
    ),
}
CLOUDWATCH_POLICY = next(iter(AWS_MANAGED_EXTRAS))
# Resource patterns with a wildcard, and why no exact ARN can be written.
WILDCARDS = {
    f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders/stream/*": (
        "the stream's label (a timestamp) changes every time the stream is re-enabled"
    ),
    f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/POC-Lambda-1:*": (
        "Lambda names the function's log streams itself, one per execution environment"
    ),
    f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/POC-Lambda-2:*": (
        "Lambda names the function's log streams itself, one per execution environment"
    ),
    "*": "only for actions that support no resource-level permission (iam.NO_RESOURCE_LEVEL)",
}
# parliament findings that are not problems, by (document kind, issue, detail) → why.
PARLIAMENT_SUPPRESSED = {
    ("trust", "MALFORMED", "Statement contains neither Resource nor NotResource"): (
        "a trust policy is the role's own resource policy: IAM refuses a Resource element in it "
        "(parliament lints every document as an identity policy)"
    ),
}


@pytest.fixture(scope="module")
def ctx(embedded_server: Any) -> Context:
    """Only reads the account from the embedded AWS: no reset needed, one per module."""
    from pocctl.aws import Aws
    from pocctl.config import parse

    c = Context(Target(parse(""), Aws(region=REGION, endpoint_url=embedded_server.endpoint_url)))
    assert c.account == ACCOUNT  # answered by the embedded AWS
    return c


def _role(ctx: Context, field: str) -> iam.Role:
    return next(
        r for r in iam.resources(ctx.cfg) if isinstance(r, iam.Role) and r.field_name == field
    )


def generated(ctx: Context, kind: str, key: str) -> dict[str, Any]:
    """One document pocctl generates, by kind (managed, inline, trust, queue, probe)."""
    from pocctl.orders import probe_queue_policy

    if kind == "managed":
        return iam.managed_policy_documents(ctx)[key]
    if kind in ("inline", "trust"):
        return _role(ctx, key).desired(ctx)[kind]
    if kind == "queue":
        return sqs.order_queue_policy(ctx)
    assert kind == "probe"
    return probe_queue_policy(arns.queue(ctx, "pocctl-probe-0123456789ab"), arns.topic(ctx))


DOCUMENTS = (
    [("managed", k) for k in MANAGED]
    + [("inline", r) for r in ROLES]
    + [("trust", r) for r in ROLES]
    + [("queue", "orders"), ("probe", "probe")]
)
IDENTITY = [d for d in DOCUMENTS if d[0] in ("managed", "inline")]


def _list(v: str | list[str]) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [doc["Statement"]] if isinstance(doc["Statement"], dict) else doc["Statement"]


# -- an IAM evaluator, just what these documents use ----------------------------------------------


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's matching: ``*`` any run of characters (``/`` and ``:`` too), ``?`` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def allows(docs: list[dict[str, Any]], action: str, resource: str) -> bool:
    for st in (s for d in docs for s in statements(d)):
        # The evaluator knows no Deny, NotAction, NotResource or Condition: refuse, not guess.
        assert st["Effect"] == "Allow" and set(st) <= {"Sid", "Effect", "Action", "Resource"}, st
        if any(wildcard_match(a, action, ignore_case=True) for a in _list(st["Action"])) and any(
            wildcard_match(r, resource) for r in _list(st["Resource"])
        ):
            return True
    return False


def grants(docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (a, r)
        for d in docs
        for st in statements(d)
        for a in _list(st["Action"])
        for r in _list(st["Resource"])
    }


def test_the_evaluator_matches_like_iam() -> None:
    doc = {
        "Statement": [
            {"Effect": "Allow", "Action": "SQS:Send*", "Resource": "arn:aws:sqs:*:1:q?"},
        ]
    }
    assert allows([doc], "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q1")
    assert not allows([doc], "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q12")
    assert not allows([doc], "sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:1:q1")
    assert not allows([doc], "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:Q1")  # ARNs: case counts
    assert wildcard_match("a:*", "a:b/c:d") and not wildcard_match("a:*", "a")


# -- what each principal really calls -------------------------------------------------------------


@dataclass(frozen=True)
class Need:
    action: str
    resource: str
    who: str


def handler_calls(module: str) -> set[str]:
    """IAM actions of every AWS call in handlers/<module>.py, read from its source: each
    ``<x>.<operation>(...)`` whose name is an operation of a service the module makes a client
    of (``boto3.client("...")``)."""
    import botocore.session
    from botocore import xform_name

    tree = ast.parse((ROOT / "handlers" / f"{module}.py").read_text())
    services = {
        n.args[0].value
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == "client"
        and n.args
        and isinstance(n.args[0], ast.Constant)
    }
    session = botocore.session.get_session()
    actions = set()
    for service in services:
        model = session.get_service_model(service)
        ops = {xform_name(op): op for op in model.operation_names}
        prefix = model.signing_name  # the IAM prefix: dynamodb, sns
        for n in ast.walk(tree):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ops:
                actions.add(f"{prefix}:{ops[n.func.attr]}")
    return actions


@pytest.mark.parametrize("module,role", [("store_order", "lambda1"), ("notify_order", "lambda2")])
def test_every_call_in_the_handlers_source_is_listed_below(module: str, role: str) -> None:
    assert handler_calls(module) == {n.action for n in needs()[role] if n.who == "handler"}


def sar_arn(prefix: str, resource_type: str, **names: str) -> str:
    """An ARN as the Service Authorization Reference (parliament's copy) spells that resource
    type: what IAM evaluates a request against, written without pocctl's own helpers."""
    service = next(s for s in _iam_definition() if s["prefix"] == prefix)
    [template] = [r["arn"] for r in service["resources"] if r["resource"] == resource_type]
    values = {"Partition": "aws", "Region": REGION, "Account": ACCOUNT, **names}
    arn = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], template)
    return arn


def _logging(function: str) -> list[Need]:
    """CreateLogGroup in both forms the references give: the SAR's log-group ARN, and the one
    CloudWatch Logs' guide tells to use in IAM policies (with ``:*``). pocctl's policy must work
    whichever IAM evaluates."""
    group = f"/aws/lambda/{function}"
    group_arn = sar_arn("logs", "log-group", LogGroupName=group)
    stream = sar_arn("logs", "log-stream", LogGroupName=group, LogStreamName=LOG_STREAM)
    who = f"Lambda's logging for {function}"
    return [
        Need("logs:CreateLogGroup", group_arn, f"{who} (the SAR's log-group ARN)"),
        Need("logs:CreateLogGroup", f"{group_arn}:*", f"{who} (CloudWatch Logs' IAM form)"),
        Need("logs:CreateLogStream", stream, who),
        Need("logs:PutLogEvents", stream, who),
    ]


def needs() -> dict[str, list[Need]]:
    """Every (action, resource) each role is used for, by role field (the lab's names)."""
    queue = sar_arn("sqs", "queue", QueueName="POC-Queue")
    stream = sar_arn("dynamodb", "stream", TableName="orders", StreamLabel=STREAM_LABEL)
    sqs_poller = "Lambda's SQS poller (mapping.lambda1)"
    stream_poller = "Lambda's stream poller (mapping.lambda2)"
    return {
        "lambda1": [
            Need("dynamodb:PutItem", sar_arn("dynamodb", "table", TableName="orders"), "handler"),
            *(
                Need(f"sqs:{a}", queue, sqs_poller)
                for a in (
                    "ReceiveMessage",
                    "DeleteMessage",
                    "GetQueueAttributes",
                    "ChangeMessageVisibility",
                )
            ),
            *_logging("POC-Lambda-1"),
        ],
        "lambda2": [
            Need("sns:Publish", sar_arn("sns", "topic", TopicName="POC-Topic"), "handler"),
            *(
                Need(f"dynamodb:{a}", stream, stream_poller)
                for a in ("DescribeStream", "GetShardIterator", "GetRecords")
            ),
            Need("dynamodb:ListStreams", "*", stream_poller),  # no resource-level permission
            Need(
                "sqs:SendMessage",
                sar_arn("sqs", "queue", QueueName="POC-Lambda-2-Failures"),
                "the stream mapping's on-failure destination",
            ),
            *_logging("POC-Lambda-2"),
        ],
        "apigateway": [Need("sqs:SendMessage", queue, "API Gateway's SQS integration")],
    }


def test_the_stream_arn_is_the_one_in_the_brief() -> None:
    assert sar_arn("dynamodb", "stream", TableName="orders", StreamLabel=STREAM_LABEL) == (
        "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000"
    )


def role_documents(ctx: Context, role: str) -> list[dict[str, Any]]:
    """The role's inline policy and every pocctl-managed policy it attaches."""
    want = _role(ctx, role).desired(ctx)
    by_arn = {
        arns.policy(ctx, getattr(ctx.cfg.iam.policies, f)): doc
        for f, doc in iam.managed_policy_documents(ctx).items()
    }
    attached = [a for a in want["attached"] if a not in AWS_MANAGED_EXTRAS]
    assert set(attached) <= set(by_arn), attached
    return [want["inline"], *(by_arn[a] for a in attached)]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_allows_every_call_made_with_it(ctx: Context, role: str) -> None:
    docs = role_documents(ctx, role)
    missing = [n for n in needs()[role] if not allows(docs, n.action, n.resource)]
    assert not missing


@pytest.mark.parametrize("role", ROLES)
def test_each_role_grants_nothing_that_no_call_needs(ctx: Context, role: str) -> None:
    role_needs = needs()[role]
    unused = sorted(
        (action, resource)
        for action, resource in grants(role_documents(ctx, role))
        if action not in LAB_EXTRAS
        and not any(
            wildcard_match(action, n.action, ignore_case=True)
            and wildcard_match(resource, n.resource)
            for n in role_needs
        )
    )
    assert not unused
    # Every wildcard in a resource is one the table above explains.
    for _, resource in grants(role_documents(ctx, role)):
        assert not set(resource) & set("*?") or resource in WILDCARDS, resource
    # No AWS-managed policy by default: everything the role may do is in the documents above.
    assert not set(_role(ctx, role).desired(ctx)["attached"]) & set(AWS_MANAGED_EXTRAS)


def test_no_role_attaches_an_aws_managed_policy_by_default(ctx: Context) -> None:
    for role in ROLES:
        attached = _role(ctx, role).desired(ctx)["attached"]
        assert not [a for a in attached if ":iam::aws:policy/" in a], (role, attached)
    assert _role(ctx, "apigateway").desired(ctx)["attached"] == []


def test_the_api_role_attaches_the_cloudwatch_policy_only_when_config_asks(ctx: Context) -> None:
    from pocctl.config import parse

    on = ctx.with_cfg(parse("api:\n  cloudwatch_logs_policy: true\n"))
    assert _role(on, "apigateway").desired(on)["attached"] == [CLOUDWATCH_POLICY]
    # Nothing else changes with it: the same inline policies, trusts and other roles.
    for role in ROLES:
        want_on, want_off = _role(on, role).desired(on), _role(ctx, role).desired(ctx)
        assert {**want_on, "attached": []} == {**want_off, "attached": []}
        assert role == "apigateway" or want_on == want_off


def test_the_cloudwatch_policy_is_attached_and_detached_by_up(ws) -> None:  # type: ignore[no-untyped-def]
    """On a live stack: off by default, attached when the key is turned on, detached when it is
    turned off again; the role is never re-made (same RoleId)."""
    iam_client = ws.client("iam")

    def attached() -> list[str]:
        got = iam_client.list_attached_role_policies(RoleName="APIGateway-SQS")
        return [p["PolicyArn"] for p in got["AttachedPolicies"]]

    assert ws.cli("iam").exit_code == 0
    role_id = iam_client.get_role(RoleName="APIGateway-SQS")["Role"]["RoleId"]
    assert attached() == []
    ws.write_config("api:\n  cloudwatch_logs_policy: true\n")
    r = ws.cli("iam")
    assert r.exit_code == 0, r.output
    assert attached() == [CLOUDWATCH_POLICY]
    ws.write_config("api:\n  cloudwatch_logs_policy: false\n")
    assert ws.cli("iam").exit_code == 0
    assert attached() == []
    assert iam_client.get_role(RoleName="APIGateway-SQS")["Role"]["RoleId"] == role_id


def test_log_permissions_reach_no_other_log_group(ctx: Context) -> None:
    """Both forms of CreateLogGroup and the ``:*`` of the stream actions stop at the function's
    own group: not another function whose name starts the same, not another group's streams."""
    for role, function in (("lambda1", "POC-Lambda-1"), ("lambda2", "POC-Lambda-2")):
        docs = role_documents(ctx, role)
        for other in (f"/aws/lambda/{function}0", "/aws/lambda/POC-Lambda-3", "/aws/other"):
            group = sar_arn("logs", "log-group", LogGroupName=other)
            stream = sar_arn("logs", "log-stream", LogGroupName=other, LogStreamName=LOG_STREAM)
            assert not allows(docs, "logs:CreateLogGroup", group)
            assert not allows(docs, "logs:CreateLogGroup", f"{group}:*")
            assert not allows(docs, "logs:PutLogEvents", stream)
            assert not allows(docs, "logs:CreateLogStream", stream)


def test_every_exception_is_used_and_explained(ctx: Context) -> None:
    granted = {a for r in ROLES for a, _ in grants(role_documents(ctx, r))}
    assert set(LAB_EXTRAS) <= granted and all(LAB_EXTRAS.values())
    resources = {res for r in ROLES for _, res in grants(role_documents(ctx, r))}
    assert set(WILDCARDS) <= resources and all(WILDCARDS.values())
    assert all(iam.NO_RESOURCE_LEVEL.values())


# -- "Resource": "*" ------------------------------------------------------------------------------


@functools.cache
def _iam_definition() -> list[dict[str, Any]]:
    import parliament

    return json.loads((Path(parliament.__file__).parent / "iam_definition.json").read_text())


def _resource_types(action: str) -> list[str]:
    """The resource types the Service Authorization Reference lists for an action (from
    parliament's copy of it); [""] means none: only "*" is accepted."""
    data = _iam_definition()
    prefix, name = action.split(":")
    service = next(s for s in data if s["prefix"] == prefix)
    privilege = next(p for p in service["privileges"] if p["privilege"] == name)
    return [r["resource_type"] for r in privilege["resource_types"]]


@pytest.mark.parametrize("kind,key", IDENTITY, ids=[f"{k}-{n}" for k, n in IDENTITY])
def test_resource_star_only_for_actions_without_resource_level_permission(
    ctx: Context, kind: str, key: str
) -> None:
    for st in statements(generated(ctx, kind, key)):
        actions = _list(st["Action"])
        assert not any("*" in a for a in actions), st  # no action wildcards either
        if "*" in _list(st["Resource"]):
            assert _list(st["Resource"]) == ["*"], st  # "*" alone, on its own statement
            assert set(actions) <= set(iam.NO_RESOURCE_LEVEL), st


@pytest.mark.parametrize("action", sorted(iam.NO_RESOURCE_LEVEL))
def test_the_listed_exceptions_really_have_no_resource_level_permission(action: str) -> None:
    assert _resource_types(action) == [""]


# -- parliament -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,key", DOCUMENTS, ids=[f"{k}-{n}" for k, n in DOCUMENTS])
def test_parliament_finds_nothing(ctx: Context, kind: str, key: str) -> None:
    from parliament import analyze_policy_string

    doc = generated(ctx, kind, key)
    findings = analyze_policy_string(json.dumps(doc), include_community_auditors=True).findings
    left = [
        (f.issue, f.detail)
        for f in findings
        if (kind, f.issue, f.detail) not in PARLIAMENT_SUPPRESSED
    ]
    assert not left, doc


def test_every_parliament_suppression_is_still_needed(ctx: Context) -> None:
    from parliament import analyze_policy_string

    seen = {
        (kind, f.issue, f.detail)
        for kind, key in DOCUMENTS
        for f in analyze_policy_string(json.dumps(generated(ctx, kind, key))).findings
    }
    assert set(PARLIAMENT_SUPPRESSED) <= seen and all(PARLIAMENT_SUPPRESSED.values())


# -- resource policies ----------------------------------------------------------------------------


def test_the_queue_policy_admits_exactly_the_two_roles(ctx: Context) -> None:
    doc = sqs.order_queue_policy(ctx)
    queue = arns.queue(ctx, ctx.cfg.queue.name)
    by_principal: dict[str, set[str]] = {}
    for st in statements(doc):
        assert st["Effect"] == "Allow" and "Condition" not in st and "NotPrincipal" not in st
        assert set(st["Principal"]) == {"AWS"}, st  # roles only: no "*", no service, no account
        assert _list(st["Resource"]) == [queue]
        for p in _list(st["Principal"]["AWS"]):
            by_principal.setdefault(p, set()).update(_list(st["Action"]))
    roles = ctx.cfg.iam.roles
    api, lambda1 = arns.role(ctx, roles.apigateway), arns.role(ctx, roles.lambda1)
    assert set(by_principal) == {api, lambda1}
    # ...and each for just what it needs on the queue (the same calls as its identity policy).
    for role, arn in (("apigateway", api), ("lambda1", lambda1)):
        wanted = {n.action for n in needs()[role] if n.resource == queue}
        assert by_principal[arn] == wanted


def test_the_queue_is_made_with_that_policy(ws, ctx: Context) -> None:  # type: ignore[no-untyped-def]
    r = ws.cli("queue")
    assert r.exit_code == 0, r.output
    client = ws.client("sqs")
    url = client.get_queue_url(QueueName="POC-Queue")["QueueUrl"]
    policy = client.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]
    assert json.loads(policy["Policy"]) == sqs.order_queue_policy(ctx)


def test_the_probe_queue_admits_only_the_topic(ctx: Context, ws) -> None:  # type: ignore[no-untyped-def]
    """The policy Probe.open really sends: SendMessage from SNS, only when the sender is the
    topic (aws:SourceArn); nothing else, no one else."""
    from pocctl.orders import Probe

    assert ws.cli("topic").exit_code == 0
    topic = arns.topic(ctx)
    probe = Probe(ctx, topic)
    probe.open()
    try:
        client = ws.client("sqs")
        attrs = client.get_queue_attributes(QueueUrl=probe.url, AttributeNames=["Policy"])
        doc = json.loads(attrs["Attributes"]["Policy"])
    finally:
        probe.close()
    [st] = statements(doc)
    assert st["Effect"] == "Allow"
    assert st["Principal"] == {"Service": "sns.amazonaws.com"}
    assert _list(st["Action"]) == ["sqs:SendMessage"]
    assert _list(st["Resource"]) == [arns.queue(ctx, probe.name)]
    assert st["Condition"] == {"ArnEquals": {"aws:SourceArn": topic}}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_trusts_only_its_own_service(ctx: Context, role: str) -> None:
    [st] = statements(_role(ctx, role).desired(ctx)["trust"])
    service = "apigateway.amazonaws.com" if role == "apigateway" else "lambda.amazonaws.com"
    assert st == {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
