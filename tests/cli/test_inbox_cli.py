"""The lab's Steps 6.2 and Task 9 with the real CLI against a real `pocctl local`: the email
subscription is pending until confirmed (`up`, `status`), test-order says the notification
cannot arrive yet, `pocctl inbox` shows the confirmation and confirms it, and then the
notification of each order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.localkit import wait_for
from support.localproc import LocalProcess
from support.workspace import Workspace, make_workspace

from pocctl.cli.app import App, Options
from pocctl.cli.inbox import local_inbox_url

ADDRESS = "learner@example.com"


@pytest.fixture
def lws(tmp_path: Path, local_process: LocalProcess) -> Workspace:
    ws = make_workspace(tmp_path, local_process.endpoint)
    ws.write_config(f"topic:\n  notification_email: {ADDRESS}\n")
    return ws


def _note(ws: Workspace) -> str:
    report = json.loads(ws.cli("status", "--json").stdout)
    (row,) = [r for r in report["resources"] if r["key"] == "subscription.email"]
    return str(row["note"])


def _inbox(ws: Workspace) -> list[dict[str, object]]:
    run = ws.subprocess("inbox", "--json")
    assert run.exit_code == 0, run.output
    return json.loads(run.stdout)  # type: ignore[no-any-return]


def test_pending_then_confirmed_through_the_inbox_and_the_notification_arrives(
    lws: Workspace, local_process: LocalProcess
) -> None:
    up = lws.cli("up")
    assert up.exit_code == 0, up.output
    assert "confirm the subscription of learner@example.com (Step 6.2)" in up.output
    assert f"`{lws.cmd('inbox', '--confirm')}`" in up.output  # the run's options, to paste
    assert _note(lws) == "pending confirmation (check inbox)"
    local_process.wait_for_line(
        rf"email to {ADDRESS}: AWS Notification - Subscription Confirmation", timeout=10
    )

    listed = lws.subprocess("inbox")
    assert listed.exit_code == 0, listed.output
    assert "AWS Notification - Subscription Confirmation" in listed.stdout
    assert f"`pocctl --endpoint-url {lws.endpoint} inbox --confirm`" in listed.stdout

    # Pending: the probe queue still sees the notification, the address gets nothing.
    order = lws.subprocess("test-order")
    assert order.exit_code == 0, order.output
    assert "pending confirmation: no notification reaches it" in order.output
    assert [m["kind"] for m in _inbox(lws)] == ["confirmation"]

    confirmed = lws.subprocess("inbox", "--confirm")
    assert confirmed.exit_code == 0, confirmed.output
    assert "subscription confirmed" in confirmed.stdout
    assert _note(lws) == "confirmed"

    order = lws.subprocess("test-order")
    assert order.exit_code == 0, order.output
    inbox = f"pocctl --endpoint-url {lws.endpoint} inbox"  # the run's options, to paste
    assert f"the notification email to {ADDRESS}: `{inbox}` shows it" in order.output
    mails = wait_for(
        lambda: [m for m in _inbox(lws) if m["kind"] == "notification"] or None,
        what="the notification email",
        timeout=30.0,
    )
    (mail,) = mails
    assert mail["subject"] == "New Order Notification"
    assert "If you wish to stop receiving notifications from this topic" in str(mail["body"])
    local_process.wait_for_line(rf"email to {ADDRESS}: New Order Notification", timeout=10)
    listed = lws.subprocess("inbox")
    assert listed.stdout.index("New Order Notification") < listed.stdout.index(
        "Subscription Confirmation"
    )  # newest first


def test_inbox_needs_an_address(tmp_path: Path, local_process: LocalProcess) -> None:
    ws = make_workspace(tmp_path, local_process.endpoint)
    run = ws.subprocess("inbox")
    assert run.exit_code != 0
    assert "no address" in run.output


def test_only_a_loopback_endpoint_has_a_local_inbox() -> None:
    def url(endpoint: str | None) -> str | None:
        return local_inbox_url(App(Options(endpoint_url=endpoint)))

    assert url("http://127.0.0.1:4566") == "http://127.0.0.1:4566/_pocctl/inbox"
    assert url("https://sns.us-east-1.amazonaws.com") is None


def test_on_aws_inbox_says_the_mailbox_is_real_and_shows_the_subscriptions_state(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.write_config(f"topic:\n  notification_email: {ADDRESS}\n")
    assert ws.cli("topic").exit_code == 0
    # AWS: no local inbox to read (the endpoint is not the embedded AWS's).
    monkeypatch.setattr("pocctl.cli.inbox.local_inbox_url", lambda app: None)
    run = ws.cli("inbox")
    assert run.exit_code == 0, run.output
    assert f"on AWS the email goes to the real inbox of {ADDRESS}" in run.output
    assert "subscription: pending confirmation" in run.output


def test_inbox_without_a_running_embedded_aws_says_to_start_it(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ws = make_workspace(tmp_path, f"http://127.0.0.1:{port}")
    run = ws.cli("inbox", ADDRESS)
    assert run.exit_code != 0
    assert "pocctl local" in run.output
