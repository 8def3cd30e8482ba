"""`pocctl logs` as a user runs it (a subprocess) against a real `pocctl local`: both functions'
output after a test order, interleaved by time; --json, --since, --filter; a function that has
not run; and --follow seeing a new invocation, stopped by Ctrl-C with exit 130."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import threading

import pytest
from support import subprocess_env
from support.localkit import wait_for
from support.localproc import LocalProcess
from support.workspace import Workspace, make_workspace

L1, L2 = "POC-Lambda-1", "POC-Lambda-2"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, local_process: LocalProcess) -> Workspace:
    """The stack up, one test order through both functions, and both log groups written."""
    w = make_workspace(tmp_path_factory.mktemp("logs"), local_process.endpoint)
    assert w.cli("up").exit_code == 0
    run = w.cli("test-order")
    assert run.exit_code == 0, run.output
    wait_for(lambda: {L1, L2} <= {e["function"] for e in _json_lines(w)} or None, what="logs")
    return w


def _json_lines(ws: Workspace, *args: str) -> list[dict[str, str]]:
    """`pocctl logs --json ARGS` through click's entry point in-process (the subprocess tests
    below cover the script itself)."""
    run = ws.cli("logs", "--json", *args)
    assert run.exit_code == 0, run.output
    return [json.loads(line) for line in run.stdout.splitlines()]


def test_both_functions_interleaved_by_time_each_line_marked(ws: Workspace) -> None:
    run = ws.subprocess("logs")
    assert run.exit_code == 0, run.output
    lines = run.stdout.splitlines()
    marked = [ln for ln in lines if f" {L1} " in ln or f" {L2} " in ln]
    assert any(f" {L1} " in ln and "START RequestId" in ln for ln in marked)
    assert any(f" {L2} " in ln and "REPORT RequestId" in ln for ln in marked)
    stamps = [ln.split(" ", 1)[0] for ln in marked]
    assert stamps == sorted(stamps)
    # Lambda 1 stored the order before Lambda 2 was invoked with its stream record.
    first_l2 = next(i for i, ln in enumerate(marked) if f" {L2} " in ln)
    assert any(f" {L1} " in ln for ln in marked[:first_l2])


def test_json_is_one_object_per_line_with_function_time_stream_message(ws: Workspace) -> None:
    events = _json_lines(ws)
    assert {e["function"] for e in events} == {L1, L2}
    for e in events:
        assert set(e) == {"function", "timestamp", "stream", "message"}
        assert dt.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).tzinfo
        assert e["stream"]
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)


def test_one_function_by_its_alias_or_its_name(ws: Workspace) -> None:
    assert {e["function"] for e in _json_lines(ws, "lambda2")} == {L2}
    assert {e["function"] for e in _json_lines(ws, L1)} == {L1}


def test_filter_maps_to_the_filter_pattern(ws: Workspace) -> None:
    reports = _json_lines(ws, "--filter", "REPORT")
    assert reports and all("REPORT" in e["message"] for e in reports)
    assert {e["function"] for e in reports} == {L1, L2}
    others = _json_lines(ws, "--filter", "-REPORT")
    assert others and not any("REPORT" in e["message"] for e in others)
    assert len(reports) + len(others) == len(_json_lines(ws))


def test_since_takes_durations_and_iso_times(ws: Workspace) -> None:
    assert _json_lines(ws, "--since", "1h") == _json_lines(ws, "--since", "10m")
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).isoformat()
    assert _json_lines(ws, "--since", future) == []
    run = ws.cli("logs", "--since", future)
    assert run.exit_code == 0 and "no log lines since" in run.stdout
    bad = ws.subprocess("logs", "--since", "yesterday")
    assert bad.exit_code == 2
    assert "give a duration (30s, 10m, 2h, 1d) or an ISO time" in bad.stderr


def test_a_function_that_has_not_run_is_one_clear_line(ws: Workspace) -> None:
    from support.localkit import deploy_function

    # Any deployed function, not only the config's two.
    deploy_function(ws.endpoint, "Never-Run", {"h.py": "def h(e, c):\n    return 1\n"}, "h.h")
    run = ws.subprocess("logs", "Never-Run")
    assert run.exit_code == 0, run.output
    assert run.stdout.strip() == "no logs yet for Never-Run: it has not run"

    typo = ws.subprocess("logs", "POC-Lambda-3")
    assert typo.exit_code == 1
    assert "there is no function POC-Lambda-3" in typo.stderr
    assert "Traceback" not in run.output + typo.output


def test_follow_sees_a_new_invocation_and_ctrl_c_exits_130(ws: Workspace) -> None:
    start = dt.datetime.now(dt.timezone.utc).isoformat()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pocctl", "--endpoint-url", ws.endpoint]
        + ["logs", "--follow", "--json", "--since", start],
        cwd=ws.dir,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: list[str] = []
    threading.Thread(target=lambda: out.extend(proc.stdout or []), daemon=True).start()
    try:
        run = ws.cli("test-order")
        assert run.exit_code == 0, run.output
        seen = wait_for(
            lambda: {json.loads(line)["function"] for line in list(out)} >= {L1, L2} or None,
            what="the new invocations in --follow's output",
            timeout=30.0,
        )
        assert seen
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
        assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
