"""A local AWS Lambda Runtime API endpoint for tests (loopback only).

It queues events, hands them to the runtime on ``GET /2018-06-01/runtime/invocation/next`` with
the headers Lambda sends, and records what comes back on ``.../response`` and ``.../error``.
Streamed responses are checked as the Runtime API documents them: ``Lambda-Runtime-Function-
Response-Mode: streaming``, ``Transfer-Encoding: chunked``, the
``application/vnd.awslambda.http-integration-response`` content type, then a JSON prelude, 8 NUL
bytes and the body; each chunk's arrival time is kept so a test can see streaming happen.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from base64 import b64decode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:wsgigate-test"
STREAM_TYPE = "application/vnd.awslambda.http-integration-response"


class Result:
    """What the runtime posted for one invocation."""

    def __init__(self, kind: str, headers: dict[str, str]) -> None:
        self.kind = kind  # "response" | "error"
        self.headers = headers
        self.body = b""
        self.chunks: list[tuple[float, bytes]] = []  # (arrival time, data) for streams
        self.trailers: dict[str, str] = {}
        self.streamed = False
        self.problems: list[str] = []  # protocol violations seen by the endpoint
        self.done_at = 0.0

    def json(self) -> Any:
        return json.loads(self.body)

    def prelude(self) -> tuple[dict[str, Any], bytes]:
        """For a stream: the prelude JSON and the body after the 8 NUL bytes."""
        head, sep, rest = self.body.partition(b"\0" * 8)
        assert sep, "no 8-NUL delimiter after the prelude"
        return json.loads(head), rest


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # the runtime was stopped
            super().handle_error(request, client_address)


class RuntimeAPI:
    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any], float]] = queue.Queue()
        self.results: dict[str, Result] = {}
        self.init_errors: list[dict[str, Any]] = []
        self.served: list[str] = []  # request ids, in the order handed out
        self.user_agents: set[str] = set()
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                api.user_agents.add(self.headers.get("User-Agent", ""))
                if self.path != PREFIX + "/invocation/next":
                    self._answer(404, b'{"errorMessage": "unknown path"}')
                    return
                while not api.stopping.is_set():
                    try:
                        request_id, event, timeout = api.events.get(timeout=0.1)
                    except queue.Empty:
                        continue
                    api.served.append(request_id)
                    deadline = int((time.time() + timeout) * 1000)
                    self._answer(
                        200,
                        json.dumps(event).encode(),
                        {
                            "Lambda-Runtime-Aws-Request-Id": request_id,
                            "Lambda-Runtime-Deadline-Ms": str(deadline),
                            "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                            "Lambda-Runtime-Trace-Id": f"Root=1-00000000-{request_id}",
                        },
                    )
                    return
                self._answer(500, b'{"errorMessage": "shutting down"}')

            def do_POST(self) -> None:
                parts = self.path.removeprefix(PREFIX).strip("/").split("/")
                headers = {k.lower(): v for k, v in self.headers.items()}
                if parts == ["init", "error"]:
                    api.init_errors.append(json.loads(self._read_plain() or b"{}"))
                    self._answer(202, b'{"status": "OK"}')
                    return
                if (
                    len(parts) != 3
                    or parts[0] != "invocation"
                    or parts[2] not in ("response", "error")
                ):
                    self._answer(404, b'{"errorMessage": "unknown path"}')
                    return
                result = Result(parts[2], headers)
                if headers.get("lambda-runtime-function-response-mode") == "streaming":
                    result.streamed = True
                    if headers.get("transfer-encoding", "").lower() != "chunked":
                        result.problems.append("streaming without Transfer-Encoding: chunked")
                    if headers.get("content-type") != STREAM_TYPE:
                        result.problems.append(f"content type {headers.get('content-type')}")
                    self._read_chunked(result)
                    try:
                        result.prelude()
                    except (AssertionError, ValueError) as exc:
                        result.problems.append(f"bad prelude: {exc}")
                elif headers.get("transfer-encoding", "").lower() == "chunked":
                    self._read_chunked(result)
                else:
                    result.body = self._read_plain()
                result.done_at = time.monotonic()
                with api.cond:
                    api.results[parts[1]] = result
                    api.cond.notify_all()
                status = 400 if result.problems else 202
                self._answer(status, b'{"status": "OK"}')

            def _read_plain(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _read_chunked(self, result: Result) -> None:
                body = bytearray()
                while True:
                    line = self.rfile.readline(1024)
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        break
                    data = self.rfile.read(size)
                    if self.rfile.read(2) != b"\r\n":
                        result.problems.append("chunk not followed by CRLF")
                    result.chunks.append((time.monotonic(), data))
                    body += data
                while True:  # trailers, then the blank line
                    line = self.rfile.readline(65536)
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    result.trailers[name.strip().lower()] = value.strip()
                result.body = bytes(body)

            def _answer(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}
        )

    def __enter__(self) -> RuntimeAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def invoke(self, request_id: str, event: dict[str, Any], timeout: float = 30.0) -> None:
        self.events.put((request_id, event, timeout))

    def wait(self, request_id: str, timeout: float = 20.0) -> Result:
        with self.cond:
            if not self.cond.wait_for(lambda: request_id in self.results, timeout):
                raise TimeoutError(f"no result for {request_id} after {timeout}s")
            return self.results[request_id]


def error_body(result: Result) -> dict[str, Any]:
    """The error JSON of a streamed response that ended with the error trailers."""
    data: dict[str, Any] = json.loads(
        b64decode(result.trailers["lambda-runtime-function-error-body"])
    )
    return data
