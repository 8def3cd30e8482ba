"""The embedded Lambda's runtime world: the imports, the Python and the environment AWS gives."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.localkit import KIT_LAMBDA_POLICY, LAMBDA_TRUST, function_spec, zipped

from pocctl.local import interpreters
from pocctl.local.executor import Executor, FunctionSpec
from pocctl.local.runtime import LocalAWS

HOST_MINOR = ".".join(map(str, sys.version_info[:2]))

IMPORTS = """
import importlib

def handler(event, context):
    out = {}
    for name in event["modules"]:
        try:
            importlib.import_module(name)
            out[name] = "ok"
        except ImportError as exc:
            out[name] = str(exc)
    return out
"""

VERSION = """
import itertools, sys

def handler(event, context):
    try:
        import imp  # noqa: F401  (gone in 3.12)
        has_imp = True
    except ImportError:
        has_imp = False
    return {
        "version": list(sys.version_info[:2]),
        "executable": sys.executable,
        "batched": hasattr(itertools, "batched"),  # new in 3.12
        "imp": has_imp,
    }
"""


def spec(name: str, files: dict[str, str], handler: str, **kw: object) -> FunctionSpec:
    return function_spec(name, files, handler, **{"timeout": 20, "memory": 128, **kw})


@pytest.fixture
def lines() -> list[str]:
    return []


@pytest.fixture
def executor(lines: list[str]) -> Iterator[Executor]:
    ex = Executor("http://127.0.0.1:9", log=lines.append)
    yield ex
    ex.stop()


# -- the import world ---------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["requests", "yaml", "click", "pydantic", "rich", "moto"])
def test_a_package_of_pocctls_virtualenv_fails_to_import_as_on_aws(
    executor: Executor, module: str
) -> None:
    # Importable by pocctl itself, so only the worker's isolation can make it fail.
    __import__(module)
    handler = f"import {module}\n\ndef handler(event, context):\n    return 'imported'\n"
    result = executor.invoke(spec(f"imp-{module}", {"app.py": handler}, "app.handler"), {})
    assert result.error == {
        "errorMessage": f"Unable to import module 'app': No module named '{module}'",
        "errorType": "Runtime.ImportModuleError",
        # An init error is posted before any request exists: AWS answers it with an empty
        # requestId (awslambdaric bootstrap.py, post_init_error).
        "requestId": "",
        "stackTrace": [],
    }


def test_pocctl_itself_is_not_importable(executor: Executor) -> None:
    result = executor.invoke(
        spec("imp-pocctl", {"app.py": IMPORTS}, "app.handler"),
        {"modules": ["pocctl", "pocctl.local", "_pytest", "pip", "setuptools"]},
    )
    assert result.result() == {
        "pocctl": "No module named 'pocctl'",
        "pocctl.local": "No module named 'pocctl'",
        "_pytest": "No module named '_pytest'",
        "pip": "No module named 'pip'",
        "setuptools": "No module named 'setuptools'",
    }


def test_the_runtime_sdk_and_the_stdlib_import(executor: Executor) -> None:
    sdk = ["boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"]
    result = executor.invoke(
        spec("imp-sdk", {"app.py": IMPORTS}, "app.handler"),
        {"modules": [*sdk, "json", "sqlite3", "decimal", "zoneinfo"]},
    )
    assert result.result() == {m: "ok" for m in [*sdk, "json", "sqlite3", "decimal", "zoneinfo"]}


def test_a_package_in_the_zip_imports_and_the_zip_comes_first(executor: Executor) -> None:
    files = {
        "app.py": (
            "import yaml, boto3\n\n"
            "def handler(event, context):\n"
            "    return [yaml.VENDORED, boto3.__version__]\n"
        ),
        "yaml/__init__.py": "VENDORED = 'from the zip'\n",
        # A zip's own boto3 wins over the runtime's, as /var/task comes first on AWS.
        "boto3/__init__.py": "__version__ = '0.0-zip'\n",
    }
    result = executor.invoke(spec("imp-zip", files, "app.handler"), {})
    assert result.result() == ["from the zip", "0.0-zip"]


def test_import_errors_name_the_handler_module_as_configured(executor: Executor) -> None:
    missing = executor.invoke(spec("imp-nested", {"a/b.py": "import nope\n"}, "a/b.handler"), {})
    assert missing.error is not None
    assert missing.error["errorMessage"] == "Unable to import module 'a/b': No module named 'nope'"
    builtin = executor.invoke(spec("imp-builtin", {"x.py": ""}, "sys.handler"), {})
    assert builtin.error is not None
    assert builtin.error["errorType"] == "Runtime.BuiltInModuleConflict"


def test_the_runtime_boto3_calls_the_embedded_aws(local_aws: LocalAWS) -> None:
    code = (
        "import boto3\n\n"
        "def handler(event, context):\n"
        "    sqs = boto3.client('sqs')\n"
        "    url = sqs.create_queue(QueueName='from-the-handler')['QueueUrl']\n"
        "    return {'url': url, 'version': boto3.__version__}\n"
    )
    lam = local_aws._client("lambda")
    iam = local_aws._client("iam")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    iam.put_role_policy(RoleName="r", PolicyName="kit", PolicyDocument=KIT_LAMBDA_POLICY)
    lam.create_function(
        FunctionName="uses-boto3",
        Runtime="python3.13",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": zipped({"app.py": code})},
        Timeout=30,
    )
    out = lam.invoke(FunctionName="uses-boto3", Payload=b"{}")
    import json

    body = json.loads(out["Payload"].read())
    assert "FunctionError" not in out, body
    assert body["url"].endswith("/from-the-handler")
    assert body["version"] == interpreters.sdk_versions()["boto3"]
    urls = local_aws._client("sqs").list_queues().get("QueueUrls", [])
    assert any(u.endswith("/from-the-handler") for u in urls)


# -- the runtime's Python -----------------------------------------------------------------------


@pytest.mark.parametrize("runtime", interpreters.RUNTIMES)
def test_a_function_runs_on_its_runtimes_python_when_the_machine_has_it(
    executor: Executor, lines: list[str], runtime: str
) -> None:
    chosen = interpreters.find(runtime)
    result = executor.invoke(
        spec(f"v-{runtime.replace('.', '')}", {"v.py": VERSION}, "v.handler", runtime=runtime), {}
    )
    got = result.result()
    ran_on = f"{got['version'][0]}.{got['version'][1]}"
    if chosen.exact:
        assert ran_on == runtime.removeprefix("python")
        assert Path(got["executable"]).resolve() == Path(chosen.executable).resolve()
        assert not any("runs on the host's Python" in line for line in lines)
    else:  # this machine has no such interpreter: the host's, and the log says so
        assert ran_on == HOST_MINOR
        assert any(f"no {runtime} interpreter found" in line for line in lines)
    minor = int(ran_on.split(".")[1])
    # What the interpreter really is shows through: batched arrived in 3.12, imp left in 3.12.
    assert got["batched"] is (minor >= 12)
    assert got["imp"] is (minor < 12)


def test_without_the_runtimes_interpreter_the_host_runs_it_and_the_log_says_so(
    lines: list[str], tmp_path: Path
) -> None:
    other = "python3.13" if HOST_MINOR != "3.13" else "python3.12"

    def nowhere(runtime: str) -> interpreters.Interpreter:
        return interpreters.find(
            runtime, environ={}, search_path="", pyenv_root=str(tmp_path), uv_root=str(tmp_path)
        )

    ex = Executor("http://127.0.0.1:9", log=lines.append, find_interpreter=nowhere)
    try:
        fn = spec("host-fallback", {"v.py": VERSION}, "v.handler", runtime=other)
        first = ex.invoke(fn, {})
        assert first.result()["version"] == list(sys.version_info[:2])
        notes = [line for line in first.log_lines if "runs on the host's Python" in line]
        assert len(notes) == 1 and f"no {other} interpreter found" in notes[0]
        # Said once per execution environment, not on every invocation.
        second = ex.invoke(fn, {})
        assert not [line for line in second.log_lines if "host's Python" in line]
    finally:
        ex.stop()


# -- the environment ----------------------------------------------------------------------------

ENV = """
import os, time

def handler(event, context):
    return {"env": dict(os.environ), "tz": time.strftime("%Z"), "cwd": os.getcwd()}
"""


def test_the_runtime_sets_awss_environment_and_nothing_of_the_hosts(
    executor: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POCCTL_SECRET_OF_THE_HOST", "leak")
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    fn = spec(
        "env-probe",
        {"e.py": ENV},
        "e.handler",
        runtime="python3.12",
        memory=256,
        region="eu-west-1",
        env={"TABLE_NAME": "orders", "AWS_REGION": "ignored", "LANG": "C.UTF-8"},
    )
    got = executor.invoke(fn, {}).result()
    env = got["env"]
    root = Path(env["LAMBDA_TASK_ROOT"])
    assert got["cwd"] == str(root) and (root / "e.py").is_file()
    runtime_dir = env["LAMBDA_RUNTIME_DIR"]
    assert (Path(runtime_dir) / "boto3").exists()
    expected = {
        "_HANDLER": "e.handler",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": "env-probe",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/env-probe",
        # Reserved: the function's own AWS_REGION does not win.
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "TZ": ":UTC",
        "PYTHONPATH": runtime_dir,
        "TABLE_NAME": "orders",
        # Unreserved: the function's configuration replaces the runtime's.
        "LANG": "C.UTF-8",
    }
    assert {k: env.get(k) for k in expected} == expected
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"].startswith(time_prefix())
    assert "[$LATEST]" in env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["PATH"].split(":")[1:] == ["/usr/local/bin", "/usr/bin/", "/bin", "/opt/bin"]
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert env[key]
    assert "POCCTL_SECRET_OF_THE_HOST" not in env and "LC_ALL" not in env
    assert "_X_AMZN_TRACE_ID" not in env  # only with active tracing
    assert got["tz"] == "UTC"
    allowed = set(expected) | {
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "PATH",
        "LD_LIBRARY_PATH",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        # pocctl's own: the SDK reaches the embedded AWS, never the developer's profiles.
        "AWS_ENDPOINT_URL",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        # set by Python itself when the en_US.UTF-8 locale is not installed (PEP 538)
        "LC_CTYPE",
    }
    assert set(env) <= allowed, set(env) - allowed


def time_prefix() -> str:
    import time

    return time.strftime("%Y/%m/%d/", time.gmtime())


def test_bytecode_stays_out_of_the_code_and_goes_with_the_executor(
    lines: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ex = Executor("http://127.0.0.1:9", log=lines.append)
    files = {"app.py": "import helper\n\ndef handler(e, c):\n    return helper.X\n"}
    files["helper.py"] = "X = 1\n"
    try:
        fn = spec("bytecode", files, "app.handler")
        assert ex.invoke(fn, {}).result() == 1
        code_dir = ex._code_dir(fn)
        # /var/task is read-only on AWS: nothing is written next to the function's code.
        assert not list(code_dir.rglob("__pycache__"))
        cache = tmp_path / "cache" / "pocctl" / "pycache"
        mirrored = cache / code_dir.relative_to(code_dir.anchor)
        assert list(mirrored.rglob("helper*.pyc"))
    finally:
        ex.stop()
    assert not mirrored.exists()
