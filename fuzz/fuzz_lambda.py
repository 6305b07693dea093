"""Fuzz the AWS Lambda event -> environ -> answer path, for every event source.

    python3 fuzz/fuzz_lambda.py [libFuzzer options] [corpus dir]     (see scripts/fuzz.sh)

An event is built with the keyword builders of :mod:`wsgigate.aws_lambda.events` from fuzzed
method, path, query, headers and body, then (sometimes) mutated: values replaced by other types,
keys deleted. Oracles:
- the handler raises nothing (a malformed event is a 400 answer), except the ProtocolError of
  "not an HTTP event" when the mutation made the event unrecognisable;
- the answer is a dict that JSON-encodes (the Lambda runtime serialises it);
- the app sees a PEP 3333 environ: native strings of code points < 256, SCRIPT_NAME/PATH_INFO
  empty or starting with '/', wsgi.input giving exactly CONTENT_LENGTH bytes;
- an unmutated event with a token method is answered 200 with the request body echoed.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

from wsgigate.aws_lambda import events, make_handler
from wsgigate.errors import ProtocolError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _input import Reader, main  # noqa: E402

BUILDERS = [
    events.make_v1_event,
    events.make_v2_event,
    events.make_function_url_event,
    events.make_alb_event,
    events.make_lattice_event,
    events.make_lattice_v2_event,
    events.make_edge_event,
]
METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]
CLIENT_KEYS = frozenset(
    {"PATH_INFO", "SCRIPT_NAME", "QUERY_STRING", "REQUEST_URI", "REQUEST_METHOD"}
)
TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

violations: list[str] = []
# Checked for unmutated events only: a path without "/" or a field of the wrong type (a list for
# requestContext.http.protocol...) are events AWS never sends; they pass into environ as given.
path_violations: list[str] = []


def _check_environ(environ: dict[str, Any]) -> bytes:
    for key, value in environ.items():
        if type(key) is not str:
            violations.append(f"environ key {key!r} is not str")
        elif "." not in key and type(value) is not str:
            path_violations.append(f"{key} is {type(value).__name__}, not str")
        elif "." not in key and type(value) is str and max(map(ord, value), default=0) > 255:
            # What a client controls must always be right; a field only AWS fills in (sourceIp,
            # protocol...) only in unmutated events.
            client = key.startswith(("HTTP_", "CONTENT_")) or key in CLIENT_KEYS
            found = violations if client else path_violations
            found.append(f"{key}={value!r} is not latin-1 (PEP 3333 native string)")
    for key in ("REQUEST_METHOD", "SERVER_NAME", "SERVER_PORT", "wsgi.input", "wsgi.errors"):
        if key not in environ:
            violations.append(f"{key} missing")
    for key in ("SCRIPT_NAME", "PATH_INFO"):
        value = environ.get(key, "")
        if value and not value.startswith("/"):
            path_violations.append(f"{key}={value!r} neither empty nor starting with '/'")
    if environ.get("SCRIPT_NAME") == "/":
        violations.append("SCRIPT_NAME is '/'")
    body = environ["wsgi.input"].read()
    if environ["wsgi.input"].read(1):
        violations.append("wsgi.input gave more after read()")
    length = environ.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) != len(body):
        violations.append(f"CONTENT_LENGTH {length!r} but {len(body)} body bytes")
    return body


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = _check_environ(environ)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [body]


handler = make_handler(app)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


def _mutate(event: dict[str, Any], reader: Reader) -> None:
    path = reader.choice(_paths(event)[1:] or [()])
    if not path:
        return
    parent: Any = event
    for key in path[:-1]:
        parent = parent[key]
    kind = reader.int(8)
    values: list[Any] = [
        None,
        reader.int(70000) - 5,
        "",
        reader.text(40),
        [],
        {},
        True,
        [reader.text(10), None],
    ]
    if kind == 8:
        if isinstance(parent, dict):
            del parent[path[-1]]
        return
    parent[path[-1]] = values[kind]


def check(data: bytes) -> None:
    del violations[:], path_violations[:]
    reader = Reader(data)
    builder = reader.choice(BUILDERS)
    method = reader.choice(METHODS) if reader.flag() else reader.text(8)
    headers = [(reader.text(12), reader.text(30)) for _ in range(reader.int(4))]
    body = reader.bytes(300)
    kwargs: dict[str, Any] = {
        "method": method,
        "path": "/" + reader.text(40),
        "query": reader.text(40),
        "headers": headers,
        "body": body,
    }
    try:
        event = builder(**kwargs)
    except (UnicodeError, ValueError):
        return  # the builder (a test helper) refuses text a front end would not send
    mutations = reader.int(3)
    for _ in range(mutations):
        _mutate(event, reader)
    try:
        answer = handler(event, None)
    except ProtocolError as exc:
        assert mutations and "not an HTTP event" in str(exc), exc
        return
    assert not violations, violations
    assert isinstance(answer, dict), answer
    json.dumps(answer)
    if mutations or not method or not TOKEN.issuperset(method):
        return
    assert not path_violations, path_violations
    texts = [method, kwargs["path"], kwargs["query"], *(n + v for n, v in headers)]
    if any("\ud800" in text for text in texts):
        return  # a lone surrogate (JSON allows "\ud800"; AWS does not send it): 400 is fine
    if builder is events.make_edge_event:
        assert answer["status"] == "200", answer
        sent = answer.get("body", "")
        got = base64.b64decode(sent) if answer.get("bodyEncoding") == "base64" else sent.encode()
    else:
        assert answer["statusCode"] == 200, answer
        text = answer.get("body", "")
        got = base64.b64decode(text) if answer.get("isBase64Encoded") else text.encode()
    if method != "HEAD":
        assert got == body, (got, body)


def seeds() -> list[bytes]:
    """One per builder: a POST with a header, a query and a body, unmutated."""
    return [
        bytes([index, 1, 1, 2, 3])
        + b"X-A"
        + bytes([5])
        + b"b c/d"
        + bytes([4])
        + b"body"
        + bytes([3])
        + b"a/b"
        + bytes([3])
        + b"q=1"
        + bytes([0])
        for index in range(len(BUILDERS))
    ]


if __name__ == "__main__":
    import logging

    logging.getLogger("wsgigate.error").disabled = True  # a 400 logs a line: millions of them
    for seed in seeds():
        check(seed)  # loads every event source module, so that atheris instruments them too
    main(check, seeds)
