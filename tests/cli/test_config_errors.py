"""A bad config.yaml stops `pocctl up` with one line naming the key, before any AWS call."""

from __future__ import annotations

import pytest

# (id, config text, key path, fragment of the problem)
BAD = [
    ("top-level-list", "- queue\n- table\n", "(top level)", "must be a mapping, not a list"),
    ("unknown-nested-key", "queue:\n  colour: red\n", "queue.colour", "unknown key"),
    (
        "string-for-int",
        "queue:\n  visibility_timeout: sixty\n",
        "queue.visibility_timeout",
        "must be a whole number, not a string",
    ),
    (
        "queue-with-space",
        "queue:\n  name: POC Queue\n",
        "queue.name",
        "'POC Queue' is not a valid SQS queue name",
    ),
    (
        "role-longer-than-64",
        f"iam:\n  roles:\n    lambda1: {'R' * 65}\n",
        "iam.roles.lambda1",
        "must be 1 to 64 characters long (is 65)",
    ),
    (
        "policy-with-slash",
        "iam:\n  policies:\n    read_sqs: Lambda/Read\n",
        "iam.policies.read_sqs",
        "'Lambda/Read' is not a valid IAM policy name",
    ),
    (
        "stage-with-dash",
        "api:\n  stage: prod-1\n",
        "api.stage",
        "'prod-1' is not a valid stage name",
    ),
    ("region-us-east", "region: us-east\n", "region", "'us-east' is not an AWS region name"),
    (
        "runtime-python3.8-blocked",
        "lambda1:\n  runtime: python3.8\n",
        "lambda1.runtime",
        "python3.8 is past end of support",
    ),
    (
        "runtime-nodejs20.x",
        "lambda2:\n  runtime: nodejs20.x\n",
        "lambda2.runtime",
        "unknown runtime 'nodejs20.x'",
    ),
    (
        "visibility-below-6x-timeout",
        "lambda1:\n  timeout: 20\n",
        "queue.visibility_timeout",
        "60 s is less than 6 x lambda1.timeout = 120 s",
    ),
    (
        "starting-position-NOW",
        "lambda2:\n  starting_position: NOW\n",
        "lambda2.starting_position",
        "must be one of TRIM_HORIZON, LATEST (is 'NOW')",
    ),
    (
        "dead-letter-queue-is-the-queue",
        "queue:\n  dead_letter_queue: POC-Queue\n",
        "queue.dead_letter_queue",
        "'POC-Queue' is already used by queue.name",
    ),
    (
        "bad-email",
        "topic:\n  notification_email: you-at-example.com\n",
        "topic.notification_email",
        "'you-at-example.com' is not an email address",
    ),
    ("top-level-scalar", "just some text\n", "(top level)", "must be a mapping, not a string"),
    ("section-is-a-list", "queue:\n  - POC-Queue\n", "queue", "must be a mapping, not a list"),
    ("empty-table-name", 'table:\n  name: ""\n', "table.name", "must not be empty"),
    ("null-queue-name", "queue:\n  name: null\n", "queue.name", "must be a string, not nothing"),
    (
        "table-name-too-short",
        "table:\n  name: ab\n",
        "table.name",
        "must be 3 to 255 characters long (is 2)",
    ),
    (
        "function-name-with-dot",
        "lambda1:\n  name: POC.Lambda\n",
        "lambda1.name",
        "'POC.Lambda' is not a valid Lambda function name",
    ),
    (
        "topic-name-with-colon",
        "topic:\n  name: 'POC:Topic'\n",
        "topic.name",
        "'POC:Topic' is not a valid SNS topic name",
    ),
    (
        "bool-for-timeout",
        "lambda1:\n  timeout: yes\n",
        "lambda1.timeout",
        "must be a whole number, not true/false",
    ),
    (
        "timeout-over-15-minutes",
        "lambda2:\n  timeout: 901\n",
        "lambda2.timeout",
        "must be between 1 and 900 (is 901)",
    ),
    (
        "memory-below-128",
        "lambda2:\n  memory_size: 64\n",
        "lambda2.memory_size",
        "must be between 128 and 10240 (is 64)",
    ),
    (
        "sqs-batch-of-11",
        "lambda1:\n  batch_size: 11\n",
        "lambda1.batch_size",
        "must be between 1 and 10 (is 11)",
    ),
    (
        "retention-under-a-minute",
        "queue:\n  message_retention_period: 30\n",
        "queue.message_retention_period",
        "must be between 60 and 1209600 (is 30)",
    ),
    (
        "max-receive-count-0",
        "queue:\n  max_receive_count: 0\n",
        "queue.max_receive_count",
        "must be between 1 and 1000 (is 0)",
    ),
    (
        "stream-view-keys-only",
        "table:\n  stream_view_type: KEYS_ONLY\n",
        "table.stream_view_type",
        "must be one of NEW_IMAGE, NEW_AND_OLD_IMAGES (is 'KEYS_ONLY')",
    ),
    (
        "email-as-number",
        "topic:\n  notification_email: 42\n",
        "topic.notification_email",
        "42 is not an email address",
    ),
    ("empty-handlers-dir", 'handlers_dir: ""\n', "handlers_dir", "must be a non-empty path"),
    (
        "same-name-for-both-functions",
        "lambda2:\n  name: POC-Lambda-1\n",
        "lambda2.name",
        "'POC-Lambda-1' is already used by lambda1.name",
    ),
    (
        "same-name-for-two-roles",
        "iam:\n  roles:\n    apigateway: Lambda-SQS-DynamoDB\n",
        "iam.roles.apigateway",
        "'Lambda-SQS-DynamoDB' is already used by iam.roles.lambda1",
    ),
]


@pytest.mark.parametrize(("text", "key", "fragment"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_bad_config_exits_2_with_one_line_and_no_aws_call(  # type: ignore[no-untyped-def]
    ws, aws_calls, text: str, key: str, fragment: str
) -> None:
    ws.config.write_text(text)
    r = ws.cli("up")
    assert r.exit_code == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: config.yaml: {key}: "), lines[0]
    assert fragment in lines[0]
    assert "Traceback" not in r.output
    assert r.stdout == ""
    assert aws_calls.calls == []
    assert not ws.state.exists()


def test_a_yaml_syntax_error_names_the_line_without_an_aws_call(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    ws.config.write_text("queue:\n  name: POC-Queue\n    colour: red\n")
    r = ws.cli("up")
    assert r.exit_code == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: config.yaml: not valid YAML: line 3, ")
    assert aws_calls.calls == []


def test_an_explicit_config_that_is_missing_exits_2_naming_the_file(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from pocctl.cli import main

    missing = ws.dir / "missing.yaml"
    argv = ["--config", str(missing), "--state", str(ws.state), "--endpoint-url", ws.endpoint]
    result = CliRunner().invoke(main, [*argv, "up"], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr == f"error: {missing}: no such file\n"
    assert aws_calls.calls == []


def test_a_python3_9_runtime_builds_the_stack_with_a_deprecation_warning(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    ws.write_config("lambda1:\n  runtime: python3.9\n")
    r = ws.cli("up")
    assert r.exit_code == 0, r.output
    assert (
        "warning: config.yaml: lambda1.runtime: python3.9 is deprecated since 2025-12-15"
        in r.stderr
    )
    assert r.stderr.count("warning:") == 1
    assert "error" not in r.stderr
    fn = ws.client("lambda").get_function_configuration(FunctionName="POC-Lambda-1")
    assert fn["Runtime"] == "python3.9"
    assert aws_calls.mutating


# -- hostile or mistaken files: refused fast, small, in one line -------------------------------

# Runs `python -m pocctl ARGS` with its address space capped, and writes the run's peak resident
# memory (MiB) to $POCCTL_TEST_PEAK: an expansion that builds what it reads fails the cap (the
# old loader reached 1.5 GB on the alias bomb) and the peak is the figure the issue bounds.
BOUNDED_RUN = """
import os, resource, runpy
cap = 512 * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
try:
    runpy.run_module("pocctl", run_name="__main__", alter_sys=True)
finally:
    try:  # Linux: this process image's own high-water mark (ru_maxrss keeps the forking parent's)
        with open("/proc/self/status") as f:
            peak = next(int(x.split()[1]) for x in f if x.startswith("VmHWM:")) / 1024
    except OSError:  # macOS: no /proc; ru_maxrss is in bytes there
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    with open(os.environ["POCCTL_TEST_PEAK"], "w") as f:
        f.write(str(peak))
"""


def bounded_cli(ws, *args: str) -> tuple[int, str, str, float]:  # type: ignore[no-untyped-def]
    """(exit code, stdout, stderr, peak MiB) of the real CLI under a 512 MiB address space."""
    import subprocess
    import sys

    from support import subprocess_env

    peak_file = ws.dir / "peak.txt"
    proc = subprocess.run(
        [sys.executable, "-c", BOUNDED_RUN, "--endpoint-url", ws.endpoint, *args],
        cwd=ws.dir,
        env=subprocess_env(POCCTL_TEST_PEAK=str(peak_file), PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True,
        text=True,
        timeout=60,  # a deadline for a hang, not the 2 s figure (measured in the report)
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stdout, proc.stderr, float(peak_file.read_text())


def _laughs(levels: int = 9) -> str:
    """A "billion laughs" as one YAML flow sequence: level n names level n-1 nine times."""
    items = ["&l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    items += [f"&l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels)]
    return "[" + ", ".join(items) + "]"


HOSTILE = [
    ("alias-bomb-region", f"region: {_laughs()}\n", "region[", "YAML values with its aliases"),
    (
        "alias-bomb-stream-view-type",
        f"table:\n  stream_view_type: {_laughs()}\n",
        "table.stream_view_type[",
        "YAML values with its aliases",
    ),
    (
        "alias-bomb-email",
        f"topic:\n  notification_email: {_laughs()}\n",
        "topic.notification_email[",
        "YAML values with its aliases",
    ),
    (
        "merge-key-bomb",
        "a: &m0 {x: 1}\n"
        + "".join(f"b{n}: &m{n} {{<<: [*m{n - 1}, *m{n - 1}]}}\n" for n in range(1, 60)),
        "b",
        "YAML values with its aliases",
    ),
    ("alias-loop", "queue: &q\n  name: *q\n", "queue.name", "is inside what it names"),
    ("deep-flow-nesting", "region: " + "[" * 100_000 + "]" * 100_000 + "\n", "", "nesting"),
    (
        "deep-block-nesting",
        "".join("  " * n + f"k{n}:\n" for n in range(500)),
        "k0.k1.",
        "nested deeper than 16 levels",
    ),
    ("scalar-of-a-mebibyte", "region: " + "x" * 1_000_000 + "\n", "region", "a value of 1000000"),
]


@pytest.mark.parametrize(
    ("text", "key", "says"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_a_hostile_config_exits_2_in_one_line_small_and_before_any_aws_call(  # type: ignore[no-untyped-def]
    ws, aws_calls, text: str, key: str, says: str
) -> None:
    ws.config.write_text(text)
    code, out, err, peak = bounded_cli(ws, "plan")
    assert code == 2, err
    assert "Traceback" not in err and "MemoryError" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: config.yaml: {key}"), lines[0]
    assert says in lines[0]
    assert len(lines[0]) < 300
    assert peak < 100, f"peak resident memory {peak:.0f} MiB"
    assert aws_calls.calls == []


def test_a_config_over_1_mib_is_refused_unread(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    """2 MiB of comments (valid YAML), and a sparse 4 GiB file: reading either whole would show
    in the peak (and the 4 GiB one cannot fit the 512 MiB cap at all)."""
    ws.config.write_text("# padding\n" * (2 * 1024 * 1024 // 10) + "region: us-east-1\n")
    size = ws.config.stat().st_size
    code, _, err, peak = bounded_cli(ws, "up")
    assert code == 2, err
    assert err == (
        f"error: config.yaml: is {size:,} bytes, over the 1,048,576 bytes (1 MiB) a config "
        "file can be; not read\n"
    )
    assert peak < 100, f"peak resident memory {peak:.0f} MiB"

    with open(ws.config, "wb") as f:
        f.truncate(4 * 1024**3)  # sparse: no disk used
    code, _, err, peak = bounded_cli(ws, "plan")
    assert code == 2, err
    assert err.startswith("error: config.yaml: is 4,294,967,296 bytes, over the 1,048,576 bytes")
    assert peak < 100, f"peak resident memory {peak:.0f} MiB"
    assert aws_calls.calls == []


def test_a_config_that_never_ends_is_read_only_to_1_mib(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    code, _, err, peak = bounded_cli(ws, "--config", "/dev/zero", "plan")
    assert code == 2, err
    assert err == ("error: zero: is over the 1,048,576 bytes (1 MiB) a config file can be\n")
    assert peak < 100, f"peak resident memory {peak:.0f} MiB"
    assert aws_calls.calls == []


def test_handlers_dir_without_the_handlers_fails_plan_and_up_before_any_aws_call(  # type: ignore[no-untyped-def]
    ws, aws_calls
) -> None:
    ws.config.write_text("handlers_dir: /\n")
    for command in ("plan", "up"):
        r = ws.subprocess(command)
        assert r.exit_code == 2, r.stderr
        assert r.stderr == (
            "error: config.yaml: handlers_dir: / has no store_order.py or notify_order.py "
            "(the Lambda handlers)\n"
        )
    (ws.dir / "empty").mkdir()
    (ws.dir / "empty" / "store_order.py").write_text("")
    ws.config.write_text("handlers_dir: empty\n")
    r = ws.subprocess("up")
    assert r.exit_code == 2
    assert r.stderr == (
        "error: config.yaml: handlers_dir: empty (relative to config.yaml's folder) has no "
        "notify_order.py (the Lambda handlers)\n"
    )
    ws.config.write_text("handlers_dir: handlers/store_order.py\n")
    r = ws.subprocess("plan")
    assert r.exit_code == 2
    assert r.stderr == (
        "error: config.yaml: handlers_dir: handlers/store_order.py (relative to config.yaml's "
        "folder) is not a directory\n"
    )
    assert aws_calls.calls == []
    assert not ws.state.exists()


def test_a_config_using_anchors_aliases_and_merge_keys_within_bounds_works(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    ws.write_config(
        "lambda1: &fn\n  runtime: &rt python3.12\n  timeout: 5\n"
        "lambda2:\n  <<: *fn\n  batch_size: 50\n"
        "queue:\n  visibility_timeout: 30\n"
    )
    r = ws.cli("plan")
    assert r.exit_code == 0, r.output
    assert aws_calls.mutating == []


def test_handler_errors_stop_the_real_cli_with_exit_2_and_the_key_path(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    """Missing module, missing function and a bad handler string: one line each, before any
    AWS call (the console's code folder, as `pocctl up` is typed)."""
    lab = ws.dir / "lab"
    lab.mkdir()
    (lab / "lambda_function.py").write_text("def lambda_handler(event, context):\n    pass\n")
    cases = [
        (
            "lambda1:\n  code: lab\n  handler: app.lambda_handler\n",
            "lambda1.handler: app.lambda_handler: lab/ has no app.py or app/__init__.py "
            "(the module)",
        ),
        (
            "lambda1:\n  code: lab\n  handler: lambda_function.handler\n",
            "lambda1.handler: lambda_function.py defines no function handler at module level "
            "(it defines: lambda_handler)",
        ),
        (
            "lambda2:\n  code: lab\n  handler: lambda_function\n",
            "lambda2.handler: 'lambda_function' is not module.function (like "
            "lambda_function.lambda_handler: the module's file name without .py, a dot, the "
            "function's name)",
        ),
        (
            "lambda2:\n  code: lab/lambda_function.py\n",
            "lambda2.handler: lambda_function.handler (the default): lambda_function.py defines "
            "no function handler at module level (it defines: lambda_handler)",
        ),
    ]
    for i, (text, says) in enumerate(cases):
        ws.config.write_text(text)
        # A subprocess each for the three kinds; in-process (the same entry point) after.
        r = ws.subprocess("up") if i < 3 else ws.cli("up")
        assert (r.exit_code, r.stdout) == (2, ""), r.output
        assert r.stderr == f"error: config.yaml: {says}\n"
    assert aws_calls.calls == []
    assert not ws.state.exists()
