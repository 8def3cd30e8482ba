"""Task 2 (the orders table) and Task 5 (its stream)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pocctl.config import Config
from pocctl.resources.base import Change, Context, Observed, Resource, call_or_none, not_found

_WAIT = {"Delay": 2, "MaxAttempts": 150}
_NO_TABLE = "ResourceNotFoundException"


def _table_key(name: str) -> str:
    return f"dynamodb.table.{name}"


def _table_page(table: str, region: str) -> str:
    home = f"https://{region}.console.aws.amazon.com/dynamodbv2/home?region={region}"
    return f"{home}#table?name={quote(table)}"


def describe_table(ctx: Context, name: str, *, fresh: bool = False) -> dict[str, Any] | None:
    """DescribeTable, shared by the table and stream resources within one read pass."""
    key = _table_key(name)
    if fresh:
        ctx.cache.forget(key)
    ddb = ctx.client("dynamodb")
    table: dict[str, Any] | None = ctx.cache.shared(
        key, lambda: call_or_none(lambda: ddb.describe_table(TableName=name)["Table"], _NO_TABLE)
    )
    return table


def _wait_active(ctx: Context, name: str, table: dict[str, Any]) -> dict[str, Any]:
    """Until the table is ACTIVE, from the description CreateTable/UpdateTable answered: no
    DescribeTable when it already says ACTIVE, one every 2 s while CREATING/UPDATING (up to
    5 min). The last description is shared with the next find of the table or its stream."""
    from pocctl import aws

    start = aws.monotonic()
    while table.get("TableStatus") != "ACTIVE":
        elapsed = aws.monotonic() - start
        if elapsed >= _WAIT["Delay"] * _WAIT["MaxAttempts"]:
            raise aws.AwsError(
                f"table {name} is still {table.get('TableStatus')} after {elapsed:.0f} s",
                hint="look at the table in the DynamoDB console, then run the command again",
            )
        ctx.on_wait(f"waiting for table {name} to become ACTIVE", elapsed)
        aws.sleep(_WAIT["Delay"])
        table = describe_table(ctx, name, fresh=True) or {}
    ctx.cache.put(_table_key(name), table)
    return table


class Table(Resource):
    type = "dynamodb_table"
    kind = "table"
    noun = "table"
    holds_data = True

    def __init__(self, cfg: Config) -> None:
        super().__init__("table", cfg.table.name)
        self.table = cfg.table.name

    def console_url(self, identity: dict[str, Any], region: str) -> str | None:
        return _table_page(self.table, region)

    def cli_args(self, identity: dict[str, Any]) -> list[str] | None:
        return ["dynamodb describe-table", f"--table-name {self.table}"]

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {
            "key_schema": [{"AttributeName": ctx.cfg.table.partition_key, "KeyType": "HASH"}],
            "attribute_types": {ctx.cfg.table.partition_key: "S"},
            "billing_mode": "PAY_PER_REQUEST",
        }

    def find(self, ctx: Context) -> Observed | None:
        t = describe_table(ctx, self.name)
        if t is None or t.get("TableStatus") == "DELETING":
            return None
        keys = {k["AttributeName"] for k in t["KeySchema"]}
        return {
            "arn": t["TableArn"],
            "status": t["TableStatus"],
            "key_schema": t["KeySchema"],
            "attribute_types": {
                a["AttributeName"]: a["AttributeType"]
                for a in t["AttributeDefinitions"]
                if a["AttributeName"] in keys
            },
            "billing_mode": t.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED"),
        }

    def diff(self, ctx: Context, observed: Observed) -> list[Change]:
        changes = super().diff(ctx, observed)
        for c in changes:
            if c.field in ("key_schema", "attribute_types"):
                from pocctl.aws import AwsError

                raise AwsError(
                    f"table {self.name} exists with key {observed['key_schema']}, "
                    f"not {c.new if c.field == 'key_schema' else self.desired(ctx)['key_schema']}",
                    hint="a table's key cannot change: delete the table or set table.name",
                )
        return changes

    def preflight(self, ctx: Context) -> None:
        # A changed partition_key would otherwise be refused only after Lambda 1 had been told
        # the new key, and every order would then fail to store.
        observed = self.find(ctx)
        if observed is not None:
            self.diff(ctx, observed)

    def create(self, ctx: Context) -> Observed:
        pk = ctx.cfg.table.partition_key
        resp = ctx.client("dynamodb").create_table(
            TableName=self.name,
            KeySchema=[{"AttributeName": pk, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": pk, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": "pocctl", "Value": "orders-pipeline"}],
        )
        _wait_active(ctx, self.name, resp["TableDescription"])
        return self.find(ctx) or {}

    def update(self, ctx: Context, observed: Observed, changes: list[Change]) -> Observed:
        resp = ctx.client("dynamodb").update_table(
            TableName=self.name, BillingMode="PAY_PER_REQUEST"
        )
        _wait_active(ctx, self.name, resp["TableDescription"])
        return self.find(ctx) or {}

    def delete(self, ctx: Context, observed: Observed) -> None:
        ddb = ctx.client("dynamodb")
        if call_or_none(lambda: ddb.delete_table(TableName=self.name), _NO_TABLE) is None:
            return  # gone already (DeleteTable answers a description when it deletes)
        ctx.on_wait(f"waiting for table {self.name} to be deleted", 0.0)
        ddb.get_waiter("table_not_exists").wait(TableName=self.name, WaiterConfig=_WAIT)

    def status_note(self, observed: Observed) -> str:
        return observed.get("status", "")


class Stream(Resource):
    """DynamoDB Streams on the table, with the view type Lambda 2 needs."""

    type = "dynamodb_stream"
    kind = "stream"
    noun = "stream"

    def __init__(self, cfg: Config) -> None:
        super().__init__("stream", f"{cfg.table.name} stream", ("table",))
        self.table = cfg.table.name

    def console_url(self, identity: dict[str, Any], region: str) -> str | None:
        return _table_page(self.table, region) + "&tab=exports-and-streams"

    def cli_args(self, identity: dict[str, Any]) -> list[str] | None:
        # The stream's ARN ends in a timestamp: too long to type, so list the table's streams.
        return ["dynamodbstreams list-streams", f"--table-name {self.table}"]

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"enabled": True, "view_type": ctx.cfg.table.stream_view_type}

    def find(self, ctx: Context) -> Observed | None:
        t = describe_table(ctx, self.table)
        if t is None:
            return None
        spec = t.get("StreamSpecification") or {}
        if not spec.get("StreamEnabled"):
            return None
        return {
            "arn": t.get("LatestStreamArn"),
            "enabled": True,
            "view_type": spec.get("StreamViewType"),
        }

    def _set(self, ctx: Context, spec: dict[str, Any]) -> None:
        resp = ctx.client("dynamodb").update_table(TableName=self.table, StreamSpecification=spec)
        _wait_active(ctx, self.table, resp["TableDescription"])

    def create(self, ctx: Context) -> Observed:
        self._set(ctx, {"StreamEnabled": True, "StreamViewType": ctx.cfg.table.stream_view_type})
        return self.find(ctx) or {}

    def _disable(self, ctx: Context) -> None:
        try:
            self._set(ctx, {"StreamEnabled": False})
        except Exception as e:
            if not_found(e, "ResourceNotFoundException"):
                return
            # AWS refuses to disable a stream on a table that has none (ValidationException,
            # UpdateTable's StreamSpecification in the DynamoDB API Reference): an attempt whose
            # answer was lost, retried by botocore, meets its own work. Done, if so.
            from pocctl.aws import error_code

            if error_code(e) != "ValidationException":
                raise
            table = describe_table(ctx, self.table, fresh=True)
            if table is None:
                return
            if (table.get("StreamSpecification") or {}).get("StreamEnabled"):
                raise
            _wait_active(ctx, self.table, table)  # the lost attempt may still be UPDATING it

    def update(self, ctx: Context, observed: Observed, changes: list[Change]) -> Observed:
        # A stream's view type cannot be changed in place: disable it, then enable a new
        # stream ("If you disable and then re-enable a stream on the table, a new stream will
        # be created with a different stream descriptor": DynamoDB Developer Guide, Streams).
        # Lambda 2's trigger follows it to the new ARN (lambda_.EventSourceMapping).
        self._disable(ctx)
        return self.create(ctx)

    def delete(self, ctx: Context, observed: Observed) -> None:
        self._disable(ctx)


def stream_arn(ctx: Context) -> str | None:
    t = describe_table(ctx, ctx.cfg.table.name)
    if not t or not (t.get("StreamSpecification") or {}).get("StreamEnabled"):
        return None
    return t.get("LatestStreamArn")
