"""wsgigate.cgi: the front-end fix-ups against the meta-variables real servers send, and run().

The ``*_`` dictionaries below are the complete CGI environments captured on 2026-11-23 from
the real servers this repository's deploy/ configs start (lighttpd 1.4.69 mod_cgi, Apache
2.4.71 mod_cgid, Debian), with a script that dumped ``os.environb``; only the document root
(now /srv/www), the port (now 8080) and the process's own PATH/LC_CTYPE/PWD/REMOTE_PORT were
replaced or dropped. tests/integration/test_cgi_servers.py sends the same requests through the
same servers end to end. IIS cannot run here: its fixtures follow Microsoft's documentation
(KB Q186803: "a CGI program at the URL http://localhost/foo.cgi/default.htm receives
/foo.cgi/default.htm in PATH_INFO"; AllowPathInfoForScriptMappings, IIS 6.0 SDK).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import ROOT
from wsgigate import cgi

# --- captured from lighttpd 1.4.69 (deploy/lighttpd/cgi.conf) --------------------------------
# GET /cgi-bin/app.cgi/some/caf%C3%A9?x=1&x=2 (with a "Proxy: http://evil" header)
# GET /some/caf%C3%A9?x=1&x=2 (url.rewrite-once to /cgi-bin/app.cgi/some/caf%C3%A9?x=1&x=2)
# GET / (rewritten to /cgi-bin/app.cgi/)
# POST /cgi-bin/app.cgi/up with a chunked body of 5 bytes
# --- captured from Apache 2.4.71 mod_cgid (deploy/apache/cgi.conf) ---------------------------
# the same first request; GET /site/some/caf%C3%A9?x=1&x=2 and GET /site/ through
# deploy/apache/shared-hosting/.htaccess; the chunked POST; GET /cgi-bin//app.cgi/a
# (Apache's REDIRECT_* copies of the process's own PATH and REMOTE_PORT are dropped too.)

LIGHTTPD_SCRIPT = {
    "CONTENT_LENGTH": "0",
    "DOCUMENT_ROOT": "/srv/www",
    "GATEWAY_INTERFACE": "CGI/1.1",
    "HTTP_ACCEPT_ENCODING": "identity",
    "HTTP_HOST": "127.0.0.1:8080",
    "PATH_INFO": "/some/caf\xc3\xa9",
    "PATH_TRANSLATED": "/srv/www/some/caf\xc3\xa9",
    "QUERY_STRING": "x=1&x=2",
    "REDIRECT_STATUS": "200",
    "REMOTE_ADDR": "127.0.0.1",
    "REQUEST_METHOD": "GET",
    "REQUEST_SCHEME": "http",
    "REQUEST_URI": "/cgi-bin/app.cgi/some/caf%C3%A9?x=1&x=2",
    "SCRIPT_FILENAME": "/srv/www/cgi-bin/app.cgi",
    "SCRIPT_NAME": "/cgi-bin/app.cgi",
    "SERVER_ADDR": "127.0.0.1",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_SOFTWARE": "lighttpd/1.4.69",
}

LIGHTTPD_REWRITE = {
    "CONTENT_LENGTH": "0",
    "DOCUMENT_ROOT": "/srv/www",
    "GATEWAY_INTERFACE": "CGI/1.1",
    "HTTP_ACCEPT_ENCODING": "identity",
    "HTTP_HOST": "127.0.0.1:8080",
    "PATH_INFO": "/some/caf\xc3\xa9",
    "PATH_TRANSLATED": "/srv/www/some/caf\xc3\xa9",
    "QUERY_STRING": "x=1&x=2",
    "REDIRECT_STATUS": "200",
    "REDIRECT_URI": "/cgi-bin/app.cgi/some/caf%C3%A9?x=1&x=2",
    "REMOTE_ADDR": "127.0.0.1",
    "REQUEST_METHOD": "GET",
    "REQUEST_SCHEME": "http",
    "REQUEST_URI": "/some/caf%C3%A9?x=1&x=2",
    "SCRIPT_FILENAME": "/srv/www/cgi-bin/app.cgi",
    "SCRIPT_NAME": "/cgi-bin/app.cgi",
    "SERVER_ADDR": "127.0.0.1",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_SOFTWARE": "lighttpd/1.4.69",
}

LIGHTTPD_REWRITE_ROOT = {
    "CONTENT_LENGTH": "0",
    "DOCUMENT_ROOT": "/srv/www",
    "GATEWAY_INTERFACE": "CGI/1.1",
    "HTTP_ACCEPT_ENCODING": "identity",
    "HTTP_HOST": "127.0.0.1:8080",
    "PATH_INFO": "/",
    "PATH_TRANSLATED": "/srv/www/",
    "QUERY_STRING": "",
    "REDIRECT_STATUS": "200",
    "REDIRECT_URI": "/cgi-bin/app.cgi/",
    "REMOTE_ADDR": "127.0.0.1",
    "REQUEST_METHOD": "GET",
    "REQUEST_SCHEME": "http",
    "REQUEST_URI": "/",
    "SCRIPT_FILENAME": "/srv/www/cgi-bin/app.cgi",
    "SCRIPT_NAME": "/cgi-bin/app.cgi",
    "SERVER_ADDR": "127.0.0.1",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_SOFTWARE": "lighttpd/1.4.69",
}

LIGHTTPD_CHUNKED = {
    "CONTENT_LENGTH": "5",
    "DOCUMENT_ROOT": "/srv/www",
    "GATEWAY_INTERFACE": "CGI/1.1",
    "HTTP_ACCEPT_ENCODING": "identity",
    "HTTP_HOST": "127.0.0.1:8080",
    "PATH_INFO": "/up",
    "PATH_TRANSLATED": "/srv/www/up",
    "QUERY_STRING": "",
    "REDIRECT_STATUS": "200",
    "REMOTE_ADDR": "127.0.0.1",
    "REQUEST_METHOD": "POST",
    "REQUEST_SCHEME": "http",
    "REQUEST_URI": "/cgi-bin/app.cgi/up",
    "SCRIPT_FILENAME": "/srv/www/cgi-bin/app.cgi",
    "SCRIPT_NAME": "/cgi-bin/app.cgi",
    "SERVER_ADDR": "127.0.0.1",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_SOFTWARE": "lighttpd/1.4.69",
}

APACHE_SCRIPT = {
    "CONTEXT_DOCUMENT_ROOT": "/srv/www/cgi-bin/",
    "CONTEXT_PREFIX": "/cgi-bin/",
    "DOCUMENT_ROOT": "/srv/www",
    "GATEWAY_INTERFACE": "CGI/1.1",
    "HTTP_ACCEPT_ENCODING": "identity",
    "HTTP_HOST": "127.0.0.1:8080",
    "PATH_INFO": "/some/caf\xc3\xa9",
    "PATH_TRANSLATED": "/srv/www/some/caf\xc3\xa9",
    "QUERY_STRING": "x=1&x=2",
    "REMOTE_ADDR": "127.0.0.1",
    "REQUEST_METHOD": "GET",
    "REQUEST_SCHEME": "http",
    "REQUEST_URI": "/cgi-bin/app.cgi/some/caf%C3%A9?x=1&x=2",
    "SCRIPT_FILENAME": "/srv/www/cgi-bin/app.cgi",
    "SCRIPT_NAME": "/cgi-bin/app.cgi",
    "SERVER_ADDR": "127.0.0.1",
    "SERVER_ADMIN": "[no address given]",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_SOFTWARE": "Apache/2.4.71 (Debian)",
}

APACHE_REWRITE = {
    "CONTEXT_DOCUMENT_ROOT": "/srv/www",
    "CONTEXT_PREFIX": "",
    "DOCUMENT_ROOT": "/srv/www",
    "GATEWAY_INTERFACE": "CGI/1.1",
    "HTTP_ACCEPT_ENCODING": "identity",
    "HTTP_HOST": "127.0.0.1:8080",
    "PATH_INFO": "/some/caf\xc3\xa9",
    "PATH_TRANSLATED": "/srv/www/some/caf\xc3\xa9",
    "QUERY_STRING": "x=1&x=2",
    "REDIRECT_QUERY_STRING": "x=1&x=2",
    "REDIRECT_STATUS": "200",
    "REDIRECT_URL": "/site/some/caf\xc3\xa9",
    "REMOTE_ADDR": "127.0.0.1",
    "REQUEST_METHOD": "GET",
    "REQUEST_SCHEME": "http",
    "REQUEST_URI": "/site/some/caf%C3%A9?x=1&x=2",
    "SCRIPT_FILENAME": "/srv/www/site/app.cgi",
    "SCRIPT_NAME": "/site/app.cgi",
    "SERVER_ADDR": "127.0.0.1",
    "SERVER_ADMIN": "[no address given]",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_SOFTWARE": "Apache/2.4.71 (Debian)",
}

APACHE_REWRITE_ROOT = {
    "CONTEXT_DOCUMENT_ROOT": "/srv/www",
    "CONTEXT_PREFIX": "",
    "DOCUMENT_ROOT": "/srv/www",
    "GATEWAY_INTERFACE": "CGI/1.1",
    "HTTP_ACCEPT_ENCODING": "identity",
    "HTTP_HOST": "127.0.0.1:8080",
    "PATH_INFO": "/",
    "PATH_TRANSLATED": "/srv/www/",
    "QUERY_STRING": "",
    "REDIRECT_STATUS": "200",
    "REDIRECT_URL": "/site/",
    "REMOTE_ADDR": "127.0.0.1",
    "REQUEST_METHOD": "GET",
    "REQUEST_SCHEME": "http",
    "REQUEST_URI": "/site/",
    "SCRIPT_FILENAME": "/srv/www/site/app.cgi",
    "SCRIPT_NAME": "/site/app.cgi",
    "SERVER_ADDR": "127.0.0.1",
    "SERVER_ADMIN": "[no address given]",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_SOFTWARE": "Apache/2.4.71 (Debian)",
}

APACHE_CHUNKED = {
    "CONTEXT_DOCUMENT_ROOT": "/srv/www/cgi-bin/",
    "CONTEXT_PREFIX": "/cgi-bin/",
    "DOCUMENT_ROOT": "/srv/www",
    "GATEWAY_INTERFACE": "CGI/1.1",
    "HTTP_ACCEPT_ENCODING": "identity",
    "HTTP_HOST": "127.0.0.1:8080",
    "HTTP_TRANSFER_ENCODING": "chunked",
    "PATH_INFO": "/up",
    "PATH_TRANSLATED": "/srv/www/up",
    "QUERY_STRING": "",
    "REMOTE_ADDR": "127.0.0.1",
    "REQUEST_METHOD": "POST",
    "REQUEST_SCHEME": "http",
    "REQUEST_URI": "/cgi-bin/app.cgi/up",
    "SCRIPT_FILENAME": "/srv/www/cgi-bin/app.cgi",
    "SCRIPT_NAME": "/cgi-bin/app.cgi",
    "SERVER_ADDR": "127.0.0.1",
    "SERVER_ADMIN": "[no address given]",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_SOFTWARE": "Apache/2.4.71 (Debian)",
}

APACHE_SLASHES = {
    "CONTEXT_DOCUMENT_ROOT": "/srv/www/cgi-bin/",
    "CONTEXT_PREFIX": "/cgi-bin/",
    "DOCUMENT_ROOT": "/srv/www",
    "GATEWAY_INTERFACE": "CGI/1.1",
    "HTTP_ACCEPT_ENCODING": "identity",
    "HTTP_HOST": "127.0.0.1:8080",
    "PATH_INFO": "/a",
    "PATH_TRANSLATED": "/srv/www/a",
    "QUERY_STRING": "",
    "REMOTE_ADDR": "127.0.0.1",
    "REQUEST_METHOD": "GET",
    "REQUEST_SCHEME": "http",
    "REQUEST_URI": "/cgi-bin//app.cgi/a",
    "SCRIPT_FILENAME": "/srv/www/cgi-bin/app.cgi",
    "SCRIPT_NAME": "/cgi-bin/app.cgi",
    "SERVER_ADDR": "127.0.0.1",
    "SERVER_ADMIN": "[no address given]",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_SOFTWARE": "Apache/2.4.71 (Debian)",
}

# RFC 3875 local redirect: GET /cgi-bin/redir.cgi/start?orig=1, whose script answered only
# "Location: /cgi-bin/app.cgi/landed?from=local"; this is what app.cgi then received
# (lighttpd with cgi.local-redir enabled, Apache mod_cgid).
LIGHTTPD_LOCAL_REDIRECT = {
    "CONTENT_LENGTH": "0",
    "DOCUMENT_ROOT": "/srv/www",
    "GATEWAY_INTERFACE": "CGI/1.1",
    "HTTP_ACCEPT_ENCODING": "identity",
    "HTTP_HOST": "127.0.0.1:8080",
    "PATH_INFO": "/landed",
    "PATH_TRANSLATED": "/srv/www/landed",
    "QUERY_STRING": "from=local",
    "REDIRECT_STATUS": "200",
    "REDIRECT_URI": "/cgi-bin/app.cgi/landed?from=local",
    "REMOTE_ADDR": "127.0.0.1",
    "REQUEST_METHOD": "GET",
    "REQUEST_SCHEME": "http",
    "REQUEST_URI": "/cgi-bin/redir.cgi/start?orig=1",
    "SCRIPT_FILENAME": "/srv/www/cgi-bin/app.cgi",
    "SCRIPT_NAME": "/cgi-bin/app.cgi",
    "SERVER_ADDR": "127.0.0.1",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_SOFTWARE": "lighttpd/1.4.69",
}

APACHE_LOCAL_REDIRECT = {
    "CONTEXT_DOCUMENT_ROOT": "/srv/www/cgi-bin/",
    "CONTEXT_PREFIX": "/cgi-bin/",
    "DOCUMENT_ROOT": "/srv/www",
    "GATEWAY_INTERFACE": "CGI/1.1",
    "HTTP_ACCEPT_ENCODING": "identity",
    "HTTP_HOST": "127.0.0.1:8080",
    "PATH_INFO": "/landed",
    "PATH_TRANSLATED": "/srv/www/landed",
    "QUERY_STRING": "from=local",
    "REDIRECT_CONTEXT_DOCUMENT_ROOT": "/srv/www/cgi-bin/",
    "REDIRECT_CONTEXT_PREFIX": "/cgi-bin/",
    "REDIRECT_DOCUMENT_ROOT": "/srv/www",
    "REDIRECT_GATEWAY_INTERFACE": "CGI/1.1",
    "REDIRECT_HTTP_ACCEPT_ENCODING": "identity",
    "REDIRECT_HTTP_HOST": "127.0.0.1:8080",
    "REDIRECT_PATH_INFO": "/start",
    "REDIRECT_PATH_TRANSLATED": "/srv/www/start",
    "REDIRECT_QUERY_STRING": "orig=1",
    "REDIRECT_REMOTE_ADDR": "127.0.0.1",
    "REDIRECT_REQUEST_METHOD": "GET",
    "REDIRECT_REQUEST_SCHEME": "http",
    "REDIRECT_REQUEST_URI": "/cgi-bin/redir.cgi/start?orig=1",
    "REDIRECT_SCRIPT_FILENAME": "/srv/www/cgi-bin/redir.cgi",
    "REDIRECT_SCRIPT_NAME": "/cgi-bin/redir.cgi",
    "REDIRECT_SERVER_ADDR": "127.0.0.1",
    "REDIRECT_SERVER_ADMIN": "[no address given]",
    "REDIRECT_SERVER_NAME": "127.0.0.1",
    "REDIRECT_SERVER_PORT": "8080",
    "REDIRECT_SERVER_PROTOCOL": "HTTP/1.1",
    "REDIRECT_SERVER_SOFTWARE": "Apache/2.4.71 (Debian)",
    "REDIRECT_STATUS": "200",
    "REDIRECT_URL": "/cgi-bin/redir.cgi/start",
    "REMOTE_ADDR": "127.0.0.1",
    "REQUEST_METHOD": "GET",
    "REQUEST_SCHEME": "http",
    "REQUEST_URI": "/cgi-bin/redir.cgi/start?orig=1",
    "SCRIPT_FILENAME": "/srv/www/cgi-bin/app.cgi",
    "SCRIPT_NAME": "/cgi-bin/app.cgi",
    "SERVER_ADDR": "127.0.0.1",
    "SERVER_ADMIN": "[no address given]",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_SOFTWARE": "Apache/2.4.71 (Debian)",
}

# Same server and request as APACHE_SCRIPT, sent in absolute form
# (curl --request-target http://127.0.0.1:8080/cgi-bin/app.cgi/abs): Apache passes the
# request target on as REQUEST_URI unchanged.
APACHE_ABSOLUTE = {
    **APACHE_SCRIPT,
    "PATH_INFO": "/abs",
    "PATH_TRANSLATED": "/srv/www/abs",
    "QUERY_STRING": "",
    "REQUEST_URI": "http://127.0.0.1:8080/cgi-bin/app.cgi/abs",
}

# IIS 10 with a script map for *.py (AllowPathInfoForScriptMappings off, the default): no
# REQUEST_URI, and PATH_INFO repeats the script's path.
IIS_SCRIPT = {
    "CONTENT_LENGTH": "0",
    "GATEWAY_INTERFACE": "CGI/1.1",
    "HTTP_HOST": "localhost",
    "PATH_INFO": "/app.py/some/path",
    "PATH_TRANSLATED": "C:\\inetpub\\wwwroot\\app.py\\some\\path",
    "QUERY_STRING": "x=1",
    "REMOTE_ADDR": "127.0.0.1",
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "/app.py",
    "SERVER_NAME": "localhost",
    "SERVER_PORT": "80",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_SOFTWARE": "Microsoft-IIS/10.0",
}


def fixed(meta: dict[str, str], **changes: str) -> tuple[str, str]:
    """(SCRIPT_NAME, PATH_INFO) after every front-end fix-up, as cgi.run() applies them."""
    meta = {**meta, **changes}
    for fix in cgi.FRONT_END_FIXES:
        fix(meta)
    return meta["SCRIPT_NAME"], meta["PATH_INFO"]


CAFE = "/some/caf\xc3\xa9"  # PEP 3333: the UTF-8 bytes of "/some/café" as latin-1


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        (LIGHTTPD_SCRIPT, ("/cgi-bin/app.cgi", CAFE)),
        (LIGHTTPD_REWRITE, ("", CAFE)),
        (LIGHTTPD_REWRITE_ROOT, ("", "/")),
        (LIGHTTPD_CHUNKED, ("/cgi-bin/app.cgi", "/up")),
        (APACHE_SCRIPT, ("/cgi-bin/app.cgi", CAFE)),
        (APACHE_REWRITE, ("/site", CAFE)),
        (APACHE_REWRITE_ROOT, ("/site", "/")),
        (APACHE_CHUNKED, ("/cgi-bin/app.cgi", "/up")),
        (APACHE_SLASHES, ("/cgi-bin/app.cgi", "/a")),
        (APACHE_ABSOLUTE, ("/cgi-bin/app.cgi", "/abs")),
        (IIS_SCRIPT, ("/app.py", "/some/path")),
        (LIGHTTPD_LOCAL_REDIRECT, ("/cgi-bin/app.cgi", "/landed")),
        (APACHE_LOCAL_REDIRECT, ("/cgi-bin/app.cgi", "/landed")),
    ],
    ids=[
        "lighttpd-script",
        "lighttpd-rewrite",
        "lighttpd-rewrite-root",
        "lighttpd-chunked",
        "apache-script",
        "apache-htaccess-rewrite",
        "apache-htaccess-rewrite-root",
        "apache-chunked",
        "apache-repeated-slashes",
        "apache-absolute-form",
        "iis-script-map",
        "lighttpd-local-redirect",
        "apache-local-redirect",
    ],
)
def test_front_end_fixes_on_real_meta_variables(
    meta: dict[str, str], expected: tuple[str, str]
) -> None:
    assert fixed(meta) == expected


def test_fixes_leave_the_captured_dict_alone() -> None:
    before = dict(APACHE_REWRITE)
    fixed(APACHE_REWRITE)
    assert before == APACHE_REWRITE


# --- fix_iis_path_info ----------------------------------------------------------------------


def test_iis_without_extra_path() -> None:
    assert fixed(IIS_SCRIPT, PATH_INFO="/app.py") == ("/app.py", "")


def test_iis_with_path_info_for_script_mappings_on() -> None:
    assert fixed(IIS_SCRIPT, PATH_INFO="/some/path") == ("/app.py", "/some/path")


def test_iis_compares_case_insensitively() -> None:
    assert fixed(IIS_SCRIPT, SCRIPT_NAME="/App.py") == ("/App.py", "/some/path")


def test_iis_strips_only_a_whole_segment() -> None:
    """``/app.pyc/x`` does not start with the script ``/app.py``: a prefix test would cut it."""
    meta = {**IIS_SCRIPT, "PATH_INFO": "/app.pyc/x"}
    cgi.fix_iis_path_info(meta)
    assert meta["PATH_INFO"] == "/app.pyc/x"


def test_iis_fix_is_for_iis_only() -> None:
    """Apache's PATH_INFO may legitimately repeat the script path: leave it."""
    meta = {**APACHE_SCRIPT, "PATH_INFO": "/cgi-bin/app.cgi/x"}
    cgi.fix_iis_path_info(meta)
    assert meta["PATH_INFO"] == "/cgi-bin/app.cgi/x"


# --- fix_rewritten_script_name ----------------------------------------------------------------


def test_rewrite_with_lowercase_escapes_and_a_slash_in_the_query() -> None:
    assert fixed(LIGHTTPD_REWRITE, REQUEST_URI="/some/caf%c3%a9?a=/b") == ("", CAFE)


def test_rewrite_that_changed_the_path_keeps_the_servers_values() -> None:
    """``^old/(.*)$ app.cgi/new/$1``: no way to tell the mount point; don't invent one."""
    meta = {**APACHE_REWRITE, "REQUEST_URI": "/site/old/x", "PATH_INFO": "/new/x"}
    assert fixed(meta) == ("/site/app.cgi", "/new/x")


def test_front_controller_rule_routes_on_the_whole_path() -> None:
    """``RewriteRule ^ app.cgi`` (no PATH_INFO): the app sees the requested path."""
    meta = {**APACHE_REWRITE, "REQUEST_URI": "/site/blog/caf%C3%A9?p=2", "PATH_INFO": ""}
    assert fixed(meta) == ("", "/site/blog/caf\xc3\xa9")


def test_rewrite_with_repeated_slashes() -> None:
    """Apache merges ``//`` in PATH_INFO, REQUEST_URI keeps them: still mounted at /site."""
    meta = {**APACHE_REWRITE, "REQUEST_URI": "/site//a//b", "PATH_INFO": "/a/b"}
    assert fixed(meta) == ("/site", "/a/b")


def test_apache_local_redirect_even_when_the_tail_matches() -> None:
    meta = {**APACHE_LOCAL_REDIRECT, "REQUEST_URI": "/cgi-bin/old.cgi/landed"}
    assert fixed(meta) == ("/cgi-bin/app.cgi", "/landed")


def test_dot_segments_are_not_a_rewrite() -> None:
    meta = {**APACHE_SCRIPT, "REQUEST_URI": "/cgi-bin/./x/../app.cgi/p", "PATH_INFO": "/p"}
    assert fixed(meta) == ("/cgi-bin/app.cgi", "/p")


def test_options_asterisk_is_left_alone() -> None:
    meta = {**APACHE_SCRIPT, "REQUEST_METHOD": "OPTIONS", "REQUEST_URI": "*", "PATH_INFO": ""}
    assert fixed(meta) == ("/cgi-bin/app.cgi", "")


def test_absolute_form_without_path() -> None:
    meta = {**APACHE_ABSOLUTE, "REQUEST_URI": "http://127.0.0.1:8080?x=1", "PATH_INFO": "/"}
    assert fixed(meta) == ("", "/")


def test_no_request_uri_no_change() -> None:
    meta = {k: v for k, v in APACHE_REWRITE.items() if k != "REQUEST_URI"}
    assert fixed(meta) == ("/site/app.cgi", CAFE)


segment = st.text(
    st.characters(codec="latin-1", exclude_characters="/?#\x00"), min_size=1, max_size=8
).filter(lambda text: text not in (".", ".."))
path = st.lists(segment, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
mount = st.lists(st.text("abcxyz-_", min_size=1, max_size=6), max_size=3).map(
    lambda parts: "".join("/" + part for part in parts)
)


def on_the_wire(native: str) -> str:
    """How a client sends a PEP 3333 native path: its bytes, percent-encoded."""
    return quote(native.encode("latin-1"), safe="/")


@given(path_info=path, query=st.sampled_from(["", "?a=1&a=2&b="]))
def test_direct_requests_are_left_alone(path_info: str, query: str) -> None:
    meta = {
        **APACHE_SCRIPT,
        "PATH_INFO": path_info,
        "REQUEST_URI": on_the_wire("/cgi-bin/app.cgi" + path_info) + query,
    }
    assert fixed(meta) == ("/cgi-bin/app.cgi", path_info)


@given(mount_point=mount, path_info=path)
def test_rewrites_are_undone(mount_point: str, path_info: str) -> None:
    """Any mount point, any PATH_INFO (even one that repeats the script's name)."""
    meta = {
        **APACHE_REWRITE,
        "PATH_INFO": path_info,
        "REQUEST_URI": on_the_wire(mount_point + path_info) + "?q",
    }
    assert fixed(meta) == (mount_point, path_info)


# --- run(): one whole request ---------------------------------------------------------------


def call(
    meta: dict[str, str], stdin: bytes = b"", app: Any = None, **kwargs: Any
) -> tuple[bytes, dict[str, Any]]:
    """Run one CGI request through cgi.run(); return stdout and the environ the app saw."""
    seen: dict[str, Any] = {}

    def echo(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        seen.update(environ)
        length = environ.get("CONTENT_LENGTH")
        stream = environ["wsgi.input"]
        body = stream.read(int(length)) if length else stream.read()
        seen["body"] = body
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]

    out = io.BytesIO()
    cgi.run(app or echo, environ=meta, stdin=io.BytesIO(stdin), stdout=out, **kwargs)
    return out.getvalue(), seen


def test_run_applies_the_fixes() -> None:
    _, seen = call(APACHE_REWRITE)
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("/site", CAFE)
    assert seen["QUERY_STRING"] == "x=1&x=2"
    assert (seen["wsgi.multithread"], seen["wsgi.multiprocess"], seen["wsgi.run_once"]) == (
        False,
        True,
        True,
    )


def test_apache_chunked_body_is_read_to_the_end() -> None:
    """Apache sends no CONTENT_LENGTH for a chunked request; the body is all of stdin."""
    out, seen = call(APACHE_CHUNKED, stdin=b"abcde")
    assert seen["body"] == b"abcde"
    assert out.endswith(b"\r\n\r\nabcde")


def test_body_stops_at_content_length() -> None:
    _, seen = call(LIGHTTPD_CHUNKED, stdin=b"abcdeEXTRA")
    assert seen["body"] == b"abcde"
    assert seen["wsgi.input"].read() == b""


def test_no_content_length_no_body() -> None:
    meta = {k: v for k, v in APACHE_SCRIPT.items() if k != "CONTENT_LENGTH"}
    _, seen = call(meta, stdin=b"not for the app")
    assert seen["body"] == b""


class WatchedStdin(io.BytesIO):
    """stdin that records how much of it was read by the time stdout got its first byte."""

    def __init__(self, data: bytes, out: WatchedStdout) -> None:
        super().__init__(data)
        out.stdin = self


class WatchedStdout(io.BytesIO):
    stdin: io.BytesIO
    read_before_output: int | None = None

    def write(self, data: Any) -> int:
        if self.read_before_output is None:
            self.read_before_output = self.stdin.tell()
        return super().write(data)


@pytest.mark.parametrize("size", [10, 3 << 20])  # in memory, and spilled to a temporary file
@pytest.mark.parametrize("chunked", [False, True])
def test_unread_body_is_off_stdin_before_the_response(size: int, chunked: bool) -> None:
    """Apache writes the whole body before reading the response: never leave it on the pipe."""
    body = bytes(i % 253 for i in range(size))
    meta = APACHE_CHUNKED if chunked else {**APACHE_SCRIPT, "CONTENT_LENGTH": str(size)}
    late: list[bytes] = []

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first"
        late.append(environ["wsgi.input"].read(size + 1))  # reading after output still works

    out = WatchedStdout()
    stdin = WatchedStdin(body + (b"" if chunked else b"TRAILING"), out)
    cgi.run(app, environ=meta, stdin=stdin, stdout=out)
    assert out.read_before_output == size
    assert late == [body]
    assert out.getvalue().endswith(b"\r\n\r\nfirst")


def test_httpoxy() -> None:
    """Servers drop the Proxy header (none of the captures has it); wsgigate does too."""
    _, seen = call({**APACHE_SCRIPT, "HTTP_PROXY": "http://evil.example:3128"})
    assert "HTTP_PROXY" not in seen


# Run in a fresh process: read_environ() reads the real process environment.
_ENVIRON_PROBE = """
import json, os, sys
from wsgigate.cgi import read_environ, run
os.environ["SET_AFTER_START"] = "late"
os.environ.pop("DROPPED_AFTER_START", None)
os.environb[b"RAW_BYTES"] = b"caf\\xc3\\xa9 \\xff"
meta = read_environ()
expected = {k.decode("latin-1"): v.decode("latin-1") for k, v in os.environb.items()}
seen = {}

def app(environ, start_response):
    seen.update(environ=environ.get("HTTP_PROXY"), process=os.environ.get("HTTP_PROXY"))
    start_response("204 No Content", [])
    return []

if "run" in sys.argv:
    run(app)
    sys.stderr.write(json.dumps(seen))
else:
    print(json.dumps({"same": meta == expected, "meta": meta}))
"""


def _probe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _ENVIRON_PROBE, *args],
        env={**env, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        check=True,
    )


def test_read_environ_follows_the_live_process_environment() -> None:
    """Variables set, deleted and given raw non-UTF-8 bytes after start-up are read as latin-1."""
    result = _probe({"EMPTY": "", "DROPPED_AFTER_START": "x", "QUERY_STRING": "a=1&b=%20"})
    seen = json.loads(result.stdout)
    assert seen["same"] is True
    meta = seen["meta"]
    assert meta["SET_AFTER_START"] == "late"
    assert "DROPPED_AFTER_START" not in meta
    assert meta["RAW_BYTES"] == "caf\xc3\xa9 \xff"  # latin-1 view of the bytes, per PEP 3333
    assert meta["EMPTY"] == "" and meta["QUERY_STRING"] == "a=1&b=%20"


def test_read_environ_of_an_empty_environment() -> None:
    code = "from wsgigate.cgi import read_environ; import os; os.environ.clear(); "
    code += "print(repr(read_environ()))"
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env={"PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "{}"


def test_httpoxy_in_a_real_cgi_process() -> None:
    """A Proxy: header reaches neither the app's environ nor the process environment."""
    meta = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET", "SERVER_NAME": "h"}
    meta |= {"SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1"}
    result = _probe({**meta, "HTTP_PROXY": "http://evil.example:3128"}, "run")
    assert json.loads(result.stderr) == {"environ": None, "process": None}
    assert result.stdout.startswith("Status: 204 No Content")


_FREEZE_PROBE = """
import gc, sys
from wsgigate.cgi import run

class Finalized:
    def __del__(self):
        sys.stderr.write("request garbage finalized\\n")

def app(environ, start_response):
    garbage = Finalized()
    garbage.cycle = garbage  # only the cyclic collector can free it
    del garbage
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(gc.get_freeze_count()).encode()]

run(app, freeze_gc="keep" not in sys.argv)
"""


@pytest.mark.parametrize("freeze", [True, False])
def test_gc_freeze_leaves_what_the_request_creates_collectable(freeze: bool) -> None:
    """Objects from before the request are frozen out of the collector (default); a cycle the
    request leaves behind is still collected, and its finalizer runs, at exit."""
    meta = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET", "SERVER_NAME": "h"}
    meta |= {"SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1"}
    result = subprocess.run(
        [sys.executable, "-c", _FREEZE_PROBE, *([] if freeze else ["keep"])],
        env={**meta, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        check=True,
    )
    frozen = int(result.stdout.split()[-1])
    assert (frozen > 1000) if freeze else (frozen == 0)
    assert result.stderr.count("request garbage finalized") == 1


def test_gc_is_not_frozen_when_the_request_is_given() -> None:
    """Tests and `wsgigate check` pass their own environ: their long-lived process is left alone."""
    import gc

    before = gc.get_freeze_count()
    call(APACHE_SCRIPT)
    assert gc.get_freeze_count() == before


def test_invalid_content_length_is_a_400_without_calling_the_app() -> None:
    called = []

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        called.append(True)
        return []

    out, _ = call({**LIGHTTPD_CHUNKED, "CONTENT_LENGTH": "5x"}, stdin=b"abcde", app=app)
    assert out.startswith(b"Status: 400 Bad Request\r\n")
    assert not called


def test_redirect_keeps_its_status() -> None:
    """A Status line makes a local Location a client redirect, never RFC 3875's local one."""

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("302 Found", [("Location", "/elsewhere"), ("Content-Type", "text/plain")])
        return [b"moved"]

    out, _ = call(APACHE_SCRIPT, app=app)
    assert out == (
        b"Status: 302 Found\r\nLocation: /elsewhere\r\nContent-Type: text/plain\r\n\r\nmoved"
    )


def test_local_redirect_response_is_the_bare_location_line() -> None:
    """RFC 3875 6.2.2 local-redir-response: ``Location`` alone; lighttpd wants no Status."""

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Location", "/cgi-bin/app.cgi/landed?from=local")])
        return []

    out, _ = call(APACHE_SCRIPT, app=app)
    assert out == b"Location: /cgi-bin/app.cgi/landed?from=local\r\n\r\n"


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        ("200 OK", [("Location", "/x"), ("Content-Type", "text/plain")], b""),
        ("200 OK", [("Location", "/x")], b"body"),
        ("200 OK", [("Location", "//evil.example/x")], b""),
        ("200 OK", [("Location", "http://example.com/x")], b""),
        ("201 Created", [("Location", "/x")], b""),
    ],
)
def test_not_a_local_redirect(status: str, headers: list[tuple[str, str]], body: bytes) -> None:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response(status, headers)
        return [body]

    out, _ = call(APACHE_SCRIPT, app=app)
    assert out.startswith(f"Status: {status}\r\n".encode())
    assert out.endswith(b"\r\n\r\n" + body)


def test_binary_body_untouched() -> None:
    body = bytes(range(256)) * 4
    out, _ = call(LIGHTTPD_CHUNKED | {"CONTENT_LENGTH": str(len(body))}, stdin=body)
    assert out.endswith(b"\r\n\r\n" + body)


def test_app_error_is_a_plain_500(error_log: pytest.LogCaptureFixture) -> None:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        raise RuntimeError("secret detail")

    out, _ = call(APACHE_SCRIPT, app=app)
    assert out.startswith(b"Status: 500 Internal Server Error\r\n")
    assert b"secret detail" not in out
    assert "secret detail" in error_log.text
    out, _ = call(APACHE_SCRIPT, app=app, debug=True)
    assert b"RuntimeError: secret detail" in out


def test_cold_start_imports() -> None:
    """Every CGI hit pays for each import: wsgigate.cgi loads none of the heavy modules."""
    code = (
        "import sys; import wsgigate.cgi; "
        "heavy = ['typing', 'logging', 're', 'dataclasses', 'urllib.parse', 'email', 'json']; "
        "print(' '.join(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == ""
