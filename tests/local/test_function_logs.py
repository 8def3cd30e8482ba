"""Function logs as Lambda writes them, read back from CloudWatch Logs over HTTP.

Every line a handler prints arrives (empty lines, a 300 KB line, 5,000 lines, bursts), in order;
REPORT has AWS's fields; an unhandled exception is one event; Invoke's Tail is the end of
START…REPORT; and the Init phase has its own 10 s limit.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from support.localkit import LAMBDA_TRUST, deploy_function, zipped

from pocctl.local.cwlogs import MAX_EVENT_BYTES
from pocctl.local.runtime import LocalAWS
from pocctl.local.server import local_client

NOISY = """
def handler(event, context):
    print("first")
    print()
    print("")
    print("x" * event["big"])
    for i in range(event["many"]):
        print(f"line {i}")
    print("a\\nb")
    print("last", end="")
    return context.aws_request_id
"""

BOOM = """
import os
def handler(event, context):
    return os.environ["TABLE"]
"""

LOGGING = """
import logging
logger = logging.getLogger()
def handler(event, context):
    logger.warning("two\\nlines")
    return context.aws_request_id
"""

# What aws_lambda_powertools' Logger does (one JSON document per record, printed to stdout,
# the exception's traceback inside the JSON), in a few lines: the runtime world of the function
# holds only its zip and boto3.
JSON_LOGGER = """
import json, logging, sys, traceback

class JsonFormatter(logging.Formatter):
    def format(self, record):
        doc = {"level": record.levelname, "message": record.getMessage(),
               "service": "orders", "n": getattr(record, "n", None)}
        if record.exc_info:
            doc["exception"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(doc)

logger = logging.getLogger("orders")
logger.propagate = False
_h = logging.StreamHandler(sys.stdout)
_h.setFormatter(JsonFormatter())
logger.addHandler(_h)
logger.setLevel(logging.DEBUG)

def handler(event, context):
    for n in range(14):
        logger.info("step", extra={"n": n})
    logger.debug("")
    try:
        {}["missing"]
    except KeyError:
        logger.exception("retrying")
    return context.aws_request_id
"""

SLOW_IMPORT = """
import time
time.sleep({seconds})
print("imported")
def handler(event, context):
    print("handled")
    return context.aws_request_id
"""

BROKEN_IMPORT = """
import no_such_package_anywhere
def handler(event, context):
    return 1
"""

REPORT = re.compile(
    r"^REPORT RequestId: (?P<rid>[0-9a-f-]{36})\tDuration: \d+\.\d\d ms\t"
    r"Billed Duration: (?P<billed>\d+) ms\tMemory Size: 128 MB\tMax Memory Used: (?P<mem>\d+) MB\t"
    r"(?:Init Duration: (?P<init>\d+\.\d\d) ms\t)?\n$"
)


def _function(aws: LocalAWS, name: str, src: str, timeout: int = 5) -> Any:
    files = {"app.py": src}
    return deploy_function(
        aws.endpoint_url, name, files, "app.handler", Timeout=timeout, MemorySize=128
    )[0]


def _invoke(lam: Any, name: str, event: Any = None, **kwargs: Any) -> dict[str, Any]:
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}), **kwargs)
    resp["body"] = json.loads(resp["Payload"].read())
    return resp


def _only_rid(messages: list[str]) -> str:
    (start,) = [m for m in messages if m.startswith("START RequestId: ")]
    return start.split()[2]


def _events(aws: LocalAWS, name: str) -> list[str]:
    """Every message of the function's log group, stream by stream, read page by page."""
    aws.flush_logs()
    logs = local_client(aws.endpoint_url, "logs")
    group = f"/aws/lambda/{name}"
    messages: list[str] = []
    for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
        kwargs: dict[str, Any] = {
            "logGroupName": group,
            "logStreamName": stream["logStreamName"],
            "startFromHead": True,
        }
        while True:
            page = logs.get_log_events(**kwargs)
            messages += [e["message"] for e in page["events"]]
            if not page["events"] or page["nextForwardToken"] == kwargs.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextForwardToken"]
    return messages


def _between(messages: list[str], rid: str) -> list[str]:
    """The events of one invocation strictly between its START and END."""
    start = messages.index(f"START RequestId: {rid} Version: $LATEST\n")
    end = messages.index(f"END RequestId: {rid}\n")
    return messages[start + 1 : end]


@pytest.fixture
def shipper_errors(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.WARNING, logger="pocctl.local")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "pocctl.local"]


def test_empty_huge_and_many_lines_all_arrive_in_order(local_aws: LocalAWS, shipper_errors) -> None:  # type: ignore[no-untyped-def]
    lam = _function(local_aws, "noisy", NOISY)
    big = 300 * 1024
    resp = _invoke(lam, "noisy", {"big": big, "many": 5000})
    assert "FunctionError" not in resp
    rid = resp["body"]

    messages = _events(local_aws, "noisy")
    got = _between(messages, rid)
    # One event per printed line, newline included (so a bare print() is "\n", never empty);
    # the 300 KB line as consecutive events under CloudWatch's 256 KB event limit.
    huge = got[3:5]
    assert all(len(m.encode()) <= MAX_EVENT_BYTES for m in huge)
    assert "".join(huge) == "x" * big + "\n"
    assert got[:3] == ["first\n", "\n", "\n"]
    assert got[5:] == [f"line {i}\n" for i in range(5000)] + ["a\n", "b\n", "last"]
    assert REPORT.match(messages[messages.index(f"END RequestId: {rid}\n") + 1])
    assert not [m for m in shipper_errors() if "could not write" in m]


def test_a_burst_of_invocations_loses_nothing(local_aws: LocalAWS, shipper_errors) -> None:  # type: ignore[no-untyped-def]
    lam = _function(local_aws, "burst", NOISY)
    results: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def one(k: int) -> None:
        r = _invoke(lam, "burst", {"big": k, "many": 200})
        with lock:
            results.append((k, r))

    threads = [threading.Thread(target=one, args=(k,)) for k in range(1, 25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 24 and not [r for _, r in results if "FunctionError" in r]

    messages = _events(local_aws, "burst")
    for k, r in results:
        got = _between(messages, r["body"])
        assert got[:4] == ["first\n", "\n", "\n", "x" * k + "\n"]
        assert got[4:] == [f"line {i}\n" for i in range(200)] + ["a\n", "b\n", "last"]
    assert len([m for m in messages if m.startswith("REPORT ")]) == 24
    assert not [m for m in shipper_errors() if "could not write" in m]


def test_report_has_awss_fields_and_init_duration_only_on_a_cold_start(local_aws: LocalAWS) -> None:
    lam = _function(local_aws, "reporter", NOISY)
    first = _invoke(lam, "reporter", {"big": 1, "many": 1})
    second = _invoke(lam, "reporter", {"big": 1, "many": 1})
    reports = {
        m.group("rid"): m
        for m in map(REPORT.match, _events(local_aws, "reporter"))
        if m is not None
    }
    cold = reports[first["body"]]
    warm = reports[second["body"]]
    assert cold.group("init") is not None and float(cold.group("init")) > 0
    assert warm.group("init") is None
    # A python worker's peak RSS: more than nothing, far less than the host's pytest process.
    assert 1 <= int(cold.group("mem")) < 100 and 1 <= int(warm.group("mem")) < 100


def test_an_unhandled_exception_is_one_event_in_the_runtimes_format(local_aws: LocalAWS) -> None:
    lam = _function(local_aws, "boom", BOOM)
    resp = _invoke(lam, "boom")
    assert resp["FunctionError"] == "Unhandled"
    assert resp["body"]["errorType"] == "KeyError"
    rid = resp["body"]["requestId"]
    (event,) = _between(_events(local_aws, "boom"), rid)
    lines = event.split("\n")
    assert lines[0] == "[ERROR] KeyError: 'TABLE'"
    assert lines[1] == "Traceback (most recent call last):"
    # awslambdaric indents the stack with NO-BREAK SPACEs, in the same event.
    assert lines[2].startswith('\u00a0\u00a0File "') and lines[2].endswith(", in handler")
    assert lines[3] == '\u00a0\u00a0\u00a0\u00a0return os.environ["TABLE"]'
    assert lines[-1].startswith("\u00a0\u00a0File ") and lines[-1].endswith("in __getitem__")


def test_a_logging_record_is_one_event_a_multiline_print_one_per_line(local_aws: LocalAWS) -> None:
    lam = _function(local_aws, "logs-lines", LOGGING)
    rid = _invoke(lam, "logs-lines")["body"]
    (record,) = _between(_events(local_aws, "logs-lines"), rid)
    assert re.fullmatch(
        rf"\[WARNING\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{rid}\ttwo\nlines\n", record
    )


def test_a_json_logger_keeps_all_sixteen_lines(local_aws: LocalAWS) -> None:
    lam = _function(local_aws, "json-logger", JSON_LOGGER)
    rid = _invoke(lam, "json-logger")["body"]
    docs = [json.loads(m) for m in _between(_events(local_aws, "json-logger"), rid)]
    assert len(docs) == 16
    assert [d["n"] for d in docs[:14]] == list(range(14))
    assert docs[14]["message"] == "" and docs[15]["message"] == "retrying"
    assert "KeyError: 'missing'" in docs[15]["exception"]


def test_tail_is_the_last_4kb_of_start_to_report(local_aws: LocalAWS) -> None:
    lam = _function(local_aws, "tail", NOISY)
    small = _invoke(lam, "tail", {"big": 3, "many": 2}, LogType="Tail")
    log = base64.b64decode(small["LogResult"]).decode()
    rid = small["body"]
    assert log.startswith(f"START RequestId: {rid} Version: $LATEST\nfirst\n\n\nxxx\nline 0\n")
    lines = log.split("\n")
    assert lines[-3] == f"END RequestId: {rid}" and REPORT.match(lines[-2] + "\n")

    big = _invoke(lam, "tail", {"big": 10, "many": 3000}, LogType="Tail")
    log = base64.b64decode(big["LogResult"]).decode()
    assert 4000 < len(log.encode()) <= 4096
    assert "line 2999\na\nb\nlast\nEND RequestId: " in log and log.endswith("\t\n")

    assert "LogResult" not in _invoke(lam, "tail", {"big": 1, "many": 1})


def test_a_slow_import_gets_the_init_phase_not_the_function_timeout(local_aws: LocalAWS) -> None:
    lam = _function(local_aws, "slow-init", SLOW_IMPORT.format(seconds=2), timeout=1)
    resp = _invoke(lam, "slow-init")
    assert "FunctionError" not in resp
    rid = resp["body"]
    messages = _events(local_aws, "slow-init")
    # Init output comes before START (it belongs to the Init phase), the handler's after.
    assert messages.index("imported\n") < messages.index(
        f"START RequestId: {rid} Version: $LATEST\n"
    )
    assert _between(messages, rid) == ["handled\n"]
    report = next(m for m in map(REPORT.match, messages) if m is not None)
    assert float(report.group("init")) >= 2000


def test_an_init_over_ten_seconds_is_retried_within_the_invoke_and_times_out(
    local_aws: LocalAWS,
) -> None:
    lam = _function(local_aws, "stuck-init", SLOW_IMPORT.format(seconds=30), timeout=2)
    resp = _invoke(lam, "stuck-init")
    assert resp["FunctionError"] == "Unhandled"
    assert resp["body"]["errorType"] == "Sandbox.Timedout"
    messages = _events(local_aws, "stuck-init")
    rid = _only_rid(messages)
    init_report = [m for m in messages if m.startswith("INIT_REPORT ")]
    assert re.fullmatch(
        r"INIT_REPORT Init Duration: 1\d{4}\.\d\d ms\tPhase: init\tStatus: timeout\n",
        init_report[0],
    )
    assert re.fullmatch(
        r"INIT_REPORT Init Duration: 2\d{3}\.\d\d ms\tPhase: invoke\tStatus: timeout\n",
        init_report[1],
    )
    assert messages.index(init_report[0]) < messages.index(
        f"START RequestId: {rid} Version: $LATEST\n"
    )
    assert any(
        m.endswith(f" {rid} Task timed out after 2.00 seconds\n") for m in _between(messages, rid)
    )


def test_a_failed_init_is_retried_within_the_invoke_and_fails_as_aws(local_aws: LocalAWS) -> None:
    lam = _function(local_aws, "broken-init", BROKEN_IMPORT)
    resp = _invoke(lam, "broken-init")
    assert resp["FunctionError"] == "Unhandled"
    body = resp["body"]
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert body["errorMessage"].startswith("Unable to import module 'app': ")
    assert body["requestId"] == "" and body["stackTrace"] == []
    messages = _events(local_aws, "broken-init")
    rid = _only_rid(messages)
    error_event = "[ERROR] Runtime.ImportModuleError: " + body["errorMessage"]
    error_event += "\nTraceback (most recent call last):"
    reports = [m for m in messages if m.startswith("INIT_REPORT ")]
    assert [r.split("\t", 1)[1] for r in reports] == [
        "Phase: init\tStatus: error\tError Type: Runtime.ImportModuleError\n",
        "Phase: invoke\tStatus: error\tError Type: Runtime.ImportModuleError\n",
    ]
    # Each attempt logs the runtime's warning and the error (awslambdaric), the second one
    # inside the invocation.
    assert messages.count(error_event) == 2
    inside = _between(messages, rid)
    assert (
        inside[0].startswith("[WARNING]\t")
        and "\t\tLAMBDA_WARNING: Unhandled exception." in inside[0]
    )
    assert inside[1:] == [error_event, reports[1]]


POWERTOOLS = """
from aws_lambda_powertools import Logger

logger = Logger(service="orders", level="DEBUG")

@logger.inject_lambda_context
def handler(event, context):
    for n in range(14):
        logger.info("step", n=n)
    logger.debug("")
    try:
        {}["missing"]
    except KeyError:
        logger.exception("retrying")
    return context.aws_request_id
"""


def _package_files(module: Any) -> dict[str, bytes]:
    """A module or package's source files, as they would sit at the root of a function's zip."""
    path = Path(module.__file__)
    if path.name != "__init__.py":
        return {path.name: path.read_bytes()}
    root = path.parent
    return {
        str(f.relative_to(root.parent)): f.read_bytes()
        for f in root.rglob("*.py")
        if "__pycache__" not in f.parts
    }


def test_powertools_logger_lines_all_arrive(local_aws: LocalAWS) -> None:
    # The case: 6 of 16 Powertools logger lines were missing. The function carries
    # Powertools in its zip, as it must on AWS (the runtime has only boto3 besides the stdlib).
    powertools = pytest.importorskip("aws_lambda_powertools")
    import typing_extensions

    files: dict[str, Any] = {"app.py": POWERTOOLS}
    files |= _package_files(powertools) | _package_files(typing_extensions)
    lam = local_client(local_aws.endpoint_url, "lambda")
    iam = local_client(local_aws.endpoint_url, "iam")
    role = iam.create_role(RoleName="pt-role", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    lam.create_function(
        FunctionName="powertools",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": zipped(files)},
        Timeout=10,
    )
    resp = _invoke(lam, "powertools")
    assert "FunctionError" not in resp, resp["body"]
    docs = [json.loads(m) for m in _between(_events(local_aws, "powertools"), resp["body"])]
    assert len(docs) == 16
    assert [d.get("n") for d in docs[:14]] == list(range(14))
    assert [d["level"] for d in docs[14:]] == ["DEBUG", "ERROR"]
    assert all(d["service"] == "orders" and d["function_request_id"] == resp["body"] for d in docs)
    assert "KeyError" in docs[15]["exception"]


EXITS_AT_IMPORT = """
import sys
print("leaving")
sys.exit(3)
def handler(event, context):
    return 1
"""


def test_an_init_that_exits_fails_the_invoke_with_exit_error(local_aws: LocalAWS) -> None:
    lam = _function(local_aws, "exits-init", EXITS_AT_IMPORT)
    for _ in range(2):  # a failed environment is never reused: each invocation retries init
        resp = _invoke(lam, "exits-init")
        assert resp["FunctionError"] == "Unhandled"
        assert resp["body"]["errorType"] == "Runtime.ExitError"
        assert resp["body"]["errorMessage"].endswith("Runtime exited with error: exit status 3")
    messages = _events(local_aws, "exits-init")
    assert messages.count("leaving\n") == 4  # the Init phase and its retry, twice
    assert len([m for m in messages if "Phase: init\tStatus: error" in m]) == 2
