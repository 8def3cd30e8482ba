"""pocctl's command line: the root group and its global options.

Commands are thin: parse options, call the engine through the App, let the Terminal render.
Heavy imports (boto3, moto, rich tables) happen inside the commands that need them.
"""

from __future__ import annotations

from pathlib import Path

import click

from pocctl import __version__
from pocctl.cli.app import EXIT_INTERRUPTED, App, Options

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 80}


class LabOrderGroup(click.Group):
    """--help lists commands in the lab's order, not alphabetically; global options are taken
    after the subcommand too (`pocctl up --local`), as the AWS CLI takes --profile anywhere."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from pocctl.cli.globalopts import hoist

        return super().parse_args(ctx, hoist(self, ctx, list(args)))

    def invoke(self, ctx: click.Context) -> object:
        """Ctrl-C anywhere: what was made and how to go on, exit 130 (not click's "Aborted!")."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            if isinstance(ctx.obj, App):
                ctx.obj.interrupted()
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


@click.group(cls=LabOrderGroup, context_settings=CONTEXT)
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="config file  [default: ./config.yaml]",
)
@click.option(
    "--state",
    "state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".pocctl/state.json"),
    show_default=True,
    help="state file",
)
@click.option("--profile", help="AWS profile (from ~/.aws/config)")
@click.option("--region", help="AWS region (overrides config.yaml)")
@click.option(
    "--endpoint-url",
    metavar="URL",
    help="AWS endpoint, e.g. the embedded AWS (AWS_ENDPOINT_URL works too)",
)
@click.option(
    "--local",
    "local",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[PORT]",
    help="use `pocctl local` on 127.0.0.1:PORT (default 4566, or POCCTL_LOCAL_PORT) with "
    "dummy credentials",
)
@click.option("-v", "--verbose", is_flag=True, help="ARNs, waits and tracebacks")
@click.option("-q", "--quiet", is_flag=True, help="only errors")
@click.version_option(__version__, prog_name="pocctl")
@click.pass_context
def main(
    ctx: click.Context,
    config: Path | None,
    state: Path,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    local: str | None,
    verbose: bool,
    quiet: bool,
) -> None:
    """Build, test and tear down the lab's serverless order pipeline:

    \b
    POST → API Gateway → SQS → Lambda 1 → DynamoDB → Streams → Lambda 2 → SNS

    \b
    Quick start (no AWS account needed):
      pocctl demo
    On an AWS account:
      pocctl up && pocctl test-order && pocctl down

    The options above may also follow the command: pocctl up --local
    """
    if verbose and quiet:
        raise click.UsageError("--verbose and --quiet exclude each other")
    if local and not (local.isdigit() and 0 < int(local) < 65536):
        raise click.BadParameter(f"{local!r} is not a port (1-65535)", param_hint="'--local'")
    ctx.obj = App(
        Options(
            config=config or Path("config.yaml"),
            config_given=config is not None,
            state=state,
            profile=profile,
            region=region,
            endpoint_url=endpoint_url,
            local=local is not None,
            local_port=int(local) if local else None,
            verbose=verbose,
            quiet=quiet,
        )
    )
    # A wait no step ended (a failed step, a read-only command) ends with the command: its
    # "still …" ticker must not outlive it (`pocctl dev` runs many; tests run many in one process).
    ctx.call_on_close(ctx.obj.terminal.wait_over)


def _register() -> None:
    from pocctl.cli import (
        demo,
        dev,
        down,
        inbox,
        invoke,
        local,
        logs,
        orders_cmd,
        plan,
        status,
        tasks,
        test_order,
        up,
        walkthrough,
        watch,
    )

    for module in (
        *(tasks, up, plan, status, test_order, logs, watch, orders_cmd, invoke, dev),
        *(inbox, down, walkthrough, local, demo),
    ):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
