"""Ships function output to CloudWatch Logs on the embedded server, off the invocation path."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("pocctl.local")

_STOP = object()


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
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            group, stream, events, region = item
            try:
                self._use_region(region)
                self._put(group, stream, events)
            except Exception:
                logger.exception("could not write %d log events to %s", len(events), group)

    def _put(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        try:
            self._put_once(group, stream, events)
        except self._client.exceptions.ResourceNotFoundException:
            # The group was deleted since (e.g. by `pocctl down`): create it again, as Lambda
            # does on the next invocation.
            self._known.discard((group, stream))
            self._put_once(group, stream, events)

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
        self._client.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": ts, "message": msg} for ts, msg in events],
        )
