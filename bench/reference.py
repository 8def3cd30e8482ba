"""The reference for a cold `up`: the minimal sequence of mutating boto3 calls for pocctl's stack.

The same policies, roles, table, queues, functions (the same zips, from pocctl.packaging),
mappings, topic and REST API (model, validator, method, integration and its responses,
deployment, stage) as `pocctl up` makes with the lab's defaults — but only the creating calls,
in an order that needs no read: no look-ups, no waits, ARNs computed from the known account.
Documents and settings come from pocctl's own ``desired()`` so both build the same thing.

What it saves over pocctl, by design: the look-ups, the waits, the state file, and the stream
enabled by the table's CreateTable instead of a separate UpdateTable (Task 5).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ACCOUNT, REFERENCE_UA, REGION, check_loopback

_session: Any = None
_session_lock = threading.Lock()


def _boto_session() -> Any:
    """One botocore session per process (it caches the service models, as pocctl's does)."""
    global _session
    import boto3

    with _session_lock:
        if _session is None:
            _session = boto3.session.Session(region_name=REGION)
        return _session


class _KnownAccount:
    """Stands in for pocctl.aws.Aws where pocctl's ``desired()`` needs the account: it is
    known up front, so no GetCallerIdentity."""

    region = REGION
    account_id = ACCOUNT
    partition = "aws"

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url


@dataclass
class Built:
    """What the reference made (for the caller's checks)."""

    calls: int = 0
    api_id: str = ""


def _json_attrs(attrs: dict[str, Any]) -> dict[str, str]:
    return {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in attrs.items()}


def build(endpoint: str, config: Path) -> Built:
    """Create the whole stack on ``endpoint`` with mutating calls only; returns what it made.

    ``config`` is a config.yaml path, as pocctl's ``--config`` (none there: the lab's defaults).
    """
    from botocore.config import Config as BotoConfig

    from pocctl import arns, packaging
    from pocctl.config import load
    from pocctl.resources import apigateway, iam, lambda_, sns, sqs
    from pocctl.resources.base import Context, Target
    from pocctl.resources.dynamodb import Table

    check_loopback(endpoint)
    cfg = load(config)
    ctx = Context(Target(cfg, _KnownAccount(endpoint)))  # type: ignore[arg-type]
    session = _boto_session()
    boto_cfg = BotoConfig(user_agent_extra=REFERENCE_UA, retries={"mode": "standard"})

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint, config=boto_cfg)

    iam_c, ddb, sqs_c = client("iam"), client("dynamodb"), client("sqs")
    lam, sns_c, apigw = client("lambda"), client("sns"), client("apigateway")
    out = Built()
    tags = {"pocctl": "orders-pipeline"}
    desc = "pocctl: serverless order pipeline lab"

    def call(fn: Any, **kwargs: Any) -> Any:
        out.calls += 1
        return fn(**kwargs)

    # Task 1: policies, then roles with their attachments and inline policy.
    p = cfg.iam.policies
    for field_name, doc in iam.managed_policy_documents(ctx).items():
        call(
            iam_c.create_policy,
            PolicyName=getattr(p, field_name),
            PolicyDocument=json.dumps(doc),
            Description=desc,
        )
    for res in iam.resources(cfg):
        if not isinstance(res, iam.Role):
            continue
        want = res.desired(ctx)
        call(
            iam_c.create_role,
            RoleName=res.name,
            AssumeRolePolicyDocument=json.dumps(want["trust"]),
            Description=desc,
        )
        for arn in want["attached"]:
            call(iam_c.attach_role_policy, RoleName=res.name, PolicyArn=arn)
        call(
            iam_c.put_role_policy,
            RoleName=res.name,
            PolicyName=iam.INLINE_POLICY,
            PolicyDocument=json.dumps(want["inline"]),
        )

    # Tasks 2 and 5: the table, its stream switched on in the same call.
    table = Table(cfg)
    pk = cfg.table.partition_key
    stream_arn = call(
        ddb.create_table,
        TableName=table.name,
        KeySchema=[{"AttributeName": pk, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": pk, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": cfg.table.stream_view_type},
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )["TableDescription"]["LatestStreamArn"]

    # Tasks 3 and 7: the three queues (the DLQ first: the order queue's redrive names it).
    for queue in (sqs.DeadLetterQueue(cfg), sqs.OrderQueue(cfg), sqs.FailureQueue(cfg)):
        call(
            sqs_c.create_queue,
            QueueName=queue.name,
            Attributes=_json_attrs(queue.desired(ctx)),
            tags=tags,
        )

    # Tasks 4 and 7: the functions and their triggers.
    for which in ("lambda1", "lambda2"):
        fn = lambda_.Function(cfg, which)
        want = fn.desired(ctx)
        call(
            lam.create_function,
            FunctionName=fn.name,
            Code={"ZipFile": packaging.build_zip(lambda_.handler_file(ctx, which))},
            Description=desc,
            Publish=False,
            Tags=tags,
            Runtime=want["runtime"],
            Handler=want["handler"],
            Role=want["role"],
            Timeout=want["timeout"],
            MemorySize=want["memory_size"],
            Environment={"Variables": want["environment"]},
        )
    call(
        lam.create_event_source_mapping,
        FunctionName=cfg.lambda1.name,
        EventSourceArn=arns.queue(ctx, cfg.queue.name),
        Enabled=True,
        BatchSize=cfg.lambda1.batch_size,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    l2 = cfg.lambda2
    call(
        lam.create_event_source_mapping,
        FunctionName=l2.name,
        EventSourceArn=stream_arn,
        Enabled=True,
        StartingPosition=l2.starting_position,
        BatchSize=l2.batch_size,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        MaximumRetryAttempts=l2.maximum_retry_attempts,
        BisectBatchOnFunctionError=True,
        DestinationConfig={"OnFailure": {"Destination": arns.queue(ctx, l2.on_failure_queue)}},
    )

    # Task 6: the topic (no email subscription in the lab's defaults).
    call(
        sns_c.create_topic,
        Name=sns.Topic(cfg).name,
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )

    # Task 8: the REST API. CreateRestApi answers the root resource's ID: no GetResources.
    api = apigateway.RestApi(cfg)
    want = api.desired(ctx)
    created = call(
        apigw.create_rest_api,
        name=api.name,
        description="pocctl: POST / puts an order on the queue",
        endpointConfiguration={"types": ["REGIONAL"]},
        tags=tags,
    )
    api_id, root = created["id"], created["rootResourceId"]
    call(
        apigw.create_model,
        restApiId=api_id,
        name=apigateway.MODEL_NAME,
        contentType="application/json",
        schema=json.dumps(want["model"]["schema"]),
        description="an order is any non-empty JSON object",
    )
    validator = call(
        apigw.create_request_validator,
        restApiId=api_id,
        name=apigateway.VALIDATOR_NAME,
        validateRequestBody=True,
        validateRequestParameters=False,
    )["id"]
    m, integ = want["method"], want["integration"]
    where = {"restApiId": api_id, "resourceId": root, "httpMethod": "POST"}
    call(
        apigw.put_method,
        **where,
        authorizationType=m["authorizationType"],
        requestValidatorId=validator,
        requestModels=m["requestModels"],
    )
    call(
        apigw.put_integration,
        **where,
        type=integ["type"],
        integrationHttpMethod=integ["httpMethod"],
        uri=integ["uri"],
        credentials=integ["credentials"],
        requestParameters=integ["requestParameters"],
        requestTemplates=integ["requestTemplates"],
        passthroughBehavior=integ["passthroughBehavior"],
    )
    for code, r in want["responses"].items():
        call(
            apigw.put_method_response,
            **where,
            statusCode=code,
            responseModels={"application/json": "Empty"},
        )
        extra = {"responseTemplates": {"application/json": r["template"]}} if r["template"] else {}
        call(
            apigw.put_integration_response,
            **where,
            statusCode=code,
            selectionPattern=r["selectionPattern"],
            **extra,
        )
    stage = want["stage"]
    call(
        apigw.create_deployment,
        restApiId=api_id,
        stageName=stage["name"],
        description=want["deployed"],
    )
    call(
        apigw.update_stage,
        restApiId=api_id,
        stageName=stage["name"],
        patchOperations=[
            {
                "op": "replace",
                "path": "/*/*/throttling/rateLimit",
                "value": str(stage["rateLimit"]),
            },
            {
                "op": "replace",
                "path": "/*/*/throttling/burstLimit",
                "value": str(stage["burstLimit"]),
            },
        ],
    )
    out.api_id = api_id
    return out
