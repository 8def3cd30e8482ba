"""API Gateway's mapping-template language: Velocity (VTL) with API Gateway's objects.

The engine is airspeed-ext (pinned in pyproject.toml), the Python Velocity implementation that
another AWS emulator (LocalStack) maintains for exactly this, with an AWS mode: missing
references render empty and string literals keep their backslashes, as API Gateway does. The
alternatives were the original airspeed (Velocity's defaults: a missing ``$foo`` prints as
``$foo``, which API Gateway never does) or Java's Velocity (a JVM this project cannot ship).
This module keeps API Gateway's side thin:

- ``$input``, ``$util`` (:class:`Input`, :class:`Util`), ``$context`` and ``$stageVariables``
  (plain dicts built by the gateway), as documented in "Variables for data transformations for
  API Gateway" (https://docs.aws.amazon.com/apigateway/latest/developerguide/
  api-gateway-mapping-template-reference.html).
- Java's view of values: ``String``/``List``/``Map`` methods only (``replaceAll``,
  ``toLowerCase``, ``trim``, ``size``, ``keySet``...; Python's own methods are not visible),
  maps printed as ``{foo=bar}`` and lists as ``[a, b]`` (Java's ``toString``), while JSON
  arrays from ``$input.path`` print as JSON (they are json-smart ``JSONArray`` objects on AWS).
- What API Gateway's Velocity does differently from airspeed, each recorded on AWS (the
  parity suite, tests/local/test_vtl_parity.py, holds the cases): ``#break``; ``#foreach``
  over a map's values, over null or a scalar doing nothing, leaving no blank line; a missing
  key or index giving null; ``#macro`` calls, ``#evaluate`` and ``#return`` printed as written
  (API Gateway accepts a macro definition but does not expand its calls); Velocity's
  backslash escaping; whitespace around ``#set``, ``#else`` and block comments.

A missing or ``null`` reference renders as the empty string, and ``#if($missing)`` is true
(recorded on API Gateway). A template that cannot be parsed or evaluated raises
:class:`TemplateError`; the gateway answers it with API Gateway's 500
``{"message": "Internal server error"}``. A body that ``$input.path``/``$input.json`` cannot
read as JSON raises :class:`PayloadError`, API Gateway's 400.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import airspeed
from airspeed import operators as _ops


class TemplateError(ValueError):
    pass


class PayloadError(TemplateError):
    """The payload a template reads with ``$input.path``/``$input.json`` does not parse.

    API Gateway answers 400 ``{"message": "Could not process payload..."}`` then, as recorded
    on AWS in https://github.com/ToQoz/api-gateway-mapping-template/blob/master/test/_.md."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.message = f"Could not process payload{detail}"


# -- Java's view of values ----------------------------------------------------------------------


class JsonArray(list):  # type: ignore[type-arg]
    """A JSON array read from a payload: on AWS a json-smart JSONArray, whose toString is JSON."""


def java_string(value: Any) -> str:
    """``String.valueOf(value)`` as Java prints Velocity's values."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, JsonArray):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{java_string(k)}={java_string(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, range)):
        return "[" + ", ".join(java_string(v) for v in value) + "]"
    return str(value)


def _java_replacement(repl: str) -> str:
    """A java.util.regex replacement ($1, \\$) as Python's re.sub replacement."""
    out, i = [], 0
    while i < len(repl):
        ch = repl[i]
        if ch == "\\" and i + 1 < len(repl):
            out.append(re.escape(repl[i + 1]) if repl[i + 1] != "\\" else "\\\\")
            i += 2
        elif ch == "$" and i + 1 < len(repl) and repl[i + 1].isdigit():
            out.append(f"\\g<{repl[i + 1]}>")
            i += 2
        else:
            out.append("\\\\" if ch == "\\" else ch)
            i += 1
    return "".join(out)


def _split(s: str, regex: str, limit: int = 0) -> list[str]:
    """String.split: a regex; with limit 0, trailing empty strings are removed."""
    parts = re.split(regex, s, maxsplit=max(limit - 1, 0))
    if limit == 0:
        while parts and parts[-1] == "":
            parts.pop()
    return parts


def _index_of(s: Any, x: Any, start: int = 0) -> int:
    try:
        return s.index(x, start) if isinstance(s, str) else s.index(x)
    except ValueError:
        return -1


def _at(seq: Any, i: int) -> Any:
    """charAt/get: an index out of range throws in Java, which fails the template."""
    if not 0 <= i < len(seq):
        raise IndexError(f"index {i}, length {len(seq)}")
    return seq[i]


def _substring(s: str, begin: int, end: int | None = None) -> str:
    end = len(s) if end is None else end
    if not 0 <= begin <= end <= len(s):  # StringIndexOutOfBoundsException on AWS
        raise IndexError(f"begin {begin}, end {end}, length {len(s)}")
    return s[begin:end]


def _put(m: dict[Any, Any], k: Any, v: Any) -> Any:
    old = m.get(k)
    m[k] = v
    return old


def _list_add(lst: list[Any], *args: Any) -> bool:
    if len(args) == 2:
        lst.insert(args[0], args[1])
    else:
        lst.append(args[0])
    return True


_STRING_METHODS: dict[str, Callable[..., Any]] = {
    "length": len,
    "isEmpty": lambda s: len(s) == 0,
    "toLowerCase": str.lower,
    "toUpperCase": str.upper,
    "trim": lambda s: s.strip("".join(chr(c) for c in range(33))),
    "contains": lambda s, x: java_string(x) in s,
    "startsWith": lambda s, x, off=0: s.startswith(x, off),
    "endsWith": lambda s, x: s.endswith(x),
    "equals": lambda s, x: isinstance(x, str) and s == x,
    "equalsIgnoreCase": lambda s, x: isinstance(x, str) and s.lower() == x.lower(),
    "indexOf": _index_of,
    "lastIndexOf": lambda s, x: s.rfind(x),
    "charAt": _at,
    "substring": _substring,
    "concat": lambda s, x: s + x,
    "replace": lambda s, a, b: s.replace(java_string(a), java_string(b)),
    # Java's and Python's regex syntax agree on what templates use; a pattern Python refuses
    # (possessive quantifiers, \p{...}) fails the template: API Gateway's 500, never silence.
    "replaceAll": lambda s, rx, r: re.sub(rx, _java_replacement(r), s),
    "replaceFirst": lambda s, rx, r: re.sub(rx, _java_replacement(r), s, count=1),
    "matches": lambda s, rx: re.fullmatch(rx, s) is not None,
    "split": _split,
    "toString": lambda s: s,
    "hashCode": lambda s: _java_hash(s),
}

_LIST_METHODS: dict[str, Callable[..., Any]] = {
    "size": len,
    "isEmpty": lambda lst: len(lst) == 0,
    "get": _at,
    "contains": lambda lst, x: x in lst,
    "indexOf": _index_of,
    "add": _list_add,
    "addAll": lambda lst, xs: lst.extend(xs) or True,
    "set": lambda lst, i, v: (lst[i], lst.__setitem__(i, v))[0],
    "remove": lambda lst, i: lst.pop(i) if isinstance(i, int) else _remove(lst, i),
    "clear": lambda lst: lst.clear(),
    "toString": java_string,
}

_MAP_METHODS: dict[str, Callable[..., Any]] = {
    "size": len,
    "isEmpty": lambda m: len(m) == 0,
    "get": lambda m, k: m.get(k),
    "getOrDefault": lambda m, k, d: m.get(k, d),
    "containsKey": lambda m, k: k in m,
    "containsValue": lambda m, v: v in m.values(),
    "keySet": lambda m: list(m.keys()),
    "values": lambda m: list(m.values()),
    "entrySet": lambda m: [{"key": k, "value": v} for k, v in m.items()],
    "put": _put,
    "putAll": lambda m, other: m.update(other),
    "remove": lambda m, k: m.pop(k, None),
    "clear": lambda m: m.clear(),
    "toString": java_string,
}

_SCALAR_METHODS: dict[str, Callable[..., Any]] = {
    "toString": java_string,
    "equals": lambda a, b: a == b,
    "intValue": int,
    "longValue": int,
    "doubleValue": float,
    "booleanValue": bool,
}


def _remove(lst: list[Any], x: Any) -> bool:
    if x in lst:
        lst.remove(x)
        return True
    return False


def _java_hash(s: str) -> int:
    h = 0
    for ch in s:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def _methods_of(obj: Any) -> dict[str, Callable[..., Any]] | None:
    if isinstance(obj, str):
        return _STRING_METHODS
    if isinstance(obj, (list, tuple)):
        return _LIST_METHODS
    if isinstance(obj, dict):
        return _MAP_METHODS
    if isinstance(obj, (bool, int, float)):
        return _SCALAR_METHODS
    return None


def _member(obj: Any, name: str, args: list[Any] | None) -> Any:
    """``$obj.name`` (args None) or ``$obj.name(args)`` with Velocity's lookup, Java-typed."""
    if obj is None:
        return None
    table = _methods_of(obj)
    if args is not None:
        if table is not None:
            method = table.get(name)
            return method(obj, *args) if method else None
        # pocctl's own objects ($input, $util): their public methods
        bound = getattr(obj, name, None) if not name.startswith("_") else None
        return bound(*args) if callable(bound) else None
    if isinstance(obj, dict):
        return obj.get(name)
    if table is None and not name.startswith("_"):
        value = getattr(obj, name, None)
        return None if callable(value) else value
    return None


def _item(obj: Any, key: Any) -> Any:
    """``$obj[key]``: a missing key or index is null, as Velocity's index notation."""
    if isinstance(obj, dict):
        return obj.get(key)
    if isinstance(obj, (list, tuple)) and isinstance(key, int) and 0 <= key < len(obj):
        return obj[key]
    return None


# -- the airspeed hooks: names only airspeed's parser calls ---------------------------------------


class _Break(Exception):
    """#break: leaves the innermost #foreach (or the template, outside one), as Velocity 1.7."""


class _BreakDirective(_ops._Element):
    START = re.compile(r"#(?:break|\{break\})(.*)", re.S)

    def parse(self) -> None:
        self.identity_match(self.START)

    def evaluate_raw(self, stream: Any, namespace: Any, loader: Any) -> None:
        raise _Break()


def _is_break(exc: BaseException) -> bool:
    return isinstance(exc, _Break) or isinstance(getattr(exc, "__cause__", None), _Break)


class _Foreach(_ops.ForeachDirective):
    """Velocity 1.7's #foreach: a map yields its values, null or a scalar yields nothing, and
    the newline after ``#foreach(...)`` is not output (Velocity user guide, "VTL: Formatting
    Issues": the multi-line #foreach renders like the one-line form)."""

    def parse(self) -> None:
        self.identity_match(self.START)
        self.require_match(self.OPEN_PAREN, "(")
        (self.loop_var_name,) = self.require_match(self.LOOP_VAR_NAME, "loop var name")
        self.require_match(self.IN, "in")
        self.value = self.next_element(_ops.Value)
        self.require_match(self.CLOSE_PAREN, ")")
        self.optional_match(_ops.WHITESPACE_TO_END_OF_LINE)
        self.block = self.next_element(_ops.Block)
        self.require_next_element(_ops.End, "#end")

    def evaluate_raw(self, stream: Any, namespace: Any, loader: Any) -> None:
        iterable = self.value.calculate(namespace, loader)
        if isinstance(iterable, dict):
            iterable = list(iterable.values())
        if not isinstance(iterable, (list, tuple, range)):
            return
        items = list(iterable)
        for n, item in enumerate(items, 1):
            local = _ops.LocalNamespace(namespace)
            local["velocityCount"] = n
            local["velocityHasNext"] = n < len(items)
            local["foreach"] = {
                "count": n,
                "index": n - 1,
                "hasNext": n < len(items),
                "first": n == 1,
                "last": n == len(items),
            }
            local[self.loop_var_name] = item
            try:
                self.block.evaluate(stream, local, loader)
            except _ops.TemplateExecutionError as exc:
                if _is_break(exc):
                    return
                raise


class _Else(_ops.ElseBlock):
    """#else, whose trailing newline Velocity does not output either (as #if's and #end's)."""

    def parse(self) -> None:
        self.identity_match(self.START)
        self.optional_match(_ops.WHITESPACE_TO_END_OF_LINE)
        self.block = self.require_next_element(_ops.Block, "block")
        self.evaluate = self.block.evaluate


class _Text(_ops.Text):
    """Velocity's escaping: an even run of backslashes before a reference or directive prints
    half of them (``\\\\$x`` → ``\\`` and the value of $x), as recorded on API Gateway
    (localstack/airspeed test_velocity_style_escaping)."""

    def parse(self) -> None:
        super().parse()
        if self.text == "\\\\" and _BACKSLASHES_THEN_MARK.match(self.next_text()):
            self.text = "\\"


_BACKSLASHES_THEN_MARK = re.compile(r"\\*[$#]")


def _literal(self: Any, stream: Any, namespace: Any, loader: Any) -> None:
    """What API Gateway's Velocity does not run prints as written: macro calls (#macro
    definitions are accepted, their calls are not expanded), #evaluate and #return — recorded
    on AWS in localstack/airspeed's snapshot (#tryme(), #recur(5), #evaluate(...), #return(...))."""
    stream.write(self.my_text())


_original_name_or_call = _ops.NameOrCall.calculate


def _name_or_call(self: Any, current: Any, loader: Any, top: Any) -> Any:
    if isinstance(current, _ops.LocalNamespace):
        return _original_name_or_call(self, current, loader, top)  # variables, macros, #define
    args = self.parameters.calculate(top, loader) if self.parameters is not None else None
    result = _member(current, self.name, args)
    if self.index is not None:
        result = _item(result, self.index.calculate(top, loader))
    return result


def _sub_expression(self: Any, current: Any, loader: Any, top: Any) -> Any:
    if not isinstance(self.expression, _ops.ArrayIndex):
        return self.expression.calculate(current, loader, top)
    result = _item(current, self.expression.calculate(current, loader))
    return self.subexpression.calculate(result, loader, top) if self.subexpression else result


def _install() -> None:
    """Fit airspeed to Velocity 1.7 as API Gateway runs it (see the module docstring).

    airspeed-ext is pinned exactly; tests/local/test_vtl.py checks each hook so an upgrade that
    moves these names fails loudly."""
    if getattr(_ops, "_pocctl_installed", False):
        return
    _ops.value_to_string = java_string
    _ops.ForeachDirective = _Foreach
    _ops.ElseBlock = _Else
    _ops.Text = _Text
    # Blanks between a #set and the next #set belong to the second (Velocity's lexer takes
    # them into the directive): recorded on API Gateway, "#set(...) #set(...)" prints nothing
    # (localstack/airspeed tests/test_templating.snapshot.json).
    _ops.Assignment.END = re.compile(
        r"\s*\)(?:[ \t]*\r?\n|[ \t]+(?=#set\b|#\{set\}))?(.*)$", re.S | re.M
    )
    # A block comment keeps the newline after it (recorded: "Stuff#*...*#\n and" keeps it).
    _ops.Comment.COMMENT = re.compile(r"#(?:#.*?(?:\n|$)|\*.*?\*#)(.*)$", re.M | re.S)
    for directive in (_ops.MacroCall, _ops.EvaluateDirective, _ops.ReturnDirective):
        directive.evaluate_raw = _literal
    _ops.NameOrCall.calculate = _name_or_call
    _ops.SubExpression.calculate = _sub_expression
    _ops.UserDefinedDirective.DIRECTIVES = [*_ops.UserDefinedDirective.DIRECTIVES, _BreakDirective]
    _ops._pocctl_installed = True


_install()


# -- API Gateway's objects ----------------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_MISSING = object()


def json_path(doc: Any, path: str) -> Any:
    """A JSONPath subset: ``$``, ``.name``, ``['name']``, ``[index]``, ``[*]``. Missing → None."""
    path = path.strip()
    if not path.startswith("$"):
        raise TemplateError(f"unsupported JSONPath {path!r}")
    i, cur = 1, doc
    while i < len(path) and cur is not None:
        if path[i] == ".":
            m = _IDENT.match(path, i + 1)
            if not m:
                raise TemplateError(f"unsupported JSONPath {path!r}")
            cur, i = (cur.get(m.group(0)) if isinstance(cur, dict) else None), m.end()
        elif path[i] == "[":
            end = path.index("]", i)
            token, i = path[i + 1 : end].strip(), end + 1
            if token[:1] in "'\"":
                cur = cur.get(token[1:-1]) if isinstance(cur, dict) else None
            elif token.lstrip("-").isdigit():
                idx = int(token)
                cur = cur[idx] if isinstance(cur, list) and -len(cur) <= idx < len(cur) else None
            elif token == "*":
                cur = list(cur.values()) if isinstance(cur, dict) else cur
            else:
                raise TemplateError(f"unsupported JSONPath {path!r}")
        else:
            raise TemplateError(f"unsupported JSONPath {path!r}")
    return cur


def _lenient_json(text: str) -> Any:
    """The payload as AWS's json-smart parser (permissive mode) reads it: JSON, or — for text
    that does not start an object or array — the text itself as one string (recorded on AWS:
    ``a=b``, ``a{b``, ``null{`` read as strings; ``{a`` and ``[a`` are refused with 400)."""
    try:
        return json.loads(text)
    except ValueError as exc:
        if text.lstrip()[:1] in ("{", "["):
            raise PayloadError(f": {exc}") from exc
        return text


def from_json(value: Any) -> Any:
    """A parsed JSON value as AWS's JSONPath library hands it to Velocity: objects are maps
    (printed {k=v}), arrays JSONArrays (printed as JSON)."""
    if isinstance(value, dict):
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return JsonArray(from_json(v) for v in value)
    return value


def escape_javascript(s: str) -> str:
    """commons-lang StringEscapeUtils.escapeJavaScript, API Gateway's $util.escapeJavaScript:
    ' and " and \\ and / escaped, control characters and non-ASCII as \\uXXXX."""
    out = []
    for ch in str(s):
        if ch in "\"'\\/":
            out.append("\\" + ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ord(ch) < 32 or ord(ch) > 0x7E:
            out.append("".join(f"\\u{u:04X}" for u in _utf16(ch)))
        else:
            out.append(ch)
    return "".join(out)


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _utf16(ch: str) -> list[int]:
    data = ch.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def url_encode(s: str) -> str:
    """java.net.URLEncoder.encode(s, "UTF-8"): space → '+', keeps only ``A-Za-z0-9.-*_``."""
    return quote_plus(str(s), safe="*").replace("~", "%7E")


class Input:
    """``$input`` for a request (or for an integration response, the backend's body).

    An empty payload reads as ``{}`` (API Gateway's behaviour, recorded by LocalStack:
    https://github.com/localstack/localstack/pull/12413). A payload that is not JSON reads, as
    AWS's lenient JSON parser reads it, as one string: ``$input.path('$')`` is the raw text
    (the documented form-urlencoded recipes split it), a deeper path is null."""

    def __init__(self, body: str, params: dict[str, dict[str, str]] | None = None) -> None:
        self._raw = body
        self._params = params or {"path": {}, "querystring": {}, "header": {}}
        self._doc: Any = _MISSING

    def __str__(self) -> str:
        # $input alone renders nothing on AWS (recorded: ToQoz/api-gateway-mapping-template
        # test/_.md, example-cd963d7c).
        return ""

    @property
    def body(self) -> str:
        return self._raw if self._raw else "{}"

    def _parsed(self) -> Any:
        if self._doc is _MISSING:
            self._doc = from_json(_lenient_json(self.body))
        return self._doc

    def json(self, path: str = "$") -> str:
        """The JSONPath result as compact JSON; nothing at the path → the empty string."""
        value = json_path(self._parsed(), str(path))
        if value is None:
            return ""
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def path(self, path: str) -> Any:
        return json_path(self._parsed(), str(path))

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return self._params
        for where in ("path", "querystring", "header"):
            values = self._params.get(where, {})
            if where == "header":
                for k, v in values.items():
                    if k.lower() == str(name).lower():
                        return v
            elif name in values:
                return values[name]
        return ""


class Util:
    """``$util``: the functions API Gateway documents, with their Java libraries' behaviour."""

    def __str__(self) -> str:
        return ""  # as $input (recorded: example-a35f2355 of the same file)

    def urlEncode(self, s: Any) -> Any:  # noqa: N802 (VTL's names)
        return None if s is None else url_encode(java_string(s))

    def urlDecode(self, s: Any) -> Any:  # noqa: N802
        return None if s is None else unquote_plus(java_string(s))

    def escapeJavaScript(self, s: Any) -> Any:  # noqa: N802
        return None if s is None else escape_javascript(java_string(s))

    def base64Encode(self, s: Any) -> Any:  # noqa: N802
        if s is None:
            return None
        return base64.b64encode(java_string(s).encode("utf-8")).decode("ascii")

    def base64Decode(self, s: Any) -> Any:  # noqa: N802
        if s is None:
            return None
        return base64.b64decode(java_string(s)).decode("utf-8", "replace")

    def parseJson(self, s: Any) -> Any:  # noqa: N802
        return from_json(json.loads(java_string(s)))


# -- rendering ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _compiled(template: str) -> airspeed.Template:
    """Parsed once per template text (a deployment's templates are fixed); merging a parsed
    template keeps no state in it, so requests share it."""
    compiled = airspeed.Template(template)
    compiled.ensure_compiled()
    return compiled


def render(template: str, variables: dict[str, Any]) -> str:
    """Render ``template`` with the root objects in ``variables`` (input, util, context...).

    ``variables`` is not modified except where the template assigns into it (for example
    ``#set($context.responseOverride.status = 400)``), which is how API Gateway hands overrides
    back."""
    try:
        compiled = _compiled(template)
    except (_ops.TemplateSyntaxError, RecursionError) as exc:
        raise TemplateError(f"mapping template does not parse: {exc}") from exc
    stream = _ops.StoppableStream()
    try:
        compiled.merge_to(variables, stream)
    except _ops.TemplateExecutionError as exc:
        if isinstance(exc.__cause__, PayloadError):
            raise exc.__cause__ from exc
        if not _is_break(exc):
            raise TemplateError(f"mapping template failed: {exc}") from exc
    except (RecursionError, ValueError, TypeError) as exc:
        raise TemplateError(f"mapping template failed: {exc}") from exc
    return stream.getvalue()
