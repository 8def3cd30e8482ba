"""Changes made behind pocctl's back (as in the console): `plan` shows them as updates with
old → new, read-only; `status --json` marks the resource drifted with that change; `up` puts it
back; a second `up` changes nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

ACCOUNT = "123456789012"
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:POC-Queue"
READ_SQS = f"arn:aws:iam::{ACCOUNT}:policy/Lambda-Read-SQS"
TEMPLATE = "Action=SendMessage&MessageBody=$util.urlEncode($input.body)"


def _queue_url(ws) -> str:  # type: ignore[no-untyped-def]
    return ws.client("sqs").get_queue_url(QueueName="POC-Queue")["QueueUrl"]


def _queue_attrs(ws) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return ws.client("sqs").get_queue_attributes(QueueUrl=_queue_url(ws), AttributeNames=["All"])[
        "Attributes"
    ]


def change_retention(ws) -> None:  # type: ignore[no-untyped-def]
    # moto's SetQueueAttributes drops a Policy it is not sent (tests/test_moto_pins.py).
    policy = _queue_attrs(ws)["Policy"]
    ws.client("sqs").set_queue_attributes(
        QueueUrl=_queue_url(ws),
        Attributes={"MessageRetentionPeriod": "86400", "Policy": policy},
    )


def retention_back(ws) -> None:  # type: ignore[no-untyped-def]
    attrs = _queue_attrs(ws)
    assert attrs["MessageRetentionPeriod"] == "345600"
    assert json.loads(attrs["Policy"])["Id"] == "POC-Queue-access"


def change_environment(ws) -> None:  # type: ignore[no-untyped-def]
    ws.client("lambda").update_function_configuration(
        FunctionName="POC-Lambda-1",
        Environment={"Variables": {"TABLE_NAME": "other", "DEBUG": "1"}},
    )


def environment_back(ws) -> None:  # type: ignore[no-untyped-def]
    c = ws.client("lambda").get_function(FunctionName="POC-Lambda-1")["Configuration"]
    assert c["Environment"]["Variables"] == {"TABLE_NAME": "orders", "PARTITION_KEY": "orderID"}


def change_runtime(ws) -> None:  # type: ignore[no-untyped-def]
    ws.client("lambda").update_function_configuration(
        FunctionName="POC-Lambda-2", Runtime="python3.12"
    )


def runtime_back(ws) -> None:  # type: ignore[no-untyped-def]
    c = ws.client("lambda").get_function(FunctionName="POC-Lambda-2")["Configuration"]
    assert c["Runtime"] == "python3.13"


def change_policy(ws) -> None:  # type: ignore[no-untyped-def]
    broad = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConsumeOrderQueue",
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ChangeMessageVisibility",
                ],
                "Resource": "*",
            }
        ],
    }
    ws.client("iam").create_policy_version(
        PolicyArn=READ_SQS, PolicyDocument=json.dumps(broad), SetAsDefault=True
    )


def policy_back(ws) -> None:  # type: ignore[no-untyped-def]
    iam = ws.client("iam")
    version = iam.get_policy(PolicyArn=READ_SQS)["Policy"]["DefaultVersionId"]
    doc = iam.get_policy_version(PolicyArn=READ_SQS, VersionId=version)["PolicyVersion"]
    assert doc["Document"]["Statement"][0]["Resource"] == QUEUE_ARN


def _method(ws) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    apigw = ws.client("apigateway")
    (api,) = apigw.get_rest_apis()["items"]
    root = next(i["id"] for i in apigw.get_resources(restApiId=api["id"])["items"])
    return api["id"], root


def change_integration(ws) -> None:  # type: ignore[no-untyped-def]
    # moto has no UpdateIntegration: put a new integration with another template (the console's
    # "Edit integration request" does the same), which also drops its integration responses.
    api, root = _method(ws)
    apigw = ws.client("apigateway")
    old = apigw.get_integration(restApiId=api, resourceId=root, httpMethod="POST")
    apigw.put_integration(
        restApiId=api,
        resourceId=root,
        httpMethod="POST",
        type="AWS",
        integrationHttpMethod="POST",
        uri=old["uri"],
        credentials=old["credentials"],
        requestParameters=old["requestParameters"],
        requestTemplates={"application/json": "Action=SendMessage&MessageBody=$input.body"},
        passthroughBehavior="NEVER",
    )


def integration_back(ws) -> None:  # type: ignore[no-untyped-def]
    api, root = _method(ws)
    integ = ws.client("apigateway").get_integration(
        restApiId=api, resourceId=root, httpMethod="POST"
    )
    assert integ["requestTemplates"] == {"application/json": TEMPLATE}
    assert set(integ["integrationResponses"]) == {"200", "400", "500"}


@dataclass
class Drift:
    change: Callable[..., None]
    key: str  # the resource's key in `status --json`
    row: str  # its row in `plan`
    shows: list[str]  # what `plan`, `status` and `up` say differs, old → new
    check: Callable[..., None]  # AWS has pocctl's values again


DRIFTS = {
    "queue attribute": Drift(
        change_retention,
        "queue.orders",
        "queue POC-Queue ",
        ["MessageRetentionPeriod: 86400 → 345600"],
        retention_back,
    ),
    "function environment": Drift(
        change_environment,
        "function.lambda1",
        "function POC-Lambda-1",
        [
            "environment.DEBUG: 1 → (absent)",
            "environment.PARTITION_KEY: (absent) → orderID",
            "environment.TABLE_NAME: other → orders",
        ],
        environment_back,
    ),
    "function runtime": Drift(
        change_runtime,
        "function.lambda2",
        "function POC-Lambda-2",
        ["runtime: python3.12 → python3.13"],
        runtime_back,
    ),
    "policy document": Drift(
        change_policy,
        "policy.read_sqs",
        "policy Lambda-Read-SQS",
        [f"document.Statement[0].Resource: * → {QUEUE_ARN}"],
        policy_back,
    ),
    "integration": Drift(
        change_integration,
        "api",
        "api POC-API",
        [
            "integration.requestTemplates.application/json: "
            f"Action=SendMessage&MessageBody=$input.body → {TEMPLATE}",
            "responses.200: (absent) → ",
        ],
        integration_back,
    ),
}


def _squeeze(text: str) -> str:
    """A table's cells folded over several rows, read back as one string."""
    return re.sub(r"[\s│┃]", "", text)


@pytest.mark.parametrize("name", list(DRIFTS))
def test_console_change_is_planned_marked_and_converged(stack, aws_calls, name: str) -> None:  # type: ignore[no-untyped-def]
    drift = DRIFTS[name]
    drift.change(stack)
    aws_calls.clear()

    plan = stack.cli("plan")
    assert plan.exit_code == 0, plan.output
    assert "0 to create, 1 to update, 17 unchanged" in plan.stdout
    (row,) = [line for line in plan.stdout.splitlines() if drift.row in line]
    assert "update" in row
    for shown in drift.shows:
        assert _squeeze(shown) in _squeeze(plan.stdout), shown

    report = json.loads(stack.cli("status", "--json").stdout)
    drifted = {r["key"]: r for r in report["resources"] if r["status"] != "exists"}
    assert list(drifted) == [drift.key]
    assert drifted[drift.key]["status"] == "drifted"
    changes = "; ".join(drifted[drift.key]["changes"])
    for shown in drift.shows:
        assert shown in changes
    assert aws_calls.mutating == [], "plan and status only read"

    up = stack.cli("up")
    assert up.exit_code == 0, up.output
    assert "0 created, 1 updated, 17 unchanged" in up.stdout
    for shown in drift.shows:
        assert _squeeze(shown) in _squeeze(up.stdout), shown
    drift.check(stack)

    aws_calls.clear()
    again = stack.cli("up")
    assert "0 created, 0 updated, 18 unchanged" in again.stdout
    assert aws_calls.mutating == []
    assert "0 to create, 0 to update, 18 unchanged" in stack.cli("plan").stdout
