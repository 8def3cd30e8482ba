"""Task 6: the topic and the email subscription."""

from __future__ import annotations

from typing import Any

from pocctl.resources import iam
from pocctl.resources.base import Change, Context, Observed, Resource, not_found

# What SubscriptionArn says until the recipient clicks the link in the email.
PENDING = ("pending confirmation", "PendingConfirmation")


class Topic(Resource):
    type = "sns_topic"
    kind = "topic"  # the word status, plan and the walkthrough show

    def __init__(self, cfg: Any) -> None:
        super().__init__("topic", cfg.topic.name)

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {}

    def find(self, ctx: Context) -> Observed | None:
        arn = iam.topic_arn(ctx)
        try:
            ctx.client("sns").get_topic_attributes(TopicArn=arn)
        except Exception as e:
            if not_found(e, "NotFound", "NotFoundException"):
                return None
            raise
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
    sns = ctx.client("sns")
    try:
        return [
            s
            for page in sns.get_paginator("list_subscriptions_by_topic").paginate(
                TopicArn=topic_arn
            )
            for s in page["Subscriptions"]
        ]
    except Exception as e:
        if not_found(e, "NotFound", "NotFoundException"):
            return []
        raise


class EmailSubscription(Resource):
    """Made once per address: a second run finds it (pending or confirmed) and does nothing."""

    type = "sns_subscription"
    kind = "email"  # the word status, plan and the walkthrough show

    def __init__(self, cfg: Any) -> None:
        super().__init__("subscription.email", cfg.topic.notification_email or "")

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"protocol": "email", "endpoint": self.name}

    def find(self, ctx: Context) -> Observed | None:
        for s in subscriptions(ctx, iam.topic_arn(ctx)):
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
            TopicArn=iam.topic_arn(ctx), Protocol="email", Endpoint=self.name
        )["SubscriptionArn"]
        confirmed = arn not in PENDING
        return {"arn": arn if confirmed else None, "endpoint": self.name, "confirmed": confirmed}

    def update(self, ctx: Context, observed: Observed, changes: list[Change]) -> Observed:
        return observed

    def delete(self, ctx: Context, observed: Observed) -> None:
        # A pending subscription cannot be unsubscribed; AWS drops it after three days.
        if observed.get("confirmed") and observed.get("arn"):
            try:
                ctx.client("sns").unsubscribe(SubscriptionArn=observed["arn"])
            except Exception as e:
                if not not_found(e, "NotFound", "NotFoundException"):
                    raise

    def status_note(self, observed: Observed) -> str:
        return "confirmed" if observed.get("confirmed") else "pending confirmation (check inbox)"
