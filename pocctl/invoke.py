"""`pocctl invoke`: run a deployed function once with a test event, as the console's Test button.

The samples are the Lambda console's test-event templates ("SQS", "DynamoDB Update" cut to its
INSERT record, "API Gateway AWS Proxy"), in the shapes the Lambda Developer Guide documents
(https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html "Example standard queue message
event", https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html "Example event",
https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway.html "Example proxy event"),
filled in with this stack's queue ARN, stream ARN and a body that is a valid order, so that the
sample exercises the pipeline's own handlers. Each sample carries a unique marker in the order,
so the row Lambda 1 stored can be found however its handler keys it.

The call is Invoke with InvocationType RequestResponse and LogType Tail: AWS answers the last
4 KB of the invocation's log, base64-encoded, in ``LogResult``
(https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocctl import arns
from pocctl.aws import AwsError

if TYPE_CHECKING:
    from pocctl.config import Config
    from pocctl.resources.base import Context

SAMPLES = ("sqs", "dynamodb-insert", "apigateway")
WHICH = ("lambda1", "lambda2")
# A row is looked for by key first, then among at most this many rows (a lab-sized table).
SCAN_LIMIT = 2000


@dataclass(frozen=True)
class Code:
    """Where a function's code is: ``path`` is zipped (a .py file or a folder), ``handler`` is
    Lambda's Handler, ``module_file`` the file that defines it (None when there is none)."""

    path: Path
    handler: str
    module_file: Path | None


def function_code(cfg: Config, which: str) -> Code:
    """The one place invoke, dev and the walkthrough learn where ``which``'s code is
    (lambdaN.code / .handler, or the module in handlers_dir)."""
    fc = cfg.function_code(which)
    return Code(fc.path, fc.handler, fc.module_file)


def function_name(cfg: Config, function: str) -> str:
    """``lambda1``/``lambda2`` as configured, any other name as given."""
    return getattr(cfg, function).name if function in WHICH else function


def which_of(cfg: Config, name: str) -> str | None:
    """``lambda1``/``lambda2`` when ``name`` is one of the stack's functions."""
    return next((w for w in WHICH if getattr(cfg, w).name == name), None)


# -- samples ---------------------------------------------------------------------------------------


def sample_order(marker: str, source: str) -> dict[str, Any]:
    return {
        "item": "glass cleaner",
        "quantity": 1,
        "customer": f"pocctl-{marker}",
        "source": source,
    }


def _now_ms() -> int:
    return int(time.time() * 1000)


def sqs_event(ctx: Context, order: dict[str, Any]) -> dict[str, Any]:
    """The console's "SQS" template: one message on this stack's queue (Step 4.4)."""
    body = json.dumps(order)
    sent = _now_ms()
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "MessageReceiptHandle",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(sent),
                    "SenderId": ctx.account,
                    "ApproximateFirstReceiveTimestamp": str(sent),
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 (SQS's checksum)
                "eventSource": "aws:sqs",
                "eventSourceARN": arns.queue(ctx, ctx.cfg.queue.name),
                "awsRegion": ctx.region,
            }
        ]
    }


def _stream_arn(ctx: Context) -> str:
    from pocctl.resources.base import call_or_none

    ddb = ctx.client("dynamodb")
    table = call_or_none(
        lambda: ddb.describe_table(TableName=ctx.cfg.table.name)["Table"],
        "ResourceNotFoundException",
    )
    arn = (table or {}).get("LatestStreamArn")
    # No stream yet (Task 5 not run): the shape AWS gives one, so the event is still well-formed.
    return arn or f"{arns.table(ctx)}/stream/1970-01-01T00:00:00.000"


def dynamodb_insert_event(ctx: Context, order: dict[str, Any]) -> dict[str, Any]:
    """The INSERT record of the console's "DynamoDB Update" template: a row as Lambda 1 stores
    it (key, the order as a map, receivedAt), in the table's stream view type."""
    from boto3.dynamodb.types import TypeSerializer

    key = ctx.cfg.table.partition_key
    oid = str(uuid.uuid4())
    ser = TypeSerializer()
    image = {key: {"S": oid}, "order": ser.serialize(order), "receivedAt": {"S": _iso_now()}}
    view = ctx.cfg.table.stream_view_type
    record: dict[str, Any] = {"Keys": {key: {"S": oid}}, "SequenceNumber": str(_now_ms())}
    if view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        record["NewImage"] = image
    record.update(
        {
            "ApproximateCreationDateTime": int(time.time()),
            "SizeBytes": len(json.dumps(image)),
            "StreamViewType": view,
        }
    )
    return {
        "Records": [
            {
                "eventID": uuid.uuid4().hex,
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": ctx.region,
                "dynamodb": record,
                "eventSourceARN": _stream_arn(ctx),
            }
        ]
    }


def _iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def apigateway_event(ctx: Context, order: dict[str, Any]) -> dict[str, Any]:
    """The console's "API Gateway AWS Proxy" template: POST / with the order as the body. This
    pipeline's API sends to SQS itself (no Lambda proxy), so its handlers find no Records in it."""
    rid = str(uuid.uuid4())
    headers = {"Content-Type": "application/json", "Host": "example.execute-api.amazonaws.com"}
    return {
        "body": json.dumps(order),
        "resource": "/",
        "path": "/",
        "httpMethod": "POST",
        "isBase64Encoded": False,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "requestContext": {
            "accountId": ctx.account,
            "resourceId": "root",
            "stage": ctx.cfg.api.stage,
            "requestId": rid,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "requestTimeEpoch": _now_ms(),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "pocctl"},
            "path": f"/{ctx.cfg.api.stage}/",
            "resourcePath": "/",
            "httpMethod": "POST",
            "apiId": "pocctl",
            "protocol": "HTTP/1.1",
        },
    }


def sample_event(ctx: Context, sample: str, marker: str) -> dict[str, Any]:
    order = sample_order(marker, f"pocctl invoke --sample {sample}")
    build = {"sqs": sqs_event, "dynamodb-insert": dynamodb_insert_event}.get(sample)
    return (build or apigateway_event)(ctx, order)


# -- invoking --------------------------------------------------------------------------------------


@dataclass
class Invocation:
    function: str
    status: int
    payload: str  # as the function returned it (JSON text)
    error: str | None  # FunctionError: "Unhandled" (or "Handled")
    log_tail: str
    version: str | None = None

    @property
    def result(self) -> Any:
        try:
            return json.loads(self.payload) if self.payload else None
        except json.JSONDecodeError:
            return self.payload

    def as_json(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "statusCode": self.status,
            "functionError": self.error,
            "executedVersion": self.version,
            "payload": self.result,
            "logTail": self.log_tail,
        }


def invoke(ctx: Context, name: str, event: Any) -> Invocation:
    """Invoke ``name`` once (RequestResponse) and read its result and log tail."""
    from pocctl.resources.base import call_or_none

    lam = ctx.client("lambda")
    resp = call_or_none(
        lambda: lam.invoke(
            FunctionName=name,
            InvocationType="RequestResponse",
            LogType="Tail",
            Payload=json.dumps(event).encode(),
        ),
        "ResourceNotFoundException",
    )
    if resp is None:
        raise AwsError(f"function {name} does not exist", hint="run `pocctl up` first")
    tail = base64.b64decode(resp.get("LogResult") or "").decode("utf-8", "replace")
    return Invocation(
        function=name,
        status=resp.get("StatusCode", 0),
        payload=resp["Payload"].read().decode("utf-8", "replace"),
        error=resp.get("FunctionError"),
        log_tail=tail,
        version=resp.get("ExecutedVersion"),
    )


def find_row(ctx: Context, key_value: str, marker: str) -> dict[str, Any] | None:
    """The row Lambda 1 stored for a sample: by the message ID as key (pocctl's handler), else
    the row holding ``marker`` anywhere (a handler with its own key scheme)."""
    ddb = ctx.client("dynamodb")
    key = ctx.cfg.table.partition_key
    item = ddb.get_item(
        TableName=ctx.cfg.table.name, Key={key: {"S": key_value}}, ConsistentRead=True
    ).get("Item")
    if item is not None:
        return item  # type: ignore[no-any-return]
    from pocctl.order_find import scan_pages

    for items, _ in scan_pages(ddb, ctx.cfg.table.name, SCAN_LIMIT, ConsistentRead=True):
        for row in items:
            if marker in json.dumps(row):
                return row
    return None


@dataclass
class Step44:
    invocation: Invocation
    message_id: str
    row: dict[str, Any] | None


def lambda1_step_4_4(ctx: Context) -> Step44:
    """The lab's Step 4.4: invoke Lambda 1 with the SQS sample, then look for the row."""
    marker = uuid.uuid4().hex[:12]
    event = sqs_event(ctx, sample_order(marker, "lambda1 --test"))
    message_id = event["Records"][0]["messageId"]
    inv = invoke(ctx, ctx.cfg.lambda1.name, event)
    row = None if inv.error else find_row(ctx, message_id, marker)
    return Step44(inv, message_id, row)
