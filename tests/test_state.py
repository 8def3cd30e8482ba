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
    ("target", "crash", "raised"),
    [
        ("replace", OSError("disk gone"), StateError),
        ("fsync", KeyboardInterrupt(), KeyboardInterrupt),
    ],
    ids=["os.replace-raises", "interrupted-before-rename"],
)
def test_save_is_atomic_a_crash_keeps_the_old_file_and_leaves_no_temp_file(
    path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    crash: BaseException,
    raised: type[BaseException],
) -> None:
    s = recorded(path)
    before = path.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise crash

    monkeypatch.setattr(os, target, boom)
    with pytest.raises(raised):
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


# -- links, odd files and failed writes ------------------------------------------------------------

KNOWN = "the file a link points to: pocctl must never change it\n"


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A file with known content, outside the state folder, for links to point to."""
    t = tmp_path / "elsewhere" / "precious.txt"
    t.parent.mkdir()
    t.write_text(KNOWN)
    return t


def test_a_symlinked_state_file_is_refused_by_load_and_save_and_its_target_kept(
    path: Path, target: Path
) -> None:
    path.parent.mkdir(parents=True)
    path.symlink_to(target)
    with pytest.raises(StateError) as info:
        State.load(path)
    assert str(info.value).startswith(f"state file {path} is a symbolic link")
    s = State(path)
    with pytest.raises(StateError, match="is a symbolic link"):
        s.record("queue.orders", {"arn": "arn:x"})
    assert target.read_text() == KNOWN
    assert path.is_symlink()
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]  # no temp file left


def test_a_dangling_symlink_as_state_file_is_refused_not_taken_for_a_missing_file(
    path: Path, tmp_path: Path
) -> None:
    path.parent.mkdir(parents=True)
    path.symlink_to(tmp_path / "not-there-yet")
    with pytest.raises(StateError, match="is a symbolic link"):
        State.load(path)
    with pytest.raises(StateError, match="is a symbolic link"):
        State(path).save()
    assert not (tmp_path / "not-there-yet").exists()


def test_a_symlinked_lock_file_is_refused_and_its_target_kept(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True)
    lock = path.with_name("state.json.lock")
    lock.symlink_to(target)
    with pytest.raises(StateError) as info, locked(path):
        pass
    assert str(info.value).startswith(f"lock file {lock} is a symbolic link")
    assert target.read_text() == KNOWN


def test_a_symlinked_state_folder_is_refused_and_nothing_is_written_into_its_target(
    path: Path, tmp_path: Path
) -> None:
    real = tmp_path / "someone-elses-folder"
    real.mkdir()
    (real / "state.json").write_text(KNOWN)
    path.parent.symlink_to(real, target_is_directory=True)
    for attempt in (lambda: State.load(path), lambda: State(path).save()):
        with pytest.raises(StateError) as info:
            attempt()
        assert str(info.value).startswith(f"state folder {path.parent} is a symbolic link")
    with pytest.raises(StateError, match="is a symbolic link"), locked(path):
        pass
    assert sorted(p.name for p in real.iterdir()) == ["state.json"]
    assert (real / "state.json").read_text() == KNOWN


def test_the_temp_file_is_new_random_0600_and_never_opened_through_a_link(
    path: Path, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temp file's name is random, and O_EXCL|O_NOFOLLOW means that even a link planted
    under that very name is not written through."""
    import secrets

    s = recorded(path)
    opened: list[tuple[str, int]] = []
    real_open = os.open

    def spy(name, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append((str(name), flags))
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    s.record("a", {"n": 1})
    s.record("b", {"n": 2})
    temps = [(n, f) for n, f in opened if n.endswith(".tmp")]
    assert len(temps) == 2 and temps[0][0] != temps[1][0]
    for name, flags in temps:
        assert name.startswith(".state.json.")
        want = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        assert flags & want == want
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    before = path.read_bytes()
    monkeypatch.setattr(secrets, "token_hex", lambda n: "planted")
    (path.parent / ".state.json.planted.tmp").symlink_to(target)
    with pytest.raises(StateError, match="cannot write the state file"):
        s.record("c", {"n": 3})
    assert target.read_text() == KNOWN
    assert path.read_bytes() == before


def test_a_fifo_as_state_file_is_refused_without_waiting(path: Path) -> None:
    import threading

    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            State.load(path)
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # blocked opening the FIFO: release it, then fail
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=10)
        pytest.fail("State.load waited for a writer on a FIFO")
    assert isinstance(outcome[0], StateError), outcome
    assert "is not a regular file" in str(outcome[0])


def test_a_full_disk_is_a_state_error_the_old_file_stays_and_the_next_save_converges(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    s = recorded(path)
    before = path.read_bytes()
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StateError) as info:
        s.record("table.orders", {"arn": "arn:aws:dynamodb:table/orders"})
    message = str(info.value)
    assert message.startswith(f"cannot write the state file {path}: No space left on device;")
    assert "\n" not in message
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]

    # A disk that takes one byte at a time (short writes) still gets the whole file.
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:1])))
    s.save()
    monkeypatch.undo()
    assert State.load(path).get("table.orders") == {"arn": "arn:aws:dynamodb:table/orders"}


def test_a_lock_file_that_cannot_be_written_is_a_state_error(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StateError) as info, locked(path):
        pass
    assert str(info.value) == (f"cannot write the lock file {path}.lock: No space left on device")
