"""The arbiter: binds, forks the workers, and keeps their number right.

Signals (as an operator of gunicorn or PHP-FPM expects them)::

    SIGTERM, SIGINT   graceful stop: workers stop accepting, finish in-flight requests within
                      --graceful-timeout, then exit; a second SIGTERM/SIGINT stops at once
    SIGQUIT           immediate stop
    SIGHUP            replace every worker: new ones start accepting, then the old ones get a
                      graceful stop (the listening sockets never close, no request is dropped)
    SIGTTIN, SIGTTOU  one worker more, one worker fewer

A worker that dies is logged and respawned; one that misses its heartbeat for --timeout seconds
(it is stuck, or every thread of it is stuck in a request) is killed with SIGKILL and respawned;
one that served --max-requests exits by itself and is replaced.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import selectors
import signal
import sys
import tempfile
import time

from wsgigate.server.worker import Worker, tune_listener

TYPE_CHECKING = False
if TYPE_CHECKING:
    from wsgigate.server.bind import Listener
    from wsgigate.server.config import ServerConfig
    from wsgigate.server.status import Scoreboard
    from wsgigate.server.worker import ConnectionHandler

log = logging.getLogger("wsgigate.error")

_HANDLED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGCHLD,
    signal.SIGTTIN,
    signal.SIGTTOU,
)


class _Child:
    __slots__ = ("pid", "beat", "born", "old", "killed", "slot")

    def __init__(self, pid: int, beat: int, slot: int = -1) -> None:
        self.pid = pid
        self.slot = slot  # its scoreboard slot
        self.beat = beat  # fd of an unlinked temp file whose mtime the worker refreshes
        self.born = time.monotonic()
        self.old = False  # replaced after SIGHUP, draining
        self.killed = False


class Arbiter:
    """Run ``config.workers`` worker processes serving ``listeners`` with ``handler``."""

    def __init__(
        self,
        listeners: list[Listener],
        handler: ConnectionHandler,
        config: ServerConfig,
        *,
        scoreboard: Scoreboard | None = None,
        status_listener: Listener | None = None,
    ) -> None:
        self.scoreboard = scoreboard
        self.status_listener = status_listener
        self.listeners = listeners
        self.handler = handler
        self.config = config
        self.wanted = config.workers
        self.children: dict[int, _Child] = {}
        self.stopping = False
        self.deadline = 0.0
        self._signals: list[int] = []
        self._wake_r = self._wake_w = -1
        self._recent_deaths: list[float] = []

    # -- workers -----------------------------------------------------------------------------

    def spawn(self) -> None:
        fd, _path = tempfile.mkstemp(prefix="wsgigate-beat-")
        os.unlink(_path)
        os.set_inheritable(fd, False)
        slot = self.scoreboard.claim(-1) if self.scoreboard is not None else -1
        try:
            pid = os.fork()
        except OSError as exc:  # EAGAIN, ENOMEM: try again on the next round
            os.close(fd)
            if self.scoreboard is not None:
                self.scoreboard.release(slot)
            log.error("cannot start a worker: %s", exc)
            self._recent_deaths.append(time.monotonic())
            return
        if pid:
            self.children[pid] = _Child(pid, fd, slot)
            log.info("booted worker %d", pid)
            return
        # The worker process: never return into the arbiter's code.
        status = 1
        try:
            for signum in _HANDLED:
                signal.signal(signum, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            os.close(self._wake_r)
            os.close(self._wake_w)
            for child in self.children.values():
                os.close(child.beat)
            if self.status_listener is not None:
                self.status_listener.sock.close()  # the arbiter answers it

            def beat() -> None:
                os.utime(fd)

            worker = Worker(
                self.listeners,
                self.handler,
                self.config,
                heartbeat=beat,
                forked=True,
                scoreboard=self.scoreboard,
                slot=slot,
            )
            status = worker.run()
            if worker.stopping and worker._stop_reason.startswith("served"):
                log.info("worker %d exiting after %d requests", os.getpid(), worker.requests)
        except BaseException:
            log.exception("worker %d failed", os.getpid())
            status = 1
        finally:
            logging.shutdown()
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(status)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            os.close(child.beat)
            if self.scoreboard is not None:
                self.scoreboard.release(child.slot)
            if os.WIFSIGNALED(status):
                how = f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
            else:
                how = f"exited with status {os.waitstatus_to_exitcode(status)}"
            if self.stopping or child.old or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                log.info("worker %d %s", pid, how)
            else:
                log.error("worker %d %s; starting a new one", pid, how)
                self._recent_deaths.append(time.monotonic())

    def _kill(self, pid: int, signum: int) -> None:
        try:
            os.kill(pid, signum)
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise

    def _check_heartbeats(self) -> None:
        timeout = self.config.timeout
        if not timeout:
            return
        now = time.time()
        for child in list(self.children.values()):
            if child.killed:
                continue
            try:
                last = os.fstat(child.beat).st_mtime
            except OSError:
                continue
            if now - last > timeout and time.monotonic() - child.born > timeout:
                log.error(
                    "worker %d silent for %.1fs (--timeout %g): killing it",
                    child.pid,
                    now - last,
                    timeout,
                )
                child.killed = True
                self._kill(child.pid, signal.SIGKILL)

    def _manage(self) -> None:
        active = [c for c in self.children.values() if not c.old]
        if len(active) > self.wanted:
            for child in sorted(active, key=lambda c: c.born)[: len(active) - self.wanted]:
                child.old = True
                self._kill(child.pid, signal.SIGTERM)
        missing = self.wanted - len(active)
        if missing <= 0:
            return
        # A worker that dies right after birth would otherwise fork-bomb: back off a little.
        now = time.monotonic()
        self._recent_deaths = [t for t in self._recent_deaths if now - t < 5.0]
        if len(self._recent_deaths) > 2 * max(self.wanted, 1):
            time.sleep(0.5)
        for _ in range(missing):
            self.spawn()

    # -- signals -----------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.append(signum)

    def _handle_signals(self) -> bool:
        """Act on queued signals; return False when the arbiter must exit now."""
        while self._signals:
            signum = self._signals.pop(0)
            if signum == signal.SIGCHLD:
                continue  # reaped below
            name = signal.Signals(signum).name
            if signum in (signal.SIGTERM, signal.SIGINT):
                if self.stopping:
                    log.info("%s again: stopping now", name)
                    self._stop_all(signal.SIGKILL)
                    return False
                log.info(
                    "%s: graceful stop (up to %gs; send it again to stop now)",
                    name,
                    self.config.graceful_timeout,
                )
                self.stopping = True
                self.deadline = time.monotonic() + self.config.graceful_timeout
                self._stop_all(signal.SIGTERM)
            elif signum == signal.SIGQUIT:
                log.info("SIGQUIT: stopping now")
                self._stop_all(signal.SIGQUIT)
                return False
            elif signum == signal.SIGHUP and not self.stopping:
                log.info("SIGHUP: replacing %d worker(s)", self.wanted)
                old = [c for c in self.children.values() if not c.old]
                for child in old:
                    child.old = True
                for _ in range(self.wanted):
                    self.spawn()
                for child in old:
                    self._kill(child.pid, signal.SIGTERM)
            elif signum == signal.SIGTTIN and not self.stopping:
                self.wanted += 1
                log.info("SIGTTIN: %d worker(s)", self.wanted)
            elif signum == signal.SIGTTOU and not self.stopping and self.wanted > 1:
                self.wanted -= 1
                log.info("SIGTTOU: %d worker(s)", self.wanted)
        return True

    def _stop_all(self, signum: int) -> None:
        for pid in list(self.children):
            self._kill(pid, signum)

    # -- main loop ---------------------------------------------------------------------------

    def run(self) -> int:
        for listener in self.listeners:  # before any worker exists: fewer untuned connections
            tune_listener(listener, self.config.timeout)
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
            os.set_inheritable(fd, False)
        for signum in _HANDLED:
            signal.signal(signum, self._on_signal)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ)
        status = self.status_listener
        if status is not None:
            selector.register(status.sock, selectors.EVENT_READ, status)
        try:
            self._manage()
            while True:
                for key, _ in selector.select(0.5):
                    if key.data is status and status is not None:
                        from wsgigate.server.status import accept_status

                        if self.scoreboard is not None:
                            self.scoreboard.set_wanted(self.wanted)
                        accept_status(status, self.config, self.scoreboard, self.listeners)
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 4096)
                if not self._handle_signals():
                    break
                self._reap()
                if self.stopping:
                    if not self.children:
                        break
                    if time.monotonic() > self.deadline + 1.0:
                        log.warning("graceful timeout: killing %d worker(s)", len(self.children))
                        self._stop_all(signal.SIGKILL)
                        self.deadline = float("inf")
                    continue
                self._check_heartbeats()
                self._manage()
            # Forced stop: collect what we killed, briefly.
            end = time.monotonic() + 2.0
            while self.children and time.monotonic() < end:
                self._reap()
                time.sleep(0.02)
        finally:
            signal.set_wakeup_fd(-1)
            for signum in _HANDLED:
                signal.signal(signum, signal.SIG_DFL)
            selector.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            for child in self.children.values():
                with contextlib.suppress(OSError):
                    os.close(child.beat)
        return 0
