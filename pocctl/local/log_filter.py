"""CloudWatch Logs filter patterns on the embedded AWS: never more permissive than AWS.

moto 5.2.5 (moto/logs/utils.py ``EventMessageFilter``) understands a pattern that starts with a
letter (each space-separated word must occur) or with a quote; any other pattern, such as
``?ERROR ?WARN``, ``-INFO``, ``%regex%`` or ``{ $.level = "ERROR" }``, matches EVERY event,
and ``ERROR -INFO`` asks for the text "-INFO". This module implements what AWS documents for
unstructured events ("Filter pattern syntax for metric filters, subscription filters, filter log
events, and Live Tail",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html):

- terms separated by spaces: every term must occur (case sensitive); a term in double quotes is
  an exact phrase;
- ``?term``: at least one of the ``?`` terms must occur;
- ``-term``: the event must not contain the term;
- ``%regex%``: a regular expression, with AWS's restricted syntax (letters, digits, the symbols
  ``:_#=@/;,-`` and the operators ``^$?[]{}|\\*+.``; no parentheses).

JSON patterns (``{ $.field = value }``) and space-delimited ones (``[a, b, ...]``) are refused
with InvalidParameterException saying the embedded AWS does not implement them: refusing is
stricter than AWS, while matching every event, as moto does, would be looser.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Callable
from typing import Any

_REGEX_ALLOWED = re.compile(r"[A-Za-z0-9:_#=@/;,\-^$?\[\]{}|\\*+. ]*")

Matcher = Callable[[str], bool]


class UnsupportedPattern(ValueError):
    """A pattern this module will not guess at; the message says why."""


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Matcher:
    """A predicate over an event's message; UnsupportedPattern for what is not implemented."""
    text = pattern.strip()
    if not text:
        return lambda message: True
    if text[0] in "{[":
        kind = "JSON" if text[0] == "{" else "space-delimited"
        raise UnsupportedPattern(
            f"the embedded AWS does not implement {kind} filter patterns ({pattern!r}); "
            'use terms, "quoted phrases", ?alternatives, -exclusions or %regex%'
        )
    if len(text) >= 2 and text[0] == "%" and text[-1] == "%":
        return _regex(text[1:-1])
    return _terms(text)


def _regex(body: str) -> Matcher:
    if "(" in body or ")" in body or not _REGEX_ALLOWED.fullmatch(body):
        raise UnsupportedPattern(f"Invalid regex filter pattern: %{body}%")
    try:
        rx = re.compile(body)
    except re.error as e:
        raise UnsupportedPattern(f"Invalid regex filter pattern: %{body}%: {e}") from None
    return lambda message: rx.search(message) is not None


def _terms(text: str) -> Matcher:
    try:
        words = shlex.split(text, posix=True)
    except ValueError:
        raise UnsupportedPattern(f"Invalid filter pattern: unbalanced quotes in {text!r}") from None
    required: list[str] = []
    anyof: list[str] = []
    excluded: list[str] = []
    for word in words:
        if word.startswith("?") and len(word) > 1:
            anyof.append(word[1:])
        elif word.startswith("-") and len(word) > 1:
            excluded.append(word[1:])
        else:
            required.append(word)

    def matches(message: str) -> bool:
        return (
            all(t in message for t in required)
            and not any(t in message for t in excluded)
            and (not anyof or any(t in message for t in anyof))
        )

    return matches


def event_message_filter_init(original: Any) -> Any:
    """moto's ``EventMessageFilter.__init__``: its ``filter_type`` matches as AWS does."""

    class _Compiled:
        def __init__(self, matcher: Matcher) -> None:
            self.matches = matcher

    def __init__(self: Any, pattern: str) -> None:
        from moto.logs.exceptions import InvalidParameterException

        try:
            self.filter_type = _Compiled(compile_pattern(pattern or ""))
        except UnsupportedPattern as e:
            raise InvalidParameterException(msg=str(e)) from None

    return __init__
