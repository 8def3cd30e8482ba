"""The IAM policy evaluator (pocctl.local.iam_policy), case by case from AWS's IAM User Guide:
"Policy evaluation logic", "IAM JSON policy elements: Action / NotAction / Resource /
NotResource / Principal / Condition operators"."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pocctl.local.iam_authz import trusts_service
from pocctl.local.iam_policy import (
    ALLOW,
    DENY,
    Caller,
    Policy,
    Request,
    decide,
    evaluate,
    matches,
)

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/POC-Lambda-Role"
CALLER = Caller(ACCOUNT, ROLE, "POC-Lambda-1", "AROAEXAMPLE")
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:POC-Queue"


def policy(*statements: dict[str, Any]) -> Policy:
    return Policy.parse("test", {"Version": "2012-10-17", "Statement": list(statements)})


def req(action: str, resource: str, **context: str) -> Request:
    keys = {k.lower(): [v] for k, v in CALLER.context().items() for v in v}
    keys.update({k.lower(): [v] for k, v in context.items()})
    return Request(action, resource, CALLER, keys)


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_the_caller_is_named_as_aws_names_an_assumed_role_session() -> None:
    assert CALLER.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/POC-Lambda-Role/POC-Lambda-1"


def test_nothing_is_allowed_without_an_allow_implicit_deny() -> None:
    decision = evaluate([], req("dynamodb:Scan", TABLE))
    assert not decision.allowed and decision.denied_by == "implicit"


def test_an_explicit_deny_overrides_any_allow() -> None:
    """ "An explicit deny in any of the policies overrides the allow." (policy-eval-basics)"""
    granted = policy(allow("dynamodb:*", TABLE))
    denied = policy({"Effect": "Deny", "Action": "dynamodb:Scan", "Resource": "*"})
    assert evaluate([granted], req("dynamodb:Scan", TABLE)).allowed
    decision = evaluate([granted, denied], req("dynamodb:Scan", TABLE))
    assert not decision.allowed and decision.denied_by == "identity"
    assert evaluate([granted, denied], req("dynamodb:PutItem", TABLE)).allowed


def test_actions_match_case_insensitively_with_wildcards() -> None:
    p = [policy(allow(["DynamoDB:put*", "sqs:?eceiveMessage"]))]
    assert decide(p, req("dynamodb:PutItem", TABLE)) == ALLOW
    assert decide(p, req("sqs:ReceiveMessage", QUEUE)) == ALLOW
    assert decide(p, req("dynamodb:GetItem", TABLE)) is None
    assert decide(p, req("sqs:ReceiveMessages", QUEUE)) is None  # ? is exactly one character


def test_not_action_allows_every_other_action() -> None:
    """NotAction with Allow: "allows all ... actions except the ones listed" (NotAction page)."""
    p = [policy({"Effect": "Allow", "NotAction": "dynamodb:Scan", "Resource": "*"})]
    assert decide(p, req("dynamodb:PutItem", TABLE)) == ALLOW
    assert decide(p, req("dynamodb:Scan", TABLE)) is None


def test_resource_arns_match_segment_by_segment_case_sensitively() -> None:
    p = [policy(allow("dynamodb:*", "arn:aws:dynamodb:*:*:table/ord?rs"))]
    assert decide(p, req("dynamodb:PutItem", TABLE)) == ALLOW
    assert decide(p, req("dynamodb:PutItem", TABLE.replace("orders", "Orders"))) is None
    assert decide(p, req("dynamodb:PutItem", TABLE + "/index/i")) is None
    assert not matches("a.b", "axb")  # the pattern is literal but for * and ?
    p = [policy(allow("dynamodb:*", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/*"))]
    assert decide(p, req("dynamodb:Query", TABLE + "/index/by-date")) == ALLOW


def test_an_action_without_a_resource_type_needs_resource_star() -> None:
    """ListTables has no resource type (SAR): only "Resource": "*" covers it here."""
    scoped = [policy(allow("dynamodb:ListTables", f"arn:aws:dynamodb:*:{ACCOUNT}:table/*"))]
    assert decide(scoped, req("dynamodb:ListTables", "*")) is None
    assert decide([policy(allow("dynamodb:ListTables"))], req("dynamodb:ListTables", "*")) == ALLOW


def test_not_resource_covers_every_other_resource() -> None:
    p = [policy({"Effect": "Allow", "Action": "sqs:*", "NotResource": QUEUE})]
    assert decide(p, req("sqs:SendMessage", QUEUE + "-DLQ")) == ALLOW
    assert decide(p, req("sqs:SendMessage", QUEUE)) is None
    deny = policy({"Effect": "Deny", "Action": "sqs:*", "NotResource": QUEUE})
    granted = policy(allow("sqs:*"))
    assert decide([granted, deny], req("sqs:SendMessage", QUEUE)) == ALLOW
    assert decide([granted, deny], req("sqs:SendMessage", QUEUE + "-DLQ")) == DENY


def test_a_statement_without_resource_grants_nothing() -> None:
    assert (
        decide([policy({"Effect": "Allow", "Action": "*"})], req("sqs:SendMessage", QUEUE)) is None
    )


@pytest.mark.parametrize(
    ("condition", "context", "holds"),
    [
        # A key absent from the request context: false; for a negated operator, true; with
        # ...IfExists, true (condition operators page).
        ({"StringEquals": {"aws:SourceAccount": ACCOUNT}}, {}, False),
        ({"StringEquals": {"aws:SourceAccount": ACCOUNT}}, {"aws:SourceAccount": ACCOUNT}, True),
        ({"StringNotEquals": {"aws:SourceAccount": ACCOUNT}}, {}, True),
        ({"StringEqualsIfExists": {"aws:SourceAccount": "999"}}, {}, True),
        ({"StringEqualsIfExists": {"aws:SourceAccount": "999"}}, {"aws:SourceAccount": "1"}, False),
        ({"Null": {"aws:SourceArn": "true"}}, {}, True),
        ({"Null": {"aws:SourceArn": "false"}}, {}, False),
        # Several values of one key OR together (multi-value conditions page).
        ({"StringLike": {"aws:PrincipalArn": ["arn:aws:iam::1:*", "*:role/POC-*"]}}, {}, True),
        # The ARN operators pocctl's probe queue policy uses (pocctl/orders.py).
        (
            {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:1:t"}},
            {"aws:SourceArn": "arn:aws:sns:us-east-1:1:t"},
            True,
        ),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:1:t"}},
            {"aws:SourceArn": "arn:aws:sns:eu-west-1:1:t"},
            True,
        ),
        (
            {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:1:t"}},
            {"aws:SourceArn": "arn:aws:sns:us-east-1:1:u"},
            False,
        ),
        ({"ArnNotLike": {"aws:SourceArn": "arn:aws:sns:*:1:t"}}, {}, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {}, True),  # plain HTTP here
        # Operators AND together.
        (
            {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}, "Null": {"aws:SourceArn": "false"}},
            {},
            False,
        ),
    ],
)
def test_conditions(condition: dict[str, Any], context: dict[str, str], holds: bool) -> None:
    p = [policy(allow("sqs:SendMessage", QUEUE, Condition=condition))]
    assert (decide(p, req("sqs:SendMessage", QUEUE, **context)) == ALLOW) is holds


def test_a_condition_it_cannot_evaluate_never_allows_and_always_denies() -> None:
    unknown = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}
    granted = policy(allow("sqs:SendMessage", QUEUE, Condition=unknown))
    assert decide([granted], req("sqs:SendMessage", QUEUE)) is None
    deny = {"Effect": "Deny", "Action": "sqs:*", "Resource": "*", "Condition": unknown}
    assert decide([policy(allow("sqs:*")), policy(deny)], req("sqs:SendMessage", QUEUE)) == DENY


def _queue_policy(effect: str, principal: Any, action: str = "sqs:SendMessage") -> Policy:
    return policy({"Effect": effect, "Principal": principal, "Action": action, "Resource": QUEUE})


def test_in_one_account_a_resource_policy_allow_suffices() -> None:
    """ "If either the identity-based policy or the resource-based policy within the same
    account allows the request and the other doesn't, the request is still allowed." """
    queue = _queue_policy("Allow", {"AWS": ROLE})  # a role ARN covers each of its sessions
    assert evaluate([], req("sqs:SendMessage", QUEUE), [queue]).allowed
    assert not evaluate([], req("sqs:DeleteMessage", QUEUE), [queue]).allowed
    session = _queue_policy("Allow", {"AWS": CALLER.arn})
    assert evaluate([], req("sqs:SendMessage", QUEUE), [session]).allowed
    other = _queue_policy("Allow", {"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"})
    assert not evaluate([], req("sqs:SendMessage", QUEUE), [other]).allowed
    service = _queue_policy("Allow", {"Service": "sns.amazonaws.com"})
    assert not evaluate([], req("sqs:SendMessage", QUEUE), [service]).allowed


def test_an_account_principal_grants_nothing_by_itself_but_its_deny_covers_the_role() -> None:
    account = _queue_policy("Allow", {"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
    assert not evaluate([], req("sqs:SendMessage", QUEUE), [account]).allowed
    deny = _queue_policy("Deny", {"AWS": ACCOUNT})
    decision = evaluate([policy(allow("sqs:*"))], req("sqs:SendMessage", QUEUE), [deny])
    assert not decision.allowed and decision.denied_by == "resource"


def test_a_resource_policy_deny_beats_an_identity_allow() -> None:
    deny = _queue_policy("Deny", "*")
    decision = evaluate([policy(allow("sqs:*"))], req("sqs:SendMessage", QUEUE), [deny])
    assert not decision.allowed and decision.denied_by == "resource"


def test_documents_as_iam_stores_them() -> None:
    from urllib.parse import quote

    doc = {"Version": "2012-10-17", "Statement": allow("sqs:*")}  # one statement, not a list
    for stored in (doc, json.dumps(doc), quote(json.dumps(doc))):
        assert decide([Policy.parse("p", stored)], req("sqs:SendMessage", QUEUE)) == ALLOW


def _trust(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_a_trust_policy_must_let_the_service_assume_the_role() -> None:
    lam = {
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    assert trusts_service(_trust(lam), "lambda.amazonaws.com")
    assert not trusts_service(_trust(lam), "apigateway.amazonaws.com")
    assert not trusts_service(_trust(), "lambda.amazonaws.com")
    listed = dict(lam, Principal={"Service": ["apigateway.amazonaws.com", "lambda.amazonaws.com"]})
    assert trusts_service(_trust(listed), "lambda.amazonaws.com")
    denied = dict(lam, Effect="Deny")
    assert not trusts_service(_trust(lam, denied), "lambda.amazonaws.com")
    conditional = dict(lam, Condition={"StringEquals": {"aws:SourceAccount": ACCOUNT}})
    assert not trusts_service(_trust(conditional), "lambda.amazonaws.com")


@pytest.mark.parametrize(
    "pattern",
    [
        "*",
        "arn:aws:sqs:*",
        "arn:aws:sqs:*:*:POC-*",
        "arn:aws:sqs:us-east-?:123456789012:q",
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:*",
        "arn:aws:dynamodb:*:*:table/orders/stream/*",
        "arn:aws:s3:::bucket.name/*",
    ],
)
def test_a_statement_matches_resources_as_each_pattern_would(pattern: str) -> None:
    """The statement's one compiled regex agrees with matching its patterns one by one."""
    from pocctl.local.iam_policy import resource_matches

    values = [
        "*",
        QUEUE,
        QUEUE.replace("us-east-1", "us-east-2"),
        f"arn:aws:sqs:us-east-1:{ACCOUNT}:q",
        "arn:aws:sqs:a:b:c:POC-x",
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/f:log-stream:s",
        f"{TABLE}/stream/2026",
        "arn:aws:s3:::bucketxname/k",
        "arn:aws:s3:::bucket.name/k",
    ]
    st = policy(allow("sqs:*", pattern)).statements[0]
    for value in values:
        assert st.covers_resource(value) is resource_matches(pattern, value), value
