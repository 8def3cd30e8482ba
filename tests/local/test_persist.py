"""--data DIR in-process: what a snapshot keeps and restores, the gate that keeps batches whole,
the directory and file checks, and what a stop without --data reports."""

from __future__ import annotations

import collections
import json
import os
import stat
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.localkit import (
    LAMBDA_TRUST,
    NOTIFY_ORDER,
    STORE_ORDER,
    build_stack,
    post,
    wait_for,
    zipped,
)

from pocctl.local import persist
from pocctl.local.persist import (
    SNAPSHOT_NAME,
    DataDirError,
    SnapshotGate,
    may_change_state,
    prepare_data_dir,
    read_header,
    read_snapshot,
    write_snapshot,
)
from pocctl.local.runtime import LocalAWS

from .conftest import LogLines


def start(data: Path | None, *, fresh: bool = True) -> LocalAWS:
    """A LocalAWS; ``fresh``: moto's process-wide state from earlier tests forgotten first."""
    from moto.core.base_backend import BackendDict

    if fresh:
        BackendDict.reset()
    return LocalAWS(port=0, log=LogLines(), data_dir=data, refresh_interval=0.2).start()


def restart(aws: LocalAWS, data: Path) -> LocalAWS:
    """Stop, forget everything in memory (as a new process would), start again on DIR."""
    aws.stop()
    return start(data, fresh=True)


@pytest.fixture
def running() -> Iterator[list[LocalAWS]]:
    started: list[LocalAWS] = []
    yield started
    for aws in started:
        aws.stop()


# -- what comes back ------------------------------------------------------------------------


def test_queues_tables_streams_functions_apis_and_logs_come_back_as_they_were(
    tmp_path: Path, running: list[LocalAWS]
) -> None:
    data = tmp_path / "data"
    aws = start(data)
    running.append(aws)
    stack = build_stack(aws.endpoint_url, mappings=False)
    sqs, ddb, logs = stack.client("sqs"), stack.client("dynamodb"), stack.client("logs")
    attrs = {"source": {"DataType": "String", "StringValue": "test"}}
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="in flight")
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="later", DelaySeconds=60)
    visible = sqs.send_message(
        QueueUrl=stack.queue_url, MessageBody="ready", MessageAttributes=attrs
    )
    (taken,) = sqs.receive_message(QueueUrl=stack.queue_url, VisibilityTimeout=60)["Messages"]
    assert taken["Body"] == "in flight"
    ddb.put_item(TableName="orders", Item={"orderID": {"S": "o-1"}, "n": {"N": "1"}})
    logs.create_log_group(logGroupName="/test/group")
    logs.create_log_stream(logGroupName="/test/group", logStreamName="s")
    logs.put_log_events(
        logGroupName="/test/group",
        logStreamName="s",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": "kept"}],
    )
    code_sha = stack.client("lambda").get_function(FunctionName="POC-Lambda-1")["Configuration"][
        "CodeSha256"
    ]

    aws = restart(aws, data)
    running.append(aws)
    assert aws.restored is not None and aws.restored.header["generation"] >= 1
    stack.clients.clear()  # new clients for the new port
    stack.endpoint = aws.endpoint_url
    sqs, ddb, logs = stack.client("sqs"), stack.client("dynamodb"), stack.client("logs")
    q = sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["All"])["Attributes"]
    assert (
        q["ApproximateNumberOfMessages"],
        q["ApproximateNumberOfMessagesNotVisible"],
        q["ApproximateNumberOfMessagesDelayed"],
    ) == ("1", "1", "1")
    assert json.loads(q["RedrivePolicy"])["maxReceiveCount"] == 3
    (ready,) = sqs.receive_message(QueueUrl=stack.queue_url, MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert ready["MessageId"] == visible["MessageId"]
    assert ready["MessageAttributes"]["source"]["StringValue"] == "test"
    # The in-flight message's receipt handle from before the restart still deletes it.
    sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=taken["ReceiptHandle"])
    q = sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["All"])["Attributes"]
    assert (
        q["ApproximateNumberOfMessages"],
        q["ApproximateNumberOfMessagesNotVisible"],
        q["ApproximateNumberOfMessagesDelayed"],
    ) == ("0", "1", "1")  # "ready" in flight now, "later" still delayed

    item = ddb.get_item(TableName="orders", Key={"orderID": {"S": "o-1"}})["Item"]
    assert item["n"] == {"N": "1"}
    streams = stack.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stack.stream_arn)["StreamDescription"]["Shards"][0]
    it = streams.get_shard_iterator(
        StreamArn=stack.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    (record,) = streams.get_records(ShardIterator=it)["Records"]
    assert record["dynamodb"]["Keys"] == {"orderID": {"S": "o-1"}}

    lam = stack.client("lambda")
    assert lam.get_function(FunctionName="POC-Lambda-1")["Configuration"]["CodeSha256"] == code_sha
    event = {"Records": [{"messageId": "o-2", "body": json.dumps({"item": "soap"})}]}
    out = lam.invoke(FunctionName="POC-Lambda-1", Payload=json.dumps(event).encode())
    assert json.loads(out["Payload"].read()) == {"batchItemFailures": []}  # the code ran
    assert ddb.get_item(TableName="orders", Key={"orderID": {"S": "o-2"}}).get("Item")

    events = logs.get_log_events(logGroupName="/test/group", logStreamName="s")["events"]
    assert [e["message"] for e in events] == ["kept"]
    assert stack.client("iam").get_role(RoleName="POC-Lambda-Role")["Role"]["Arn"] == stack.role_arn
    subs = stack.client("sns").list_subscriptions_by_topic(TopicArn=stack.topic_arn)
    assert [s["Protocol"] for s in subs["Subscriptions"]] == ["sqs"]
    status, answer = post(aws.invoke_url(stack.api_id, "prod"), json.dumps({"item": "wax"}))
    assert status == 200, answer  # the REST API, its deployment and stage answer again


def test_stream_positions_come_back_and_nothing_is_notified_twice(
    tmp_path: Path, running: list[LocalAWS]
) -> None:
    data = tmp_path / "data"
    aws = start(data)
    running.append(aws)
    stack = build_stack(aws.endpoint_url, api=False)
    ddb = stack.client("dynamodb")
    for i in range(3):
        ddb.put_item(TableName="orders", Item={"orderID": {"S": f"a{i}"}, "order": {"S": "{}"}})
    notes: list[str] = []
    wait_for(lambda: stack.drain(stack.probe_url, notes) or len(notes) == 3, what="3 notes")
    last = _last_sequence_number(stack)
    p = aws.persistence
    assert p is not None
    wait_for(lambda: [v.get("after") for v in p.checkpoints.values()] == [last], what="position")
    before = dict(p.checkpoints)

    aws = restart(aws, data)
    running.append(aws)
    assert aws.persistence is not None and dict(aws.persistence.checkpoints) == before
    stack.clients.clear()
    stack.endpoint = aws.endpoint_url
    ddb = stack.client("dynamodb")
    for i in range(2):
        ddb.put_item(TableName="orders", Item={"orderID": {"S": f"b{i}"}, "order": {"S": "{}"}})
    last = _last_sequence_number(stack)
    p = aws.persistence
    wait_for(lambda: [v.get("after") for v in p.checkpoints.values()] == [last], what="position")
    later: list[str] = []
    wait_for(lambda: stack.drain(stack.probe_url, later) or len(later) >= 2, what="2 notes")
    stack.drain(stack.probe_url, later)  # all delivered (the position says): nothing more comes
    assert sorted(json.loads(n)["orderID"] for n in later) == ["b0", "b1"]


def test_a_latest_position_with_nothing_read_yet_survives_and_only_its_iterator_is_kept(
    tmp_path: Path, running: list[LocalAWS]
) -> None:
    """A LATEST trigger that has read nothing yet is positioned by a shard iterator: that one
    is kept (a record written while the trigger was off is still delivered after a restart);
    the other iterators moto remembers are not."""
    data = tmp_path / "data"
    aws = start(data)
    running.append(aws)
    stack = build_stack(aws.endpoint_url, mappings=False, api=False)
    lam = stack.client("lambda")
    uuid = lam.create_event_source_mapping(
        EventSourceArn=stack.stream_arn, FunctionName="POC-Lambda-2", StartingPosition="LATEST"
    )["UUID"]
    p = aws.persistence
    assert p is not None
    position = wait_for(lambda: [v for k, v in p.checkpoints.items() if k[0] == uuid], what="pos")
    assert set(position[0]) == {"iterator"}
    lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    stack.client("dynamodb").put_item(TableName="orders", Item={"orderID": {"S": "while-off"}})

    aws = restart(aws, data)
    running.append(aws)
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    kept = dynamodbstreams_backends["123456789012"]["us-east-1"].shard_iterators
    assert list(kept) == [position[0]["iterator"]]
    stack.clients.clear()
    stack.endpoint = aws.endpoint_url
    stack.client("lambda").update_event_source_mapping(UUID=uuid, Enabled=True)
    notes: list[str] = []
    wait_for(lambda: stack.drain(stack.probe_url, notes) or notes, what="the notification")
    assert [json.loads(n)["orderID"] for n in notes] == ["while-off"]


def _last_sequence_number(stack: Any) -> str:
    streams = stack.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stack.stream_arn)["StreamDescription"]["Shards"][0]
    it = streams.get_shard_iterator(
        StreamArn=stack.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return str(streams.get_records(ShardIterator=it)["Records"][-1]["dynamodb"]["SequenceNumber"])


SLOW_STORE = STORE_ORDER.replace(
    "def handler(event, context):", "import time\n\ndef handler(event, context):\n    time.sleep(1)"
)
SLOW_NOTIFY = NOTIFY_ORDER.replace(
    "def handler(event, context):",
    "import time\n\ndef handler(event, context):\n"
    "    boto3.client('sqs').send_message(QueueUrl=os.environ['STARTED'], MessageBody='x')\n"
    "    time.sleep(1)",
)


def test_no_snapshot_is_taken_between_an_sqs_batchs_receive_and_its_delete(
    tmp_path: Path, running: list[LocalAWS]
) -> None:
    aws = start(tmp_path / "data")
    running.append(aws)
    gate = aws.persistence.gate  # type: ignore[union-attr]
    stack = build_stack(aws.endpoint_url, store_src=SLOW_STORE, api=False)
    stack.client("sqs").send_message(QueueUrl=stack.queue_url, MessageBody='{"item": "soap"}')
    wait_for(lambda: stack.count(stack.queue_url) == 1 and not _visible(stack), what="received")
    assert not gate.acquire_exclusive(0.05)  # Lambda 1 is storing it (a 1 s handler)
    wait_for(lambda: stack.count(stack.queue_url) == 0, what="the message deleted")
    assert gate.acquire_exclusive(5.0)
    gate.release_exclusive()
    assert len(stack.rows()) == 1


def test_no_snapshot_is_taken_between_a_stream_batchs_invoke_and_its_checkpoint(
    tmp_path: Path, running: list[LocalAWS]
) -> None:
    aws = start(tmp_path / "data")
    running.append(aws)
    p = aws.persistence
    assert p is not None
    stack = build_stack(aws.endpoint_url, notify_src=SLOW_NOTIFY, api=False)
    sqs, lam = stack.client("sqs"), stack.client("lambda")
    started = sqs.create_queue(QueueName="started")["QueueUrl"]
    env = {"TOPIC_ARN": stack.topic_arn, "STARTED": started}
    lam.update_function_configuration(FunctionName="POC-Lambda-2", Environment={"Variables": env})
    stack.client("dynamodb").put_item(TableName="orders", Item={"orderID": {"S": "o"}})
    wait_for(lambda: stack.count(started) == 1, what="Lambda 2 started")
    assert not p.gate.acquire_exclusive(0.05)  # publishing (a 1 s handler); no checkpoint yet
    assert not any("after" in v for v in p.checkpoints.values())
    notes: list[str] = []
    wait_for(lambda: stack.drain(stack.probe_url, notes) or notes, what="the notification")
    assert p.gate.acquire_exclusive(5.0)
    try:
        assert [set(v) for v in p.checkpoints.values()] == [{"after"}]  # settled, with its note
    finally:
        p.gate.release_exclusive()


def _visible(stack: Any) -> int:
    attrs = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def test_a_batch_that_takes_too_long_postpones_a_snapshot_then_it_is_forced(
    tmp_path: Path, running: list[LocalAWS], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(persist, "GATE_WAIT", 0.05)
    monkeypatch.setattr(persist, "FORCE_AFTER", 0.5)
    aws = start(tmp_path / "data")
    running.append(aws)
    p = aws.persistence
    assert p is not None
    assert p.snapshot()
    generation = p.generation
    holding, done = threading.Event(), threading.Event()

    def slow_batch() -> None:
        with p.gate.batch():
            holding.set()
            done.wait(10)

    t = threading.Thread(target=slow_batch)
    t.start()
    try:
        holding.wait(5)
        assert not p.snapshot() and p.generation == generation  # postponed
        wait_for(p.snapshot, what="a forced snapshot")
        assert p.last["exact"] is False
        assert read_header(p.directory / SNAPSHOT_NAME)["exact"] is False
    finally:
        done.set()
        t.join()
    assert p.snapshot() and p.last["exact"] is True


def test_a_stop_without_data_counts_every_message_left(running: list[LocalAWS]) -> None:
    aws = start(None)
    running.append(aws)
    from pocctl.local.server import local_client

    sqs = local_client(aws.endpoint_url, "sqs")
    url = sqs.create_queue(QueueName="left")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="visible")
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=60)
    sqs.send_message(QueueUrl=url, MessageBody="in flight")
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=60)
    sqs.create_queue(QueueName="empty")
    aws.stop()
    assert aws.unfinished is not None
    assert aws.unfinished.messages == {"left": 3}
    assert aws.unfinished.describe() == ("3 SQS message(s) queued, delayed or in flight (left 3)")


# -- the directory and the file -------------------------------------------------------------


def test_a_missing_data_dir_is_created_private(tmp_path: Path) -> None:
    d = prepare_data_dir(tmp_path / "a" / "data")
    assert d.is_dir() and stat.S_IMODE(d.stat().st_mode) == 0o700


def test_a_symlink_a_file_or_a_shared_dir_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(DataDirError, match="is a symbolic link"):
        prepare_data_dir(tmp_path / "link")
    (tmp_path / "file").write_text("")
    with pytest.raises(DataDirError, match="is not a directory"):
        prepare_data_dir(tmp_path / "file")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o770)
    with pytest.raises(DataDirError, match="writable by other users.*chmod go-w"):
        prepare_data_dir(shared)
    assert os.listdir(target) == []


def test_a_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, 65534, 65534)
    else:
        theirs = Path("/")  # root's
    with pytest.raises(DataDirError, match="belongs to another user"):
        prepare_data_dir(theirs)


def test_a_dir_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        locked = Path("/sys/kernel")  # root's own, and not writable even by root (sysfs)
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
    with pytest.raises(DataDirError, match="is not writable"):
        prepare_data_dir(locked)


def test_a_dir_in_use_by_another_pocctl_local_is_refused(
    tmp_path: Path, running: list[LocalAWS]
) -> None:
    running.append(start(tmp_path / "data"))
    with pytest.raises(
        DataDirError, match=rf"in use by another pocctl local \(pid {os.getpid()}\)"
    ):
        start(tmp_path / "data", fresh=False)


def _snapshot_dir(tmp_path: Path, payload: bytes = b"payload") -> Path:
    d = prepare_data_dir(tmp_path / "data")
    write_snapshot(d, {"format": 1, **persist.versions(), "generation": 1}, payload)
    return d


def test_a_snapshot_is_written_private_and_read_back_checked(tmp_path: Path) -> None:
    d = _snapshot_dir(tmp_path)
    path = d / SNAPSHOT_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    found = read_snapshot(d)
    assert found is not None and found[1] == b"payload" and found[0]["generation"] == 1
    assert [p.name for p in d.iterdir()] == [SNAPSHOT_NAME]  # no temp file left

    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(DataDirError, match="is damaged"):
        read_snapshot(d)


def test_a_snapshot_of_another_version_is_refused_naming_both(tmp_path: Path) -> None:
    d = prepare_data_dir(tmp_path / "data")
    theirs = {**persist.versions(), "moto": "5.0.0", "python": "3.9"}
    write_snapshot(d, {"format": 1, **theirs}, b"x")
    with pytest.raises(DataDirError) as e:
        read_snapshot(d)
    message = str(e.value)
    assert "with moto 5.0.0 (Python 3.9)" in message
    assert f"with moto {persist.versions()['moto']}" in message
    assert "\n" not in message


def test_a_symlinked_or_shared_snapshot_file_is_not_read(tmp_path: Path) -> None:
    d = prepare_data_dir(tmp_path / "data")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"secret")
    (d / SNAPSHOT_NAME).symlink_to(elsewhere)
    with pytest.raises(DataDirError, match="is a symbolic link"):
        read_snapshot(d)
    (d / SNAPSHOT_NAME).unlink()
    d2 = _snapshot_dir(tmp_path / "two")
    (d2 / SNAPSHOT_NAME).chmod(0o666)
    with pytest.raises(DataDirError, match="not a private file"):
        read_snapshot(d2)
    assert elsewhere.read_bytes() == b"secret"


def test_writing_never_follows_a_planted_link(tmp_path: Path) -> None:
    d = _snapshot_dir(tmp_path)
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    temp = d / f".{SNAPSHOT_NAME}.tmp-{os.getpid()}-{threading.get_ident()}"
    temp.symlink_to(victim)  # where the next temp file would be opened
    with pytest.raises(FileExistsError):
        write_snapshot(d, {"format": 1}, b"new")
    assert victim.read_bytes() == b"keep me"
    temp.unlink()
    (d / SNAPSHOT_NAME).unlink()
    (d / SNAPSHOT_NAME).symlink_to(victim)  # the snapshot itself: replaced, not written through
    write_snapshot(d, {"format": 1}, b"new")
    assert victim.read_bytes() == b"keep me"
    assert not (d / SNAPSHOT_NAME).is_symlink()


def test_temp_files_of_a_killed_snapshot_are_removed(tmp_path: Path) -> None:
    d = _snapshot_dir(tmp_path)
    (d / f".{SNAPSHOT_NAME}.tmp-1-2").write_bytes(b"half")
    persist.remove_stale_temps(d)
    assert sorted(p.name for p in d.iterdir()) == [SNAPSHOT_NAME]


# -- pieces ---------------------------------------------------------------------------------


class _Fn:
    """Stands for a moto object held in a WeakValueDictionary and elsewhere."""


def test_locks_conditions_weak_dicts_and_lambda_defaultdicts_survive_a_pickle() -> None:
    import pickle

    keep = _Fn()
    state = {
        "cond": threading.Condition(),
        "lock": threading.Lock(),
        "rlock": threading.RLock(),
        "fn": keep,
        "weak": weakref.WeakValueDictionary({"a": keep}),
        "aliases": collections.defaultdict(lambda: {}, {"x": {"y": 1}}),
    }
    back = pickle.loads(persist.dumps(state))
    assert isinstance(back["cond"], threading.Condition)
    assert back["weak"]["a"] is back["fn"]
    assert back["aliases"]["x"] == {"y": 1} and back["aliases"]["new"] == {}
    with pytest.raises((AttributeError, pickle.PicklingError)):
        persist.dumps(collections.defaultdict(lambda: 0))  # not an empty container: refused


@pytest.mark.parametrize(
    ("environ", "changes"),
    [
        ({"REQUEST_METHOD": "GET", "PATH_INFO": "/2015-03-31/functions/"}, False),
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem"}, True),
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.Scan"}, False),
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage"}, False),
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "AmazonSQS.SendMessage"}, True),
        ({"REQUEST_METHOD": "POST", "PATH_INFO": "/moto-api/reset"}, True),
        ({"REQUEST_METHOD": "DELETE", "PATH_INFO": "/restapis/abc"}, True),
        ({"REQUEST_METHOD": "POST", "QUERY_STRING": "Action=ListTopics"}, False),
    ],
)
def test_which_requests_ask_for_a_snapshot(environ: dict[str, Any], changes: bool) -> None:
    assert may_change_state(environ) is changes


@pytest.mark.parametrize(
    ("body", "changes"), [(b"Action=Publish&M=1", True), (b"Action=GetTopicAttributes", False)]
)
def test_a_form_body_is_read_for_its_action_and_kept_for_the_server(
    body: bytes, changes: bool
) -> None:
    import io

    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    assert may_change_state(environ) is changes
    assert environ["wsgi.input"].read() == body


def test_the_gate_lets_batches_share_it_and_a_snapshot_wait_for_them() -> None:
    gate = SnapshotGate()
    assert gate.hold() and not gate.hold()  # once per thread
    other_held = threading.Event()
    release_other = threading.Event()

    def other() -> None:
        with gate.batch():
            other_held.set()
            release_other.wait(10)

    t = threading.Thread(target=other)
    t.start()
    other_held.wait(5)
    assert not gate.acquire_exclusive(0.05)
    gate.release()
    assert not gate.acquire_exclusive(0.05)  # the other batch still runs
    release_other.set()
    t.join()
    assert gate.acquire_exclusive(1.0)
    blocked = threading.Event()

    def late_batch() -> None:
        with gate.batch():
            blocked.set()

    t2 = threading.Thread(target=late_batch)
    t2.start()
    assert not blocked.wait(0.1)  # a new batch waits while the snapshot is taken
    gate.release_exclusive()
    t2.join(5)
    assert blocked.is_set()


def test_lambda_code_is_kept_byte_for_byte(tmp_path: Path, running: list[LocalAWS]) -> None:
    aws = start(tmp_path / "data")
    running.append(aws)
    from pocctl.local.server import local_client

    iam, lam = local_client(aws.endpoint_url, "iam"), local_client(aws.endpoint_url, "lambda")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    code = zipped({"f.py": "def handler(e, c):\n    return {'echo': e}\n"})
    lam.create_function(
        FunctionName="f",
        Runtime="python3.12",
        Role=role,
        Handler="f.handler",
        Code={"ZipFile": code},
    )
    aws = restart(aws, tmp_path / "data")
    running.append(aws)
    from moto.awslambda.models import lambda_backends

    fn = lambda_backends["123456789012"]["us-east-1"].get_function("f")
    assert fn.code_bytes == code
    out = local_client(aws.endpoint_url, "lambda").invoke(FunctionName="f", Payload=b'{"a": 1}')
    assert json.loads(out["Payload"].read()) == {"echo": {"a": 1}}


def test_the_receive_hook_relies_on_moto_code_that_is_still_there(
    tmp_path: Path, running: list[LocalAWS]
) -> None:
    """moto 5.2.5's receive_message makes one pass when told not to wait, moves messages to the
    dead-letter queue in it, and waits on the queue's condition between passes."""
    import inspect

    from moto.sqs.models import SQSBackend

    aws = start(tmp_path / "data")
    running.append(aws)
    hooked = SQSBackend.receive_message
    source = inspect.getsource(hooked._pocctl_original)  # type: ignore[attr-defined]
    for needle in (
        "if wait_seconds_timeout == 0:",
        "dead_letter_queue.add_message(message)",
        "queue.wait_for_messages(1)",
    ):
        assert needle in source
    aws.stop()
    assert SQSBackend.receive_message is hooked._pocctl_original  # type: ignore[attr-defined]


def test_a_snapshot_that_cannot_be_written_is_reported_once_and_retried(
    tmp_path: Path, running: list[LocalAWS]
) -> None:
    log = LogLines()
    aws = LocalAWS(port=0, log=log, data_dir=tmp_path / "data").start()
    running.append(aws)
    p = aws.persistence
    assert p is not None and p.snapshot()
    path = p.directory / SNAPSHOT_NAME
    path.unlink()
    path.mkdir()  # rename(2) cannot replace a non-empty directory: the write fails like ENOSPC
    (path / "x").write_text("")
    assert not p.snapshot() and not p.snapshot()
    assert len(log.having("[data] cannot write")) == 1, log.lines
    assert sorted(q.name for q in p.directory.iterdir()) == [persist.LOCK_NAME, SNAPSHOT_NAME]
    (path / "x").unlink()
    path.rmdir()
    assert p.snapshot() and read_header(path)["generation"] == p.generation
    assert log.having("snapshots are written to")


def _messages_on_disk(directory: Path, queue: str) -> int:
    """Messages in ``queue`` in DIR's snapshot (unpickled aside: the live state is untouched)."""
    import pickle

    from moto.sqs.models import SQSBackend

    found = read_snapshot(directory)
    if found is None:
        return -1
    state = pickle.loads(found[1])
    return sum(
        len(backend.queues[queue]._messages)
        for accounts in state["moto"].values()
        for regions in accounts.values()
        for backend in regions.values()
        if isinstance(backend, SQSBackend) and queue in backend.queues
    )


def test_a_change_is_on_disk_within_the_interval_and_snapshots_are_spaced_by_it(
    tmp_path: Path, running: list[LocalAWS]
) -> None:
    """The kill -9 guarantee's timing, with no poller batch to wait for: changes every 0.1 s
    for over a second make a snapshot at most every INTERVAL, and the last change is on disk
    INTERVAL + one snapshot's time after it."""
    aws = start(tmp_path / "data")
    running.append(aws)
    p = aws.persistence
    assert p is not None
    from pocctl.local.server import local_client

    sqs = local_client(aws.endpoint_url, "sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    first = p.generation
    began = time.time()
    pace = threading.Event()
    for i in range(12):
        sqs.send_message(QueueUrl=url, MessageBody=f"order {i}")
        pace.wait(0.1)
    changed = time.time()
    wait_for(lambda: _messages_on_disk(p.directory, "q") == 12, what="the last change on disk")
    on_disk = time.time() - changed
    assert p.generation - first <= (time.time() - began) / persist.INTERVAL + 1
    # Generous for a loaded machine: the design says INTERVAL + a few tens of ms here.
    assert on_disk < persist.INTERVAL + 1.0
