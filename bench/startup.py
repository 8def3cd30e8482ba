"""Benchmark 4: start-up of the CLI as a user meets it, against bare Python in the same run.

Subprocesses, one at a time: ``python -c pass``, ``pocctl --help``, and ``pocctl status`` with
an empty state file against the (empty) embedded AWS. When ``--help`` misses its goal, one
``python -X importtime`` run of it says which imports cost the most.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.common import Bench, Section, child_env, median, met, secs, timed

GOAL_HELP_OVER_PYTHON = 0.15
TIMEOUT = 120.0  # per subprocess: a hung one fails the benchmark instead of the whole run


def pocctl_argv() -> list[str]:
    """The installed console script, as a user runs it; ``python -m pocctl`` without one."""
    script = Path(sys.executable).with_name("pocctl")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "pocctl"]


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    def once() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(  # noqa: S603 (our own interpreter and script)
            argv, cwd=cwd, env=env, capture_output=True, timeout=TIMEOUT, check=False
        )

    done, seconds = timed(once)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}"
        )
    return seconds


def importtime(argv: list[str], cwd: Path, env: dict[str, str]) -> list[tuple[str, int, int]]:
    """(module, self µs, cumulative µs) from one ``python -X importtime`` run of ``argv``."""
    if argv[0] == sys.executable:
        cmd = [sys.executable, "-X", "importtime", *argv[1:]]
    else:
        cmd = [sys.executable, "-X", "importtime", *argv]
    done = subprocess.run(  # noqa: S603
        cmd, cwd=cwd, env=env, capture_output=True, timeout=TIMEOUT, check=False
    )
    rows = []
    for line in done.stderr.decode().splitlines():
        # "import time:       self [us] |  cumulative | imported package"
        if not line.startswith("import time:") or "[us]" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|", 2)
        rows.append((name.rstrip(), int(own), int(cumulative)))
    return rows


def run(b: Bench) -> list[Section]:
    runs = b.runs(full=10, quick=5)
    cwd = b.workdir / "startup"
    cwd.mkdir(parents=True, exist_ok=True)  # no config.yaml, no .pocctl: a first-time user
    env = child_env(b.server.endpoint)
    pocctl = pocctl_argv()
    status = [*pocctl, "--state", str(cwd / "state.json"), "status"]
    b.server.reset()  # empty account: status finds every resource missing

    samples: dict[str, list[float]] = {"python": [], "help": [], "status": []}
    for i in range(runs):
        b.log(f"startup: round {i + 1} of {runs}")
        # Interleaved, so a burst of load on the machine hits all three alike.
        samples["python"].append(_run([sys.executable, "-c", "pass"], cwd, env))
        samples["help"].append(_run([*pocctl, "--help"], cwd, env))
        samples["status"].append(_run(status, cwd, env))
        (cwd / "state.json").unlink(missing_ok=True)
    python, help_, status_s = (median(samples[k]) for k in ("python", "help", "status"))
    over = help_ - python

    s = Section("startup", "4. Start-up")
    s.para(
        f"Median of {runs} runs of each, as subprocesses, interleaved: `{Path(pocctl[-1]).name}` "
        "is the installed console script. `status` runs with an empty state file against the "
        "empty embedded AWS (every resource missing)."
    )
    s.table(
        ["command", "wall time", "over bare Python", "goal", ""],
        [
            ["`python -c pass`", secs(python), "", "", ""],
            [
                "`pocctl --help`",
                secs(help_),
                f"+{over:.3f} s",
                f"≤ +{GOAL_HELP_OVER_PYTHON} s",
                met(
                    s.goal(
                        "`pocctl --help` within 0.15 s of bare Python",
                        f"+{over:.3f} s ({secs(help_)} vs {secs(python)})",
                        over <= GOAL_HELP_OVER_PYTHON,
                    )
                ),
            ],
            ["`pocctl status` (empty state)", secs(status_s), f"+{status_s - python:.3f} s", ""]
            + [""],
        ],
    )
    if over > GOAL_HELP_OVER_PYTHON:
        _importtime_tables(s, importtime([*pocctl, "--help"], cwd, env))
    return [s]


def _importtime_tables(s: Section, rows: list[tuple[str, int, int]]) -> None:
    if not rows:
        s.para("(`python -X importtime` gave nothing to report.)")
        return
    by_self = sorted(rows, key=lambda r: r[1], reverse=True)[:12]
    # Cumulative: the first two levels under the top, where a lazy import would be decided.
    shallow = [r for r in rows if len(r[0]) - len(r[0].lstrip()) <= 3]
    by_cumulative = sorted(shallow, key=lambda r: r[2], reverse=True)[:12]
    s.para(
        "The goal is missed: `python -X importtime pocctl --help` (one run; µs as Python "
        "reports them). Top imports by cumulative time (top two levels):"
    )
    s.table(
        ["module", "cumulative", "self"],
        [
            [f"`{n.strip()}`", f"{c / 1000:.1f} ms", f"{o / 1000:.1f} ms"]
            for n, o, c in by_cumulative
        ],
    )
    s.para("Top imports by their own time:")
    s.table(
        ["module", "self", "cumulative"],
        [[f"`{n.strip()}`", f"{o / 1000:.1f} ms", f"{c / 1000:.1f} ms"] for n, o, c in by_self],
    )
