"""FilterLogEvents' filterPattern on the embedded AWS (pocctl/local/log_filter.py): AWS's term
syntax, and never an event AWS would not return (moto matched every event for ?, -, % or {)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

MESSAGES = [
    '{"level": "ERROR", "reason": "KeyError: TABLE"}',
    '{"level": "INFO", "reason": "already stored"}',
    "START RequestId: 1 Version: $LATEST",
    "[WARN] slow table",
]


@pytest.fixture
def logs(aws_endpoint: str) -> Any:
    import boto3

    client = boto3.client(
        "logs",
        region_name="us-east-1",
        endpoint_url=aws_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    now = int(time.time() * 1000)
    client.create_log_group(logGroupName="g")
    client.create_log_stream(logGroupName="g", logStreamName="s")
    client.put_log_events(
        logGroupName="g",
        logStreamName="s",
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(MESSAGES)],
    )
    return client


def _matching(logs: Any, pattern: str) -> list[int]:
    events = logs.filter_log_events(logGroupName="g", filterPattern=pattern)["events"]
    return [MESSAGES.index(e["message"]) for e in events]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("", [0, 1, 2, 3]),
        ("ERROR", [0]),
        ("error", []),  # case sensitive
        ("ERROR KeyError", [0]),  # every term
        ('"already stored"', [1]),  # a phrase
        ("?ERROR ?WARN", [0, 3]),  # any of the ? terms
        ("-ERROR", [1, 2, 3]),  # moto matched all four
        ("level -INFO", [0]),  # moto looked for the text "-INFO"
        ("%Request[I]d: [0-9]%", [2]),
        ("%^\\[WARN\\]%", [3]),
    ],
)
def test_term_patterns_match_as_aws_documents(logs: Any, pattern: str, expected: list[int]) -> None:
    assert _matching(logs, pattern) == expected


@pytest.mark.parametrize("pattern", ['{ $.level = "ERROR" }', "[ip, user]", "%(a|b)%", '"open'])
def test_patterns_it_does_not_implement_are_refused_not_matched_to_everything(
    logs: Any, pattern: str
) -> None:
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName="g", filterPattern=pattern)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
