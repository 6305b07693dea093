"""Operations: the scoreboard every worker writes, the status and ping pages, the slow log.

As PHP-FPM does it: the arbiter maps a small shared-memory scoreboard before it forks; each
worker writes its own slot (busy and idle threads, connections queued for a thread, requests
served, slow and timed-out requests) when a request starts and ends and on every tick of its
loop; whoever answers a status request (a worker, for ``--status-path``; the arbiter, for
``--status-bind``) reads every slot. Counts of workers that exited (recycled, replaced) are
added to the header, so the totals never go down.

Pages, on ``--status-path`` (through the front end, like PHP-FPM's ``pm.status_path``) or on
``--status-bind`` (plain HTTP, for Prometheus)::

    GET /status                 JSON
    GET /status?openmetrics     OpenMetrics text (also for Accept: application/openmetrics-text)
    GET /ping                   "pong" (``--ping-path``; the status bind answers it too)
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import socket
import struct
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from wsgigate.server.bind import Listener
    from wsgigate.server.config import ServerConfig

MAX_SLOTS = 256  # workers alive at once (SIGHUP doubles them for a moment; SIGTTIN adds)
_HEADER = struct.Struct("<qdqqqq")  # arbiter pid, started, retired requests/slow/timeouts, wanted
# pid, threads, busy threads, queued connections, idle kept-alive connections, requests served,
# slow requests, timed-out requests, started (unix time)
_SLOT = struct.Struct("<qqqqqqqqd")
SLOT_FIELDS = ("pid", "threads", "busy", "queued", "kept_alive", "requests", "slow", "timeouts")

JSON_TYPE = "application/json"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class Scoreboard:
    """Shared (anonymous ``MAP_SHARED``) memory: one header, :data:`MAX_SLOTS` worker slots."""

    def __init__(self, slots: int = MAX_SLOTS) -> None:
        self.slots = slots
        self.memory = mmap.mmap(-1, _HEADER.size + slots * _SLOT.size)
        _HEADER.pack_into(self.memory, 0, os.getpid(), time.time(), 0, 0, 0, 0)

    def set_wanted(self, workers: int) -> None:
        struct.pack_into("<q", self.memory, 40, workers)

    def claim(self, pid: int) -> int:
        """A free slot for a new worker (-1 when all are taken: it then publishes nothing)."""
        for slot in range(self.slots):
            if not struct.unpack_from("<q", self.memory, self._offset(slot))[0]:
                self.write(slot, pid, 0, 0, 0, 0, 0, 0, 0)
                return slot
        return -1

    def _offset(self, slot: int) -> int:
        return _HEADER.size + slot * _SLOT.size

    def write(self, slot: int, *values: float) -> None:
        if 0 <= slot < self.slots:
            _SLOT.pack_into(self.memory, self._offset(slot), *values, time.time())

    def update(self, slot: int, *values: int) -> None:
        """Rewrite a slot's counters, keeping its start time."""
        if 0 <= slot < self.slots:
            offset = self._offset(slot)
            started = _SLOT.unpack_from(self.memory, offset)[-1]
            _SLOT.pack_into(self.memory, offset, *values, started)

    def release(self, slot: int) -> None:
        """The worker in ``slot`` exited: fold its counts into the totals, free the slot."""
        if not 0 <= slot < self.slots:
            return
        values = _SLOT.unpack_from(self.memory, self._offset(slot))
        header = list(_HEADER.unpack_from(self.memory, 0))
        header[2] += values[5]
        header[3] += values[6]
        header[4] += values[7]
        _HEADER.pack_into(self.memory, 0, *header)
        _SLOT.pack_into(self.memory, self._offset(slot), *([0] * 8), 0.0)

    def snapshot(self) -> dict[str, Any]:
        pid, started, requests, slow, timeouts, wanted = _HEADER.unpack_from(self.memory, 0)
        workers = []
        for slot in range(self.slots):
            values = _SLOT.unpack_from(self.memory, self._offset(slot))
            if values[0]:
                row: dict[str, Any] = dict(zip(SLOT_FIELDS, values[:8], strict=True))
                row["idle"] = max(row["threads"] - row["busy"], 0)
                row["started"] = values[8]
                workers.append(row)
        return {
            "pid": pid,
            "started": started,
            "wanted": wanted,
            "retired": {"requests": requests, "slow": slow, "timeouts": timeouts},
            "workers": workers,
        }


def listen_queue(listeners: Iterable[Listener]) -> int | None:
    """Connections waiting in the kernel's accept queue of the TCP listeners (Linux TCP_INFO:
    ``tcpi_unacked`` is the accept backlog of a listening socket); None without TCP sockets."""
    total: int | None = None
    for listener in listeners:
        sock = listener.sock
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.fileno() < 0:
            continue
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32)
        except OSError:
            continue
        total = (total or 0) + struct.unpack_from("<I", info, 24)[0]
    return total


def report(
    scoreboard: Scoreboard, config: ServerConfig, listeners: Iterable[Listener]
) -> dict[str, Any]:
    """The status document (JSON-ready)."""
    snap = scoreboard.snapshot()
    workers = snap["workers"]
    now = time.time()
    retired = snap["retired"]
    return {
        "server": config.name,
        "pid": snap["pid"],
        "started": round(snap["started"], 3),
        "uptime_seconds": round(now - snap["started"], 3),
        "workers": len(workers),
        "threads": sum(w["threads"] for w in workers),
        "busy_threads": sum(w["busy"] for w in workers),
        "idle_threads": sum(w["idle"] for w in workers),
        "queued_connections": sum(w["queued"] for w in workers),
        "listen_queue": listen_queue(listeners),
        "kept_alive_connections": sum(w["kept_alive"] for w in workers),
        "requests": retired["requests"] + sum(w["requests"] for w in workers),
        "slow_requests": retired["slow"] + sum(w["slow"] for w in workers),
        "timed_out_requests": retired["timeouts"] + sum(w["timeouts"] for w in workers),
        "slow_request_timeout": config.slow_request_timeout or None,
        "request_timeout": config.request_timeout or None,
        "per_worker": [
            {**w, "started": round(w["started"], 3), "uptime_seconds": round(now - w["started"], 3)}
            for w in workers
        ],
    }


_METRICS = (
    # name, type, help, key in the report
    ("workers", "gauge", "Worker processes alive.", "workers"),
    ("threads_busy", "gauge", "Threads serving a connection.", "busy_threads"),
    ("threads_idle", "gauge", "Threads waiting for a connection.", "idle_threads"),
    ("queued_connections", "gauge", "Connections waiting for a thread.", "queued_connections"),
    ("listen_queue", "gauge", "Connections in the kernel accept queue (TCP).", "listen_queue"),
    ("kept_alive_connections", "gauge", "Idle kept-alive connections.", "kept_alive_connections"),
    ("requests", "counter", "Requests served.", "requests"),
    (
        "slow_requests",
        "counter",
        "Requests that ran past the slow-request timeout.",
        "slow_requests",
    ),
    (
        "timed_out_requests",
        "counter",
        "Requests stopped by the request timeout.",
        "timed_out_requests",
    ),
)


def openmetrics(status: dict[str, Any]) -> str:
    prefix = "wsgigate_"
    lines = []
    for name, kind, text, key in _METRICS:
        value = status[key]
        if value is None:
            continue
        lines.append(f"# TYPE {prefix}{name} {kind}")
        lines.append(f"# HELP {prefix}{name} {text}")
        suffix = "_total" if kind == "counter" else ""
        lines.append(f'{prefix}{name}{suffix}{{server="{status["server"]}"}} {value}')
    lines.append(f"# TYPE {prefix}worker_requests counter")
    lines.append(f"# HELP {prefix}worker_requests Requests served, per worker process.")
    for worker in status["per_worker"]:
        lines.append(
            f'{prefix}worker_requests_total{{server="{status["server"]}",pid="{worker["pid"]}"}} '
            f"{worker['requests']}"
        )
    lines.append(f"# TYPE {prefix}start_time_seconds gauge")
    lines.append(f"# UNIT {prefix}start_time_seconds seconds")
    lines.append(f"# HELP {prefix}start_time_seconds When the server started (unix time).")
    lines.append(f'{prefix}start_time_seconds{{server="{status["server"]}"}} {status["started"]}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def page(
    path: str,
    query: str,
    accept: str,
    config: ServerConfig,
    scoreboard: Scoreboard | None,
    listeners: Iterable[Listener],
    *,
    any_path: bool = False,
) -> tuple[str, str, bytes] | None:
    """(status line, content type, body) for a status or ping request, None for other paths.

    ``any_path``: the separate status bind, where ``/ping`` and every other path are ours.
    """
    ping = config.ping_path or ("/ping" if any_path else "")
    if ping and path == ping:
        return "200 OK", "text/plain; charset=utf-8", b"pong\n"
    if not (any_path or (config.status_path and path == config.status_path)):
        return None
    if scoreboard is None:
        return "503 Service Unavailable", "text/plain; charset=utf-8", b"no scoreboard\n"
    status = report(scoreboard, config, listeners)
    fields = query.split("&")
    if "openmetrics" in fields or "format=openmetrics" in fields or "openmetrics" in accept:
        return "200 OK", OPENMETRICS_TYPE, openmetrics(status).encode()
    return "200 OK", JSON_TYPE, json.dumps(status, indent=1).encode() + b"\n"


# -- the pages on --status-path / --ping-path, in front of the app ----------------------------

_state: dict[str, Any] = {"scoreboard": None, "listeners": ()}


def set_process_state(scoreboard: Scoreboard | None, listeners: Iterable[Listener]) -> None:
    """What this process's worker serves from (set by the runtime before serving)."""
    _state["scoreboard"] = scoreboard
    _state["listeners"] = tuple(listeners)


def with_operations(app: WSGIApplication, config: ServerConfig) -> WSGIApplication:
    """``app`` with the status and ping paths answered first; ``app`` itself without them.

    The full path (SCRIPT_NAME + PATH_INFO) is compared, so the paths are the URLs the front
    end forwards. Restrict who may reach them in the front end (nginx ``allow``/``deny``).
    """
    if not (config.status_path or config.ping_path):
        return app

    def operations(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if path == config.status_path or path == config.ping_path:
            answer = page(
                path,
                environ.get("QUERY_STRING", ""),
                environ.get("HTTP_ACCEPT", ""),
                config,
                _state["scoreboard"],
                _state["listeners"],
            )
            if answer is not None:
                status, kind, body = answer
                start_response(
                    status,
                    [
                        ("Content-Type", kind),
                        ("Content-Length", str(len(body))),
                        ("Cache-Control", "no-store"),
                    ],
                )
                return [body]
        return app(environ, start_response)

    operations.__wrapped__ = app  # type: ignore[attr-defined]
    return operations


# -- the separate status bind (plain HTTP/1.0, answered by the arbiter's loop) ----------------


def accept_status(
    listener: Listener,
    config: ServerConfig,
    scoreboard: Scoreboard | None,
    listeners: Iterable[Listener],
) -> None:
    """Answer the monitoring connections waiting on ``listener`` (bounded, short timeouts):
    after a second of this, the rest wait for the arbiter's next turn, its other work first."""
    started = time.monotonic()
    for _ in range(16):
        if time.monotonic() - started > STATUS_HEAD_SECONDS:
            return
        try:
            sock, _peer = listener.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        with sock, contextlib.suppress(OSError):  # TimeoutError included
            _answer_http(sock, config, scoreboard, listeners)


STATUS_HEAD_SECONDS = 1.0  # for a whole request head: the arbiter's loop answers these


def _read_head(sock: socket.socket) -> bytes:
    """The request head, within STATUS_HEAD_SECONDS in all (a client sending a byte now and
    then must not hold the arbiter, which also watches the workers)."""
    deadline = time.monotonic() + STATUS_HEAD_SECONDS
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data and len(data) < 8192:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("status request head not complete in time")
        sock.settimeout(left)
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.settimeout(STATUS_HEAD_SECONDS)  # for the answer
    return data


def _answer_http(
    sock: socket.socket,
    config: ServerConfig,
    scoreboard: Scoreboard | None,
    listeners: Iterable[Listener],
) -> None:
    head = _read_head(sock).decode("latin-1")
    lines = head.split("\n")
    parts = lines[0].split()
    accept = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "accept":
            accept = value.strip()
    if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
        status, kind, body = "400 Bad Request", "text/plain; charset=utf-8", b"GET only\n"
    else:
        path, _, query = parts[1].partition("?")
        answer = page(path, query, accept, config, scoreboard, listeners, any_path=True)
        assert answer is not None
        status, kind, body = answer
    reply = (
        f"HTTP/1.0 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")
    sock.sendall(reply if parts[:1] == ["HEAD"] else reply + body)


# -- the slow-request log -----------------------------------------------------------------------


def thread_stack(ident: int) -> str:
    """The Python stack of thread ``ident``, innermost call last (as a traceback shows it)."""
    import sys
    import traceback

    frame = sys._current_frames().get(ident)
    if frame is None:
        return "  (thread gone)\n"
    return "".join(traceback.format_stack(frame))


def describe(info: Any) -> str:
    """``GET /path?query`` from a request's CGI meta-variables or environ (``-`` if unknown)."""
    if not info:
        return "-"
    try:
        uri = info.get("REQUEST_URI") or (
            info.get("SCRIPT_NAME", "")
            + info.get("PATH_INFO", "")
            + ("?" + info["QUERY_STRING"] if info.get("QUERY_STRING") else "")
        )
        return f"{info.get('REQUEST_METHOD', '-')} {uri}"
    except Exception:  # a handler passed something else: describe it, don't fail
        return repr(info)[:200]


def iter_slow(
    now: float, starts: list[float], limit: float, flags: list[int], bit: int
) -> Iterator[int]:
    """Slots whose request started over ``limit`` seconds ago and are not yet flagged ``bit``."""
    for slot, started in enumerate(starts):
        if started and now - started > limit and not flags[slot] & bit:
            yield slot
