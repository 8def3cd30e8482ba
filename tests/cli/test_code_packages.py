"""A function's own code folder, under the console's names, with a requirements.txt: `pocctl up`
packages it for the function's architecture, the embedded Lambda runs what the zip holds (the
dependency imports from it), an unchanged folder is not uploaded again, and a package over
Lambda's quota is refused before it is uploaded. pip only sees local wheels (support/wheels.py).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.client import BaseClient
from support import wheels
from support.workspace import Workspace, make_workspace

from pocctl import config, packaging
from pocctl.local.runtime import LocalAWS

# The lab's console file name and function, calling pocctl's store_order from the same folder
# and a dependency that exists only in the zip (it is installed nowhere else).
CONSOLE = """\
import purepkg

from store_order import handler as store


def lambda_handler(event, context):
    print(purepkg.greet("order"))
    return store(event, context)
"""
SECTION = """\
lambda1:
  code: console
  handler: lambda_function.lambda_handler
  architecture: arm64
"""


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAWS]:
    # moto's state is process-wide: this LocalAWS lives only as long as the module.
    base = tmp_path_factory.mktemp("pip")
    with pytest.MonkeyPatch.context() as mp:
        wheels.offline_pip(mp, wheels.wheelhouse(base / "wheels"), base / "cache")
        with LocalAWS(port=0, refresh_interval=0.1) as aws:
            aws.reset()
            yield aws


@pytest.fixture(scope="module")
def deployed(local: LocalAWS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws = make_workspace(tmp_path_factory.mktemp("ws"), local.endpoint_url)
    console = ws.dir / "console"
    console.mkdir()
    (console / "lambda_function.py").write_text(CONSOLE)
    (console / "store_order.py").write_text((ws.handlers / "store_order.py").read_text())
    (console / "requirements.txt").write_text("purepkg==1.0\n")
    ws.write_config(SECTION)
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    yield ws
    assert ws.cli("down", "--yes").exit_code == 0


def _function(ws: Workspace) -> dict[str, Any]:
    return ws.client("lambda").get_function(FunctionName="POC-Lambda-1")["Configuration"]


def test_the_console_named_handler_is_deployed_for_arm64_with_its_dependency(
    deployed: Workspace,
) -> None:
    fn = _function(deployed)
    assert (fn["Handler"], fn["Architectures"]) == ("lambda_function.lambda_handler", ["arm64"])
    code = config.load(deployed.config).function_code("lambda1")
    assert fn["CodeSha256"] == packaging.code_sha256(packaging.build(code))


def test_the_embedded_lambda_imports_the_dependency_from_the_zip(deployed: Workspace) -> None:
    out = deployed.client("lambda").invoke(
        FunctionName="POC-Lambda-1", Payload=b'{"Records": []}', LogType="Tail"
    )
    assert "FunctionError" not in out, out
    assert json.loads(out["Payload"].read()) == {"batchItemFailures": []}
    assert "hello order from purepkg" in base64.b64decode(out["LogResult"]).decode()


def test_orders_go_through_the_console_named_handler(deployed: Workspace) -> None:
    r = deployed.cli("test-order", "--count", "1", "--timeout", "20")
    assert r.exit_code == 0, r.output
    assert "1 of 1 orders stored once and notified once" in r.stdout, r.output


def _calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every API operation pocctl's clients send from now on (in this process)."""
    sent: list[str] = []
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        sent.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    return sent


def test_an_unchanged_folder_is_not_uploaded_again(
    deployed: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = _calls(monkeypatch)
    r = deployed.cli("up")
    assert r.exit_code == 0, r.output
    assert "GetFunction" in sent  # it did look
    assert [op for op in sent if op.startswith(("Update", "Create"))] == []
    plan = deployed.cli("plan")
    assert re.search(r"\b0 to create, 0 to update, \d+ unchanged", plan.stdout), plan.output


def test_a_package_over_lambdas_quota_is_refused_before_it_is_uploaded(
    deployed: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _function(deployed)
    sent = _calls(monkeypatch)
    big = deployed.dir / "console" / "model.bin"
    with open(big, "wb") as f:  # sparse: 250 MB declared, nothing written
        f.truncate(packaging.MAX_UNZIPPED)
    try:
        r = deployed.cli("up")
    finally:
        big.unlink()
    assert r.exit_code == 1, r.output
    assert "over Lambda's 250.0 MB quota for a .zip function" in r.output, r.output
    assert "model.bin (250.0 MB)" in r.output
    assert "Traceback" not in r.output
    assert [op for op in sent if op.startswith(("Update", "Create"))] == []
    assert _function(deployed)["CodeSha256"] == before["CodeSha256"]


def test_an_architecture_changed_outside_pocctl_is_drift_that_up_reverts(
    deployed: Workspace,
) -> None:
    lam = deployed.client("lambda")
    fn = _function(deployed)
    code = packaging.build(config.load(deployed.config).function_code("lambda1"))
    lam.update_function_code(
        FunctionName=fn["FunctionName"], ZipFile=code, Architectures=["x86_64"]
    )
    plan = deployed.cli("plan")
    assert re.search(r"\b1 to update\b", plan.stdout), plan.output
    assert "architecture" in plan.stdout, plan.output
    r = deployed.cli("up")
    assert r.exit_code == 0, r.output
    assert _function(deployed)["Architectures"] == ["arm64"]
