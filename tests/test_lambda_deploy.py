"""``wsgigate lambda package`` and ``deploy``: a real zip, boto3 against moto's Lambda/IAM mocks.

moto does not run code without Docker, so the zip's handler is proven by importing it from the
zip in a fresh interpreter; invocation through a runtime is covered by test_lambda_runtime.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lambda_events import make_function_url_event
from tests.support import EXAMPLES, ROOT, require_module
from wsgigate.aws_lambda.deploy import HANDLER, deploy, package
from wsgigate.cli import main
from wsgigate.errors import ConfigurationError

moto = require_module("moto")
boto3 = require_module("boto3")

ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@pytest.fixture
def app_zip(tmp_path: Path) -> Path:
    source = tmp_path / "app"
    source.mkdir()
    (source / "hello.py").write_text((EXAMPLES / "hello.py").read_text())
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "junk.pyc").write_bytes(b"x")
    output = tmp_path / "dist" / "lambda.zip"
    package("hello:app", source_dir=str(source), output=str(output))
    return output


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with moto.mock_aws():
        iam = boto3.client("iam")
        role = iam.create_role(RoleName="wsgigate-test", AssumeRolePolicyDocument=ROLE_POLICY)
        yield role["Role"]["Arn"]


def test_package_contents(app_zip: Path) -> None:
    with zipfile.ZipFile(app_zip) as archive:
        names = set(archive.namelist())
        handler_source = archive.read("lambda_function.py").decode()
    assert {
        "hello.py",
        "lambda_function.py",
        "wsgigate/aws_lambda/__init__.py",
        "wsgigate/core.py",
    } <= names
    assert not any(name.endswith("junk.pyc") for name in names)  # the source's caches stay out
    pycs = {name for name in names if name.endswith(".pyc")}
    assert pycs and all(sys.implementation.cache_tag in name for name in pycs)  # our bytecode
    assert "make_handler(load_app('hello:app'))" in handler_source


def test_packaged_handler_answers_from_the_zip(app_zip: Path) -> None:
    """The zip alone (no installed wsgigate on the path) serves a Function URL event."""
    event = make_function_url_event(path="/cookies")
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import lambda_function;"
        "print(json.dumps(lambda_function.handler(json.loads(sys.argv[2]), None)));"
        "print(lambda_function.__file__, __import__('wsgigate').__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code, str(app_zip), json.dumps(event)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd="/",
    )
    answer_line, where = result.stdout.strip().splitlines()
    answer = json.loads(answer_line)
    assert answer["statusCode"] == 200
    assert answer["body"] == "two cookies\n"
    assert answer["cookies"] == ["a=1; Path=/", "b=2; Path=/"]
    assert where.count(str(app_zip)) == 2  # both imported from inside the zip


def test_package_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not a directory"):
        package("hello:app", source_dir=str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        package(
            "hello:app",
            source_dir=str(tmp_path),
            requirements=str(tmp_path / "req.txt"),
            output=str(tmp_path / "x.zip"),
        )
    (tmp_path / "lambda_function.py").write_text("")
    with pytest.raises(ConfigurationError, match="writes its own handler"):
        package("hello:app", source_dir=str(tmp_path), output=str(tmp_path / "x.zip"))


def test_deploy_creates_then_updates(aws: str, app_zip: Path) -> None:
    client = boto3.client("lambda")
    created = deploy(str(app_zip), name="hello", role=aws)
    assert created["action"] == "created"
    assert created["invoke_mode"] == "BUFFERED"
    assert ".lambda-url." in created["url"]
    config = client.get_function(FunctionName="hello")["Configuration"]
    assert config["Handler"] == HANDLER
    assert config["Runtime"] == "python3.12"
    assert config["Role"] == aws
    url = client.get_function_url_config(FunctionName="hello")
    assert url["AuthType"] == "NONE"
    policy = json.loads(client.get_policy(FunctionName="hello")["Policy"])
    assert any(s["Action"] == "lambda:InvokeFunctionUrl" for s in policy["Statement"])

    # moto's update_function_url_config ignores InvokeMode: check what boto3 was asked to send.
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.lambda.UpdateFunctionUrlConfig",
        lambda params, **kwargs: sent.append(dict(params)),
    )
    updated = deploy(str(app_zip), name="hello", stream=True, client=client)  # no role needed
    assert updated["action"] == "updated"
    assert updated["url"] == created["url"]
    assert sent == [{"FunctionName": "hello", "InvokeMode": "RESPONSE_STREAM"}]
    # moto still reports "Buffered", so asking for BUFFERED again is no change: no update call.
    deploy(str(app_zip), name="hello", client=client)
    assert len(sent) == 1


def test_deploy_streaming_url_from_the_start(aws: str, app_zip: Path) -> None:
    created = deploy(str(app_zip), name="streamer", role=aws, stream=True)
    assert created["invoke_mode"] == "RESPONSE_STREAM"
    config = boto3.client("lambda").get_function_url_config(FunctionName="streamer")
    assert config["InvokeMode"] == "RESPONSE_STREAM"


def test_deploy_without_role_or_zip(aws: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="--role is needed"):
        deploy(_empty_zip(tmp_path), name="new")
    with pytest.raises(ConfigurationError, match="--zip"):
        deploy(str(tmp_path / "missing.zip"), name="new", role=aws)


def _empty_zip(tmp_path: Path) -> str:
    path = tmp_path / "empty.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("lambda_function.py", "handler = None\n")
    return str(path)


def test_cli_package_and_deploy(
    aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "cli.zip"
    argv = [
        "lambda",
        "package",
        "hello:app",
        "--source-dir",
        str(EXAMPLES),
        "--output",
        str(output),
    ]
    assert main(argv) == 0
    assert output.exists()
    assert main(["lambda", "deploy", "--zip", str(output), "--name", "cli-fn", "--role", aws]) == 0
    out = capsys.readouterr().out
    assert "action: created" in out and "url: https://" in out
    assert main(["lambda", "deploy", "--zip", str(output), "--name", "other"]) == 2
    assert "--role is needed" in capsys.readouterr().err


def test_cli_invoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(EXAMPLES / "hello.py") + ":app"
    assert main(["lambda", "invoke", spec, "--source", "rest", "--path", "/cookies"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["multiValueHeaders"]["Set-Cookie"] == ["a=1; Path=/", "b=2; Path=/"]
    event = tmp_path / "event.json"
    event.write_text(json.dumps(make_function_url_event(method="POST", path="/echo", body=b"hi")))
    assert main(["lambda", "invoke", spec, "--event", str(event), "--body"]) == 0
    assert capsys.readouterr().out == "hi"
    assert main(["lambda", "invoke", spec, "--source", "nope"]) == 2
    assert "--source 'nope'" in capsys.readouterr().err
    assert main(["lambda", "invoke", spec, "--header", "broken"]) == 2
    assert os.path.isdir(ROOT)


def test_package_bytecode_is_used_after_extraction(app_zip: Path, tmp_path: Path) -> None:
    """Lambda unpacks the zip on a read-only disk: the bundled bytecode spares the compiles."""
    target = tmp_path / "task"
    with zipfile.ZipFile(app_zip) as archive:
        tag = sys.implementation.cache_tag
        assert f"__pycache__/hello.{tag}.pyc" in archive.namelist()
        assert f"wsgigate/aws_lambda/__pycache__/__init__.{tag}.pyc" in archive.namelist()
        archive.extractall(target)
    # Unchecked-hash bytecode wins over the source: break the source to prove it is not read.
    (target / "hello.py").write_text("raise SystemExit('source was compiled')\n")
    event = make_function_url_event(path="/bytecode")
    code = (
        "import json, sys; import lambda_function;"
        "print(json.dumps(lambda_function.handler(json.loads(sys.argv[1]), None)))"
    )
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(event)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=target,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["body"] == "Hello, bytecode!\n"
