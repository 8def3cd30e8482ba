"""Writes docs/RELIABILITY.md from the test suite's own results (never by hand).

    make reliability        # runs the suite with a JUnit report, then writes the figures
    python tests/support/reliability_report.py --junit results.xml   # from a run already made

Each scenario of the reliability issue is a set of test cases; its count is how many kill
points, faults, bad inputs... those cases tried (the number of cases, or a sum of what the
tests recorded with ``record_property``), and its result is what pytest said of them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "RELIABILITY.md"


@dataclass
class Case:
    file: str  # tests/... path
    name: str  # test function name with its parameters, e.g. test_x[3]
    outcome: str  # passed / failed / skipped
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def function(self) -> str:
        return self.name.split("[", 1)[0]


def read_junit(path: Path) -> list[Case]:
    cases = []
    for tc in ET.parse(path).getroot().iter("testcase"):
        # classname is the dotted module path (tests.reliability.test_x) or with a class.
        module = tc.get("classname", "")
        file = module.replace(".", "/") + ".py"
        if tc.find("failure") is not None or tc.find("error") is not None:
            outcome = "failed"
        elif tc.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        props = {p.get("name", ""): p.get("value", "") for p in tc.iter("property")}
        cases.append(Case(file, tc.get("name", ""), outcome, props))
    return cases


Counter_ = Callable[[list[Case]], str]


def cases(what: str) -> Counter_:
    return lambda cs: f"{len(cs)} {what}"


def faults(cs: list[Case]) -> str:
    total = sum(int(c.properties.get("faults_injected", 0) or 0) for c in cs)
    calls = sum(int(c.properties.get("calls", 0) or 0) for c in cs)
    kinds: Counter[str] = Counter()
    for c in cs:
        kinds.update(json.loads(c.properties.get("faults_by_kind") or "{}"))
    by_kind = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    return f"{total} faults in {calls} requests, {_runs(len(cs))} ({by_kind})"


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


@dataclass
class Scenario:
    section: str
    what: str
    selectors: list[str]  # "file::function" (function prefix) or "file" for all its cases
    count: Counter_

    def select(self, all_cases: list[Case]) -> list[Case]:
        out = []
        for sel in self.selectors:
            file, _, func = sel.partition("::")
            out += [c for c in all_cases if c.file == file and c.function.startswith(func)]
        return out


R, S, E, L, U, H = (
    "tests/reliability/",
    "tests/resources/test_iam_",
    "tests/cli/",
    "tests/local/",
    "tests/",
    "tests/handlers/",
)
CRASH = R + "test_crash_anywhere.py::"
FAULTS = R + "test_transient_faults.py::"

SCENARIOS = [
    Scenario(
        "Crash anywhere",
        "`up` killed (os._exit) after its k-th mutating call, then `up`: the same inventory "
        "as a clean `up`, one of each; then `down` leaves nothing",
        [CRASH + "test_up_killed_after_call_k_converges"],
        cases("kill points"),
    ),
    Scenario(
        "Crash anywhere",
        "the same, with the state file deleted after the kill",
        [CRASH + "test_up_killed_after_call_k_with_state_file_lost"],
        cases("kill points"),
    ),
    Scenario(
        "Crash anywhere",
        "`down` killed after its k-th mutating call (state kept, and state deleted), then "
        "`down`: nothing left; then `up` converges",
        [CRASH + "test_down_killed_after_call_k"],
        cases("kill points"),
    ),
    Scenario(
        "Crash anywhere",
        "the kill points cover every mutating call of a cold `up` and of a `down`",
        [CRASH + "test_kill_points_cover"],
        cases("check"),
    ),
    Scenario(
        "Crash anywhere",
        "killed inside a state file write (torn write, before rename, after rename)",
        [R + "test_state_write_killed.py"],
        cases("kill points"),
    ),
    Scenario(
        "Transient faults",
        "30% of requests answer Throttling / HTTP 500 / 503 (seeded): `up` and `down` converge",
        [FAULTS + "test_up_and_down_converge_with_30_percent"],
        faults,
    ),
    Scenario(
        "Transient faults",
        "the same, with most faulted mutating calls (80% of the 5xx ones) carried out before "
        "the error (lost answers)",
        [FAULTS + "test_up_and_down_converge_when_faulted"],
        faults,
    ),
    Scenario(
        "Transient faults",
        "every mutating operation of `up` and `down` carried out, then answered 500",
        [FAULTS + "test_every_mutating_call_answered_500"],
        faults,
    ),
    Scenario(
        "Transient faults",
        "a fault outlasting botocore's 9 attempts; one that never ends fails clearly",
        [FAULTS + "test_a_fault_outlasting", FAULTS + "test_a_fault_that_never_ends"],
        cases("cases"),
    ),
    Scenario(
        "Transient faults",
        "IAM propagation (CreateFunction, CreateEventSourceMapping, past the limit), "
        "QueueDeletedRecently, ResourceConflictException while updating, DeleteRestApi's "
        "TooManyRequestsException: waited out, said on screen",
        [E + "test_waits.py"],
        cases("cases"),
    ),
    Scenario(
        "State and concurrency",
        "corrupt, unreadable, wrong-schema or other-target state files: one line, exit 2, "
        "nothing touched",
        [
            U + "test_state.py::test_a_broken_state_file",
            U + "test_state.py::test_check_target_refuses",
            E + "test_cli_errors.py::test_a_corrupt_state_file",
            E + "test_cli_errors.py::test_a_state_file_of_another_region",
        ],
        cases("bad state files"),
    ),
    Scenario(
        "State and concurrency",
        "two `up` at once: one stack and a whole state file; a run without the lock refuses "
        "or waits",
        [R + "test_concurrent_up.py", U + "test_state.py::test_a_second_process_is_refused"],
        cases("cases"),
    ),
    Scenario(
        "State and concurrency",
        "a crash during a state write keeps the old file and leaves no temp file",
        [U + "test_state.py::test_save_is_atomic"],
        cases("crash points"),
    ),
    Scenario(
        "Bad input",
        "bad config.yaml: exit 2, the key path and the problem, zero AWS calls",
        [
            E + "test_config_errors.py::test_a_bad_config",
            E + "test_config_errors.py::test_a_yaml_syntax_error",
            E + "test_config_errors.py::test_an_explicit_config_that_is_missing",
        ],
        cases("bad inputs"),
    ),
    Scenario(
        "Bad input",
        "orders that are not a JSON object, empty, of the wrong content type or over the "
        "queue's size limit: 4xx with a message, nothing enqueued",
        [
            L + "test_gateway.py::test_bodies_that_are_not_a_json_object",
            L + "test_gateway.py::test_wrong_content_type",
            E + "test_local_cli.py::test_an_order_over",
            E + "test_local_cli.py::test_a_body_that_is_not_a_json_object",
            L + "test_gateway.py::test_sqs_error_comes_back",
        ],
        cases("bad orders"),
    ),
    Scenario(
        "Bad input",
        "a poison message alone reaches the dead-letter queue; its batch's others are stored",
        [L + "test_pollers.py::test_poison_message", L + "test_pollers.py::test_timed_out"],
        cases("cases"),
    ),
    Scenario(
        "Bad input",
        "the same message delivered twice is stored once",
        [
            H + "test_store_order.py::test_same_message_delivered_twice",
            H + "test_store_order.py::test_existing_item_is_not_overwritten",
        ],
        cases("cases"),
    ),
    Scenario(
        "Bad input",
        "unknown command, bad option values, `task 11`: exit 2 with usage",
        [E + "test_up_down.py::test_usage_errors"],
        cases("bad command lines"),
    ),
    Scenario(
        "Security",
        'no `"Resource": "*"` but for actions with no resource-level permission, each listed',
        [
            S + "policies.py::test_resource_star_only",
            S + "policies.py::test_the_listed_exceptions",
            S + "policies.py::test_every_exception",
        ],
        cases("checks"),
    ),
    Scenario(
        "Security",
        "parliament finds nothing in any generated policy (suppressions explained and needed)",
        [S + "policies.py::test_parliament", S + "policies.py::test_every_parliament"],
        cases("policy documents"),
    ),
    Scenario(
        "Security",
        "each role allows every call its handler and its pollers make, and nothing else",
        [
            S + "policies.py::test_each_role_allows",
            S + "policies.py::test_each_role_grants_nothing",
            S + "policies.py::test_every_call_in_the_handlers",
            S + "policies.py::test_the_evaluator",
            S + "policies.py::test_each_role_trusts",
        ],
        cases("checks"),
    ),
    Scenario(
        "Security",
        "the queue policy admits exactly the two roles; the probe queue only the topic",
        [
            S + "policies.py::test_the_queue",
            S + "policies.py::test_the_probe_queue",
        ],
        cases("checks"),
    ),
    Scenario(
        "Security",
        "the state file is 0600; no credential printed (even in a --verbose traceback) or "
        "written to any file",
        [
            U + "test_state.py::test_save_writes_mode_0600",
            U + "test_state.py::test_save_makes",
            U + "test_no_secrets.py",
        ],
        cases("checks"),
    ),
    Scenario(
        "Safe by default",
        "`pocctl local` serves only this machine: a foreign Host (DNS rebinding), a web page's "
        "Origin, a browser's simple POST, an unsigned AWS call and the admin API are refused; "
        "no CORS header is ever sent",
        [
            L + "test_request_pipeline.py::test_a_foreign_host",
            L + "test_request_pipeline.py::test_a_web_pages_origin",
            L + "test_request_pipeline.py::test_a_loopback_origin",
            L + "test_request_pipeline.py::test_a_browsers_simple_post",
            L + "test_request_pipeline.py::test_an_unsigned_aws_api_request",
            L + "test_request_pipeline.py::test_the_admin_api_is_refused",
            L + "test_local_command.py::test_a_foreign_host_and_a_web_page",
            L + "test_local_command.py::test_without_admin",
        ],
        cases("checks"),
    ),
    Scenario(
        "Safe by default",
        "no client stalls the others: trickling clients beside 100 requests (each under 1 s), "
        "a body that never ends cut off (408); SIGTERM or Ctrl-C stops `pocctl local` within "
        "5 s with bodies held open or functions running",
        [
            U + "test_server_concurrency.py::test_a_trickling_client",
            L + "test_request_pipeline.py::test_a_body_that_never_ends",
            L + "test_request_pipeline.py::test_a_chunked_body",
            L + "test_request_pipeline.py::test_replaying_a_recording",
            L + "test_local_command.py::test_it_stops_within_5_s",
        ],
        cases("cases"),
    ),
    Scenario(
        "Safe by default",
        "files that cannot hurt: a symlinked state file, lock or folder refused and its target "
        "unchanged; a read-only folder or a full disk is one line, exit 2, then converges",
        [
            U + "test_state.py::test_a_symlinked",
            U + "test_state.py::test_a_dangling_symlink",
            U + "test_state.py::test_the_temp_file_is_new",
            U + "test_state.py::test_a_full_disk",
            E + "test_cli_errors.py::test_a_symlinked",
            E + "test_cli_errors.py::test_a_read_only_state_folder",
            E + "test_cli_errors.py::test_a_full_disk",
        ],
        cases("cases"),
    ),
    Scenario(
        "Safe by default",
        "hostile input: YAML alias bombs, deep nesting, a config over 1 MiB or endless, a "
        "100,000-deep --body: exit 2 in one line, under a 512 MiB address cap, no AWS call",
        [
            E + "test_config_errors.py::test_a_hostile_config",
            E + "test_config_errors.py::test_a_config_over_1_mib",
            E + "test_config_errors.py::test_a_config_that_never_ends",
            E + "test_config_errors.py::test_handlers_dir_without",
            E + "test_cli_errors.py::test_test_order_with_a_100000_deep_body",
        ],
        cases("hostile inputs"),
    ),
    Scenario(
        "Safe by default",
        "every config key that can change on a live stack, one at a time: `up` converges (read "
        "back, a test order passes); a replaced stream moves its trigger; `down` leaves nothing",
        [
            E + "test_live_changes.py",
            E + "test_live_changes_in_part.py",
        ],
        cases("cases"),
    ),
    Scenario(
        "Safe by default",
        "nothing lost without a word: `down` counts the orders it would drop; `pocctl local "
        "--data` keeps everything across a clean stop and a kill -9",
        [
            E + "test_down_counts.py",
            E + "test_local_data.py",
        ],
        cases("cases"),
    ),
]


def result(cs: list[Case]) -> str:
    if not cs:
        return "**not run**"
    n = Counter(c.outcome for c in cs)
    if n["failed"]:
        return f"**{n['failed']} of {len(cs)} failed**"
    if n["skipped"]:
        return f"{n['passed']} passed, **{n['skipped']} skipped**"
    return f"all {len(cs)} passed"


def render(all_cases: list[Case], command: str) -> str:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Reliability and security figures",
        "",
        f"Written by `{command}` on {when} from the test suite's JUnit report "
        f"({len(all_cases)} test cases in that run); do not edit by hand.",
        "Every scenario runs against the embedded AWS (moto on 127.0.0.1).",
    ]
    section = ""
    for s in SCENARIOS:
        if s.section != section:
            section = s.section
            lines += ["", f"## {section}", "", "| scenario | tried | result |", "|---|---|---|"]
        cs = s.select(all_cases)
        lines.append(f"| {s.what} | {s.count(cs)} | {result(cs)} |")
    return "\n".join(lines) + "\n"


def run_suite(junit: Path) -> int:
    cmd = [sys.executable, "-m", "pytest", "-q", "-n", "auto", f"--junitxml={junit}"]
    return subprocess.call(cmd, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--junit", type=Path, help="a JUnit XML report of a run already made")
    p.add_argument("--output", type=Path, default=OUT)
    args = p.parse_args(argv)
    code = 0
    if args.junit is None:
        with tempfile.TemporaryDirectory() as tmp:
            junit = Path(tmp) / "results.xml"
            code = run_suite(junit)
            all_cases = read_junit(junit)
        command = "make reliability"
    else:
        all_cases = read_junit(args.junit)
        command = f"python tests/support/reliability_report.py --junit {args.junit}"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(all_cases, command))
    missing = [s.what for s in SCENARIOS if not s.select(all_cases)]
    for what in missing:
        print(f"reliability_report: no test case found for: {what}", file=sys.stderr)
    print(f"wrote {os.path.relpath(args.output, Path.cwd())}")
    return code or (1 if missing else 0)


if __name__ == "__main__":
    sys.exit(main())
