"""boto3 session and clients, call accounting, and the retries botocore does not do for us."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

# Operations that only read. Everything else counts as mutating.
_READ_PREFIXES = ("Get", "List", "Describe", "Head")

# How long pocctl waits out AWS's eventual consistency. A new role or policy is not usable at once
# everywhere: IAM User Guide, "Changes that I make are not always immediately visible",
# https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency
# (no bound is given: 150 s, as AWS's own Chalice deployer waits). SQS: "After you delete a queue,
# you must wait at least 60 seconds before creating a queue with the same name" (SQS API
# Reference, DeleteQueue, https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteQueue.html).
IAM_PROPAGATION_TIMEOUT = 150.0
QUEUE_DELETED_RECENTLY_TIMEOUT = 70.0
RETRY_INTERVAL = 2.0

# Creates AWS does not de-duplicate: when the answer to one is lost (HTTP 5xx, a read timeout),
# the resource may exist all the same, and a retry by botocore would make a second one (two REST
# APIs of one name, two triggers, two validators). The engine looks the resource up again instead.
NOT_RETRIED_BY_BOTOCORE = {
    "apigateway": ("CreateRestApi", "CreateRequestValidator"),
    "lambda": ("CreateEventSourceMapping",),
}

# botocore's standard retry mode treats these codes as throttling (botocore.retries.standard).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
    }
)

# Errors that say a resource is not as the plan saw it: typically the answer to an earlier
# attempt was lost, and botocore's retry met what that attempt made (or removed).
_OUTDATED_PLAN_CODES = frozenset(
    {
        "EntityAlreadyExists",  # IAM
        "NoSuchEntity",
        "ResourceInUseException",  # DynamoDB: table exists / is being changed
        "ResourceNotFoundException",  # DynamoDB, Lambda, Logs
        "QueueAlreadyExists",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "ConflictException",  # API Gateway: e.g. the model exists
        "NotFoundException",
        "NotFound",  # SNS
    }
)

# Injected by tests to make waits instant without changing their logic.
sleep: Callable[[float], None] = time.sleep
monotonic: Callable[[], float] = time.monotonic


_loader: Any = None


def _shared_loader() -> Any:
    """botocore's loader caches the service models it reads; a new one per run re-reads ~0.5 s
    of JSON. Sharing it matters where one process runs pocctl many times (demo, walkthrough)."""
    global _loader
    if _loader is None:
        from botocore.loaders import create_loader

        _loader = create_loader()
    return _loader


def _dedupe_search_paths() -> None:
    # boto3.Session appends its own data path to the loader on every construction.
    paths = _loader.search_paths
    paths[:] = list(dict.fromkeys(paths))


def is_mutating(operation: str) -> bool:
    return not operation.startswith(_READ_PREFIXES)


class AwsError(Exception):
    """An AWS operation failed for good; ``str()`` is the line shown to the user."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.hint = hint
        super().__init__(message)


def error_code(exc: BaseException) -> str:
    resp = getattr(exc, "response", None) or {}
    return str(resp.get("Error", {}).get("Code", ""))


def error_message(exc: BaseException) -> str:
    resp = getattr(exc, "response", None) or {}
    return str(resp.get("Error", {}).get("Message", "")) or str(exc)


@dataclass
class CallLog:
    """Every AWS API call this run made, by operation."""

    calls: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, service: str, operation: str) -> None:
        with self._lock:  # calls come from several threads in a parallel `up`
            self.calls[f"{service}.{operation}"] += 1

    @property
    def mutating(self) -> int:
        return sum(n for op, n in self.calls.items() if is_mutating(op.split(".", 1)[1]))

    @property
    def reads(self) -> int:
        return sum(self.calls.values()) - self.mutating


class Aws:
    """One boto3 session per run; clients made on first use, never at import time."""

    def __init__(
        self,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        credentials: dict[str, str] | None = None,
    ) -> None:
        import boto3
        import botocore.session

        core = botocore.session.Session()
        core.register_component("data_loader", _shared_loader())
        self.session = boto3.Session(
            profile_name=profile, region_name=region, botocore_session=core, **(credentials or {})
        )
        _dedupe_search_paths()
        self.endpoint_url = endpoint_url
        self.log = CallLog()
        self._clients: dict[str, Any] = {}
        self._account: str | None = None
        # Clients are thread-safe once made; making one from a session is not (parallel `up`).
        self._client_lock = threading.Lock()

    @property
    def region(self) -> str | None:
        return self.session.region_name

    def client(self, service: str) -> Any:
        if service in self._clients:
            return self._clients[service]
        with self._client_lock:
            return self._make_client(service)

    def _make_client(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.config import Config

            loopback = is_loopback(self.endpoint_url)
            cfg = Config(
                retries={"mode": "standard", "max_attempts": 8},
                # On this machine a connect either succeeds or is refused at once.
                connect_timeout=2 if loopback else 10,
                read_timeout=60,
                user_agent_extra="pocctl",
            )
            kwargs: dict[str, Any] = {"config": cfg}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            client = self.session.client(service, **kwargs)
            client.meta.events.register("before-call", self._count)
            service_id = client.meta.service_model.service_id.hyphenize()
            if loopback:
                client.meta.events.register_first(
                    f"needs-retry.{service_id}", _no_retry_when_refused
                )
            for op in NOT_RETRIED_BY_BOTOCORE.get(service, ()):
                client.meta.events.register_first(
                    f"needs-retry.{service_id}.{op}", _retry_only_if_not_sent
                )
            self._clients[service] = client
        return self._clients[service]

    def _count(self, model: Any, **_: Any) -> None:
        self.log.add(model.service_model.service_name, model.name)

    @property
    def account_id(self) -> str:
        if self._account is None:
            self._account = self.client("sts").get_caller_identity()["Account"]
        return self._account

    @property
    def partition(self) -> str:
        region = self.region or ""
        if region.startswith("cn-"):
            return "aws-cn"
        if region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"


def is_loopback(endpoint_url: str | None) -> bool:
    from urllib.parse import urlsplit

    host = urlsplit(endpoint_url or "").hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def _no_retry_when_refused(caught_exception: BaseException | None = None, **_: Any) -> bool | None:
    """``needs-retry`` handler for an endpoint on this machine: a refused connection means no
    server listens there, which botocore's backoff (8 attempts, ~20 s) would not change; say so
    at once. Anything else, and every endpoint elsewhere (AWS), keeps botocore's retries."""
    from botocore.exceptions import EndpointConnectionError

    if isinstance(caught_exception, EndpointConnectionError) and refused(caught_exception):
        return False
    return None


def refused(exc: BaseException) -> bool:
    """A connection refused, somewhere in ``exc``'s chain (botocore wraps urllib3's error,
    which wraps the socket's)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        inner = getattr(seen, "kwargs", {}).get("error") if hasattr(seen, "kwargs") else None
        seen = inner or seen.__cause__ or seen.__context__
    return False


def _retry_only_if_not_sent(
    response: Any = None, caught_exception: BaseException | None = None, **_: Any
) -> bool | None:
    """``needs-retry`` handler: False (no retry) when the request may have been carried out;
    None lets botocore's retry mode decide (throttled, or never reached the endpoint)."""
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

    if caught_exception is not None and not isinstance(
        caught_exception, (EndpointConnectionError, ConnectTimeoutError)
    ):
        return False  # e.g. a read timeout: the request may have arrived
    if response is not None and response[0] is not None and response[0].status_code >= 500:
        return False
    return None


def transient(exc: BaseException) -> str | None:
    """AWS could not answer for a moment (HTTP 5xx or throttled) and botocore's retries ran out
    or were not made; a new attempt may well succeed."""
    resp = getattr(exc, "response", None) or {}
    status = int(resp.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    code = error_code(exc)
    if status >= 500 or status == 429 or code in THROTTLING_CODES:
        return f"AWS answered {code or status}"
    return None


def retried_by_botocore(exc: BaseException) -> bool:
    """False when the failed call is one botocore does not retry on 5xx (NOT_RETRIED_BY_BOTOCORE):
    the engine's own attempts are all the retries it gets."""
    operation = getattr(exc, "operation_name", "")
    return not any(operation in ops for ops in NOT_RETRIED_BY_BOTOCORE.values())


def outdated_plan(exc: BaseException) -> str | None:
    """The resource changed since it was looked up (see _OUTDATED_PLAN_CODES)."""
    code = error_code(exc)
    if code in _OUTDATED_PLAN_CODES or (
        # Lambda: "Function already exist", "An event source mapping ... already exists"
        code == "ResourceConflictException" and "exist" in error_message(exc).lower()
    ):
        return f"AWS said {code}"
    return None


def retry_while(
    fn: Callable[[], T],
    retryable: Callable[[BaseException], str | None],
    *,
    timeout: float,
    on_wait: Callable[[str, float], None] | None = None,
    interval: float = RETRY_INTERVAL,
) -> T:
    """Call ``fn`` until it succeeds or ``timeout`` passes.

    ``retryable(exc)`` returns why the error is worth waiting out (shown through ``on_wait``), or
    None to raise at once. Past the timeout the last error is raised.
    """
    start = monotonic()
    while True:
        try:
            return fn()
        except Exception as exc:
            reason = retryable(exc)
            elapsed = monotonic() - start
            if reason is None or elapsed >= timeout:
                raise
            if on_wait:
                on_wait(reason, elapsed)
            sleep(min(interval, max(0.0, timeout - elapsed)))


def iam_propagation(exc: BaseException) -> str | None:
    """The errors AWS gives while a new role or policy has not reached Lambda yet."""
    msg = error_message(exc)
    code = error_code(exc)
    if code == "InvalidParameterValueException" and (
        "cannot be assumed by Lambda" in msg
        or "does not have permissions" in msg
        or "execution role does not have" in msg
    ):
        return "waiting for the new IAM role to reach Lambda (IAM is eventually consistent)"
    return None


def function_busy(exc: BaseException) -> str | None:
    if error_code(exc) == "ResourceConflictException":
        return "waiting for the function to finish its previous update"
    return None
