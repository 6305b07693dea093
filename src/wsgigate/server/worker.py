"""One worker: an accept loop on epoll (poll elsewhere, never ``select()``) feeding a bounded
pool of threads that run the protocol's :class:`ConnectionHandler`.

``--threads 0`` is the other shape (gunicorn's sync worker, uWSGI's default): no pool, the main
thread serves each ready connection itself, one request at a time, and goes back to its
selector. No hand-over between threads, so a short request costs less CPU; a long one holds
the whole worker (siblings take new connections; past ``--timeout`` the arbiter replaces it).

The main thread owns the selector: it accepts new connections, watches idle kept-alive ones,
and hands any connection with data to the pool through a bounded queue. A pool thread runs the
handler for as long as the connection has requests ready, then gives it back to the main thread
to wait for the next one, so idle keep-alive connections (nginx's ``keepalive`` pool) never hold a
thread. A pool thread that is done with a connection and finds the queue empty accepts the next
connection waiting in the listener's backlog itself, without the hand-over (a wake-up and thread
switches per connection, the runtime's main cost when every request opens a connection). When
every thread is busy and the queue is full, the handler's ``overloaded`` hook answers the new
connection (FastCGI: ``END_REQUEST`` with ``FCGI_OVERLOADED``) instead of leaving it to a bare
close.

Per connection the runtime makes only the system calls it needs (accept, recv, send, close): the
listener carries TCP_NODELAY and the I/O timeout (SO_RCVTIMEO/SO_SNDTIMEO) that accepted sockets
inherit, and sockets stay blocking for Python, so no setsockopt, no ioctl and no poll() before
each recv and send.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import random
import select
import signal
import socket
import struct
import threading
import time
from collections import deque

from wsgigate.core import cgi_response_head
from wsgigate.server.accesslog import AccessLog, access_logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from wsgigate.server.bind import Listener
    from wsgigate.server.config import ServerConfig
    from wsgigate.server.status import Scoreboard


log = logging.getLogger("wsgigate.error")
slow_log = logging.getLogger("wsgigate.slow")

_SLOW, _TIMED_OUT = 1, 2  # per-request flags: logged as slow, stopped by --request-timeout
# While stopping, an idle kept-alive connection is closed once it has rested this long (seconds)
STOP_IDLE_REST = 0.25


class RequestTimeout(Exception):
    """Raised in a request's thread when it runs past ``--request-timeout``."""


class Connection:
    """One accepted connection, as a handler sees it.

    ``sock`` is blocking, with the server's I/O timeout set in the kernel (SO_RCVTIMEO and
    SO_SNDTIMEO: a recv or send that waits longer raises ``BlockingIOError``); ``peer`` is what
    ``accept()`` returned (``""`` for unix sockets); ``state`` is the handler's own
    per-connection object (a codec) kept across requests on a kept-alive connection.
    """

    __slots__ = ("sock", "peer", "listener", "worker", "state", "idle_since", "slot")

    def __init__(self, sock: socket.socket, peer: Any, listener: Listener, worker: Worker) -> None:
        self.sock = sock
        self.peer = peer
        self.listener = listener
        self.worker = worker
        self.state: Any = None
        self.idle_since = 0.0
        self.slot = -1  # index of the pool thread serving it

    @property
    def peer_host(self) -> str:
        """The peer's IP address, ``""`` on a unix socket."""
        if isinstance(self.peer, tuple) and self.peer:
            return str(self.peer[0])
        return ""

    @property
    def stopping(self) -> bool:
        """The worker is shutting down: finish the current request, then close."""
        return self.worker.stopping

    def begin_request(self, info: Mapping[str, Any] | None = None) -> float:
        """A request starts (its head is complete); returns its start time for end_request.

        ``info``, the request's CGI meta-variables (or environ), names the request in the slow
        log and in timeout messages.
        """
        now = time.monotonic()
        worker = self.worker
        if self.slot >= 0:
            worker.busy[self.slot] = now
            worker.track(self.slot, now, info)
        worker.request_started()
        return now

    def end_request(
        self, environ: Mapping[str, Any] | None, status: int, sent: int, started: float
    ) -> None:
        """Write the access log line and count the request (for --max-requests)."""
        worker = self.worker
        if self.slot >= 0:
            worker.untrack(self.slot)
        if environ is not None and access_logger.isEnabledFor(logging.INFO):
            worker.access_log.log(environ, status, sent, time.monotonic() - started, self.peer_host)
        worker.request_done()

    def close(self) -> None:
        try:  # noqa: SIM105 - not contextlib.suppress(), three calls more per connection
            self.sock.close()
        except OSError:
            pass


class ConnectionHandler:
    """The protocol's part of a server (FastCGI, SCGI). One instance, called from many threads.

    Subclasses implement :meth:`handle`; :meth:`overloaded` is the hook for a full pool.
    """

    name = "wsgigate"

    def handle(self, conn: Connection) -> bool:
        """Serve requests on ``conn`` until it has no more data ready.

        Return True to keep the connection (the runtime waits for its next request, up to
        --keep-alive seconds, and calls ``handle`` again), False to have it closed. Exceptions
        are logged and close the connection; they never reach the worker.
        """
        raise NotImplementedError

    def overloaded(self, conn: Connection) -> None:
        """Every thread is busy and the queue is full: answer ``conn`` quickly, or close it.

        Runs on the worker's main thread, so it must not block for long; the runtime closes the
        connection afterwards.
        """
        log.warning(
            "%s: all %d threads busy, queue full; closing a new connection",
            self.name,
            conn.worker.config.threads,
        )

    def close(self, conn: Connection) -> None:
        """Called before the runtime closes ``conn`` (idle timeout, shutdown); a no-op here."""


class Worker:
    """Serve ``listeners`` with ``handler`` until told to stop.

    ``heartbeat`` (given by the arbiter) is called at least once a second while the worker is
    healthy; it is withheld when every thread has been stuck in one request for longer than
    ``config.timeout``, so the arbiter replaces a hung worker. ``forked`` says whether signals
    come from an arbiter (SIGTERM graceful, SIGQUIT immediate, SIGINT ignored) or from the
    user directly (single-process mode: SIGTERM/SIGINT graceful, a second one immediate).
    """

    # Slots: read on every request, and past 30 attributes CPython keeps an instance's in a
    # plain dict instead of its per-class layout (~1.5k instructions per request on 3.11, ~3.4k
    # on 3.13, callgrind).
    __slots__ = (
        "listeners",
        "handler",
        "config",
        "heartbeat",
        "forked",
        "access_log",
        "inline",
        "pool_size",
        "busy",
        "requests",
        "_started",
        "max_requests",
        "stopping",
        "forced",
        "_queue",
        "_queue_size",
        "_returned",
        "_lock",
        "_inflight",
        "_share",
        "_throttled",
        "_idle",
        "_wake_r",
        "_wake_w",
        "_stop_reason",
        "_hung_logged",
        "scoreboard",
        "slot",
        "status_listener",
        "pid",
        "slow",
        "timeouts",
        "_req_start",
        "_req_info",
        "_req_flags",
        "_req_thread",
        "_watch",
        "_tick",
    )

    def __init__(
        self,
        listeners: list[Listener],
        handler: ConnectionHandler,
        config: ServerConfig,
        *,
        heartbeat: Callable[[], None] | None = None,
        forked: bool = False,
        scoreboard: Scoreboard | None = None,
        slot: int = -1,
        status_listener: Listener | None = None,
    ) -> None:
        self.listeners = listeners
        self.handler = handler
        self.config = config
        self.heartbeat = heartbeat
        self.forked = forked
        self.access_log = AccessLog(config.access_log_format)
        # --threads 0: the main thread serves (slot 0), no pool
        self.inline = config.threads == 0
        self.pool_size = max(config.threads, 1)
        self.busy = [0.0] * self.pool_size
        self.requests = 0
        self._started = itertools.count(1).__next__  # requests begun, counting this one
        self.max_requests = 0
        if config.max_requests:
            self.max_requests = config.max_requests + random.randint(0, config.max_requests_jitter)
        self.stopping = False
        self.forced = False
        # SimpleQueue (C, no Python-level Condition) is bounded by _dispatch, its only producer.
        self._queue: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        self._queue_size = config.queue_size
        self._returned: deque[Connection] = deque()
        self._lock = threading.Lock()
        self._inflight = 0
        # With sibling workers, a worker whose threads are all busy stops accepting, so that an
        # idle sibling takes the next connection (or it waits in the listen backlog).
        self._share = config.workers > 1
        self._throttled = False
        self._idle: dict[int, Connection] = {}
        self._wake_r = self._wake_w = -1
        self._stop_reason = ""
        self._hung_logged = False
        # Operations: the shared scoreboard slot, and each thread's current request.
        self.scoreboard = scoreboard
        self.slot = slot
        self.status_listener = status_listener
        self.pid = os.getpid()
        self.slow = 0
        self.timeouts = 0
        threads = self.pool_size
        self._req_start = [0.0] * threads
        self._req_info: list[Any] = [None] * threads
        self._req_flags = [0] * threads
        self._req_thread = [0] * threads
        watched = [t for t in (config.slow_request_timeout, config.request_timeout) if t]
        self._watch = bool(watched)
        self._tick = min(1.0, max(0.05, min(watched) / 4)) if watched else 1.0

    # -- called from pool threads ------------------------------------------------------------

    def request_started(self) -> None:
        # Counted when a request starts, so the worker stops accepting before it answers the
        # last one: no new connection can slip in while that answer is on its way.
        count = self._started()  # next() of an itertools.count: atomic, no lock
        if self.max_requests and count == self.max_requests:
            self.stop(f"served {count} requests (--max-requests), recycling")

    def request_done(self) -> None:
        with self._lock:
            self.requests += 1
        if self.scoreboard is not None:
            self.publish()

    def track(self, slot: int, started: float, info: Mapping[str, Any] | None) -> None:
        """Thread ``slot`` began a request (for the slow log and --request-timeout)."""
        self._req_info[slot] = info
        self._req_flags[slot] = 0
        self._req_start[slot] = started
        if self.scoreboard is not None:
            self.publish()

    def untrack(self, slot: int) -> None:
        """Thread ``slot``'s request ended: nothing may interrupt it any more."""
        if not self._watch:
            self._req_start[slot] = 0.0
            return
        with self._lock:
            self._req_start[slot] = 0.0
            self._req_info[slot] = None
            if self._req_flags[slot] & _TIMED_OUT:
                _async_raise(self._req_thread[slot], None)  # drop it if not delivered yet
            self._req_flags[slot] = 0

    def publish(self) -> None:
        """Write this worker's counters into its scoreboard slot."""
        scoreboard = self.scoreboard
        if scoreboard is None:
            return
        busy = 0  # threads in a request (set by track(), cleared by untrack() before this)
        for started in self._req_start:
            if started:
                busy += 1
        scoreboard.update(
            self.slot,
            self.pid,
            self.pool_size,
            busy,
            self._queue.qsize(),
            len(self._idle),
            self.requests,
            self.slow,
            self.timeouts,
        )

    def _check_requests(self, now: float) -> None:
        """Log slow requests with their stack; stop those past --request-timeout."""
        from wsgigate.server.status import describe, thread_stack

        slow_after = self.config.slow_request_timeout
        stop_after = self.config.request_timeout
        reports: list[tuple[str, float, str, str]] = []
        with self._lock:
            for slot, started in enumerate(self._req_start):
                if not started:
                    continue
                age = now - started
                flags = self._req_flags[slot]
                ident = self._req_thread[slot]
                if slow_after and age > slow_after and not flags & _SLOW:
                    flags |= _SLOW
                    self.slow += 1
                    what = describe(self._req_info[slot])
                    reports.append(("slow", age, what, thread_stack(ident)))
                if stop_after and age > stop_after and not flags & _TIMED_OUT:
                    flags |= _TIMED_OUT
                    self.timeouts += 1
                    what = describe(self._req_info[slot])
                    reports.append(("timeout", age, what, thread_stack(ident)))
                    _async_raise(ident, RequestTimeout)
                self._req_flags[slot] = flags
        for kind, age, what, stack in reports:
            if kind == "slow":
                slow_log.warning(
                    "slow request (over %gs, --slow-request-timeout): %s running for %.2fs "
                    "in pid %d; its stack:\n%s",
                    slow_after,
                    what,
                    age,
                    self.pid,
                    stack.rstrip(),
                )
            else:
                log.error(
                    "request timeout (--request-timeout %g): %s running for %.2fs in pid %d: "
                    "raising RequestTimeout in its thread; its stack:\n%s",
                    stop_after,
                    what,
                    age,
                    self.pid,
                    stack.rstrip(),
                )
        if reports and self.scoreboard is not None:
            self.publish()

    def stop(self, reason: str, force: bool = False) -> None:
        """Begin a graceful stop (or an immediate one); safe from any thread."""
        if force:
            self.forced = True
        if not self.stopping:
            self.stopping = True
            self._stop_reason = reason
        self._wake()

    def _wake(self) -> None:
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"\0")

    def _thread_main(self, slot: int) -> None:
        self._req_thread[slot] = threading.get_ident()
        while True:
            try:
                if not self._serve_next(slot):
                    return
            except RequestTimeout:  # delivered after its request ended: nothing left to stop
                log.info("%s: a request timeout arrived after its request ended", self.handler.name)

    def _serve_next(self, slot: int) -> bool:
        """Serve the next queued connection, then any the thread can accept itself; False when
        told to exit."""
        conn = self._queue.get()
        if conn is None:
            return False
        while conn is not None:
            if self._serve(slot, conn):
                break  # kept alive: its web server reuses connections, no new one is waiting
            conn = self._accept_here()
        return True

    def _accept_here(self) -> Connection | None:
        """A connection waiting in a listener's backlog, accepted by this (now free) pool thread.

        Serving it on this thread saves the hand-over from the main thread (a wake-up and two
        thread switches per connection, most of the runtime's cost with keep_conn off) when
        connections arrive faster than one at a time. Queued connections come first.
        """
        if self._queue.qsize():
            return None
        # Counted in flight before accepting (and checked for a stop under the same lock), so a
        # graceful stop waits for a connection this thread is taking instead of dropping it.
        with self._lock:
            if self.stopping:
                return None
            self._inflight += 1
        for listener in self.listeners:
            try:
                sock, peer = listener.accept()
            except OSError:  # EAGAIN (nothing waiting), or a listener closed by a stop
                continue
            return self._connection(sock, peer, listener)
        with self._lock:
            self._inflight -= 1
        if self._throttled:
            self._wake()
        return None

    def _handle(self, slot: int, conn: Connection) -> bool:
        """Run the handler on ``conn`` in thread slot ``slot``; True if it wants to keep it."""
        conn.slot = slot
        self.busy[slot] = time.monotonic()
        keep = False
        try:
            keep = self.handler.handle(conn)
        except Exception:
            log.exception(
                "%s: error serving a connection from %s",
                self.handler.name,
                conn.peer_host or conn.listener.address,
            )
        finally:
            if self._req_start[slot]:
                self.untrack(slot)
            self.busy[slot] = 0.0
            conn.slot = -1
        return keep

    def _serve(self, slot: int, conn: Connection) -> bool:
        """Run the handler on ``conn``; True if the connection was kept (parked for later)."""
        # Kept even while stopping: the main thread closes it once it has rested (see run())
        kept = self._handle(slot, conn)
        if kept:
            self._returned.append(conn)
            self._wake()
        else:
            self._close(conn)
        with self._lock:
            self._inflight -= 1
        if self._throttled:
            self._wake()
        return kept

    def _close(self, conn: Connection) -> None:
        try:
            self.handler.close(conn)
        except Exception:
            log.exception("%s: error closing a connection", self.handler.name)
        conn.close()

    # -- main thread -------------------------------------------------------------------------

    def _signal(self, signum: int, frame: object) -> None:
        if self.forked:
            if signum == signal.SIGQUIT:
                self.stop("SIGQUIT", force=True)
            elif signum == signal.SIGTERM:
                self.stop("SIGTERM")
            return
        if signum == signal.SIGHUP:
            log.info("SIGHUP ignored in single-process mode (--workers 0)")
            return
        name = signal.Signals(signum).name
        if self.stopping or signum == signal.SIGQUIT:
            log.info("%s again: stopping now", name)
            self.stop(name, force=True)
        else:
            self.stop(name)

    def _install_signals(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGQUIT, signal.SIGINT, signal.SIGHUP):
            if self.forked and signum == signal.SIGINT:
                signal.signal(signum, signal.SIG_IGN)  # Ctrl-C: the arbiter sends SIGTERM
            elif self.forked and signum == signal.SIGHUP:
                signal.signal(signum, signal.SIG_IGN)
            else:
                signal.signal(signum, self._signal)
        for signum in (signal.SIGCHLD, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(signum, signal.SIG_DFL)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)

    def _serve_inline(self, conn: Connection) -> None:
        """--threads 0: serve ``conn`` on the main thread, now."""
        # No lock: with no pool, this thread alone changes the in-flight count.
        self._inflight += 1
        try:
            if self._handle(0, conn):
                self._returned.append(conn)  # parked by the loop, right after this
            else:
                self._close(conn)
        except RequestTimeout:  # delivered after its request ended: nothing left to stop
            self._close(conn)
        finally:
            self._inflight -= 1

    def _watchdog(self) -> None:
        """--threads 0: the slow log and --request-timeout, from a thread of their own (the
        main thread is in the request)."""
        while not self.stopping and self._wake_w >= 0:
            time.sleep(self._tick)
            self._check_requests(time.monotonic())

    def _dispatch(self, conn: Connection) -> None:
        if self.inline:
            self._serve_inline(conn)
            return
        if self._queue.qsize() < self._queue_size:
            with self._lock:
                self._inflight += 1
            self._queue.put(conn)
        else:
            try:
                self.handler.overloaded(conn)
            except Exception:
                log.exception("%s: overloaded hook failed", self.handler.name)
            self._close(conn)

    def _accept(self, listener: Listener) -> None:
        accept = listener.accept
        for _ in range(64):  # bounded, so parked connections get their turn
            if self.stopping:
                return
            try:
                sock, peer = accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # EMFILE, ECONNABORTED...: log and carry on rather than die.
                log.warning("accept on %s failed: %s", listener.address, exc)
                return
            self._dispatch(self._connection(sock, peer, listener))

    def _connection(self, sock: socket.socket, peer: Any, listener: Listener) -> Connection:
        """Wrap an accepted descriptor: a blocking socket whose I/O timeout is the kernel's.

        ``--timeout`` is set as SO_RCVTIMEO/SO_SNDTIMEO, and TCP_NODELAY, on the listener
        once (see :func:`tune_listener`); Linux passes them on to every accepted TCP socket, so
        a connection costs no setsockopt, and, its socket being blocking for Python, no poll()
        before each recv and send (what ``settimeout()`` costs). A listener that does not pass
        them on (unix sockets) gets them set on each connection.
        """
        if not listener.inherited:
            tune_connection(sock, listener, self.config.timeout)
        return Connection(sock, peer, listener, self)

    def _close_idle(self, selector: _Poller, parked_before: float) -> None:
        """Close the idle kept-alive connections parked before ``parked_before``; one with a
        request waiting (it came while this thread was busy, say with --threads 0) is served."""
        for fileno, conn in list(self._idle.items()):
            if conn.idle_since < parked_before:
                selector.unregister(fileno)
                del self._idle[fileno]
                if _has_data(conn.sock):
                    self._dispatch(conn)
                else:
                    self._close(conn)

    def _is_hung(self, now: float) -> bool:
        timeout = self.config.timeout
        if not timeout:
            return False
        return all(start and now - start > timeout for start in self.busy)

    def run(self) -> int:
        """Serve until stopped; return the exit status (0 after a graceful stop)."""
        if self.max_requests:
            log.info("recycling after %d requests (--max-requests)", self.max_requests)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._install_signals()
        selector = _Poller()
        selector.register(self._wake_r, None)
        for listener in self.listeners:
            tune_listener(listener, self.config.timeout)
            selector.register(listener.fileno, listener)
        status = self.status_listener
        if status is not None:
            selector.register(status.sock.fileno(), status)
        self.pid = os.getpid()
        if self.scoreboard is not None:
            from wsgigate.server.status import set_process_state

            set_process_state(self.scoreboard, self.listeners)
            self.publish()
        threads = [
            threading.Thread(
                target=self._thread_main,
                args=(slot,),
                daemon=True,
                name=f"{self.handler.name}-{slot}",
            )
            for slot in range(self.config.threads)
        ]
        for thread in threads:
            thread.start()
        if self.inline:
            self._req_thread[0] = threading.get_ident()
            if self._watch:
                watchdog = threading.Thread(
                    target=self._watchdog, daemon=True, name=f"{self.handler.name}-watchdog"
                )
                watchdog.start()
        listening = True
        deadline = 0.0
        last_beat = 0.0
        last_tick = 0.0
        last_sweep = 0.0
        tick = self._tick
        keepalive = self.config.keepalive
        sweep = min(tick, keepalive / 4) if keepalive is not None else 0.0
        try:
            while not self.forced:
                for data in selector.select(0.05 if self.stopping or self._throttled else tick):
                    if data is None:
                        with contextlib.suppress(OSError):
                            os.read(self._wake_r, 4096)
                    elif type(data) is Connection:
                        fileno = data.sock.fileno()
                        selector.unregister(fileno)
                        del self._idle[fileno]
                        self._dispatch(data)
                    elif data is status and status is not None:
                        from wsgigate.server.status import accept_status

                        accept_status(status, self.config, self.scoreboard, self.listeners)
                    elif listening and not self.stopping:
                        self._accept(data)
                now = time.monotonic()
                if now - last_tick >= tick:
                    last_tick = now
                    if self._watch:
                        self._check_requests(now)
                    if self.scoreboard is not None:
                        self.publish()
                while self._returned:
                    # Parked even while stopping (kept just before the stop began): closed
                    # once it has rested, like every idle connection then.
                    conn = self._returned.popleft()
                    conn.idle_since = now
                    fileno = conn.sock.fileno()
                    self._idle[fileno] = conn
                    selector.register(fileno, conn)
                if self._share and listening and not self.stopping:
                    saturated = self._inflight >= self.pool_size
                    if saturated != self._throttled:
                        for listener in self.listeners:
                            if saturated:
                                selector.unregister(listener.fileno)
                            else:
                                selector.register(listener.fileno, listener)
                        self._throttled = saturated
                if self.stopping:
                    if listening:
                        listening = False
                        log.info(
                            "%s: %s; finishing in-flight requests (up to %gs)",
                            self.handler.name,
                            self._stop_reason,
                            self.config.graceful_timeout,
                        )
                        deadline = now + self.config.graceful_timeout
                        for listener in self.listeners:
                            if not self._throttled:
                                selector.unregister(listener.fileno)
                            if self.forked:
                                listener.close()  # the arbiter keeps its copy
                    # Idle kept-alive connections stay watched until they have rested: the
                    # front end takes the one it used last first (nginx's pool is a stack), so
                    # closing one it just gave back races with its next request (a GET is
                    # retried elsewhere, a POST gets a 502). A request on one is served, and
                    # the handler closes the connection with its answer.
                    self._close_idle(selector, now - STOP_IDLE_REST)
                    with self._lock:
                        inflight = self._inflight
                    if not inflight and not self._returned and not self._idle:
                        break
                    if now > deadline:
                        log.warning(
                            "%s: graceful timeout: %d request(s) cut off",
                            self.handler.name,
                            inflight,
                        )
                        break
                elif keepalive is not None and self._idle and now - last_sweep >= sweep:
                    # Idle kept-alive connections past --keep-alive, looked at a few times per
                    # --keep-alive period (not after every event: nginx keeps 16 of them).
                    last_sweep = now
                    self._close_idle(selector, now - keepalive)
                if self.heartbeat is not None and now - last_beat >= 0.5:
                    if self._is_hung(now):
                        if not self._hung_logged:
                            log.error(
                                "every thread stuck in a request for over %gs; the "
                                "arbiter will replace this worker",
                                self.config.timeout,
                            )
                            self._hung_logged = True
                    else:
                        self.heartbeat()
                        last_beat = now
        finally:
            signal.set_wakeup_fd(-1)
            if status is not None:
                selector.unregister(status.sock.fileno())
            for _ in threads:
                self._queue.put(None)
            for conn in [*self._idle.values(), *self._returned]:
                self._close(conn)
            self._returned.clear()
            selector.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1
        return 0


_OVERLOADED_BODY = b"503 Service Unavailable: server overloaded\n"
# What a worker answers when every thread is busy and the queue is full (FastCGI wraps it in
# STDOUT records with END_REQUEST(FCGI_OVERLOADED); SCGI sends it as it is).
OVERLOADED_ANSWER = (
    cgi_response_head(
        "503 Service Unavailable",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(_OVERLOADED_BODY))),
            ("Retry-After", "1"),
        ],
    )
    + _OVERLOADED_BODY
)


class _Poller:
    """The main thread's readiness loop: epoll where there is one, else poll (never select()).

    Registered by file descriptor with the object :meth:`select` hands back. Listeners are not
    registered EPOLLEXCLUSIVE: an exclusive wake-up taken by a worker that is stopping (it
    accepts nothing more) would leave the connection waiting in the backlog with no sibling
    woken for it; the CPU it saved per request was lost in the measurement noise.
    """

    def __init__(self) -> None:
        self._data: dict[int, Any] = {}
        self._epoll: Any = None
        self._poll: Any = None
        if hasattr(select, "epoll"):
            self._epoll = select.epoll()
        else:  # pragma: no cover - not Linux
            self._poll = select.poll()

    def register(self, fd: int, data: Any) -> None:
        if self._epoll is None:  # pragma: no cover - not Linux
            self._poll.register(fd, select.POLLIN)
        else:
            self._epoll.register(fd, select.EPOLLIN)
        self._data[fd] = data

    def unregister(self, fd: int) -> None:
        del self._data[fd]
        with contextlib.suppress(OSError, ValueError):
            (self._epoll or self._poll).unregister(fd)

    def select(self, timeout: float) -> list[Any]:
        if self._epoll is not None:
            ready = self._epoll.poll(timeout)
        else:  # pragma: no cover - not Linux
            ready = self._poll.poll(timeout * 1000)
        data = self._data
        return [data[fd] for fd, _ in ready if fd in data]

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()


_TIMEVAL = struct.Struct("@ll")  # struct timeval, for SO_RCVTIMEO / SO_SNDTIMEO


def _timeval(seconds: float) -> bytes:
    whole = int(seconds)
    return _TIMEVAL.pack(whole, int((seconds - whole) * 1e6))


def _set_options(sock: socket.socket, tcp: bool, timeout: float) -> None:
    if tcp:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    value = _timeval(timeout)  # 0: no timeout
    for option in _TIMEOUTS:
        sock.setsockopt(socket.SOL_SOCKET, option, value)


_TIMEOUTS = (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO)


def tune_listener(listener: Listener, timeout: float) -> None:
    """Set what every connection needs (TCP_NODELAY, the I/O timeout) on the listener itself.

    Linux copies these options into each socket ``accept()`` returns; whether this listener's
    connections really get them is checked on its first connections (:func:`tune_connection`).
    """
    listener.inherited = False
    listener.checks = _CHECKS
    with contextlib.suppress(OSError):
        _set_options(listener.sock, listener.family != socket.AF_UNIX, timeout)


_CHECKS = 16  # connections looked at before a listener is taken for one that passes nothing on


def tune_connection(sock: socket.socket, listener: Listener, timeout: float) -> None:
    """Give an accepted socket TCP_NODELAY and the I/O timeout, unless its listener passed them
    on: learnt from one of its first connections, then trusted. A connection that was waiting
    in the backlog before the options were set on the listener (systemd socket activation, a
    connection during start-up) has none; the next ones are looked at, up to ``_CHECKS``."""
    tcp = listener.family != socket.AF_UNIX
    if listener.checks > 0:
        listener.checks -= 1
        with contextlib.suppress(OSError):
            nodelay = not tcp or sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            # compared with what the listener reads back: the kernel rounds to its clock ticks
            options = [(socket.SOL_SOCKET, option, _TIMEVAL.size) for option in _TIMEOUTS]
            want = [listener.sock.getsockopt(*option) for option in options]
            got = [sock.getsockopt(*option) for option in options]
            listener.inherited = bool(nodelay) and got == want
        if listener.inherited:
            return
    with contextlib.suppress(OSError):
        _set_options(sock, tcp, timeout)


def linger(sock: socket.socket, seconds: float, max_bytes: int = 64 << 20) -> None:
    """Half-close, then read and drop what the web server still sends, for at most ``seconds``.

    Closing a socket with unread bytes makes the kernel send a reset, which can destroy the
    response still in flight to the web server (mod_proxy_fcgi and nginx report it as an
    upstream error). Used by every protocol before it closes a connection it did not drain.
    """
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + seconds
        dropped = 0
        while dropped < max_bytes:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            data = sock.recv(65536)
            if not data:
                break
            dropped += len(data)


def recv_body(sock: socket.socket, size: int) -> bytes:
    """``sock.recv(size)`` for request body the app is reading. The kernel's I/O timeout
    (SO_RCVTIMEO, ``--timeout``) ends a recv with BlockingIOError ("Resource temporarily
    unavailable"); the app gets the TimeoutError a timed-out read raises everywhere else."""
    try:
        return sock.recv(size)
    except BlockingIOError:
        message = "the web server sent no more of the request body for --timeout"
        raise TimeoutError(message) from None


def _has_data(sock: socket.socket) -> bool:
    """Whether ``sock`` has bytes (or an end of stream) to read right now."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except OSError:  # BlockingIOError (nothing), or a broken connection: close it
        return False


_MSG_MORE = getattr(socket, "MSG_MORE", 0)  # Linux


def send_closing(sock: socket.socket, data: bytes, unix_trailer: bytes = b"") -> None:
    """Send ``data``, the last bytes on a kept-alive connection, with the end of stream.

    The front end must read the last answer and the close together, or it may put the
    connection back in its keep-alive pool and send the next request on it. Over TCP the data
    is held back (``MSG_MORE``) until ``shutdown()`` adds the FIN to the same segment. A unix
    socket has no such flag: the protocol's ``unix_trailer``, sent in the same write, must tell
    the front end not to reuse the connection. The caller closes ``sock``.
    """
    if sock.family != socket.AF_UNIX:
        sock.sendall(data, _MSG_MORE)
    else:
        sock.sendall(data + unix_trailer)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


def _async_raise(ident: int, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` in thread ``ident`` when it next runs Python code (None: cancel that)."""
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc) if exc is not None else None
    )
