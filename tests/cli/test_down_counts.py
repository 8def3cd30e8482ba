"""`pocctl down` counts the messages its queues still hold before it deletes them, and says how
many orders would be lost: in the question it asks (a real pty), or on a warning line with
--yes. The embedded AWS here runs no Lambda pollers, so what is sent stays queued."""

from __future__ import annotations

import re

import pexpect
from support.inventory import empty, inventory

# The embedded AWS of these tests runs no pollers: messages stay where they are sent.
QUEUED = {"POC-Queue": 7, "POC-Queue-DLQ": 2, "POC-Lambda-2-Failures": 1}


def fill(ws) -> None:  # type: ignore[no-untyped-def]
    sqs = ws.client("sqs")
    for name, n in QUEUED.items():
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        for i in range(n):
            sqs.send_message(QueueUrl=url, MessageBody=f'{{"item": "soap", "n": {i}}}')
    # One received and not deleted yet (in flight) still counts: it is not processed.
    url = sqs.get_queue_url(QueueName="POC-Queue")["QueueUrl"]
    assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=600)["Messages"]


def queued(ws, name: str) -> int:  # type: ignore[no-untyped-def]
    sqs = ws.client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return sum(
        int(attrs[k])
        for k in (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
    )


def test_down_yes_prints_how_many_messages_are_lost_and_proceeds(ws, aws_endpoint) -> None:  # type: ignore[no-untyped-def]
    assert ws.cli("up").exit_code == 0
    fill(ws)
    r = ws.subprocess("down", "--yes")
    assert r.exit_code == 0, r.output
    warning = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert warning == [
        "warning: deleting the queues: 10 messages would be lost: "
        "7 in POC-Queue (orders not stored yet), 2 in POC-Queue-DLQ (orders that failed), "
        "1 in POC-Lambda-2-Failures (records of failed notifications)"
    ], r.stderr
    assert "stack is down: 18 deleted" in r.stdout
    assert empty(inventory(aws_endpoint))


def test_down_yes_says_nothing_about_empty_queues(ws) -> None:  # type: ignore[no-untyped-def]
    assert ws.cli("up").exit_code == 0
    r = ws.subprocess("down", "--yes")
    assert r.exit_code == 0, r.output
    assert "would be lost" not in r.output


def spawn_down(ws):  # type: ignore[no-untyped-def]
    return ws.terminal("down", columns=200)


def test_down_asks_with_the_counts_in_the_question(ws, aws_endpoint) -> None:  # type: ignore[no-untyped-def]
    assert ws.cli("up").exit_code == 0
    fill(ws)
    child = spawn_down(ws)
    child.expect(r"Delete the whole order pipeline in us-east-1\? \[y/N\]: ")
    question = re.sub(r"\s+", " ", child.before + child.after)
    assert (
        "10 messages would be lost: 7 in POC-Queue (orders not stored yet), "
        "2 in POC-Queue-DLQ (orders that failed), "
        "1 in POC-Lambda-2-Failures (records of failed notifications). "
        "Delete the whole order pipeline in us-east-1?"
    ) in question
    child.sendline("n")
    child.expect("nothing deleted")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert {name: queued(ws, name) for name in QUEUED} == QUEUED  # nothing was touched

    child = spawn_down(ws)
    child.expect(r"10 messages would be lost")
    child.expect(r"\[y/N\]: ")
    child.sendline("y")
    child.expect("stack is down: 18 deleted")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert empty(inventory(aws_endpoint))


def test_down_asks_and_says_when_the_queues_are_empty(ws) -> None:  # type: ignore[no-untyped-def]
    assert ws.cli("up").exit_code == 0
    child = spawn_down(ws)
    child.expect(r"The queues hold no messages\. Delete the whole order pipeline in us-east-1\?")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2


def test_a_renamed_queue_with_orders_is_left_said_and_counted_by_down(ws, aws_endpoint) -> None:  # type: ignore[no-untyped-def]
    """queue.name changes with 3 orders still in the old queue: `up` makes the new queue, leaves
    the old one (and its orders) where it is and says so; `down` counts and deletes it too."""
    assert ws.cli("up").exit_code == 0
    sqs = ws.client("sqs")
    old = sqs.get_queue_url(QueueName="POC-Queue")["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=old, MessageBody=f'{{"n": {i}}}')
    ws.write_config("queue:\n  name: Orders-Queue\n")
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    assert (
        "queue.name changed: queue POC-Queue, made before under that name, is left as it was "
        f"with 3 messages; `{ws.cmd('down')}` deletes it with the stack"
    ) in re.sub(r"\s+", " ", r.stderr)
    assert queued(ws, "POC-Queue") == 3 and queued(ws, "Orders-Queue") == 0
    r = ws.subprocess("down", "--yes")
    assert r.exit_code == 0, r.output
    assert (
        "3 messages would be lost: 3 in POC-Queue (orders, in a queue config.yaml no longer names)"
    ) in r.stderr
    assert empty(inventory(aws_endpoint))
