"""What every request passes before routing, as plain ASGI (no per-request task or response wrapping):
the API key, a body cap that also holds for chunked uploads (which carry no Content-Length to check), and
a deadline for the body to arrive, so a client trickling bytes cannot hold a request open forever."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable
from typing import Any

from plugdock.daemon.http import envelope

Scope = dict[str, Any]
Receive = Any
Send = Any


class ApiKeyGuard:
    """401 in the daemon's envelope unless ``X-Api-Key`` matches (constant-time), except on public paths."""

    def __init__(self, app: Any, key: str, public: Callable[[str], bool]) -> None:
        self.app = app
        self.key = key.encode()
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.public(scope["path"]):
            given = next((value for name, value in scope.get("headers") or () if name == b"x-api-key"), b"")
            if not hmac.compare_digest(given, self.key):
                await send_error(send, 401, "unauthorized: the X-Api-Key header does not match the server key",
                                 "PluginDaemonUnauthorizedError")
                return
        await self.app(scope, receive, send)


async def send_error(send: Send, status: int, message: str, error_type: str = "PluginDaemonBadRequestError") -> None:
    body = json.dumps(envelope.error_body(status, message, error_type)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: refuse (413, in the daemon's error envelope) any body over ``limit`` bytes, by its
    declared length before reading, or by counting while it streams in."""

    def __init__(self, app: Any, limit: int, setting: str, timeout: float = 60.0,
                 timeout_setting: str = "PLUGDOCK_BODY_TIMEOUT") -> None:
        self.app = app
        self.limit = limit
        self.setting = setting
        self.timeout = timeout
        self.timeout_setting = timeout_setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, int(declared))
            return
        received = 0
        started = refused = body_done = False
        deadline = asyncio.get_running_loop().time() + self.timeout

        async def counting_receive() -> dict[str, Any]:
            nonlocal received, refused, body_done
            if refused:
                return {"type": "http.disconnect"}
            if body_done or started:  # after the body or once answering, receive() only awaits a disconnect
                return await receive()  # type: ignore[no-any-return]
            try:
                remaining = deadline - asyncio.get_running_loop().time()
                message: dict[str, Any] = await asyncio.wait_for(receive(), timeout=max(remaining, 0.001))
            except TimeoutError:
                refused = True  # answer now; to the app the client has gone away
                await send_error(send, 408, f"the request body did not arrive within {self.timeout:g} s "
                                                  f"({received} bytes came; {self.timeout_setting})")
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.limit and not started:
                    refused = True
                    await self._refuse(send, received)
                    return {"type": "http.disconnect"}
            else:
                body_done = True
            return message

        async def watching_send(message: dict[str, Any]) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counting_receive, watching_send)

    async def _refuse(self, send: Send, size: int) -> None:
        await send_error(send, 413, f"request body of {size}+ bytes is over the {self.limit}-byte limit "
                                    f"({self.setting})")



INSTALL_STARTS = ("/management/install/identifiers", "/management/install/upgrade", "/management/install/bundle")
MAX_CAPTURED = 64 * 1024


class RequestLog:
    """The access log (method, path, status, duration; no query, header or body, so no key ever shows) when
    ``enabled``, and always the install tasks that API calls start, handed to ``on_install`` by task id."""

    def __init__(self, app: Any, enabled: bool, emit: Callable[[str], None],
                 on_install: Callable[[str], None]) -> None:
        self.app = app
        self.enabled = enabled
        self.emit = emit
        self.on_install = on_install

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        installing = scope["method"] == "POST" and path.endswith(INSTALL_STARTS)
        if not self.enabled and not installing:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        began = loop.time()
        status = 0
        captured = bytearray()

        async def watching_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and installing and len(captured) < MAX_CAPTURED:
                captured.extend(message.get("body", b"")[:MAX_CAPTURED])
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            if self.enabled:
                took = (loop.time() - began) * 1000
                self.emit(f"{scope['method']} {path} {status or '-'} {took:.0f} ms")
        if installing and status == 200:
            task_id = _task_id(bytes(captured))
            if task_id:
                self.on_install(task_id)


def _task_id(body: bytes) -> str:
    try:
        data = json.loads(body).get("data") or {}
    except (ValueError, AttributeError):
        return ""
    return str(data.get("task_id") or "") if isinstance(data, dict) else ""
