"""Serverless mode: an HTTP server (``POST /invoke``, ``GET /health``) that answers each request with its
session lines, and sends reverse invocations to the daemon's ``/backwards-invocation/transaction``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from plugdock.protocol.codec import decode_line
from plugdock.protocol.messages import SessionMessageType, session_line
from plugdock.runtime.output import Output
from plugdock.sdk.config import DifyPluginEnv
from plugdock.sdk.session import BackwardsInvocationError, Session

MAX_BODY = 16 * 1024 * 1024


class HttpBackwardsChannel:
    """Reverse invocation over HTTP: the daemon streams ``backwards_response`` lines back."""

    def __init__(self, daemon_url: str) -> None:
        self.url = daemon_url.rstrip("/") + "/backwards-invocation/transaction"

    def invoke(self, session: Session, invoke_type: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        import uuid

        import httpx

        body = session_line(session.session_id, SessionMessageType.INVOKE, {
            "type": invoke_type, "backwards_request_id": uuid.uuid4().hex, "request": request})
        timeout = float(session.max_invocation_timeout)
        with httpx.stream("POST", self.url, content=body, timeout=timeout,
                          headers={"Dify-Plugin-Session-ID": session.session_id}) as response:
            if response.status_code != 200:
                raise BackwardsInvocationError(f"daemon answered {response.status_code} to a reverse invocation")
            for line in response.iter_lines():
                if not line.strip():
                    continue
                answer = decode_line(line).get("data") or {}
                if answer.get("event") == "end":
                    return
                if answer.get("event") == "error":
                    raise BackwardsInvocationError(str(answer.get("message")))
                if answer.get("data") is None:
                    return
                yield answer["data"]


def run_serverless(config: DifyPluginEnv, root: Path) -> int:
    return asyncio.run(_serve(config, root))


async def _serve(config: DifyPluginEnv, root: Path) -> int:
    from plugdock.runtime.executor import Executor
    from plugdock.runtime.registry import PluginRegistry
    from plugdock.runtime.server import PluginServer

    server = PluginServer(Executor(PluginRegistry.load(root)), config, Output(lambda _data: None))
    server.loop = asyncio.get_running_loop()
    channel = HttpBackwardsChannel(config.DIFY_PLUGIN_DAEMON_URL)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode("latin-1").split()
            headers: dict[str, str] = {}
            while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = raw.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if len(request_line) < 2:
                return
            method, path = request_line[0], request_line[1]
            if method == "GET" and path == "/health":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK")
                return
            if method != "POST" or path != "/invoke":
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            length = int(headers.get("content-length", "0"))
            if length > MAX_BODY:
                message = f"request body over the {MAX_BODY}-byte limit".encode()
                writer.write(b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: "
                             + str(len(message)).encode() + b"\r\n\r\n" + message)
                return
            try:
                envelope = decode_line(await reader.readexactly(length))
                session_id, data = envelope["session_id"], envelope["data"]
            except (ValueError, KeyError, asyncio.IncompleteReadError) as exc:
                message = f"bad request: {exc}".encode()
                writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: "
                             + str(len(message)).encode() + b"\r\n\r\n" + message)
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
                         b"Connection: close\r\n\r\n")
            loop = asyncio.get_running_loop()

            def chunk(data: bytes) -> None:
                loop.call_soon_threadsafe(writer.write, b"%x\r\n%s\r\n" % (len(data), data))

            done = asyncio.Event()
            server.start(str(session_id), envelope, dict(data), output=Output(chunk), channel=channel,
                         on_done=lambda: loop.call_soon_threadsafe(done.set))
            await done.wait()
            writer.write(b"0\r\n\r\n")
        finally:
            await writer.drain()
            writer.close()

    watchdog = asyncio.ensure_future(server.watchdog())
    listener = await asyncio.start_server(handle, config.SERVERLESS_HOST, int(config.SERVERLESS_PORT))
    sys.stderr.write(f"plugdock: serving on http://{config.SERVERLESS_HOST}:{config.SERVERLESS_PORT}\n")
    async with listener:
        try:
            await listener.serve_forever()
        finally:
            watchdog.cancel()
    return 0
