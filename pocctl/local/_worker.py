"""A warm Lambda execution environment: runs one function's handler for many invocations.

Started by pocctl.local.executor as ``python _worker.py CODE_DIR HANDLER``, with the function's
environment. Standard library only, and it never imports pocctl: the handler's world is the
extracted zip plus what a Lambda Python runtime offers (the stdlib and boto3).

Protocol: one JSON request per line on stdin; replies on the original stdout, one JSON object
per line, each prefixed with RS (\\x1e) so they can be told apart from raw fd-level output:
  {"t": "log", "line": "..."}                      something the handler printed or logged
  {"t": "result", "id": ..., "payload": "<json>"}  the handler returned
  {"t": "error", "id": ..., "error": {...}}        the handler raised (AWS error payload)
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


class _Channel:
    def __init__(self, fd: int) -> None:
        self._out = os.fdopen(fd, "wb", buffering=0)
        self._lock = threading.Lock()

    def send(self, msg: dict) -> None:
        data = RS + json.dumps(msg, separators=(",", ":")).encode("utf-8") + b"\n"
        with self._lock:
            self._out.write(data)


class _LineCapture:
    """sys.stdout / sys.stderr replacement: each complete line becomes a log message."""

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
        for line in lines:
            self._channel.send({"t": "log", "line": line})
        return len(s)

    def flush(self) -> None:
        with self._lock:
            rest, self._buf = self._buf, ""
        if rest:
            self._channel.send({"t": "log", "line": rest})

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        raise OSError("captured stream has no file descriptor")


class LambdaContext:
    """The context object of the Lambda Python runtime."""

    def __init__(self, ctx: dict) -> None:
        self.function_name = ctx["function_name"]
        self.function_version = ctx.get("function_version", "$LATEST")
        self.invoked_function_arn = ctx["invoked_function_arn"]
        self.memory_limit_in_mb = int(ctx["memory_limit_in_mb"])
        self.aws_request_id = ctx["aws_request_id"]
        self.log_group_name = ctx["log_group_name"]
        self.log_stream_name = ctx["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = int(ctx["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _RequestIdFilter.request_id
        return True


class _BlockPocctl:
    """Meta-path finder: the host's pocctl package is not part of a Lambda runtime."""

    def __init__(self, code_dir: str) -> None:
        self._in_zip = os.path.exists(os.path.join(code_dir, "pocctl"))

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if not self._in_zip and (name == "pocctl" or name.startswith("pocctl.")):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return None


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
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
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


def _log_as_the_runtime_does() -> None:
    """The Lambda Python runtime puts one handler on the root logger (level WARNING)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.formatter.converter = time.gmtime  # type: ignore[union-attr]
    logging.getLogger().addHandler(handler)


def main() -> None:
    code_dir, handler_spec = sys.argv[1], sys.argv[2]
    # sys.path[0] is this file's folder (pocctl/local): replace it by the function's code.
    sys.path[0] = code_dir
    sys.meta_path.insert(0, _BlockPocctl(code_dir))
    os.chdir(code_dir)

    channel = _Channel(os.dup(1))
    requests = os.fdopen(os.dup(0), "rb")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # raw fd-level writes to fd 1 now reach the parent as plain (non-RS) lines
    sys.stdin = open(os.devnull)  # noqa: SIM115 (lives as long as the process)
    sys.stdout = _LineCapture(channel)  # type: ignore[assignment]
    sys.stderr = sys.stdout

    _log_as_the_runtime_does()

    func = None
    for raw in requests:
        req = json.loads(raw)
        rid = req["context"]["aws_request_id"]
        _RequestIdFilter.request_id = rid
        try:
            if func is None:  # init on first use; AWS retries a failed init on the next invoke
                func = _load_handler(handler_spec)
            result = func(req["event"], LambdaContext(req["context"]))
            try:
                payload = json.dumps(result)
            except (TypeError, ValueError) as exc:
                raise _RuntimeError(
                    "Runtime.MarshalError", f"Unable to marshal response: {exc}"
                ) from exc
            sys.stdout.flush()
            channel.send({"t": "result", "id": rid, "payload": payload})
        except _RuntimeError as exc:
            err = {
                "errorMessage": str(exc),
                "errorType": exc.error_type,
                "requestId": rid,
                "stackTrace": [],
            }
            print(f"[ERROR] {exc.error_type}: {exc}")
            sys.stdout.flush()
            channel.send({"t": "error", "id": rid, "error": err})
        except Exception as exc:
            err = _error(exc, rid)
            print(f"[ERROR] {err['errorType']}: {err['errorMessage']}")
            print("Traceback (most recent call last):\n" + "".join(err["stackTrace"]).rstrip())
            sys.stdout.flush()
            channel.send({"t": "error", "id": rid, "error": err})


if __name__ == "__main__":
    main()
