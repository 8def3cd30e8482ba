"""Parallel `up` against sequential `up` and the critical path, under a latency model of AWS.

The embedded AWS answers in milliseconds; AWS does not. A botocore hook on every client pocctl
makes adds, per operation, the latency below, and answers CreateFunction and
CreateEventSourceMapping with the IAM-propagation error AWS gives ("The role defined for the
function cannot be assumed by Lambda.", Lambda API Reference, CreateFunction) until the
function's role is IAM_PROPAGATION seconds old — pocctl's own retry loop waits that out, as on
AWS.

Where the numbers come from (estimates for us-east-1 from a client in the same region; what
matters here is their order of magnitude and which calls dominate, not the last 100 ms):
- IAM: a write takes a few hundred ms, and "changes ... are not immediately visible": IAM is
  eventually consistent, "a change ... can take time to become visible from all services" (IAM
  User Guide, "Troubleshoot IAM: changes that I make are not always immediately visible").
  A Lambda create right after CreateRole fails with "The role defined for the function cannot be
  assumed by Lambda" for about 5-10 s (public reports, e.g. the Serverless Framework, Terraform's
  aws_lambda_function retries of that error; Chalice retries 30 x 5 s). Model: 8 s.
- DynamoDB: "CreateTable is an asynchronous operation ... DynamoDB sets the TableStatus to
  CREATING" until ACTIVE (DynamoDB API Reference, CreateTable); an on-demand table with no
  indexes is typically ACTIVE in ~5 s. Enabling a stream (UpdateTable) is UPDATING for a few s.
  The embedded AWS answers ACTIVE at once, so that wait is folded into the call's latency.
- Lambda: after CreateFunction "the function is in the Pending state" until its resources are
  ready, typically a few seconds without a VPC (Lambda Developer Guide, "Lambda function
  states"). Folded into CreateFunction, as above. CreateEventSourceMapping returns at once.
- API Gateway control-plane calls take ~100-300 ms; CreateDeployment ~1 s.
- SQS, SNS, STS calls and every read: ~50-150 ms.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import Bench, Section, median, new_app, ratio, secs

IAM_PROPAGATION = 8.0
READ = 0.08
DEFAULT_WRITE = 0.15
# Seconds per mutating operation (model time; scaled by --quick). Reads cost READ.
LATENCY = {
    "CreatePolicy": 0.4,
    "CreatePolicyVersion": 0.4,
    "DeletePolicyVersion": 0.3,
    "CreateRole": 0.4,
    "AttachRolePolicy": 0.3,
    "PutRolePolicy": 0.3,
    "UpdateAssumeRolePolicy": 0.3,
    "TagRole": 0.2,
    "CreateTable": 5.0,  # + the wait until ACTIVE
    "UpdateTable": 3.0,  # stream enabling: UPDATING → ACTIVE
    "CreateQueue": 0.2,
    "SetQueueAttributes": 0.1,
    "CreateTopic": 0.15,
    "Subscribe": 0.2,
    "CreateFunction": 3.0,  # + Pending → Active
    "UpdateFunctionCode": 2.0,
    "UpdateFunctionConfiguration": 2.0,
    "CreateEventSourceMapping": 0.3,
    "CreateLogGroup": 0.1,
    "PutRetentionPolicy": 0.1,
    "CreateRestApi": 0.3,
    "PutMethod": 0.2,
    "PutIntegration": 0.3,
    "PutMethodResponse": 0.2,
    "PutIntegrationResponse": 0.2,
    "CreateModel": 0.2,
    "CreateRequestValidator": 0.2,
    "CreateDeployment": 1.0,
    "CreateStage": 0.3,
    "UpdateStage": 0.3,
}
_READ_PREFIXES = ("Get", "List", "Describe", "Head")


class LatencyModel:
    """A before-call hook: sleeps the model latency (x scale), and refuses Lambda creates while
    the function's role is younger than IAM_PROPAGATION (x scale)."""

    def __init__(self, scale: float, function_roles: dict[str, str]) -> None:
        self.scale = scale
        self.function_roles = function_roles  # a mapping's function → its role
        self.role_born: dict[str, float] = {}
        self.refused = 0
        self._lock = threading.Lock()
        self._call = threading.local()  # a call's events all fire in its own thread

    def latency(self, operation: str) -> float:
        if operation.startswith(_READ_PREFIXES):
            return READ
        return LATENCY.get(operation, DEFAULT_WRITE)

    def remember(self, params: dict[str, Any], **_: Any) -> None:
        """before-parameter-build: the call's own parameters (before-call sees the request's)."""
        self._call.params = params

    def before_call(self, model: Any, **_: Any) -> Any:
        op = model.name
        params: dict[str, Any] = getattr(self._call, "params", {})
        time.sleep(self.latency(op) * self.scale)  # the latency itself: what is modelled
        if op == "CreateRole":
            with self._lock:
                self.role_born[params["RoleName"]] = time.monotonic()
        role = self._role_of(op, params)
        if role is not None:
            born = self.role_born.get(role)
            if born is not None and time.monotonic() - born < IAM_PROPAGATION * self.scale:
                with self._lock:
                    self.refused += 1
                return self._propagation_error(op)
        return None

    def _role_of(self, op: str, params: dict[str, Any]) -> str | None:
        if op == "CreateFunction":
            return str(params["Role"]).rsplit("/", 1)[-1]
        if op == "CreateEventSourceMapping":
            return self.function_roles.get(str(params["FunctionName"]).rsplit(":", 1)[-1])
        return None

    @staticmethod
    def _propagation_error(op: str) -> Any:
        from botocore.awsrequest import AWSResponse

        message = (
            "The role defined for the function cannot be assumed by Lambda."
            if op == "CreateFunction"
            else "The provided execution role does not have permissions to call "
            "ReceiveMessage on SQS"
        )
        parsed = {
            "Error": {"Code": "InvalidParameterValueException", "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse("http://127.0.0.1/", 400, {}, None), parsed


@contextlib.contextmanager
def modelled(model: LatencyModel) -> Iterator[None]:
    """Every client pocctl makes in this process runs through ``model``; pocctl's own retry
    interval is scaled with it so that its polling keeps the proportions it has on AWS."""
    from pocctl import aws

    original_make, original_interval = aws.Aws._make_client, aws.RETRY_INTERVAL

    def make(self: aws.Aws, service: str) -> Any:
        fresh = service not in self._clients
        client = original_make(self, service)
        if fresh:
            client.meta.events.register_first("before-parameter-build", model.remember)
            client.meta.events.register_first("before-call", model.before_call)
        return client

    aws.Aws._make_client = make  # type: ignore[method-assign]
    aws.RETRY_INTERVAL = original_interval * model.scale
    try:
        yield
    finally:
        aws.Aws._make_client = original_make  # type: ignore[method-assign]
        aws.RETRY_INTERVAL = original_interval


def critical_path(steps: list[Any]) -> tuple[float, list[str]]:
    """The longest chain of needs (Resource.needs), each resource weighted by the time it took."""
    from pocctl import lab

    present = {s.resource.key for s in steps}
    best: dict[str, tuple[float, list[str]]] = {}
    for s in (
        steps
    ):  # the lab's order is a topological order of needs (tests/test_engine_parallel_up.py)
        before = [best[k] for k in lab.needs(s.resource, present)]
        length, path = max(before, default=(0.0, []))
        best[s.resource.key] = (length + s.seconds, [*path, s.resource.name])
    return max(best.values(), default=(0.0, []))


def _cold_up(bench: Bench, parallel: bool, scale: float, state: Path) -> tuple[float, Any, int]:
    from pocctl.lab import BUILD_TASKS

    bench.server.reset()
    state.unlink(missing_ok=True)
    app = new_app(bench.server.endpoint, state)
    cfg = app.cfg
    model = LatencyModel(
        scale, {cfg.lambda1.name: cfg.iam.roles.lambda1, cfg.lambda2.name: cfg.iam.roles.lambda2}
    )
    with modelled(model), app.engine() as engine:
        start = time.monotonic()
        steps = engine.up(list(BUILD_TASKS), parallel=parallel)
        took = time.monotonic() - start
    return took, steps, model.refused


def run(bench: Bench) -> list[Section]:
    scale = 0.25 if bench.quick else 1.0
    runs = bench.runs(3, 1)
    state = bench.workdir / "parallel" / ".pocctl" / "state.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    seq, par, crit = [], [], []
    path: list[str] = []
    refused = 0
    for i in range(runs):
        bench.log(f"parallel: run {i + 1}/{runs} (model time x{scale})")
        t, _, _ = _cold_up(bench, False, scale, state)
        seq.append(t / scale)
        t, steps, refused = _cold_up(bench, True, scale, state)
        par.append(t / scale)
        length, path = critical_path(steps)
        crit.append(length / scale)
    s, p, c = median(seq), median(par), median(crit)
    sec = Section("parallel", "3b. Parallel `up` under a latency model of AWS")
    sec.para(
        "Cold `up` on the embedded AWS with a botocore hook adding each operation's latency on "
        f"AWS and refusing Lambda creates for {IAM_PROPAGATION:.0f} s after their role is made "
        "(the values and their sources are in `bench/parallel.py`). Times are model seconds "
        f"(measured / {scale}), medians of {runs} runs. The critical path is the longest chain "
        "of needs (each resource's `needs`), each resource weighted by what it took in the "
        "parallel run: no schedule can be shorter."
    )
    sec.table(
        ["", "wall (model s)", "vs critical path"],
        [
            ["sequential `up` (`--sequential`, the walkthrough's order)", secs(s), ratio(s, c)],
            ["parallel `up` (default)", secs(p), ratio(p, c)],
            ["critical path (the physical limit)", secs(c), "1.00×"],
        ],
    )
    sec.para(
        f"Critical path: {' ▸ '.join(path)}. Parallel `up` is {ratio(s, p)} faster than "
        f"sequential; pocctl waited out {refused} IAM-propagation refusals in its last parallel "
        "run."
    )
    sec.goal("parallel `up` ≤ 1.2× the critical path", ratio(p, c), p <= 1.2 * c)
    return [sec]
