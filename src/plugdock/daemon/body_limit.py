"""A request-body cap that also holds for chunked uploads, which carry no Content-Length to check."""

from __future__ import annotations

import json
from typing import Any

from plugdock.daemon import envelope

Scope = dict[str, Any]
Receive = Any
Send = Any


class BodyLimit:
    """ASGI middleware: refuse (413, in the daemon's error envelope) any body over ``limit`` bytes, by its
    declared length before reading, or by counting while it streams in."""

    def __init__(self, app: Any, limit: int, setting: str) -> None:
        self.app = app
        self.limit = limit
        self.setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, int(declared))
            return
        received = 0
        started = refused = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit and not started:
                    # Answer now; to the app the client has gone away, and whatever it sends is dropped.
                    refused = True
                    await self._refuse(send, received)
                    return {"type": "http.disconnect"}
            return message

        async def watching_send(message: dict[str, Any]) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counting_receive, watching_send)

    async def _refuse(self, send: Send, size: int) -> None:
        body = json.dumps(envelope.error_body(
            413, f"request body of {size}+ bytes is over the {self.limit}-byte limit ({self.setting})",
            "PluginDaemonBadRequestError")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
