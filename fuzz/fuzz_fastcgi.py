"""Fuzz the FastCGI codec (both ends) and the name-value pair parser.

    python3 fuzz/fuzz_fastcgi.py [libFuzzer options] [corpus dir]     (see scripts/fuzz.sh)

Oracles, beyond "nothing but ProtocolError is raised":
- the application end gives the same events (and the same error, or none) however the bytes
  are cut, and whatever it answers by itself is well-formed records;
- the fast name-value parser (the server's) agrees with the slow one (decode_pairs), and
  encode_pairs(decode_pairs(x)) decodes to the same pairs;
- the web-server end (FastCGIClientConnection) raises nothing but ProtocolError.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from wsgigate.errors import ProtocolError
from wsgigate.protocols import NEED_DATA, ConnectionClosed
from wsgigate.protocols import fastcgi as f

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _input import Reader, cuts, main  # noqa: E402

_HEADER = struct.Struct("!BBHHBx")


def _feed(chunks: list[bytes], multiplex: bool, small: bool) -> tuple[list[object], str, bytes]:
    """Events (Stdin/Data merged per request), the error (or ""), and the codec's own output.

    Requests are ended as a server ends them: after their STDIN (or refused with a 431).
    """
    limits = {"max_params": 4, "max_params_size": 64} if small else {}
    conn = f.FastCGIConnection(multiplex=multiplex, max_reqs=3, **limits)  # type: ignore[arg-type]
    events: list[object] = []
    error = ""
    try:
        for chunk in [*(c for c in chunks if c), b""]:
            conn.receive_data(chunk)
            while True:
                try:
                    event = conn.next_event()
                except f.RequestError as exc:
                    events.append(("RequestError", exc.request_id, exc.status_hint))
                    conn.end_request(exc.request_id)
                    continue
                if event is NEED_DATA or isinstance(event, ConnectionClosed):
                    break
                last = events[-1] if events else None
                if (
                    isinstance(event, f.Stdin | f.Data)
                    and type(last) is type(event)
                    and last.request_id == event.request_id  # type: ignore[union-attr]
                ):
                    merged = last.data + event.data  # type: ignore[union-attr]
                    events[-1] = type(event)(event.request_id, merged)
                    continue
                events.append(event)
                ended = isinstance(event, f.StdinEnd | f.AbortRequest)
                if ended and event.request_id in conn.active_requests:  # type: ignore[union-attr]
                    conn.end_request(event.request_id)  # type: ignore[union-attr]
    except ProtocolError as exc:
        error = f"{type(exc).__name__} {exc.status_hint}"  # the text may quote what was seen
    return events, error, conn.data_to_send()


def _records_well_formed(wire: bytes) -> None:
    pos = 0
    while pos < len(wire):
        version, rtype, _rid, length, padding = _HEADER.unpack_from(wire, pos)
        assert version == 1, wire
        assert rtype in (f.STDOUT, f.END_REQUEST, f.GET_VALUES_RESULT, f.UNKNOWN_TYPE), rtype
        assert padding < 8
        pos += 8 + length + padding
        assert pos <= len(wire), "record runs past the output"


def check_pairs(blob: bytes) -> None:
    try:
        pairs = f.decode_pairs(blob, 50)
    except ProtocolError:
        try:
            fast = f._decode_params(blob, 50)
        except ProtocolError:
            return
        raise AssertionError(f"fast parser accepted what decode_pairs refused: {fast!r}") from None
    fast = f._decode_params(blob, 50)
    assert fast == {a.decode("latin-1"): b.decode("latin-1") for a, b in pairs}
    assert f.decode_pairs(f.encode_pairs(pairs), 50) == pairs


def check_client(chunks: list[bytes]) -> None:
    client = f.FastCGIClientConnection()
    client.begin_request(1)
    client.begin_request(2)
    try:
        for chunk in [*(c for c in chunks if c), b""]:
            client.receive_data(chunk)
            while not isinstance(client.next_event(), type(NEED_DATA) | ConnectionClosed):
                pass
    except ProtocolError:
        pass


def check(data: bytes) -> None:
    reader = Reader(data)
    mode = reader.byte()
    wire = reader.rest()
    if mode % 4 == 0:
        check_pairs(wire)
        return
    if mode % 4 == 1:
        check_client(cuts(Reader(wire[:16]), wire[16:]))
        return
    multiplex, small = bool(mode & 4), bool(mode & 8)
    whole = _feed([wire], multiplex, small)
    _records_well_formed(whole[2])
    split = _feed(cuts(Reader(wire[:16]), wire), multiplex, small)
    assert split == whole, (split, whole)


def seeds() -> list[bytes]:
    out = []
    for rid, keep in ((1, False), (2, True), (65535, True)):
        client = f.FastCGIClientConnection(record_size=7 + rid % 50)
        client.get_values(["FCGI_MAX_CONNS", "FCGI_MPXS_CONNS"])
        client.begin_request(rid, f.RESPONDER if rid != 2 else f.FILTER, keep)
        client.params(rid, {"REQUEST_METHOD": "POST", "X" * 130: "v" * 200, "E": ""})
        client.stdin(rid, b"body" * 10)
        client.end_stdin(rid)
        if rid == 2:
            client.data(rid, b"file")
            client.end_data(rid)
        client.abort_request(rid)
        wire = client.data_to_send()
        out += [bytes([mode]) + wire for mode in (2, 6, 14)]
    out.append(b"\x00" + f.encode_pairs([(b"A", b"b"), (b"N" * 128, b""), (b"", b"v" * 300)]))
    out.append(b"\x01" + bytes(16) + bytes.fromhex("0106000100050300") + b"hello\0\0\0")
    return out


if __name__ == "__main__":
    main(check, seeds)
