"""Runs a function's deployed zip under the Lambda contract, in warm worker processes.

One small pool of worker processes per function (``_worker.py``), kept warm between
invocations and replaced when the code or configuration changes (CodeSha256, handler,
environment, memory). The configured timeout is enforced by killing the worker. What the
handler prints or logs goes, prefixed with the function name, to the ``log`` callable and to
the CloudWatch Logs group ``/aws/lambda/<name>`` on the embedded server.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocctl.local.server import LOCAL_CREDENTIALS

logger = logging.getLogger("pocctl.local")

WORKER_SCRIPT = str(Path(__file__).with_name("_worker.py"))
RS = "\x1e"
LogFn = Callable[[str], None]


@dataclass(frozen=True)
class FunctionSpec:
    """A function as deployed on the embedded server."""

    name: str
    arn: str
    handler: str
    runtime: str
    timeout: int
    memory: int
    env: dict[str, str]
    code_sha256: str
    code: bytes = field(repr=False)
    region: str
    account_id: str
    package_type: str = "Zip"
    role: str = ""  # the execution role's ARN

    @property
    def fingerprint(self) -> str:
        """What a warm worker depends on: a change means a fresh worker (the timeout does not)."""
        parts = [
            self.code_sha256,
            self.handler,
            self.runtime,
            str(self.memory),
            json.dumps(self.env, sort_keys=True),
            self.role,  # a new role is a new environment, with that role's credentials
        ]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"


def local_admin_credentials(spec: FunctionSpec) -> dict[str, str]:
    """The local admin's credentials (unrestricted on the embedded AWS)."""
    return {**LOCAL_CREDENTIALS, "AWS_SESSION_TOKEN": "testing"}


@dataclass
class InvocationResult:
    request_id: str
    payload: bytes  # the JSON the Invoke API returns (the result, or the error object)
    error: dict[str, Any] | None = None
    log_lines: list[str] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def result(self) -> Any:
        return json.loads(self.payload) if self.payload else None


class _Worker:
    """One warm execution environment (a child process running _worker.py)."""

    retire_at = math.inf  # time.monotonic() after which it takes no new invocation

    def __init__(self, spec: FunctionSpec, code_dir: Path, env: dict[str, str]) -> None:
        self.fingerprint = spec.fingerprint
        self.log_stream = time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + uuid.uuid4().hex
        self._inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.proc = subprocess.Popen(  # noqa: S603 (our own script, argv list)
            [sys.executable, "-u", WORKER_SCRIPT, str(code_dir), spec.handler],
            cwd=str(code_dir),
            env={**env, "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(
            target=self._read, name=f"pocctl-worker-{spec.name}", daemon=True
        )
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            raw_text, sep, proto = line.partition(RS)
            if raw_text:  # fd-level output of the handler (C extensions, subprocesses)
                self._inbox.put({"t": "log", "line": raw_text})
            if sep:
                try:
                    self._inbox.put(json.loads(proto))
                except ValueError:
                    self._inbox.put({"t": "log", "line": proto})
        self._inbox.put({"t": "eof"})

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def invoke(
        self, request: dict[str, Any], deadline: float, on_line: Callable[[str], None]
    ) -> tuple[str, Any]:
        """Send one request: ("result", payload), ("error", err), ("timeout"|"eof", None)."""
        # Output printed between invocations belongs to no request: pass it on first.
        while True:
            try:
                msg = self._inbox.get_nowait()
            except queue.Empty:
                break
            if msg.get("t") == "log":
                on_line(msg["line"])
            elif msg.get("t") == "eof":
                return "eof", None
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
            self.proc.stdin.flush()
        except OSError:
            return "eof", None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout", None
            try:
                msg = self._inbox.get(timeout=remaining)
            except queue.Empty:
                return "timeout", None
            kind = msg.get("t")
            if kind == "log":
                on_line(msg["line"])
            elif kind == "result":
                return "result", msg["payload"]
            elif kind == "error":
                return "error", msg["error"]
            elif kind == "eof":
                return "eof", None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            logger.error("worker process %s did not exit after kill", self.proc.pid)
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass  # broken pipe: the process is gone, nothing left to flush
        # The reader ends at EOF; a grandchild the handler started could keep the pipe open.
        self._reader.join(timeout=2)
        if self._reader.is_alive():
            logger.warning(
                "output of %s's worker still open (a leftover child process?)", self.log_stream
            )
        elif self.proc.stdout is not None:
            self.proc.stdout.close()


class _Pool:
    """The warm workers of one function; at most ``size`` invocations run at once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.idle: list[_Worker] = []
        self.count = 0
        self.cond = threading.Condition()


class Executor:
    """Runs Lambda functions from their deployed zip in warm worker processes."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        log: LogFn | None = None,
        logs_sink: Callable[[str, str, list[tuple[int, str]]], None] | None = None,
        workers_per_function: int = 2,
        work_dir: str | None = None,
        credentials: Callable[[FunctionSpec], dict[str, str]] | None = None,
        worker_max_age: float = math.inf,
    ) -> None:
        self.endpoint_url = endpoint_url
        self._log = log
        self._logs_sink = logs_sink
        self._workers_per_function = workers_per_function
        self._root = Path(tempfile.mkdtemp(prefix="pocctl-lambda-", dir=work_dir))
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()
        self._busy: set[_Worker] = set()
        self._stopped = False
        self._extract_lock = threading.Lock()
        # The AWS_* credentials a new worker gets (default: the local admin's); a worker is
        # retired after worker_max_age seconds, before those credentials expire (iam_authz).
        self._credentials = credentials or local_admin_credentials
        self._worker_max_age = worker_max_age

    # -- public ---------------------------------------------------------------------------

    def invoke(
        self, spec: FunctionSpec, event: Any, *, request_id: str | None = None
    ) -> InvocationResult:
        """Run ``spec``'s handler with ``event`` (blocking up to the function's timeout)."""
        rid = request_id or str(uuid.uuid4())
        started = time.monotonic()
        lines: list[str] = []

        def on_line(line: str) -> None:
            lines.append(line)
            if self._log is not None:
                self._log(f"[{spec.name}] {line}")

        if self._stopped:
            return self._failed(rid, "Runtime.Unavailable", "the local Lambda engine is stopping")
        if spec.package_type != "Zip":
            return self._failed(
                rid, "Runtime.InvalidEntrypoint", "only zip packages run in the local engine"
            )
        try:
            worker = self._acquire(spec)
        except Exception as exc:
            logger.exception("could not start a worker for %s", spec.name)
            on_line(f"[ERROR] could not start the function: {exc}")
            return self._failed(rid, "Runtime.Unavailable", f"could not start the function: {exc}")

        deadline = started + spec.timeout
        request = {
            "event": event,
            "context": {
                "function_name": spec.name,
                "function_version": "$LATEST",
                "invoked_function_arn": spec.arn,
                "memory_limit_in_mb": spec.memory,
                "aws_request_id": rid,
                "log_group_name": spec.log_group,
                "log_stream_name": worker.log_stream,
                "deadline_ms": int((time.time() + spec.timeout) * 1000),
            },
        }
        keep = False
        try:
            kind, value = worker.invoke(request, deadline, on_line)
            keep = kind in ("result", "error")
            result = self._outcome(spec, worker, rid, kind, value, on_line)
        finally:
            self._release(spec, worker, keep)

        result.duration_ms = (time.monotonic() - started) * 1000
        result.log_lines = lines
        self._ship_logs(spec, worker, rid, lines, result.duration_ms)
        return result

    def _outcome(
        self,
        spec: FunctionSpec,
        worker: _Worker,
        rid: str,
        kind: str,
        value: Any,
        on_line: Callable[[str], None],
    ) -> InvocationResult:
        """What one invocation came to, as Lambda reports it (and logs it, on failure)."""
        if kind == "result":
            return InvocationResult(rid, value.encode("utf-8"))
        if kind == "error":
            return InvocationResult(rid, json.dumps(value).encode("utf-8"), error=value)
        if kind == "timeout":
            msg = f"Task timed out after {spec.timeout:.2f} seconds"
            on_line(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}Z {rid} {msg}")
            return self._failed(rid, "Sandbox.Timedout", f"RequestId: {rid} Error: {msg}")
        # The process ended (sys.exit, crash, killed by stop()).
        code = worker.proc.wait(timeout=5)
        msg = f"Runtime exited with error: exit status {code}"
        on_line(f"RequestId: {rid} Error: {msg}")
        return self._failed(rid, "Runtime.ExitError", f"RequestId: {rid} Error: {msg}")

    def stop(self) -> None:
        """Kill every worker and remove the extracted code. Later invocations fail fast."""
        self._stopped = True
        self.kill_workers(busy_too=True)
        shutil.rmtree(self._root, ignore_errors=True)

    def kill_workers(self, *, busy_too: bool = False) -> None:
        """Forget every warm worker (the next invocation cold-starts)."""
        with self._lock:
            pools = list(self._pools.values())
            busy = list(self._busy) if busy_too else []
        for pool in pools:
            with pool.cond:
                idle, pool.idle = pool.idle, []
                pool.count -= len(idle)
                pool.cond.notify_all()
            for w in idle:
                w.kill()
        # Killing a busy worker ends its invocation with Runtime.ExitError; release() then
        # drops it from its pool.
        for w in busy:
            w.kill()

    # -- internals ------------------------------------------------------------------------

    def _pool(self, name: str) -> _Pool:
        with self._lock:
            pool = self._pools.get(name)
            if pool is None:
                pool = self._pools[name] = _Pool(self._workers_per_function)
            return pool

    def _acquire(self, spec: FunctionSpec) -> _Worker:
        pool = self._pool(spec.name)
        stale: list[_Worker] = []
        with pool.cond:
            while True:
                now = time.monotonic()
                # Warm workers of an older deployment never run again.
                for w in list(pool.idle):
                    if w.fingerprint != spec.fingerprint or not w.alive or w.retire_at < now:
                        pool.idle.remove(w)
                        pool.count -= 1
                        stale.append(w)
                if pool.idle:
                    worker = pool.idle.pop()
                    break
                if pool.count < pool.size:
                    pool.count += 1
                    worker = None
                    break
                pool.cond.wait(timeout=0.5)
                if self._stopped:
                    raise RuntimeError("the local Lambda engine is stopping")
        for w in stale:
            w.kill()
        if worker is None:
            try:
                worker = _Worker(spec, self._code_dir(spec), self._environment(spec))
                worker.retire_at = time.monotonic() + self._worker_max_age
            except Exception:
                with pool.cond:
                    pool.count -= 1
                    pool.cond.notify()
                raise
        with self._lock:
            self._busy.add(worker)
        return worker

    def _release(self, spec: FunctionSpec, worker: _Worker, keep: bool) -> None:
        pool = self._pool(spec.name)
        with self._lock:
            self._busy.discard(worker)
        with pool.cond:
            if keep and worker.alive and not self._stopped:
                pool.idle.append(worker)
                worker = None  # type: ignore[assignment]
            else:
                pool.count -= 1
            pool.cond.notify()
        if worker is not None:
            worker.kill()

    def _code_dir(self, spec: FunctionSpec) -> Path:
        """The zip, extracted once per CodeSha256 (read back from the server, not handlers/)."""
        digest = hashlib.sha256(spec.code).hexdigest()[:16]
        target = self._root / f"{spec.name}-{digest}"
        with self._extract_lock:
            if not target.exists():
                tmp = target.with_suffix(".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                with zipfile.ZipFile(io.BytesIO(spec.code)) as zf:
                    zf.extractall(tmp)  # extractall drops absolute and ".." member paths
                tmp.rename(target)
        return target

    def _environment(self, spec: FunctionSpec) -> dict[str, str]:
        env = {
            k: os.environ[k]
            for k in ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
            if k in os.environ
        }
        env.update({k: str(v) for k, v in spec.env.items()})
        # The runtime's own variables win over the function's, as on AWS (they are reserved).
        env.update(
            {
                "LAMBDA_TASK_ROOT": str(self._code_dir(spec)),
                "_HANDLER": spec.handler,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
                "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
                "AWS_REGION": spec.region,
                "AWS_DEFAULT_REGION": spec.region,
                "AWS_ENDPOINT_URL": self.endpoint_url,
                # No profile or config file of the developer's machine reaches the handler.
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "PYTHONIOENCODING": "utf-8",
                "PYTHONDONTWRITEBYTECODE": "1",
                "TZ": ":UTC",
                **self._credentials(spec),
            }
        )
        return env

    def _failed(self, rid: str, error_type: str, message: str) -> InvocationResult:
        err = {"errorMessage": message, "errorType": error_type}
        return InvocationResult(rid, json.dumps(err).encode("utf-8"), error=err)

    def _ship_logs(
        self, spec: FunctionSpec, worker: _Worker, rid: str, lines: list[str], duration_ms: float
    ) -> None:
        if self._logs_sink is None:
            return
        now = int(time.time() * 1000)
        events = [
            f"START RequestId: {rid} Version: $LATEST",
            *lines,
            f"END RequestId: {rid}",
            f"REPORT RequestId: {rid}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {spec.memory} MB",
        ]
        self._logs_sink(spec.log_group, worker.log_stream, [(now, e) for e in events])
