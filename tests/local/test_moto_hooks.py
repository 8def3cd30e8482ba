"""The registry of pocctl.local's patches of moto (pocctl/local/moto_hooks.py): pins on the moto
5.2.5 code each one replaces or relies on, install and remove, and proof that moto's own synchronous
event-source-mapping path is off in the embedded server.

If a moto upgrade moves any of this, these tests fail and say what moved."""

from __future__ import annotations

import inspect
import json

import moto
import pytest
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda.responses import LambdaResponse
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import StreamShard, Table
from moto.sqs.models import Queue, SQSBackend
from support.localkit import LAMBDA_TRUST, build_stack, zipped

from pocctl.local import moto_hooks
from pocctl.local.server import local_client


def _install(*prefixes: str) -> None:
    for p in moto_hooks.PATCHES:
        if p.name.startswith(prefixes) and p.auto:
            p.install()


def test_moto_is_the_pinned_version() -> None:
    assert moto.__version__ == moto_hooks.MOTO_VERSION == "5.2.5"
    moto_hooks.check_moto_version()


@pytest.mark.parametrize(
    ("func", "needles"),
    [
        (Queue.add_message, ["self.lambda_event_source_mappings.items()", "send_sqs_batch"]),
        (
            StreamShard.add,
            ["self.table.lambda_event_source_mappings.items()", "send_dynamodb_items"],
        ),
        (
            LambdaBackend.create_event_source_mapping,
            [
                "queue.lambda_event_source_mappings[esm.function_arn] = esm",
                "table.lambda_event_source_mappings[esm.function_arn] = esm",
            ],
        ),
        # the Invoke API reaches LambdaFunction.invoke, which we wrap
        (LambdaResponse.invoke, ["self.backend.invoke("]),
        (LambdaBackend.invoke, ["fn.invoke(body, headers, response_headers)"]),
        # moto refuses a new stream on a table that ever had one; replace_disabled_streams
        (
            DynamoDBBackend.update_table_streams,
            ["and table.latest_stream_label", "raise StreamAlreadyEnabledException"],
        ),
        # moto's SQS applies the RedrivePolicy on receive; the pollers rely on it
        (
            SQSBackend.receive_message,
            ['queue.redrive_policy["maxReceiveCount"]', "dead_letter_queue.add_message"],
        ),
    ],
    ids=lambda v: getattr(v, "__qualname__", ""),
)
def test_hooked_moto_code_is_where_we_expect(func, needles) -> None:  # type: ignore[no-untyped-def]
    original = getattr(func, "_pocctl_original", func)
    source = inspect.getsource(original)
    for needle in needles:
        assert needle in source, f"moto moved {original.__qualname__}: {needle!r} not found"


def test_switch_off_is_a_class_descriptor_that_stays_empty(embedded_server) -> None:  # type: ignore[no-untyped-def]
    for cls in (Queue, Table):
        assert isinstance(
            cls.__dict__["lambda_event_source_mappings"], moto_hooks._NoEventSourceMappings
        )
    q = Queue.__new__(Queue)
    q.lambda_event_source_mappings = {"x": 1}
    q.lambda_event_source_mappings["y"] = 2
    assert q.lambda_event_source_mappings == {}


def test_lambda_function_fields_exist(aws_endpoint: str) -> None:
    lam = local_client(aws_endpoint, "lambda")
    iam = local_client(aws_endpoint, "iam")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    code = zipped({"m.py": "def h(e, c):\n    return 1\n"})
    lam.create_function(
        FunctionName="f",
        Runtime="python3.12",
        Role=role,
        Handler="m.h",
        Code={"ZipFile": code},
        Environment={"Variables": {"A": "1"}},
    )
    from moto.awslambda.models import lambda_backends

    fn = lambda_backends["123456789012"]["us-east-1"].get_function("f")
    assert isinstance(fn, LambdaFunction)
    fields = moto_hooks.lambda_function_fields(fn)
    assert fields["code"] == code  # the uploaded zip, byte for byte
    assert fields["env"] == {"A": "1"} and fields["handler"] == "m.h"
    assert fields["role"] == role  # the execution role, whose credentials the function gets
    assert (
        fields["code_sha256"] == lam.get_function(FunctionName="f")["Configuration"]["CodeSha256"]
    )


def test_message_stays_in_queue_without_a_poller(aws_endpoint: str) -> None:
    """With an enabled SQS mapping and nothing polling, SendMessage leaves the message alone
    (moto's own path would receive it inside the request and raise its receive count)."""
    s = build_stack(aws_endpoint, api=False)
    sqs = s.client("sqs")
    sqs.send_message(QueueUrl=s.queue_url, MessageBody=json.dumps({"id": 1}))
    attrs = sqs.get_queue_attributes(QueueUrl=s.queue_url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "1"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    msg = sqs.receive_message(QueueUrl=s.queue_url, AttributeNames=["All"])["Messages"][0]
    assert msg["Attributes"]["ApproximateReceiveCount"] == "1"  # first receive is ours
    assert s.count(s.dlq_url) == 0
    # The mappings still exist for the Lambda API (our pollers read them from there).
    uuids = {
        m["UUID"] for m in s.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    }
    assert {s.sqs_mapping, s.stream_mapping} <= uuids


def test_stream_records_stay_readable(aws_endpoint: str) -> None:
    """PutItem on a table whose stream has a mapping keeps the stream record."""
    s = build_stack(aws_endpoint, api=False)
    ddb, streams = s.client("dynamodb"), s.client("dynamodbstreams")
    for i in range(3):
        ddb.put_item(TableName="orders", Item={"orderID": {"S": f"o{i}"}})
    shard = streams.describe_stream(StreamArn=s.stream_arn)["StreamDescription"]["Shards"][0]
    it = streams.get_shard_iterator(
        StreamArn=s.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=it)["Records"]
    assert [r["dynamodb"]["Keys"]["orderID"]["S"] for r in records] == ["o0", "o1", "o2"]
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3


def test_invoke_outside_local_aws_is_moto_s_own(aws_endpoint: str) -> None:
    """The invoke hook only acts on requests that came through a LocalAWS server."""
    moto_hooks.patch("lambda-invoke-in-executor").install()
    lam = local_client(aws_endpoint, "lambda")
    role = local_client(aws_endpoint, "iam").create_role(
        RoleName="r", AssumeRolePolicyDocument=LAMBDA_TRUST
    )["Role"]["Arn"]
    lam.create_function(
        FunctionName="f",
        Runtime="python3.12",
        Role=role,
        Handler="m.h",
        Code={"ZipFile": zipped({"m.py": "def h(e, c):\n    return 42\n"})},
    )
    resp = lam.invoke(FunctionName="f", Payload=b"{}")
    assert resp["Payload"].read() != b"42"  # moto's Docker path, not our executor


def test_sqs_speed_up_pins_and_equivalence() -> None:
    import time

    import moto.sqs.models as sqs_models
    from moto.core.utils import unix_time, unix_time_millis
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    _install("sqs-")
    original = SQSBackend.is_message_valid_based_on_retention_period._pocctl_original  # type: ignore[attr-defined]
    source = inspect.getsource(original)
    assert '["MessageRetentionPeriod"]' in source and "message.sent_timestamp" in source
    # Queue keeps each attribute as a snake_case field (the speed-up reads this one).
    assert "setattr(self, camelcase_to_underscores(key), value)" in inspect.getsource(
        Queue._set_attributes
    )
    # Same clock, same units as moto's own helpers.
    assert abs(sqs_models.unix_time() - unix_time()) < 0.05
    assert abs(sqs_models.unix_time_millis() - unix_time_millis()) < 50
    assert abs(sqs_models.unix_time() - time.time()) < 0.05
    # Receipt handles: what moto's own generator makes (length, letters), from the seedable
    # random moto's /moto-api/seed sets (same seed, same handle).
    from moto.moto_api._internal import mock_random

    moto_handle = moto_hooks.patch("sqs-receipt-handle").original
    assert moto_handle is not None and moto_handle is not sqs_models.generate_receipt_handle
    assert "random.choice(string.ascii_lowercase)" in inspect.getsource(moto_handle)
    ours = sqs_models.generate_receipt_handle()
    assert len(ours) == len(moto_handle()) == 185 and ours.isascii() and ours.islower()
    mock_random.seed(7)
    first = sqs_models.generate_receipt_handle()
    mock_random.seed(7)
    assert sqs_models.generate_receipt_handle() == first
    # the dispatcher method the "memoise-dispatcher" patch memoises
    assert "list_of_moto_modules" in inspect.getsource(
        getattr(
            DomainDispatcherApplication.get_backend_for_host,
            "_pocctl_original",
            DomainDispatcherApplication.get_backend_for_host,
        )
    )


def test_retention_check_still_expires_messages(aws_endpoint: str) -> None:
    sqs = local_client(aws_endpoint, "sqs")
    url = sqs.create_queue(QueueName="short", Attributes={"MessageRetentionPeriod": "60"})[
        "QueueUrl"
    ]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    from moto.sqs.models import sqs_backends

    backend = sqs_backends["123456789012"]["us-east-1"]
    message = backend.get_queue("short")._messages[0]
    assert backend.is_message_valid_based_on_retention_period("short", message)
    message.sent_timestamp -= 61_000
    assert not backend.is_message_valid_based_on_retention_period("short", message)


def test_stream_iterators_expire_after_fifteen_minutes(aws_endpoint: str) -> None:
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend, dynamodbstreams_backends

    moto_hooks.patch("expire-stream-iterators").install()
    assert "shard_iterators[iterator_arn]" in inspect.getsource(
        DynamoDBStreamsBackend.get_records._pocctl_original  # type: ignore[attr-defined]
    )
    s = build_stack(aws_endpoint, api=False, mappings=False)
    streams = s.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=s.stream_arn)["StreamDescription"]["Shards"][0]
    first = streams.get_shard_iterator(
        StreamArn=s.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    nxt = streams.get_records(ShardIterator=first)["NextShardIterator"]
    backend = dynamodbstreams_backends["123456789012"]["us-east-1"]
    # Age every iterator past the lifetime and force a prune on the next call.
    for arn in list(backend._pocctl_born):
        backend._pocctl_born[arn] -= moto_hooks.ITERATOR_LIFETIME + 1
    backend._pocctl_pruned = 0.0
    streams.get_records(ShardIterator=nxt)
    assert first not in backend.shard_iterators
    with pytest.raises(streams.exceptions.ExpiredIteratorException):
        streams.get_records(ShardIterator=first)


def test_request_path_speed_up_pins_and_equivalence() -> None:
    import re

    import moto.core.responses as core_responses
    import moto.sqs.models as sqs_models
    from moto.core.responses import BaseResponse
    from moto.moto_api._internal.moto_random import MotoRandom
    from moto.sqs.responses import SQSResponse
    from moto.utilities.aws_headers import gen_amzn_requestid_long

    _install("memoise-", "request-id-")
    _install("memoise-", "request-id-")  # idempotent
    call_action = inspect.getsource(BaseResponse.call_action)
    assert "camelcase_to_underscores(self._get_action())" in call_action
    assert "method_names_from_class(self.__class__)" in call_action
    assert "get_random_string(length=52)" in inspect.getsource(gen_amzn_requestid_long)

    # Both modules that call the helpers per request now call the memoised ones...
    fast = core_responses.camelcase_to_underscores
    assert fast._pocctl_hook and sqs_models.camelcase_to_underscores is fast  # type: ignore[attr-defined]
    original = fast.__wrapped__  # type: ignore[attr-defined]
    for name in ["ReceiveMessage", "DeleteMessageBatch", "theNewAttribute", "SSEType", "", "A"]:
        assert fast(name) == original(name)
    names = core_responses.method_names_from_class
    assert names(SQSResponse) == names.__wrapped__(SQSResponse)  # type: ignore[attr-defined]
    assert "receive_message" in names(SQSResponse)

    # ...and request IDs are drawn from the same alphabets, still reproducible under a seed.
    rnd = MotoRandom(7)
    assert re.fullmatch(r"[A-Za-z0-9]{52}", rnd.get_random_string(length=52))
    assert re.fullmatch(r"[A-Za-z]{30}", rnd.get_random_string(30, include_digits=False))
    assert re.fullmatch(r"[a-z0-9]{40}", rnd.get_random_string(40, lower_case=True))
    assert re.fullmatch(r"[0-9a-f]{17}", rnd.get_random_hex(17))
    assert len({rnd.get_random_hex(8) for _ in range(50)}) == 50
    assert MotoRandom(7).get_random_string(52) == MotoRandom(7).get_random_string(52)
    assert MotoRandom.get_random_hex._pocctl_original is not MotoRandom.get_random_hex  # type: ignore[attr-defined]


def _visible_and_in_flight(sqs, url: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]


def test_sqs_queue_scans_stop_early_and_keep_moto_s_semantics(aws_endpoint: str) -> None:
    """The lazy ``Queue.messages`` view and the early-exit DeleteMessage: pinned to moto's code,
    and through the API the same answers as moto's (visible/in-flight counts, receive order,
    deleting twice, an unknown receipt handle)."""
    from botocore.exceptions import ClientError

    _install("sqs-")
    original = moto_hooks.patch("sqs-visible-messages").original.fget
    assert "message.visible and not message.delayed" in inspect.getsource(original)
    assert "had_receipt_handle(receipt_handle)" in inspect.getsource(
        Queue.delete_message._pocctl_original  # type: ignore[attr-defined]
    )
    assert "for message in queue.messages:" in inspect.getsource(SQSBackend.receive_message)
    # The view and the counts compare the fields Message.visible / .delayed compare.
    from moto.sqs.models import Message

    assert "current_time > self.visible_at" in inspect.getsource(Message.visible.fget)
    assert "current_time < self.delayed_until" in inspect.getsource(Message.delayed.fget)
    for name, needle in (
        ("sqs-count-delayed", "if m.delayed"),
        ("sqs-count-not-visible", "if not m.visible"),
    ):
        assert needle in inspect.getsource(moto_hooks.patch(name).original.fget)
    # SendMessage reads Queue.attributes, which builds those counts: why they must be cheap.
    assert 'queue.attributes.get("ContentBasedDeduplication")' in inspect.getsource(
        moto_hooks.moto_original("moto.sqs.models:SQSBackend.send_message")  # metrics.py wraps it
    )
    assert "lambda: self.messages" in inspect.getsource(Queue.wait_for_messages)

    sqs = local_client(aws_endpoint, "sqs")
    url = sqs.create_queue(QueueName="hooks-scan")["QueueUrl"]
    for i in range(30):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)
    assert [m["Body"] for m in got["Messages"]] == [f"m{i}" for i in range(10)]
    assert _visible_and_in_flight(sqs, url) == ("20", "10")
    # The next receive skips the in-flight ones.
    nxt = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)
    assert [m["Body"] for m in nxt["Messages"]] == [f"m{i}" for i in range(10, 20)]
    # Delete from the middle, twice (graceful), then a handle that never existed.
    handle = nxt["Messages"][4]["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    with pytest.raises(ClientError) as err:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    assert err.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"
    out = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
            for i, m in enumerate(got["Messages"])
        ],
    )
    assert len(out["Successful"]) == 10 and not out.get("Failed")
    assert _visible_and_in_flight(sqs, url) == ("10", "9")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"
    assert attrs["ApproximateNumberOfMessages"] == "10"  # the delayed one is not visible yet
    rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert [m["Body"] for m in rest["Messages"]] == [f"m{i}" for i in range(20, 30)]


def test_send_message_no_longer_counts_the_queue_and_keeps_moto_s_checks(
    aws_endpoint: str,
) -> None:
    """sqs-send-attributes: inside SendMessage, Queue.attributes is the one attribute moto reads
    there (the same value moto's property gives), and FIFO checks still apply."""
    from botocore.exceptions import ClientError
    from moto.sqs.models import sqs_backends

    _install("sqs-")
    send = moto_hooks.moto_original("moto.sqs.models:SQSBackend.send_message")
    for fn in (send, SQSBackend._validate_message):
        assert 'queue.attributes.get("ContentBasedDeduplication")' in inspect.getsource(fn)
    assert "self.send_message(" in inspect.getsource(SQSBackend.send_message_batch)
    full = moto_hooks.patch("sqs-send-attributes").original.fget
    sqs = local_client(aws_endpoint, "sqs")
    std = sqs.create_queue(QueueName="hooks-send")["QueueUrl"]
    fifo = sqs.create_queue(QueueName="hooks-send.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"
    ]
    cbd = sqs.create_queue(
        QueueName="hooks-cbd.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    backend = sqs_backends["123456789012"]["us-east-1"]
    seen: list[tuple[str, dict[str, object]]] = []
    real_add = Queue.add_message

    def spy(queue: Queue, message: object) -> None:
        seen.append((queue.name, dict(queue.attributes)))
        real_add(queue, message)

    Queue.add_message = spy  # type: ignore[method-assign]
    try:
        sqs.send_message(QueueUrl=std, MessageBody="a")
        sqs.send_message_batch(QueueUrl=std, Entries=[{"Id": "1", "MessageBody": "b"}])
        sqs.send_message(
            QueueUrl=fifo, MessageBody="c", MessageGroupId="g", MessageDeduplicationId="d"
        )
        sqs.send_message(QueueUrl=cbd, MessageBody="e", MessageGroupId="g")
        sqs.send_message(QueueUrl=cbd, MessageBody="e", MessageGroupId="g")  # deduplicated
    finally:
        Queue.add_message = real_add  # type: ignore[method-assign]
    for name, attrs in seen:
        whole = full(backend.get_queue(name))
        assert attrs == {k: v for k, v in whole.items() if k == "ContentBasedDeduplication"}
    assert [n for n, _ in seen] == ["hooks-send", "hooks-send", "hooks-send.fifo"] + [
        "hooks-cbd.fifo"
    ] * 2
    assert (
        sqs.get_queue_attributes(QueueUrl=cbd, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "1"
    )
    with pytest.raises(ClientError) as err:  # FIFO without a group: still refused
        sqs.send_message(QueueUrl=fifo, MessageBody="x")
    assert err.value.response["Error"]["Code"] == "MissingParameter"
    # Outside SendMessage, every attribute and the counts, as moto builds them.
    assert backend.get_queue("hooks-send").attributes == full(backend.get_queue("hooks-send"))
    assert backend.get_queue("hooks-send").attributes["ApproximateNumberOfMessages"] == 2


def test_stream_records_answer_as_moto_s_serializer_does(aws_endpoint: str) -> None:
    """stream-records-json writes GetRecords' answer itself: byte for byte what moto's
    serializer makes of the same records, once parsed (every attribute type, every event)."""
    from moto.dynamodb.models.table import StreamRecord

    assert '"ApproximateCreationDateTime": utcnow()' in inspect.getsource(StreamRecord.__init__)
    ddb = local_client(aws_endpoint, "dynamodb")
    ddb.create_table(
        TableName="hooks-records",
        KeySchema=[
            {"AttributeName": "k", "KeyType": "HASH"},
            {"AttributeName": "r", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "k", "AttributeType": "S"},
            {"AttributeName": "r", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    arn = ddb.describe_table(TableName="hooks-records")["Table"]["LatestStreamArn"]
    item = {
        "k": {"S": "a"},
        "r": {"N": "1"},
        "b": {"B": b"\x00\xff"},
        "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": [b"a", b"b"]},
        "m": {"M": {"n": {"NULL": True}, "t": {"BOOL": False}, "l": {"L": [{"N": "-3"}]}}},
        "u": {"S": '\u00e9\u2028"<>&'},
    }
    ddb.put_item(TableName="hooks-records", Item=item)
    ddb.put_item(TableName="hooks-records", Item={**item, "u": {"S": "changed"}})
    ddb.delete_item(TableName="hooks-records", Key={"k": {"S": "a"}, "r": {"N": "1"}})
    streams = local_client(aws_endpoint, "dynamodbstreams")
    raw: list[dict[str, object]] = []
    streams.meta.events.register(
        "before-parse.dynamodb-streams.GetRecords",
        lambda response_dict, **_: raw.append(response_dict),
    )
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    fast_patch = moto_hooks.patch("stream-records-json")
    fast_patch.install()
    try:
        fast = streams.get_records(ShardIterator=it)
        fast_patch.remove()
        slow = streams.get_records(ShardIterator=it)
    finally:
        fast_patch.install()
    assert [r["eventName"] for r in fast["Records"]] == ["INSERT", "MODIFY", "REMOVE"]
    fast_body, slow_body = (json.loads(r["body"]) for r in raw)  # type: ignore[arg-type]
    assert fast_body["Records"] == slow_body["Records"]
    assert fast_body.keys() == slow_body.keys()
    assert raw[0]["status_code"] == raw[1]["status_code"] == 200
    assert raw[0]["headers"]["content-type"] == raw[1]["headers"]["content-type"]  # type: ignore[index]
    assert fast["Records"] == slow["Records"]
    # An empty read and an expired iterator answer as before.
    nxt = streams.get_records(ShardIterator=fast["NextShardIterator"])
    assert nxt["Records"] == [] and nxt["NextShardIterator"]


# -- the registry ----------------------------------------------------------------------------

_ABSENT = object()


def _raw(path: str) -> object:
    owner, attr = moto_hooks.resolve(path)
    return owner.__dict__.get(attr, _ABSENT)


def _moto_bindings(value: object) -> set[tuple[str, str]]:
    """(module, name) of every moto module global bound to ``value``."""
    import sys

    return {
        (module.__name__, name)
        for module in list(sys.modules.values())
        if getattr(module, "__name__", "").startswith("moto")
        for name, bound in list(vars(module).items())
        if bound is value
    }


@pytest.fixture
def patches_restored():  # type: ignore[no-untyped-def]
    """Puts back the patches that were installed before the test (the session's server)."""
    before = [p for p in moto_hooks.PATCHES if p.installed]
    yield
    moto_hooks.remove_all()
    for p in before:
        p.install()


def test_the_registry_names_each_patch_once_with_a_kind_a_target_and_a_reason() -> None:
    names = [name for name, _, _ in moto_hooks.table()]
    assert len(names) == len(set(names)) >= 20
    targets = [p.target for p in moto_hooks.PATCHES]
    assert len(targets) == len(set(targets))  # one object, one patch
    for p in moto_hooks.PATCHES:
        assert p.kind in moto_hooks.KINDS, p.name
        owner, attr = moto_hooks.resolve(p.target)  # the owner still exists
        assert owner is not None and attr
        assert p.reason and p.pins, p.name
        if p.kind == "fidelity":  # restores what AWS does: says where AWS documents it
            assert "https://docs.aws.amazon.com/" in p.reason, p.name


@pytest.mark.parametrize(
    "pin", sorted({pin for p in moto_hooks.PATCHES for pin in p.pins}), ids=lambda pin: pin
)
def test_the_moto_source_each_patch_replaces_is_unchanged(pin: str) -> None:
    recorded = moto_hooks.PINNED_SOURCES[pin]
    now = moto_hooks.source_hash(moto_hooks.moto_original(pin))
    assert now == recorded, f"{pin} changed: re-read it, then the patches that pin it"


def test_every_pin_has_a_recorded_hash_and_every_hash_a_pin() -> None:
    pins = {pin for p in moto_hooks.PATCHES for pin in p.pins}
    assert pins == set(moto_hooks.PINNED_SOURCES)


def test_install_then_remove_restores_every_original_object(patches_restored) -> None:  # type: ignore[no-untyped-def]
    moto_hooks.remove_all()
    originals = {p.name: _raw(p.target) for p in moto_hooks.PATCHES}
    bound = {p.name: _moto_bindings(originals[p.name]) for p in moto_hooks.PATCHES if p.rebind}
    assert all(bound.values())  # e.g. moto.core.responses imported them by name

    installed = moto_hooks.install_all()
    moto_hooks.patch("sqs-receive-in-passes").install()
    assert [p.name for p in installed] == [p.name for p in moto_hooks.PATCHES if p.auto]
    for p in moto_hooks.PATCHES:
        assert p.installed and _raw(p.target) is not originals[p.name], p.name
        assert p.original is (None if originals[p.name] is _ABSENT else originals[p.name])
    for name, where in bound.items():
        replacement = _raw(moto_hooks.patch(name).target)
        assert where <= _moto_bindings(replacement), name

    moto_hooks.remove_all()
    for p in moto_hooks.PATCHES:
        assert not p.installed and _raw(p.target) is originals[p.name], p.name
    for name, where in bound.items():
        assert _moto_bindings(originals[name]) == where, name


def test_a_queue_made_while_patched_is_moto_s_own_once_removed(patches_restored) -> None:  # type: ignore[no-untyped-def]
    moto_hooks.patch("no-moto-sqs-mappings").install()
    q = Queue("q", region="us-east-1", account_id="123456789012")
    assert q.lambda_event_source_mappings == {}
    q.lambda_event_source_mappings["f"] = "mapping"  # what CreateEventSourceMapping does
    assert q.lambda_event_source_mappings == {}  # moto never sees it
    moto_hooks.patch("no-moto-sqs-mappings").remove()
    assert q.lambda_event_source_mappings == {}  # moto's own attribute, as __init__ set it


def test_only_fidelity_patches_when_asked(patches_restored, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    moto_hooks.remove_all()
    monkeypatch.setenv(moto_hooks.PATCHES_ENV, "fidelity")
    installed = moto_hooks.install_all()
    assert installed and {p.kind for p in installed} == {"fidelity"}
    assert not any(p.installed for p in moto_hooks.PATCHES if p.kind == "speed")
    assert not moto_hooks.patch("sqs-receive-in-passes").installed  # persist.py's, with --data
    moto_hooks.remove_all()
    assert {p.kind for p in moto_hooks.install_all(["fidelity"])} == {"fidelity"}
    monkeypatch.setenv(moto_hooks.PATCHES_ENV, "all")
    assert {p.kind for p in moto_hooks.install_all()} == {"fidelity", "speed"}
    monkeypatch.setenv(moto_hooks.PATCHES_ENV, "fast")
    with pytest.raises(ValueError, match="POCCTL_MOTO_PATCHES"):
        moto_hooks.install_all()
    with pytest.raises(ValueError, match="unknown patch kinds"):
        moto_hooks.install_all(["quick"])


def test_the_pipeline_works_with_only_the_fidelity_patches(
    aws_endpoint: str,
    patches_restored,  # type: ignore[no-untyped-def]
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """The speed-ups change no behaviour the order pipeline sees: POST -> row -> notification
    on moto with only the patches that restore AWS's behaviour."""
    from support.localkit import post, wait_for

    from pocctl.local.runtime import LocalAWS

    moto_hooks.remove_all()
    monkeypatch.setenv(moto_hooks.PATCHES_ENV, "fidelity")
    with LocalAWS(port=0, refresh_interval=0.2) as aws:
        assert not any(p.installed for p in moto_hooks.PATCHES if p.kind == "speed")
        assert moto_hooks.patch("no-moto-sqs-mappings").installed
        stack = build_stack(aws.endpoint_url)
        order = {"customer": "ada", "items": ["book"], "total": 12.5}
        status, out = post(aws.invoke_url(stack.api_id, "prod"), json.dumps(order))
        assert status == 200, out
        rows = wait_for(lambda: stack.rows(), what="the order's row")
        assert [r["orderID"]["S"] for r in rows] == [out["messageId"]]  # type: ignore[index]
        notified: list[str] = []
        wait_for(lambda: stack.drain(stack.probe_url, notified) or notified, what="the notice")
        assert json.loads(notified[0])["orderID"] == out["messageId"]  # type: ignore[index]
