"""Task 3: the order queue, its dead-letter queue, and Lambda 2's on-failure queue."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from pocctl import arns, aws
from pocctl.config import Config
from pocctl.resources.base import Change, Context, Observed, Resource, call_or_none

# Attributes pocctl manages, as SQS spells them. Everything is a string on the wire.
_JSON_ATTRS = ("Policy", "RedrivePolicy")
MAX_ORDER_BYTES = 262144


def _queue_deleted_recently(exc: BaseException) -> str | None:
    if aws.error_code(exc) in (
        "QueueDeletedRecently",
        "AWS.SimpleQueueService.QueueDeletedRecently",
    ):
        return "SQS needs 60 s after deleting a queue before one of the same name can be made"
    return None


# What SQS answers about a queue that is not there (the JSON and the query protocol's codes).
NO_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


def queue_url(ctx: Context, name: str) -> str | None:
    sqs = ctx.client("sqs")
    return call_or_none(lambda: sqs.get_queue_url(QueueName=name)["QueueUrl"], *NO_QUEUE)


# Every message a queue holds: waiting, received but not yet deleted (in flight), and delayed.
# SQS gives each count as an approximation (GetQueueAttributes, SQS API Reference).
MESSAGE_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def queued_messages(ctx: Context, name: str) -> int | None:
    """How many messages queue ``name`` holds; None when there is no such queue."""
    url = queue_url(ctx, name)
    if url is None:
        return None
    sqs = ctx.client("sqs")
    attrs = call_or_none(
        lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(MESSAGE_COUNTS)),
        *NO_QUEUE,
    )
    if attrs is None:
        return None
    attrs = attrs["Attributes"]
    return sum(int(attrs.get(k, 0)) for k in MESSAGE_COUNTS)


class Queue(Resource):
    """A queue; each of the lab's three is a subclass that says its name and attributes."""

    type = "sqs_queue"
    kind = "queue"
    noun = "queue"
    holds_data = True

    def desired(self, ctx: Context) -> dict[str, Any]:
        return _plain_attributes(ctx)

    def console_url(self, identity: dict[str, Any], region: str) -> str | None:
        if not identity.get("url"):
            return None
        home = f"https://{region}.console.aws.amazon.com/sqs/v3/home?region={region}"
        return f"{home}#/queues/{quote(identity['url'], safe='')}"

    def cli_args(self, identity: dict[str, Any]) -> list[str] | None:
        if not identity.get("url"):
            return None
        return [
            "sqs get-queue-attributes",
            f"--queue-url {identity['url']}",
            "--attribute-names All",
        ]

    def holding(self, ctx: Context) -> str:
        return f"{queued_messages(ctx, self.name) or 0} messages"

    def address(self, identity: dict[str, Any]) -> str | None:
        return identity.get("url")  # what the SQS API calls it by

    def _attributes_at(self, ctx: Context, url: str) -> dict[str, str] | None:
        sqs = ctx.client("sqs")
        got = call_or_none(
            lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]), *NO_QUEUE
        )
        return None if got is None else got["Attributes"]

    def find(self, ctx: Context) -> Observed | None:
        # The URL the state file recorded (same account, region and endpoint: State checks)
        # saves a GetQueueUrl; AWS is still asked, and a stale URL falls back to the name.
        url = (ctx.known.get(self.key) or {}).get("url")
        attrs = None
        if url and url.rstrip("/").rsplit("/", 1)[-1] == self.name:
            attrs = self._attributes_at(ctx, url)
        if attrs is None:
            url = queue_url(ctx, self.name)
            attrs = self._attributes_at(ctx, url) if url else None
        if url is None or attrs is None:
            return None
        observed: Observed = {"url": url, "arn": attrs.get("QueueArn")}
        for k in self.desired(ctx):
            v = attrs.get(k)
            observed[k] = json.loads(v) if k in _JSON_ATTRS and v else v
        return observed

    def identity(self, ctx: Context, observed: Observed) -> dict[str, Any]:
        return {"arn": observed.get("arn"), "url": observed.get("url")}

    def _wire(self, attrs: dict[str, Any]) -> dict[str, str]:
        return {k: json.dumps(v) if k in _JSON_ATTRS else str(v) for k, v in attrs.items()}

    def create(self, ctx: Context) -> Observed:
        want = self.desired(ctx)

        def make() -> str:
            return ctx.client("sqs").create_queue(
                QueueName=self.name,
                Attributes=self._wire(want),
                tags={"pocctl": "orders-pipeline"},
            )["QueueUrl"]

        url = aws.retry_while(
            make,
            _queue_deleted_recently,
            timeout=aws.QUEUE_DELETED_RECENTLY_TIMEOUT,
            on_wait=ctx.on_retry,
            interval=5.0,
        )
        return {"url": url, "arn": arns.queue(ctx, self.name), **want}

    def update(self, ctx: Context, observed: Observed, changes: list[Change]) -> Observed:
        want = self.desired(ctx)
        changed = {c.field: want[c.field] for c in changes}
        if "Policy" in want:
            # moto's SetQueueAttributes drops a Policy it is not sent (AWS keeps it); sending it
            # every time is idempotent on AWS and keeps the embedded AWS from losing it.
            changed["Policy"] = want["Policy"]
        ctx.client("sqs").set_queue_attributes(
            QueueUrl=observed["url"], Attributes=self._wire(changed)
        )
        return {**observed, **want}

    def delete(self, ctx: Context, observed: Observed) -> None:
        sqs = ctx.client("sqs")
        call_or_none(lambda: sqs.delete_queue(QueueUrl=observed["url"]), *NO_QUEUE)


def _plain_attributes(ctx: Context) -> dict[str, Any]:
    return {
        "MessageRetentionPeriod": "1209600",  # the longest: time to look at what failed
        "SqsManagedSseEnabled": "true",
    }


def order_queue_policy(ctx: Context) -> dict[str, Any]:
    """Lab Task 3's "Basic" access policy: the API role sends, Lambda 1's role receives."""
    cfg = ctx.cfg
    arn = arns.queue(ctx, cfg.queue.name)
    return {
        "Version": "2012-10-17",
        "Id": f"{cfg.queue.name}-access",
        "Statement": [
            {
                "Sid": "ApiGatewaySendsOrders",
                "Effect": "Allow",
                "Principal": {"AWS": arns.role(ctx, cfg.iam.roles.apigateway)},
                "Action": "sqs:SendMessage",
                "Resource": arn,
            },
            {
                "Sid": "Lambda1ConsumesOrders",
                "Effect": "Allow",
                "Principal": {"AWS": arns.role(ctx, cfg.iam.roles.lambda1)},
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ChangeMessageVisibility",
                ],
                "Resource": arn,
            },
        ],
    }


def _order_queue_attributes(ctx: Context) -> dict[str, Any]:
    q = ctx.cfg.queue
    return {
        "VisibilityTimeout": str(q.visibility_timeout),
        "MessageRetentionPeriod": str(q.message_retention_period),
        # 256 KiB, stated rather than left to SQS's default (1 MiB since 2025): every order the
        # queue accepts then fits in one DynamoDB item (400 KB), so none is refused downstream;
        # a larger one gets a 400 from the API instead of dying in the dead-letter queue.
        "MaximumMessageSize": str(MAX_ORDER_BYTES),
        "SqsManagedSseEnabled": "true",
        "Policy": order_queue_policy(ctx),
        "RedrivePolicy": {
            "deadLetterTargetArn": arns.queue(ctx, q.dead_letter_queue),
            "maxReceiveCount": q.max_receive_count,
        },
    }


class DeadLetterQueue(Queue):
    def __init__(self, cfg: Config) -> None:
        super().__init__("queue.dlq", cfg.queue.dead_letter_queue)


class OrderQueue(Queue):
    """Its policy names the roles (AWS refuses an unknown principal) and its RedrivePolicy the
    dead-letter queue: all three exist first."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(
            "queue.orders", cfg.queue.name, ("queue.dlq", "role.lambda1", "role.apigateway")
        )

    def desired(self, ctx: Context) -> dict[str, Any]:
        return _order_queue_attributes(ctx)


class FailureQueue(Queue):
    def __init__(self, cfg: Config) -> None:
        super().__init__("queue.lambda2_failures", cfg.lambda2.on_failure_queue)
