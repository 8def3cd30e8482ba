"""Tasks 4 and 7: the two functions, built from their code (config: lambdaN.code, .handler,
.architecture), and their event source mappings."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pocctl import arns, aws, packaging
from pocctl.config import Config
from pocctl.resources import dynamodb
from pocctl.resources.base import Change, Context, Observed, Resource, call_or_none

_WAIT = {"Delay": 1, "MaxAttempts": 300}
_NO_FUNCTION = "ResourceNotFoundException"


def _function_page(function: str, region: str) -> str:
    home = f"https://{region}.console.aws.amazon.com/lambda/home?region={region}"
    return f"{home}#/functions/{quote(function)}"


def handler_file(ctx: Context, which: str) -> Path:
    """What function ``which`` is zipped from: its .py file or its code folder."""
    return ctx.cfg.function_code(which).path


class Function(Resource):
    type = "lambda_function"
    kind = "function"
    noun = "function"

    def __init__(self, cfg: Config, which: str) -> None:
        # A function assumes its role: Lambda refuses a role that does not exist.
        super().__init__(f"function.{which}", getattr(cfg, which).name, (f"role.{which}",))
        self.which = which

    def console_url(self, identity: dict[str, Any], region: str) -> str | None:
        return _function_page(self.name, region)

    def cli_args(self, identity: dict[str, Any]) -> list[str] | None:
        return ["lambda get-function", f"--function-name {self.name}"]

    def _fn_cfg(self, ctx: Context) -> Any:
        return getattr(ctx.cfg, self.which)

    def _zip(self, ctx: Context) -> bytes:
        code = ctx.cfg.function_code(self.which)

        def build() -> bytes:
            if not code.path.exists():
                key = f"{self.which}.code" if code.configured else "handlers_dir"
                raise aws.AwsError(f"code {code.path} not found", hint=f"set {key} in config.yaml")
            try:
                # Built (and checked against Lambda's size quotas) before anything is uploaded.
                # The wait names the function: the step that builds it ends the waits naming it.
                return packaging.build(
                    code, on_install=lambda what: ctx.on_wait(f"{what} ({self.name})", 0.0)
                )
            except packaging.PackageError as e:
                raise aws.AwsError(str(e), hint=e.hint) from None

        return ctx.cache.shared(f"zip.{self.which}", build)

    def environment(self, ctx: Context) -> dict[str, str]:
        cfg = ctx.cfg
        if self.which == "lambda1":
            return {"TABLE_NAME": cfg.table.name, "PARTITION_KEY": cfg.table.partition_key}
        return {"TOPIC_ARN": arns.topic(ctx)}

    def desired(self, ctx: Context) -> dict[str, Any]:
        fn = self._fn_cfg(ctx)
        role = ctx.cfg.iam.roles.lambda1 if self.which == "lambda1" else ctx.cfg.iam.roles.lambda2
        return {
            "runtime": fn.runtime,
            "handler": ctx.cfg.function_code(self.which).handler,
            "architecture": fn.architecture,
            "role": arns.role(ctx, role),
            "timeout": fn.timeout,
            "memory_size": fn.memory_size,
            "environment": self.environment(ctx),
            "code_sha256": packaging.code_sha256(self._zip(ctx)),
        }

    def find(self, ctx: Context) -> Observed | None:
        lam = ctx.client("lambda")
        c = call_or_none(
            lambda: lam.get_function(FunctionName=self.name)["Configuration"], _NO_FUNCTION
        )
        if c is None:
            return None
        return {
            "arn": c["FunctionArn"],
            "state": c.get("State"),
            "runtime": c.get("Runtime"),
            "handler": c.get("Handler"),
            # A function made without Architectures is x86_64 (Lambda API Reference,
            # FunctionConfiguration: Architectures, default x86_64).
            "architecture": (c.get("Architectures") or ["x86_64"])[0],
            "role": c.get("Role"),
            "timeout": c.get("Timeout"),
            "memory_size": c.get("MemorySize"),
            "environment": (c.get("Environment") or {}).get("Variables", {}),
            "code_sha256": c.get("CodeSha256"),
        }

    def _config_kwargs(self, want: dict[str, Any]) -> dict[str, Any]:
        return {
            "Runtime": want["runtime"],
            "Handler": want["handler"],
            "Role": want["role"],
            "Timeout": want["timeout"],
            "MemorySize": want["memory_size"],
            "Environment": {"Variables": want["environment"]},
        }

    def create(self, ctx: Context) -> Observed:
        want = self.desired(ctx)
        lam = ctx.client("lambda")
        role = want["role"].rsplit("/", 1)[1]
        checked: list[bool] = []

        def propagating(exc: BaseException) -> str | None:
            # Lambda says "cannot be assumed" both while a new role propagates and when there
            # is no such role: the first time, ask IAM which (not on the happy path: no GetRole).
            reason = aws.iam_propagation(exc)
            if reason and not checked:
                checked.append(True)
                iam = ctx.client("iam")
                if call_or_none(lambda: iam.get_role(RoleName=role), "NoSuchEntity") is None:
                    raise aws.AwsError(
                        f"role {role} does not exist", hint="run `pocctl iam` (Task 1) first"
                    ) from None
            return reason

        def make() -> dict[str, Any]:
            return lam.create_function(
                FunctionName=self.name,
                Code={"ZipFile": self._zip(ctx)},
                Description="pocctl: serverless order pipeline lab",
                Publish=False,
                Tags={"pocctl": "orders-pipeline"},
                Architectures=[want["architecture"]],
                **self._config_kwargs(want),
            )

        resp = aws.retry_while(
            make, propagating, timeout=aws.IAM_PROPAGATION_TIMEOUT, on_wait=ctx.on_retry
        )
        if resp.get("State") != "Active":  # AWS answers Pending while it sets the function up
            ctx.on_wait(f"waiting for function {self.name} to become Active", 0.0)
            lam.get_waiter("function_active_v2").wait(FunctionName=self.name, WaiterConfig=_WAIT)
        return {**want, "arn": resp["FunctionArn"], "state": "Active"}

    def update(self, ctx: Context, observed: Observed, changes: list[Change]) -> Observed:
        lam = ctx.client("lambda")
        want = self.desired(ctx)
        fields = {c.field for c in changes}

        def settle() -> None:
            lam.get_waiter("function_updated_v2").wait(FunctionName=self.name, WaiterConfig=_WAIT)

        def call(fn: Callable[[], Any]) -> None:
            aws.retry_while(
                fn,
                lambda e: aws.function_busy(e) or aws.iam_propagation(e),
                timeout=aws.IAM_PROPAGATION_TIMEOUT,
                on_wait=ctx.on_retry,
            )
            settle()

        if observed.get("state") == "Pending":
            lam.get_waiter("function_active_v2").wait(FunctionName=self.name, WaiterConfig=_WAIT)
        if fields & {"code_sha256", "architecture"}:
            # Only UpdateFunctionCode takes Architectures, with the code built for it (Lambda API
            # Reference: https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionCode.html).
            call(
                lambda: lam.update_function_code(
                    FunctionName=self.name,
                    ZipFile=self._zip(ctx),
                    Architectures=[want["architecture"]],
                )
            )
        if fields - {"code_sha256", "architecture"}:
            call(
                lambda: lam.update_function_configuration(
                    FunctionName=self.name, **self._config_kwargs(want)
                )
            )
        return {**observed, **want}

    def delete(self, ctx: Context, observed: Observed) -> None:
        lam, logs = ctx.client("lambda"), ctx.client("logs")
        call_or_none(lambda: lam.delete_function(FunctionName=self.name), _NO_FUNCTION)
        # Lambda makes the log group on first run; teardown tools commonly forget it.
        group = f"/aws/lambda/{self.name}"
        call_or_none(lambda: logs.delete_log_group(logGroupName=group), _NO_FUNCTION)


class EventSourceMapping(Resource):
    """A function's trigger. AWS gives mappings no name: it is found among every mapping of the
    function (ListEventSourceMappings with FunctionName), not by today's source ARN, so a
    mapping left on an old source (a replaced stream, a renamed queue) is found too.

    The function is the stack's: it has exactly this one trigger. Any other mapping of it is
    deleted by `up` and by `down`. A mapping's EventSourceArn cannot be changed
    (UpdateEventSourceMapping takes no EventSourceArn: Lambda API Reference,
    https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html), so a new
    source means: delete the mapping, create one on the new source. DeleteFunction leaves a
    function's mappings behind ("To delete Lambda event source mappings that invoke a function,
    use DeleteEventSourceMapping": https://docs.aws.amazon.com/lambda/latest/api/API_DeleteFunction.html),
    which is why `down` deletes them here, before the function.
    """

    type = "lambda_event_source_mapping"
    kind = "trigger"
    noun = "event source mapping"

    def __init__(self, key: str, function: str, source: str, needs: tuple[str, ...]) -> None:
        super().__init__(key, f"{source} → {function}", needs)
        self.function = function

    def _source_arn(self, ctx: Context) -> str | None:
        raise NotImplementedError

    def _settings(self, ctx: Context) -> dict[str, Any]:
        raise NotImplementedError

    def console_url(self, identity: dict[str, Any], region: str) -> str | None:
        return _function_page(self.function, region) + "?tab=configure"

    def cli_args(self, identity: dict[str, Any]) -> list[str] | None:
        if not identity.get("id"):
            return None
        return ["lambda get-event-source-mapping", f"--uuid {identity['id']}"]

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"EventSourceArn": self._source_arn(ctx), "Enabled": True, **self._settings(ctx)}

    @cached_property
    def _updatable(self) -> tuple[str, ...]:
        return (
            "BatchSize",
            "MaximumBatchingWindowInSeconds",
            "FunctionResponseTypes",
            "MaximumRetryAttempts",
            "BisectBatchOnFunctionError",
            "DestinationConfig",
            "Enabled",
        )

    def _find_all(self, ctx: Context) -> list[dict[str, Any]]:
        """Every mapping of the function, except those already being deleted (a deleted mapping
        stays listed as Deleting for a few seconds: Lambda API Reference,
        DeleteEventSourceMapping)."""
        lam = ctx.client("lambda")
        pages = lam.get_paginator("list_event_source_mappings")
        found = call_or_none(
            lambda: [
                m
                for page in pages.paginate(FunctionName=self.function)
                for m in page["EventSourceMappings"]
            ],
            _NO_FUNCTION,
        )
        return [m for m in found or [] if m.get("State") != "Deleting"]

    def find(self, ctx: Context) -> Observed | None:
        found = self._find_all(ctx)
        if not found:
            return None
        source = self._source_arn(ctx)
        # The one on today's source is the trigger; without one, the first listed is re-pointed.
        found.sort(key=lambda m: m.get("EventSourceArn") != source)
        m = found[0]
        observed: Observed = {
            "arn": m.get("EventSourceMappingArn") or m["UUID"],
            "uuid": m["UUID"],
            "state": m.get("State"),
            "others": {x["UUID"]: x.get("EventSourceArn") for x in found[1:]},
            "Enabled": m.get("State") in ("Enabled", "Enabling", "Creating", "Updating"),
            "EventSourceArn": m.get("EventSourceArn"),
        }
        for k in self._settings(ctx):
            observed[k] = m.get(k, [] if k == "FunctionResponseTypes" else None)
        return observed

    def diff(self, ctx: Context, observed: Observed) -> list[Change]:
        changes = super().diff(ctx, observed)
        # StartingPosition only applies when the mapping is made (see notes): not a drift.
        changes = [c for c in changes if c.field != "StartingPosition"]
        others = observed.get("others") or {}
        if others:
            changes.append(Change("other triggers", sorted(str(v) for v in others.values()), []))
        return changes

    def notes(self, ctx: Context, observed: Observed | None) -> list[str]:
        want = self.desired(ctx).get("StartingPosition")
        have = (observed or {}).get("StartingPosition")
        if observed is None or want is None or have in (None, want):
            return []
        if observed.get("EventSourceArn") != self.desired(ctx)["EventSourceArn"]:
            return []  # made anew on the new source, at the new position
        cost = (
            "notify every order still in the stream again"
            if want == "TRIM_HORIZON"
            else "skip the orders not notified yet"
        )
        return [
            f"{self.name}: the trigger keeps reading from {have}, not {want}: a starting "
            f"position only applies when a trigger is made (AWS cannot change it) and making "
            f"this one again would {cost}; it applies when the stream or the trigger is next made"
        ]

    def identity(self, ctx: Context, observed: Observed) -> dict[str, Any]:
        return {"arn": observed.get("arn"), "id": observed.get("uuid")}

    def create(self, ctx: Context) -> Observed:
        want = self.desired(ctx)
        self._need_source(want)
        lam = ctx.client("lambda")

        def make() -> dict[str, Any]:
            return lam.create_event_source_mapping(FunctionName=self.function, **want)

        m = aws.retry_while(
            make, aws.iam_propagation, timeout=aws.IAM_PROPAGATION_TIMEOUT, on_wait=ctx.on_retry
        )
        return {**want, "arn": m.get("EventSourceMappingArn") or m["UUID"], "uuid": m["UUID"]}

    def _need_source(self, want: dict[str, Any]) -> None:
        if want["EventSourceArn"] is None:
            raise aws.AwsError(
                f"{self.name}: the table has no stream yet", hint="run `pocctl streams` (Task 5)"
            )

    def update(self, ctx: Context, observed: Observed, changes: list[Change]) -> Observed:
        lam = ctx.client("lambda")
        for uuid in observed.get("others") or {}:
            _delete_mapping(lam, uuid)
        want = self.desired(ctx)
        if observed.get("EventSourceArn") != want["EventSourceArn"]:
            # A new source (the stream was replaced, the queue renamed): a new mapping.
            self._need_source(want)
            _delete_mapping(lam, observed["uuid"])
            return {**self.create(ctx), "others": {}}
        fields = {c.field for c in changes} & set(self._updatable)
        if fields:
            aws.retry_while(
                lambda: lam.update_event_source_mapping(
                    UUID=observed["uuid"], **{k: want[k] for k in fields}
                ),
                lambda e: aws.function_busy(e) or aws.iam_propagation(e),
                timeout=aws.IAM_PROPAGATION_TIMEOUT,
                on_wait=ctx.on_retry,
            )
        return {**observed, **want, "others": {}}

    def delete(self, ctx: Context, observed: Observed) -> None:
        lam = ctx.client("lambda")
        for uuid in [observed["uuid"], *(observed.get("others") or {})]:
            _delete_mapping(lam, uuid)


def _delete_mapping(lam: Any, uuid: str) -> None:
    call_or_none(lambda: lam.delete_event_source_mapping(UUID=uuid), _NO_FUNCTION)


class QueueTrigger(EventSourceMapping):
    """Lambda 1's trigger: it reads the order queue for the function."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(
            "mapping.lambda1",
            cfg.lambda1.name,
            cfg.queue.name,
            ("function.lambda1", "queue.orders"),
        )

    def _source_arn(self, ctx: Context) -> str | None:
        return arns.queue(ctx, ctx.cfg.queue.name)

    def _settings(self, ctx: Context) -> dict[str, Any]:
        return {
            "BatchSize": ctx.cfg.lambda1.batch_size,
            # Only the failed messages of a batch come back, not the whole batch.
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        }


class StreamTrigger(EventSourceMapping):
    """Lambda 2's trigger: it reads the table's stream, and records failed batches in the
    failure queue (which must exist: Lambda checks the destination)."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(
            "mapping.lambda2",
            cfg.lambda2.name,
            f"{cfg.table.name} stream",
            ("function.lambda2", "stream", "queue.lambda2_failures"),
        )

    def _source_arn(self, ctx: Context) -> str | None:
        return dynamodb.stream_arn(ctx)

    def _settings(self, ctx: Context) -> dict[str, Any]:
        fn = ctx.cfg.lambda2
        return {
            "StartingPosition": fn.starting_position,
            "BatchSize": fn.batch_size,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "MaximumRetryAttempts": fn.maximum_retry_attempts,
            "BisectBatchOnFunctionError": True,
            # A batch that still fails is recorded here instead of being dropped.
            "DestinationConfig": {
                "OnFailure": {"Destination": arns.queue(ctx, fn.on_failure_queue)}
            },
        }
