"""`pocctl local --data DIR`: the embedded AWS keeps its state across restarts.

What is kept, in one file (DIR/embedded-aws.snapshot): moto's whole state — every service's
backends: IAM, DynamoDB tables with their streams' records, SQS queues with their messages
(visible, in flight with their visibility deadlines, delayed), Lambda functions with their code
and event source mappings, SNS, API Gateway, CloudWatch Logs — and the positions of pocctl's own
stream pollers (pollers.py), so that after a restart a stream is read on after the last record
delivered. Not kept: DynamoDB shard iterators other than those positions (short-lived handles,
see _streams_backend), asynchronous invocations (InvocationType Event) still running, and log
lines not yet shipped to CloudWatch Logs at a kill -9.

Design. moto keeps everything in plain Python objects under per-service ``BackendDict``s
(moto/core/base_backend.py), so one pickle of them, taken while no request is being applied, is a
complete and consistent copy; restoring puts the objects back into the same dicts before the
server answers its first request. Replaying the API calls instead (moto's recorder) would re-run
every message's send/receive/delete since the first start, getting slower as history grows, and
would not reproduce message ids, receive counts or visibility deadlines.

- A snapshot holds the server's request lock (pocctl.local.server.one_at_a_time) while it pickles,
  so no request is half-applied in it. ReceiveMessage, which the server lets wait outside that
  lock (a long poll), takes the lock for each pass over the queue instead (``receive_message``).
- pocctl's pollers hold a gate (``SnapshotGate``) while a batch is between taken and settled:
  an SQS batch from its receive to its delete, a stream batch from its invoke to its checkpoint.
  A snapshot waits for the gate, so none has a batch half-done: restored, the pipeline goes on
  from a state it really was in — no message handled twice, no stream record notified twice or
  skipped. If a batch holds the gate longer than GATE_WAIT (a slow function) the snapshot is
  retried later; after FORCE_AFTER without one it is taken anyway, and the batches in progress in
  it are delivered again after a restart: at least once, which is what Lambda promises ("Lambda
  event source mappings process each event at least once, and duplicate processing of records
  can occur", https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html).
- Messages in flight keep their visibility deadline (wall-clock): received before a stop, they
  come back when it passes, as on SQS (SQS Developer Guide, "Amazon SQS visibility timeout": a
  message not deleted before its timeout expires becomes visible again,
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/
  sqs-visibility-timeout.html).
- A snapshot starts at most every INTERVAL seconds and only after a request that can change state
  went through or a poller position moved; and once more at a clean stop, after the pollers have
  stopped. It is written atomically: a new temp file (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600),
  fsync, rename over the old one, fsync of DIR. A kill -9 at any moment leaves the previous
  complete snapshot.

Guarantee. After a clean stop (SIGTERM, Ctrl-C) everything accepted before the stop is in the
final snapshot, every poller batch settled. After a kill -9: a change made at time t (an order
accepted: its SendMessage answered) is on disk by t + INTERVAL + W while snapshots take W <
INTERVAL, W being the wait for the pollers' batches in progress (one Lambda invocation), the
pickle under the request lock and the write (~0.04 s with the stack and 1,000 orders on an idle
machine). So at most the last second is lost. While a batch runs longer than GATE_WAIT, snapshots
are postponed, then forced FORCE_AFTER after the last one (see above: at least once).

A snapshot is a pickle: reading one runs code named in it. DIR must therefore be the user's own:
not a symlink, owned by the user, not writable by group or others; the snapshot file likewise.
A snapshot written by another pocctl, moto or Python version is refused (objects' shapes change
between versions), as is a damaged one.
"""

from __future__ import annotations

import collections
import contextlib
import copyreg
import errno
import functools
import hashlib
import io
import json
import logging
import os
import pickle
import stat
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pocctl
from pocctl.local.pollers import POLLER_THREAD_PREFIX

logger = logging.getLogger("pocctl.local")

LogFn = Callable[[str], None]

SNAPSHOT_NAME = "embedded-aws.snapshot"
LOCK_NAME = "embedded-aws.lock"
_TEMP_PREFIX = f".{SNAPSHOT_NAME}.tmp-"
MAGIC = b"pocctl embedded AWS snapshot\n"
FORMAT = 1
_MAX_HEADER = 4096

# A snapshot starts at most this often (seconds), counted from the previous start.
INTERVAL = 0.5
# How long a snapshot waits for the pollers' batches in progress before trying again later
# (new batches wait meanwhile: a pipeline of normal functions is held up for one batch; a
# CPU-starved machine can make that batch take over a second).
GATE_WAIT = 2.0
# How long it waits for the request lock (a request being applied) before trying again later.
LOCK_WAIT = 2.0
# Without a snapshot for this long, one is taken without waiting for batches in progress.
FORCE_AFTER = 5.0


class DataDirError(Exception):
    """--data DIR cannot be used (one line for the user; exit 2)."""


# -- the directory --------------------------------------------------------------------------


def prepare_data_dir(path: Path) -> Path:
    """Create DIR if needed (mode 0700) and check that only this user can put files in it."""
    path = Path(os.path.abspath(path))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        try:
            path.mkdir(mode=0o700, parents=True)
        except OSError as e:
            raise DataDirError(f"--data {path}: cannot create it: {e.strerror or e}") from None
        st = os.lstat(path)
    except OSError as e:
        raise DataDirError(f"--data {path}: {e.strerror or e}") from None
    if stat.S_ISLNK(st.st_mode):
        raise DataDirError(
            f"--data {path} is a symbolic link: give the directory itself "
            "(a link could point the embedded AWS's state somewhere else)"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise DataDirError(f"--data {path} is not a directory")
    if st.st_uid != os.geteuid():
        raise DataDirError(f"--data {path} belongs to another user: use a directory of your own")
    if st.st_mode & 0o022:
        raise DataDirError(
            f"--data {path} is writable by other users, who could plant a snapshot that runs "
            f"their code: chmod go-w {path}"
        )
    _check_writable(path)
    return path


def _check_writable(path: Path) -> None:
    # os.access answers for the real uid and ignores read-only mounts: try it instead.
    probe = path / f"{_TEMP_PREFIX}probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        raise DataDirError(f"--data {path} is not writable: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(probe)


class DirLock:
    """One `pocctl local` per DIR: two writing the same snapshot would overwrite each other."""

    def __init__(self, directory: Path) -> None:
        import fcntl

        self.path = directory / LOCK_NAME
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise DataDirError(f"{self.path} is a symbolic link: remove it") from None
            raise DataDirError(f"{self.path}: {e.strerror or e}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip()
            os.close(self._fd)
            raise DataDirError(
                f"--data {directory} is in use by another pocctl local"
                + (f" (pid {holder})" if holder.isdigit() else "")
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the flock; the file stays, harmless
            self._fd = -1


# -- the file -------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """What a snapshot's objects depend on: it is only read back by the same three."""
    import moto

    return {
        "pocctl": pocctl.__version__,
        "moto": moto.__version__,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


def write_snapshot(directory: Path, header: dict[str, Any], payload: bytes) -> int:
    """Write atomically: a new private temp file, fsync, rename over the old one, fsync DIR."""
    header = {**header, "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    head = MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n"
    temp = directory / f"{_TEMP_PREFIX}{os.getpid()}-{threading.get_ident()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, directory / SNAPSHOT_NAME)  # rename(2) replaces a link, never follows it
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return len(head) + len(payload)


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of a snapshot file (for tools and tests; the payload is not read)."""
    with open(path, "rb") as f:
        if f.readline() != MAGIC:
            raise DataDirError(f"{path} is not a pocctl embedded AWS snapshot")
        header: dict[str, Any] = json.loads(f.readline(_MAX_HEADER))
        return header


def read_snapshot(directory: Path) -> tuple[dict[str, Any], bytes] | None:
    """The header and payload of DIR's snapshot, checked; None when there is none."""
    path = directory / SNAPSHOT_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise DataDirError(f"{path} is a symbolic link: refusing to read it") from None
        raise DataDirError(f"{path}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise DataDirError(
                f"{path} is not a private file of yours (owner, mode 0600): refusing to read it"
            )
        damaged = DataDirError(
            f"{path} is damaged or not a pocctl snapshot: move it away to start empty"
        )
        if f.readline(len(MAGIC)) != MAGIC:
            raise damaged
        try:
            header = json.loads(f.readline(_MAX_HEADER))
        except ValueError:
            raise damaged from None
        if not isinstance(header, dict):
            raise damaged
        _check_versions(path, header)
        payload = f.read()
    if len(payload) != header.get("bytes") or (
        hashlib.sha256(payload).hexdigest() != header.get("sha256")
    ):
        raise damaged
    return header, payload


def _check_versions(path: Path, header: dict[str, Any]) -> None:
    mine = versions()
    theirs = {k: str(header.get(k, "?")) for k in mine}
    if header.get("format") != FORMAT or theirs != mine:
        raise DataDirError(
            f"{path} was saved by pocctl {theirs['pocctl']} with moto {theirs['moto']} "
            f"(Python {theirs['python']}); this is pocctl {mine['pocctl']} with moto "
            f"{mine['moto']} (Python {mine['python']}), which cannot read it back safely: "
            "use another --data DIR, or move the file away to start empty"
        )


def remove_stale_temps(directory: Path) -> None:
    """Temp files of snapshots cut short by a kill: never renamed, so never read."""
    for entry in os.scandir(directory):
        if entry.name.startswith(_TEMP_PREFIX):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)  # unlink removes a link itself, not its target


# -- moto's state ---------------------------------------------------------------------------


def _fresh(cls: Any) -> Callable[[Any], tuple[Any, tuple[()]]]:
    return lambda _obj: (cls, ())


def _weak_values(w: weakref.WeakValueDictionary[Any, Any]) -> tuple[Any, tuple[Any]]:
    # The values are held strongly elsewhere in the same pickle (moto 5.2.5: LambdaStorage._arns).
    return weakref.WeakValueDictionary, (dict(w.items()),)


def _defaultdict(d: collections.defaultdict[Any, Any]) -> tuple[Any, ...]:
    factory = d.default_factory
    if getattr(factory, "__name__", "") == "<lambda>":
        # A lambda cannot be pickled; one making a new empty container is that container's type
        # (moto 5.2.5: LambdaStorage._aliases = defaultdict(lambda: {})).
        sample = factory()  # type: ignore[misc]
        if type(sample) in (dict, list, set) and not sample:
            factory = type(sample)
    return collections.defaultdict, (factory,), None, None, iter(d.items())


# Locks and conditions hold no state worth keeping (nobody waits in a restored process): a new
# one each. moto 5.2.5 has a Condition per SQS queue and a WeakValueDictionary in Lambda.
_DISPATCH = dict(copyreg.dispatch_table)
_DISPATCH.update(
    {
        threading.Condition: _fresh(threading.Condition),
        type(threading.Lock()): _fresh(threading.Lock),
        type(threading.RLock()): _fresh(threading.RLock),
        weakref.WeakValueDictionary: _weak_values,
        collections.defaultdict: _defaultdict,
    }
)


def _blank(cls: type) -> Any:
    return cls.__new__(cls)


def _streams_backend(obj: Any, keep: set[str]) -> tuple[Any, ...]:
    """A DynamoDBStreamsBackend with only the shard iterators a poller position names.

    moto 5.2.5 keeps every iterator it returned (each GetRecords makes one, ~0.8 KB; a stream
    poller reads ten times a second, and moto_hooks expires them only after 15 minutes: up to
    ~7 MB). Iterators are short-lived handles on AWS too ("A shard iterator expires 15 minutes
    after it is returned to the requester", https://docs.aws.amazon.com/amazondynamodb/latest/
    APIReference/API_streams_GetShardIterator.html): a client holding one gets
    ExpiredIteratorException after a restart and asks for a new one.
    """
    state = dict(obj.__dict__)
    state["shard_iterators"] = {k: v for k, v in obj.shard_iterators.items() if k in keep}
    for name in ("_pocctl_born", "_pocctl_pruned"):  # time.monotonic() of this process
        state.pop(name, None)
    return _blank, (type(obj),), state


def dumps(obj: Any, *, keep_iterators: set[str] | None = None) -> bytes:
    """Pickle with the reducers above; with ``keep_iterators``, moto's stream backends keep
    only those shard iterators."""
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    table = _DISPATCH
    if keep_iterators is not None:
        from moto.dynamodbstreams.models import DynamoDBStreamsBackend

        table = {
            **_DISPATCH,
            DynamoDBStreamsBackend: functools.partial(_streams_backend, keep=keep_iterators),
        }
    pickler.dispatch_table = table
    pickler.dump(obj)
    return buf.getvalue()


_addresses: dict[int, tuple[str, str]] = {}


def _address(bd: Any) -> tuple[str, str]:
    """(module, attribute) naming a BackendDict, so a restore fills the very same object."""
    known = _addresses.get(id(bd))
    if known is not None:
        return known
    for name, module in sorted(sys.modules.items()):
        if not name.startswith("moto.") or module is None:
            continue
        for attr, value in vars(module).items():
            if value is bd:
                _addresses[id(bd)] = (name, attr)
                return name, attr
    raise RuntimeError(f"no moto module holds the {bd.service_name} backends")


def moto_state() -> dict[tuple[str, str], dict[str, Any]]:
    """Every moto service's backends in use: {(module, attr): {account: {region: backend}}}."""
    from moto.core.base_backend import BackendDict

    return {_address(bd): dict(bd) for bd in list(BackendDict._instances) if len(bd)}


def restore_moto_state(state: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Replace moto's whole state by ``state`` (before the server serves anything)."""
    import importlib

    from moto.core.base_backend import BackendDict, backend_lock

    with backend_lock:
        for bd in BackendDict._instances:
            dict.clear(bd)
        BackendDict._instances.clear()
        for (module, attr), accounts in state.items():
            bd = getattr(importlib.import_module(module), attr)
            dict.update(bd, accounts)
            BackendDict._instances.append(bd)
    try:
        from moto.dynamodbstreams.models import dynamodbstreams_backends
    except ImportError:  # pragma: no cover - part of moto 5.2.5
        return
    for _, _, backend in dynamodbstreams_backends.iter_backends():
        # moto_hooks.expire_stream_iterators dates iterators on time.monotonic(), which restarts
        # with the process: restored iterators get a fresh 15 minutes from now.
        for name in ("_pocctl_born", "_pocctl_pruned"):
            backend.__dict__.pop(name, None)


# -- what a stop without --data drops --------------------------------------------------------


@dataclass
class Unfinished:
    """Work the embedded AWS had accepted and not finished."""

    messages: dict[str, int] = field(default_factory=dict)  # queue name -> messages in it
    stream_records: int = 0  # records no mapping has delivered yet

    @property
    def total_messages(self) -> int:
        return sum(self.messages.values())

    def __bool__(self) -> bool:
        return bool(self.total_messages or self.stream_records)

    def describe(self) -> str:
        parts = []
        if self.messages:
            queues = ", ".join(f"{n} {c}" for n, c in sorted(self.messages.items()))
            parts.append(
                f"{self.total_messages} SQS message(s) queued, delayed or in flight ({queues})"
            )
        if self.stream_records:
            parts.append(f"{self.stream_records} DynamoDB stream record(s) not yet delivered")
        return " and ".join(parts)


def unfinished_work(checkpoints: dict[tuple[str, str], dict[str, Any]]) -> Unfinished:
    """Messages in every SQS queue (visible, in flight, delayed) and stream records after each
    stream mapping's position. Call with the pollers stopped.

    In flight as SQS counts it: "received from a queue by a consumer, but not yet deleted"
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/
    API_ChangeMessageVisibility.html); such a message is still the queue's, and lost with it.
    """
    import moto.sqs.models as sqs_models

    found = Unfinished()
    for _, _, backend in sqs_models.sqs_backends.iter_backends():
        for name, queue in list(backend.queues.items()):
            count = len(queue._messages)  # deleted messages are removed from it
            if count:
                found.messages[name] = found.messages.get(name, 0) + count
    found.stream_records = _undelivered_stream_records(checkpoints)
    return found


def _undelivered_stream_records(checkpoints: dict[tuple[str, str], dict[str, Any]]) -> int:
    import moto.awslambda.models as lambda_models
    import moto.dynamodb.models as ddb_models
    import moto.dynamodbstreams.models as streams_models

    total = 0
    for account, region, backend in lambda_models.lambda_backends.iter_backends():
        for esm in list(backend._event_source_mappings.values()):
            arn = str(esm.event_source_arn)
            if ":dynamodb:" not in arn or "/stream/" not in arn:
                continue
            table_name, label = arn.split(":", 5)[5].split("/")[1], arn.rsplit("/", 1)[-1]
            table = ddb_models.dynamodb_backends[account][region].tables.get(table_name)
            shard = getattr(table, "stream_shard", None)
            if shard is None or table.latest_stream_label != label:
                continue
            first = _next_sequence_number(
                checkpoints.get((esm.uuid, shard.id)),
                esm.starting_position,
                shard,
                streams_models.dynamodbstreams_backends[account][region],
            )
            total += sum(
                1 for r in list(shard.items) if int(r.record["dynamodb"]["SequenceNumber"]) >= first
            )
    return total


def _next_sequence_number(
    checkpoint: dict[str, Any] | None, starting_position: str | None, shard: Any, streams: Any
) -> int:
    """The first sequence number a mapping has not delivered (pollers.py checkpoint forms)."""
    if checkpoint and "after" in checkpoint:
        return int(checkpoint["after"]) + 1
    if checkpoint and "iterator" in checkpoint:
        it = streams.shard_iterators.get(checkpoint["iterator"])
        if it is not None:
            return int(it.sequence_number)
    if (starting_position or "LATEST") == "TRIM_HORIZON":
        return int(shard.starting_sequence_number)
    return int(shard.starting_sequence_number) + len(shard.items)  # LATEST: nothing pending


# -- the pollers' gate ----------------------------------------------------------------------


class SnapshotGate:
    """Shared by pollers while a batch is between taken and settled; taken alone by a snapshot.

    A thread holds it at most once (``hold`` again is a no-op) until ``release``. While a
    snapshot waits, new batches wait too, so a busy pipeline cannot starve it.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holders = 0
        self._exclusive = False
        self._waiting = 0
        self._mine = threading.local()

    def held(self) -> bool:
        return bool(getattr(self._mine, "held", False))

    def hold(self) -> bool:
        """Hold it for this thread's batch; True if this call took it (False: already held)."""
        if self.held():
            return False
        with self._cond:
            self._cond.wait_for(lambda: not self._exclusive and not self._waiting)
            self._holders += 1
        self._mine.held = True
        return True

    def release(self) -> None:
        if not self.held():
            return
        self._mine.held = False
        with self._cond:
            self._holders -= 1
            self._cond.notify_all()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        took = self.hold()
        try:
            yield
        finally:
            if took:
                self.release()

    def acquire_exclusive(self, timeout: float) -> bool:
        with self._cond:
            self._waiting += 1
            try:
                got = self._cond.wait_for(
                    lambda: not self._holders and not self._exclusive, timeout
                )
            finally:
                self._waiting -= 1
                if not self._waiting:
                    self._cond.notify_all()  # batches waiting behind us may go on
            if got:
                self._exclusive = True
            return bool(got)

    def release_exclusive(self) -> None:
        with self._cond:
            self._exclusive = False
            self._cond.notify_all()


class TrackedCheckpoints(dict):  # type: ignore[type-arg]
    """The pollers' positions; every change asks for a snapshot."""

    def __init__(self, on_change: Callable[[], None], *args: Any) -> None:
        super().__init__(*args)
        self._on_change = on_change

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self._on_change()

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self._on_change()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key in self:
            return self[key]
        self[key] = default
        return default

    def pop(self, *args: Any) -> Any:
        value = super().pop(*args)
        self._on_change()
        return value

    def clear(self) -> None:
        super().clear()
        self._on_change()

    def __reduce__(self) -> Any:  # pickled as the plain dict it is
        return dict, (dict(self),)


# -- reads and writes -----------------------------------------------------------------------

# Actions that change nothing a snapshot keeps (moto's shard iterators aside, which GetRecords
# adds and the pollers' checkpoints track). ReceiveMessage is judged by receive_message itself.
_READ_ONLY = ("Get", "List", "Describe", "Query", "Scan", "BatchGet", "Receive")


def may_change_state(environ: dict[str, Any]) -> bool:
    """Whether a request can change what a snapshot keeps (unsure: yes)."""
    if environ.get("REQUEST_METHOD", "GET") in ("GET", "HEAD", "OPTIONS"):
        return False
    from pocctl.local.operation import operation_of

    try:
        op = operation_of(environ)
    except (ValueError, OSError):
        return True
    if op.protocol not in ("json", "query"):
        return True  # REST (Lambda, API Gateway), moto's admin API: judged by the method
    return not op.name.startswith(_READ_ONLY)


# The Persistence in use (one LocalAWS per process), for the ReceiveMessage hook.
_active: Persistence | None = None


def receive_in_passes(original: Any) -> Any:
    """ReceiveMessage in passes, each under the request lock (see module doc): the replacement
    of moto's ``SQSBackend.receive_message`` that moto_hooks' "sqs-receive-in-passes" installs.

    moto 5.2.5 ``SQSBackend.receive_message`` long-polls in one loop that changes the queue (marks
    messages received, moves some to the dead-letter queue) outside any lock the server holds.
    Here each pass is moto's own with no wait, under the lock; between passes it waits on the
    queue's condition as moto does. A pocctl poller's thread takes the snapshot gate before a pass
    and keeps it when the pass returned messages (the poller releases it once they are settled).
    """

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        active = _active
        if active is None or active.request_lock is None:
            return original(  # type: ignore[no-any-return]
                self,
                queue_name,
                count,
                wait_seconds_timeout,
                visibility_timeout,
                message_attribute_names,
            )
        return active.receive(
            lambda: original(
                self, queue_name, count, 0, visibility_timeout, message_attribute_names
            ),
            self.get_queue(queue_name),
            float(wait_seconds_timeout or 0),
        )

    return receive_message


def install_receive_hook() -> None:
    """ReceiveMessage in passes (idempotent; see receive_in_passes)."""
    from pocctl.local import moto_hooks

    moto_hooks.patch("sqs-receive-in-passes").install()


def uninstall_receive_hook() -> None:
    """moto's own receive_message again (a LocalAWS without --data may follow in-process)."""
    from pocctl.local import moto_hooks

    moto_hooks.patch("sqs-receive-in-passes").remove()


# -- the snapshots --------------------------------------------------------------------------


@dataclass
class Restored:
    header: dict[str, Any]
    seconds: float  # reading and restoring


class Persistence:
    """Snapshots of the embedded AWS in DIR: ``open`` (restore) before serving, ``start`` the
    periodic snapshots once serving, ``close`` for the final one at a clean stop."""

    def __init__(self, directory: Path, *, log: LogFn, interval: float = INTERVAL) -> None:
        self.directory = Path(directory)
        self._log = log
        self.interval = interval
        self.gate = SnapshotGate()
        self.checkpoints = TrackedCheckpoints(self.mark_dirty)
        self.request_lock: Any = None
        self.generation = 0
        self.last: dict[str, Any] = {}  # the last snapshot's header, plus "seconds"
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_start = 0.0
        self._last_ok = time.monotonic()
        self._failures = 0
        self._dir_lock: DirLock | None = None
        self._closed = False
        self._one_at_a_time = threading.Lock()  # the thread's snapshots and direct calls
        self.saved_at_close = False  # the final snapshot was written

    # -- lifecycle

    def open(self) -> Restored | None:
        """Check and lock DIR; restore its snapshot if there is one. Raises DataDirError."""
        self.directory = prepare_data_dir(self.directory)
        self._dir_lock = DirLock(self.directory)
        try:
            remove_stale_temps(self.directory)
            started = time.perf_counter()
            found = read_snapshot(self.directory)
            if found is None:
                return None
            header, payload = found
            try:
                state = pickle.loads(payload)  # noqa: S301 (DIR and file checked: the user's own)
            except Exception as e:
                raise DataDirError(
                    f"{self.directory / SNAPSHOT_NAME} cannot be read back ({type(e).__name__}: "
                    f"{str(e)[:80]}): move it away to start empty"
                ) from None
            restore_moto_state(state["moto"])
            dict.update(self.checkpoints, state["checkpoints"])
        except BaseException:
            self._dir_lock.release()
            raise
        self.generation = int(header.get("generation", 0))
        self.last = dict(header)
        return Restored(header, time.perf_counter() - started)

    def start(self, request_lock: Any) -> None:
        global _active
        self.request_lock = request_lock
        install_receive_hook()
        _active = self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pocctl-snapshots", daemon=True)
        self._thread.start()

    def close(self) -> bool:
        """The final snapshot, after the pollers stopped. The request lock stays held, so a
        request still arriving is never answered: nothing is accepted after it."""
        global _active
        if self._closed:
            return False
        self._closed = True
        self._stop.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        ok = self.saved_at_close = self.snapshot(final=True)
        if _active is self:
            _active = None
            uninstall_receive_hook()
        if self._dir_lock is not None:
            self._dir_lock.release()
        return ok

    # -- requests

    def mark_dirty(self) -> None:
        self._dirty.set()

    def middleware(self, app: Any) -> Any:
        """WSGI middleware: a request that may have changed state asks for a snapshot once it
        has been applied."""

        def middleware(environ: dict[str, Any], start_response: Any) -> Any:
            changes = may_change_state(environ)
            result = app(environ, start_response)
            if changes:
                self._dirty.set()
            return result

        return middleware

    def receive(self, one_pass: Callable[[], list[Any]], queue: Any, wait: float) -> list[Any]:
        """ReceiveMessage as passes under the request lock (see install_receive_hook)."""
        poller = threading.current_thread().name.startswith(POLLER_THREAD_PREFIX)
        deadline = time.monotonic() + wait
        while True:
            took = self.gate.hold() if poller else False
            try:
                with self.request_lock:
                    before = len(queue._messages)
                    result = one_pass()
                    moved = len(queue._messages) != before  # to the dead-letter queue
            except BaseException:
                if took:
                    self.gate.release()
                raise
            if result or moved:
                self._dirty.set()
            if result:
                return result
            if took:
                self.gate.release()
            left = deadline - time.monotonic()
            if left <= 0:
                return result
            began = time.monotonic()
            queue.wait_for_messages(min(left, 1.0))
            if time.monotonic() - began < 0.005:
                # Visible messages none could take (a FIFO group in flight): moto would spin.
                time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))

    # -- snapshots

    def _run(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            delay = self._last_start + self.interval - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            try:
                ok = self.snapshot()
            except Exception:  # the thread must live on: the next change tries again
                ok = self._failed()
            if not ok:
                self._stop.wait(self.interval)  # could not: try again a little later

    def snapshot(self, *, final: bool = False) -> bool:
        """Take one snapshot and write it; False if it could not be taken now."""
        if self.request_lock is None:  # never started serving: nothing to keep
            return False
        with self._one_at_a_time:
            return self._snapshot(final)

    def _snapshot(self, final: bool) -> bool:
        # At a stop the pollers have stopped: the waits are short, and bounded so that a
        # stuck request cannot keep the process from exiting.
        self._last_start = time.monotonic()
        started = time.perf_counter()
        exact = self.gate.acquire_exclusive(GATE_WAIT if not final else 2.0)
        try:
            if not exact and not final and time.monotonic() - self._last_ok < FORCE_AFTER:
                logger.debug("snapshot postponed: a poller's batch is still in progress")
                return False
            if not self.request_lock.acquire(timeout=LOCK_WAIT if not final else 2.0):
                logger.debug("snapshot postponed: a request holds the server")
                return False
            try:
                taken_at = time.time()
                self._dirty.clear()
                payload = self._pickle()
            except Exception:
                self.request_lock.release()
                self._dirty.set()
                return self._failed()
            if not final:
                self.request_lock.release()
        finally:
            if exact:
                self.gate.release_exclusive()
        frozen = time.perf_counter() - started
        return self._write(payload, taken_at, exact, frozen, started)

    def _pickle(self) -> bytes:
        from moto.core.base_backend import backend_lock

        checkpoints = dict(self.checkpoints)
        keep = {str(cp["iterator"]) for cp in checkpoints.values() if "iterator" in cp}
        with backend_lock:
            return dumps({"moto": moto_state(), "checkpoints": checkpoints}, keep_iterators=keep)

    def _write(
        self, payload: bytes, taken_at: float, exact: bool, frozen: float, started: float
    ) -> bool:
        header = {
            "format": FORMAT,
            **versions(),
            "generation": self.generation + 1,
            "taken_at": taken_at,
            "exact": exact,
        }
        try:
            size = write_snapshot(self.directory, header, payload)
        except OSError as e:
            self._dirty.set()
            return self._failed(f"cannot write {self.directory / SNAPSHOT_NAME}: {e.strerror}")
        self.generation += 1
        self._last_ok = time.monotonic()
        if self._failures:
            self._log(f"[data] snapshots are written to {self.directory} again")
        self._failures = 0
        self.last = {
            **header,
            "bytes": size,
            "seconds": time.perf_counter() - started,
            "frozen_seconds": frozen,
        }
        return True

    def _failed(self, reason: str = "") -> bool:
        self._failures += 1
        if self._failures % 20 == 1:  # once, then now and then: not twice a second
            logger.debug("snapshot failed", exc_info=not reason)
            self._log(
                f"[data] {reason or 'could not take a snapshot of the embedded AWS'}; "
                "retrying (the last saved one stays)"
            )
        return False
