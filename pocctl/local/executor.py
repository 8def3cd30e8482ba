"""Runs a function's deployed zip under the Lambda contract, in warm worker processes.

One small pool of worker processes per function (``_worker.py``), kept warm between
invocations and replaced when the code or configuration changes (CodeSha256, handler,
environment, memory). A new worker's Init phase (importing the handler) has its own 10 s limit;
the configured timeout, enforced by killing the worker, covers the invocation. What the handler
prints or logs goes, prefixed with the function name, to the ``log`` callable and, framed as
Lambda frames it (START … END, REPORT), to the CloudWatch Logs group ``/aws/lambda/<name>`` on
the embedded server.
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
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocctl.local import interpreters
from pocctl.local.interpreters import Interpreter
from pocctl.local.server import LOCAL_CREDENTIALS

logger = logging.getLogger("pocctl.local")

WORKER_SCRIPT = str(Path(__file__).with_name("_worker.py"))
RS = "\x1e"
LogFn = Callable[[str], None]
EventFn = Callable[[str], None]

# "The Init phase is limited to 10 seconds. If all three tasks do not complete within 10 seconds,
# Lambda retries the Init phase at the time of the first function invocation with the configured
# function timeout." (AWS Lambda developer guide, "Understanding the Lambda execution environment
# lifecycle", https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html)
INIT_LIMIT_S = 10.0
# "LogResult: The last 4 KB of the execution log, which is base64-encoded." (Lambda API
# reference, Invoke, https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html)
TAIL_BYTES = 4096


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
    log_lines: list[str] = field(default_factory=list)  # the function's output, line by line
    # The invocation's CloudWatch Logs events, (epoch ms, message): a cold start's init output,
    # then START … END, REPORT.
    log_events: list[tuple[int, str]] = field(default_factory=list)
    duration_ms: float = 0.0
    init_ms: float | None = None  # the Init phase before this invocation (a cold start)
    max_memory_mb: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def result(self) -> Any:
        return json.loads(self.payload) if self.payload else None

    def log_tail(self, limit: int = TAIL_BYTES) -> str:
        """The last ``limit`` bytes of the execution log (Invoke's LogResult with LogType Tail)."""
        text = "".join(m if m.endswith("\n") else m + "\n" for _, m in self.log_events)
        return text.encode("utf-8")[-limit:].decode("utf-8", "ignore")


class _InvocationLog:
    """What one invocation writes, in order: CloudWatch events, and the function's lines echoed."""

    def __init__(self, name: str, echo: LogFn | None) -> None:
        self._name = name
        self._echo = echo
        self.events: list[tuple[int, str]] = []
        self.lines: list[str] = []

    def _stamp(self) -> int:
        # PutLogEvents wants chronological order: a clock step backwards never reorders events.
        now = int(time.time() * 1000)
        return max(now, self.events[-1][0]) if self.events else now

    def add(self, msg: str) -> None:
        """Output of the function (or the runtime's own lines about it): echoed and logged."""
        self.events.append((self._stamp(), msg))
        for line in msg.rstrip("\n").split("\n"):
            self.lines.append(line)
            if self._echo is not None:
                self._echo(f"[{self._name}] {line}")

    def platform(self, msg: str) -> None:
        """START / END / REPORT / INIT_REPORT: in CloudWatch Logs only."""
        self.events.append((self._stamp(), msg))


class _Worker:
    """One warm execution environment (a child process running _worker.py)."""

    # Set by Executor._new_worker / the worker's messages (kept out of __init__, the spawn).
    spawned = 0.0  # time.monotonic() when the process started: the Init phase's clock
    init_ms: float | None = None  # the Init phase's duration, once reported
    cold = True  # no invocation has run here yet: its REPORT carries Init Duration
    peak_mb: int | None = None  # the last peak RSS the worker reported
    retire_at = math.inf  # time.monotonic() after which it takes no new invocation

    def __init__(
        self,
        spec: FunctionSpec,
        code_dir: Path,
        env: dict[str, str],
        runtime: _RuntimeWorld,
    ) -> None:
        self.fingerprint = spec.fingerprint
        self.log_stream = time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + uuid.uuid4().hex
        self._inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        argv = [str(code_dir), spec.handler, str(runtime.sdk_dir)]
        if runtime.interpreter.note:
            argv.append(runtime.interpreter.note)
        self.proc = subprocess.Popen(  # noqa: S603 (our own script, argv list)
            [*runtime.command, WORKER_SCRIPT, *argv],
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
                self._inbox.put({"t": "log", "msg": raw_text + "\n"})
            if sep:
                try:
                    self._inbox.put(json.loads(proto))
                except ValueError:
                    self._inbox.put({"t": "log", "msg": proto + "\n"})
        self._inbox.put({"t": "eof"})

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_init(self, deadline: float, on_event: EventFn) -> tuple[str, dict[str, Any] | None]:
        """The Init phase's outcome: ("init"|"init_error", message) or ("timeout"|"eof", None)."""
        while True:
            remaining = deadline - time.monotonic()
            try:
                msg = self._inbox.get(timeout=max(remaining, 0)) if remaining > 0 else None
            except queue.Empty:
                msg = None
            if msg is None:
                return "timeout", None
            kind = msg.get("t")
            if kind == "log":
                on_event(msg["msg"])
            elif kind in ("init", "init_error"):
                if kind == "init":
                    self.init_ms = float(msg.get("ms", 0.0))
                self.peak_mb = msg.get("mem_mb")
                return kind, msg
            elif kind == "eof":
                self._inbox.put(msg)  # whoever reads next learns it too
                return "eof", None

    def invoke(
        self, request: dict[str, Any], deadline: float, on_event: EventFn
    ) -> tuple[str, dict[str, Any] | None]:
        """Send one request: ("result"|"error", message) or ("timeout"|"eof", None)."""
        # Output printed between invocations belongs to no request: pass it on first.
        while True:
            try:
                msg = self._inbox.get_nowait()
            except queue.Empty:
                break
            if msg.get("t") == "log":
                on_event(msg["msg"])
            elif msg.get("t") == "eof":
                self._inbox.put(msg)
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
                on_event(msg["msg"])
            elif kind in ("result", "error"):
                self.peak_mb = msg.get("mem_mb", self.peak_mb)
                return kind, msg
            elif kind == "eof":
                self._inbox.put(msg)
                return "eof", None

    def peak_rss_mb(self) -> int | None:
        """Peak RSS of a worker that cannot tell it (timed out): Linux's VmHWM, else the last."""
        try:
            with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return -(-int(line.split()[1]) // 1024)
        except (OSError, ValueError, IndexError):
            pass
        return self.peak_mb

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


@dataclass(frozen=True)
class _RuntimeWorld:
    """What a runtime's workers start with: its interpreter, and the folder of its SDK."""

    interpreter: Interpreter
    sdk_dir: Path
    pycache: Path

    @property
    def command(self) -> list[str]:
        # -I: isolated (no script folder, user site or PYTHON* variables); -S: no site-packages
        # nor .pth files (pocctl's editable install would come back through one); -u: the log
        # lines reach pocctl as they are written. Bytecode goes to pocctl's own cache folder,
        # never into the function's code (read-only /var/task on AWS) or the virtualenv.
        # (The -X option exists from Python 3.8.)
        return [
            self.interpreter.executable,
            "-I",
            "-S",
            "-u",
            "-X",
            f"pycache_prefix={self.pycache}",
        ]


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pocctl"


def _pycache_dir() -> Path:
    """Where workers keep compiled bytecode: the user's cache folder, shared by every run.

    Compiling boto3 and botocore takes ~0.7 s per interpreter version; Python checks each
    cached file against its source's mtime and size, so sharing it is safe. (The runtime SDK
    folder is under the cache folder too: a stable path, so its bytecode is found again.)
    """
    return _cache_dir() / "pycache"


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
        logs_sink: Callable[[str, str, list[tuple[int, str]], str], None] | None = None,
        workers_per_function: int = 2,
        work_dir: str | None = None,
        find_interpreter: Callable[[str], Interpreter] = interpreters.find,
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
        self._kills = 0  # kill_workers() calls: a worker made across one is retired after use
        self._stopped = False
        self._extract_lock = threading.Lock()
        self._find_interpreter = find_interpreter
        self._runtimes: dict[str, _RuntimeWorld] = {}
        # The AWS_* credentials a new worker gets (default: the local admin's); a worker is
        # retired after worker_max_age seconds, before those credentials expire (iam_authz).
        self._credentials = credentials or local_admin_credentials
        self._worker_max_age = worker_max_age

    # -- public ---------------------------------------------------------------------------

    def invoke(
        self, spec: FunctionSpec, event: Any, *, request_id: str | None = None
    ) -> InvocationResult:
        """Run ``spec``'s handler with ``event``: a cold start's Init phase (up to 10 s), then
        the invocation (up to the function's timeout)."""
        rid = request_id or str(uuid.uuid4())
        log = _InvocationLog(spec.name, self._log)
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
            log.add(f"[ERROR] could not start the function: {exc}\n")
            return self._failed(rid, "Runtime.Unavailable", f"could not start the function: {exc}")

        keep = False
        try:
            worker, init_ms = self._init_phase(spec, worker, log)
            # Lambda's platform lines end with "\n" in CloudWatch Logs, as its function lines do
            # (FilterLogEvents output in pulumi/pulumi#857: "START RequestId: … Version:
            # $LATEST\n"; the Lambda guide's get-log-events examples alike).
            log.platform(f"START RequestId: {rid} Version: $LATEST\n")
            started = time.monotonic()
            kind, msg = self._invoke_phase(spec, worker, rid, event, started, log)
            # A failed init's worker has exited (awslambdaric exits after an init error).
            keep = kind in ("result", "error") and worker.init_ms is not None
            result = self._outcome(spec, worker, rid, kind, msg, log)
            result.duration_ms = (time.monotonic() - started) * 1000
            result.max_memory_mb = worker.peak_mb if keep else worker.peak_rss_mb()
        finally:
            self._release(spec, worker, keep)
        result.init_ms = init_ms
        self._end_log(spec, worker, result, log)
        return result

    def _init_phase(
        self, spec: FunctionSpec, worker: _Worker, log: _InvocationLog
    ) -> tuple[_Worker, float | None]:
        """A new worker's Init phase, limited to 10 s apart from the function's timeout.

        Returns the worker to invoke and the Init Duration to report (None when warm, or when the
        init failed and is retried within the invocation, on a fresh worker).
        """
        if not worker.cold:
            return worker, None
        kind, msg = worker.wait_init(worker.spawned + INIT_LIMIT_S, log.add)
        if kind == "init":
            return worker, worker.init_ms
        # "If the function crashes or times out during the Init phase, Lambda emits error
        # information in the INIT_REPORT log" (execution environment lifecycle, "Failures during
        # the Init phase"), then retries the init during the first invocation.
        log.platform(_init_report(kind, msg, (time.monotonic() - worker.spawned) * 1000, "init"))
        if self._stopped:  # no new environment while stopping: the invocation ends on this one
            return worker, None
        return self._respawn(spec, worker), None

    def _invoke_phase(
        self,
        spec: FunctionSpec,
        worker: _Worker,
        rid: str,
        event: Any,
        started: float,
        log: _InvocationLog,
    ) -> tuple[str, dict[str, Any] | None]:
        deadline = started + spec.timeout
        if worker.init_ms is None:  # the retried Init phase counts against the function timeout
            kind, msg = worker.wait_init(deadline, log.add)
            if kind != "init":
                log.platform(_init_report(kind, msg, (time.monotonic() - started) * 1000, "invoke"))
                return ("error", msg) if kind == "init_error" else (kind, None)
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
                "deadline_ms": int((time.time() + deadline - time.monotonic()) * 1000),
            },
        }
        worker.cold = False
        return worker.invoke(request, deadline, log.add)

    def _outcome(
        self,
        spec: FunctionSpec,
        worker: _Worker,
        rid: str,
        kind: str,
        msg: dict[str, Any] | None,
        log: _InvocationLog,
    ) -> InvocationResult:
        """What one invocation came to, as Lambda reports it (and logs it, on failure)."""
        if kind == "result" and msg is not None:
            return InvocationResult(rid, msg["payload"].encode("utf-8"))
        if kind == "error" and msg is not None:
            err = msg["error"]
            return InvocationResult(rid, json.dumps(err).encode("utf-8"), error=err)
        if kind == "timeout":
            text = f"Task timed out after {spec.timeout:.2f} seconds"
            log.add(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}Z {rid} {text}\n")
            return self._failed(rid, "Sandbox.Timedout", f"RequestId: {rid} Error: {text}")
        # The process ended (sys.exit, crash, killed by stop()).
        code = worker.proc.wait(timeout=5)
        text = f"Runtime exited with error: exit status {code}"
        log.add(f"RequestId: {rid} Error: {text}\n")
        return self._failed(rid, "Runtime.ExitError", f"RequestId: {rid} Error: {text}")

    def stop(self) -> None:
        """Kill every worker and remove the extracted code. Later invocations fail fast."""
        self._stopped = True
        self.kill_workers(busy_too=True)
        shutil.rmtree(self._root, ignore_errors=True)
        # The bytecode of the functions' own code, mirrored under the shared cache folder.
        mirrored = _pycache_dir() / self._root.relative_to(self._root.anchor)
        shutil.rmtree(mirrored, ignore_errors=True)

    def kill_workers(self, *, busy_too: bool = False) -> None:
        """Forget every warm worker (the next invocation cold-starts)."""
        with self._lock:
            self._kills += 1
            pools = list(self._pools.values())
            busy = list(self._busy)
        # A busy worker left running finishes its invocation, then never takes another: what
        # it holds (e.g. role credentials from before a reset) is as stale as the idle ones'.
        for w in busy:
            w.retire_at = -math.inf
        if not busy_too:
            busy = []
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

    def _pool(self, arn: str) -> _Pool:
        with self._lock:
            pool = self._pools.get(arn)
            if pool is None:
                pool = self._pools[arn] = _Pool(self._workers_per_function)
            return pool

    def _acquire(self, spec: FunctionSpec) -> _Worker:
        # By ARN, not name: functions of the same name in two regions (or accounts) are two
        # functions, each with its own environment (AWS_REGION...) and warm workers.
        pool = self._pool(spec.arn)
        stale: list[_Worker] = []
        with pool.cond:
            while True:
                now = time.monotonic()
                # Warm workers of an older deployment never run again: once an update is done
                # (LastUpdateStatus Successful), new invocations run the new code ("Lambda
                # function states", Function states during updates:
                # https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html). A worker
                # busy during the update finishes on the old code, then is retired here.
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
                worker = self._new_worker(spec)
            except Exception:
                with pool.cond:
                    pool.count -= 1
                    pool.cond.notify()
                raise
        with self._lock:
            self._busy.add(worker)
        return worker

    def _new_worker(self, spec: FunctionSpec) -> _Worker:
        spawned = time.monotonic()
        kills = self._kills
        worker = _Worker(spec, self._code_dir(spec), self._environment(spec), self._runtime(spec))
        worker.spawned = spawned
        worker.retire_at = spawned + self._worker_max_age
        if kills != self._kills:
            # kill_workers() ran while this one was made (from credentials a reset erased):
            # it serves the invocation it was made for, then takes no other.
            worker.retire_at = -math.inf
        return worker

    def _respawn(self, spec: FunctionSpec, failed: _Worker) -> _Worker:
        """A fresh execution environment in the failed one's pool slot (its init failed)."""
        failed.kill()
        fresh = self._new_worker(spec)
        with self._lock:
            self._busy.discard(failed)
            self._busy.add(fresh)
        return fresh

    def _release(self, spec: FunctionSpec, worker: _Worker, keep: bool) -> None:
        pool = self._pool(spec.arn)
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

    def _runtime(self, spec: FunctionSpec) -> _RuntimeWorld:
        """The interpreter and SDK folder of ``spec``'s runtime (found once per runtime)."""
        with self._extract_lock:
            world = self._runtimes.get(spec.runtime)
            if world is None:
                sdk = interpreters.build_runtime_sdk(_cache_dir() / "runtime-sdk")
                world = self._runtimes[spec.runtime] = _RuntimeWorld(
                    self._find_interpreter(spec.runtime), sdk, _pycache_dir()
                )
            return world

    def _environment(self, spec: FunctionSpec) -> dict[str, str]:
        """The variables the Lambda Python runtime sets, and the function's own.

        AWS's list: "Defined runtime environment variables",
        https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html
        #configuration-envvars-runtime. Nothing of the host's environment leaks in. The
        runtime's paths stand for AWS's: the interpreter's bin folder for /var/lang/bin, the
        runtime SDK folder for /var/runtime, the extracted zip for /var/task.
        """
        world = self._runtime(spec)
        task = str(self._code_dir(spec))
        runtime_dir = str(world.sdk_dir)
        lang_dir = Path(world.interpreter.executable).parent
        env = _unreserved_environment(lang_dir, runtime_dir, task)
        if "SYSTEMROOT" in os.environ:  # Windows' Python cannot start without it
            env["SYSTEMROOT"] = os.environ["SYSTEMROOT"]
        env.update({k: str(v) for k, v in spec.env.items()})
        # Reserved: the runtime's own win over the function's, as on AWS. Not set: _X_AMZN_TRACE_ID
        # (only with active tracing, which pocctl never enables) and AWS_LAMBDA_RUNTIME_API
        # (there is no Runtime API here; the worker speaks to pocctl over a pipe).
        env.update(
            {
                "_HANDLER": spec.handler,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
                "AWS_REGION": spec.region,
                "AWS_DEFAULT_REGION": spec.region,
                "LAMBDA_TASK_ROOT": task,
                "LAMBDA_RUNTIME_DIR": runtime_dir,
                "TZ": ":UTC",
                # The execution role's session (AWS's own variables for the role's credentials).
                **self._credentials(spec),
                # Not AWS's: what makes the function's SDK calls reach the embedded AWS, and keeps
                # the developer's own profiles and config files away from it.
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            }
        )
        return env

    def _failed(self, rid: str, error_type: str, message: str) -> InvocationResult:
        err = {"errorMessage": message, "errorType": error_type}
        return InvocationResult(rid, json.dumps(err).encode("utf-8"), error=err)

    def _end_log(
        self, spec: FunctionSpec, worker: _Worker, result: InvocationResult, log: _InvocationLog
    ) -> None:
        """END and REPORT, then the whole invocation's events to CloudWatch Logs."""
        log.platform(f"END RequestId: {result.request_id}\n")
        log.platform(report_line(spec, result))
        result.log_lines = log.lines
        result.log_events = log.events
        if self._logs_sink is not None:
            self._logs_sink(spec.log_group, worker.log_stream, list(log.events), spec.region)


def _unreserved_environment(lang_dir: Path, runtime_dir: str, task: str) -> dict[str, str]:
    """The runtime's variables that a function's configuration may replace (AWS's values, with
    this machine's paths for /var/lang, /var/runtime and /var/task)."""
    return {
        "LANG": "en_US.UTF-8",
        "PATH": os.pathsep.join([str(lang_dir), "/usr/local/bin", "/usr/bin/", "/bin", "/opt/bin"]),
        "LD_LIBRARY_PATH": os.pathsep.join(
            [
                str(lang_dir.parent / "lib"),
                "/lib64",
                "/usr/lib64",
                runtime_dir,
                f"{runtime_dir}/lib",
                task,
                f"{task}/lib",
                "/opt/lib",
            ]
        ),
        "PYTHONPATH": runtime_dir,
    }


def report_line(spec: FunctionSpec, result: InvocationResult) -> str:
    """The REPORT event as Lambda writes it (tab-separated fields, a trailing tab).

    Fields and their order from the Lambda developer guide's example ("Log and monitor Python
    Lambda functions", https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html):
    Duration, Billed Duration, Memory Size, Max Memory Used, and Init Duration on a cold start
    only. There, Billed Duration (147 ms) is Duration (15.74) plus Init Duration (130.49) rounded
    up: the Init phase of on-demand functions is billed.
    """
    billed = result.duration_ms + (result.init_ms or 0.0)
    fields = [
        f"REPORT RequestId: {result.request_id}",
        f"Duration: {result.duration_ms:.2f} ms",
        f"Billed Duration: {max(1, math.ceil(billed))} ms",
        f"Memory Size: {spec.memory} MB",
    ]
    if result.max_memory_mb is not None:
        fields.append(f"Max Memory Used: {result.max_memory_mb} MB")
    if result.init_ms is not None:
        fields.append(f"Init Duration: {result.init_ms:.2f} ms")
    return "\t".join(fields) + "\t\n"


def _init_report(kind: str, msg: dict[str, Any] | None, ms: float, phase: str) -> str:
    """INIT_REPORT for a failed Init phase (lifecycle guide, "Failures during the Init phase";
    Phase is "init" or "invoke" as in the Telemetry API's platform.initReport)."""
    if kind == "timeout":
        return f"INIT_REPORT Init Duration: {ms:.2f} ms\tPhase: {phase}\tStatus: timeout\n"
    error_type = (msg or {}).get("error", {}).get("errorType") or "Runtime.ExitError"
    return (
        f"INIT_REPORT Init Duration: {ms:.2f} ms\tPhase: {phase}\tStatus: error"
        f"\tError Type: {error_type}\n"
    )
