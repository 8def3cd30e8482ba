"""Gives memory back to the system after resources are deleted.

Deleting a table, queue, topic, function or log group frees what it held inside the process,
but neither Python nor the C allocator hands the pages back on their own: after `pocctl down`
of a 3,000-order spike the server stayed at its peak. A few seconds after the last deletion
(so that `down`'s burst of deletions counts once), one full garbage collection (moto's models
point at each other in cycles) and glibc's malloc_trim return the free pages. Memory only:
no answer changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
from typing import Any

logger = logging.getLogger("pocctl.local")

# Operations after which a large part of the heap may be free.
TRIGGERS = frozenset(
    {
        ("dynamodb", "DeleteTable"),
        ("sqs", "DeleteQueue"),
        ("sqs", "PurgeQueue"),
        ("sns", "DeleteTopic"),
        ("lambda", "DeleteFunction"),
        ("logs", "DeleteLogGroup"),
    }
)
DELAY_SECONDS = 5.0


def _malloc_trim() -> Any:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


class MemoryReturn:
    """A pipeline step that notices deletions and, once they stop, returns free memory."""

    def __init__(self, delay: float = DELAY_SECONDS) -> None:
        self.delay = delay
        self.returns = 0  # how many times memory was given back (tests read it)
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._trim = _malloc_trim()

    def step(self, request: Any) -> None:
        if (request.op.service, request.op.name) in TRIGGERS:
            self.soon()

    def soon(self) -> None:
        """Return memory ``delay`` seconds after the last call (a burst counts once)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.delay, self._return)
            self._timer.name = "pocctl-memory-return"
            self._timer.daemon = True
            self._timer.start()

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _return(self) -> None:
        with self._lock:
            self._timer = None
        gc.collect()
        if self._trim is not None:
            self._trim(0)
        self.returns += 1
        logger.debug("embedded AWS: memory given back after deletions")
