"""The Lambda Invoke API runs the deployed zip (through LocalAWS), with logs in CloudWatch."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from support.localkit import deploy_function, wait_for, zipped

from pocctl.local.runtime import LocalAWS
from pocctl.local.server import local_client

ROOT = Path(__file__).resolve().parents[2]

ECHO = """
import os
def handler(event, context):
    print("echo", event.get("n"))
    return {"version": VERSION, "event": event, "request_id": context.aws_request_id}
VERSION = "v1"
"""

BOOM = """
def handler(event, context):
    raise KeyError("missing thing")
"""


def _function(aws: LocalAWS, name: str, files: dict[str, str], handler: str) -> tuple[object, str]:
    return deploy_function(aws.endpoint_url, name, files, handler)


def test_invoke_returns_the_handler_result(local_aws: LocalAWS, log_lines) -> None:  # type: ignore[no-untyped-def]
    lam, _ = _function(local_aws, "echo", {"echo.py": ECHO}, "echo.handler")
    resp = lam.invoke(FunctionName="echo", Payload=json.dumps({"n": 7}), LogType="Tail")  # type: ignore[attr-defined]
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    out = json.loads(resp["Payload"].read())
    assert out["version"] == "v1" and out["event"] == {"n": 7}
    assert "echo 7" in base64.b64decode(resp["LogResult"]).decode()
    assert "[echo] echo 7" in log_lines.lines

    # ...and the output is in CloudWatch Logs, in the function's log group.
    logs = local_client(local_aws.endpoint_url, "logs")
    local_aws.flush_logs()
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/echo")["logStreams"]
    events = logs.get_log_events(
        logGroupName="/aws/lambda/echo", logStreamName=streams[0]["logStreamName"]
    )["events"]
    messages = [e["message"] for e in events]
    assert messages[0].startswith(f"START RequestId: {out['request_id']}")
    assert "echo 7\n" in messages  # a printed line is one event, with its newline
    assert messages[-1].startswith(f"REPORT RequestId: {out['request_id']}")


def test_invoke_error_is_unhandled_with_aws_payload(local_aws: LocalAWS) -> None:
    lam, _ = _function(local_aws, "boom", {"boom.py": BOOM}, "boom.handler")
    resp = lam.invoke(FunctionName="boom", Payload=b"{}")  # type: ignore[attr-defined]
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    err = json.loads(resp["Payload"].read())
    assert err["errorType"] == "KeyError"
    assert err["errorMessage"] == "'missing thing'"
    assert isinstance(err["stackTrace"], list) and err["stackTrace"]


def test_updated_code_is_what_runs_next(local_aws: LocalAWS) -> None:
    lam, _ = _function(local_aws, "echo", {"echo.py": ECHO}, "echo.handler")
    assert json.loads(lam.invoke(FunctionName="echo")["Payload"].read())["version"] == "v1"  # type: ignore[attr-defined]
    lam.update_function_code(  # type: ignore[attr-defined]
        FunctionName="echo", ZipFile=zipped({"echo.py": ECHO.replace('"v1"', '"v2"')})
    )
    lam.get_waiter("function_updated_v2").wait(FunctionName="echo")  # type: ignore[attr-defined]
    assert json.loads(lam.invoke(FunctionName="echo")["Payload"].read())["version"] == "v2"  # type: ignore[attr-defined]


def test_code_runs_from_the_uploaded_zip_not_handlers_dir(local_aws: LocalAWS) -> None:
    """A store_order.py that differs from the repository's handlers/store_order.py runs."""
    src = 'def handler(event, context):\n    return {"marker": "uploaded-zip", "file": __file__}\n'
    repo_handler = ROOT / "handlers" / "store_order.py"
    if repo_handler.exists():
        assert "uploaded-zip" not in repo_handler.read_text()
    lam, _ = _function(local_aws, "POC-Lambda-1", {"store_order.py": src}, "store_order.handler")
    out = json.loads(lam.invoke(FunctionName="POC-Lambda-1")["Payload"].read())  # type: ignore[attr-defined]
    assert out["marker"] == "uploaded-zip"
    assert not out["file"].startswith(str(ROOT))


def test_event_invocation_runs_in_the_background(local_aws: LocalAWS, log_lines) -> None:  # type: ignore[no-untyped-def]
    lam, _ = _function(local_aws, "echo", {"echo.py": ECHO}, "echo.handler")
    resp = lam.invoke(FunctionName="echo", InvocationType="Event", Payload=json.dumps({"n": 9}))  # type: ignore[attr-defined]
    assert resp["StatusCode"] == 202
    wait_for(lambda: log_lines.having("[echo] echo 9"), what="the async invocation's output")
