"""`pocctl local`: the embedded AWS in the foreground, for other terminals and tools to use."""

from __future__ import annotations

import getpass
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pocctl.cli.app import App, local_port_from_env

if TYPE_CHECKING:
    from pocctl.local.runtime import LocalAWS


@click.command("local")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=local_port_from_env,
    show_default="4566, or POCCTL_LOCAL_PORT",
    help="port on 127.0.0.1 (0 picks a free one)",
)
@click.option(
    "--admin",
    is_flag=True,
    help="also serve moto's admin API (/moto-api: reset, recorder, data.json, seed, config)",
)
@click.option(
    "--data",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="keep the embedded AWS's state in DIR across restarts (default: in memory only)",
    metavar="DIR",
)
@click.pass_obj
def local_command(app: App, port: int, admin: bool, data: Path | None) -> None:
    """Run an embedded AWS on 127.0.0.1 until Ctrl-C.

    moto's server plus pocctl's Lambda pollers, function executor and API
    Gateway data plane, so orders flow through the whole pipeline offline.

    It serves this machine's own tools only: requests must name 127.0.0.1 (or
    localhost) and its port, no web page may call it, and AWS API requests
    must be signed, as on AWS (any SDK or the AWS CLI signs), with the access
    key `testing` (the administrator) or credentials its STS issued; other
    keys are refused. A deployed REST API's invoke URL is open, as on AWS.

    Deployed Lambda functions run on this machine as the current user,
    without a sandbox: deploy only code you trust.

    \b
    Example (then, in another terminal):
      pocctl local
      pocctl --local up && pocctl --local test-order --count 5

    \b
    On another port (POCCTL_LOCAL_PORT=4567 sets it for both):
      pocctl local --port 4567
      pocctl up --local 4567

    With --data DIR, resources, queued messages, table rows and stream
    positions survive a restart (see README: "The embedded AWS").
    """
    from pocctl.local.persist import DataDirError
    from pocctl.local.runtime import LocalAWS

    term = app.terminal
    try:
        aws = LocalAWS(port=port, log=term.info, admin=admin, data_dir=data)
        aws.start()
    except DataDirError as e:
        term.abort(str(e), code=2)
    except OSError as e:
        term.abort(
            f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}",
            hint="pick another --port (0 picks a free one)",
            code=2,
        )
    _banner(app, aws, admin)
    try:
        aws.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        aws.stop()
    term.info("embedded AWS stopped" + _stop_note(aws))
    _exit_without_teardown()


def _exit_without_teardown() -> None:
    """Everything is stopped (workers killed, server closed); what is left is Python tearing
    down moto's thousands of modules and objects, which took 4 s of a SIGTERM's 5 s on a busy
    machine. Flush and end the process now. Only as the program itself: not in a test runner
    that called the command in-process (it has replaced stdout)."""
    import logging
    import os
    import sys
    import threading

    if (
        threading.current_thread() is not threading.main_thread()
        or sys.stdout is not sys.__stdout__
    ):
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _banner(app: App, aws: LocalAWS, admin: bool) -> None:
    term = app.terminal
    url = aws.endpoint_url
    term.line(f"[bold]Embedded AWS[/] listening on {url}")
    term.line("Use it from another terminal:")
    port = aws.endpoint_url.rsplit(":", 1)[1]
    # Bare --local means 4566, or POCCTL_LOCAL_PORT where that is set (in the user's shell).
    flag = "--local" if int(port) == local_port_from_env() else f"--local {port}"
    term.line(f"  pocctl {flag} up")
    term.line(f"  pocctl {flag} test-order --count 5")
    # AWS_DEFAULT_REGION too: boto3 and AWS CLI v1 read that one, not AWS_REGION.
    term.line(
        f"  export AWS_ENDPOINT_URL={url} AWS_ACCESS_KEY_ID=testing "
        "AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1"
    )
    term.line(
        "  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
        f"aws --endpoint-url {url} --region us-east-1 sqs list-queues"
    )
    term.line(f"REST APIs answer at {url}/restapis/<api-id>/<stage>/_user_request_/")
    term.line(
        "Every region is served (region: in config.yaml, --region or AWS_REGION); "
        "each region's resources are its own, as on AWS."
    )
    term.line(
        f"Deployed Lambda functions run on this machine as {_user()}, without a sandbox: "
        "deploy only code you trust."
    )
    term.line("Only this machine's tools may use it: no other Host, no web page, signed API calls.")
    term.line(
        "CloudWatch metrics: AWS/ApiGateway, AWS/SQS, AWS/Lambda, AWS/SNS, per minute, "
        "updated every second (queue gauges sampled each second, not once a minute; "
        "Throttles always 0; no AWS/DynamoDB). `pocctl watch` shows them."
    )
    _runtimes_banner(app)
    if admin:
        term.line(
            f"moto's admin API is ON (--admin): {url}/moto-api/ "
            "(reset, recorder, data.json, seed, config)"
        )
    else:
        term.line("moto's admin API (/moto-api) is off; --admin turns it on.")
    term.info(_state_line(aws))
    term.line("Ctrl-C stops it.")


def _runtimes_banner(app: App) -> None:
    """Which Python serves each Lambda runtime, and the SDK version handlers get."""
    from pocctl.local.interpreters import sdk_versions, serving_rows

    sdk = sdk_versions()
    app.terminal.info(
        "Lambda runtimes: handlers import their zip, the standard library and the runtime's "
        f"SDK (boto3 {sdk['boto3']}, botocore {sdk['botocore']}), nothing else."
    )
    for runtime, served in serving_rows():
        app.terminal.info(f"  {runtime} runs on {served}")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "the current user"


def _state_line(aws: LocalAWS) -> str:
    p = aws.persistence
    if p is None:
        return (
            "State: in memory only; a stop loses every resource and order (--data DIR keeps them)."
        )
    if aws.restored is None:
        return f"State: kept in {p.directory} (no snapshot yet: starting empty)."
    h = aws.restored.header
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(h.get("taken_at", 0))))
    return (
        f"State: kept in {p.directory}; restored the snapshot of {when} "
        f"({h.get('bytes', 0) / 1e6:.1f} MB) in {aws.restored.seconds:.2f} s."
    )


def _stop_note(aws: LocalAWS) -> str:
    p = aws.persistence
    if p is not None and p.saved_at_close:
        return f"; state saved in {p.directory}"
    if p is not None:
        return f"; could not save the last changes: {p.directory} keeps its previous snapshot"
    if aws.unfinished:
        return f"; dropped {aws.unfinished.describe()} (in memory only: --data DIR keeps them)"
    return ""


COMMANDS = [local_command]
