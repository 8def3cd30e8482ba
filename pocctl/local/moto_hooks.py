"""Every change the embedded AWS makes to moto (and to the libraries moto calls), in one registry.

Each change is a named ``Patch``: its kind ("fidelity": restores what AWS does, citing AWS's
documentation; "speed": the same behaviour, cheaper), why, the one object it replaces
(``target``, "module:Class.attr") and the moto source it replaces or relies on (``pins``, each
hashed in PINNED_SOURCES: tests/local/test_moto_hooks.py fails loudly when an upgrade changes one).
Nothing is patched on import: the embedded server installs the patches when it starts
(``install_all``), ``remove_all`` puts back every original object, and
``POCCTL_MOTO_PATCHES=fidelity`` leaves the speed-ups out (to tell a speed-up's bug from moto's).

Why moto's code is replaced (moto 5.2.5, pinned in pyproject.toml):
- moto/sqs/models.py ``Queue.add_message`` and moto/dynamodb/models/table.py ``StreamShard.add``
  run moto's own synchronous event-source-mapping path: it receives SQS messages inside the
  SendMessage request (raising their receive count until they land in the DLQ) and clears
  stream records after a failed invoke. Both loop over ``<obj>.lambda_event_source_mappings``;
  that attribute reads as an empty dict, so moto never sees a mapping. The mappings stay in the
  Lambda backend (list/get/update/delete work) and pocctl's pollers act on them instead.
- moto/sqs/models.py is O(queue length) per message (retention checks that build all queue
  attributes, per-message clock reads through datetime arithmetic, DeleteMessage scanning and
  rebuilding the queue): two thirds of the server's CPU under a 500-order spike.
- moto/core: every request converts its action name char by char, lists its handler's methods
  with ``inspect.getmembers`` and draws a 52-character request ID one ``random.choice`` at a
  time; the dispatcher lists moto's package folder per request: ~30% of the CPU under a spike.
- moto/awslambda/models.py ``LambdaFunction.invoke`` would try Docker: inside a request that came
  through ``invoke_middleware`` the call goes to pocctl's executor; anywhere else moto's runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import json
import os
import string
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

MOTO_VERSION = "5.2.5"
PATCHES_ENV = "POCCTL_MOTO_PATCHES"  # "all" (default) or "fidelity"
KINDS = ("fidelity", "speed")

# (LambdaFunction, body, request_headers, response_headers) -> payload bytes
InvokeRunner = Callable[[Any, Any, Any, dict[str, Any]], bytes]

_install_lock = threading.RLock()
_request = threading.local()
_MISSING: Any = object()


def check_moto_version() -> None:
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(
            f"pocctl's embedded AWS hooks into moto {MOTO_VERSION} internals; "
            f"moto {moto.__version__} is installed (pip install 'moto[server]=={MOTO_VERSION}')"
        )


# -- the registry ----------------------------------------------------------------------------


def resolve(path: str) -> tuple[Any, str]:
    """(owner, attribute name) of "module:Class.attr" or "module:attr"."""
    module_name, _, qualname = path.partition(":")
    owner: Any = importlib.import_module(module_name)
    *parents, attr = qualname.split(".")
    for part in parents:
        owner = getattr(owner, part)
    return owner, attr


def source_hash(obj: Any) -> str:
    """sha256 (16 hex digits) of the source of a function, method or property."""
    obj = getattr(obj, "fget", None) or obj
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


@dataclass(eq=False)
class Patch:
    """One replaced object. ``build`` gets moto's original (None when the target is not set on
    its owner, e.g. an instance attribute) and returns the replacement. ``rebind``: moto modules
    that imported the original by name get the replacement too. ``auto``: installed by
    ``install_all``; otherwise its owner installs it when needed (persist.py, with --data)."""

    name: str
    kind: str
    target: str
    reason: str
    build: Callable[[Any], Any]
    pins: tuple[str, ...]
    rebind: bool = False
    auto: bool = True
    _original: Any = field(default=_MISSING, init=False, repr=False)
    _replacement: Any = field(default=None, init=False, repr=False)

    @property
    def installed(self) -> bool:
        return self._replacement is not None

    @property
    def original(self) -> Any:
        """moto's object this patch replaced (installed), else what the target is now."""
        if self.installed:
            return None if self._original is _MISSING else self._original
        owner, attr = resolve(self.target)
        return owner.__dict__.get(attr)

    def install(self) -> None:
        """Replace the target (idempotent)."""
        with _install_lock:
            if self.installed:
                return
            owner, attr = resolve(self.target)
            original = owner.__dict__.get(attr, _MISSING)
            replacement = self.build(None if original is _MISSING else original)
            # Functions say what they replaced (properties and descriptors cannot).
            with contextlib.suppress(AttributeError):
                replacement._pocctl_hook = True
                replacement._pocctl_original = None if original is _MISSING else original
            setattr(owner, attr, replacement)
            if self.rebind and original is not _MISSING:
                _rebind_in_moto(original, replacement)
            self._original, self._replacement = original, replacement

    def remove(self) -> None:
        """Put moto's original object back, the very same one (idempotent)."""
        with _install_lock:
            if not self.installed:
                return
            owner, attr = resolve(self.target)
            if self._original is _MISSING:
                delattr(owner, attr)
            else:
                setattr(owner, attr, self._original)
                if self.rebind:
                    _rebind_in_moto(self._replacement, self._original)
            self._original, self._replacement = _MISSING, None


def _rebind_in_moto(old: Any, new: Any) -> None:
    for module in list(sys.modules.values()):
        if not getattr(module, "__name__", "").startswith("moto"):
            continue
        for name, value in list(vars(module).items()):
            if value is old:
                setattr(module, name, new)


def _kinds_from_env() -> tuple[str, ...]:
    chosen = os.environ.get(PATCHES_ENV, "all").strip().lower() or "all"
    if chosen in ("all", "fidelity"):
        return KINDS if chosen == "all" else ("fidelity",)
    raise ValueError(f"{PATCHES_ENV} must be 'all' or 'fidelity', not {chosen!r}")


def install_all(kinds: Iterable[str] | None = None) -> list[Patch]:
    """Install the registry's patches of ``kinds`` (default: $POCCTL_MOTO_PATCHES, else all);
    returns those installed. Fidelity patches are always among them."""
    chosen = set(kinds) if kinds is not None else set(_kinds_from_env())
    unknown = chosen - set(KINDS)
    if unknown:
        raise ValueError(f"unknown patch kinds {sorted(unknown)}")
    check_moto_version()
    with _install_lock:
        for patch in PATCHES:
            if patch.auto and patch.kind in chosen | {"fidelity"}:
                patch.install()
    return [p for p in PATCHES if p.installed]


def remove_all() -> None:
    """Put back every original object moto (and requests) had, in reverse order."""
    with _install_lock:
        for patch in reversed(PATCHES):
            patch.remove()


def patch(name: str) -> Patch:
    return _BY_NAME[name]


def moto_original(path: str) -> Any:
    """The object at ``path`` as moto defines it, whether or not a patch replaced it."""
    for p in PATCHES:
        if p.target == path and p.installed:
            return p.original
    owner, attr = resolve(path)
    return owner.__dict__.get(attr, getattr(owner, attr, None))


def table() -> list[tuple[str, str, str]]:
    """(name, kind, target) of every patch, in install order."""
    return [(p.name, p.kind, p.target) for p in PATCHES]


# -- moto's own event-source-mapping path off ------------------------------------------------


class _NoEventSourceMappings:
    """Data descriptor: the attribute always reads as a fresh empty dict. Writes are kept in
    the instance (unread while this is installed), so objects are whole again once removed."""

    def __get__(self, obj: object, owner: type | None = None) -> dict[str, Any]:
        return {}

    def __set__(self, obj: object, value: object) -> None:
        obj.__dict__["lambda_event_source_mappings"] = value


def _no_mappings(original: Any) -> Any:
    return _NoEventSourceMappings()


# -- DynamoDB Streams ------------------------------------------------------------------------


def _describe_disabled_streams(original: Any) -> Any:
    """DescribeStream of a disabled (or replaced) stream answers DISABLED, as on AWS. moto
    raises KeyError (HTTP 500) once the table's stream is off, which a poller still holding the
    old stream ARN would hit during `down`."""

    def describe_stream(self: Any, arn: str) -> dict[str, Any]:
        table = self._get_table_from_arn(arn)
        label = arn.rsplit("/", 1)[-1]
        spec = table.stream_specification or {}
        if spec.get("StreamEnabled") and table.latest_stream_label == label:
            return original(self, arn)  # type: ignore[no-any-return]
        return {
            "StreamArn": arn,
            "StreamLabel": label,
            "StreamStatus": "DISABLED",
            "StreamViewType": spec.get("StreamViewType", "NEW_IMAGE"),
            "TableName": table.name,
            "KeySchema": table.schema,
            "Shards": [],
        }

    return describe_stream


def _replace_disabled_streams(original: Any) -> Any:
    """UpdateTable enables a new stream on a table whose stream was disabled, as AWS does: how a
    stream's view type changes on AWS (disable, then enable).

    DynamoDB Developer Guide, "Change data capture for DynamoDB Streams", Enabling a stream
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html):
    "If you disable and then re-enable a stream on the table, a new stream will be created with a
    different stream descriptor"; enabling a stream on a table that already has one is refused
    (ResourceInUseException), and so is disabling one on a table that has none
    (ValidationException); "If you disable a stream, any shards that are open will be closed".
    moto refuses to enable a stream on any table that ever had one (it tests
    ``latest_stream_label``, which disabling keeps), and its disabled stream kept receiving
    records."""
    from moto.dynamodb.exceptions import MockValidationException, StreamAlreadyEnabledException

    def update_table_streams(self: Any, table: Any, spec: dict[str, Any]) -> None:
        enabled = bool((table.stream_specification or {}).get("StreamEnabled"))
        # moto's own reading of the request: a view type alone also asks for a stream.
        enable = bool(spec.get("StreamEnabled") or spec.get("StreamViewType"))
        if enable and enabled:
            raise StreamAlreadyEnabledException()
        if not enable and not enabled:
            raise MockValidationException(f"Table {table.name} has no stream to disable")
        if not enable:
            # Closed: nothing more is written to it. Iterators already handed out keep their
            # shard, so what it holds stays readable.
            table.stream_shard = None
        table.set_stream_specification(spec)

    return update_table_streams


# AWS: "A shard iterator expires 15 minutes after it is returned to the requester."
ITERATOR_LIFETIME = 15 * 60.0
_PRUNE_EVERY = 30.0


def _expire_stream_iterators(original: Any) -> Any:
    """Shard iterators expire after 15 minutes, as on AWS. moto keeps every iterator it ever
    returned in ``shard_iterators`` and every GetRecords returns a new one: a poller reading ten
    times a second would grow ``pocctl local`` by ~70 MB an hour. An expired iterator answers
    ExpiredIteratorException."""
    from moto.core.exceptions import JsonRESTError

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

    return get_records


# -- SQS: the same behaviour without per-message O(queue length) work -------------------------


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
        # The live list, not a copy: copying touched every message of the queue per receive
        # (O(queue length)). Meanwhile other requests only append (SendMessage), remove
        # (DeleteMessage, a move to the dead-letter queue) or rebind it (PurgeQueue): a walk
        # never sees a message twice, and one it skips is still there for the next receive
        # (AWS: "you might not receive all of the messages" on a short poll, ReceiveMessage,
        # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html).
        # One clock read for the walk: Message.visible / .delayed compare the same fields.
        now = _now_ms()
        return (
            m for m in self._queue._messages if now > m.visible_at and not now < m.delayed_until
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


def _sqs_receipt_handle(original: Any) -> Any:
    """moto's receipt handle, 185 lowercase letters from moto's seedable random, in one draw."""
    import string

    from moto.moto_api._internal import mock_random

    letters = string.ascii_lowercase

    def generate_receipt_handle() -> str:
        return "".join(mock_random.choices(letters, k=185))

    return generate_receipt_handle


def _sqs_unix_time(original: Any) -> Any:
    """moto.sqs's clock without datetime arithmetic (same values)."""

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else original(dt)  # type: ignore[no-any-return]

    return unix_time


def _sqs_unix_time_millis(original: Any) -> Any:
    from moto.core.utils import unix_time as moto_unix_time

    def unix_time_millis(dt: Any = None) -> float:
        return _now_ms() if dt is None else moto_unix_time(dt) * 1000.0

    return unix_time_millis


def _sqs_retention_check(original: Any) -> Any:
    """Reads the retention period straight from the queue (moto builds every queue attribute,
    counting every message, three times per received message)."""

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > time.time())

    return is_message_valid_based_on_retention_period


def _sqs_delete_message(original: Any) -> Any:
    import moto.sqs.models as sqs_models

    def delete_message(self: Any, receipt_handle: str) -> None:
        # Receipt handles are unique: stop at the one message that had it (moto scans the whole
        # queue twice and rebuilds it). Messages are received oldest first, so under a backlog
        # the one being deleted is near the front.
        if receipt_handle in self.deleted_messages:
            return  # already deleted: gracefully, as moto does
        messages = self._messages
        i = next((i for i, m in enumerate(messages) if m.had_receipt_handle(receipt_handle)), None)
        if i is None:
            raise sqs_models.ReceiptHandleIsInvalid()
        message = messages[i]
        self.pending_messages.discard(message)
        self.deleted_messages.update(message.all_receipt_handles)
        # In place: moto's new list copied the whole queue twice per message deleted (O(queue
        # length), touching every message). A receive walks a copy (_VisibleMessages), and a
        # receive moving a message to the dead-letter queue removes it in place too: remove
        # the object (Message has identity equality), not index i, which that may have moved.
        with contextlib.suppress(ValueError):
            messages.remove(message)

    return delete_message


# Every SendMessage builds Queue.attributes (to read ContentBasedDeduplication), and with it
# these counts: two clock reads a message made SendMessage O(queue length) at ~1.5 us a message
# (17 ms at 10,000 queued); one clock read a count, same result.
def _sqs_count_delayed(original: Any) -> Any:
    return property(_count_delayed)


def _sqs_count_not_visible(original: Any) -> Any:
    return property(_count_not_visible)


def _sqs_visible_messages(original: Any) -> Any:
    return property(_VisibleMessages)


# SendMessage / SendMessageBatch read one queue attribute, ContentBasedDeduplication, from
# Queue.attributes, which builds every attribute and with them three message counts, each a walk
# of the whole queue: O(queue length) per message sent (~1 ms at 10,000 queued).
_sending = threading.local()


def _sqs_send_reads_one_attribute(original: Any) -> Any:
    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        depth = getattr(_sending, "depth", 0)
        _sending.depth = depth + 1
        try:
            return original(self, *args, **kwargs)
        finally:
            _sending.depth = depth

    return send_message


def _sqs_attributes_while_sending(original: Any) -> Any:
    """Inside SendMessage, Queue.attributes holds what moto reads there, computed as moto's
    property computes it (FIFO_ATTRIBUTES, booleans lower-cased), without the counts."""
    build = original.fget

    def attributes(self: Any) -> dict[str, Any]:
        if not getattr(_sending, "depth", 0):
            return build(self)  # type: ignore[no-any-return]
        if not self.fifo_queue:
            return {}
        value = self.content_based_deduplication
        return {
            "ContentBasedDeduplication": str(value).lower() if isinstance(value, bool) else value
        }

    return property(attributes)


# -- DynamoDB Streams: records answered as they are stored ----------------------------------


def _stream_records_json(original: Any) -> Any:
    """GetRecords' Records without moto's generic response serializer, which walks the API
    model for every attribute value of every record: 10% of the server's CPU under a spike.
    moto stores each record in its wire form (StreamRecord.to_json: attribute values as
    DynamoDB JSON) but for two kinds of value, converted as moto's serializer converts them:
    ApproximateCreationDateTime, a datetime (moto's own function, epoch seconds to the
    millisecond), and binary values (B, BS), bytes (base64). Anything else unexpected: moto's
    serializer answers. NextShardIterator, headers and status come from moto's serializer."""
    import base64
    import datetime as dt

    from moto.core.responses import ActionResult
    from moto.core.serialize import TimestampSerializer

    stamp = TimestampSerializer._timestamp_unixtimestamp

    def convert(value: object) -> object:
        if isinstance(value, bytes):
            return base64.b64encode(value).decode("ascii")
        if isinstance(value, dt.datetime):
            return stamp(value)
        raise TypeError(type(value).__name__)

    class RecordsResult(ActionResult):  # type: ignore[misc]
        def execute_result(self, context: Any) -> Any:
            result = dict(self.result)  # type: ignore[call-overload]
            records = result.pop("Records", [])
            try:
                records_json = json.dumps(records, default=convert)
            except (TypeError, ValueError):
                return ActionResult(self.result).execute_result(context)
            status, headers, body = ActionResult(result).execute_result(context)
            out = json.loads(body)
            out["Records"] = json.loads(records_json)
            return status, headers, json.dumps(out)

    def get_records(self: Any) -> Any:
        answer = original(self)
        if type(answer) is not ActionResult or not isinstance(answer.result, dict):
            return answer
        return RecordsResult(answer.result)

    return get_records


# -- moto's per-request helpers --------------------------------------------------------------


def _memoised(size: int) -> Callable[[Any], Any]:
    """lru_cache of a pure function. Action and attribute names come from clients (bounded);
    handler classes are fixed once moto is imported."""
    from functools import lru_cache

    return lambda original: lru_cache(maxsize=size)(original)


def _random_hex(original: Any) -> Any:
    """The same alphabet from the same seeded MotoRandom, drawn in one call."""
    from moto.moto_api._internal.moto_random import HEX_CHARS

    def get_random_hex(self: Any, length: int = 8) -> str:
        return "".join(map(str, self.choices(HEX_CHARS, k=length)))

    return get_random_hex


def _random_string(original: Any) -> Any:
    def get_random_string(
        self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False
    ) -> str:
        pool = string.ascii_letters + (string.digits if include_digits else "")
        random_str = "".join(self.choices(pool, k=length))
        return random_str.lower() if lower_case else random_str

    return get_random_string


def _memoised_backend_for_host(original: Any) -> Any:
    """For every request moto lists its package folder and tries ~200 URL patterns, under one
    global lock: ~15% of the server's CPU under load. The answer depends on the host only."""

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        cache: dict[str | None, Any] = self.__dict__.setdefault("_pocctl_backend_for_host", {})
        try:
            return cache[host]
        except KeyError:
            backend = original(self, host)
            if len(cache) < 1024:  # hosts come from clients: bound it
                cache[host] = backend
            return backend

    return get_backend_for_host


# Services whose AWS-managed policies the embedded AWS offers. All 1,500+ make every account
# reset take ~1 s; these are the ones a serverless stack like this one attaches.
_MANAGED_POLICY_SERVICES = ("Lambda", "APIGateway", "DynamoDB", "SQS", "SNS", "CloudWatchLogs")


def _relevant_managed_policies(original: Any) -> str:
    data = json.loads(original)
    keep = {n: d for n, d in data.items() if any(s in n for s in _MANAGED_POLICY_SERVICES)}
    return json.dumps(keep)


# -- calls out of moto -----------------------------------------------------------------------


def _release_locks_around_http(original: Any) -> Any:
    """While moto calls out with ``requests``, the calling thread holds no ServerLock (see
    pocctl.local.server.ServerLock): the call may reach this very server."""

    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        from pocctl.local.server import locks_held

        held = locks_held()
        if not held:
            return original(self, request, *args, **kwargs)
        with contextlib.ExitStack() as stack:
            for lock in held:
                stack.enter_context(lock.released())
            return original(self, request, *args, **kwargs)

    return send


def _invoke_in_executor(original: Any) -> Any:
    """Route ``LambdaFunction.invoke`` to the current LocalAWS request's runner."""

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
        runner: InvokeRunner | None = getattr(_request, "runner", None)
        if runner is None:
            return original(self, body, request_headers, response_headers)
        return runner(self, body, request_headers, response_headers)

    return invoke


def _receive_in_passes(original: Any) -> Any:
    from pocctl.local.persist import receive_in_passes

    return receive_in_passes(original)


def _sns_lambda_event(original: Any) -> Any:
    """SNS -> Lambda with the notification AWS sends, not moto's canned sample event."""

    def publish(
        self: Any,
        message: str,
        message_id: str,
        subject: Any = None,
        message_attributes: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        if self.protocol != "lambda":
            return original(self, message, message_id, subject, message_attributes, *args, **kwargs)
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(
            message_attributes, message
        ):
            return None
        structure = kwargs.get("message_structure", args[2] if len(args) > 2 else None)
        if structure == "json":
            message = self._parse_message_structure(message, self.protocol)
        from moto.awslambda.utils import get_backend

        from pocctl.local.pollers import sns_record

        arn = self.endpoint.split(":")  # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
        post = self.get_post_data(message, message_id, subject, message_attributes)
        event = {
            "Records": [
                sns_record(self.arn, self.topic.arn, post, self.topic.sns_backend.region_name)
            ]
        }
        fn = get_backend(
            self.account_id, arn[3]
        )._lambdas.get_function_by_name_or_arn_with_qualifier(
            arn[6], arn[7] if len(arn) > 7 else None
        )
        fn.invoke(json.dumps(event), {}, {})
        return None

    return publish


# -- the patches, in install order -----------------------------------------------------------

# -- Lambda: validation as AWS, and the mappings' state --------------------------------------


def _queue_by_arn(backend: Any, arn: str) -> Any:
    """The queue ``arn`` names, if it is in the Lambda ``backend``'s account and region (a
    mapping's source is in its function's region; moto itself refuses any other)."""
    from moto.sqs.models import sqs_backends

    _, _, _, region, account, name = (arn.split(":", 5) + [""] * 6)[:6]
    if (account, region) != (backend.account_id, backend.region_name):
        return None
    return sqs_backends[account][region].queues.get(name)


def _validate_create_mapping(original: Any) -> Any:
    """CreateEventSourceMapping refused as AWS refuses it (pocctl/local/validation.py)."""
    from pocctl.local import validation

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        kind = validation.source_kind(str(spec.get("EventSourceArn") or ""))
        if kind:
            validation.check_mapping_settings(kind, spec)
            fn = self._lambdas.get_function_by_name_or_arn_with_qualifier(
                spec.get("FunctionName", "")
            )
            existing = [
                (m.uuid, m.event_source_arn, m.function_arn)
                for m in self._event_source_mappings.values()
            ]
            validation.check_duplicate(kind, spec["EventSourceArn"], fn.function_arn, existing)
            queue = _queue_by_arn(self, spec["EventSourceArn"]) if kind.startswith("sqs") else None
            if queue is not None:
                validation.check_visibility_timeout(
                    queue.name, int(queue.visibility_timeout), int(fn.timeout or 3)
                )
        return original(self, spec)

    return create_event_source_mapping


def _validate_update_mapping(original: Any) -> Any:
    """UpdateEventSourceMapping: the mapping as it would be after the update is checked."""
    from pocctl.local import validation

    def update_event_source_mapping(self: Any, uuid: str, spec: dict[str, Any]) -> Any:
        esm = self._event_source_mappings.get(uuid)
        if esm is not None:
            kind = validation.source_kind(esm.event_source_arn)
            if kind:
                merged = {**original_configuration(esm), **spec}
                validation.check_mapping_settings(kind, merged)
        return original(self, uuid, spec)

    return update_event_source_mapping


def original_configuration(esm: Any) -> dict[str, Any]:
    """moto's GetEventSourceMapping answer for ``esm``, without pocctl's state fields."""
    patched = _BY_NAME["lambda-mapping-state"]
    get = patched.original if patched.installed else type(esm).get_configuration
    return dict(get(esm))


def _validate_create_function(original: Any) -> Any:
    from pocctl.local import validation

    def create_function(self: Any, spec: dict[str, Any]) -> Any:
        validation.check_function_config(spec)
        validation.check_code_size((spec.get("Code") or {}).get("ZipFile"))
        return original(self, spec)

    return create_function


def _validate_function_configuration(original: Any) -> Any:
    from pocctl.local import validation

    def update_function_configuration(
        self: Any, function_name: str, qualifier: str, body: dict[str, Any]
    ) -> Any:
        validation.check_function_config(body)
        return original(self, function_name, qualifier, body)

    return update_function_configuration


def _update_code_architectures(original: Any) -> Any:
    from pocctl.local import validation

    def update_function_code(
        self: Any, function_name: str, qualifier: str, body: dict[str, Any]
    ) -> Any:
        validation.check_code_size(body.get("ZipFile"))
        if body.get("Architectures") is not None:
            # moto's setter refuses what AWS refuses (more than one, or not x86_64/arm64).
            self.get_function(function_name, qualifier).architectures = body["Architectures"]
        return original(self, function_name, qualifier, body)

    return update_function_code


# StateTransitionReason as AWS writes it: "USER_INITIATED" for an SQS mapping, "User action"
# for a stream's (https://docs.aws.amazon.com/cli/latest/reference/lambda/
# get-event-source-mapping.html shows an SQS mapping's; https://docs.aws.amazon.com/lambda/
# latest/dg/with-ddb.html a DynamoDB stream's, with LastProcessingResult "No records
# processed" before the first batch). moto answers "User initiated" and no result.
_SQS_REASON, _STREAM_REASON = "USER_INITIATED", "User action"
_NO_RECORDS = "No records processed"
_RESULT_ATTR = "_pocctl_last_processing_result"


def _mapping_state(original: Any) -> Any:
    def get_configuration(self: Any) -> dict[str, Any]:
        config = dict(original(self))
        is_sqs = str(self.event_source_arn).split(":")[2:3] == ["sqs"]
        config["StateTransitionReason"] = _SQS_REASON if is_sqs else _STREAM_REASON
        result = getattr(self, _RESULT_ATTR, None) or (None if is_sqs else _NO_RECORDS)
        if result:
            config["LastProcessingResult"] = result
        else:
            config.pop("LastProcessingResult", None)
        return config

    return get_configuration


def record_processing_result(function_arn: str, uuid: str, result: str) -> None:
    """Set a mapping's LastProcessingResult (the pollers report each batch's outcome)."""
    from moto.awslambda.models import lambda_backends

    _, _, _, region, account = function_arn.split(":", 5)[:5]
    esm = lambda_backends[account][region]._event_source_mappings.get(uuid)
    if esm is not None:
        setattr(esm, _RESULT_ATTR, result)


def rest_api_home(api_id: str) -> tuple[str, str] | None:
    """(account, region) a REST API was created in (its id is unique across regions here, as
    AWS's invoke host names the region: {api_id}.execute-api.{region}.amazonaws.com), or None."""
    from moto.apigateway.models import apigateway_backends

    for account, region, backend in apigateway_backends.iter_backends():
        if api_id in backend.apis:
            return str(account), str(region)
    return None


def lambda_regions() -> list[str]:
    """The regions in which the embedded AWS has a Lambda backend (any account): only there
    can a function or an event source mapping exist."""
    from moto.awslambda.models import lambda_backends

    return sorted({region for _, region, _ in lambda_backends.iter_backends()})


_SQS = "moto.sqs.models"
_LAMBDA = "moto.awslambda.models"
_STREAMS = "moto.dynamodbstreams.models:DynamoDBStreamsBackend"
_ESM = f"{_LAMBDA}:LambdaBackend.create_event_source_mapping"
_NO_MAPPINGS = (
    "moto's own event-source-mapping path runs inside the event source's request: SendMessage "
    "receives the message (raising its receive count), a failed invoke clears stream records. "
    "On AWS, Lambda reads items from the event source and invokes the function apart from the "
    "source's API (AWS::Lambda::EventSourceMapping, https://docs.aws.amazon.com/"
    "AWSCloudFormation/latest/UserGuide/aws-resource-lambda-eventsourcemapping.html; "
    "https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html): pocctl's pollers do that. "
    "The mappings stay in the Lambda backend."
)

# -- moto's admin views ------------------------------------------------------------------------


class WeakInstances:
    """A model class's ``instances_tracked`` holding its instances weakly, in creation order:
    moto's admin views still list every live instance, and a deleted message, item or stream
    record is freed. moto's list held every instance ever made, so the server grew by every
    order it carried (12,000 SQS messages and 9,000 DynamoDB items still alive after
    `pocctl down` of a 3,000-order spike)."""

    def __init__(self) -> None:
        # id of each weak reference -> the reference (alive while it is in here), in creation
        # order; one callback for all of them takes a dead one out
        self._refs: dict[int, Any] = {}
        refs = self._refs
        self._forget = lambda ref: refs.pop(id(ref), None)

    def append(self, instance: Any) -> None:
        try:
            ref = weakref.ref(instance, self._forget)
        except TypeError:  # a class with __slots__ and no __weakref__: kept, as moto keeps it
            ref = lambda: instance  # noqa: E731 - called as a weak reference is
        self._refs[id(ref)] = ref

    def __iter__(self) -> Iterator[Any]:
        for ref in list(self._refs.values()):
            instance = ref()
            if instance is not None:
                yield instance

    def __len__(self) -> int:
        return len(self._refs)


def _weak_instance_tracking(original: Any) -> Any:
    from moto.core.common_models import BaseModel

    def __new__(cls: Any, *args: Any, **kwargs: Any) -> Any:
        instance = super(BaseModel, cls).__new__(cls)
        tracked = cls.__dict__.get("instances_tracked")
        if not isinstance(tracked, WeakInstances):  # the metaclass's or a reset's fresh list
            tracked = WeakInstances()
            cls.instances_tracked = tracked
        tracked.append(instance)
        return instance

    return staticmethod(__new__)


def _delete_table_frees_items(original: Any) -> Any:
    """DeleteTable as moto answers it; then the deleted table's items are let go. The table
    object itself lives on while its stream's shard iterators name it: a deleted table's stream
    stays readable (DeleteTable: "the stream is automatically deleted after 24 hours",
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_DeleteTable.html), but
    its items are gone, and moto kept them all for as long as any iterator lived."""

    def delete_table(self: Any) -> Any:
        from collections import defaultdict

        try:
            table = self.dynamodb_backend.get_table(self.body["TableName"])
        except Exception:  # noqa: BLE001 - moto answers the error as it does
            table = None
        result = original(self)  # describe() already read: the answer is unchanged
        if table is not None:
            table.items = defaultdict(dict)
        return result

    return delete_table


def _model_data_never_500(original: Any) -> Any:
    """/moto-api/data.json lists every public attribute of every model that serialises to
    JSON; moto catches only TypeError/AttributeError/ValueError while reading them, and a
    Lambda function's ``docker_client`` property connects to Docker (DockerException without
    a Docker daemon): one deployed function made the whole view a 500. Any attribute that
    cannot be read or serialised is left out, as moto leaves out the others."""

    def model_data(self: Any, request: Any, full_url: str, headers: Any) -> Any:
        from moto.core.model_instances import model_data as models_by_service

        results: dict[str, dict[str, list[Any]]] = {}
        for service in sorted(models_by_service):
            models = models_by_service[service]
            results[service] = {}
            for name in sorted(models):
                results[service][name] = [
                    _readable_attributes(i) for i in models[name].instances_tracked
                ]
        return 200, {"Content-Type": "application/javascript"}, json.dumps(results)

    return model_data


def _readable_attributes(instance: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for attr in dir(instance):
        if attr.startswith("_") or attr == "docker_client":  # never dial Docker for a view
            continue
        try:
            value = getattr(instance, attr)
            json.dumps(value)
        except Exception:  # noqa: BLE001 - a view leaves out what it cannot show
            continue
        found[attr] = value
    return found


# -- SNS email: pending until confirmed, and the local inbox (pocctl/local/sns_email.py) -------

_SNS = "moto.sns.models"
_SNS_RESPONSES = "moto.sns.responses:SNSResponse"


def _sns_email(name: str) -> Callable[[Any], Any]:
    def build(original: Any) -> Any:
        from pocctl.local import sns_email

        return getattr(sns_email, name)(original)

    return build


_SNS_EMAIL_PATCHES = [
    Patch(
        "sns-email-pending",
        "fidelity",
        f"{_SNS}:SNSBackend.subscribe",
        "A new email subscription is pending until the link in the confirmation email is "
        "opened (https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.confirm.html); "
        "moto confirms it at once. The confirmation email goes to the local inbox.",
        _sns_email("subscribe_pending"),
        (f"{_SNS}:SNSBackend.subscribe", f"{_SNS}:Subscription.__init__"),
    ),
    Patch(
        "sns-subscribe-pending-answer",
        "fidelity",
        f"{_SNS_RESPONSES}.subscribe",
        'Subscribe answers SubscriptionArn "pending confirmation" for a pending subscription '
        "unless ReturnSubscriptionArn is true (https://docs.aws.amazon.com/sns/latest/api/"
        "API_Subscribe.html).",
        _sns_email("subscribe_answer"),
        (f"{_SNS_RESPONSES}.subscribe",),
    ),
    Patch(
        "sns-list-pending",
        "fidelity",
        f"{_SNS}:Subscription.subscription_arn",
        'ListSubscriptions(ByTopic) show a pending subscription\'s ARN as "PendingConfirmation" '
        "(https://docs.aws.amazon.com/sns/latest/api/API_ListSubscriptionsByTopic.html); moto "
        "serialises Subscription.arn when subscription_arn is absent.",
        _sns_email("listed_arn"),
        (f"{_SNS_RESPONSES}.list_subscriptions_by_topic", f"{_SNS_RESPONSES}.list_subscriptions"),
    ),
    Patch(
        "sns-email-delivery",
        "fidelity",
        f"{_SNS}:Topic.publish",
        "Publish delivers nothing to a pending subscription; a confirmed email subscription "
        "gets the email notification (https://docs.aws.amazon.com/sns/latest/dg/"
        "sns-email-notifications.html), kept in the local inbox. moto's loop, as it is, for "
        "the other protocols.",
        _sns_email("email_delivery"),
        (f"{_SNS}:Topic.publish", f"{_SNS}:Subscription.publish"),
    ),
    Patch(
        "sns-confirm-token",
        "fidelity",
        f"{_SNS_RESPONSES}.confirm_subscription",
        "ConfirmSubscription confirms the subscription holding the token, refuses an unknown "
        "or expired one (https://docs.aws.amazon.com/sns/latest/api/"
        "API_ConfirmSubscription.html); moto accepts any token and answers a made-up ARN.",
        _sns_email("confirm_answer"),
        (f"{_SNS_RESPONSES}.confirm_subscription",),
    ),
]


def _message_move(name: str) -> Callable[[Any], Any]:
    def build(original: Any) -> Any:
        from pocctl.local import message_move

        return getattr(message_move, name)(original)

    return build


# -- CloudWatch metrics of SQS and SNS (pocctl/local/metrics.py) ------------------------------


def _metrics(name: str) -> Callable[[Any], Any]:
    def build(original: Any) -> Any:
        from pocctl.local import metrics

        return getattr(metrics, name)(original)

    return build


def _log_filter(original: Any) -> Any:
    from pocctl.local import log_filter

    return log_filter.event_message_filter_init(original)


# SQS DLQ redrive (pocctl/local/message_move.py): moto 5.2.5 has no such actions.
_MESSAGE_MOVE_PATCHES = [
    Patch(
        f"sqs-{action.replace('_', '-')}",
        "fidelity",
        f"moto.sqs.responses:SQSResponse.{action}",
        "DLQ redrive as AWS does it (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/"
        "APIReference/API_StartMessageMoveTask.html); moto 5.2.5 answers HTTP 500.",
        _message_move(action),
        (
            f"{_SQS}:Queue.__init__",
            f"{_SQS}:Queue.add_message",
            "moto.core.responses:BaseResponse.call_action",
        ),
    )
    for action in ("start_message_move_task", "list_message_move_tasks", "cancel_message_move_task")
]


_SQS_METRICS = "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/"
_METRICS_PATCHES = [
    # One patch for SendMessage's two jobs (the registry replaces a target once): count it for
    # metrics.py, and mark it for sqs-send-attributes (speed).
    Patch(
        "sqs-send-message",
        "fidelity",
        f"{_SQS}:SQSBackend.send_message",
        "SQS publishes NumberOfMessagesSent and SentMessageSize per queue ("
        + _SQS_METRICS
        + "sqs-available-cloudwatch-metrics.html); moto publishes no metric. Also marks "
        "SendMessage (and each entry of SendMessageBatch) for sqs-send-attributes.",
        lambda original: _metrics("sqs_sent")(_sqs_send_reads_one_attribute(original)),
        (
            f"{_SQS}:SQSBackend.send_message",
            f"{_SQS}:SQSBackend.send_message_batch",
            f"{_SQS}:SQSBackend._validate_message",
            f"{_SQS}:Queue.add_message",
        ),
    ),
    Patch(
        "metrics-sqs-received",
        "fidelity",
        "moto.sqs.responses:SQSResponse.receive_message",
        "SQS publishes NumberOfMessagesReceived and NumberOfEmptyReceives per queue ("
        + _SQS_METRICS
        + "sqs-available-cloudwatch-metrics.html).",
        _metrics("sqs_received"),
        ("moto.sqs.responses:SQSResponse.receive_message",),
    ),
    Patch(
        "metrics-sqs-deleted",
        "fidelity",
        f"{_SQS}:SQSBackend.delete_message",
        "SQS publishes NumberOfMessagesDeleted per queue ("
        + _SQS_METRICS
        + "sqs-available-cloudwatch-metrics.html).",
        _metrics("sqs_deleted"),
        (f"{_SQS}:SQSBackend.delete_message", f"{_SQS}:SQSBackend.delete_message_batch"),
    ),
    Patch(
        "metrics-sns-published",
        "fidelity",
        "moto.sns.models:SNSBackend.publish",
        "SNS publishes NumberOfMessagesPublished and PublishSize per topic (https://docs.aws."
        "amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html).",
        _metrics("sns_published"),
        ("moto.sns.models:SNSBackend.publish", "moto.sns.models:SNSBackend.publish_batch"),
    ),
]

PATCHES: list[Patch] = [
    Patch(
        "no-moto-sqs-mappings",
        "fidelity",
        f"{_SQS}:Queue.lambda_event_source_mappings",
        _NO_MAPPINGS,
        _no_mappings,
        (f"{_SQS}:Queue.add_message", _ESM),
    ),
    Patch(
        "no-moto-stream-mappings",
        "fidelity",
        "moto.dynamodb.models.table:Table.lambda_event_source_mappings",
        _NO_MAPPINGS,
        _no_mappings,
        ("moto.dynamodb.models.table:StreamShard.add", _ESM),
    ),
    Patch(
        "lambda-invoke-in-executor",
        "fidelity",
        f"{_LAMBDA}:LambdaFunction.invoke",
        "Invoke runs the function's code (https://docs.aws.amazon.com/lambda/latest/api/"
        "API_Invoke.html): in pocctl's executor for a request through invoke_middleware; "
        "elsewhere moto's own (Docker).",
        _invoke_in_executor,
        (
            f"{_LAMBDA}:LambdaFunction.invoke",
            f"{_LAMBDA}:LambdaBackend.invoke",
            "moto.awslambda.responses:LambdaResponse.invoke",
        ),
    ),
    Patch(
        "describe-disabled-streams",
        "fidelity",
        f"{_STREAMS}.describe_stream",
        "DescribeStream of a disabled stream answers StreamStatus DISABLED (https://docs.aws."
        "amazon.com/amazondynamodb/latest/APIReference/API_streams_StreamDescription.html); "
        "moto answers HTTP 500.",
        _describe_disabled_streams,
        (f"{_STREAMS}.describe_stream",),
    ),
    Patch(
        "replace-disabled-streams",
        "fidelity",
        "moto.dynamodb.models:DynamoDBBackend.update_table_streams",
        "Disabling then enabling a stream creates a new one (https://docs.aws.amazon.com/"
        "amazondynamodb/latest/developerguide/Streams.html); moto refuses the second enable.",
        _replace_disabled_streams,
        ("moto.dynamodb.models:DynamoDBBackend.update_table_streams",),
    ),
    Patch(
        "expire-stream-iterators",
        "fidelity",
        f"{_STREAMS}.get_records",
        "A shard iterator expires 15 minutes after it is returned (https://docs.aws.amazon.com/"
        "amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html); moto keeps "
        "every one for ever (~70 MB an hour under a poller).",
        _expire_stream_iterators,
        (f"{_STREAMS}.get_records",),
    ),
    Patch(
        "release-server-lock-around-http",
        "fidelity",
        "requests.adapters:HTTPAdapter.send",
        "SNS delivers to HTTP/S subscribers (https://docs.aws.amazon.com/sns/latest/dg/"
        "sns-http-https-endpoint-as-subscriber.html), which may be this server: moto calls out "
        "holding the server's lock, so the delivery would wait for ever.",
        _release_locks_around_http,
        ("requests.adapters:HTTPAdapter.send",),
    ),
    Patch(
        "sqs-receive-in-passes",
        "fidelity",
        f"{_SQS}:SQSBackend.receive_message",
        "With --data: a long poll's passes run under the server's lock, so a snapshot never "
        "holds a receive half done; a message received and not deleted comes back after its "
        "visibility timeout, as on AWS (https://docs.aws.amazon.com/AWSSimpleQueueService/"
        "latest/SQSDeveloperGuide/sqs-visibility-timeout.html). Installed by persist.py.",
        _receive_in_passes,
        (f"{_SQS}:SQSBackend.receive_message",),
        auto=False,
    ),
    Patch(
        "lambda-mapping-state",
        "fidelity",
        f"{_LAMBDA}:EventSourceMapping.get_configuration",
        "StateTransitionReason USER_INITIATED (SQS) / User action (streams) and "
        "LastProcessingResult as the pollers report it (https://docs.aws.amazon.com/lambda/"
        "latest/api/API_EventSourceMappingConfiguration.html); moto answers 'User initiated'.",
        _mapping_state,
        (f"{_LAMBDA}:EventSourceMapping.get_configuration",),
    ),
    Patch(
        "lambda-validate-create-mapping",
        "fidelity",
        f"{_LAMBDA}:LambdaBackend.create_event_source_mapping",
        "CreateEventSourceMapping refuses what AWS refuses (https://docs.aws.amazon.com/lambda/"
        "latest/api/API_CreateEventSourceMapping.html): visibility timeout below the function "
        "timeout, duplicate mappings, out-of-range settings (pocctl/local/validation.py).",
        _validate_create_mapping,
        (_ESM,),
    ),
    Patch(
        "lambda-validate-update-mapping",
        "fidelity",
        f"{_LAMBDA}:LambdaBackend.update_event_source_mapping",
        "UpdateEventSourceMapping refuses settings AWS refuses (https://docs.aws.amazon.com/"
        "lambda/latest/api/API_UpdateEventSourceMapping.html).",
        _validate_update_mapping,
        (f"{_LAMBDA}:LambdaBackend.update_event_source_mapping",),
    ),
    Patch(
        "lambda-validate-create-function",
        "fidelity",
        f"{_LAMBDA}:LambdaBackend.create_function",
        "CreateFunction refuses an unknown Runtime, Timeout over 900 s, MemorySize outside "
        "128-10240 MB (https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html), "
        "and a zip over 250 MB unzipped (Lambda quotas); moto accepts python9.99 and any size.",
        _validate_create_function,
        (f"{_LAMBDA}:LambdaBackend.create_function",),
    ),
    Patch(
        "lambda-validate-function-configuration",
        "fidelity",
        f"{_LAMBDA}:LambdaBackend.update_function_configuration",
        "UpdateFunctionConfiguration: the same limits as CreateFunction (https://docs.aws."
        "amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html).",
        _validate_function_configuration,
        (f"{_LAMBDA}:LambdaBackend.update_function_configuration",),
    ),
    Patch(
        "lambda-update-function-code",
        "fidelity",
        f"{_LAMBDA}:LambdaBackend.update_function_code",
        "UpdateFunctionCode takes Architectures and the function then has that one "
        "(https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionCode.html); moto "
        "ignores it, so a function stays x86_64 after it is updated to arm64. And the zip's "
        "contents must be under 250 MB unzipped, as on CreateFunction (Lambda quotas: "
        "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).",
        _update_code_architectures,
        (
            f"{_LAMBDA}:LambdaBackend.update_function_code",
            f"{_LAMBDA}:LambdaFunction.architectures",
        ),
    ),
    Patch(
        "sqs-receipt-handle",
        "speed",
        "moto.sqs.utils:generate_receipt_handle",
        "One random.choices draw of 185 letters instead of 185 random.choice calls, per "
        "message received (the same letters from the same seedable source).",
        _sqs_receipt_handle,
        ("moto.sqs.utils:generate_receipt_handle",),
        rebind=True,
    ),
    Patch(
        "sqs-clock",
        "speed",
        f"{_SQS}:unix_time",
        "time.time() instead of datetime arithmetic, read per message.",
        _sqs_unix_time,
        (f"{_SQS}:unix_time",),
    ),
    Patch(
        "sqs-clock-millis",
        "speed",
        f"{_SQS}:unix_time_millis",
        "time.time() * 1000 instead of datetime arithmetic, read per message.",
        _sqs_unix_time_millis,
        (f"{_SQS}:unix_time_millis",),
    ),
    Patch(
        "sqs-retention-check",
        "speed",
        f"{_SQS}:SQSBackend.is_message_valid_based_on_retention_period",
        "Reads the queue's retention period instead of building all its attributes per message.",
        _sqs_retention_check,
        (
            f"{_SQS}:SQSBackend.is_message_valid_based_on_retention_period",
            f"{_SQS}:Queue._set_attributes",
        ),
    ),
    Patch(
        "sqs-delete-message",
        "speed",
        f"{_SQS}:Queue.delete_message",
        "Stops at the message with the receipt handle (moto scans the queue twice).",
        _sqs_delete_message,
        (f"{_SQS}:Queue.delete_message",),
    ),
    Patch(
        "sqs-visible-messages",
        "speed",
        f"{_SQS}:Queue.messages",
        "A lazy view walked only as far as a receive reads (moto lists every visible message).",
        _sqs_visible_messages,
        (
            f"{_SQS}:Queue.messages",
            f"{_SQS}:Message.visible",
            f"{_SQS}:Message.delayed",
            f"{_SQS}:SQSBackend.receive_message",
            f"{_SQS}:Queue.wait_for_messages",
        ),
    ),
    Patch(
        "sqs-count-delayed",
        "speed",
        f"{_SQS}:Queue.approximate_number_of_messages_delayed",
        "One clock read per count, not two per message (SendMessage builds the counts).",
        _sqs_count_delayed,
        (
            f"{_SQS}:Queue.approximate_number_of_messages_delayed",
            f"{_SQS}:SQSBackend.send_message",
        ),
    ),
    Patch(
        "sqs-count-not-visible",
        "speed",
        f"{_SQS}:Queue.approximate_number_of_messages_not_visible",
        "One clock read per count, not two per message (SendMessage builds the counts).",
        _sqs_count_not_visible,
        (f"{_SQS}:Queue.approximate_number_of_messages_not_visible",),
    ),
    Patch(
        "sqs-send-attributes",
        "speed",
        f"{_SQS}:Queue.attributes",
        "Inside SendMessage only ContentBasedDeduplication, not every attribute and three walks "
        "of the queue to count its messages (SendMessage was O(queue length)).",
        _sqs_attributes_while_sending,
        (f"{_SQS}:Queue.attributes",),
    ),
    Patch(
        "stream-records-json",
        "speed",
        "moto.dynamodbstreams.responses:DynamoDBStreamsHandler.get_records",
        "GetRecords' records written as JSON as moto stores them (already DynamoDB JSON), not "
        "walked through the API model attribute by attribute.",
        _stream_records_json,
        (
            "moto.dynamodbstreams.responses:DynamoDBStreamsHandler.get_records",
            "moto.dynamodb.models.table:StreamRecord.__init__",
            "moto.core.serialize:TimestampSerializer._timestamp_unixtimestamp",
            "moto.dynamodbstreams.models:ShardIterator.get",
        ),
    ),
    Patch(
        "memoise-action-names",
        "speed",
        "moto.core.utils:camelcase_to_underscores",
        "A char-by-char conversion of every request's action name, memoised (pure).",
        _memoised(4096),
        (
            "moto.core.utils:camelcase_to_underscores",
            "moto.core.responses:BaseResponse.call_action",
        ),
        rebind=True,
    ),
    Patch(
        "memoise-handler-methods",
        "speed",
        "moto.core.utils:method_names_from_class",
        "inspect.getmembers of the handler class on every request, memoised (pure).",
        _memoised(256),
        ("moto.core.utils:method_names_from_class",),
        rebind=True,
    ),
    Patch(
        "request-id-hex",
        "speed",
        "moto.moto_api._internal.moto_random:MotoRandom.get_random_hex",
        "The same alphabet from the same seeded MotoRandom, in one call.",
        _random_hex,
        ("moto.moto_api._internal.moto_random:MotoRandom.get_random_hex",),
    ),
    Patch(
        "request-id-string",
        "speed",
        "moto.moto_api._internal.moto_random:MotoRandom.get_random_string",
        "The same alphabets from the same seeded MotoRandom, in one call (52 per request ID).",
        _random_string,
        (
            "moto.moto_api._internal.moto_random:MotoRandom.get_random_string",
            "moto.utilities.aws_headers:gen_amzn_requestid_long",
        ),
    ),
    Patch(
        "memoise-dispatcher",
        "speed",
        "moto.moto_server.werkzeug_app:DomainDispatcherApplication.get_backend_for_host",
        "Which backend serves a host, memoised per dispatcher (moto lists its package folder).",
        _memoised_backend_for_host,
        ("moto.moto_server.werkzeug_app:DomainDispatcherApplication.get_backend_for_host",),
    ),
    Patch(
        "serverless-managed-policies-only",
        "speed",
        "moto.iam.models:aws_managed_policies_data",
        "Only the AWS-managed policies of the services a serverless stack attaches: all 1,500+ "
        "make every account reset take ~1 s (the others are absent, unlike on AWS).",
        _relevant_managed_policies,
        ("moto.iam.models:IAMBackend._init_aws_policies",),
    ),
    Patch(
        "sns-lambda-event",
        "fidelity",
        "moto.sns.models:Subscription.publish",
        "SNS invokes a subscribed function with the notification itself: its MessageId, "
        "Timestamp, TopicArn, attributes and the subscription's ARN (https://docs.aws.amazon.com/"
        "lambda/latest/dg/with-sns.html); moto sends a canned sample (EXAMPLE ARNs and URLs, a "
        "fixed MessageId, made-up attributes).",
        _sns_lambda_event,
        (
            "moto.sns.models:Subscription.publish",
            "moto.awslambda.models:LambdaBackend.send_sns_message",
        ),
    ),
    *_SNS_EMAIL_PATCHES,
    *_MESSAGE_MOVE_PATCHES,
    Patch(
        "logs-filter-patterns",
        "fidelity",
        "moto.logs.utils:EventMessageFilter.__init__",
        "FilterLogEvents' filterPattern as AWS documents it (https://docs.aws.amazon.com/"
        "AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html): ?OR, -exclusions, %regex%; "
        "moto matches every event for a pattern it cannot parse (pocctl/local/log_filter.py).",
        _log_filter,
        (
            "moto.logs.utils:EventMessageFilter.__init__",
            "moto.logs.models:LogStream.filter_log_events",
        ),
    ),
    Patch(
        "weak-instance-tracking",
        "speed",
        "moto.core.common_models:BaseModel.__new__",
        "moto keeps every model instance it ever made in its class's instances_tracked (for its "
        "admin views): every message, item and stream record, for good. Kept weakly instead: "
        "memory goes back down when queues drain and resources are deleted.",
        _weak_instance_tracking,
        (
            "moto.core.common_models:BaseModel.__new__",
            "moto.core.base_backend:InstanceTrackerMeta.__new__",
            "moto.core.model_instances:reset_model_data",
        ),
    ),
    Patch(
        "delete-table-frees-items",
        "speed",
        "moto.dynamodb.responses:DynamoHandler.delete_table",
        "A deleted table's items are dropped; moto kept them reachable through its stream's "
        "shard iterators (for 15 minutes after the last GetRecords).",
        _delete_table_frees_items,
        (
            "moto.dynamodb.responses:DynamoHandler.delete_table",
            "moto.dynamodbstreams.models:ShardIterator.arn",
        ),
    ),
    Patch(
        "moto-api-data-json",
        "fidelity",
        "moto.moto_api._internal.responses:MotoAPIResponse.model_data",
        "`pocctl local --admin`'s /moto-api/data.json answered 500 once a function existed "
        "(LambdaFunction.docker_client raises DockerException): attributes that cannot be read "
        "are left out. Functions run in pocctl's executor, as in Lambda's own execution "
        "environment (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment."
        "html), never in Docker. An admin view, no AWS API.",
        _model_data_never_500,
        ("moto.moto_api._internal.responses:MotoAPIResponse.model_data",),
    ),
    *_METRICS_PATCHES,
]
_BY_NAME = {p.name: p for p in PATCHES}

# sha256 (16 hex digits, source_hash) of the source each patch replaces or relies on, in moto
# 5.2.5 (requests 2.x for HTTPAdapter.send). A mismatch: re-read that code before changing this.
PINNED_SOURCES: dict[str, str] = {
    "moto.moto_api._internal.responses:MotoAPIResponse.model_data": "6bd26e9787fa6e70",
    "moto.sns.models:SNSBackend.subscribe": "56ded2dae9faa4d9",
    "moto.sns.models:Subscription.__init__": "9cd1c85091f55623",
    "moto.sns.responses:SNSResponse.subscribe": "ad34d209fb2b2a63",
    "moto.sns.responses:SNSResponse.list_subscriptions_by_topic": "ece4c74be1fbc923",
    "moto.sns.responses:SNSResponse.list_subscriptions": "9f1b433677ff4131",
    "moto.sns.models:Topic.publish": "8a3b92494536599f",
    "moto.sns.responses:SNSResponse.confirm_subscription": "95625a3fb6faa76c",
    "moto.sns.models:Subscription.publish": "fd07bd0bb87fbe2a",
    "moto.awslambda.models:LambdaBackend.send_sns_message": "93a31ff107e6294f",
    "moto.sqs.models:Queue.add_message": "f27c9231c1f20433",
    "moto.sqs.models:Queue.__init__": "0a4781ed5a21a050",
    "moto.logs.utils:EventMessageFilter.__init__": "0e1ed97a67756862",
    "moto.logs.models:LogStream.filter_log_events": "26285fdf86c34c85",
    "moto.awslambda.models:LambdaBackend.create_event_source_mapping": "19f8125cabf7d67b",
    "moto.dynamodb.models.table:StreamShard.add": "357dc6da267e5dd7",
    "moto.awslambda.models:LambdaFunction.invoke": "dadc324f30aed38b",
    "moto.awslambda.models:LambdaBackend.invoke": "708fb4c92029f2dc",
    "moto.awslambda.responses:LambdaResponse.invoke": "8f68f0bf023a3eb4",
    "moto.dynamodbstreams.models:DynamoDBStreamsBackend.describe_stream": "c4a0d4e858cf5ed5",
    "moto.dynamodb.models:DynamoDBBackend.update_table_streams": "4b36bdd9668813bf",
    "moto.dynamodbstreams.models:DynamoDBStreamsBackend.get_records": "db8c6cb04430c08f",
    "requests.adapters:HTTPAdapter.send": "a8b4a1d8c114e29d",
    "moto.sqs.models:SQSBackend.receive_message": "065f3e5e7d214408",
    "moto.sqs.models:unix_time": "f0576ec9e5f586e5",
    "moto.sqs.utils:generate_receipt_handle": "10853f98152c8dab",
    "moto.core.common_models:BaseModel.__new__": "08cf0ef20e88029a",
    "moto.core.base_backend:InstanceTrackerMeta.__new__": "bee162e12b56986c",
    "moto.core.model_instances:reset_model_data": "4a510e7162954989",
    "moto.dynamodb.responses:DynamoHandler.delete_table": "d4c8a038d061f6e5",
    "moto.dynamodbstreams.models:ShardIterator.arn": "b754bc2b3e245dc3",
    "moto.sqs.models:unix_time_millis": "7a37e1337d02962e",
    "moto.sqs.models:SQSBackend.is_message_valid_based_on_retention_period": "cca23b94a5f3af9d",
    "moto.sqs.models:Queue._set_attributes": "4b7aaf3f46363f13",
    "moto.sqs.models:Queue.delete_message": "fa6fd5b9bd2cafb4",
    "moto.sqs.models:Queue.messages": "03a531dbcbcf9aee",
    "moto.sqs.models:Message.visible": "5129b573308de62a",
    "moto.sqs.models:Message.delayed": "e2fd48abf582683a",
    "moto.sqs.models:Queue.wait_for_messages": "58432562ccf2e13e",
    "moto.sqs.models:Queue.approximate_number_of_messages_delayed": "c3c1dadb0c42ed5f",
    "moto.sqs.models:SQSBackend.send_message": "bf161af09a9e6b86",
    "moto.sqs.models:Queue.approximate_number_of_messages_not_visible": "5dbecc4dda174358",
    "moto.core.utils:camelcase_to_underscores": "084cdc5bab92db95",
    "moto.core.responses:BaseResponse.call_action": "26076963fd17fd1a",
    "moto.core.utils:method_names_from_class": "9dbac89d082b655f",
    "moto.moto_api._internal.moto_random:MotoRandom.get_random_hex": "3ae5a34be792e421",
    "moto.moto_api._internal.moto_random:MotoRandom.get_random_string": "942eb93ebea1f80a",
    "moto.utilities.aws_headers:gen_amzn_requestid_long": "e651941c2107cdc2",
    "moto.moto_server.werkzeug_app:DomainDispatcherApplication.get_backend_for_host": (
        "1f41972c1e4e660f"
    ),
    "moto.iam.models:IAMBackend._init_aws_policies": "b3f2c8c3a9c6a1eb",
    "moto.awslambda.models:EventSourceMapping.get_configuration": "b41577cbcbd7dbb2",
    "moto.awslambda.models:LambdaBackend.update_event_source_mapping": "7ec08b40f6d05196",
    "moto.awslambda.models:LambdaBackend.create_function": "dea879c1b1bc6a09",
    "moto.awslambda.models:LambdaBackend.update_function_configuration": "b11ed261c9acd60e",
    "moto.awslambda.models:LambdaBackend.update_function_code": "da42535db0cfddda",
    "moto.awslambda.models:LambdaFunction.architectures": "93801f81d8ebd388",
    # metrics.py's counters (SendMessageBatch and DeleteMessageBatch go through the single ones;
    # PublishBatch through publish).
    "moto.sqs.models:SQSBackend.send_message_batch": "0707ad219481c867",
    "moto.sqs.responses:SQSResponse.receive_message": "0027050ecd1294f8",
    "moto.sqs.models:SQSBackend.delete_message": "9eb658afdceb6bd9",
    "moto.sqs.models:SQSBackend.delete_message_batch": "53c0bc5d5f51468a",
    "moto.sns.models:SNSBackend.publish": "6356a2b5b79eb3de",
    "moto.sns.models:SNSBackend.publish_batch": "2ddd04189799df50",
    "moto.sqs.models:SQSBackend._validate_message": "39cb57c19e596164",
    "moto.sqs.models:Queue.attributes": "40cb990b121628d5",
    "moto.dynamodbstreams.responses:DynamoDBStreamsHandler.get_records": "eca5821a96bdd10d",
    "moto.dynamodb.models.table:StreamRecord.__init__": "511904c6352cfd9a",
    "moto.core.serialize:TimestampSerializer._timestamp_unixtimestamp": "9b00cea88c916ce0",
    "moto.dynamodbstreams.models:ShardIterator.get": "8932c0f7250e8996",
}


# -- the Invoke API --------------------------------------------------------------------------


def invoke_middleware(runner: InvokeRunner) -> Callable[[Any], Any]:
    """WSGI middleware: requests through it run Lambda code with ``runner``.

    moto handles a request synchronously in the server thread that called the app, so a
    thread-local set around the call reaches the patched ``LambdaFunction.invoke``.
    """
    from pocctl.local.operation import operation_of

    def in_background(fn: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        headers = dict(request_headers or {})
        headers["x-amz-invocation-type"] = "Event"
        return runner(fn, body, headers, response_headers)

    def wrap(app: Any) -> Any:
        def middleware(environ: dict[str, Any], start_response: Any) -> Any:
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
        "role": fn.role,
    }
