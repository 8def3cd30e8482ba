"""SNS email on the embedded AWS as on AWS: pending until the link in the confirmation email is
opened, nothing delivered to a pending subscription, every email in the local inbox
(pocctl/local/sns_email.py); and moto's /moto-api/data.json with a function deployed."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import zipfile
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from pocctl.local import sns_email
from pocctl.local.runtime import LocalAWS
from pocctl.local.server import EmbeddedAWS

ADDRESS = "learner@example.com"


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint)


def _get(url: str) -> tuple[int, str]:
    """An unsigned GET, as a browser or curl opens a link."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _inbox(endpoint: str) -> list[dict[str, Any]]:
    status, body = _get(endpoint + sns_email.INBOX_PATH)
    assert status == 200, body
    return json.loads(body)  # type: ignore[no-any-return]


@pytest.fixture
def topic(local_aws: LocalAWS) -> tuple[Any, str]:
    sns = _client(local_aws.endpoint_url, "sns")
    return sns, sns.create_topic(Name="POC-Topic")["TopicArn"]


def _listed(sns: Any, topic_arn: str) -> list[str]:
    listed = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    return [s["SubscriptionArn"] for s in listed]


def test_an_email_subscription_is_pending_and_its_confirmation_is_in_the_inbox(
    local_aws: LocalAWS, topic: tuple[Any, str], log_lines: Any
) -> None:
    sns, arn = topic
    answer = sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=ADDRESS)
    assert answer["SubscriptionArn"] == "pending confirmation"
    assert _listed(sns, arn) == ["PendingConfirmation"]
    assert sns.list_subscriptions()["Subscriptions"][0]["SubscriptionArn"] == "PendingConfirmation"

    (mail,) = _inbox(local_aws.endpoint_url)
    assert mail["to"] == ADDRESS and mail["kind"] == "confirmation"
    assert mail["subject"] == "AWS Notification - Subscription Confirmation"
    assert arn in mail["body"] and mail["confirm_url"] in mail["body"]
    assert mail["confirm_url"].startswith(local_aws.endpoint_url + "/?Action=ConfirmSubscription&")
    assert log_lines.having(f"email to {ADDRESS}: AWS Notification - Subscription Confirmation")


def test_return_subscription_arn_gives_the_arn_and_its_attributes_say_pending(
    topic: tuple[Any, str],
) -> None:
    sns, arn = topic
    sub = sns.subscribe(
        TopicArn=arn, Protocol="email", Endpoint=ADDRESS, ReturnSubscriptionArn=True
    )["SubscriptionArn"]
    assert sub.startswith(arn + ":")
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert attrs["PendingConfirmation"] == "true"
    assert attrs["ConfirmationWasAuthenticated"] == "false"


def test_publish_delivers_nothing_to_a_pending_subscription(
    local_aws: LocalAWS, topic: tuple[Any, str]
) -> None:
    sns, arn = topic
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=ADDRESS)
    sns.publish(TopicArn=arn, Message="order 1", Subject="New Order Notification")
    assert [m["kind"] for m in _inbox(local_aws.endpoint_url)] == ["confirmation"]


def test_the_confirm_link_confirms_and_then_notifications_arrive_as_aws_formats_them(
    local_aws: LocalAWS, topic: tuple[Any, str], log_lines: Any
) -> None:
    sns, arn = topic
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=ADDRESS)
    (confirmation,) = _inbox(local_aws.endpoint_url)
    status, page = _get(confirmation["confirm_url"])
    assert status == 200 and "Subscription confirmed!" in page
    (sub,) = _listed(sns, arn)
    assert sub.startswith(arn + ":") and sub in page
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert attrs["PendingConfirmation"] == "false"

    sns.publish(TopicArn=arn, Message="order 1\nsecond line", Subject="New Order Notification")
    sns.publish(TopicArn=arn, Message="no subject")
    newest, first, _ = _inbox(local_aws.endpoint_url)
    assert (first["subject"], first["kind"], first["to"]) == (
        "New Order Notification",
        "notification",
        ADDRESS,
    )
    assert first["body"].startswith("order 1\nsecond line\n\n--\n")
    assert "please click or visit the link below to unsubscribe" in first["body"]
    assert "Action=Unsubscribe&SubscriptionArn=" in first["body"]
    assert newest["subject"] == "AWS Notification Message"  # no Subject given
    assert log_lines.having(f"email to {ADDRESS}: New Order Notification")


def test_a_wrong_token_is_refused_and_the_right_one_confirms_through_the_api(
    local_aws: LocalAWS, topic: tuple[Any, str]
) -> None:
    sns, arn = topic
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=ADDRESS)
    (confirmation,) = _inbox(local_aws.endpoint_url)
    token = confirmation["confirm_url"].rsplit("Token=", 1)[1]
    with pytest.raises(ClientError) as e:
        sns.confirm_subscription(TopicArn=arn, Token="0" * len(token))
    assert e.value.response["Error"]["Code"] == "InvalidParameter"
    status, _ = _get(confirmation["confirm_url"].replace(token, "0" * len(token)))
    assert status == 400
    assert _listed(sns, arn) == ["PendingConfirmation"]

    confirmed = sns.confirm_subscription(
        TopicArn=arn, Token=token, AuthenticateOnUnsubscribe="true"
    )["SubscriptionArn"]
    assert _listed(sns, arn) == [confirmed]
    attrs = sns.get_subscription_attributes(SubscriptionArn=confirmed)["Attributes"]
    assert attrs["ConfirmationWasAuthenticated"] == "true"


def test_a_token_expires_after_three_days_and_the_pending_subscription_is_gone(
    local_aws: LocalAWS, topic: tuple[Any, str]
) -> None:
    from moto.sns.models import sns_backends

    sns, arn = topic
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=ADDRESS)
    (confirmation,) = _inbox(local_aws.endpoint_url)
    (sub,) = sns_backends["123456789012"]["us-east-1"].subscriptions.values()
    sub.pocctl_since -= sns_email.TOKEN_LIFETIME + 1  # three days and a second ago
    status, _ = _get(confirmation["confirm_url"])
    assert status == 400
    assert _listed(sns, arn) == []


def test_the_unsubscribe_link_in_a_notification_unsubscribes(
    local_aws: LocalAWS, topic: tuple[Any, str]
) -> None:
    sns, arn = topic
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=ADDRESS)
    (confirmation,) = _inbox(local_aws.endpoint_url)
    assert _get(confirmation["confirm_url"])[0] == 200
    sns.publish(TopicArn=arn, Message="hello")
    notification = _inbox(local_aws.endpoint_url)[0]
    link = next(ln for ln in notification["body"].splitlines() if "Action=Unsubscribe" in ln)
    status, page = _get(link)
    assert status == 200 and "Subscription removed!" in page
    assert _listed(sns, arn) == []


def test_sqs_subscriptions_are_confirmed_at_once_and_still_delivered(
    local_aws: LocalAWS, topic: tuple[Any, str]
) -> None:
    sns, arn = topic
    sqs = _client(local_aws.endpoint_url, "sqs")
    url = sqs.create_queue(QueueName="probe")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn["QueueArn"])
    assert sub["SubscriptionArn"].startswith(arn + ":")
    sns.publish(TopicArn=arn, Message="to the queue")
    (msg,) = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
    assert json.loads(msg["Body"])["Message"] == "to the queue"
    assert _inbox(local_aws.endpoint_url) == []


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("h.py", "def handler(event, context):\n    return 1\n")
    return buf.getvalue()


def test_moto_api_data_json_answers_200_with_a_function_deployed(local_aws: LocalAWS) -> None:
    with EmbeddedAWS(port=0, admin=True) as admin:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = _client(admin.endpoint_url, "iam").create_role(
            RoleName="data-json-role", AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
        _client(admin.endpoint_url, "lambda").create_function(
            FunctionName="data-json-fn",
            Runtime="python3.12",
            Role=role,
            Handler="h.handler",
            Code={"ZipFile": _zip()},
        )
        status, body = _get(admin.endpoint_url + "/moto-api/data.json")
    assert status == 200, body[:2000]
    functions = [
        f for service in json.loads(body).values() for f in service.get("LambdaFunction", [])
    ]
    assert [f["function_name"] for f in functions] == ["data-json-fn"]
