"""``wsgi.input`` (wsgigate.core.InputStream): bounded by CONTENT_LENGTH, whatever the caller does.

Every test puts bytes *after* the body in the raw stream (the next pipelined request, FastCGI's
next record...): a naive implementation that reads the raw stream to EOF, or reads in fixed
blocks, swallows them. The raw streams also come in a "trickle" flavour that returns one byte per
read, as a socket or pipe may.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsgigate.core import InputStream
from wsgigate.errors import ClientDisconnected

BODY = b"line one\nline two\n\nlast line without newline"
TRAILER = b"GET /next HTTP/1.1\r\n\r\n"


class Trickle(io.RawIOBase):
    """A raw stream that returns at most one byte per read, and counts the reads."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        self.reads += 1
        if size == 0 or self.pos >= len(self.data):
            return b""
        chunk = self.data[self.pos : self.pos + 1]
        self.pos += 1
        return chunk

    def tell(self) -> int:
        return self.pos


def raw_stream(kind: str, data: bytes) -> io.BytesIO | Trickle:
    return Trickle(data) if kind == "trickle" else io.BytesIO(data)


@pytest.fixture(params=["whole", "trickle"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def bounded(kind: str, body: bytes = BODY) -> tuple[InputStream, io.BytesIO | Trickle]:
    raw = raw_stream(kind, body + TRAILER)
    return InputStream(raw, len(body)), raw


def test_read_all_stops_at_content_length(kind: str) -> None:
    stream, raw = bounded(kind)
    assert stream.read() == BODY
    assert stream.read() == b""
    assert raw.tell() == len(BODY)
    if isinstance(raw, io.BytesIO):
        assert raw.read() == TRAILER


@pytest.mark.parametrize("arg", [None, -1, -5])
def test_read_none_and_negative_mean_all(kind: str, arg: int | None) -> None:
    stream, raw = bounded(kind)
    assert stream.read(arg) == BODY
    assert raw.tell() == len(BODY)


def test_read_sized_pieces(kind: str) -> None:
    stream, raw = bounded(kind)
    pieces = []
    while piece := stream.read(7):
        assert len(piece) <= 7
        pieces.append(piece)
    assert b"".join(pieces) == BODY
    # read(n) fills up to n even from a raw stream that returns one byte at a time
    assert all(len(p) == 7 for p in pieces[:-1])
    assert raw.tell() == len(BODY)


def test_read_larger_than_body(kind: str) -> None:
    stream, raw = bounded(kind)
    assert stream.read(10_000) == BODY
    assert raw.tell() == len(BODY)
    assert stream.read(10) == b""


def test_read_zero_reads_nothing(kind: str) -> None:
    stream, raw = bounded(kind)
    assert stream.read(0) == b""
    assert raw.tell() == 0


def test_readline_splits_lines_and_stops_at_length(kind: str) -> None:
    stream, raw = bounded(kind)
    assert stream.readline() == b"line one\n"
    assert stream.readline() == b"line two\n"
    assert stream.readline() == b"\n"
    # the last line has no newline: it ends at CONTENT_LENGTH, not in the trailing request
    assert stream.readline() == b"last line without newline"
    assert stream.readline() == b""
    assert raw.tell() == len(BODY)


def test_readline_with_size(kind: str) -> None:
    stream, raw = bounded(kind)
    assert stream.readline(4) == b"line"
    assert stream.readline(100) == b" one\n"
    assert stream.readline(9) == b"line two\n"  # newline exactly at the limit
    assert stream.readline(0) == b""
    assert stream.readline(None) == b"\n"
    assert stream.readline(-1) == b"last line without newline"
    assert raw.tell() == len(BODY)


def test_mixing_readline_and_read_keeps_order(kind: str) -> None:
    stream, raw = bounded(kind)
    assert stream.readline(3) == b"lin"
    assert stream.read(6) == b"e one\n"
    assert stream.readline() == b"line two\n"
    assert stream.read() == b"\nlast line without newline"
    assert raw.tell() == len(BODY)


def test_readlines_and_hint(kind: str) -> None:
    stream, raw = bounded(kind)
    assert stream.readlines() == [b"line one\n", b"line two\n", b"\n", b"last line without newline"]
    assert raw.tell() == len(BODY)
    stream, raw = bounded(kind)
    # hint: stop once the total size reaches it (io.IOBase semantics), whole lines only
    assert stream.readlines(10) == [b"line one\n", b"line two\n"]
    assert stream.readlines(0) == [b"\n", b"last line without newline"]


def test_iteration(kind: str) -> None:
    stream, raw = bounded(kind)
    assert list(stream) == [b"line one\n", b"line two\n", b"\n", b"last line without newline"]
    assert raw.tell() == len(BODY)


def test_empty_body_reads_nothing(kind: str) -> None:
    raw = raw_stream(kind, TRAILER)
    stream = InputStream(raw, 0)
    assert stream.read() == b""
    assert stream.read(10) == b""
    assert stream.readline() == b""
    assert list(stream) == []
    assert raw.tell() == 0


@pytest.mark.parametrize(
    "use",
    [
        lambda s: s.read(),
        lambda s: s.read(1000),
        lambda s: s.readline(),
        lambda s: s.readlines(),
        lambda s: list(s),
        lambda s: s.drain(),
    ],
    ids=["read", "read_n", "readline", "readlines", "iter", "drain"],
)
def test_truncated_body_raises_client_disconnected(kind: str, use: object) -> None:
    # the client said 100 bytes but hung up after 10: never hand a partial upload over as whole
    raw = raw_stream(kind, b"0123456789")
    stream = InputStream(raw, 100)
    with pytest.raises(ClientDisconnected, match="10 of 100"):
        use(stream)  # type: ignore[operator]


def test_truncated_body_partial_reads_then_disconnect(kind: str) -> None:
    stream = InputStream(raw_stream(kind, b"0123456789"), 20)
    assert stream.read(4) == b"0123"
    with pytest.raises(ClientDisconnected, match="10 of 20"):
        stream.read(16)
    # still an error on the next read, not a silent b""
    with pytest.raises(ClientDisconnected):
        stream.read()


def test_unbounded_reads_to_eof() -> None:
    # length None: the transport frames the body (FastCGI empty STDIN, ASGI more_body=False)
    data = b"x" * 70_000 + b"\nend"
    stream = InputStream(io.BytesIO(data), None)
    assert stream.readline() == b"x" * 70_000 + b"\n"
    assert stream.read() == b"end"
    assert stream.read() == b""
    assert stream.read(5) == b""


def test_unbounded_sized_reads_and_lines(kind: str) -> None:
    stream = InputStream(raw_stream(kind, BODY), None)
    assert stream.read(5) == b"line "
    assert stream.readline() == b"one\n"
    assert list(stream) == [b"line two\n", b"\n", b"last line without newline"]


def test_drain_drops_unread_rest_and_stops_at_length(kind: str) -> None:
    stream, raw = bounded(kind)
    assert stream.readline(2) == b"li"
    assert stream.drain() == len(BODY) - 2
    assert raw.tell() == len(BODY)
    assert stream.read() == b""
    assert stream.drain() == 0


def test_large_body_in_blocks_never_overreads() -> None:
    body = bytes(range(256)) * 1000  # 256 kB, bigger than any internal read size
    raw = io.BytesIO(body + TRAILER)
    stream = InputStream(raw, len(body))
    assert stream.read(100_000) == body[:100_000]
    assert stream.readline(5) == body[100_000:100_005]
    assert stream.read() == body[100_005:]
    assert raw.read() == TRAILER


# -- against the reference: io.BytesIO over exactly the body ----------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.none() | st.integers(-2, 40)),
        st.tuples(st.just("readline"), st.none() | st.integers(-2, 40)),
        st.tuples(st.just("readlines"), st.none() | st.integers(-1, 40)),
        st.tuples(st.just("next"), st.none()),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=120).map(lambda b: b.replace(b"\x00", b"\n")),
    ops=OPS,
    trickle=st.booleans(),
    bounded=st.booleans(),
)
def test_behaves_like_bytesio_over_the_body(
    body: bytes, ops: list[tuple[str, int | None]], trickle: bool, bounded: bool
) -> None:
    # the raw stream has trailing bytes only when the length bounds the body
    data = body + (TRAILER if bounded else b"")
    raw: io.BytesIO | Trickle = Trickle(data) if trickle else io.BytesIO(data)
    stream = InputStream(raw, len(body) if bounded else None)
    reference = io.BytesIO(body)
    for op, arg in ops:
        if op == "next":
            expected_line = reference.readline()
            got = next(iter(stream), b"")
            assert got == expected_line
        else:
            assert getattr(stream, op)(arg) == getattr(reference, op)(arg), (op, arg)
    assert stream.read() == reference.read()
    assert raw.tell() == len(body)


def test_long_line_from_many_small_reads() -> None:
    # 1-byte reads of a 20 kB line: correct, and linear (it once re-copied the line per byte)
    line = bytes(range(10)) * 2000 + b"\n"
    raw = Trickle(line + b"next line\n" + TRAILER)
    stream = InputStream(raw, len(line) + 10)
    assert stream.readline(15_000) == line[:15_000]
    assert stream.readline() == line[15_000:]
    assert stream.readline(4) == b"next"
    assert stream.readline() == b" line\n"
    assert stream.readline() == b""
    assert raw.tell() == len(line) + 10


class Recording(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.sizes: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.sizes.append(-1 if size is None else size)
        return super().read(size)


@pytest.mark.parametrize("use", ["read", "read_n", "drain"])
def test_huge_claimed_length_is_not_requested_at_once(use: str) -> None:
    # a client claiming 1 TB in CONTENT_LENGTH must not make us ask the transport for 1 TB
    # (a buffered reader allocates what it is asked for before any byte arrives)
    raw = Recording(b"small body")
    stream = InputStream(raw, 10**12)
    with pytest.raises(ClientDisconnected):
        if use == "read":
            stream.read()
        elif use == "read_n":
            stream.read(10**11)
        else:
            stream.drain()
    assert 0 < max(raw.sizes) <= 1 << 20
