"""Fuzz the SCGI codec (netstring header, pairs, body framing).

    python3 fuzz/fuzz_scgi.py [libFuzzer options] [corpus dir]     (see scripts/fuzz.sh)

Oracles, beyond "nothing but ProtocolError is raised":
- the same events (body pieces merged), error and trailing count however the bytes are cut;
- the body delivered is never longer than CONTENT_LENGTH, and exactly that long when the
  stream did not end early;
- a parsed request re-encoded with encode_request parses to the same request and body.
"""

from __future__ import annotations

import sys
from pathlib import Path

from wsgigate.errors import ProtocolError
from wsgigate.protocols import NEED_DATA, ConnectionClosed, scgi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _input import Reader, cuts, main  # noqa: E402


def _feed(chunks: list[bytes], limit: int) -> tuple[list[object], str, int]:
    parser = scgi.SCGIParser(max_header_size=limit)
    events: list[object] = []
    error = ""
    try:
        for chunk in [*(c for c in chunks if c), b""]:
            parser.receive_data(chunk)
            while (event := parser.next_event()) is not NEED_DATA:
                if isinstance(event, scgi.Body) and events and isinstance(events[-1], scgi.Body):
                    events[-1] = scgi.Body(events[-1].data + event.data)
                else:
                    events.append(event)
                if isinstance(event, ConnectionClosed):
                    break
    except ProtocolError as exc:
        error = f"{type(exc).__name__} {exc.status_hint}"  # the text may quote what was seen
    return events, error, parser.trailing


def check(data: bytes) -> None:
    reader = Reader(data)
    limit = (64, 200, 4096, 128 * 1024)[reader.int(3)]
    wire = reader.rest()
    whole = _feed([wire], limit)
    split = _feed(cuts(Reader(wire[:16]), wire), limit)
    assert split == whole, (split, whole)
    events, _error, _trailing = whole
    if not events or not isinstance(events[0], scgi.Request):
        return
    request = events[0]
    body = b"".join(e.data for e in events if isinstance(e, scgi.Body))
    assert len(body) <= request.content_length
    if scgi.EndOfBody() in events:
        assert len(body) == request.content_length
        try:
            again = scgi.encode_request(request.headers, body)
        except ValueError:
            return  # a header the encoder refuses to write (NUL can't be in a parsed one)
        parsed = _feed([again], 1 << 30)[0][0]
        assert isinstance(parsed, scgi.Request)
        # CONTENT_LENGTH "05" is taken (as 5) and re-encoded as "5": compare what it means
        assert parsed.content_length == request.content_length
        assert {**parsed.headers, "CONTENT_LENGTH": ""} == {**request.headers, "CONTENT_LENGTH": ""}


def seeds() -> list[bytes]:
    headers = {"REQUEST_METHOD": "POST", "PATH_INFO": "/caf\xc3\xa9", "HTTP_X": "y" * 100}
    return [
        bytes([limit]) + scgi.encode_request(headers, body) + extra
        for limit in (0, 1, 3)
        for body, extra in ((b"", b""), (b"hello", b""), (b"x" * 70, b"trailing"))
    ]


if __name__ == "__main__":
    main(check, seeds)
