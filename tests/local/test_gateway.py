"""The REST API data plane: POST /restapis/{id}/{stage}/_user_request_/ as API Gateway does it."""

from __future__ import annotations

import json

import pytest
from support.localkit import build_stack, post

from pocctl.local import vtl
from pocctl.local.runtime import LocalAWS


@pytest.fixture
def stack(local_aws: LocalAWS):  # type: ignore[no-untyped-def]
    # No mappings: what the API puts on the queue stays there for the test to read.
    return build_stack(local_aws.endpoint_url, mappings=False)


def test_post_enqueues_the_body_and_answers_with_the_message_id(local_aws, stack) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps({"item": "book & pen", "qty": 2, "note": "a=b+c%"})
    status, out = post(local_aws.invoke_url(stack.api_id, "prod"), body)
    assert status == 200, out
    msgs = stack.client("sqs").receive_message(QueueUrl=stack.queue_url)["Messages"]
    assert len(msgs) == 1
    assert out == {"messageId": msgs[0]["MessageId"]}
    assert msgs[0]["Body"] == body  # urlEncode'd by the template, decoded by SQS: intact


@pytest.mark.parametrize(
    "body", ["[1, 2]", '"a string"', "42", "null", "{}", "not json", ""], ids=repr
)
def test_bodies_that_are_not_a_json_object_get_400(local_aws, stack, body) -> None:  # type: ignore[no-untyped-def]
    status, out = post(local_aws.invoke_url(stack.api_id, "prod"), body)
    assert (status, out) == (400, {"message": "Invalid request body"})
    assert stack.count(stack.queue_url) == 0


def test_wrong_content_type_gets_415(local_aws, stack) -> None:  # type: ignore[no-untyped-def]
    status, out = post(local_aws.invoke_url(stack.api_id, "prod"), '{"a": 1}', "text/plain")
    assert (status, out) == (415, {"message": "Unsupported Media Type"})
    assert stack.count(stack.queue_url) == 0


def test_no_content_type_is_taken_as_json(local_aws, stack) -> None:  # type: ignore[no-untyped-def]
    status, _ = post(local_aws.invoke_url(stack.api_id, "prod"), '{"a": 1}', None)
    assert status == 200
    assert stack.count(stack.queue_url) == 1


def test_routing_misses_answer_like_api_gateway(local_aws, stack) -> None:  # type: ignore[no-untyped-def]
    missing = {"message": "Missing Authentication Token"}
    base = local_aws.endpoint_url
    assert post(f"{base}/restapis/{stack.api_id}/prod/_user_request_/nope", "{}") == (403, missing)
    assert post(f"{base}/restapis/{stack.api_id}/prod/_user_request_/", "", method="GET") == (
        403,
        missing,
    )
    assert post(f"{base}/restapis/{stack.api_id}/dev/_user_request_/", '{"a": 1}') == (
        403,
        missing,
    )
    status, out = post(f"{base}/restapis/doesnotexist/prod/_user_request_/", '{"a": 1}')
    assert status == 404 and "doesnotexist" in out["message"]  # type: ignore[index]
    assert stack.count(stack.queue_url) == 0


def test_sqs_error_comes_back_through_the_4xx_integration_response(local_aws, stack) -> None:  # type: ignore[no-untyped-def]
    stack.client("sqs").set_queue_attributes(
        QueueUrl=stack.queue_url, Attributes={"MaximumMessageSize": "1024"}
    )
    status, out = post(local_aws.invoke_url(stack.api_id, "prod"), json.dumps({"x": "y" * 2000}))
    assert status == 400
    # No template on the 400 response: SQS's error passes through, as API Gateway shows it.
    assert out["Error"]["Code"] in ("InvalidParameterValue", "InvalidParameterValueException")  # type: ignore[index]
    assert stack.count(stack.queue_url) == 0


def test_changes_apply_at_the_next_deployment(local_aws, stack) -> None:  # type: ignore[no-untyped-def]
    ag = stack.client("apigateway")
    url = local_aws.invoke_url(stack.api_id, "prod")
    assert post(url, '{"a": 1}')[0] == 200
    stack.respond_with('{"ok": true, "id": "$context.requestId"}')
    assert "messageId" in post(url, '{"a": 1}')[1]  # type: ignore[operator]
    ag.create_deployment(restApiId=stack.api_id, stageName="prod")
    status, out = post(url, '{"a": 1}')
    assert status == 200 and out["ok"] is True and len(out["id"]) == 36  # type: ignore[index]


def _limit(stack, rate: str, burst: str) -> None:  # type: ignore[no-untyped-def]
    stack.client("apigateway").update_stage(
        restApiId=stack.api_id,
        stageName="prod",
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": rate},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": burst},
        ],
    )


def test_the_stage_throttle_answers_429_past_its_burst(local_aws, stack) -> None:  # type: ignore[no-untyped-def]
    """As on AWS: the stage's burst is served, then 429 Too Many Requests (nothing enqueued)
    until the bucket refills; new stage limits apply without a deployment."""
    url = local_aws.invoke_url(stack.api_id, "prod")
    _limit(stack, "0.01", "3")  # one token every 100 s: no refill during the test
    answers = [post(url, '{"a": 1}') for _ in range(5)]
    assert [status for status, _ in answers] == [200, 200, 200, 429, 429]
    assert answers[3][1] == {"message": "Too Many Requests"}
    assert stack.count(stack.queue_url) == 3
    _limit(stack, "0.01", "5")  # a bigger burst does not refill the bucket by itself
    assert post(url, '{"a": 1}')[0] == 429
    _limit(stack, "10000", "5000")
    assert post(url, '{"a": 1}')[0] == 200  # refilled at the new rate


def test_requests_arriving_together_share_the_stage_s_bucket(local_aws, stack) -> None:  # type: ignore[no-untyped-def]
    """Ten POSTs at once on a stage nobody has called yet (each re-reads the stage): still one
    bucket, so exactly its burst of 3 goes through."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    url = local_aws.invoke_url(stack.api_id, "prod")
    _limit(stack, "0.01", "3")
    together = threading.Barrier(10, timeout=10)

    def send(_: int) -> int:
        together.wait()
        return post(url, '{"a": 1}')[0]

    with ThreadPoolExecutor(10) as pool:
        statuses = sorted(pool.map(send, range(10)))
    assert statuses == [200] * 3 + [429] * 7
    assert stack.count(stack.queue_url) == 3


def test_token_bucket_refills_at_its_rate() -> None:
    from pocctl.local.gateway import TokenBucket

    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token
    assert [bucket.take(), bucket.take()] == [True, False]
    now[0] += 100  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    bucket.set_limits(2.0, 1)
    now[0] += 100
    assert [bucket.take(), bucket.take()] == [True, False]


def test_a_stage_without_limits_gets_the_account_s() -> None:
    from pocctl.local.gateway import ACCOUNT_BURST_LIMIT, ACCOUNT_RATE_LIMIT, stage_limits

    assert stage_limits({}) == (ACCOUNT_RATE_LIMIT, ACCOUNT_BURST_LIMIT) == (10000.0, 5000)
    settings = {"*/*": {"throttlingRateLimit": 50.0, "throttlingBurstLimit": 100}}
    assert stage_limits({"methodSettings": settings}) == (50.0, 100)


# -- the template language ------------------------------------------------------------------


def _render(template: str, body: str = "", **context: object) -> str:
    variables = {
        "input": vtl.Input(body, {"path": {}, "querystring": {"q": "1"}, "header": {}}),
        "util": vtl.Util(),
        "context": {"requestId": "rid-1", **context},
        "stageVariables": {"env": "prod"},
    }
    return vtl.render(template, variables)


def test_vtl_references() -> None:
    body = '{"a": {"b": [10, 20]}, "s": "x\\"y", "amp": "a&b c"}'
    assert _render(
        "Action=SendMessage&MessageBody=$util.urlEncode($input.body)", '{"k": "a&b"}'
    ) == ("Action=SendMessage&MessageBody=%7B%22k%22%3A+%22a%26b%22%7D")
    # $input.json is compact JSON, as AWS's JSONPath library (json-smart) writes it.
    assert _render("$input.json('$')", body) == json.dumps(json.loads(body), separators=(",", ":"))
    assert _render("$input.json('$.a.b')", body) == "[10,20]"
    assert _render("$input.path('$.a.b[1]')", body) == "20"
    assert _render("$input.path('$.s')", body) == 'x"y'
    assert _render("$util.escapeJavaScript($input.path('$.s'))", body) == 'x\\"y'
    assert _render("${context.requestId}/$context.requestId/$!context.nothing.", body) == (
        "rid-1/rid-1/."
    )
    # API Gateway renders a missing reference as nothing, not as its source text (the old
    # engine's "$context.nothing" was Velocity's default, not API Gateway's).
    assert _render("$context.nothing", body) == ""
    assert _render("$input.params('q') $stageVariables.env costs $5", body) == "1 prod costs $5"
    assert _render("## a comment\nx", body) == "x"  # Velocity's line comment takes its newline
    assert vtl.url_encode("a b~*") == "a+b%7E*"
    # Directives render now; a template that does not parse is still an error (→ 500).
    assert _render("#set($x = 1)$x") == "1"
    with pytest.raises(vtl.TemplateError):
        _render("#set($x = 1")
