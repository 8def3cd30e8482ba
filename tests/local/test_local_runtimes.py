"""`pocctl local` says which Python serves each Lambda runtime, and a function run on the
host's Python instead of its runtime's says so in its own log stream (a real subprocess)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest
from support import subprocess_env
from support.localkit import LAMBDA_TRUST, signed, wait_for, zipped
from support.localproc import LocalProcess

from pocctl.local import interpreters

HOST_MINOR = ".".join(map(str, sys.version_info[:2]))
OTHER = "python3.13" if HOST_MINOR != "3.13" else "python3.12"


@pytest.fixture
def local() -> Iterator[LocalProcess]:
    env = subprocess_env(
        MOTO_IAM_LOAD_MANAGED_POLICIES="false", **{interpreters.env_var(OTHER): "host"}
    )
    p = LocalProcess("--port", "0", env=env)
    yield p
    p.kill()


def test_banner_names_each_runtimes_python_and_the_sdk(local: LocalProcess) -> None:
    sdk = interpreters.sdk_versions()
    local.wait_for_line(rf"runtime's SDK \(boto3 {sdk['boto3']}, botocore {sdk['botocore']}\)")
    for runtime in interpreters.RUNTIMES:
        local.wait_for_line(rf"^\s+{runtime} runs on ")
    forced = local.wait_for_line(rf"{OTHER} runs on ")
    assert "the host's Python" in forced and interpreters.env_var(OTHER) in forced
    own = local.wait_for_line(rf"python{HOST_MINOR} runs on ")
    assert f"Python {HOST_MINOR}." in own and "host's" not in own


def test_a_function_on_the_hosts_python_says_so_in_its_log_stream(local: LocalProcess) -> None:
    iam, lam = signed(local.endpoint, "iam"), signed(local.endpoint, "lambda")
    logs = signed(local.endpoint, "logs")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    code = "import sys\n\ndef handler(event, context):\n    return list(sys.version_info[:2])\n"
    lam.create_function(
        FunctionName="on-the-host",
        Runtime=OTHER,
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": zipped({"app.py": code})},
    )
    for _ in range(2):
        out = lam.invoke(FunctionName="on-the-host", Payload=b"{}")
        assert json.loads(out["Payload"].read()) == list(sys.version_info[:2])

    def events() -> list[str]:
        try:
            found = logs.filter_log_events(logGroupName="/aws/lambda/on-the-host")["events"]
        except logs.exceptions.ResourceNotFoundException:
            return []
        return [e["message"] for e in found]

    wait_for(lambda: sum(m.startswith("REPORT") for m in events()) == 2, what="two REPORTs")
    notes = [m for m in events() if "runs on the host's Python" in m]
    assert len(notes) == 1, events()
    assert f"{interpreters.env_var(OTHER)}=host" in notes[0]
    # ...and in `pocctl local`'s own output, with the function's name.
    local.wait_for_line(r"\[on-the-host\] pocctl: .*runs on the host's Python")
