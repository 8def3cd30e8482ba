"""Pins on the moto 5.2.5 internals pocctl.local hooks (pocctl/local/moto_hooks.py), and proof that
moto's own synchronous event-source-mapping path is off in the embedded server.

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
from support.localkit import build_stack, zipped

from pocctl.local import moto_hooks
from pocctl.local.server import local_client


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
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
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
    moto_hooks.install_invoke_hook()
    lam = local_client(aws_endpoint, "lambda")
    role = local_client(aws_endpoint, "iam").create_role(
        RoleName="r", AssumeRolePolicyDocument="{}"
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

    moto_hooks.speed_up_sqs()
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
    # the dispatcher method pocctl.local.server memoises
    assert "list_of_moto_modules" in inspect.getsource(
        DomainDispatcherApplication.get_backend_for_host
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

    moto_hooks.expire_stream_iterators()
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

    moto_hooks.speed_up_request_path()
    moto_hooks.speed_up_request_path()  # idempotent
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

    moto_hooks.speed_up_sqs()
    original = moto_hooks.ORIGINALS["Queue.messages"].fget
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
        ("approximate_number_of_messages_delayed", "if m.delayed"),
        ("approximate_number_of_messages_not_visible", "if not m.visible"),
    ):
        assert needle in inspect.getsource(moto_hooks.ORIGINALS[f"Queue.{name}"].fget)
    # SendMessage reads Queue.attributes, which builds those counts: why they must be cheap.
    assert 'queue.attributes.get("ContentBasedDeduplication")' in inspect.getsource(
        SQSBackend.send_message
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
