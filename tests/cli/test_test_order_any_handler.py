"""`pocctl test-order` as a user runs it (a subprocess, a real pty for the live counters) against
one real `pocctl local` for the module, with whatever handlers are deployed: the lab's own code
as the lab prints it, handlers that store and publish orders in other shapes, and broken ones,
for which it says where the order stopped (hop, place, the function's last logged error).

Each test writes the handlers it needs and runs `up` (only changed code is redeployed), so the
tests do not depend on each other's order (tests with the same handlers are next to each other:
their workers stay warm). Lambda 2 gives up after one retry, so its failure record comes soon."""

from __future__ import annotations

import json
import re

import pexpect
import pytest
from support.localproc import LocalProcess
from support.workspace import Run, Workspace, make_workspace

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:POC-Topic"

# Every handler here is deployed as the console names it: lambda_function.py's lambda_handler.
CONFIG = """\
lambda1:
  code: fn1
  handler: lambda_function.lambda_handler
lambda2:
  code: fn2
  handler: lambda_function.lambda_handler
  maximum_retry_attempts: 1
"""

# The lab's Task 4, Step 4.3 code, as seed-lab.md prints it.
LAB_LAMBDA_1 = """\
import boto3, uuid

client = boto3.resource('dynamodb')
table = client.Table("orders")

def lambda_handler(event, context):
    for record in event['Records']:
        payload = record["body"]
        table.put_item(Item={'orderID': str(uuid.uuid4()), 'order': payload})
"""

# The lab's Task 7, Step 7.3 code, with the topic's ARN filled in as Step 7.3.2 says.
LAB_LAMBDA_2 = f"""\
import boto3, json

client = boto3.client('sns')

def lambda_handler(event, context):
    for record in event['Records']:
        message = json.dumps(record['dynamodb']['NewImage'], indent=4)
        client.publish(
            TopicArn='{TOPIC_ARN}',
            Message=message,
            Subject='New Order Notification'
        )
"""

# A map under the SQS message ID; notified as compact DynamoDB JSON, no subject.
STORE_MAP = """\
import boto3, json

ddb = boto3.client('dynamodb')

def lambda_handler(event, context):
    for r in event['Records']:
        order = {k: {'S': str(v)} for k, v in json.loads(r['body']).items()}
        ddb.put_item(TableName='orders', Item={'orderID': {'S': r['messageId']}, 'o': {'M': order}})
"""
NOTIFY_TYPED = f"""\
import boto3, json

sns = boto3.client('sns')

def lambda_handler(event, context):
    for r in event['Records']:
        if r['eventName'] == 'INSERT':
            sns.publish(TopicArn='{TOPIC_ARN}', Message=json.dumps(r['dynamodb']['NewImage']))
"""
# A JSON string nested in a list in a map, under a random key of another shape.
STORE_NESTED_STRING = """\
import boto3, json, random

table = boto3.resource('dynamodb').Table('orders')

def lambda_handler(event, context):
    for r in event['Records']:
        key = 'order#%d' % random.randrange(10**12)
        table.put_item(Item={'orderID': key, 'data': {'history': [r['body']]}})
"""
# The notification is plain text around the JSON-encoded row.
NOTIFY_TEXT = f"""\
import boto3, json

sns = boto3.client('sns')

def lambda_handler(event, context):
    for r in event['Records']:
        row = json.dumps(r['dynamodb']['NewImage'])
        text = 'New order: ' + json.dumps(row)
        sns.publish(TopicArn='{TOPIC_ARN}', Subject='Order', Message=text)
"""
NOTIFY_NOTHING = """\
def lambda_handler(event, context):
    print('got', len(event['Records']), 'records; publishing nothing')
"""
STORE_BROKEN = """\
import boto3, os, uuid

client = boto3.resource('dynamodb')

def lambda_handler(event, context):
    table = client.Table(os.environ["TABLE"])
    for record in event['Records']:
        table.put_item(Item={'orderID': str(uuid.uuid4()), 'order': record["body"]})
"""
NOTIFY_BROKEN = """\
def lambda_handler(event, context):
    raise RuntimeError('SNS is down for maintenance')
"""
STORE_TWICE = """\
import boto3, uuid

table = boto3.resource('dynamodb').Table('orders')

def lambda_handler(event, context):
    for r in event['Records']:
        for _ in range(2):
            table.put_item(Item={'orderID': str(uuid.uuid4()), 'order': r['body']})
"""


@pytest.fixture(scope="module")
def ws(local_process: LocalProcess, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    w = make_workspace(tmp_path_factory.mktemp("any-handler"), local_process.endpoint)
    w.write_config(CONFIG)
    return w


def deploy(ws: Workspace, store: str, notify: str) -> None:
    """The handlers' code under the console's names, then `up` (redeploys what changed and puts
    back a trigger a test deleted)."""
    for folder, code in (("fn1", store), ("fn2", notify)):
        (ws.dir / folder).mkdir(exist_ok=True)
        (ws.dir / folder / "lambda_function.py").write_text(code)
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    # One invoke each, so the test's order meets warm workers whatever the machine's load:
    # a short --timeout then measures the handler, not a cold start.
    lam = ws.client("lambda")
    for name in ("POC-Lambda-1", "POC-Lambda-2"):
        lam.invoke(FunctionName=name, Payload=b'{"Records": []}')


def send_orders(ws: Workspace, *args: str) -> Run:
    return ws.subprocess("--config", str(ws.config), "--state", str(ws.state), "test-order", *args)


def test_the_labs_own_code_passes_and_no_order_is_notified_before_it_is_stored(
    ws: Workspace,
) -> None:
    """20 orders at once through the lab's code; stored is the row's own time (its stream
    record), so notified never comes before it."""
    deploy(ws, LAB_LAMBDA_1, LAB_LAMBDA_2)
    r = send_orders(ws, "--count", "20", "--rate", "0", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)  # nothing but the report on stdout
    assert report["ok"] is True
    assert report["problems"] == [] and report["diagnosis"] == []
    for o in report["orders"]:
        assert o["ok"] and o["status"] == 200 and o["marker"].startswith("pocctl-")
        assert 0 < o["stored"] <= o["notified"], o
        assert o["accepted"] > 0
    assert set(report["percentiles"]) == {"accepted", "stored", "notified"}
    assert "Traceback" not in r.stderr and "sent " not in r.stderr  # no counters on a pipe
    # The rows are the lab's: a random key, the order as the body string, with its marker.
    items = ws.client("dynamodb").scan(TableName="orders")["Items"]
    ours = [i for i in items if report["run_id"] in i.get("order", {}).get("S", "")]
    assert len(ours) == 20
    assert all(re.fullmatch(r"[0-9a-f-]{36}", i["orderID"]["S"]) for i in ours)


def test_live_counters_show_on_a_terminal(ws: Workspace) -> None:
    deploy(ws, LAB_LAMBDA_1, LAB_LAMBDA_2)
    args = ["--config", str(ws.config), "--state", str(ws.state), "test-order"]
    child = ws.terminal(*args, "--count", "4", "--rate", "4", columns=120)
    child.expect(r"sent \d/4 · accepted \d · stored \d · notified \d · \d+ s")
    child.expect("4 of 4 orders stored once and notified once")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_a_missing_trigger_is_named_and_the_order_found_waiting_in_the_queue(
    ws: Workspace,
) -> None:
    deploy(ws, LAB_LAMBDA_1, LAB_LAMBDA_2)
    lam = ws.client("lambda")
    (m,) = lam.list_event_source_mappings(FunctionName="POC-Lambda-1")["EventSourceMappings"]
    lam.delete_event_source_mapping(UUID=m["UUID"])
    r = send_orders(ws, "--timeout", "2")
    assert r.exit_code == 1, r.output
    err = r.stderr
    assert "order 1 stopped at POC-Queue → POC-Lambda-1 → table orders" in err
    assert "where: in POC-Queue: 1 message(s) visible, 0 in flight" in err
    assert (
        "why:   POC-Lambda-1 has no trigger (event source mapping) on "
        "arn:aws:sqs:us-east-1:123456789012:POC-Queue"
    ) in err


def test_a_handler_that_never_notifies_gets_a_clear_report(ws: Workspace) -> None:
    deploy(ws, LAB_LAMBDA_1, NOTIFY_NOTHING)
    r = send_orders(ws, "--timeout", "2")
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    assert "was stored but not notified" in r.stderr
    assert "order 1 stopped at table orders → stream → POC-Lambda-2 → POC-Topic" in r.stderr
    assert "where: a row without a notification" in r.stderr
    assert "POC-Lambda-2 logged no error since the test began" in r.stderr
    assert "1 of 1 orders did not make it through" in r.stderr


def test_a_broken_lambda_2_is_named_with_its_error_and_its_failure_record(ws: Workspace) -> None:
    deploy(ws, LAB_LAMBDA_1, NOTIFY_BROKEN)
    r = send_orders(ws, "--timeout", "3")
    assert r.exit_code == 1, r.output
    err = r.stderr
    assert "order 1 stopped at table orders → stream → POC-Lambda-2 → POC-Topic" in err
    assert "where: a row without a notification; its stream record is in POC-Lambda-2's " in err
    assert "failure queue POC-Lambda-2-Failures" in err
    assert "error: RuntimeError: SNS is down for maintenance" in err
    assert re.search(r"log:\s+/aws/lambda/POC-Lambda-2 \d{4}/\d\d/\d\d/\[\$LATEST\]", err), err


def test_two_rows_and_two_notifications_for_one_order_are_reported(ws: Workspace) -> None:
    """Order 2 leaves a second after order 1, so test-order is still following when order 1's
    second row and second notification come."""
    deploy(ws, STORE_TWICE, LAB_LAMBDA_2)
    r = send_orders(ws, "--count", "2", "--rate", "1", "--timeout", "20")
    assert r.exit_code == 1, r.output
    assert re.search(r"order 1 \(\S+\) was stored 2 times: rows ", r.stderr), r.stderr
    assert re.search(r"order 1 \(\S+\) was notified 2 times", r.stderr), r.stderr


def test_a_broken_lambda_1_is_named_with_its_error_and_the_order_in_flight(
    ws: Workspace,
) -> None:
    deploy(ws, STORE_BROKEN, LAB_LAMBDA_2)
    r = send_orders(ws, "--timeout", "2", "--json")
    assert r.exit_code == 1, r.output
    report = json.loads(r.stdout)
    (finding,) = report["diagnosis"]
    assert finding["hop"] == "POC-Queue → POC-Lambda-1 → table orders"
    assert finding["orders"] == [1]
    assert re.match(r"in POC-Queue: 0 message\(s\) visible, [1-9]\d* in flight", finding["where"])
    error = finding["error"]
    assert (error["function"], error["type"], error["message"]) == (
        "POC-Lambda-1",
        "KeyError",
        "'TABLE'",
    )
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", error["log_stream"])
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("store", "notify"),
    [(STORE_MAP, NOTIFY_TYPED), (STORE_NESTED_STRING, NOTIFY_TEXT)],
    ids=["map-under-message-id+dynamodb-json", "string-in-a-list-random-key+text"],
)
def test_orders_are_found_whatever_the_shape(ws: Workspace, store: str, notify: str) -> None:
    deploy(ws, store, notify)
    r = ws.cli("test-order", "--count", "2", "--json")  # in-process: the same code, no start-up
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["ok"] is True
    assert [(o["notifications"], len(o["rows"])) for o in report["orders"]] == [(1, 1), (1, 1)]
    assert report["rows_found_by"] == "stream"


def test_a_body_that_is_not_an_object_is_refused_before_any_post(ws: Workspace) -> None:
    r = send_orders(ws, "--body", "[1, 2]")
    assert r.exit_code == 2, r.output
    assert "--body must be a JSON object of fields" in r.stderr
