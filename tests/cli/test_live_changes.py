"""Every config key that can change on a live stack, changed one at a time on one stack in the
embedded AWS (a LocalAWS in this process: moto, the Lambda pollers and the API data plane, so
orders really flow): `up` converges, the stack read back from AWS is exactly what the new config
says, one test order goes through, and at the end `down` leaves nothing.

The keys, and what a change of each does on a live stack, are listed in README.md
("Changing a live stack").
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from support.inventory import empty, inventory
from support.workspace import Workspace, make_workspace

from pocctl import config, packaging
from pocctl.local.runtime import LocalAWS

ACCOUNT, REGION = "123456789012", "us-east-1"
CLOUDWATCH_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"


@pytest.fixture(scope="module")
def local() -> Iterator[LocalAWS]:
    # moto's state is process-wide: this LocalAWS must not outlive the module (its pollers
    # would act on other tests' stacks), and starts from an empty account.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")  # the CloudWatch policy exists
        with LocalAWS(port=0, refresh_interval=0.1) as aws:
            aws.reset()
            yield aws


class Live:
    """The stack read back with boto3, not through pocctl."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._clients: dict[str, Any] = {}

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service, region_name=REGION, endpoint_url=self.endpoint
            )
        return self._clients[service]

    def queue_attrs(self, name: str) -> dict[str, str]:
        url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    def queues(self) -> set[str]:
        return {u.rsplit("/", 1)[1] for u in self.sqs.list_queues().get("QueueUrls", [])}

    def function(self, name: str) -> dict[str, Any]:
        return self.__getattr__("lambda").get_function(FunctionName=name)["Configuration"]

    def mappings(self) -> list[dict[str, Any]]:
        return self.__getattr__("lambda").list_event_source_mappings()["EventSourceMappings"]

    def attached(self, role: str) -> set[str]:
        got = self.iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        return {p["PolicyArn"] for p in got}

    def api(self, name: str) -> dict[str, Any]:
        [api] = [a for a in self.apigateway.get_rest_apis()["items"] if a["name"] == name]
        return api


def arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def policy_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:policy/{name}"


def check_iam(live: Live, cfg: config.Config) -> None:
    p, r = cfg.iam.policies, cfg.iam.roles
    local = {x["PolicyName"] for x in live.iam.list_policies(Scope="Local")["Policies"]}
    assert local == {p.write_dynamodb, p.read_sqs, p.sns_publish, p.streams_read}
    assert {x["RoleName"] for x in live.iam.list_roles()["Roles"]} == {
        r.lambda1,
        r.lambda2,
        r.apigateway,
    }
    assert live.attached(r.lambda1) == {policy_arn(p.write_dynamodb), policy_arn(p.read_sqs)}
    assert live.attached(r.lambda2) == {policy_arn(p.sns_publish), policy_arn(p.streams_read)}
    cloudwatch = {CLOUDWATCH_POLICY} if cfg.api.cloudwatch_logs_policy else set()
    assert live.attached(r.apigateway) == cloudwatch
    doc = live.iam.get_policy_version(
        PolicyArn=policy_arn(p.write_dynamodb),
        VersionId=live.iam.get_policy(PolicyArn=policy_arn(p.write_dynamodb))["Policy"][
            "DefaultVersionId"
        ],
    )["PolicyVersion"]["Document"]
    assert doc["Statement"][0]["Resource"] == arn("dynamodb", f"table/{cfg.table.name}")


def check_table_and_queues(live: Live, cfg: config.Config, left: set[str]) -> str:
    tables = set(live.dynamodb.list_tables()["TableNames"])
    assert tables == {cfg.table.name} | {x.split(":", 1)[1] for x in left if x.startswith("table:")}
    table = live.dynamodb.describe_table(TableName=cfg.table.name)["Table"]
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": cfg.table.stream_view_type,
    }
    q = cfg.queue
    queues = {q.name, q.dead_letter_queue, cfg.lambda2.on_failure_queue}
    assert live.queues() == queues | {x.split(":", 1)[1] for x in left if x.startswith("queue:")}
    attrs = live.queue_attrs(q.name)
    assert attrs["VisibilityTimeout"] == str(q.visibility_timeout)
    assert attrs["MessageRetentionPeriod"] == str(q.message_retention_period)
    assert json.loads(attrs["RedrivePolicy"]) == {
        "deadLetterTargetArn": arn("sqs", q.dead_letter_queue),
        "maxReceiveCount": q.max_receive_count,
    }
    principals = {s["Principal"]["AWS"] for s in json.loads(attrs["Policy"])["Statement"]}
    assert principals == {role_arn(cfg.iam.roles.apigateway), role_arn(cfg.iam.roles.lambda1)}
    return str(table["LatestStreamArn"])


def check_functions(live: Live, cfg: config.Config, stream: str, starting: str) -> None:
    lam = live.__getattr__("lambda")
    assert {f["FunctionName"] for f in lam.list_functions()["Functions"]} == {
        cfg.lambda1.name,
        cfg.lambda2.name,
    }
    envs = {
        "lambda1": {"TABLE_NAME": cfg.table.name, "PARTITION_KEY": cfg.table.partition_key},
        "lambda2": {"TOPIC_ARN": arn("sns", cfg.topic.name)},
    }
    for which in ("lambda1", "lambda2"):
        fn, want = live.function(getattr(cfg, which).name), getattr(cfg, which)
        role = getattr(cfg.iam.roles, which)
        source = cfg.function_code(which)
        code = packaging.build(source)
        assert (fn["Handler"], fn["Architectures"]) == (source.handler, [want.architecture])
        assert (fn["Runtime"], fn["Timeout"], fn["MemorySize"], fn["Role"]) == (
            want.runtime,
            want.timeout,
            want.memory_size,
            role_arn(role),
        )
        assert fn["Environment"]["Variables"] == envs[which]
        assert fn["CodeSha256"] == packaging.code_sha256(code)
    by_function = {m["FunctionArn"].rsplit(":", 1)[1]: m for m in live.mappings()}
    assert len(live.mappings()) == 2 and set(by_function) == {cfg.lambda1.name, cfg.lambda2.name}
    m1, m2 = by_function[cfg.lambda1.name], by_function[cfg.lambda2.name]
    assert (m1["EventSourceArn"], m1["BatchSize"]) == (
        arn("sqs", cfg.queue.name),
        cfg.lambda1.batch_size,
    )
    assert (m2["EventSourceArn"], m2["BatchSize"], m2["MaximumRetryAttempts"]) == (
        stream,
        cfg.lambda2.batch_size,
        cfg.lambda2.maximum_retry_attempts,
    )
    assert m2["StartingPosition"] == starting
    failures = arn("sqs", cfg.lambda2.on_failure_queue)
    assert m2["DestinationConfig"] == {"OnFailure": {"Destination": failures}}


def check_topic_and_api(live: Live, cfg: config.Config) -> None:
    topics = {t["TopicArn"] for t in live.sns.list_topics()["Topics"]}
    assert topics == {arn("sns", cfg.topic.name)}
    subs = live.sns.list_subscriptions()["Subscriptions"]
    want = cfg.topic.notification_email
    assert [s["Endpoint"] for s in subs if s["Endpoint"] == want] == ([want] if want else [])
    # An address changed away from is left only while its subscription is pending: AWS cannot
    # unsubscribe a pending one, it lapses after three days (SNS Unsubscribe / Subscribe API).
    others = [s for s in subs if s["Endpoint"] != want]
    assert all(s["SubscriptionArn"] == "PendingConfirmation" for s in others), others
    assert [a["name"] for a in live.apigateway.get_rest_apis()["items"]] == [cfg.api.name]
    api = live.api(cfg.api.name)["id"]
    stages = live.apigateway.get_stages(restApiId=api)["item"]
    assert [s["stageName"] for s in stages] == [cfg.api.stage]
    throttle = stages[0]["methodSettings"]["*/*"]
    assert (throttle["throttlingRateLimit"], throttle["throttlingBurstLimit"]) == (
        float(cfg.api.throttling_rate_limit),
        cfg.api.throttling_burst_limit,
    )
    root = next(
        r["id"] for r in live.apigateway.get_resources(restApiId=api)["items"] if r["path"] == "/"
    )
    integ = live.apigateway.get_integration(restApiId=api, resourceId=root, httpMethod="POST")
    assert integ["uri"].endswith(f":sqs:path/{ACCOUNT}/{cfg.queue.name}")
    assert integ["credentials"] == role_arn(cfg.iam.roles.apigateway)
    groups = {g["logGroupName"] for g in live.logs.describe_log_groups()["logGroups"]}
    assert groups <= {f"/aws/lambda/{cfg.lambda1.name}", f"/aws/lambda/{cfg.lambda2.name}"}


@dataclass
class Stack:
    ws: Workspace
    live: Live
    conf: dict[str, Any] = field(default_factory=lambda: {"handlers_dir": "handlers"})
    left: set[str] = field(default_factory=set)  # "queue:NAME" / "table:NAME" up leaves
    starting: str = "TRIM_HORIZON"  # where Lambda 2's live trigger reads from
    timings: list[tuple[str, float]] = field(default_factory=list)

    def write(self) -> config.Config:
        self.ws.config.write_text(yaml.safe_dump(self.conf, sort_keys=False))
        return config.load(self.ws.config)

    def up(self) -> str:
        t0 = time.monotonic()
        r = self.ws.cli("up")
        self.timings.append(("up", time.monotonic() - t0))
        assert r.exit_code == 0, r.output
        plan = self.ws.cli("plan")
        assert re.search(r"\b0 to create, 0 to update, \d+ unchanged", plan.stdout), plan.output
        return r.output

    def check(self, cfg: config.Config) -> None:
        t0 = time.monotonic()
        self._check(cfg)
        self.timings.append(("check", time.monotonic() - t0))

    def _check(self, cfg: config.Config) -> None:
        check_iam(self.live, cfg)
        stream = check_table_and_queues(self.live, cfg, self.left)
        check_functions(self.live, cfg, stream, self.starting)
        check_topic_and_api(self.live, cfg)

    def order(self) -> None:
        t0 = time.monotonic()
        r = self.ws.cli("test-order", "--count", "1", "--timeout", "20")
        self.timings.append(("order", time.monotonic() - t0))
        assert r.exit_code == 0, r.output
        assert "1 of 1 orders stored once and notified once" in r.stdout, r.output


def put(conf: dict[str, Any], key: str, value: Any) -> None:
    *path, last = key.split(".")
    for part in path:
        conf = conf.setdefault(part, {})
    conf[last] = value


@dataclass
class Change:
    key: str
    value: Any
    said: str = ""  # a line `up` must print (stderr or stdout)
    after: Callable[[Stack, config.Config, config.Config], None] | None = None


def stream_replaced(s: Stack, old: config.Config, new: config.Config) -> None:
    labels = [x["StreamLabel"] for x in s.live.dynamodbstreams.list_streams()["Streams"]]
    assert len(labels) == 1  # ListStreams: the table's latest stream


def old_function_gone(s: Stack, old: config.Config, new: config.Config) -> None:
    gone = old.lambda1.name if old.lambda1.name != new.lambda1.name else old.lambda2.name
    groups = {g["logGroupName"] for g in s.live.logs.describe_log_groups()["logGroups"]}
    assert f"/aws/lambda/{gone}" not in groups


def left(kind: str, attr: str) -> Callable[[Stack, config.Config, config.Config], None]:
    """The renamed table or queue stays (orders may be in it), for `down` to delete."""

    def keep(s: Stack, old: config.Config, new: config.Config) -> None:
        section, name = attr.split(".")
        s.left.add(f"{kind}:{getattr(getattr(old, section), name)}")

    return keep


# Three sequences, each applied one change after another to a stack of its own (so that they
# can run side by side); together they change every key.
QUEUE_AND_FUNCTIONS = [
    Change("queue.visibility_timeout", 90),
    Change("queue.message_retention_period", 86400),
    Change("queue.max_receive_count", 5),
    Change("lambda1.timeout", 5),
    Change("lambda1.memory_size", 256),
    Change("lambda1.runtime", "python3.12"),
    Change("lambda1.batch_size", 5),
    Change("lambda2.timeout", 20),
    Change("lambda2.memory_size", 192),
    Change("lambda2.runtime", "python3.12"),
    Change("lambda2.batch_size", 50),
    Change("lambda2.maximum_retry_attempts", 1),
]
STREAM_TOPIC_API = [
    Change("table.stream_view_type", "NEW_AND_OLD_IMAGES", after=stream_replaced),
    # A trigger's starting position is fixed when it is made: said, not applied (README).
    Change("lambda2.starting_position", "LATEST", said="the trigger keeps reading from"),
    Change("lambda2.starting_position", "TRIM_HORIZON"),
    Change("topic.notification_email", "learner@example.com"),
    Change("topic.notification_email", "someone.else@example.com"),
    Change("topic.notification_email", None),
    Change("api.throttling_rate_limit", 20),
    Change("api.throttling_burst_limit", 40),
    Change("api.stage", "live"),
    Change("api.cloudwatch_logs_policy", True),
    Change("handlers_dir", "handlers2"),
]
NAMES_AND_CODE = [
    Change("iam.policies.write_dynamodb", "Orders-Write"),
    Change("iam.policies.read_sqs", "Orders-Read-Queue"),
    Change("iam.policies.sns_publish", "Orders-Publish"),
    Change("iam.policies.streams_read", "Orders-Read-Stream"),
    Change("iam.roles.lambda1", "Orders-Store-Role"),
    Change("iam.roles.lambda2", "Orders-Notify-Role"),
    Change("iam.roles.apigateway", "Orders-Api-Role"),
    Change("table.name", "orders2", said="is left as it was", after=left("table", "table.name")),
    Change(
        "queue.dead_letter_queue",
        "Orders-DLQ",
        said="is left as it was with 0 messages",
        after=left("queue", "queue.dead_letter_queue"),
    ),
    Change(
        "queue.name",
        "Orders-Queue",
        said="is left as it was with 0 messages",
        after=left("queue", "queue.name"),
    ),
    Change(
        "lambda2.on_failure_queue",
        "Orders-Failures",
        said="is left as it was",
        after=left("queue", "lambda2.on_failure_queue"),
    ),
    Change("lambda1.name", "Orders-Store", after=old_function_gone),
    Change("lambda2.name", "Orders-Notify", after=old_function_gone),
    Change("topic.name", "Orders-Topic"),
    Change("api.name", "Orders-API"),
    Change("lambda1.architecture", "arm64"),
    Change("lambda2.architecture", "arm64"),
    # The console's names: a file (module lambda_function) and then its lambda_handler.
    Change("lambda1.code", "console/lambda_function.py"),
    Change("lambda1.handler", "lambda_function.lambda_handler"),
    # A folder: its module by the default name, then one in a package.
    Change("lambda2.code", "app2"),
    Change("lambda2.handler", "pkg.notify.handler"),
]
SEQUENCES = {
    "queue-and-functions": QUEUE_AND_FUNCTIONS,
    "stream-topic-api": STREAM_TOPIC_API,
    "names-and-code": NAMES_AND_CODE,
}
CHANGES = [c for seq in SEQUENCES.values() for c in seq]


def test_every_key_listed_is_one_config_has(tmp_path: Path) -> None:
    """The sequence covers every key of config.yaml but the two that cannot change live
    (region: another stack; table.partition_key: refused, test below)."""
    keys = {k for k, _, _ in config.describe()}
    assert keys - {c.key for c in CHANGES} == {"region", "table.partition_key"}


@pytest.mark.parametrize("sequence", list(SEQUENCES))
def test_every_live_change_converges_and_down_leaves_nothing(
    local: LocalAWS, tmp_path: Path, sequence: str
) -> None:
    local.reset()
    ws = make_workspace(tmp_path, local.endpoint_url)
    shutil.copytree(ws.handlers, tmp_path / "handlers2")
    for f in (tmp_path / "handlers2").glob("*.py"):
        f.write_text(f.read_text() + "\n# changed: a new version of the code\n")
    store, notify = (ws.handlers / f"{m}.py" for m in ("store_order", "notify_order"))
    (tmp_path / "console").mkdir()
    console = store.read_text() + "\nlambda_handler = handler\n"
    (tmp_path / "console" / "lambda_function.py").write_text(console)
    (tmp_path / "app2" / "pkg").mkdir(parents=True)
    shutil.copyfile(notify, tmp_path / "app2" / "notify_order.py")
    shutil.copyfile(notify, tmp_path / "app2" / "pkg" / "notify.py")
    (tmp_path / "app2" / "pkg" / "__init__.py").write_text("")
    s = Stack(ws, Live(local.endpoint_url))
    start = time.monotonic()
    cfg = s.write()
    s.up()
    s.check(cfg)
    s.order()
    changes = SEQUENCES[sequence]
    for change in changes:
        t0 = time.monotonic()
        old_conf = copy.deepcopy(s.conf)
        put(s.conf, change.key, change.value)
        old, cfg = config.parse(yaml.safe_dump(old_conf), base_dir=tmp_path), s.write()
        said = s.up()
        where = f"after {change.key} = {change.value!r}"
        if change.said:
            assert change.said in said, (where, said)
        if change.after:
            change.after(s, old, cfg)
        s.check(cfg)
        s.order()
        s.timings.append((change.key, time.monotonic() - t0))
    r = ws.cli("down", "--yes")
    assert r.exit_code == 0, r.output
    left_over = inventory(local.endpoint_url)
    assert empty(left_over), left_over
    took = time.monotonic() - start
    totals: dict[str, float] = {}
    for k, v in s.timings:
        totals[k] = totals.get(k, 0) + v
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in totals.items() if k in ("up", "check", "order"))
    print(f"\n{len(changes)} live changes, then down: {took:.1f} s ({parts})")


def test_a_partition_key_change_is_refused_before_anything_changes(
    local: LocalAWS, tmp_path: Path
) -> None:
    local.reset()
    ws = make_workspace(tmp_path, local.endpoint_url)
    s = Stack(ws, Live(local.endpoint_url))
    s.write()
    s.up()
    put(s.conf, "table.partition_key", "id")
    s.write()
    r = ws.cli("up")
    assert r.exit_code == 1
    assert "a table's key cannot change" in r.output, r.output
    # Lambda 1 still writes the key the table has: nothing was changed before the refusal.
    env = s.live.function("POC-Lambda-1")["Environment"]["Variables"]
    assert env["PARTITION_KEY"] == "orderID"
    del s.conf["table"]
    cfg = s.write()
    s.up()
    s.check(cfg)
    s.order()
    assert ws.cli("down", "--yes").exit_code == 0
