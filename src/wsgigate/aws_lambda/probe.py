"""``wsgigate check`` probe: the app run in-process through every Lambda event source.

Each source's builder (:mod:`wsgigate.aws_lambda.events`) makes the event for the probe request,
the handler answers it, and the answer is decoded back. All sources must agree on status and
body (Set-Cookie included); the first one's answer is what ``check`` compares with the
reference.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from wsgigate.check import ProbeRequest, ProbeResponse


def probe(app: WSGIApplication, request: ProbeRequest) -> ProbeResponse:
    from http import HTTPStatus

    from wsgigate.aws_lambda import make_handler
    from wsgigate.aws_lambda.events import BUILDERS, parse_response
    from wsgigate.check import ProbeResponse

    handler = make_handler(app)
    first: tuple[str, ProbeResponse, list[str]] | None = None
    for source, builder in BUILDERS.items():
        event = builder(
            method=request.method,
            path=request.path,
            query=request.query,
            headers=request.headers,
            body=request.body,
        )
        status, headers, body = parse_response(source, handler(event, None))
        cookies = sorted(v for k, v in headers if k.lower() == "set-cookie")
        try:
            reason = HTTPStatus(status).phrase  # Lambda answers carry the code only
        except ValueError:
            reason = ""
        response = ProbeResponse(f"{status} {reason}".rstrip(), headers, body)
        if first is None:
            first = (source, response, cookies)
            continue
        name, expected, expected_cookies = first
        if (status, body, cookies) != (int(expected.status[:3]), expected.body, expected_cookies):
            raise AssertionError(
                f"{source} answered {status} with {len(body)} bytes and {len(cookies)} cookies, "
                f"{name} {expected.status.strip()} with {len(expected.body)} and "
                f"{len(expected_cookies)}"
            )
    assert first is not None
    return first[1]
