"""The local state file: what pocctl made, written after every resource.

It records; it is never trusted over what AWS says (every run looks resources up first), so a lost
or stale file is recoverable. Writes are atomic (temp file, fsync, rename) and mode 0600; a lock
file keeps two runs from interleaving.

Nothing here is followed through a symbolic link: a link committed into a cloned repository
(``.pocctl/state.json.lock -> ~/.bashrc``) must not make pocctl write the file it points to. The
state file, its lock and its temp file are opened with O_NOFOLLOW (the temp file also O_EXCL,
under a random name), relative to the state folder opened with O_NOFOLLOW too, so a link in any
of the three places, or the folder itself, is refused rather than written through.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

# Where a failed write leaves the user: AWS has what was made, found again by name next time.
_NOTHING_LOST = (
    "nothing is lost: pocctl finds its resources by name, so the next run (once the state file "
    "can be written) picks up where this one stopped"
)


class StateError(Exception):
    """The state file cannot be used; ``str()`` says why and what to do."""


def _refused_link(what: str, path: Path) -> StateError:
    return StateError(
        f"{what} {path} is a symbolic link; pocctl does not write through links (it would "
        "change the file the link points to): remove the link, or pass --state with the real path"
    )


def _is_link(name: str | Path, dir_fd: int | None = None) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


@contextlib.contextmanager
def _folder(path: Path, *, create: bool) -> Iterator[int | None]:
    """A descriptor of the state file's folder, opened without following a link (None when the
    folder is missing and ``create`` is false). Every file below is opened relative to it, so
    the folder cannot be swapped for a link between the check and the write."""
    folder = path.parent
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        if create:
            raise StateError(f"cannot create the state folder {folder}: no such folder") from None
        fd = None
    except OSError as e:
        if _is_link(folder):
            raise _refused_link("state folder", folder) from None
        verb = "create" if create else "open"
        raise StateError(f"cannot {verb} the state folder {folder}: {e.strerror}") from None
    try:
        yield fd
    finally:
        if fd is not None:
            os.close(fd)


def _open(dir_fd: int, path: Path, flags: int, what: str) -> int:
    """os.open of ``path``'s name in ``dir_fd``, never through a link; StateError otherwise."""
    try:
        fd = os.open(path.name, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600, dir_fd=dir_fd)
    except OSError:
        if _is_link(path.name, dir_fd):
            raise _refused_link(what, path) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StateError(f"{what} {path} is not a regular file; move it aside")
    return fd


class State:
    def __init__(self, path: Path, data: dict[str, Any] | None = None) -> None:
        self.path = path
        self.data: dict[str, Any] = data or {
            "schema_version": SCHEMA_VERSION,
            "account": None,
            "region": None,
            "endpoint": None,
            "resources": {},
        }

    # -- reading ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> State:
        hint = f"move it aside (mv {path} {path}.bak) and run again: pocctl finds resources by name"
        with _folder(path, create=False) as dir_fd:
            if dir_fd is None:
                return cls(path)
            try:
                fd = _open(dir_fd, path, os.O_RDONLY, "state file")
            except FileNotFoundError:
                return cls(path)
            except OSError as e:
                raise StateError(
                    f"state file {path} is unreadable ({e.strerror}); {hint}"
                ) from None
        try:
            with os.fdopen(fd, "rb") as f:
                data = json.loads(f.read().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise StateError(f"state file {path} is unreadable ({e}); {hint}") from None
        if not isinstance(data, dict) or not isinstance(data.get("resources"), dict):
            raise StateError(f"state file {path} is not a pocctl state file; {hint}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise StateError(
                f"state file {path} has schema version {version!r}, this pocctl reads "
                f"{SCHEMA_VERSION}; {hint}"
            )
        return cls(path, data)

    def check_target(self, account: str, region: str, endpoint: str | None) -> None:
        """Refuse to mix state of another account, region or endpoint."""
        for key, now in (("account", account), ("region", region), ("endpoint", endpoint)):
            was = self.data.get(key)
            # None is a real endpoint value (AWS itself), so it is compared too.
            if self.data["resources"] and was != now and (was is not None or key == "endpoint"):
                raise StateError(
                    f"state file {self.path} belongs to {key} {was}, not {now}; use "
                    f"--state to pick another file (or move this one aside)"
                )
        self.data.update(account=account, region=region, endpoint=endpoint)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.data["resources"]

    def get(self, key: str) -> dict[str, Any] | None:
        return self.resources.get(key)

    # -- writing ---------------------------------------------------------------------------------

    def record(self, key: str, entry: dict[str, Any]) -> None:
        if self.resources.get(key) == entry:
            return
        self.resources[key] = entry
        self.save()

    def forget(self, key: str) -> None:
        if self.resources.pop(key, None) is not None:
            self.save()

    def save(self) -> None:
        """Write the state atomically: a new temp file (random name, O_EXCL, 0600) in the same
        folder, fsync, rename over the state file, fsync the folder. StateError when it cannot
        be written (read-only folder, full disk); the old file is then left as it was."""
        text = json.dumps(self.data, indent=2, sort_keys=True) + "\n"
        with _folder(self.path, create=True) as dir_fd:
            assert dir_fd is not None
            if _is_link(self.path.name, dir_fd):
                raise _refused_link("state file", self.path)
            try:
                self._replace(dir_fd, text.encode("utf-8"))
            except OSError as e:
                raise StateError(
                    f"cannot write the state file {self.path}: {e.strerror or e}; {_NOTHING_LOST}"
                ) from None
            # the rename is durable only once the folder's entry is on disk too
            with contextlib.suppress(OSError):
                os.fsync(dir_fd)

    def _replace(self, dir_fd: int, data: bytes) -> None:
        tmp = f".{self.path.name}.{secrets.token_hex(8)}.tmp"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd
        )
        try:
            try:
                view = memoryview(data)
                while view:  # os.write may write less than asked (a nearly full disk)
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise


class StateLocked(StateError):
    pass


@contextlib.contextmanager
def locked(path: Path, wait: float = 10.0) -> Iterator[None]:
    """Hold ``<state>.lock`` for the duration; wait up to ``wait`` seconds, then refuse."""
    lock_path = path.with_name(path.name + ".lock")
    with _folder(path, create=True) as dir_fd:
        assert dir_fd is not None
        try:
            fd = _open(dir_fd, lock_path, os.O_RDWR | os.O_CREAT, "lock file")
        except OSError as e:
            raise StateError(f"cannot write the lock file {lock_path}: {e.strerror}") from None
    try:
        _take(fd, lock_path, wait)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _take(fd: int, lock_path: Path, wait: float) -> None:
    import fcntl

    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StateLocked(
                        f"another pocctl run holds {lock_path}; wait for it to finish"
                    ) from None
                time.sleep(0.1)  # polling a lock held by another process: no event to wait on
        # The PID is for people; a full disk stops the run here, before any AWS call.
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
    except OSError as e:  # ENOLCK (a file system without locks), ENOSPC, EIO
        raise StateError(f"cannot write the lock file {lock_path}: {e.strerror}") from None
