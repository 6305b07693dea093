"""environ building (wsgigate.core): PEP 3333 native strings, httpoxy, scheme, host, streams."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsgigate.core import (
    ErrorStream,
    FileWrapper,
    InputStream,
    build_environ,
    content_length,
    unicode_to_wsgi,
    unquote_to_wsgi,
)
from wsgigate.errors import ProtocolError


def environ(meta: dict[str, str], **options: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "stdin": InputStream(io.BytesIO(b""), 0),
        "errors": ErrorStream(),
        "multithread": False,
        "multiprocess": True,
        "run_once": True,
    }
    kwargs.update(options)
    return build_environ(meta, **kwargs)


# -- latin-1 native strings ------------------------------------------------------------------


def test_unicode_to_wsgi_is_utf8_bytes_as_latin1() -> None:
    assert unicode_to_wsgi("/caf\u00e9") == "/caf\xc3\xa9"
    assert unicode_to_wsgi("/\u2603") == "/\xe2\x98\x83"
    assert unicode_to_wsgi("/plain") == "/plain"
    # every code point of the result is a byte value
    assert all(ord(c) < 256 for c in unicode_to_wsgi("/\U0001f600/\u00e9"))


def test_unicode_to_wsgi_keeps_undecodable_bytes() -> None:
    # os.fsdecode-style surrogates (bytes that were not UTF-8) go back to the original bytes
    assert unicode_to_wsgi("/\udcff") == "/\xff"


def test_unquote_to_wsgi_decodes_to_bytes_not_text() -> None:
    # a naive urllib.parse.unquote would give 'é' (one UTF-8-decoded character)
    assert unquote_to_wsgi("/caf%C3%A9") == "/caf\xc3\xa9"
    assert unquote_to_wsgi("/%e2%98%83") == "/\xe2\x98\x83"
    assert unquote_to_wsgi("/a%2Fb") == "/a/b"
    assert unquote_to_wsgi("/no-escapes") == "/no-escapes"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/%", "/%"),
        ("/%4", "/%4"),
        ("/%4/", "/%4/"),
        ("/%+1x", "/%+1x"),
        ("/% 1x", "/% 1x"),
        ("/%zz", "/%zz"),
        ("/%%41", "/%A"),
        ("/100%", "/100%"),
    ],
)
def test_unquote_to_wsgi_leaves_broken_escapes(raw: str, expected: str) -> None:
    assert unquote_to_wsgi(raw) == expected


def test_values_stay_native_latin1_strings() -> None:
    env = environ(
        {
            "PATH_INFO": "/caf\xc3\xa9",
            "QUERY_STRING": "q=\xe2\x98\x83",
            "HTTP_X_NAME": "\xff\xfe",
        }
    )
    for key in ("PATH_INFO", "QUERY_STRING", "HTTP_X_NAME"):
        assert type(env[key]) is str
        env[key].encode("latin-1")  # never a character above U+00FF
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/caf\u00e9"


# -- required keys and defaults --------------------------------------------------------------


def test_required_keys_present_with_defaults() -> None:
    env = environ({})
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == ""
    assert env["QUERY_STRING"] == ""
    assert env["SERVER_NAME"] == "localhost"
    assert env["SERVER_PORT"] == "80"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["wsgi.version"] == (1, 0)
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.file_wrapper"] is FileWrapper
    assert "CONTENT_LENGTH" not in env
    assert "CONTENT_TYPE" not in env


def test_build_environ_does_not_modify_meta() -> None:
    meta = {"HTTP_PROXY": "http://evil", "HTTP_HOST": "example.com"}
    environ(meta)
    assert meta == {"HTTP_PROXY": "http://evil", "HTTP_HOST": "example.com"}


@pytest.mark.parametrize("flags", [(True, False, False), (False, True, True), (True, True, False)])
def test_multithread_multiprocess_run_once_as_given(flags: tuple[bool, bool, bool]) -> None:
    mt, mp, once = flags
    env = environ({}, multithread=mt, multiprocess=mp, run_once=once)
    assert (env["wsgi.multithread"], env["wsgi.multiprocess"], env["wsgi.run_once"]) == flags


def test_streams_are_the_ones_given() -> None:
    stdin = InputStream(io.BytesIO(b"abc"), 3)
    errors = ErrorStream()
    env = environ({"CONTENT_LENGTH": "3"}, stdin=stdin, errors=errors)
    assert env["wsgi.input"] is stdin
    assert env["wsgi.errors"] is errors
    assert env["wsgi.input"].read() == b"abc"


# -- httpoxy and body framing headers --------------------------------------------------------


def test_http_proxy_never_reaches_the_app() -> None:
    env = environ({"HTTP_PROXY": "http://attacker:8080", "HTTP_PROXY_AUTHORIZATION": "x"})
    assert "HTTP_PROXY" not in env
    assert env["HTTP_PROXY_AUTHORIZATION"] == "x"  # only the exact httpoxy name is dropped


def test_http_content_type_and_length_folded() -> None:
    env = environ({"HTTP_CONTENT_TYPE": "text/plain", "HTTP_CONTENT_LENGTH": "5"})
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_TYPE" not in env
    assert "HTTP_CONTENT_LENGTH" not in env


def test_unprefixed_framing_wins_over_http_prefixed() -> None:
    env = environ(
        {
            "CONTENT_TYPE": "application/json",
            "HTTP_CONTENT_TYPE": "text/evil",
            "CONTENT_LENGTH": "2",
            "HTTP_CONTENT_LENGTH": "999",
        }
    )
    assert env["CONTENT_TYPE"] == "application/json"
    assert env["CONTENT_LENGTH"] == "2"
    assert not any(key.startswith("HTTP_CONTENT_") for key in env)


def test_empty_content_length_and_type_are_absent() -> None:
    env = environ({"CONTENT_LENGTH": "", "CONTENT_TYPE": ""})
    assert "CONTENT_LENGTH" not in env
    assert "CONTENT_TYPE" not in env


@pytest.mark.parametrize(("raw", "expected"), [(None, None), ("", None), ("0", 0), ("42", 42)])
def test_content_length_parsing(raw: str | None, expected: int | None) -> None:
    meta = {} if raw is None else {"CONTENT_LENGTH": raw}
    assert content_length(meta) == expected


@pytest.mark.parametrize("raw", ["-1", "1e3", " 5", "5 ", "0x10", "\u0661\u0662", "\u00b2", "+5"])
def test_bad_content_length_is_a_400(raw: str) -> None:
    # int() accepts most of these (' 5', '+5', Arabic-Indic digits): a naive parser would too
    with pytest.raises(ProtocolError) as info:
        content_length({"CONTENT_LENGTH": raw})
    assert info.value.status_hint == 400


# -- url scheme ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "scheme"),
    [
        ({}, "http"),
        ({"HTTPS": "on"}, "https"),
        ({"HTTPS": "ON"}, "https"),
        ({"HTTPS": "1"}, "https"),
        ({"HTTPS": "off"}, "http"),
        ({"HTTPS": ""}, "http"),
        ({"REQUEST_SCHEME": "https"}, "https"),
        ({"REQUEST_SCHEME": "HTTPS"}, "https"),
        ({"REQUEST_SCHEME": "http"}, "http"),
        ({"HTTPS": "off", "REQUEST_SCHEME": "http"}, "http"),
    ],
)
def test_url_scheme(meta: dict[str, str], scheme: str) -> None:
    env = environ(meta)
    assert env["wsgi.url_scheme"] == scheme
    assert env["SERVER_PORT"] == ("443" if scheme == "https" else "80")


def test_url_scheme_given_by_gateway_wins() -> None:
    assert environ({"HTTPS": "off"}, url_scheme="https")["wsgi.url_scheme"] == "https"


def test_client_header_cannot_fake_the_scheme() -> None:
    # X-Forwarded-Proto comes from the client unless a trusted proxy set it: not trusted here
    assert environ({"HTTP_X_FORWARDED_PROTO": "https"})["wsgi.url_scheme"] == "http"


# -- SERVER_NAME / SERVER_PORT from Host -----------------------------------------------------


@pytest.mark.parametrize(
    ("host", "name", "port"),
    [
        ("example.com", "example.com", "80"),
        ("example.com:8080", "example.com", "8080"),
        ("[::1]:8080", "[::1]", "8080"),
        ("[::1]", "[::1]", "80"),
        ("[2001:db8::5]", "[2001:db8::5]", "80"),
        ("example.com:", "example.com", "80"),
        ("example.com:http", "example.com", "80"),
        ("", "localhost", "80"),
    ],
)
def test_server_name_and_port_from_host(host: str, name: str, port: str) -> None:
    env = environ({"HTTP_HOST": host})
    assert env["SERVER_NAME"] == name
    assert env["SERVER_PORT"] == port


def test_server_name_from_gateway_wins_over_host() -> None:
    env = environ({"HTTP_HOST": "evil.example:666", "SERVER_NAME": "real", "SERVER_PORT": "81"})
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("real", "81")


def test_https_host_without_port_defaults_to_443() -> None:
    env = environ({"HTTP_HOST": "example.com", "HTTPS": "on"})
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example.com", "443")


# -- wsgi.errors -----------------------------------------------------------------------------


def test_errors_one_record_per_line(error_log: pytest.LogCaptureFixture) -> None:
    errors = ErrorStream()
    errors.write("first line\nsecond ")
    errors.write("half\r\nthird")
    messages = [r.getMessage() for r in error_log.records if r.name == "wsgigate.error"]
    assert messages == ["first line", "second half"]
    errors.flush()
    messages = [r.getMessage() for r in error_log.records if r.name == "wsgigate.error"]
    assert messages == ["first line", "second half", "third"]


def test_errors_writelines_and_print(error_log: pytest.LogCaptureFixture) -> None:
    errors = ErrorStream()
    errors.writelines(["a\n", "b", "c\n"])
    print("printed", 42, file=errors)  # type: ignore[arg-type]
    messages = [r.getMessage() for r in error_log.records if r.name == "wsgigate.error"]
    assert messages == ["a", "bc", "printed 42"]


def test_errors_refuses_bytes() -> None:
    with pytest.raises(TypeError):
        ErrorStream().write(b"bytes")  # type: ignore[arg-type]


def test_errors_message_is_not_a_format_string(error_log: pytest.LogCaptureFixture) -> None:
    ErrorStream().write("100% %s %(x)d\n")
    assert [r.getMessage() for r in error_log.records] == ["100% %s %(x)d"]
    assert error_log.records[0].levelno >= logging.WARNING


# -- wsgi.file_wrapper -----------------------------------------------------------------------


class Tracked(io.BytesIO):
    closes = 0

    def close(self) -> None:
        self.closes += 1
        super().close()


def test_file_wrapper_iterates_blocks_and_closes() -> None:
    data = bytes(range(256)) * 3
    filelike = Tracked(data)
    wrapper = FileWrapper(filelike, 100)
    blocks = list(wrapper)
    assert b"".join(blocks) == data
    assert [len(b) for b in blocks] == [100] * 7 + [68]
    wrapper.close()
    assert filelike.closes == 1


def test_file_wrapper_without_close() -> None:
    class Reader:
        def __init__(self) -> None:
            self.parts = [b"a", b"b"]

        def read(self, size: int) -> bytes:
            return self.parts.pop(0) if self.parts else b""

    wrapper = FileWrapper(Reader())
    assert list(wrapper) == [b"a", b"b"]
    wrapper.close()  # no close() on the file: nothing to do, no AttributeError


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("%aZ09fF/+ -_.~\xe9\xff\x00"), max_size=30))
def test_unquote_to_wsgi_matches_unquote_to_bytes(path: str) -> None:
    from urllib.parse import unquote_to_bytes

    expected = unquote_to_bytes(path.encode("latin-1")).decode("latin-1")
    assert unquote_to_wsgi(path) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_unicode_to_wsgi_round_trip(text: str) -> None:
    native = unicode_to_wsgi(text)
    native.encode("latin-1")
    assert native.encode("latin-1") == text.encode("utf-8", "surrogateescape")
