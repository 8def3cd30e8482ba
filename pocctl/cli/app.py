"""One App per run: options, config, AWS session, state and terminal, handed to every command."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pocctl.cli.log import route_logging
from pocctl.cli.terminal import Abort, Terminal

if TYPE_CHECKING:
    from pocctl.aws import Aws
    from pocctl.config import Config
    from pocctl.engine import Engine, Reporter
    from pocctl.resources.base import Context

LOCAL_ENDPOINT = "http://127.0.0.1:4566"
EXIT_AWS, EXIT_USAGE = 1, 2


@dataclass
class Options:
    config: Path = Path("config.yaml")
    config_given: bool = False
    state: Path = Path(".pocctl/state.json")
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    local: bool = False
    verbose: bool = False
    quiet: bool = False


class App:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.terminal = Terminal(verbose=options.verbose, quiet=options.quiet)
        route_logging(self.terminal)

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
            return os.environ.get("POCCTL_LOCAL_ENDPOINT", LOCAL_ENDPOINT)
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
                    state.check_target(ctx.account, ctx.region, self.endpoint_url)
                    yield Engine(ctx, state, reporter=reporter or ProgressReporter(self.terminal))
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
        return str(exc), "is the endpoint running? (`pocctl local` starts one)", EXIT_AWS
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
