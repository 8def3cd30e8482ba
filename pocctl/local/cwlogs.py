"""Ships function output to CloudWatch Logs on the embedded server, off the invocation path."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("pocctl.local")

_STOP = object()
# How long the shipper gathers invocations' output before writing it. Lambda's own delivery is
# asynchronous ("It might take 5 to 10 minutes for logs to show up after a function
# invocation": https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html), so
# a quarter of a second adds nothing a user could rely on, and under load one PutLogEvents per
# log stream per window replaces one per invocation (about a tenth of the server's CPU at 50
# orders/s: docs/PERFORMANCE.md).
GATHER_SECONDS = 0.25


class LogShipper:
    """Queue of (group, stream, events, region); one thread creates groups/streams and puts the
    events into CloudWatch Logs of the function's own region (a function's log group is in its
    region on AWS: https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html).

    Called by the executor after each invocation, so a slow Logs call never delays a handler.
    ``clients(region)``: a Logs client in that region.
    """

    def __init__(self, clients: Callable[[str], Any]) -> None:
        self._clients = clients
        # The item being shipped's region's client and known groups/streams: set by _run for
        # each item (one shipper thread), so _put/_put_once need not know about regions.
        self._client: Any = None
        self._known: set[tuple[str, str]] = set()
        self._known_by_region: dict[str, set[tuple[str, str]]] = {}
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="pocctl-log-shipper", daemon=True)
        self._thread.start()

    def __call__(self, group: str, stream: str, events: list[tuple[int, str]], region: str) -> None:
        self._queue.put((group, stream, events, region))

    def _use_region(self, region: str) -> None:
        self._client = self._clients(region)
        self._known = self._known_by_region.setdefault(region, set())

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything queued so far has been shipped."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def stop(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    def forget(self) -> None:
        """After a server reset the groups and streams are gone: create them again."""
        for known in self._known_by_region.values():
            known.clear()

    def _run(self) -> None:
        while True:
            items = self._gather()
            for item in items:
                if item is _STOP:
                    return
                if isinstance(item, threading.Event):
                    item.set()
                    continue
                group, stream, events, region = item
                try:
                    self._use_region(region)
                    self._put(group, stream, events)
                except Exception:  # _put logs each failed batch; this is a bug in the shipper
                    logger.exception("could not write %d log events to %s", len(events), group)

    def _gather(self) -> list[Any]:
        """What was queued in the next window, with each log stream's events joined, in order
        (a stream is one execution environment's, written one invocation after another).

        A flush or stop ends the window early: it is answered once what came before it is
        written."""
        first = self._queue.get()
        got = [first]
        deadline = time.monotonic() + GATHER_SECONDS
        while got[-1] is not _STOP and not isinstance(got[-1], threading.Event):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                got.append(self._queue.get(timeout=left))
            except queue.Empty:
                break
        out: list[Any] = []
        joined: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
        for item in got:
            if item is _STOP or isinstance(item, threading.Event):
                out.append(item)
                continue
            group, stream, events, region = item
            key = (region, group, stream)
            if key not in joined:
                joined[key] = []
                out.append((group, stream, joined[key], region))
            joined[key].extend(events)
        return out

    def _put(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        """Write ``events`` in as many PutLogEvents calls as AWS's limits need.

        A batch that fails is logged with what it held, and the others are still written.
        """
        for batch in batches(events):
            try:
                try:
                    self._put_once(group, stream, batch)
                except self._client.exceptions.ResourceNotFoundException:
                    # The group was deleted since (e.g. by `pocctl down`): create it again, as
                    # Lambda does on the next invocation.
                    self._known.discard((group, stream))
                    self._put_once(group, stream, batch)
            except Exception:
                logger.exception(
                    "could not write %d log events (of %d) to %s %s; first: %.200r",
                    len(batch),
                    len(events),
                    group,
                    stream,
                    batch[0][1],
                )

    def _put_once(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        if (group, stream) not in self._known:
            for call, kwargs in (
                (self._client.create_log_group, {"logGroupName": group}),
                (self._client.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
            ):
                try:
                    call(**kwargs)
                except self._client.exceptions.ResourceAlreadyExistsException:
                    pass  # created earlier (by us, or by the user's own tooling)
            self._known.add((group, stream))
        resp = self._client.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": ts, "message": msg} for ts, msg in events],
        )
        if resp.get("rejectedLogEventsInfo"):
            logger.error(
                "CloudWatch Logs rejected some of %d log events for %s %s: %s",
                len(events),
                group,
                stream,
                resp["rejectedLogEventsInfo"],
            )


# PutLogEvents' limits (CloudWatch Logs API reference, PutLogEvents,
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html):
# "The maximum batch size is 1,048,576 bytes. This size is calculated as the sum of all event
# messages in UTF-8, plus 26 bytes for each log event." "Each log event can be no larger than
# 256 KB." "The maximum number of log events in a batch is 10,000." "A batch of log events in a
# single request cannot span more than 24 hours." The message's own minimum length is 1.
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD  # the 256 KB counts the overhead ("exceeds limit
# of 262144" is what CloudWatch answers for a bigger event)
MAX_BATCH_EVENTS = 10_000
MAX_SPAN_MS = 24 * 3600 * 1000


def split_message(message: str, limit: int = MAX_EVENT_BYTES) -> list[str]:
    """A message over the event size limit as consecutive events, each at most ``limit`` bytes
    of UTF-8 and never cut inside a character: nothing is lost, the order is kept."""
    data = message.encode("utf-8")
    if len(data) <= limit:
        return [message]
    parts: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # a continuation byte: back off
            end -= 1
        parts.append(data[start:end].decode("utf-8"))
        start = end
    return parts


def batches(events: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """``events`` as PutLogEvents batches within AWS's limits, in chronological order."""
    out: list[list[tuple[int, str]]] = []
    batch: list[tuple[int, str]] = []
    size = 0
    last = 0
    for ts, message in events:
        if not message:
            # AWS (and botocore's validation) refuse an empty message; it carries nothing.
            logger.warning("an empty log event was not written (PutLogEvents' minimum is 1)")
            continue
        ts = max(ts, last)  # chronological order within a batch is required
        last = ts
        for part in split_message(message):
            cost = len(part.encode("utf-8")) + EVENT_OVERHEAD
            if batch and (
                size + cost > MAX_BATCH_BYTES
                or len(batch) >= MAX_BATCH_EVENTS
                or ts - batch[0][0] > MAX_SPAN_MS
            ):
                out.append(batch)
                batch, size = [], 0
            batch.append((ts, part))
            size += cost
    if batch:
        out.append(batch)
    return out
