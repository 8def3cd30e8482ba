"""Every moto internal that pocctl.local relies on, in one place.

moto 5.2.5 is pinned (pyproject.toml); tests/local/test_moto_hooks.py fails loudly when an
upgrade moves any of these:

- moto/sqs/models.py ``Queue.add_message`` and moto/dynamodb/models/table.py ``StreamShard.add``
  run moto's own synchronous event-source-mapping path. It receives SQS messages inside the
  SendMessage request (raising their receive count until they land in the DLQ) and clears
  stream records after a failed invoke. Both loop over ``<obj>.lambda_event_source_mappings``,
  which ``LambdaBackend.create_event_source_mapping`` fills. We replace that attribute on the
  classes by a descriptor that always reads as an empty dict, so moto never sees a mapping;
  the mappings themselves stay in the Lambda backend (list/get/update/delete keep working) and
  pocctl's pollers act on them instead.
- moto/sqs/models.py is O(queue length) per message: ``is_message_valid_based_on_retention_period``
  (run for every received message) builds all queue attributes three times, counting every
  message with two clock reads each; the clock is ``unix_time`` via datetime arithmetic. Under
  the 500-order spike that was two thirds of the server's CPU. ``speed_up_sqs`` reads the
  retention period straight from the queue and gives moto.sqs.models a ``time.time()``-based
  ``unix_time`` / ``unix_time_millis`` (same values). Behaviour is unchanged.
- moto/dynamodbstreams/models.py ``DynamoDBStreamsBackend.get_records``: moto never forgets a
  shard iterator; ``expire_stream_iterators`` expires them after 15 minutes as AWS does.
- moto/dynamodb/models/__init__.py ``DynamoDBBackend.update_table_streams`` refuses a new stream
  on any table that ever had one; ``replace_disabled_streams`` lets a disabled stream be
  replaced by a new one, as AWS does (how a stream's view type changes).
- moto/moto_server/werkzeug_app.py ``DomainDispatcherApplication.get_backend_for_host`` is
  memoised by pocctl.local.server (it lists moto's package folder on every request).
- moto/core: every request converts its action name with ``camelcase_to_underscores`` (a
  char-by-char loop), lists its handler class's methods with ``inspect.getmembers``, and draws a
  52-character request ID one ``random.choice`` at a time (moto_api/_internal/moto_random.py):
  together ~15% of the server's CPU under a spike. ``speed_up_request_path`` memoises the two
  pure functions and draws the same alphabets from the same seeded ``MotoRandom`` in one call.
  ``speed_up_sqs`` also makes ``Queue.messages`` a lazy view and DeleteMessage stop at its
  message. Behaviour is unchanged.
- moto/awslambda/models.py ``LambdaFunction.invoke`` serves the Invoke API (and invoke-async) and
  would try Docker. We wrap it: inside a request that came through a LocalAWS server (marked by
  ``invoke_middleware``) the call goes to pocctl's executor; anywhere else moto's code runs.
"""

from __future__ import annotations

import string
import threading
import time
from collections.abc import Callable
from typing import Any

MOTO_VERSION = "5.2.5"

# (LambdaFunction, body, request_headers, response_headers) -> payload bytes
InvokeRunner = Callable[[Any, Any, Any, dict[str, Any]], bytes]

_install_lock = threading.Lock()
# moto's own code replaced by a hook that cannot carry a ``_pocctl_original`` (a property).
ORIGINALS: dict[str, Any] = {}
_request = threading.local()


class _NoEventSourceMappings:
    """Data descriptor: the attribute always reads as a fresh empty dict and ignores writes."""

    def __get__(self, obj: object, owner: type | None = None) -> dict[str, Any]:
        return {}

    def __set__(self, obj: object, value: object) -> None:
        pass


def check_moto_version() -> None:
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(
            f"pocctl's embedded AWS hooks into moto {MOTO_VERSION} internals; "
            f"moto {moto.__version__} is installed (pip install 'moto[server]=={MOTO_VERSION}')"
        )


def switch_off_moto_mappings() -> None:
    """Make moto's own synchronous event-source-mapping path a no-op (idempotent)."""
    from moto.dynamodb.models.table import Table
    from moto.sqs.models import Queue

    with _install_lock:
        for cls in (Queue, Table):
            if not isinstance(
                cls.__dict__.get("lambda_event_source_mappings"), _NoEventSourceMappings
            ):
                cls.lambda_event_source_mappings = _NoEventSourceMappings()  # type: ignore[assignment,misc]


def describe_disabled_streams() -> None:
    """DescribeStream of a disabled (or replaced) stream answers DISABLED, as on AWS.

    moto 5.2.5 raises KeyError (HTTP 500) once the table's stream is off, which a poller still
    holding the old stream ARN would hit during `down` (idempotent).
    """
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    with _install_lock:
        original = DynamoDBStreamsBackend.describe_stream
        if getattr(original, "_pocctl", False):
            return

        def describe_stream(self: Any, arn: str) -> dict[str, Any]:
            table = self._get_table_from_arn(arn)
            label = arn.rsplit("/", 1)[-1]
            spec = table.stream_specification or {}
            if spec.get("StreamEnabled") and table.latest_stream_label == label:
                return original(self, arn)
            return {
                "StreamArn": arn,
                "StreamLabel": label,
                "StreamStatus": "DISABLED",
                "StreamViewType": spec.get("StreamViewType", "NEW_IMAGE"),
                "TableName": table.name,
                "KeySchema": table.schema,
                "Shards": [],
            }

        describe_stream._pocctl = True  # type: ignore[attr-defined]
        DynamoDBStreamsBackend.describe_stream = describe_stream  # type: ignore[method-assign]


def replace_disabled_streams() -> None:
    """UpdateTable enables a new stream on a table whose stream was disabled, as AWS does
    (idempotent). This is how a stream's view type changes on AWS: disable, then enable.

    DynamoDB Developer Guide, "Change data capture for DynamoDB Streams", Enabling a stream
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html):
    "If you disable and then re-enable a stream on the table, a new stream will be created with a
    different stream descriptor"; enabling a stream on a table that already has one is refused
    (ResourceInUseException), and so is disabling one on a table that has none
    (ValidationException); "If you disable a stream, any shards that are open will be closed".

    moto 5.2.5's ``DynamoDBBackend.update_table_streams`` refuses to enable a stream on any
    table that ever had one (it tests ``latest_stream_label``, which disabling keeps), so a stream
    could never be replaced; and its disabled stream kept receiving records.
    """
    from moto.dynamodb.exceptions import MockValidationException, StreamAlreadyEnabledException
    from moto.dynamodb.models import DynamoDBBackend

    with _install_lock:
        original = DynamoDBBackend.update_table_streams
        if getattr(original, "_pocctl_hook", False):
            return

        def update_table_streams(self: Any, table: Any, spec: dict[str, Any]) -> None:
            enabled = bool((table.stream_specification or {}).get("StreamEnabled"))
            # moto's own reading of the request: a view type alone also asks for a stream.
            enable = bool(spec.get("StreamEnabled") or spec.get("StreamViewType"))
            if enable and enabled:
                raise StreamAlreadyEnabledException()
            if not enable and not enabled:
                raise MockValidationException(f"Table {table.name} has no stream to disable")
            if not enable:
                # Closed: nothing more is written to it. Iterators already handed out keep
                # their shard, so what it holds stays readable.
                table.stream_shard = None
            table.set_stream_specification(spec)

        update_table_streams._pocctl_hook = True  # type: ignore[attr-defined]
        update_table_streams._pocctl_original = original  # type: ignore[attr-defined]
        DynamoDBBackend.update_table_streams = update_table_streams  # type: ignore[method-assign]


def _now_ms() -> float:
    """moto.sqs's clock (``unix_time_millis()``), read straight from time.time()."""
    return time.time() * 1000.0


class _VisibleMessages:
    """``Queue.messages`` as a lazy view: moto builds the list of every visible message (two
    clock reads each) for each receive, and a receive stops after BatchSize of them; the view is
    walked only as far as it is read. Truthiness (the long-poll wait) stops at the first."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def __iter__(self) -> Any:
        # A copy (a fast C copy): other requests may rebind or change the queue's list meanwhile.
        # One clock read for the walk: Message.visible / .delayed compare the same fields.
        now = _now_ms()
        return (
            m
            for m in list(self._queue._messages)
            if now > m.visible_at and not now < m.delayed_until
        )

    def __bool__(self) -> bool:
        return any(True for _ in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _count_delayed(queue: Any) -> int:
    now = _now_ms()
    return sum(1 for m in list(queue._messages) if now < m.delayed_until)


def _count_not_visible(queue: Any) -> int:
    now = _now_ms()
    return sum(1 for m in list(queue._messages) if not now > m.visible_at)


def speed_up_sqs() -> None:
    """Same SQS behaviour, without the per-message O(queue length) work (idempotent)."""
    import moto.sqs.models as sqs_models
    from moto.core.utils import unix_time as moto_unix_time

    with _install_lock:
        if getattr(sqs_models.unix_time, "_pocctl_hook", False):
            return

        def unix_time(dt: Any = None) -> float:
            return time.time() if dt is None else moto_unix_time(dt)

        def unix_time_millis(dt: Any = None) -> float:
            return _now_ms() if dt is None else moto_unix_time(dt) * 1000.0

        def is_message_valid_based_on_retention_period(
            self: Any, queue_name: str, message: Any
        ) -> bool:
            retention = int(self.get_queue(queue_name).message_retention_period)
            return bool(retention + message.sent_timestamp / 1000 > unix_time())

        for f in (unix_time, unix_time_millis, is_message_valid_based_on_retention_period):
            f._pocctl_hook = True  # type: ignore[attr-defined]
        is_message_valid_based_on_retention_period._pocctl_original = (  # type: ignore[attr-defined]
            sqs_models.SQSBackend.is_message_valid_based_on_retention_period
        )

        def delete_message(self: Any, receipt_handle: str) -> None:
            # Receipt handles are unique: stop at the one message that had it (moto scans the
            # whole queue twice and rebuilds it). Messages are received oldest first, so under a
            # backlog the one being deleted is near the front.
            if receipt_handle in self.deleted_messages:
                return  # already deleted: gracefully, as moto does
            messages = self._messages
            i = next(
                (i for i, m in enumerate(messages) if m.had_receipt_handle(receipt_handle)), None
            )
            if i is None:
                raise sqs_models.ReceiptHandleIsInvalid()
            message = messages[i]
            self.pending_messages.discard(message)
            self.deleted_messages.update(message.all_receipt_handles)
            # A new list, as moto does: a receive iterating the old one is not disturbed.
            self._messages = messages[:i] + messages[i + 1 :]

        delete_message._pocctl_original = sqs_models.Queue.delete_message  # type: ignore[attr-defined]
        ORIGINALS["Queue.messages"] = sqs_models.Queue.messages
        # Every SendMessage builds Queue.attributes (to read ContentBasedDeduplication), and
        # with it these counts: two clock reads a message made SendMessage O(queue length)
        # at ~1.5 us a message (17 ms at 10,000 queued); one clock read a count, same result.
        for name, count in (
            ("approximate_number_of_messages_delayed", _count_delayed),
            ("approximate_number_of_messages_not_visible", _count_not_visible),
        ):
            ORIGINALS[f"Queue.{name}"] = getattr(sqs_models.Queue, name)
            setattr(sqs_models.Queue, name, property(count))
        sqs_models.Queue.delete_message = delete_message  # type: ignore[method-assign]
        sqs_models.Queue.messages = property(_VisibleMessages)  # type: ignore[assignment,method-assign]
        sqs_models.unix_time = unix_time
        sqs_models.unix_time_millis = unix_time_millis
        sqs_models.SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
            is_message_valid_based_on_retention_period
        )


def speed_up_request_path() -> None:
    """moto's per-request helpers, memoised or drawn in one call (idempotent; see module doc)."""
    import sys
    from functools import lru_cache

    import moto.core.utils as core_utils
    from moto.moto_api._internal.moto_random import HEX_CHARS, MotoRandom

    with _install_lock:
        if getattr(core_utils.camelcase_to_underscores, "_pocctl_hook", False):
            return
        originals = {
            "camelcase_to_underscores": core_utils.camelcase_to_underscores,
            "method_names_from_class": core_utils.method_names_from_class,
        }
        # Keys are action and attribute names; clients choose them, so the cache is bounded.
        to_underscores = lru_cache(maxsize=4096)(originals["camelcase_to_underscores"])
        # Handler classes are fixed once moto is imported (our hooks patch before serving).
        method_names = lru_cache(maxsize=256)(originals["method_names_from_class"])
        replacements = {
            "camelcase_to_underscores": to_underscores,
            "method_names_from_class": method_names,
        }
        for f in replacements.values():
            f._pocctl_hook = True  # type: ignore[attr-defined]
        # Modules imported from now on bind the memoised functions; rebind those already bound.
        for module in list(sys.modules.values()):
            if not getattr(module, "__name__", "").startswith("moto"):
                continue
            for name, fast in replacements.items():
                if getattr(module, name, None) is originals[name]:
                    setattr(module, name, fast)

        def get_random_hex(self: Any, length: int = 8) -> str:
            return "".join(map(str, self.choices(HEX_CHARS, k=length)))

        def get_random_string(
            self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False
        ) -> str:
            pool = string.ascii_letters + (string.digits if include_digits else "")
            random_str = "".join(self.choices(pool, k=length))
            return random_str.lower() if lower_case else random_str

        get_random_hex._pocctl_original = MotoRandom.get_random_hex  # type: ignore[attr-defined]
        get_random_string._pocctl_original = MotoRandom.get_random_string  # type: ignore[attr-defined]
        MotoRandom.get_random_hex = get_random_hex  # type: ignore[method-assign]
        MotoRandom.get_random_string = get_random_string  # type: ignore[method-assign]


# AWS: "A shard iterator expires 15 minutes after it is returned to the requester."
ITERATOR_LIFETIME = 15 * 60.0
_PRUNE_EVERY = 30.0


def expire_stream_iterators() -> None:
    """Shard iterators expire after 15 minutes, as on AWS (idempotent).

    moto 5.2.5 keeps every iterator it ever returned in ``DynamoDBStreamsBackend.shard_iterators``
    and every GetRecords returns a new one: a poller reading ten times a second would grow
    ``pocctl local`` by ~70 MB an hour. An expired iterator answers ExpiredIteratorException.
    """
    from moto.core.exceptions import JsonRESTError
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    with _install_lock:
        original = DynamoDBStreamsBackend.get_records
        if getattr(original, "_pocctl_hook", False):
            return

        def get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
            if iterator_arn not in self.shard_iterators:
                raise JsonRESTError("ExpiredIteratorException", "Iterator expired")
            result: dict[str, Any] = original(self, iterator_arn, limit)
            now = time.monotonic()
            born: dict[str, float] = self.__dict__.setdefault("_pocctl_born", {})
            born.setdefault(result["NextShardIterator"], now)
            if now - self.__dict__.get("_pocctl_pruned", 0.0) >= _PRUNE_EVERY:
                self._pocctl_pruned = now
                for arn in list(self.shard_iterators):
                    if now - born.setdefault(arn, now) > ITERATOR_LIFETIME:
                        self.shard_iterators.pop(arn, None)
                for arn in [a for a in list(born) if a not in self.shard_iterators]:
                    born.pop(arn, None)
            return result

        get_records._pocctl_hook = True  # type: ignore[attr-defined]
        get_records._pocctl_original = original  # type: ignore[attr-defined]
        DynamoDBStreamsBackend.get_records = get_records  # type: ignore[method-assign]


def install_invoke_hook() -> None:
    """Route ``LambdaFunction.invoke`` to the current LocalAWS request's runner (idempotent)."""
    from moto.awslambda.models import LambdaFunction

    with _install_lock:
        current = LambdaFunction.invoke
        if getattr(current, "_pocctl_hook", False):
            return
        original = current

        def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
            runner: InvokeRunner | None = getattr(_request, "runner", None)
            if runner is None:
                return original(self, body, request_headers, response_headers)
            return runner(self, body, request_headers, response_headers)

        invoke._pocctl_hook = True  # type: ignore[attr-defined]
        invoke._pocctl_original = original  # type: ignore[attr-defined]
        LambdaFunction.invoke = invoke  # type: ignore[method-assign]


def invoke_middleware(runner: InvokeRunner) -> Callable[[Any], Any]:
    """WSGI middleware: requests through it run Lambda code with ``runner``.

    moto handles a request synchronously in the server thread that called the app, so a
    thread-local set around the call reaches the patched ``LambdaFunction.invoke``.
    """

    def in_background(fn: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        headers = dict(request_headers or {})
        headers["x-amz-invocation-type"] = "Event"
        return runner(fn, body, headers, response_headers)

    def wrap(app: Any) -> Any:
        def middleware(environ: dict[str, Any], start_response: Any) -> Any:
            from pocctl.local.operation import operation_of

            # Restored, not cleared: the embedded AWS's own in-process calls nest requests.
            previous = getattr(_request, "runner", None)
            # Only Lambda's Invoke API runs a function while the request waits. moto invokes
            # for other services too (SNS to a lambda subscriber, InvokeAsync), inside a
            # request that holds the server's lock: the function, calling back into the
            # server, would wait for that lock for ever. AWS runs those asynchronously ("Several
            # AWS services, such as Amazon S3 and Amazon SNS, invoke functions asynchronously",
            # https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html): so does this.
            _request.runner = runner if operation_of(environ).is_lambda_invoke else in_background
            try:
                # moto builds the whole response body inside this call (a list), so the
                # thread-local is still set while Invoke runs.
                return list(app(environ, start_response))
            finally:
                _request.runner = previous

        return middleware

    return wrap


def lambda_function_fields(fn: Any) -> dict[str, Any]:
    """What the executor needs from a moto ``LambdaFunction`` (attribute names pinned by tests)."""
    return {
        "name": fn.function_name,
        "arn": fn.function_arn,
        "handler": fn.handler,
        "runtime": fn.run_time,
        "timeout": int(fn.timeout or 3),
        "memory": int(fn.memory_size or 128),
        "env": dict(fn.environment_vars or {}),
        "code_sha256": fn.code_sha_256,
        "code": fn.code_bytes,
        "region": fn.region,
        "account_id": fn.account_id,
        "package_type": getattr(fn, "package_type", "Zip"),
    }
