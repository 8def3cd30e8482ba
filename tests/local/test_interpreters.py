"""Which Python serves each runtime: discovery in fake layouts, never trusting a name."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from pocctl.local import interpreters
from pocctl.local.interpreters import env_var, find, probe, serving_rows

HOST = ".".join(map(str, sys.version_info[:3]))
HOST_MINOR = ".".join(map(str, sys.version_info[:2]))
# A runtime the host is not: discovery must look elsewhere for it.
OTHER = "python3.13" if HOST_MINOR != "3.13" else "python3.12"
OTHER_MINOR = OTHER.removeprefix("python")


def fake_python(path: Path, version: str, calls: Path | None = None) -> Path:
    """An executable that answers the probe as an interpreter of ``version`` would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    log = f'echo x >> "{calls}"\n' if calls else ""
    path.write_text(f'#!/bin/sh\n{log}echo {version}\necho "{path}"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture(autouse=True)
def fresh_probe_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interpreters, "_probed", {})


def test_env_var_names_one_per_runtime() -> None:
    assert env_var("python3.13") == "POCCTL_PYTHON3_13"
    assert env_var("python3.10") == "POCCTL_PYTHON3_10"


def test_a_mislabelled_interpreter_is_skipped_for_the_real_one(tmp_path: Path) -> None:
    # On PATH, "python3.13" is really another version (a pyenv shim pointing elsewhere).
    fake_python(tmp_path / "bin" / OTHER, HOST)
    # pyenv: a folder named for the version holding another one, then the genuine one.
    fake_python(tmp_path / "pyenv" / "versions" / f"{OTHER_MINOR}.9" / "bin" / OTHER, "3.9.18")
    real = fake_python(
        tmp_path / "pyenv" / "versions" / f"{OTHER_MINOR}.1" / "bin" / OTHER, f"{OTHER_MINOR}.1"
    )
    found = find(
        OTHER,
        environ={},
        search_path=str(tmp_path / "bin"),
        pyenv_root=str(tmp_path / "pyenv"),
        uv_root=str(tmp_path / "uv"),
    )
    assert found.exact and found.source == "pyenv"
    assert found.executable == str(real) and found.version == f"{OTHER_MINOR}.1"
    assert found.note is None


def test_search_order_env_var_then_path_then_pyenv_then_uv(tmp_path: Path) -> None:
    named = fake_python(tmp_path / "named" / "python", f"{OTHER_MINOR}.5")
    on_path = fake_python(tmp_path / "bin" / OTHER, f"{OTHER_MINOR}.4")
    fake_python(tmp_path / "pyenv" / "versions" / f"{OTHER_MINOR}.3" / "bin" / OTHER, "x")
    uv = fake_python(
        tmp_path / "uv" / f"cpython-{OTHER_MINOR}.2-linux-x86_64-gnu" / "bin" / OTHER,
        f"{OTHER_MINOR}.2",
    )
    roots = dict(
        search_path=str(tmp_path / "bin"),
        pyenv_root=str(tmp_path / "pyenv"),
        uv_root=str(tmp_path / "uv"),
    )
    assert find(OTHER, environ={env_var(OTHER): str(named)}, **roots).executable == str(named)
    assert find(OTHER, environ={}, **roots).executable == str(on_path)
    on_path.unlink()
    # pyenv's candidate answers garbage: not an interpreter; uv's is the one.
    assert find(OTHER, environ={}, **roots).executable == str(uv)


def test_a_named_interpreter_of_the_wrong_version_is_not_used(tmp_path: Path) -> None:
    wrong = fake_python(tmp_path / "wrong", "3.9.18")
    found = find(
        OTHER,
        environ={env_var(OTHER): str(wrong)},
        search_path="",
        pyenv_root=str(tmp_path),
        uv_root=str(tmp_path),
    )
    assert found.executable == sys.executable and not found.exact
    # Said where the user looks: the banner.
    assert f"{env_var(OTHER)}={wrong} is Python 3.9.18: not used" in found.describe()
    broken = find(
        OTHER,
        environ={env_var(OTHER): str(tmp_path / "nothing")},
        search_path="",
        pyenv_root=str(tmp_path),
        uv_root=str(tmp_path),
    )
    assert "does not run: not used" in broken.describe()


def test_none_found_runs_on_the_host_and_says_so(tmp_path: Path) -> None:
    found = find(OTHER, environ={}, search_path="", pyenv_root=str(tmp_path), uv_root=str(tmp_path))
    assert not found.exact and found.source == "host"
    assert found.executable == sys.executable and found.version == HOST
    assert found.note is not None
    assert f"no {OTHER} interpreter found" in found.note and HOST in found.note
    assert "host's Python" in found.describe() and env_var(OTHER) in found.describe()


def test_host_forced_by_the_variable(tmp_path: Path) -> None:
    found = find(OTHER, environ={env_var(OTHER): "host"})
    assert not found.exact and found.executable == sys.executable
    assert found.note is not None and f"{env_var(OTHER)}=host" in found.note


def test_the_host_serves_its_own_version() -> None:
    found = find(f"python{HOST_MINOR}", environ={}, search_path="")
    assert found.exact and found.source == "host" and found.executable == sys.executable


def test_probe_runs_an_interpreter_once(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    exe = fake_python(tmp_path / "py", "3.12.7", calls=calls)
    assert probe(str(exe)) == ("3.12.7", str(exe))
    assert probe(str(exe)) == ("3.12.7", str(exe))
    assert calls.read_text().count("x") == 1
    assert probe(str(tmp_path / "missing")) is None


def test_banner_rows_cover_every_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env_var(OTHER), "host")
    rows = dict(serving_rows())
    assert set(rows) == {"python3.10", "python3.11", "python3.12", "python3.13"}
    assert rows[OTHER].startswith("the host's Python")
    assert rows[f"python{HOST_MINOR}"].startswith(f"Python {HOST}")


def test_runtime_sdk_holds_exactly_the_sdk(tmp_path: Path) -> None:
    sdk = interpreters.build_runtime_sdk(tmp_path / "sdk")
    modules = {p.name for p in sdk.iterdir() if not p.name.endswith(".dist-info")}
    assert modules == {
        "boto3",
        "botocore",
        "s3transfer",
        "jmespath",
        "dateutil",
        "urllib3",
        "six.py",
    }
    assert set(interpreters.sdk_versions()) == set(interpreters.SDK_DISTRIBUTIONS)
