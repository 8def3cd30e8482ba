"""pocctl.local.vtl: the Velocity engine's behaviours the embedded API Gateway relies on.

airspeed-ext is pinned exactly (pyproject.toml) and pocctl.local.vtl hooks into it; each test
here names a behaviour so that an upgrade which changes one fails by name. What API Gateway
renders is checked against recorded outputs in test_vtl_parity.py.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from pocctl.local import vtl


def render(template: str, body: str = "", **variables: Any) -> str:
    params = variables.pop("params", None) or {
        "path": {"id": "p1"},
        "querystring": {"q": "1", "id": "q1"},
        "header": {"X-Tag": "t1", "id": "h1"},
    }
    names = {"input": vtl.Input(body, params), "util": vtl.Util(), **variables}
    return vtl.render(template, names)


# -- the engine --------------------------------------------------------------------------------


def test_the_engine_is_the_pinned_airspeed_ext() -> None:
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    pinned = re.search(r'"airspeed-ext==([\d.]+)"', pyproject)
    assert pinned is not None
    assert metadata.version("airspeed-ext") == pinned.group(1)


def test_missing_and_null_references_render_empty() -> None:
    assert render("[$nothing][$!nothing][${nothing}][$nothing.deeper.call()]") == "[][][][]"
    assert render("[$m.k]", m={"k": None}) == "[]"


def test_if_takes_a_missing_reference_as_true_and_its_negation_as_false() -> None:
    # API Gateway's recorded behaviour (test_vtl_parity: airspeed-formal_reference_in_an_if_*).
    assert render("#if($nothing)yes#{else}no#end") == "yes"
    assert render("#if(!$nothing)yes#{else}no#end") == "no"
    assert render("#if($f)yes#{else}no#end", f=False) == "no"


def test_directives_set_if_elseif_else_foreach_in_the_middle_of_a_line() -> None:
    template = "a #set($x = 2)#if($x == 1)one#elseif($x == 2)two#{else}other#end b"
    assert render(template) == "a two b"
    assert render("[#foreach($i in [1..3])$i#if($foreach.hasNext),#end#end]") == "[1,2,3]"


def test_foreach_loop_variables() -> None:
    template = (
        "#foreach($i in ['a','b'])"
        "$velocityCount$foreach.count$foreach.index$foreach.first$foreach.last;#end"
    )
    assert render(template) == "110truefalse;221falsetrue;"


def test_foreach_over_a_map_yields_its_values_and_over_null_or_a_scalar_nothing() -> None:
    assert render("#foreach($v in $m)$v,#end", m={"a": 1, "b": 2}) == "1,2,"
    assert render("#foreach($v in $nothing)x#end|#foreach($v in $s)x#end", s="str") == "|"


def test_break_leaves_the_innermost_foreach_and_outside_one_ends_the_template() -> None:
    template = "#foreach($i in [1,2])#foreach($j in [1,2,3])$i$j #if($j == 2)#break#end#end#end"
    assert render(template) == "11 12 21 22 "
    assert render("a#break b") == "a"


def test_stop_ends_the_template() -> None:
    assert render("a#stop b") == "a"


def test_directive_lines_leave_no_blank_lines() -> None:
    template = "#set($l = [1,2])\n#foreach($i in $l)\n#if($i == 1)\none\n#else\nother\n#end\n#end\n"
    assert render(template) == "one\nother\n"


def test_comments() -> None:
    assert render("## line\na#* block *#b") == "ab"


def test_define_runs_and_macro_calls_print_as_written() -> None:
    assert render("#define($d)[$x]#end#set($x = 1)$d#set($x = 2)$d") == "[1][2]"
    # API Gateway accepts a #macro definition but does not expand its calls (recorded).
    assert render("#macro(hi $n)Hi $n#end#hi('x')") == "#hi('x')"


def test_string_literals_keep_their_backslashes() -> None:
    assert render("#set($s = 'a\\nb')$s") == "a\\nb"  # Velocity 1.7 does not unescape


def test_java_string_methods() -> None:
    s = " Hello, World "
    assert render("$s.trim().toLowerCase()|$s.toUpperCase()|$s.length()", s=s) == (
        "hello, world| HELLO, WORLD |14"
    )
    assert render(
        "$s.contains('World') $s.indexOf('o') $s.indexOf('z') $s.lastIndexOf('o')", s=s
    ) == ("true 5 -1 9")
    assert render("$s.replaceAll('(\\w+), (\\w+)', '$2 $1')", s=s) == " World Hello "
    assert render("$s.replaceFirst('o', '0')|$s.replace('l', 'L')", s=s) == (
        " Hell0, World | HeLLo, WorLd "
    )
    assert render(
        "$s.startsWith(' H') $s.endsWith('x') $s.isEmpty() $s.matches('.*World.*')", s=s
    ) == ("true false false true")
    assert render("$s.substring(1, 6)|$s.charAt(1)|$s.equalsIgnoreCase(' hello, world ')", s=s) == (
        "Hello|H|true"
    )
    assert render("$c.split(',')|$c.split(',').size()", c="a,b,,") == "[a, b]|2"


def test_a_java_method_that_throws_fails_the_template() -> None:
    with pytest.raises(vtl.TemplateError):
        render("$s.substring(2, 9)", s="abc")


def test_the_documented_escape_javascript_idiom() -> None:
    # $util.escapeJavaScript(data).replaceAll("\\'","'") — the developer guide's $util table.
    template = "$util.escapeJavaScript($input.path('$.s')).replaceAll(\"\\\\'\",\"'\")"
    assert render(template, '{"s": "it\'s \\"x\\""}') == 'it\'s \\"x\\"'


def test_list_and_map_methods() -> None:
    template = (
        "#set($l = [1, 2])#set($ok = $l.add(3))$l.size() $l.get(0) $l.contains(2) $l.isEmpty() "
        "#set($m = {'a': 1})#set($old = $m.put('b', 2))$m.keySet() $m.values() $m.size() "
        "$m.containsKey('a') $m.get('b') $m.isEmpty()"
    )
    assert render(template) == "3 1 true false [a, b] [1, 2] 2 true 2 false"


def test_python_attributes_are_not_visible() -> None:
    # Only Java's methods exist in a template: never more permissive than AWS.
    assert render("[$s.upper()][$m.items()][$l.append(1)][$input._raw]", s="x", m={}, l=[]) == (
        "[][][][]"
    )


def test_printing_as_java_prints() -> None:
    assert render("$m", m={"a": 1, "b": [True, None, "x"], "c": {"d": 1.5}}) == (
        "{a=1, b=[true, null, x], c={d=1.5}}"
    )
    # JSON arrays from $input.path print as JSON (json-smart's JSONArray), maps as Java maps.
    assert render("$input.path('$')", '{"a": [1, "x", {"b": null}]}') == ('{a=[1,"x",{"b":null}]}')


def test_index_notation() -> None:
    assert render("$sv['env'] ${sv['env']} $sv['nope']|", sv={"env": "prod"}) == "prod prod |"
    assert render("$input.params()['header']['X-Tag'] $l[1] $l[5]|", l=["a", "b"]) == "t1 b |"


def test_set_into_context_maps_is_seen_by_the_caller() -> None:
    context: dict[str, Any] = {"responseOverride": {"header": {}}}
    render(
        "#set($context.responseOverride.status = 404)"
        "#set($context.responseOverride.header.X-A = 'b')",
        context=context,
    )
    assert context["responseOverride"] == {"header": {"X-A": "b"}, "status": 404}


def test_templates_that_do_not_parse_or_fail_raise_template_error() -> None:
    for template in ("#if(true)no end", "#set($x = )", "${unterminated", "#set($x = 1 / 0)"):
        with pytest.raises(vtl.TemplateError):
            render(template)


# -- $input ------------------------------------------------------------------------------------


def test_input_body_json_and_path() -> None:
    body = '{"a": {"b": [10, 20]}, "s": "x"}'
    assert render("$input.body", body) == body
    assert render("$input.json('$')", body) == '{"a":{"b":[10,20]},"s":"x"}'
    assert render(
        "$input.json('$.a.b[1]') $input.path('$.a.b').size() $input.path('$.s')", body
    ) == ("20 2 x")
    assert render("[$input.json('$.nope')][$input.path('$.nope')]", body) == "[][]"


def test_an_empty_body_reads_as_an_empty_object() -> None:
    assert render("$input.body $input.json('$') $input.path('$')") == "{} {} {}"


def test_a_body_that_is_not_json_reads_as_a_string() -> None:
    assert render("$input.path('$')|$input.json('$')|$input.path('$.a')|", "a=1&b=2") == (
        'a=1&b=2|"a=1&b=2"||'
    )


def test_a_malformed_json_object_is_api_gateway_s_400() -> None:
    with pytest.raises(vtl.PayloadError) as refused:
        render("$input.path('$')", '{"a": ')
    assert refused.value.message.startswith("Could not process payload")
    assert render("$input.body", '{"a": ') == '{"a": '  # only reading it as JSON fails


def test_input_params_searches_path_then_querystring_then_header() -> None:
    assert render(
        "$input.params('id') $input.params('q') $input.params('x-tag') [$input.params('no')]"
    ) == ("p1 1 t1 []")


# -- $util -------------------------------------------------------------------------------------


def test_util_functions() -> None:
    assert render("$util.escapeJavaScript($s)", s="a'b\"c\\d/e\n\té") == (
        "a\\'b\\\"c\\\\d\\/e\\n\\t\\u00E9"
    )
    assert render("$util.urlEncode($s)", s="a b&c=d~*é") == "a+b%26c%3Dd%7E*%C3%A9"
    assert render("$util.urlDecode($s)", s="a+b%26c%3Dd") == "a b&c=d"
    assert render("$util.base64Encode($s)|$util.base64Decode('w6k=')", s="é!") == "w6kh|é"
    assert render("#set($o = $util.parseJson($s))$o.k.arr[1] $o.k", s='{"k": {"arr": [1, 2]}}') == (
        "2 {arr=[1,2]}"
    )
    assert render("[$util.urlEncode($nothing)][$util.escapeJavaScript($nothing)]") == "[][]"


def test_input_and_util_alone_render_nothing() -> None:
    assert render("[$input][$util][$input.json][$util.urlEncode]") == "[][][][]"


# -- $context as the gateway builds it --------------------------------------------------------

DOCUMENTED_CONTEXT_KEYS = {
    # "Variables for data transformations for API Gateway", $context table (REST APIs).
    "accountId", "apiId", "authorizer", "awsEndpointRequestId", "deploymentId", "domainName",
    "domainPrefix", "extendedRequestId", "httpMethod", "identity", "isCanaryRequest", "path",
    "protocol", "requestId", "requestOverride", "responseOverride", "requestTime",
    "requestTimeEpoch", "resourceId", "resourcePath", "stage", "wafResponseCode", "webaclArn",
    "xrayTraceId",
}  # fmt: skip
IDENTITY_KEYS = {
    "accountId", "apiKey", "apiKeyId", "caller", "cognitoAuthenticationProvider",
    "cognitoAuthenticationType", "cognitoIdentityId", "cognitoIdentityPoolId", "principalOrgId",
    "clientCert", "sourceIp", "user", "userAgent", "userArn", "vpcId", "vpceId",
}  # fmt: skip


def test_context_has_every_documented_rest_key() -> None:
    from pocctl.local.gateway import TokenBucket, _context, _Deployed

    deployed = _Deployed("dep123", [], {}, {}, {}, TokenBucket(1.0, 1))
    environ = {"REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1"}
    headers = {"Host": "127.0.0.1:4566", "User-Agent": "curl/8"}
    ctx = _context(
        environ, headers, "rid", "api1", "prod", "POST", {"id": "r1", "path": "/"}, "/", deployed
    )
    assert set(ctx) == DOCUMENTED_CONTEXT_KEYS
    assert set(ctx["identity"]) == IDENTITY_KEYS
    assert re.fullmatch(r"\d{12}", ctx["accountId"])
    assert (ctx["apiId"], ctx["deploymentId"], ctx["stage"], ctx["httpMethod"]) == (
        "api1",
        "dep123",
        "prod",
        "POST",
    )
    assert (ctx["domainName"], ctx["domainPrefix"]) == ("127.0.0.1:4566", "127")
    assert (ctx["path"], ctx["resourcePath"], ctx["resourceId"]) == ("/prod/", "/", "r1")
    assert re.fullmatch(r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000", ctx["requestTime"])
    assert isinstance(ctx["requestTimeEpoch"], int) and ctx["requestTimeEpoch"] > 1e12
    assert ctx["extendedRequestId"] and ctx["extendedRequestId"] != ctx["requestId"]
    assert ctx["requestOverride"] == {"header": {}, "path": {}, "querystring": {}}
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["identity"]["userAgent"] == "curl/8"
    out = render('{"caller": "$context.identity.caller"}', context=ctx)
    assert json.loads(out) == {"caller": ""}  # null for an unsigned request, rendered empty
