"""deploy/aws/: the SAM template points at the packaged handler; the Dockerfile's command runs.

No Docker daemon is needed: the image's CMD line is run as it is, with ``sh``, against the local
Runtime API endpoint, with the app from tests/lambda_apps.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.lambda_events import make_function_url_event, make_v2_event, parse_response
from tests.lambda_runtime_api import RuntimeAPI
from tests.support import DEPLOY, ROOT, require_module
from wsgigate.aws_lambda.deploy import HANDLER

yaml = require_module("yaml")
require_module("awslambdaric")


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, !GetAtt) as plain values."""


_CfnLoader.add_multi_constructor(
    "!", lambda loader, suffix, node: {suffix: loader.construct_scalar(node)}
)


def test_sam_template() -> None:
    template: dict[str, Any] = yaml.load((DEPLOY / "aws" / "template.yaml").read_text(), _CfnLoader)
    function = template["Resources"]["WsgiFunction"]["Properties"]
    assert function["Handler"] == HANDLER
    assert function["FunctionUrlConfig"]["AuthType"] == "NONE"
    events = function["Events"]
    assert {e["Type"] for e in events.values()} == {"HttpApi"}
    assert template["Resources"]["HttpApi"]["Properties"]["StageName"] == "$default"


def _cmd() -> list[str]:
    for line in (DEPLOY / "aws" / "Dockerfile").read_text().splitlines():
        if line.startswith("CMD "):
            command: list[str] = json.loads(line[4:])
            return command
    raise AssertionError("no CMD in the Dockerfile")


@pytest.mark.parametrize("stream", ["", "--stream"])
def test_dockerfile_command_serves_the_runtime_api(stream: str, tmp_path: Path) -> None:
    command = _cmd()
    assert command[:2] == ["sh", "-c"]
    script = command[2].replace("python ", f"{sys.executable} ", 1)
    env = dict(
        os.environ,
        WSGIGATE_APP="tests.lambda_apps:app",
        WSGIGATE_STREAM=stream,
        PYTHONPATH=str(ROOT),
    )
    env.pop("PYTHONDEVMODE", None)
    with RuntimeAPI() as api:
        env["AWS_LAMBDA_RUNTIME_API"] = api.address
        with (tmp_path / "log").open("wb") as log:
            process = subprocess.Popen(
                ["sh", "-c", script], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            api.invoke("d1", make_v2_event(path="/docker"))
            api.invoke("d2", make_function_url_event(path="/stream"))
            assert parse_response("http_api", api.wait("d1").json())[2] == b"hello /docker"
            d2 = api.wait("d2")
            assert d2.streamed is bool(stream)
            body = d2.prelude()[1] if stream else parse_response("http_api", d2.json())[2]
            assert body == b"part 0\npart 1\npart 2\n"
        finally:
            process.terminate()
            process.wait(10)
