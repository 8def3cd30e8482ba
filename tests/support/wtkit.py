"""Helpers for the walkthrough tests: `pocctl local` as a real subprocess (the embedded AWS with
Lambda pollers, executor and API data plane, so Task 9 passes) and the real CLI under a
pseudo-terminal."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading

import boto3
import pexpect

from support import subprocess_env
from support.workspace import Workspace

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\r")


def plain(text: str) -> str:
    """What a person reads: terminal escapes (styles, spinner, hyperlinks) and CRs removed."""
    return ANSI.sub("", text)


class LocalServer:
    """`python -m pocctl local --port 0`; its output is drained by a thread so it never blocks."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pocctl", "local", "--port", "0"],
            env=subprocess_env(PYTHONUNBUFFERED="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        # Port 0: the chosen port is in the first line. readline blocks until it is there.
        for line in self.proc.stdout:
            self.lines.append(line)
            m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if m:
                self.endpoint = m.group(1)
                break
        else:
            raise AssertionError(f"pocctl local did not start: {self.lines}")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> None:
        # SIGTERM: SIGINT may be ignored when the suite itself runs in the background.
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Screen:
    """The walkthrough under a pseudo-terminal of 24 × 80: wait for a prompt, read what was shown
    since the last one (as plain text), answer it."""

    PROMPT = r"Enter: run Task (\d+) · s: skip · q: quit › "
    TEARDOWN = r"Tear everything down in [\w-]+\? y: yes · n: keep it › "

    def __init__(self, ws: Workspace, *args: str) -> None:
        self.child = ws.terminal("walkthrough", *args, TERM="xterm-256color")

    # The whole prompt, with the end of its reverse video (it is erased once answered).
    MORE = r"-- more -- space: next page · Enter: next line · q: stop paging(?:\x1b\[0m)?"

    def _through_pages(self, pattern: str, timeout: float) -> str:
        """Wait for ``pattern``, turning every page a screen taller than the window takes (as
        a reader presses space); what was shown, the pages joined."""
        seen = []
        while self.child.expect([pattern, self.MORE], timeout=timeout) == 1:
            seen.append(self.child.before)
            self.child.send(" ")
        seen.append(self.child.before)
        return plain("".join(seen))

    def prompt(self, timeout: float = 60) -> tuple[int, str]:
        """Wait for the next task prompt; (its task number, the screen since the last prompt)."""
        screen = self._through_pages(self.PROMPT, timeout)
        return int(self.child.match.group(1)), screen

    def teardown_prompt(self, timeout: float = 60) -> str:
        return self._through_pages(self.TEARDOWN, timeout)

    def send(self, key: str) -> None:
        self.child.send(key)

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """Wait for the process to end; (exit status, what it printed after the last prompt)."""
        self.child.expect(pexpect.EOF, timeout=timeout)
        self.child.close()
        return self.child.exitstatus, plain(self.child.before)

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


def client(ws: Workspace, service: str):  # type: ignore[no-untyped-def]
    return boto3.client(service, region_name="us-east-1", endpoint_url=ws.endpoint)
