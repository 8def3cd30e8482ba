"""The one small interface every AWS resource implements, and the context it runs in.

A resource knows what it should look like (``desired``), how to find itself by name with
read-only calls (``find``), how the two differ (``diff``), and how to create, update and delete
itself. Only the engine calls the mutating methods.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar

from pocctl.aws import Aws
from pocctl.config import Config

Observed = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class Change:
    field: str
    old: Any
    new: Any

    def __str__(self) -> str:
        # Name the leaves that differ (e.g. integration.requestTemplates.application/json): a
        # whole document cut at 60 characters shows what is the same, not what changed.
        parts = [
            f"{path}: {_short(o)} → {_short(n)}"
            for path, o, n in _leaves(self.field, self.old, self.new)
        ]
        if len(parts) > 3:
            parts = [*parts[:3], f"… {len(parts) - 3} more"]
        return "; ".join(parts) or f"{self.field}: {_short(self.old)} → {_short(self.new)}"


_ABSENT = "(absent)"


def _leaves(path: str, old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            leaf
            for k in sorted(set(old) | set(new), key=str)
            if _norm(old.get(k, _ABSENT)) != _norm(new.get(k, _ABSENT))
            for leaf in _leaves(f"{path}.{k}", old.get(k, _ABSENT), new.get(k, _ABSENT))
        ]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            leaf
            for i, (o, n) in enumerate(zip(old, new, strict=True))
            if _norm(o) != _norm(n)
            for leaf in _leaves(f"{path}[{i}]", o, n)
        ]
    return [(path, old, new)]


def _short(v: Any, limit: int = 60) -> str:
    s = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return s if len(s) <= limit else s[: limit - 1] + "…"


class _InAccount:
    """Account, region, partition, clients and ARNs, from an AWS session (``self.aws``)."""

    aws: Aws

    @property
    def region(self) -> str:
        return self.aws.region or "us-east-1"

    @property
    def account(self) -> str:
        return self.aws.account_id

    @property
    def partition(self) -> str:
        return self.aws.partition

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        reg = self.region if region else ""
        return f"arn:{self.partition}:{service}:{reg}:{self.account}:{resource}"


@dataclass(frozen=True)
class Target(_InAccount):
    """Where the stack is, fixed for a run: the config, the AWS session (account, region,
    partition), and the ARNs they make (pocctl/arns.py)."""

    cfg: Config
    aws: Aws


class RunCache:
    """Reads shared within one run (one DescribeTable for table and stream, one IAM snapshot
    for seven finds), safe under a parallel `up`: every read and write of a key holds that
    key's lock."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())

    def shared(self, key: str, fetch: Callable[[], T]) -> T:
        """``fetch()``'s result, made once per run and shared by every resource that asks (a
        parallel `up` asks from several threads: one call, not one per thread)."""
        with self._lock(key):
            if key not in self._values:
                self._values[key] = fetch()
            return self._values[key]  # type: ignore[no-any-return]

    def put(self, key: str, value: Any) -> None:
        """Share ``value`` as the current read of ``key`` (what a change answered)."""
        with self._lock(key):
            self._values[key] = value

    def peek(self, key: str, default: Any = None) -> Any:
        """What is shared under ``key``, without fetching it."""
        with self._lock(key):
            return self._values.get(key, default)

    def forget(self, key: str) -> None:
        """Drop a shared read after a change to what it read. Waits for a fetch in flight, so
        a result read before the change is never kept after it."""
        with self._lock(key):
            self._values.pop(key, None)

    def clear(self) -> None:
        """Forget every read (AWS may have changed under the run): key by key, each under its
        lock, like forget."""
        with self._locks_lock:
            keys = list(self._locks)
        for key in keys:
            self.forget(key)


# How a resource has the engine record what it has made so far, before its create ends (an ID
# AWS gave it): a run killed then finds it by that ID instead of making a second one. The engine
# writes the state file; the resource only says what to record.
Checkpoint = Callable[[dict[str, Any]], None]


def _no_checkpoint(entry: dict[str, Any]) -> None:
    pass


def _no_wait(reason: str, elapsed: float) -> None:
    pass


@dataclass(frozen=True)
class Context(_InAccount):
    """What a resource may use in one run: the target, the run's shared reads, what the state
    file recorded (a hint: AWS is always asked), the engine's checkpoint, and a way to say it
    is waiting. The engine alone writes the state file."""

    target: Target
    cache: RunCache = field(default_factory=RunCache)
    known: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    checkpoint: Checkpoint = _no_checkpoint
    # A routine wait (table ACTIVE, function Active): shown on the spinner.
    on_wait: Callable[[str, float], None] = _no_wait
    # Waiting out an AWS error (IAM propagation, QueueDeletedRecently): always said on screen.
    on_retry: Callable[[str, float], None] = _no_wait

    def with_cfg(self, cfg: Config) -> Context:
        """The same run (cache, callbacks) for another config: a resource left by a rename."""
        return replace(self, target=replace(self.target, cfg=cfg))

    @property
    def cfg(self) -> Config:
        return self.target.cfg

    @property  # type: ignore[override]
    def aws(self) -> Aws:
        return self.target.aws


class Resource:
    """Base class; subclasses set ``type`` and implement the methods below.

    A resource type's one home: what it is called (``type``, ``kind``, ``noun``), what must
    exist before it (``needs``), how to find, make and remove it, and where to look at it (the
    console, the AWS CLI). Status, plan and the walkthrough show any resource through these.
    """

    type: ClassVar[str] = "resource"
    kind: ClassVar[str] = "resource"  # one word for people: "queue", "trigger", "email"
    noun: ClassVar[str] = "resource"  # what an error calls it: "event source mapping"
    # Holds what users put in it (orders): when its name changes, the old one is left as it
    # was for `down` to remove, never deleted by `up` (see Engine.up).
    holds_data: ClassVar[bool] = False

    def __init__(self, key: str, name: str, needs: tuple[str, ...] = ()) -> None:
        self.key = key  # stable id in the state file, e.g. "policy.write_dynamodb"
        self.name = name
        # The keys of what must exist before it is made. Only real needs of AWS (a role attaches
        # its policies, a function assumes its role): names and ARNs that are only computed (a
        # table name in an environment) are not needs. A parallel `up` starts a resource as
        # soon as its needs are made.
        self.needs = needs

    def __repr__(self) -> str:
        return f"<{self.type} {self.name}>"

    # read-only
    def desired(self, ctx: Context) -> dict[str, Any]:
        """The settings pocctl will send: shown by plan, explain and the walkthrough."""
        raise NotImplementedError

    def find(self, ctx: Context) -> Observed | None:
        """Look the resource up by name; None when it does not exist."""
        raise NotImplementedError

    def diff(self, ctx: Context, observed: Observed) -> list[Change]:
        """What differs between ``observed`` and desired; [] when converged."""
        want = self.desired(ctx)
        return [
            Change(k, observed.get(k), v)
            for k, v in want.items()
            if _norm(observed.get(k)) != _norm(v)
        ]

    def preflight(self, ctx: Context) -> None:
        """Raise when config.yaml asks for a change AWS cannot make to the live resource, before
        `up` changes anything else (read-only)."""

    def notes(self, ctx: Context, observed: Observed | None) -> list[str]:
        """What `up` says about a setting it leaves as it is on the live resource, and why."""
        return []

    def identity(self, ctx: Context, observed: Observed) -> dict[str, Any]:
        """What the state file records: at least the ARN, or the ID/URL where there is no ARN."""
        return {"arn": observed.get("arn")}

    def holding(self, ctx: Context) -> str:
        """What it holds, for a resource that ``holds_data``: said when `up` leaves it."""
        return "the orders stored in it"

    # mutating: the engine is the only caller
    def create(self, ctx: Context) -> Observed:
        raise NotImplementedError

    def update(self, ctx: Context, observed: Observed, changes: list[Change]) -> Observed:
        raise NotImplementedError

    def delete(self, ctx: Context, observed: Observed) -> None:
        raise NotImplementedError

    def status_note(self, observed: Observed) -> str:
        """A short extra shown by `status` (e.g. subscription pending confirmation)."""
        return ""

    # where to look at it
    def console_url(self, identity: dict[str, Any], region: str) -> str | None:
        """Its page in the AWS console (partition aws); None where there is none."""
        return None

    def cli_args(self, identity: dict[str, Any]) -> list[str] | None:
        """The AWS CLI command that shows it, as "--option value" units after `aws`."""
        return None

    def address(self, identity: dict[str, Any]) -> str | None:
        """What its API calls it by besides the ARN (a queue's URL)."""
        return None

    def invoke_url(self, identity: dict[str, Any]) -> str | None:
        """Where users send requests to it (an API's stage)."""
        return None

    def pending(self, identity: dict[str, Any]) -> str | None:
        """What a person still has to do before it works (confirm an email)."""
        return None


def _norm(v: Any) -> Any:
    """Compare JSON-ish values without caring about key order."""
    return json.dumps(v, sort_keys=True, default=str)


def policy_document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def not_found(exc: BaseException, *codes: str) -> bool:
    from pocctl.aws import error_code

    return error_code(exc) in codes


def call_or_none(fn: Callable[[], T], *codes: str) -> T | None:
    """``fn()``, or None when AWS answers one of the error ``codes`` (it is not there)."""
    try:
        return fn()
    except Exception as e:
        if not_found(e, *codes):
            return None
        raise
