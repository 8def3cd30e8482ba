"""Whether a handler's module defines its function, read from the source: never imported.

Importing the user's module would run its top level (boto3 clients, network calls, the
dependencies it needs from requirements.txt) before any AWS call is allowed, so the module is
parsed with ``ast`` and its module-level statements are read instead. A name counts as defined
at module level when the module binds it in one of these ways (including inside a module-level
``if``/``try``/``with`` block, which runs at import too):

- ``def name(...)`` (an ``async def`` is refused: the Python runtime calls the handler and does
  not await it, so the invocation would return an un-awaited coroutine);
- an assignment ``name = ...`` (``handler = other_function``, ``handler = make_handler()``, and
  annotated or tuple/list-unpacking assignments): what a call returns cannot be known unrun;
- an import binding it: ``from m import f as name``, ``from m import name``, ``import m as name``;
- ``from m import *``: whatever m exports might be it, so a module with a star import is not
  refused (pocctl cannot see into m without importing it).

A class named like the handler is not accepted: Lambda would call it with (event, context) and
return the new instance, which is not JSON.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

_BLOCKS = (ast.If, ast.Try, ast.With)


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module-level statements, with those of module-level if/try/with blocks."""
    for node in body:
        yield node
        if isinstance(node, _BLOCKS):
            blocks = [node.body, getattr(node, "orelse", [])]
            if isinstance(node, ast.Try):
                blocks += [node.finalbody, *(h.body for h in node.handlers)]
            for block in blocks:
                yield from _statements(block)
        elif sys.version_info >= (3, 11) and isinstance(node, ast.TryStar):
            yield from _statements([*node.body, *node.orelse, *node.finalbody])


def _targets(node: ast.stmt) -> Iterator[str]:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets = [node.target]
    while targets:
        t = targets.pop()
        if isinstance(t, ast.Name):
            yield t.id
        elif isinstance(t, (ast.Tuple, ast.List)):
            targets.extend(t.elts)
        elif isinstance(t, ast.Starred):
            targets.append(t.value)


def _bindings(tree: ast.Module) -> tuple[dict[str, str], bool]:
    """Each module-level name with how it is bound, and whether there is a star import."""
    names: dict[str, str] = {}
    star = False
    for node in _statements(tree.body):
        if isinstance(node, ast.FunctionDef):
            names[node.name] = "def"
        elif isinstance(node, ast.AsyncFunctionDef):
            names[node.name] = "async def"
        elif isinstance(node, ast.ClassDef):
            names[node.name] = "class"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    star = True
                else:
                    names[alias.asname or alias.name.split(".")[0]] = "import"
        else:
            for name in _targets(node):
                names[name] = "assignment"
    return names, star


def _functions(names: dict[str, str]) -> list[str]:
    return sorted(n for n, how in names.items() if how == "def" and not n.startswith("_"))


def check_defines(source: Path, function: str, runtime: str) -> str | None:
    """None when ``source`` defines ``function`` at module level (see the module's docstring),
    else what is wrong, for a config error. ``runtime`` is the function's runtime (python3.X):
    a file that only a newer Python can parse is not refused, since this Python cannot judge it.
    """
    try:
        text = source.read_bytes()
    except OSError as e:
        return f"{source.name} cannot be read: {e.strerror or e}"
    try:
        tree = ast.parse(text, filename=str(source))
    except (SyntaxError, ValueError) as e:
        wanted = tuple(int(p) for p in runtime.removeprefix("python").split("."))
        if wanted > sys.version_info[:2]:
            return None  # maybe new syntax for that runtime: Lambda will tell at Init
        line = f" line {e.lineno}" if isinstance(e, SyntaxError) and e.lineno else ""
        msg = e.msg if isinstance(e, SyntaxError) else str(e)
        return f"{source.name}{line}: {msg} (Lambda could not import it)"
    names, star = _bindings(tree)
    how = names.get(function)
    if how in ("def", "assignment", "import"):
        return None
    if how == "async def":
        return (
            f"{function} in {source.name} is an async def: Lambda's Python runtime calls the "
            "handler without awaiting it; make it a plain def"
        )
    if how == "class":
        return f"{function} in {source.name} is a class, not a function"
    if star:
        return None
    found = _functions(names)
    others = f" (it defines: {', '.join(found[:8])})" if found else " (it defines no function)"
    return f"{source.name} defines no function {function} at module level{others}"
