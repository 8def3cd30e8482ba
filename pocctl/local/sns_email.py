"""The email the embedded SNS sends, kept in a local inbox instead of a mailbox.

AWS, "Subscribing an email address to an Amazon SNS topic" and "Confirm your Amazon SNS
subscription" (https://docs.aws.amazon.com/sns/latest/dg/sns-email-notifications.html,
https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.confirm.html): a new email
subscription is "pending confirmation" until the recipient opens the link in the email
"AWS Notification - Subscription Confirmation"; the link is the SubscribeURL,
``https://sns.REGION.amazonaws.com/?Action=ConfirmSubscription&TopicArn=…&Token=…``. The token is
valid for three days (https://docs.aws.amazon.com/sns/latest/api/API_Subscribe.html:
"Confirmation tokens are valid for three days"; API_ConfirmSubscription "validat[es] the token
sent to the endpoint by an earlier Subscribe action"); a pending subscription not confirmed
in time is deleted. Publish delivers nothing to a pending subscription.

Every email is kept on the SNS backend of its account and region (so `--data` snapshots and
moto's reset treat it as they treat the subscriptions) and read by `pocctl inbox` through
``GET /_pocctl/inbox`` on the embedded AWS. The confirm link is the embedded AWS's own URL:
opening it (browser or curl, unsigned, as AWS's SubscribeURL is) confirms the subscription.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from pocctl.local import metrics

EMAIL_PROTOCOLS = ("email", "email-json")
# API_Subscribe: the token is valid for three days.
TOKEN_LIFETIME = 3 * 24 * 3600.0
CONFIRM_SUBJECT = "AWS Notification - Subscription Confirmation"
# Publish's Subject is "used as the 'Subject' line when the message is delivered to email
# endpoints" (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html); without one, AWS's
# email says "AWS Notification Message" (what AWS sends; not in the API reference).
DEFAULT_SUBJECT = "AWS Notification Message"
INBOX_PATH = "/_pocctl/inbox"
_EMAILS = "pocctl_emails"  # the attribute of moto's SNSBackend holding its emails

_listeners: list[Callable[[Email], None]] = []
_base_url = {"url": "http://127.0.0.1:4566"}
_base_lock = threading.Lock()


@dataclass
class Email:
    """One email the embedded SNS sent."""

    to: str
    subject: str
    body: str
    time: float
    kind: str  # "confirmation" or "notification"
    topic_arn: str
    subscription_arn: str
    confirm_url: str | None = None


def on_email(listener: Callable[[Email], None]) -> Callable[[], None]:
    """Call ``listener`` for each email sent (the `pocctl local` console); returns a remover."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


def _send(backend: Any, email: Email) -> None:
    backend.__dict__.setdefault(_EMAILS, []).append(email)
    for listener in list(_listeners):
        try:
            listener(email)
        except Exception:  # a console that cannot print never breaks a Publish
            pass


def emails(address: str | None = None) -> list[Email]:
    """Every email sent (to ``address`` if given, case-insensitively), newest first."""
    from moto.sns.models import sns_backends

    found = [
        e
        for _, _, backend in sns_backends.iter_backends()
        for e in list(backend.__dict__.get(_EMAILS, []))
        if address is None or e.to.lower() == address.lower()
    ]
    return sorted(found, key=lambda e: e.time, reverse=True)


# -- the messages, as AWS words them ----------------------------------------------------------


def _region(topic_arn: str) -> str:
    return topic_arn.split(":")[3]


def confirmation(sub: Any, token: str) -> Email:
    """The confirmation request AWS sends (subject and wording as AWS's email)."""
    query = urlencode({"Action": "ConfirmSubscription", "TopicArn": sub.topic.arn, "Token": token})
    url = f"{_base_url['url']}/?{query}"
    body = (
        "You have chosen to subscribe to the topic:\n"
        f"{sub.topic.arn}\n\n"
        "To confirm this subscription, click or visit the link below (If this was in error no "
        "action is necessary):\n"
        f"Confirm subscription: {url}\n\n"
        "Please do not reply directly to this email. If you wish to remove yourself from "
        "receiving all future SNS subscription confirmation requests please send an email to "
        "sns-opt-out"
    )
    return Email(sub.endpoint, CONFIRM_SUBJECT, body, time.time(), "confirmation",
                 sub.topic.arn, sub.arn, url)  # fmt: skip


def notification(sub: Any, message: str, subject: str | None) -> Email:
    """An email notification as AWS formats one: the message, then AWS's footer with the
    unsubscribe link (https://docs.aws.amazon.com/sns/latest/dg/sns-email-notifications.html)."""
    query = urlencode({"Action": "Unsubscribe", "SubscriptionArn": sub.arn})
    body = (
        f"{message}\n\n--\n"
        "If you wish to stop receiving notifications from this topic, please click or visit "
        f"the link below to unsubscribe:\n{_base_url['url']}/?{query}\n\n"
        "Please do not reply directly to this email. If you have any questions or comments "
        "regarding this email, please contact us at https://aws.amazon.com/support"
    )
    return Email(sub.endpoint, subject or DEFAULT_SUBJECT, body, time.time(), "notification",
                 sub.topic.arn, sub.arn)  # fmt: skip


# -- the subscription's state -----------------------------------------------------------------


def is_pending(sub: Any) -> bool:
    return sub.protocol in EMAIL_PROTOCOLS and bool(sub.attributes.get("PendingConfirmation"))


def _expire(backend: Any) -> None:
    """API_Subscribe: a pending subscription whose token expired (3 days) is deleted."""
    now = time.time()
    for arn, sub in list(backend.subscriptions.items()):
        if is_pending(sub) and now - sub.__dict__.get("pocctl_since", now) > TOKEN_LIFETIME:
            backend.subscriptions.pop(arn, None)


def confirm(backend: Any, topic_arn: str, token: str, *, authenticated: bool) -> Any | None:
    """Confirm the subscription of ``topic_arn`` holding ``token``; None if none does."""
    _expire(backend)
    for sub in backend.subscriptions.values():
        if sub.topic.arn == topic_arn and sub.__dict__.get("pocctl_token") == token:
            sub.attributes["PendingConfirmation"] = False
            # API_ConfirmSubscription, AuthenticateOnUnsubscribe: only a signed call can
            # ask for it; the link in the email is unsigned.
            sub.attributes["ConfirmationWasAuthenticated"] = authenticated
            return sub
    return None


# -- the moto patches (registered in moto_hooks.PATCHES) --------------------------------------


def subscribe_pending(original: Any) -> Any:
    """SNSBackend.subscribe: a new email subscription is pending and gets the confirmation
    email; subscribing a pending address again sends a new one (the link is re-sent, as the
    console's "Request confirmation" does)."""

    def subscribe(self: Any, topic_arn: str, endpoint: str, protocol: str) -> Any:
        _expire(self)
        sub = original(self, topic_arn, endpoint, protocol)
        if protocol not in EMAIL_PROTOCOLS:
            return sub
        if "pocctl_token" not in sub.__dict__:  # new: pending, with a token of its own
            sub.attributes["PendingConfirmation"] = True
            sub.attributes["ConfirmationWasAuthenticated"] = False
            sub.pocctl_token = secrets.token_hex(64)  # AWS's tokens are long hex strings
            sub.pocctl_since = time.time()
        if is_pending(sub):
            _send(self, confirmation(sub, sub.pocctl_token))
        return sub

    return subscribe


def subscribe_answer(original: Any) -> Any:
    """SNSResponse.subscribe: SubscriptionArn is "pending confirmation" for a pending one unless
    ReturnSubscriptionArn is true (https://docs.aws.amazon.com/sns/latest/api/API_Subscribe.html,
    ReturnSubscriptionArn)."""
    from moto.core.responses import ActionResult

    def subscribe(self: Any) -> Any:
        result = original(self)
        sub = self.backend._find_subscription(
            self._get_param("TopicArn"), self._get_param("Endpoint"), self._get_param("Protocol")
        )
        wants_arn = str(self._get_param("ReturnSubscriptionArn") or "").lower() == "true"
        if sub is not None and is_pending(sub) and not wants_arn:
            return ActionResult({"SubscriptionArn": "pending confirmation"})
        return result

    return subscribe


def listed_arn(original: Any) -> Any:
    """Subscription.subscription_arn (what ListSubscriptions(ByTopic) serialises):
    "PendingConfirmation" for a pending one, as AWS lists it
    (https://docs.aws.amazon.com/sns/latest/api/API_ListSubscriptionsByTopic.html)."""
    return property(lambda self: "PendingConfirmation" if is_pending(self) else self.arn)


def email_delivery(original: Any) -> Any:
    """Topic.publish (moto's loop over the topic's subscriptions, kept as it is for the other
    protocols): nothing for a pending email subscription (AWS delivers only to confirmed ones);
    a confirmed one gets the email notification in the inbox."""
    from moto.moto_api._internal import mock_random

    def publish(self: Any, message: str, subject: str | None = None,
                message_attributes: dict[str, Any] | None = None, group_id: str | None = None,
                deduplication_id: str | None = None, message_structure: str | None = None,
                ) -> str:  # fmt: skip
        message_id = str(mock_random.uuid4())
        subscriptions, _ = self.sns_backend.list_subscriptions_by_topic(topic_arn=self.arn)
        for sub in subscriptions:
            if sub.protocol in EMAIL_PROTOCOLS:
                _email(sub, message, message_id, subject, message_attributes, message_structure)
                continue
            matcher = sub._filter_policy_matcher
            if matcher is not None and not matcher.matches(message_attributes, message):
                continue  # filtered out: no delivery, none counted (as moto's publish skips it)
            try:
                sub.publish(
                    message,
                    message_id,
                    subject=subject,
                    message_attributes=message_attributes,
                    group_id=group_id,
                    deduplication_id=deduplication_id,
                    message_structure=message_structure,
                )
            except Exception:
                metrics.notification(self.arn, delivered=False)
                raise
            metrics.notification(self.arn, delivered=True)
        self.sent_notifications.append((message_id, message, subject, message_attributes, group_id))
        return message_id

    return publish


def _email(sub: Any, message: str, message_id: str, subject: str | None,
           attributes: dict[str, Any] | None, structure: str | None) -> None:  # fmt: skip
    matcher = sub._filter_policy_matcher
    if is_pending(sub) or (matcher is not None and not matcher.matches(attributes, message)):
        return
    if structure == "json":
        message = sub._parse_message_structure(message, sub.protocol)
    if sub.protocol == "email-json":
        message = json.dumps(sub.get_post_data(message, message_id, subject), indent=2)
    _send(sub.topic.sns_backend, notification(sub, message, subject))
    metrics.notification(sub.topic_arn, delivered=True)


def confirm_answer(original: Any) -> Any:
    """SNSResponse.confirm_subscription: checks the token (moto accepts any and answers a fixed
    ARN). https://docs.aws.amazon.com/sns/latest/api/API_ConfirmSubscription.html: an unknown
    or expired token is InvalidParameter."""
    from moto.core.responses import ActionResult
    from moto.sns.exceptions import SNSInvalidParameter

    def confirm_subscription(self: Any) -> Any:
        topic_arn = self._get_param("TopicArn")
        self.backend.get_topic(topic_arn)  # NotFound, as AWS, for an unknown topic
        auth = str(self._get_param("AuthenticateOnUnsubscribe") or "").lower() == "true"
        sub = confirm(self.backend, topic_arn, self._get_param("Token") or "", authenticated=auth)
        if sub is None:
            raise SNSInvalidParameter("Invalid parameter: Token")
        return ActionResult({"SubscriptionArn": sub.arn})

    return confirm_subscription


# -- the embedded AWS's own pages: the confirm link and the inbox ------------------------------


def pages(lock: Any) -> Callable[[Any], Any]:
    """A pipeline step (server.Pipeline) answering, unsigned: the confirm link
    (``GET /?Action=ConfirmSubscription&TopicArn=…&Token=…``, as AWS's SubscribeURL) and
    ``GET /_pocctl/inbox``. It also notes the Host the clients use, for the links it writes."""
    from pocctl.local.server import Answer

    def step(req: Any) -> Any:
        env = req.environ
        host = env.get("HTTP_HOST")
        if host:
            with _base_lock:
                _base_url["url"] = f"http://{host}"
        if env.get("REQUEST_METHOD") != "GET" or env.get("HTTP_AUTHORIZATION"):
            return None
        path = env.get("PATH_INFO", "")
        if path == INBOX_PATH:
            with lock:
                body = json.dumps([asdict(e) for e in emails()]).encode()
            return Answer(200, body, [("Content-Type", "application/json")])
        query = parse_qs(env.get("QUERY_STRING", ""))
        if path == "/" and query.get("Action") == ["ConfirmSubscription"]:
            return _confirm_page(lock, query)
        if path == "/" and query.get("Action") == ["Unsubscribe"]:
            return _unsubscribe_page(lock, (query.get("SubscriptionArn") or [""])[0])
        return None

    return step


def _confirm_page(lock: Any, query: dict[str, list[str]]) -> Any:
    from moto.sns.models import sns_backends

    from pocctl.local.server import Answer

    topic_arn = (query.get("TopicArn") or [""])[0]
    token = (query.get("Token") or [""])[0]
    parts = topic_arn.split(":")
    sub = None
    if len(parts) == 6:
        with lock:
            backend = sns_backends[parts[4]][parts[3]]
            if topic_arn in backend.topics:
                sub = confirm(backend, topic_arn, token, authenticated=False)
    page = "text/html; charset=utf-8"
    if sub is None:
        text = "<h1>Invalid token</h1><p>The confirmation link is invalid or has expired.</p>"
        return Answer(400, text.encode(), [("Content-Type", page)])
    text = (
        "<h1>Subscription confirmed!</h1><p>You have successfully subscribed.</p>"
        f"<p>Your subscription's id is:<br>{html.escape(sub.arn)}</p>"
    )
    return Answer(200, text.encode(), [("Content-Type", page)])


def _unsubscribe_page(lock: Any, arn: str) -> Any:
    """The unsubscribe link in each notification's footer. API_Unsubscribe: "If the
    Unsubscribe call does not require authentication and the requester is not the subscription
    owner, a final cancellation message is delivered to the endpoint"; a subscription confirmed
    with AuthenticateOnUnsubscribe needs a signed call
    (https://docs.aws.amazon.com/sns/latest/api/API_Unsubscribe.html)."""
    from moto.sns.models import sns_backends

    from pocctl.local.server import Answer

    parts = arn.split(":")
    page = [("Content-Type", "text/html; charset=utf-8")]
    with lock:
        backend = sns_backends[parts[4]][parts[3]] if len(parts) == 7 else None
        sub = backend.subscriptions.get(arn) if backend is not None else None
        if sub is None or sub.attributes.get("ConfirmationWasAuthenticated"):
            return Answer(403, b"<h1>Unsubscribe refused</h1>", page)
        backend.unsubscribe(arn)
    return Answer(200, b"<h1>Subscription removed!</h1>", page)
