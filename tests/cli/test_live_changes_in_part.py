"""Live changes on the embedded AWS server of the test session (no Lambda pollers: nothing here
needs an order to flow), kept apart from test_live_changes.py, whose LocalAWS would poll this
server's stack too (moto's state is process-wide)."""

from __future__ import annotations

import re

from pocctl import config

REGION = "us-east-1"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::123456789012:role/{name}"


def test_a_renamed_role_stays_until_a_full_up_has_moved_everything_off_it(ws) -> None:  # type: ignore[no-untyped-def]
    """`pocctl iam` alone makes the renamed role but cannot move Lambda 1 to it (Task 4 does):
    the old role stays, and is said to; the next `up` moves the function, then deletes it."""
    assert ws.cli("up").exit_code == 0
    iam, lam = ws.client("iam"), ws.client("lambda")
    ws.write_config("iam:\n  roles:\n    lambda1: Orders-Store-Role\n")
    r = ws.cli("iam")
    assert r.exit_code == 0, r.output
    assert f"Lambda-SQS-DynamoDB was renamed in config.yaml; it stays until `{ws.cmd('up')}`" in (
        re.sub(r"\s+", " ", r.stderr)
    )
    roles = {x["RoleName"] for x in iam.list_roles()["Roles"]}
    assert {"Lambda-SQS-DynamoDB", "Orders-Store-Role"} <= roles
    role = lam.get_function(FunctionName="POC-Lambda-1")["Configuration"]["Role"]
    assert role == role_arn("Lambda-SQS-DynamoDB")  # still in use: it must stay
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    assert "- deleted      Lambda-SQS-DynamoDB" in r.stdout
    role = lam.get_function(FunctionName="POC-Lambda-1")["Configuration"]["Role"]
    assert role == role_arn("Orders-Store-Role")
    assert "Lambda-SQS-DynamoDB" not in {x["RoleName"] for x in iam.list_roles()["Roles"]}


def test_a_stream_change_goes_on_when_its_disable_was_already_carried_out(ws) -> None:  # type: ignore[no-untyped-def]
    """The disable of a stream change was carried out but its answer lost (botocore retries it):
    AWS refuses to disable a stream a table no longer has (ValidationException), and the change
    goes on to enable the new stream instead of failing."""
    from pocctl.aws import Aws
    from pocctl.resources.base import Context, Target
    from pocctl.resources.dynamodb import Stream

    assert ws.cli("up").exit_code == 0
    cfg = config.parse("table:\n  stream_view_type: NEW_AND_OLD_IMAGES\n")
    ctx = Context(Target(cfg, Aws(region=REGION, endpoint_url=ws.endpoint)))
    stream = Stream(cfg)
    observed = stream.find(ctx)
    assert observed is not None and observed["view_type"] == "NEW_IMAGE"
    ddb = ws.client("dynamodb")
    ddb.update_table(TableName="orders", StreamSpecification={"StreamEnabled": False})
    stream.update(ctx, observed, stream.diff(ctx, observed))
    spec = ddb.describe_table(TableName="orders")["Table"]["StreamSpecification"]
    assert spec == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_down_deletes_a_trigger_left_on_a_replaced_stream(ws, aws_endpoint) -> None:  # type: ignore[no-untyped-def]
    """The issue's leak: Lambda 2's trigger still on a stream that was replaced (here in the
    console: disabled, then enabled again). `down` finds mappings by function, not by today's
    stream ARN, and leaves none."""
    from support.inventory import empty, inventory

    assert ws.cli("up").exit_code == 0
    ddb, lam = ws.client("dynamodb"), ws.client("lambda")
    ddb.update_table(TableName="orders", StreamSpecification={"StreamEnabled": False})
    ddb.update_table(
        TableName="orders",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    new = ddb.describe_table(TableName="orders")["Table"]["LatestStreamArn"]
    (m,) = lam.list_event_source_mappings(FunctionName="POC-Lambda-2")["EventSourceMappings"]
    assert m["EventSourceArn"] != new  # on the old stream
    r = ws.cli("down", "--yes")
    assert r.exit_code == 0, r.output
    assert lam.list_event_source_mappings()["EventSourceMappings"] == []
    assert empty(inventory(aws_endpoint))


def test_up_moves_a_trigger_left_on_a_replaced_stream_and_drops_extra_ones(ws) -> None:  # type: ignore[no-untyped-def]
    """The same stale trigger, plus a second mapping added to Lambda 2 by hand: `up` moves the
    trigger to the table's stream and deletes the extra one (a stack function has one)."""
    assert ws.cli("up").exit_code == 0
    ddb, lam, sqs = ws.client("dynamodb"), ws.client("lambda"), ws.client("sqs")
    ddb.update_table(TableName="orders", StreamSpecification={"StreamEnabled": False})
    ddb.update_table(
        TableName="orders",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    new = ddb.describe_table(TableName="orders")["Table"]["LatestStreamArn"]
    extra = sqs.create_queue(QueueName="extra")["QueueUrl"]
    extra_arn = sqs.get_queue_attributes(QueueUrl=extra, AttributeNames=["QueueArn"])
    lam.create_event_source_mapping(
        FunctionName="POC-Lambda-2", EventSourceArn=extra_arn["Attributes"]["QueueArn"]
    )
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    assert "other triggers" in r.stdout
    found = lam.list_event_source_mappings(FunctionName="POC-Lambda-2")["EventSourceMappings"]
    assert [m["EventSourceArn"] for m in found] == [new]
    plan = ws.cli("plan")
    assert "0 to create, 0 to update" in plan.stdout, plan.output
