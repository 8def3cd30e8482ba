"""The waits AWS imposes are waited out, said on screen, and bounded (fake clock: no real time)."""

from __future__ import annotations

from pocctl import aws

ASSUME = "The role defined for the function cannot be assumed by Lambda."
SQS_PERM = "The provided execution role does not have permissions to call ReceiveMessage on SQS"


def test_iam_propagation_on_create_function_is_waited_out(ws, faults, clock) -> None:  # type: ignore[no-untyped-def]
    fault = faults.add("CreateFunction", "InvalidParameterValueException", ASSUME, times=3)
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    assert fault.seen == 3
    assert "waiting for the new IAM role to reach Lambda" in r.stdout
    assert ws.client("lambda").get_function(FunctionName="POC-Lambda-1")
    assert sum(clock.slept) >= 3 * aws.RETRY_INTERVAL


def test_iam_propagation_on_the_sqs_trigger_is_waited_out(ws, faults, clock) -> None:  # type: ignore[no-untyped-def]
    faults.add("CreateEventSourceMapping", "InvalidParameterValueException", SQS_PERM, times=2)
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    mappings = ws.client("lambda").list_event_source_mappings(FunctionName="POC-Lambda-1")
    assert len(mappings["EventSourceMappings"]) == 1


def test_iam_propagation_past_the_limit_fails_and_explains(ws, faults, clock) -> None:  # type: ignore[no-untyped-def]
    faults.add("CreateFunction", "InvalidParameterValueException", ASSUME, times=None)
    start = clock.now
    r = ws.cli("up")
    assert r.exit_code == 1
    assert clock.now - start >= aws.IAM_PROPAGATION_TIMEOUT
    assert "Task 4 (lambda1): could not create function POC-Lambda-1" in r.stderr
    assert ASSUME in r.stderr
    assert "IAM had not propagated after 150 s" in r.stderr
    assert "Traceback" not in r.output


def test_queue_deleted_recently_is_waited_out(ws, faults, clock) -> None:  # type: ignore[no-untyped-def]
    faults.add(
        "CreateQueue",
        "AWS.SimpleQueueService.QueueDeletedRecently",
        "You must wait 60 seconds after deleting a queue before you can create another with the "
        "same name.",
        times=2,
    )
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    assert "SQS needs 60 s after deleting a queue" in r.stdout


def test_a_function_still_updating_is_waited_for(stack, faults, clock) -> None:  # type: ignore[no-untyped-def]
    path = stack.handlers / "notify_order.py"
    path.write_text(path.read_text() + "\n# changed\n")
    faults.add(
        "UpdateFunctionCode",
        "ResourceConflictException",
        "The operation cannot be performed at this time. An update is in progress for resource",
        times=2,
    )
    r = stack.cli("lambda2")
    assert r.exit_code == 0, r.output
    assert "waiting for the function to finish its previous update" in r.stdout


def test_delete_rest_api_rate_limit_is_waited_out(stack, faults, clock) -> None:  # type: ignore[no-untyped-def]
    faults.add(
        "DeleteRestApi", "TooManyRequestsException", "Too Many Requests", times=2, status=429
    )
    r = stack.cli("down", "--yes")
    assert r.exit_code == 0, r.output
    assert "DeleteRestApi allows one call per 30 s" in r.stdout
    assert stack.client("apigateway").get_rest_apis()["items"] == []


def test_a_table_still_creating_is_polled_until_active(ws, monkeypatch, clock) -> None:  # type: ignore[no-untyped-def]
    """On AWS CreateTable answers CREATING (moto: ACTIVE at once): pocctl polls DescribeTable
    every 2 s until ACTIVE, and takes an ACTIVE answer as it is, without a DescribeTable."""
    from support.faults import on_every_client

    seen = {"created": False, "creating_answers": 0, "describes_after_create": 0, "describes": 0}

    def after_call(model, parsed, **_):  # type: ignore[no-untyped-def]
        seen["describes"] += model.name == "DescribeTable"
        if model.name == "CreateTable" and "TableDescription" in parsed:
            seen["created"] = True
            parsed["TableDescription"]["TableStatus"] = "CREATING"
        elif model.name == "DescribeTable" and seen["created"] and "Table" in parsed:
            seen["describes_after_create"] += 1
            if seen["creating_answers"] < 2:
                seen["creating_answers"] += 1
                parsed["Table"]["TableStatus"] = "CREATING"

    on_every_client(monkeypatch, "after-call", lambda c: after_call)
    r = ws.cli("table")
    assert r.exit_code == 0, r.output
    assert seen["describes_after_create"] == 3  # CREATING, CREATING, ACTIVE
    assert clock.slept == [2, 2, 2]
    assert ws.client("dynamodb").describe_table(TableName="orders")["Table"]["TableStatus"] == (
        "ACTIVE"
    )

    # The stream: UpdateTable answers ACTIVE here, so its find is the only DescribeTable.
    seen.update(created=False, describes=0)
    r = ws.cli("streams")
    assert r.exit_code == 0, r.output
    assert seen["describes"] == 1 and clock.slept == [2, 2, 2]


def test_a_table_that_never_becomes_active_fails_after_five_minutes(ws, monkeypatch, clock) -> None:  # type: ignore[no-untyped-def]
    from support.faults import on_every_client

    def after_call(model, parsed, **_):  # type: ignore[no-untyped-def]
        for key in ("TableDescription", "Table"):
            if model.name in ("CreateTable", "DescribeTable") and key in parsed:
                parsed[key]["TableStatus"] = "CREATING"

    on_every_client(monkeypatch, "after-call", lambda c: after_call)
    start = clock.now
    r = ws.cli("table")
    assert r.exit_code == 1
    assert clock.now - start >= 300
    assert "table orders is still CREATING after 300 s" in r.stderr
    assert "Traceback" not in r.output


def test_a_function_still_pending_is_waited_for_and_an_active_one_is_not(  # type: ignore[no-untyped-def]
    ws, monkeypatch, clock
) -> None:
    """AWS answers CreateFunction with State Pending (moto: Active): only then does pocctl wait
    (GetFunction until Active). No GetRole either while the role is there."""
    from support.faults import on_every_client

    calls: list[str] = []

    def after_call(model, parsed, **_):  # type: ignore[no-untyped-def]
        calls.append(model.name)
        if model.name == "CreateFunction" and parsed.get("FunctionName") == "POC-Lambda-2":
            parsed["State"] = "Pending"

    for task in ("iam", "table", "queue", "streams", "topic"):
        assert ws.cli(task).exit_code == 0
    on_every_client(monkeypatch, "after-call", lambda c: after_call)
    for task in ("lambda1", "lambda2"):
        r = ws.cli(task)
        assert r.exit_code == 0, r.output
    assert calls.count("CreateFunction") == 2 and "GetRole" not in calls
    # GetFunction: one look-up per function before its create, plus Lambda 2's wait.
    assert calls.count("GetFunction") == 3
