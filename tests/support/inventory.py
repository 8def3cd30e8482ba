"""Everything in the embedded AWS account, listed through boto3 (not through pocctl), with the
random parts (IDs, stream labels) left out so two stacks compare equal."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from typing import Any

import boto3


@cache
def _client(service: str, endpoint: str):  # type: ignore[no-untyped-def]
    # Made once per test process: the crash suite lists the account hundreds of times.
    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint)


def inventory(endpoint: str) -> dict[str, Any]:
    def c(service: str):  # type: ignore[no-untyped-def]
        return _client(service, endpoint)

    iam, ddb, sqs, lam = c("iam"), c("dynamodb"), c("sqs"), c("lambda")
    sns, apigw, logs = c("sns"), c("apigateway"), c("logs")
    out: dict[str, Any] = {}
    out["policies"] = sorted(
        (p["PolicyName"], len(iam.list_policy_versions(PolicyArn=p["Arn"])["Versions"]))
        for p in iam.list_policies(Scope="Local")["Policies"]
    )
    out["roles"] = sorted(
        (
            r["RoleName"],
            tuple(
                sorted(
                    a["PolicyName"]
                    for a in iam.list_attached_role_policies(RoleName=r["RoleName"])[
                        "AttachedPolicies"
                    ]
                )
            ),
            tuple(sorted(iam.list_role_policies(RoleName=r["RoleName"])["PolicyNames"])),
        )
        for r in iam.list_roles()["Roles"]
    )
    tables = []
    for name in ddb.list_tables()["TableNames"]:
        t = ddb.describe_table(TableName=name)["Table"]
        tables.append((name, t["TableStatus"], json.dumps(t.get("StreamSpecification"))))
    out["tables"] = sorted(tables)
    queues = []
    for url in sqs.list_queues().get("QueueUrls", []):
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        queues.append(
            (url.rsplit("/", 1)[1], a.get("VisibilityTimeout"), "Policy" in a, "RedrivePolicy" in a)
        )
    out["queues"] = sorted(queues)
    fns = lam.list_functions()["Functions"]
    out["functions"] = sorted(
        (f["FunctionName"], f["CodeSha256"], json.dumps(f.get("Environment"), sort_keys=True))
        for f in fns
    )
    out["mappings"] = sorted(
        Counter(
            (m["FunctionArn"].rsplit(":", 1)[1], m["EventSourceArn"].split(":")[2])
            for m in lam.list_event_source_mappings()["EventSourceMappings"]
        ).items()
    )
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    out["topics"] = sorted(t.rsplit(":", 1)[1] for t in topics)
    out["subscriptions"] = sorted(
        Counter(
            (s["TopicArn"].rsplit(":", 1)[1], s["Protocol"], s["Endpoint"])
            for s in sns.list_subscriptions()["Subscriptions"]
        ).items()
    )
    apis = []
    for a in apigw.get_rest_apis()["items"]:
        stages = sorted(s["stageName"] for s in apigw.get_stages(restApiId=a["id"])["item"])
        methods = sorted(
            m
            for r in apigw.get_resources(restApiId=a["id"])["items"]
            for m in (r.get("resourceMethods") or {})
        )
        models = sorted(m["name"] for m in apigw.get_models(restApiId=a["id"])["items"])
        validators = len(apigw.get_request_validators(restApiId=a["id"])["items"])
        apis.append((a["name"], tuple(stages), tuple(methods), tuple(models), validators))
    out["apis"] = sorted(apis)
    out["log_groups"] = sorted(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"])
    return out


def empty(inv: dict[str, Any]) -> bool:
    # AWS-managed policies are not listed with Scope=Local; nothing else may remain.
    return all(not v for v in inv.values())
