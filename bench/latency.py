"""Benchmark 5: `test-order --count 100`, per hop, on the embedded AWS with its pollers.

The code `pocctl test-order` runs (pocctl.testorder.run: 10 concurrent POSTs, a probe queue on
the topic, the table polled) in the bench process, the embedded AWS in its own. One untimed
warm-up run first starts the Lambda workers (a cold start is not what the hops measure). Then,
to tell queueing from the pipeline's own latency, single orders one at a time.
"""

from __future__ import annotations

from typing import Any

from bench.common import Bench, Section, median, met, ms, pct

GOAL_P50_NOTIFIED = 0.300
COUNT = 100
TIMEOUT = 60.0
HOPS = ("accepted", "stored", "notified")


def build_stack(b: Bench, name: str) -> tuple[Any, str]:
    """An empty account, then `pocctl up`; returns the App and the stage's invoke URL."""
    from bench.common import new_app
    from pocctl import testorder
    from pocctl.cli.up import run_up

    b.server.reset()
    app = new_app(b.server.endpoint, b.workdir / name / "state.json")
    run_up(app)
    return app, testorder.find_invoke_url(app.ctx)


def _hop_deltas(report: Any) -> dict[str, list[float]]:
    """Per order: POST → answer, answer → row, row → notification."""
    out: dict[str, list[float]] = {"accepted": [], "stored": [], "notified": []}
    for o in report.orders:
        if o.accepted is None or o.stored is None or o.notified is None:
            continue
        out["accepted"].append(o.accepted)
        out["stored"].append(max(0.0, o.stored - o.accepted))
        out["notified"].append(max(0.0, o.notified - o.stored))
    return out


def run(b: Bench) -> list[Section]:
    from pocctl import testorder

    runs = b.runs(full=5, quick=3)
    singles = b.runs(full=10, quick=5)
    app, url = build_stack(b, "test-order")
    b.log("test-order: warm-up")
    testorder.run(app.ctx, url, count=5, timeout=TIMEOUT)

    since_post: dict[str, dict[str, list[float]]] = {h: {"p50": [], "p95": []} for h in HOPS}
    per_hop: dict[str, dict[str, list[float]]] = {h: {"p50": [], "p95": []} for h in HOPS}
    seconds: list[float] = []
    problems = 0
    for i in range(runs):
        b.log(f"test-order: --count {COUNT}, run {i + 1} of {runs}")
        report = testorder.run(app.ctx, url, count=COUNT, timeout=TIMEOUT)
        problems += len(report.problems)
        seconds.append(report.seconds)
        for hop in HOPS:
            p = report.percentiles(hop)
            if p is not None:
                since_post[hop]["p50"].append(p[0])
                since_post[hop]["p95"].append(p[1])
        for hop, values in _hop_deltas(report).items():
            if values:
                per_hop[hop]["p50"].append(pct(values, 50))
                per_hop[hop]["p95"].append(pct(values, 95))

    b.log(f"test-order: {singles} single orders")
    single: dict[str, list[float]] = {h: [] for h in HOPS}
    for _ in range(singles):
        report = testorder.run(app.ctx, url, count=1, timeout=TIMEOUT)
        problems += len(report.problems)
        for hop in HOPS:
            value = getattr(report.orders[0], hop)
            if value is not None:
                single[hop].append(value)

    def cell(values: list[float]) -> str:
        return ms(median(values)) if values else "—"

    p50_notified = median(since_post["notified"]["p50"]) if since_post["notified"]["p50"] else None
    s = Section("test-order", f"5. `test-order --count {COUNT}`: latency per hop")
    s.para(
        f"{runs} runs of {COUNT} orders (pocctl.testorder.run, as `pocctl test-order --count "
        f"{COUNT}`: 10 concurrent POSTs), after an untimed warm-up; each figure is the median "
        "over the runs of that run's percentile. Times are from the start of each order's POST. "
        f"The last row: {singles} orders sent one at a time (`--count 1`), the pipeline's own "
        "latency without a queue in front of it."
    )
    s.table(
        ["", "accepted (POST answered)", "stored (row readable)", "notified (probe got it)"],
        [
            ["p50 since POST", *(cell(since_post[h]["p50"]) for h in HOPS)],
            ["p95 since POST", *(cell(since_post[h]["p95"]) for h in HOPS)],
            ["p50 of the hop alone", *(cell(per_hop[h]["p50"]) for h in HOPS)],
            ["p95 of the hop alone", *(cell(per_hop[h]["p95"]) for h in HOPS)],
            ["one order at a time, median", *(cell(single[h]) for h in HOPS)],
        ],
    )
    ok = s.goal(
        f"`test-order --count {COUNT}`: p50 POST → notification < 300 ms",
        ms(p50_notified),
        p50_notified is not None and p50_notified < GOAL_P50_NOTIFIED,
    )
    s.table(
        ["goal", "measured", ""],
        [["p50 POST → notification < 300 ms", ms(p50_notified), met(ok)]],
    )
    s.para(
        f"A run of {COUNT} took {median(seconds):.1f} s (median, probe set-up and clean-up "
        f"included). Problems reported by test-order (lost, late or duplicated orders): "
        f'{problems}. The "stored" time is when test-order\'s loop next looked (BatchGetItem, '
        "between long polls of the probe), so it can lag the real write."
    )
    return [s]
