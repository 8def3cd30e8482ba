"""`pocctl walkthrough` in a real pseudo-terminal (24 × 80) against `pocctl local`: answer the
prompts, skip a task, quit in the middle, resume, run Task 9 for real, tear down at Task 10.

Every expect has a timeout; keys are only sent once their prompt is on the screen.
"""

from __future__ import annotations

import json
import re
import sys

import pexpect
from support import subprocess_env
from support.wtkit import client, plain

ACCOUNT = "123456789012"


def test_walk_skip_quit_resume_test_and_tear_down(lws, walkthrough) -> None:  # type: ignore[no-untyped-def]
    # -- first session: Tasks 1–5, skip 6, quit at 7 -----------------------------------------
    s = walkthrough()
    number, screen = s.prompt()
    assert number == 1
    assert "pocctl walkthrough" in screen
    assert "Task 1 of 10 · Creating IAM policies and roles" in screen
    assert "Each component gets its own role" in screen
    # What it will send: the policy documents themselves, as JSON.
    assert "policy Lambda-Write-DynamoDB" in screen
    assert '"Action": [\n            "dynamodb:PutItem",' in screen
    assert f'"Resource": "arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders"' in screen
    assert '"Service": "apigateway.amazonaws.com"' in screen
    # What happens next: the plan.
    assert "+ create     policy Lambda-Write-DynamoDB" in screen
    assert "+ create     role APIGateway-SQS" in screen
    assert all(len(line) <= 80 for line in screen.splitlines())
    s.send("\r")

    number, screen = s.prompt()
    assert number == 2
    # Task 1's run, then what it made: ARNs and the AWS CLI command that shows each one.
    assert "▶ running Task 1" in screen
    assert "+ created      Lambda-Write-DynamoDB" in screen
    assert "What it made" in screen
    assert f"arn:aws:iam::{ACCOUNT}:role/Lambda-SQS-DynamoDB" in screen
    # What a fresh shell needs too: the embedded AWS's public key, the endpoint, the region.
    assert "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws" in screen
    assert f"--endpoint-url {lws.endpoint} --region us-east-1" in screen
    assert "--role-name APIGateway-SQS" in screen
    assert "Task 2 of 10 · Creating a DynamoDB table" in screen
    assert "billing_mode  PAY_PER_REQUEST" in screen
    s.send("\r")

    number, screen = s.prompt()
    assert number == 3
    assert "dynamodb describe-table --table-name orders" in screen
    assert "The queue decouples the API from the processing" in screen
    assert "VisibilityTimeout       60" in screen
    assert '"deadLetterTargetArn": "arn:aws:sqs:us-east-1:' in screen
    s.send("\r")

    number, screen = s.prompt()
    assert number == 4
    queue_url = f"{lws.endpoint}/{ACCOUNT}/POC-Queue"
    assert f"sqs get-queue-attributes \\\n      --queue-url {queue_url}" in screen
    assert "runtime       python3.13" in screen
    assert "handler       store_order.handler" in screen
    assert "architecture  x86_64" in screen
    assert "zip of handlers/store_order.py" in screen
    assert '"TABLE_NAME": "orders"' in screen
    assert "trigger POC-Queue → POC-Lambda-1" in screen
    s.send("\r")

    # After Task 4 runs, the lab's Step 4.4 is offered: Enter goes on without it.
    s.child.expect(r"t: test it as the lab's Step 4\.4 \(an SQS test event\) · Enter: go on › ")
    made = plain(s.child.before)
    s.send("\r")
    number, screen = s.prompt()
    screen = made + screen
    assert number == 5
    assert "▶ Step 4.4" not in screen
    assert "lambda get-function --function-name POC-Lambda-1" in screen
    assert "lambda get-event-source-mapping" in screen
    assert "view_type  NEW_IMAGE" in screen
    s.send("\r")

    number, screen = s.prompt()
    assert number == 6
    assert "dynamodbstreams list-streams --table-name orders" in screen
    assert "SNS fans a message out" in screen
    s.send("s")

    number, screen = s.prompt()
    assert number == 7
    assert "skip" in screen and "skipped Task 6" in screen
    assert "▶ running Task 6" not in screen
    s.send("q")
    code, screen = s.finish()
    assert code == 0
    assert "Stopped before Task 7; what was made is kept." in screen

    # Tasks 1–5 are there, 6 and 7 are not.
    assert [f["FunctionName"] for f in client(lws, "lambda").list_functions()["Functions"]] == [
        "POC-Lambda-1"
    ]
    assert client(lws, "sns").list_topics()["Topics"] == []
    state = json.loads(lws.state.read_text())
    assert "function.lambda1" in state["resources"] and "topic" not in state["resources"]

    # -- second session: resumes at the skipped Task 6, runs to the end ------------------------
    s = walkthrough()
    number, screen = s.prompt()
    assert number == 6
    assert "Tasks 1–5 are done: resuming at Task 6" in screen
    assert "Task 6 of 10 · Creating an SNS topic and setting up subscriptions" in screen
    assert "+ create     topic POC-Topic" in screen
    s.send("\r")

    number, screen = s.prompt()
    assert number == 7
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:POC-Topic"
    assert f"sns get-topic-attributes \\\n      --topic-arn {topic}" in screen
    assert "Creating a Lambda function to publish a message to the SNS topic" in screen
    assert f'"TOPIC_ARN": "{topic}"' in screen
    assert '"Destination":' in screen
    s.send("\r")

    number, screen = s.prompt()
    assert number == 8
    assert "+ created      orders stream → POC-Lambda-2" in screen
    assert "Task 8 of 10 · Creating an API with Amazon API Gateway" in screen
    # The integration's template, exactly as it is sent.
    assert '"Action=SendMessage&MessageBody=$util.urlEncode($input.body)"' in screen
    assert '"uri": "arn:aws:apigateway:us-east-1:sqs:path/123456789012/POC-Queue"' in screen
    s.send("\r")

    number, screen = s.prompt()
    assert number == 9
    assert "invoke URL:" in screen and "/prod/_user_request_/" in screen
    assert "apigateway get-rest-api --rest-api-id" in screen
    assert "Task 9 of 10 · Testing the architecture" in screen
    assert '"item": "all-purpose cleaner"' in screen
    s.send("\r")

    screen = s.teardown_prompt(timeout=120)
    assert "▶ running Task 9" in screen
    assert "1 of 1 orders stored once and notified once" in screen
    assert "Task 10 of 10 · Cleaning up" in screen
    assert "- delete    api POC-API" in screen
    assert "- delete    policy Lambda-Write-DynamoDB" in screen
    # Before answering, everything is still there.
    assert len(client(lws, "lambda").list_functions()["Functions"]) == 2
    s.send("y")
    code, screen = s.finish(timeout=120)
    assert code == 0, screen
    assert "stack is down: 18 deleted, 0 already gone" in screen
    assert "walkthrough finished" in screen

    assert_nothing_left(lws)
    assert json.loads(lws.state.read_text())["resources"] == {}


def test_ctrl_d_quits_and_from_starts_elsewhere(lws, walkthrough) -> None:  # type: ignore[no-untyped-def]
    s = walkthrough("--from", "3")
    number, screen = s.prompt()
    assert number == 3
    assert "resuming" not in screen
    assert "Task 3 of 10 · Creating an SQS queue" in screen
    s.send("\x04")  # Ctrl-D
    code, screen = s.finish()
    assert code == 0
    assert "quit" in screen and "Stopped before Task 3" in screen
    assert client(lws, "sqs").list_queues().get("QueueUrls", []) == []

    s = walkthrough("--from", "2")
    number, _ = s.prompt()
    assert number == 2
    s.send("\x03")  # Ctrl-C: quits too, keeping what was made, and exits 130 as anywhere
    code, screen = s.finish()
    assert code == 130
    assert "Stopped before Task 2" in screen


def test_task_10_keeps_the_stack_unless_asked(lws, walkthrough) -> None:  # type: ignore[no-untyped-def]
    assert lws.subprocess("table").exit_code == 0
    s = walkthrough("--from", "10")
    screen = s.teardown_prompt()
    assert "- delete    table orders" in screen
    assert "· gone      api POC-API" in screen
    s.send("\r")  # the default is to keep it
    code, screen = s.finish()
    assert code == 0
    assert "Kept the stack" in screen
    assert client(lws, "dynamodb").list_tables()["TableNames"] == ["orders"]


def assert_nothing_left(ws) -> None:  # type: ignore[no-untyped-def]
    iam = client(ws, "iam")
    assert iam.list_policies(Scope="Local")["Policies"] == []
    assert iam.list_roles()["Roles"] == []
    assert client(ws, "dynamodb").list_tables()["TableNames"] == []
    assert client(ws, "sqs").list_queues().get("QueueUrls", []) == []
    assert client(ws, "lambda").list_functions()["Functions"] == []
    assert client(ws, "lambda").list_event_source_mappings()["EventSourceMappings"] == []
    assert client(ws, "sns").list_topics()["Topics"] == []
    assert client(ws, "apigateway").get_rest_apis()["items"] == []


def _explain_in_a_terminal(ws, **env: str) -> str:  # type: ignore[no-untyped-def]
    full = subprocess_env(TERM="xterm-256color", **env)
    if "NO_COLOR" not in env:
        full.pop("NO_COLOR", None)
    out = pexpect.run(
        f"{sys.executable} -m pocctl --endpoint-url {ws.endpoint} task 1 --explain",
        cwd=str(ws.dir),
        env=full,
        timeout=60,
        encoding="utf-8",
        dimensions=(24, 80),
    )
    return out


def test_json_is_highlighted_in_a_terminal_and_plain_with_no_color(ws) -> None:  # type: ignore[no-untyped-def]
    colour = re.compile(r"\x1b\[[0-9;]*3[0-9][;m]")  # a foreground colour
    coloured = _explain_in_a_terminal(ws)
    line = next(x for x in coloured.splitlines() if "dynamodb:PutItem" in x)
    assert colour.search(line), repr(line)
    plain_text = _explain_in_a_terminal(ws, NO_COLOR="1")
    assert "dynamodb:PutItem" in plain_text
    assert not colour.search(plain_text)


def test_ctrl_c_during_a_run_says_what_is_kept(lws, walkthrough) -> None:  # type: ignore[no-untyped-def]
    assert lws.subprocess("up").exit_code == 0
    s = walkthrough()
    number, screen = s.prompt()
    assert number == 9  # Tasks 1–8 are done
    assert "Tasks 1–8 are done: resuming at Task 9" in screen
    s.send("\r")
    s.child.expect("POST 1 order to ", timeout=60)  # test-order is under way
    s.send("\x03")
    code, screen = s.finish()
    assert code == 130
    assert "Interrupted during Task 9: what it made so far is kept" in screen
    assert "Traceback" not in screen and "Aborted!" not in screen
    # test-order removes its probe queue whatever happens.
    queues = client(lws, "sqs").list_queues().get("QueueUrls", [])
    assert not [q for q in queues if "pocctl-probe" in q]
