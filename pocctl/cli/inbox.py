"""`pocctl inbox`: the email the embedded SNS sent (locally); on AWS, the subscription's state.

The embedded AWS keeps every email SNS would send (pocctl/local/sns_email.py) and serves them
at ``GET /_pocctl/inbox``. On AWS the email goes to a real mailbox, which pocctl cannot read:
it says so and shows whether the subscription is confirmed, never anything made up.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import click

from pocctl.cli import views
from pocctl.cli.app import EXIT_AWS, EXIT_USAGE, App, json_mode

INBOX_PATH = "/_pocctl/inbox"  # = pocctl.local.sns_email.INBOX_PATH (no moto import here)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def local_inbox_url(app: App) -> str | None:
    """Where the embedded AWS serves its inbox; None when pocctl talks to AWS."""
    url = app.endpoint_url
    if not url or urlsplit(url).hostname not in _LOOPBACK:
        return None
    return url.rstrip("/") + INBOX_PATH


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - loopback only
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def fetch(app: App, address: str | None) -> list[dict[str, Any]]:
    """The emails to ``address`` (all if None), newest first."""
    url = local_inbox_url(app)
    assert url is not None
    try:
        status, body = _get(url)
    except OSError as e:
        app.terminal.abort(
            f"cannot reach the embedded AWS at {app.endpoint_url}: {e}",
            hint="is `pocctl local` running?",
            code=EXIT_AWS,
        )
    if status != 200:
        app.terminal.abort(f"{url} answered {status}", code=EXIT_AWS)
    emails: list[dict[str, Any]] = json.loads(body)
    return [e for e in emails if address is None or e["to"].lower() == address.lower()]


def confirm(app: App, emails: list[dict[str, Any]]) -> None:
    """Open the newest confirmation link, as a click in the email does."""
    term = app.terminal
    link = next((e["confirm_url"] for e in emails if e.get("confirm_url")), None)
    if link is None:
        term.abort("no confirmation request in this inbox", code=EXIT_USAGE)
    status, _ = _get(link)
    if status != 200:
        term.abort(f"the confirmation link answered {status}: invalid or expired", code=EXIT_AWS)
    term.success("subscription confirmed: the next notification arrives in this inbox")


def on_aws(app: App, address: str) -> None:
    """AWS's mailbox cannot be read from here: the subscription's state instead."""
    from pocctl.resources.sns import EmailSubscription

    with app.guard():
        found = (
            EmailSubscription(app.cfg).find(app.ctx) if app.cfg.topic.notification_email else None
        )
    term = app.terminal
    term.info(f"on AWS the email goes to the real inbox of {address}: pocctl cannot read it")
    if found is None:
        term.line(f"{address} is not subscribed to {app.cfg.topic.name}")
    elif found.get("confirmed"):
        term.line(f"subscription: confirmed ({found.get('arn')})")
    else:
        term.line("subscription: pending confirmation: click the link in the email")


def follow(app: App, address: str | None, seen: int) -> None:
    """Print each new email as it arrives, until interrupted."""
    try:
        while True:
            time.sleep(1.0)  # a polling interval, not synchronisation
            emails = fetch(app, address)
            new = emails[: max(0, len(emails) - seen)]
            seen = len(emails)
            for e in reversed(new):
                for line in views.inbox_lines(e):
                    app.terminal.line(line)
    except KeyboardInterrupt:
        return


@click.command("inbox")
@click.argument("address", required=False)
@click.option(
    "--json", "as_json", is_flag=True, callback=json_mode, help="print the emails as JSON"
)
@click.option(
    "--confirm", is_flag=True, help="open the confirmation link (confirm the subscription)"
)
@click.option("--follow", is_flag=True, help="keep waiting for new emails (Ctrl-C stops)")
@click.pass_obj
def inbox_command(
    app: App, address: str | None, as_json: bool, confirm: bool, follow: bool
) -> None:
    """The email SNS sent to ADDRESS (default: topic.notification_email).

    Locally (`pocctl local`), every email the embedded SNS sends is kept: the
    confirmation request, with its link, and each notification. On AWS the
    email goes to the real mailbox; this shows the subscription's state.

    \b
    Examples:
      pocctl --local inbox
      pocctl --local inbox --confirm
      pocctl --local inbox --json | jq '.[0].body'
    """
    run_inbox(app, address, as_json=as_json, confirm_link=confirm, keep_following=follow)


def run_inbox(
    app: App,
    address: str | None,
    *,
    as_json: bool = False,
    confirm_link: bool = False,
    keep_following: bool = False,
) -> None:
    address = address or app.cfg.topic.notification_email
    if not address:
        app.terminal.abort(
            "no address: give one, or set topic.notification_email in config.yaml",
            code=EXIT_USAGE,
        )
    if local_inbox_url(app) is None:
        on_aws(app, address)
        return
    emails = fetch(app, address)
    if confirm_link:
        confirm(app, [e for e in emails if e["kind"] == "confirmation"])
        return
    if as_json:
        app.terminal.json(emails)
    elif emails:
        app.terminal.line(f"{len(emails)} email(s) to {address}, newest first:")
        for e in emails:
            for line in views.inbox_lines(e):
                app.terminal.line(line)
        link = next((e["confirm_url"] for e in emails if e.get("confirm_url")), None)
        if link:
            app.terminal.line("to confirm: `pocctl inbox --confirm`, or open the link:")
            app.terminal.folded(link, indent=2, style="cyan", link=link)
    else:
        app.terminal.line(f"no email to {address} yet", style="dim")
    if keep_following:
        follow(app, address, len(emails))


COMMANDS = [inbox_command]
