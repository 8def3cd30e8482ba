"""moto's server, in-process, bound to 127.0.0.1 only."""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("pocctl.local")

# WSGI middleware: takes the app to wrap, returns the wrapped app.
Middleware = Callable[[Any], Any]

LOCAL_REGION = "us-east-1"
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


_session: Any = None
_session_lock = threading.Lock()


def local_client(
    endpoint_url: str, service: str, *, region: str = LOCAL_REGION, **config: Any
) -> Any:
    """A boto3 client for the embedded server (fake credentials, no retries unless asked)."""
    global _session
    import boto3
    import botocore.session
    from botocore.config import Config

    cfg: dict[str, Any] = {"retries": {"total_max_attempts": 1}, "max_pool_connections": 50}
    cfg.update(config)
    # One shared session: each new session re-reads botocore's data files (~0.1 s per client).
    # Creating clients from a session is not thread-safe, hence the lock.
    with _session_lock:
        if _session is None:
            # Ignore AWS_PROFILE: a developer's profile has nothing to do with the local engine.
            core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
            _session = boto3.session.Session(botocore_session=core)
        return _session.client(
            service,
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(**cfg),
        )


class _Body(io.BytesIO):
    """The ``raw`` of a botocore AWSResponse: ``stream()`` for parsed answers, ``read()`` for
    streaming ones (Lambda Invoke's Payload)."""

    def stream(self, **_: Any) -> Any:
        yield self.getvalue()


def call_app(app: Any, request: Any) -> Any:
    """Serve a botocore prepared request with the WSGI ``app`` in this thread, as the HTTP
    server would (same app, same middleware), without a socket, a server thread or header
    parsing on either side: ~1.5 ms of the ~4 ms a loopback request costs the process. Returns
    a botocore AWSResponse."""
    from urllib.parse import urlsplit

    from botocore.awsrequest import AWSResponse
    from werkzeug.test import EnvironBuilder

    url = urlsplit(request.url)
    body = request.body or b""
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode("utf-8")
    headers = {
        k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in request.headers.items()
    }
    environ = EnvironBuilder(
        path=url.path,
        query_string=url.query,
        method=request.method,
        headers=headers,
        data=body,
        base_url=f"{url.scheme}://{url.netloc}",
    ).get_environ()
    environ["REMOTE_ADDR"] = "127.0.0.1"
    answer: dict[str, Any] = {}

    def start_response(status: str, response_headers: Any, exc_info: Any = None) -> None:
        answer["status"] = int(status.split(" ", 1)[0])
        answer["headers"] = dict(response_headers)

    try:
        data = b"".join(app(environ, start_response))
    except Exception:
        # The HTTP server answers 500 to an exception escaping the app; so does this.
        logger.debug("embedded AWS: %s %s failed", request.method, url.path, exc_info=True)
        return AWSResponse(request.url, 500, {}, _Body(b""))
    return AWSResponse(request.url, answer["status"], answer["headers"], _Body(data))


def _waits(environ: dict[str, Any]) -> bool:
    """Requests that may take long and must not hold the others up: SQS ReceiveMessage (a long
    poll) and Lambda Invoke (the function calls back into the server while it runs)."""
    if "/invocations" in environ.get("PATH_INFO", ""):
        return True
    if environ.get("HTTP_X_AMZ_TARGET", "").endswith(".ReceiveMessage"):  # JSON protocol
        return True
    if environ.get("REQUEST_METHOD") == "POST" and environ.get("CONTENT_TYPE", "").startswith(
        "application/x-www-form-urlencoded"
    ):  # query protocol: the action is in the body
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if b"ReceiveMessage" in body:
            from urllib.parse import parse_qs

            return parse_qs(body.decode("utf-8", "replace")).get("Action") == ["ReceiveMessage"]
    return False


def one_at_a_time(app: Any) -> Any:
    """moto's backends are not thread-safe: a request that walks a backend's dict while another
    request adds to it fails with HTTP 500 "dictionary changed size during iteration" (seen with
    a parallel `up`: IAM AttachRolePolicy beside CreatePolicy; and DescribeTable beside PutItem
    under load). AWS has no such failure, so requests reach moto one at a time, except those
    that wait (see _waits). moto's work holds the GIL anyway: little is lost."""
    lock = threading.RLock()

    def middleware(environ: dict[str, Any], start_response: Any) -> Any:
        if _waits(environ):
            return app(environ, start_response)
        with lock:
            return list(app(environ, start_response))

    middleware.lock = lock  # type: ignore[attr-defined]  # for snapshots (persist.py)
    return middleware


class EmbeddedAWS:
    """A moto server on 127.0.0.1 (port 0 picks a free one), optionally wrapped in middleware.

    Use as a context manager, or call start()/stop().
    """

    def __init__(
        self, port: int = 0, *, host: str = "127.0.0.1", middleware: list[Middleware] | None = None
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the embedded AWS only listens on the loopback interface")
        self.host = host
        self.port = port
        self._middleware = list(middleware or [])
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmbeddedAWS:
        # AWS-managed policies (AmazonAPIGatewayPushToCloudWatchLogs) exist in every account;
        # moto only has them when told before its IAM backend is first built.
        os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        _keep_only_relevant_managed_policies()
        from pocctl.local import moto_hooks

        moto_hooks.check_moto_version()
        # moto's own mapping path steals SQS messages and clears stream records (AWS-FACTS).
        moto_hooks.switch_off_moto_mappings()
        moto_hooks.speed_up_sqs()
        moto_hooks.speed_up_request_path()
        moto_hooks.expire_stream_iterators()
        moto_hooks.describe_disabled_streams()
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per call is noise
                pass

            def log(self, type: str, message: str, *args: Any) -> None:
                # werkzeug would print moto's internal errors (HTTP 500) with a traceback on
                # stderr; the client gets the 500 anyway. One line at INFO, details at DEBUG.
                text = (message % args) if args else message
                if type == "error":
                    last = text.strip().splitlines()[-1] if text.strip() else ""
                    logger.info("embedded AWS: %s %s failed: %s", self.command, self.path, last)
                    logger.debug("%s", text)
                else:
                    logger.debug("%s", text)

            def log_error(self, format: str, *args: Any) -> None:
                # The client already gets the 500; the server-side traceback is for --verbose.
                logging.getLogger("pocctl.local.server").debug(format, *args)

        class Dispatcher(DomainDispatcherApplication):  # type: ignore[misc]
            """moto's dispatcher with ``get_backend_for_host`` memoised: for every request moto
            lists its package folder and tries ~200 URL patterns, under one global lock, which
            made it ~15% of the server's CPU under load."""

            _backend_for_host: dict[str | None, Any] = {}

            def get_backend_for_host(self, host: str | None) -> Any:
                try:
                    return self._backend_for_host[host]
                except KeyError:
                    backend = super().get_backend_for_host(host)
                    if len(self._backend_for_host) < 1024:  # hosts come from clients: bound it
                        self._backend_for_host[host] = backend
                    return backend

        app: Any = one_at_a_time(Dispatcher(create_backend_app))
        self.request_lock = app.lock  # held, no request reaches moto (persist.py)
        for wrap in self._middleware:
            app = wrap(app)
        self.app = app
        self._server = make_server(
            self.host, self.port, app, threaded=True, request_handler=QuietHandler
        )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="pocctl-embedded-aws", daemon=True
        )
        self._thread.start()
        return self

    def in_process(self, client: Any) -> Any:
        """``client`` (made for this server's endpoint) sends its requests straight into the
        server's app in the calling thread (see call_app). For the embedded AWS's own callers:
        pollers, log shipper, gateway. Code a user runs (handlers, the CLI) goes over HTTP."""

        def send(request: Any, **_: Any) -> Any:
            return call_app(self.app, request)

        client.meta.events.register_first("before-send", send)
        return client

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def reset(self) -> None:
        """Forget every resource (moto's reset API)."""
        import urllib.request

        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback only)
            resp.read()

    def __enter__(self) -> EmbeddedAWS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# Services whose AWS-managed policies the embedded AWS offers. All 1,500+ make every account
# reset take ~1 s; these are the ones a serverless stack like this one attaches.
_MANAGED_POLICY_SERVICES = ("Lambda", "APIGateway", "DynamoDB", "SQS", "SNS", "CloudWatchLogs")


def _keep_only_relevant_managed_policies() -> None:
    import json

    import moto.iam.models as iam_models

    data = json.loads(iam_models.aws_managed_policies_data)
    keep = {n: d for n, d in data.items() if any(s in n for s in _MANAGED_POLICY_SERVICES)}
    # moto reads this module global each time it builds an IAM backend (moto 5.2.5).
    iam_models.aws_managed_policies_data = json.dumps(keep)
