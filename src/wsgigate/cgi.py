"""CGI gateway (RFC 3875): one request from the process environment and stdin, answered on stdout.

Use it from a CGI script::

    #!/usr/bin/env python3
    from wsgigate.cgi import run
    from myapp import app
    run(app)

A CGI process is started for every request, so this module imports nothing beyond ``os`` and
``sys`` on the success path: each import is paid on every hit.
"""

import os
import sys

from wsgigate.core import (
    ErrorStream,
    InputStream,
    Outcome,
    build_environ,
    cgi_response_head,
    content_length,
    run_app,
    unquote_to_wsgi,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping
    from typing import IO, BinaryIO
    from wsgiref.types import WSGIApplication

__all__ = [
    "run",
    "read_environ",
    "drop_httpoxy",
    "fix_iis_path_info",
    "fix_rewritten_script_name",
]


def drop_httpoxy() -> None:
    """Remove ``HTTP_PROXY`` from the process environment (httpoxy, CVE-2016-5385 and kin).

    In a CGI process a client's ``Proxy:`` request header arrives as the environment variable
    ``HTTP_PROXY``, which urllib, requests and most HTTP clients read as the proxy to use for
    outgoing requests: the client would choose where the app's own HTTP calls go. No CGI
    server sets it for any other reason, so it is dropped before the app is even imported.
    """
    os.environ.pop("HTTP_PROXY", None)


def read_environ() -> dict[str, str]:
    """The process environment as PEP 3333 native strings (bytes decoded as latin-1)."""
    raw = getattr(os.environ, "_data", None)
    if os.name == "posix" and type(raw) is dict:
        # On POSIX, os.environ is a view that decodes, on each access, a dict of bytes it keeps
        # up to date (CPython's posix.environ). Two joins and two decodes in C (no NUL can occur
        # in a name or a value) replace several Python-level calls per variable: ~0.3 M
        # instructions of a CGI request, a few per cent of it.
        if not raw:
            return {}
        names = b"\0".join(raw).decode("latin-1").split("\0")
        values = b"\0".join(raw.values()).decode("latin-1").split("\0")
        return dict(zip(names, values, strict=True))
    if os.name == "posix":
        return {k.decode("latin-1"): v.decode("latin-1") for k, v in os.environb.items()}
    # Windows hands us text already decoded; re-express it as the bytes a client would have sent.
    return {
        k: v.encode("utf-8", "surrogateescape").decode("latin-1") for k, v in os.environ.items()
    }


def fix_iis_path_info(meta: "MutableMapping[str, str]") -> None:
    """IIS puts the script's own path at the front of PATH_INFO; strip it.

    IIS with a script mapping sends ``SCRIPT_NAME=/app.py`` and ``PATH_INFO=/app.py/rest``
    (unless ``AllowPathInfoForScriptMappings`` is on, then ``PATH_INFO=/rest``). IIS matches
    paths case-insensitively, and ``/app.pyx`` is not the script ``/app.py``.
    """
    if not meta.get("SERVER_SOFTWARE", "").startswith("Microsoft-IIS"):
        return
    script = meta.get("SCRIPT_NAME", "")
    path = meta.get("PATH_INFO", "")
    n = len(script)
    if script and path[:n].lower() == script.lower() and path[n : n + 1] in ("", "/"):
        meta["PATH_INFO"] = path[n:]


def fix_rewritten_script_name(meta: "MutableMapping[str, str]") -> None:
    """Undo the script's file name when a rewrite rule hid it from the URL.

    Shared hosting maps every URL to the script with a rule such as Apache's
    ``RewriteRule ^(.*)$ app.cgi/$1`` or lighttpd's ``url.rewrite-once``. The server then
    reports ``SCRIPT_NAME=/app.cgi`` although the client asked for ``/hello``, and every URL
    the app builds would carry ``/app.cgi``. When the request URI does not start with
    SCRIPT_NAME:

    - it ends with PATH_INFO: the part before PATH_INFO is the real mount point;
    - PATH_INFO is empty (a front-controller rule such as ``RewriteRule ^ app.cgi``): the app
      is mounted at the root and routes on the whole requested path;
    - otherwise the server is serving another URL than the one asked for (an RFC 3875 local
      redirect, or a rule that rewrote the path itself): its own values describe that URL, and
      are kept. Apache marks a CGI script's local redirect with REDIRECT_SCRIPT_NAME.
    """
    uri = meta.get("REQUEST_URI")
    script = meta.get("SCRIPT_NAME", "")
    if not uri or not script or "REDIRECT_SCRIPT_NAME" in meta:
        return
    requested = _request_path(uri)
    if requested is None:
        return
    # Apache merges slashes and dot segments before finding the script, REQUEST_URI keeps them.
    normal = _normalize_path(requested)
    if normal == script or normal.startswith(script + "/"):
        return
    path_info = meta.get("PATH_INFO", "")
    if not path_info:
        meta["SCRIPT_NAME"] = ""
        meta["PATH_INFO"] = requested
        return
    for candidate in (requested, normal):
        if candidate.endswith(path_info):
            meta["SCRIPT_NAME"] = candidate[: len(candidate) - len(path_info)].rstrip("/")
            return


def _request_path(uri: str) -> str | None:
    """The decoded path of REQUEST_URI; ``None`` for ``*`` (``OPTIONS *``) and garbage.

    Apache reports an absolute-form request target (``GET http://host/path``, RFC 9112
    section 3.2.2) as it came: ``REQUEST_URI=http://host/path``.
    """
    path = uri.partition("?")[0]
    if not path.startswith("/"):
        _, sep, rest = path.partition("://")
        if not sep:
            return None
        slash = rest.find("/")
        path = rest[slash:] if slash >= 0 else "/"
    return unquote_to_wsgi(path)


def _normalize_path(path: str) -> str:
    """Merge repeated slashes and resolve ``.`` and ``..`` segments (RFC 3986 section 5.2.4)."""
    if "//" not in path and "/." not in path:
        return path
    out: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    tail = "/" if path.endswith(("/", "/.", "/..")) and out else ""
    return "/" + "/".join(out) + tail


FRONT_END_FIXES = (fix_iis_path_info, fix_rewritten_script_name)


class RequestBody:
    """The script's stdin, bounded to the request body; what :class:`InputStream` reads from.

    Apache (mod_cgi, mod_cgid) writes the whole request body to the script before it reads
    any of the response. An app that answers without reading the body would either block on
    a full stdout pipe while Apache blocks on a full stdin pipe (until Apache's Timeout), or
    exit with the body unread, which resets Apache's connection to the script and cuts the
    response off. So :meth:`spool` moves whatever the app has not read off the pipe before
    the response's first byte goes out; the app can still read it afterwards.
    """

    __slots__ = ("raw", "left", "spooled")

    def __init__(self, raw: "IO[bytes]", length: "int | None") -> None:
        self.raw = raw
        self.left = length  # bytes still on the pipe; None: until end of stdin
        self.spooled: IO[bytes] | None = None

    def read(self, size: int = -1, /) -> bytes:
        left = self.left
        if left is not None:
            if left <= 0:
                return b""
            if size < 0 or size > left:
                size = left
        data = self.raw.read(size)
        if left is not None:
            self.left = left - len(data) if data else 0
        elif not data:
            self.left = 0
        return data

    def spool(self) -> None:
        """Read the rest of the body now, into memory (a temporary file past 1 MiB)."""
        if self.left == 0:
            return
        import tempfile

        spooled = tempfile.SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115 (see close)
        while chunk := self.read(65536):
            spooled.write(chunk)
        spooled.seek(0)
        self.raw = self.spooled = spooled
        self.left = None

    def close(self) -> None:
        """Close the spooled copy, if any (never the process's stdin)."""
        if self.spooled is not None:
            self.spooled.close()


class CGIWriter:
    """Write the response to stdout: ``Status:`` head, then the body as the app yields it.

    RFC 3875 section 6.2.2 local redirect: an app that answers ``200 OK`` with nothing but a
    ``Location`` header holding a local path (``/other?x=1``) and no body asks the server to
    serve that path instead. That response goes out as the bare ``Location`` line the RFC
    defines (lighttpd, with ``cgi.local-redir``, accepts no other header; Apache takes either).
    """

    __slots__ = ("out", "head", "local_redirect", "body")

    def __init__(self, out: "BinaryIO", body: "RequestBody | None" = None) -> None:
        self.out = out
        self.head = b""
        self.local_redirect = b""
        self.body = body

    def start(self, status: str, headers: list[tuple[str, str]]) -> None:
        if self.body is not None:
            self.body.spool()  # before the first byte out: see RequestBody
        self.head = cgi_response_head(status, headers)
        if len(headers) == 1 and status[:4] == "200 " and headers[0][0].lower() == "location":
            target = headers[0][1]
            if target[:1] == "/" and target[:2] != "//":
                self.local_redirect = f"Location: {target}\r\n\r\n".encode("latin-1")

    def write(self, data: bytes) -> None:
        if self.head:
            data, self.head = self.head + data, b""
        self.out.write(data)
        self.out.flush()  # a streamed response reaches the client as it is produced

    def finish(self, data: bytes) -> None:
        if self.head:
            head = self.local_redirect if self.local_redirect and not data else self.head
            data, self.head = head + data, b""
        self.out.write(data)
        self.out.flush()


def _bad_request(out: "BinaryIO", message: str) -> "Outcome":
    body = f"Bad Request: {message}\n".encode("latin-1", "replace")
    out.write(
        cgi_response_head(
            "400 Bad Request",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        + body
    )
    out.flush()
    return Outcome(400, len(body), True)


def run(
    app: "WSGIApplication",
    *,
    debug: bool = False,
    freeze_gc: bool = True,
    forwarded_allow_ips: "str | None" = None,
    environ: "Mapping[str, str] | None" = None,
    stdin: "BinaryIO | None" = None,
    stdout: "BinaryIO | None" = None,
) -> "Outcome":
    """Answer the one CGI request this process was started for.

    ``environ``, ``stdin`` and ``stdout`` default to the process's own; tests pass their own.
    ``freeze_gc``: when answering the process's own request (no ``environ`` given), move every
    object that exists before the app is called out of the garbage collector's reach
    (:func:`gc.freeze`), so that neither a collection during the request nor the one at exit
    traverses them: 10-13 % of a hello-world CGI hit's CPU, about 8 % of a Flask one's
    (docs/benchmarks.md). They would live until the exit anyway; what the request creates is
    collected as usual. The cost: a reference cycle created before the request (at import
    time) that holds an object with a finalizer does not see it run at exit, which Python does
    not promise either. ``freeze_gc=False`` keeps the interpreter's default.
    ``forwarded_allow_ips``: proxies (``"10.0.0.5, 10.1.0.0/16"`` or ``"*"``) whose
    ``X-Forwarded-Proto`` sets ``wsgi.url_scheme`` (see :mod:`wsgigate.forwarded`).
    """
    if environ is None:
        meta = read_environ()
        if "HTTP_PROXY" in meta:
            drop_httpoxy()  # the app's outgoing HTTP requests read os.environ
    else:
        meta = dict(environ)
    out = stdout if stdout is not None else sys.stdout.buffer
    for fix in FRONT_END_FIXES:
        fix(meta)
    try:
        length = content_length(meta)
    except Exception as exc:
        from wsgigate.errors import ProtocolError  # not imported on the success path

        if not isinstance(exc, ProtocolError):
            raise
        return _bad_request(out, str(exc))
    # RFC 3875 section 4.2: without CONTENT_LENGTH there is no body to read; but Apache hands a
    # chunked request body to the script de-chunked, without CONTENT_LENGTH: it ends where
    # stdin ends.
    if length is None and not meta.get("HTTP_TRANSFER_ENCODING"):
        length = 0
    body = RequestBody(stdin if stdin is not None else sys.stdin.buffer, length)
    scheme = None
    if forwarded_allow_ips is not None:
        from wsgigate.forwarded import ForwardedScheme

        scheme = ForwardedScheme(forwarded_allow_ips)(meta)
    env = build_environ(
        meta,
        stdin=InputStream(body, length),
        errors=ErrorStream(),
        multithread=False,
        multiprocess=True,
        run_once=True,
        url_scheme=scheme,
    )
    if freeze_gc and environ is None:
        import gc  # built in: no file to find or load

        gc.freeze()
    try:
        return run_app(app, env, CGIWriter(out, body), debug=debug)
    finally:
        body.close()
