"""Benchmark 6: a spike of orders from 50 concurrent clients, the scale figure, and a profile.

Each run: an empty account, `pocctl up`, a few warm-up orders (so Lambda workers are running:
the spike measures throughput, not a cold start), a probe queue subscribed to the topic, then N
orders POSTed by 50 threads (http.client, one connection per order, 127.0.0.1 only). Drained =
every accepted order is a row and a notification. Afterwards the table is scanned and the
notifications counted per order: lost = accepted but not both stored and notified before the
deadline; duplicated = extra rows plus extra notifications.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import (
    ACCOUNT,
    BENCH_UA,
    REGION,
    Bench,
    Section,
    Server,
    check_loopback,
    median,
    met,
    ms,
    pct,
    secs,
    wait_until,
)

CLIENTS = 50
DRAIN_PAUSE = 0.2  # seconds between probe reads when it has less than a batch
GOAL_DRAIN_SECONDS = 20.0
SPIKE = 1000
SCALE = (5000, 10000)  # after the spike's 1,000; --quick: 3,000 (POCCTL_BENCH_SCALE_SIZES)
SCALE_QUICK = (3000,)
SCALE_ENV = "POCCTL_BENCH_SCALE_SIZES"
# Issue 15: 10,000 drained in < 100 s, at >= 90% of the 1,000-order rate; peak RSS < 500 MiB.
GOAL_SCALE_DRAIN = 100.0
GOAL_SCALE_RATE_RATIO = 0.9
GOAL_PEAK_RSS_MIB = 500.0
GOAL_AFTER_DOWN_RATIO = 1.25  # "back near its starting size after `down`" (issue 15)
# Every run is bounded in time: posting plus draining must end within this deadline.
SLACK_SECONDS = 30.0
SECONDS_PER_ORDER = 0.025  # half the goal's pace (1,000 in 20 s is 20 ms an order)
# The scale runs measure the drain itself: a deadline well past the goal's pace (10,000 in
# 100 s), so a slower drain is measured, not cut off.
SCALE_SLACK_SECONDS = 30.0
SCALE_SECONDS_PER_ORDER = 0.025
QUIET_SECONDS = 10.0  # for the order queue to empty once all are notified (late duplicates)
# cProfile with a CPU clock slows the server more than ten times: a small spike, a long deadline.
PROFILE_ORDERS = 500  # long enough that set-up and timers (mapping refresh) are noise
PROFILE_ORDERS_QUICK = 100
PROFILE_DEADLINE = 300.0


def deadline_for(n: int) -> float:
    return SLACK_SECONDS + n * SECONDS_PER_ORDER


def scale_deadline_for(n: int) -> float:
    return SCALE_SLACK_SECONDS + n * SCALE_SECONDS_PER_ORDER


@dataclass
class Run:
    """One spike: what was sent, what arrived, and when (seconds since the first POST)."""

    n: int
    deadline: float
    accepted: int = 0
    failed: int = 0  # POSTs answered with an error, or not at all (unsent ones excluded)
    posted: float = 0.0  # all POSTs answered
    stored: float | None = None  # every accepted order is a row
    notified: float | None = None  # every accepted order notified
    notifications: int = 0  # distinct accepted orders notified by the end
    rows: int = 0  # distinct accepted orders stored by the end
    lost: int = 0
    duplicated: int = 0
    dlq: int = 0
    failures_queue: int = 0
    server_cpu: float = 0.0
    worker_cpu: float = 0.0
    post_latency: list[float] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)  # "tag service.op" during the run
    server_errors: int = 0  # HTTP 5xx the embedded AWS answered the pipeline during the run
    bench_errors: int = 0  # the bench's own probe/watch calls that failed (and were retried)
    timeouts: Counter[str] = field(default_factory=Counter)  # function -> "Task timed out"

    @property
    def drained(self) -> float | None:
        if self.stored is None or self.notified is None:
            return None
        return max(self.stored, self.notified)

    @property
    def rate(self) -> float:
        """Orders per second through the whole pipeline (partial when not drained)."""
        if self.drained:
            return self.accepted / self.drained
        return self.notifications / self.deadline


class Stack:
    """pocctl's stack on an empty account, with clients whose calls the server tags 'bench'."""

    def __init__(self, b: Bench, server: Server, name: str) -> None:
        from bench.common import LOAD_TEST_CONFIG, new_app
        from pocctl import orders as order_probe
        from pocctl.cli.up import run_up
        from pocctl.local.server import local_client

        server.reset()
        app = new_app(server.endpoint, b.workdir / name / "state.json", LOAD_TEST_CONFIG)
        run_up(app)
        self.app = app  # for `down` (the memory figures)
        self.url = order_probe.find_invoke_url(app.ctx)
        check_loopback(self.url)
        cfg = app.cfg
        self.table, self.key = cfg.table.name, cfg.table.partition_key
        self.topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:{cfg.topic.name}"

        def client(service: str) -> Any:
            return local_client(server.endpoint, service, user_agent_extra=BENCH_UA)

        self.sqs, self.sns, self.ddb = client("sqs"), client("sns"), client("dynamodb")
        self.queues = {
            name: self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            for name in (cfg.queue.name, cfg.queue.dead_letter_queue, cfg.lambda2.on_failure_queue)
        }
        self.order_queue = self.queues[cfg.queue.name]
        self.dlq = self.queues[cfg.queue.dead_letter_queue]
        self.failures = self.queues[cfg.lambda2.on_failure_queue]

    def open_probe(self, name: str) -> tuple[str, str]:
        """A queue subscribed to the topic (raw delivery): (its URL, the subscription's ARN)."""
        url = self.sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "3600"})[
            "QueueUrl"
        ]
        sub = self.sns.subscribe(
            TopicArn=self.topic,
            Protocol="sqs",
            Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            Attributes={"RawMessageDelivery": "true"},
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        return url, sub

    def close_probe(self, url: str, sub: str) -> None:
        self.sns.unsubscribe(SubscriptionArn=sub)
        self.sqs.delete_queue(QueueUrl=url)

    def item_count(self) -> int:
        # moto answers DescribeTable's ItemCount live (AWS updates it every ~6 h).
        return int(self.ddb.describe_table(TableName=self.table)["Table"]["ItemCount"])

    def in_queue(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def rows(self, run_id: str) -> Counter[int]:
        """Rows of this run, by order number (one each, unless an order was stored twice)."""
        seen: Counter[int] = Counter()
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "#o",
            "ExpressionAttributeNames": {"#o": "order"},
        }
        for _ in range(100_000):  # bounded: pages of up to 1 MB
            page = _retried(lambda: self.ddb.scan(**kwargs))
            for item in page["Items"]:
                order = item.get("order", {}).get("M", {})
                if order.get("bench", {}).get("S") == run_id:
                    seen[int(order["n"]["N"])] += 1
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return seen


def _retried(call: Any, attempts: int = 5) -> Any:
    """moto is not thread-safe: a Scan racing the pipeline's PutItems can answer HTTP 500
    ("dictionary changed size during iteration"). Try again a few times."""
    pause = threading.Event()
    for attempt in range(attempts):
        try:
            return call()
        except Exception:
            if attempt == attempts - 1:
                raise
            pause.wait(0.2)


def post(url: str, body: str, timeout: float = 30.0) -> tuple[int, str]:
    """One POST on its own connection (http.client: no proxy, no extra headers)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=timeout)
    try:
        conn.request("POST", parts.path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def spike(
    stack: Stack,
    server: Server,
    n: int,
    *,
    clients: int = CLIENTS,
    deadline: float | None = None,
) -> Run:
    """POST ``n`` orders from ``clients`` threads; follow them until drained or the deadline."""
    run = Run(n, deadline if deadline is not None else deadline_for(n))
    run_id = uuid.uuid4().hex[:8]
    sqs = stack.sqs
    probe, subscription = stack.open_probe(f"bench-probe-{run_id}")
    notified: Counter[int] = Counter()
    last_new = [0.0]  # when the latest first notification arrived
    lock = threading.Lock()
    stop = threading.Event()
    counts: list[tuple[float, int]] = []
    try:
        baseline = stack.item_count()
        server.clear_calls()
        log_offset = server.log_path.stat().st_size
        cpu0 = server.cpu()
        start = time.perf_counter()
        end = start + run.deadline

        def take(msgs: list[dict[str, Any]]) -> None:
            now = time.perf_counter() - start
            sqs.delete_message_batch(
                QueueUrl=probe,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)
                ],
            )
            for m in msgs:
                try:
                    order = json.loads(m["Body"]).get("order")
                except (ValueError, AttributeError):
                    continue  # not a notification of Lambda 2's
                if not isinstance(order, dict) or order.get("bench") != run_id:
                    continue
                with lock:
                    notified[int(order["n"])] += 1
                    if notified[int(order["n"])] == 1:
                        last_new[0] = now

        def failed() -> None:
            # An overloaded server can answer 500: count it, pause, go on (deadline-bound).
            with lock:
                run.bench_errors += 1
            stop.wait(0.1)

        def drain() -> None:
            # Batches, not long polls: a long poll per notification would make the probe a
            # third of the server's requests. A notification is seen at most DRAIN_PAUSE late.
            while not stop.is_set() and time.perf_counter() < end:
                try:
                    msgs = sqs.receive_message(QueueUrl=probe, MaxNumberOfMessages=10).get(
                        "Messages", []
                    )
                    if msgs:
                        take(msgs)
                    if len(msgs) < 10:
                        stop.wait(DRAIN_PAUSE)
                except Exception:
                    failed()

        def watch() -> None:
            # ItemCount four times a second (moto counts the rows each time): when the last row
            # landed, to 0.25 s.
            while not stop.is_set() and time.perf_counter() < end:
                try:
                    counts.append((time.perf_counter() - start, stack.item_count() - baseline))
                except Exception:
                    failed()
                stop.wait(0.25)

        helpers = [threading.Thread(target=f, daemon=True) for f in (drain, watch)]
        for t in helpers:
            t.start()

        def send(i: int) -> tuple[int, float]:
            if time.perf_counter() >= end:
                return -1, 0.0  # past the deadline: not sent
            body = json.dumps({"bench": run_id, "n": i, "item": "all-purpose cleaner"})
            t0 = time.perf_counter()
            try:
                status, _ = post(stack.url, body)
            except (OSError, http.client.HTTPException):  # refused, reset, timed out, garbled
                status = 0
            return status, time.perf_counter() - t0

        with ThreadPoolExecutor(max_workers=clients) as pool:
            answers = list(pool.map(send, range(n)))
        run.posted = time.perf_counter() - start
        accepted = {i for i, (status, _) in enumerate(answers) if status == 200}
        run.accepted = len(accepted)
        run.failed = sum(1 for status, _ in answers if status not in (200, -1))
        run.post_latency = [lat for status, lat in answers if status == 200]

        def all_notified() -> bool:
            with lock:
                return accepted.issubset(notified)

        try:
            wait_until(all_notified, timeout=max(0.0, end - time.perf_counter()), interval=0.05)
            run.notified = last_new[0]
            # Late duplicates would come from messages still in the order queue.
            wait_until(
                lambda: stack.in_queue(stack.order_queue) == 0,
                timeout=QUIET_SECONDS,
                interval=0.1,
                what="the order queue to empty",
            )
        except TimeoutError:
            pass
        stop.set()
        for t in helpers:
            t.join(timeout=5)
        for _ in range(1000):  # whatever is left on the probe, without waiting
            msgs = sqs.receive_message(QueueUrl=probe, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                break
            take(msgs)
        cpu1 = server.cpu()
        run.server_cpu = cpu1["server"] - cpu0["server"]
        run.worker_cpu = cpu1["workers"] - cpu0["workers"]
        for call in server.calls():
            run.requests[f"{call.tag} {call.service}.{call.op}"] += 1
            # The bench's own row counter can hit moto's races too; those are counted apart.
            run.server_errors += call.status >= 500 and call.tag != "bench"
        run.timeouts = _timeouts(server.log_path, log_offset)

        rows = stack.rows(run_id)
        stored_all = [t for t, c in counts if c >= run.accepted]
        run.stored = stored_all[0] if stored_all and set(rows) >= accepted else None
        with lock:
            run.rows = len(accepted & set(rows))
            run.notifications = len(accepted & set(notified))
            run.lost = len(accepted - (set(rows) & set(notified)))
            run.duplicated = sum(c - 1 for c in rows.values()) + sum(
                c - 1 for c in notified.values()
            )
        run.dlq = stack.in_queue(stack.dlq)
        run.failures_queue = stack.in_queue(stack.failures)
    finally:
        stop.set()
        stack.close_probe(probe, subscription)
    return run


def _timeouts(log: Path, offset: int) -> Counter[str]:
    """Lambda timeouts the executor logged since ``offset``, by function."""
    out: Counter[str] = Counter()
    with open(log, encoding="utf-8", errors="replace") as f:
        f.seek(offset)
        for line in f:
            # "[POC-Lambda-1] 2026-...Z <request id> Task timed out after 10.00 seconds"
            if "Task timed out" in line and line.startswith("["):
                out[line[1 : line.index("]")]] += 1
    return out


def warm_up(stack: Stack, server: Server) -> None:
    """A few orders through the pipeline, so both functions have warm workers."""
    run = spike(stack, server, 5, clients=5)
    if run.lost:
        raise RuntimeError(f"warm-up: {run.lost} of 5 orders did not make it through")


# -- the benchmarks ---------------------------------------------------------------------------

_spike_runs: list[Run] = []  # reused by the scale table when both run


def _one(
    b: Bench,
    n: int,
    name: str,
    server: Server | None = None,
    deadline: float | None = None,
    profiled: bool = False,
    after: Any = None,
) -> Run:
    server = server or b.server
    stack = Stack(b, server, name)
    warm_up(stack, server)
    if profiled:
        server.restart_profile()  # the spike alone, not `up` and the warm-up
    deadline = deadline if deadline is not None else deadline_for(n)
    b.log(f"{name}: {n} orders from {CLIENTS} clients (deadline {deadline:.0f} s)")
    run = spike(stack, server, n, deadline=deadline)
    b.log(
        f"{name}: drained in {secs(run.drained) if run.drained else 'NOT drained'}, "
        f"{run.rate:.0f} orders/s, lost {run.lost}, duplicated {run.duplicated}"
    )
    if after is not None:
        after(stack)
    return run


def _median_run(runs: list[Run]) -> Run:
    """The run with the median drain time (not drained counts as slowest)."""
    ordered = sorted(runs, key=lambda r: (r.drained is None, r.drained or 0.0))
    return ordered[(len(ordered) - 1) // 2]


def _timeouts_cell(r: Run) -> str:
    return " / ".join(str(r.timeouts.get(f, 0)) for f in ("POC-Lambda-1", "POC-Lambda-2"))


def run_spike(b: Bench) -> list[Section]:
    runs = [_one(b, SPIKE, f"spike-{i}") for i in range(b.runs(full=3, quick=2))]
    _spike_runs[:] = runs
    drained = [r.drained for r in runs if r.drained is not None]
    d = median(drained) if len(drained) == len(runs) else None
    lost = max(r.lost for r in runs)
    dup = max(r.duplicated for r in runs)
    stored = [r.stored for r in runs if r.stored is not None]
    mid = _median_run(runs)
    s = Section("spike", f"6. Spike: {SPIKE:,} orders from {CLIENTS} concurrent clients")
    s.para(
        f"Median of {len(runs)} runs, each on a fresh stack after a few warm-up orders; lost, "
        "duplicated and errors are the worst run's. Times are from the first POST. Deadline "
        f"per run {deadline_for(SPIKE):.0f} s. The stage throttle is raised to AWS's "
        "account-level default (10,000 requests/s, burst 5,000) in config.yaml: with the lab's "
        "50/s (burst 100) API Gateway answers 429 to most of a spike, the embedded one as AWS "
        "does, and this would measure that throttle."
    )
    s.table(
        ["", "measured", "goal", ""],
        [
            [
                "time until every order is stored and notified",
                secs(d) if d is not None else "not drained",
                f"< {GOAL_DRAIN_SECONDS:.0f} s",
                met(
                    s.goal(
                        f"spike of {SPIKE:,}: drained in < {GOAL_DRAIN_SECONDS:.0f} s",
                        secs(d) if d is not None else "not drained",
                        d is not None and d < GOAL_DRAIN_SECONDS,
                    )
                ),
            ],
            ["orders per second (end to end)", f"{median(r.rate for r in runs):.0f}", "", ""],
            ["lost", lost, "0", met(s.goal(f"spike of {SPIKE:,}: 0 lost", str(lost), lost == 0))],
            [
                "duplicated",
                dup,
                "0",
                met(s.goal(f"spike of {SPIKE:,}: 0 duplicated", str(dup), dup == 0)),
            ],
            ["drain time of each run", ", ".join(_opt(r.drained) for r in runs), "", ""],
            ["all POSTs answered after", secs(median(r.posted for r in runs)), "", ""],
            [
                "all rows stored after",
                secs(median(stored)) if len(stored) == len(runs) else "not all",
                "",
                "",
            ],
            [
                "POST latency p50 / p95",
                f"{ms(median(pct(r.post_latency, 50) for r in runs if r.post_latency))} / "
                f"{ms(median(pct(r.post_latency, 95) for r in runs if r.post_latency))}",
                "",
                "",
            ],
            ["POSTs not answered 200", max(r.failed for r in runs), "", ""],
            [
                "messages in the DLQ / Lambda 2's failure queue",
                f"{max(r.dlq for r in runs)} / {max(r.failures_queue for r in runs)}",
                "",
                "",
            ],
            ["Lambda timeouts (Lambda 1 / Lambda 2)", _timeouts_cell(mid), "", ""],
            ["HTTP 5xx answered by the embedded AWS", max(r.server_errors for r in runs), "", ""],
            [
                "server CPU / Lambda workers' CPU per order",
                f"{ms(mid.server_cpu / mid.n)} / {ms(mid.worker_cpu / mid.n)}",
                "",
                "",
            ],
            [
                "requests the server handled per order",
                f"{sum(mid.requests.values()) / mid.n:.1f}",
                "",
                "",
            ],
        ],
    )
    s.para(
        'The requests of the median run, per order ("engine": what the embedded AWS sends '
        'itself — pollers, the gateway\'s SQS call, the handlers, the log shipper; "bench": '
        'the probe and the row counter; "dataplane": the orders):'
    )
    s.table(
        ["who", "request", "per order"],
        [
            [key.split(" ", 1)[0], f"`{key.split(' ', 1)[1]}`", f"{count / mid.n:.2f}"]
            for key, count in mid.requests.most_common(14)
        ],
    )
    return [s]


def _opt(v: float | None) -> str:
    return secs(v) if v is not None else "—"


def scale_sizes(b: Bench) -> tuple[int, ...]:
    import os

    raw = os.environ.get(SCALE_ENV, "")
    got = tuple(int(x) for x in raw.split(",") if x.strip())
    return got or (SCALE_QUICK if b.quick else SCALE)


def run_scale(b: Bench) -> list[Section]:
    from bench.sustained import rss
    from pocctl.cli.down import run_down

    sizes = scale_sizes(b)
    rows: list[Run] = []
    if _spike_runs:
        rows.append(_median_run(_spike_runs))
    else:
        rows.append(_one(b, SPIKE, "scale-1000"))
    memory: dict[str, float] = {"start": rss(b.server)["now"]}

    def measure_memory(stack: Stack) -> None:
        got = rss(b.server)
        memory["after spike"], memory["peak"] = got["now"], got["peak"]
        returns = b.server.memory_returns()
        run_down(stack.app, yes=True)
        # The embedded AWS gives memory back a few seconds after the last deletion.
        wait_until(lambda: b.server.memory_returns() > returns, timeout=60, interval=0.5)
        memory["after down"] = rss(b.server)["now"]

    for n in sizes:
        last = n == sizes[-1]
        rows.append(
            _one(
                b,
                n,
                f"scale-{n}",
                deadline=scale_deadline_for(n),
                after=measure_memory if last else None,
            )
        )
    s = Section("scale", "6b. Scale: the same spike at " + " / ".join(f"{r.n:,}" for r in rows))
    _scale_table(s, rows)
    _scale_goals(s, rows, memory)
    return [s]


def _scale_table(s: Section, rows: list[Run]) -> None:
    s.para(
        "One run per size, each on a fresh stack after warm-up orders, "
        f"{CLIENTS} clients; the 1,000 row is the spike's median run. The larger runs' deadline "
        f"is {SCALE_SLACK_SECONDS:.0f} s + {SCALE_SECONDS_PER_ORDER * 1000:.0f} ms an order "
        "(POSTs not sent by then are not sent), long enough to measure the drain itself: "
        '"drained after" is when every accepted order was both stored and notified, and '
        "orders/s the accepted orders over that time (a run not drained: those notified over "
        'the whole deadline, and "not through" the rest, still queued). CPU per order: the '
        "server process (moto, pollers, gateway: one GIL) and the Lambda worker processes. "
        f"Sizes: {SCALE_ENV}."
    )
    s.table(
        [
            "orders",
            "accepted",
            "drained after",
            "orders/s",
            "POSTs answered after",
            "stored / notified by then",
            "not through by then",
            "duplicated",
            "Lambda 1 / 2 timeouts",
            "HTTP 5xx",
            "server CPU / order",
            "workers CPU / order",
        ],
        [
            [
                f"{r.n:,}",
                f"{r.accepted:,}",
                secs(r.drained) if r.drained else f"not in {r.deadline:.0f} s",
                f"{r.rate:.0f}",
                secs(r.posted),
                f"{r.rows:,} / {r.notifications:,}",
                r.lost,
                r.duplicated,
                _timeouts_cell(r),
                r.server_errors,
                ms(r.server_cpu / r.n),
                ms(r.worker_cpu / r.n),
            ]
            for r in rows
        ],
    )


def _scale_goals(s: Section, rows: list[Run], memory: dict[str, float]) -> None:
    small, big = rows[0], rows[-1]
    ratio = big.rate / small.rate if small.rate else 0.0
    drained = big.drained
    s.goal(
        f"spike of {big.n:,}: drained in < {GOAL_SCALE_DRAIN:.0f} s",
        secs(drained) if drained else "not drained",
        drained is not None and drained < GOAL_SCALE_DRAIN,
    )
    s.goal(
        f"spike of {big.n:,}: orders/s ≥ {GOAL_SCALE_RATE_RATIO:.0%} of {small.n:,}'s",
        f"{ratio:.0%} ({big.rate:.0f} vs {small.rate:.0f}/s)",
        ratio >= GOAL_SCALE_RATE_RATIO,
    )
    s.goal(
        f"spike of {big.n:,}: 0 lost, 0 duplicated",
        f"{big.lost} / {big.duplicated}",
        big.lost == 0 and big.duplicated == 0,
    )
    if "peak" in memory:
        s.para(
            f"The embedded AWS's memory (bench/server.py: the same LocalAWS as `pocctl local`), "
            f"resident: {memory['start']:.0f} MiB before the scale runs, "
            f"{memory['after spike']:.0f} MiB after the {big.n:,} spike "
            f"(peak so far {memory['peak']:.0f} MiB), "
            f"{memory['after down']:.0f} MiB after `pocctl down` of that stack (measured once "
            "the embedded AWS has given memory back, a few seconds after the last deletion). "
            "What stays: the deleted table's stream records, readable through shard iterators "
            "for their 15 minutes as on AWS, and the allocator's partly used arenas."
        )
        s.goal(
            f"peak RSS after the {big.n:,} spike < {GOAL_PEAK_RSS_MIB:.0f} MiB",
            f"{memory['peak']:.0f} MiB (after `down`: {memory['after down']:.0f} MiB)",
            memory["peak"] < GOAL_PEAK_RSS_MIB,
        )
        near = memory["start"] * GOAL_AFTER_DOWN_RATIO
        s.goal(
            f"RSS after `down` back near the start (≤ {GOAL_AFTER_DOWN_RATIO:.2f} × start)",
            f"{memory['after down']:.0f} MiB (start {memory['start']:.0f}, "
            f"peak {memory['peak']:.0f})",
            memory["after down"] <= near,
        )


def run_profile(b: Bench) -> list[Section]:
    from bench import profile

    n = b.runs(full=PROFILE_ORDERS, quick=PROFILE_ORDERS_QUICK)
    out = b.workdir / "server.prof"
    server = Server.start(b.workdir, profile=out)
    try:
        run = _one(b, n, "profile", server, deadline=PROFILE_DEADLINE, profiled=True)
    finally:
        server.stop(timeout=120)
    return [profile.section(out, run, n)]
