"""Reliability of the codecs and the Lambda event path: what tests/test_protocol_*.py leave out.

- the fuzz targets' oracles (fuzz/fuzz_*.py ``check``) driven by hypothesis, so every test run
  fuzzes a little, and every crash the fuzzers found (fuzz/regressions/) replayed;
- multiplexed FastCGI streams, records of several requests interleaved, cut anywhere;
- encode(decode(x)) == x for whole FastCGI request streams;
- name-value lengths at 2**31 - 1 and netstring lengths at the header limit, whatever the cuts.

See docs/reliability.md for the figures and the separate fuzzing command (scripts/fuzz.sh).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import struct
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import ROOT
from wsgigate.errors import ProtocolError
from wsgigate.protocols import NEED_DATA, ConnectionClosed
from wsgigate.protocols import fastcgi as f
from wsgigate.protocols.scgi import Body, EndOfBody, Request, SCGIParser, encode_request

FUZZ = ROOT / "fuzz"
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _target(name: str) -> ModuleType:
    if str(FUZZ) not in sys.path:
        sys.path.insert(0, str(FUZZ))
    spec = importlib.util.spec_from_file_location(f"fuzz_{name}", FUZZ / f"fuzz_{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TARGETS = {name: _target(name) for name in ("fastcgi", "scgi", "lambda")}


@pytest.fixture(autouse=True)
def _quiet_lambda_errors() -> Iterator[None]:
    """The Lambda target answers malformed events with 400 and a log line each: not needed here."""
    logger = logging.getLogger("wsgigate.error")
    disabled = logger.disabled
    logger.disabled = True
    yield
    logger.disabled = disabled


def _inputs(name: str) -> list[tuple[str, bytes]]:
    module = TARGETS[name]
    found = [(f"seed-{i}", seed) for i, seed in enumerate(module.seeds())]
    directory = FUZZ / "regressions" / name
    if directory.is_dir():
        found += [(path.name, path.read_bytes()) for path in sorted(directory.iterdir())]
    return found


@pytest.mark.parametrize(
    ("name", "data"),
    [
        pytest.param(name, data, id=f"{name}-{label}")
        for name in TARGETS
        for label, data in _inputs(name)
    ],
)
def test_fuzz_seeds_and_regressions(name: str, data: bytes) -> None:
    """Every seed and every input a fuzzer once broke the gateway with passes the oracles."""
    TARGETS[name].check(data)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_regressions_of_each_target_exist(name: str) -> None:
    """The replay above is not empty by accident (a moved directory would skip it silently)."""
    assert _inputs(name), name


@FAST
@given(st.binary(max_size=400))
def test_fastcgi_oracles_on_random_input(data: bytes) -> None:
    TARGETS["fastcgi"].check(data)


@FAST
@given(st.binary(max_size=400))
def test_scgi_oracles_on_random_input(data: bytes) -> None:
    TARGETS["scgi"].check(data)


@FAST
@given(st.binary(max_size=400))
def test_lambda_oracles_on_random_input(data: bytes) -> None:
    TARGETS["lambda"].check(data)


# -- FastCGI: multiplexed streams, round trips, length limits ---------------------------------

names = st.text(st.characters(min_codepoint=1, max_codepoint=255), min_size=1, max_size=20)
values = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=200)


def _one_request(
    draw: st.DrawFn, rid: int, record_size: int
) -> tuple[list[bytes], list[object], dict[str, str], list[bytes]]:
    """The records of one request (each a separate bytes) and the events they must give."""
    params = draw(st.dictionaries(names, values, max_size=6))
    chunks = draw(st.lists(st.binary(min_size=1, max_size=300), max_size=4))
    client = f.FastCGIClientConnection(record_size=record_size)
    client.begin_request(rid, f.RESPONDER, True)
    records = [client.data_to_send()]
    client.params(rid, params)
    records += _split_records(client.data_to_send())
    for chunk in chunks:
        client.stdin(rid, chunk)
        records += _split_records(client.data_to_send())
    client.end_stdin(rid)
    records.append(client.data_to_send())
    events: list[object] = [f.BeginRequest(rid, f.RESPONDER, True), f.Params(rid, params)]
    if chunks:
        events.append(f.Stdin(rid, b"".join(chunks)))
    events.append(f.StdinEnd(rid))
    return records, events, params, chunks


def _split_records(wire: bytes) -> list[bytes]:
    out = []
    while wire:
        length, padding = struct.unpack_from("!HB", wire, 4)
        size = 8 + length + padding
        out.append(wire[:size])
        wire = wire[size:]
    return out


@st.composite
def interleaved(draw: st.DrawFn) -> tuple[bytes, dict[int, list[object]]]:
    """Up to four requests whose records are interleaved at random (each kept in order)."""
    rids = draw(st.lists(st.integers(1, 65535), min_size=1, max_size=4, unique=True))
    queues = {}
    expected = {}
    for rid in rids:
        records, events, _, _ = _one_request(draw, rid, draw(st.integers(1, 400)))
        queues[rid] = records
        expected[rid] = events
    wire = b""
    while queues:
        rid = draw(st.sampled_from(sorted(queues)))
        wire += queues[rid].pop(0)
        if not queues[rid]:
            del queues[rid]
    return wire, expected


def _cut(wire: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *sorted({min(p, len(wire)) for p in points}), len(wire)]
    return [wire[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


@FAST
@given(interleaved(), st.lists(st.integers(0, 6000), max_size=10))
def test_multiplexed_interleaved_requests_any_split(
    stream: tuple[bytes, dict[int, list[object]]], cuts: list[int]
) -> None:
    wire, expected = stream
    conn = f.FastCGIConnection(multiplex=True, max_reqs=4, max_conns=4)
    got: dict[int, list[object]] = {}
    for chunk in _cut(wire, cuts):
        conn.receive_data(chunk)
        while (event := conn.next_event()) is not NEED_DATA:
            assert not isinstance(event, ConnectionClosed)
            events = got.setdefault(event.request_id, [])  # type: ignore[union-attr]
            last = events[-1] if events else None
            if isinstance(event, f.Stdin) and isinstance(last, f.Stdin):
                events[-1] = f.Stdin(event.request_id, last.data + event.data)
            else:
                events.append(event)
            if isinstance(event, f.StdinEnd):
                conn.end_request(event.request_id)
    assert got == expected
    assert conn.active_requests == frozenset()
    assert not conn.should_close  # every request asked for KEEP_CONN


@FAST
@given(st.data(), st.integers(1, 65535), st.integers(1, 2000))
def test_request_stream_round_trips(data: st.DataObject, rid: int, record_size: int) -> None:
    """decode, then encode the events with the same record size: the same bytes again."""
    records, _, _, _ = _one_request(data.draw, rid, record_size)
    wire = b"".join(records)
    conn = f.FastCGIConnection()
    conn.receive_data(wire)
    events = list(iter(conn.next_event, NEED_DATA))
    client = f.FastCGIClientConnection(record_size=record_size)
    for event in events:
        if isinstance(event, f.BeginRequest):
            client.begin_request(event.request_id, event.role, event.keep_conn)
        elif isinstance(event, f.Params):
            client.params(event.request_id, event.params)
        elif isinstance(event, f.Stdin):
            client.stdin(event.request_id, event.data)
        elif isinstance(event, f.StdinEnd):
            client.end_stdin(event.request_id)
    assert client.data_to_send() == wire


def test_name_value_length_limit_is_2_to_the_31_minus_1() -> None:
    """The largest length FastCGI can say (31 bits) encodes; one more is refused by the encoder."""
    assert f._encode_length(2**31 - 1) == b"\xff\xff\xff\xff"
    assert f._encode_length(128) == b"\x80\x00\x00\x80"
    assert f._encode_length(127) == b"\x7f"
    with pytest.raises(ValueError, match="exceeds 2\\*\\*31 - 1"):
        f._encode_length(2**31)


@pytest.mark.parametrize(
    "header",
    [
        b"\xff\xff\xff\xff\x01",  # name of 2**31 - 1 bytes
        b"\x01\xff\xff\xff\xff",  # value of 2**31 - 1 bytes
        b"\xff\xff\xff\xff\xff\xff\xff\xff",  # both
        b"\x80\x00\x00\x80\x80\x00\x00\x80",  # 128 and 128: the first 4-byte lengths
    ],
)
def test_huge_declared_lengths_are_refused_without_allocating(header: bytes) -> None:
    """A declared 2 GiB pair is a 400 for the stream given, never a MemoryError or a wait."""
    blob = header + b"N=v" * 10
    with pytest.raises(ProtocolError, match="run past") as caught:
        f.decode_pairs(blob)
    assert caught.value.status_hint == 400
    client = f.FastCGIClientConnection(record_size=7)
    client.begin_request(1)
    client.raw_record(f.PARAMS, 1, blob)
    client.raw_record(f.PARAMS, 1)
    conn = f.FastCGIConnection()
    conn.receive_data(client.data_to_send())
    assert isinstance(conn.next_event(), f.BeginRequest)
    with pytest.raises(ProtocolError, match="run past"):
        conn.next_event()


@pytest.mark.parametrize("length", [127, 128])
@pytest.mark.parametrize("where", ["name", "value"])
def test_127_128_boundary_in_records_cut_inside_the_length(length: int, where: str) -> None:
    """The 1-byte/4-byte switch, with every PARAMS record boundary inside the pair's lengths."""
    pair = ("N" * length, "v") if where == "name" else ("N", "v" * length)
    blob = f.encode_pairs([pair])
    for size in range(1, 10):
        client = f.FastCGIClientConnection(record_size=size)
        client.begin_request(1)
        client.params(1, [pair])
        conn = f.FastCGIConnection()
        conn.receive_data(client.data_to_send())
        events = list(iter(conn.next_event, NEED_DATA))
        assert events[1] == f.Params(1, dict([pair])), (size, blob[:10])


def test_params_size_limit_exact_boundary() -> None:
    """max_params_size counts content bytes: exactly the limit passes, one more is a 431."""
    for extra, refused in ((0, False), (1, True)):
        pair = [("N", "v" * (100 - 2 - 1 + extra))]  # 1+1 length bytes + name + value
        assert len(f.encode_pairs(pair)) == 100 + extra
        client = f.FastCGIClientConnection(record_size=33)
        client.begin_request(1)
        client.params(1, pair)
        conn = f.FastCGIConnection(max_params_size=100)
        conn.receive_data(client.data_to_send())
        conn.next_event()
        if refused:
            with pytest.raises(f.RequestError) as caught:
                conn.next_event()
            assert caught.value.status_hint == 431
        else:
            assert conn.next_event() == f.Params(1, dict(pair))


# -- SCGI: netstring length at the limit, cut anywhere ---------------------------------------


def _scgi_feed(chunks: list[bytes], limit: int) -> tuple[list[object], int]:
    parser = SCGIParser(max_header_size=limit)
    events: list[object] = []
    try:
        for chunk in chunks:
            parser.receive_data(chunk)
            while (event := parser.next_event()) is not NEED_DATA:
                if isinstance(event, Body) and events and isinstance(events[-1], Body):
                    events[-1] = Body(events[-1].data + event.data)
                else:
                    events.append(event)
    except ProtocolError as exc:
        return events, exc.status_hint
    return events, 0


@FAST
@given(
    st.integers(20, 3000),
    st.integers(-3, 3),
    st.binary(max_size=50),
    st.lists(st.integers(0, 3100), max_size=6),
)
def test_netstring_length_at_the_limit_any_split(
    limit: int, delta: int, body: bytes, cuts: list[int]
) -> None:
    """A header of limit+delta bytes: accepted iff it fits, refused with 431 otherwise."""
    base = len(encode_request({"X": ""}, body).split(b":", 1)[1].split(b",", 1)[0])
    size = max(limit + delta, base)
    value = "v" * (size - base)
    wire = encode_request({"X": value}, body)
    assert int(wire.split(b":", 1)[0]) == size
    for chunks in ([wire], _cut(wire, cuts)):
        events, status = _scgi_feed(chunks, limit)
        if size <= limit:
            assert status == 0
            request = Request(
                {"CONTENT_LENGTH": str(len(body)), "SCGI": "1", "X": value}, len(body)
            )
            assert events == [request, *([Body(body)] if body else []), EndOfBody()]
        else:
            assert (events, status) == ([], 431)


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        (b"0:,", 400),  # an empty header has no CONTENT_LENGTH
        (b"00:,", 400),  # leading zero
        (b"131072:", 0),  # exactly the default limit: waits for the rest
        (b"131073:", 431),
        (b"1310720", 431),  # seven digits, no ':' yet: already too long
        (b"999999999999999999999999:", 431),
        (b":,", 400),
        (b"-1:,", 400),
        (b"+5:abcde,", 400),
        (b" 5:abcde,", 400),
    ],
)
def test_netstring_length_field_edges(wire: bytes, status: int) -> None:
    for chunks in ([wire], [wire[i : i + 1] for i in range(len(wire))]):
        events, got = _scgi_feed(chunks, 128 * 1024)
        assert (events, got) == ([], status), chunks


def test_scgi_status_does_not_depend_on_the_cuts() -> None:
    """Found by fuzzing: "394?" was a 400 whole but a 431 when "394" came first (limit 200)."""
    assert _scgi_feed([b"394?A"], 200) == ([], 431)
    assert _scgi_feed([b"394", b"?A"], 200) == ([], 431)
    assert _scgi_feed([b"GET / HTTP/1.1\r\n"], 200) == ([], 400)


def test_lambda_target_is_not_blind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Lambda oracle fails when the app is given an environ that breaks PEP 3333."""
    from wsgigate.aws_lambda import make_handler

    fuzz_lambda = TARGETS["lambda"]
    data = bytes([1, 1, 1, 0, 0, 0, 0, 1, 0x41, 0])  # HTTP API, POST /?A, no body
    fuzz_lambda.check(data)

    def broken(environ: dict[str, Any], start_response: Any) -> Any:
        return fuzz_lambda.app({**environ, "QUERY_STRING": "q=\u20ac"}, start_response)

    monkeypatch.setattr(fuzz_lambda, "handler", make_handler(broken))
    with pytest.raises(AssertionError, match="not latin-1"):
        fuzz_lambda.check(data)


@pytest.mark.parametrize("builder", TARGETS["lambda"].BUILDERS, ids=lambda b: b.__name__)
def test_lambda_non_ascii_query_reaches_the_app_as_utf8_bytes(builder: Any) -> None:
    """Found by fuzzing: a raw "?q=€" came through as QUERY_STRING "q=€" (not latin-1)."""
    from wsgigate.aws_lambda import make_handler

    seen: dict[str, str] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update({k: environ[k] for k in ("QUERY_STRING", "REQUEST_URI", "PATH_INFO")})
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    answer = make_handler(app)(builder(path="/caf\u00e9", query="q=\u20ac"), None)
    assert answer.get("statusCode", answer.get("status")) in (200, "200"), answer
    for key, value in seen.items():
        assert value.encode("latin-1"), key  # raises if not latin-1
    utf8 = "\u20ac".encode().decode("latin-1")
    assert utf8 in seen["QUERY_STRING"] or "%E2%82%AC" in seen["QUERY_STRING"], seen


@pytest.mark.parametrize("context", [True, 3, "elb", ["elb"], None, {"elb": 1}])
def test_lambda_detection_survives_any_request_context(context: Any) -> None:
    """Found by fuzzing: a requestContext that is not a dict made detection raise."""
    from wsgigate.aws_lambda import make_handler

    handled: list[Any] = []
    handler = make_handler(lambda e, s: [], on_event=lambda event, ctx: handled.append(event))
    for event in (
        {"requestContext": context},
        {"requestContext": context, "rawPath": 5, "junk": 1},
        {"requestContext": context, "httpMethod": 7},
    ):
        try:
            handler(event, None)
        except (ProtocolError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AssertionError(f"{event}: {type(exc).__name__}: {exc}") from None
