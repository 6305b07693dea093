"""The access log: one line per request on the ``wsgigate.access`` logger.

The format uses gunicorn's atoms (``%(h)s``, ``%(r)s``, ``%({user-agent}i)s``...), so a
gunicorn ``--access-logformat`` works unchanged. The default is Apache's combined format::

    127.0.0.1 - - [23/Nov/2026:09:40:01 +0000] "GET /hello?x=1 HTTP/1.1" 200 14 "-" "curl/8.5"

Atoms: ``h`` remote address, ``l`` ``-``, ``u`` remote user, ``t`` time, ``r`` request line,
``m`` method, ``U`` path, ``q`` query, ``H`` protocol, ``s`` status, ``b`` body bytes (``-``
for 0), ``B`` body bytes, ``f`` referer, ``a`` user agent, ``T`` seconds, ``M`` milliseconds,
``D`` microseconds, ``L`` decimal seconds, ``p`` pid, ``{name}i`` request header,
``{name}e`` environ variable. Unknown atoms print ``-``.
"""

from __future__ import annotations

import logging
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

COMBINED = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

access_logger = logging.getLogger("wsgigate.access")


class _Atoms(dict[str, str]):
    """Values computed on demand; ``{name}i`` and ``{name}e`` look into the environ."""

    def __init__(self, environ: Mapping[str, Any]) -> None:
        super().__init__()
        self.environ = environ

    def __missing__(self, key: str) -> str:
        if len(key) > 3 and key[0] == "{" and key[-2] == "}":
            name, kind = key[1:-2], key[-1]
            if kind == "i":
                variable = "HTTP_" + name.upper().replace("-", "_")
                if name.lower() in ("content-type", "content-length"):
                    variable = variable[5:]
                value = self.environ.get(variable)
            elif kind == "e":
                value = self.environ.get(name)
            else:
                value = None
            return str(value) if value not in (None, "") else "-"
        return "-"


def _text(value: str) -> str:
    """PEP 3333 native string (latin-1 bytes) -> printable text, quotes and controls escaped."""
    text = value.encode("latin-1", "replace").decode("utf-8", "backslashreplace")
    if text.isprintable() and '"' not in text:
        return text
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


class AccessLog:
    """Formats and emits access log lines; does nothing when the logger is disabled."""

    def __init__(self, fmt: str | None = None) -> None:
        self.format = fmt or COMBINED

    def enabled(self) -> bool:
        return access_logger.isEnabledFor(logging.INFO)

    def line(
        self,
        environ: Mapping[str, Any],
        status: int,
        sent: int,
        duration: float,
        peer: str = "",
    ) -> str:
        method = environ.get("REQUEST_METHOD", "-")
        uri = environ.get("REQUEST_URI")
        if not uri:
            uri = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            if environ.get("QUERY_STRING"):
                uri += "?" + environ["QUERY_STRING"]
        protocol = environ.get("SERVER_PROTOCOL", "-")
        atoms = _Atoms(environ)
        atoms.update(
            h=environ.get("REMOTE_ADDR") or peer or "-",
            l="-",
            u=_text(environ.get("REMOTE_USER") or "-"),
            t=time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
            r=_text(f"{method} {uri} {protocol}"),
            m=_text(method),
            U=_text(environ.get("PATH_INFO", "")),
            q=_text(environ.get("QUERY_STRING", "")),
            H=protocol,
            s=str(status) if status else "-",
            b=str(sent) if sent else "-",
            B=str(sent),
            f=_text(environ.get("HTTP_REFERER") or "-"),
            a=_text(environ.get("HTTP_USER_AGENT") or "-"),
            T=str(int(duration)),
            M=str(int(duration * 1000)),
            D=str(int(duration * 1_000_000)),
            L=f"{duration:.6f}",
            p=f"<{os.getpid()}>",
        )
        return self.format % atoms

    def log(
        self,
        environ: Mapping[str, Any],
        status: int,
        sent: int,
        duration: float,
        peer: str = "",
    ) -> None:
        if not access_logger.isEnabledFor(logging.INFO):
            return
        try:
            message = self.line(environ, status, sent, duration, peer)
        except Exception:  # a bad user format must not take requests down
            logging.getLogger("wsgigate.error").exception("access log format failed")
            return
        access_logger.info("%s", message)


def check_format(fmt: str) -> None:
    """Raise ConfigurationError if ``fmt`` cannot be formatted (checked once at startup)."""
    from wsgigate.errors import ConfigurationError

    try:
        AccessLog(fmt).line({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, 200, 0, 0.0)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigurationError(f"access log format {fmt!r}: {exc}") from None
