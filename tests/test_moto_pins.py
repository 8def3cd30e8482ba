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
    # pocctl.local.moto_hooks' "serverless-managed-policies-only" trims moto's 1,500+ AWS-managed
    # policies (each reset rebuilt them all) by rewriting moto.iam.models.aws_managed_policies_data.
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=aws_endpoint)
    names = {
        p["PolicyName"]
        for page in iam.get_paginator("list_policies").paginate(Scope="AWS")
        for p in page["Policies"]
    }
    assert {"AWSLambdaBasicExecutionRole", "AmazonSQSFullAccess"} <= names
    assert "AmazonS3FullAccess" not in names


def test_a_disabled_stream_describes_as_disabled(aws_endpoint: str) -> None:
    # pocctl.local.moto_hooks' "describe-disabled-streams": moto 5.2.5 answers 500 here, AWS
    # does not.
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


def test_a_disabled_stream_is_replaced_by_a_new_one_as_on_aws(aws_endpoint: str) -> None:
    # pocctl.local.moto_hooks' "replace-disabled-streams": moto 5.2.5 refuses the second
    # enable ("Cannot enable stream"), which left a table whose view type changed without a stream.
    from botocore.exceptions import ClientError

    kw = {"region_name": "us-east-1", "endpoint_url": aws_endpoint}
    ddb, streams = boto3.client("dynamodb", **kw), boto3.client("dynamodbstreams", **kw)
    old = ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=old)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=old, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    ddb.put_item(TableName="t", Item={"k": {"S": "before"}})

    def refused(spec: dict) -> str:
        try:
            ddb.update_table(TableName="t", StreamSpecification=spec)
        except ClientError as e:
            return e.response["Error"]["Code"]
        return ""

    # AWS: enabling a stream on a table that has one, or disabling where there is none, fails.
    assert (
        refused({"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}) == "ResourceInUseException"
    )
    ddb.update_table(TableName="t", StreamSpecification={"StreamEnabled": False})
    assert refused({"StreamEnabled": False}) == "ValidationException"
    ddb.put_item(TableName="t", Item={"k": {"S": "while-disabled"}})
    new = ddb.update_table(
        TableName="t",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    assert new["LatestStreamArn"] != old  # a new stream, a new label
    assert new["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    ddb.put_item(TableName="t", Item={"k": {"S": "after"}})
    # The old stream kept what it had and got nothing more; the new one has only the new write.
    assert [
        r["dynamodb"]["Keys"]["k"]["S"] for r in streams.get_records(ShardIterator=it)["Records"]
    ] == ["before"]
    desc = streams.describe_stream(StreamArn=new["LatestStreamArn"])["StreamDescription"]
    assert (desc["StreamStatus"], desc["StreamViewType"]) == ("ENABLED", "NEW_AND_OLD_IMAGES")
    it2 = streams.get_shard_iterator(
        StreamArn=new["LatestStreamArn"],
        ShardId=desc["Shards"][0]["ShardId"],
        ShardIteratorType="TRIM_HORIZON",
    )["ShardIterator"]
    assert [
        r["dynamodb"]["Keys"]["k"]["S"] for r in streams.get_records(ShardIterator=it2)["Records"]
    ] == ["after"]
