"""Expected failures of the CLI: one clear line, the right exit code, no traceback, and no AWS
call that could change anything."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from support import subprocess_env

from pocctl import __version__
from pocctl.cli import main

LAB_COMMANDS = [
    "iam",
    "table",
    "queue",
    "lambda1",
    "streams",
    "topic",
    "lambda2",
    "api",
    "task",
    "up",
    "plan",
    "status",
    "down",
    "demo",
]


def one_error(stderr: str) -> str:
    """The error line of stderr, after checking it is the only one (hints may follow)."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert lines[0] == errors[0], stderr
    assert all(line.startswith("  → ") for line in lines[1:]), stderr
    return errors[0]


def test_a_corrupt_state_file_exits_2_with_the_hint_and_no_aws_call(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    ws.state.parent.mkdir(parents=True)
    ws.state.write_text('{"schema_version": 1, "resources": {"queue.orders": {"ar')
    r = ws.cli("up")
    assert r.exit_code == 2
    line = one_error(r.stderr)
    assert f"state file {ws.state} is unreadable" in line
    assert f"move it aside (mv {ws.state} {ws.state}.bak)" in line
    # The state file is read before the account lookup: not even sts GetCallerIdentity.
    assert aws_calls.calls == []
    assert ws.state.read_text() == '{"schema_version": 1, "resources": {"queue.orders": {"ar'


def test_a_state_file_of_another_region_exits_2_after_one_read(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    assert ws.cli("up").exit_code == 0
    data = json.loads(ws.state.read_text())
    data["region"] = "eu-west-1"
    ws.state.write_text(json.dumps(data))
    before = ws.state.read_text()
    aws_calls.clear()

    r = ws.cli("up")
    assert r.exit_code == 2
    line = one_error(r.stderr)
    assert f"state file {ws.state} belongs to region eu-west-1, not us-east-1" in line
    assert "--state" in line
    assert aws_calls.calls == [("GetCallerIdentity", False)]
    assert ws.state.read_text() == before


def test_an_unknown_profile_exits_2_with_one_clear_line(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    r = ws.subprocess("--profile", "nosuch", "up")
    assert r.exit_code == 2
    line = one_error(r.stderr)
    assert line == "error: The config profile (nosuch) could not be found"
    assert aws_calls.calls == []


def test_no_region_anywhere_exits_2(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    env = subprocess_env(ws.endpoint)
    env.pop("AWS_REGION")
    env.pop("AWS_DEFAULT_REGION")
    proc = subprocess.run(
        [sys.executable, "-m", "pocctl", "up"],
        cwd=ws.dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc.stderr
    assert one_error(proc.stderr) == "error: no AWS region configured"
    assert "--region" in proc.stderr
    assert aws_calls.calls == []


def test_python_m_pocctl_help_lists_every_command(ws) -> None:  # type: ignore[no-untyped-def]
    r = ws.subprocess("--help")
    assert r.exit_code == 0, r.stderr
    section = r.stdout.split("\nCommands:\n", 1)[1]
    # "  name  summary"; a wrapped summary continues on a line indented deeper
    listed = [
        line.split()[0]
        for line in section.splitlines()
        if line.startswith("  ") and not line.startswith("   ")
    ]
    for name in LAB_COMMANDS:
        assert name in listed, name
    assert set(main.commands) <= set(listed)


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_help_has_a_summary_and_an_example(name: str) -> None:
    command = main.commands[name]
    summary = command.get_short_help_str(limit=200)
    assert summary.strip()
    result = CliRunner().invoke(main, [name, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert " ".join(summary.split()) in " ".join(result.stdout.split())
    assert "Example" in result.stdout


def test_every_lab_command_exists() -> None:
    assert set(LAB_COMMANDS) <= set(main.commands)


def test_version_prints_the_version() -> None:
    result = CliRunner().invoke(main, ["--version"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout == f"pocctl, version {__version__}\n"


def test_an_unreachable_endpoint_exits_1_with_one_line_naming_it(ws) -> None:  # type: ignore[no-untyped-def]
    r = ws.cli("--endpoint-url", "http://127.0.0.1:9", "up")
    assert r.exit_code == 1
    line = one_error(r.stderr)
    assert "http://127.0.0.1:9" in line


def test_help_starts_without_boto3_rich_moto_or_the_resource_modules() -> None:
    """Start-up stays light: what `--help` needs is click and pocctl's command modules (the
    start-up figure itself is in the benchmark, not here)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pocctl.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('boto3', 'botocore', 'moto', 'rich', 'yaml', 'pocctl.resources', "
        "'pocctl.config', 'pocctl.aws')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or "
        "any(m == h or m.startswith(h + '.') for h in heavy)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Usage: " in proc.stdout
    assert proc.stderr.strip() == "[]", proc.stderr
