"""`pocctl task N --explain`, resume, links and commands, in-process against the embedded AWS."""

from __future__ import annotations

import pytest

from pocctl import config, lab
from pocctl.cli.app import App, Options
from pocctl.cli.walkthrough import cli_command, console_url, first_not_done, shell_lines
from pocctl.resources.base import Resource

ACCOUNT = "123456789012"


def app_for(ws) -> App:  # type: ignore[no-untyped-def]
    return App(
        Options(config=ws.config, config_given=True, state=ws.state, endpoint_url=ws.endpoint)
    )


def test_explain_shows_what_would_be_sent_and_changes_nothing(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    r = ws.cli("task", "1", "--explain")
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "Task 1 of 10 · Creating IAM policies and roles" in out
    assert '"Sid": "ListTopicsHasNoResourceLevel"' in out
    assert f'"arn:aws:iam::{ACCOUNT}:policy/Lambda-Write-DynamoDB"' in out  # attached to a role
    assert "+ create     role Lambda-SQS-DynamoDB" in out
    assert f"Nothing was changed. `{ws.cmd('task', '1')}` runs it" in out
    assert aws_calls.mutating == []
    assert not ws.state.exists() or "policy" not in ws.state.read_text()


def test_explain_shows_unchanged_then_the_drift_old_to_new(stack, aws_calls) -> None:  # type: ignore[no-untyped-def]
    r = stack.cli("task", "3", "--explain")
    assert "= unchanged  queue POC-Queue" in r.stdout
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName="POC-Queue")["QueueUrl"]
    policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "30", **policy})
    aws_calls.clear()
    r = stack.cli("task", "3", "--explain")
    assert r.exit_code == 0, r.output
    assert "~ update     queue POC-Queue" in r.stdout
    assert "VisibilityTimeout: 30 → 60" in r.stdout
    assert aws_calls.mutating == []


def test_explain_of_tasks_9_and_10(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    r = ws.cli("task", "9", "--explain")
    assert r.exit_code == 0, r.output
    assert "REST API POC-API is not deployed" in r.stdout
    assert '"item": "all-purpose cleaner"' in r.stdout
    r = ws.cli("task", "10", "--explain")
    assert r.exit_code == 0, r.output
    assert "· gone      policy Lambda-Write-DynamoDB" in r.stdout
    assert aws_calls.mutating == []


def test_without_a_terminal_task_10_needs_yes(stack, aws_calls) -> None:  # type: ignore[no-untyped-def]
    r = stack.cli("walkthrough", "--from", "10")
    assert r.exit_code == 0, r.output
    assert "Running straight through (no terminal)." in r.stdout
    assert "- delete    table orders" in r.stdout
    assert "Not torn down" in r.stdout
    assert aws_calls.mutating == []


def test_resume_asks_aws_not_the_state_file(stack) -> None:  # type: ignore[no-untyped-def]
    assert first_not_done(app_for(stack)) == 9  # everything built: Task 9 can always run again
    stack.client("sns").delete_topic(TopicArn=f"arn:aws:sns:us-east-1:{ACCOUNT}:POC-Topic")
    assert first_not_done(app_for(stack)) == 6  # the state file still lists the topic
    stack.client("lambda").update_function_configuration(FunctionName="POC-Lambda-1", Timeout=3)
    assert first_not_done(app_for(stack)) == 4  # drifted is not done


def test_a_failed_step_says_how_to_resume(ws) -> None:  # type: ignore[no-untyped-def]
    r = ws.cli("walkthrough", "--from", "4")
    assert r.exit_code == 1
    assert "Task 4 (lambda1): could not create function POC-Lambda-1" in r.stderr
    assert f"then `{ws.cmd('walkthrough')}` resumes at Task 4" in r.stderr


def test_help_has_a_summary_and_examples(ws) -> None:  # type: ignore[no-untyped-def]
    r = ws.cli("walkthrough", "--help")
    assert r.exit_code == 0
    assert "Walk through the lab's Tasks 1–10, one screen per task." in r.stdout
    assert "pocctl walkthrough --from 4" in r.stdout
    assert all(len(line) <= 80 for line in r.stdout.splitlines())
    assert "--explain" in ws.cli("task", "--help").stdout


REGION = "eu-west-1"


@pytest.mark.parametrize(
    ("kind", "name", "identity", "url"),
    [
        (
            "iam_policy",
            "Lambda-Read-SQS",
            {"arn": f"arn:aws:iam::{ACCOUNT}:policy/Lambda-Read-SQS"},
            "https://console.aws.amazon.com/iam/home#/policies/details/"
            f"arn%3Aaws%3Aiam%3A%3A{ACCOUNT}%3Apolicy%2FLambda-Read-SQS",
        ),
        (
            "iam_role",
            "APIGateway-SQS",
            {},
            "https://console.aws.amazon.com/iam/home#/roles/details/APIGateway-SQS",
        ),
        (
            "dynamodb_table",
            "orders",
            {},
            f"https://{REGION}.console.aws.amazon.com/dynamodbv2/home?region={REGION}"
            "#table?name=orders",
        ),
        (
            "sqs_queue",
            "POC-Queue",
            {"url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/POC-Queue"},
            f"https://{REGION}.console.aws.amazon.com/sqs/v3/home?region={REGION}#/queues/"
            f"https%3A%2F%2Fsqs.{REGION}.amazonaws.com%2F{ACCOUNT}%2FPOC-Queue",
        ),
        (
            "lambda_function",
            "POC-Lambda-1",
            {},
            f"https://{REGION}.console.aws.amazon.com/lambda/home?region={REGION}"
            "#/functions/POC-Lambda-1",
        ),
        (
            "sns_topic",
            "POC-Topic",
            {"arn": f"arn:aws:sns:{REGION}:{ACCOUNT}:POC-Topic"},
            f"https://{REGION}.console.aws.amazon.com/sns/v3/home?region={REGION}"
            f"#/topic/arn:aws:sns:{REGION}:{ACCOUNT}:POC-Topic",
        ),
        (
            "apigateway_rest_api",
            "POC-API",
            {"id": "a1b2c3d4e5"},
            f"https://{REGION}.console.aws.amazon.com/apigateway/main/apis/a1b2c3d4e5/resources"
            f"?api=a1b2c3d4e5&region={REGION}",
        ),
    ],
)
def test_console_links(kind: str, name: str, identity: dict, url: str) -> None:
    assert console_url(_resource(kind, name), identity, REGION) == url


def _resource(resource_type: str, name: str) -> Resource:
    """The lab's resource of that type and name, as config.yaml's defaults make it."""
    cfg = config.parse("topic:\n  notification_email: me@example.com\n")
    found = [r for _, r in lab.all_resources(cfg) if (r.type, r.name) == (resource_type, name)]
    assert found, (resource_type, name)
    return found[0]


def test_no_console_link_outside_the_aws_partition() -> None:
    function = _resource("lambda_function", "POC-Lambda-1")
    assert console_url(function, {}, "cn-north-1", partition="aws-cn") is None


def test_cli_commands_are_split_to_fit_and_quoted() -> None:
    function = _resource("lambda_function", "POC-Lambda-1")
    units = cli_command(function, {}, "http://127.0.0.1:4566", "us-east-1")
    assert units is not None
    assert " ".join(units) == (
        "aws --endpoint-url http://127.0.0.1:4566 --region us-east-1 "
        "lambda get-function --function-name POC-Lambda-1"
    )
    lines = shell_lines(units, 76)
    assert lines == [
        "aws --endpoint-url http://127.0.0.1:4566 --region us-east-1 \\",
        "  lambda get-function --function-name POC-Lambda-1",
    ]
    assert all(len(line) <= 76 for line in lines)
    role = _resource("iam_role", "APIGateway-SQS")
    role.name = "it's"
    odd = cli_command(role, {}, "http://127.0.0.1:4566", "us-east-1")
    assert odd is not None and odd[-1] == "--role-name 'it'\"'\"'s'"


def _commands() -> list[str]:
    from pocctl.cli import main

    return list(main.commands)


@pytest.mark.parametrize("command", _commands())
def test_every_command_help_has_a_summary_and_an_example_in_80_columns(command: str) -> None:
    from click.testing import CliRunner

    from pocctl.cli import main

    r = CliRunner().invoke(main, [command, "--help"], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    summary = r.output.split("\n\n")[1].strip()
    assert summary.endswith("."), summary
    assert "Example" in r.output
    assert all(len(line) <= 80 for line in r.output.splitlines())


def test_shell_completion_is_clicks() -> None:
    from click.testing import CliRunner

    from pocctl.cli import main

    r = CliRunner().invoke(main, [], prog_name="pocctl", env={"_POCCTL_COMPLETE": "bash_source"})
    assert r.exit_code == 0
    assert "_POCCTL_COMPLETE=bash_complete" in r.output
    r = CliRunner().invoke(
        main,
        [],
        prog_name="pocctl",
        env={"_POCCTL_COMPLETE": "bash_complete", "COMP_WORDS": "pocctl walk", "COMP_CWORD": "1"},
    )
    assert "walkthrough" in r.output


def test_on_aws_what_it_made_links_to_the_console(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import io

    from rich.console import Console

    from pocctl.cli.walkthrough import show_made
    from pocctl.config import load
    from pocctl.engine import CREATE, Step
    from pocctl.lab import task

    app = App(Options(config=tmp_path / "config.yaml", state=tmp_path / "s.json", region=REGION))
    assert app.endpoint_url is None  # real AWS: no call is made here, only links are shown
    buf = io.StringIO()
    app.terminal.out = Console(file=buf, width=80, highlight=False)
    (function, _) = task(4).resources(load(tmp_path / "config.yaml", required=False))
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:POC-Lambda-1"
    show_made(app, [Step(task(4), function, CREATE, identity={"arn": arn})])
    out = buf.getvalue()
    assert arn in out
    assert (
        f"https://{REGION}.console.aws.amazon.com/lambda/home?region={REGION}"
        "#/functions/POC-Lambda-1" in out.replace("\n    ", "")
    )
    assert "aws --endpoint-url" not in out
