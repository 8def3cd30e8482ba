"""One App per run: options, config, AWS session, state and terminal, handed to every command."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocctl.cli.log import route_logging
from pocctl.cli.terminal import Abort, Terminal

if TYPE_CHECKING:
    from pocctl.aws import Aws
    from pocctl.config import Config
    from pocctl.engine import Engine, Reporter, Step
    from pocctl.resources.base import Context

LOCAL_PORT = 4566
LOCAL_ENDPOINT = f"http://127.0.0.1:{LOCAL_PORT}"
EXIT_AWS, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
DEFAULT_STATE = Path(".pocctl/state.json")


@dataclass
class Options:
    config: Path = Path("config.yaml")
    config_given: bool = False
    state: Path = DEFAULT_STATE
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    local: bool = False
    local_port: int | None = None  # `--local 4567`; None: POCCTL_LOCAL_PORT, else 4566
    verbose: bool = False
    quiet: bool = False


class App:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.terminal = Terminal(verbose=options.verbose, quiet=options.quiet)
        self.terminal.prog = self.cmd()
        route_logging(self.terminal)
        self._announced = False
        self.changed: list[Step] = []  # what this run's engine made, changed or deleted

    # -- commands to paste ------------------------------------------------------------------------

    def global_args(self) -> list[str]:
        """The global options this run was given, as words to repeat in a command it suggests.
        Not -v/-q: they change what is shown, not where (and `-q … -v …` would not parse)."""
        o = self.options
        words: list[str] = []
        if o.config_given:
            words += ["--config", str(o.config)]
        if o.state != DEFAULT_STATE:
            words += ["--state", str(o.state)]
        if o.local:
            words += ["--local"] + ([str(o.local_port)] if o.local_port else [])
        for flag, value in (
            ("--endpoint-url", o.endpoint_url),
            ("--profile", o.profile),
            ("--region", o.region),
        ):
            if value:
                words += [flag, value]
        return words

    def cmd(self, *words: str) -> str:
        """A pocctl command line that reaches what this run reaches, to paste:
        ``app.cmd("up")`` → "pocctl --local --region eu-west-1 up"."""
        import shlex

        return shlex.join(["pocctl", *self.global_args(), *words])

    def announce(self) -> None:
        """The first line of a command that changes AWS: which account, region, and profile or
        endpoint; once per run."""
        if self._announced:
            return
        self._announced = True
        with self.guard():
            account, region = self.ctx.account, self.ctx.region
        self.terminal.info(f"account {account} · region {region} · {self._via()}")

    def _via(self) -> str:
        """The endpoint, or on AWS where the credentials come from: the profile, or the
        environment's keys (which no profile name would describe)."""
        if self.endpoint_url:
            return f"endpoint {self.endpoint_url}"
        session = self.aws.session
        creds = session.get_credentials()
        if not self.options.profile and creds is not None and creds.method == "env":
            return "credentials from the environment (AWS_ACCESS_KEY_ID)"
        return f"profile {session.profile_name or 'default'}"

    def confirm(self, question: str) -> bool:
        """A yes/no question (default no); Ctrl-C there stops the run as anywhere else (130),
        not with click's "Aborted!"."""
        import click

        try:
            return click.confirm(question, default=False)
        except click.Abort:
            raise KeyboardInterrupt from None

    # -- Ctrl-C -----------------------------------------------------------------------------------

    def interrupted(self) -> None:
        """After Ctrl-C: no spinner left; one line saying what this run changed and how to
        finish or undo it (the state file is written after each resource, so nothing is lost)."""
        from pocctl.engine import CREATE, DELETE, UPDATE

        term = self.terminal
        term.stop_spinner()
        made = [s for s in self.changed if s.action in (CREATE, UPDATE)]
        removed = [s for s in self.changed if s.action == DELETE]
        if made:
            what = _names(made)
            said = (
                f"stopped: made {what}; `{self.cmd('up')}` finishes, "
                f"`{self.cmd('down')}` removes {'it' if len(made) == 1 else 'them'}"
            )
        elif removed:
            said = (
                f"stopped: deleted {_names(removed)}; `{self.cmd('down')}` finishes, "
                f"`{self.cmd('up')}` makes the stack again"
            )
        else:
            said = "stopped: nothing was changed"
        term.err.print()  # off the line ^C was echoed on
        term.err.print(f"[yellow]{_escape(said)}[/]")

    # -- configuration ----------------------------------------------------------------------------

    @cached_property
    def cfg(self) -> Config:
        from pocctl.config import ConfigError, load

        try:
            cfg = load(self.options.config, required=self.options.config_given)
        except ConfigError as e:
            self.terminal.abort(str(e), code=EXIT_USAGE)
        for w in cfg.warnings():
            self.terminal.warn(f"{self.options.config.name}: {w}")
        return cfg

    @property
    def endpoint_url(self) -> str | None:
        if self.options.endpoint_url:
            return self.options.endpoint_url
        if self.options.local:
            if self.options.local_port:
                return f"http://127.0.0.1:{self.options.local_port}"
            if os.environ.get("POCCTL_LOCAL_ENDPOINT"):
                return os.environ["POCCTL_LOCAL_ENDPOINT"]
            return f"http://127.0.0.1:{local_port_from_env()}"
        return os.environ.get("AWS_ENDPOINT_URL") or None

    @cached_property
    def aws(self) -> Aws:
        from pocctl.aws import Aws

        creds = None
        region = self.options.region or self.cfg.region
        if self.options.local:
            # The embedded AWS's administrator key (it refuses keys it does not know); never
            # send a real key to it.
            creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
            region = region or "us-east-1"
        try:
            session = Aws(
                region=region,
                profile=None if self.options.local else self.options.profile,
                endpoint_url=self.endpoint_url,
                credentials=creds,
            )
        except Exception as e:  # botocore's ProfileNotFound and friends
            self.terminal.abort(str(e), hint="check --profile and ~/.aws/config", code=EXIT_USAGE)
        if not session.region:
            self.terminal.abort(
                "no AWS region configured",
                hint="set region in config.yaml, pass --region, or export AWS_REGION",
                code=EXIT_USAGE,
            )
        return session

    @cached_property
    def ctx(self) -> Context:
        from pocctl.resources.base import Context, Target

        return Context(
            Target(self.cfg, self.aws),
            on_wait=self.terminal.waiting,
            on_retry=self.terminal.retrying,
        )

    # -- running ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def engine(self, *, lock: bool = True, reporter: Reporter | None = None) -> Iterator[Engine]:
        """The engine with the state file loaded (and locked when this run may write it);
        ``reporter``: how it shows progress (by default, task by task on the terminal)."""
        from pocctl.cli.progress import ProgressReporter
        from pocctl.engine import Engine
        from pocctl.state import State, StateError, locked

        with self.guard():
            cfg, ctx = self.cfg, self.ctx  # config errors first: no AWS call before they pass
            del cfg
            lock_cm = locked(self.options.state) if lock else contextlib.nullcontext()
            try:
                with lock_cm:
                    state = State.load(self.options.state)
                    if lock:  # this run may change AWS: say where, first
                        self.announce()
                    state.check_target(ctx.account, ctx.region, self.endpoint_url)
                    shown = reporter or ProgressReporter(self.terminal)
                    yield Engine(ctx, state, reporter=_Recording(shown, self.changed))
            except StateError as e:
                self.terminal.abort(str(e), code=EXIT_USAGE)

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Turn expected failures into one line and an exit code; tracebacks only with -v."""
        from pocctl import aws
        from pocctl.engine import StepFailed

        try:
            yield
        except (Abort, KeyboardInterrupt):
            raise
        except StepFailed as e:
            self._verbose_traceback()
            self.terminal.abort(str(e), hint=_hint(e.cause), code=EXIT_AWS)
        except aws.AwsError as e:
            self._verbose_traceback()
            self.terminal.abort(str(e), hint=e.hint, code=EXIT_AWS)
        except Exception as e:
            message, hint, code = _describe(e)
            if message is None:
                raise
            self._verbose_traceback()
            self.terminal.abort(message, hint=hint, code=code)

    def _verbose_traceback(self) -> None:
        if self.options.verbose:
            self.terminal.err.print_exception()


class _Recording:
    """A Reporter that also notes each step done (for what Ctrl-C says was made)."""

    def __init__(self, inner: Reporter, into: list[Step]) -> None:
        self._inner, self._into = inner, into

    def step_done(self, step: Step) -> None:
        self._into.append(step)
        self._inner.step_done(step)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def _names(steps: list[Step]) -> str:
    """ "the roles A and B, the table orders": every resource, by kind in the order made."""
    kinds: dict[str, list[str]] = {}
    for s in steps:
        kinds.setdefault(s.resource.noun, []).append(s.resource.name)
    return _and(
        [
            f"the {noun} {names[0]}" if len(names) == 1 else f"the {_plural(noun)} {_and(names)}"
            for noun, names in kinds.items()
        ]
    )


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _plural(noun: str) -> str:
    return noun[:-1] + "ies" if noun.endswith("y") else noun + "s"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def local_port_from_env() -> int:
    """POCCTL_LOCAL_PORT, or 4566: the port `pocctl local` and `--local` agree on."""
    value = os.environ.get("POCCTL_LOCAL_PORT", "")
    return int(value) if value.isdigit() and 0 < int(value) < 65536 else LOCAL_PORT


def _unreachable_hint(exc: BaseException) -> str:
    from urllib.parse import urlsplit

    from pocctl import aws

    url = str(getattr(exc, "kwargs", {}).get("endpoint_url") or "")
    if aws.is_loopback(url) and aws.refused(exc):
        port = urlsplit(url).port or 80
        return (
            f"nothing listens on port {port}: is `pocctl local` running? "
            f"`pocctl local --port {port}` starts it there (or pass --local PORT for its port)"
        )
    return "is the endpoint running? (`pocctl local` starts one)"


def _hint(exc: BaseException) -> str:
    from pocctl import aws

    if isinstance(exc, aws.AwsError):
        return exc.hint
    if aws.iam_propagation(exc):
        return (
            f"IAM had not propagated after {aws.IAM_PROPAGATION_TIMEOUT:.0f} s; check that the "
            "role exists and trusts lambda.amazonaws.com, then run the command again"
        )
    return _describe(exc)[1]


def _describe(exc: BaseException) -> tuple[str | None, str, int]:
    """(message, hint, exit code) for errors botocore raises; message None when unknown."""
    from botocore import exceptions as bx

    from pocctl import aws

    if isinstance(exc, bx.NoCredentialsError):
        return (
            "no AWS credentials found",
            "configure a profile (aws configure) and pass --profile, or use --local",
            EXIT_USAGE,
        )
    if isinstance(exc, bx.ProfileNotFound):
        return str(exc), "check --profile and ~/.aws/config", EXIT_USAGE
    if isinstance(exc, bx.EndpointConnectionError):
        return str(exc), _unreachable_hint(exc), EXIT_AWS
    if isinstance(exc, bx.WaiterError):
        return f"gave up waiting: {exc}", "look at the resource in the console", EXIT_AWS
    if isinstance(exc, bx.ClientError):
        code = aws.error_code(exc)
        hint = "check your credentials and their permissions" if "Denied" in code else ""
        if code in ("InvalidClientTokenId", "UnrecognizedClientException"):
            hint = (
                "the endpoint does not know this access key: check --profile "
                "(the embedded AWS knows only `testing`: use --local or AWS_ACCESS_KEY_ID=testing)"
            )
        return f"AWS said {code}: {aws.error_message(exc)}", hint, EXIT_AWS
    if isinstance(exc, bx.BotoCoreError):
        return str(exc), "", EXIT_AWS
    return None, "", EXIT_AWS


def json_mode(ctx: Any, param: Any, value: bool) -> bool:
    """``--json``'s callback: stdout is data from here on, so progress lines go to stderr."""
    if value and isinstance(ctx.obj, App):
        ctx.obj.terminal.data_on_stdout = True
    return value
