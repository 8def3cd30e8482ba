"""moto's server, in-process, bound to 127.0.0.1 only, behind one request pipeline.

Every request goes through ``Pipeline`` (the outermost WSGI layer), in this order:

1. its body is read completely, with a deadline and a size bound, before anything else runs
   and before any lock is taken: a client that trickles or never finishes its body is cut off
   (408) and holds up no one;
2. its AWS operation is worked out once (pocctl.local.operation) and left in the environ;
3. named checks run in order, each may answer instead of the app: ``host`` (the Host header
   names this server on the loopback interface: no DNS rebinding), ``browser`` (no web page:
   a foreign Origin or a cross-site fetch is refused), ``admin`` (moto's /moto-api only with
   --admin), ``signature`` (an AWS API request is SigV4-signed or presigned, as AWS requires;
   a deployed API's invoke URL stays open, as an API with authorization NONE is on AWS),
   ``iam`` (a request signed with a role session's credentials, issued by the embedded STS, is
   authorized against the role's policies and the queue policy; unknown credentials are
   refused; the local admin credentials pass: pocctl.local.iam_authz);
4. the app: pocctl's middleware, then moto, one request at a time (``one_at_a_time``); CORS
   headers never leave (moto's flask-cors would allow every origin).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from pocctl.local.operation import INVOKE_URL, OPERATION, Operation, operation_of, parse_operation

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


# The signature version of the embedded AWS's own in-process clients (see in_process_signer).
IN_PROCESS_SIGNER = "pocctl-in-process-v4"


def in_process_signer() -> type:
    """SigV4 without its hashing, for requests that never leave this process (call_app).

    The request gets SigV4's headers (X-Amz-Date, the session token, an Authorization header
    naming the access key, date, region and service) and a signature of zeros instead of the
    canonical request, its SHA-256 and four HMACs (~5% of the server's CPU under a spike). The
    embedded AWS checks a signature's shape (signature_check) and reads the credential scope
    (moto: account, region; iam_authz: the access key), as before; it never verified the HMAC,
    whose secret every local tool shares. Clients other processes use sign for real."""
    from botocore import auth

    cls = auth.AUTH_TYPE_MAPS.get(IN_PROCESS_SIGNER)
    if cls is None:

        class InProcessSigV4(auth.SigV4Auth):  # type: ignore[misc]
            def canonical_request(self, request: Any) -> str:
                return ""

            def string_to_sign(self, request: Any, canonical_request: str) -> str:
                return ""

            def signature(self, string_to_sign: str, request: Any) -> str:
                return "0" * 64

        cls = auth.AUTH_TYPE_MAPS[IN_PROCESS_SIGNER] = InProcessSigV4
    return cls  # type: ignore[no-any-return]


def _in_process_signature(signature_version: Any = None, **_: Any) -> str | None:
    """choose-signer: SigV4 becomes in_process_signer; anything else stays."""
    return IN_PROCESS_SIGNER if signature_version == "v4" else None


# -- one request at a time into moto ---------------------------------------------------------


class ServerLock:
    """The lock that lets one request at a time into moto (see one_at_a_time).

    It is released while moto itself calls out over HTTP (SNS delivering to an HTTP endpoint,
    the recorder replaying requests, ...): such a call may reach this very server, whose other
    threads would wait for ever for the lock its caller holds. Like the GIL around I/O. The
    moto code that calls out has built the lists it walks before it does (SNS's subscribers,
    the recorder's entries), so another request changing a backend meanwhile disturbs nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = threading.local()
        _LOCKS.add(self)

    def __enter__(self) -> ServerLock:
        self._lock.acquire()
        self._depth.n = getattr(self._depth, "n", 0) + 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth.n -= 1
        self._lock.release()

    def acquire(self, timeout: float = -1) -> bool:
        """Take the lock as ``with`` does, waiting at most ``timeout`` seconds (persist.py)."""
        if not self._lock.acquire(timeout=timeout):
            return False
        self._depth.n = getattr(self._depth, "n", 0) + 1
        return True

    def release(self) -> None:
        self.__exit__()

    def held(self) -> bool:
        """Whether the calling thread holds the lock."""
        return getattr(self._depth, "n", 0) > 0

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Give the lock up entirely (whatever the nesting) for the block, then take it back."""
        depth = getattr(self._depth, "n", 0)
        for _ in range(depth):
            self._lock.release()
        self._depth.n = 0
        try:
            yield
        finally:
            for _ in range(depth):
                self._lock.acquire()
            self._depth.n = depth


_LOCKS: weakref.WeakSet[ServerLock] = weakref.WeakSet()


def locks_held() -> list[ServerLock]:
    """The ServerLocks the calling thread holds (moto_hooks releases them around moto's
    outgoing HTTP calls: SNS http/https subscriptions, the recorder's replay, EventBridge API
    destinations, Firehose HTTP endpoints)."""
    return [lock for lock in list(_LOCKS) if lock.held()]


def one_at_a_time(app: Any, lock: ServerLock | None = None) -> Any:
    """moto's backends are not thread-safe: a request that walks a backend's dict while another
    request adds to it fails with HTTP 500 "dictionary changed size during iteration" (seen with
    a parallel `up`: IAM AttachRolePolicy beside CreatePolicy; and DescribeTable beside PutItem
    under load). AWS has no such failure, so requests reach moto one at a time, except those
    that wait (Operation.waits). moto's work holds the GIL anyway: little is lost. The request's
    body has been read before (Pipeline): nothing under this lock waits for a client."""
    lock = lock or ServerLock()

    def middleware(environ: dict[str, Any], start_response: Any) -> Any:
        if operation_of(environ).waits:
            return app(environ, start_response)
        with lock:
            return list(app(environ, start_response))

    middleware.lock = lock  # type: ignore[attr-defined]  # for snapshots (persist.py)
    return middleware


# -- reading the request body --------------------------------------------------------------

# A body must arrive whole within BODY_DEADLINE seconds, with no pause longer than BODY_IDLE.
BODY_DEADLINE = 10.0
BODY_IDLE = 5.0
# Lambda refuses larger requests: "RequestEntityTooLargeException: Request must be smaller than
# 69905067 bytes for the CreateFunction operation" (HTTP 413): a 50 MB zip, base64-encoded in
# JSON (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html). No other API
# the embedded AWS serves takes more.
API_BODY_LIMIT = 69_905_067
# API Gateway REST APIs: "Payload size 10 MB", larger is the REQUEST_TOO_LARGE gateway response,
# 413 (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html,
# .../supported-gateway-response-types.html).
INVOKE_BODY_LIMIT = 10 * 1024 * 1024
# Set by the request handler: the connection's buffered reader (werkzeug wraps chunked bodies
# in a reader without deadlines) and a callable that stops reading from the client.
RAW_INPUT = "pocctl.raw_input"
CUT_OFF = "pocctl.cut_off"


class BodyError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _DeadlineReader:
    """Reads a request body from the connection: every read waits at most BODY_IDLE and never
    past the deadline."""

    def __init__(self, rfile: Any, sock: socket.socket, deadline: float, idle: float) -> None:
        self._rfile, self._sock = rfile, sock
        self._deadline, self._idle = deadline, idle
        self._pending = b""

    def _some(self, n: int) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:n], self._pending[n:]
            return data
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise BodyError(408, "the request body did not arrive in time")
        self._sock.settimeout(min(self._idle, left))
        try:
            data = self._rfile.read1(n)
        except TimeoutError as exc:
            raise BodyError(408, "the request body did not arrive in time") from exc
        except OSError as exc:
            raise BodyError(400, f"the connection failed while reading the body: {exc}") from exc
        if not data:
            raise BodyError(400, "the client closed the connection before the end of the body")
        return data

    def exactly(self, n: int) -> bytes:
        parts, got = [], 0
        while got < n:
            data = self._some(min(n - got, 1 << 20))
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def line(self, limit: int) -> bytes:
        text = b""
        while b"\n" not in text:
            if len(text) > limit:
                raise BodyError(400, "a chunk header of the body is too long")
            text += self._some(256)
        head, _, rest = text.partition(b"\n")
        self._pending = rest + self._pending
        return head

    def chunked(self, limit: int) -> bytes:
        """A ``Transfer-Encoding: chunked`` body (RFC 9112, section 7.1)."""
        body = bytearray()
        while True:
            try:
                size = int(self.line(1024).split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise BodyError(400, "a chunk size of the body is not a number") from exc
            if size == 0:
                while self.line(8192).strip():  # trailer fields, then an empty line
                    pass
                return bytes(body)
            if len(body) + size > limit:
                raise BodyError(413, f"the request body is over {limit} bytes")
            body += self.exactly(size)
            self.exactly(2)  # the CRLF after the chunk


def read_body(environ: dict[str, Any], limit: int, *, deadline: float = BODY_DEADLINE) -> bytes:
    """The whole request body. From a connection (the HTTP server put RAW_INPUT and the socket
    in the environ): within ``deadline`` seconds and ``limit`` bytes, else BodyError. In
    process (call_app): already in memory."""
    length_text = str(environ.get("CONTENT_LENGTH") or "").strip()
    chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
    try:
        length = int(length_text) if length_text else 0
    except ValueError as exc:
        raise BodyError(400, "the Content-Length header is not a number") from exc
    if length < 0:
        raise BodyError(400, "the Content-Length header is negative")
    if length > limit:
        raise BodyError(413, f"the request body is over {limit} bytes")
    sock, rfile = environ.get("werkzeug.socket"), environ.get(RAW_INPUT)
    if sock is None or rfile is None:
        stream = environ["wsgi.input"]
        return bytes(stream.read(length) if length else b"")
    if not chunked and not length:
        return b""
    idle = sock.gettimeout() or BODY_IDLE
    reader = _DeadlineReader(rfile, sock, time.monotonic() + deadline, idle)
    try:
        return reader.chunked(limit) if chunked else reader.exactly(length)
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(idle)  # back to the handler's timeout, to write the answer


# -- answers ---------------------------------------------------------------------------------


@dataclass
class Answer:
    """An answer the pipeline gives instead of the app."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout"}
_REASONS[413] = "Content Too Large"


def refuse(status: int, reason: str) -> Answer:
    """A one-line, plain-text refusal."""
    return Answer(status, (reason + "\n").encode(), [("Content-Type", "text/plain; charset=utf-8")])


def _shown(value: str) -> str:
    """A client-chosen value, quoted and bounded, for a one-line reason."""
    return repr(value[:80] + ("..." if len(value) > 80 else ""))


# AWS's "common errors" (every service's API reference has the page, e.g.
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html,
# https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html):
# MissingAuthenticationToken, 403, "The request must contain either a valid (registered) AWS
# access key ID or X.509 certificate."; IncompleteSignature, 400, "The request signature does
# not conform to AWS standards." DynamoDB answers its own, as HTTP 400:
# MissingAuthenticationTokenException, "Request must contain a valid (registered) AWS Access Key
# ID." (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html).
# REST services behind API Gateway's front door (Lambda, API Gateway's own API) answer an
# unsigned request 403 {"message": "Missing Authentication Token"}
# (https://repost.aws/knowledge-center/api-gateway-authentication-token-errors).
_MISSING = (
    "MissingAuthenticationToken",
    403,
    "The request must contain either a valid (registered) AWS access key ID or X.509 certificate.",
)
_INCOMPLETE = (
    "IncompleteSignature",
    400,
    "The request signature does not conform to AWS standards.",
)


def aws_auth_error(op: Operation, missing: bool) -> Answer:
    """The error AWS answers an unsigned (``missing``) or badly signed request, in the
    request's protocol."""
    code, status, message = _MISSING if missing else _INCOMPLETE
    if op.protocol == "json":
        if op.service == "dynamodb":
            status = 400
            if missing:
                message = "Request must contain a valid (registered) AWS Access Key ID."
            code += "Exception"
        body = json.dumps({"__type": code, "message": message}).encode()
        return Answer(status, body, [("Content-Type", "application/x-amz-json-1.0")])
    if op.protocol == "query":
        body = (
            '<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
            "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
        ).encode()
        return Answer(status, body, [("Content-Type", "text/xml")])
    text = "Missing Authentication Token" if missing else message
    return Answer(
        403 if missing else status,
        json.dumps({"message": text}).encode(),
        [("Content-Type", "application/json"), ("x-amzn-ErrorType", code + "Exception")],
    )


# -- the checks ------------------------------------------------------------------------------


@dataclass
class Request:
    """What the checks see: the environ, the whole body, the operation."""

    environ: dict[str, Any]
    body: bytes
    op: Operation

    def header(self, name: str) -> str:
        return str(self.environ.get("HTTP_" + name.upper().replace("-", "_"), ""))


Step = Callable[[Request], "Answer | None"]
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def _split_host(host: str) -> tuple[str, str]:
    """("name", "port") of a Host header value; an IPv6 literal keeps its brackets."""
    if host.startswith("["):
        name, _, rest = host.partition("]")
        if rest and not rest.startswith(":"):
            return "", ""  # not a host at all
        return name + "]", rest[1:]
    name, _, port = host.partition(":")
    return name, port


def host_check(port: Callable[[], int]) -> Step:
    """The Host header must name this server: 127.0.0.1, localhost or [::1], with its port
    (SDKs and browsers send host:port, leaving the port out only when it is HTTP's default, 80:
    RFC 9110, section 7.2). A page whose own name resolves to 127.0.0.1 (DNS rebinding) sends
    its own name, and is refused."""

    def check(req: Request) -> Answer | None:
        host = str(req.environ.get("HTTP_HOST", ""))
        name, given = _split_host(host.lower())
        if name in LOOPBACK_NAMES and (given or "80") == str(port()):
            return None
        return refuse(
            403,
            f"refused: Host {_shown(host)} is not this embedded AWS "
            f"(use http://127.0.0.1:{port()})",
        )

    return check


def _loopback_origin(origin: str) -> bool:
    parts = urlsplit(origin.lower())
    return parts.scheme in ("http", "https") and _split_host(parts.netloc)[0] in LOOPBACK_NAMES


def browser_check(req: Request) -> Answer | None:
    """No web page may drive the embedded AWS: browsers name the page's origin in ``Origin``
    (every cross-origin request but a simple GET) and say ``Sec-Fetch-Site: cross-site`` on
    any request another site's page makes (https://fetch.spec.whatwg.org/#origin-header,
    https://www.w3.org/TR/fetch-metadata/). A page served from this machine may."""
    origin = req.header("Origin")
    if origin and not _loopback_origin(origin):
        return refuse(403, f"refused: requests from web pages (Origin {_shown(origin)})")
    if req.header("Sec-Fetch-Site") == "cross-site":
        return refuse(403, "refused: a cross-site request from a web browser")
    return None


def admin_check(admin: bool) -> Step:
    """moto's admin API (/moto-api: reset, data.json, the recorder, seed, config) is off unless
    the server was started with admin on (`pocctl local --admin`)."""

    def check(req: Request) -> Answer | None:
        if req.op.protocol == "admin" and not admin:
            return refuse(403, "refused: moto's admin API is off (start `pocctl local --admin`)")
        return None

    return check


# "AWS4-HMAC-SHA256 Credential=KEY/YYYYMMDD/REGION/SERVICE/aws4_request,
#  SignedHeaders=host;x-amz-date, Signature=<64 hex>"
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-signing-elements.html
_SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=[^/,\s]+/\d{8}/[a-z0-9-]+/[a-z0-9-]+/aws4_request,\s*"
    r"SignedHeaders=[a-z0-9-]+(;[a-z0-9-]+)*,\s*Signature=[0-9a-f]{64}$"
)
# A presigned URL carries the signature in its query string instead
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html#add-signature-to-request).
_PRESIGNED = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")


def signature_check(req: Request) -> Answer | None:
    """An AWS API request must be signed (SigV4 header) or presigned, as on AWS. Only the shape
    is checked: the embedded AWS's credentials are the fake ones every tool uses. A deployed
    API's invoke URL is open (authorization NONE, as pocctl's API has on AWS) and the admin
    API has its own check."""
    if req.op.protocol in ("invoke-url", "admin"):
        return None
    auth = req.header("Authorization")
    if auth:
        return None if _SIGV4.match(auth) else aws_auth_error(req.op, missing=False)
    query = parse_qs(str(req.environ.get("QUERY_STRING", "")))
    if all(query.get(k) for k in _PRESIGNED) and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]:
        return None
    return aws_auth_error(req.op, missing=True)


# -- the pipeline ----------------------------------------------------------------------------


def _strip_cors(start_response: Any) -> Any:
    """No Access-Control-* header ever leaves: moto's flask-cors would allow any origin."""

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
        return start_response(status, kept, exc_info)

    return start


class Pipeline:
    """The outermost WSGI layer: read the body, work out the operation, run the checks in
    order, then the app (see the module's doc)."""

    def __init__(self, app: Any, steps: list[tuple[str, Step]]) -> None:
        self.app = app
        self.steps = list(steps)

    def insert(self, name: str, step: Step, *, before: str) -> None:
        """Run ``step`` just before the step named ``before``."""
        names = [n for n, _ in self.steps]
        self.steps.insert(names.index(before), (name, step))

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = str(environ.get("PATH_INFO", ""))
        limit = INVOKE_BODY_LIMIT if INVOKE_URL.match(path) else API_BODY_LIMIT
        try:
            body = read_body(environ, limit, deadline=BODY_DEADLINE)
        except BodyError as exc:
            cut_off = environ.get(CUT_OFF)
            if cut_off is not None:
                cut_off()
            logger.info("embedded AWS: %s %s: %s", environ.get("REQUEST_METHOD"), path, exc)
            if exc.status == 413 and limit == INVOKE_BODY_LIMIT:
                # An invoke URL answers as API Gateway's front door does (gateway.py).
                from pocctl.local.gateway import PAYLOAD_TOO_LARGE

                return self._answer(Answer(*PAYLOAD_TOO_LARGE), start_response)
            return self._answer(refuse(exc.status, exc.reason), start_response)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ.pop("wsgi.input_terminated", None)
        op = environ[OPERATION] = parse_operation(environ, body)
        request = Request(environ, body, op)
        for name, step in self.steps:
            answer = step(request)
            if answer is not None:
                logger.debug("embedded AWS: %s %s answered by %s", op.method, path, name)
                return self._answer(answer, start_response)
        return self.app(environ, _strip_cors(start_response))

    @staticmethod
    def _answer(answer: Answer, start_response: Any) -> list[bytes]:
        reason = _REASONS.get(answer.status, "Error")
        headers = answer.headers + [("Content-Length", str(len(answer.body)))]
        start_response(f"{answer.status} {reason}", headers)
        return [answer.body]


def _handler_class() -> type:
    """moto's request handler, quiet, with a socket timeout, and handing the pipeline what it
    needs to read a body with a deadline."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietHandler(MotoRequestHandler):  # type: ignore[misc]
        # Every read from the client (request line, headers, body) waits at most this long:
        # a silent client ends, and its thread with it.
        timeout = BODY_IDLE

        def make_environ(self) -> dict[str, Any]:
            environ: dict[str, Any] = super().make_environ()
            environ[RAW_INPUT] = self.rfile
            environ[CUT_OFF] = self._cut_off
            return environ

        def _cut_off(self) -> None:
            """Read nothing more from this client. After the answer werkzeug drains what is
            left of a body, blocking 10 MB at a time: a trickling client would hold the
            thread for hours."""
            self.rfile = io.BytesIO()
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RD)

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

    return QuietHandler


class EmbeddedAWS:
    """A moto server on 127.0.0.1 (port 0 picks a free one), behind the request pipeline,
    optionally wrapped in middleware (applied in order, the last outermost, all inside the
    pipeline). ``admin`` turns moto's admin API (/moto-api) on.

    Use as a context manager, or call start()/stop().
    """

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        middleware: list[Middleware] | None = None,
        admin: bool = False,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the embedded AWS only listens on the loopback interface")
        self.host = host
        self.port = port
        self.admin = admin
        self._middleware = list(middleware or [])
        self.lock = ServerLock()
        self.pipeline = Pipeline(
            None,
            [
                ("host", host_check(lambda: self.port)),
                ("browser", browser_check),
                ("admin", admin_check(admin)),
                ("signature", signature_check),
            ],
        )
        from pocctl.local.iam_authz import Authorizer

        self.authz = Authorizer(self.lock)
        self.pipeline.steps.append(("iam", self.authz.check))
        from pocctl.local.memory import MemoryReturn

        self.memory = MemoryReturn()
        self.pipeline.steps.append(("memory", self.memory.step))
        from pocctl.local import sns_email

        # SNS's emails: the confirm link and `pocctl inbox`'s page, unsigned as AWS's link is.
        self.pipeline.insert("sns-email", sns_email.pages(self.lock), before="signature")
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> EmbeddedAWS:
        # AWS-managed policies (AmazonAPIGatewayPushToCloudWatchLogs) exist in every account;
        # moto only has them when told before its IAM backend is first built.
        os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from pocctl.local import moto_hooks

        # Every change to moto, from one registry (moto_hooks.PATCHES; POCCTL_MOTO_PATCHES).
        moto_hooks.install_all()
        from werkzeug.serving import make_server

        app: Any = one_at_a_time(DomainDispatcherApplication(create_backend_app), self.lock)
        # Outside the lock: a policy change drops the authorizer's cache before and after it.
        app = self.authz.wrap(app)
        self.request_lock = self.lock  # held, no request reaches moto (persist.py)
        for wrap in self._middleware:
            app = wrap(app)
        self.pipeline.app = app
        self.app = self.pipeline
        self._server = make_server(
            self.host, self.port, self.pipeline, threaded=True, request_handler=_handler_class()
        )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="pocctl-embedded-aws",
            daemon=True,
        )
        self._thread.start()
        return self

    def in_process(self, client: Any) -> Any:
        """``client`` (made for this server's endpoint) sends its requests straight into the
        server's app in the calling thread (see call_app). For the embedded AWS's own callers:
        pollers, log shipper, gateway. Code a user runs (handlers, the CLI) goes over HTTP."""

        def send(request: Any, **_: Any) -> Any:
            return call_app(self.app, request)

        in_process_signer()
        client.meta.events.register_first("choose-signer", _in_process_signature)
        client.meta.events.register_first("before-send", send)
        return client

    def stop(self) -> None:
        """Stop listening. Requests still being served run on in daemon threads: none is
        waited for (a client holding a connection open must not hold up the stop)."""
        self.memory.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def reset(self) -> None:
        """Forget every resource: what moto's POST /moto-api/reset does, in this process and
        under the server's lock (no request sees a half-reset account)."""
        from moto.moto_api._internal.models import moto_api_backend

        with self.lock:
            moto_api_backend.reset()
            self.authz.forget()

    def __enter__(self) -> EmbeddedAWS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
