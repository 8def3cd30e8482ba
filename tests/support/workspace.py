"""Test workspaces: the real CLI (click's entry point in-process, or `python -m pocctl` as a
subprocess) against the embedded AWS server on 127.0.0.1."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
import pexpect
from click.testing import CliRunner

from support import ROOT, subprocess_env


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Workspace:
    dir: Path
    endpoint: str

    @property
    def config(self) -> Path:
        return self.dir / "config.yaml"

    @property
    def state(self) -> Path:
        return self.dir / ".pocctl" / "state.json"

    @property
    def handlers(self) -> Path:
        return self.dir / "handlers"

    def write_config(self, text: str = "") -> None:
        self.config.write_text(f"handlers_dir: handlers\n{text}")

    def cmd(self, *words: str) -> str:
        """A command pocctl suggests to a `cli` run: it repeats that run's global options."""
        return " ".join(
            ["pocctl", "--config", str(self.config), "--state", str(self.state)]
            + ["--endpoint-url", self.endpoint, *words]
        )

    def cli(self, *args: str, input: str | None = None) -> Run:
        """pocctl's click entry point, in-process (fast; the same code path as the script)."""
        from pocctl.cli import main

        argv = [
            "--config",
            str(self.config),
            "--state",
            str(self.state),
            "--endpoint-url",
            self.endpoint,
            *args,
        ]
        result = CliRunner().invoke(main, argv, input=input, catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    def subprocess(
        self, *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> Run:
        """`python -m pocctl` as a user runs it, in this workspace."""
        argv = [sys.executable, "-m", "pocctl", "--endpoint-url", self.endpoint, *args]
        proc = subprocess.run(
            argv,
            cwd=self.dir,
            env=subprocess_env(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def terminal(
        self,
        *args: str,
        columns: int = 80,
        rows: int = 24,
        timeout: float = 60,
        endpoint: bool = True,
        **env: str,
    ) -> pexpect.spawn:  # type: ignore[type-arg]
        """`python -m pocctl ARGS` as a user runs it in a real terminal of ``columns`` ×
        ``rows`` (a pseudo-terminal), in this workspace. COLUMNS and LINES say the same size:
        rich reads them before the terminal's, so a COLUMNS of the test run must not win.
        ``endpoint=False``: only what the arguments say (a pasted command line)."""
        argv = ["-m", "pocctl", *(["--endpoint-url", self.endpoint] if endpoint else []), *args]
        return pexpect.spawn(
            sys.executable,
            argv,
            cwd=str(self.dir),
            env=subprocess_env(COLUMNS=str(columns), LINES=str(rows), **env),
            dimensions=(rows, columns),
            encoding="utf-8",
            codec_errors="replace",
            timeout=timeout,
        )

    def client(self, service: str):  # type: ignore[no-untyped-def]
        return boto3.client(service, region_name="us-east-1", endpoint_url=self.endpoint)


def make_workspace(tmp_path: Path, endpoint: str) -> Workspace:
    shutil.copytree(ROOT / "handlers", tmp_path / "handlers")
    w = Workspace(tmp_path, endpoint)
    w.write_config()
    return w
