"""A bad config.yaml stops `pocctl up` with one line naming the key, before any AWS call."""

from __future__ import annotations

import pytest

# (id, config text, key path, fragment of the problem)
BAD = [
    ("top-level-list", "- queue\n- table\n", "(top level)", "must be a mapping, not a list"),
    ("unknown-nested-key", "queue:\n  colour: red\n", "queue.colour", "unknown key"),
    (
        "string-for-int",
        "queue:\n  visibility_timeout: sixty\n",
        "queue.visibility_timeout",
        "must be a whole number, not a string",
    ),
    (
        "queue-with-space",
        "queue:\n  name: POC Queue\n",
        "queue.name",
        "'POC Queue' is not a valid SQS queue name",
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
        "stage-with-dash",
        "api:\n  stage: prod-1\n",
        "api.stage",
        "'prod-1' is not a valid stage name",
    ),
    ("region-us-east", "region: us-east\n", "region", "'us-east' is not an AWS region name"),
    (
        "runtime-python3.8-blocked",
        "lambda1:\n  runtime: python3.8\n",
        "lambda1.runtime",
        "python3.8 is past end of support",
    ),
    (
        "runtime-nodejs20.x",
        "lambda2:\n  runtime: nodejs20.x\n",
        "lambda2.runtime",
        "unknown runtime 'nodejs20.x'",
    ),
    (
        "visibility-below-6x-timeout",
        "lambda1:\n  timeout: 20\n",
        "queue.visibility_timeout",
        "60 s is less than 6 x lambda1.timeout = 120 s",
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
        "bad-email",
        "topic:\n  notification_email: you-at-example.com\n",
        "topic.notification_email",
        "'you-at-example.com' is not an email address",
    ),
]


@pytest.mark.parametrize(("text", "key", "fragment"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_bad_config_exits_2_with_one_line_and_no_aws_call(  # type: ignore[no-untyped-def]
    ws, aws_calls, text: str, key: str, fragment: str
) -> None:
    ws.config.write_text(text)
    r = ws.cli("up")
    assert r.exit_code == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: config.yaml: {key}: "), lines[0]
    assert fragment in lines[0]
    assert "Traceback" not in r.output
    assert r.stdout == ""
    assert aws_calls.calls == []
    assert not ws.state.exists()


def test_a_yaml_syntax_error_names_the_line_without_an_aws_call(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    ws.config.write_text("queue:\n  name: POC-Queue\n    colour: red\n")
    r = ws.cli("up")
    assert r.exit_code == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: config.yaml: not valid YAML: line 3, ")
    assert aws_calls.calls == []


def test_an_explicit_config_that_is_missing_exits_2_naming_the_file(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from pocctl.cli import main

    missing = ws.dir / "missing.yaml"
    argv = ["--config", str(missing), "--state", str(ws.state), "--endpoint-url", ws.endpoint]
    result = CliRunner().invoke(main, [*argv, "up"], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr == f"error: {missing}: no such file\n"
    assert aws_calls.calls == []


def test_a_python3_9_runtime_builds_the_stack_with_a_deprecation_warning(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    ws.write_config("lambda1:\n  runtime: python3.9\n")
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    assert (
        "warning: config.yaml: lambda1.runtime: python3.9 is deprecated since 2025-12-15"
        in r.stderr
    )
    assert r.stderr.count("warning:") == 1
    assert "error" not in r.stderr
    fn = ws.client("lambda").get_function_configuration(FunctionName="POC-Lambda-1")
    assert fn["Runtime"] == "python3.9"
    assert aws_calls.mutating
