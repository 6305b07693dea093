"""Sans-I/O protocol codecs: bytes in, events out; method calls in, bytes out.

No sockets, no threads, no application calls: the FastCGI and SCGI servers, the FastCGI client
(:mod:`wsgigate.fastcgi.client`), the tests and the fuzzers drive the same objects.

Every parser has ``receive_data(data)`` (``b""`` means the peer closed its side) and
``next_event()``, which returns one event, :data:`NEED_DATA` when more bytes are needed, or
:class:`ConnectionClosed` once the peer's bytes have ended. Bytes the peer sent wrongly raise
:class:`~wsgigate.errors.ProtocolError`; calling a codec wrongly (writing to a request that is
not active...) raises :class:`LocalProtocolError`, a bug on our side::

    WsgigateError
    ├── ProtocolError          the peer's bytes break the protocol (status_hint: 400, 431...)
    │   └── fastcgi.RequestError   ... for one request only; the connection stays usable
    └── LocalProtocolError     we called the codec wrongly

Modules: :mod:`wsgigate.protocols.fastcgi`, :mod:`wsgigate.protocols.scgi`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from wsgigate.errors import WsgigateError

__all__ = ["NEED_DATA", "ConnectionClosed", "LocalProtocolError", "NeedData"]


class NeedData(enum.Enum):
    """Type of the :data:`NEED_DATA` sentinel (an enum, so type checkers narrow on ``is``)."""

    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData.NEED_DATA
"""Returned by ``next_event()`` when no complete event is buffered: feed more bytes."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side; whatever was incomplete (a record, a body) is lost."""


class LocalProtocolError(WsgigateError, RuntimeError):
    """Our side used a codec wrongly (e.g. wrote output for a request that already ended)."""
