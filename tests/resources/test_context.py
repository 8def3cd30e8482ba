"""RunCache.shared / forget / clear: reads shared by the resources of one run, safe under a
parallel up."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from pocctl.resources.base import RunCache


def _ctx() -> RunCache:
    return RunCache()


def test_eight_threads_asking_at_once_make_one_fetch() -> None:
    ctx = _ctx()
    calls: list[int] = []
    ready = threading.Barrier(8, timeout=10)

    def fetch() -> dict[str, Any]:
        calls.append(1)
        return {"roles": ["a"]}

    def ask(_: int) -> Any:
        ready.wait()
        return ctx.shared("iam", fetch)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(ask, range(8)))
    assert len(calls) == 1
    assert all(r is results[0] for r in results)


@pytest.mark.parametrize("drop", ["forget", "clear"])
def test_forget_waits_for_a_fetch_in_flight_and_drops_its_result(drop: str) -> None:
    ctx = _ctx()
    started, release = threading.Event(), threading.Event()

    def slow_fetch() -> str:
        started.set()
        assert release.wait(10)
        return "read before the change"

    reader = threading.Thread(target=ctx.shared, args=("iam", slow_fetch))
    reader.start()
    assert started.wait(10)
    forgot = threading.Event()

    def forget() -> None:
        if drop == "forget":
            ctx.forget("iam")
        else:
            ctx.clear()
        forgot.set()

    forgetter = threading.Thread(target=forget)
    forgetter.start()
    # forget cannot finish while the fetch holds the key's lock.
    assert not forgot.wait(0.2)
    release.set()
    reader.join(10)
    forgetter.join(10)
    assert forgot.is_set()
    assert ctx.shared("iam", lambda: "read after the change") == "read after the change"


def test_keys_are_independent() -> None:
    ctx = _ctx()
    assert ctx.shared("a", lambda: 1) == 1
    assert ctx.shared("b", lambda: 2) == 2
    ctx.forget("a")
    assert ctx.shared("a", lambda: 3) == 3 and ctx.shared("b", lambda: 4) == 2
