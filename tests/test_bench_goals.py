"""The figures `make bench` reports for issue 15's goals are computed as BENCHMARKS.md says:
per-window p95 and queue depth of a paced run, what counts as steady, and the sizes the
environment chooses (bounded). Pure functions: no server."""

from __future__ import annotations

import pytest
from support import ROOT


@pytest.fixture
def bench_modules(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(ROOT))  # bench/ is not installed: it lives beside tests/
    from bench import flatness, spike, sustained

    return flatness, spike, sustained


def _run(sustained, latencies: dict[int, tuple[float, float | None]]):  # type: ignore[no-untyped-def]
    run = sustained.Paced(rate=1.0, seconds=20.0, window=10.0)
    for i, (posted, seen) in latencies.items():
        run.posted[i] = posted
        if seen is not None:
            run.first_seen[i] = seen
            run.notified[i] += 1
    return run


def test_paced_run_reports_p95_and_depth_per_window(bench_modules) -> None:  # type: ignore[no-untyped-def]
    _, _, sustained = bench_modules
    # Window 0-10 s: latencies 0.1 .. 0.5 s; window 10-20 s: one order takes 3 s.
    run = _run(sustained, {i: (float(i), i + 0.1 * (i + 1)) for i in range(5)})
    run.posted.update({10: 10.0, 11: 11.0, 12: 12.0})
    run.first_seen.update({10: 10.2, 11: 14.0, 12: 12.3})
    run.depth = [(1.0, 3), (9.0, 7), (15.0, 40)]
    windows = run.windows()
    assert [(a, n, d) for a, _, n, d in windows] == [(0.0, 5, 7), (10.0, 3, 40)]
    assert windows[0][1] == pytest.approx(0.48)  # inclusive p95 of 0.1..0.5
    assert windows[1][1] > 1.0
    assert not run.steady()  # the second window misses p95 < 1 s
    assert run.lost == 0 and run.duplicated == 0


def test_steady_needs_every_window_under_a_second_and_nothing_lost(bench_modules) -> None:  # type: ignore[no-untyped-def]
    _, _, sustained = bench_modules
    fast = {i: (float(i), i + 0.2) for i in range(0, 20, 2)}
    assert _run(sustained, fast).steady()
    lost = dict(fast)
    lost[4] = (4.0, None)
    assert not _run(sustained, lost).steady() and _run(sustained, lost).lost == 1
    twice = _run(sustained, fast)
    twice.notified[2] += 1
    assert twice.duplicated == 1


def test_sizes_come_from_the_environment_bounded(bench_modules, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    flatness, spike, _ = bench_modules
    monkeypatch.delenv(flatness.SIZES_ENV, raising=False)
    assert flatness.sizes() == (1000, 10000)
    monkeypatch.setenv(flatness.SIZES_ENV, "500, 2000000")
    assert flatness.sizes() == (500, flatness.MAX_SIZE)

    class B:
        quick = True

    monkeypatch.delenv(spike.SCALE_ENV, raising=False)
    assert spike.scale_sizes(B()) == spike.SCALE_QUICK  # type: ignore[arg-type]
    B.quick = False
    assert spike.scale_sizes(B()) == (5000, 10000)  # type: ignore[arg-type]
    monkeypatch.setenv(spike.SCALE_ENV, "2000")
    assert spike.scale_sizes(B()) == (2000,)  # type: ignore[arg-type]
