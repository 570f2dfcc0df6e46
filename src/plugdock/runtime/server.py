"""The plugin-side protocol engine: one asyncio loop reads requests, handlers run in worker threads.

Each request becomes a session: its handler's chunks are written as ``stream`` messages, then one
``end`` (after an ``error`` when it failed). Reverse invocations are sent on the session and their
answers routed back by request id. Nothing a single request does (raise, yield junk, hang, flood)
affects another session or the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from plugdock.protocol.codec import LineTooLong, decode_line, encode
from plugdock.protocol.messages import (
    Event,
    InStreamEvent,
    SessionMessageType,
    error_session_data,
    event_line,
    session_line,
)
from plugdock.runtime.executor import Executor
from plugdock.runtime.iteration import sync_iter
from plugdock.runtime.output import Output
from plugdock.runtime.pool import ElasticPool
from plugdock.sdk.config import DifyPluginEnv
from plugdock.sdk.errors import InvokeError
from plugdock.sdk.session import BackwardsInvocationError, Session

logger = logging.getLogger("plugdock.runtime")


class RequestTimeoutError(Exception):
    pass


class MessageTooLargeError(Exception):
    pass


@dataclass
class _SessionState:
    session_id: str
    output: Output
    deadline: float
    closed: bool = False
    on_done: Any = None

class PluginServer:
    def __init__(self, executor: Executor, config: DifyPluginEnv, output: Output) -> None:
        self.executor = executor
        self.config = config
        self.output = output
        self.max_line = int(config.PLUGIN_RUNTIME_MAX_BUFFER_SIZE)
        self.debug = bool(config.PLUGDOCK_DEBUG)
        self.pool = ElasticPool(core=max(4, os.cpu_count() or 1), maximum=int(config.MAX_WORKER))
        self.sessions: dict[str, _SessionState] = {}
        self.pending: dict[tuple[str, str], queue.Queue[dict[str, Any]]] = {}
        self._pending_lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- lines in -------------------------------------------------------------------------------
    async def serve(self, lines: AsyncIterator[bytes | LineTooLong]) -> None:
        """Serve until ``lines`` ends (the daemon closed our input)."""
        self.loop = asyncio.get_running_loop()
        watchdog = asyncio.ensure_future(self.watchdog())
        try:
            await self._read(lines)
        finally:
            watchdog.cancel()

    async def _read(self, lines: AsyncIterator[bytes | LineTooLong]) -> None:
        async for line in lines:
            if isinstance(line, LineTooLong):
                self.output.write(event_line(Event.ERROR, None, {"error": str(line), "error_type": "LineTooLong"}))
            else:
                self.feed(line)

    def feed(self, line: bytes) -> None:
        line = line.strip()
        if not line:
            return
        try:
            envelope = decode_line(line)
        except ValueError as exc:
            self.output.write(event_line(Event.ERROR, None, {"error": f"malformed request line: {exc}"}))
            return
        session_id, event, data = envelope.get("session_id"), envelope.get("event"), envelope.get("data")
        if not isinstance(session_id, str) or not session_id:
            self.output.write(event_line(Event.ERROR, None, {"error": "malformed request line: session_id must "
                                                                      "be a non-empty string"}))
            return
        if event == InStreamEvent.BACKWARDS_RESPONSE:
            self._route_backwards(session_id, data)
            return
        if event != InStreamEvent.REQUEST:
            self.output.write(event_line(Event.ERROR, session_id, {"error": f"unknown event {event!r}"}))
            return
        if not isinstance(data, dict):
            self._fail_session(session_id, "RequestDataError", "request data must be a JSON object")
            return
        if session_id in self.sessions:
            self.output.write(event_line(Event.ERROR, session_id, {"error": "a session with this id is in flight"}))
            return
        self.start(session_id, envelope, data)

    def _route_backwards(self, session_id: str, data: Any) -> None:
        request_id = data.get("backwards_request_id") if isinstance(data, dict) else None
        with self._pending_lock:
            waiting = self.pending.get((session_id, str(request_id)))
        if waiting is None:
            if isinstance(data, dict) and data.get("event") == "end":
                return  # the end of a call whose caller took the one answer it needed and left: nothing lost
            self.output.write(event_line(Event.ERROR, session_id, {
                "error": f"backwards response for unknown request {request_id!r}"}))
            return
        waiting.put(data)

    # -- one session ------------------------------------------------------------------------------
    def start(self, session_id: str, envelope: dict[str, Any], data: dict[str, Any], output: Output | None = None,
              channel: Any = None, on_done: Any = None) -> None:
        """Run one request in a worker thread; the watchdog ends it if it outlives MAX_REQUEST_TIMEOUT.

        No asyncio task per request: the loop only reads lines and runs one periodic watchdog.
        """
        state = _SessionState(session_id, output or self.output,
                              time.monotonic() + float(self.config.MAX_REQUEST_TIMEOUT), on_done=on_done)
        self.sessions[session_id] = state
        session = Session(session_id, channel or self, user_id=data.get("user_id"),
                          conversation_id=envelope.get("conversation_id"), message_id=envelope.get("message_id"),
                          app_id=envelope.get("app_id"), endpoint_id=envelope.get("endpoint_id"),
                          context=envelope.get("context"),
                          max_invocation_timeout=int(self.config.MAX_INVOCATION_TIMEOUT))
        self.pool.submit(self._session_thread, state, session, data)

    def _session_thread(self, state: _SessionState, session: Session, data: dict[str, Any]) -> None:
        try:
            self._drive(state, session, data)
        except Exception as exc:
            self._finish(state, exc)
        else:
            self._finish(state, None)

    def _finish(self, state: _SessionState, exc: BaseException | None) -> None:
        """Close a session exactly once: its error (if any), then ``end``."""
        with self._pending_lock:
            if state.closed:
                return
            state.closed = True
            self.sessions.pop(state.session_id, None)
        if exc is not None:
            self._write_error(state, exc)
        state.output.write(session_line(state.session_id, SessionMessageType.END, {}))
        if state.on_done is not None:
            state.on_done()

    async def watchdog(self, period: float = 0.02) -> None:
        """Grow the pool when workers are blocked, and end sessions that outlived MAX_REQUEST_TIMEOUT
        (their threads are abandoned, their output dropped)."""
        while True:
            await asyncio.sleep(period if self.sessions else 0.5)  # idle plugins stay idle
            self.pool.check()
            now = time.monotonic()
            if not self.sessions:
                continue
            for state in [s for s in list(self.sessions.values()) if s.deadline <= now]:
                self._finish(state, RequestTimeoutError(
                    f"the handler did not finish within MAX_REQUEST_TIMEOUT={self.config.MAX_REQUEST_TIMEOUT} s"))

    def _drive(self, state: _SessionState, session: Session, data: dict[str, Any]) -> None:
        """Runs in a worker thread: call the handler and write its chunks until done or closed."""
        handler = self.executor.handler_for(data)
        result = handler(session, data)
        iterator = sync_iter(result)
        try:
            for chunk in iterator:
                if state.closed:
                    break
                self._stream(state, chunk)
        finally:
            close = getattr(iterator, "close", None)
            if callable(close):
                close()

    def _stream(self, state: _SessionState, chunk: Any) -> None:
        line = session_line(state.session_id, SessionMessageType.STREAM, chunk)
        if len(line) <= self.max_line:
            state.output.write(line)
            return
        if isinstance(chunk, dict) and chunk.get("type") == "text" and isinstance(chunk.get("message"), dict):
            text = str(chunk["message"].get("text", ""))
            step = max(1, (self.max_line - 4096) // 4)
            for start in range(0, len(text), step):
                piece = {**chunk, "message": {"text": text[start : start + step]}}
                state.output.write(session_line(state.session_id, SessionMessageType.STREAM, piece))
            return
        raise MessageTooLargeError(
            f"a response message of {len(line)} bytes exceeds the {self.max_line}-byte line limit "
            "(PLUGIN_RUNTIME_MAX_BUFFER_SIZE); send large content as a blob message, which is chunked"
        )

    def _write_error(self, state: _SessionState, exc: BaseException) -> None:
        args: dict[str, Any] = {}
        if isinstance(exc, InvokeError) and exc.description:
            args["description"] = exc.description
        if self.debug:
            args["traceback"] = "".join(traceback.format_exception(exc))
        logger.debug("session %s failed", state.session_id, exc_info=exc)
        state.output.write(session_line(state.session_id, SessionMessageType.ERROR,
                                        error_session_data(_error_type(exc), str(exc), args)))

    def _fail_session(self, session_id: str, error_type: str, message: str) -> None:
        self.output.write(session_line(session_id, SessionMessageType.ERROR, error_session_data(error_type, message)))
        self.output.write(session_line(session_id, SessionMessageType.END, {}))

    # -- reverse invocation (BackwardsChannel) ----------------------------------------------------
    def invoke(self, session: Session, invoke_type: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        request_id = uuid.uuid4().hex
        answers: queue.Queue[dict[str, Any]] = queue.Queue()
        key = (session.session_id, request_id)
        with self._pending_lock:
            self.pending[key] = answers
        try:
            payload = {"type": invoke_type, "backwards_request_id": request_id, "request": request}
            line = session_line(session.session_id, SessionMessageType.INVOKE, payload)
            if len(line) > self.max_line:
                raise MessageTooLargeError(f"reverse invocation of {len(line)} bytes exceeds the {self.max_line}-"
                                           "byte line limit (PLUGIN_RUNTIME_MAX_BUFFER_SIZE)")
            self.output.write(line)
            timeout = float(session.max_invocation_timeout)
            while True:
                try:
                    answer = answers.get(timeout=timeout)
                except queue.Empty:
                    raise BackwardsInvocationError(
                        f"{invoke_type} invocation got no answer within {timeout:g} s (MAX_INVOCATION_TIMEOUT)"
                    ) from None
                kind = answer.get("event")
                if kind == "end":
                    return
                if kind == "error":
                    raise BackwardsInvocationError(str(answer.get("message") or "reverse invocation failed"))
                data = answer.get("data")
                if data is None:
                    return
                yield data
        finally:
            with self._pending_lock:
                self.pending.pop(key, None)

    # -- liveness ------------------------------------------------------------------------------------
    async def heartbeat(self) -> None:
        interval = float(self.config.HEARTBEAT_INTERVAL)
        while True:
            self.output.write(event_line(Event.HEARTBEAT, None, {}))
            await asyncio.sleep(interval)

    async def watch_parent(self, on_orphaned: Any) -> None:
        parent = os.getppid()
        while True:
            await asyncio.sleep(0.25)
            if os.getppid() != parent:
                on_orphaned()
                return


def _error_type(exc: BaseException) -> str:
    """The ``error_type`` the host sees: the class name, except where plugdock matches the official SDK's."""
    from plugdock.runtime.executor import NotFoundError

    return "ValueError" if isinstance(exc, NotFoundError) else type(exc).__name__


__all__ = ["PluginServer", "encode"]
