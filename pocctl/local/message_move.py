"""SQS dead-letter-queue redrive on the embedded AWS: StartMessageMoveTask, ListMessageMoveTasks
and CancelMessageMoveTask, which moto 5.2.5 does not implement (it answers HTTP 500
"NotImplementedError: The start_message_move_task action has not been implemented").

What AWS documents, and what is done here:

- StartMessageMoveTask "Starts an asynchronous task to move messages from a specified source
  queue to a specified destination queue"; only "dead-letter queues (DLQs) whose sources are other
  Amazon SQS queues are accepted"; without DestinationArn "the messages will be redriven back to
  their respective original source queues"; "Only one active message movement task is supported
  per queue at any given time"; MaxNumberOfMessagesPerSecond at most 500
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html).
- ListMessageMoveTasks: "the most recent message movement tasks (up to 10) under a specific
  source queue", MaxResults default 1, upper limit 10; each entry's Status is RUNNING, COMPLETED,
  CANCELLING, CANCELLED or FAILED; DestinationArn and MaxNumberOfMessagesPerSecond only when the
  request gave them; TaskHandle only while the task runs
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListMessageMoveTasks.html,
  .../API_ListMessageMoveTasksResultEntry.html).
- CancelMessageMoveTask answers ApproximateNumberOfMessagesMoved
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CancelMessageMoveTask.html).
- The error codes and messages are those AWS answered in LocalStack's tests recorded against AWS
  (github.com/localstack/localstack tests/aws/services/sqs/test_sqs_move_task.snapshot.json):
  a source without a redrive policy pointing at it: InvalidParameterValue "Source queue must be
  configured as a Dead Letter Queue."; a missing destination: ResourceNotFoundException (HTTP
  404) "The resource that you specified for the DestinationArn parameter doesn't exist."; a
  second task: InvalidParameterValue "There is already a task running. Only one active task is
  allowed for a source queue arn at a given time."; a bad handle: InvalidParameterValue "Value
  for parameter TaskHandle is invalid." or ResourceNotFoundException "Task does not exist.".

Redriven messages are new messages: new MessageId, new enqueue time, receive count 0 (the
redrive guide, cited at ``_move``).

Where this is not AWS: FIFO dead-letter queues are refused (UnsupportedOperation); the move
happens inside the StartMessageMoveTask request (the task lists
as COMPLETED at once, so there is never a RUNNING task to cancel: Cancel answers "Task does not
exist." as for any finished task); MaxNumberOfMessagesPerSecond is checked and reported but the
move is not slowed to it (its range check's message is not from AWS's documentation). Only
available messages move: those in flight (received, not yet deleted) stay, an assumption where
AWS's documentation says nothing. moto does not record which source queue sent a message to the DLQ,
so without DestinationArn a DLQ with several source queues is refused (UnsupportedOperation)
rather than guessed at; with one source (pocctl's case) the messages go back to it.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

MAX_RATE = 500
MAX_LIST = 10

_lock = threading.Lock()
_TASKS = "_pocctl_move_tasks"  # on moto's Queue: its tasks as source, newest last (a reset
# of the server forgets them with the queue)


@dataclass
class MoveTask:
    task_id: str
    source_arn: str
    destination_arn: str | None
    rate: int | None
    to_move: int
    moved: int
    started_ms: int
    status: str = "COMPLETED"

    @property
    def handle(self) -> str:
        raw = json.dumps({"taskId": self.task_id, "sourceArn": self.source_arn})
        return base64.b64encode(raw.encode()).decode()

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Status": self.status,
            "SourceArn": self.source_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_ms,
        }
        if self.destination_arn:
            out["DestinationArn"] = self.destination_arn
        if self.rate is not None:
            out["MaxNumberOfMessagesPerSecond"] = self.rate
        if self.status == "RUNNING":
            out["TaskHandle"] = self.handle
        return out


def _tasks_of(queue: Any) -> list[MoveTask]:
    tasks: list[MoveTask] | None = getattr(queue, _TASKS, None)
    if tasks is None:
        tasks = []
        setattr(queue, _TASKS, tasks)
    return tasks


class MoveTaskError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _not_found(parameter: str) -> MoveTaskError:
    return MoveTaskError(
        "ResourceNotFoundException",
        f"The resource that you specified for the {parameter} parameter doesn't exist.",
        404,
    )


def _queue(arn: str | None, parameter: str) -> Any:
    from moto.sqs.models import sqs_backends

    parts = str(arn or "").split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs":
        raise _not_found(parameter)
    _, _, _, region, account, name = parts
    queue = sqs_backends[account][region].queues.get(name) if account and region else None
    if queue is None:
        raise _not_found(parameter)
    return queue


def _sources_of(dlq: Any) -> list[Any]:
    from moto.sqs.models import sqs_backends

    backend = sqs_backends[dlq.account_id][dlq.region]
    return [q for q in backend.queues.values() if q.dead_letter_queue is dlq]


def _rate(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RATE:
        raise MoveTaskError(
            "InvalidParameterValue",
            "Value for parameter MaxNumberOfMessagesPerSecond is invalid. "
            f"Reason: You must enter a number that's between 1 and {MAX_RATE}.",
        )
    return value


def start(source_arn: str | None, destination_arn: str | None, rate: Any) -> MoveTask:
    source = _queue(source_arn, "SourceArn")
    rate = _rate(rate)
    if source.fifo_queue:
        # The redrive guide: the destination must be of the same type; moto's FIFO
        # bookkeeping (groups, deduplication) is not carried over here, so FIFO is refused
        # rather than moved loosely.
        raise MoveTaskError(
            "UnsupportedOperation", "the embedded AWS does not redrive FIFO dead-letter queues"
        )
    sources = _sources_of(source)
    if not sources:
        raise MoveTaskError(
            "InvalidParameterValue", "Source queue must be configured as a Dead Letter Queue."
        )
    if destination_arn:
        destination = _queue(destination_arn, "DestinationArn")
    elif len(sources) == 1:
        destination = sources[0]
    else:
        raise MoveTaskError(
            "UnsupportedOperation",
            "the embedded AWS does not know which source queue each message came from: "
            "give DestinationArn",
        )
    with _lock:
        tasks = _tasks_of(source)
        if any(t.status in ("RUNNING", "CANCELLING") for t in tasks):
            raise MoveTaskError(
                "InvalidParameterValue",
                "There is already a task running. Only one active task is allowed for a source "
                "queue arn at a given time.",
            )
        started_ms = int(time.time() * 1000)  # before the move: no message is sent before it
        moved = _move(source, destination, started_ms)
        task = MoveTask(
            task_id=str(uuid.uuid4()),
            source_arn=source.queue_arn,
            destination_arn=destination_arn or None,
            rate=rate,
            to_move=moved,
            moved=moved,
            started_ms=started_ms,
        )
        tasks.append(task)
        del tasks[:-MAX_LIST]
    return task


def _move(source: Any, destination: Any, now_ms: int) -> int:
    """Move the source's available messages (not those in flight or delayed) to
    ``destination``, oldest first, each as a new message: "The redrive task resets the
    retention period. All redriven messages are considered new messages and are assigned a new
    messageID and enqueueTime." ("Learn how to configure a dead-letter queue redrive in Amazon
    SQS", https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/
    sqs-configure-dead-letter-queue-redrive.html)."""
    available = [m for m in list(source._messages) if m.visible and not m.delayed]
    for message in available:
        with source._messages_lock:
            source._messages.remove(message)
        fresh = copy.copy(message)
        fresh.id = str(uuid.uuid4())
        fresh.sent_timestamp = now_ms
        fresh.approximate_receive_count = 0
        fresh.approximate_first_receive_timestamp = None
        fresh.receipt_handle = None
        fresh._old_receipt_handles = []
        fresh.visible_at = fresh.delayed_until = 0.0
        destination.add_message(fresh)
    return len(available)


def list_tasks(source_arn: str | None, max_results: Any) -> list[dict[str, Any]]:
    source = _queue(source_arn, "SourceArn")
    limit = 1 if max_results is None else int(max_results)
    if not 1 <= limit <= MAX_LIST:
        raise MoveTaskError(
            "InvalidParameterValue",
            f"Value for parameter MaxResults is invalid. Reason: You must enter a number that's "
            f"between 1 and {MAX_LIST}.",
        )
    with _lock:
        tasks = list(_tasks_of(source))
    return [t.entry() for t in reversed(tasks)][:limit]


def cancel(handle: str | None) -> int:
    try:
        decoded = json.loads(base64.b64decode(str(handle or ""), validate=True))
        task_id, source_arn = decoded["taskId"], decoded["sourceArn"]
    except (ValueError, KeyError, TypeError):
        raise MoveTaskError(
            "InvalidParameterValue", "Value for parameter TaskHandle is invalid."
        ) from None
    source = _queue(source_arn, "SourceArn")
    with _lock:
        for task in _tasks_of(source):
            if task.task_id == task_id and task.status == "RUNNING":
                task.status = "CANCELLED"
                return task.moved
    raise MoveTaskError("ResourceNotFoundException", "Task does not exist.", 404)


# -- the three actions on moto's SQSResponse (registered in moto_hooks.PATCHES) --------------


def _answer(response: Any, work: Any) -> Any:
    """Run ``work`` and serialize its result, or AWS's error with AWS's HTTP status (moto's
    serializer answers 400 for every SQS error: the model gives no status)."""
    from moto.core.responses import ActionResult
    from moto.sqs.exceptions import SQSException

    try:
        return ActionResult(work())
    except MoveTaskError as e:
        status, headers, body = response.serialized(ActionResult(SQSException(e.code, e.message)))
        headers["status"] = e.status
        return body, headers


def start_message_move_task(original: Any) -> Any:
    def action(self: Any) -> Any:
        def work() -> dict[str, Any]:
            task = start(
                self._get_param("SourceArn"),
                self._get_param("DestinationArn"),
                self._get_param("MaxNumberOfMessagesPerSecond"),
            )
            return {"TaskHandle": task.handle}

        return _answer(self, work)

    return action


def list_message_move_tasks(original: Any) -> Any:
    def action(self: Any) -> Any:
        return _answer(
            self,
            lambda: {
                "Results": list_tasks(self._get_param("SourceArn"), self._get_param("MaxResults"))
            },
        )

    return action


def cancel_message_move_task(original: Any) -> Any:
    def action(self: Any) -> Any:
        return _answer(
            self,
            lambda: {"ApproximateNumberOfMessagesMoved": cancel(self._get_param("TaskHandle"))},
        )

    return action
