import subprocess
import sys

import boto3
import pytest
from support import subprocess_env
from support.loopback_guard import NonLoopbackRequest


def test_guard_refuses_a_request_to_real_aws() -> None:
    client = boto3.client("sts", region_name="us-east-1")
    with pytest.raises(NonLoopbackRequest):
        client.get_caller_identity()


def test_guard_lets_loopback_through(aws_endpoint: str) -> None:
    client = boto3.client("sts", region_name="us-east-1", endpoint_url=aws_endpoint)
    assert client.get_caller_identity()["Account"] == "123456789012"


def test_guard_is_installed_in_subprocesses() -> None:
    code = (
        "import boto3\n"
        "try:\n"
        "    boto3.client('sts', region_name='us-east-1').get_caller_identity()\n"
        "except AssertionError as e:\n"
        "    print('guarded:', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "guarded: test tried to reach sts.us-east-1.amazonaws.com" in out.stdout, out.stderr
