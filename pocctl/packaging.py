"""Lambda deployment packages: one handler module in a reproducible zip.

The same source always gives byte-identical bytes (fixed timestamp, permissions, creator system
and compression level), so ``code_sha256`` of a fresh build can be compared with the function's
``CodeSha256`` to decide whether ``update_function_code`` is needed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import stat
import zipfile
from pathlib import Path

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
FILE_MODE = stat.S_IFREG | 0o644
HANDLER_FUNCTION = "handler"


def _module_name(handler_file: Path) -> str:
    if handler_file.suffix != ".py" or not handler_file.stem.isidentifier():
        raise ValueError(f"{handler_file}: a handler must be a Python module (name.py)")
    return handler_file.stem


def handler_string(handler_file: Path) -> str:
    """The Lambda ``Handler`` setting for a module: ``"<module>.handler"``."""
    return f"{_module_name(handler_file)}.{HANDLER_FUNCTION}"


def _deterministic_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so external_attr carries the mode on every OS
            info.external_attr = FILE_MODE << 16
            zf.writestr(info, files[name], compresslevel=9)
    return buf.getvalue()


def build_zip(handler_file: Path) -> bytes:
    """A zip with ``handler_file`` at the archive root, byte-identical for the same source."""
    return _deterministic_zip({f"{_module_name(handler_file)}.py": handler_file.read_bytes()})


def code_sha256(data: bytes) -> str:
    """Lambda's ``CodeSha256`` of a package: base64 of the SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
