"""pocctl.packaging: reproducible Lambda zips and Lambda's CodeSha256."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import shutil
import stat
import sys
import zipfile
from pathlib import Path

import pytest

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
