"""The sans-I/O FastCGI codec: every stream fed whole, byte by byte and with trailing bytes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsgigate.errors import ProtocolError
from wsgigate.protocols import NEED_DATA, ConnectionClosed, LocalProtocolError
from wsgigate.protocols import fastcgi as f
from wsgigate.protocols.fastcgi import (
    AbortRequest,
    BeginRequest,
    Data,
    DataEnd,
    EndRequest,
    FastCGIClientConnection,
    FastCGIConnection,
    GetValuesResult,
    Params,
    RequestError,
    Stderr,
    Stdin,
    StdinEnd,
    Stdout,
    UnknownType,
    decode_pairs,
    encode_pairs,
)

HEADER = struct.Struct("!BBHHBx")
GET = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/", "QUERY_STRING": "a=1"}


def split_records(wire: bytes) -> list[tuple[int, int, bytes, int]]:
    """Records as (type, request id, content, padding), parsed independently of the codec."""
    out = []
    pos = 0
    while pos < len(wire):
        version, rtype, rid, length, padding = HEADER.unpack_from(wire, pos)
        assert version == 1
        content = wire[pos + 8 : pos + 8 + length]
        assert len(content) == length, "record truncated"
        assert wire[pos + 8 + length : pos + 8 + length + padding] == bytes(padding)
        out.append((rtype, rid, content, padding))
        pos += 8 + length + padding
    return out


def run(chunks: list[bytes], eof: bool = False, **options: object) -> tuple[list[object], bytes]:
    """Feed chunks to a fresh application connection; events until NEED_DATA, and its output."""
    conn = FastCGIConnection(**options)  # type: ignore[arg-type]
    events: list[object] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        while (event := conn.next_event()) is not NEED_DATA:
            events.append(event)
    if eof:
        conn.receive_data(b"")
        events.append(conn.next_event())
    return events, conn.data_to_send()


def all_ways(wire: bytes, **options: object) -> tuple[list[object], bytes]:
    """Whole, byte by byte, and followed by a partial record: the same events and output."""
    whole = run([wire], **options)
    assert run([wire[i : i + 1] for i in range(len(wire))], **options) == whole
    assert run([wire + b"\x01\x05\x00\x01\x00"], **options) == whole  # half a STDIN header
    assert run([wire[:3], wire[3:-5], wire[-5:]], **options) == whole
    return whole


def client_request(
    rid: int = 1,
    params: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    keep_conn: bool = False,
    role: int = f.RESPONDER,
    record_size: int = 65535,
) -> bytes:
    client = FastCGIClientConnection(record_size=record_size)
    client.begin_request(rid, role, keep_conn)
    client.params(rid, GET if params is None else params)
    client.stdin(rid, body)
    client.end_stdin(rid)
    return client.data_to_send()


# -- requests in ----------------------------------------------------------------------------


def test_get_request_events() -> None:
    events, out = all_ways(client_request())
    assert events == [BeginRequest(1, f.RESPONDER, False), Params(1, GET), StdinEnd(1)]
    assert out == b""


def test_identity_only_events_are_shared_and_the_sharing_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """BeginRequest and StdinEnd carry nothing but a request's identity: the codec hands the
    same immutable object out again (building a frozen dataclass costs more than the lookup),
    equal to a fresh one, and keeps at most a bounded number of them."""
    # empty caches, whatever ran before (the hypothesis tests fill them with random ids)
    monkeypatch.setattr(f, "_BEGINS", {})
    monkeypatch.setattr(f, "_STDIN_ENDS", {})
    first, _ = run([client_request(1)])
    again, _ = run([client_request(1)])  # another connection
    kept, _ = run([client_request(1, keep_conn=True)])
    assert first[0] is again[0] and first[2] is again[2]
    assert first[0] == BeginRequest(1, f.RESPONDER, False) and first[2] == StdinEnd(1)
    assert kept[0] == BeginRequest(1, f.RESPONDER, True) and kept[0] is not first[0]
    for rid in range(2, 300):
        events, _ = run([client_request(rid, keep_conn=rid % 2 == 0)])
        assert events[0] == BeginRequest(rid, f.RESPONDER, rid % 2 == 0)
        assert events[2] == StdinEnd(rid)
    assert len(f._BEGINS) <= f._SHARED_MAX and len(f._STDIN_ENDS) <= f._SHARED_MAX


def test_post_body_in_several_records() -> None:
    body = bytes(range(256)) * 100
    events, _ = all_ways(client_request(7, body=body, keep_conn=True, record_size=1000))
    assert events[0] == BeginRequest(7, f.RESPONDER, True)
    stdin = [e for e in events if isinstance(e, Stdin)]
    assert len(stdin) == 26
    assert all(len(e.data) <= 1000 for e in stdin)
    assert b"".join(e.data for e in stdin) == body
    assert events[-1] == StdinEnd(7)


@pytest.mark.parametrize("record_size", [8192, 16384, 1, 7])
def test_20000_byte_param_split_across_records(record_size: int) -> None:
    """cgi-fcgi writes 8 KiB records, Apache 16 KiB: a pair straddles records, even its lengths."""
    big = "".join(chr(0x41 + i % 26) for i in range(20000))
    params = {**GET, "HTTP_X_BIG": big, "HTTP_COOKIE": "c" * 9000}
    wire = client_request(params=params, record_size=record_size)
    assert sum(1 for r in split_records(wire) if r[0] == f.PARAMS) >= 3  # 2 + the empty one
    events, _ = run([wire])
    assert events[1] == Params(1, params)
    assert len(events[1].params["HTTP_X_BIG"]) == 20000  # type: ignore[attr-defined]


def test_params_are_latin1_native_strings() -> None:
    wire = client_request(params={"PATH_INFO": "/caf\xc3\xa9", "HTTP_X": "\xff"})
    events, _ = run([wire])
    assert events[1] == Params(1, {"PATH_INFO": "/caf\xc3\xa9", "HTTP_X": "\xff"})
    raw = encode_pairs([(b"PATH_INFO", "/café".encode())])
    assert raw.endswith(b"/caf\xc3\xa9")


@pytest.mark.parametrize("length", [0, 1, 127, 128, 255, 256, 65535, 65536, 200_000])
def test_name_value_lengths_at_their_limits(length: int) -> None:
    name, value = b"N" * max(length, 1), b"v" * length
    blob = encode_pairs([(name, value)])
    header = 1 if length < 128 else 4
    name_header = 1 if len(name) < 128 else 4
    assert len(blob) == name_header + header + len(name) + length
    if length >= 128:
        assert blob[name_header : name_header + 4] == struct.pack("!I", length | 0x80000000)
    else:
        assert blob[name_header] == length
    assert decode_pairs(blob) == [(name, value)]
    # ... and through the connection, split into small records
    params = {name.decode(): value.decode()}
    events, _ = run([client_request(params=params, record_size=4096)], max_params_size=1 << 20)
    assert events[1] == Params(1, params)


def test_four_byte_length_below_128_is_accepted() -> None:
    """The long form is legal for short lengths too (some web servers always use it)."""
    blob = struct.pack("!II", 0x80000004, 0x80000002) + b"NAMEok"
    assert decode_pairs(blob) == [(b"NAME", b"ok")]


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\x04", "value length missing"),
        (b"\x80\x00", "truncated 4-byte name length"),
        (b"\x04\x80\x00", "truncated 4-byte value length"),
        (b"\x04\x05NAMEval", "run past"),
        (b"\x80\x00\x00\x04\x7fNAME", "run past"),
    ],
)
def test_truncated_name_value_pairs(blob: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_pairs(blob)
    client = FastCGIClientConnection()
    client.begin_request(1)
    client.raw_record(f.PARAMS, 1, blob)
    client.raw_record(f.PARAMS, 1)
    with pytest.raises(ProtocolError, match=message):
        run([client.data_to_send()])


def test_filter_role_data_stream() -> None:
    client = FastCGIClientConnection()
    client.begin_request(3, f.FILTER)
    client.params(3, GET)
    client.stdin(3, b"in")
    client.end_stdin(3)
    client.data(3, b"file contents")
    client.end_data(3)
    events, _ = all_ways(client.data_to_send())
    assert events[-4:] == [Stdin(3, b"in"), StdinEnd(3), Data(3, b"file contents"), DataEnd(3)]


def test_data_for_a_responder_is_refused() -> None:
    client = FastCGIClientConnection()
    client.begin_request(1)
    client.params(1, GET)
    client.data(1, b"x")
    with pytest.raises(ProtocolError, match="DATA record for request 1, not a FILTER request"):
        run([client.data_to_send()])


def test_authorizer_role() -> None:
    client = FastCGIClientConnection()
    client.begin_request(2, f.AUTHORIZER)
    client.params(2, GET)
    events, _ = all_ways(client.data_to_send())
    assert events == [BeginRequest(2, f.AUTHORIZER, False), Params(2, GET)]


# -- responses out ----------------------------------------------------------------------------


def begun(rid: int = 1, keep_conn: bool = False, **options: object) -> FastCGIConnection:
    conn = FastCGIConnection(**options)  # type: ignore[arg-type]
    conn.receive_data(client_request(rid, keep_conn=keep_conn))
    while conn.next_event() is not NEED_DATA:
        pass
    return conn


def test_empty_response_still_ends_stdout_and_request() -> None:
    conn = begun(5)
    conn.stdout(5, b"")  # a no-op: an empty record here would end the stream early
    conn.end_request(5)
    assert split_records(conn.data_to_send()) == [
        (f.STDOUT, 5, b"", 0),
        (f.END_REQUEST, 5, struct.pack("!IB3x", 0, f.REQUEST_COMPLETE), 0),
    ]


def test_stdout_over_65535_is_split_and_padded() -> None:
    conn = begun(1)
    body = bytes(range(251)) * 1000  # 251,000 bytes
    conn.stdout(1, b"Status: 200 OK\r\n\r\n")
    conn.stdout(1, body)
    conn.stderr(1, b"warning\n")
    conn.end_request(1, app_status=3)
    wire = conn.data_to_send()
    assert len(wire) % 8 == 0
    records = split_records(wire)
    stdout = [r for r in records if r[0] == f.STDOUT]
    assert all(len(r[2]) <= 65535 for r in stdout)
    assert [len(r[2]) for r in stdout] == [18, 65535, 65535, 65535, 54395, 0]
    assert all((len(r[2]) + r[3]) % 8 == 0 for r in records)
    assert b"".join(r[2] for r in stdout) == b"Status: 200 OK\r\n\r\n" + body
    stderr = [r for r in records if r[0] == f.STDERR]
    assert stderr == [(f.STDERR, 1, b"warning\n", 0), (f.STDERR, 1, b"", 0)]
    assert records[-1] == (f.END_REQUEST, 1, struct.pack("!IB3x", 3, 0), 0)
    # the web server's side reads it back
    client = FastCGIClientConnection()
    client.begin_request(1)
    client.data_to_send()
    client.receive_data(wire)
    events = []
    while (event := client.next_event()) is not NEED_DATA:
        events.append(event)
    assert b"".join(e.data for e in events if isinstance(e, Stdout)) == stdout_data(stdout)
    assert [e for e in events if isinstance(e, Stderr)] == [Stderr(1, b"warning\n")]
    assert events[-1] == EndRequest(1, 3, f.REQUEST_COMPLETE)


def stdout_data(records: list[tuple[int, int, bytes, int]]) -> bytes:
    return b"".join(r[2] for r in records)


def test_output_is_coalesced_until_data_to_send() -> None:
    conn = begun(1)
    conn.stdout(1, b"head")
    conn.stdout(1, b"body")
    conn.end_request(1)
    first = conn.data_to_send()
    assert conn.data_to_send() == b""
    assert len(split_records(first)) == 4


def test_bytearray_output_is_copied() -> None:
    conn = begun(1)
    buffer = bytearray(b"abc")
    conn.stdout(1, buffer)
    buffer[:] = b"xyz"
    conn.end_request(1)
    assert split_records(conn.data_to_send())[0][2] == b"abc"


def test_writing_to_an_inactive_request_is_our_bug() -> None:
    conn = begun(1)
    conn.end_request(1)
    with pytest.raises(LocalProtocolError, match="request 1 is not active"):
        conn.stdout(1, b"late")
    with pytest.raises(LocalProtocolError):
        conn.end_request(1)
    with pytest.raises(LocalProtocolError):
        conn.stderr(9, b"x")


# -- management records and refusals ------------------------------------------------------------


def test_get_values_answered_from_constructor_values() -> None:
    client = FastCGIClientConnection()
    client.get_values(["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS", "NOT_A_VARIABLE"])
    events, out = all_ways(client.data_to_send(), max_conns=40, max_reqs=80, multiplex=True)
    assert events == []
    assert split_records(out) == [
        (
            f.GET_VALUES_RESULT,
            0,
            encode_pairs(
                [("FCGI_MAX_CONNS", "40"), ("FCGI_MAX_REQS", "80"), ("FCGI_MPXS_CONNS", "1")]
            ),
            (-(14 + 2 + 13 + 2 + 15 + 1 + 6) & 7),
        )
    ]
    client.receive_data(out)
    assert client.next_event() == GetValuesResult(
        {b"FCGI_MAX_CONNS": b"40", b"FCGI_MAX_REQS": b"80", b"FCGI_MPXS_CONNS": b"1"}
    )
    _, out = run([_get_values(["FCGI_MPXS_CONNS"])])
    assert decode_pairs(split_records(out)[0][2]) == [(b"FCGI_MPXS_CONNS", b"0")]


def _get_values(names: list[str]) -> bytes:
    client = FastCGIClientConnection()
    client.get_values(names)
    return client.data_to_send()


@pytest.mark.parametrize("rtype", [f.GET_VALUES_RESULT, f.UNKNOWN_TYPE, 12, 200, f.STDIN])
def test_unknown_management_type(rtype: int) -> None:
    client = FastCGIClientConnection()
    client.raw_record(rtype, 0, b"something")
    events, out = all_ways(client.data_to_send())
    assert events == []
    assert split_records(out) == [(f.UNKNOWN_TYPE, 0, bytes([rtype]) + bytes(7), 0)]
    reader = FastCGIClientConnection()
    reader.receive_data(out)
    assert reader.next_event() == UnknownType(rtype)


def test_unknown_role_refused_by_the_codec() -> None:
    wire = client_request(4, role=9)
    events, out = all_ways(wire + client_request(5, keep_conn=True))
    # request 4 is refused, its PARAMS and STDIN dropped; request 5 goes through
    assert events == [BeginRequest(5, f.RESPONDER, True), Params(5, GET), StdinEnd(5)]
    assert split_records(out) == [(f.END_REQUEST, 4, struct.pack("!IB3x", 0, f.UNKNOWN_ROLE), 0)]
    events, out = run([wire], roles=[f.RESPONDER])
    assert events == []
    events, out = run([client_request(4, role=f.FILTER)], roles=[f.RESPONDER])
    assert split_records(out)[0][2] == struct.pack("!IB3x", 0, f.UNKNOWN_ROLE)


def test_unknown_role_without_keep_conn_closes() -> None:
    conn = FastCGIConnection()
    conn.receive_data(client_request(1, role=0))
    assert conn.next_event() is NEED_DATA
    assert conn.should_close


def test_second_request_without_multiplexing_gets_cant_mpx_conn() -> None:
    events, out = all_ways(client_request(1, keep_conn=True) + client_request(2))
    assert events == [BeginRequest(1, f.RESPONDER, True), Params(1, GET), StdinEnd(1)]
    assert split_records(out) == [(f.END_REQUEST, 2, struct.pack("!IB3x", 0, f.CANT_MPX_CONN), 0)]


def test_multiplexed_requests_interleaved() -> None:
    client = FastCGIClientConnection()
    client.begin_request(1, keep_conn=True)
    client.begin_request(2, keep_conn=True)
    client.params(2, {"A": "2"})
    client.params(1, {"A": "1"})
    client.stdin(1, b"one")
    client.stdin(2, b"two")
    client.end_stdin(2)
    client.end_stdin(1)
    events, out = all_ways(client.data_to_send(), multiplex=True, max_reqs=2)
    assert out == b""
    assert events == [
        BeginRequest(1, f.RESPONDER, True),
        BeginRequest(2, f.RESPONDER, True),
        Params(2, {"A": "2"}),
        Params(1, {"A": "1"}),
        Stdin(1, b"one"),
        Stdin(2, b"two"),
        StdinEnd(2),
        StdinEnd(1),
    ]


def test_overloaded_beyond_max_reqs() -> None:
    wire = client_request(1, keep_conn=True) + client_request(2) + client_request(3)
    events, out = run([wire], multiplex=True, max_reqs=2)
    assert [e.request_id for e in events if isinstance(e, BeginRequest)] == [1, 2]  # type: ignore[attr-defined]
    assert split_records(out) == [(f.END_REQUEST, 3, struct.pack("!IB3x", 0, f.OVERLOADED), 0)]


def test_server_may_answer_overloaded_itself() -> None:
    conn = begun(1)
    conn.end_request(1, protocol_status=f.OVERLOADED)
    assert split_records(conn.data_to_send()) == [
        (f.END_REQUEST, 1, struct.pack("!IB3x", 0, f.OVERLOADED), 0)
    ]
    conn = begun(2)
    conn.stdout(2, b"Status: 503 Service Unavailable\r\n\r\n")
    conn.end_request(2, protocol_status=f.OVERLOADED)
    records = split_records(conn.data_to_send())
    assert [r[0] for r in records] == [f.STDOUT, f.STDOUT, f.END_REQUEST]
    assert records[1][2] == b""  # a stream that was written to is always ended


# -- abort, keep_conn, leftovers ------------------------------------------------------------------


def test_abort_request() -> None:
    client = FastCGIClientConnection()
    client.begin_request(1, keep_conn=True)
    client.params(1, GET)
    client.stdin(1, b"part")
    client.abort_request(1)
    client.abort_request(1)  # a second abort is not a second event
    events, _ = all_ways(client.data_to_send())
    assert events[-2:] == [Stdin(1, b"part"), AbortRequest(1)]
    assert events.count(AbortRequest(1)) == 1


def test_abort_before_params_end_then_end_request() -> None:
    client = FastCGIClientConnection()
    client.begin_request(1)
    client.abort_request(1)
    conn = FastCGIConnection()
    conn.receive_data(client.data_to_send())
    assert list(iter(conn.next_event, NEED_DATA)) == [
        BeginRequest(1, f.RESPONDER, False),
        AbortRequest(1),
    ]
    conn.end_request(1, app_status=1)
    assert split_records(conn.data_to_send())[-1][2] == struct.pack("!IB3x", 1, 0)
    assert conn.should_close


def test_abort_after_end_request_is_dropped() -> None:
    conn = begun(1, keep_conn=True)
    conn.end_request(1)
    client = FastCGIClientConnection()
    client.begin_request(1)
    client.abort_request(1)
    conn.receive_data(client.data_to_send()[16:])
    assert conn.next_event() is NEED_DATA


@pytest.mark.parametrize("keep_conn", [True, False])
def test_keep_conn_flag(keep_conn: bool) -> None:
    conn = begun(1, keep_conn=keep_conn)
    assert conn.keep_conn(1) is keep_conn
    assert not conn.should_close
    conn.end_request(1)
    assert conn.should_close is (not keep_conn)


def test_unread_stdin_is_dropped_before_the_next_request() -> None:
    """The app answered before reading the upload; the rest of it arrives after END_REQUEST."""
    conn = FastCGIConnection()
    client = FastCGIClientConnection(record_size=1000)
    client.begin_request(1, keep_conn=True)
    client.params(1, GET)
    client.stdin(1, b"a" * 1000)
    conn.receive_data(client.data_to_send())
    assert [type(e) for e in iter(conn.next_event, NEED_DATA)] == [BeginRequest, Params, Stdin]
    conn.end_request(1)
    client.stdin(1, b"b" * 5000)
    client.end_stdin(1)
    conn.receive_data(client.data_to_send())
    conn.receive_data(client_request(1, {"N": "2"}, b"second", keep_conn=True))
    events = list(iter(conn.next_event, NEED_DATA))
    assert events == [
        BeginRequest(1, f.RESPONDER, True),
        Params(1, {"N": "2"}),
        Stdin(1, b"second"),
        StdinEnd(1),
    ]


def test_end_of_stream() -> None:
    wire = client_request()
    assert run([wire], eof=True)[0][-1] == ConnectionClosed()
    assert run([wire[:-3]], eof=True)[0][-1] == ConnectionClosed()  # inside a record
    assert run([], eof=True)[0] == [ConnectionClosed()]
    conn = FastCGIConnection()
    conn.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"more")


# -- malformed input --------------------------------------------------------------------------


def _records(*records: tuple[int, int, bytes]) -> bytes:
    client = FastCGIClientConnection()
    for rtype, rid, content in records:
        client.raw_record(rtype, rid, content)
    return client.data_to_send()


BEGIN = struct.pack("!HB5x", f.RESPONDER, 0)


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"\x02\x01\x00\x01\x00\x08\x00\x00" + BEGIN, "FastCGI version 2"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "version 71"),
        (_records((f.STDIN, 1, b"x")), "STDIN record for request 1, which was never begun"),
        (_records((f.PARAMS, 3, b"")), "PARAMS record for request 3, which was never begun"),
        (_records((f.ABORT_REQUEST, 3, b"")), "ABORT_REQUEST record for request 3, which was"),
        (
            _records((f.BEGIN_REQUEST, 1, BEGIN), (f.STDIN, 1, b"early")),
            "STDIN for request 1 before its PARAMS ended",
        ),
        (
            _records((f.BEGIN_REQUEST, 1, BEGIN), (f.BEGIN_REQUEST, 1, BEGIN)),
            "BEGIN_REQUEST for request 1, which is still active",
        ),
        (_records((f.BEGIN_REQUEST, 1, BEGIN[:6])), "has 6 content bytes, not 8"),
        (
            _records((f.BEGIN_REQUEST, 1, BEGIN), (f.PARAMS, 1, b""), (f.PARAMS, 1, b"\x01\x01ab")),
            "PARAMS for request 1 after its end of stream",
        ),
        (
            _records(
                (f.BEGIN_REQUEST, 1, BEGIN),
                (f.PARAMS, 1, b""),
                (f.STDIN, 1, b""),
                (f.STDIN, 1, b"x"),
            ),
            "STDIN for request 1 after its end of stream",
        ),
        (
            _records((f.BEGIN_REQUEST, 1, BEGIN), (f.STDOUT, 1, b"x")),
            "STDOUT record for request 1: not a record a web server sends",
        ),
        (
            _records((f.BEGIN_REQUEST, 1, BEGIN), (77, 1, b"x")),
            "type-77 record for request 1: not a record a web server sends",
        ),
    ],
)
def test_malformed_records(wire: bytes, message: str) -> None:
    conn = FastCGIConnection()
    conn.receive_data(wire)
    with pytest.raises(ProtocolError, match=message) as caught:
        while conn.next_event() is not NEED_DATA:
            pass
    assert caught.value.status_hint == 400
    assert not isinstance(caught.value, RequestError)
    with pytest.raises(ProtocolError, match=message):  # the connection stays broken
        conn.next_event()


def test_params_size_limit_refuses_one_request_only() -> None:
    params = {**GET, "HTTP_COOKIE": "c" * 5000}
    wire = client_request(1, params, b"body", keep_conn=True, record_size=1024)
    conn = FastCGIConnection(max_params_size=4096)
    conn.receive_data(wire)
    assert conn.next_event() == BeginRequest(1, f.RESPONDER, True)
    with pytest.raises(RequestError, match="PARAMS exceed 4096 bytes") as caught:
        conn.next_event()
    assert caught.value.status_hint == 431
    assert caught.value.request_id == 1
    assert conn.next_event() is NEED_DATA  # the rest of request 1 is dropped
    conn.stdout(1, b"Status: 431 Request Header Fields Too Large\r\n\r\n")
    conn.end_request(1)
    conn.data_to_send()
    conn.receive_data(client_request(1, GET))
    assert list(iter(conn.next_event, NEED_DATA)) == [
        BeginRequest(1, f.RESPONDER, False),
        Params(1, GET),
        StdinEnd(1),
    ]


@pytest.mark.parametrize(("count", "refused"), [(9, False), (10, False), (11, True)])
def test_params_count_limit_boundary(count: int, refused: bool) -> None:
    # values and names with 1- and 4-byte lengths, in every combination
    params = {f"HTTP_X_{i}" + "N" * (i % 2 * 130): "v" * (i * 40) for i in range(count)}
    conn = FastCGIConnection(max_params=10)
    conn.receive_data(client_request(1, params))
    conn.next_event()
    if refused:
        with pytest.raises(RequestError, match="more than 10 name-value pairs"):
            conn.next_event()
    else:
        assert conn.next_event() == Params(1, params)


def test_params_count_limit() -> None:
    params = {f"HTTP_X_{i}": "v" for i in range(20)}
    conn = FastCGIConnection(max_params=10)
    conn.receive_data(client_request(1, params))
    conn.next_event()
    with pytest.raises(RequestError, match="more than 10 name-value pairs") as caught:
        conn.next_event()
    assert caught.value.status_hint == 431
    assert conn.next_event() is NEED_DATA
    conn.end_request(1)
    assert conn.should_close


def test_client_side_errors() -> None:
    client = FastCGIClientConnection()
    client.begin_request(1)
    client.receive_data(_records((f.STDOUT, 2, b"x")))
    with pytest.raises(ProtocolError, match="STDOUT record for request 2, which is not active"):
        client.next_event()
    client = FastCGIClientConnection()
    client.begin_request(1)
    client.receive_data(_records((f.END_REQUEST, 1, b"\x00")))
    with pytest.raises(ProtocolError, match="END_REQUEST with 1 content bytes, not 8"):
        client.next_event()
    with pytest.raises(LocalProtocolError):
        client.begin_request(1)
    with pytest.raises(LocalProtocolError):
        client.stdin(5, b"x")
    with pytest.raises(ValueError):
        FastCGIClientConnection(record_size=70000)


# -- properties -------------------------------------------------------------------------------

binary = st.binary(max_size=300)
pairs = st.lists(st.tuples(binary, binary), max_size=12)


@given(pairs)
def test_pairs_round_trip(items: list[tuple[bytes, bytes]]) -> None:
    blob = encode_pairs(items)
    assert decode_pairs(blob) == items
    assert encode_pairs(decode_pairs(blob)) == blob


names = st.text(st.characters(min_codepoint=1, max_codepoint=255), min_size=1, max_size=40)
values = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=400)


@st.composite
def request_streams(draw: st.DrawFn) -> tuple[bytes, list[object]]:
    """A valid stream of one or more requests and the events it must give."""
    wire = b""
    expected: list[object] = []
    for rid in draw(st.lists(st.integers(1, 65535), min_size=1, max_size=3, unique=True)):
        params = draw(st.dictionaries(names, values, max_size=8))
        chunks = draw(st.lists(st.binary(min_size=1, max_size=200), max_size=4))
        keep = draw(st.booleans())
        client = FastCGIClientConnection(record_size=draw(st.integers(1, 600)))
        client.begin_request(rid, f.RESPONDER, keep)
        client.params(rid, params)
        for chunk in chunks:
            client.stdin(rid, chunk)
        client.end_stdin(rid)
        if draw(st.booleans()):
            client.get_values(["FCGI_MAX_REQS"])
        wire += client.data_to_send()
        expected += [BeginRequest(rid, f.RESPONDER, keep), Params(rid, params)]
        if chunks:
            expected.append(Stdin(rid, b"".join(chunks)))
        expected.append(StdinEnd(rid))
    return wire, expected


def _merge_stdin(events: list[object]) -> list[object]:
    """Adjacent Stdin events of one request as one (record boundaries are the writer's choice)."""
    out: list[object] = []
    for event in events:
        last = out[-1] if out else None
        if (
            isinstance(event, Stdin)
            and isinstance(last, Stdin)
            and last.request_id == event.request_id
        ):
            out[-1] = Stdin(event.request_id, last.data + event.data)
            continue
        out.append(event)
    return out


def _events_ended(chunks: list[bytes]) -> list[object]:
    """Feed chunks; end each request as soon as its stdin ended (so the next one may begin)."""
    conn = FastCGIConnection()
    events: list[object] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        while (event := conn.next_event()) is not NEED_DATA:
            events.append(event)
            if isinstance(event, StdinEnd):
                conn.end_request(event.request_id)
    return _merge_stdin(events)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(request_streams(), st.lists(st.integers(0, 5000), max_size=8))
def test_any_split_gives_the_same_events(
    stream: tuple[bytes, list[object]], cuts: list[int]
) -> None:
    wire, expected = stream
    points = sorted({min(c, len(wire)) for c in cuts})
    chunks = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    assert _events_ended([c for c in chunks if c]) == expected
    assert _events_ended([wire]) == expected


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=64), max_size=8), st.booleans())
def test_random_bytes_raise_only_protocol_errors(chunks: list[bytes], multiplex: bool) -> None:
    conn = FastCGIConnection(multiplex=multiplex, max_reqs=4, max_params=8, max_params_size=256)
    try:
        for chunk in [*(c for c in chunks if c), b""]:
            conn.receive_data(chunk)
            while not isinstance(conn.next_event(), type(NEED_DATA) | ConnectionClosed):
                pass
    except ProtocolError:
        pass
    split_records(conn.data_to_send())  # whatever the codec answered is well formed


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_records_raise_only_protocol_errors(content: bytes) -> None:
    """Random contents inside well-framed records reach deeper than random framing."""
    wire = b""
    rest = content
    while len(rest) >= 3:
        rtype, rid, size = rest[0] % 12, rest[1] % 3, rest[2] % 40
        wire += _records((rtype, rid, rest[3 : 3 + size]))
        rest = rest[3 + size :]
    conn = FastCGIConnection(multiplex=True, max_reqs=2, max_params=4)
    conn.receive_data(wire)
    conn.receive_data(b"")
    try:
        while not isinstance(conn.next_event(), ConnectionClosed):
            pass
    except ProtocolError:
        pass


@settings(max_examples=100)
@given(st.lists(st.binary(max_size=70000), max_size=3), st.binary(max_size=100))
def test_output_round_trip(chunks: list[bytes], errors: bytes) -> None:
    conn = begun(9)
    for chunk in chunks:
        conn.stdout(9, chunk)
    conn.stderr(9, errors)
    conn.end_request(9, app_status=2**32 - 1)
    client = FastCGIClientConnection()
    client.begin_request(9)
    client.receive_data(conn.data_to_send())
    events = list(iter(client.next_event, NEED_DATA))
    assert b"".join(e.data for e in events if isinstance(e, Stdout)) == b"".join(chunks)
    assert b"".join(e.data for e in events if isinstance(e, Stderr)) == errors
    assert events[-1] == EndRequest(9, 2**32 - 1, f.REQUEST_COMPLETE)


@settings(max_examples=300)
@given(st.lists(st.binary(min_size=1, max_size=64), max_size=8))
def test_random_answers_raise_only_protocol_errors_on_the_client(chunks: list[bytes]) -> None:
    client = FastCGIClientConnection()
    client.begin_request(1)
    try:
        for chunk in [*chunks, b""]:
            client.receive_data(chunk)
            while not isinstance(client.next_event(), type(NEED_DATA) | ConnectionClosed):
                pass
    except ProtocolError:
        pass
