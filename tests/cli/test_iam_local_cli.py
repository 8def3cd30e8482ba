"""IAM as a learner meets it with `pocctl local` in one terminal and the CLI in another: the
shipped policies pass `test-order`; without dynamodb:PutItem in Lambda-Write-DynamoDB it fails,
with AccessDeniedException in the function's output, exactly as in an account."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from support.localproc import LocalProcess
from support.workspace import make_workspace

ACCOUNT = "123456789012"


def test_test_order_fails_with_access_denied_once_putitem_is_taken_out(tmp_path: Path) -> None:
    local = LocalProcess("--port", "0")
    try:
        ws = make_workspace(tmp_path, local.endpoint)
        up = ws.subprocess("--config", str(ws.config), "--state", str(ws.state), "up")
        assert up.exit_code == 0, up.output
        args = ("--config", str(ws.config), "--state", str(ws.state), "test-order")
        ok = ws.subprocess(*args)
        assert ok.exit_code == 0, ok.output

        iam = boto3.client("iam", region_name="us-east-1", endpoint_url=local.endpoint)
        table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders"
        statement = {"Effect": "Allow", "Action": "dynamodb:DescribeTable", "Resource": table}
        iam.create_policy_version(
            PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/Lambda-Write-DynamoDB",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
            SetAsDefault=True,
        )
        failed = ws.subprocess(*args, "--timeout", "5")
        assert failed.exit_code != 0, failed.output
        line = local.wait_for_line(r"\[POC-Lambda-1\].*AccessDeniedException", timeout=30)
        assert (
            f"assumed-role/Lambda-SQS-DynamoDB/POC-Lambda-1 is not authorized to perform: "
            f"dynamodb:PutItem on resource: {table}"
        ) in line
    finally:
        code = local.stop()
    assert code == 0, local.lines
