"""Which Python runs a function: an interpreter of its Runtime's version, when this machine has one.

AWS runs a ``python3.13`` function on Python 3.13 ("Building Lambda functions with Python",
https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html lists each runtime identifier
with its Python version). The embedded Lambda looks for that version, in this order:

1. the interpreter named by ``POCCTL_PYTHON3_13`` (one variable per runtime; the value ``host``
   means "run this runtime on pocctl's own Python, on purpose");
2. pocctl's own Python, when it is that version;
3. ``python3.13`` on PATH;
4. pyenv's ``$PYENV_ROOT/versions/3.13*/bin/python3.13`` (PYENV_ROOT defaults to ~/.pyenv);
5. uv-managed ``~/.local/share/uv/python/cpython-3.13*/bin/python3.13``.

A candidate's version is never taken from its name (a pyenv shim may run another version, or
none): each is run once and asked, and the answer is cached. When no candidate is of the right
version, the host's Python runs the function, and pocctl says so: in ``pocctl local``'s banner
(:func:`serving_rows`) and in the function's log stream (:attr:`Interpreter.note`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

# The Python runtimes AWS supports and pocctl runs (lambda-python.html above).
RUNTIMES = ("python3.10", "python3.11", "python3.12", "python3.13")

_RUNTIME = re.compile(r"^python(\d+)\.(\d+)$")
_PROBE = "import sys; print('.'.join(map(str, sys.version_info[:3]))); print(sys.executable)"
_probed: dict[tuple[str, int], tuple[str, str] | None] = {}


@dataclass(frozen=True)
class Interpreter:
    """The interpreter chosen for one runtime, and where it was found."""

    runtime: str
    executable: str
    version: str  # "3.13.0"
    source: str  # "POCCTL_PYTHON3_13", "host", "PATH", "pyenv", "uv"
    exact: bool  # its major.minor is the runtime's
    refused: str = ""  # why the interpreter the variable names was not used

    @property
    def note(self) -> str | None:
        """One line for the function's log when it does not run on its runtime's Python."""
        if self.exact:
            return None
        why = (
            f"{env_var(self.runtime)}=host"
            if self.source == env_var(self.runtime)
            else f"no {self.runtime} interpreter found on this machine"
        )
        return (
            f"pocctl: {why}: this {self.runtime} function runs on the host's Python "
            f"{self.version} ({self.executable}); its standard library may differ from AWS's"
        )

    def describe(self) -> str:
        """What ``pocctl local``'s banner says about this runtime."""
        refused = f" ({self.refused})" if self.refused else ""
        if self.exact:
            return f"Python {self.version} ({self.source}: {self.executable}){refused}"
        if self.source == env_var(self.runtime):
            return f"the host's Python {self.version} ({env_var(self.runtime)}=host)"
        return (
            f"the host's Python {self.version}: no {self.runtime} interpreter found "
            f"(set {env_var(self.runtime)}=/path/to/{self.runtime}){refused}"
        )


def env_var(runtime: str) -> str:
    """The variable that names a runtime's interpreter: python3.13 -> POCCTL_PYTHON3_13."""
    return "POCCTL_" + runtime.upper().replace(".", "_")


def probe(executable: str) -> tuple[str, str] | None:
    """(version, real sys.executable) of an interpreter, by running it once; None if it fails."""
    try:
        key = (os.path.realpath(executable), os.stat(executable).st_mtime_ns)
    except OSError:
        return None
    if key not in _probed:
        try:
            out = subprocess.run(  # noqa: S603 (a path we were given, argv list, no shell)
                [executable, "-I", "-S", "-c", _PROBE],
                capture_output=True,
                text=True,
                timeout=15,
                check=False,
            )
            lines = out.stdout.split()
            ok = out.returncode == 0 and len(lines) == 2
            _probed[key] = (lines[0], lines[1]) if ok else None
        except (OSError, subprocess.SubprocessError):
            _probed[key] = None
    return _probed[key]


def _host() -> tuple[str, str]:
    return ".".join(map(str, sys.version_info[:3])), sys.executable


def candidates(
    runtime: str,
    *,
    search_path: str | None = None,
    pyenv_root: str | None = None,
    uv_root: str | None = None,
) -> Iterator[tuple[str, str]]:
    """(source, path) of every place a runtime's interpreter usually lives, in search order."""
    m = _RUNTIME.match(runtime)
    if not m:
        return
    name, dotted = runtime, f"{m.group(1)}.{m.group(2)}"
    on_path = shutil.which(
        name, path=os.environ.get("PATH", "") if search_path is None else search_path
    )
    if on_path:
        yield "PATH", on_path
    home = Path.home()
    pyenv = Path(pyenv_root or os.environ.get("PYENV_ROOT") or home / ".pyenv")
    for found in sorted((pyenv / "versions").glob(f"{dotted}*/bin/{name}"), reverse=True):
        yield "pyenv", str(found)
    uv = Path(uv_root or home / ".local" / "share" / "uv" / "python")
    for found in sorted(uv.glob(f"cpython-{dotted}*/bin/{name}"), reverse=True):
        yield "uv", str(found)


def find(
    runtime: str,
    *,
    environ: Mapping[str, str] | None = None,
    search_path: str | None = None,
    pyenv_root: str | None = None,
    uv_root: str | None = None,
) -> Interpreter:
    """The interpreter that serves ``runtime`` on this machine (the host's when none fits)."""
    environ = os.environ if environ is None else environ
    m = _RUNTIME.match(runtime)
    want = f"{m.group(1)}.{m.group(2)}" if m else None
    host_version, host_exe = _host()
    named = environ.get(env_var(runtime), "").strip()
    if named == "host":
        return Interpreter(runtime, host_exe, host_version, env_var(runtime), exact=False)
    refused = ""
    if want is not None:
        if named:
            found = probe(named)
            if found and _minor(found[0]) == want:
                return Interpreter(runtime, found[1], found[0], env_var(runtime), exact=True)
            what = f"is Python {found[0]}" if found else "does not run"
            refused = f"{env_var(runtime)}={named} {what}: not used"
        if _minor(host_version) == want:
            return Interpreter(runtime, host_exe, host_version, "host", True, refused)
        for source, path in candidates(
            runtime, search_path=search_path, pyenv_root=pyenv_root, uv_root=uv_root
        ):
            found = probe(path)
            if found and _minor(found[0]) == want:
                return Interpreter(runtime, found[1], found[0], source, True, refused)
    return Interpreter(runtime, host_exe, host_version, "host", False, refused)


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def serving_rows(runtimes: tuple[str, ...] = RUNTIMES) -> list[tuple[str, str]]:
    """(runtime, which interpreter serves it) for ``pocctl local``'s banner."""
    return [(r, find(r).describe()) for r in runtimes]


# The SDK the Lambda Python runtime bundles: boto3 and botocore with their pure-Python
# dependencies ("Runtime-included SDK versions" in lambda-python.html above; AWS does not pin one
# version: it "depends on the runtime version and your AWS Region"). The embedded runtime bundles
# the boto3/botocore installed with pocctl, and says which (sdk_versions()).
SDK_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
SDK_DISTRIBUTIONS = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "urllib3",
    "six",
)


def sdk_versions() -> dict[str, str]:
    """The version of each SDK distribution the embedded runtime offers handlers."""
    from importlib.metadata import version

    return {name: version(name) for name in SDK_DISTRIBUTIONS}


def build_runtime_sdk(parent: Path) -> Path:
    """A folder under ``parent`` holding exactly the runtime's SDK (links to pocctl's copies).

    It stands in for the runtime's own library folder (LAMBDA_RUNTIME_DIR, /var/runtime on AWS):
    a handler imports from its zip, this folder and the standard library, nothing else. One
    folder per installation and SDK version (pocctl installs in several virtualenvs share the
    cache), built once and reused.
    """
    import hashlib
    import importlib.util
    from importlib.metadata import distribution

    key = json.dumps([sys.prefix, sorted(sdk_versions().items())])
    target = parent / hashlib.sha256(key.encode()).hexdigest()[:16]
    target.mkdir(parents=True, exist_ok=True)
    sources: list[Path] = []
    for module in SDK_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"the runtime SDK needs {module}, which is not installed")
        origin = Path(spec.origin)
        sources.append(origin.parent if origin.name == "__init__.py" else origin)
    for dist in SDK_DISTRIBUTIONS:
        # The *.dist-info folders too, as in the runtime's folder: importlib.metadata works.
        meta = Path(str(distribution(dist).locate_file(""))) / _dist_info(dist)
        if meta.is_dir():
            sources.append(meta)
    for src in sources:
        link = target / src.name
        if link.exists() or link.is_symlink():
            continue
        try:
            link.symlink_to(src, target_is_directory=src.is_dir())
        except FileExistsError:  # another pocctl process built it at the same time
            continue
        except OSError:  # no symlinks (Windows without the privilege): copy
            if src.is_dir():
                shutil.copytree(src, link)
            else:
                shutil.copy2(src, link)
    return target


def _dist_info(dist: str) -> str:
    from importlib.metadata import distribution

    d = distribution(dist)
    files = d.files or []
    for f in files:
        if f.parts and f.parts[0].endswith(".dist-info"):
            return f.parts[0]
    return f"{dist}.dist-info"
