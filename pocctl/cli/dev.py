"""`pocctl dev`: watch the handlers and config.yaml; on a save, redeploy what changed.

A handler's save runs the engine's convergence for its task alone (Task 4 or 7): the plan finds
the new CodeSha256 and sends one UpdateFunctionCode; everything else is unchanged. A save of
config.yaml runs `up`'s whole convergence. The same engine as `pocctl up`, so nothing is changed
that `up` would not change.

File events come from watchfiles (inotify on Linux, FSEvents on macOS, polling only where the OS
gives no events), not from polling mtimes ourselves: a save is seen within milliseconds instead
of a poll interval, nothing is read while nothing changes, and an editor's save burst (write a
temporary file, rename it over the original, chmod) arrives as one batch because watchfiles
groups events until the folder has been quiet for STEP_MS.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pocctl.cli.app import App
from pocctl.cli.terminal import Abort, escape

if TYPE_CHECKING:
    from pocctl.lab import Task

# A batch ends once no event came for this long (an editor's save burst takes a few ms); the
# deploy starts then, well inside the 1 s a saved handler has to be live on the embedded AWS.
STEP_MS = 100
# ... and a batch never grows past this (a checkout touching many files still deploys).
DEBOUNCE_MS = 1600
READY_MS = 200
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Watched:
    """What `dev` watches: each function's code (a file or a folder) and the config file."""

    code: dict[str, Path]  # "lambda1"/"lambda2" → its code path
    config: Path

    @property
    def roots(self) -> list[Path]:
        """The folders to watch: a file is watched through its folder (an editor that saves
        by renaming replaces the file, and a watch on the old file would see nothing more)."""
        folders = {(p if p.is_dir() else p.parent).resolve() for p in self.code.values()}
        folders.add(self.config.parent.resolve())
        # A folder inside another watched one is watched already (recursively).
        return sorted(f for f in folders if not any(o in f.parents for o in folders))

    def which(self, changed: Path) -> set[str]:
        """The functions whose code ``changed`` is part of."""
        out = set()
        for which, code in self.code.items():
            code = code.resolve()
            if changed == code or (code.is_dir() and code in changed.parents):
                out.add(which)
        return out


def watched(app: App) -> Watched:
    from pocctl.invoke import WHICH, function_code

    return Watched({w: function_code(app.cfg, w).path for w in WHICH}, app.options.config.resolve())


def _stamp() -> str:
    return time.strftime("%H:%M:%S")


def _forget(app: App, *, config: bool) -> None:
    """The next deploy reads the files again: the config, the zips (cached per run in the
    context) and, after a config change, the AWS session (the region may have changed)."""
    # The config is read again for a code change too: loading it validates each function's
    # code (its module and handler function), and a bad save is said before any AWS call.
    for name in ("cfg", "ctx", "aws") if config else ("cfg", "ctx"):
        app.__dict__.pop(name, None)


def _syntax_errors(paths: list[Path]) -> list[str]:
    """A saved Python file that does not compile: said, and not deployed (it could not import)."""
    errors = []
    for p in paths:
        if p.suffix != ".py" or not p.is_file():
            continue
        try:
            compile(p.read_bytes(), str(p), "exec", dont_inherit=True)
        except SyntaxError as e:
            errors.append(f"{p.name}:{e.lineno}: {e.msg}")
        except ValueError as e:  # NUL bytes
            errors.append(f"{p.name}: {e}")
    return errors


def deploy(app: App, tasks: list[Task], why: str) -> bool:
    """Converge ``tasks``; say what changed with a timestamp. False when it failed (said)."""
    from pocctl.engine import CREATE, UPDATE

    term = app.terminal
    term.line(f"[dim]{_stamp()}[/] {escape(why)}")
    start = time.monotonic()
    try:
        with app.engine() as engine:
            steps = engine.up(tasks)
    except Abort:  # the guard said what went wrong; keep watching
        term.line(f"[dim]{_stamp()}[/] [red]not deployed[/]; still watching")
        return False
    changed = [s for s in steps if s.action in (CREATE, UPDATE)]
    names = ", ".join(f"{s.action}d {s.resource.name}" for s in changed) or "nothing to change"
    took = time.monotonic() - start
    term.line(f"[dim]{_stamp()}[/] [green]deployed[/]: {escape(names)} in {took:.1f} s")
    return True


def _batch(app: App, w: Watched, changes: set[Path]) -> bool:
    """Handle one batch of changed paths; True when the config changed (rewatch)."""
    from pocctl import lab
    from pocctl.config import ConfigError, load

    if w.config in changes:
        try:
            load(app.options.config, required=True)
        except ConfigError as e:
            app.terminal.line(f"[dim]{_stamp()}[/] [red]{escape(str(e))}[/]; still watching")
            return False
        _forget(app, config=True)
        deploy(app, list(lab.BUILD_TASKS), f"{w.config.name} changed: converging the stack")
        return True
    which = sorted({x for p in changes for x in w.which(p)})
    if not which:
        return False
    errors = _syntax_errors(sorted(changes))
    if errors:
        for e in errors:
            app.terminal.line(f"[dim]{_stamp()}[/] [red]syntax error[/] {escape(e)}")
        app.terminal.line(f"[dim]{_stamp()}[/] not deployed; still watching")
        return False
    _forget(app, config=False)
    shown = ", ".join(sorted(_relative(p) for p in changes))
    deploy(
        app, [lab.by_command(x) for x in which], f"{shown} changed: deploying {', '.join(which)}"
    )
    return False


def _relative(p: Path) -> str:
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _changes(w: Watched) -> Iterator[set[Path]]:
    import watchfiles

    def relevant(change: watchfiles.Change, path: str) -> bool:
        p = Path(path)
        return watchfiles.DefaultFilter()(change, path) and (p == w.config or bool(w.which(p)))

    # An empty batch comes each READY_MS without events: the first one says the OS watches
    # are in place, so "watching for changes" is printed only once a save would be seen.
    for batch in watchfiles.watch(
        *w.roots,
        watch_filter=relevant,
        debounce=DEBOUNCE_MS,
        step=STEP_MS,
        rust_timeout=READY_MS,
        yield_on_timeout=True,
    ):
        yield {Path(path) for _, path in batch}


def run_dev(app: App) -> None:
    from pocctl import lab

    term = app.terminal
    w = watched(app)
    for which in ("lambda1", "lambda2"):
        term.line(f"watching {escape(_relative(w.code[which]))} ({which})")
    term.line(f"watching {escape(_relative(w.config))} (the stack)")
    term.line("[dim]a save redeploys what changed; Ctrl-C stops[/]")
    try:
        deploy(app, [lab.by_command("lambda1"), lab.by_command("lambda2")], "first, the functions")
        while True:
            ready = False
            for changes in _changes(w):
                if not ready:
                    term.line(f"[dim]{_stamp()}[/] watching for changes")
                    ready = True
                if changes and _batch(app, w, changes):
                    break  # the config may name other code: watch anew
            with contextlib.suppress(Abort):  # a config broken again since: said; watch as before
                w = watched(app)
    except KeyboardInterrupt:
        term.stop_spinner()
        term.line(f"\n[dim]{_stamp()}[/] stopped watching; what was deployed stays deployed")
        raise Abort(EXIT_INTERRUPTED) from None


@click.command("dev")
@click.pass_obj
def dev_command(app: App) -> None:
    """Watch the handlers and config.yaml, and redeploy on every save.

    A saved handler is deployed with one UpdateFunctionCode (the engine's
    plan for its task: only what differs changes); a saved config.yaml runs
    `up`'s whole convergence. A file with a syntax error is said and not
    deployed. Each deploy is printed with the time. Ctrl-C stops it.

    \b
    Examples:
      pocctl --local dev        # in one terminal; edit handlers/store_order.py
      pocctl --local invoke lambda1
    """
    _ = app.cfg  # config errors first (exit 2), before any watching
    run_dev(app)


COMMANDS = [dev_command]
