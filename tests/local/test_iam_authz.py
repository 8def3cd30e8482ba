"""IAM enforced on the embedded AWS (pocctl.local.iam_authz): functions call AWS as their
execution role and the API's integration as its credentials role, over HTTP to a running
embedded AWS, and are refused as an account refuses them."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from support.localkit import LAMBDA_TRUST, permissions, wait_for, zipped
from support.workspace import Workspace, make_workspace

from pocctl.local import iam_authz
from pocctl.local.runtime import LocalAWS
from pocctl.local.server import local_client

ACCOUNT = "123456789012"
TABLE_ARN = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders"

# Lambda 1's handler trying what its role does not allow (the issue's example), each call's
# outcome reported: "ok" or the error code and message AWS's SDK raises.
PROBE = """
import boto3

def handler(event, context):
    ddb = boto3.client("dynamodb")
    calls = {
        "PutItem": lambda: ddb.put_item(TableName="orders", Item={"orderID": {"S": "probe"}}),
        "DescribeTable": lambda: ddb.describe_table(TableName="orders"),
        "Scan": lambda: ddb.scan(TableName="orders"),
        "ListTables": lambda: ddb.list_tables(),
        "Caller": lambda: boto3.client("sts").get_caller_identity()["Arn"],
    }
    out = {}
    for name, call in calls.items():
        try:
            got = call()
            out[name] = got if isinstance(got, str) else "ok"
        except Exception as exc:
            err = getattr(exc, "response", {}).get("Error", {})
            out[name] = [err.get("Code"), err.get("Message")]
    return out
"""


@pytest.fixture
def ws(local_aws: LocalAWS, tmp_path: Path) -> Workspace:
    """pocctl's own stack (`pocctl up`: the shipped policies, roles and queue policy)."""
    w = make_workspace(tmp_path, local_aws.endpoint_url)
    r = w.cli("up")
    assert r.exit_code == 0, r.output
    return w


def _iam(aws: LocalAWS) -> Any:
    return local_client(aws.endpoint_url, "iam")


def _invoke(aws: LocalAWS, name: str, event: Any = None) -> Any:
    lam = local_client(aws.endpoint_url, "lambda", read_timeout=60)
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode())
    return json.loads(resp["Payload"].read())


def _deploy(aws: LocalAWS, name: str, role_arn: str, source: str) -> None:
    local_client(aws.endpoint_url, "lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role_arn,
        Handler="app.handler",
        Code={"ZipFile": zipped({"app.py": source})},
        Timeout=30,
    )


def _set_policy(aws: LocalAWS, arn: str, document: dict[str, Any]) -> None:
    _iam(aws).create_policy_version(
        PolicyArn=arn, PolicyDocument=json.dumps(document), SetAsDefault=True
    )


def test_the_shipped_policies_pass_a_test_order(ws: Workspace, local_aws: LocalAWS) -> None:
    before = dict(local_aws.server.authz.stats)
    r = ws.cli("test-order", "--count", "3")
    assert r.exit_code == 0, r.output
    assert "3 of 3 orders stored once and notified once" in r.stdout
    stats = local_aws.server.authz.stats
    # The integration's SendMessage, Lambda 1's PutItem, Lambda 2's Publish: each authorized.
    assert stats["checked"] - before["checked"] >= 9
    assert stats["denied"] == before["denied"]


def test_without_putitem_test_order_fails_with_access_denied_in_the_function_logs(
    ws: Workspace, local_aws: LocalAWS, log_lines: Any
) -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:policy/Lambda-Write-DynamoDB"
    _set_policy(
        local_aws,
        arn,
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "dynamodb:DescribeTable", "Resource": TABLE_ARN}
            ],
        },
    )
    r = ws.cli("test-order", "--timeout", "5")
    assert r.exit_code != 0, r.output
    expected = (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/Lambda-SQS-DynamoDB/POC-Lambda-1 is not "
        f"authorized to perform: dynamodb:PutItem on resource: {TABLE_ARN} because no "
        "identity-based policy allows the dynamodb:PutItem action"
    )
    # The local process's output, and the function's CloudWatch log group, as in an account.
    assert wait_for(lambda: [x for x in log_lines.having("AccessDeniedException") if expected in x])
    logs = local_client(local_aws.endpoint_url, "logs")

    def logged() -> list[str]:
        local_aws.flush_logs()
        found = logs.filter_log_events(logGroupName="/aws/lambda/POC-Lambda-1")["events"]
        return [e["message"] for e in found if "AccessDeniedException" in e["message"]]

    assert expected in wait_for(logged)[0]


def test_without_sendmessage_the_api_answers_the_integrations_refusal(
    ws: Workspace, local_aws: LocalAWS
) -> None:
    """SQS refuses the integration's SendMessage (403 AccessDenied); API Gateway maps the
    integration's status by selectionPattern: pocctl's "4\\d{2}" response answers 400 with
    SQS's error (gateway.py, _integration_response)."""
    role = "APIGateway-SQS"
    iam = _iam(local_aws)
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    for name in names:
        iam.delete_role_policy(RoleName=role, PolicyName=name)
    url = json.loads(ws.state.read_text())["resources"]["api"]["url"]
    from support.localkit import post

    # The queue policy (lab Task 3) still lets the role send: in one account either allows.
    status, text = post(url, b'{"item": "soap"}')
    assert status == 200, text
    sqs = local_client(local_aws.endpoint_url, "sqs")
    queue = sqs.get_queue_url(QueueName="POC-Queue")["QueueUrl"]
    doc = json.loads(
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])["Attributes"]["Policy"]
    )
    doc["Statement"] = [st for st in doc["Statement"] if st["Sid"] != "ApiGatewaySendsOrders"]
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(doc)})
    status, text = post(url, b'{"item": "soap"}')
    assert status == 400, text
    assert "AccessDenied" in str(text) and "sqs:sendmessage" in str(text), text
    assert ws.cli("test-order", "--timeout", "3").exit_code != 0


def test_lambda_1s_role_cannot_scan_or_list_tables(ws: Workspace, local_aws: LocalAWS) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/Lambda-SQS-DynamoDB"
    _deploy(local_aws, "probe", role, PROBE)
    out = _invoke(local_aws, "probe")
    assert out["PutItem"] == "ok" and out["DescribeTable"] == "ok"
    assert out["Caller"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/Lambda-SQS-DynamoDB/probe"
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/Lambda-SQS-DynamoDB/probe"
    assert out["Scan"] == [
        "AccessDeniedException",
        f"User: {session} is not authorized to perform: dynamodb:Scan on resource: {TABLE_ARN} "
        "because no identity-based policy allows the dynamodb:Scan action",
    ]
    assert out["ListTables"][0] == "AccessDeniedException"
    assert (
        f"dynamodb:ListTables on resource: arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/*"
        in (out["ListTables"][1])
    )
    # The admin (pocctl's own calls) stays unrestricted.
    assert local_client(local_aws.endpoint_url, "dynamodb").scan(TableName="orders")["Count"] >= 1


def test_the_api_answers_500_when_api_gateway_cannot_assume_its_role(
    ws: Workspace, local_aws: LocalAWS, log_lines: Any
) -> None:
    from support.localkit import post

    _iam(local_aws).update_assume_role_policy(
        RoleName="APIGateway-SQS", PolicyDocument=LAMBDA_TRUST
    )
    url = json.loads(ws.state.read_text())["resources"]["api"]["url"]
    status, body = post(url, b'{"item": "soap"}')
    assert status == 500 and "Internal server error" in str(body), body
    assert log_lines.having("API Gateway does not have permission to assume the provided role")


def test_a_function_invokes_another_only_with_lambda_invokefunction(local_aws: LocalAWS) -> None:
    caller_src = (
        "import boto3\n"
        "def handler(e, c):\n"
        "    try:\n"
        "        boto3.client('lambda').invoke(FunctionName=e['target'])\n"
        "        return 'ok'\n"
        "    except Exception as exc:\n"
        "        return exc.response['Error']['Code']\n"
    )
    target = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:target"
    arn = _role(local_aws, "caller")
    _deploy(local_aws, "target", arn, "def handler(e, c):\n    return 1\n")
    _deploy(local_aws, "caller", arn, caller_src)
    assert _invoke(local_aws, "caller", {"target": "target"}) == "AccessDeniedException"
    _iam(local_aws).put_role_policy(
        RoleName="caller",
        PolicyName="p",
        PolicyDocument=permissions(["lambda:InvokeFunction"], target),
    )
    assert _invoke(local_aws, "caller", {"target": "target"}) == "ok"
    assert _invoke(local_aws, "caller", {"target": target}) == "ok"  # by ARN, the same resource


def _role(aws: LocalAWS, name: str, *statements: dict[str, Any]) -> str:
    iam = _iam(aws)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    if statements:
        doc = {"Version": "2012-10-17", "Statement": list(statements)}
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(doc))
    return arn


def _session(aws: LocalAWS, role_arn: str, service: str) -> Any:
    """A client signed with a session of ``role_arn`` (as a function's code would be)."""
    c = local_client(aws.endpoint_url, "sts").assume_role(
        RoleArn=role_arn, RoleSessionName="tester"
    )
    creds = c["Credentials"]
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=aws.endpoint_url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_explicit_deny_beats_a_wildcard_allow(local_aws: LocalAWS) -> None:
    local_client(local_aws.endpoint_url, "dynamodb").create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "orderID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "orderID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    arn = _role(
        local_aws,
        "r",
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "arn:aws:dynamodb:*:*:table/*"},
        {"Effect": "Deny", "Action": "dynamodb:Scan", "Resource": "*"},
    )
    ddb = _session(local_aws, arn, "dynamodb")
    ddb.put_item(TableName="orders", Item={"orderID": {"S": "1"}})
    assert ddb.get_item(TableName="orders", Key={"orderID": {"S": "1"}})["Item"]
    with pytest.raises(ClientError) as exc:
        ddb.scan(TableName="orders")
    assert _code(exc) == ("AccessDeniedException", 400)
    assert "with an explicit deny in an identity-based policy" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        ddb.list_tables()  # table/* does not cover an action without a resource type
    assert _code(exc) == ("AccessDeniedException", 400)


def test_the_queue_policy_allows_and_denies(local_aws: LocalAWS) -> None:
    sqs_admin = local_client(local_aws.endpoint_url, "sqs")
    url = sqs_admin.create_queue(QueueName="q")["QueueUrl"]
    queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"
    arn = _role(local_aws, "sender")  # no identity policy at all
    sqs = _session(local_aws, arn, "sqs")
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="x")
    assert _code(exc) == ("AccessDenied", 403)
    assert "sqs:sendmessage" in str(exc.value)

    def queue_policy(effect: str) -> None:
        statement = {"Effect": effect, "Principal": {"AWS": arn}, "Action": "sqs:SendMessage"}
        doc = {"Version": "2012-10-17", "Statement": [dict(statement, Resource=queue_arn)]}
        sqs_admin.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(doc)})

    queue_policy("Allow")  # the queue policy alone suffices in the same account
    sqs.send_message(QueueUrl=url, MessageBody="x")
    _iam(local_aws).put_role_policy(
        RoleName="sender", PolicyName="p", PolicyDocument=permissions(["sqs:*"], queue_arn)
    )
    queue_policy("Deny")  # and its deny beats the role's allow
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="x")
    assert _code(exc) == ("AccessDenied", 403)
    assert "explicit deny in a resource-based policy" in str(exc.value)


def test_policy_changes_take_effect_at_once(local_aws: LocalAWS) -> None:
    url = local_client(local_aws.endpoint_url, "sqs").create_queue(QueueName="q")["QueueUrl"]
    arn = _role(local_aws, "r")
    sqs = _session(local_aws, arn, "sqs")
    with pytest.raises(ClientError):
        sqs.get_queue_attributes(QueueUrl=url)
    _iam(local_aws).put_role_policy(
        RoleName="r", PolicyName="p", PolicyDocument=permissions(["sqs:GetQueue*"])
    )
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    _iam(local_aws).delete_role_policy(RoleName="r", PolicyName="p")
    with pytest.raises(ClientError):
        sqs.get_queue_attributes(QueueUrl=url)


def test_unknown_and_expired_credentials_are_refused(local_aws: LocalAWS) -> None:
    kw = {"region_name": "us-east-1", "endpoint_url": local_aws.endpoint_url}
    stranger = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "x"}
    with pytest.raises(ClientError) as exc:
        boto3.client("dynamodb", **kw, **stranger).list_tables()
    assert _code(exc) == ("UnrecognizedClientException", 400)
    with pytest.raises(ClientError) as exc:
        boto3.client("sqs", **kw, **stranger).list_queues()
    assert _code(exc) == ("InvalidClientTokenId", 403)
    with pytest.raises(ClientError) as exc:
        boto3.client("sns", **kw, **stranger).list_topics()
    assert _code(exc) == ("InvalidClientTokenId", 403)
    # A real session key with a token that is not its own.
    arn = _role(local_aws, "r", {"Effect": "Allow", "Action": "sns:*", "Resource": "*"})
    c = local_client(local_aws.endpoint_url, "sts").assume_role(
        RoleArn=arn, RoleSessionName="tester"
    )
    forged = dict(
        aws_access_key_id=c["Credentials"]["AccessKeyId"],
        aws_secret_access_key=c["Credentials"]["SecretAccessKey"],
        aws_session_token="not-the-token",
    )
    with pytest.raises(ClientError) as exc:
        boto3.client("sns", **kw, **forged).list_topics()
    assert _code(exc) == ("InvalidClientTokenId", 403)
    sns = _session(local_aws, arn, "sns")
    assert sns.list_topics()["Topics"] == []
    authz = local_aws.server.authz
    authz._clock = lambda: time.time() + 3601  # an hour later: the session has expired
    try:
        with pytest.raises(ClientError) as exc:
            sns.list_topics()
        assert _code(exc) == ("ExpiredToken", 403)
    finally:
        authz._clock = time.time


def test_an_operation_it_cannot_map_is_refused_for_roles_only(local_aws: LocalAWS) -> None:
    arn = _role(local_aws, "r", {"Effect": "Allow", "Action": "*", "Resource": "*"})
    iam = _session(local_aws, arn, "iam")
    with pytest.raises(ClientError) as exc:
        iam.list_roles()
    assert _code(exc) == ("AccessDenied", 403)
    assert "cannot authorize" in str(exc.value)
    assert _iam(local_aws).list_roles()["Roles"]  # the admin: unrestricted
    # GetCallerIdentity needs no permission, even under an explicit deny.
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*"}
    denied = _role(local_aws, "denied", deny)
    who = _session(local_aws, denied, "sts").get_caller_identity()["Arn"]
    assert who == f"arn:aws:sts::{ACCOUNT}:assumed-role/denied/tester"


def test_a_role_lambda_cannot_assume_fails_the_invocation(local_aws: LocalAWS) -> None:
    iam = _iam(local_aws)
    trust = {"Version": "2012-10-17", "Statement": []}
    arn = iam.create_role(RoleName="nobody", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    _deploy(local_aws, "f", arn["Arn"], "def handler(e, c):\n    return 1\n")
    out = _invoke(local_aws, "f")
    assert out["errorType"] == "Runtime.Unavailable"
    assert iam_authz.CANNOT_ASSUME in out["errorMessage"]


class _Sts:
    def __init__(self) -> None:
        self.calls = 0

    def assume_role(self, **kw: Any) -> dict[str, Any]:
        from datetime import datetime, timezone

        self.calls += 1
        expires = datetime.fromtimestamp(NOW[0] + kw["DurationSeconds"], tz=timezone.utc)
        key = f"ASIA{self.calls}"
        return {
            "Credentials": {
                "AccessKeyId": key,
                "SecretAccessKey": "s",
                "SessionToken": "t",
                "Expiration": expires,
            }
        }


class _Iam:
    def get_role(self, RoleName: str) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        return {"Role": {"AssumeRolePolicyDocument": json.loads(LAMBDA_TRUST)}}


NOW = [1_000_000.0]


class _Spec:
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    name = "f"


def test_credentials_are_renewed_before_a_worker_could_outlive_them() -> None:
    """A session lasts an hour; it is handed to new workers only while it outlives a worker's
    whole life (WORKER_MAX_AGE) plus the longest invocation (900 s)."""
    sts = _Sts()
    creds = iam_authz.ExecutionRoleCredentials(sts, _Iam(), clock=lambda: NOW[0])
    first = creds(_Spec())
    assert first["AWS_ACCESS_KEY_ID"] == "ASIA1" and sts.calls == 1
    assert creds(_Spec()) == first  # reused while fresh
    margin = iam_authz.WORKER_MAX_AGE + iam_authz.MAX_FUNCTION_TIMEOUT
    NOW[0] += iam_authz.SESSION_SECONDS - margin - 61  # still enough left
    assert creds(_Spec()) == first
    NOW[0] += 2
    assert creds(_Spec())["AWS_ACCESS_KEY_ID"] == "ASIA2"  # renewed
    assert margin < iam_authz.SESSION_SECONDS


def test_a_session_issued_across_a_reset_is_not_kept_for_later_workers() -> None:
    """forget() (a reset erased STS's sessions) while AssumeRole is in flight: the session that
    call returns is handed out once but not cached, so the next worker gets a new one (a cached
    one made Lambda 2's Publish fail InvalidClientTokenId in a later test)."""
    sts = _Sts()
    creds = iam_authz.ExecutionRoleCredentials(sts, _Iam(), clock=lambda: NOW[0])
    assume = sts.assume_role

    def assume_then_reset(**kwargs: Any) -> dict[str, Any]:
        answer = assume(**kwargs)
        creds.forget()  # the reset lands while the answer is on its way
        return answer

    sts.assume_role = assume_then_reset  # type: ignore[method-assign]
    assert creds(_Spec())["AWS_ACCESS_KEY_ID"] == "ASIA1"
    sts.assume_role = assume  # type: ignore[method-assign]
    assert creds(_Spec())["AWS_ACCESS_KEY_ID"] == "ASIA2" and sts.calls == 2


def test_a_warm_worker_is_retired_and_the_next_one_gets_fresh_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pocctl.local import executor as executor_module
    from pocctl.local.executor import Executor, FunctionSpec

    # The executor's clock, moved forward by the test: a cold start's length (seconds on a
    # loaded machine) must not decide whether the second invocation finds the worker retired.
    ahead = [0.0]

    class _Clock:
        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        def monotonic(self) -> float:
            return time.monotonic() + ahead[0]

    monkeypatch.setattr(executor_module, "time", _Clock())

    code = zipped(
        {"app.py": "import os\ndef handler(e, c):\n    return os.environ['AWS_ACCESS_KEY_ID']\n"}
    )
    issued: list[str] = []

    def credentials(spec: FunctionSpec) -> dict[str, str]:
        issued.append(f"ASIA{len(issued)}")
        return {
            "AWS_ACCESS_KEY_ID": issued[-1],
            "AWS_SECRET_ACCESS_KEY": "s",
            "AWS_SESSION_TOKEN": "t",
        }

    spec = FunctionSpec(
        name="f",
        arn="arn:aws:lambda:us-east-1:1:function:f",
        handler="app.handler",
        runtime="python3.12",
        timeout=10,
        memory=128,
        env={},
        code_sha256=base64.b64encode(code[:8]).decode(),
        code=code,
        region="us-east-1",
        account_id=ACCOUNT,
        role=_Spec.role,
    )
    ex = Executor(
        "http://127.0.0.1:9",
        credentials=credentials,
        workers_per_function=1,
        work_dir=str(tmp_path),
        worker_max_age=60,
    )
    try:
        assert ex.invoke(spec, {}).result() == "ASIA0"
        assert ex.invoke(spec, {}).result() == "ASIA0"  # warm: same environment
        ahead[0] = 61.0  # past the worker's age
        assert ex.invoke(spec, {}).result() == "ASIA1"
    finally:
        ex.stop()


@pytest.mark.parametrize("pin", sorted(iam_authz.MOTO_READS))
def test_the_moto_internals_it_reads_are_unchanged(pin: str) -> None:
    from pocctl.local import moto_hooks

    owner, attr = moto_hooks.resolve(pin)
    now = moto_hooks.source_hash(owner.__dict__.get(attr) or getattr(owner, attr))
    assert now == iam_authz.MOTO_READS[pin], f"{pin} changed: re-read it, then iam_authz"


def _request(
    service: str, name: str, params: dict[str, Any], protocol: str = "json", path: str = "/"
) -> Any:
    from pocctl.local.operation import Operation
    from pocctl.local.server import Request

    if protocol == "json":
        body = json.dumps(params).encode()
        environ = {"PATH_INFO": path, "CONTENT_TYPE": "application/x-amz-json-1.0"}
    else:
        from urllib.parse import urlencode

        body = urlencode({"Action": name, **params}).encode()
        environ = {"PATH_INFO": path, "CONTENT_TYPE": "application/x-www-form-urlencoded"}
    return Request(environ, body, Operation(service, name, protocol, "POST"))


def _target(req: Any) -> tuple[str, tuple[str, ...]]:
    t = iam_authz.resource_of(req, "us-east-1", ACCOUNT)
    return t.action, t.resources


QUEUE_URL = f"http://127.0.0.1:1/{ACCOUNT}/POC-Queue"
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:POC-Queue"
STREAM = f"{TABLE_ARN}/stream/2026-01-01T00:00:00.000"


@pytest.mark.parametrize(
    ("req", "expected"),
    [
        (
            _request("dynamodb", "Query", {"TableName": "orders", "IndexName": "by-day"}),
            ("dynamodb:Query", (f"{TABLE_ARN}/index/by-day",)),
        ),
        (_request("dynamodb", "ListTables", {}), ("dynamodb:ListTables", ("*",))),
        (
            _request("dynamodb", "BatchWriteItem", {"RequestItems": {"orders": [], "b": []}}),
            ("dynamodb:BatchWriteItem", (TABLE_ARN, TABLE_ARN.replace("orders", "b"))),
        ),
        (
            _request("dynamodb", "GetRecords", {"ShardIterator": f"{STREAM}|1|abc"}),
            ("dynamodb:GetRecords", (STREAM,)),
        ),
        # The batch APIs are authorized as their one-message action (SAR: no *Batch action).
        (
            _request("sqs", "SendMessageBatch", {"QueueUrl": QUEUE_URL}),
            ("sqs:SendMessage", (QUEUE_ARN,)),
        ),
        # API Gateway's integration names the queue in the path, not in QueueUrl.
        (
            _request("sqs", "SendMessage", {}, "query", f"/{ACCOUNT}/POC-Queue"),
            ("sqs:SendMessage", (QUEUE_ARN,)),
        ),
        (
            _request("sqs", "GetQueueUrl", {"QueueName": "POC-Queue"}),
            ("sqs:GetQueueUrl", (QUEUE_ARN,)),
        ),
        (
            _request("sns", "Publish", {"TopicArn": "arn:aws:sns:us-east-1:1:t"}, "query"),
            ("sns:Publish", ("arn:aws:sns:us-east-1:1:t",)),
        ),
        (
            _request("logs", "PutLogEvents", {"logGroupName": "/g", "logStreamName": "s"}),
            ("logs:PutLogEvents", (f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/g:log-stream:s",)),
        ),
        # Both readings of a log group's ARN must allow it (see _logs).
        (
            _request("logs", "CreateLogGroup", {"logGroupName": "/g"}),
            (
                "logs:CreateLogGroup",
                (
                    f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/g",
                    f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/g:*",
                ),
            ),
        ),
    ],
    ids=lambda v: getattr(getattr(v, "op", None), "name", ""),
)
def test_the_resource_each_operation_acts_on(req: Any, expected: tuple[str, Any]) -> None:
    assert _target(req) == expected


def test_an_invoke_names_the_function_and_its_qualifier() -> None:
    from pocctl.local.operation import Operation
    from pocctl.local.server import Request

    op = Operation("lambda", "Invoke", "rest", "POST")
    path = "/2015-03-31/functions/{}/invocations"
    fn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f"
    for name in ("f", fn, f"{ACCOUNT}:function:f"):
        req = Request({"PATH_INFO": path.format(name), "QUERY_STRING": ""}, b"", op)
        assert _target(req) == ("lambda:InvokeFunction", (fn,))
    req = Request({"PATH_INFO": path.format("f"), "QUERY_STRING": "Qualifier=live"}, b"", op)
    assert _target(req) == ("lambda:InvokeFunction", (f"{fn}:live",))


def test_an_operation_without_a_mapping_is_unmapped() -> None:
    with pytest.raises(iam_authz.Unmapped):
        iam_authz.resource_of(_request("dynamodb", "TransactWriteItems", {}), "us-east-1", ACCOUNT)
    with pytest.raises(iam_authz.Unmapped):
        iam_authz.resource_of(_request("sns", "Publish", {"PhoneNumber": "+1"}, "query"), "r", "a")
