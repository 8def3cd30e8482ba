"""Wheels written by hand into a folder, and the environment that makes pip install only from it:
dependency packaging is tested without ever reaching PyPI (PIP_NO_INDEX, PIP_FIND_LINKS).

A wheel is a zip holding the package's files and a ``<name>-<version>.dist-info`` folder with
METADATA, WHEEL and RECORD (PyPA "Binary distribution format").
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path

import pytest

PURE = "purepkg"  # a pure-Python wheel: py3-none-any
BINARY = "fastpkg"  # a "binary" wheel per platform: cp3X-cp3X-manylinux2014_<machine>
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(folder: Path, name: str, version: str, tag: str, files: dict[str, str]) -> Path:
    """``folder/<name>-<version>-<tag>.whl`` holding ``files`` (path in the wheel → text)."""
    info = f"{name}-{version}.dist-info"
    py, abi, plat = tag.split("-")
    contents = {k: v.encode() for k, v in files.items()}
    contents[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    )
    contents[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: pocctl-tests\n"
        f"Root-Is-Purelib: {'true' if plat == 'any' else 'false'}\nTag: {tag}\n"
    ).encode()
    record = [_record_line(n, d) for n, d in contents.items()] + [f"{info}/RECORD,,"]
    contents[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in contents.items():
            zf.writestr(n, d)
    return path


def so_name(python: str, architecture: str) -> str:
    """The extension module file a CPython ``python`` (3.X) build for Linux on ``architecture``
    imports: fastpkg/_speedups.cpython-3X-<machine>-linux-gnu.so."""
    nodot = python.replace(".", "")
    return f"{BINARY}/_speedups.cpython-{nodot}-{MACHINES[architecture]}-linux-gnu.so"


def wheelhouse(folder: Path, python: str = "3.13") -> Path:
    """A folder of wheels: purepkg (any platform) and fastpkg for x86_64 and for aarch64."""
    folder.mkdir(parents=True, exist_ok=True)
    write_wheel(
        folder,
        PURE,
        "1.0",
        "py3-none-any",
        {f"{PURE}/__init__.py": "def greet(name):\n    return f'hello {name} from purepkg'\n"},
    )
    nodot = python.replace(".", "")
    for arch, machine in MACHINES.items():
        write_wheel(
            folder,
            BINARY,
            "1.0",
            f"cp{nodot}-cp{nodot}-manylinux2014_{machine}",
            {
                f"{BINARY}/__init__.py": "from fastpkg._speedups import *  # noqa\n",
                so_name(python, arch): f"\x7fELF not really: {machine}\n",
            },
        )
    return folder


def offline_pip(monkeypatch: pytest.MonkeyPatch, wheels: Path, cache: Path) -> None:
    """pip finds only ``wheels`` (no index, no user config) and pocctl caches under ``cache``."""
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("POCCTL_CACHE_DIR", str(cache))
