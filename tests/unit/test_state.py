"""The state file: 0600, durable after every record, atomic, refused when foreign or broken,
and locked against a second run."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, subprocess_env

from pocctl.state import SCHEMA_VERSION, State, StateError, locked

ACCOUNT, REGION, ENDPOINT = "123456789012", "us-east-1", "http://127.0.0.1:4566"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / ".pocctl" / "state.json"


def recorded(path: Path) -> State:
    """A saved state with one resource, for ACCOUNT/REGION/ENDPOINT."""
    s = State(path)
    s.check_target(ACCOUNT, REGION, ENDPOINT)
    s.record("queue.orders", {"arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:POC-Queue"})
    return s


def test_save_writes_mode_0600_and_json_with_the_schema_version(path: Path) -> None:
    s = State(path)
    s.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["resources"] == {}


def test_save_makes_an_existing_world_readable_file_0600(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    path.chmod(0o644)
    State(path).save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_every_record_and_forget_is_durable(path: Path) -> None:
    s = State(path)
    s.check_target(ACCOUNT, REGION, ENDPOINT)
    for i in range(5):
        s.record(f"thing.{i}", {"arn": f"arn:{i}", "n": i})
        assert State.load(path).data == s.data
        assert f"thing.{i}" in State.load(path).resources
    s.record("thing.0", {"arn": "arn:changed"})
    assert State.load(path).get("thing.0") == {"arn": "arn:changed"}
    s.forget("thing.1")
    assert State.load(path).data == s.data
    assert State.load(path).get("thing.1") is None


@pytest.mark.parametrize(
    ("target", "crash"),
    [("replace", OSError("disk gone")), ("fsync", KeyboardInterrupt())],
    ids=["os.replace-raises", "interrupted-before-rename"],
)
def test_save_is_atomic_a_crash_keeps_the_old_file_and_leaves_no_temp_file(
    path: Path, monkeypatch: pytest.MonkeyPatch, target: str, crash: BaseException
) -> None:
    s = recorded(path)
    before = path.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise crash

    monkeypatch.setattr(os, target, boom)
    with pytest.raises(type(crash)):
        s.record("table.orders", {"arn": "arn:aws:dynamodb:table/orders"})
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]
    assert State.load(path).get("table.orders") is None


def _valid_text(path: Path) -> str:
    recorded(path)
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (lambda valid: valid[: len(valid) // 2], "is unreadable"),
        (lambda valid: "", "is unreadable"),
        (lambda valid: "[1, 2, 3]\n", "is not a pocctl state file"),
        (lambda valid: '"state"\n', "is not a pocctl state file"),
        (lambda valid: '{"schema_version": 1}\n', "is not a pocctl state file"),
        (
            lambda valid: json.dumps({**json.loads(valid), "schema_version": 2}),
            "has schema version 2, this pocctl reads 1",
        ),
        (
            lambda valid: json.dumps({**json.loads(valid), "schema_version": None}),
            "has schema version None",
        ),
        (
            lambda valid: json.dumps(
                {k: v for k, v in json.loads(valid).items() if k != "schema_version"}
            ),
            "has schema version None",
        ),
    ],
    ids=[
        "truncated",
        "empty",
        "list",
        "string",
        "no-resources",
        "newer-schema",
        "null-schema",
        "no-schema",
    ],
)
def test_a_broken_state_file_raises_state_error_saying_move_it_aside(
    path: Path,
    content,
    says: str,  # type: ignore[no-untyped-def]
) -> None:
    text = content(_valid_text(path))
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StateError) as info:
        State.load(path)
    message = str(info.value)
    assert says in message
    assert str(path) in message
    assert f"move it aside (mv {path} {path}.bak)" in message
    assert path.read_text(encoding="utf-8") == text  # left for the user to inspect


def test_a_missing_state_file_is_an_empty_state(path: Path) -> None:
    s = State.load(path)
    assert s.resources == {}
    assert not path.exists()


@pytest.mark.parametrize(
    ("key", "target"),
    [
        ("account", ("210987654321", REGION, ENDPOINT)),
        ("region", (ACCOUNT, "eu-west-1", ENDPOINT)),
        ("endpoint", (ACCOUNT, REGION, "http://127.0.0.1:4999")),
        ("endpoint", (ACCOUNT, REGION, None)),
    ],
    ids=["account", "region", "endpoint", "endpoint-real-aws"],
)
def test_check_target_refuses_another_target_when_resources_are_recorded(
    path: Path, key: str, target: tuple[str, str, str | None]
) -> None:
    s = State.load(recorded(path).path)
    with pytest.raises(StateError) as info:
        s.check_target(*target)
    assert f"belongs to {key} " in str(info.value)
    assert "--state" in str(info.value)
    assert (s.data["account"], s.data["region"], s.data["endpoint"]) == (
        ACCOUNT,
        REGION,
        ENDPOINT,
    )


def test_check_target_accepts_the_same_target(path: Path) -> None:
    s = State.load(recorded(path).path)
    s.check_target(ACCOUNT, REGION, ENDPOINT)
    assert len(s.resources) == 1


def test_check_target_accepts_another_target_when_nothing_is_recorded(path: Path) -> None:
    s = recorded(path)
    s.forget("queue.orders")
    s = State.load(path)
    s.check_target("210987654321", "eu-west-1", None)
    assert (s.data["account"], s.data["region"], s.data["endpoint"]) == (
        "210987654321",
        "eu-west-1",
        None,
    )


TAKE_LOCK = """
import sys
from pathlib import Path
from pocctl.state import StateLocked, locked
try:
    with locked(Path(sys.argv[1]), wait=0.2):
        print("got the lock")
except StateLocked as e:
    print(type(e).__name__, e)
    sys.exit(3)
"""


def take_lock_in_another_process(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", TAKE_LOCK, str(path)],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_second_process_is_refused_the_lock_and_gets_it_after_release(path: Path) -> None:
    with locked(path):
        held = take_lock_in_another_process(path)
        assert held.returncode == 3, held.stderr
        assert held.stdout.startswith("StateLocked another pocctl run holds ")
        assert f"{path}.lock" in held.stdout
    free = take_lock_in_another_process(path)
    assert free.returncode == 0, free.stderr
    assert free.stdout.strip() == "got the lock"


def test_check_target_refuses_an_endpoint_for_state_recorded_against_aws(path: Path) -> None:
    s = State(path)
    s.check_target(ACCOUNT, REGION, None)  # real AWS: no endpoint
    s.record("queue.orders", {"type": "sqs_queue", "name": "POC-Queue", "arn": "arn:x"})
    s = State.load(path)
    with pytest.raises(StateError, match="belongs to endpoint None"):
        s.check_target(ACCOUNT, REGION, "http://127.0.0.1:4566")
