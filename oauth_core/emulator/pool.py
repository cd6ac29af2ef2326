"""Connections without a thread each: one reactor thread and a fixed pool of workers.

The reactor owns every connection that is not being answered: it accepts, waits for bytes with a
selector, and buffers them until one whole request (head and ``Content-Length`` body) is there.
Only then does a worker get the connection, answer that request from memory and hand the
connection back (or answer the next pipelined request at once). A silent, idle or half-sent
connection therefore costs a buffer and a selector entry, never a thread, and is closed after
``idle_timeout``: the wait for a request may last that long, and so may receiving it once its
first byte arrived. TLS handshakes advance non-blocking, a step per worker task, within the same
deadline. A request the handler defers (an injected delay) is parked on the reactor's timer heap,
so a hundred delayed requests hold no thread either. At ``max_connections`` open connections the
oldest idle one is closed to make room for a new one (so does running out of descriptors). While
another worker is idle and no task waits, the worker that just answered keeps watching its
keep-alive connection for up to ``linger`` seconds, so one client reusing one connection pays no
hand-off between threads: its next request is answered as soon as it arrives (nothing sleeps).
"""

from __future__ import annotations

import errno
import heapq
import itertools
import logging
import queue
import select
import selectors
import socket
import ssl
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Union

from .framing import Frame, frame

__all__ = ["CLOSE", "KEEP", "Conn", "Deferred", "Outcome", "Pool"]

_log = logging.getLogger(__name__)

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_TICK = 0.25  # seconds between idle sweeps
_LINGER_SLICE = 0.005
_OUT_OF_FDS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_NO_DATA = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


KEEP = "keep"  # answered, the connection stays open for the next request
CLOSE = "close"  # answered (or not), close the connection
Outcome = Union[str, "Deferred"]
Serve = Callable[["Conn", bytes], Outcome]


@dataclass(frozen=True)
class Deferred:
    """Answer later: run ``resume`` on a worker after ``seconds`` (the connection waits parked)."""

    seconds: float
    resume: Callable[[], Outcome]


def _readable(sock: socket.socket, timeout: float) -> bool:
    """Whether ``sock`` has bytes (or its end) within ``timeout``; poll() has no descriptor limit."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(timeout * 1000))
    return bool(select.select([sock], [], [], timeout)[0])


class Conn:
    """One accepted connection; owned by the reactor, a worker or the timer heap at any moment."""

    __slots__ = ("address", "buf", "closed", "continued", "deadline", "handshaking", "sock")

    def __init__(self, sock: socket.socket, address: Any, handshaking: bool, deadline: float) -> None:
        self.sock = sock
        self.address = address
        self.buf = bytearray()
        self.handshaking = handshaking
        self.deadline = deadline
        self.continued = False
        self.closed = False


class Pool:
    """Serve ``listener`` with ``serve(conn, request_bytes)`` on ``workers`` threads.

    Args:
        listener: a bound, listening socket.
        serve: answers one request on ``conn.sock`` (blocking, with ``idle_timeout`` as the send
            timeout); returns :data:`KEEP`, :data:`CLOSE` or a :class:`Deferred`.
        tls: a server context; handshakes then run before the first request.
        workers: worker threads; idle_timeout: seconds (see the module docstring);
        max_connections: open connections at most; linger: seconds a worker keeps watching the
            connection it just answered when nothing else waits (0 turns it off).
    """

    def __init__(
        self,
        listener: socket.socket,
        serve: Serve,
        *,
        tls: Optional[ssl.SSLContext] = None,
        workers: int = 16,
        idle_timeout: float = 5.0,
        max_connections: int = 1000,
        max_body: int = 1024 * 1024,
        linger: float = 0.05,
    ) -> None:
        if workers < 1 or max_connections < 1 or not idle_timeout > 0 or linger < 0:
            raise ValueError("workers and max_connections must be positive, idle_timeout > 0, linger >= 0")
        self._listener = listener
        self._serve = serve
        self._tls = tls
        self.idle_timeout = idle_timeout
        self._max_connections = max_connections
        self._max_body = max_body
        self._linger = linger
        self._tasks: queue.SimpleQueue[Optional[Callable[[], None]]] = queue.SimpleQueue()
        self._idle_workers = 0
        self._lock = threading.Lock()
        self._open: Set[Conn] = set()
        self._waiting: OrderedDict[Conn, None] = OrderedDict()  # registered in the selector, oldest first
        self._timers: List[Tuple[float, int, Conn, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._incoming: List[Tuple[Conn, Any]] = []
        self._woken = False
        self._stopping = False
        self._paused_until = 0.0  # accepting paused (out of descriptors) until then
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        listener.setblocking(False)
        self._selector.register(listener, selectors.EVENT_READ, "listener")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._threads = [threading.Thread(target=self._reactor, name="oauth-core-emulator", daemon=True)]
        self._threads += [
            threading.Thread(target=self._work, name=f"oauth-core-emulator-{n}", daemon=True) for n in range(workers)
        ]

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop accepting, close every connection (answers being written fail fast) and the listener."""
        self._stopping = True
        self._wake()
        reactor, workers = self._threads[0], self._threads[1:]
        if reactor.is_alive():
            reactor.join(timeout=5)
        with self._lock:
            everyone = list(self._open)
        for conn in everyone:
            try:
                socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)  # the raw socket, even under TLS
            except OSError:
                pass
        for _ in workers:
            self._tasks.put(None)
        deadline = time.monotonic() + 5
        for thread in workers:
            if thread.is_alive():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for conn in everyone:
            self._close(conn)
        for closable in (self._listener, self._wake_r, self._wake_w):
            closable.close()
        self._selector.close()

    def _close(self, conn: Conn) -> None:
        with self._lock:
            if conn.closed:
                return
            conn.closed = True
            self._open.discard(conn)
        try:
            conn.sock.close()
        except OSError:
            pass

    # --- hand-offs between threads ------------------------------------------------------------

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full (a wake-up is pending anyway) or closed
            pass

    def _post(self, conn: Conn, what: Any) -> None:
        """Give ``conn`` back to the reactor: ``what`` is an event mask or a (due, resume) timer."""
        with self._lock:
            self._incoming.append((conn, what))
            if self._woken:
                return
            self._woken = True
        self._wake()

    def _dispatch(self, task: Callable[[], None]) -> None:
        self._tasks.put(task)

    # --- the reactor thread -------------------------------------------------------------------

    def _reactor(self) -> None:
        next_sweep = time.monotonic() + _TICK
        try:
            while not self._stopping:
                now = time.monotonic()
                timeout = min(_TICK, max(0.0, next_sweep - now))
                if self._timers:
                    timeout = min(timeout, max(0.0, self._timers[0][0] - now))
                for key, mask in self._selector.select(timeout):
                    self._event(key.data, mask)
                self._take_incoming()
                now = time.monotonic()
                self._fire_timers(now)
                if now >= next_sweep:
                    self._sweep(now)
                    next_sweep = now + _TICK
        except Exception:
            _log.exception("emulator reactor stopped")

    def _event(self, data: Any, mask: int) -> None:
        if data == "listener":
            self._accept()
        elif data == "wake":
            self._drain_wake()
        else:
            try:
                self._ready(data, mask)
            except Exception:  # one connection's surprise must not stop the reactor
                _log.debug("emulator connection failed", exc_info=True)
                self._unwatch(data)
                self._close(data)

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_FDS and not self._evict_oldest():
                    # Nothing to give back: leave new connections in the backlog for a moment.
                    self._selector.unregister(self._listener)
                    self._paused_until = time.monotonic() + 0.1
                    return
                continue
            self._admit(sock, address, time.monotonic())

    def _admit(self, sock: socket.socket, address: Any, now: float) -> None:
        if len(self._open) >= self._max_connections and not self._evict_oldest():
            sock.close()  # every connection is being answered: shed the new one
            return
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError):
            sock.close()
            return
        conn = Conn(sock, address, self._tls is not None, now + self.idle_timeout)
        with self._lock:
            self._open.add(conn)
        self._watch(conn, selectors.EVENT_READ)

    def _evict_oldest(self) -> bool:
        if not self._waiting:
            return False
        oldest = next(iter(self._waiting))
        self._unwatch(oldest)
        self._close(oldest)
        return True

    def _watch(self, conn: Conn, events: int) -> None:
        if conn.closed:
            return
        try:
            self._selector.register(conn.sock, events, conn)
        except (OSError, ValueError, KeyError):
            self._close(conn)
            return
        self._waiting[conn] = None
        if not conn.handshaking and isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending():
            self._ready(conn, selectors.EVENT_READ)  # decrypted bytes the selector cannot see

    def _unwatch(self, conn: Conn) -> None:
        self._waiting.pop(conn, None)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _take_incoming(self) -> None:
        with self._lock:
            incoming, self._incoming = self._incoming, []
            self._woken = False
        for conn, what in incoming:
            if isinstance(what, tuple):
                heapq.heappush(self._timers, (what[0], next(self._sequence), conn, what[1]))
            else:
                self._watch(conn, what)

    def _fire_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, _, _, resume = heapq.heappop(self._timers)
            self._dispatch(resume)

    def _sweep(self, now: float) -> None:
        if self._paused_until and now >= self._paused_until:
            self._paused_until = 0.0
            self._selector.register(self._listener, selectors.EVENT_READ, "listener")
        expired = [conn for conn in self._waiting if conn.deadline <= now]
        for conn in expired:
            self._unwatch(conn)
            self._close(conn)

    def _ready(self, conn: Conn, mask: int) -> None:
        if conn.handshaking:
            self._unwatch(conn)
            self._dispatch(lambda: self._handshake(conn))
            return
        alive = self._receive(conn)
        found = frame(conn.buf, self._max_body)
        if found.size is None:
            if not alive:
                self._unwatch(conn)
                self._close(conn)
            elif found.expects_continue and not conn.continued:
                conn.continued = True
                try:
                    conn.sock.send(_CONTINUE)
                except OSError:
                    pass
            return
        self._unwatch(conn)
        raw, final = self._take(conn, found.size), found.final or not alive  # a half-closed client gets its answer
        self._dispatch(lambda: self._answer(conn, raw, final))

    def _receive(self, conn: Conn) -> bool:
        """Read what is there into ``conn.buf``; False at the end of the stream or an error."""
        try:
            while True:
                data = conn.sock.recv(65536)
                if not data:
                    return False
                if not conn.buf:
                    conn.deadline = time.monotonic() + self.idle_timeout  # a request began: it must arrive in full
                conn.buf += data
                if not (isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending()):
                    return True
        except _NO_DATA:
            return True
        except (OSError, ValueError):
            return False

    @staticmethod
    def _take(conn: Conn, size: int) -> bytes:
        raw = bytes(conn.buf[:size])
        del conn.buf[:size]
        conn.continued = False
        return raw

    # --- the workers --------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle_workers += 1
            task = self._tasks.get()
            with self._lock:
                self._idle_workers -= 1
            if task is None:
                return
            try:
                task()
            except Exception:
                _log.debug("emulator worker task failed", exc_info=True)

    def _handshake(self, conn: Conn) -> None:
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._post(conn, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._post(conn, selectors.EVENT_WRITE)
            return
        except (OSError, ValueError):
            self._close(conn)
            return
        conn.handshaking = False
        conn.deadline = time.monotonic() + self.idle_timeout
        self._post(conn, selectors.EVENT_READ)

    def _answer(self, conn: Conn, raw: bytes, final: bool) -> None:
        while not conn.closed:
            try:
                conn.sock.settimeout(self.idle_timeout)
                outcome = self._serve(conn, raw)
            except Exception:
                _log.debug("emulator request failed", exc_info=True)
                outcome = CLOSE
            if isinstance(outcome, Deferred):
                self._park(conn, outcome, final)
                return
            if outcome != KEEP or final:
                self._close(conn)
                return
            found = self._next_request(conn)
            if found is None:
                return
            raw, final = self._take(conn, found.size or 0), found.final

    def _park(self, conn: Conn, deferred: Deferred, final: bool) -> None:
        def resume() -> None:
            outcome: Outcome
            try:
                outcome = deferred.resume()
            except Exception:
                _log.debug("emulator deferred request failed", exc_info=True)
                outcome = CLOSE
            if outcome != KEEP or final or conn.closed:
                self._close(conn)
                return
            found = self._next_request(conn)
            if found is not None:
                self._answer(conn, self._take(conn, found.size or 0), found.final)

        self._post(conn, (time.monotonic() + deferred.seconds, resume))

    def _next_request(self, conn: Conn) -> Optional[Frame]:
        """A whole next request, read now or within ``linger``; else hand ``conn`` to the reactor (None)."""
        found = frame(conn.buf, self._max_body)
        if found.size is None and self._linger and self._idle_workers > 0 and not conn.buf:
            found = self._linger_for(conn)
        if conn.closed:
            return None
        if found.size is not None:
            return found
        try:
            conn.sock.setblocking(False)
        except OSError:
            self._close(conn)
            return None
        conn.deadline = time.monotonic() + self.idle_timeout
        self._post(conn, selectors.EVENT_READ)
        return None

    def _linger_for(self, conn: Conn) -> Frame:
        """Wait (briefly, without sleeping) for the keep-alive client's next request."""
        sock, until = conn.sock, time.monotonic() + self._linger
        try:
            if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                # In slices, so that a request queued meanwhile waits for this worker 5 ms at most.
                while not _readable(sock, min(_LINGER_SLICE, max(0.0, until - time.monotonic()))):
                    if self._tasks.qsize() or time.monotonic() >= until:
                        return Frame(None)
            sock.setblocking(False)
        except (OSError, ValueError):
            self._close(conn)
            return Frame(None)
        alive = self._receive(conn)
        found = frame(conn.buf, self._max_body)
        if alive:
            return found
        if found.size is None:
            self._close(conn)
            return found
        return Frame(found.size, final=True)

    def stats(self) -> Dict[str, int]:
        """Open and idle connection counts (for tests and diagnostics)."""
        with self._lock:
            return {"open": len(self._open), "idle_workers": self._idle_workers}
