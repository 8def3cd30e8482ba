"""Every event the embedded AWS delivers to a function, checked against contracts nobody here
wrote: AWS Lambda Powertools' parser models, and AWS's own sample events field by field.

The events are captured on a real embedded server, from a deployed function that prints what
it receives (json.dumps(event)), exactly as a learner's handler would see them.

AWS's samples:
- SQS: "Using Lambda with Amazon SQS", example standard queue message event,
  https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
- DynamoDB: "Using AWS Lambda with Amazon DynamoDB", example event,
  https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html, and the DynamoDB Streams API's
  Record and StreamRecord (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/
  API_streams_Record.html, API_streams_StreamRecord.html): the GetRecords example shows
  "eventVersion": "1.1", the version the streams deliver today.
- SNS: "Invoking Lambda functions with Amazon SNS notifications", example event,
  https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html
- The context object: https://docs.aws.amazon.com/lambda/latest/dg/python-context.html
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import (
    DynamoDBStreamModel,
    SnsModel,
    SqsModel,
)
from support.localkit import build_stack, wait_for, zipped

from pocctl.local.runtime import LocalAWS

RECORDER = """
import json

def handler(event, context):
    print("EVENT " + json.dumps(event))
    print("CONTEXT " + json.dumps({
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "identity": [context.identity.cognito_identity_id,
                     context.identity.cognito_identity_pool_id],
        "client_context": context.client_context,
        "remaining": context.get_remaining_time_in_millis(),
    }))
    return {"batchItemFailures": []}
"""

# AWS's samples, as the documentation prints them (the fields and their types are what count).
AWS_SQS_RECORD = {
    "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
    "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
    "body": "Test message.",
    "attributes": {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1545082649183",
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp": "1545082649185",
    },
    "messageAttributes": {
        "myAttribute": {
            "stringValue": "myValue",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    },
    "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
    "eventSource": "aws:sqs",
    "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:my-queue",
    "awsRegion": "us-east-2",
}

AWS_DDB_RECORD = {
    "eventID": "c4ca4238a0b923820dcc509a6f75849b",
    "eventName": "INSERT",
    "eventVersion": "1.1",
    "eventSource": "aws:dynamodb",
    "awsRegion": "us-east-1",
    "dynamodb": {
        "ApproximateCreationDateTime": 1428537600,
        "Keys": {"Id": {"N": "101"}},
        "NewImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
        "SequenceNumber": "4421584500000000017450439091",
        "SizeBytes": 26,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    },
    "eventSourceARN": (
        "arn:aws:dynamodb:us-east-1:123456789012:table/ExampleTableWithStream/stream/"
        "2015-06-27T00:48:05.899"
    ),
}

AWS_SNS_RECORD = {
    "EventVersion": "1.0",
    "EventSubscriptionArn": (
        "arn:aws:sns:us-east-1:123456789012:sns-lambda:21be56ed-a058-49f5-8c98-aedd2564c486"
    ),
    "EventSource": "aws:sns",
    "Sns": {
        "SignatureVersion": "1",
        "Timestamp": "2019-01-02T12:45:07.000Z",
        "Signature": "tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j...65r==",
        "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ac565b8b1a6c5d002d285f9598aa1d9b.pem",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "Message": "Hello from SNS!",
        "MessageAttributes": {
            "Test": {"Type": "String", "Value": "TestString"},
            "TestBinary": {"Type": "Binary", "Value": "TestBinary"},
        },
        "Type": "Notification",
        "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&amp;SubscriptionArn=arn:aws:sns:us-east-1:123456789012:test-lambda:21be56ed-a058-49f5-8c98-aedd2564c486",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:sns-lambda",
        "Subject": "TestInvoke",
    },
}


def same_shape(got: Any, sample: Any, path: str = "$") -> list[str]:
    """Where ``got`` differs from AWS's sample in keys or in JSON types (values may differ)."""
    if isinstance(sample, dict):
        if not isinstance(got, dict):
            return [f"{path}: {type(got).__name__}, AWS has an object"]
        problems = [f"{path}.{k}: missing" for k in sample if k not in got]
        problems += [f"{path}.{k}: not in AWS's event" for k in got if k not in sample]
        for k in sample:
            if k in got:
                problems += same_shape(got[k], sample[k], f"{path}.{k}")
        return problems
    if isinstance(sample, list):
        return [] if isinstance(got, list) else [f"{path}: not a list"]
    kind = (int, float) if isinstance(sample, (int, float)) else type(sample)
    if not isinstance(got, kind) or isinstance(got, bool) != isinstance(sample, bool):
        return [f"{path}: {type(got).__name__}, AWS has {type(sample).__name__}"]
    return []


def captured(log_lines: Any, function: str, tag: str) -> list[dict[str, Any]]:
    prefix = f"[{function}] {tag} "
    return [json.loads(line.split(prefix, 1)[1]) for line in log_lines.having(prefix)]


def records(log_lines: Any, function: str) -> list[dict[str, Any]]:
    return [r for e in captured(log_lines, function, "EVENT") for r in e["Records"]]


# -- SQS ----------------------------------------------------------------------------------------


def test_sqs_event_matches_powertools_and_awss_sample(local_aws: LocalAWS, log_lines) -> None:  # type: ignore[no-untyped-def]
    stack = build_stack(local_aws.endpoint_url, store_src=RECORDER, api=False)
    sqs = stack.client("sqs")
    sent = sqs.send_message(
        QueueUrl=stack.queue_url,
        MessageBody='{"item": "book"}',
        MessageAttributes={
            "myAttribute": {"DataType": "String", "StringValue": "myValue"},
            "count": {"DataType": "Number", "StringValue": "3"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    plain = sqs.send_message(QueueUrl=stack.queue_url, MessageBody="no attributes")
    got = wait_for(
        lambda: len(records(log_lines, "POC-Lambda-1")) >= 2 and records(log_lines, "POC-Lambda-1"),
        timeout=30,
        what="both messages delivered",
    )
    events = captured(log_lines, "POC-Lambda-1", "EVENT")
    for event in events:
        parse(event=event, model=SqsModel)  # raises on any field Powertools disagrees with
        assert set(event) == {"Records"}
    by_id = {r["messageId"]: r for r in got}
    rec = by_id[sent["MessageId"]]
    # messageAttributes is a map of the sender's names: its entries are compared one by one.
    sample = {k: v for k, v in AWS_SQS_RECORD.items() if k != "messageAttributes"}
    assert same_shape({k: v for k, v in rec.items() if k != "messageAttributes"}, sample) == []
    assert (
        same_shape(
            rec["messageAttributes"]["myAttribute"],
            AWS_SQS_RECORD["messageAttributes"]["myAttribute"],
        )
        == []
    )
    assert rec["body"] == '{"item": "book"}'
    assert rec["md5OfBody"] == hashlib.md5(b'{"item": "book"}').hexdigest()  # noqa: S324
    assert rec["eventSource"] == "aws:sqs" and rec["eventSourceARN"] == stack.queue_arn
    assert rec["awsRegion"] == "us-east-1"
    assert set(rec["attributes"]) == set(AWS_SQS_RECORD["attributes"])
    assert rec["attributes"]["ApproximateReceiveCount"] == "1"
    assert int(rec["attributes"]["ApproximateFirstReceiveTimestamp"]) >= int(
        rec["attributes"]["SentTimestamp"]
    )
    # Message attributes as AWS delivers them: camelCase, both list fields, base64 binaries.
    assert rec["messageAttributes"] == {
        "myAttribute": {
            "stringValue": "myValue",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "count": {
            "stringValue": "3",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Number",
        },
        "blob": {
            "binaryValue": base64.b64encode(b"\x00\x01").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    assert by_id[plain["MessageId"]]["messageAttributes"] == {}


# -- DynamoDB streams ---------------------------------------------------------------------------


def _ddb_changes(stack: Any, table: str) -> None:
    ddb = stack.client("dynamodb")
    ddb.put_item(TableName=table, Item={"orderID": {"S": "o-1"}, "item": {"S": "book"}})
    ddb.update_item(
        TableName=table,
        Key={"orderID": {"S": "o-1"}},
        UpdateExpression="SET quantity = :q",
        ExpressionAttributeValues={":q": {"N": "2"}},
    )
    ddb.delete_item(TableName=table, Key={"orderID": {"S": "o-1"}})


def test_stream_event_carries_binary_attributes_base64_encoded(
    local_aws: LocalAWS, log_lines
) -> None:  # type: ignore[no-untyped-def]
    """Lambda's DynamoDB event carries B / BS values as the stream's JSON does, base64 text
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_AttributeValue.html:
    "B: An attribute of type Binary", sent base64-encoded), and the record reaches the function
    (botocore would hand the poller bytes, which the event's JSON cannot carry)."""
    stack = build_stack(local_aws.endpoint_url, notify_src=RECORDER, api=False)
    stack.client("dynamodb").put_item(
        TableName="orders",
        Item={"orderID": {"S": "bin"}, "blob": {"B": b"\x00\xff"}, "set": {"BS": [b"a"]}},
    )
    got = wait_for(
        lambda: records(log_lines, "POC-Lambda-2"), timeout=30, what="the binary record delivered"
    )
    image = got[0]["dynamodb"]["NewImage"]
    assert image["blob"] == {"B": "AP8="} and image["set"] == {"BS": ["YQ=="]}
    assert isinstance(got[0]["dynamodb"]["ApproximateCreationDateTime"], int)


def test_lab_stream_event_matches_powertools_and_awss_sample(
    local_aws: LocalAWS, log_lines
) -> None:  # type: ignore[no-untyped-def]
    stack = build_stack(local_aws.endpoint_url, notify_src=RECORDER, api=False)
    _ddb_changes(stack, "orders")
    got = wait_for(
        lambda: len(records(log_lines, "POC-Lambda-2")) >= 3 and records(log_lines, "POC-Lambda-2"),
        timeout=30,
        what="INSERT, MODIFY and REMOVE delivered",
    )
    for event in captured(log_lines, "POC-Lambda-2", "EVENT"):
        parse(event=event, model=DynamoDBStreamModel)
        assert set(event) == {"Records"}
    assert [r["eventName"] for r in got] == ["INSERT", "MODIFY", "REMOVE"]
    for r in got:
        assert r["eventVersion"] == "1.1"
        assert r["eventSource"] == "aws:dynamodb" and r["awsRegion"] == "us-east-1"
        assert r["eventSourceARN"] == stack.stream_arn
        assert re.fullmatch(r"[0-9a-f]{32}", r["eventID"])
        assert r["dynamodb"]["StreamViewType"] == "NEW_IMAGE"
        assert r["dynamodb"]["Keys"] == {"orderID": {"S": "o-1"}}
        assert re.fullmatch(r"\d{21,40}", r["dynamodb"]["SequenceNumber"])
        assert isinstance(r["dynamodb"]["ApproximateCreationDateTime"], (int, float))
        assert "OldImage" not in r["dynamodb"]  # NEW_IMAGE: never the old one
    assert got[0]["dynamodb"]["NewImage"] == {"orderID": {"S": "o-1"}, "item": {"S": "book"}}
    insert, modify, remove = got
    # AWS's sample is a NEW_AND_OLD_IMAGES INSERT: its shape, but no OldImage either.
    # Keys and the images are maps of the table's attribute names: the rest is compared whole.
    images = ("Keys", "NewImage", "OldImage")
    sample = {**AWS_DDB_RECORD, "dynamodb": {**AWS_DDB_RECORD["dynamodb"], "NewImage": {}}}
    for r in (insert, sample):
        r["dynamodb"] = {k: ({} if k in images else v) for k, v in r["dynamodb"].items()}
    assert same_shape(insert, sample) == []
    assert modify["dynamodb"]["NewImage"]["quantity"] == {"N": "2"}
    assert "NewImage" not in remove["dynamodb"]
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3


@pytest.mark.parametrize("view", ["NEW_AND_OLD_IMAGES", "OLD_IMAGE", "KEYS_ONLY"])
def test_other_stream_views_deliver_the_images_they_name(
    local_aws: LocalAWS,
    log_lines,  # type: ignore[no-untyped-def]
    view: str,
) -> None:
    stack = build_stack(local_aws.endpoint_url, mappings=False, api=False)
    ddb, lam = stack.client("dynamodb"), stack.client("lambda")
    table = ddb.create_table(
        TableName="viewed",
        KeySchema=[{"AttributeName": "orderID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "orderID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": view},
    )["TableDescription"]
    lam.create_function(
        FunctionName="viewer",
        Runtime="python3.12",
        Role=stack.role_arn,
        Handler="rec.handler",
        Code={"ZipFile": zipped({"rec.py": RECORDER})},
        Timeout=10,
    )
    lam.create_event_source_mapping(
        EventSourceArn=table["LatestStreamArn"],
        FunctionName="viewer",
        StartingPosition="TRIM_HORIZON",
    )
    _ddb_changes(stack, "viewed")
    got = wait_for(
        lambda: len(records(log_lines, "viewer")) >= 3 and records(log_lines, "viewer"),
        timeout=30,
        what=f"three {view} records",
    )
    for event in captured(log_lines, "viewer", "EVENT"):
        parse(event=event, model=DynamoDBStreamModel)
    images = [
        (r["eventName"], "NewImage" in r["dynamodb"], "OldImage" in r["dynamodb"]) for r in got
    ]
    new = view == "NEW_AND_OLD_IMAGES"
    old = view in ("NEW_AND_OLD_IMAGES", "OLD_IMAGE")
    assert images == [("INSERT", new, False), ("MODIFY", new, old), ("REMOVE", False, old)]
    for r in got:
        assert r["dynamodb"]["StreamViewType"] == view and r["eventVersion"] == "1.1"
    if old:
        assert got[1]["dynamodb"]["OldImage"] == {"orderID": {"S": "o-1"}, "item": {"S": "book"}}


# -- SNS ----------------------------------------------------------------------------------------


def test_sns_to_lambda_event_matches_powertools_and_awss_sample(
    local_aws: LocalAWS, log_lines
) -> None:  # type: ignore[no-untyped-def]
    stack = build_stack(local_aws.endpoint_url, mappings=False, api=False)
    lam, sns = stack.client("lambda"), stack.client("sns")
    fn = lam.create_function(
        FunctionName="subscriber",
        Runtime="python3.12",
        Role=stack.role_arn,
        Handler="rec.handler",
        Code={"ZipFile": zipped({"rec.py": RECORDER})},
        Timeout=10,
    )["FunctionArn"]
    sub = sns.subscribe(TopicArn=stack.topic_arn, Protocol="lambda", Endpoint=fn)
    sns.publish(
        TopicArn=stack.topic_arn,
        Message="Hello from SNS!",
        Subject="TestInvoke",
        MessageAttributes={"Test": {"DataType": "String", "StringValue": "TestString"}},
    )
    bare = sns.publish(TopicArn=stack.topic_arn, Message="no subject, no attributes")
    got = wait_for(
        lambda: len(records(log_lines, "subscriber")) >= 2 and records(log_lines, "subscriber"),
        timeout=30,
        what="two SNS events",
    )
    for event in captured(log_lines, "subscriber", "EVENT"):
        parse(event=event, model=SnsModel)
        assert len(event["Records"]) == 1  # SNS invokes once per notification
    rec, plain = sorted(got, key=lambda r: r["Sns"]["MessageId"] == bare["MessageId"])
    # MessageAttributes is a map of the publisher's names: compared by value below.
    sample = {**AWS_SNS_RECORD, "Sns": {**AWS_SNS_RECORD["Sns"], "MessageAttributes": {}}}
    assert same_shape({**rec, "Sns": {**rec["Sns"], "MessageAttributes": {}}}, sample) == []
    assert plain["Sns"]["Subject"] is None and plain["Sns"]["MessageAttributes"] == {}
    assert plain["Sns"]["MessageId"] == bare["MessageId"]
    assert rec["Sns"]["MessageId"] != plain["Sns"]["MessageId"]
    assert sub["SubscriptionArn"] in rec["Sns"]["UnsubscribeUrl"]
    assert rec["Sns"]["Timestamp"].endswith("Z") and rec["Sns"]["SigningCertUrl"].startswith(
        "https://sns.us-east-1.amazonaws.com/"
    )
    assert rec["EventSource"] == "aws:sns" and rec["EventVersion"] == "1.0"
    assert rec["EventSubscriptionArn"] == sub["SubscriptionArn"]
    assert rec["Sns"]["Message"] == "Hello from SNS!" and rec["Sns"]["Subject"] == "TestInvoke"
    assert rec["Sns"]["TopicArn"] == stack.topic_arn and rec["Sns"]["Type"] == "Notification"
    assert rec["Sns"]["MessageAttributes"] == {"Test": {"Type": "String", "Value": "TestString"}}


# -- the context object -------------------------------------------------------------------------


def test_context_object_as_the_python_runtime_builds_it(local_aws: LocalAWS, log_lines) -> None:  # type: ignore[no-untyped-def]
    stack = build_stack(local_aws.endpoint_url, store_src=RECORDER, api=False)
    stack.client("sqs").send_message(QueueUrl=stack.queue_url, MessageBody="x")
    (ctx,) = wait_for(
        lambda: captured(log_lines, "POC-Lambda-1", "CONTEXT"), timeout=30, what="a context"
    )
    fn = stack.client("lambda").get_function(FunctionName="POC-Lambda-1")["Configuration"]
    assert ctx["function_name"] == "POC-Lambda-1"
    assert ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == fn["FunctionArn"]
    # The runtime reads it from AWS_LAMBDA_FUNCTION_MEMORY_SIZE: a string, not a number.
    assert ctx["memory_limit_in_mb"] == str(fn["MemorySize"])
    assert re.fullmatch(r"[0-9a-f-]{36}", ctx["aws_request_id"])
    assert ctx["log_group_name"] == "/aws/lambda/POC-Lambda-1"
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", ctx["log_stream_name"])
    assert ctx["identity"] == [None, None] and ctx["client_context"] is None
    assert 0 < ctx["remaining"] <= fn["Timeout"] * 1000
