"""`pocctl watch` with the real CLI against a real `pocctl local`: `--once --json` shows what
was sent, hop by hop; a broken Lambda 1's error appears with its message and log stream; the
live view in a real pseudo-terminal (80×24, 60 columns), stopped by Ctrl-C with exit 130."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pexpect
import pytest
from rich.text import Text
from support.localkit import post, wait_for
from support.localproc import LocalProcess
from support.workspace import Workspace, make_workspace

from pocctl.cli.watch import render

ORDERS = 4


def _snapshot(ws: Workspace) -> dict[str, Any]:
    run = ws.cli("watch", "--once", "--json")
    assert run.exit_code == 0, run.output
    return json.loads(run.stdout)  # type: ignore[no-any-return]


class Sent:
    def __init__(self, ws: Workspace, snapshot: dict[str, Any], text: str) -> None:
        self.ws, self.snapshot, self.text = ws, snapshot, text


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory, local_process: LocalProcess) -> Sent:
    """ORDERS orders and one invalid request through the stack, then what `watch` shows once
    every order is notified and the queue is empty (read by `python -m pocctl`)."""
    ws = make_workspace(tmp_path_factory.mktemp("watch"), local_process.endpoint)
    assert ws.cli("up").exit_code == 0
    url = json.loads(ws.cli("status", "--json").stdout)["invoke_url"]
    for i in range(ORDERS):
        assert post(url, json.dumps({"item": "pen", "n": i}))[0] == 200
    assert post(url, "[]")[0] == 400  # the API's validator: an order is a non-empty object

    def settled() -> dict[str, Any] | None:
        s = _snapshot(ws)
        busy = s["queue"]["visible"] + s["queue"]["in_flight"]
        done = s["topic"]["published"] == ORDERS and s["api"]["requests"] == ORDERS + 1
        return s if done and not busy else None

    wait_for(settled, timeout=30, interval=0.2, what="every order notified, the queue empty")
    run = ws.subprocess("watch", "--once", "--json")
    assert run.exit_code == 0, run.output
    text = ws.cli("watch", "--once")  # click's runner: not a terminal, as a pipe
    assert text.exit_code == 0, text.output
    return Sent(ws, json.loads(run.stdout), text.stdout)


def test_once_json_figures_equal_what_was_sent(sent: Sent) -> None:
    s = sent.snapshot
    assert s["region"] == "us-east-1" and s["window_minutes"] == 60
    assert s["api"] == {
        "name": "POC-API",
        "stage": "prod",
        "requests": ORDERS + 1,
        "4xx": 1,
        "5xx": 0,
        "latency_ms_avg": s["api"]["latency_ms_avg"],
    }
    assert s["api"]["latency_ms_avg"] > 0
    assert (s["queue"]["visible"], s["queue"]["in_flight"], s["queue"]["dlq"]["visible"]) == (
        0,
        0,
        0,
    )
    l1, l2 = s["lambda1"], s["lambda2"]
    assert 1 <= l1["invocations"] <= ORDERS and l1["errors"] == 0 and l1["throttles"] == 0
    assert l1["duration_ms_avg"] > 0 and l1["duration_ms_max"] >= l1["duration_ms_avg"]
    assert 1 <= l2["invocations"] <= ORDERS and l2["errors"] == 0
    assert l2["failure_queue"]["visible"] == 0
    assert s["table"] == {"name": "orders", "exists": True, "rows": ORDERS, "rows_at_least": False}
    assert s["stream"]["iterator_age_ms_max"] is not None
    # No subscription in the default config: published, delivered to nobody.
    assert s["topic"] == {"name": "POC-Topic", "published": ORDERS, "delivered": 0, "failed": 0}
    assert l1["last_error"] is None and l2["last_error"] is None


def test_once_text_shows_each_hop_whole_when_piped(sent: Sent) -> None:
    out = sent.text
    hops = ["API POC-API/prod", "↓ queue POC-Queue", "↓ Lambda 1 POC-Lambda-1", "↓ table orders"]
    hops += ["↓ stream", "↓ Lambda 2 POC-Lambda-2", "↓ topic POC-Topic"]
    assert [h for h in hops if h not in out] == []
    figures = [f"requests {ORDERS + 1}", "4xx 1", f"rows {ORDERS}", f"published {ORDERS}"]
    figures += ["DLQ POC-Queue-DLQ 0", "failures POC-Lambda-2-Failures 0"]
    assert [f for f in figures if f not in out] == []
    assert all(line == line.rstrip() for line in out.splitlines())
    assert "\x1b[" not in out  # NO_COLOR (and a pipe): no escape codes


def test_a_broken_lambda_1_shows_its_last_error(sent: Sent) -> None:
    ws = sent.ws
    handler = ws.handlers / "store_order.py"
    good = 'table = os.environ["TABLE_NAME"]'
    assert good in handler.read_text()
    # The broken Lambda 1: a variable the function does not have.
    handler.write_text(handler.read_text().replace(good, 'table = os.environ["TABLE"]', 1))
    assert ws.cli("up").exit_code == 0
    url = json.loads(ws.cli("status", "--json").stdout)["invoke_url"]
    assert post(url, json.dumps({"item": "broken"}))[0] == 200
    s = wait_for(
        # The metrics are flushed each second, the log shipped apart: both, whichever is last.
        lambda: (
            (snap := _snapshot(ws))["lambda1"]["last_error"]
            and snap["lambda1"]["errors"] >= 1
            and snap
        ),
        timeout=30,
        interval=0.2,
        what="Lambda 1's error",
    )
    error = s["lambda1"]["last_error"]
    assert error["message"] == "KeyError: 'TABLE'"
    assert error["log_stream"] and error["time"]
    assert s["lambda1"]["errors"] >= 1
    text = ws.subprocess("watch", "--once")
    assert "last error" in text.stdout and "KeyError: 'TABLE'" in text.stdout


def _spawn(ws: Workspace, columns: int) -> pexpect.spawn:
    return ws.terminal("watch", "--interval", "0.5", columns=columns, timeout=30)


_B = r"(?:\x1b\[[0-9;]*m)?"  # a bold on/off escape (NO_COLOR keeps bold)
_HEADER = rf"pocctl watch{_B} · us-east-1 · last 60 min · (\d\d:\d\d:\d\d) UTC"


@pytest.mark.parametrize("columns", [120, 80, 60])
def test_live_view_in_a_terminal_refreshes_and_ctrl_c_exits_130(sent: Sent, columns: int) -> None:
    child = _spawn(sent.ws, columns)
    child.expect(_HEADER)
    first = child.match.group(1)
    if columns >= 112:  # the README's diagram: boxes, the stream under the table
        child.expect(rf"│ published {ORDERS} +│")
        assert "┌ " in child.before and "◀─" in child.before
    elif columns >= 80:  # a hop's figures on the hop's line
        child.expect(rf"topic{_B} POC-Topic +published {ORDERS}")
    else:  # stacked: the figures under the hop's name
        child.expect(rf"topic{_B} POC-Topic\r\n +published {ORDERS}")
    # The view refreshes in place (another frame with a later time).
    child.expect(_HEADER, timeout=15)
    while child.match.group(1) == first:
        child.expect(_HEADER, timeout=15)
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130, child.before
    assert "Traceback" not in (child.before or "")


# -- the layout (pure) ------------------------------------------------------------------------


def _fixture_snapshot() -> dict[str, Any]:
    fn = {
        "name": "POC-Lambda-1", "invocations": 12, "errors": 3, "throttles": 0,
        "duration_ms_avg": 25.0, "duration_ms_max": 40.0,
        "last_error": {"time": "2026-12-03T19:10:56+00:00", "message": "KeyError: 'TABLE' " * 9,
                       "log_stream": "s", "timestamp": 0},
    }  # fmt: skip
    queue = {"name": "POC-Queue", "exists": True, "visible": 7, "in_flight": 2, "delayed": 0}
    return {
        "time": "2026-12-03T19:10:56+00:00", "window_minutes": 60,
        "api": {"name": "POC-API", "stage": "prod", "requests": 100, "4xx": 2, "5xx": 1,
                "latency_ms_avg": 12.0},
        "queue": {**queue, "dlq": {**queue, "name": "POC-Queue-DLQ"}},
        "lambda1": fn, "table": {"name": "orders", "exists": True, "rows": 98,
                                 "rows_at_least": True},
        "stream": {"iterator_age_ms_max": 120.0},
        "lambda2": {**fn, "name": "POC-Lambda-2", "failure_queue": {**queue, "name": "F"}},
        "topic": {"name": "POC-Topic", "published": 95, "delivered": 95, "failed": 0},
    }  # fmt: skip


@pytest.mark.parametrize("width", [40, 60, 79, 80, 111, 112, 120, 200])
def test_every_line_fits_the_width_and_the_frame_fits_24_rows(width: int) -> None:
    lines = render(_fixture_snapshot(), width, region="us-east-1")
    plain = [Text.from_markup(line).plain for line in lines]
    assert all(len(line) <= width for line in plain), [p for p in plain if len(p) > width]
    if width >= 60:
        assert len(plain) <= 24
    assert "rows ≥ 98" in "\n".join(plain)
    errors = [line for line in plain if "last error 19:10:56: KeyError" in line]
    assert len(errors) == 2  # each function's


def test_a_pipe_gets_the_error_whole() -> None:
    lines = render(_fixture_snapshot(), 60, region="us-east-1", cut=False)
    assert any(("KeyError: 'TABLE' " * 9).strip() in Text.from_markup(x).plain for x in lines)


def test_missing_resources_say_so() -> None:
    s = _fixture_snapshot()
    s["queue"] = {"name": "POC-Queue", "exists": False, "dlq": {"name": "D", "exists": False}}
    s["table"] = {"name": "orders", "exists": False, "rows": None, "rows_at_least": False}
    plain = "\n".join(Text.from_markup(x).plain for x in render(s, 80, region="r"))
    assert "↓ queue POC-Queue" in plain and "missing  DLQ D missing" in plain
    assert "rows missing" in plain


def test_written_paths_stay_in_the_workspace(sent: Sent) -> None:
    # watch reads only: no state file is written by it (the fixture's `up` wrote one).
    before = sorted(p.name for p in Path(sent.ws.dir).rglob("*") if p.is_file())
    assert sent.ws.cli("watch", "--once").exit_code == 0
    assert sorted(p.name for p in Path(sent.ws.dir).rglob("*") if p.is_file()) == before
