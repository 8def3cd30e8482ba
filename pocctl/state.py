"""The local state file: what pocctl made, written after every resource.

It records; it is never trusted over what AWS says (every run looks resources up first), so a lost
or stale file is recoverable. Writes are atomic (temp file, fsync, rename) and mode 0600; a lock
file keeps two runs from interleaving.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


class StateError(Exception):
    """The state file cannot be used; ``str()`` says why and what to do."""


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
        if not path.exists():
            return cls(path)
        hint = f"move it aside (mv {path} {path}.bak) and run again: pocctl finds resources by name"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.data, f, indent=2, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        # rename is only durable once the directory entry is on disk too
        with contextlib.suppress(OSError):
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


class StateLocked(StateError):
    pass


@contextlib.contextmanager
def locked(path: Path, wait: float = 10.0) -> Iterator[None]:
    """Hold ``<state>.lock`` for the duration; wait up to ``wait`` seconds, then refuse."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
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
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)  # closing releases the flock
