"""Tasks 4 and 7 show the handler code that is deployed (read from the file that is zipped,
whatever it holds), and Task 4 offers the lab's Step 4.4: a real pty against `pocctl local`."""

from __future__ import annotations

from pathlib import Path

from support.wtkit import client

# A handler as a learner types it from the lab (Task 4.3): a random key and the order as a string,
# under pocctl's file name (today's config runs store_order.handler).
LAB_STYLE = """import json
import uuid

import boto3


def lambda_handler(event, context):
    dynamodb = boto3.client("dynamodb")
    for record in event["Records"]:
        order_id = str(uuid.uuid4())
        dynamodb.put_item(
            TableName="orders",
            Item={"orderID": {"S": order_id}, "order": {"S": record["body"]}},
        )
    return {"statusCode": 200, "body": json.dumps("stored by the lab's code")}


handler = lambda_handler
"""


def test_task_4_shows_the_deployed_code_and_offers_step_4_4(lws, walkthrough) -> None:  # type: ignore[no-untyped-def]
    (lws.handlers / "store_order.py").write_text(LAB_STYLE)
    for cmd in ("iam", "table", "queue"):
        assert lws.cli(cmd).exit_code == 0
    s = walkthrough("--from", "4")
    number, screen = s.prompt()
    assert number == 4
    assert "code          zip of handlers/store_order.py" in screen
    # The whole (short) file, numbered, headed by its path: the learner's code, not pocctl's.
    n = len(LAB_STYLE.splitlines())
    assert f"handlers/store_order.py (lines 1–{n} of {n}; the whole file is zipped)" in screen
    assert "def lambda_handler(event, context):" in screen
    assert "order_id = str(uuid.uuid4())" in screen
    assert 'TableName="orders",' in screen
    assert "more lines" not in screen
    s.send("\r")

    s.child.expect(r"t: test it as the lab's Step 4\.4 \(an SQS test event\) · Enter: go on › ")
    s.send("t")
    number, screen = s.prompt()
    assert number == 5
    assert "invoke POC-Lambda-1 with the sqs sample (Step 4.4)" in screen
    assert "stored by the lab's code" in screen  # its own result
    assert "REPORT RequestId:" in screen  # the log tail
    # Found by the marker in the order, though the key is the handler's own uuid4.
    assert "row stored in orders:" in screen
    assert "✓ test event stored: orders row orderID=" in screen
    items = client(lws, "dynamodb").scan(TableName="orders")["Items"]
    assert len(items) == 1 and "lambda1 --test" in items[0]["order"]["S"]
    s.send("q")
    code, _ = s.finish()
    assert code == 0


def test_task_7_shows_the_handler_from_its_def_bounded(lws) -> None:  # type: ignore[no-untyped-def]
    r = lws.subprocess("task", "7", "--explain", env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "code          zip of handlers/notify_order.py" in out
    total = len(Path(lws.handlers / "notify_order.py").read_text().splitlines())
    # pocctl's notify_order.py is longer than a screen: shown from its handler's def.
    assert "handlers/notify_order.py (lines " in out and f" of {total}; the whole" in out
    assert "def handler(event: dict[str, Any], context: Any = None)" in out
