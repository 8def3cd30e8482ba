"""The embedded AWS refuses what AWS Lambda refuses (pocctl/local/validation.py), over HTTP with
boto3 as any tool sends it: each error's code, HTTP status, message and Lambda's body format;
and event source mappings report StateTransitionReason and LastProcessingResult as AWS does."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from support.localkit import LAMBDA_TRUST, wait_for, zipped

from pocctl.local.runtime import LocalAWS

OK_HANDLER = "def handler(event, context):\n    return {}\n"
FAILING_HANDLER = "def handler(event, context):\n    raise ValueError('no')\n"


class Lab:
    def __init__(self, endpoint: str, region: str = "us-east-1") -> None:
        self.endpoint, self.region = endpoint, region
        iam = self.client("iam")
        self.role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"][
            "Arn"
        ]
        self.lam, self.sqs = self.client("lambda"), self.client("sqs")

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint)

    def function(self, name: str = "fn", timeout: int = 30, src: str = OK_HANDLER) -> str:
        return str(
            self.lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=self.role,
                Handler="h.handler",
                Code={"ZipFile": zipped({"h.py": src})},
                Timeout=timeout,
            )["FunctionArn"]
        )

    def queue(self, name: str = "q", visibility: int = 30, **attrs: str) -> str:
        url = self.sqs.create_queue(
            QueueName=name, Attributes={"VisibilityTimeout": str(visibility), **attrs}
        )["QueueUrl"]
        return str(
            self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
        )

    def stream(self, table: str = "t") -> str:
        return str(
            self.client("dynamodb").create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
            )["TableDescription"]["LatestStreamArn"]
        )


@pytest.fixture
def lab(local_aws: LocalAWS) -> Lab:
    return Lab(local_aws.endpoint_url)


def refused(call: Any, code: str, status: int = 400) -> str:
    """The error message of ``call``, which must fail with ``code`` and ``status`` in Lambda's
    own error format (x-amzn-ErrorType header)."""
    with pytest.raises(ClientError) as info:
        call()
    err = info.value.response
    assert err["Error"]["Code"] == code, err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == status
    assert err["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == code
    return str(err["Error"]["Message"])


def test_visibility_timeout_below_function_timeout_is_refused_as_aws_does(lab: Lab) -> None:
    lab.function(timeout=30)
    arn = lab.queue(visibility=5)
    message = refused(
        lambda: lab.lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="fn"),
        "InvalidParameterValueException",
    )
    assert (
        message == "Queue visibility timeout: 5 seconds is less than Function timeout: 30 seconds"
    )
    assert lab.lam.list_event_source_mappings()["EventSourceMappings"] == []


def test_lambda_errors_carry_lambdas_body_format(lab: Lab, local_aws: LocalAWS) -> None:
    """AWS answers {"Type": "User", "message": ...} (not moto's {"__type": ...})."""
    lab.function(timeout=30)
    arn = lab.queue(visibility=5)
    raw = boto3.client("lambda", region_name="us-east-1", endpoint_url=local_aws.endpoint_url)
    captured: dict[str, Any] = {}

    def keep(http_response: Any, **_: Any) -> None:
        captured["body"] = http_response.content

    # botocore emits after-call with the raw response before it raises the error.
    raw.meta.events.register("after-call.lambda.CreateEventSourceMapping", keep)
    with pytest.raises(ClientError):
        raw.create_event_source_mapping(EventSourceArn=arn, FunctionName="fn")
    assert json.loads(captured["body"]) == {
        "Type": "User",
        "message": "Queue visibility timeout: 5 seconds is less than Function timeout: 30 seconds",
    }


def test_visibility_timeout_equal_to_function_timeout_is_accepted(lab: Lab) -> None:
    lab.function(timeout=30)
    arn = lab.queue(visibility=30)
    lab.lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="fn")
    # Only CreateEventSourceMapping checks it (validation.check_visibility_timeout's docstring
    # says why): raising the mapped function's timeout afterwards goes through.
    lab.lam.update_function_configuration(FunctionName="fn", Timeout=60)
    assert lab.lam.get_function_configuration(FunctionName="fn")["Timeout"] == 60


def test_a_second_mapping_of_the_same_queue_and_function_conflicts(lab: Lab) -> None:
    lab.function()
    arn = lab.queue()
    first = lab.lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="fn")["UUID"]
    message = refused(
        lambda: lab.lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="fn"),
        "ResourceConflictException",
        409,
    )
    assert message == (
        f'An event source mapping with SQS arn (" {arn} ") and function (" fn ") already '
        f"exists. Please update or delete the existing mapping with UUID {first}"
    )


def test_a_second_mapping_of_the_same_stream_and_function_conflicts(lab: Lab) -> None:
    lab.function()
    arn = lab.stream()
    first = lab.lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="fn", StartingPosition="LATEST"
    )["UUID"]
    message = refused(
        lambda: lab.lam.create_event_source_mapping(
            EventSourceArn=arn, FunctionName="fn", StartingPosition="LATEST"
        ),
        "ResourceConflictException",
        409,
    )
    assert message == (
        f'The event source arn (" {arn} ") and function (" fn ") provided mapping already '
        f"exists. Please update or delete the existing mapping with UUID {first}"
    )


def test_sqs_batches_over_ten_need_a_batching_window(lab: Lab) -> None:
    lab.function()
    arn = lab.queue()
    message = refused(
        lambda: lab.lam.create_event_source_mapping(
            EventSourceArn=arn, FunctionName="fn", BatchSize=11
        ),
        "InvalidParameterValueException",
    )
    assert message == (
        "Maximum batch window in seconds must be greater than 0 if maximum batch size is "
        "greater than 10"
    )
    made = lab.lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="fn", BatchSize=100, MaximumBatchingWindowInSeconds=1
    )
    assert made["BatchSize"] == 100
    # An update to more than ten without a window is refused the same way (window now set: ok;
    # set back to 0 with a batch of 100: refused).
    message = refused(
        lambda: lab.lam.update_event_source_mapping(
            UUID=made["UUID"], MaximumBatchingWindowInSeconds=0
        ),
        "InvalidParameterValueException",
    )
    assert message.startswith("Maximum batch window in seconds must be greater than 0")


def test_a_fifo_queue_takes_batches_of_ten_at_most(lab: Lab) -> None:
    lab.function()
    arn = lab.queue("q.fifo", FifoQueue="true")
    refused(
        lambda: lab.lam.create_event_source_mapping(
            EventSourceArn=arn, FunctionName="fn", BatchSize=11
        ),
        "InvalidParameterValueException",
    )
    message = refused(
        lambda: lab.lam.create_event_source_mapping(
            EventSourceArn=arn, FunctionName="fn", MaximumBatchingWindowInSeconds=1
        ),
        "InvalidParameterValueException",
    )
    assert message == "Batching window is not supported for FIFO queues"
    assert (
        lab.lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="fn", BatchSize=10)[
            "BatchSize"
        ]
        == 10
    )


@pytest.mark.parametrize(
    ("settings", "field", "bound"),
    [
        ({"BatchSize": 10001, "MaximumBatchingWindowInSeconds": 1}, "batchSize", "10000"),
        ({"MaximumBatchingWindowInSeconds": 301}, "maximumBatchingWindowInSeconds", "300"),
    ],
)
def test_out_of_range_mapping_settings_fail_the_models_constraints(
    lab: Lab, settings: dict[str, int], field: str, bound: str
) -> None:
    lab.function()
    arn = lab.queue()
    message = refused(
        lambda: lab.lam.create_event_source_mapping(
            EventSourceArn=arn, FunctionName="fn", **settings
        ),
        "ValidationException",
    )
    assert f"at '{field}' failed to satisfy constraint" in message
    assert message.endswith(f"less than or equal to {bound}")


def test_stream_settings_are_refused_on_an_sqs_mapping(lab: Lab) -> None:
    lab.function()
    arn = lab.queue()
    message = refused(
        lambda: lab.lam.create_event_source_mapping(
            EventSourceArn=arn, FunctionName="fn", StartingPosition="LATEST"
        ),
        "InvalidParameterValueException",
    )
    assert message == "StartingPosition is not valid for SQS event sources."
    refused(
        lambda: lab.lam.create_event_source_mapping(
            EventSourceArn=arn, FunctionName="fn", BisectBatchOnFunctionError=True
        ),
        "InvalidParameterValueException",
    )


def test_a_stream_mapping_needs_a_starting_position(lab: Lab) -> None:
    lab.function()
    arn = lab.stream()
    refused(
        lambda: lab.lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="fn"),
        "InvalidParameterValueException",
    )
    assert lab.lam.list_event_source_mappings()["EventSourceMappings"] == []


def test_stream_retry_and_destination_limits(lab: Lab) -> None:
    lab.function()
    arn = lab.stream()
    message = refused(
        lambda: lab.lam.create_event_source_mapping(
            EventSourceArn=arn,
            FunctionName="fn",
            StartingPosition="LATEST",
            MaximumRetryAttempts=10001,
        ),
        "ValidationException",
    )
    assert message.endswith("less than or equal to 10000")
    refused(
        lambda: lab.lam.create_event_source_mapping(
            EventSourceArn=arn,
            FunctionName="fn",
            StartingPosition="LATEST",
            DestinationConfig={
                "OnFailure": {"Destination": "arn:aws:lambda:us-east-1:123456789012:function:x"}
            },
        ),
        "InvalidParameterValueException",
    )
    message = refused(
        lambda: lab.lam.create_event_source_mapping(
            EventSourceArn=arn,
            FunctionName="fn",
            StartingPosition="LATEST",
            FunctionResponseTypes=["Everything"],
        ),
        "ValidationException",
    )
    assert "Member must satisfy enum value set: [ReportBatchItemFailures]" in message


def test_create_function_refuses_an_unknown_runtime_and_out_of_range_limits(lab: Lab) -> None:
    def create(**over: Any) -> Any:
        spec = {
            "FunctionName": "f",
            "Runtime": "python3.12",
            "Role": lab.role,
            "Handler": "h.handler",
            "Code": {"ZipFile": zipped({"h.py": OK_HANDLER})},
            **over,
        }
        return lambda: lab.lam.create_function(**spec)

    message = refused(create(Runtime="python9.99"), "ValidationException")
    assert message.startswith(
        "1 validation error detected: Value 'python9.99' at 'runtime' failed to satisfy "
        "constraint: Member must satisfy enum value set: ["
    )
    assert "python3.13" in message
    assert refused(create(Timeout=901), "ValidationException") == (
        "1 validation error detected: Value '901' at 'timeout' failed to satisfy constraint: "
        "Member must have value less than or equal to 900"
    )
    assert refused(create(MemorySize=10241), "ValidationException").endswith(
        "less than or equal to 10240"
    )
    refused(create(Handler="h handler"), "ValidationException")
    assert lab.lam.list_functions()["Functions"] == []


def test_update_function_configuration_applies_the_same_limits(lab: Lab) -> None:
    lab.function()
    refused(
        lambda: lab.lam.update_function_configuration(FunctionName="fn", Timeout=901),
        "ValidationException",
    )
    refused(
        lambda: lab.lam.update_function_configuration(FunctionName="fn", Runtime="python9.99"),
        "ValidationException",
    )
    assert lab.lam.get_function_configuration(FunctionName="fn")["Timeout"] == 30


def test_mappings_state_before_any_batch(lab: Lab) -> None:
    lab.function()
    sqs = lab.lam.create_event_source_mapping(EventSourceArn=lab.queue(), FunctionName="fn")
    stream = lab.lam.create_event_source_mapping(
        EventSourceArn=lab.stream(), FunctionName="fn", StartingPosition="LATEST"
    )
    assert sqs["StateTransitionReason"] == "USER_INITIATED"
    assert "LastProcessingResult" not in sqs  # AWS's SQS mappings show none until a batch
    assert stream["StateTransitionReason"] == "User action"
    assert stream["LastProcessingResult"] == "No records processed"


def test_last_processing_result_follows_the_functions_outcome(lab: Lab) -> None:
    lab.function("bad", src=FAILING_HANDLER)
    lab.function("good")
    bad_queue, good_queue = lab.queue("bq"), lab.queue("gq")
    bad = lab.lam.create_event_source_mapping(EventSourceArn=bad_queue, FunctionName="bad")
    good = lab.lam.create_event_source_mapping(EventSourceArn=good_queue, FunctionName="good")
    for name in ("bq", "gq"):
        url = lab.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        lab.sqs.send_message(QueueUrl=url, MessageBody="{}")

    def result(uuid: str) -> str | None:
        m = lab.lam.get_event_source_mapping(UUID=uuid)
        return m.get("LastProcessingResult")

    assert wait_for(lambda: result(good["UUID"]) == "OK", what="OK") is True
    assert (
        wait_for(lambda: result(bad["UUID"]) == "PROBLEM: Function call failed", what="PROBLEM")
        is True
    )
    listed = {m["UUID"]: m for m in lab.lam.list_event_source_mappings()["EventSourceMappings"]}
    assert listed[bad["UUID"]]["LastProcessingResult"] == "PROBLEM: Function call failed"


def _zip_declaring(size: int) -> bytes:
    """A zip whose one file is ``size`` zero bytes (deflated to almost nothing)."""
    import io
    import zipfile

    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
        zf.open("h.py", "w", force_zip64=True) as f,
    ):
        chunk = b"\0" * (1 << 20)
        for _ in range(size // len(chunk)):
            f.write(chunk)
        f.write(b"\0" * (size % len(chunk)))
    return buf.getvalue()


def test_a_zip_of_250_mb_unzipped_is_refused_as_lambda_does(lab: Lab) -> None:
    big = _zip_declaring(262_144_000)
    message = refused(
        lambda: lab.lam.create_function(
            FunctionName="big",
            Runtime="python3.12",
            Role=lab.role,
            Handler="h.handler",
            Code={"ZipFile": big},
        ),
        "InvalidParameterValueException",
    )
    assert message == "Unzipped size must be smaller than 262144000 bytes"


def test_update_function_code_checks_the_size_and_sets_the_architecture(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pocctl.local import validation

    lab.function("fn")
    monkeypatch.setattr(validation, "MAX_UNZIPPED", 1000)  # the same check, a smaller quota
    message = refused(
        lambda: lab.lam.update_function_code(FunctionName="fn", ZipFile=_zip_declaring(1000)),
        "InvalidParameterValueException",
    )
    assert message == "Unzipped size must be smaller than 1000 bytes"
    lab.lam.update_function_code(
        FunctionName="fn", ZipFile=_zip_declaring(999), Architectures=["arm64"]
    )
    fn = lab.lam.get_function(FunctionName="fn")["Configuration"]
    assert fn["Architectures"] == ["arm64"]
    refused(
        lambda: lab.lam.update_function_code(
            FunctionName="fn", ZipFile=_zip_declaring(10), Architectures=["x86_64", "arm64"]
        ),
        "ValidationException",
    )
