"""The profile's tables: where the embedded AWS's CPU goes during a spike.

Reads the merged per-thread cProfile (CPU time) that bench/server.py writes and groups it by
area: pocctl.local's modules, moto's services, werkzeug, the boto clients inside the server,
and the standard library modules that do the work (copy, json, xml...).
"""

from __future__ import annotations

import pstats
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import Section, secs

Func = tuple[str, int, str]  # (filename, line, function), as pstats keys them


def area(filename: str) -> str:
    """Which part of the server a source file belongs to."""
    f = filename.replace("\\", "/")
    if "/pocctl/local/" in f:
        return "pocctl.local." + Path(f).stem
    if "/pocctl/" in f:
        return "pocctl (other)"
    if "/bench/" in f:
        return "bench (call recorder)"
    if "/site-packages/" in f:
        rest = f.split("/site-packages/", 1)[1].split("/")
        if rest[0] == "moto" and len(rest) > 2:
            return f"moto.{rest[1]}"
        return rest[0].removesuffix(".py")
    if f.startswith("<") or f == "~":
        return "interpreter"
    parts = f.split("/")
    # /usr/lib/python3.11/json/decoder.py -> json; /usr/lib/python3.11/copy.py -> copy
    for i, p in enumerate(parts):
        if p.startswith("python3") and i + 1 < len(parts):
            return "stdlib " + parts[i + 1].removesuffix(".py")
    return "other"


def _label(func: Func) -> str:
    filename, line, name = func
    if filename == "~":
        return name  # a builtin: "<built-in method ...>" or "<method ... objects>"
    f = filename.replace("\\", "/")
    if "/site-packages/" in f:
        f = f.split("/site-packages/", 1)[1]
    elif "/pocctl/" in f:
        f = "pocctl/" + f.split("/pocctl/", 1)[1]
    elif "/bench/" in f:
        f = "bench/" + f.split("/bench/", 1)[1]
    else:
        f = "/".join(f.split("/")[-2:])
    return f"{f}:{line} {name}"


def _group(name: str) -> str:
    for prefix in ("moto", "pocctl.local", "stdlib"):
        if name.startswith(prefix):
            return prefix
    return name


def _self_by_area(raw: dict[Func, Any]) -> dict[str, float]:
    """Own CPU per area; a builtin's time goes to the area of whoever called it."""
    out: dict[str, float] = defaultdict(float)
    for func, (_cc, _nc, tt, _ct, callers) in raw.items():
        if func[0] != "~" or not callers:
            out[area(func[0])] += tt
            continue
        for caller, stat in callers.items():
            out[area(caller[0]) if caller[0] != "~" else "interpreter"] += stat[2]
    return out


def _cumulative(raw: dict[Func, Any], fn: Any) -> float:
    """Cumulative CPU of one function (matched by file name, first line and name)."""
    code = fn.__code__
    name = Path(code.co_filename).name
    return sum(
        v[3]
        for f, v in raw.items()
        if f[1] == code.co_firstlineno and f[2] == code.co_name and Path(f[0]).name == name
    )


def _components(raw: dict[Func, Any], total: float) -> list[tuple[str, float]]:
    """The server's CPU by component, from each one's entry point (cumulative time).

    Each poller's figure is its own thread (the client side of its calls); the server side of
    every call, whoever made it, is in moto's row. The Invoke API runs the executor inside a
    moto request, so the executor is taken out of moto's row.
    """
    from pocctl.local import cwlogs, executor, gateway, pollers

    parts = [
        ("API Gateway data plane: `gateway.py` ApiGateway.handle", gateway.ApiGateway.handle),
        ("SQS poller: `pollers.py` SqsPoller.run", pollers.SqsPoller.run),
        ("stream poller: `pollers.py` StreamPoller.run", pollers.StreamPoller.run),
        ("mapping refresh: `pollers.py` MappingManager._loop", pollers.MappingManager._loop),
        ("log shipper: `cwlogs.py` LogShipper._run", cwlogs.LogShipper._run),
        ("executor: `executor.py` Executor.invoke", executor.Executor.invoke),
    ]
    out = [(label, _cumulative(raw, fn)) for label, fn in parts]
    moto = sum(
        v[3] for f, v in raw.items() if f[0].endswith("moto/core/utils.py") and f[2] == "__call__"
    )
    out.append(("moto serving the requests (every service; `moto/core`)", moto - out[-1][1]))
    out.append(
        (
            "the rest: HTTP serving (werkzeug, http.server, sockets), the call recorder",
            total - sum(t for _, t in out),
        )
    )
    return out


def section(path: Path, run: Any, n: int) -> Section:
    s = Section("profile", "6c. Profile: where the server's time goes during a spike")
    if not path.exists():
        s.para("(no profile was written)")
        return s
    stats = pstats.Stats(str(path))
    raw: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    by_area = _self_by_area(raw)
    s.para(
        f"{n:,} orders from 50 clients into an embedded AWS whose every thread ran under "
        f"cProfile measuring CPU time (not wall time: waits cost nothing). Profiling slows "
        f"it: drained in {secs(run.drained) if run.drained else 'not drained'} here. "
        f"CPU in the profiled threads: {total:.1f} s, {total / n * 1000:.1f} ms an order; the "
        f"Lambda handlers run in worker processes, outside this profile "
        f"({run.worker_cpu / n * 1000:.1f} ms an order)."
    )

    groups: dict[str, float] = defaultdict(float)
    for name, t in by_area.items():
        groups[_group(name)] += t
    top_groups = sorted(groups.items(), key=lambda kv: kv[1], reverse=True)[:6]
    s.para(
        "In short: "
        + ", ".join(f"{name} {t / total:.0%}" for name, t in top_groups)
        + " of the server's CPU (own time, builtins counted to their caller)."
    )

    s.para("CPU by component (cumulative from each one's entry point):")
    s.table(
        ["component", "CPU", "share", "per order"],
        [
            [label, f"{t:.2f} s", f"{t / total:.1%}", f"{t / n * 1000:.2f} ms"]
            for label, t in _components(raw, total)
        ],
    )
    s.para("Own CPU time by area (top 15):")
    s.table(
        ["area", "CPU", "share", "per order"],
        [
            [f"`{name}`", f"{t:.2f} s", f"{t / total:.1%}", f"{t / n * 1000:.2f} ms"]
            for name, t in sorted(by_area.items(), key=lambda kv: kv[1], reverse=True)[:15]
        ],
    )

    def top(pred: Any, key: int, count: int) -> list[list[str]]:
        chosen = [(f, v) for f, v in raw.items() if pred(f)]
        chosen.sort(key=lambda fv: fv[1][key], reverse=True)
        return [
            [
                f"`{_label(f)}`",
                f"{v[3]:.2f} s",
                f"{v[3] / total:.1%}",
                f"{v[2]:.2f} s",
                f"{v[1]:,}",
            ]
            for f, v in chosen[:count]
        ]

    headers = ["function", "cumulative CPU", "share", "own CPU", "calls"]
    # The WSGI middleware wraps every request: its cumulative time is the whole server's.
    wrappers = {"middleware", "wrap"}
    s.para(
        "pocctl.local (pollers, executor, gateway, log shipper) by cumulative CPU; the WSGI "
        "middleware every request passes through is left out:"
    )
    s.table(headers, top(lambda f: "/pocctl/local/" in f[0] and f[2] not in wrappers, 3, 15))
    s.para("moto's per-service request handlers (`moto/<service>/responses.py`) by cumulative CPU:")
    s.table(
        headers,
        top(
            lambda f: (
                "/moto/" in f[0] and "/moto/core/" not in f[0] and f[0].endswith("responses.py")
            ),
            3,
            10,
        ),
    )
    s.para("moto's common request path (`moto/core`) by cumulative CPU:")
    s.table(headers, top(lambda f: "/moto/core/" in f[0], 3, 8))
    s.para("Top functions by own CPU:")
    s.table(headers, top(lambda f: True, 2, 15))
    return s
