"""``wsgi.url_scheme`` from a trusted proxy's ``X-Forwarded-Proto``.

A web server that terminates TLS itself tells the app so (``HTTPS=on``, ``REQUEST_SCHEME``), and
the core reads that. Behind a load balancer that terminates TLS and speaks plain HTTP to the web
server, only the balancer's ``X-Forwarded-Proto`` header knows the client's scheme. Any client
can send that header too, so it is believed only from the addresses the operator names
(``--forwarded-allow-ips``), as gunicorn and uvicorn do: ``REMOTE_ADDR``, the address the web
server saw, must be one of them. Off unless asked for; not imported unless asked for.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Iterable, Mapping

__all__ = ["ForwardedScheme", "add_forwarded_argument", "forwarded_scheme_from_option"]

_SCHEMES = {"http": "http", "https": "https"}


class ForwardedScheme:
    """Callable: ``meta`` -> ``"https"``/``"http"`` from a trusted ``X-Forwarded-Proto``, else None.

    ``allow``: ``"*"`` (any peer: only when nothing but the proxy can reach the web server), or
    addresses and networks (``"10.0.0.5, 10.1.0.0/16, ::1"``), as a string or an iterable.
    """

    def __init__(self, allow: str | Iterable[str]) -> None:
        items = allow.split(",") if isinstance(allow, str) else list(allow)
        names = [item.strip() for item in items if item.strip()]
        if not names:
            raise ValueError("--forwarded-allow-ips: no address given")
        self.any = "*" in names
        self.networks = [] if self.any else [_network(name) for name in names]
        self._seen: dict[str, bool] = {}

    def trusted(self, address: str) -> bool:
        if self.any:
            return True
        known = self._seen.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address.strip("[]"))
            except ValueError:  # a unix-socket peer or garbage: not a proxy we know
                known = False
            else:
                if ip.version == 6 and ip.ipv4_mapped is not None:
                    ip = ip.ipv4_mapped
                known = any(ip in network for network in self.networks)
            if len(self._seen) < 1024:
                self._seen[address] = known
        return known

    def __call__(self, meta: Mapping[str, str]) -> str | None:
        proto = meta.get("HTTP_X_FORWARDED_PROTO")
        if not proto or not self.trusted(meta.get("REMOTE_ADDR", "")):
            return None
        # A proxy that appends to a header the client already sent puts its own value last;
        # the values before it come from whoever reached the proxy, the client included.
        return _SCHEMES.get(proto.rpartition(",")[2].strip().lower())


def forwarded_scheme_from_option(allow: str) -> ForwardedScheme:
    """``ForwardedScheme(allow)`` for a command-line option: a wrong value is a
    :class:`wsgigate.errors.ConfigurationError` (one line, exit 2), found before any request."""
    try:
        return ForwardedScheme(allow)
    except ValueError as exc:
        from wsgigate.errors import ConfigurationError

        raise ConfigurationError(str(exc)) from None


def add_forwarded_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--forwarded-allow-ips``, shared by ``wsgigate cgi``, ``fastcgi`` and ``scgi``."""
    parser.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="comma-separated proxy addresses or networks (or *) whose X-Forwarded-Proto "
        "header sets wsgi.url_scheme, checked against REMOTE_ADDR (default: none: only the "
        "web server's HTTPS variable counts)",
    )


def _network(name: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(name.strip("[]"), strict=False)
    except ValueError:
        raise ValueError(
            f"--forwarded-allow-ips: {name!r} is not an IP address or network (e.g. 10.0.0.5, "
            "10.0.0.0/8, ::1, or * for any)"
        ) from None
