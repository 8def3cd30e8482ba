"""With --data, the inbox and a pending subscription's token come back after a restart, as
the subscriptions do (pocctl/local/sns_email.py keeps them on moto's SNS backend)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pocctl.local import sns_email
from pocctl.local.runtime import LocalAWS
from pocctl.local.server import local_client

from .conftest import LogLines


def _start(data: Path) -> LocalAWS:
    from moto.core.base_backend import BackendDict

    BackendDict.reset()  # as a new process would
    return LocalAWS(port=0, log=LogLines(), data_dir=data, refresh_interval=0.2).start()


def _inbox(endpoint: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(endpoint + sns_email.INBOX_PATH, timeout=10) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


@pytest.fixture
def running() -> Iterator[list[LocalAWS]]:
    started: list[LocalAWS] = []
    yield started
    for aws in started:
        aws.stop()


def test_the_inbox_and_the_confirm_link_survive_a_restart(
    tmp_path: Path, running: list[LocalAWS]
) -> None:
    aws = _start(tmp_path / "data")
    running.append(aws)
    sns = local_client(aws.endpoint_url, "sns")
    arn = sns.create_topic(Name="POC-Topic")["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="learner@example.com")
    (before,) = _inbox(aws.endpoint_url)
    aws.stop()

    aws = _start(tmp_path / "data")
    running.append(aws)
    assert _inbox(aws.endpoint_url) == [before]
    token = str(before["confirm_url"]).rsplit("Token=", 1)[1]
    sns = local_client(aws.endpoint_url, "sns")
    confirmed = sns.confirm_subscription(TopicArn=arn, Token=token)["SubscriptionArn"]
    assert confirmed.startswith(arn + ":")
