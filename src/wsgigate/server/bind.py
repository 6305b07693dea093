"""Bind specs: every way a wsgigate server gets its listening sockets, parsed in one place.

==========================  =====================================================================
``HOST:PORT``               TCP; ``127.0.0.1:9000``, ``:9000`` (all IPv4), ``localhost:0``
``[V6]:PORT``               TCP over IPv6; ``[::1]:9000``, ``[::]:9000``
``unix:/PATH[,MODE]``       a unix socket; MODE in octal (``unix:/run/app.sock,660``)
``fd://N``                  an already listening socket on file descriptor N
``fd://0``                  the inherited listening socket on stdin, as Apache mod_fcgid,
                            lighttpd ``bin-path`` and spawn-fcgi start a FastCGI backend
``systemd``                 socket activation: ``LISTEN_FDS`` sockets from fd 3 on, checked
                            against ``LISTEN_PID`` and then removed from the environment
==========================  =====================================================================

:func:`parse_bind` turns a spec into a :class:`BindSpec` (pure, raises a one-line
:class:`~wsgigate.errors.ConfigurationError`); :func:`open_listeners` turns specs into
:class:`Listener` objects. A unix socket file is only ever unlinked when nothing listens on it
(we try to connect first), and only the file we created is removed at exit.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from dataclasses import dataclass, field

from wsgigate.errors import ConfigurationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, MutableMapping
    from typing import Any

SD_LISTEN_FDS_START = 3
DEFAULT_BACKLOG = 2048


@dataclass(frozen=True)
class BindSpec:
    """One parsed bind spec. ``kind`` is ``"tcp"``, ``"unix"``, ``"fd"`` or ``"systemd"``."""

    kind: str
    host: str = ""
    port: int = 0
    path: str = ""
    mode: int | None = None
    fd: int = -1

    def __str__(self) -> str:
        if self.kind == "tcp":
            return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        if self.kind == "unix":
            return f"unix:{self.path}" + (f",{self.mode:o}" if self.mode is not None else "")
        if self.kind == "fd":
            return f"fd://{self.fd}"
        return "systemd"


def parse_bind(spec: str) -> BindSpec:
    """Parse one bind spec (see the module docstring); raise ConfigurationError when it is bad."""
    text = spec.strip()
    if not text:
        raise ConfigurationError("empty bind spec; use HOST:PORT, unix:/path, fd://N or systemd")
    if text == "systemd":
        return BindSpec("systemd")
    if text.startswith("fd://"):
        number = text[5:]
        if not number.isdigit() or not number.isascii():
            raise ConfigurationError(f"bind {spec!r}: expected fd://N with N a file descriptor")
        return BindSpec("fd", fd=int(number))
    if text.startswith("unix:"):
        path, sep, mode_text = text[5:].rpartition(",")
        if not sep or "/" in mode_text:
            path, mode_text = text[5:], ""
        if path.startswith("//"):  # unix:///run/app.sock, as some tools write it
            path = path[2:]
        if not path:
            raise ConfigurationError(f"bind {spec!r}: expected unix:/path/to/socket")
        mode = None
        if sep and mode_text:
            try:
                mode = int(mode_text, 8)
            except ValueError:
                raise ConfigurationError(
                    f"bind {spec!r}: socket mode {mode_text!r} is not octal, e.g. 660"
                ) from None
            if not 0 <= mode <= 0o7777:
                raise ConfigurationError(f"bind {spec!r}: socket mode {mode_text!r} out of range")
        return BindSpec("unix", path=path, mode=mode)
    if "://" in text:
        raise ConfigurationError(
            f"bind {spec!r}: unknown scheme; use HOST:PORT, [::1]:PORT, unix:/path, fd://N "
            "or systemd"
        )
    host, sep, port_text = text.rpartition(":")
    if text.startswith("[") and "]" not in text:
        raise ConfigurationError(f"bind {spec!r}: missing ']' in an IPv6 address")
    if not sep or (host.startswith("[") and not host.endswith("]")):
        raise ConfigurationError(
            f"bind {spec!r}: expected HOST:PORT, [::1]:PORT, unix:/path, fd://N or systemd"
        )
    if not port_text.isdigit() or not port_text.isascii() or int(port_text) > 65535:
        raise ConfigurationError(f"bind {spec!r}: port {port_text!r} is not a number 0-65535")
    if host.startswith("["):
        host = host[1:-1]
        if not host:
            raise ConfigurationError(f"bind {spec!r}: empty IPv6 address")
    elif ":" in host:
        raise ConfigurationError(f"bind {spec!r}: write an IPv6 address in brackets, [{host}]:PORT")
    return BindSpec("tcp", host=host or "0.0.0.0", port=int(port_text))


@dataclass(eq=False)
class Listener:
    """A listening socket and how to name it in logs; ``owned_path`` is removed at exit."""

    sock: socket.socket
    spec: BindSpec
    address: str  # what was actually bound, e.g. 127.0.0.1:40123 for port 0
    owned_path: str | None = None
    owned_inode: tuple[int, int, int] | None = field(default=None, repr=False)
    # Read on every accept (worker.py): the plain ints, not the socket's enum properties.
    family: int = field(init=False, repr=False)
    sock_type: int = field(init=False, repr=False)
    proto: int = field(init=False, repr=False)
    fileno: int = field(init=False, repr=False)
    _raw_accept: Any = field(init=False, repr=False, compare=False)
    # Whether accepted sockets get TCP_NODELAY and the I/O timeout from the listener, and how
    # many more connections to look at to find out (worker.tune_listener / tune_connection).
    inherited: bool = field(default=False, init=False, repr=False)
    checks: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.family = int(self.sock.family)
        self.sock_type = int(self.sock.type)
        self.proto = int(self.sock.proto)
        self.fileno = self.sock.fileno()
        self._raw_accept = getattr(self.sock, "_accept", None)  # what socket.accept() calls

    def accept(self) -> tuple[socket.socket, Any]:
        """``sock.accept()`` for less: the stdlib's wrapper turns the listener's family and type
        into enums on every call, ~12k instructions per connection (callgrind) where a FastCGI
        request cost ~265k in all; this passes the ints read once instead. Same result as
        ``socket.accept()``: the same kind of socket, timeout and peer address."""
        raw_accept = self._raw_accept
        if raw_accept is None:  # pragma: no cover - an interpreter without it
            return self.sock.accept()
        fd, peer = raw_accept()
        return socket.socket(self.family, self.sock_type, self.proto, fd), peer

    @property
    def is_unix(self) -> bool:
        return self.sock.family == socket.AF_UNIX

    def close(self) -> None:
        self.sock.close()

    def remove_file(self) -> None:
        """Unlink the unix socket file we created, unless someone replaced it since."""
        if not self.owned_path or self.owned_inode is None:
            return
        with contextlib.suppress(OSError):
            st = os.stat(self.owned_path)
            if (st.st_dev, st.st_ino, st.st_ctime_ns) == self.owned_inode:
                os.unlink(self.owned_path)
        self.owned_path = None


def describe(sock: socket.socket) -> str:
    """A listening socket's real address: ``127.0.0.1:40123``, ``[::1]:80``, ``unix:/path``."""
    if sock.family == socket.AF_UNIX:
        name = sock.getsockname()
        if isinstance(name, bytes):
            name = name.decode("utf-8", "surrogateescape")
        return f"unix:{name}" if name else "unix:(unnamed)"
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if sock.family == socket.AF_INET6 else f"{host}:{port}"


def _check_listening(sock: socket.socket, spec: BindSpec) -> None:
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    except OSError as exc:
        raise ConfigurationError(
            f"bind {spec}: fd {sock.fileno()} is not a socket: {exc}"
        ) from None
    if not listening:
        raise ConfigurationError(f"bind {spec}: fd {sock.fileno()} is not a listening socket")
    if sock.type != socket.SOCK_STREAM:
        raise ConfigurationError(f"bind {spec}: fd {sock.fileno()} is not a stream socket")


def _socket_from_fd(fd: int, spec: BindSpec) -> socket.socket:
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        raise ConfigurationError(f"bind {spec}: fd {fd} is not open: {exc.strerror}") from None
    if not stat.S_ISSOCK(mode):
        raise ConfigurationError(f"bind {spec}: fd {fd} is not a socket")
    sock = socket.socket(fileno=fd)
    try:
        _check_listening(sock, spec)
    except ConfigurationError:
        sock.detach()  # not ours to close
        raise
    if fd == 0:
        # Keep the socket, but give the app a harmless stdin: reads from fd 0 must not
        # consume connections. dup() first so the socket survives the dup2 onto 0.
        moved = socket.socket(fileno=os.dup(0))
        sock.detach()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sock = moved
    os.set_inheritable(sock.fileno(), False)
    return sock


def systemd_fds(
    environ: MutableMapping[str, str] | None = None, *, unset: bool = True
) -> list[int]:
    """File descriptors systemd passed this process (empty when the variables are not ours).

    As sd_listen_fds(3): ``LISTEN_PID`` must be our pid, sockets start at fd 3, and the
    variables are removed so that child processes do not take the sockets for theirs.
    """
    env = os.environ if environ is None else environ
    fds_text = env.get("LISTEN_FDS", "")
    pid_text = env.get("LISTEN_PID", "")
    if not fds_text:
        return []
    if pid_text and pid_text != str(os.getpid()):
        return []
    if unset:
        for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            env.pop(name, None)
    if not fds_text.isdigit():
        raise ConfigurationError(f"LISTEN_FDS={fds_text!r} is not a number")
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(fds_text)))


def _unix_in_use(path: str) -> bool:
    """True if a server is accepting on the unix socket ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError as exc:
        # EAGAIN: the listen queue is full, so somebody is listening; anything else we cannot
        # tell apart from a live server, so we refuse rather than break it.
        return exc.errno != errno.ECONNREFUSED
    finally:
        probe.close()
    return True


def _bind_unix(
    spec: BindSpec, backlog: int, socket_mode: int | None, owner: tuple[int, int] | None
) -> Listener:
    path = spec.path
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigurationError(f"bind {spec}: cannot inspect {path}: {exc.strerror}") from None
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise ConfigurationError(f"bind {spec}: {path} exists and is not a socket")
        if _unix_in_use(path):
            raise ConfigurationError(
                f"bind {spec}: another server is listening on {path}; not removing it"
            )
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # stale file from a server that died
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        mode = spec.mode if spec.mode is not None else socket_mode
        if mode is not None:
            os.chmod(path, mode)
        if owner is not None:
            os.chown(path, owner[0], owner[1])
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"bind {spec}: {exc.strerror or exc}") from None
    st = os.stat(path)
    return Listener(
        sock,
        spec,
        f"unix:{path}",
        owned_path=path,
        owned_inode=(st.st_dev, st.st_ino, st.st_ctime_ns),
    )


def _bind_tcp(spec: BindSpec, backlog: int) -> Listener:
    try:
        infos = socket.getaddrinfo(
            spec.host, spec.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ConfigurationError(
            f"bind {spec}: cannot resolve {spec.host!r}: {exc.strerror}"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"bind {spec}: {exc.strerror or exc}") from None
    return Listener(sock, spec, describe(sock))


def parse_owner(text: str) -> tuple[int, int]:
    """``user[:group]`` (names or numbers) to a (uid, gid) pair for chown; -1 keeps one."""
    user, _, group = text.partition(":")
    uid = gid = -1
    if user:
        if user.isdigit():
            uid = int(user)
        else:
            import pwd

            try:
                entry = pwd.getpwnam(user)
            except KeyError:
                raise ConfigurationError(f"socket owner: no user {user!r}") from None
            uid = entry.pw_uid
            if not group:
                gid = entry.pw_gid
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            import grp

            try:
                gid = grp.getgrnam(group).gr_gid
            except KeyError:
                raise ConfigurationError(f"socket owner: no group {group!r}") from None
    return uid, gid


def open_listeners(
    specs: Iterable[str | BindSpec],
    *,
    backlog: int = DEFAULT_BACKLOG,
    socket_mode: int | None = None,
    socket_owner: str | None = None,
) -> list[Listener]:
    """Open (or adopt) a listening socket for every spec; all of them, or none on error."""
    owner = parse_owner(socket_owner) if socket_owner else None
    listeners: list[Listener] = []
    try:
        for item in specs:
            spec = item if isinstance(item, BindSpec) else parse_bind(item)
            if spec.kind == "tcp":
                listeners.append(_bind_tcp(spec, backlog))
            elif spec.kind == "unix":
                listeners.append(_bind_unix(spec, backlog, socket_mode, owner))
            elif spec.kind == "fd":
                sock = _socket_from_fd(spec.fd, spec)
                listeners.append(Listener(sock, spec, describe(sock)))
            else:
                fds = systemd_fds()
                if not fds:
                    raise ConfigurationError(
                        "bind systemd: no sockets passed (LISTEN_FDS/LISTEN_PID not set for "
                        "this process)"
                    )
                for fd in fds:
                    sock = _socket_from_fd(fd, BindSpec("fd", fd=fd))
                    listeners.append(Listener(sock, spec, describe(sock)))
    except BaseException:
        for listener in listeners:
            listener.remove_file()
            listener.close()
        raise
    for listener in listeners:
        listener.sock.setblocking(False)
    return listeners


def default_binds(fallback: str) -> list[str]:
    """What to listen on when no --bind was given: systemd sockets, fd 0, else ``fallback``."""
    if os.environ.get("LISTEN_FDS") and os.environ.get("LISTEN_PID", str(os.getpid())) == str(
        os.getpid()
    ):
        return ["systemd"]
    from wsgigate.host import fd0_is_listening_socket

    if fd0_is_listening_socket():
        return ["fd://0"]
    return [fallback]
