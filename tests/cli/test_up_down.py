"""`up`, `plan`, `status` and `down` through the real CLI against the embedded AWS server."""

from __future__ import annotations

import json
import re
import stat

import pytest

ACCOUNT = "123456789012"
REGION = "us-east-1"


def arn(service: str, resource: str, region: str = REGION) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


def policy_doc(iam, name: str) -> dict:  # type: ignore[no-untyped-def]
    pa = f"arn:aws:iam::{ACCOUNT}:policy/{name}"
    v = iam.get_policy(PolicyArn=pa)["Policy"]["DefaultVersionId"]
    return iam.get_policy_version(PolicyArn=pa, VersionId=v)["PolicyVersion"]["Document"]


def test_up_builds_every_resource_with_the_lab_settings(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    assert "stack is up: 18 created, 0 updated, 0 unchanged" in r.stdout

    iam = ws.client("iam")
    table_arn = arn("dynamodb", "table/orders")
    queue_arn = arn("sqs", "POC-Queue")
    topic_arn = arn("sns", "POC-Topic")

    # Task 1: each statement scoped to its resource; "*" only for ListTopics/ListStreams.
    write = policy_doc(iam, "Lambda-Write-DynamoDB")["Statement"]
    assert write == [
        {
            "Sid": "WriteOrders",
            "Effect": "Allow",
            "Action": ["dynamodb:PutItem", "dynamodb:DescribeTable"],
            "Resource": table_arn,
        }
    ]
    read_sqs = policy_doc(iam, "Lambda-Read-SQS")["Statement"][0]
    assert read_sqs["Resource"] == queue_arn
    assert set(read_sqs["Action"]) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
    }
    publish = policy_doc(iam, "Lambda-SNS-Publish")["Statement"]
    assert {s["Resource"]: tuple(s["Action"]) for s in publish} == {
        topic_arn: ("sns:Publish", "sns:GetTopicAttributes"),
        "*": ("sns:ListTopics",),
    }
    streams = policy_doc(iam, "Lambda-DynamoDBStreams-Read")["Statement"]
    assert {s["Resource"]: tuple(s["Action"]) for s in streams} == {
        table_arn + "/stream/*": (
            "dynamodb:GetShardIterator",
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
        ),
        "*": ("dynamodb:ListStreams",),
    }

    def attached(role: str) -> set[str]:
        return {
            p["PolicyName"]
            for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        }

    def trusted(role: str) -> str:
        doc = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        return doc["Statement"][0]["Principal"]["Service"]

    assert attached("Lambda-SQS-DynamoDB") == {"Lambda-Write-DynamoDB", "Lambda-Read-SQS"}
    assert attached("Lambda-DynamoDBStreams-SNS") == {
        "Lambda-SNS-Publish",
        "Lambda-DynamoDBStreams-Read",
    }
    assert attached("APIGateway-SQS") == set()  # api.cloudwatch_logs_policy is off by default
    assert trusted("Lambda-SQS-DynamoDB") == "lambda.amazonaws.com"
    assert trusted("APIGateway-SQS") == "apigateway.amazonaws.com"
    logs = iam.get_role_policy(RoleName="Lambda-SQS-DynamoDB", PolicyName="pocctl-inline")
    assert logs["PolicyDocument"]["Statement"][0]["Resource"] == arn(
        "logs", "log-group:/aws/lambda/POC-Lambda-1:*"
    )
    send = iam.get_role_policy(RoleName="APIGateway-SQS", PolicyName="pocctl-inline")
    assert send["PolicyDocument"]["Statement"] == [
        {
            "Sid": "SendOrders",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": queue_arn,
        }
    ]

    # Task 2 and 5
    table = ws.client("dynamodb").describe_table(TableName="orders")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "orderID", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TableStatus"] == "ACTIVE"
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}

    # Task 3
    sqs = ws.client("sqs")
    url = sqs.get_queue_url(QueueName="POC-Queue")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert int(attrs["VisibilityTimeout"]) == 60 >= 6 * 10
    assert attrs["SqsManagedSseEnabled"] == "true"
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == arn("sqs", "POC-Queue-DLQ")
    assert int(redrive["maxReceiveCount"]) == 3
    policy = json.loads(attrs["Policy"])
    principals = {s["Principal"]["AWS"]: s["Action"] for s in policy["Statement"]}
    assert principals == {
        f"arn:aws:iam::{ACCOUNT}:role/APIGateway-SQS": "sqs:SendMessage",
        f"arn:aws:iam::{ACCOUNT}:role/Lambda-SQS-DynamoDB": [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ChangeMessageVisibility",
        ],
    }

    # Task 4 and 7
    lam = ws.client("lambda")
    f1 = lam.get_function(FunctionName="POC-Lambda-1")["Configuration"]
    assert (f1["Runtime"], f1["Handler"], f1["Role"]) == (
        "python3.13",
        "store_order.handler",
        f"arn:aws:iam::{ACCOUNT}:role/Lambda-SQS-DynamoDB",
    )
    assert f1["Environment"]["Variables"]["TABLE_NAME"] == "orders"
    f2 = lam.get_function(FunctionName="POC-Lambda-2")["Configuration"]
    assert f2["Handler"] == "notify_order.handler"
    assert f2["Environment"]["Variables"] == {"TOPIC_ARN": topic_arn}
    (m1,) = lam.list_event_source_mappings(FunctionName="POC-Lambda-1")["EventSourceMappings"]
    assert m1["EventSourceArn"] == queue_arn
    assert m1["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert m1["BatchSize"] == 10
    (m2,) = lam.list_event_source_mappings(FunctionName="POC-Lambda-2")["EventSourceMappings"]
    assert m2["EventSourceArn"] == table["LatestStreamArn"]
    assert m2["StartingPosition"] == "TRIM_HORIZON"
    assert m2["MaximumRetryAttempts"] == 3
    assert m2["BisectBatchOnFunctionError"] is True
    assert m2["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert m2["DestinationConfig"]["OnFailure"]["Destination"] == arn(
        "sqs", "POC-Lambda-2-Failures"
    )

    # Task 6
    ws.client("sns").get_topic_attributes(TopicArn=topic_arn)

    # Task 8
    apigw = ws.client("apigateway")
    (api,) = apigw.get_rest_apis()["items"]
    assert api["name"] == "POC-API"
    assert api["endpointConfiguration"]["types"] == ["REGIONAL"]
    root = next(i["id"] for i in apigw.get_resources(restApiId=api["id"])["items"])
    method = apigw.get_method(restApiId=api["id"], resourceId=root, httpMethod="POST")
    integ = method["methodIntegration"]
    assert integ["type"] == "AWS"
    assert integ["uri"] == f"arn:aws:apigateway:{REGION}:sqs:path/{ACCOUNT}/POC-Queue"
    assert integ["credentials"] == f"arn:aws:iam::{ACCOUNT}:role/APIGateway-SQS"
    assert integ["requestParameters"] == {
        "integration.request.header.Content-Type": "'application/x-www-form-urlencoded'"
    }
    assert integ["requestTemplates"]["application/json"] == (
        "Action=SendMessage&MessageBody=$util.urlEncode($input.body)"
    )
    assert method["requestModels"] == {"application/json": "Order"}
    validator = apigw.get_request_validator(
        restApiId=api["id"], requestValidatorId=method["requestValidatorId"]
    )
    assert validator["validateRequestBody"] is True
    schema = json.loads(apigw.get_model(restApiId=api["id"], modelName="Order")["schema"])
    assert schema["type"] == "object"
    stage = apigw.get_stage(restApiId=api["id"], stageName="prod")
    assert stage["methodSettings"]["*/*"]["throttlingRateLimit"] == 50.0
    assert stage["methodSettings"]["*/*"]["throttlingBurstLimit"] == 100
    invoke = f"{ws.endpoint}/restapis/{api['id']}/prod/_user_request_/"
    assert invoke in r.stdout

    # The state file: every resource, with its ARN, mode 0600.
    state = json.loads(ws.state.read_text())
    assert stat.S_IMODE(ws.state.stat().st_mode) == 0o600
    assert state["schema_version"] == 1
    assert (state["account"], state["region"], state["endpoint"]) == (ACCOUNT, REGION, ws.endpoint)
    assert len(state["resources"]) == 18
    assert state["resources"]["queue.orders"]["arn"] == queue_arn
    assert state["resources"]["api"]["url"] == invoke
    assert state["resources"]["function.lambda1"]["arn"] == f1["FunctionArn"]


def test_second_up_makes_no_mutating_call(stack, aws_calls) -> None:  # type: ignore[no-untyped-def]
    r = stack.cli("up")
    assert r.exit_code == 0, r.output
    assert "0 created, 0 updated, 18 unchanged" in r.stdout
    assert aws_calls.mutating == []


def test_queues_are_read_at_the_url_the_state_recorded(stack, aws_calls) -> None:  # type: ignore[no-untyped-def]
    """No GetQueueUrl when the state file knows the URL; a URL that went stale (the queue was
    deleted out of band) falls back to the name, and the queue is made again."""
    assert stack.cli("queue").exit_code == 0
    reads = [c for c in aws_calls.reads if "Queue" in c]
    assert reads == ["GetQueueAttributes"] * 2, reads

    sqs = stack.client("sqs")
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName="POC-Queue-DLQ")["QueueUrl"])
    aws_calls.clear()
    r = stack.cli("queue")
    assert r.exit_code == 0, r.output
    assert "created      POC-Queue-DLQ" in r.stdout
    assert "GetQueueUrl" in aws_calls.reads


def test_a_changed_handler_makes_exactly_one_code_update(stack, aws_calls) -> None:  # type: ignore[no-untyped-def]
    path = stack.handlers / "store_order.py"
    path.write_text(path.read_text() + "\n# a change\n")
    r = stack.cli("up")
    assert r.exit_code == 0, r.output
    assert aws_calls.mutating == ["PUT /2015-03-31/functions/POC-Lambda-1/code"]
    r = stack.cli("up")
    assert aws_calls.mutating == ["PUT /2015-03-31/functions/POC-Lambda-1/code"]


def test_plan_is_read_only_and_tells_create_then_unchanged(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    r = ws.cli("plan")
    assert r.exit_code == 0, r.output
    assert "18 to create, 0 to update, 0 unchanged" in r.stdout
    assert aws_calls.mutating == []
    assert aws_calls.reads  # it did look
    assert ws.cli("up").exit_code == 0
    aws_calls.clear()
    r = ws.cli("plan")
    assert "0 to create, 0 to update, 18 unchanged" in r.stdout
    assert aws_calls.mutating == []


def test_drift_is_shown_by_status_and_plan_and_converged_by_up(stack, aws_calls) -> None:  # type: ignore[no-untyped-def]
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName="POC-Queue")["QueueUrl"]
    policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "30", **policy})
    stack.client("lambda").update_function_configuration(
        FunctionName="POC-Lambda-1", Environment={"Variables": {"TABLE_NAME": "other"}}
    )
    aws_calls.clear()

    report = json.loads(stack.cli("status", "--json").stdout)
    drifted = {r["key"]: r["changes"] for r in report["resources"] if r["status"] == "drifted"}
    assert set(drifted) == {"queue.orders", "function.lambda1"}
    assert drifted["queue.orders"] == ["VisibilityTimeout: 30 → 60"]
    plan = stack.cli("plan").stdout
    assert "1 update" not in plan and "2 to update" in plan
    assert aws_calls.mutating == []

    r = stack.cli("up")
    assert r.exit_code == 0, r.output
    assert "VisibilityTimeout: 30 → 60" in r.stdout
    assert sorted(aws_calls.mutating) == [
        "PUT /2015-03-31/functions/POC-Lambda-1/configuration",
        "SetQueueAttributes",
    ]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    assert attrs["Attributes"]["VisibilityTimeout"] == "60"


def test_a_changed_policy_document_becomes_the_default_version_never_more_than_five(
    stack,  # type: ignore[no-untyped-def]
) -> None:
    iam = stack.client("iam")
    pa = f"arn:aws:iam::{ACCOUNT}:policy/Lambda-Read-SQS"
    for i in range(6):
        versions = iam.list_policy_versions(PolicyArn=pa)["Versions"]
        if len(versions) == 5:  # what a person editing in the console has to do too
            old = min(
                (v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"]
            )
            iam.delete_policy_version(PolicyArn=pa, VersionId=old["VersionId"])
        broad = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sqs:*",
                    "Resource": f"arn:aws:sqs:us-east-1:{ACCOUNT}:q{i}",
                }
            ],
        }
        iam.create_policy_version(PolicyArn=pa, PolicyDocument=json.dumps(broad), SetAsDefault=True)
        r = stack.cli("up")
        assert r.exit_code == 0, r.output
        assert "updated" in r.stdout
        assert len(iam.list_policy_versions(PolicyArn=pa)["Versions"]) <= 5
        assert policy_doc(iam, "Lambda-Read-SQS")["Statement"][0]["Sid"] == "ConsumeOrderQueue"


def test_lost_state_file_adopts_everything_without_changes(stack, aws_calls) -> None:  # type: ignore[no-untyped-def]
    stack.state.unlink()
    r = stack.cli("up")
    assert r.exit_code == 0, r.output
    assert aws_calls.mutating == []
    assert len(json.loads(stack.state.read_text())["resources"]) == 18


def test_down_removes_everything_twice_and_without_state(stack, aws_calls) -> None:  # type: ignore[no-untyped-def]
    r = stack.cli("down", "--yes")
    assert r.exit_code == 0, r.output
    assert "18 deleted, 0 already gone" in r.stdout
    # Headings read as removal, last task first, not as the build titles ("Creating ...").
    assert "Creating" not in r.stdout
    headings = [line for line in r.stdout.splitlines() if line.startswith("Task ")]
    assert headings[0] == "Task 8 · removing the REST API: POST / → SQS, deployed to a stage"
    assert [h.split(" ·")[0] for h in headings] == [f"Task {n}" for n in range(8, 0, -1)]
    assert_nothing_left(stack)
    r = stack.cli("down", "--yes")  # nothing there: said, nothing asked or called to delete
    assert r.exit_code == 0, r.output
    assert "nothing to remove: no resource of the stack exists in us-east-1" in r.stdout
    assert "deleted" not in r.stdout

    assert stack.cli("up").exit_code == 0
    stack.state.unlink()
    r = stack.cli("down", "--yes")
    assert r.exit_code == 0, r.output
    assert "18 deleted" in r.stdout
    assert_nothing_left(stack)


def assert_nothing_left(ws) -> None:  # type: ignore[no-untyped-def]
    iam = ws.client("iam")
    assert iam.list_policies(Scope="Local")["Policies"] == []
    assert iam.list_roles()["Roles"] == []
    assert ws.client("dynamodb").list_tables()["TableNames"] == []
    assert ws.client("sqs").list_queues().get("QueueUrls", []) == []
    assert ws.client("lambda").list_functions()["Functions"] == []
    assert ws.client("lambda").list_event_source_mappings()["EventSourceMappings"] == []
    assert ws.client("sns").list_topics()["Topics"] == []
    assert ws.client("apigateway").get_rest_apis()["items"] == []
    groups = ws.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")
    assert groups["logGroups"] == []


def test_down_deletes_the_log_groups_lambda_made(stack) -> None:  # type: ignore[no-untyped-def]
    logs = stack.client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/POC-Lambda-1")
    logs.create_log_group(logGroupName="/aws/lambda/POC-Lambda-2")
    assert stack.cli("down", "--yes").exit_code == 0
    assert logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"] == []


def test_up_after_down_builds_again(stack) -> None:  # type: ignore[no-untyped-def]
    assert stack.cli("down", "--yes").exit_code == 0
    r = stack.cli("up")
    assert r.exit_code == 0, r.output
    assert "18 created" in r.stdout


def test_down_without_yes_and_without_a_terminal_refuses(stack, aws_calls) -> None:  # type: ignore[no-untyped-def]
    r = stack.subprocess("--config", str(stack.config), "down")
    assert r.exit_code == 2
    assert "confirm with --yes" in r.stderr
    assert aws_calls.mutating == []


def test_email_subscription_is_made_once_and_reported(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    ws.write_config("topic:\n  notification_email: learner@example.com\n")
    assert ws.cli("up").exit_code == 0
    assert ws.cli("up").exit_code == 0
    subs = ws.client("sns").list_subscriptions()["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("email", "learner@example.com")]
    report = json.loads(ws.cli("status", "--json").stdout)
    (row,) = [r for r in report["resources"] if r["key"] == "subscription.email"]
    assert row["status"] == "exists"
    # As on AWS, it stays pending until the link in the email is clicked (sns_email.py).
    assert row["note"] == "pending confirmation (check inbox)"


def test_each_task_command_runs_alone_and_in_any_order_again(ws) -> None:  # type: ignore[no-untyped-def]
    for cmd in ("iam", "table", "queue", "lambda1", "streams", "topic", "lambda2", "api"):
        r = ws.cli(cmd)
        assert r.exit_code == 0, (cmd, r.output)
    for cmd in ("api", "iam", "queue"):
        r = ws.cli(cmd)
        assert r.exit_code == 0 and "created" not in r.stdout and "updated" not in r.stdout
    r = ws.cli("task", "2")
    assert r.exit_code == 0 and "unchanged" in r.stdout and "orders" in r.stdout


def test_a_task_run_before_its_prerequisite_fails_with_one_clear_line(ws) -> None:  # type: ignore[no-untyped-def]
    r = ws.cli("lambda1")
    assert r.exit_code == 1
    assert "Task 4 (lambda1): could not create function POC-Lambda-1: role" in r.stderr
    assert "Lambda-SQS-DynamoDB does not exist" in r.stderr
    assert f"run `{ws.cmd('iam')}` (Task 1) first" in r.stderr
    assert "Traceback" not in r.output


def test_several_apis_of_the_same_name_are_refused_not_guessed(stack, aws_calls) -> None:  # type: ignore[no-untyped-def]
    stack.client("apigateway").create_rest_api(name="POC-API")
    # With the state file, its ID is used.
    assert stack.cli("up").exit_code == 0
    stack.state.unlink()
    aws_calls.clear()
    r = stack.cli("api")
    assert r.exit_code == 1
    assert "2 REST APIs are named POC-API" in r.stderr
    assert aws_calls.mutating == []
    assert len(stack.client("apigateway").get_rest_apis()["items"]) == 2


def test_quiet_prints_nothing_on_success(ws) -> None:  # type: ignore[no-untyped-def]
    r = ws.cli("-q", "up")
    assert r.exit_code == 0
    assert r.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["nonsense"],
        ["task", "11"],
        ["task", "0"],
        ["task", "x"],
        ["up", "--bogus"],
        ["test-order", "--count", "0"],
        ["test-order", "--count", "many"],
        ["test-order", "--timeout", "soon"],
        ["walkthrough", "--from", "12"],
        ["local", "--port", "70000"],
        ["status", "extra"],
    ],
    ids=" ".join,
)
def test_usage_errors_exit_2(ws, args: list[str], aws_calls) -> None:  # type: ignore[no-untyped-def]
    r = ws.cli(*args)
    assert r.exit_code == 2
    assert "Usage:" in r.output
    assert aws_calls.calls == []


def test_parallel_and_sequential_up_read_alike_and_make_the_same_stack(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    from support.inventory import inventory

    def lines(out: str) -> list[str]:  # the task-by-task part, before the closing table
        progress = out.split("\n\n", 1)[0]
        return [re.sub(r"\d+\.\d s", "T s", line) for line in progress.splitlines()]

    def calls() -> list[str]:  # without the IDs AWS picks
        ops = [re.sub(r"/[0-9a-f]{8}-[0-9a-f-]{27}", "/UUID", op) for op in aws_calls.mutating]
        return sorted(re.sub(r"/(restapis|resources|deployments)/\w+", r"/\1/ID", op) for op in ops)

    seq = ws.cli("up", "--sequential")
    assert seq.exit_code == 0, seq.output
    seq_calls = calls()
    stack = inventory(ws.endpoint)
    assert ws.cli("down", "--yes").exit_code == 0
    aws_calls.clear()
    par = ws.cli("up")
    assert par.exit_code == 0, par.output
    assert calls() == seq_calls  # the same calls, in another order
    assert inventory(ws.endpoint) == stack
    assert lines(par.stdout) == lines(seq.stdout)
    # the account line, 8 task headers, 18 resources, 8 summaries
    assert len(lines(par.stdout)) == 1 + 8 + 18 + 8
