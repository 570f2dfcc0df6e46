"""Limits on the daemon's HTTP connections, below ASGI, where a client that never sends a request is seen.

uvicorn closes a keep-alive connection after ``timeout_keep_alive``, but a connection that has not yet sent
a complete request head has no deadline at all, and nothing bounds how many are open: idle sockets alone
could hold every file descriptor (found: 1,100 of them hung every route at 1,024 fds). Here each connection
is admitted against a total and a per-peer cap (refused at once, with one 503 naming the limit), and must
deliver each request head within ``header_timeout`` of connecting or of its previous response. The open-file
limit is raised at start so the cap fits in it with room for plugins' pipes and the debug port.
"""

from __future__ import annotations

import asyncio
import json
import resource
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

from plugdock.daemon.http import envelope
from plugdock.daemon.settings import Settings
from plugdock.errors import PlugdockError

OPEN_FILES_CAP = 65536  # enough for the largest sane connection cap; the hard limit may be far higher
FD_RESERVE = 256  # database, logs, packages, plugins' pipes beyond what the halving leaves


def raise_open_files_limit(cap: int = OPEN_FILES_CAP) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (at most ``cap``); return the soft limit now in force.
    Plugins do not inherit it: the sandbox sets their own (PLUGDOCK_PLUGIN_MAX_OPEN_FILES)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return cap if soft == resource.RLIM_INFINITY else soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        return soft
    return wanted


def connection_budget(settings: Settings, open_files: int) -> int:
    """How many HTTP connections fit in ``open_files`` descriptors: at most half of them, and never the
    descriptors the debug port and the rest of the daemon need. An operator's explicit cap that does not
    fit is an error; the default is lowered to fit."""
    budget = max(1, min(open_files // 2, open_files - settings.remote_installing_max_conn - FD_RESERVE))
    if settings.max_connections <= budget:
        return settings.max_connections
    if "max_connections" in settings.sources:
        raise PlugdockError(f"PLUGDOCK_MAX_CONNECTIONS = {settings.max_connections} does not fit in the open-file "
                            f"limit of {open_files} (at most {budget}: half the limit, less the debug port's "
                            f"{settings.remote_installing_max_conn} and {FD_RESERVE} for the daemon); lower it "
                            "or raise the hard limit (ulimit -Hn, LimitNOFILE=)")
    return budget


def validate(settings: Settings) -> None:
    """Every connection limit must be a positive number: zero would refuse everything or never time out."""
    for name, env in (("header_timeout", "PLUGDOCK_HEADER_TIMEOUT"),
                      ("keep_alive_timeout", "PLUGDOCK_KEEP_ALIVE_TIMEOUT"),
                      ("max_connections", "PLUGDOCK_MAX_CONNECTIONS"),
                      ("max_connections_per_peer", "PLUGDOCK_MAX_CONNECTIONS_PER_PEER")):
        if getattr(settings, name) < 1:
            raise PlugdockError(f"{env} must be at least 1, not {getattr(settings, name)}")


@dataclass
class ConnectionLimits:
    """The caps in force and the count of open connections, shared by every connection's protocol."""

    max_connections: int
    per_peer: int
    header_timeout: float
    keep_alive_timeout: float = 5.0
    open_files: int = 0  # the daemon's soft RLIMIT_NOFILE, for the banner
    open: int = 0
    by_peer: Counter[str] = field(default_factory=Counter)

    def admit(self, peer: str) -> str | None:
        """Count the connection in, or say (one line) which cap refuses it."""
        if self.open >= self.max_connections:
            return f"too many open connections (limit {self.max_connections}, PLUGDOCK_MAX_CONNECTIONS)"
        if self.by_peer[peer] >= self.per_peer:
            return (f"too many open connections from {peer} (limit {self.per_peer}, "
                    "PLUGDOCK_MAX_CONNECTIONS_PER_PEER)")
        self.open += 1
        self.by_peer[peer] += 1
        return None

    def release(self, peer: str) -> None:
        self.open -= 1
        self.by_peer[peer] -= 1
        if self.by_peer[peer] <= 0:
            del self.by_peer[peer]

    def describe(self) -> str:
        return (f"connections: at most {self.max_connections} ({self.per_peer} per client address), request "
                f"head within {self.header_timeout:g} s, keep-alive {self.keep_alive_timeout:g} s, open files "
                f"{self.open_files}")


def raw_error(status: int, reason: str, message: str, error_type: str) -> bytes:
    """A complete HTTP/1.1 answer in the daemon's error envelope, for use where no request cycle exists."""
    body = json.dumps(envelope.error_body(status, message, error_type)).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with admission caps and a deadline for each request head."""

    limits: ClassVar[ConnectionLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._peer: str | None = None  # None: refused, or not yet admitted
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple) and peername else "local"
        refusal = self.limits.admit(peer)
        if refusal is not None:
            transport.write(raw_error(503, "Service Unavailable", refusal, "PluginDaemonUnavailableError"))
            transport.close()
            return
        self._peer = peer
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._peer is None:
            return
        self._cancel_head_deadline()
        self.limits.release(self._peer)
        self._peer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._peer is None:
            return
        self._head_bytes += len(data)
        super().data_received(data)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request head was parsed: the head deadline is met
            self._cancel_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request at once
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm_head_deadline()

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_bytes = len(self.conn.trailing_data[0])  # a pipelined head may have begun already
        self._head_deadline = self.loop.call_later(self.limits.header_timeout, self._head_overdue)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_overdue(self) -> None:
        """Close the connection; a client that began a head learns why (a silent one is closed quietly, as
        an idle keep-alive connection is, so that a client reusing it just reconnects)."""
        self._head_deadline = None
        if self.transport.is_closing():
            return
        if self._head_bytes:
            self.transport.write(raw_error(
                408, "Request Timeout", f"the request head did not arrive within {self.limits.header_timeout:g} s "
                f"({self._head_bytes} bytes came; PLUGDOCK_HEADER_TIMEOUT)", "PluginDaemonBadRequestError"))
        self.transport.close()


def protocol_for(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """The protocol class to give uvicorn (``http=``), bound to one daemon's limits."""
    return type("DaemonH11Protocol", (GuardedH11Protocol,), {"limits": limits})


def uvicorn_options(settings: Settings) -> tuple[dict[str, Any], ConnectionLimits]:
    """Raise the open-file limit, and return uvicorn's keyword arguments with the limits they enforce."""
    validate(settings)
    open_files = raise_open_files_limit()
    limits = ConnectionLimits(connection_budget(settings, open_files), settings.max_connections_per_peer,
                              float(settings.header_timeout), float(settings.keep_alive_timeout), open_files)
    # limit_concurrency bounds request tasks too (those of clients that left); uvicorn counts the asking
    # connection itself, so one more than the connection cap, which refuses first.
    options = {"http": protocol_for(limits), "limit_concurrency": limits.max_connections + 1,
               "timeout_keep_alive": settings.keep_alive_timeout}
    return options, limits
