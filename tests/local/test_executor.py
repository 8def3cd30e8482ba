"""The executor on its own: the Lambda contract, warm workers, timeouts, isolation."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from support.localkit import function_spec, wait_for

from pocctl.local.executor import Executor, FunctionSpec, InvocationResult

PROBE = """
import json, logging, os, sys
logger = logging.getLogger()
logger.setLevel(logging.INFO)
COUNT = {"n": 0}

def handler(event, context):
    COUNT["n"] += 1
    print("hello from", context.function_name)
    logger.info("info line")
    try:
        import pocctl  # noqa: F401
        pocctl_visible = True
    except ImportError:
        pocctl_visible = False
    return {
        "event": event,
        "pid": os.getpid(),
        "count": COUNT["n"],
        "sys_path0": sys.path[0],
        "cwd": os.getcwd(),
        "pocctl_visible": pocctl_visible,
        "helper": __import__("helper").VALUE,
        "env": {k: os.environ.get(k) for k in (
            "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "TABLE_NAME", "_HANDLER",
            "AWS_LAMBDA_LOG_GROUP_NAME")},
        "context": {
            "function_name": context.function_name,
            "invoked_function_arn": context.invoked_function_arn,
            "aws_request_id": context.aws_request_id,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "remaining": context.get_remaining_time_in_millis(),
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
        },
    }
"""

FAILING = """
def handler(event, context):
    raise ValueError("no luck: " + event.get("why", ""))
"""

SLOW = """
import time
def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return "done"
"""

EXITING = """
import sys
def handler(event, context):
    sys.exit(3)
"""


def spec(name: str, files: dict[str, str], handler: str, **kw: object) -> FunctionSpec:
    return function_spec(name, files, handler, **kw)


@pytest.fixture
def lines() -> list[str]:
    return []


@pytest.fixture
def executor(lines: list[str]) -> Iterator[Executor]:
    before = set(threading.enumerate())
    ex = Executor("http://127.0.0.1:9", log=lines.append)
    yield ex
    ex.stop()
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leftover, f"threads left running after stop(): {leftover}"


def test_lambda_contract(executor: Executor, lines: list[str]) -> None:
    fn = spec(
        "probe",
        {"app.py": PROBE, "helper.py": "VALUE = 'from the zip'\n"},
        "app.handler",
        env={"TABLE_NAME": "orders"},
    )
    result = executor.invoke(fn, {"k": [1, 2]}, request_id="req-1")
    assert result.ok, result.payload
    out = result.result()
    assert out["event"] == {"k": [1, 2]}
    assert out["helper"] == "from the zip"
    assert out["sys_path0"] == out["cwd"]  # the extracted zip comes first
    assert out["pocctl_visible"] is False  # isolated from pocctl's own modules
    assert out["env"] == {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "probe",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "TABLE_NAME": "orders",
        "_HANDLER": "app.handler",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/probe",
    }
    ctx = out["context"]
    assert ctx["function_name"] == "probe"
    assert ctx["invoked_function_arn"] == fn.arn
    assert ctx["aws_request_id"] == "req-1"
    assert ctx["memory_limit_in_mb"] == "256"  # a string, as AWS's runtime gives it
    assert 0 < ctx["remaining"] <= 5000
    assert ctx["log_group_name"] == "/aws/lambda/probe"
    assert "[$LATEST]" in ctx["log_stream_name"]
    assert "[probe] hello from probe" in lines
    assert any(line.startswith("[probe] [INFO]\t") and "req-1\tinfo line" in line for line in lines)
    assert "hello from probe" in result.log_lines


def test_worker_stays_warm_and_restarts_on_new_code(executor: Executor) -> None:
    files = {"app.py": PROBE, "helper.py": "VALUE = 1\n"}
    fn = spec("warm", files, "app.handler")
    first = executor.invoke(fn, {}).result()
    second = executor.invoke(fn, {}).result()
    assert second["pid"] == first["pid"] and second["count"] == 2  # warm: same process

    new = spec("warm", {**files, "helper.py": "VALUE = 2\n"}, "app.handler")
    assert new.code_sha256 != fn.code_sha256
    third = executor.invoke(new, {}).result()
    assert third["pid"] != first["pid"] and third["count"] == 1 and third["helper"] == 2

    # A configuration change (environment) also means a fresh environment.
    fourth = executor.invoke(replace(new, env={"TABLE_NAME": "x"}), {}).result()
    assert fourth["pid"] != third["pid"] and fourth["env"]["TABLE_NAME"] == "x"


def test_unhandled_error_payload(executor: Executor, lines: list[str]) -> None:
    result = executor.invoke(spec("bad", {"f.py": FAILING}, "f.handler"), {"why": "test"})
    assert not result.ok
    err = json.loads(result.payload)
    assert err["errorType"] == "ValueError"
    assert err["errorMessage"] == "no luck: test"
    assert any('f.py", line 3, in handler' in frame for frame in err["stackTrace"])
    assert "[bad] [ERROR] ValueError: no luck: test" in lines


def test_timeout_kills_the_worker(executor: Executor, lines: list[str]) -> None:
    fn = spec("slow", {"s.py": SLOW}, "s.handler", timeout=1)
    result = executor.invoke(fn, {"sleep": 30})
    assert result.error is not None and result.error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in result.error["errorMessage"]
    assert result.duration_ms < 5000
    assert any("Task timed out" in line for line in lines)
    # The next invocation gets a fresh worker and works.
    assert executor.invoke(fn, {}).result() == "done"


def test_runtime_errors(executor: Executor) -> None:
    exited = executor.invoke(spec("exit", {"e.py": EXITING}, "e.handler"), {})
    assert exited.error is not None and exited.error["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in exited.error["errorMessage"]

    missing = executor.invoke(spec("nomod", {"e.py": EXITING}, "nothere.handler"), {})
    assert missing.error is not None
    assert missing.error["errorType"] == "Runtime.ImportModuleError"

    nofunc = executor.invoke(spec("nofunc", {"e.py": EXITING}, "e.other"), {})
    assert nofunc.error is not None and nofunc.error["errorType"] == "Runtime.HandlerNotFound"

    unmarshal = executor.invoke(
        spec("marshal", {"m.py": "def h(e, c):\n    return object()\n"}, "m.h"), {}
    )
    assert unmarshal.error is not None and unmarshal.error["errorType"] == "Runtime.MarshalError"


def test_concurrent_invocations_use_a_bounded_pool(executor: Executor) -> None:
    fn = spec("pool", {"app.py": PROBE, "helper.py": "VALUE = 0\n"}, "app.handler")
    results: list[dict[str, object]] = []
    lock = threading.Lock()

    def call() -> None:
        r = executor.invoke(fn, {}).result()
        with lock:
            results.append(r)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 6
    assert 1 <= len({r["pid"] for r in results}) <= 2  # workers_per_function=2


def test_stop_ends_a_running_invocation_promptly(lines: list[str]) -> None:
    ex = Executor("http://127.0.0.1:9", log=lines.append)
    fn = spec("slow2", {"s.py": SLOW}, "s.handler", timeout=60)
    assert ex.invoke(fn, {}).ok  # warm up
    box: list[object] = []
    t = threading.Thread(target=lambda: box.append(ex.invoke(fn, {"sleep": 60})))
    t.start()
    # Wait (bounded) until the invocation is in flight, then stop.
    from support.localkit import wait_for

    wait_for(lambda: ex._busy, timeout=10, what="the invocation to start")
    ex.stop()
    t.join(timeout=10)
    assert not t.is_alive()
    result = box[0]
    assert getattr(result, "error", None) is not None


GATED = """
import os, time

def handler(event, context):
    # Holds the invocation until the test creates the gate file (bounded by a deadline).
    deadline = time.monotonic() + 20
    while event.get("gate") and not os.path.exists(event["gate"]):
        if time.monotonic() > deadline:
            raise TimeoutError("gate never opened")
        time.sleep(0.01)
    return os.getpid()
"""


def test_a_worker_busy_while_workers_are_forgotten_never_runs_again(
    executor: Executor, tmp_path: Path
) -> None:
    # After a reset the role credentials a worker holds are gone: one that was busy at the time
    # must finish its invocation and then be replaced, not go back to the pool.
    fn = spec("gated", {"app.py": GATED}, "app.handler", timeout=30)
    gate = tmp_path / "gate"
    busy: list[InvocationResult] = []
    t = threading.Thread(target=lambda: busy.append(executor.invoke(fn, {"gate": str(gate)})))
    t.start()
    wait_for(lambda: executor._busy, what="the invocation to hold a worker")
    executor.kill_workers()
    gate.touch()
    t.join(timeout=30)
    assert busy and busy[0].ok, busy
    after = executor.invoke(fn, {})
    assert after.ok, after.payload
    assert after.result() != busy[0].result()  # another process: the busy one was retired
