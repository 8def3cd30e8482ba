"""IAM is read through one GetAccountAuthorizationDetails per run (pocctl/resources/iam.py): a
no-op `up` makes one IAM read for the 7 IAM resources, drift made out of band is still seen and
repaired, a refused call falls back to the per-resource reads, and a find after an IAM change in
the same run sees the change. Calls are counted on the embedded AWS server (``aws_calls``)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import botocore.session
import pytest
from support.faults import Faults

from pocctl import arns
from pocctl.aws import Aws
from pocctl.config import parse
from pocctl.engine import UNCHANGED, Engine
from pocctl.lab import TASKS
from pocctl.resources import iam
from pocctl.resources.base import Context, Target
from pocctl.state import State

ACCOUNT = "123456789012"
REGION = "us-east-1"
SNAPSHOT = "GetAccountAuthorizationDetails"
IAM_OPS = frozenset(botocore.session.get_session().get_service_model("iam").operation_names)
# What the 7 IAM resources cost when looked up one by one (the fallback, and pocctl before).
PER_RESOURCE_READS = Counter(
    {
        "GetPolicy": 4,
        "GetPolicyVersion": 4,
        "GetRole": 3,
        "ListAttachedRolePolicies": 3,
        "ListRolePolicies": 3,
        "GetRolePolicy": 3,
    }
)
DENIED = (
    f"User: arn:aws:iam::{ACCOUNT}:user/lab is not authorized to perform: "
    "iam:GetAccountAuthorizationDetails"
)


def policy_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:policy/{name}"


def iam_reads(aws_calls: Any) -> Counter[str]:
    return Counter(op for op in aws_calls.reads if op in IAM_OPS)


def iam_mutating(aws_calls: Any) -> list[str]:
    return sorted(op for op in aws_calls.mutating if op in IAM_OPS)


def default_document(ws: Any, name: str) -> dict[str, Any]:
    c = ws.client("iam")
    version = c.get_policy(PolicyArn=policy_arn(name))["Policy"]["DefaultVersionId"]
    return c.get_policy_version(PolicyArn=policy_arn(name), VersionId=version)["PolicyVersion"][
        "Document"
    ]


def _ctx(endpoint: str) -> Context:
    return Context(Target(parse(""), Aws(region=REGION, endpoint_url=endpoint)))


def _refuse_snapshot(ctx: Context, code: str = "AccessDenied") -> list[int]:
    """Make this context's IAM client answer GetAccountAuthorizationDetails with ``code``, as
    for a user without iam:GetAccountAuthorizationDetails; returns a list that counts refusals."""
    from botocore.awsrequest import AWSResponse

    refused: list[int] = []

    def deny(**_: Any) -> Any:
        refused.append(1)
        parsed = {
            "Error": {"Code": code, "Message": DENIED},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }
        return AWSResponse("http://127.0.0.1/", 403, {}, None), parsed

    ctx.client("iam").meta.events.register_first(f"before-call.iam.{SNAPSHOT}", deny)
    return refused


# -- (1) one IAM read for a no-op `up` -------------------------------------------------------------


@pytest.mark.parametrize("mode", [[], ["--sequential"]], ids=["parallel", "sequential"])
def test_a_no_op_up_reads_iam_once(stack, aws_calls, mode: list[str]) -> None:  # type: ignore[no-untyped-def]
    r = stack.cli("up", *mode)
    assert r.exit_code == 0, r.output
    assert "0 created, 0 updated, 18 unchanged" in r.stdout
    assert iam_reads(aws_calls) == Counter({SNAPSHOT: 1})
    assert aws_calls.mutating == []


@pytest.mark.parametrize("command", [["plan"], ["status", "--json"]])
def test_plan_and_status_read_iam_once(stack, aws_calls, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    r = stack.cli(*command)
    assert r.exit_code == 0, r.output
    assert iam_reads(aws_calls) == Counter({SNAPSHOT: 1})
    assert aws_calls.mutating == []


# -- (2) drift made out of band is seen through the snapshot and repaired ----------------------


def broaden_policy(ws: Any) -> None:
    doc = default_document(ws, "Lambda-Write-DynamoDB")
    doc["Statement"][0]["Resource"] = "*"
    ws.client("iam").create_policy_version(
        PolicyArn=policy_arn("Lambda-Write-DynamoDB"),
        PolicyDocument=json.dumps(doc),
        SetAsDefault=True,
    )


def policy_back(ws: Any) -> None:
    doc = default_document(ws, "Lambda-Write-DynamoDB")
    assert doc["Statement"][0]["Resource"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders"


def detach_policy(ws: Any) -> None:
    ws.client("iam").detach_role_policy(
        RoleName="Lambda-SQS-DynamoDB", PolicyArn=policy_arn("Lambda-Read-SQS")
    )


def attached_back(ws: Any) -> None:
    got = ws.client("iam").list_attached_role_policies(RoleName="Lambda-SQS-DynamoDB")
    assert {p["PolicyName"] for p in got["AttachedPolicies"]} == {
        "Lambda-Read-SQS",
        "Lambda-Write-DynamoDB",
    }


def broaden_inline(ws: Any) -> None:
    c = ws.client("iam")
    doc = c.get_role_policy(RoleName="APIGateway-SQS", PolicyName="pocctl-inline")
    statement = doc["PolicyDocument"]["Statement"][0]
    c.put_role_policy(
        RoleName="APIGateway-SQS",
        PolicyName="pocctl-inline",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{**statement, "Resource": "*"}]}
        ),
    )


def inline_back(ws: Any) -> None:
    doc = ws.client("iam").get_role_policy(RoleName="APIGateway-SQS", PolicyName="pocctl-inline")
    assert doc["PolicyDocument"]["Statement"][0]["Resource"] == (
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:POC-Queue"
    )


def change_trust(ws: Any) -> None:
    trust = iam.trust_policy("ec2.amazonaws.com")
    ws.client("iam").update_assume_role_policy(
        RoleName="Lambda-DynamoDBStreams-SNS", PolicyDocument=json.dumps(trust)
    )


def trust_back(ws: Any) -> None:
    role = ws.client("iam").get_role(RoleName="Lambda-DynamoDBStreams-SNS")["Role"]
    principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "lambda.amazonaws.com"}


@dataclass
class Drift:
    change: Callable[[Any], None]
    key: str  # the resource's key in `status --json`
    shows: str  # what `status` says differs
    repair: list[str]  # the IAM calls `up` makes to put it back
    check: Callable[[Any], None]


DRIFTS = {
    "policy document": Drift(
        broaden_policy,
        "policy.write_dynamodb",
        f"document.Statement[0].Resource: * → arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders",
        ["CreatePolicyVersion"],
        policy_back,
    ),
    "detached policy": Drift(
        detach_policy, "role.lambda1", "attached: ", ["AttachRolePolicy"], attached_back
    ),
    "inline policy": Drift(
        broaden_inline,
        "role.apigateway",
        f"inline.Statement[0].Resource: * → arn:aws:sqs:{REGION}:{ACCOUNT}:POC-Queue",
        ["PutRolePolicy"],
        inline_back,
    ),
    "trust policy": Drift(
        change_trust,
        "role.lambda2",
        "trust.Statement[0].Principal.Service: ec2.amazonaws.com → lambda.amazonaws.com",
        ["UpdateAssumeRolePolicy"],
        trust_back,
    ),
}


def _drift_is_seen_and_repaired(ws: Any, aws_calls: Any, drift: Drift) -> None:
    drift.change(ws)
    aws_calls.clear()

    report = json.loads(ws.cli("status", "--json").stdout)
    drifted = {r["key"]: r for r in report["resources"] if r["status"] != "exists"}
    assert list(drifted) == [drift.key]
    assert drifted[drift.key]["status"] == "drifted"
    assert drift.shows in "; ".join(drifted[drift.key]["changes"])
    plan = ws.cli("plan")
    assert plan.exit_code == 0, plan.output
    assert "0 to create, 1 to update, 17 unchanged" in plan.stdout
    assert aws_calls.mutating == []

    aws_calls.clear()
    up = ws.cli("up")
    assert up.exit_code == 0, up.output
    assert "0 created, 1 updated, 17 unchanged" in up.stdout
    assert iam_mutating(aws_calls) == drift.repair
    drift.check(ws)

    aws_calls.clear()
    again = ws.cli("up")
    assert "0 created, 0 updated, 18 unchanged" in again.stdout
    assert aws_calls.mutating == []


@pytest.mark.parametrize("name", list(DRIFTS))
def test_drift_is_seen_through_the_snapshot_and_repaired(stack, aws_calls, name: str) -> None:  # type: ignore[no-untyped-def]
    _drift_is_seen_and_repaired(stack, aws_calls, DRIFTS[name])
    assert iam_reads(aws_calls) == Counter({SNAPSHOT: 1})  # the second `up`


def test_a_role_deleted_out_of_band_is_made_again(stack, aws_calls) -> None:  # type: ignore[no-untyped-def]
    c = stack.client("iam")
    c.delete_role_policy(RoleName="APIGateway-SQS", PolicyName="pocctl-inline")
    c.delete_role(RoleName="APIGateway-SQS")

    assert "1 to create, 0 to update, 17 unchanged" in stack.cli("plan").stdout
    up = stack.cli("up")
    assert up.exit_code == 0, up.output
    assert "1 created, 0 updated, 17 unchanged" in up.stdout
    inline_back(stack)
    aws_calls.clear()
    assert "0 created, 0 updated, 18 unchanged" in stack.cli("up").stdout
    assert aws_calls.mutating == []


# -- (3) a refused GetAccountAuthorizationDetails falls back to the per-resource reads -------------


@pytest.mark.parametrize("code", ["AccessDenied", "AccessDeniedException"])
def test_a_refused_snapshot_falls_back_to_per_resource_reads(
    stack,  # type: ignore[no-untyped-def]
    aws_calls,  # type: ignore[no-untyped-def]
    faults: Faults,
    code: str,
) -> None:
    refused = faults.add(SNAPSHOT, code, DENIED, times=None, status=403)
    r = stack.cli("up")
    assert r.exit_code == 0, r.output
    assert "0 created, 0 updated, 18 unchanged" in r.stdout
    assert refused.seen == 1, "asked once, then remembered for the run"
    assert iam_reads(aws_calls) == PER_RESOURCE_READS  # the refused call never left the client
    assert aws_calls.mutating == []

    aws_calls.clear()
    assert "0 to create, 0 to update, 18 unchanged" in stack.cli("plan").stdout
    assert refused.seen == 2  # one more run, one more try
    assert iam_reads(aws_calls) == PER_RESOURCE_READS


def test_drift_is_seen_and_repaired_without_the_snapshot(stack, aws_calls, faults: Faults) -> None:  # type: ignore[no-untyped-def]
    refused = faults.add(SNAPSHOT, "AccessDenied", DENIED, times=None, status=403)
    _drift_is_seen_and_repaired(stack, aws_calls, DRIFTS["inline policy"])
    assert refused.seen == 4  # status, plan, up, up: once per run
    assert iam_reads(aws_calls) == PER_RESOURCE_READS  # the second `up`


def test_a_cold_up_without_the_snapshot_builds_the_stack(ws, aws_calls, faults: Faults) -> None:  # type: ignore[no-untyped-def]
    refused = faults.add(SNAPSHOT, "AccessDenied", DENIED, times=None, status=403)
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    assert "stack is up: 18 created, 0 updated, 0 unchanged" in r.stdout
    assert refused.seen == 1
    assert iam_reads(aws_calls)[SNAPSHOT] == 0
    attached_back(ws)


def test_another_error_of_the_snapshot_is_not_hidden(stack, aws_calls, faults: Faults) -> None:  # type: ignore[no-untyped-def]
    faults.add(SNAPSHOT, "InvalidInput", "something else went wrong", times=None)
    r = stack.cli("plan")
    assert r.exit_code != 0
    assert "InvalidInput" in r.output
    assert iam_reads(aws_calls) == Counter(), "no fallback to the per-resource reads"


# -- (4) within one run, a find after an IAM change sees it ---------------------------------------


def test_a_find_after_a_change_in_the_same_run_sees_it(aws_endpoint: str, aws_calls) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(aws_endpoint)
    resources = iam.resources(ctx.cfg)
    assert [r.find(ctx) for r in resources] == [None] * 7
    assert iam_reads(aws_calls) == Counter({SNAPSHOT: 1}), "7 finds, one read"

    for r in resources:
        assert r.find(ctx) is None
        r.create(ctx)
        found = r.find(ctx)
        assert found is not None, r
        assert r.diff(ctx, found) == [], r
    # Only the find right after each create read again: the others were still current.
    assert iam_reads(aws_calls) == Counter({SNAPSHOT: 1 + 7})

    policy = resources[0]
    policy.delete(ctx, policy.find(ctx))  # type: ignore[arg-type]
    assert policy.find(ctx) is None
    role = resources[-1]
    role.delete(ctx, role.find(ctx))  # type: ignore[arg-type]
    assert role.find(ctx) is None


def test_a_find_after_an_update_in_the_same_run_sees_it(stack) -> None:  # type: ignore[no-untyped-def]
    broaden_inline(stack)
    broaden_policy(stack)
    ctx = _ctx(stack.endpoint)
    for key in ("role.apigateway", "policy.write_dynamodb"):
        r = next(r for r in iam.resources(ctx.cfg) if r.key == key)
        observed = r.find(ctx)
        assert observed is not None
        changes = r.diff(ctx, observed)
        assert changes, "the drift is in the snapshot"
        r.update(ctx, observed, changes)
        found = r.find(ctx)
        assert found is not None
        assert r.diff(ctx, found) == [], "the update is seen, not the snapshot from before it"


def test_status_after_up_in_one_process_sees_what_up_made(
    aws_endpoint: str, tmp_path: Path
) -> None:
    ctx = _ctx(aws_endpoint)
    engine = Engine(ctx, State(tmp_path / "state.json"))
    task = TASKS[0]
    engine.plan([task])  # a snapshot of the empty account, made before `up`
    engine.up([task])
    assert [s.action for s in engine.plan([task])] == [UNCHANGED] * 7


def test_a_change_that_fails_half_way_still_drops_the_snapshot(
    aws_endpoint: str,
    faults: Faults,
) -> None:
    ctx = _ctx(aws_endpoint)
    # Lambda 1's role: the API role attaches no policy by default (api.cloudwatch_logs_policy).
    role = next(r for r in iam.resources(ctx.cfg) if r.key == "role.lambda1")
    assert role.find(ctx) is None
    faults.add("AttachRolePolicy", "LimitExceeded", "too many policies", times=1, status=409)
    with pytest.raises(Exception, match="LimitExceeded"):
        role.create(ctx)  # CreateRole went through, AttachRolePolicy did not
    found = role.find(ctx)
    assert found is not None, "the role CreateRole made is seen, not the snapshot from before"
    assert found["attached"] == []


# -- the snapshot and the per-resource reads see the same ------------------------------------------


def test_the_snapshot_and_the_per_resource_reads_agree(aws_endpoint: str, ws) -> None:  # type: ignore[no-untyped-def]
    def both() -> tuple[list[Any], list[Any]]:
        snapshot, by_calls = _ctx(aws_endpoint), _ctx(aws_endpoint)
        refused = _refuse_snapshot(by_calls)
        a = [r.find(snapshot) for r in iam.resources(snapshot.cfg)]
        b = [r.find(by_calls) for r in iam.resources(by_calls.cfg)]
        assert refused == [1]
        return a, b

    a, b = both()
    assert a == b == [None] * 7
    assert ws.cli("up").exit_code == 0
    a, b = both()
    assert a == b
    assert all(o is not None for o in a)

    # Out of band: another default version, a detached policy, a second inline policy, no
    # pocctl inline policy on another role.
    broaden_policy(ws)
    detach_policy(ws)
    c = ws.client("iam")
    c.put_role_policy(
        RoleName="Lambda-SQS-DynamoDB",
        PolicyName="added-in-the-console",
        PolicyDocument=json.dumps(
            iam.policy_document({"Effect": "Deny", "Action": "*", "Resource": "*"})
        ),
    )
    c.delete_role_policy(RoleName="APIGateway-SQS", PolicyName="pocctl-inline")
    a, b = both()
    assert a == b
    by_key = {r.key: o for r, o in zip(iam.resources(parse("")), a, strict=True)}
    assert sorted(by_key["role.lambda1"]["inline_names"]) == [
        "added-in-the-console",
        "pocctl-inline",
    ]
    assert by_key["role.apigateway"]["inline"] is None
    assert by_key["policy.write_dynamodb"]["default_version"] == "v2"


# -- pages are merged (the embedded AWS answers in one page; AWS pages large accounts) -------------


class _StubAws:
    account_id = ACCOUNT
    region = REGION
    partition = "aws"

    def __init__(self, client: Any) -> None:
        self._client = client

    def client(self, service: str) -> Any:
        assert service == "iam"
        return self._client


def _encoded(doc: dict[str, Any]) -> str:
    return quote(json.dumps(doc))  # as IAM sends documents


def test_pages_of_the_snapshot_are_merged() -> None:
    from botocore.stub import Stubber

    client = botocore.session.get_session().create_client("iam", region_name=REGION)
    ctx = Context(Target(parse(""), _StubAws(client)))  # type: ignore[arg-type]
    trust = iam.trust_policy("lambda.amazonaws.com")
    inline = iam.policy_document(
        {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}
    )
    doc_v1 = iam.policy_document({"Effect": "Allow", "Action": "sqs:*", "Resource": "*"})
    doc_v2 = iam.managed_policy_documents(ctx)["read_sqs"]
    read_sqs = policy_arn("Lambda-Read-SQS")
    page1 = {
        "RoleDetailList": [
            {
                "RoleName": "Lambda-SQS-DynamoDB",
                "Arn": f"arn:aws:iam::{ACCOUNT}:role/Lambda-SQS-DynamoDB",
                "AssumeRolePolicyDocument": _encoded(trust),
                "RolePolicyList": [
                    {"PolicyName": "pocctl-inline", "PolicyDocument": _encoded(inline)}
                ],
                "AttachedManagedPolicies": [
                    {
                        "PolicyName": "Lambda-Write-DynamoDB",
                        "PolicyArn": policy_arn("Lambda-Write-DynamoDB"),
                    },
                    {"PolicyName": "Lambda-Read-SQS", "PolicyArn": read_sqs},
                ],
            }
        ],
        "Policies": [],
        "IsTruncated": True,
        "Marker": "page-2",
    }
    page2 = {
        "RoleDetailList": [],
        "Policies": [
            {
                "PolicyName": "Lambda-Read-SQS",
                "Arn": read_sqs,
                "DefaultVersionId": "v2",
                "PolicyVersionList": [
                    {"Document": _encoded(doc_v1), "VersionId": "v1", "IsDefaultVersion": False},
                    {"Document": _encoded(doc_v2), "VersionId": "v2", "IsDefaultVersion": True},
                ],
            }
        ],
        "IsTruncated": False,
    }
    wanted = ["Role", "LocalManagedPolicy"]
    with Stubber(client) as stub:
        stub.add_response("get_account_authorization_details", page1, {"Filter": wanted})
        stub.add_response(
            "get_account_authorization_details", page2, {"Filter": wanted, "Marker": "page-2"}
        )
        found = {r.key: r.find(ctx) for r in iam.resources(ctx.cfg)}
        stub.assert_no_pending_responses()
    assert found["policy.read_sqs"] == {
        "arn": read_sqs,
        "document": doc_v2,
        "default_version": "v2",
    }
    assert found["role.lambda1"] == {
        "arn": f"arn:aws:iam::{ACCOUNT}:role/Lambda-SQS-DynamoDB",
        "trust": trust,
        "attached": sorted([policy_arn("Lambda-Write-DynamoDB"), read_sqs]),
        "inline": inline,
        "inline_names": ["pocctl-inline"],
    }
    assert {k for k, v in found.items() if v is None} == {
        "policy.write_dynamodb",
        "policy.sns_publish",
        "policy.streams_read",
        "role.lambda2",
        "role.apigateway",
    }


@pytest.mark.parametrize("mode", [[], ["--sequential"]], ids=["parallel", "sequential"])
def test_a_cold_up_reads_the_snapshot_once(ws, aws_calls, mode: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Each create marks only what it made: the other resources' finds keep the run's one
    snapshot (it is still current for them), in either order of work."""
    r = ws.cli("up", *mode)
    assert r.exit_code == 0, r.output
    assert iam_reads(aws_calls) == Counter({SNAPSHOT: 1})


def test_deleting_a_policy_makes_every_role_read_again(aws_endpoint: str, ws) -> None:  # type: ignore[no-untyped-def]
    """Deleting a policy detaches it from its roles first: a role's next find must not come
    from the snapshot taken before."""
    assert ws.cli("up").exit_code == 0
    ctx = _ctx(aws_endpoint)
    by_key = {r.key: r for r in iam.resources(ctx.cfg)}
    role, policy = by_key["role.lambda1"], by_key["policy.read_sqs"]
    arn = arns.policy(ctx, ctx.cfg.iam.policies.read_sqs)
    assert arn in role.find(ctx)["attached"]  # type: ignore[index]
    policy.delete(ctx, policy.find(ctx))  # type: ignore[arg-type]
    assert arn not in role.find(ctx)["attached"]  # type: ignore[index]
