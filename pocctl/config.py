"""config.yaml → frozen dataclasses, validated before any AWS call.

Every error names the file and the key path: ``config.yaml: queue.visibility_timeout: ...``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import reprlib
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Lambda runtimes a function can be created with (python only: the handlers are Python).
SUPPORTED_RUNTIMES = ("python3.10", "python3.11", "python3.12", "python3.13", "python3.14")
# Still accepted by AWS for now, but deprecated: warn.
DEPRECATED_RUNTIMES = {"python3.9": "deprecated since 2025-12-15; creates are blocked from 2027-02"}
# Creates are already blocked by AWS.
BLOCKED_RUNTIMES = ("python2.7", "python3.6", "python3.7", "python3.8")

# Which handler module each function runs by default: without lambdaN.code, handlers_dir must
# hold <module>.py, and the Handler is <module>.handler (pocctl's names before `code` existed).
HANDLER_MODULES = {"lambda1": "store_order", "lambda2": "notify_order"}
DEFAULT_FUNCTION = "handler"
ARCHITECTURES = ("x86_64", "arm64")
# Lambda's Handler: at most 128 characters (Lambda API Reference, CreateFunction). pocctl wants
# module.function with Python identifiers, the module's parts joined by "." or "/" (the Python
# runtime imports "a/b.handler" as a.b) so it can find the file and check the function.
MAX_HANDLER = 128
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_HANDLER = re.compile(rf"({_IDENT}(?:[./]{_IDENT})*)\.({_IDENT})")

# Bounds on config.yaml. A complete config is about 3 KB, 90 YAML values and 4 levels deep, and
# no setting is longer than a path; each bound is far above that and far below what costs time
# or memory, so a hostile or mistaken file is refused before it is built.
MAX_BYTES = 1024 * 1024
MAX_VALUES = 10_000  # YAML nodes with every alias expanded (a "billion laughs" is 10^9)
MAX_DEPTH = 16  # YAML's composer and constructor recurse: bound them far below Python's limit
MAX_SCALAR = 4096  # PATH_MAX: the longest setting (handlers_dir) is a path
SHOWN = 80  # the most characters of a value an error message prints


def clip(text: str, limit: int = SHOWN) -> str:
    """``text`` cut to ``limit`` characters, ending in … when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = SHOWN
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 3, 4, 4


def show(v: Any) -> str:
    """repr() of a config value for an error message: at most 80 characters, and bounded work
    whatever the value holds (reprlib looks at only the first few items of each level)."""
    if isinstance(v, str):
        return clip(repr(v[: SHOWN + 1]))
    return clip(_REPR.repr(v))


class ConfigError(Exception):
    """A problem with config.yaml; ``str()`` is the one line shown to the user."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(f"{where}{problem}")


# --- field checks: each returns an error message, or None when the value is fine -------------

Check = Callable[[Any], "str | None"]


def _name(pattern: str, lo: int, hi: int, what: str) -> Check:
    rx = re.compile(pattern)

    def check(v: Any) -> str | None:
        if not isinstance(v, str):
            return f"must be a string, not {_type(v)}"
        if not v:
            return "must not be empty"
        if not lo <= len(v) <= hi:
            return f"must be {lo} to {hi} characters long (is {len(v)})"
        if not rx.fullmatch(v):
            return f"{show(v)} is not a valid {what}"
        return None

    return check


def _int(lo: int, hi: int) -> Check:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return f"must be a whole number, not {_type(v)}"
        if not lo <= v <= hi:
            return f"must be between {lo} and {hi} (is {show(v)})"
        return None

    return check


def _choice(*options: str) -> Check:
    def check(v: Any) -> str | None:
        if v not in options:
            return f"must be one of {', '.join(options)} (is {show(v)})"
        return None

    return check


def _runtime(v: Any) -> str | None:
    if not isinstance(v, str):
        return f"must be a string, not {_type(v)}"
    if v in BLOCKED_RUNTIMES:
        return f"{v} is past end of support: AWS no longer creates functions with it"
    if v not in SUPPORTED_RUNTIMES and v not in DEPRECATED_RUNTIMES:
        return f"unknown runtime {show(v)}; use one of {', '.join(SUPPORTED_RUNTIMES)}"
    return None


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


def _email(v: Any) -> str | None:
    if v is None or v == "":
        return None
    if not isinstance(v, str) or not _EMAIL.fullmatch(v):
        return f"{show(v)} is not an email address"
    return None


_REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d")


def _region(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not _REGION.fullmatch(v):
        return f"{show(v)} is not an AWS region name (like us-east-1)"
    return None


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"must be true or false, not {_type(v)}"


def _path(v: Any) -> str | None:
    if not isinstance(v, str) or not v:
        return "must be a non-empty path"
    if "\x00" in v:
        return "must not contain a NUL character"
    return None


def _optional_path(v: Any) -> str | None:
    return None if v is None else _path(v)


def _handler(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str):
        return f"must be a string like lambda_function.lambda_handler, not {_type(v)}"
    if len(v) > MAX_HANDLER:
        return f"must be at most {MAX_HANDLER} characters long (is {len(v)})"
    if not _HANDLER.fullmatch(v):
        return (
            f"{show(v)} is not module.function (like lambda_function.lambda_handler: the "
            "module's file name without .py, a dot, the function's name)"
        )
    return None


# Naming rules, from each service's API reference.
IAM_POLICY = _name(r"[\w+=,.@-]+", 1, 128, "IAM policy name (letters, digits, +=,.@_-)")
IAM_ROLE = _name(r"[\w+=,.@-]+", 1, 64, "IAM role name (letters, digits, +=,.@_-)")
TABLE = _name(r"[A-Za-z0-9_.-]+", 3, 255, "DynamoDB table name (letters, digits, _.-)")
ATTRIBUTE = _name(r".+", 1, 255, "attribute name")
QUEUE = _name(r"[A-Za-z0-9_-]+", 1, 80, "SQS queue name (letters, digits, _-)")
FUNCTION = _name(r"[A-Za-z0-9_-]+", 1, 64, "Lambda function name (letters, digits, _-)")
TOPIC = _name(r"[A-Za-z0-9_-]+", 1, 256, "SNS topic name (letters, digits, _-)")
API_NAME = _name(r"[^\x00-\x1f]+", 1, 128, "REST API name")
STAGE = _name(r"[A-Za-z0-9_]+", 1, 128, "stage name (letters, digits, _)")


def _f(default: Any, check: Check, doc: str) -> Any:
    return field(default=default, metadata={"check": check, "doc": doc})


# --- the schema -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policies:
    write_dynamodb: str = _f("Lambda-Write-DynamoDB", IAM_POLICY, "Lambda 1 writes orders")
    read_sqs: str = _f("Lambda-Read-SQS", IAM_POLICY, "Lambda 1 consumes the queue")
    sns_publish: str = _f("Lambda-SNS-Publish", IAM_POLICY, "Lambda 2 publishes")
    streams_read: str = _f("Lambda-DynamoDBStreams-Read", IAM_POLICY, "Lambda 2 reads the stream")


@dataclass(frozen=True)
class Roles:
    lambda1: str = _f("Lambda-SQS-DynamoDB", IAM_ROLE, "POC-Lambda-1's execution role")
    lambda2: str = _f("Lambda-DynamoDBStreams-SNS", IAM_ROLE, "POC-Lambda-2's execution role")
    apigateway: str = _f("APIGateway-SQS", IAM_ROLE, "the role API Gateway sends to SQS as")


@dataclass(frozen=True)
class Iam:
    policies: Policies = field(default_factory=Policies)
    roles: Roles = field(default_factory=Roles)


@dataclass(frozen=True)
class Table:
    name: str = _f("orders", TABLE, "table name")
    partition_key: str = _f("orderID", ATTRIBUTE, "partition key (type S)")
    stream_view_type: str = _f(
        "NEW_IMAGE",
        _choice("NEW_IMAGE", "NEW_AND_OLD_IMAGES"),
        "what a stream record carries; Lambda 2 needs the new image",
    )


@dataclass(frozen=True)
class Queue:
    name: str = _f("POC-Queue", QUEUE, "queue name")
    visibility_timeout: int = _f(60, _int(0, 43200), "seconds; at least 6 x lambda1.timeout")
    message_retention_period: int = _f(345600, _int(60, 1209600), "seconds (4 days)")
    dead_letter_queue: str = _f("POC-Queue-DLQ", QUEUE, "where unprocessable orders go")
    max_receive_count: int = _f(3, _int(1, 1000), "deliveries before an order goes to the DLQ")


@dataclass(frozen=True)
class _Function:
    """What both functions have; each names its own function and batch."""

    name: str = _f("POC-Lambda-1", FUNCTION, "function name")
    runtime: str = _f("python3.13", _runtime, "Lambda runtime")
    timeout: int = _f(10, _int(1, 900), "seconds")
    memory_size: int = _f(128, _int(128, 10240), "MB")
    code: str | None = _f(
        None,
        _optional_path,
        "the function's code, a .py file or a folder, relative to this file; null: "
        "handlers_dir's module",
    )
    handler: str | None = _f(
        None,
        _handler,
        "module.function Lambda calls; null: <module>.handler",
    )
    architecture: str = _f(
        "x86_64", _choice(*ARCHITECTURES), "instruction set; dependencies are built for it"
    )


@dataclass(frozen=True)
class Lambda1(_Function):
    batch_size: int = _f(10, _int(1, 10), "messages per invocation")


@dataclass(frozen=True)
class Topic:
    name: str = _f("POC-Topic", TOPIC, "topic name")
    notification_email: str | None = _f(None, _email, "email subscribed to the topic, or null")


@dataclass(frozen=True)
class Lambda2(_Function):
    name: str = _f("POC-Lambda-2", FUNCTION, "function name")
    batch_size: int = _f(100, _int(1, 10000), "stream records per invocation")
    starting_position: str = _f(
        "TRIM_HORIZON", _choice("TRIM_HORIZON", "LATEST"), "where a new mapping starts reading"
    )
    maximum_retry_attempts: int = _f(3, _int(0, 10000), "retries of a failing batch")
    on_failure_queue: str = _f(
        "POC-Lambda-2-Failures", QUEUE, "where batches that still fail are recorded"
    )


@dataclass(frozen=True)
class Api:
    name: str = _f("POC-API", API_NAME, "REST API name")
    stage: str = _f("prod", STAGE, "stage name")
    throttling_rate_limit: int = _f(50, _int(1, 10000), "steady requests per second")
    throttling_burst_limit: int = _f(100, _int(1, 5000), "burst requests")
    cloudwatch_logs_policy: bool = _f(
        False,
        _bool,
        "attach AWS's AmazonAPIGatewayPushToCloudWatchLogs to the API role, as the lab does",
    )


FUNCTIONS = ("lambda1", "lambda2")
# Folders of tools, not code: never a reason to warn that handlers_dir holds more.
_TOOL_DIRS = frozenset({"__pycache__", "node_modules"})


@dataclass(frozen=True)
class FunctionCode:
    """Where one function's code comes from and what Lambda runs: keys ``<key>.code``,
    ``<key>.handler``, ``<key>.architecture`` resolved (``Config.function_code``)."""

    key: str  # "lambda1" or "lambda2": the config section, for messages
    path: Path  # what is zipped: a .py file (alone at the zip's root) or a folder's contents
    handler: str  # Lambda's Handler setting: module.function
    architecture: str  # x86_64 or arm64
    runtime: str  # python3.X
    configured: bool  # whether <key>.code is set (else handlers_dir/<module>.py)

    @property
    def is_folder(self) -> bool:
        return _is(self.path, stat.S_ISDIR)

    @property
    def module(self) -> str:
        """The handler's module as Lambda imports it ("a/b" → "a.b")."""
        return self.handler.rsplit(".", 1)[0].replace("/", ".")

    @property
    def function(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    @property
    def module_file(self) -> Path | None:
        """The file that defines the handler, or None when the code has no such module."""
        parts = self.module.split(".")
        if not self.is_folder:
            return self.path if parts == [self.path.stem] else None
        base = self.path.joinpath(*parts)
        for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
            if _is(candidate, stat.S_ISREG):
                return candidate
        return None

    def source_files(self) -> list[Path]:
        """The files zipped from the code (the .py file, or the folder's files without
        __pycache__, .git and the like), sorted; dependencies are not among them."""
        from pocctl import packaging

        return packaging.source_files(self)

    @property
    def requirements(self) -> Path | None:
        """requirements.txt of a code folder: its dependencies go into the zip."""
        if not self.is_folder:
            return None
        req = self.path / "requirements.txt"
        return req if _is(req, stat.S_ISREG) else None


@dataclass(frozen=True)
class Config:
    region: str | None = _f(None, _region, "AWS region; else --region, the profile, AWS_REGION")
    handlers_dir: str = _f("handlers", _path, "the Lambda handlers, relative to this file")
    iam: Iam = field(default_factory=Iam)
    table: Table = field(default_factory=Table)
    queue: Queue = field(default_factory=Queue)
    lambda1: Lambda1 = field(default_factory=Lambda1)
    topic: Topic = field(default_factory=Topic)
    lambda2: Lambda2 = field(default_factory=Lambda2)
    api: Api = field(default_factory=Api)
    # Where the file was read from; handlers_dir is resolved against it.
    base_dir: Path = field(default_factory=Path.cwd, compare=False, repr=False)

    @property
    def handlers_path(self) -> Path:
        p = Path(self.handlers_dir)
        path = p if p.is_absolute() else self.base_dir / p
        if self.handlers_dir == "handlers" and not _is(path, stat.S_ISDIR):
            # No handlers/ beside the config: use the ones that ship with pocctl.
            bundled = Path(__file__).resolve().parent.parent / "handlers"
            if bundled.is_dir():
                return bundled
        return path

    def function_code(self, key: str) -> FunctionCode:
        """Function ``key``'s ("lambda1"/"lambda2") code path, handler and architecture."""
        fn = getattr(self, key)
        if fn.code is None:
            path = self.handlers_path / f"{HANDLER_MODULES[key]}.py"
        else:
            p = Path(fn.code)
            path = p if p.is_absolute() else self.base_dir / p
        if fn.handler is not None:
            handler = fn.handler
        elif fn.code is not None and path.suffix == ".py" and not _is(path, stat.S_ISDIR):
            handler = f"{path.stem}.{DEFAULT_FUNCTION}"
        else:
            handler = f"{HANDLER_MODULES[key]}.{DEFAULT_FUNCTION}"
        return FunctionCode(
            key, path, handler, fn.architecture, fn.runtime, configured=fn.code is not None
        )

    def warnings(self) -> list[str]:
        out = []
        for key, fn in (("lambda1", self.lambda1), ("lambda2", self.lambda2)):
            if fn.runtime in DEPRECATED_RUNTIMES:
                out.append(f"{key}.runtime: {fn.runtime} is {DEPRECATED_RUNTIMES[fn.runtime]}")
        return out + self._handlers_dir_warnings()

    def _handlers_dir_warnings(self) -> list[str]:
        """handlers_dir zips only each function's one module (as it always has, so an existing
        stack's code does not change on upgrade): say so when the folder holds more that a
        function would need, and how to zip the folder instead."""
        keys = [k for k in FUNCTIONS if getattr(self, k).code is None]
        if not keys:
            return []
        try:
            extra = sorted(
                p.name + ("/" if p.is_dir() else "")
                for p in self.handlers_path.iterdir()
                if p.name == "requirements.txt"
                or (p.is_dir() and p.name not in _TOOL_DIRS and not p.name.startswith("."))
            )
        except OSError:
            return []
        if not extra:
            return []
        shown = ", ".join(extra[:4]) + (", …" if len(extra) > 4 else "")
        modules = " and ".join(f"{HANDLER_MODULES[k]}.py" for k in keys)
        return [
            f"handlers_dir: {clip(self.handlers_dir)} also holds {shown}, which "
            f"{'is' if len(extra) == 1 else 'are'} not deployed: without "
            f"{' / '.join(f'{k}.code' for k in keys)} only {modules} "
            f"{'is' if len(keys) == 1 else 'are'} zipped; set {keys[0]}.code: "
            f"{clip(self.handlers_dir)} to zip the folder with its "
            "requirements"
        ]


# --- loading ------------------------------------------------------------------------------------


def _type(v: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false"}.get(
        type(v), "nothing" if v is None else type(v).__name__
    )


def _build(cls: type, data: Any, path: str, source: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, path or "(top level)", f"must be a mapping, not {_type(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "base_dir"}
    for key in data:
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(source, _join(path, clip(str(key))), f"unknown key (known: {known})")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key = _join(path, name)
        if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(
            f.default_factory
        ):
            values[name] = _build(f.default_factory, data.get(name), key, source)  # type: ignore[arg-type]
            continue
        if name not in data:
            continue
        problem = f.metadata["check"](data[name])
        if problem:
            raise ConfigError(source, key, problem)
        values[name] = data[name]
    return cls(**values)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _cross_checks(cfg: Config, source: str) -> None:
    need = 6 * cfg.lambda1.timeout
    if cfg.queue.visibility_timeout < need:
        raise ConfigError(
            source,
            "queue.visibility_timeout",
            f"{cfg.queue.visibility_timeout} s is less than 6 x lambda1.timeout = {need} s "
            "(AWS refuses a trigger below 1 x and recommends 6 x, so a slow batch is not "
            "delivered twice)",
        )
    queues = [
        ("queue.name", cfg.queue.name),
        ("queue.dead_letter_queue", cfg.queue.dead_letter_queue),
        ("lambda2.on_failure_queue", cfg.lambda2.on_failure_queue),
    ]
    _distinct(queues, source)
    p, r = cfg.iam.policies, cfg.iam.roles
    _distinct(
        [(f"iam.policies.{f.name}", getattr(p, f.name)) for f in dataclasses.fields(p)], source
    )
    _distinct([(f"iam.roles.{f.name}", getattr(r, f.name)) for f in dataclasses.fields(r)], source)
    _distinct([("lambda1.name", cfg.lambda1.name), ("lambda2.name", cfg.lambda2.name)], source)


def _distinct(items: list[tuple[str, str]], source: str) -> None:
    seen: dict[str, str] = {}
    for key, value in items:
        if value in seen:
            raise ConfigError(source, key, f"{show(value)} is already used by {seen[value]}")
        seen[value] = key


def _yaml(text: str, source: str, loader: type | None = None) -> Any:
    """The data of one YAML document, bounded (see boundedyaml); ConfigError otherwise."""
    import yaml

    from pocctl import boundedyaml

    try:
        limits = boundedyaml.Limits(
            MAX_VALUES, MAX_DEPTH, MAX_SCALAR, SHOWN, typical="; a pocctl config has about 90"
        )
        return boundedyaml.load(text, limits, loader)
    except boundedyaml.Refused as e:
        raise ConfigError(source, e.key, str(e)) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(source, "", f"not valid YAML: {where}{clip(str(e.problem))}") from None
    except (yaml.YAMLError, ValueError, OverflowError) as e:  # ValueError: 2001-13-45
        raise ConfigError(source, "", f"not valid YAML: {clip(str(e))}") from None


def parse(text: str, source: str = "config.yaml", base_dir: Path | None = None) -> Config:
    """Parse and validate config text. Raises ConfigError."""
    cfg = _build(Config, _yaml(text, source), "", source)
    cfg = dataclasses.replace(cfg, base_dir=base_dir or Path.cwd())
    _cross_checks(cfg, source)
    _check_handlers(cfg, source)
    return cfg


def _is(path: Path, kind: Callable[[int], bool]) -> bool:
    """Whether ``path`` is there and of ``kind``; any error (too long, no access) is a no."""
    try:
        return kind(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _check_handlers(cfg: Config, source: str) -> None:
    """Each function's code must hold its handler now, not when Task 4 zips it."""
    default = [key for key in FUNCTIONS if getattr(cfg, key).code is None]
    if default:
        _check_handlers_dir(cfg, source, default)
    for key in FUNCTIONS:
        _check_code(cfg.function_code(key), getattr(cfg, key), source)


def _shown(value: str, source: str) -> str:
    shown = clip(value)
    if not Path(value).is_absolute():
        shown += f" (relative to {source}'s folder)"
    return shown


def _check_handlers_dir(cfg: Config, source: str, keys: list[str]) -> None:
    """handlers_dir must hold the module of each function that has no ``code`` of its own."""
    path = cfg.handlers_path
    shown = _shown(cfg.handlers_dir, source)
    if not _is(path, stat.S_ISDIR):
        raise ConfigError(source, "handlers_dir", f"{shown} is not a directory")
    modules = [f"{HANDLER_MODULES[key]}.py" for key in keys]
    missing = [m for m in modules if not _is(path / m, stat.S_ISREG)]
    if missing:
        raise ConfigError(
            source, "handlers_dir", f"{shown} has no {' or '.join(missing)} (the Lambda handlers)"
        )


def _check_code(code: FunctionCode, fn: Any, source: str) -> None:
    from pocctl import codecheck

    if code.configured:
        shown = _shown(fn.code, source)
        if code.is_folder:
            pass
        elif not _is(code.path, stat.S_ISREG):
            raise ConfigError(source, f"{code.key}.code", f"{shown} does not exist")
        elif code.path.suffix != ".py" or not code.path.stem.isidentifier():
            raise ConfigError(
                source,
                f"{code.key}.code",
                f"{shown} is neither a folder nor a Python module (name.py, name an identifier)",
            )
    key = f"{code.key}.handler"
    which = code.handler if fn.handler is not None else f"{code.handler} (the default)"
    module_file = code.module_file
    if module_file is None:
        raise ConfigError(source, key, _no_module(code, which))
    problem = codecheck.check_defines(module_file, code.function, code.runtime)
    if problem:
        raise ConfigError(source, key, problem if fn.handler else f"{which}: {problem}")


def _no_module(code: FunctionCode, which: str) -> str:
    if not code.is_folder:
        return (
            f"{which}: the code is the one file {code.path.name}, so the module must be "
            f"{code.path.stem} (set {code.key}.handler to {code.path.stem}.<function>, or "
            f"{code.key}.code to the folder holding the module)"
        )
    rel = "/".join(code.module.split("."))
    return f"{which}: {code.path.name}/ has no {rel}.py or {rel}/__init__.py (the module)"


def _read(path: Path) -> str:
    """The file's text, refused unread when it is over MAX_BYTES (a pipe or device is read only
    that far)."""
    limit = f"the {MAX_BYTES:,} bytes (1 MiB) a config file can be"
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > MAX_BYTES:
                raise ConfigError(
                    path.name, "", f"is {info.st_size:,} bytes, over {limit}; not read"
                )
            data = f.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise ConfigError(path.name, "", f"is over {limit}")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), "", f"cannot be read: {e}") from None


def load(path: Path, *, required: bool = False) -> Config:
    """Read config from ``path``; a missing file means the lab's defaults unless required."""
    if not path.exists():
        if required:
            raise ConfigError(str(path), "", "no such file")
        return parse("", str(path.name), base_dir=path.parent.resolve())
    return parse(_read(path), path.name, base_dir=path.parent.resolve())


def describe() -> list[tuple[str, str, str]]:
    """Every key with its default and meaning, for docs and `--help`."""
    out: list[tuple[str, str, str]] = []

    def walk(cls: type, prefix: str) -> None:
        for f in dataclasses.fields(cls):
            if f.name == "base_dir":
                continue
            if f.default_factory is not dataclasses.MISSING:
                walk(f.default_factory, _join(prefix, f.name))  # type: ignore[arg-type]
            else:
                out.append((_join(prefix, f.name), repr(f.default), f.metadata.get("doc", "")))

    walk(Config, "")
    return out
