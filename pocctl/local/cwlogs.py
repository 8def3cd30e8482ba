"""Ships function output to CloudWatch Logs on the embedded server, off the invocation path."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

logger = logging.getLogger("pocctl.local")

_STOP = object()


class LogShipper:
    """Queue of (group, stream, events); one thread creates groups/streams and puts the events.

    Called by the executor after each invocation, so a slow Logs call never delays a handler.
    """

    def __init__(self, logs_client: Any) -> None:
        self._client = logs_client
        self._queue: queue.Queue[Any] = queue.Queue()
        self._known: set[tuple[str, str]] = set()
        self._thread = threading.Thread(target=self._run, name="pocctl-log-shipper", daemon=True)
        self._thread.start()

    def __call__(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        self._queue.put((group, stream, events))

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
        self._known.clear()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            group, stream, events = item
            try:
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
