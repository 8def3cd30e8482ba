"""Every region: one real `pocctl local`, the whole pipeline built by `pocctl up` in three regions
with the same regional resource names (queue, table, functions, topic, API: per region on AWS)
and IAM names of their own (IAM is global: one account's roles and policies serve every region,
so a second region's `up` with the same names would rewrite the first's policies), and
`pocctl test-order` passing in each: the API found in its region, the pollers reading each
region's queue and stream, the functions' logs in their own region's CloudWatch Logs, each
region's data its own."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from support.localkit import wait_for
from support.localproc import LocalProcess
from support.workspace import Workspace, make_workspace

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
ORDERS = {"us-east-1": 2, "eu-west-1": 3, "ap-southeast-2": 4}  # tells the regions' data apart


@pytest.fixture(scope="module")
def stacks(
    local_process: LocalProcess, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Workspace]:
    built = {}
    for region in REGIONS:
        ws = make_workspace(Path(tmp_path_factory.mktemp(region)), local_process.endpoint)
        ws.write_config(f"region: {region}\n" + _iam_names(region))
        r = ws.cli("up")
        assert r.exit_code == 0, r.output
        built[region] = ws
    return built


def _iam_names(region: str) -> str:
    """IAM's names for this region's stack: roles and policies are global, not regional."""
    suffix = region.replace("-", "")
    policies = ("write_dynamodb", "read_sqs", "sns_publish", "streams_read")
    roles = ("lambda1", "lambda2", "apigateway")
    lines = ["iam:", "  policies:"]
    lines += [f"    {key}: {key}-{suffix}" for key in policies]
    lines += ["  roles:"] + [f"    {key}: {key}-{suffix}" for key in roles]
    return "\n".join(lines) + "\n"


def _events(logs, group: str):  # type: ignore[no-untyped-def]
    """The group's events, or None while the group does not exist yet."""
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        return None
    return logs.filter_log_events(logGroupName=group).get("events")


def _client(local_process: LocalProcess, service: str, region: str):  # type: ignore[no-untyped-def]
    return boto3.client(service, region_name=region, endpoint_url=local_process.endpoint)


def test_the_banner_says_every_region_is_served(local_process: LocalProcess) -> None:
    assert "Every region is served" in local_process.output


@pytest.mark.parametrize("region", REGIONS)
def test_test_order_passes_in_every_region(
    local_process: LocalProcess, stacks: dict[str, Workspace], region: str
) -> None:
    ws = stacks[region]
    r = ws.cli("test-order", "--count", str(ORDERS[region]))
    assert r.exit_code == 0, r.output
    n = ORDERS[region]
    assert f"{n} of {n} orders stored once and notified once" in r.stdout, r.stdout
    # The rows are in this region's table only (the other regions' tables have their own).
    ddb = _client(local_process, "dynamodb", region)
    assert ddb.scan(TableName="orders")["Count"] == n
    # The invoke URL the state recorded names this region's API.
    api_id = _client(local_process, "apigateway", region).get_rest_apis()["items"][0]["id"]
    assert f"/restapis/{api_id}/" in ws.state.read_text()


def test_each_region_keeps_its_own_data_and_logs(
    local_process: LocalProcess, stacks: dict[str, Workspace]
) -> None:
    for region in REGIONS:
        assert stacks[region].cli("test-order", "--count", "1").exit_code == 0
    for region in REGIONS:
        ddb = _client(local_process, "dynamodb", region)
        count = ddb.scan(TableName="orders")["Count"]
        assert count >= 1
        logs = _client(local_process, "logs", region)
        # Both functions' output reached CloudWatch Logs in their own region.
        for fn in ("POC-Lambda-1", "POC-Lambda-2"):
            group = f"/aws/lambda/{fn}"
            events = wait_for(
                lambda g=group, c=logs: _events(c, g), what=f"{group}'s events in {region}"
            )
            assert any(e["message"].startswith("REPORT RequestId:") for e in events)
            arn = _client(local_process, "lambda", region).get_function(FunctionName=fn)
            assert f":{region}:" in arn["Configuration"]["FunctionArn"]


def test_mappings_report_their_last_batch_in_every_region(
    local_process: LocalProcess, stacks: dict[str, Workspace]
) -> None:
    for region in REGIONS:
        assert stacks[region].cli("test-order", "--count", "1").exit_code == 0
        mappings = _client(local_process, "lambda", region).list_event_source_mappings()[
            "EventSourceMappings"
        ]
        assert len(mappings) == 2
        for m in mappings:
            assert f":{region}:" in m["EventSourceArn"]
            assert m["LastProcessingResult"] == "OK", m
            sqs = ":sqs:" in m["EventSourceArn"]
            assert m["StateTransitionReason"] == ("USER_INITIATED" if sqs else "User action")
