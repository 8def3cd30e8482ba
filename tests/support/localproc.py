"""`python -m pocctl local …` in a subprocess, as a user starts it, its output read line by line."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time

from support import subprocess_env


class LocalProcess:
    """The embedded AWS in the background; ``endpoint`` and ``port`` from its banner."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pocctl", "local", *args],
            env=env or subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._ended = False  # the output is closed: no line will come
        self._seen = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        line = self.wait_for_line(r"listening on (http://127\.0\.0\.1:\d+)")
        self.endpoint = re.search(r"(http://127\.0\.0\.1:\d+)", line).group(1)  # type: ignore[union-attr]
        self.port = self.endpoint.rsplit(":", 1)[1]
        self.wait_for_line(r"Ctrl-C stops it")  # the end of the banner

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()
        with self._seen:
            self._ended = True
            self._seen.notify_all()

    def wait_for_line(self, pattern: str, timeout: float = 60) -> str:
        """The first output line matching ``pattern``; fails at the deadline, or once the
        process has exited and all its output is read."""
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                for line in self.lines:
                    if re.search(pattern, line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self._ended:
                    raise AssertionError(f"no line matching {pattern!r} in {self.lines}")
                self._seen.wait(min(left, 0.5))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig``; its exit code once its output has ended."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self.wait_for_output_end()
        return code

    def wait_for_output_end(self) -> None:
        deadline = time.monotonic() + 10
        with self._seen:
            while not self._ended and time.monotonic() < deadline:
                self._seen.wait(0.1)

    @property
    def output(self) -> str:
        with self._seen:
            return "\n".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
