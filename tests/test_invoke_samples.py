"""`pocctl invoke`'s samples have the shapes AWS documents for each trigger's event: checked with
AWS Lambda Powertools' parser models (code and contracts nobody here wrote), and filled in with
this stack's ARNs and a valid order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    DynamoDBStreamModel,
    SqsModel,
)

from pocctl import invoke
from pocctl.config import Config

STREAM = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000"


class _Dynamodb:
    def __init__(self, stream: str | None) -> None:
        self.stream = stream

    def describe_table(self, TableName: str) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        return {
            "Table": {
                "TableName": TableName,
                **({"LatestStreamArn": self.stream} if self.stream else {}),
            }
        }


class _Ctx:
    """What the samples read of a Context: the target and the table's stream."""

    def __init__(self, stream: str | None = STREAM) -> None:
        self.cfg, self.account, self.region = Config(), "123456789012", "eu-west-1"
        self._ddb = _Dynamodb(stream)

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account}:{resource}"

    def client(self, service: str) -> _Dynamodb:
        assert service == "dynamodb"
        return self._ddb


def _order(body: str) -> dict[str, Any]:
    order = json.loads(body)
    assert order["item"] and order["quantity"] == 1 and order["customer"] == "pocctl-MARK"
    return order  # type: ignore[no-any-return]


def test_sqs_sample_is_an_sqs_event_on_the_stacks_queue() -> None:
    event = invoke.sample_event(_Ctx(), "sqs", "MARK")  # type: ignore[arg-type]
    parsed = parse(event=event, model=SqsModel)
    (record,) = parsed.Records
    assert record.eventSourceARN == "arn:aws:sqs:eu-west-1:123456789012:POC-Queue"
    assert record.awsRegion == "eu-west-1"
    _order(record.body)


@pytest.mark.parametrize("stream", [STREAM, None])
def test_dynamodb_insert_sample_is_a_stream_insert_of_a_stored_order(stream: str | None) -> None:
    event = invoke.sample_event(_Ctx(stream), "dynamodb-insert", "MARK")  # type: ignore[arg-type]
    parse(event=event, model=DynamoDBStreamModel)
    (record,) = event["Records"]
    assert record["eventName"] == "INSERT"
    assert record["eventSourceARN"].startswith(
        "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/"
    )
    if stream:
        assert record["eventSourceARN"] == stream
    image = record["dynamodb"]["NewImage"]
    assert image["orderID"] == record["dynamodb"]["Keys"]["orderID"]
    assert image["order"]["M"]["customer"] == {"S": "pocctl-MARK"}
    assert record["dynamodb"]["StreamViewType"] == "NEW_IMAGE"


def test_apigateway_sample_is_a_proxy_event_posting_the_order() -> None:
    event = invoke.sample_event(_Ctx(), "apigateway", "MARK")  # type: ignore[arg-type]
    parsed = parse(event=event, model=APIGatewayProxyEventModel)
    assert parsed.httpMethod == "POST"
    assert parsed.requestContext.stage == "prod"
    _order(event["body"])


def test_each_sample_has_its_own_ids() -> None:
    a, b = (invoke.sample_event(_Ctx(), "sqs", "MARK") for _ in range(2))  # type: ignore[arg-type]
    assert a["Records"][0]["messageId"] != b["Records"][0]["messageId"]
