"""What AWS Lambda refuses in the requests pocctl (and a learner's own tooling) sends, and moto
accepts: the embedded AWS is never more permissive than AWS.

Installed as moto patches (moto_hooks.PATCHES, "lambda-validate-*"): each check runs inside
moto's request, under the server's lock, against moto's own state (the queue's visibility
timeout, the mappings that exist), before moto changes anything. Errors are in Lambda's own
format: HTTP 400 (409 for a conflict), ``x-amzn-ErrorType`` naming the exception and a JSON
body ``{"Type": "User", "message": ...}``, as Lambda answers
(https://docs.aws.amazon.com/lambda/latest/api/CommonErrors.html; the body's shape as the AWS
SDKs print it, e.g. ``Message_: "Queue visibility timeout: ...", Type: "User"``). Constraint
violations of the API model itself are ``ValidationException`` with AWS's framework message
("1 validation error detected: Value '3000' at 'timeout' failed to satisfy constraint: Member
must have value less than or equal to 900").

Where AWS's exact wording could not be verified, the check says so in a comment: the refusal and
its exception type are documented, the sentence may differ.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import Any

from moto.core.exceptions import JsonRESTError


@functools.cache
def runtimes() -> tuple[str, ...]:
    """The Runtime values Lambda's API accepts: the enum of its API model (botocore ships the
    model AWS publishes; https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html,
    Runtime "Valid Values"). Deprecated runtimes are still enum members: whether AWS lets one
    be created is a date (pocctl's config warns about those), not this check."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("lambda")
    shape = model.operation_model("CreateFunction").input_shape.members["Runtime"]
    return tuple(shape.enum)


# https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html: Timeout "The maximum
# allowed value is 900 seconds"; https://docs.aws.amazon.com/lambda/latest/dg/
# configuration-memory.html: "between 128 MB and 10,240 MB".
TIMEOUT_RANGE = (1, 900)
MEMORY_RANGE = (128, 10240)
# https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html: Handler "Pattern:
# [^\s]+", at most 128 characters.
HANDLER = re.compile(r"^[^\s]+$")
# https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html
BATCH_RANGE = (1, 10000)
WINDOW_RANGE = (0, 300)
RETRY_RANGE = (-1, 10000)
RECORD_AGE_RANGE = (-1, 604800)
RESPONSE_TYPES = ("ReportBatchItemFailures",)
STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")


class LambdaUserError(JsonRESTError):
    """One of Lambda's own errors, as Lambda writes it: {"Type": "User", "message": ...}."""

    def __init__(self, error_type: str, message: str, status: int = 400) -> None:
        super().__init__(error_type, message)
        self.code = status
        self.description = json.dumps({"Type": "User", "message": message})


class ValidationError(JsonRESTError):
    """A request that breaks the API model's constraints (AWS's framework answers these)."""

    def __init__(self, message: str) -> None:
        super().__init__("ValidationException", message)
        self.description = json.dumps({"message": message})


def invalid(message: str) -> LambdaUserError:
    return LambdaUserError("InvalidParameterValueException", message)


def _range(field: str, value: Any, bounds: tuple[int, int]) -> None:
    if value is None:
        return
    low, high = bounds
    if not isinstance(value, int) or isinstance(value, bool):
        return  # botocore refuses a non-integer before it is sent
    if value > high:
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
            f"constraint: Member must have value less than or equal to {high}"
        )
    if value < low:
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
            f"constraint: Member must have value greater than or equal to {low}"
        )


def check_function_config(spec: dict[str, Any]) -> None:
    """CreateFunction / UpdateFunctionConfiguration: Runtime, Timeout, MemorySize, Handler."""
    runtime = spec.get("Runtime")
    if runtime is not None and runtime not in runtimes():
        # "Value 'g1.x' at 'runtime' failed to satisfy constraint: Member must satisfy enum
        # value set: [...]" (aws/aws-cli#3229 quotes Lambda's answer).
        raise ValidationError(
            f"1 validation error detected: Value '{runtime}' at 'runtime' failed to satisfy "
            f"constraint: Member must satisfy enum value set: [{', '.join(runtimes())}]"
        )
    _range("timeout", spec.get("Timeout"), TIMEOUT_RANGE)
    _range("memorySize", spec.get("MemorySize"), MEMORY_RANGE)
    handler = spec.get("Handler")
    if handler is not None and (len(handler) > 128 or not HANDLER.match(handler)):
        raise ValidationError(
            f"1 validation error detected: Value '{handler}' at 'handler' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [^\\s]+"
        )


# Lambda quotas (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
# a .zip function's contents are at most 250 MB unzipped; Lambda answers 400
# InvalidParameterValueException "Unzipped size must be smaller than 262144000 bytes" (as quoted
# in serverless/serverless#6792 and jkehler/awslambda-psycopg2#82). moto accepts any size.
MAX_UNZIPPED = 262_144_000


def check_code_size(zip_b64: Any) -> None:
    """CreateFunction / UpdateFunctionCode: the zip's contents, by the sizes its directory
    declares, must be under Lambda's unzipped quota. A body that is not a zip is moto's to
    refuse."""
    import base64
    import binascii
    import io
    import zipfile

    if not isinstance(zip_b64, str | bytes) or not zip_b64:
        return
    try:
        with zipfile.ZipFile(io.BytesIO(base64.b64decode(zip_b64))) as zf:
            total = sum(i.file_size for i in zf.infolist())
    except (binascii.Error, ValueError, zipfile.BadZipFile):
        return
    if total >= MAX_UNZIPPED:
        raise invalid(f"Unzipped size must be smaller than {MAX_UNZIPPED} bytes")


def source_kind(arn: str) -> str:
    """ "sqs", "sqs-fifo", "dynamodb" (a stream), or "" for what these checks leave to moto."""
    parts = arn.split(":")
    if len(parts) < 6:
        return ""
    if parts[2] == "sqs":
        return "sqs-fifo" if arn.endswith(".fifo") else "sqs"
    if parts[2] == "dynamodb" and "/stream/" in arn:
        return "dynamodb"
    return ""


def check_mapping_settings(kind: str, spec: dict[str, Any]) -> None:
    """The settings of a mapping (created, or as it would be after an update)."""
    _range("batchSize", spec.get("BatchSize"), BATCH_RANGE)
    window = spec.get("MaximumBatchingWindowInSeconds")
    _range("maximumBatchingWindowInSeconds", window, WINDOW_RANGE)
    _range("maximumRetryAttempts", spec.get("MaximumRetryAttempts"), RETRY_RANGE)
    _range("maximumRecordAgeInSeconds", spec.get("MaximumRecordAgeInSeconds"), RECORD_AGE_RANGE)
    types = spec.get("FunctionResponseTypes") or []
    if any(t not in RESPONSE_TYPES for t in types):
        raise ValidationError(
            f"1 validation error detected: Value '{types}' at 'functionResponseTypes' failed to "
            "satisfy constraint: Member must satisfy constraint: [Member must satisfy enum "
            f"value set: [{', '.join(RESPONSE_TYPES)}]]"
        )
    if kind.startswith("sqs"):
        _check_sqs_settings(kind, spec)
    elif kind == "dynamodb":
        _check_stream_settings(spec)


def _check_sqs_settings(kind: str, spec: dict[str, Any]) -> None:
    batch = spec.get("BatchSize")
    window = spec.get("MaximumBatchingWindowInSeconds") or 0
    if kind == "sqs-fifo" and window:
        # "Batch window ... This applies only to standard queues"
        # (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html); AWS's
        # message as CloudFormation reports it ("Invalid request provided: ...").
        raise invalid("Batching window is not supported for FIFO queues")
    if kind == "sqs-fifo" and batch is not None and batch > 10:
        # "For FIFO queues the max is 10" (API_CreateEventSourceMapping.html, BatchSize). The
        # sentence is the documented limit; AWS's own wording is not verified.
        raise invalid(f"BatchSize {batch} exceeds the max of 10 for FIFO queues")
    if batch is not None and batch > 10 and not window:
        # "When you set BatchSize to a value greater than 10, you must set
        # MaximumBatchingWindowInSeconds to at least 1" (API_CreateEventSourceMapping.html);
        # the message is AWS's (ansible-collections/amazon.aws#1995 quotes it).
        raise invalid(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is "
            "greater than 10"
        )
    # Stream-only settings (API_CreateEventSourceMapping.html marks each "(Kinesis, DynamoDB
    # Streams...)"); StartingPosition on an SQS source: "Invalid request provided:
    # StartingPosition is not valid for SQS event sources." (as CloudFormation reports it).
    if spec.get("StartingPosition"):
        raise invalid("StartingPosition is not valid for SQS event sources.")
    for name in ("BisectBatchOnFunctionError", "MaximumRetryAttempts", "DestinationConfig"):
        if spec.get(name) not in (None, False, {}):
            # Wording not verified: AWS refuses stream-only settings on an SQS mapping.
            raise invalid(f"Unsupported parameter for SQS event sources: {name}")


def _check_stream_settings(spec: dict[str, Any]) -> None:
    position = spec.get("StartingPosition")
    if position not in STARTING_POSITIONS[:2]:
        # Required for streams ("StartingPosition ... Required if the event source is a stream",
        # API_CreateEventSourceMapping.html); AT_TIMESTAMP is Kinesis-only. Wording not verified.
        raise invalid(
            "StartingPosition is required for DynamoDB stream event sources and must be "
            "TRIM_HORIZON or LATEST"
        )
    destination = ((spec.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    service = str(destination).split(":")[2:3]
    if destination and service not in (["sqs"], ["sns"], ["s3"]):
        # "You can configure any Amazon SNS topic, Amazon SQS queue, or S3 bucket as a
        # destination" (https://docs.aws.amazon.com/lambda/latest/dg/
        # services-dynamodb-errors.html). Wording not verified.
        raise invalid(f"The destination ARN {destination} is invalid.")


def check_visibility_timeout(queue_name: str, visibility: int, function_timeout: int) -> None:
    """An SQS mapping needs the queue's visibility timeout >= the function's timeout: "your
    queue's visibility timeout must be at least as long as your function's timeout"
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html). The message is
    AWS's (quoted verbatim in hashicorp/terraform-provider-aws#18099 and others).

    Checked when the mapping is created only: AWS documents no such check on
    UpdateFunctionConfiguration or UpdateEventSourceMapping, and raising a mapped function's
    timeout later is reported to go through (github-aws-runners/terraform-aws-github-runner#467:
    "the constraint is not causing terraform to fail when trying to modify")."""
    del queue_name  # AWS's message names neither the queue nor the function
    if visibility < function_timeout:
        raise invalid(
            f"Queue visibility timeout: {visibility} seconds is less than Function timeout: "
            f"{function_timeout} seconds"
        )


def check_duplicate(
    kind: str,
    source_arn: str,
    function_arn: str,
    existing: Iterable[tuple[str, str, str]],
) -> None:
    """One mapping per (source, function): AWS answers 409 ResourceConflictException with these
    messages (quoted in aws/chalice#2146 for SQS, hashicorp/terraform-provider-aws#33352 for
    streams). ``existing``: (uuid, source ARN, function ARN) of the region's mappings."""
    name = function_arn.rsplit(":", 1)[-1]
    for uuid, arn, fn in existing:
        if arn != source_arn or fn != function_arn:
            continue
        if kind.startswith("sqs"):
            message = (
                f'An event source mapping with SQS arn (" {source_arn} ") and function '
                f'(" {name} ") already exists. Please update or delete the existing mapping '
                f"with UUID {uuid}"
            )
        else:
            message = (
                f'The event source arn (" {source_arn} ") and function (" {name} ") provided '
                "mapping already exists. Please update or delete the existing mapping with "
                f"UUID {uuid}"
            )
        raise LambdaUserError("ResourceConflictException", message, status=409)
