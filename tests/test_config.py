"""config.yaml: the lab's defaults, the shipped file, and one clear error for every bad input."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from pocctl import config
from pocctl.config import Config, ConfigError, describe, load, parse

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config.yaml"


def test_the_defaults_are_the_lab_names() -> None:
    cfg = Config()
    p, r = cfg.iam.policies, cfg.iam.roles
    assert (p.write_dynamodb, p.read_sqs, p.sns_publish, p.streams_read) == (
        "Lambda-Write-DynamoDB",
        "Lambda-Read-SQS",
        "Lambda-SNS-Publish",
        "Lambda-DynamoDBStreams-Read",
    )
    assert (r.lambda1, r.lambda2, r.apigateway) == (
        "Lambda-SQS-DynamoDB",
        "Lambda-DynamoDBStreams-SNS",
        "APIGateway-SQS",
    )
    assert (cfg.table.name, cfg.table.partition_key) == ("orders", "orderID")
    assert cfg.table.stream_view_type == "NEW_IMAGE"
    assert cfg.queue.name == "POC-Queue"
    assert cfg.lambda1.name == "POC-Lambda-1"
    assert cfg.lambda2.name == "POC-Lambda-2"
    assert cfg.topic.name == "POC-Topic"
    assert (cfg.api.name, cfg.api.stage) == ("POC-API", "prod")
    assert cfg.region is None
    assert cfg.warnings() == []


def test_the_shipped_config_yaml_parses_to_exactly_the_defaults() -> None:
    assert load(SHIPPED, required=True) == Config()
    assert parse(SHIPPED.read_text(encoding="utf-8")) == Config()


def _flatten(data: dict, prefix: str = "") -> set[str]:  # type: ignore[type-arg]
    keys: set[str] = set()
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        keys |= _flatten(v, key) if isinstance(v, dict) else {key}
    return keys


def test_every_described_key_appears_in_the_shipped_config_yaml() -> None:
    described = {key for key, _, _ in describe()}
    shipped = _flatten(yaml.safe_load(SHIPPED.read_text(encoding="utf-8")))
    assert described, "describe() lists no keys"
    assert described - shipped == set()
    # and the file documents nothing the code does not know
    assert shipped - described == set()


# (id, config text, key path, fragment of the problem)
BAD = [
    ("yaml-syntax", "queue:\n  name: POC-Queue\n    colour: red\n", "", "line 3"),
    ("top-level-list", "- queue\n- table\n", "(top level)", "must be a mapping, not a list"),
    ("section-not-a-mapping", "queue: 5\n", "queue", "must be a mapping, not int"),
    ("unknown-top-level-key", "colour: red\n", "colour", "unknown key"),
    ("unknown-nested-key", "queue:\n  colour: red\n", "queue.colour", "unknown key"),
    (
        "string-for-int",
        "queue:\n  visibility_timeout: sixty\n",
        "queue.visibility_timeout",
        "must be a whole number, not a string",
    ),
    (
        "bool-for-int",
        "lambda1:\n  timeout: true\n",
        "lambda1.timeout",
        "must be a whole number, not true/false",
    ),
    ("int-for-name", "queue:\n  name: 42\n", "queue.name", "must be a string, not int"),
    ("empty-name", 'table:\n  name: ""\n', "table.name", "must not be empty"),
    (
        "queue-with-space",
        "queue:\n  name: POC Queue\n",
        "queue.name",
        "'POC Queue' is not a valid SQS queue name",
    ),
    (
        "queue-longer-than-80",
        f"queue:\n  name: {'Q' * 81}\n",
        "queue.name",
        "must be 1 to 80 characters long (is 81)",
    ),
    (
        "table-of-2-chars",
        "table:\n  name: ab\n",
        "table.name",
        "must be 3 to 255 characters long (is 2)",
    ),
    (
        "function-with-dot",
        "lambda1:\n  name: POC.Lambda\n",
        "lambda1.name",
        "'POC.Lambda' is not a valid Lambda function name",
    ),
    (
        "role-longer-than-64",
        f"iam:\n  roles:\n    lambda1: {'R' * 65}\n",
        "iam.roles.lambda1",
        "must be 1 to 64 characters long (is 65)",
    ),
    (
        "policy-with-slash",
        "iam:\n  policies:\n    read_sqs: Lambda/Read\n",
        "iam.policies.read_sqs",
        "'Lambda/Read' is not a valid IAM policy name",
    ),
    (
        "topic-with-dot",
        "topic:\n  name: POC.Topic\n",
        "topic.name",
        "'POC.Topic' is not a valid SNS topic name",
    ),
    (
        "stage-with-dash",
        "api:\n  stage: prod-1\n",
        "api.stage",
        "'prod-1' is not a valid stage name",
    ),
    (
        "bad-email",
        "topic:\n  notification_email: you-at-example.com\n",
        "topic.notification_email",
        "'you-at-example.com' is not an email address",
    ),
    ("region-EU", "region: EU\n", "region", "'EU' is not an AWS region name"),
    ("region-us-east", "region: us-east\n", "region", "'us-east' is not an AWS region name"),
    (
        "runtime-python3.99",
        "lambda1:\n  runtime: python3.99\n",
        "lambda1.runtime",
        "unknown runtime 'python3.99'",
    ),
    (
        "runtime-nodejs20.x",
        "lambda2:\n  runtime: nodejs20.x\n",
        "lambda2.runtime",
        "unknown runtime 'nodejs20.x'",
    ),
    (
        "runtime-python3.8-blocked",
        "lambda1:\n  runtime: python3.8\n",
        "lambda1.runtime",
        "python3.8 is past end of support",
    ),
    (
        "visibility-below-6x-timeout",
        "lambda1:\n  timeout: 20\n",
        "queue.visibility_timeout",
        "60 s is less than 6 x lambda1.timeout = 120 s",
    ),
    (
        "lambda1-batch-size-11",
        "lambda1:\n  batch_size: 11\n",
        "lambda1.batch_size",
        "must be between 1 and 10 (is 11)",
    ),
    (
        "starting-position-NOW",
        "lambda2:\n  starting_position: NOW\n",
        "lambda2.starting_position",
        "must be one of TRIM_HORIZON, LATEST (is 'NOW')",
    ),
    (
        "dead-letter-queue-is-the-queue",
        "queue:\n  dead_letter_queue: POC-Queue\n",
        "queue.dead_letter_queue",
        "'POC-Queue' is already used by queue.name",
    ),
    (
        "duplicate-role-names",
        "iam:\n  roles:\n    lambda2: Lambda-SQS-DynamoDB\n",
        "iam.roles.lambda2",
        "'Lambda-SQS-DynamoDB' is already used by iam.roles.lambda1",
    ),
    (
        "memory-size-64",
        "lambda1:\n  memory_size: 64\n",
        "lambda1.memory_size",
        "must be between 128 and 10240 (is 64)",
    ),
    (
        "timeout-0",
        "lambda2:\n  timeout: 0\n",
        "lambda2.timeout",
        "must be between 1 and 900 (is 0)",
    ),
]


def test_the_bad_input_table_is_big_enough() -> None:
    assert len(BAD) >= 24
    assert len({case[0] for case in BAD}) == len(BAD)


@pytest.mark.parametrize(("text", "key", "fragment"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_bad_input_names_its_key_and_the_problem(text: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text, "config.yaml")
    e = info.value
    assert e.key == key
    assert fragment in e.problem
    where = f"config.yaml: {key}: " if key else "config.yaml: "
    assert str(e) == where + e.problem
    assert "\n" not in str(e)


@pytest.mark.parametrize("fn", ["lambda1", "lambda2"])
def test_python3_9_is_accepted_with_a_warning(fn: str) -> None:
    cfg = parse(f"{fn}:\n  runtime: python3.9\n")
    assert getattr(cfg, fn).runtime == "python3.9"
    warnings = cfg.warnings()
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{fn}.runtime: python3.9 is deprecated")
    assert "python3.9" in config.DEPRECATED_RUNTIMES


def test_load_of_a_missing_file_gives_the_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path / "config.yaml")
    assert cfg == Config()
    # No handlers/ beside the config: the ones shipped with pocctl; else the ones beside it.
    assert cfg.handlers_path == Path(config.__file__).resolve().parent.parent / "handlers"
    (tmp_path / "handlers").mkdir()
    assert cfg.handlers_path == tmp_path.resolve() / "handlers"


def test_load_of_a_missing_required_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as info:
        load(missing, required=True)
    assert str(missing) in str(info.value)
    assert "no such file" in str(info.value)


# -- bounds: what a message prints, what YAML may cost --------------------------------------------


def _nest(dotted: str, value: object) -> dict:  # type: ignore[type-arg]
    out: object = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out  # type: ignore[return-value]


LONG = {
    "string": "x" * 4000,
    "list": ["y" * 4000] * 5,
    "mapping": {"z" * 1000: "w" * 4000},
    "int": int("9" * 4000),
}
RUN_OVER_80 = re.compile(r"([xyzw9])\1{80}")


@pytest.mark.parametrize("kind", sorted(LONG))
@pytest.mark.parametrize("key", [key for key, _, _ in describe()])
def test_no_error_message_prints_more_than_80_characters_of_a_value(key: str, kind: str) -> None:
    text = yaml.safe_dump(_nest(key, LONG[kind]), width=10**6)
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert not RUN_OVER_80.search(str(info.value)), str(info.value)
    assert "\n" not in str(info.value)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(
    "text",
    [
        "iam:\n  policies:\n    write_dynamodb: " + "P" * 128 + "\n    read_sqs: " + "P" * 128,
        "queue:\n  name: " + "Q" * 80 + "\n  dead_letter_queue: " + "Q" * 80,
        "z" * 1000 + ": 1\n",
        "region: *" + "a" * 1000 + "\n",
        "region: &" + "a" * 1000 + " [*" + "a" * 1000 + "]\n",
    ],
    ids=[
        "same-long-policy-names",
        "same-long-queue-names",
        "long-unknown-key",
        "long-alias",
        "long-loop",
    ],
)
def test_no_error_message_prints_more_than_80_characters_of_a_name(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert not re.search(r"([PQza])\1{80}", str(info.value)), str(info.value)
    assert "…" in str(info.value)


def _loaders() -> list[type]:
    from pocctl import boundedyaml

    return [boundedyaml.PyLoader] + ([boundedyaml.CLoader] if boundedyaml.CParser else [])


def _laughs(levels: int = 9) -> str:
    items = ["&l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    items += [f"&l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels)]
    return "[" + ", ".join(items) + "]"


HOSTILE_YAML = [
    ("alias-bomb", f"region: {_laughs()}\n", "region[", "more than 10000 YAML values"),
    ("too-many-values", "x: [" + "1," * 20_000 + "1]\n", "x[", "more than 10000 YAML values"),
    ("loop", "region: &a [*a]\n", "region[0]", "*a is inside what it names"),
    ("mapping-loop", "queue: &q {name: *q}\n", "queue.name", "*q is inside what it names"),
    ("deep-block", "".join("  " * n + f"k{n}:\n" for n in range(40)), "k0.k1.", "deeper than 16"),
    ("long-scalar", "region: " + "r" * 5000 + "\n", "region", "a value of 5000 characters"),
]


@pytest.mark.parametrize("loader", _loaders(), ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("text", "key", "says"), [h[1:] for h in HOSTILE_YAML], ids=[h[0] for h in HOSTILE_YAML]
)
def test_hostile_yaml_is_refused_while_composing_by_either_parser(
    loader: type, text: str, key: str, says: str
) -> None:
    with pytest.raises(ConfigError) as info:
        config._yaml(text, "config.yaml", loader)
    assert info.value.key.startswith(key), info.value
    assert says in info.value.problem
    assert "(line " in info.value.problem


@pytest.mark.parametrize("loader", _loaders(), ids=lambda c: c.__name__)
def test_deep_flow_nesting_is_refused_by_either_parser(loader: type) -> None:
    text = "region: " + "[" * 100_000 + "]" * 100_000 + "\n"
    with pytest.raises(ConfigError) as info:
        config._yaml(text, "config.yaml", loader)
    # libyaml stops at its own 1000 levels, the Python parser at pocctl's 16
    assert "nesting depth" in str(info.value) or "nested deeper than 16" in str(info.value)


VALID_YAML = [
    SHIPPED.read_text(encoding="utf-8"),
    "lambda1: &fn\n  runtime: &rt python3.12\n  timeout: 5\n"
    "lambda2:\n  <<: *fn\n  batch_size: 50\n  name: POC-Lambda-2\ntopic:\n  name: *rt\n",
    "a: 2001-12-14\nb: !!binary aGVsbG8=\nc: 0x1F\nd: 1:30\ne: [1, 2.5, ~, yes]\n",
]


@pytest.mark.parametrize("loader", _loaders(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("text", VALID_YAML, ids=["shipped", "anchors-and-merge", "yaml-types"])
def test_the_bounded_loader_reads_valid_yaml_exactly_as_yaml_safe_load(
    loader: type, text: str
) -> None:
    assert config._yaml(text, "config.yaml", loader) == yaml.safe_load(text)


def test_a_config_of_exactly_1_mib_is_read_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    (tmp_path / "handlers").mkdir()
    for name in ("store_order.py", "notify_order.py"):
        (tmp_path / "handlers" / name).write_text("def handler(event, context):\n    return None\n")
    tail = "region: eu-west-1\n"
    path.write_text("#" * (config.MAX_BYTES - len(tail) - 1) + "\n" + tail)
    assert path.stat().st_size == config.MAX_BYTES
    assert load(path).region == "eu-west-1"
    path.write_text("#" * (config.MAX_BYTES - len(tail)) + "\n" + tail)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value) == (
        "config.yaml: is 1,048,577 bytes, over the 1,048,576 bytes (1 MiB) a config file can "
        "be; not read"
    )


def test_a_date_that_does_not_exist_is_a_config_error_not_a_traceback() -> None:
    with pytest.raises(ConfigError) as info:
        parse("region: 2001-13-45\n")
    assert str(info.value) == "config.yaml: not valid YAML: month must be in 1..12"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("handlers_dir: /\n", "/ has no store_order.py or notify_order.py (the Lambda handlers)"),
        ("handlers_dir: /no/such/dir\n", "/no/such/dir is not a directory"),
        ("handlers_dir: " + "d/" * 2000 + "\n", "is not a directory"),
        ('handlers_dir: "a\\0b"\n', "must not contain a NUL character"),
    ],
    ids=["root", "missing", "longer-than-PATH_MAX", "nul"],
)
def test_handlers_dir_must_hold_the_handler_modules(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert info.value.key == "handlers_dir"
    assert says in info.value.problem


# --- lambdaN.code / .handler / .architecture ----------------------------------------------------

DEFS = "def handler(event, context):\n    return 1\n"


def _with_code(tmp_path: Path, files: dict[str, str], section: str) -> Config:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "config.yaml").write_text(section)
    return load(tmp_path / "config.yaml")


def test_without_code_a_function_runs_handlers_dir_module_as_before() -> None:
    cfg = Config()
    for key, module in (("lambda1", "store_order"), ("lambda2", "notify_order")):
        code = cfg.function_code(key)
        assert (code.path.name, code.handler, code.architecture) == (
            f"{module}.py",
            f"{module}.handler",
            "x86_64",
        )
        assert not code.configured and not code.is_folder and code.module_file == code.path


def test_the_console_names_work_as_a_file_and_as_a_folder(tmp_path: Path) -> None:
    console = "def lambda_handler(event, context):\n    return 1\n"
    cfg = _with_code(
        tmp_path,
        {"lab/lambda_function.py": console, "lab2/lambda_function.py": console},
        "lambda1:\n  code: lab/lambda_function.py\n  handler: lambda_function.lambda_handler\n"
        "lambda2:\n  code: lab2\n  handler: lambda_function.lambda_handler\n"
        "  architecture: arm64\n",
    )
    one, two = cfg.function_code("lambda1"), cfg.function_code("lambda2")
    assert (one.path, one.is_folder, one.module_file) == (
        tmp_path / "lab/lambda_function.py",
        False,
        tmp_path / "lab/lambda_function.py",
    )
    assert (two.path, two.is_folder, two.module_file) == (
        tmp_path / "lab2",
        True,
        tmp_path / "lab2/lambda_function.py",
    )
    assert (two.module, two.function, two.architecture) == (
        "lambda_function",
        "lambda_handler",
        "arm64",
    )


def test_a_file_code_defaults_to_its_module_handler(tmp_path: Path) -> None:
    cfg = _with_code(tmp_path, {"app.py": DEFS}, "lambda1:\n  code: app.py\n")
    assert cfg.function_code("lambda1").handler == "app.handler"


@pytest.mark.parametrize(
    ("handler", "files", "module_file"),
    [
        ("pkg.mod.handler", {"src/pkg/__init__.py": "", "src/pkg/mod.py": DEFS}, "pkg/mod.py"),
        ("pkg/mod.handler", {"src/pkg/mod.py": DEFS}, "pkg/mod.py"),
        ("pkg.handler", {"src/pkg/__init__.py": DEFS}, "pkg/__init__.py"),
    ],
)
def test_a_module_path_with_dots_or_slashes_is_found_in_folders(
    tmp_path: Path, handler: str, files: dict[str, str], module_file: str
) -> None:
    cfg = _with_code(tmp_path, files, f"lambda1:\n  code: src\n  handler: {handler}\n")
    assert cfg.function_code("lambda1").module_file == tmp_path / "src" / module_file


# Each way a module can bind its handler at module level, and what is refused (ast, not import).
ACCEPTED = {
    "def": DEFS,
    "assignment": "def _impl(e, c):\n    return 1\n\nhandler = _impl\n",
    "annotated": "from typing import Any\ndef _impl(e, c):\n    return 1\nhandler: Any = _impl\n",
    "from-import-as": "from json import dumps as handler\n",
    "import-as": "import json as handler\n",
    "in-if-block": "import os\nif os.sep:\n    def handler(e, c):\n        return 1\n",
    "in-try-except": "try:\n    import nope\nexcept ImportError:\n    def handler(e, c):\n"
    "        return 1\n",
    "star-import": "from os.path import *\n",
    "made-by-a-call": "def make():\n    return lambda e, c: 1\n\nhandler = make()\n",
}


@pytest.mark.parametrize("source", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_a_handler_bound_at_module_level_is_accepted(tmp_path: Path, source: str) -> None:
    _with_code(
        tmp_path, {"app/main.py": source}, "lambda1:\n  code: app\n  handler: main.handler\n"
    )


REFUSED = [
    (
        "nested",
        "def outer():\n    def handler(e, c):\n        return 1\n",
        "main.py defines no function handler at module level (it defines: outer)",
    ),
    (
        "other-names",
        "def lambda_handler(e, c):\n    return 1\ndef _private():\n    pass\n",
        "main.py defines no function handler at module level (it defines: lambda_handler)",
    ),
    ("empty", "", "main.py defines no function handler at module level (it defines no function)"),
    ("async", "async def handler(e, c):\n    return 1\n", "handler in main.py is an async def"),
    ("class", "class handler:\n    pass\n", "handler in main.py is a class, not a function"),
    ("in-function-body-only", "def f():\n    global handler\n    handler = 1\n", "no function"),
]


@pytest.mark.parametrize(("source", "says"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_a_handler_not_bound_at_module_level_is_refused_naming_the_key(
    tmp_path: Path, source: str, says: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _with_code(
            tmp_path, {"app/main.py": source}, "lambda1:\n  code: app\n  handler: main.handler\n"
        )
    assert info.value.key == "lambda1.handler"
    assert says in info.value.problem


def test_a_syntax_only_a_newer_runtime_parses_is_left_to_lambda(tmp_path: Path) -> None:
    newer = "type Point = tuple[float, float]\ndef handler(e, c):\n    return 1\n"
    section = "lambda1:\n  code: app\n  handler: main.handler\n  runtime: python{}\n"
    if sys.version_info < (3, 12):
        _with_code(tmp_path, {"app/main.py": newer}, section.format("3.13"))
    with pytest.raises(ConfigError, match="main.py line 1"):
        _with_code(tmp_path, {"app/main.py": newer + "def (\n"}, section.format("3.10"))


CODE_ERRORS = [
    ("no-such-code", {}, "lambda1:\n  code: nowhere\n", "lambda1.code",
     "nowhere (relative to config.yaml's folder) does not exist"),
    ("code-not-python", {"app.txt": DEFS}, "lambda1:\n  code: app.txt\n", "lambda1.code",
     "is neither a folder nor a Python module"),
    ("module-missing-in-folder", {"app/other.py": DEFS},
     "lambda1:\n  code: app\n  handler: lambda_function.lambda_handler\n", "lambda1.handler",
     "lambda_function.lambda_handler: app/ has no lambda_function.py or "
     "lambda_function/__init__.py (the module)"),
    ("default-module-missing-in-folder", {"app/lambda_function.py": DEFS},
     "lambda1:\n  code: app\n", "lambda1.handler",
     "store_order.handler (the default): app/ has no store_order.py"),
    ("file-code-other-module", {"app.py": DEFS},
     "lambda1:\n  code: app.py\n  handler: lambda_function.handler\n", "lambda1.handler",
     "the code is the one file app.py, so the module must be app"),
    ("handler-without-function", {"app.py": DEFS}, "lambda1:\n  handler: app\n",
     "lambda1.handler", "'app' is not module.function"),
    ("handler-with-dash", {"app.py": DEFS}, "lambda2:\n  handler: my-app.handler\n",
     "lambda2.handler", "'my-app.handler' is not module.function"),
    ("handler-not-a-string", {}, "lambda1:\n  handler: 5\n", "lambda1.handler",
     "must be a string like lambda_function.lambda_handler, not int"),
    ("handler-too-long", {}, f"lambda1:\n  handler: {'a' * 120}.{'b' * 8}\n", "lambda1.handler",
     "must be at most 128 characters long (is 129)"),
    ("architecture", {}, "lambda1:\n  architecture: aarch64\n", "lambda1.architecture",
     "must be one of x86_64, arm64 (is 'aarch64')"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("files", "section", "key", "says"),
    [c[1:] for c in CODE_ERRORS],
    ids=[c[0] for c in CODE_ERRORS],
)
def test_code_and_handler_errors_name_their_key(
    tmp_path: Path, files: dict[str, str], section: str, key: str, says: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _with_code(tmp_path, files, section)
    assert info.value.key == key
    assert says in info.value.problem, info.value.problem


def test_handlers_dir_needs_only_the_modules_of_functions_without_code(tmp_path: Path) -> None:
    cfg = _with_code(
        tmp_path,
        {"mine/notify_order.py": DEFS, "app.py": DEFS},
        "handlers_dir: mine\nlambda1:\n  code: app.py\n",
    )
    assert cfg.function_code("lambda1").path == tmp_path / "app.py"
    assert cfg.function_code("lambda2").path == tmp_path / "mine" / "notify_order.py"


def test_handlers_dir_with_requirements_or_packages_warns_that_they_are_not_zipped(
    tmp_path: Path,
) -> None:
    files = {"h/store_order.py": DEFS, "h/notify_order.py": DEFS, "h/requirements.txt": ""}
    files["h/vendor/requests/__init__.py"] = ""
    files["h/__pycache__/x.pyc"] = ""
    cfg = _with_code(tmp_path, files, "handlers_dir: h\n")
    assert cfg.warnings() == [
        "handlers_dir: h also holds requirements.txt, vendor/, which are not deployed: without "
        "lambda1.code / lambda2.code only store_order.py and notify_order.py are zipped; set "
        "lambda1.code: h to zip the folder with its requirements"
    ]
    cfg = _with_code(tmp_path, {}, "handlers_dir: h\nlambda1:\n  code: h\nlambda2:\n  code: h\n")
    assert cfg.warnings() == []
    assert Config().warnings() == []  # the shipped handlers folder holds just the two modules
