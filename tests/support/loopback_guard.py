"""Fail any AWS request that is not addressed to the loopback interface.

Installed in the test process by conftest.py and in every pocctl subprocess a test starts
(through sitecustomize_guard/ on PYTHONPATH), so no test can ever reach real AWS.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class NonLoopbackRequest(AssertionError):
    pass


def install() -> None:
    from botocore.httpsession import URLLib3Session

    if getattr(URLLib3Session.send, "_loopback_guard", False):
        return
    original = URLLib3Session.send

    def send(self, request):  # type: ignore[no-untyped-def]
        host = urlsplit(request.url).hostname
        if host not in LOOPBACK:
            raise NonLoopbackRequest(f"test tried to reach {host}: only 127.0.0.1 is allowed")
        return original(self, request)

    send._loopback_guard = True  # type: ignore[attr-defined]
    URLLib3Session.send = send  # type: ignore[method-assign]
