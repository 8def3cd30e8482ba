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
