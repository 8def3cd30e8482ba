"""Benchmarks 1–3: cold `up` against the reference, no-op `up`, and `down`.

pocctl runs in this process the way `pocctl demo` runs it (an App per command, run_up /
run_down), against the embedded AWS in the server process; calls are counted on the server.
Each round: an empty account → the reference builds the stack; an empty account → pocctl
`up` (cold), `up` again (no-op), `down`. Rounds alternate which of the two goes first, and one
untimed round first warms both (imports, botocore's service models).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench import reference
from bench.common import Bench, Counts, Section, median, met, ratio, secs, timed

GOAL_RATIO = 1.5
GOAL_READS_PER_RESOURCE = 1.0


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    counts: list[Counts] = field(default_factory=list)

    def add(self, seconds: float, counts: Counts) -> None:
        self.seconds.append(seconds)
        self.counts.append(counts)

    @property
    def wall(self) -> float:
        return median(self.seconds)

    @property
    def mutating(self) -> int:
        return round(median(c.mutating for c in self.counts))

    @property
    def reads(self) -> int:
        return round(median(c.reads for c in self.counts))

    @property
    def total(self) -> int:
        return self.mutating + self.reads

    def spread(self) -> str:
        return f"{secs(min(self.seconds))} – {secs(max(self.seconds))}"

    def steady(self) -> bool:
        """The same calls every run (a retry or a wait would change them)."""
        return len({(c.mutating, c.reads) for c in self.counts}) == 1


def _has_sequential() -> bool:
    """Whether this pocctl's `up` has --sequential (parallel is its default since it has)."""
    import inspect

    from pocctl.cli.up import run_up

    return "sequential" in inspect.signature(run_up).parameters


def _pocctl(
    b: Bench, state: Path, command: str, *, sequential: bool = False
) -> tuple[float, Counts]:
    from bench.common import new_app

    b.server.clear_calls()
    if command == "up":
        from pocctl.cli.up import run_up

        extra = {"sequential": True} if sequential else {}
        _, seconds = timed(lambda: run_up(new_app(b.server.endpoint, state), **extra))
    else:
        from pocctl.cli.down import run_down

        _, seconds = timed(lambda: run_down(new_app(b.server.endpoint, state), yes=True))
    return seconds, Counts.of(b.server.calls(), "pocctl")


def _reference(b: Bench, config: Path) -> tuple[float, Counts]:
    b.server.clear_calls()
    built, seconds = timed(lambda: reference.build(b.server.endpoint, config))
    counts = Counts.of(b.server.calls(), "reference")
    if counts.total != built.calls:
        raise RuntimeError(f"reference made {built.calls} calls, the server saw {counts.total}")
    return seconds, counts


def _status_after_reference(b: Bench, state: Path) -> dict[str, int]:
    """pocctl's own verdict on the reference's stack: proof that both build the same thing."""
    from bench.common import new_app
    from pocctl.cli.status import collect

    _, report = collect(new_app(b.server.endpoint, state))
    rows = report["resources"]
    out: dict[str, int] = {}
    for row in rows:
        out[row["status"]] = out.get(row["status"], 0) + 1
    return out


def run(b: Bench) -> list[Section]:
    from pocctl.config import load
    from pocctl.lab import all_resources

    rounds = b.runs(full=9, quick=3)
    ref, cold, noop, down, seq = Samples(), Samples(), Samples(), Samples(), Samples()
    kinds = ["reference", "pocctl"] + (["sequential"] if _has_sequential() else [])
    config = b.workdir / "no-config" / "config.yaml"  # absent: the lab's defaults
    resources = len(all_resources(load(config)))

    # Warm-up round (untimed): imports, service models, first clients; and the check that the
    # reference's stack is the stack pocctl builds.
    b.log("up/down: warm-up round")
    b.server.reset()
    _reference(b, config)
    verdict = _status_after_reference(b, b.workdir / "warm-ref" / "state.json")
    b.server.reset()
    warm_state = b.workdir / "warm" / "state.json"
    _pocctl(b, warm_state, "up")
    _pocctl(b, warm_state, "down")

    for r in range(rounds):
        b.log(f"up/down: round {r + 1} of {rounds}")
        state = b.workdir / f"round-{r}" / "state.json"
        # Each goes first in turn, so a burst of load elsewhere does not always hit the same one.
        for who in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:
            b.server.reset()
            if who == "reference":
                ref.add(*_reference(b, config))
            elif who == "sequential":
                seq_state = b.workdir / f"round-{r}-sequential" / "state.json"
                seq.add(*_pocctl(b, seq_state, "up", sequential=True))
            else:
                cold.add(*_pocctl(b, state, "up"))
                noop.add(*_pocctl(b, state, "up"))
                down.add(*_pocctl(b, state, "down"))
    b.server.reset()
    return [
        _cold_section(rounds, ref, cold, seq, verdict, resources),
        _noop_section(rounds, noop, resources),
        _down_section(rounds, down, resources),
    ]


def _ops(ops: dict[str, int], minus: dict[str, int] | None = None) -> str:
    """'service.Op ×n' for each operation, optionally only the calls ``minus`` lacks."""
    items = []
    for op, n in sorted(ops.items()):
        extra = n - (minus or {}).get(op, 0)
        if extra > 0:
            items.append(f"{op} ×{extra}" if extra > 1 else op)
    return ", ".join(items) or "—"


def _cold_section(
    rounds: int, ref: Samples, cold: Samples, seq: Samples, verdict: dict[str, int], resources: int
) -> Section:
    s = Section("up", "1. Cold `up` (empty account → full stack)")
    s.para(
        f"Median of {rounds} rounds. pocctl: `run_up` in the bench process (an App per run, as "
        "`pocctl demo` does), against the embedded AWS in its own process. Reference: "
        "`bench/reference.py`, the minimal sequence of mutating boto3 calls for the same "
        "stack, no reads, no waits, one call after another. `pocctl up` is the CLI's default "
        "(resources in parallel where what they need exists); `up --sequential`, one resource "
        "at a time, runs in the same rounds. Calls are counted on the server (WSGI middleware). "
        "After the "
        "reference, `pocctl status` on its stack says: "
        + ", ".join(f"{k} {n}" for k, n in sorted(verdict.items()))
        + f" (of {resources} resources), so both build the same stack."
    )
    wall_ok = s.goal(
        "cold `up` wall time ≤ 1.5× the reference's",
        f"{ratio(cold.wall, ref.wall)} ({secs(cold.wall)} vs {secs(ref.wall)})",
        cold.wall <= GOAL_RATIO * ref.wall,
    )
    calls_ok = s.goal(
        "cold `up` API calls ≤ 1.5× the reference's",
        f"{ratio(cold.total, ref.total)} ({cold.total} vs {ref.total}; mutating "
        f"{ratio(cold.mutating, ref.mutating)})",
        cold.total <= GOAL_RATIO * ref.total,
    )
    s.table(
        ["", "pocctl up", "reference", "ratio", "goal", ""],
        [
            [
                "wall time",
                secs(cold.wall),
                secs(ref.wall),
                ratio(cold.wall, ref.wall),
                "≤ 1.5×",
                met(wall_ok),
            ],
            ["wall time, fastest – slowest", cold.spread(), ref.spread(), "", "", ""],
            [
                "API calls, all",
                cold.total,
                ref.total,
                ratio(cold.total, ref.total),
                "≤ 1.5×",
                met(calls_ok),
            ],
            ["mutating calls", cold.mutating, ref.mutating, ratio(cold.mutating, ref.mutating)]
            + ["", ""],
            ["read-only calls", cold.reads, ref.reads, "", "", ""],
        ]
        + (
            [
                [
                    "wall time, `up --sequential`",
                    secs(seq.wall),
                    secs(ref.wall),
                    ratio(seq.wall, ref.wall),
                    "",
                    "",
                ],
                ["API calls, `up --sequential`", seq.total, ref.total, ratio(seq.total, ref.total)]
                + ["", ""],
            ]
            if seq.seconds
            else []
        ),
    )
    last, last_ref = cold.counts[-1], ref.counts[-1]
    s.para(
        "pocctl's mutating calls beyond the reference's: "
        + _ops(last.mutating_ops, minus=last_ref.mutating_ops)
        + ". Its read-only calls: "
        + _ops(last.read_ops)
        + ("." if cold.steady() else ". (The counts varied between runs: retries or waits.)")
    )
    return s


def _noop_section(rounds: int, noop: Samples, resources: int) -> Section:
    s = Section("noop", "2. No-op `up` on a complete stack")
    per = noop.reads / resources
    s.para(f"Median of {rounds} runs, right after a cold `up` (same state file).")
    s.table(
        ["", "measured", "goal", ""],
        [
            ["wall time", secs(noop.wall), "", ""],
            ["wall time, fastest – slowest", noop.spread(), "", ""],
            [
                "mutating calls",
                noop.mutating,
                "0",
                met(s.goal("no-op `up`: 0 mutating calls", str(noop.mutating), noop.mutating == 0)),
            ],
            ["read-only calls", noop.reads, "", ""],
            ["resources", resources, "", ""],
            [
                "read-only calls per resource",
                f"{per:.2f}",
                f"≤ {GOAL_READS_PER_RESOURCE:.0f}",
                met(
                    s.goal(
                        "no-op `up`: ≤ 1 read-only call per resource",
                        f"{per:.2f} ({noop.reads} reads, {resources} resources)",
                        per <= GOAL_READS_PER_RESOURCE,
                    )
                ),
            ],
        ],
    )
    s.para("The reads: " + _ops(noop.counts[-1].read_ops) + ".")
    return s


def _down_section(rounds: int, down: Samples, resources: int) -> Section:
    s = Section("down", "3. `down` (full stack → empty account)")
    s.para(f"Median of {rounds} runs, `down --yes` right after the no-op `up`.")
    s.table(
        ["", "measured"],
        [
            ["wall time", secs(down.wall)],
            ["wall time, fastest – slowest", down.spread()],
            ["mutating calls", down.mutating],
            ["read-only calls", down.reads],
            ["resources removed", resources],
        ],
    )
    last = down.counts[-1]
    s.para("Mutating: " + _ops(last.mutating_ops) + ". Read-only: " + _ops(last.read_ops) + ".")
    return s
