"""The ARN of every resource pocctl makes or names, computed from the target (partition,
account, region) and config.yaml, so a policy can name a resource before it exists.

The forms are the ones IAM evaluates requests against (Service Authorization Reference) and each
service answers; resources/iam.py cites the reference for each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pocctl.resources.base import Context


def table(ctx: Context) -> str:
    return ctx.arn("dynamodb", f"table/{ctx.cfg.table.name}")


def streams(ctx: Context) -> str:
    """Every stream of the table: a stream's label changes each time it is re-enabled."""
    return table(ctx) + "/stream/*"


def queue(ctx: Context, name: str) -> str:
    return ctx.arn("sqs", name)


def topic(ctx: Context) -> str:
    return ctx.arn("sns", ctx.cfg.topic.name)


def role(ctx: Context, name: str) -> str:
    return ctx.arn("iam", f"role/{name}", region=False)


def policy(ctx: Context, name: str) -> str:
    return ctx.arn("iam", f"policy/{name}", region=False)


def aws_managed_policy(ctx: Context, path: str) -> str:
    return f"arn:{ctx.aws.partition}:iam::aws:policy/{path}"


def log_group(ctx: Context, function: str) -> str:
    """The function's log group as the SAR names the log-group resource (no ``:*`` suffix)."""
    return ctx.arn("logs", f"log-group:/aws/lambda/{function}")


def rest_api(ctx: Context, api_id: str) -> str:
    return f"arn:{ctx.aws.partition}:apigateway:{ctx.region}::/restapis/{api_id}"


def sqs_integration(ctx: Context, queue_name: str) -> str:
    """API Gateway's integration URI for SQS (an ARN of API Gateway's service proxy)."""
    return f"arn:{ctx.aws.partition}:apigateway:{ctx.region}:sqs:path/{ctx.account}/{queue_name}"
