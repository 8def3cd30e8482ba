"""POC-Lambda-1 (handlers/store_order.py) against moto's in-process DynamoDB."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
TABLE = "orders-test"


@pytest.fixture(autouse=True)
def _fast_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest.py turns this on for the embedded server; loading every AWS managed policy on
    # each mock_aws() start/stop costs ~1 s per test and these tests do not use IAM.
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "false")


def _load(name: str) -> ModuleType:
    path = ROOT / "handlers" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_handler_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


store_order = _load("store_order")


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An empty orders table in a fresh moto; the handler's cached client is reset."""
    monkeypatch.setattr(store_order, "_client", None)
    monkeypatch.setattr(store_order, "_serializer", None)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.delenv("PARTITION_KEY", raising=False)
    with mock_aws():
        ddb = boto3.resource("dynamodb")
        tbl = ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "orderID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "orderID", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield tbl


def sqs_record(message_id: str, body: str, sent_ms: int | None = 1700000000123) -> dict[str, Any]:
    attributes: dict[str, str] = {"ApproximateReceiveCount": "1"}
    if sent_ms is not None:
        attributes["SentTimestamp"] = str(sent_ms)
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body,
        "attributes": attributes,
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:POC-Queue",
        "awsRegion": "us-east-1",
    }


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def all_items(tbl: Any) -> dict[str, dict[str, Any]]:
    return {item["orderID"]: item for item in tbl.scan(ConsistentRead=True)["Items"]}


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_batch_is_stored_keyed_by_message_id(table: Any) -> None:
    result = store_order.handler(
        event(
            sqs_record("m-1", '{"item": "soap", "qty": 2}'),
            sqs_record("m-2", '{"item": "mop", "qty": 1}'),
            sqs_record("m-3", '{"item": "bucket", "qty": 5}'),
        ),
        None,
    )
    assert result == {"batchItemFailures": []}
    items = all_items(table)
    assert set(items) == {"m-1", "m-2", "m-3"}
    assert items["m-1"]["order"] == {"item": "soap", "qty": 2}
    assert items["m-3"]["order"] == {"item": "bucket", "qty": 5}
    assert items["m-2"]["receivedAt"] == "2023-11-14T22:13:20.123Z"


def test_order_is_a_dynamodb_map_not_a_string(table: Any) -> None:
    store_order.handler(event(sqs_record("m-1", '{"item": "soap", "tags": ["eco", 1]}')), None)
    raw = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"orderID": {"S": "m-1"}})
    assert raw["Item"]["order"] == {
        "M": {"item": {"S": "soap"}, "tags": {"L": [{"S": "eco"}, {"N": "1"}]}}
    }


def test_received_at_is_omitted_without_sent_timestamp(table: Any) -> None:
    result = store_order.handler(event(sqs_record("m-1", "{}", sent_ms=None)), None)
    assert result == {"batchItemFailures": []}
    item = all_items(table)["m-1"]
    assert "receivedAt" not in item
    assert item["order"] == {}


def test_same_message_delivered_twice_is_stored_once(
    table: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    first = sqs_record("m-1", '{"item": "soap"}', sent_ms=1700000000000)
    assert store_order.handler(event(first), None) == {"batchItemFailures": []}
    # Redelivery (e.g. the visibility timeout expired), even inside one batch, is a success.
    again = dict(first, receiptHandle="rh-second-delivery")
    assert store_order.handler(event(again, again), None) == {"batchItemFailures": []}
    items = all_items(table)
    assert list(items) == ["m-1"]
    assert items["m-1"]["receivedAt"] == "2023-11-14T22:13:20.000Z"
    reasons = [line["reason"] for line in log_lines(capsys) if line["messageId"] == "m-1"]
    assert reasons == ["already stored (redelivery)"] * 2


def test_existing_item_is_not_overwritten_by_a_redelivery(table: Any) -> None:
    store_order.handler(event(sqs_record("m-1", '{"qty": 1}')), None)
    store_order.handler(event(sqs_record("m-1", '{"qty": 999}')), None)
    assert all_items(table)["m-1"]["order"] == {"qty": 1}


@pytest.mark.parametrize(
    ("body", "reason_part"),
    [
        ('"just a string"', "not an object"),
        ("[1, 2, 3]", "not an object"),
        ("null", "not an object"),
        ("42", "not an object"),
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ('{"price": NaN}', "NaN"),
    ],
    ids=["string", "array", "null", "number", "invalid-json", "empty", "nan"],
)
def test_non_object_body_is_reported_and_the_rest_are_stored(
    table: Any, capsys: pytest.CaptureFixture[str], body: str, reason_part: str
) -> None:
    result = store_order.handler(
        event(
            sqs_record("ok-1", '{"item": "soap"}'),
            sqs_record("bad", body),
            sqs_record("ok-2", '{"item": "mop"}'),
        ),
        None,
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert set(all_items(table)) == {"ok-1", "ok-2"}
    errors = [line for line in log_lines(capsys) if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["messageId"] == "bad"
    assert reason_part in errors[0]["reason"]


def test_decimal_price_round_trips_exactly(table: Any) -> None:
    body = '{"price": 19.99, "qty": 3, "discount": {"rate": 0.1, "codes": [1.5, "X"]}}'
    assert store_order.handler(event(sqs_record("m-1", body)), None) == {"batchItemFailures": []}
    order = all_items(table)["m-1"]["order"]
    assert order["price"] == Decimal("19.99")  # not 19.989999999999998...
    assert order["qty"] == 3
    assert order["discount"] == {"rate": Decimal("0.1"), "codes": [Decimal("1.5"), "X"]}


def test_number_dynamodb_cannot_hold_is_reported(table: Any) -> None:
    too_precise = "1." + "1" * 40  # DynamoDB numbers hold at most 38 significant digits
    result = store_order.handler(
        event(sqs_record("ok", '{"qty": 1}'), sqs_record("bad", f'{{"price": {too_precise}}}')),
        None,
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert set(all_items(table)) == {"ok"}


def test_failed_write_is_reported_for_every_record(
    table: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    result = store_order.handler(
        event(sqs_record("m-1", "{}"), sqs_record("m-2", '{"a": 1}')), None
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}
    errors = log_lines(capsys)
    assert [e["messageId"] for e in errors] == ["m-1", "m-2"]
    assert all("ResourceNotFoundException" in e["reason"] for e in errors)
    assert all_items(table) == {}


def test_partition_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_order, "_client", None)
    monkeypatch.setenv("TABLE_NAME", "other")
    monkeypatch.setenv("PARTITION_KEY", "pk")
    with mock_aws():
        tbl = boto3.resource("dynamodb").create_table(
            TableName="other",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        assert store_order.handler(event(sqs_record("m-1", '{"a": 1}')), None) == {
            "batchItemFailures": []
        }
        assert tbl.get_item(Key={"pk": "m-1"})["Item"]["order"] == {"a": 1}


def test_client_is_created_on_first_use_and_reused(table: Any) -> None:
    assert store_order.handler(event(), None) == {"batchItemFailures": []}
    assert store_order._client is None  # an empty batch needs no client
    store_order.handler(event(sqs_record("m-1", "{}")), None)
    first = store_order._client
    assert first is not None
    store_order.handler(event(sqs_record("m-2", "{}")), None)
    assert store_order._client is first
    assert set(all_items(table)) == {"m-1", "m-2"}


def test_missing_table_name_fails_the_whole_invocation(
    table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TABLE_NAME")
    with pytest.raises(KeyError, match="TABLE_NAME"):
        store_order.handler(event(sqs_record("m-1", "{}")), None)
