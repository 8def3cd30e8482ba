"""`pocctl local`: the embedded AWS in the foreground, for other terminals and tools to use."""

from __future__ import annotations

import click

from pocctl.cli.app import App


@click.command("local")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=4566,
    show_default=True,
    help="port on 127.0.0.1 (0 picks a free one)",
)
@click.pass_obj
def local_command(app: App, port: int) -> None:
    """Run an embedded AWS on 127.0.0.1 until Ctrl-C.

    moto's server plus pocctl's Lambda pollers, function executor and API
    Gateway data plane, so orders flow through the whole pipeline offline.

    \b
    Example (then, in another terminal):
      pocctl local
      pocctl --local up && pocctl --local test-order --count 5
    """
    from pocctl.local.runtime import LocalAWS

    term = app.terminal
    try:
        aws = LocalAWS(port=port, log=term.info)
        aws.start()
    except OSError as e:
        term.abort(
            f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}",
            hint="pick another --port (0 picks a free one)",
            code=2,
        )
    url = aws.endpoint_url
    term.line(f"[bold]Embedded AWS[/] listening on {url}")
    term.line("Use it from another terminal:")
    flag = "--local" if url.endswith(":4566") else f"--endpoint-url {url}"
    term.line(f"  pocctl {flag} up")
    term.line(f"  pocctl {flag} test-order --count 5")
    term.line(
        f"  export AWS_ENDPOINT_URL={url} AWS_ACCESS_KEY_ID=testing "
        "AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1"
    )
    term.line(f"  aws --endpoint-url {url} sqs list-queues")
    term.line(f"REST APIs answer at {url}/restapis/<api-id>/<stage>/_user_request_/")
    term.line("Ctrl-C stops it.")
    try:
        aws.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        aws.stop()
    term.line("embedded AWS stopped")


COMMANDS = [local_command]
