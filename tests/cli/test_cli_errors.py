"""Expected failures of the CLI: one clear line, the right exit code, no traceback, and no AWS
call that could change anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


# -- files that cannot hurt: links refused, failed writes in one line, the next run converges -----

KNOWN = "a file of the user's that a link points to: pocctl must never change it\n"
LINK_REFUSAL = "is a symbolic link; pocctl does not write through links"


def _outside(ws) -> Path:  # type: ignore[no-untyped-def]
    target = ws.dir / "elsewhere" / "precious.txt"
    target.parent.mkdir()
    target.write_text(KNOWN)
    return target


@pytest.mark.parametrize("command", ["up", "plan"])
def test_a_symlinked_state_file_is_refused_and_its_target_unchanged(  # type: ignore[no-untyped-def]
    ws, aws_calls, command: str
) -> None:
    target = _outside(ws)
    ws.state.parent.mkdir()
    ws.state.symlink_to(target)
    r = ws.subprocess("--state", str(ws.state), command)
    assert r.exit_code == 2, r.stderr
    assert one_error(r.stderr).startswith(f"error: state file {ws.state} {LINK_REFUSAL}")
    assert target.read_text() == KNOWN
    assert ws.state.is_symlink()
    assert aws_calls.mutating == []


def test_a_symlinked_lock_file_is_refused_and_its_target_unchanged(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    """The issue's case: a link committed as .pocctl/state.json.lock had its target replaced
    by a PID."""
    target = _outside(ws)
    ws.state.parent.mkdir()
    lock = ws.state.with_name("state.json.lock")
    lock.symlink_to(target)
    r = ws.subprocess("up")  # the default --state, .pocctl/state.json in the working folder
    assert r.exit_code == 2, r.stderr
    line = one_error(r.stderr)
    assert line.startswith(f"error: lock file .pocctl/state.json.lock {LINK_REFUSAL}")
    assert target.read_text() == KNOWN
    assert aws_calls.calls == []


def test_a_symlinked_state_folder_is_refused_and_nothing_written_into_its_target(  # type: ignore[no-untyped-def]
    ws, aws_calls
) -> None:
    """Decision: the state file's own folder must not be a link either (a committed
    `.pocctl -> ~/some/app` would otherwise have pocctl replace that app's state.json); folders
    above it may be links (/tmp on macOS is one)."""
    real = ws.dir / "another-apps-folder"
    real.mkdir()
    (real / "state.json").write_text(KNOWN)
    (ws.dir / ".pocctl").symlink_to(real, target_is_directory=True)
    r = ws.subprocess("up")
    assert r.exit_code == 2, r.stderr
    assert one_error(r.stderr).startswith(f"error: state folder .pocctl {LINK_REFUSAL}")
    assert sorted(p.name for p in real.iterdir()) == ["state.json"]
    assert (real / "state.json").read_text() == KNOWN
    assert aws_calls.calls == []


def _read_only(folder: Path, argv: list[str]) -> list[str]:
    """``argv`` run with ``folder`` read-only for it. For a user, mode 0555 does it; root writes
    whatever the mode, so as root the run gets its own mount namespace (a user namespace, no
    privilege needed) where ``folder`` is a read-only bind mount."""
    import shutil

    folder.chmod(0o555)
    if os.geteuid() != 0:
        return argv
    assert shutil.which("unshare"), "as root, a read-only folder needs util-linux's unshare"
    remount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        remount,
        str(folder),
    ] + argv


def test_a_read_only_state_folder_is_one_line_before_any_aws_change_then_converges(  # type: ignore[no-untyped-def]
    ws, aws_calls
) -> None:
    ws.state.parent.mkdir()
    argv = [sys.executable, "-m", "pocctl", "--endpoint-url", ws.endpoint]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _read_only(ws.state.parent, [*argv, *args]),
            cwd=ws.dir,
            env=subprocess_env(PYTHONDONTWRITEBYTECODE="1"),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    up = run("up")
    assert up.returncode == 2, up.stderr
    line = one_error(up.stderr)
    lock = Path(".pocctl/state.json.lock")
    assert line in (
        f"error: cannot write the lock file {lock}: Permission denied",
        f"error: cannot write the lock file {lock}: Read-only file system",
    )
    assert aws_calls.mutating == []  # refused before anything was made
    plan = run("plan")  # reading needs no write
    assert plan.returncode == 0, plan.stderr

    ws.state.parent.chmod(0o755)
    again = ws.subprocess("up")
    assert again.exit_code == 0, again.stderr
    assert "stack is up: 18 created" in again.stdout
    assert len(json.loads(ws.state.read_text())["resources"]) == 18


# `python -m pocctl ARGS` where no file can grow past 64 bytes: the lock's PID fits, the state
# file does not, so the first write after AWS made something fails as on a full disk (EFBIG from
# the kernel here, ENOSPC there: both are the OSError the state write turns into one line).
FULL_DISK_RUN = """
import resource, runpy
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
runpy.run_module("pocctl", run_name="__main__", alter_sys=True)
"""


def test_a_full_disk_during_up_is_one_line_exit_2_and_the_next_up_converges(ws, aws_calls) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK_RUN, "--endpoint-url", ws.endpoint, "up"],
        cwd=ws.dir,
        env=subprocess_env(PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc.stderr
    line = one_error(proc.stderr)
    assert line.startswith(f"error: cannot write the state file {Path('.pocctl/state.json')}: ")
    assert "nothing is lost" in line
    assert aws_calls.mutating, "the run had made something before the write failed"
    assert not ws.state.exists()  # no half-written file in its place
    assert sorted(p.name for p in ws.state.parent.iterdir()) == ["state.json.lock"]  # no temp

    again = ws.subprocess("up")
    assert again.exit_code == 0, again.stderr
    assert "stack is up: " in again.stdout
    assert len(json.loads(ws.state.read_text())["resources"]) == 18
    last = ws.cli("up")
    assert "0 created, 0 updated, 18 unchanged" in last.stdout


def test_test_order_with_a_100000_deep_body_is_one_line_exit_2_before_any_aws_call(  # type: ignore[no-untyped-def]
    ws, aws_calls
) -> None:
    for body in ("[" * 100_000, "[" * 50_000 + "]" * 50_000, '{"a":' * 20_000):
        r = ws.subprocess("test-order", "--body", body)
        assert r.exit_code == 2, r.stderr[-2000:]
        assert one_error(r.stderr) == (
            "error: --body is nested too deeply to parse; an order is a JSON object of fields"
        )
    assert aws_calls.calls == []
