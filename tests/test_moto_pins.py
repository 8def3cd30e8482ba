"""moto behaviour pocctl relies on or works around (moto is pinned in pyproject.toml).

If one of these fails after an upgrade, re-check the code named in the test before changing it.
"""

from __future__ import annotations

import json

import boto3
import moto


def test_moto_is_the_pinned_version() -> None:
    assert moto.__version__ == "5.2.5"


def test_set_queue_attributes_without_policy_drops_the_policy(aws_endpoint: str) -> None:
    # pocctl.resources.sqs.Queue.update always re-sends Policy because of this (AWS keeps it).
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=aws_endpoint)
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    url = sqs.create_queue(QueueName="q", Attributes={"Policy": policy})["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "45"})
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "Policy" not in attrs


def test_aws_managed_policies_exist_in_the_embedded_server(aws_endpoint: str) -> None:
    # The APIGateway-SQS role attaches AmazonAPIGatewayPushToCloudWatchLogs, as in the lab.
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=aws_endpoint)
    arn = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
    assert iam.get_policy(PolicyArn=arn)["Policy"]["Arn"] == arn


def test_event_source_mapping_lists_filter_by_function_and_source(aws_endpoint: str) -> None:
    # EventSourceMapping.find relies on the filter to adopt an existing trigger.
    kw = {"region_name": "us-east-1", "endpoint_url": aws_endpoint}
    iam, sqs, lam = (boto3.client(s, **kw) for s in ("iam", "sqs", "lambda"))
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    q1 = sqs.create_queue(QueueName="q1")["QueueUrl"]
    q2 = sqs.create_queue(QueueName="q2")["QueueUrl"]
    arns = [
        sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for u in (q1, q2)
    ]
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("m.py", "def handler(e, c):\n    return 1\n")
    lam.create_function(
        FunctionName="f",
        Runtime="python3.13",
        Role=role,
        Handler="m.handler",
        Code={"ZipFile": buf.getvalue()},
    )
    for a in arns:
        lam.create_event_source_mapping(FunctionName="f", EventSourceArn=a)
    found = lam.list_event_source_mappings(FunctionName="f", EventSourceArn=arns[1])
    assert [m["EventSourceArn"] for m in found["EventSourceMappings"]] == [arns[1]]


def test_the_embedded_aws_offers_only_the_serverless_managed_policies(aws_endpoint: str) -> None:
    # pocctl.local.server trims moto's 1,500+ AWS-managed policies (each reset rebuilt them all)
    # by rewriting moto.iam.models.aws_managed_policies_data.
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=aws_endpoint)
    names = {
        p["PolicyName"]
        for page in iam.get_paginator("list_policies").paginate(Scope="AWS")
        for p in page["Policies"]
    }
    assert {"AWSLambdaBasicExecutionRole", "AmazonSQSFullAccess"} <= names
    assert "AmazonS3FullAccess" not in names


def test_a_disabled_stream_describes_as_disabled(aws_endpoint: str) -> None:
    # pocctl.local.moto_hooks.describe_disabled_streams: moto 5.2.5 answers 500 here, AWS does not.
    kw = {"region_name": "us-east-1", "endpoint_url": aws_endpoint}
    ddb, streams = boto3.client("dynamodb", **kw), boto3.client("dynamodbstreams", **kw)
    t = ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]
    arn = t["LatestStreamArn"]
    assert streams.describe_stream(StreamArn=arn)["StreamDescription"]["StreamStatus"] == "ENABLED"
    ddb.update_table(TableName="t", StreamSpecification={"StreamEnabled": False})
    desc = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert (desc["StreamStatus"], desc["Shards"]) == ("DISABLED", [])
