"""Helpers for the embedded-engine tests: deadline-bounded waits, zips, and the lab's stack built
with boto3 exactly as pocctl builds it (so these tests do not depend on pocctl's own `up`)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pocctl.local.executor import FunctionSpec
from pocctl.local.server import local_client

T = TypeVar("T")

ACCOUNT = "123456789012"
REGION = "us-east-1"


def wait_for(
    condition: Callable[[], T], *, timeout: float = 15.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    last: T = condition()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or condition}")
        pause.wait(interval)
        last = condition()
    return last


def zipped(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, src in files.items():
            zf.writestr(name, src)
    return buf.getvalue()


def deploy_function(
    endpoint: str, name: str, files: dict[str, str], handler: str, **config: Any
) -> tuple[Any, str]:
    """CreateFunction of ``files`` (python3.12, 5 s unless ``config`` says otherwise) with a role
    ``NAME-role`` Lambda may assume; (the Lambda client, the role's ARN)."""
    lam = local_client(endpoint, "lambda")
    iam = local_client(endpoint, "iam")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=LAMBDA_TRUST)
    lam.create_function(
        **{
            "FunctionName": name,
            "Runtime": "python3.12",
            "Role": role["Role"]["Arn"],
            "Handler": handler,
            "Code": {"ZipFile": zipped(files)},
            "Timeout": 5,
            **config,
        }
    )
    return lam, role["Role"]["Arn"]


def function_spec(name: str, files: dict[str, str], handler: str, **kw: Any) -> FunctionSpec:
    """A function as the executor gets it from the embedded AWS, its code zipped from ``files``
    (us-east-1, python3.12, 5 s, 256 MB unless ``kw`` says otherwise)."""
    code = zipped(files)
    fields: dict[str, Any] = dict(
        name=name,
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        handler=handler,
        runtime="python3.12",
        timeout=5,
        memory=256,
        env={},
        code_sha256=base64.b64encode(hashlib.sha256(code).digest()).decode(),
        code=code,
        region="us-east-1",
        account_id="123456789012",
    )
    fields.update(kw)
    return FunctionSpec(**fields)


# Lambda 1: stores each SQS body under orderID = messageId (conditional write), reports the
# records it could not store. A body {"poison": true} fails on purpose.
STORE_ORDER = """
import json, os
import boto3

ddb = boto3.client("dynamodb")

def handler(event, context):
    failures = []
    for record in event["Records"]:
        try:
            order = json.loads(record["body"])
            if order.get("poison"):
                raise ValueError("poison message")
            ddb.put_item(
                TableName=os.environ["TABLE_NAME"],
                Item={"orderID": {"S": record["messageId"]}, "order": {"S": record["body"]}},
                ConditionExpression="attribute_not_exists(orderID)",
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            pass  # already stored by an earlier delivery
        except Exception as exc:
            print(f"could not store {record['messageId']}: {exc}")
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
"""

# Lambda 2: publishes each INSERT's NewImage as plain JSON. A batch holding an order with
# {"fail2": true} fails as a whole before anything is published (so bisecting can isolate it
# without publishing the good ones twice).
NOTIFY_ORDER = """
import json, os
import boto3

sns = boto3.client("sns")

def plain(image):
    return {k: list(v.values())[0] for k, v in image.items()}

def handler(event, context):
    items = [plain(r["dynamodb"]["NewImage"]) for r in event["Records"]
             if r["eventName"] == "INSERT"]
    for item in items:
        if json.loads(item.get("order", "{}")).get("fail2"):
            raise RuntimeError("cannot notify " + item["orderID"])
    for item in items:
        sns.publish(TopicArn=os.environ["TOPIC_ARN"], Message=json.dumps(item))
    return {"batchItemFailures": []}
"""


@dataclass
class Stack:
    """The lab's resources on the embedded server (names as pocctl creates them)."""

    endpoint: str
    clients: dict[str, Any] = field(default_factory=dict)
    role_arn: str = ""
    queue_url: str = ""
    queue_arn: str = ""
    dlq_url: str = ""
    stream_arn: str = ""
    topic_arn: str = ""
    failures_url: str = ""
    failures_arn: str = ""
    probe_url: str = ""
    api_id: str = ""
    sqs_mapping: str = ""
    stream_mapping: str = ""

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = local_client(self.endpoint, service)
        return self.clients[service]

    # -- changing the API --------------------------------------------------------------------

    def api_root(self) -> str:
        """The REST API's root resource (the lab's one method: POST /)."""
        items = self.client("apigateway").get_resources(restApiId=self.api_id)["items"]
        return next(r["id"] for r in items)

    def respond_with(self, template: str) -> None:
        """POST /'s 200 integration response renders ``template``: not deployed, so the stage
        goes on serving its deployment until the next CreateDeployment."""
        self.client("apigateway").put_integration_response(
            restApiId=self.api_id,
            resourceId=self.api_root(),
            httpMethod="POST",
            statusCode="200",
            selectionPattern="",
            responseTemplates={"application/json": template},
        )

    # -- reading back ------------------------------------------------------------------------

    def count(self, queue_url: str) -> int:
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def rows(self) -> list[dict[str, Any]]:
        ddb = self.client("dynamodb")
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": "orders"}
        while True:
            page = ddb.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def drain(self, queue_url: str, into: list[str], *, max_rounds: int = 200) -> None:
        """Receive-and-delete whatever is visible now (bounded), appending bodies to ``into``."""
        sqs = self.client("sqs")
        for _ in range(max_rounds):
            msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not msgs:
                return
            into.extend(m["Body"] for m in msgs)
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)
                ],
            )


def queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def trust_policy(service: str) -> str:
    """A role trust policy that lets ``service`` (e.g. lambda.amazonaws.com) assume the role."""
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


LAMBDA_TRUST = trust_policy("lambda.amazonaws.com")


def permissions(actions: list[str], resource: str = "*") -> str:
    statement = {"Effect": "Allow", "Action": actions, "Resource": resource}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


# What the kit's functions may do: every DynamoDB, SNS, SQS and Logs action of the account.
KIT_LAMBDA_POLICY = permissions(["dynamodb:*", "sns:*", "sqs:*", "logs:*"])


def build_stack(
    endpoint: str,
    *,
    store_src: str = STORE_ORDER,
    notify_src: str = NOTIFY_ORDER,
    visibility_timeout: int = 60,
    lambda1_timeout: int | None = None,
    mappings: bool = True,
    api: bool = True,
    throttle: tuple[int, int] = (100, 50),
) -> Stack:
    """The pipeline as pocctl builds it (the lab's settings), with knobs for fast tests."""
    s = Stack(endpoint)
    if lambda1_timeout is None:
        # AWS refuses an SQS mapping whose queue's visibility timeout is below the function's
        # timeout: a short visibility (fast retries) comes with a timeout no longer than it.
        lambda1_timeout = min(10, visibility_timeout)
    iam, sqs, ddb = s.client("iam"), s.client("sqs"), s.client("dynamodb")
    lam, sns = s.client("lambda"), s.client("sns")
    # Functions and the integration call AWS as these roles, authorized as on AWS
    # (pocctl.local.iam_authz): the trust policies let the services assume them, and the
    # permissions cover what the kit's handlers and tests do.
    s.role_arn = iam.create_role(
        RoleName="POC-Lambda-Role", AssumeRolePolicyDocument=trust_policy("lambda.amazonaws.com")
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName="POC-Lambda-Role", PolicyName="kit", PolicyDocument=KIT_LAMBDA_POLICY
    )
    apigw_role = iam.create_role(
        RoleName="APIGateway-SQS", AssumeRolePolicyDocument=trust_policy("apigateway.amazonaws.com")
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName="APIGateway-SQS",
        PolicyName="kit",
        PolicyDocument=permissions(
            ["sqs:SendMessage"], f"arn:aws:sqs:{REGION}:{ACCOUNT}:POC-Queue"
        ),
    )

    s.dlq_url = sqs.create_queue(QueueName="POC-Queue-DLQ")["QueueUrl"]
    redrive = {"deadLetterTargetArn": queue_arn(sqs, s.dlq_url), "maxReceiveCount": 3}
    s.queue_url = sqs.create_queue(
        QueueName="POC-Queue",
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(redrive),
            "SqsManagedSseEnabled": "true",
        },
    )["QueueUrl"]
    s.queue_arn = queue_arn(sqs, s.queue_url)
    s.failures_url = sqs.create_queue(QueueName="POC-Lambda-2-Failures")["QueueUrl"]
    s.failures_arn = queue_arn(sqs, s.failures_url)

    table = ddb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "orderID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "orderID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    s.stream_arn = table["TableDescription"]["LatestStreamArn"]

    s.topic_arn = sns.create_topic(Name="POC-Topic")["TopicArn"]
    s.probe_url = sqs.create_queue(QueueName="probe")["QueueUrl"]
    sns.subscribe(
        TopicArn=s.topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn(sqs, s.probe_url),
        Attributes={"RawMessageDelivery": "true"},
    )

    lam.create_function(
        FunctionName="POC-Lambda-1",
        Runtime="python3.12",
        Role=s.role_arn,
        Handler="store_order.handler",
        Code={"ZipFile": zipped({"store_order.py": store_src})},
        Timeout=lambda1_timeout,
        Environment={"Variables": {"TABLE_NAME": "orders"}},
    )
    lam.create_function(
        FunctionName="POC-Lambda-2",
        Runtime="python3.12",
        Role=s.role_arn,
        Handler="notify_order.handler",
        Code={"ZipFile": zipped({"notify_order.py": notify_src})},
        Timeout=10,
        Environment={"Variables": {"TOPIC_ARN": s.topic_arn}},
    )
    if mappings:
        s.sqs_mapping = lam.create_event_source_mapping(
            EventSourceArn=s.queue_arn,
            FunctionName="POC-Lambda-1",
            BatchSize=10,
            FunctionResponseTypes=["ReportBatchItemFailures"],
        )["UUID"]
        s.stream_mapping = lam.create_event_source_mapping(
            EventSourceArn=s.stream_arn,
            FunctionName="POC-Lambda-2",
            StartingPosition="TRIM_HORIZON",
            BatchSize=100,
            MaximumRetryAttempts=3,
            BisectBatchOnFunctionError=True,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            DestinationConfig={"OnFailure": {"Destination": s.failures_arn}},
        )["UUID"]
    if api:
        s.api_id = build_api(s, apigw_role, throttle)
    return s


def build_api(s: Stack, role_arn: str, throttle: tuple[int, int] = (100, 50)) -> str:
    """``throttle``: the stage's (rate, burst), enforced by the embedded API Gateway."""
    ag = s.client("apigateway")
    api = ag.create_rest_api(name="POC-API", endpointConfiguration={"types": ["REGIONAL"]})["id"]
    root = next(r["id"] for r in ag.get_resources(restApiId=api)["items"] if r["path"] == "/")
    schema = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "Order",
        "type": "object",
        "minProperties": 1,
    }
    ag.create_model(
        restApiId=api, name="Order", contentType="application/json", schema=json.dumps(schema)
    )
    validator = ag.create_request_validator(
        restApiId=api, name="body-only", validateRequestBody=True, validateRequestParameters=False
    )["id"]
    ag.put_method(
        restApiId=api,
        resourceId=root,
        httpMethod="POST",
        authorizationType="NONE",
        requestValidatorId=validator,
        requestModels={"application/json": "Order"},
    )
    ag.put_integration(
        restApiId=api,
        resourceId=root,
        httpMethod="POST",
        type="AWS",
        integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:{REGION}:sqs:path/{ACCOUNT}/POC-Queue",
        credentials=role_arn,
        requestParameters={
            "integration.request.header.Content-Type": "'application/x-www-form-urlencoded'"
        },
        requestTemplates={
            "application/json": "Action=SendMessage&MessageBody=$util.urlEncode($input.body)"
        },
        passthroughBehavior="NEVER",
    )
    for code in ("200", "400", "500"):
        ag.put_method_response(
            restApiId=api,
            resourceId=root,
            httpMethod="POST",
            statusCode=code,
            responseModels={"application/json": "Empty"},
        )
    ag.put_integration_response(
        restApiId=api,
        resourceId=root,
        httpMethod="POST",
        statusCode="200",
        selectionPattern="",
        responseTemplates={
            "application/json": (
                '{"messageId": "$input.path(\'$.SendMessageResponse.SendMessageResult'
                ".MessageId')\"}"
            )
        },
    )
    ag.put_integration_response(
        restApiId=api,
        resourceId=root,
        httpMethod="POST",
        statusCode="400",
        selectionPattern=r"4\d{2}",
    )
    ag.put_integration_response(
        restApiId=api,
        resourceId=root,
        httpMethod="POST",
        statusCode="500",
        selectionPattern=r"5\d{2}",
        responseTemplates={"application/json": '{"message": "could not enqueue the order"}'},
    )
    ag.create_deployment(restApiId=api, stageName="prod")
    ag.update_stage(
        restApiId=api,
        stageName="prod",
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(throttle[0])},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(throttle[1])},
        ],
    )
    return api


def post(
    url: str, body: bytes | str, content_type: str | None = "application/json", method: str = "POST"
) -> tuple[int, dict[str, Any] | str]:
    """A plain HTTP request (http.client, not boto3): status and decoded JSON body.

    http.client rather than urllib, which would add a Content-Type of its own.
    """
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1", url
    data = body.encode() if isinstance(body, str) else body
    headers = {"Content-Type": content_type} if content_type else {}
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(
            method,
            parts.path + (f"?{parts.query}" if parts.query else ""),
            body=data if method != "GET" else None,
            headers=headers,
        )
        resp = conn.getresponse()
        status, raw = resp.status, resp.read()
    finally:
        conn.close()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


# -- crafted HTTP requests -------------------------------------------------------------------

# The shape of a SigV4 Authorization header; the embedded AWS checks only the shape.
SIGNED = (
    "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sqs/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
)


def request(
    endpoint: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    host: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request with exactly these headers (Host: the endpoint's unless ``host``; "" sends
    none): status, headers (lower-case names), body."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    assert parts.hostname == "127.0.0.1", endpoint
    conn = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=20)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host != "":
            conn.putheader("Host", host if host is not None else str(parts.netloc))
        for k, v in headers.items():
            conn.putheader(k, v)
        if body or method in ("POST", "PUT"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def signed(endpoint: str, service: str) -> Any:
    """A plain boto3 client (it signs, as every SDK does), no retries."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        config=Config(retries={"total_max_attempts": 1}),
    )
