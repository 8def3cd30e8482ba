"""pocctl.packaging: reproducible Lambda zips and Lambda's CodeSha256."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wheels

from pocctl import config, packaging
from pocctl.packaging import build_zip, code_sha256, handler_string

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = ROOT / "handlers"


@pytest.mark.parametrize("module", ["store_order", "notify_order"])
def test_two_builds_are_byte_identical(module: str) -> None:
    source = HANDLERS / f"{module}.py"
    assert build_zip(source) == build_zip(source)


def test_same_source_at_another_path_and_mtime_gives_the_same_zip(tmp_path: Path) -> None:
    copy = tmp_path / "store_order.py"
    shutil.copyfile(HANDLERS / "store_order.py", copy)
    copy.touch()  # a different mtime must not matter
    assert build_zip(copy) == build_zip(HANDLERS / "store_order.py")


def test_different_source_gives_a_different_sha(tmp_path: Path) -> None:
    handler = tmp_path / "h.py"
    handler.write_text("def handler(event, context):\n    return 1\n")
    before = code_sha256(build_zip(handler))
    handler.write_text("def handler(event, context):\n    return 2\n")
    assert code_sha256(build_zip(handler)) != before


def test_code_sha256_is_base64_of_the_sha256_digest() -> None:
    data = build_zip(HANDLERS / "store_order.py")
    expected = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
    assert code_sha256(data) == expected
    assert code_sha256(b"") == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def test_zip_holds_exactly_the_module_at_its_root_with_fixed_metadata() -> None:
    source = HANDLERS / "notify_order.py"
    with zipfile.ZipFile(io.BytesIO(build_zip(source))) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["notify_order.py"]
        [info] = infos
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert stat.S_IMODE(info.external_attr >> 16) == 0o644
        assert stat.S_ISREG(info.external_attr >> 16)
        assert zf.read("notify_order.py") == source.read_bytes()


def test_module_imports_and_handles_from_the_extracted_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("store_order", "notify_order"):
        with zipfile.ZipFile(io.BytesIO(build_zip(HANDLERS / f"{module}.py"))) as zf:
            zf.extractall(tmp_path / module)
    monkeypatch.setenv("TABLE_NAME", "orders")
    monkeypatch.setenv("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:POC-Topic")
    for module in ("store_order", "notify_order"):
        name = f"_zipped_{module}"
        spec = importlib.util.spec_from_file_location(name, tmp_path / module / f"{module}.py")
        assert spec and spec.loader
        loaded = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, loaded)
        spec.loader.exec_module(loaded)
        # The Lambda runtime resolves handler_string() to this attribute and calls it.
        attr = handler_string(HANDLERS / f"{module}.py").split(".")[1]
        assert getattr(loaded, attr)({"Records": []}, None) == {"batchItemFailures": []}


def test_handler_string_names_the_module() -> None:
    assert handler_string(HANDLERS / "store_order.py") == "store_order.handler"
    assert handler_string(Path("notify_order.py")) == "notify_order.handler"


@pytest.mark.parametrize("bad", ["store-order.py", "store_order.txt", "1st.py"])
def test_a_file_that_is_not_an_importable_module_is_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="Python module"):
        handler_string(Path(bad))


# --- code folders and their dependencies (pip runs offline: support/wheels.py) ------------------

CONSOLE = "import purepkg\n\ndef lambda_handler(event, context):\n    return purepkg.greet('x')\n"


def _code(base: Path, text: str) -> config.FunctionCode:
    (base / "config.yaml").write_text(text)
    return config.load(base / "config.yaml").function_code("lambda1")


def _app(base: Path, requirements: str = "purepkg==1.0\nfastpkg==1.0\n") -> Path:
    app = base / "app"
    app.mkdir(parents=True, exist_ok=True)
    (app / "lambda_function.py").write_text(CONSOLE)
    (app / "requirements.txt").write_text(requirements)
    return app


def _names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.namelist()


def _console(arch: str, runtime: str = "python3.13") -> str:
    return (
        f"lambda1:\n  code: app\n  handler: lambda_function.lambda_handler\n"
        f"  architecture: {arch}\n  runtime: {runtime}\n"
    )


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pip sees only a local wheelhouse; pocctl's cache is a fresh folder (for this module)."""
    base = tmp_path_factory.mktemp("offline")
    with pytest.MonkeyPatch.context() as mp:
        wheels.offline_pip(mp, wheels.wheelhouse(base / "wheels"), base / "cache")
        yield base


@pytest.fixture(scope="module")
def built(offline: Path) -> dict[str, tuple[config.FunctionCode, bytes]]:
    """The console-named app with a pure-Python and a binary dependency, built for each
    architecture (one pip run each)."""
    out = {}
    for arch in ("x86_64", "arm64"):
        base = offline / arch
        base.mkdir()
        _app(base)
        code = _code(base, _console(arch))
        told: list[str] = []
        out[arch] = (code, packaging.build(code, on_install=told.append))
        assert told == [f"installing lambda1's requirements.txt for python3.13 on {arch}"]
    return out


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_dependencies_are_packaged_for_the_runtime_and_the_architecture(
    built: dict[str, tuple[config.FunctionCode, bytes]], arch: str
) -> None:
    _, data = built[arch]
    names = _names(data)
    other = "arm64" if arch == "x86_64" else "x86_64"
    assert wheels.so_name("3.13", arch) in names
    assert wheels.so_name("3.13", other) not in names
    assert {"purepkg/__init__.py", "fastpkg/__init__.py", "lambda_function.py"} <= set(names)
    assert "purepkg-1.0.dist-info/METADATA" in names  # importlib.metadata works in the function
    assert names == sorted(names)


def test_the_pure_python_dependency_imports_from_the_extracted_zip(
    built: dict[str, tuple[config.FunctionCode, bytes]], tmp_path: Path
) -> None:
    _, data = built["arm64"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(tmp_path)
    # -I: nothing but the standard library and the zip's folder (as the Lambda worker runs).
    script = "import lambda_function; print(lambda_function.lambda_handler({}, None))"
    r = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, '.'); {script}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello x from purepkg\n"


def test_a_second_build_is_byte_identical_and_does_not_run_pip(
    built: dict[str, tuple[config.FunctionCode, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip ran for an unchanged requirements.txt")

    monkeypatch.setattr(packaging.subprocess, "run", no_pip)
    told: list[str] = []
    for code, first in built.values():
        assert packaging.build(code, on_install=told.append) == first
    assert told == []  # from the cache: nothing to say


def test_a_fresh_install_gives_the_same_bytes_as_the_cached_one(
    built: dict[str, tuple[config.FunctionCode, bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, first = built["x86_64"]
    monkeypatch.setenv("POCCTL_CACHE_DIR", str(tmp_path / "empty-cache"))
    assert packaging.build(code) == first
    assert len(list((tmp_path / "empty-cache" / "deps").iterdir())) == 1


def test_the_cache_key_follows_requirements_runtime_architecture_and_pip_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = packaging.dependencies_key
    base = key(b"purepkg==1.0\n", "python3.13", "x86_64")
    assert key(b"purepkg==1.0\n", "python3.13", "x86_64") == base
    assert key(b"purepkg==1.1\n", "python3.13", "x86_64") != base
    assert key(b"purepkg==1.0\n", "python3.12", "x86_64") != base
    assert key(b"purepkg==1.0\n", "python3.13", "arm64") != base
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:1/simple")
    assert key(b"purepkg==1.0\n", "python3.13", "x86_64") != base


def test_no_wheel_for_the_runtime_is_refused_with_what_pip_said(
    offline: Path, tmp_path: Path
) -> None:
    _app(tmp_path)  # fastpkg's wheels are for CPython 3.13 only
    code = _code(tmp_path, _console("x86_64", runtime="python3.12"))
    with pytest.raises(packaging.PackageError) as info:
        packaging.build(code)
    message = str(info.value)
    assert message.startswith(
        "lambda1: pip could not install requirements.txt for python3.12 on x86_64 "
        "(manylinux2014_x86_64): "
    )
    assert "fastpkg" in message
    assert "wheels built for its platform" in info.value.hint
    assert list((offline / "cache" / "deps").glob("*.tmp")) == []  # nothing half-installed


def test_the_cache_folder_honours_the_override_then_xdg_then_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POCCTL_CACHE_DIR", str(tmp_path / "mine"))
    assert packaging.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("POCCTL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert packaging.cache_dir() == tmp_path / "xdg" / "pocctl"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert packaging.cache_dir() == tmp_path / "home" / ".cache" / "pocctl"


def test_a_folder_is_zipped_whole_sorted_with_fixed_metadata_and_without_bytecode_or_vcs(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app"
    for rel in ("lambda_function.py", "lib/util.py", "tests/test_util.py", "data/prices.json"):
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_text(f"# {rel}\n")
    for rel in ("__pycache__/x.cpython-313.pyc", "lib/old.pyc", ".git/HEAD", ".venv/bin/python"):
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_text("junk\n")
    (app / "bin").mkdir()
    (app / "bin" / "tool").write_text("#!/bin/sh\n")
    (app / "bin" / "tool").chmod(0o700)
    (app / "lambda_function.py").write_text("def handler(event, context):\n    return 1\n")
    code = _code(tmp_path, "lambda1:\n  code: app\n  handler: lambda_function.handler\n")
    data = packaging.build(code)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    assert list(infos) == [
        "bin/tool",
        "data/prices.json",
        "lambda_function.py",
        "lib/util.py",
        "tests/test_util.py",
    ]
    assert {i.date_time for i in infos.values()} == {(1980, 1, 1, 0, 0, 0)}
    assert stat.S_IMODE(infos["bin/tool"].external_attr >> 16) == 0o755
    assert stat.S_IMODE(infos["lib/util.py"].external_attr >> 16) == 0o644
    (app / "lambda_function.py").touch()  # an mtime is not a change
    assert packaging.build(code) == data
    assert code.source_files() == sorted(app / name for name in infos)


def test_over_250_mb_unzipped_is_refused_from_declared_sizes_before_anything_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "lambda_function.py").write_text("def handler(event, context):\n    return 1\n")
    with open(app / "model.bin", "wb") as f:  # sparse: no disk written, no time spent
        f.truncate(packaging.MAX_UNZIPPED)
    code = _code(tmp_path, "lambda1:\n  code: app\n  handler: lambda_function.handler\n")

    def no_zip(files: object) -> bytes:
        raise AssertionError("files were read and zipped")

    monkeypatch.setattr(packaging, "_zip_files", no_zip)
    with pytest.raises(packaging.PackageError) as info:
        packaging.build(code)
    total = packaging.MAX_UNZIPPED + (app / "lambda_function.py").stat().st_size
    assert str(info.value) == (
        f"lambda1: the package is 250.0 MB ({total:,} bytes) unzipped, over Lambda's "
        "250.0 MB quota for a .zip function (it must be under 262,144,000 bytes); largest: "
        "model.bin (250.0 MB), lambda_function.py (0.0 MB)"
    )
    assert "gettingstarted-limits" in info.value.hint


def test_one_byte_under_the_unzipped_quota_is_allowed_and_the_quota_itself_is_not(
    tmp_path: Path,
) -> None:
    assert packaging.MAX_UNZIPPED == 262_144_000  # Lambda: "smaller than 262144000 bytes"
    assert packaging.MAX_ZIPPED == 52_428_800
    with open(tmp_path / "big", "wb") as f:
        f.truncate(packaging.MAX_UNZIPPED - 1)
    files = {"big": tmp_path / "big"}
    assert packaging.check_unzipped(files, "lambda1") == packaging.MAX_UNZIPPED - 1
    with open(tmp_path / "big", "ab") as f:
        f.truncate(packaging.MAX_UNZIPPED)
    with pytest.raises(packaging.PackageError, match="must be under 262,144,000 bytes"):
        packaging.check_unzipped(files, "lambda1")


def test_over_50_mb_zipped_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "lambda_function.py").write_text("def handler(event, context):\n    return 1\n")
    (app / "noise.bin").write_bytes(os.urandom(4096))  # incompressible
    code = _code(tmp_path, "lambda1:\n  code: app\n  handler: lambda_function.handler\n")
    size = len(packaging.build(code))
    monkeypatch.setattr(packaging, "MAX_ZIPPED", size - 1)  # the same check, a smaller quota
    with pytest.raises(packaging.PackageError, match=f"the zip is .* \\({size:,} bytes\\), over"):
        packaging.build(code)


def test_a_config_without_code_keys_deploys_the_same_zip_as_before() -> None:
    for key, module in (("lambda1", "store_order"), ("lambda2", "notify_order")):
        code = config.Config().function_code(key)
        assert packaging.build(code) == build_zip(HANDLERS / f"{module}.py")
