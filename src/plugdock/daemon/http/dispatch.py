"""Dispatch: a request for a plugin, answered as Server-Sent Events; :mod:`fast_dispatch` calls
:func:`fast_lines` before any routing, this router answers what falls through (errors included)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from plugdock.daemon.core import Daemon
from plugdock.daemon.http import envelope
from plugdock.daemon.http.bodies import DispatchBody
from plugdock.daemon.http.context import DaemonDep
from plugdock.daemon.invocation.dispatch_routes import DISPATCH_ROUTES, BlobAssembler, BlobTooLarge
from plugdock.daemon.plugins.supervisor import PluginUnavailable
from plugdock.daemon.state.logbook import failure_line

router = APIRouter()


@router.post("/plugin/{tenant_id}/dispatch/{route:path}")
async def dispatch(d: DaemonDep, tenant_id: str, route: str, body: DispatchBody, request: Request) -> Response:
    """Most dispatches are answered by FastDispatch before routing; this answers the rest, errors included."""
    if DISPATCH_ROUTES.get(route) is None:
        return JSONResponse({"code": "not_found", "message": "route not found"}, status_code=404)
    lines = answer_lines(d, tenant_id, route, body, request)
    if isinstance(lines, Response):
        return lines
    return StreamingResponse(lines, media_type="text/event-stream")


def answer_lines(d: Daemon, tenant_id: str, route: str, body: DispatchBody,
                 request: Request) -> AsyncIterator[bytes] | Response:
    """The lines answering a dispatch of a known route, or the error answer when the plugin is not named
    (``X-Plugin-ID``) or not installed for the tenant."""
    plugin_id = request.headers.get("x-plugin-id")
    if not plugin_id:
        return envelope.error(400, "the X-Plugin-ID header is required", "PluginDaemonBadRequestError")
    lines = _dispatch_lines(d, tenant_id, route, body, plugin_id)
    if lines is None:
        return envelope.error(404, f"plugin not found: {plugin_id} is not installed for tenant {tenant_id}",
                              "PluginNotFoundError")
    return lines


def _dispatch_lines(d: Daemon, tenant_id: str, route: str, body: DispatchBody,
                    plugin_id: str) -> AsyncIterator[bytes] | None:
    """The SSE lines answering one dispatch, or None when the plugin is not installed for the tenant."""
    identifier = d.installations.installed(tenant_id, plugin_id)
    if identifier is None:
        return None
    access_type, action = DISPATCH_ROUTES[route]
    data = {**body.data, "user_id": body.user_id, "type": access_type, "action": action}
    env = {"conversation_id": body.conversation_id, "message_id": body.message_id, "app_id": body.app_id,
           "endpoint_id": body.endpoint_id, "context": body.context}
    return _stream(d, tenant_id, identifier, data, env, route)


def fast_lines(d: Daemon, tenant_id: str, route: str, raw: bytes, plugin_id: str) -> AsyncIterator[bytes] | None:
    """For the plain-ASGI fast path: the answer's lines, or None to let the routed handler answer."""
    if route not in DISPATCH_ROUTES:
        return None
    try:
        body = DispatchBody.model_validate_json(raw)
    except ValueError:
        return None
    return _dispatch_lines(d, tenant_id, route, body, plugin_id)


def _failed(d: Daemon, identifier: str, route: str, body: dict[str, Any]) -> dict[str, Any]:
    """Keep a failed invocation in the plugin's log (``plugdock logs``): the route, the error, and its time."""
    instance = d.supervisor.instances.get(identifier)
    if instance is not None:
        error = _error_of(body.get("message"))
        if error.get("error_type") == "PluginInvokeError":  # the plugin's own error, wrapped as the host expects
            error = _error_of(error.get("message")) or error
        instance.logs.append(failure_line(route, str(error.get("error_type") or "error"),
                                          str(error.get("message") or body.get("message") or "")))
    return body


def _error_of(text: Any) -> dict[str, Any]:
    try:
        error = json.loads(text or "{}")
    except (ValueError, TypeError):
        return {}
    return error if isinstance(error, dict) else {}


async def _stream(d: Daemon, tenant_id: str, identifier: str, data: dict[str, Any],
                  env: dict[str, Any], route: str = "") -> AsyncIterator[bytes]:
    d.active_requests += 1
    deadline = time.monotonic() + d.settings.max_execution_timeout

    def line(obj: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"

    blobs = BlobAssembler() if data.get("type") == "agent_strategy" else None
    try:
        instance = await d.supervisor.ready(identifier)
        messages = instance.request(tenant_id, data, env, deadline=deadline).__aiter__()
        while True:
            remaining = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(messages.__anext__(), timeout=max(remaining, 0.001))
            except StopAsyncIteration:
                return
            except TimeoutError:
                yield line(_failed(d, identifier, route, envelope.error_body(
                    500, "killed by timeout: the plugin did not finish within PLUGIN_MAX_EXECUTION_TIMEOUT="
                         f"{d.settings.max_execution_timeout} s", "PluginDaemonInternalServerError")))
                await messages.aclose()  # type: ignore[attr-defined]
                return
            if message.get("type") == "stream":
                chunk = message.get("data")
                if blobs is not None and isinstance(chunk, dict) and chunk.get("type") == "blob_chunk":
                    try:
                        chunk = blobs.add(chunk)
                    except BlobTooLarge as exc:
                        yield line(_failed(d, identifier, route,
                                           envelope.error_body(500, exc.message, "PluginDaemonInvokeError")))
                        await messages.aclose()  # type: ignore[attr-defined]
                        return
                    if chunk is None:
                        continue
                yield line(envelope.success(chunk))
            elif message.get("type") == "error":
                yield line(_failed(d, identifier, route, envelope.plugin_error_body(message.get("data") or {})))
                await messages.aclose()  # type: ignore[attr-defined]
                return
    except PluginUnavailable as exc:
        yield line(_failed(d, identifier, route, envelope.error_body(500, exc.message, "PluginDaemonInvokeError")))
    finally:
        d.active_requests -= 1

