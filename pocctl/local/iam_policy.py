"""IAM policy documents, evaluated as AWS evaluates them (the part the embedded AWS needs).

Sources (AWS IAM User Guide):
- "Policy evaluation logic" and "Policy evaluation for requests within a single account",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html,
  .../reference_policies_evaluation-logic_policy-eval-basics.html: an explicit deny in any policy
  wins; otherwise, in the same account, the request is allowed if EITHER an identity-based or a
  resource-based policy allows it; otherwise it is implicitly denied.
- "IAM JSON policy elements: Action / NotAction / Resource / NotResource",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html (and
  _notaction, _resource, _notresource): action names are case-insensitive; ``*`` matches any run
  of characters and ``?`` any one character, in actions and in resource ARNs (ARNs are
  case-sensitive).
- "IAM JSON policy elements: Condition operators",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html:
  a key absent from the request context makes a condition false, a negated one (StringNotLike,
  ArnNotLike, ...) true; ``...IfExists`` is true when the key is absent; ``Null`` tests presence.
  "Conditions with multiple context keys or values",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html:
  operators and keys AND together; the values of one key OR together (NOR for negated operators).
- "AWS JSON policy elements: Principal",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html:
  a role ARN as principal stands for every session of that role; an assumed-role session ARN for
  that one session; ``"*"`` / ``{"AWS": "*"}`` for everyone.

Never more permissive than AWS: what this module cannot evaluate (a condition operator or a
context key it does not know) makes an Allow statement not apply and a Deny statement apply.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

logger = logging.getLogger("pocctl.local")

ALLOW, DENY = "Allow", "Deny"


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """``*`` any run of characters, ``?`` any one; everything else literal."""
    parts = ("." if ch == "?" else ".*" if ch == "*" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def _arn_matches(pattern: str, value: str) -> bool:
    """ArnLike/ArnEquals and Resource: each of the six colon-delimited parts matched on its own
    (a ``*`` in one part does not swallow colons of the next), the last part taking the rest
    ("Amazon Resource Name (ARN) condition operators", condition operators page)."""
    p_parts, v_parts = pattern.split(":", 5), value.split(":", 5)
    if len(p_parts) != 6 or len(v_parts) != 6:
        return matches(pattern, value)
    return all(matches(p, v) for p, v in zip(p_parts, v_parts, strict=True))


def resource_matches(pattern: str, resource: str) -> bool:
    if pattern == "*":
        return True
    return _arn_matches(pattern, resource) if pattern.startswith("arn:") else False


def _arn_regex(pattern: str) -> str:
    """``pattern`` as a regex matching what _arn_matches matches: a wildcard in one of the
    first five segments stays within it, the sixth takes the rest."""
    parts = pattern.split(":", 5)
    if len(parts) != 6:
        return _wildcard(pattern, False).pattern
    inner = [
        "".join("[^:]" if c == "?" else "[^:]*" if c == "*" else re.escape(c) for c in part)
        for part in parts[:5]
    ]
    return ":".join([*inner, _wildcard(parts[5], False).pattern])


@lru_cache(maxsize=4096)
def _any_action(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for a statement's actions (per request: one match instead of one per pattern)."""
    joined = "|".join(_wildcard(p, True).pattern for p in patterns) or "(?!)"
    return re.compile(f"(?:{joined})", re.IGNORECASE | re.DOTALL)


@lru_cache(maxsize=4096)
def _any_resource(patterns: tuple[str, ...]) -> re.Pattern[str]:
    if "*" in patterns:
        return re.compile(".*", re.DOTALL)
    arns = [_arn_regex(p) for p in patterns if p.startswith("arn:")]
    return re.compile(f"(?:{'|'.join(arns) or '(?!)'})", re.DOTALL)


def load_document(document: Any) -> dict[str, Any]:
    """A policy document as IAM stores it: a dict, JSON, or URL-encoded JSON."""
    if isinstance(document, dict):
        return document
    text = str(document)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = json.loads(unquote(text))
    if not isinstance(parsed, dict):
        raise ValueError("a policy document is a JSON object")
    return parsed


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


# -- the request -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """The principal of a request signed with a role session's credentials."""

    account: str
    role_arn: str  # arn:aws:iam::ACCOUNT:role/PATH/NAME
    session_name: str
    role_id: str = ""

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[-1]

    @property
    def arn(self) -> str:
        """arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION (what AWS's messages name)."""
        partition = self.role_arn.split(":", 2)[1]
        return (
            f"arn:{partition}:sts::{self.account}:assumed-role/{self.role_name}/{self.session_name}"
        )

    def context(self) -> dict[str, list[str]]:
        """The global condition keys AWS sets for a role session
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html)."""
        keys = {
            "aws:principalarn": [self.role_arn],
            "aws:principalaccount": [self.account],
            "aws:principaltype": ["AssumedRole"],
            "aws:securetransport": ["false"],  # the embedded AWS speaks plain HTTP
        }
        if self.role_id:
            keys["aws:userid"] = [f"{self.role_id}:{self.session_name}"]
        return keys


@dataclass(frozen=True)
class Request:
    """One authorization question: may ``caller`` do ``action`` on ``resource``?"""

    action: str  # "dynamodb:PutItem"
    resource: str  # an ARN, or "*" for actions without a resource type
    caller: Caller
    context: Mapping[str, list[str]] = field(default_factory=dict)  # keys lower-cased

    def value(self, key: str) -> list[str] | None:
        return self.context.get(key.lower())


# -- conditions ------------------------------------------------------------------------------


class Unsupported(Exception):
    """A policy element this evaluator does not know how to evaluate."""


def _string_op(name: str) -> Any:
    ignore_case = "IgnoreCase" in name
    like = "Like" in name

    def test(policy_value: str, actual: str) -> bool:
        if like:
            return matches(policy_value, actual)
        if ignore_case:
            return policy_value.lower() == actual.lower()
        return policy_value == actual

    return test


def _numeric(compare: Any) -> Any:
    def test(policy_value: str, actual: str) -> bool:
        try:
            return bool(compare(float(actual), float(policy_value)))
        except ValueError:
            return False

    return test


_POSITIVE = {
    "StringEquals": _string_op("StringEquals"),
    "StringEqualsIgnoreCase": _string_op("StringEqualsIgnoreCase"),
    "StringLike": _string_op("StringLike"),
    "ArnEquals": _arn_matches,
    "ArnLike": _arn_matches,
    "Bool": lambda p, a: str(p).lower() == str(a).lower(),
    "NumericEquals": _numeric(lambda a, p: a == p),
    "NumericLessThan": _numeric(lambda a, p: a < p),
    "NumericLessThanEquals": _numeric(lambda a, p: a <= p),
    "NumericGreaterThan": _numeric(lambda a, p: a > p),
    "NumericGreaterThanEquals": _numeric(lambda a, p: a >= p),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}


def _condition_holds(operator: str, key: str, wanted: list[Any], req: Request) -> bool:
    actual = req.value(key)
    if operator == "Null":
        # "true": the key must be absent; "false": present.
        return any((str(w).lower() == "true") == (actual is None) for w in wanted)
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    if ":" in base:  # ForAllValues: / ForAnyValue: set operators
        raise Unsupported(f"condition operator {operator}")
    negated = base in _NEGATED
    test = _POSITIVE.get(_NEGATED.get(base, base))
    if test is None:
        raise Unsupported(f"condition operator {operator}")
    if actual is None:
        return if_exists or negated
    hit = any(test(str(w), a) for w in wanted for a in actual)
    return not hit if negated else hit


def conditions_hold(condition: Mapping[str, Any], req: Request) -> bool:
    for operator, keys in condition.items():
        if not isinstance(keys, Mapping):
            raise Unsupported(f"condition {operator} is not an object")
        for key, wanted in keys.items():
            if not _condition_holds(operator, key, _as_list(wanted), req):
                return False
    return True


# -- statements ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    principal: Any = None  # resource policies only
    not_principal: Any = None
    condition: Mapping[str, Any] | None = None
    sid: str = ""

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Statement:
        effect = raw.get("Effect")
        if effect not in (ALLOW, DENY):
            raise ValueError(f"statement Effect must be Allow or Deny, not {effect!r}")
        has = raw.__contains__
        return cls(
            effect=str(effect),
            actions=tuple(str(a) for a in _as_list(raw.get("Action"))),
            not_actions=tuple(str(a) for a in _as_list(raw["NotAction"]))
            if has("NotAction")
            else None,
            resources=tuple(str(r) for r in _as_list(raw["Resource"])) if has("Resource") else None,
            not_resources=tuple(str(r) for r in _as_list(raw["NotResource"]))
            if has("NotResource")
            else None,
            principal=raw.get("Principal"),
            not_principal=raw.get("NotPrincipal"),
            condition=raw.get("Condition") or None,
            sid=str(raw.get("Sid") or ""),
        )

    def covers_action(self, action: str) -> bool:
        if self.not_actions is not None:
            return _any_action(self.not_actions).fullmatch(action) is None
        return _any_action(self.actions).fullmatch(action) is not None

    def covers_resource(self, resource: str) -> bool:
        if self.not_resources is not None:
            return _any_resource(self.not_resources).fullmatch(resource) is None
        if self.resources is None:
            return False  # a statement of a permissions policy without Resource grants nothing
        return _any_resource(self.resources).fullmatch(resource) is not None

    def applies(self, req: Request, *, resource_policy: bool = False) -> bool:
        """Whether this statement speaks to ``req`` (its effect then counts)."""
        if not self.covers_action(req.action) or not self.covers_resource(req.resource):
            return False
        if resource_policy and not self._names(req.caller):
            return False
        if not self.condition:
            return True
        try:
            return conditions_hold(self.condition, req)
        except Unsupported as exc:
            # Never more permissive than AWS: an unknown condition grants nothing, denies all.
            logger.warning(
                "embedded AWS: IAM cannot evaluate %s (statement %r): treated as %s",
                exc,
                self.sid,
                "applying" if self.effect == DENY else "not applying",
            )
            return self.effect == DENY

    def _names(self, caller: Caller) -> bool:
        """Whether the Principal (or NotPrincipal) of a resource policy covers ``caller``."""
        if self.not_principal is not None:
            if self.effect == ALLOW:
                return False  # Allow with NotPrincipal: AWS advises against; grant nothing here
            return not _principal_names(self.not_principal, caller, for_deny=False)
        return _principal_names(self.principal, caller, for_deny=self.effect == DENY)


def _principal_names(principal: Any, caller: Caller, *, for_deny: bool) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    for value in _as_list(principal.get("AWS")):
        value = str(value)
        if value == "*" or value in (caller.role_arn, caller.arn):
            return True
        # The account (ID or root ARN) delegates to the account's identity policies: it grants
        # the role nothing by itself, but a Deny on the account covers all its principals.
        if for_deny and value in (caller.account, f"arn:aws:iam::{caller.account}:root"):
            return True
    return False


@dataclass(frozen=True)
class Policy:
    """One policy document's statements (``name`` says where it came from, for messages)."""

    name: str
    statements: tuple[Statement, ...]

    @classmethod
    def parse(cls, name: str, document: Any) -> Policy:
        doc = load_document(document)
        return cls(name, tuple(Statement.parse(s) for s in _as_list(doc.get("Statement"))))


def decide(
    policies: Iterable[Policy], req: Request, *, resource_policy: bool = False
) -> str | None:
    """DENY if any statement denies, ALLOW if one allows and none denies, else None."""
    allowed = False
    for policy in policies:
        for st in policy.statements:
            if st.applies(req, resource_policy=resource_policy):
                if st.effect == DENY:
                    return DENY
                allowed = True
    return ALLOW if allowed else None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # None (allowed), "implicit", "identity" or "resource": where the refusal comes from.
    denied_by: str | None = None


def evaluate(identity: Iterable[Policy], req: Request, resource: Iterable[Policy] = ()) -> Decision:
    """Same-account evaluation (policy-eval-basics, cited above): deny wins; otherwise an allow
    from either the identity's policies or the resource's policy suffices."""
    by_identity = decide(identity, req)
    if by_identity == DENY:
        return Decision(False, "identity")
    by_resource = decide(resource, req, resource_policy=True)
    if by_resource == DENY:
        return Decision(False, "resource")
    if ALLOW in (by_identity, by_resource):
        return Decision(True)
    return Decision(False, "implicit")
