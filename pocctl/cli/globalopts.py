"""Global options wherever they are written: `pocctl up --local` as `pocctl --local up`.

The AWS CLI takes --profile and --region after the command; people type pocctl's the same way.
Before click parses, the root group's own options (and their values) found after the
subcommand's name are moved in front of it. What stays put: anything after `--`, the values of
the subcommand's own options (`test-order --body --local` sends the body "--local"), and an
option the subcommand defines itself under the same name (its meaning wins there).

`--local` takes an optional port (`--local 4567`). click's optional-value options take the next
word whatever it is (`--local up` would read "up" as the port), so every `--local` is written
out here as `--local=PORT` or `--local=` (no port: the default).
"""

from __future__ import annotations

import click

LOCAL = "--local"


def _options(command: click.Command) -> dict[str, click.Option]:
    found: dict[str, click.Option] = {}
    for p in command.params:
        if isinstance(p, click.Option):
            for name in (*p.opts, *p.secondary_opts):
                found[name] = p
    return found


def _takes_value(option: click.Option, following: str) -> bool:
    if option.is_flag or option.count or option.nargs <= 0:
        return False
    # An option whose value may be left out (click's flag_value) takes no option as its value.
    return not (getattr(option, "_flag_needs_value", False) and _is_option(following))


def _one(
    args: list[str], i: int, options: dict[str, click.Option], *, root: bool = False
) -> tuple[list[str], int]:
    """The option written at ``args[i]`` as tokens (with its value), and the index after it;
    ``root``: one of the group's own."""
    word = args[i]
    name, eq, _ = word.partition("=")
    option = options[name]
    following = args[i + 1] if i + 1 < len(args) else ""
    if root and name == LOCAL and not eq:
        if following.isdigit():
            return [f"{LOCAL}={following}"], i + 2
        return [f"{LOCAL}="], i + 1
    if not eq and i + 1 < len(args) and _takes_value(option, following):
        return [word, args[i + 1]], i + 2
    return [word], i + 1


def _is_option(word: str) -> bool:
    return word.startswith("-") and len(word) > 1 and word != "--"


def hoist(group: click.Group, ctx: click.Context, args: list[str]) -> list[str]:
    """``args`` with the group's options that follow the subcommand moved before it."""
    own = _options(group)
    before: list[str] = []
    i = 0
    while i < len(args) and _is_option(args[i]):
        if args[i].partition("=")[0] in own:
            taken, i = _one(args, i, own, root=True)
        else:  # not ours (--help, --version, a typo): click says what it is
            taken, i = [args[i]], i + 1
        before += taken
    if i >= len(args) or args[i] == "--":
        return before + args[i:]
    name, rest = args[i], args[i + 1 :]
    command = group.get_command(ctx, name)
    if command is None or isinstance(command, click.Group):
        return [*before, name, *rest]
    theirs = _options(command)
    moved: list[str] = []
    kept: list[str] = []
    j = 0
    while j < len(rest):
        word = rest[j]
        key = word.partition("=")[0]
        if word == "--":
            kept += rest[j:]
            break
        if _is_option(word) and key in theirs:
            taken, j = _one(rest, j, theirs)
            kept += taken
        elif _is_option(word) and key in own:
            taken, j = _one(rest, j, own, root=True)
            moved += taken
        else:
            kept.append(word)
            j += 1
    return [*before, *moved, name, *kept]
