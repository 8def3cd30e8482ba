"""Parity of the embedded API Gateway's mapping templates with real API Gateway.

tests/local/data/vtl_parity.json holds mapping-template cases whose outputs were recorded on API
Gateway (localstack/airspeed's snapshot of templates rendered on AWS, ToQoz/api-gateway-mapping-
template's generated table, LocalStack's AWS-validated findings) or are given by AWS's developer
guide (the $input/$util/$stageVariables/$context
references and the photos, news, invoice and employee mapping examples). Each case names its
source. A case the embedded engine renders differently is a known difference: listed below with
the reason, as a strict xfail, so that fixing it shows up.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from support.localkit import build_stack

from pocctl.local import vtl
from pocctl.local.runtime import LocalAWS

DATA = json.loads((Path(__file__).parent / "data" / "vtl_parity.json").read_text())
CASES: list[dict[str, Any]] = DATA["cases"]

# Case id → why the embedded engine differs from API Gateway there (also in the README).
KNOWN_DIFFERENCES: dict[str, str] = {
    "docs-input-things": (
        "the developer guide shows $util.escapeJavaScript($input.json('$.things')) as the JSON "
        "itself, but the same page documents escapeJavaScript as escaping quotes (and "
        "LocalStack's AWS-validated rendering escapes them): the engine escapes, so the "
        "documented response is not reproduced"
    ),
}


def _variables(case: dict[str, Any]) -> dict[str, Any]:
    params = case.get("params") or {"path": {}, "querystring": {}, "header": {}}
    return {
        "input": vtl.Input(case["body"], params),
        "util": vtl.Util(),
        "context": json.loads(json.dumps(case.get("context") or {})),
        "stageVariables": dict(case.get("stageVariables") or {}),
    }


def _check(case: dict[str, Any]) -> None:
    expect = case["expect"]
    variables = _variables(case)
    if "status" in expect:
        assert expect["status"] == 400
        with pytest.raises(vtl.PayloadError) as refused:
            vtl.render(case["template"], variables)
        assert refused.value.message.startswith(expect["message_prefix"])
        return
    out = vtl.render(case["template"], variables)
    if "output" in expect:
        assert out == expect["output"]
    if "output_normalized" in expect:  # the source compared with runs of whitespace as one space
        assert " ".join(out.split()) == expect["output_normalized"]
    if "json" in expect:
        assert json.loads(out) == expect["json"], out
    if "lambda_event" in expect:
        # A Lambda behind an AWS integration gets {} for an empty rendering.
        assert (json.loads(out) if out.strip() else {}) == expect["lambda_event"], out
    for key, wanted in (expect.get("context") or {}).items():
        got = variables["context"][key]
        assert {k: got.get(k) for k in wanted} == wanted


def _params() -> list[Any]:
    out = []
    for case in CASES:
        reason = KNOWN_DIFFERENCES.get(case["id"])
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(case, id=case["id"], marks=marks))
    return out


@pytest.mark.parametrize("case", _params())
def test_case_renders_as_api_gateway_did(case: dict[str, Any]) -> None:
    _check(case)


def test_every_case_names_its_source_and_the_suite_passes_at_95_percent() -> None:
    assert all(c.get("source") and c.get("template") is not None for c in CASES)
    assert len({c["id"] for c in CASES}) == len(CASES)
    assert set(KNOWN_DIFFERENCES) <= {c["id"] for c in CASES}
    assert len(CASES) >= 40
    assert (len(CASES) - len(KNOWN_DIFFERENCES)) / len(CASES) >= 0.95


# -- end to end: what the old engine got wrong, through the embedded API Gateway -----------------

# Every failure the issue lists for the old engine: #set/#if/#elseif/#foreach, a directive in the
# middle of a line, null and missing references, Java String/List/Map methods (including AWS's
# escapeJavaScript(...).replaceAll idiom), map printing, index notation.
REQUEST_TEMPLATE = """\
#set($o = $input.path('$'))
#set($names = [])
#foreach($i in $o.items)
#set($ignored = $names.add($i.trim().toUpperCase()))
#end
#if($o.qty > 1)#set($kind = "many")
#elseif($o.qty == 1)#set($kind = "one")
#{else}#set($kind = "none")#end
#set($m = {"env": $stageVariables['env'], "tag": $input.params()['header']['X-Tag']})
#set($js = $util.escapeJavaScript($o.note).replaceAll("\\\\'","'"))
#set($msg = "kind=$kind names=$names n=$names.size() map=$m missing=[$o.nothing][$!o.nothing] \
null=[$o.gone] js=$js has=$o.note.contains('it') low=$o.note.toLowerCase()")
Action=SendMessage&MessageBody=$util.urlEncode($msg)#if($kind == "many")&DelaySeconds=0#end"""

EXPECTED_MESSAGE = (
    "kind=many names=[A, B] n=2 map={env=test, tag=t1} missing=[][] null=[] "
    'js=it\'s \\"ok\\" has=true low=it\'s "ok"'
)


def _send(url: str, body: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1", url
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", parts.path, body=body.encode(), headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read(), dict(resp.getheaders())
    finally:
        conn.close()


def _set_templates(
    stack: Any, request: str, response: str, content_type: str = "application/json"
) -> None:
    """Give the lab's POST / new templates (re-put: moto's UpdateIntegration cannot patch
    requestTemplates) and the stage a variable, then deploy."""
    ag = stack.client("apigateway")
    root = next(r["id"] for r in ag.get_resources(restApiId=stack.api_id)["items"])
    where = {"restApiId": stack.api_id, "resourceId": root, "httpMethod": "POST"}
    integ = ag.get_integration(**where)
    ag.put_integration(
        **where,
        type=integ["type"],
        integrationHttpMethod=integ["httpMethod"],
        uri=integ["uri"],
        credentials=integ["credentials"],
        requestParameters=integ.get("requestParameters") or {},
        requestTemplates={content_type: request},
        passthroughBehavior=integ.get("passthroughBehavior", "NEVER"),
    )
    for code, ir in (integ.get("integrationResponses") or {}).items():
        templates = ir.get("responseTemplates") or {}
        if code == "200":
            templates = {"application/json": response}
        ag.put_integration_response(
            **where,
            statusCode=code,
            selectionPattern=ir.get("selectionPattern") or "",
            responseTemplates=templates,
        )
    ag.create_deployment(restApiId=stack.api_id, stageName="prod")
    # After the deployment: moto's CreateDeployment to an existing stage resets its variables.
    ag.update_stage(
        restApiId=stack.api_id,
        stageName="prod",
        patchOperations=[{"op": "replace", "path": "/variables/env", "value": "test"}],
    )


RESPONSE_TEMPLATE = """\
#set($r = $input.path('$.SendMessageResponse.SendMessageResult'))
#set($keys = [])
#foreach($k in $r.keySet())#if($k.startsWith("MD5"))#set($ignored = $keys.add($k))#end#end
{"id": "$r.MessageId", "md5Keys": "$keys", "account": "$context.accountId", \
"deployment": "$context.deploymentId", "apiId": "$context.apiId"}
#set($context.responseOverride.status = 201)
#set($context.responseOverride.header.X-Kind = "override")"""


def test_the_old_engine_s_failures_render_as_aws_through_the_invoke_url(
    local_aws: LocalAWS,
) -> None:
    stack = build_stack(local_aws.endpoint_url, mappings=False)
    _set_templates(stack, REQUEST_TEMPLATE, RESPONSE_TEMPLATE)
    body = json.dumps({"items": [" a ", "b"], "qty": 2, "note": 'it\'s "OK"'.replace("OK", "ok")})
    status, raw, headers = _send(
        local_aws.invoke_url(stack.api_id, "prod"),
        body,
        {"Content-Type": "application/json", "X-Tag": "t1"},
    )
    # $context.responseOverride: the status and header the response template set.
    assert status == 201, raw
    assert headers.get("X-Kind") == "override"
    out = json.loads(raw)
    msgs = stack.client("sqs").receive_message(QueueUrl=stack.queue_url)["Messages"]
    assert [m["Body"] for m in msgs] == [EXPECTED_MESSAGE]
    assert out["id"] == msgs[0]["MessageId"]
    assert out["md5Keys"] == "[MD5OfMessageBody]"
    assert out["account"] == "123456789012"
    deployments = stack.client("apigateway").get_stage(restApiId=stack.api_id, stageName="prod")
    assert out["deployment"] == deployments["deploymentId"]
    assert out["apiId"] == stack.api_id


def test_a_template_api_gateway_cannot_render_is_its_500_never_literal_text(
    local_aws: LocalAWS,
) -> None:
    stack = build_stack(local_aws.endpoint_url, mappings=False)
    _set_templates(stack, "#set($x = 1/0)Action=SendMessage&MessageBody=x", '{"ok": true}')
    status, raw, _ = _send(
        local_aws.invoke_url(stack.api_id, "prod"), '{"a": 1}', {"Content-Type": "application/json"}
    )
    assert (status, json.loads(raw)) == (500, {"message": "Internal server error"})
    assert stack.count(stack.queue_url) == 0


def test_a_body_api_gateway_cannot_parse_as_json_is_its_400(local_aws: LocalAWS) -> None:
    """Recorded on API Gateway: a body starting an object or array that does not parse, read
    by $input.path, answers 400 "Could not process payload..." (test_vtl_parity's toqoz-122ff6ce);
    the same text read as a string (a=b) is no error."""
    stack = build_stack(local_aws.endpoint_url, mappings=False)
    # text/plain: the lab's model (and so its validator) covers application/json only.
    template = "Action=SendMessage&MessageBody=$input.path('$')"
    _set_templates(stack, template, '{"ok": true}', "text/plain")
    url = local_aws.invoke_url(stack.api_id, "prod")
    status, raw, _ = _send(url, '{"a": ', {"Content-Type": "text/plain"})
    assert status == 400 and json.loads(raw)["message"].startswith("Could not process payload")
    assert stack.count(stack.queue_url) == 0
    status, raw, _ = _send(url, "a=b", {"Content-Type": "text/plain"})
    assert (status, json.loads(raw)) == (200, {"ok": True})
    msgs = stack.client("sqs").receive_message(QueueUrl=stack.queue_url)["Messages"]
    assert [m["Body"] for m in msgs] == ["a=b"]


def test_request_override_replaces_the_integration_s_parameters(local_aws: LocalAWS) -> None:
    """$context.requestOverride.querystring from the request template reaches the integration
    request (AWS: "Use a mapping template to override an API's request and response
    parameters"): here SQS reads MessageBody from it."""
    stack = build_stack(local_aws.endpoint_url, mappings=False)
    template = (
        "#set($context.requestOverride.querystring.MessageBody = \"from-$input.path('$.who')\")"
        "\nAction=SendMessage"
    )
    _set_templates(stack, template, '{"ok": true}')
    status, raw, _ = _send(
        local_aws.invoke_url(stack.api_id, "prod"),
        '{"who": "override"}',
        {"Content-Type": "application/json"},
    )
    assert status == 200, raw
    msgs = stack.client("sqs").receive_message(QueueUrl=stack.queue_url)["Messages"]
    assert [m["Body"] for m in msgs] == ["from-override"]
