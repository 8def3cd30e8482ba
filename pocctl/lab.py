"""The lab's Tasks 1–10 in order: the one place that fixes what is built when.

`up` walks TASKS forwards; `down` walks the same resources backwards. Each resource says what
must exist before it (Resource.needs): a parallel `up` starts each resource as soon as its needs
are made, and the lab's order is one order that honours them (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pocctl.config import Config
    from pocctl.resources.base import Resource


# What a task runs: build its resources (`up` runs these), test the whole pipeline with an
# order, or tear every resource down.
BUILD, TEST, TEARDOWN = "build", "test", "teardown"


@dataclass(frozen=True)
class Task:
    number: int
    command: str
    title: str
    summary: str  # one line, for --help and the progress output
    why: str  # a few sentences for the walkthrough: what it builds and why it matters
    resources: Callable[[Config], list[Resource]]
    action: str = BUILD


# Each task's resources, in creation order. The resource modules (and boto3's world behind them)
# are imported when a task is built, not when the CLI starts.


def _iam(cfg: Config) -> list[Resource]:
    from pocctl.resources import iam

    return iam.resources(cfg)


def _table(cfg: Config) -> list[Resource]:
    from pocctl.resources import dynamodb

    return [dynamodb.Table(cfg)]


def _queue(cfg: Config) -> list[Resource]:
    from pocctl.resources import sqs

    return [sqs.DeadLetterQueue(cfg), sqs.OrderQueue(cfg)]


def _lambda1(cfg: Config) -> list[Resource]:
    from pocctl.resources import lambda_

    return [lambda_.Function(cfg, "lambda1"), lambda_.QueueTrigger(cfg)]


def _streams(cfg: Config) -> list[Resource]:
    from pocctl.resources import dynamodb

    return [dynamodb.Stream(cfg)]


def _topic(cfg: Config) -> list[Resource]:
    from pocctl.resources import sns

    out: list[Resource] = [sns.Topic(cfg)]
    if cfg.topic.notification_email:
        out.append(sns.EmailSubscription(cfg))
    return out


def _lambda2(cfg: Config) -> list[Resource]:
    from pocctl.resources import lambda_, sqs

    return [sqs.FailureQueue(cfg), lambda_.Function(cfg, "lambda2"), lambda_.StreamTrigger(cfg)]


def _api(cfg: Config) -> list[Resource]:
    from pocctl.resources import apigateway

    return [apigateway.RestApi(cfg)]


def _none(cfg: Config) -> list[Resource]:
    return []


TASKS: tuple[Task, ...] = (
    Task(
        1,
        "iam",
        "Creating IAM policies and roles",
        "four least-privilege policies and three roles",
        "Each component gets its own role with only the permissions it needs: Lambda 1 may read "
        "the queue and write the table, Lambda 2 may read the stream and publish, and API Gateway "
        "may only send to the queue. Every statement names the one resource it is for.",
        _iam,
    ),
    Task(
        2,
        "table",
        "Creating a DynamoDB table",
        "the orders table (on-demand)",
        "The orders table is where every accepted order is stored. On-demand billing means no "
        "capacity planning: it scales with the spike and costs nothing when idle.",
        _table,
    ),
    Task(
        3,
        "queue",
        "Creating an SQS queue",
        "the order queue with its access policy and dead-letter queue",
        "The queue decouples the API from the processing: a spike of orders waits in the queue "
        "instead of overwhelming the backend. Orders that keep failing move to the dead-letter "
        "queue instead of being lost or retried forever.",
        _queue,
    ),
    Task(
        4,
        "lambda1",
        "Creating a Lambda function and setting up triggers",
        "POC-Lambda-1 and its SQS trigger",
        "Lambda 1 is triggered by the queue: the Lambda service polls it, hands the function a "
        "batch, and deletes what the function stored. Failed messages alone are retried.",
        _lambda1,
    ),
    Task(
        5,
        "streams",
        "Enabling DynamoDB Streams",
        "a NEW_IMAGE stream on the table",
        "A stream is an ordered log of every change to the table. It lets the notification step "
        "react to new orders without Lambda 1 knowing anything about notifications.",
        _streams,
    ),
    Task(
        6,
        "topic",
        "Creating an SNS topic and setting up subscriptions",
        "the notification topic and the email subscription",
        "SNS fans a message out to every subscriber. An email subscription must be confirmed by "
        "its recipient before anything is delivered to it (Step 6.2). On the embedded AWS the "
        "confirmation email is in `pocctl inbox`, and `pocctl inbox --confirm` opens its link.",
        _topic,
    ),
    Task(
        7,
        "lambda2",
        "Creating a Lambda function to publish a message to the SNS topic",
        "POC-Lambda-2, its stream trigger and its failure queue",
        "Lambda 2 reads the stream and publishes each new order to the topic. Batches that still "
        "fail after their retries are recorded in a failure queue instead of being dropped.",
        _lambda2,
    ),
    Task(
        8,
        "api",
        "Creating an API with Amazon API Gateway",
        "the REST API: POST / → SQS, deployed to a stage",
        "The REST API is the front door. It validates that the body is a JSON object and sends it "
        "straight to the queue with the API role's credentials: no code runs on this path.",
        _api,
    ),
    Task(
        9,
        "test-order",
        "Testing the architecture",
        "POST orders and follow each one to the table and the topic",
        "An order is sent through the whole pipeline and followed hop by hop.",
        _none,
        TEST,
    ),
    Task(
        10,
        "down",
        "Cleaning up",
        "everything above, removed in reverse order",
        "Everything is removed in reverse order: triggers before functions, policies detached "
        "before they are deleted, and the log groups Lambda made along the way.",
        _none,
        TEARDOWN,
    ),
)

BUILD_TASKS = tuple(t for t in TASKS if t.action == BUILD)
TEST_TASK = next(t for t in TASKS if t.action == TEST)
TEARDOWN_TASK = next(t for t in TASKS if t.action == TEARDOWN)


def task(number: int) -> Task:
    for t in TASKS:
        if t.number == number:
            return t
    raise KeyError(number)


def by_command(command: str) -> Task:
    """The task whose own command is ``command`` (``pocctl lambda1``)."""
    return next(t for t in TASKS if t.command == command)


POLICY_FIELDS = ("write_dynamodb", "read_sqs", "sns_publish", "streams_read")
ROLE_FIELDS = ("lambda1", "lambda2", "apigateway")


def needs(resource: Resource, present: set[str]) -> tuple[str, ...]:
    """What ``resource`` needs (Resource.needs) among the resources of this run (``present``,
    by key)."""
    return tuple(k for k in resource.needs if k in present)


def all_resources(cfg: Config) -> list[tuple[Task, Resource]]:
    """Every resource `up` makes, in creation order."""
    return [(t, r) for t in BUILD_TASKS for r in t.resources(cfg)]


# The config key that names each resource (by state key). When a name in config.yaml changes,
# `up` makes the resource of the new name and the state file still knows the old one: Engine.up
# removes it when it holds nothing, or leaves it (a table, a queue: orders may be in it) for
# `down`. A trigger and the stream are not named in config: they follow their function and
# table.
NAMED_BY: dict[str, tuple[str, ...]] = {
    **{f"policy.{p}": ("iam", "policies", p) for p in POLICY_FIELDS},
    **{f"role.{r}": ("iam", "roles", r) for r in ROLE_FIELDS},
    "table": ("table", "name"),
    "queue.dlq": ("queue", "dead_letter_queue"),
    "queue.orders": ("queue", "name"),
    "function.lambda1": ("lambda1", "name"),
    "topic": ("topic", "name"),
    "subscription.email": ("topic", "notification_email"),
    "function.lambda2": ("lambda2", "name"),
    "queue.lambda2_failures": ("lambda2", "on_failure_queue"),
    "api": ("api", "name"),
}


def with_name(cfg: Config, key: str, name: str) -> Config:
    """``cfg`` as it was when it named resource ``key`` ``name``."""
    import dataclasses

    def put(obj: Any, path: tuple[str, ...]) -> Any:
        value = name if len(path) == 1 else put(getattr(obj, path[0]), path[1:])
        return dataclasses.replace(obj, **{path[0]: value})

    return put(cfg, NAMED_BY[key])  # type: ignore[no-any-return]


def named_resources(cfg: Config, key: str) -> list[Resource]:
    """Resource ``key`` of ``cfg`` with what goes with it, in creation order: a function's
    trigger is not deleted with it (AWS keeps a deleted function's mappings)."""
    made = [r for _, r in all_resources(cfg)]
    follows = {"function.lambda1": "mapping.lambda1", "function.lambda2": "mapping.lambda2"}
    return [r for r in made if r.key in (key, follows.get(key))]
