"""`pocctl dev` in a real pseudo-terminal against one real `pocctl local` with the stack up: a
saved handler is redeployed (its function alone, one code update) and the next invocation runs
it; a file with a syntax error is said and not deployed; a config change converges the stack; a
broken config is said and watching goes on; Ctrl-C stops it with exit 130.

Every wait polls the output (pexpect) or AWS with a deadline; no sleeps."""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator

import pexpect
import pytest
from support.localkit import wait_for
from support.localproc import LocalProcess
from support.workspace import Workspace, make_workspace
from support.wtkit import plain

OLD_RETURN = 'return {"batchItemFailures": failures}'
NEW_RETURN = 'return {"batchItemFailures": failures, "edited": True}'


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, local_process: LocalProcess) -> Workspace:
    w = make_workspace(tmp_path_factory.mktemp("dev"), local_process.endpoint)
    up = w.cli("up")  # in-process: the stack is the fixture, not what is tested
    assert up.exit_code == 0, up.output
    return w


@pytest.fixture
def dev(ws: Workspace) -> Iterator[pexpect.spawn]:
    child = ws.terminal("dev", columns=100, rows=40, timeout=30, TERM="xterm-256color")
    try:
        child.expect("watching for changes")
        yield child
    finally:
        if child.isalive():
            child.terminate(force=True)


def _sha(ws: Workspace, name: str) -> str:
    return ws.client("lambda").get_function(FunctionName=name)["Configuration"]["CodeSha256"]  # type: ignore[no-any-return]


def _invoke_result(ws: Workspace) -> dict:  # type: ignore[type-arg]
    resp = ws.client("lambda").invoke(FunctionName="POC-Lambda-1", Payload=b'{"Records": []}')
    return json.loads(resp["Payload"].read())  # type: ignore[no-any-return]


def test_a_saved_handler_is_redeployed_and_runs_next(ws: Workspace, dev: pexpect.spawn) -> None:
    handler = ws.handlers / "store_order.py"
    source = handler.read_text()
    lambda2_sha = _sha(ws, "POC-Lambda-2")
    log = io.StringIO()
    dev.logfile_read = log
    assert _invoke_result(ws) == {"batchItemFailures": []}  # a warm worker on the old code

    # A syntax error: said, nothing deployed, still watching.
    old_sha = _sha(ws, "POC-Lambda-1")
    handler.write_text(source + "\ndef broken(:\n")
    dev.expect(r"syntax error store_order\.py:\d+")
    dev.expect("not deployed; still watching")
    assert _sha(ws, "POC-Lambda-1") == old_sha

    # An editor's save: write a temporary file, rename it over the handler, set its mode; all
    # one batch (one deploy).
    saved = time.monotonic()
    tmp = handler.with_name(".store_order.py.tmp")
    tmp.write_text(source.replace(OLD_RETURN, NEW_RETURN))
    os.replace(tmp, handler)
    handler.chmod(0o644)
    dev.expect(r"store_order\.py changed: deploying lambda1")
    dev.expect(r"deployed: (.*) in [\d.]+ s")
    assert dev.match.group(1) == "updated POC-Lambda-1"  # its trigger and Lambda 2 unchanged
    wait_for(lambda: _invoke_result(ws).get("edited") is True, timeout=10, interval=0.02)
    live = time.monotonic() - saved
    print(f"saved → the new code answered: {live:.2f} s")
    assert live < 5  # 1 s on an idle machine; generous for a loaded CI
    assert _sha(ws, "POC-Lambda-1") != old_sha
    assert _sha(ws, "POC-Lambda-2") == lambda2_sha
    out = plain(dev.before)
    assert "code_sha256:" in out

    handler.write_text(source)
    dev.expect(r"deployed: updated POC-Lambda-1")
    said = plain(log.getvalue())
    assert said.count("changed: deploying lambda1") == 2  # the save burst was one deploy


def test_a_config_change_converges_and_ctrl_c_exits_130(ws: Workspace, dev: pexpect.spawn) -> None:
    lam = ws.client("lambda")
    ws.write_config("lambda1:\n  memory_size: [\n")  # not YAML
    dev.expect(r"config\.yaml: .*; still watching")
    ws.write_config("lambda1:\n  memory_size: 256\n")
    dev.expect(r"config\.yaml changed: converging the stack")
    dev.expect(r"deployed: (.*) in [\d.]+ s", timeout=60)
    assert dev.match.group(1) == "updated POC-Lambda-1"
    assert lam.get_function_configuration(FunctionName="POC-Lambda-1")["MemorySize"] == 256

    dev.sendintr()
    dev.expect("stopped watching; what was deployed stays deployed")
    dev.expect(pexpect.EOF)
    dev.close()
    assert dev.exitstatus == 130
    ws.write_config()
