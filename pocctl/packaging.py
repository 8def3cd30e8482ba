"""Lambda deployment packages: a handler module or a code folder (with its dependencies, built
for the function's runtime and architecture) in a reproducible zip.

The same source always gives byte-identical bytes (entries sorted, fixed timestamp, permissions,
creator system and compression level), so ``code_sha256`` of a fresh build can be compared with
the function's ``CodeSha256`` to decide whether ``update_function_code`` is needed. Dependencies
are installed once per (requirements.txt, runtime, architecture, pip configuration) into a cache
folder and reused, so an unchanged code folder zips to the same bytes without reinstalling.

What a code folder's zip leaves out: ``__pycache__`` folders and ``*.pyc``/``*.pyo`` files (the
runtime compiles what it imports; stale bytecode of another Python version is dead weight), and
version-control and tool folders (EXCLUDED_DIRS: ``.git``, ``.venv``, caches). Everything else
goes in, ``tests/`` included: a folder's code may import any of its modules, and AWS SAM's build
too copies the whole CodeUri.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pocctl.config import FunctionCode

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
FILE_MODE = stat.S_IFREG | 0o644
EXEC_MODE = stat.S_IFREG | 0o755  # a file executable in the folder stays executable
HANDLER_FUNCTION = "handler"

# Lambda quotas (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html,
# "Deployment package (.zip file archive) size"): 50 MB zipped when uploaded through the Lambda
# API or SDKs, 250 MB for the contents unzipped (Lambda's error: "Unzipped size must be smaller
# than 262144000 bytes": 262,144,000 itself is refused). pocctl uploads the zip directly
# (ZipFile), so both apply.
MAX_ZIPPED = 50 * 1024 * 1024
MAX_UNZIPPED = 250 * 1024 * 1024

EXCLUDED_DIRS = frozenset(
    {
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".venv",
        ".tox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".idea",
        ".vscode",
        ".pocctl",
    }
)  # fmt: skip (.pocctl: pocctl's state, when the code folder is the project's)
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
EXCLUDED_FILES = frozenset({".DS_Store"})

# pip's platform tag for each Lambda architecture (Lambda developer guide, "Working with .zip
# file archives for Python Lambda functions": pip install --platform manylinux2014_x86_64 /
# manylinux2014_aarch64 --only-binary=:all: --target).
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
CACHE_ENV = "POCCTL_CACHE_DIR"
_CACHE_FORMAT = "1"  # bump when what a cache entry holds changes


class PackageError(Exception):
    """A deployment package cannot be built or is over Lambda's limits; ``str()`` is the line
    shown to the user and ``hint`` what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.hint = hint
        super().__init__(message)


def _module_name(handler_file: Path) -> str:
    if handler_file.suffix != ".py" or not handler_file.stem.isidentifier():
        raise ValueError(f"{handler_file}: a handler must be a Python module (name.py)")
    return handler_file.stem


def handler_string(handler_file: Path) -> str:
    """The Lambda ``Handler`` setting for a module: ``"<module>.handler"``."""
    return f"{_module_name(handler_file)}.{HANDLER_FUNCTION}"


def _info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so external_attr carries the mode on every OS
    info.external_attr = mode << 16
    return info


def _deterministic_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(files):
            zf.writestr(_info(name, FILE_MODE), files[name], compresslevel=9)
    return buf.getvalue()


def build_zip(handler_file: Path) -> bytes:
    """A zip with ``handler_file`` at the archive root, byte-identical for the same source."""
    return _deterministic_zip({f"{_module_name(handler_file)}.py": handler_file.read_bytes()})


def code_sha256(data: bytes) -> str:
    """Lambda's ``CodeSha256`` of a package: base64 of the SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


# --- code folders -------------------------------------------------------------------------------


def source_files(code: FunctionCode) -> list[Path]:
    """The files of ``code`` that go into its zip (not its installed dependencies), sorted:
    what to show, or watch for changes (requirements.txt included)."""
    if not code.is_folder:
        return [code.path]
    return sorted(path for _, path in folder_files(code.path))


def folder_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """(name in the zip, file) for each file a code folder contributes, in no set order.
    Symlinked files are read through; symlinked folders are not followed (a loop would never
    end, and AWS SAM does not follow them either)."""
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in EXCLUDED_DIRS]
        for name in names:
            if name in EXCLUDED_FILES or name.endswith(EXCLUDED_SUFFIXES):
                continue
            path = Path(root, name)
            if path.is_file():
                yield path.relative_to(folder).as_posix(), path


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):,.1f} MB"


def check_unzipped(files: dict[str, Path], what: str) -> int:
    """The files' total size, from their declared sizes (nothing is read), refused at
    MAX_UNZIPPED or more before a byte is compressed."""
    sizes = {name: path.stat().st_size for name, path in files.items()}
    total = sum(sizes.values())
    if total >= MAX_UNZIPPED:
        biggest = sorted(sizes, key=lambda n: -sizes[n])[:3]
        top = ", ".join(f"{n} ({_mb(sizes[n])})" for n in biggest)
        raise PackageError(
            f"{what}: the package is {_mb(total)} ({total:,} bytes) unzipped, over Lambda's "
            f"{_mb(MAX_UNZIPPED)} quota for a .zip function (it must be under {MAX_UNZIPPED:,} "
            "bytes); "
            f"largest: {top}",
            hint="leave large files out of the code folder, or trim requirements.txt "
            "(Lambda quotas: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html)",
        )
    return total


def check_zipped(size: int, what: str) -> None:
    if size > MAX_ZIPPED:
        raise PackageError(
            f"{what}: the zip is {_mb(size)} ({size:,} bytes), over Lambda's "
            f"{_mb(MAX_ZIPPED)} ({MAX_ZIPPED:,} bytes) quota for a direct upload",
            hint="make the code folder or its requirements smaller (Lambda quotas: "
            "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html)",
        )


def _zip_files(files: dict[str, Path]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(files):
            path = files[name]
            mode = EXEC_MODE if path.stat().st_mode & stat.S_IXUSR else FILE_MODE
            with zf.open(_info(name, mode), "w") as out, open(path, "rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
    return buf.getvalue()


def build(code: FunctionCode, on_install: Callable[[str], None] | None = None) -> bytes:
    """The deployment package of ``code``: its one file, or its folder plus the dependencies of
    its requirements.txt; refused (PackageError) over Lambda's size quotas. ``on_install`` is
    told when pip has to run (not when the dependencies come from the cache)."""
    what = code.key
    if not code.is_folder:
        files = {f"{_module_name(code.path)}.py": code.path}
        check_unzipped(files, what)
        data = build_zip(code.path)
    else:
        files = {}
        if code.requirements is not None:
            deps = dependencies(code, code.requirements, on_install)
            files.update(folder_files(deps))
        files.update(folder_files(code.path))  # the code's own file wins over a dependency's
        check_unzipped(files, what)
        data = _zip_files(files)
    check_zipped(len(data), what)
    return data


# --- dependencies -------------------------------------------------------------------------------


def cache_dir() -> Path:
    """pocctl's cache: $POCCTL_CACHE_DIR, else $XDG_CACHE_HOME/pocctl, else ~/.cache/pocctl."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache") / "pocctl"


def _pip_config_files() -> list[Path]:
    """The files pip reads its configuration from (pip's documentation, "Configuration":
    global, user and site files, and PIP_CONFIG_FILE)."""
    home = Path.home()
    xdg_home = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    dirs = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    paths = [Path(d) / "pip" / "pip.conf" for d in dirs.split(os.pathsep) if d]
    paths += [Path("/etc/pip.conf"), home / ".pip" / "pip.conf", xdg_home / "pip" / "pip.conf"]
    paths.append(Path(sys.prefix) / "pip.conf")
    if os.environ.get("PIP_CONFIG_FILE"):
        paths.append(Path(os.environ["PIP_CONFIG_FILE"]))
    return paths


def _pip_version() -> str:
    try:
        return importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return "none"


def dependencies_key(requirements: bytes, runtime: str, architecture: str) -> str:
    """What a dependency install depends on, hashed: the requirements, the runtime, the
    architecture, pip's version and configuration (PIP_* variables and config files: an index
    or find-links change can change what is installed)."""
    h = hashlib.sha256()

    def part(label: str, data: bytes) -> None:
        h.update(f"{label}\0{len(data)}\0".encode())
        h.update(data)

    part("format", _CACHE_FORMAT.encode())
    part("requirements", requirements)
    part("target", f"{runtime} {architecture} {_pip_version()}".encode())
    for name in sorted(k for k in os.environ if k.startswith("PIP_")):
        part(f"env {name}", os.environ[name].encode("utf-8", "surrogateescape"))
    for path in _pip_config_files():
        try:
            part(f"file {path}", path.read_bytes())
        except OSError:
            continue
    return h.hexdigest()[:32]


def pip_command(target: Path, requirements: Path, runtime: str, architecture: str) -> list[str]:
    """pip installing ``requirements`` for Lambda: wheels only (nothing is compiled here, for
    the wrong machine), for the runtime's Python and the function's architecture."""
    return [
        sys.executable, "-m", "pip", "install",
        "--target", str(target),
        "--platform", PLATFORMS[architecture],
        "--python-version", runtime.removeprefix("python"),
        "--implementation", "cp",
        "--only-binary=:all:",
        "--no-compile",  # the runtime compiles; .pyc would also make the zip differ per build
        "--no-input",
        "--disable-pip-version-check",
        "-r", str(requirements),
    ]  # fmt: skip


def dependencies(
    code: FunctionCode, requirements: Path, on_install: Callable[[str], None] | None = None
) -> Path:
    """The folder holding ``requirements`` installed for ``code``'s runtime and architecture:
    from the cache, else installed by pip (with the environment's pip configuration) first."""
    key = dependencies_key(requirements.read_bytes(), code.runtime, code.architecture)
    root = cache_dir() / "deps"
    done = root / key
    if done.is_dir():
        return done
    if on_install:
        on_install(
            f"installing {code.key}'s {requirements.name} for {code.runtime} on {code.architecture}"
        )
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{key}.", suffix=".tmp", dir=root))
    try:
        cmd = pip_command(work, requirements, code.runtime, code.architecture)
        r = subprocess.run(
            cmd, cwd=requirements.parent, capture_output=True, text=True, check=False
        )
        if r.returncode != 0:
            tail = [ln for ln in (r.stderr or r.stdout).splitlines() if ln.strip()][-4:]
            raise PackageError(
                f"{code.key}: pip could not install {requirements.name} for "
                f"{code.runtime} on {code.architecture} ({PLATFORMS[code.architecture]}): "
                + " | ".join(tail),
                hint="Lambda needs wheels built for its platform (--only-binary=:all:): pin a "
                "version that publishes one, or check pip's index settings",
            )
        try:
            work.rename(done)  # atomic: a cache entry is complete or absent
        except OSError:
            if not done.is_dir():  # not another pocctl having made it meanwhile
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return done
