"""A warm Lambda execution environment: runs one function's handler for many invocations.

Started by pocctl.local.executor as ``python -I _worker.py CODE_DIR HANDLER SDK_DIR [NOTE]``,
with the function's environment, on an interpreter of the function's runtime (Python 3.10 to
3.13: standard library only, and it never imports pocctl). ``-I`` (isolated mode) leaves out the
script's folder, the user's site-packages and every PYTHON* variable, and no site-packages is
on sys.path: the handler's world is exactly what a Lambda Python runtime offers, the extracted
zip first (LAMBDA_TASK_ROOT, /var/task on AWS), then the runtime's SDK (SDK_DIR: boto3, botocore
and their dependencies; LAMBDA_RUNTIME_DIR), then the standard library. NOTE, when given, is
printed once at start (the interpreter is not the runtime's version).

Protocol: one JSON request per line on stdin; replies on the original stdout, one JSON object
per line, each prefixed with RS (\\x1e) so they can be told apart from raw fd-level output:
  {"t": "log", "msg": "..."}      one CloudWatch Logs event, exactly as Lambda would write it
  {"t": "init", "ms": 12.3, "mem_mb": 20}            the Init phase ended (handler imported)
  {"t": "init_error", "ms": ..., "error": {...}}     the Init phase failed; the worker exits
  {"t": "result", "id": ..., "payload": "<json>", "mem_mb": 21}  the handler returned
  {"t": "error", "id": ..., "error": {...}, "mem_mb": 21}        the handler raised
``mem_mb`` is the process's peak RSS so far (REPORT's "Max Memory Used").

Log events follow the Python runtime (aws-lambda-python-runtime-interface-client, awslambdaric/
bootstrap.py): print() goes to the runtime's plain stdout, which Lambda reads line by line
("if your function outputs logs using Python print statements, Lambda can only send log
outputs to CloudWatch Logs in plain text format", Lambda guide, "Log and monitor Python Lambda
functions"), while the root logger's handler and ``log_error`` write whole frames to the
telemetry log fd. Here: stdout/stderr are read line by line, one event per line *including*
its "\\n" (so a bare ``print()`` is the one-character event "\\n", never an empty message,
which PutLogEvents rejects); a logging record is one event whatever its line count; an
unhandled exception is one event (``log_error``).
"""

import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback

RS = b"\x1e"

try:
    import resource
except ImportError:  # not on Windows: REPORT then has no Max Memory Used figure
    resource = None  # type: ignore[assignment]

# awslambdaric's bootstrap.py: an error event's lines are joined with "\n" in one frame and
# their leading spaces become NO-BREAK SPACE (ERROR_LOG_IDENT, replace_line_indentation).
_ERROR_LOG_IDENT = "\u00a0"
# awslambdaric's lambda_literals.py: logged (at WARNING, through the root logger) when init fails.
_INIT_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, "
    "or can be applied automatically. To determine if the runtime has been updated, check the "
    "runtime version in the INIT_START log entry. If this error correlates with a change in the "
    "runtime version, you may be able to mitigate this error by temporarily rolling back to the "
    "previous runtime version. For more information, see "
    "https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html"
)


def _peak_rss_mb() -> "int | None":
    """Peak resident set size of this process in MB: REPORT's "Max Memory Used".

    Linux's VmHWM (/proc/self/status) first: ru_maxrss survives fork+exec, so in a worker
    started by a big parent it reports the parent's peak. ru_maxrss elsewhere (KB, bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return -(-int(line.split()[1]) // 1024)
    except (OSError, ValueError, IndexError):
        pass
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    per_mb = 1024 * 1024 if sys.platform == "darwin" else 1024
    return -(-peak // per_mb)


class _Channel:
    def __init__(self, fd: int) -> None:
        self._out = os.fdopen(fd, "wb", buffering=0)
        self._lock = threading.Lock()

    def send(self, msg: dict) -> None:
        data = RS + json.dumps(msg, separators=(",", ":")).encode("utf-8") + b"\n"
        with self._lock:
            self._out.write(data)


class _LineCapture:
    """sys.stdout / sys.stderr replacement: each complete line, with its "\\n", becomes an event."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._buf = ""
        self._lock = threading.Lock()

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            s = str(s)
        with self._lock:
            self._buf += s
            *lines, self._buf = self._buf.split("\n")
            # Sent under the lock: two threads printing never interleave their events.
            for line in lines:
                self._channel.send({"t": "log", "msg": line + "\n"})
        return len(s)

    def flush(self) -> None:
        """End of an invocation: a line printed without its newline is an event of its own."""
        with self._lock:
            rest, self._buf = self._buf, ""
            if rest:
                self._channel.send({"t": "log", "msg": rest})

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        raise OSError("captured stream has no file descriptor")


class LambdaContext:
    """The context object as the Lambda Python runtime builds it.

    As in AWS's runtime interface client (aws-lambda-python-runtime-interface-client,
    awslambdaric/lambda_context.py), which the python3.x runtimes run: the function's fields
    come from the runtime's environment variables, so memory_limit_in_mb is a string;
    identity is a CognitoIdentity whose fields are None when the caller sent none; client_context
    is None. Documented: "Using the Lambda context object to retrieve Python function
    information", https://docs.aws.amazon.com/lambda/latest/dg/python-context.html.
    """

    def __init__(self, ctx: dict) -> None:
        self.aws_request_id = ctx["aws_request_id"]
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = ctx["invoked_function_arn"]
        self.tenant_id = None
        self.client_context = None
        self.identity = CognitoIdentity()
        self._epoch_deadline_time_in_ms = int(ctx["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._epoch_deadline_time_in_ms - int(time.time() * 1000))

    def log(self, msg: object) -> None:
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(["
            f"aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity},"
            f"tenant_id={self.tenant_id}"
            "])"
        )


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __init__(self) -> None:
        self.cognito_identity_id = None
        self.cognito_identity_pool_id = None

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(["
            f"cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}"
            "])"
        )


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _RequestIdFilter.request_id
        return True


def _error(exc: BaseException, request_id: str, skip_frames: int = 1) -> dict:
    frames = traceback.extract_tb(exc.__traceback__)[skip_frames:]
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(frames),
    }


def _load_handler(spec: str):  # type: ignore[no-untyped-def]
    module_name, _, func_name = spec.rpartition(".")
    if not module_name or not func_name:
        raise _RuntimeError(
            "Runtime.MalformedHandlerName",
            f"Bad handler '{spec}': not enough values to unpack (expected 2, got 1)",
        )
    # The runtime imports "a/b.handler" as a.b but names the module as written in its errors
    # (aws-lambda-python-runtime-interface-client, bootstrap.py _get_handler).
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise _RuntimeError(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {module_name} as a handler module",
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        # AWS: "Unable to import module 'app': No module named 'requests'" (errorType
        # Runtime.ImportModuleError), for the handler's module or anything it imports.
        raise _RuntimeError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from exc
    except SyntaxError as exc:
        raise _RuntimeError(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}"
        ) from exc
    func = getattr(module, func_name, None)
    if func is None:
        raise _RuntimeError(
            "Runtime.HandlerNotFound", f"Handler '{func_name}' missing on module '{module_name}'"
        )
    return func


class _RuntimeError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class _LambdaLoggerHandler(logging.Handler):
    """awslambdaric's LambdaLoggerHandler: one record is one log event, however many lines."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
        except Exception:
            self.handleError(record)
            return
        sys.stdout.flush()  # what was printed before the record stays before it
        self._channel.send({"t": "log", "msg": msg})


def _log_as_the_runtime_does(channel: _Channel) -> None:
    """The Lambda Python runtime puts one handler on the root logger (level WARNING).

    Format and UTC converter as awslambdaric's bootstrap.py ``_setup_logging`` (text format).
    """
    logging.Formatter.converter = time.gmtime
    handler = _LambdaLoggerHandler(channel)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    logging.getLogger().addHandler(handler)


def _runtime_import_world(code_dir: str, sdk_dir: str) -> None:
    """sys.path as the Lambda runtime has it: the zip, the runtime's SDK, the standard library.

    Run with -I and no site module, sys.path holds only the standard library here; the zip
    comes first, as /var/task does on AWS, so a zip's own boto3 wins over the runtime's
    ("Building Lambda functions with Python", Runtime-included SDK versions:
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html).
    """
    # PYTHONPATH (AWS: $LAMBDA_RUNTIME_DIR unless the function sets its own) is read here, as
    # -I made the interpreter ignore it.
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    head = [code_dir, *extra, sdk_dir]
    head = [p for i, p in enumerate(head) if p not in head[:i]]
    stdlib = [p for p in sys.path if p and p not in head]
    sys.path[:] = [*head, *stdlib]
    importlib.invalidate_caches()
    # -S skipped site (its .pth files would bring pocctl's virtualenv back); the builtins it
    # adds (exit, quit, help...) are part of every Python runtime: add them without its paths.
    import site

    for name in ("setquit", "setcopyright", "sethelper"):
        getattr(site, name, lambda: None)()


def _log_error(channel: _Channel, err: dict) -> None:
    """One event for an unhandled error, as awslambdaric's bootstrap.py ``log_error`` (text).

    "[ERROR] Type: message", then "Traceback (most recent call last):" and the stack, lines
    joined by "\\n", each line's leading spaces turned into NO-BREAK SPACEs.
    """
    description = "[ERROR]"
    if err.get("errorType"):
        description += " " + err["errorType"]
    if err.get("errorMessage"):
        description += (":" if err.get("errorType") else "") + " " + err["errorMessage"]
    lines = [description]
    if err.get("stackTrace") is not None:
        lines.append("Traceback (most recent call last):")
        for element in err["stackTrace"]:
            for line in element.splitlines() or [""]:
                stripped = line.lstrip(" ")
                lines.append(_ERROR_LOG_IDENT * (len(line) - len(stripped)) + stripped)
    sys.stdout.flush()
    channel.send({"t": "log", "msg": "\n".join(lines)})


def _fault(exc: BaseException, request_id: str) -> dict:
    """The AWS error object of a failed init or invoke (awslambdaric's make_error)."""
    if isinstance(exc, _RuntimeError):
        return {
            "errorMessage": str(exc),
            "errorType": exc.error_type,
            "requestId": request_id,
            "stackTrace": [],
        }
    return _error(exc, request_id)


def _init(handler_spec: str, channel: _Channel):  # type: ignore[no-untyped-def]
    """The Init phase: import the handler's module, report how long it took (or why it failed).

    On failure awslambdaric logs LAMBDA_WARNING and the error, posts the init error and exits
    (bootstrap.py ``run``); Lambda then retries the init in a fresh environment during the first
    invoke ("Understanding the Lambda execution environment lifecycle", Init phase).
    """
    started = time.monotonic()
    try:
        func = _load_handler(handler_spec)
    except Exception as exc:
        err = _fault(exc, "")
        logging.warning(_INIT_WARNING)
        _log_error(channel, err)
        ms = (time.monotonic() - started) * 1000
        channel.send({"t": "init_error", "ms": ms, "error": err, "mem_mb": _peak_rss_mb()})
        return None
    sys.stdout.flush()
    ms = (time.monotonic() - started) * 1000
    channel.send({"t": "init", "ms": ms, "mem_mb": _peak_rss_mb()})
    return func


def _invoke(func, req: dict, channel: _Channel) -> None:  # type: ignore[no-untyped-def]
    rid = req["context"]["aws_request_id"]
    _RequestIdFilter.request_id = rid
    try:
        result = func(req["event"], LambdaContext(req["context"]))
        try:
            payload = json.dumps(result)
        except (TypeError, ValueError) as exc:
            raise _RuntimeError(
                "Runtime.MarshalError", f"Unable to marshal response: {exc}"
            ) from exc
    except Exception as exc:
        err = _fault(exc, rid)
        _log_error(channel, err)
        channel.send({"t": "error", "id": rid, "error": err, "mem_mb": _peak_rss_mb()})
        return
    sys.stdout.flush()
    channel.send({"t": "result", "id": rid, "payload": payload, "mem_mb": _peak_rss_mb()})


def main() -> None:
    code_dir, handler_spec, sdk_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    note = sys.argv[4] if len(sys.argv) > 4 else ""
    _runtime_import_world(code_dir, sdk_dir)
    os.chdir(code_dir)

    channel = _Channel(os.dup(1))
    requests = os.fdopen(os.dup(0), "rb")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # raw fd-level writes to fd 1 now reach the parent as plain (non-RS) lines
    sys.stdin = open(os.devnull)  # noqa: SIM115 (lives as long as the process)
    sys.stdout = _LineCapture(channel)  # type: ignore[assignment]
    sys.stderr = sys.stdout

    _log_as_the_runtime_does(channel)
    if note:
        print(note)

    func = _init(handler_spec, channel)
    if func is None:
        sys.exit(1)  # as awslambdaric after post_init_error: the environment is not reused
    for raw in requests:
        _invoke(func, json.loads(raw), channel)


if __name__ == "__main__":
    main()
