"""``wsgigate lambda runtime``: the real awslambdaric client against a local Runtime API.

The runtime runs as a subprocess (``python -m wsgigate lambda runtime tests.lambda_apps:app``);
the Runtime API endpoint (tests/lambda_runtime_api.py) runs in this process on loopback and hands
it a sequence of invocations: ordinary requests, an app exception, a slow request, a non-HTTP
event, and (with ``--stream``) Function URL responses streamed with the HTTP integration prelude.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lambda_events import (
    make_alb_event,
    make_function_url_event,
    make_v1_event,
    make_v2_event,
    parse_response,
)
from tests.lambda_runtime_api import RuntimeAPI, error_body
from tests.support import ROOT, require_module

require_module("awslambdaric")


@pytest.fixture
def api() -> Iterator[RuntimeAPI]:
    with RuntimeAPI() as endpoint:
        yield endpoint


def start_runtime(api: RuntimeAPI, *extra: str, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=api.address, PYTHONPATH=str(ROOT))
    env.pop("PYTHONDEVMODE", None)  # awslambdaric's own code is not ours to hold to it
    argv = [sys.executable, "-m", "wsgigate", "lambda", "runtime", "tests.lambda_apps:app"]
    with log.open("wb") as out:
        return subprocess.Popen(
            [*argv, *extra], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def test_buffered_sequence_through_awslambdaric(api: RuntimeAPI, tmp_path: Path) -> None:
    log = tmp_path / "runtime.log"
    process = start_runtime(api, log=log)
    try:
        api.invoke("r1", make_v2_event(path="/hello"))
        api.invoke("r2", make_v1_event(method="POST", path="/echo", body=b"posted body"))
        api.invoke("r3", make_v2_event(path="/boom"))
        api.invoke("r4", make_alb_event(path="/slow"), timeout=10)
        api.invoke("r5", make_v2_event(path="/context"))
        api.invoke("r6", {"source": "aws.events", "detail-type": "Scheduled Event"})
        api.invoke("r7", make_function_url_event(path="/after"))

        r1 = api.wait("r1")
        assert r1.kind == "response" and not r1.streamed
        status, headers, body = parse_response("http_api", r1.json())
        assert (status, body) == (200, b"hello /hello")
        assert r1.json()["cookies"] == ["s=1", "t=2"]

        status, headers, body = parse_response("rest", api.wait("r2").json())
        assert (status, body) == (200, b"posted body")
        assert [v for k, v in headers if k == "Set-Cookie"] == ["s=1", "t=2"]

        # The app's exception is a 500 answer, not a failed invocation; no traceback leaks.
        r3 = api.wait("r3")
        assert r3.kind == "response"
        status, _, body = parse_response("http_api", r3.json())
        assert status == 500 and b"boom" not in body

        started = time.monotonic()
        r4 = api.wait("r4", timeout=20)
        status, _, body = parse_response("alb", r4.json())
        assert (status, body) == (200, b"slow done, True")

        status, _, body = parse_response("http_api", api.wait("r5").json())
        assert body == b"r5 arn:aws:lambda:us-east-1:123456789012:function:wsgigate-test"

        # Not an HTTP event and no on_event: the invocation fails with one clear error.
        r6 = api.wait("r6")
        assert r6.kind == "error"
        assert r6.json()["errorType"] == "ProtocolError"
        assert "not an HTTP event" in r6.json()["errorMessage"]

        # ...and the runtime keeps serving afterwards, in order.
        status, _, body = parse_response("http_api", api.wait("r7").json())
        assert (status, body) == (200, b"hello /after")
        assert api.served == ["r1", "r2", "r3", "r4", "r5", "r6", "r7"]
        assert r4.done_at >= started - 5
        assert any("aws-lambda-python" in agent for agent in api.user_agents)  # the real client
        assert process.poll() is None
    finally:
        stop(process)
    assert "boom before the response" in log.read_text()  # logged, with the traceback


def test_streaming_function_url(api: RuntimeAPI, tmp_path: Path) -> None:
    log = tmp_path / "runtime.log"
    process = start_runtime(api, "--stream", log=log)
    try:
        api.invoke("s1", make_function_url_event(path="/stream"))
        api.invoke("s2", make_function_url_event(path="/late-boom"))
        api.invoke("s3", make_function_url_event(path="/boom"))
        api.invoke("s4", make_v2_event(path="/buffered"))  # HTTP API: answered buffered
        api.invoke("s5", make_function_url_event(method="HEAD", path="/stream"))
        api.invoke("s6", {"ping": True})

        s1 = api.wait("s1")
        assert s1.streamed and not s1.problems
        prelude, body = s1.prelude()
        assert prelude == {
            "statusCode": 200,
            "headers": {"Content-Type": "text/plain", "X-Stream": "yes"},
            "cookies": ["a=1", "b=2"],
        }
        assert body == b"part 0\npart 1\npart 2\n"
        # Streamed: the parts arrived as the app yielded them, ~0.4 s apart, not all at the end.
        times = [at for at, data in s1.chunks if data.startswith(b"part")]
        assert len(times) == 3
        assert times[2] - times[0] > 0.5
        assert not s1.trailers

        s2 = api.wait("s2")
        assert s2.streamed and s2.prelude()[1] == b"first part\n"
        assert s2.trailers["lambda-runtime-function-error-type"] == "Runtime.ApplicationError"
        assert error_body(s2)["errorType"] == "Runtime.ApplicationError"

        s3 = api.wait("s3")
        prelude, body = s3.prelude()
        assert prelude["statusCode"] == 500 and b"boom" not in body

        s4 = api.wait("s4")
        assert not s4.streamed
        assert parse_response("http_api", s4.json())[2] == b"hello /buffered"

        s5 = api.wait("s5")
        assert s5.streamed and s5.prelude() == (
            {
                "statusCode": 200,
                "headers": {"Content-Type": "text/plain", "X-Stream": "yes"},
                "cookies": ["a=1", "b=2"],
            },
            b"",
        )

        assert api.wait("s6").kind == "error"
        assert process.poll() is None
    finally:
        stop(process)
    assert "boom mid-stream" in log.read_text()


def test_binary_body_streams_unencoded(api: RuntimeAPI, tmp_path: Path) -> None:
    """A streamed body is raw bytes (no base64), whatever its type."""
    process = start_runtime(api, "--stream", log=tmp_path / "runtime.log")
    try:
        data = bytes(range(256))
        event = make_function_url_event(
            method="POST",
            path="/echo",
            body=data,
            headers=[("Content-Type", "application/octet-stream")],
        )
        assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == data
        api.invoke("b1", event)
        assert api.wait("b1").prelude()[1] == data
    finally:
        stop(process)


def test_missing_runtime_api_is_one_line_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_RUNTIME_API"}
    result = subprocess.run(
        [sys.executable, "-m", "wsgigate", "lambda", "runtime", "tests.lambda_apps:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "AWS_LAMBDA_RUNTIME_API" in result.stderr
    assert "Traceback" not in result.stderr


def test_wsgigate_run_detects_lambda(api: RuntimeAPI, tmp_path: Path) -> None:
    """`wsgigate run` with AWS_LAMBDA_RUNTIME_API set (as in a Lambda image) serves invocations."""
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=api.address, PYTHONPATH=str(ROOT))
    env.pop("PYTHONDEVMODE", None)
    with (tmp_path / "run.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "wsgigate", "run", "tests.lambda_apps:app"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        api.invoke("w1", make_v1_event(path="/from-run"))
        status, _, body = parse_response("rest", api.wait("w1").json())
        assert (status, body) == (200, b"hello /from-run")
    finally:
        stop(process)
