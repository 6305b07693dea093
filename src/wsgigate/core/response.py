"""What an application may pass to ``start_response``, and the CGI-style response head.

CGI, FastCGI and SCGI all answer with the same head (``Status:`` line, headers, blank line), so
it is serialized here once.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from wsgigate.errors import ApplicationError

# RFC 9110 section 7.6.1: connection-specific headers belong to the server, not the application.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)

# RFC 9110 section 5.6.2 tchar.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

# Header names repeat across requests; remember the ones already proven valid (bounded).
_valid_names: dict[str, str] = {}
_VALID_NAMES_MAX = 512
# (name, value) pairs already proven valid -> -1, or the Content-Length they carry (bounded).
_valid_headers: dict[tuple[str, str], int] = {}
_VALID_HEADERS_MAX = 1024
# Status lines repeat too: line -> code once validated (bounded; the runner looks here first).
_statuses: dict[str, int] = {}


def _invalid(message: str) -> "ApplicationError":
    """The error for a broken response; wsgigate.errors is imported only when there is one."""
    from wsgigate.errors import ApplicationError

    return ApplicationError(message)


def validate_status(status: object) -> int:
    """Check a WSGI status line such as ``"200 OK"``; return the status code."""
    if type(status) is not str:
        raise _invalid(f"status must be str, not {type(status).__name__}")
    code = status[:3]
    if (
        len(status) < 4
        or status[3] != " "
        or not (code.isascii() and code.isdigit())
        or code[0] == "0"
        or not status.isprintable()
    ):
        raise _invalid(f"invalid status line {status!r}: expected e.g. '200 OK'")
    if not status.isascii():
        try:
            status.encode("latin-1")  # the head is serialized as latin-1 by every gateway
        except UnicodeEncodeError:
            raise _invalid(f"status line {status!r} is not latin-1") from None
    number = int(code)
    if len(_statuses) < 64:
        _statuses[status] = number
    return number


def _check_name(name: object) -> str:
    if type(name) is not str:
        raise _invalid(f"header name must be str, not {type(name).__name__}")
    if not name or not _TCHAR.issuperset(name):
        raise _invalid(f"invalid header name {name!r}")
    lower = name.lower()
    if lower in HOP_BY_HOP:
        raise _invalid(f"hop-by-hop header {name!r} is the server's to send, not the app's")
    if len(_valid_names) < _VALID_NAMES_MAX:
        _valid_names[name] = lower
    return lower


def _has_control(value: str) -> bool:
    """PEP 3333: no control characters in a header value (HTAB is allowed, as RFC 9110 does)."""
    return any((char < " " and char != "\t") or char == "\x7f" for char in value)


def validate_headers(headers: object) -> int | None:
    """Check the application's header list; return its Content-Length if it gave one."""
    if not isinstance(headers, list):
        raise _invalid(f"headers must be a list, not {type(headers).__name__}")
    length = None
    for item in headers:
        # Most headers repeat from one response to the next: a header seen valid before costs
        # one lookup (-1: valid, else the Content-Length it carries).
        if type(item) is tuple:
            try:
                known = _valid_headers.get(item)
            except TypeError:  # an unhashable member: the checks below say what is wrong
                known = None
            if known is not None:
                if known >= 0:
                    length = known
                continue
        if type(item) is not tuple or len(item) != 2:
            raise _invalid(f"header {item!r} is not a (name, value) tuple")
        name, value = item
        lower = (_valid_names.get(name) if type(name) is str else None) or _check_name(name)
        if type(value) is not str:
            raise _invalid(f"value of header {name!r} must be str, not {type(value).__name__}")
        if not value.isprintable() and _has_control(value):
            raise _invalid(f"value of header {name!r} contains a control character (CR, LF...)")
        if not value.isascii():
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                raise _invalid(
                    f"value of header {name!r} is not latin-1; encode it (RFC 8187, RFC 2047)"
                ) from None
        if lower == "content-length":
            if not (value.isascii() and value.isdigit()):
                raise _invalid(f"invalid Content-Length {value!r}")
            length = int(value)
            if len(_valid_headers) < _VALID_HEADERS_MAX:
                _valid_headers[item] = length
        elif len(_valid_headers) < _VALID_HEADERS_MAX:
            _valid_headers[item] = -1
    return length


def cgi_response_head(status: str, headers: "Iterable[tuple[str, str]]") -> bytes:
    """Serialize a CGI response head (RFC 3875 section 6): ``Status:``, headers, blank line."""
    parts = ["Status: ", status, "\r\n"]
    for name, value in headers:
        parts += (name, ": ", value, "\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("latin-1")
