"""The subset of API Gateway's mapping-template language (VTL) that REST APIs like the lab's use.

References only — ``$input.body``, ``$input.json('$.x')``, ``$input.path('$.x')``,
``$input.params('name')``, ``$util.urlEncode(...)``, ``$util.urlDecode(...)``,
``$util.escapeJavaScript(...)``, ``$util.base64Encode/Decode(...)``, ``$util.parseJson(...)``,
``$context.<name>``, ``$stageVariables.<name>`` — in the plain, quiet (``$!x``) and formal
(``${x}``) forms; ``##`` comments are dropped. Directives (#set, #if, #foreach) are not
supported: a template that uses them raises TemplateError rather than render wrongly.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote_plus, unquote_plus


class TemplateError(ValueError):
    pass


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_DIRECTIVE = re.compile(r"^\s*#(set|if|elseif|else|end|foreach|macro|define|parse|include)\b", re.M)
_MISSING = object()


def json_path(doc: Any, path: str) -> Any:
    """A JSONPath subset: ``$``, ``.name``, ``['name']``, ``[index]``. Missing → None."""
    path = path.strip()
    if not path.startswith("$"):
        raise TemplateError(f"unsupported JSONPath {path!r}")
    i, cur = 1, doc
    while i < len(path):
        if path[i] == ".":
            m = _IDENT.match(path, i + 1)
            if not m:
                raise TemplateError(f"unsupported JSONPath {path!r}")
            key, i = m.group(0), m.end()
            cur = cur.get(key) if isinstance(cur, dict) else None
        elif path[i] == "[":
            end = path.index("]", i)
            token = path[i + 1 : end].strip()
            i = end + 1
            if token[:1] in "'\"":
                cur = cur.get(token[1:-1]) if isinstance(cur, dict) else None
            elif token.lstrip("-").isdigit():
                idx = int(token)
                cur = cur[idx] if isinstance(cur, list) and -len(cur) <= idx < len(cur) else None
            else:
                raise TemplateError(f"unsupported JSONPath {path!r}")
        else:
            raise TemplateError(f"unsupported JSONPath {path!r}")
        if cur is None:
            return None
    return cur


def escape_javascript(s: str) -> str:
    """Java's StringEscapeUtils.escapeJavaScript, as API Gateway's $util.escapeJavaScript."""
    out = []
    for ch in str(s):
        if ch in "\"'\\/":
            out.append("\\" + ch if ch != "/" else "\\/")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ord(ch) < 32 or ord(ch) > 0x7E:
            out.append("".join(f"\\u{u:04X}" for u in _utf16(ch)))
        else:
            out.append(ch)
    return "".join(out)


def _utf16(ch: str) -> list[int]:
    data = ch.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def url_encode(s: str) -> str:
    """java.net.URLEncoder.encode(s, "UTF-8"): space → '+', keeps only ``A-Za-z0-9.-*_``."""
    return quote_plus(str(s), safe="*").replace("~", "%7E")


class Input:
    """``$input`` for a request (or for an integration response, the backend's body)."""

    def __init__(self, body: str, params: dict[str, dict[str, str]] | None = None) -> None:
        self.body = body
        self._params = params or {"path": {}, "querystring": {}, "header": {}}
        self._doc: Any = _MISSING

    def _parsed(self) -> Any:
        if self._doc is _MISSING:
            try:
                self._doc = json.loads(self.body) if self.body.strip() else {}
            except ValueError as exc:
                raise TemplateError(f"body is not JSON: {exc}") from exc
        return self._doc

    def json(self, path: str) -> str:
        value = json_path(self._parsed(), path)
        return json.dumps(value) if value is not None else ""

    def path(self, path: str) -> Any:
        return json_path(self._parsed(), path)

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return self._params
        for where in ("path", "querystring", "header"):
            values = self._params.get(where, {})
            if where == "header":
                for k, v in values.items():
                    if k.lower() == name.lower():
                        return v
            elif name in values:
                return values[name]
        return ""


class Util:
    """``$util``."""

    def urlEncode(self, s: Any) -> str:  # noqa: N802 (VTL's names)
        return url_encode(_text(s))

    def urlDecode(self, s: Any) -> str:  # noqa: N802
        return unquote_plus(_text(s))

    def escapeJavaScript(self, s: Any) -> str:  # noqa: N802
        return escape_javascript(_text(s))

    def base64Encode(self, s: Any) -> str:  # noqa: N802
        return base64.b64encode(_text(s).encode("utf-8")).decode("ascii")

    def base64Decode(self, s: Any) -> str:  # noqa: N802
        return base64.b64decode(_text(s)).decode("utf-8", "replace")

    def parseJson(self, s: Any) -> Any:  # noqa: N802
        return json.loads(_text(s))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render(template: str, variables: dict[str, Any]) -> str:
    """Render ``template`` with the root objects in ``variables`` (input, util, context...)."""
    if _DIRECTIVE.search(template):
        raise TemplateError("VTL directives (#set, #if, #foreach...) are not supported locally")
    template = re.sub(r"##[^\n]*", "", template)
    out: list[str] = []
    i = 0
    while i < len(template):
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        parsed = _Parser(template, j, variables).reference()
        if parsed is None:
            out.append("$")
            i = j + 1
            continue
        value, end, quiet = parsed
        if value is None:
            out.append("" if quiet else template[j:end])
        else:
            out.append(_text(value))
        i = end
    return "".join(out)


class _Parser:
    """Parses and evaluates one reference starting at ``$``."""

    def __init__(self, text: str, pos: int, variables: dict[str, Any]) -> None:
        self.text, self.pos, self.vars = text, pos, variables

    def reference(self) -> tuple[Any, int, bool] | None:
        t = self.text
        p = self.pos + 1
        quiet = t.startswith("!", p)
        if quiet:
            p += 1
        formal = t.startswith("{", p)
        if formal:
            p += 1
        m = _IDENT.match(t, p)
        if not m:
            return None
        value: Any = self.vars.get(m.group(0))
        p = m.end()
        while p < len(t) and t[p] == ".":
            m = _IDENT.match(t, p + 1)
            if not m:
                break
            name, q = m.group(0), m.end()
            if q < len(t) and t[q] == "(":
                args, q = self._args(q + 1)
                method = getattr(value, name, None) if value is not None else None
                if not callable(method) or name.startswith("_"):
                    raise TemplateError(f"unsupported method {name}() in mapping template")
                value = method(*args)
            elif isinstance(value, dict):
                value = value.get(name)
            else:
                value = (
                    getattr(value, name, None)
                    if value is not None and not callable(getattr(value, name, None))
                    else None
                )
            p = q
        if formal:
            if not t.startswith("}", p):
                raise TemplateError("unterminated ${...} reference")
            p += 1
        return value, p, quiet

    def _args(self, p: int) -> tuple[list[Any], int]:
        t, args = self.text, []
        while True:
            while p < len(t) and t[p].isspace():
                p += 1
            if p >= len(t):
                raise TemplateError("unterminated argument list")
            if t[p] == ")":
                return args, p + 1
            if t[p] in "'\"":
                end = t.find(t[p], p + 1)
                if end < 0:
                    raise TemplateError("unterminated string literal")
                args.append(t[p + 1 : end])
                p = end + 1
            elif t[p] == "$":
                sub = _Parser(t, p, self.vars).reference()
                if sub is None:
                    raise TemplateError("bad reference in argument list")
                args.append(sub[0])
                p = sub[1]
            else:
                m = re.compile(r"-?\d+").match(t, p)
                if not m:
                    raise TemplateError(f"unsupported argument at {t[p : p + 20]!r}")
                args.append(int(m.group(0)))
                p = m.end()
            while p < len(t) and t[p].isspace():
                p += 1
            if p < len(t) and t[p] == ",":
                p += 1
