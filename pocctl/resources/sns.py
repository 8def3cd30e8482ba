"""Task 6: the topic and the email subscription."""

from __future__ import annotations

from typing import Any

from pocctl import arns
from pocctl.config import Config
from pocctl.resources.base import Change, Context, Observed, Resource, call_or_none

# What SubscriptionArn says until the recipient clicks the link in the email.
PENDING = ("pending confirmation", "PendingConfirmation")
_NO_TOPIC = ("NotFound", "NotFoundException")


class Topic(Resource):
    """Task 6's topic: Lambda 2 publishes each new order to it."""

    type = "sns_topic"
    kind = "topic"
    noun = "topic"

    def __init__(self, cfg: Config) -> None:
        super().__init__("topic", cfg.topic.name)

    def console_url(self, identity: dict[str, Any], region: str) -> str | None:
        return f"{_home(region)}#/topic/{identity.get('arn') or ''}"

    def cli_args(self, identity: dict[str, Any]) -> list[str] | None:
        return ["sns get-topic-attributes", f"--topic-arn {identity.get('arn') or ''}"]

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {}

    def find(self, ctx: Context) -> Observed | None:
        arn = arns.topic(ctx)
        sns = ctx.client("sns")
        if call_or_none(lambda: sns.get_topic_attributes(TopicArn=arn), *_NO_TOPIC) is None:
            return None
        return {"arn": arn}

    def create(self, ctx: Context) -> Observed:
        arn = ctx.client("sns").create_topic(
            Name=self.name, Tags=[{"Key": "pocctl", "Value": "orders-pipeline"}]
        )["TopicArn"]
        return {"arn": arn}

    def update(self, ctx: Context, observed: Observed, changes: list[Change]) -> Observed:
        return observed

    def delete(self, ctx: Context, observed: Observed) -> None:
        # Deleting a topic also deletes its subscriptions; it succeeds when already gone.
        ctx.client("sns").delete_topic(TopicArn=observed["arn"])


def subscriptions(ctx: Context, topic_arn: str) -> list[dict[str, Any]]:
    pages = ctx.client("sns").get_paginator("list_subscriptions_by_topic")
    found = call_or_none(
        lambda: [s for page in pages.paginate(TopicArn=topic_arn) for s in page["Subscriptions"]],
        *_NO_TOPIC,
    )
    return found or []


class EmailSubscription(Resource):
    """Made once per address: a second run finds it (pending or confirmed) and does nothing."""

    type = "sns_subscription"
    kind = "email"
    noun = "subscription"

    def __init__(self, cfg: Config) -> None:
        super().__init__("subscription.email", cfg.topic.notification_email or "", ("topic",))

    def console_url(self, identity: dict[str, Any], region: str) -> str | None:
        arn = identity.get("arn")
        return f"{_home(region)}#/subscription/{arn}" if arn else None

    def cli_args(self, identity: dict[str, Any]) -> list[str] | None:
        arn = identity.get("arn")
        topic = arn.rsplit(":", 1)[0] if arn else ""
        return ["sns list-subscriptions-by-topic", f"--topic-arn {topic}"] if topic else None

    def pending(self, identity: dict[str, Any]) -> str | None:
        if identity.get("confirmed"):
            return None
        return "pending: click the link in the confirmation email"

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"protocol": "email", "endpoint": self.name}

    def find(self, ctx: Context) -> Observed | None:
        for s in subscriptions(ctx, arns.topic(ctx)):
            if s["Protocol"] == "email" and s["Endpoint"].lower() == self.name.lower():
                confirmed = s["SubscriptionArn"] not in PENDING
                return {
                    "arn": s["SubscriptionArn"] if confirmed else None,
                    "protocol": "email",
                    "endpoint": s["Endpoint"],
                    "confirmed": confirmed,
                }
        return None

    def diff(self, ctx: Context, observed: Observed) -> list[Change]:
        return []

    def identity(self, ctx: Context, observed: Observed) -> dict[str, Any]:
        return {
            "arn": observed.get("arn"),
            "endpoint": self.name,
            "confirmed": observed.get("confirmed", False),
        }

    def create(self, ctx: Context) -> Observed:
        arn = ctx.client("sns").subscribe(
            TopicArn=arns.topic(ctx), Protocol="email", Endpoint=self.name
        )["SubscriptionArn"]
        confirmed = arn not in PENDING
        return {"arn": arn if confirmed else None, "endpoint": self.name, "confirmed": confirmed}

    def update(self, ctx: Context, observed: Observed, changes: list[Change]) -> Observed:
        return observed

    def delete(self, ctx: Context, observed: Observed) -> None:
        # A pending subscription cannot be unsubscribed; AWS drops it after three days.
        if observed.get("confirmed") and observed.get("arn"):
            sns = ctx.client("sns")
            call_or_none(lambda: sns.unsubscribe(SubscriptionArn=observed["arn"]), *_NO_TOPIC)

    def status_note(self, observed: Observed) -> str:
        return "confirmed" if observed.get("confirmed") else "pending confirmation (check inbox)"


def _home(region: str) -> str:
    return f"https://{region}.console.aws.amazon.com/sns/v3/home?region={region}"
