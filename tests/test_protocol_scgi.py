"""The sans-I/O SCGI parser: strict header, streamed body, every feed gives the same events."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsgigate.errors import ProtocolError
from wsgigate.protocols import NEED_DATA, ConnectionClosed, LocalProtocolError
from wsgigate.protocols.scgi import Body, EndOfBody, Request, SCGIParser, encode_request

HEADERS = {"REQUEST_METHOD": "POST", "PATH_INFO": "/caf\xc3\xa9", "QUERY_STRING": ""}


def run(chunks: list[bytes], eof: bool = False, **options: int) -> list[object]:
    """Feed chunks; the events until NEED_DATA, adjacent Body pieces merged."""
    parser = SCGIParser(**options)
    events: list[object] = []
    for chunk in [*chunks, b""] if eof else chunks:
        parser.receive_data(chunk)
        while (event := parser.next_event()) is not NEED_DATA:
            if isinstance(event, Body) and events and isinstance(events[-1], Body):
                events[-1] = Body(events[-1].data + event.data)
            else:
                events.append(event)
            if isinstance(event, ConnectionClosed):
                break
    return events


def all_ways(wire: bytes, **options: int) -> list[object]:
    whole = run([wire], **options)
    assert run([wire[i : i + 1] for i in range(len(wire))], **options) == whole
    assert run([wire + b"trailing bytes"], **options) == whole
    assert run([wire[:5], wire[5:]], **options) == whole
    return whole


def test_request_with_body() -> None:
    wire = encode_request(HEADERS, b"name=value")
    assert wire.startswith(b"76:CONTENT_LENGTH\x0010\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00")
    assert wire.endswith(b",name=value")
    events = all_ways(wire)
    assert events == [
        Request({"CONTENT_LENGTH": "10", "SCGI": "1", **HEADERS}, 10),
        Body(b"name=value"),
        EndOfBody(),
    ]


def test_request_without_body() -> None:
    events = all_ways(encode_request({"REQUEST_METHOD": "GET"}))
    assert events == [
        Request({"CONTENT_LENGTH": "0", "SCGI": "1", "REQUEST_METHOD": "GET"}, 0),
        EndOfBody(),
    ]


def test_body_is_streamed_in_the_pieces_fed() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    wire = encode_request(HEADERS, body)
    parser = SCGIParser()
    head_end = wire.index(b",") + 1
    parser.receive_data(wire[:head_end])
    request = parser.next_event()
    assert isinstance(request, Request)
    assert request.content_length == len(body)
    assert parser.next_event() is NEED_DATA
    received = []
    for start in range(head_end, len(wire), 65536):
        parser.receive_data(wire[start : start + 65536])
        event = parser.next_event()
        assert isinstance(event, Body)
        assert len(event.data) <= 65536  # handed on, never gathered
        received.append(event.data)
        if start + 65536 < len(wire):
            assert parser.next_event() is NEED_DATA
    assert b"".join(received) == body
    assert parser.next_event() == EndOfBody()
    parser.receive_data(b"")
    assert parser.next_event() == ConnectionClosed()


def test_trailing_bytes_are_counted_not_delivered() -> None:
    parser = SCGIParser()
    parser.receive_data(encode_request({}, b"abc") + b"extra")
    assert [type(e) for e in iter(parser.next_event, NEED_DATA)] == [Request, Body, EndOfBody]
    parser.receive_data(b"more")
    assert parser.next_event() is NEED_DATA
    assert parser.trailing == 9


def test_connection_closed_mid_body_and_before_any_byte() -> None:
    wire = encode_request({}, b"0123456789")
    events = run([wire[:-4]], eof=True)
    assert events[-1] == ConnectionClosed()
    assert Body(b"012345") in events
    assert EndOfBody() not in events
    assert run([], eof=True) == [ConnectionClosed()]
    assert run([b"12:CONT"], eof=True) == [ConnectionClosed()]
    parser = SCGIParser()
    parser.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        parser.receive_data(b"x")


def raw(block: bytes, body: bytes = b"") -> bytes:
    return b"%d:%s,%s" % (len(block), block, body)


@pytest.mark.parametrize(
    ("wire", "message", "status"),
    [
        (b"024:" + b"x" * 24 + b",", "'024' has a leading zero", 400),
        (b"0:,", "'0' has a leading zero", 400),
        (raw(b"SCGI\x001\x00CONTENT_LENGTH\x000\x00"), "must start with CONTENT_LENGTH", 400),
        (
            raw(b"REQUEST_METHOD\x00GET\x00"),
            "must start with CONTENT_LENGTH, not 'REQUEST_METHOD'",
            400,
        ),
        (raw(b"CONTENT_LENGTH\x000\x00"), "lacks SCGI=1", 400),
        (raw(b"CONTENT_LENGTH\x000\x00SCGI\x002\x00"), "SCGI version '2', not 1", 400),
        (
            raw(b"CONTENT_LENGTH\x000\x00SCGI\x001\x00PATH_INFO\x00a\x00PATH_INFO\x00b\x00"),
            "'PATH_INFO' appears twice",
            400,
        ),
        (
            raw(b"CONTENT_LENGTH\x000\x00SCGI\x001\x00SCGI\x001\x00"),
            "'SCGI' appears twice",
            400,
        ),
        (
            raw(b"CONTENT_LENGTH\x000\x00SCGI\x001\x00CONTENT_LENGTH\x000\x00"),
            "'CONTENT_LENGTH' appears twice",
            400,
        ),
        (
            raw(b"CONTENT_LENGTH\x00-1\x00SCGI\x001\x00"),
            "CONTENT_LENGTH '-1' is not a decimal",
            400,
        ),
        (raw(b"CONTENT_LENGTH\x00\x00SCGI\x001\x00"), "CONTENT_LENGTH '' is not a decimal", 400),
        (raw(b"CONTENT_LENGTH\x000\x00SCGI\x001\x00\x00x\x00"), "empty name", 400),
        (raw(b"CONTENT_LENGTH\x000\x00SCGI\x001\x00ODD\x00"), "'ODD' has no value", 400),
        (raw(b"CONTENT_LENGTH\x000\x00SCGI\x001"), "does not end with a NUL", 400),
        (b"5:CONTENT_LENGTH\x000\x00,", "not followed by ','", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "looks like HTTP", 400),
        (b"1a:", "must start with a decimal netstring length", 400),
        (b":", "must start with a decimal netstring length", 400),
        (b"99999999999999999999:", "exceeds", 431),
        (b"9999999:", "SCGI header length exceeds the limit of 131072 bytes", 431),
        (b"131073:", "SCGI header length exceeds the limit of 131072 bytes", 431),
    ],
)
def test_malformed_headers(wire: bytes, message: str, status: int) -> None:
    for chunks in ([wire], [wire[i : i + 1] for i in range(len(wire))]):
        parser = SCGIParser()
        with pytest.raises(ProtocolError, match=message) as caught:
            for chunk in chunks:
                parser.receive_data(chunk)
                while parser.next_event() is not NEED_DATA:
                    pass
        assert caught.value.status_hint == status
        with pytest.raises(ProtocolError, match=message):
            parser.next_event()  # stays broken


def test_absurd_length_refused_before_buffering() -> None:
    """flup accepts any netstring length and reads until it is there; we refuse at the digits."""
    parser = SCGIParser(max_header_size=1000)
    parser.receive_data(b"1001")
    with pytest.raises(ProtocolError, match=r"limit of 1000 bytes \(declared: 1001") as caught:
        parser.next_event()
    assert caught.value.status_hint == 431
    parser = SCGIParser(max_header_size=1000)
    parser.receive_data(b"10000")  # more digits than any allowed length, no ':' yet
    with pytest.raises(ProtocolError, match=r"limit of 1000 bytes \(declared: 1000"):
        parser.next_event()
    parser = SCGIParser(max_header_size=1000)
    parser.receive_data(b"999")  # a length not yet complete: wait
    assert parser.next_event() is NEED_DATA


def test_header_size_limit_is_inclusive() -> None:
    block = b"CONTENT_LENGTH\x000\x00SCGI\x001\x00X\x00" + b"v" * 100 + b"\x00"
    assert all_ways(raw(block), max_header_size=len(block))[0] == Request(
        {"CONTENT_LENGTH": "0", "SCGI": "1", "X": "v" * 100}, 0
    )
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        run([raw(block)], max_header_size=len(block) - 1)


def test_repeated_request_headers_are_combined() -> None:
    """nginx 1.22 sends ``X-Multi: one`` + ``X-Multi: two`` as two HTTP_X_MULTI pairs."""
    wire = encode_request(
        [
            ("HTTP_X_MULTI", "one"),
            ("HTTP_COOKIE", "a=1"),
            ("HTTP_X_MULTI", "two"),
            ("HTTP_COOKIE", "b=2"),
            ("HTTP_X_MULTI", ""),
        ]
    )
    assert all_ways(wire)[0] == Request(
        {
            "CONTENT_LENGTH": "0",
            "SCGI": "1",
            "HTTP_X_MULTI": "one, two, ",
            "HTTP_COOKIE": "a=1; b=2",
        },
        0,
    )


def test_20000_byte_header_value() -> None:
    headers = {"HTTP_X_BIG": "b" * 20000}
    assert all_ways(encode_request(headers))[0] == Request(
        {"CONTENT_LENGTH": "0", "SCGI": "1", **headers}, 0
    )


def test_encode_request_computes_content_length_and_scgi() -> None:
    wire = encode_request([("SCGI", "7"), (b"CONTENT_LENGTH", b"99"), ("A", "")], b"xy")
    assert wire == b"27:CONTENT_LENGTH\x002\x00SCGI\x001\x00A\x00\x00,xy"
    with pytest.raises(ValueError):
        encode_request({"A\x00B": "x"})
    with pytest.raises(ValueError):
        encode_request({"A": "x\x00"})


names = st.text(st.characters(min_codepoint=1, max_codepoint=255), min_size=1, max_size=30)
values = st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=200)


@settings(max_examples=200)
@given(
    st.dictionaries(names, values, max_size=10),
    st.binary(max_size=2000),
    st.lists(st.integers(0, 3000), max_size=6),
)
def test_any_split_gives_the_same_events(
    headers: dict[str, str], body: bytes, cuts: list[int]
) -> None:
    headers = {k: v for k, v in headers.items() if k not in ("CONTENT_LENGTH", "SCGI")}
    wire = encode_request(headers, body)
    points = sorted({min(c, len(wire)) for c in cuts})
    chunks = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    expected = [Request({"CONTENT_LENGTH": str(len(body)), "SCGI": "1", **headers}, len(body))]
    expected += [Body(body)] if body else []
    expected.append(EndOfBody())
    assert run([c for c in chunks if c]) == expected
    # encode(decode(x)) == x
    request = expected[0]
    assert isinstance(request, Request)
    assert encode_request(request.headers, body) == wire


@settings(max_examples=300)
@given(st.lists(st.binary(min_size=1, max_size=40), max_size=6))
def test_random_bytes_raise_only_protocol_errors(chunks: list[bytes]) -> None:
    with contextlib.suppress(ProtocolError):
        run(chunks, eof=True, max_header_size=64)


@settings(max_examples=300)
@given(st.lists(st.sampled_from([b"CONTENT_LENGTH", b"SCGI", b"1", b"0", b"", b"X", b"12"])))
def test_random_headers_raise_only_protocol_errors(parts: list[bytes]) -> None:
    with contextlib.suppress(ProtocolError):
        run([raw(b"\x00".join(parts) + b"\x00")], eof=True)
