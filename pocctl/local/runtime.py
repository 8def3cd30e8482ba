"""LocalAWS: the embedded AWS with the parts moto lacks — the whole pipeline runs offline.

    with LocalAWS(port=0, log=print) as aws:
        aws.endpoint_url                  # http://127.0.0.1:PORT
        aws.invoke_url(api_id, "prod")    # the REST API's data plane on the same port

moto's server (pocctl.local.server) plus: Lambda pollers for the event source mappings
(pollers.py), an executor that runs each function's deployed zip (executor.py, also behind the
Invoke API), and the REST API data plane (gateway.py).
"""

from __future__ import annotations

import base64
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pocctl.local import moto_hooks, sns_email
from pocctl.local.cwlogs import LogShipper
from pocctl.local.executor import Executor, FunctionSpec
from pocctl.local.gateway import ApiGateway
from pocctl.local.iam_authz import WORKER_MAX_AGE, ExecutionRoleCredentials
from pocctl.local.metrics import Metrics, stream_iterator_age_ms
from pocctl.local.operation import operation_of
from pocctl.local.persist import Persistence, Restored, Unfinished, unfinished_work
from pocctl.local.pollers import MappingManager, lambda_invoker
from pocctl.local.server import LOCAL_REGION, EmbeddedAWS, call_app, local_client

logger = logging.getLogger("pocctl.local")

_MAPPING_CHANGES = (
    "CreateEventSourceMapping",
    "UpdateEventSourceMapping",
    "DeleteEventSourceMapping",
)

LogFn = Callable[[str], None]


class LocalAWS:
    """moto on 127.0.0.1 plus Lambda pollers, a Lambda executor and the API Gateway data plane.

    Other processes use it through ``endpoint_url`` like any AWS endpoint. Only one LocalAWS
    should run per process: moto keeps its state in process-wide backends.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        log: LogFn | None = None,
        host: str = "127.0.0.1",
        region: str = LOCAL_REGION,
        refresh_interval: float = 1.0,
        workers_per_function: int = 2,
        admin: bool = False,
        data_dir: Path | None = None,
    ) -> None:
        self._user_log = log
        self.region = region
        self._gateway = ApiGateway(
            self._client, log=self._emit, region=region, api_home=self._rest_api_home
        )
        # --data DIR: snapshots of the whole state (persist.py); None keeps it in memory only.
        self.persistence = Persistence(data_dir, log=self._emit) if data_dir else None
        self.restored: Restored | None = None
        self.unfinished: Unfinished | None = None  # what a stop without --data dropped
        self._checkpoints: dict[tuple[str, str], dict[str, Any]] = (
            self.persistence.checkpoints if self.persistence else {}
        )
        self.server = EmbeddedAWS(
            port,
            host=host,
            middleware=[
                *([self.persistence.middleware] if self.persistence else []),
                moto_hooks.invoke_middleware(self._run_invoke),
                self._watch_mappings,
                self._watch_admin_reset,
                self._gateway.wrap,
            ],
            admin=admin,
        )
        # The CloudWatch metrics AWS's services publish (metrics.py), written into moto's
        # CloudWatch backend under the server's lock.
        self.metrics = Metrics(self.server.lock)
        self._refresh_interval = refresh_interval
        self._workers_per_function = workers_per_function
        self.executor: Executor | None = None
        self.mappings: MappingManager | None = None
        self._shipper: LogShipper | None = None
        self._role_credentials: ExecutionRoleCredentials | None = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._async: list[threading.Thread] = []
        self._stopped = threading.Event()
        self._started = False
        self._drop_email_listener: Callable[[], None] = lambda: None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url

    def invoke_url(self, api_id: str, stage: str) -> str:
        """Where the REST API ``api_id``'s stage answers (LocalStack's URL convention)."""
        return f"{self.endpoint_url}/restapis/{api_id}/{stage}/_user_request_/"

    def start(self) -> LocalAWS:
        """Serve; with --data, first restore DIR's snapshot (persist.DataDirError if unusable)."""
        # Before the restore: moto's objects are read back into patched classes.
        moto_hooks.install_all()
        if self.persistence is not None:
            self.restored = self.persistence.open()
        self.server.start()
        # The console shows each email the embedded SNS "sends" (to whom, subject).
        self._drop_email_listener = sns_email.on_email(
            lambda e: self._emit(f"email to {e.to}: {e.subject}")
        )
        if self.persistence is not None:
            # Before the pollers start: their first batch already holds the snapshot gate.
            self.persistence.start(self.server.request_lock)
        self._gateway.endpoint_url = self.endpoint_url
        self._gateway.on_request = self.metrics.api_request
        self.metrics.start()
        app = self.server.app
        self._gateway.send = lambda request: call_app(app, request)
        self._stopped.clear()
        # Each function's logs go to CloudWatch Logs in the function's own region, as on AWS.
        self._shipper = LogShipper(lambda region: self._client("logs", region=region))
        # Lambda names the session after the function (assumed-role/ROLE/FUNCTION), which may
        # be shorter than AssumeRole's 2-character minimum for callers: no client-side check.
        self._role_credentials = ExecutionRoleCredentials(
            self._client("sts", parameter_validation=False), self._client("iam")
        )
        self.executor = Executor(
            self.endpoint_url,
            log=self._emit,
            logs_sink=self._shipper,
            workers_per_function=self._workers_per_function,
            # Each function calls AWS as its execution role (iam_authz), as on AWS.
            credentials=self._role_credentials,
            worker_max_age=WORKER_MAX_AGE,
        )
        self.mappings = MappingManager(
            clients=self._client,
            invoke=lambda_invoker(
                lambda region: self._client("lambda", region=region, read_timeout=910)
            ),
            # Every region moto has a Lambda backend for: mappings live in their function's
            # region, and the embedded AWS serves any region, as AWS does.
            regions=self._lambda_regions,
            report=self._report_mapping_result,
            log=self._emit,
            refresh_interval=self._refresh_interval,
            checkpoints=self._checkpoints,
            gate=self.persistence.gate if self.persistence else None,
        )
        self.mappings.start()
        self._started = True
        return self

    def stop(self) -> None:
        """Stop pollers, workers, log shipping and the server; no thread is left running."""
        if not self._started:
            return
        self._started = False
        self._drop_email_listener()
        # The pollers wind down while the executor stops: a poller waiting on a function that
        # still runs is freed when its worker is killed, instead of holding the stop (and
        # `pocctl local`'s exit) until its join times out.
        stopping = None
        if self.mappings is not None:
            stopping = threading.Thread(
                target=self.mappings.stop, name="pocctl-stop-pollers", daemon=True
            )
            stopping.start()
        if self.executor is not None:
            self.executor.stop()
        if stopping is not None:
            stopping.join(timeout=10)
        for t in self._async:
            t.join(timeout=5)
        if self._shipper is not None:
            self._shipper.stop()
        self.metrics.stop()
        self.server.stop()
        if self.persistence is not None:
            self.persistence.close()  # the last snapshot, with every poller settled
        else:
            # A request stuck in moto must not hold the stop: count only if the lock comes.
            lock = self.server.request_lock
            if lock.acquire(timeout=2.0):
                try:
                    self.unfinished = unfinished_work(self._checkpoints)
                finally:
                    lock.release()
        self._clients.clear()
        self._stopped.set()

    def reset(self) -> None:
        """Forget every resource, poller position and warm worker (between tests)."""
        assert self.mappings is not None and self.executor is not None
        self.mappings.pause()
        try:
            if self._shipper is not None:
                self._shipper.flush()
                self._shipper.forget()
            self._forget_sessions()
            self.metrics.flush()  # what came before the reset goes with the old backends
            self.server.reset()
        finally:
            self.mappings.resume()

    def serve_forever(self, *, install_sigterm: bool = True) -> None:
        """Run until Ctrl-C (or SIGTERM, or stop() from another thread), then stop cleanly."""
        if not self._started:
            self.start()
        previous = None
        if install_sigterm and threading.current_thread() is threading.main_thread():

            def on_term(signum: int, frame: Any) -> None:
                raise KeyboardInterrupt

            previous = signal.signal(signal.SIGTERM, on_term)
        try:
            while not self._stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self.stop()

    def __enter__(self) -> LocalAWS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tools and tests --------------------------------------------------------

    def wait_for_refresh(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until the pollers have re-read the mappings ``count`` more times."""
        assert self.mappings is not None
        return self.mappings.wait_for_refresh(count, timeout)

    def polled_mappings(self) -> set[str]:
        """UUIDs of the event source mappings being polled right now."""
        return self.mappings.polled() if self.mappings is not None else set()

    def flush_logs(self) -> None:
        """Wait until handler output so far is in CloudWatch Logs."""
        if self._shipper is not None:
            self._shipper.flush()

    # -- internals ------------------------------------------------------------------------

    def _emit(self, line: str) -> None:
        if self._user_log is not None:
            try:
                self._user_log(line)
            except Exception:
                logger.exception("log callable failed")
        else:
            logger.info("%s", line)

    def _watch_mappings(self, app: Any) -> Any:
        """WSGI middleware: a created, updated or deleted event source mapping takes effect
        before the API call returns (the periodic re-read stays as the safety net)."""

        def middleware(environ: dict[str, Any], start_response: Any) -> Any:
            op = operation_of(environ)
            if not (op.service == "lambda" and op.name in _MAPPING_CHANGES):
                return app(environ, start_response)
            body = list(app(environ, start_response))
            if self.mappings is not None:
                try:
                    self.mappings.refresh()
                except Exception:
                    # The periodic refresh will catch up; the client's call itself succeeded.
                    logger.warning("could not re-read event source mappings", exc_info=True)
            return body

        return middleware

    def _watch_admin_reset(self, app: Any) -> Any:
        """WSGI middleware: after moto's POST /moto-api/reset (`pocctl local --admin`) no role
        session exists any more: warm workers and the API's integration drop the credentials
        they hold, as reset() does (otherwise every later call would be refused as unknown)."""

        def middleware(environ: dict[str, Any], start_response: Any) -> Any:
            op = operation_of(environ)
            if not (op.protocol == "admin" and op.name.startswith("/moto-api/reset")):
                return app(environ, start_response)
            body = list(app(environ, start_response))
            self._forget_sessions()
            return body

        return middleware

    def _forget_sessions(self) -> None:
        """A reset erased every STS session: warm workers, the execution-role cache and the API's
        integration drop the credentials they hold (later calls would be refused as unknown)."""
        if self.executor is not None:
            self.executor.kill_workers()
        if self._role_credentials is not None:
            self._role_credentials.forget()
        self._gateway.forget()

    def _client(self, service: str, *, region: str | None = None, **config: Any) -> Any:
        """The embedded AWS's own client of ``service`` in ``region`` (default: ``region``
        given to LocalAWS): one per (service, region, config), as resources are regional."""
        region = region or self.region
        key = f"{service}/{region}/" + json.dumps(config, sort_keys=True)
        with self._clients_lock:
            client = self._clients.get(key)
            if client is None:
                # The embedded AWS calling itself: straight into the app, no loopback HTTP.
                client = self._clients[key] = self.server.in_process(
                    local_client(self.endpoint_url, service, region=region, **config)
                )
            return client

    def _lambda_regions(self) -> list[str]:
        """The regions with a Lambda backend, and always LocalAWS's own (under the lock)."""
        with self.server.request_lock:
            return sorted({self.region, *moto_hooks.lambda_regions()})

    def _rest_api_home(self, api_id: str) -> tuple[str, str] | None:
        """Which account and region hold the REST API (read under the server's lock: moto's
        dicts change while other requests run)."""
        with self.server.request_lock:
            return moto_hooks.rest_api_home(api_id)

    def _report_mapping_result(self, uuid: str, function_arn: str, result: str) -> None:
        """A poller's batch outcome, as the mapping's LastProcessingResult. Under the server's
        lock: moto's objects are changed one request at a time."""
        with self.server.request_lock:
            moto_hooks.record_processing_result(function_arn, uuid, result)

    def _run_invoke(
        self, fn: Any, body: Any, request_headers: Any, response_headers: dict[str, Any]
    ) -> bytes:
        """Serve moto's ``LambdaFunction.invoke`` (Invoke API) with the executor."""
        executor = self.executor
        if executor is None:
            raise RuntimeError("LocalAWS is not running")
        spec = FunctionSpec(**moto_hooks.lambda_function_fields(fn))
        event = json.loads(body) if body else {}
        inv_type = request_headers.get("x-amz-invocation-type") or "RequestResponse"
        if inv_type == "DryRun":
            return b""
        if inv_type == "Event":
            # Asynchronous invocation: accepted now, run in the background.
            t = threading.Thread(
                target=self._metered_invoke,
                args=(executor, spec, event),
                name=f"pocctl-async-{spec.name}",
                daemon=True,
            )
            self._async = [a for a in self._async if a.is_alive()] + [t]
            t.start()
            return b""
        result = self._metered_invoke(executor, spec, event)
        if result.error is not None:
            response_headers["x-amz-function-error"] = "Unhandled"
        if (request_headers.get("x-amz-log-type") or "None") == "Tail":
            # "LogResult: The last 4 KB of the execution log, which is base64-encoded" (Lambda API
            # reference, Invoke): START … END, REPORT, as written to CloudWatch Logs.
            tail = result.log_tail()
            response_headers["x-amz-log-result"] = base64.b64encode(tail.encode()).decode()
        response_headers["x-amz-executed-version"] = "$LATEST"
        return result.payload

    def _metered_invoke(self, executor: Executor, spec: FunctionSpec, event: Any) -> Any:
        """One invocation, with the AWS/Lambda metrics Lambda publishes for it."""
        self.metrics.invocation_started(spec.arn)
        failed, duration = True, 0.0
        try:
            result = executor.invoke(spec, event)
            failed, duration = result.error is not None, result.duration_ms
            return result
        finally:
            age = stream_iterator_age_ms(event, time.time())
            self.metrics.invocation_ended(spec.arn, failed, duration, age)
