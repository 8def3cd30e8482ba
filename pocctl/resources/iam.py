"""Task 1: the four customer-managed policies and the three roles.

Every statement is scoped to the ARN of the resource it serves, computed from account, region and
the configured names, so the policies can be made before those resources exist. The only
``"Resource": "*"`` statements are for actions that support no resource-level permission
(listed in ``NO_RESOURCE_LEVEL``).

Each resource form is the one both the Service Authorization Reference (SAR: the ARN IAM
evaluates a request against) and the service's own reference use:

- DynamoDB table ``arn:…:dynamodb:REGION:ACCOUNT:table/NAME`` (PutItem, DescribeTable) and stream
  ``…:table/NAME/stream/LABEL`` (DescribeStream, GetShardIterator, GetRecords); ListStreams has no
  resource type. SAR, "Actions, resources, and condition keys for Amazon DynamoDB",
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html;
  the stream ARN as DynamoDB shows it (LatestStreamArn), and "If you disable and then re-enable a
  stream on the table, a new stream will be created with a different stream descriptor", so
  the label is a wildcard: DynamoDB Developer Guide, "Change data capture for DynamoDB Streams",
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html
- SQS queue ``arn:…:sqs:REGION:ACCOUNT:NAME`` (every sqs: action here), the QueueArn attribute
  SQS answers. SAR, https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsqs.html
- SNS topic ``arn:…:sns:REGION:ACCOUNT:NAME`` (Publish, GetTopicAttributes); ListTopics has no
  resource type. SAR, https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html
- CloudWatch Logs: see _logs_statements.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote, unquote

from pocctl import arns
from pocctl.aws import error_code
from pocctl.config import Config
from pocctl.resources.base import (
    Change,
    Context,
    Observed,
    Resource,
    call_or_none,
    policy_document,
)

# Actions IAM only accepts with "Resource": "*" (Service Authorization Reference: no resource
# type listed). They are in the lab's policies, so they stay, each on its own "*" statement.
NO_RESOURCE_LEVEL = {
    "sns:ListTopics": "lists every topic of the account; the lab's Lambda-SNS-Publish grants it",
    "dynamodb:ListStreams": "lists streams of every table; the lab's streams policy grants it",
}

API_GATEWAY_LOGS_POLICY = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
MAX_POLICY_VERSIONS = 5


def _allow(actions: list[str], resource: str | list[str], sid: str) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}


def managed_policy_documents(ctx: Context) -> dict[str, dict[str, Any]]:
    """The four policies of the lab's Step 1.1, least-privilege, keyed by config field."""
    return {
        "write_dynamodb": policy_document(
            _allow(["dynamodb:PutItem", "dynamodb:DescribeTable"], arns.table(ctx), "WriteOrders")
        ),
        "read_sqs": policy_document(
            _allow(
                [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ChangeMessageVisibility",
                ],
                arns.queue(ctx, ctx.cfg.queue.name),
                "ConsumeOrderQueue",
            )
        ),
        "sns_publish": policy_document(
            _allow(["sns:Publish", "sns:GetTopicAttributes"], arns.topic(ctx), "PublishOrders"),
            _allow(["sns:ListTopics"], "*", "ListTopicsHasNoResourceLevel"),
        ),
        "streams_read": policy_document(
            _allow(
                ["dynamodb:GetShardIterator", "dynamodb:DescribeStream", "dynamodb:GetRecords"],
                arns.streams(ctx),
                "ReadOrderStream",
            ),
            _allow(["dynamodb:ListStreams"], "*", "ListStreamsHasNoResourceLevel"),
        ),
    }


def _logs_statements(ctx: Context, function: str) -> list[dict[str, Any]]:
    """What Lambda needs to write the function's logs, on its own log group only.

    The two references disagree on CreateLogGroup's resource. The SAR ("Actions, resources, and
    condition keys for Amazon CloudWatch Logs",
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html)
    lists it on the log-group resource ``…:log-group:NAME``, and CreateLogStream / PutLogEvents on
    log-stream ``…:log-group:NAME:log-stream:STREAM``. CloudWatch Logs' own guide ("Overview of
    managing access permissions to your CloudWatch Logs resources",
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html)
    and API reference (LogGroup.arn,
    https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_LogGroup.html) say
    to use ``…:log-group:NAME:*`` in IAM policies for every action but the three tagging ones.
    So CreateLogGroup names both forms: each reading grants it on this one group and nothing else
    (a log group name cannot hold ``:``: CreateLogGroup's logGroupName is
    ``[\\.\\-_/#A-Za-z0-9]+``, CloudWatch Logs API Reference). The stream actions need only
    ``:*``, which matches the log-stream form and is the guide's form too.
    """
    group = arns.log_group(ctx, function)
    return [
        _allow(["logs:CreateLogStream", "logs:PutLogEvents"], f"{group}:*", "WriteOwnLogs"),
        _allow(["logs:CreateLogGroup"], [group, f"{group}:*"], "CreateOwnLogGroup"),
    ]


def trust_policy(service: str) -> dict[str, Any]:
    return policy_document(
        {
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
        }
    )


def _doc(value: Any) -> Any:
    """IAM returns documents URL-encoded; boto3 usually decodes them, moto's server may not."""
    if isinstance(value, str):
        return json.loads(unquote(value))
    return value


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# Why one snapshot: looking the 7 resources up one by one costs 20 reads (GetPolicy and
# GetPolicyVersion per policy; GetRole, ListAttachedRolePolicies, ListRolePolicies and
# GetRolePolicy per role). GetAccountAuthorizationDetails answers all of it in one call, shared by
# the 7 finds of a run (Context.shared). The price: it returns every role and customer-managed
# policy of the account with their documents, not only the lab's. On a very large account it
# pages (IAM's default is 100 items a page): one call per page, so an account with more than
# ~2,000 roles and policies makes more calls than the 20 it replaces, each a bigger answer.
# Every IAM change pocctl makes marks what it changed (after the change, also when it fails); a
# find of a changed resource, or any find after a policy was deleted (which detaches it from its
# roles), reads the snapshot again if it was taken before the mark. The others keep using it: a
# cold `up` reads it once, and never sees a state from before a change of its own.
DETAILS_KEY = "iam.account-authorization-details"
# A least-privilege user may lack iam:GetAccountAuthorizationDetails: then each find falls back to
# the per-resource reads above. Remembered for the run (a key `forget` does not drop) so the
# refused call is not repeated per resource.
_REFUSED_KEY = "iam.account-authorization-details.refused"
_REFUSED_CODES = ("AccessDenied", "AccessDeniedException")
_CHANGED_KEY = "iam.changed"  # {resource key or "*": _SEQ value when its change ended}
ALL = "*"
# Orders snapshot reads and changes across threads (next() on a count is atomic in CPython).
_SEQ = itertools.count()


@dataclass(frozen=True)
class _Details:
    roles: dict[str, dict[str, Any]]  # by RoleName, lower-cased
    policies: dict[str, dict[str, Any]]  # customer-managed, by ARN, lower-cased
    seq: int  # _SEQ when the read started: it saw every change marked before


def _fetch_details(ctx: Context) -> _Details | None:
    """Every role and customer-managed policy of the account, pages merged; None if refused."""
    seq = next(_SEQ)
    roles: dict[str, dict[str, Any]] = {}
    policies: dict[str, dict[str, Any]] = {}
    paginator = ctx.client("iam").get_paginator("get_account_authorization_details")
    try:
        for page in paginator.paginate(Filter=["Role", "LocalManagedPolicy"]):
            # IAM names are unique regardless of case, and GetRole/GetPolicy match them so.
            roles.update((r["RoleName"].lower(), r) for r in page.get("RoleDetailList", []))
            policies.update((p["Arn"].lower(), p) for p in page.get("Policies", []))
    except Exception as e:
        if error_code(e) not in _REFUSED_CODES:
            raise
        ctx.cache.put(_REFUSED_KEY, True)
        return None
    return _Details(roles, policies, seq)


def _details(ctx: Context, key: str) -> _Details | None:
    """The run's shared snapshot of IAM, current for ``key``; None when pocctl may not read it
    that way."""
    if ctx.cache.peek(_REFUSED_KEY):
        return None
    details: _Details | None = ctx.cache.shared(DETAILS_KEY, lambda: _fetch_details(ctx))
    changed: dict[str, int] = ctx.cache.shared(_CHANGED_KEY, dict)
    if details is not None and max(changed.get(key, -1), changed.get(ALL, -1)) >= details.seq:
        ctx.cache.forget(DETAILS_KEY)
        details = ctx.cache.shared(DETAILS_KEY, lambda: _fetch_details(ctx))
    return details


def _mark_changed(ctx: Context, key: str) -> None:
    # One dict per run, shared: setting one of its items is atomic in CPython.
    ctx.cache.shared(_CHANGED_KEY, dict)[key] = next(_SEQ)


class _IamResource(Resource):
    """Every change made through it is marked afterwards, also when it fails half-way, so the
    next find of what it changed reads IAM again."""

    def _snapshot_key(self, ctx: Context) -> str:
        return f"role:{self.name.lower()}"

    def _changed_on_delete(self, ctx: Context) -> str:
        return self._snapshot_key(ctx)

    def create(self, ctx: Context) -> Observed:
        try:
            return self._create(ctx)
        finally:
            _mark_changed(ctx, self._snapshot_key(ctx))

    def update(self, ctx: Context, observed: Observed, changes: list[Change]) -> Observed:
        try:
            return self._update(ctx, observed, changes)
        finally:
            _mark_changed(ctx, self._snapshot_key(ctx))

    def delete(self, ctx: Context, observed: Observed) -> None:
        try:
            self._delete(ctx, observed)
        finally:
            _mark_changed(ctx, self._changed_on_delete(ctx))

    # What each IAM resource implements in place of create, update and delete.
    _create: Callable[[Context], Observed]
    _update: Callable[[Context, Observed, list[Change]], Observed]
    _delete: Callable[[Context, Observed], None]


class ManagedPolicy(_IamResource):
    type = "iam_policy"
    kind = "policy"
    noun = "policy"

    def __init__(self, cfg: Config, field_name: str) -> None:
        super().__init__(f"policy.{field_name}", getattr(cfg.iam.policies, field_name))
        self.field_name = field_name

    def console_url(self, identity: dict[str, Any], region: str) -> str | None:
        arn = quote(identity.get("arn") or "", safe="")
        return f"https://console.aws.amazon.com/iam/home#/policies/details/{arn}"

    def cli_args(self, identity: dict[str, Any]) -> list[str] | None:
        return ["iam get-policy", f"--policy-arn {identity.get('arn') or ''}"]

    def _snapshot_key(self, ctx: Context) -> str:
        return f"policy:{arns.policy(ctx, self.name).lower()}"

    def _changed_on_delete(self, ctx: Context) -> str:
        return ALL  # deleting a policy first detaches it from every role

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"document": managed_policy_documents(ctx)[self.field_name]}

    def find(self, ctx: Context) -> Observed | None:
        details = _details(ctx, self._snapshot_key(ctx))
        if details is None:
            return self._find_by_calls(ctx)
        arn = arns.policy(ctx, self.name)
        policy = details.policies.get(arn.lower())
        if policy is None:
            return None
        default = policy["DefaultVersionId"]
        version = next(
            (v for v in policy.get("PolicyVersionList", []) if v["VersionId"] == default), None
        )
        if version is None:  # not expected: the list holds every version, the default included
            return self._find_by_calls(ctx)
        return {"arn": arn, "document": _doc(version["Document"]), "default_version": default}

    def _find_by_calls(self, ctx: Context) -> Observed | None:
        iam = ctx.client("iam")
        arn = arns.policy(ctx, self.name)
        policy = call_or_none(lambda: iam.get_policy(PolicyArn=arn)["Policy"], "NoSuchEntity")
        version = policy and call_or_none(
            lambda: iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"]),
            "NoSuchEntity",
        )
        if policy is None or version is None:
            return None
        return {
            "arn": arn,
            "document": _doc(version["PolicyVersion"]["Document"]),
            "default_version": policy["DefaultVersionId"],
        }

    def diff(self, ctx: Context, observed: Observed) -> list[Change]:
        want = self.desired(ctx)["document"]
        return (
            []
            if _same(observed["document"], want)
            else [Change("document", observed["document"], want)]
        )

    def _create(self, ctx: Context) -> Observed:
        doc = self.desired(ctx)["document"]
        resp = ctx.client("iam").create_policy(
            PolicyName=self.name,
            PolicyDocument=json.dumps(doc),
            Description="pocctl: serverless order pipeline lab",
        )
        return {"arn": resp["Policy"]["Arn"], "document": doc}

    def _update(self, ctx: Context, observed: Observed, changes: list[Change]) -> Observed:
        iam = ctx.client("iam")
        arn = observed["arn"]
        versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
        if len(versions) >= MAX_POLICY_VERSIONS:
            # IAM keeps at most five versions: drop the oldest one that is not the default.
            old = sorted(
                (v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"]
            )[0]
            iam.delete_policy_version(PolicyArn=arn, VersionId=old["VersionId"])
        doc = self.desired(ctx)["document"]
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(doc), SetAsDefault=True)
        return {"arn": arn, "document": doc}

    def _delete(self, ctx: Context, observed: Observed) -> None:
        iam = ctx.client("iam")
        arn = observed["arn"]
        # A policy still attached cannot be deleted on AWS (and moto would orphan the role).
        for page in iam.get_paginator("list_entities_for_policy").paginate(PolicyArn=arn):
            for role in page.get("PolicyRoles", []):
                _ignore_missing(iam.detach_role_policy, RoleName=role["RoleName"], PolicyArn=arn)
        for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
            if not v["IsDefaultVersion"]:
                iam.delete_policy_version(PolicyArn=arn, VersionId=v["VersionId"])
        _ignore_missing(iam.delete_policy, PolicyArn=arn)


def _ignore_missing(fn: Any, **kwargs: Any) -> None:
    call_or_none(lambda: fn(**kwargs), "NoSuchEntity")


INLINE_POLICY = "pocctl-inline"


class Role(_IamResource):
    """A role with its trust policy, attached managed policies and one inline policy."""

    type = "iam_role"
    kind = "role"
    noun = "role"
    # The policies each role attaches (config fields): made before it.
    ATTACHES: ClassVar[dict[str, tuple[str, ...]]] = {
        "lambda1": ("write_dynamodb", "read_sqs"),
        "lambda2": ("sns_publish", "streams_read"),
        "apigateway": (),
    }

    def __init__(self, cfg: Config, field_name: str) -> None:
        needs = tuple(f"policy.{p}" for p in self.ATTACHES[field_name])
        super().__init__(f"role.{field_name}", getattr(cfg.iam.roles, field_name), needs)
        self.field_name = field_name

    def console_url(self, identity: dict[str, Any], region: str) -> str | None:
        return f"https://console.aws.amazon.com/iam/home#/roles/details/{quote(self.name)}"

    def cli_args(self, identity: dict[str, Any]) -> list[str] | None:
        return ["iam get-role", f"--role-name {self.name}"]

    def _attached(self, ctx: Context) -> list[str]:
        p = ctx.cfg.iam.policies
        return sorted(arns.policy(ctx, getattr(p, f)) for f in self.ATTACHES[self.field_name])

    def desired(self, ctx: Context) -> dict[str, Any]:
        cfg = ctx.cfg
        if self.field_name == "lambda1":
            return {
                "trust": trust_policy("lambda.amazonaws.com"),
                "attached": self._attached(ctx),
                "inline": policy_document(*_logs_statements(ctx, cfg.lambda1.name)),
            }
        if self.field_name == "lambda2":
            return {
                "trust": trust_policy("lambda.amazonaws.com"),
                "attached": self._attached(ctx),
                "inline": policy_document(
                    *_logs_statements(ctx, cfg.lambda2.name),
                    # The stream mapping's on-failure destination is written with this role.
                    _allow(
                        ["sqs:SendMessage"],
                        arns.queue(ctx, cfg.lambda2.on_failure_queue),
                        "RecordFailedBatches",
                    ),
                ),
            }
        # The lab attaches AWS's AmazonAPIGatewayPushToCloudWatchLogs here: read and write on
        # every log group of the account, for API Gateway's execution logs, which pocctl does
        # not configure. Only when config.yaml asks (api.cloudwatch_logs_policy).
        logs = cfg.api.cloudwatch_logs_policy
        return {
            "trust": trust_policy("apigateway.amazonaws.com"),
            "attached": [arns.aws_managed_policy(ctx, API_GATEWAY_LOGS_POLICY)] if logs else [],
            "inline": policy_document(
                _allow(["sqs:SendMessage"], arns.queue(ctx, cfg.queue.name), "SendOrders")
            ),
        }

    def find(self, ctx: Context) -> Observed | None:
        details = _details(ctx, self._snapshot_key(ctx))
        if details is None:
            return self._find_by_calls(ctx)
        role = details.roles.get(self.name.lower())
        if role is None:
            return None
        inline_policies = {
            p["PolicyName"]: p["PolicyDocument"] for p in role.get("RolePolicyList", [])
        }
        inline = inline_policies.get(INLINE_POLICY)
        return {
            "arn": role["Arn"],
            "trust": _doc(role["AssumeRolePolicyDocument"]),
            "attached": sorted(p["PolicyArn"] for p in role.get("AttachedManagedPolicies", [])),
            "inline": None if inline is None else _doc(inline),
            "inline_names": list(inline_policies),
        }

    def _find_by_calls(self, ctx: Context) -> Observed | None:
        iam = ctx.client("iam")
        role = call_or_none(lambda: iam.get_role(RoleName=self.name)["Role"], "NoSuchEntity")
        if role is None:
            return None
        attached = sorted(
            p["PolicyArn"]
            for page in iam.get_paginator("list_attached_role_policies").paginate(
                RoleName=self.name
            )
            for p in page["AttachedPolicies"]
        )
        inline_names = iam.list_role_policies(RoleName=self.name)["PolicyNames"]
        inline = None
        if INLINE_POLICY in inline_names:
            inline = _doc(
                iam.get_role_policy(RoleName=self.name, PolicyName=INLINE_POLICY)["PolicyDocument"]
            )
        return {
            "arn": role["Arn"],
            "trust": _doc(role["AssumeRolePolicyDocument"]),
            "attached": attached,
            "inline": inline,
            "inline_names": inline_names,
        }

    def _create(self, ctx: Context) -> Observed:
        want = self.desired(ctx)
        resp = ctx.client("iam").create_role(
            RoleName=self.name,
            AssumeRolePolicyDocument=json.dumps(want["trust"]),
            Description="pocctl: serverless order pipeline lab",
        )
        observed = {"arn": resp["Role"]["Arn"], "trust": want["trust"], "attached": []}
        self._update(ctx, observed, self.diff(ctx, observed))
        return {**observed, **want}

    def _update(self, ctx: Context, observed: Observed, changes: list[Change]) -> Observed:
        iam = ctx.client("iam")
        want = self.desired(ctx)
        fields = {c.field for c in changes}
        if "trust" in fields and "arn" in observed and observed.get("trust") != want["trust"]:
            iam.update_assume_role_policy(
                RoleName=self.name, PolicyDocument=json.dumps(want["trust"])
            )
        if "attached" in fields:
            have = set(observed.get("attached") or [])
            for arn in sorted(set(want["attached"]) - have):
                iam.attach_role_policy(RoleName=self.name, PolicyArn=arn)
            for arn in sorted(have - set(want["attached"])):
                iam.detach_role_policy(RoleName=self.name, PolicyArn=arn)
        if "inline" in fields:
            iam.put_role_policy(
                RoleName=self.name,
                PolicyName=INLINE_POLICY,
                PolicyDocument=json.dumps(want["inline"]),
            )
        return {**observed, **want}

    def diff(self, ctx: Context, observed: Observed) -> list[Change]:
        want = self.desired(ctx)
        return [
            Change(k, observed.get(k), v) for k, v in want.items() if not _same(observed.get(k), v)
        ]

    def _delete(self, ctx: Context, observed: Observed) -> None:
        iam = ctx.client("iam")
        # DeleteConflict unless every policy is detached and every inline policy deleted first.
        for arn in observed.get("attached") or []:
            _ignore_missing(iam.detach_role_policy, RoleName=self.name, PolicyArn=arn)
        for name in observed.get("inline_names") or []:
            _ignore_missing(iam.delete_role_policy, RoleName=self.name, PolicyName=name)
        _ignore_missing(iam.delete_role, RoleName=self.name)


def resources(cfg: Config) -> list[Resource]:
    """Task 1's resources in creation order: policies before the roles that attach them."""
    return [
        *(
            ManagedPolicy(cfg, f)
            for f in ("write_dynamodb", "read_sqs", "sns_publish", "streams_read")
        ),
        *(Role(cfg, f) for f in Role.ATTACHES),
    ]
