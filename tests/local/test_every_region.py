"""The embedded AWS serves any region, in-process (LocalAWS's own region is us-east-1): a
mapping made in another region is polled there, its function runs with that region's
environment, its logs land in that region's CloudWatch Logs, and only the regions in use are
polled."""

from __future__ import annotations

from typing import Any

import boto3
from support.localkit import KIT_LAMBDA_POLICY, LAMBDA_TRUST, build_stack, post, wait_for, zipped

from pocctl.local.runtime import LocalAWS

REGION = "ap-southeast-2"
# Stores the region the runtime gave it, through the SDK, in the same region's table.
HANDLER = """
import os, boto3
def handler(event, context):
    table = boto3.resource("dynamodb").Table("seen")
    for r in event["Records"]:
        table.put_item(Item={"id": r["messageId"], "region": os.environ["AWS_REGION"],
                             "from": r["awsRegion"]})
    print("handled in", os.environ["AWS_REGION"])
"""


def _client(aws: LocalAWS, service: str, region: str = REGION) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=aws.endpoint_url)


def test_a_mapping_in_another_region_runs_there(local_aws: LocalAWS) -> None:
    iam, sqs = _client(local_aws, "iam"), _client(local_aws, "sqs")
    lam, ddb = _client(local_aws, "lambda"), _client(local_aws, "dynamodb")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    iam.put_role_policy(RoleName="r", PolicyName="kit", PolicyDocument=KIT_LAMBDA_POLICY)
    ddb.create_table(
        TableName="seen",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    lam.create_function(
        FunctionName="fn",
        Runtime="python3.12",
        Role=role,
        Handler="h.handler",
        Code={"ZipFile": zipped({"h.py": HANDLER})},
        Timeout=10,
    )
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="fn")
    assert mapping["UUID"] in local_aws.polled_mappings()
    sent = sqs.send_message(QueueUrl=url, MessageBody="{}")["MessageId"]

    item = wait_for(
        lambda: ddb.get_item(TableName="seen", Key={"id": {"S": sent}}).get("Item"),
        what="the record stored",
    )
    assert item["region"]["S"] == REGION and item["from"]["S"] == REGION
    assert wait_for(
        lambda: (
            lam.get_event_source_mapping(UUID=mapping["UUID"]).get("LastProcessingResult") == "OK"
        ),
        what="LastProcessingResult OK",
    )
    local_aws.flush_logs()
    groups = _client(local_aws, "logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/aws/lambda/fn"]
    events = _client(local_aws, "logs").filter_log_events(logGroupName="/aws/lambda/fn")["events"]
    assert any(f"handled in {REGION}" in e["message"] for e in events)
    # Nothing of it in LocalAWS's own region.
    assert _client(local_aws, "logs", "us-east-1").describe_log_groups()["logGroups"] == []
    assert _client(local_aws, "sqs", "us-east-1").list_queues().get("QueueUrls", []) == []
    # Only the regions in use are read for mappings (not every region AWS has).
    assert local_aws._lambda_regions() == sorted({"us-east-1", REGION})


def test_context_account_id_is_the_api_owners(local_aws: LocalAWS) -> None:
    """$context.accountId: "The API owner's AWS account ID" (API Gateway's mapping template
    reference), read from where the API lives."""
    stack = build_stack(local_aws.endpoint_url, mappings=False)
    ag = stack.client("apigateway")
    stack.respond_with('{"account": "$context.accountId"}')
    ag.create_deployment(restApiId=stack.api_id, stageName="prod")
    status, out = post(local_aws.invoke_url(stack.api_id, "prod"), '{"a": 1}')
    assert status == 200 and out == {"account": "123456789012"}
