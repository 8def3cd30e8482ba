"""config.yaml: the lab's defaults, the shipped file, and one clear error for every bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pocctl import config
from pocctl.config import Config, ConfigError, describe, load, parse

ROOT = Path(__file__).resolve().parent.parent.parent
SHIPPED = ROOT / "config.yaml"


def test_the_defaults_are_the_lab_names() -> None:
    cfg = Config()
    p, r = cfg.iam.policies, cfg.iam.roles
    assert (p.write_dynamodb, p.read_sqs, p.sns_publish, p.streams_read) == (
        "Lambda-Write-DynamoDB",
        "Lambda-Read-SQS",
        "Lambda-SNS-Publish",
        "Lambda-DynamoDBStreams-Read",
    )
    assert (r.lambda1, r.lambda2, r.apigateway) == (
        "Lambda-SQS-DynamoDB",
        "Lambda-DynamoDBStreams-SNS",
        "APIGateway-SQS",
    )
    assert (cfg.table.name, cfg.table.partition_key) == ("orders", "orderID")
    assert cfg.table.stream_view_type == "NEW_IMAGE"
    assert cfg.queue.name == "POC-Queue"
    assert cfg.lambda1.name == "POC-Lambda-1"
    assert cfg.lambda2.name == "POC-Lambda-2"
    assert cfg.topic.name == "POC-Topic"
    assert (cfg.api.name, cfg.api.stage) == ("POC-API", "prod")
    assert cfg.region is None
    assert cfg.warnings() == []


def test_the_shipped_config_yaml_parses_to_exactly_the_defaults() -> None:
    assert load(SHIPPED, required=True) == Config()
    assert parse(SHIPPED.read_text(encoding="utf-8")) == Config()


def _flatten(data: dict, prefix: str = "") -> set[str]:  # type: ignore[type-arg]
    keys: set[str] = set()
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        keys |= _flatten(v, key) if isinstance(v, dict) else {key}
    return keys


def test_every_described_key_appears_in_the_shipped_config_yaml() -> None:
    described = {key for key, _, _ in describe()}
    shipped = _flatten(yaml.safe_load(SHIPPED.read_text(encoding="utf-8")))
    assert described, "describe() lists no keys"
    assert described - shipped == set()
    # and the file documents nothing the code does not know
    assert shipped - described == set()


# (id, config text, key path, fragment of the problem)
BAD = [
    ("yaml-syntax", "queue:\n  name: POC-Queue\n    colour: red\n", "", "line 3"),
    ("top-level-list", "- queue\n- table\n", "(top level)", "must be a mapping, not a list"),
    ("section-not-a-mapping", "queue: 5\n", "queue", "must be a mapping, not int"),
    ("unknown-top-level-key", "colour: red\n", "colour", "unknown key"),
    ("unknown-nested-key", "queue:\n  colour: red\n", "queue.colour", "unknown key"),
    (
        "string-for-int",
        "queue:\n  visibility_timeout: sixty\n",
        "queue.visibility_timeout",
        "must be a whole number, not a string",
    ),
    (
        "bool-for-int",
        "lambda1:\n  timeout: true\n",
        "lambda1.timeout",
        "must be a whole number, not true/false",
    ),
    ("int-for-name", "queue:\n  name: 42\n", "queue.name", "must be a string, not int"),
    ("empty-name", 'table:\n  name: ""\n', "table.name", "must not be empty"),
    (
        "queue-with-space",
        "queue:\n  name: POC Queue\n",
        "queue.name",
        "'POC Queue' is not a valid SQS queue name",
    ),
    (
        "queue-longer-than-80",
        f"queue:\n  name: {'Q' * 81}\n",
        "queue.name",
        "must be 1 to 80 characters long (is 81)",
    ),
    (
        "table-of-2-chars",
        "table:\n  name: ab\n",
        "table.name",
        "must be 3 to 255 characters long (is 2)",
    ),
    (
        "function-with-dot",
        "lambda1:\n  name: POC.Lambda\n",
        "lambda1.name",
        "'POC.Lambda' is not a valid Lambda function name",
    ),
    (
        "role-longer-than-64",
        f"iam:\n  roles:\n    lambda1: {'R' * 65}\n",
        "iam.roles.lambda1",
        "must be 1 to 64 characters long (is 65)",
    ),
    (
        "policy-with-slash",
        "iam:\n  policies:\n    read_sqs: Lambda/Read\n",
        "iam.policies.read_sqs",
        "'Lambda/Read' is not a valid IAM policy name",
    ),
    (
        "topic-with-dot",
        "topic:\n  name: POC.Topic\n",
        "topic.name",
        "'POC.Topic' is not a valid SNS topic name",
    ),
    (
        "stage-with-dash",
        "api:\n  stage: prod-1\n",
        "api.stage",
        "'prod-1' is not a valid stage name",
    ),
    (
        "bad-email",
        "topic:\n  notification_email: you-at-example.com\n",
        "topic.notification_email",
        "'you-at-example.com' is not an email address",
    ),
    ("region-EU", "region: EU\n", "region", "'EU' is not an AWS region name"),
    ("region-us-east", "region: us-east\n", "region", "'us-east' is not an AWS region name"),
    (
        "runtime-python3.99",
        "lambda1:\n  runtime: python3.99\n",
        "lambda1.runtime",
        "unknown runtime 'python3.99'",
    ),
    (
        "runtime-nodejs20.x",
        "lambda2:\n  runtime: nodejs20.x\n",
        "lambda2.runtime",
        "unknown runtime 'nodejs20.x'",
    ),
    (
        "runtime-python3.8-blocked",
        "lambda1:\n  runtime: python3.8\n",
        "lambda1.runtime",
        "python3.8 is past end of support",
    ),
    (
        "visibility-below-6x-timeout",
        "lambda1:\n  timeout: 20\n",
        "queue.visibility_timeout",
        "60 s is less than 6 x lambda1.timeout = 120 s",
    ),
    (
        "lambda1-batch-size-11",
        "lambda1:\n  batch_size: 11\n",
        "lambda1.batch_size",
        "must be between 1 and 10 (is 11)",
    ),
    (
        "starting-position-NOW",
        "lambda2:\n  starting_position: NOW\n",
        "lambda2.starting_position",
        "must be one of TRIM_HORIZON, LATEST (is 'NOW')",
    ),
    (
        "dead-letter-queue-is-the-queue",
        "queue:\n  dead_letter_queue: POC-Queue\n",
        "queue.dead_letter_queue",
        "'POC-Queue' is already used by queue.name",
    ),
    (
        "duplicate-role-names",
        "iam:\n  roles:\n    lambda2: Lambda-SQS-DynamoDB\n",
        "iam.roles.lambda2",
        "'Lambda-SQS-DynamoDB' is already used by iam.roles.lambda1",
    ),
    (
        "memory-size-64",
        "lambda1:\n  memory_size: 64\n",
        "lambda1.memory_size",
        "must be between 128 and 10240 (is 64)",
    ),
    (
        "timeout-0",
        "lambda2:\n  timeout: 0\n",
        "lambda2.timeout",
        "must be between 1 and 900 (is 0)",
    ),
]


def test_the_bad_input_table_is_big_enough() -> None:
    assert len(BAD) >= 24
    assert len({case[0] for case in BAD}) == len(BAD)


@pytest.mark.parametrize(("text", "key", "fragment"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_bad_input_names_its_key_and_the_problem(text: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text, "config.yaml")
    e = info.value
    assert e.key == key
    assert fragment in e.problem
    where = f"config.yaml: {key}: " if key else "config.yaml: "
    assert str(e) == where + e.problem
    assert "\n" not in str(e)


@pytest.mark.parametrize("fn", ["lambda1", "lambda2"])
def test_python3_9_is_accepted_with_a_warning(fn: str) -> None:
    cfg = parse(f"{fn}:\n  runtime: python3.9\n")
    assert getattr(cfg, fn).runtime == "python3.9"
    warnings = cfg.warnings()
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{fn}.runtime: python3.9 is deprecated")
    assert "python3.9" in config.DEPRECATED_RUNTIMES


def test_load_of_a_missing_file_gives_the_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path / "config.yaml")
    assert cfg == Config()
    # No handlers/ beside the config: the ones shipped with pocctl; else the ones beside it.
    assert cfg.handlers_path == Path(config.__file__).resolve().parent.parent / "handlers"
    (tmp_path / "handlers").mkdir()
    assert cfg.handlers_path == tmp_path.resolve() / "handlers"


def test_load_of_a_missing_required_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as info:
        load(missing, required=True)
    assert str(missing) in str(info.value)
    assert "no such file" in str(info.value)
