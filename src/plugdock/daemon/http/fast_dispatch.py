"""Dispatch requests answered in plain ASGI, in front of FastAPI's routing.

Dispatch is the daemon's hot path; profiled, FastAPI's and Starlette's routing, middleware and request
validation took about a third of the daemon's time per request. A well-formed dispatch (known route,
``X-Plugin-ID`` given, a valid body, the plugin installed for the tenant) is streamed from here; anything
else goes on to the routed handler, with its body replayed, so every error keeps its one implementation.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

# (tenant, route, raw body, X-Plugin-ID) -> the SSE lines to stream, or None to let the routed handler answer
Prepare = Callable[[str, str, bytes, str], AsyncIterator[bytes] | None]
HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8")]


class FastDispatch:
    def __init__(self, app: Any, prepare: Prepare) -> None:
        self.app = app
        self.prepare = prepare

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        parts = scope["path"].split("/", 4) if scope["type"] == "http" and scope["method"] == "POST" else []
        if len(parts) != 5 or parts[1] != "plugin" or parts[3] != "dispatch":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        plugin_id = next((v.decode("latin-1") for k, v in scope.get("headers") or () if k == b"x-plugin-id"), "")
        lines = self.prepare(parts[2], parts[4], body, plugin_id) if plugin_id else None
        if lines is None:
            replay = [{"type": "http.request", "body": body, "more_body": False}]

            async def replayed() -> dict[str, Any]:
                return replay.pop() if replay else await receive()

            await self.app(scope, replayed, send)
            return
        await self._stream(lines, receive, send)

    @staticmethod
    async def _stream(lines: AsyncIterator[bytes], receive: Any, send: Any) -> None:
        """Stream until the lines end or the client goes away, whichever comes first (as Starlette does)."""

        async def pump() -> None:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            async for line in lines:
                await send({"type": "http.response.body", "body": line, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(disconnected())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task
            await lines.aclose()  # type: ignore[attr-defined]
