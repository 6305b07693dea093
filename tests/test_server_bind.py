"""Bind specs: parsing every form, one-line errors, and opening (or adopting) the sockets."""

from __future__ import annotations

import os
import socket
import stat
import time
from pathlib import Path

import pytest

from wsgigate.errors import ConfigurationError
from wsgigate.server.bind import (
    BindSpec,
    open_listeners,
    parse_bind,
    parse_owner,
    systemd_fds,
)
from wsgigate.server.config import ServerConfig, config_from_options


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("127.0.0.1:9000", BindSpec("tcp", host="127.0.0.1", port=9000)),
        ("localhost:0", BindSpec("tcp", host="localhost", port=0)),
        (":9000", BindSpec("tcp", host="0.0.0.0", port=9000)),
        ("[::1]:9000", BindSpec("tcp", host="::1", port=9000)),
        ("[::]:80", BindSpec("tcp", host="::", port=80)),
        ("unix:/run/app.sock", BindSpec("unix", path="/run/app.sock")),
        ("unix:/run/app.sock,660", BindSpec("unix", path="/run/app.sock", mode=0o660)),
        ("unix:///run/app.sock", BindSpec("unix", path="/run/app.sock")),
        ("unix:relative.sock", BindSpec("unix", path="relative.sock")),
        ("unix:/a,b/app.sock", BindSpec("unix", path="/a,b/app.sock")),
        ("fd://0", BindSpec("fd", fd=0)),
        ("fd://7", BindSpec("fd", fd=7)),
        ("systemd", BindSpec("systemd")),
    ],
)
def test_parse_bind(spec: str, expected: BindSpec) -> None:
    assert parse_bind(spec) == expected


def test_bind_spec_round_trips_through_str() -> None:
    for text in ("127.0.0.1:9000", "[::1]:9000", "unix:/x.sock,660", "fd://3", "systemd"):
        assert parse_bind(str(parse_bind(text))) == parse_bind(text)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty bind spec"),
        ("9000", "expected HOST:PORT"),
        ("127.0.0.1:http", "is not a number"),
        ("127.0.0.1:70000", "is not a number 0-65535"),
        ("::1:9000", "in brackets"),
        ("[::1:9000", "missing ']'"),
        ("[]:9000", "empty IPv6 address"),
        ("unix:", "expected unix:/path"),
        ("unix:/x.sock,rw", "not octal"),
        ("unix:/x.sock,77777", "out of range"),
        ("fd://x", "expected fd://N"),
        ("tcp://127.0.0.1:80", "unknown scheme"),
    ],
)
def test_bad_bind_specs_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_bind(spec)
    text = str(info.value)
    assert message in text and "\n" not in text
    assert repr(spec) in text or not spec


def test_open_tcp_port_zero_reports_the_real_port() -> None:
    (listener,) = open_listeners(["127.0.0.1:0"])
    with listener.sock:
        port = listener.sock.getsockname()[1]
        assert port > 0 and listener.address == f"127.0.0.1:{port}"
        assert listener.sock.getblocking() is False
        assert not os.get_inheritable(listener.sock.fileno())


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_listener_accept_gives_what_socket_accept_gives(kind: str, tmp_path: Path) -> None:
    """Listener.accept() skips socket.accept()'s wrapper (its per-call enum conversions): the
    socket it returns must be the same kind of object, blocking, with the same peer address."""
    spec = "127.0.0.1:0" if kind == "tcp" else f"unix:{tmp_path / 'a.sock'}"
    (listener,) = open_listeners([spec])
    with listener.sock:
        name = listener.sock.getsockname()
        results = []
        for accept in (listener.accept, listener.sock.accept):
            client = socket.socket(listener.sock.family, socket.SOCK_STREAM)
            client.connect(name)
            time.sleep(0.05)
            sock, peer = accept()
            with client, sock:
                client.sendall(b"ping")
                assert sock.recv(4) == b"ping"  # a working, blocking connection
                results.append(
                    (
                        type(sock),
                        sock.family,
                        sock.type,
                        sock.proto,
                        sock.gettimeout(),
                        sock.getblocking(),
                        os.get_inheritable(sock.fileno()),
                        peer == client.getsockname(),
                    )
                )
        ours, stdlib = results
        assert ours == stdlib
        assert ours[4] is None and ours[5] is True and ours[7] is True


def test_open_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        (listener,) = open_listeners(["[::1]:0"])
    except ConfigurationError as exc:
        pytest.skip(f"IPv6 loopback unavailable: {exc}")
    with listener.sock:
        assert listener.address.startswith("[::1]:")


def test_port_in_use_is_a_configuration_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match="Address already in use"):
            open_listeners([f"127.0.0.1:{port}"])


def test_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.sock"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError):
            open_listeners([f"unix:{path}", f"127.0.0.1:{port}"])
    assert not path.exists()  # the first socket was cleaned up


def test_unix_socket_mode_owner_and_removal(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    uid, gid = os.getuid(), os.getgid()
    (listener,) = open_listeners([f"unix:{path},640"], socket_owner=f"{uid}:{gid}")
    try:
        st = path.stat()
        assert stat.S_ISSOCK(st.st_mode) and st.st_mode & 0o777 == 0o640
        assert (st.st_uid, st.st_gid) == (uid, gid)
        assert listener.address == f"unix:{path}"
    finally:
        listener.remove_file()
        listener.close()
    assert not path.exists()


def test_socket_mode_option_applies_without_a_mode_in_the_spec(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    (listener,) = open_listeners([f"unix:{path}"], socket_mode=0o600)
    try:
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        listener.remove_file()
        listener.close()


def test_live_unix_socket_is_never_unlinked(tmp_path: Path) -> None:
    path = tmp_path / "live.sock"
    with socket.socket(socket.AF_UNIX) as other:
        other.bind(str(path))
        other.listen()
        with pytest.raises(ConfigurationError, match="another server is listening"):
            open_listeners([f"unix:{path}"])
        assert path.exists()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))  # the other server still works


def test_stale_unix_socket_is_replaced_and_regular_files_are_not(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))
    (listener,) = open_listeners([f"unix:{path}"])
    listener.remove_file()
    listener.close()
    regular = tmp_path / "data.txt"
    regular.write_text("precious")
    with pytest.raises(ConfigurationError, match="exists and is not a socket"):
        open_listeners([f"unix:{regular}"])
    assert regular.read_text() == "precious"


def test_remove_file_spares_a_socket_someone_else_recreated(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    (listener,) = open_listeners([f"unix:{path}"])
    listener.close()
    os.unlink(path)
    time.sleep(0.05)  # identity is (device, inode, ctime); inodes are reused at once
    with socket.socket(socket.AF_UNIX) as newer:
        newer.bind(str(path))
        listener.remove_file()
        assert path.exists()


def test_fd_spec_adopts_a_listening_socket_and_refuses_others() -> None:
    with socket.socket() as original:
        original.bind(("127.0.0.1", 0))
        original.listen()
        fd = os.dup(original.fileno())
        (listener,) = open_listeners([f"fd://{fd}"])
        with listener.sock:
            assert listener.sock.getsockname() == original.getsockname()
    with socket.socket() as unbound:
        with pytest.raises(ConfigurationError, match="not a listening socket"):
            open_listeners([f"fd://{unbound.fileno()}"])
        assert unbound.fileno() >= 0  # left open for its owner
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(ConfigurationError, match="is not a socket"):
            open_listeners([f"fd://{read_end}"])
    finally:
        os.close(read_end)
        os.close(write_end)
    with pytest.raises(ConfigurationError, match="is not open"):
        open_listeners(["fd://987654"])


def test_systemd_fds_checks_listen_pid_and_unsets() -> None:
    env = {"LISTEN_FDS": "2", "LISTEN_PID": str(os.getpid()), "LISTEN_FDNAMES": "a:b"}
    assert systemd_fds(env) == [3, 4]
    assert env == {}
    other = {"LISTEN_FDS": "1", "LISTEN_PID": "1"}
    assert systemd_fds(other) == []
    assert other == {"LISTEN_FDS": "1", "LISTEN_PID": "1"}  # not ours: left alone
    assert systemd_fds({}) == []
    with pytest.raises(ConfigurationError, match="LISTEN_FDS"):
        systemd_fds({"LISTEN_FDS": "two", "LISTEN_PID": str(os.getpid())})


def test_systemd_spec_without_sockets_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    with pytest.raises(ConfigurationError, match="no sockets passed"):
        open_listeners(["systemd"])


def test_parse_owner() -> None:
    assert parse_owner("0:0") == (0, 0)
    assert parse_owner(f"{os.getuid()}") == (os.getuid(), -1)
    with pytest.raises(ConfigurationError, match="no user"):
        parse_owner("no-such-user-wsgigate")
    with pytest.raises(ConfigurationError, match="no group"):
        parse_owner(":no-such-group-wsgigate")


def test_server_config_errors() -> None:
    with pytest.raises(ConfigurationError, match="--threads"):
        ServerConfig(threads=-1).check()
    with pytest.raises(ConfigurationError, match="--workers"):
        ServerConfig(workers=-1).check()
    with pytest.raises(ConfigurationError, match="access log format"):
        ServerConfig(access_log_format="%(h)s %(").check()
    with pytest.raises(ConfigurationError, match="unknown server option"):
        config_from_options("fastcgi", "127.0.0.1:9000", bind="127.0.0.1:0", threds=2)
    config = config_from_options("fastcgi", "127.0.0.1:9000", bind="127.0.0.1:0", threads=3)
    assert config.bind == ["127.0.0.1:0"] and config.queue_size == 1024
