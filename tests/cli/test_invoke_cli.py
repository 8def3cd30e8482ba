"""`pocctl invoke` and `pocctl lambda1 --test` as a user runs them (the real CLI in a subprocess)
against one real `pocctl local` with the stack up: each sample does what its trigger's event
would (the sqs sample stores a row, dynamodb-insert makes Lambda 2 publish), the apigateway
sample is answered without storing anything, events come from a file or stdin, and a handler
error exits 1 with the log tail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import subprocess_env
from support.localkit import wait_for
from support.localproc import LocalProcess
from support.workspace import Run, Workspace, make_workspace

from pocctl.orders import probe_queue_policy


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, local_process: LocalProcess) -> Workspace:
    w = make_workspace(tmp_path_factory.mktemp("invoke"), local_process.endpoint)
    up = w.cli("up")  # in-process: the stack is the fixture, not what is tested
    assert up.exit_code == 0, up.output
    return w


def _invoke(ws: Workspace, *args: str, stdin: str | None = None) -> Run:
    proc = subprocess.run(
        [sys.executable, "-m", "pocctl", "--endpoint-url", ws.endpoint, "invoke", *args],
        cwd=ws.dir,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin if stdin is not None else "",
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def _rows(ws: Workspace) -> list[dict]:  # type: ignore[type-arg]
    ddb = ws.client("dynamodb")
    return ddb.scan(TableName="orders", ConsistentRead=True)["Items"]  # type: ignore[no-any-return]


def _sources(ws: Workspace) -> list[str]:
    return [r["order"]["M"].get("source", {}).get("S", "") for r in _rows(ws) if "order" in r]


def test_lambda1_with_the_sqs_sample_stores_a_row_and_shows_the_log_tail(ws: Workspace) -> None:
    r = _invoke(ws, "lambda1")
    assert r.exit_code == 0, r.output
    assert "invoke POC-Lambda-1 with the sqs sample" in r.stdout
    assert "✓ POC-Lambda-1 returned (status 200)" in r.stdout
    assert '"batchItemFailures": []' in r.stdout
    assert "log tail" in r.stdout
    assert "START RequestId:" in r.stdout and "REPORT RequestId:" in r.stdout
    assert "pocctl invoke --sample sqs" in _sources(ws)


def test_json_output_has_the_payload_and_the_decoded_tail(ws: Workspace) -> None:
    r = ws.cli("invoke", "POC-Lambda-1", "--sample", "sqs", "--json")  # in-process: faster
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["function"] == "POC-Lambda-1"
    assert out["statusCode"] == 200
    assert out["functionError"] is None
    assert out["payload"] == {"batchItemFailures": []}
    assert out["logTail"].startswith("START RequestId:")


def test_dynamodb_insert_sample_makes_lambda2_publish(ws: Workspace) -> None:
    sns, sqs = ws.client("sns"), ws.client("sqs")
    topic = next(
        t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":POC-Topic")
    )
    url = sqs.create_queue(QueueName="invoke-probe")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": json.dumps(probe_queue_policy(arn, topic))}
    )
    sub = sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )["SubscriptionArn"]
    try:
        r = _invoke(ws, "lambda2")  # its default sample: dynamodb-insert
        assert r.exit_code == 0, r.output
        assert "invoke POC-Lambda-2 with the dynamodb-insert sample" in r.stdout
        bodies: list[str] = []

        def published() -> bool:
            got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
            bodies.extend(m["Body"] for m in got)
            return any("pocctl invoke --sample dynamodb-insert" in b for b in bodies)

        wait_for(published, timeout=15)
    finally:
        sns.unsubscribe(SubscriptionArn=sub)
        sqs.delete_queue(QueueUrl=url)


def test_apigateway_sample_is_answered_and_stores_nothing(ws: Workspace) -> None:
    """The pipeline's API sends to SQS itself: no Lambda is an API Gateway proxy here, so the
    handler finds no Records in the proxy event, returns an empty batch response, stores nothing."""
    r = ws.cli("invoke", "lambda1", "--sample", "apigateway", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["payload"] == {"batchItemFailures": []}
    assert "pocctl invoke --sample apigateway" not in _sources(ws)


def test_event_from_a_file(ws: Workspace, tmp_path: Path) -> None:
    body = json.dumps({"item": "from a file", "quantity": 2})
    event = {"Records": [{"messageId": "file-1", "body": body, "attributes": {}}]}
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    r = _invoke(ws, "lambda1", "--event", str(path))
    assert r.exit_code == 0, r.output
    assert "invoke POC-Lambda-1 with --event" in r.stdout
    row = ws.client("dynamodb").get_item(
        TableName="orders", Key={"orderID": {"S": "file-1"}}, ConsistentRead=True
    )["Item"]
    assert row["order"]["M"]["item"]["S"] == "from a file"


def test_a_handler_error_from_stdin_exits_1_with_the_log_tail(ws: Workspace) -> None:
    r = _invoke(ws, "lambda1", "--event", "-", stdin='{"Records": [{"body": "no id"}]}')
    assert r.exit_code == 1, r.output
    assert "✗ POC-Lambda-1 failed (Unhandled)" in r.stdout
    assert "KeyError: 'messageId'" in r.stdout
    tail = r.stdout.split("log tail", 1)[1]
    assert "[ERROR] KeyError: 'messageId'" in tail
    assert "Traceback (most recent call last)" in tail


def test_bad_input_is_a_usage_error_and_a_missing_function_says_so(
    ws: Workspace, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    # In-process (the same click entry point): no order of these needs a new interpreter.
    r = ws.cli("invoke", "lambda1", "--event", str(bad))
    assert r.exit_code == 2 and "is not JSON" in r.stderr, r.output
    r = ws.cli("invoke", "lambda1", "--event", str(bad), "--sample", "sqs")
    assert r.exit_code == 2 and "not both" in r.stderr, r.output
    r = ws.cli("invoke", "no-such-function")
    assert r.exit_code == 1 and "function no-such-function does not exist" in r.stderr, r.output


def test_lambda1_test_is_the_sqs_sample_then_the_row(ws: Workspace) -> None:
    r = ws.cli("lambda1", "--test")
    assert r.exit_code == 0, r.output
    assert "invoke POC-Lambda-1 with the sqs sample (Step 4.4)" in r.stdout
    assert "START RequestId:" in r.stdout
    assert "row stored in orders:" in r.stdout
    assert '"source": "lambda1 --test"' in r.stdout
    assert "✓ test event stored: orders row orderID=" in r.stdout
