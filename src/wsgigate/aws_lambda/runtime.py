"""``wsgigate lambda runtime``: the Lambda Runtime API loop (container images, custom runtimes).

Buffered mode hands the handler to AWS's own runtime interface client, ``awslambdaric`` (extra
``lambda``): it fetches each invocation, calls the handler, posts the JSON answer or the error.

Streaming mode (``--stream``, for Function URLs with ``InvokeMode: RESPONSE_STREAM``) still
fetches invocations with ``awslambdaric``'s client, but posts the answer itself, as the Runtime
API's streaming response mode wants it::

    POST /2018-06-01/runtime/invocation/{id}/response
    Lambda-Runtime-Function-Response-Mode: streaming
    Transfer-Encoding: chunked
    Content-Type: application/vnd.awslambda.http-integration-response

    {"statusCode": 200, "headers": {...}, "cookies": [...]}   <- the prelude (JSON)
    \\0\\0\\0\\0\\0\\0\\0\\0                                          <- 8 NUL bytes
    body chunks, each as the app yields it

An app that fails after the head is out ends the stream with the trailers
``Lambda-Runtime-Function-Error-Type`` and ``Lambda-Runtime-Function-Error-Body``. Events that are
not from a Function URL are answered buffered, as usual.
"""

from __future__ import annotations

import os

from wsgigate.aws_lambda import Handler, make_handler
from wsgigate.aws_lambda._common import split_cookies
from wsgigate.core import run_app
from wsgigate.errors import ConfigurationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from http.client import HTTPConnection
    from typing import Any
    from wsgiref.types import WSGIApplication

    from wsgigate.aws_lambda import Headers

API_PREFIX = "/2018-06-01/runtime/invocation/"
STREAM_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
DELIMITER = b"\0" * 8
STREAMED_SOURCES = frozenset({"function_url"})

# awslambdaric imports the handler by dotted name; run() puts it here first.
handler: Any = None


def run(
    app: WSGIApplication,
    *,
    debug: bool = False,
    stream: bool = False,
    api: str | None = None,
    base_path: str = "",
    **options: Any,
) -> None:
    """Serve ``app`` from the Runtime API at ``api`` (default ``$AWS_LAMBDA_RUNTIME_API``)."""
    global handler
    address = api or os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        raise ConfigurationError(
            "no Runtime API address: set AWS_LAMBDA_RUNTIME_API or pass --api HOST:PORT"
        )
    os.environ["AWS_LAMBDA_RUNTIME_API"] = address  # awslambdaric's native client reads it
    try:
        from awslambdaric import bootstrap  # type: ignore[import-untyped]
        from awslambdaric.lambda_runtime_client import (  # type: ignore[import-untyped]
            LambdaRuntimeClient,
        )
    except ImportError as exc:
        raise ConfigurationError(
            f"the Lambda runtime needs awslambdaric: pip install 'wsgigate[lambda]' ({exc})"
        ) from exc
    handler = make_handler(app, base_path=base_path, debug=debug, **options)
    client = LambdaRuntimeClient(address)
    if not stream:
        bootstrap.run(f"{__name__}.handler", client)
        return
    if not isinstance(handler, Handler):
        raise ConfigurationError("--stream serves WSGI apps; ASGI apps run buffered via Mangum")
    while True:
        request = client.wait_next_invocation()
        serve_one(handler, client, request, address)


def serve_one(handler: Handler, client: Any, request: Any, address: str) -> None:
    """Answer one invocation: streamed for Function URLs, buffered through awslambdaric else."""
    import json

    from awslambdaric import bootstrap

    invoke_id = request.invoke_id
    try:
        context = bootstrap.create_lambda_context(
            request.client_context,
            request.cognito_identity,
            request.deadline_time_in_ms,
            invoke_id,
            request.invoked_function_arn,
            request.tenant_id,
        )
        event = json.loads(request.event_body)
        source = handler.source_of(event)
        if source is None or source.name not in STREAMED_SOURCES:
            answer = handler(event, context)
            client.post_invocation_result(invoke_id, json.dumps(answer), "application/json")
            return
        environ = handler.environ(source, event, context)
    except Exception as exc:
        _post_error(client, invoke_id, exc)
        return
    writer = StreamWriter(address, invoke_id, environ["REQUEST_METHOD"] == "HEAD")
    try:
        outcome = run_app(handler.app, environ, writer, debug=handler.debug)
        if not outcome.complete:
            writer.abort("Runtime.ApplicationError", "the application failed mid-response")
    finally:
        writer.close()


def _post_error(client: Any, invoke_id: str, exc: BaseException) -> None:
    import json
    import logging

    logging.getLogger("wsgigate.error").error("invocation %s failed", invoke_id, exc_info=exc)
    error = {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []}
    client.post_invocation_error(invoke_id, json.dumps(error), "")


class StreamWriter:
    """A :class:`wsgigate.core.ResponseWriter` posting the Runtime API's streaming response."""

    __slots__ = ("address", "invoke_id", "head_only", "conn", "done")

    def __init__(self, address: str, invoke_id: str, head_only: bool = False) -> None:
        self.address = address
        self.invoke_id = invoke_id
        self.head_only = head_only
        self.conn: HTTPConnection | None = None
        self.done = False

    def start(self, status: str, headers: Headers) -> None:
        import json
        from http.client import HTTPConnection

        single, cookies = split_cookies(headers)
        prelude: dict[str, Any] = {"statusCode": int(status[:3]), "headers": single}
        if cookies:
            prelude["cookies"] = cookies
        host, _, port = self.address.rpartition(":")
        conn = HTTPConnection(host.strip("[]") or "127.0.0.1", int(port), timeout=900)
        conn.putrequest("POST", f"{API_PREFIX}{self.invoke_id}/response", skip_accept_encoding=True)
        conn.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.putheader("Content-Type", STREAM_CONTENT_TYPE)
        conn.putheader(
            "Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"
        )
        conn.endheaders()
        self.conn = conn
        self._chunk(json.dumps(prelude, separators=(",", ":")).encode() + DELIMITER)

    def _chunk(self, data: bytes) -> None:
        if data and self.conn is not None:
            self.conn.send(b"%x\r\n%s\r\n" % (len(data), data))

    def write(self, data: bytes) -> None:
        if not self.head_only:
            self._chunk(data)

    def finish(self, data: bytes) -> None:
        if not self.head_only:
            self._chunk(data)
        self._end(b"0\r\n\r\n")

    def abort(self, error_type: str, message: str) -> None:
        """End the stream with the error trailers (the head is already out)."""
        import json
        from base64 import b64encode

        body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
        self._end(
            b"0\r\nLambda-Runtime-Function-Error-Type: %s\r\n"
            b"Lambda-Runtime-Function-Error-Body: %s\r\n\r\n"
            % (error_type.encode("ascii"), b64encode(body))
        )

    def _end(self, last: bytes) -> None:
        if self.conn is None or self.done:
            return
        self.done = True
        self.conn.send(last)
        response = self.conn.getresponse()
        response.read()
        if response.status != 202:
            import logging

            logging.getLogger("wsgigate.error").error(
                "Runtime API refused the streamed response of %s: %s",
                self.invoke_id,
                response.status,
            )

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
