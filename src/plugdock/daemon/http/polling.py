"""Model polling (``dispatch/model/polling/start`` and ``check``): one plain JSON envelope, not a stream.

The official daemon runs these through ``invokeSingleResponse`` (internal/core/io_tunnel/model_polling.go):
the plugin's last result is the answer, sent with ``ctx.JSON(200, NewSuccessResponse(resp))``
(internal/service/model_polling.go); a plugin error, or no result at all, is a PluginInvokeError with
HTTP 500. The app's fast dispatch path leaves these two routes to this router.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from plugdock.daemon.core import Daemon
from plugdock.daemon.http import envelope
from plugdock.daemon.http.bodies import DispatchBody
from plugdock.daemon.http.context import DaemonDep
from plugdock.daemon.http.dispatch import answer_lines

ROUTES = ("model/polling/start", "model/polling/check")
router = APIRouter()


async def _answer(d: Daemon, tenant_id: str, route: str, body: DispatchBody, request: Request) -> Response:
    lines = answer_lines(d, tenant_id, route, body, request)
    if isinstance(lines, Response):
        return lines
    last: dict[str, Any] | None = None
    async for line in lines:
        answer: dict[str, Any] = json.loads(line.removeprefix(b"data: "))
        if answer.get("code") != 0:
            await lines.aclose()  # type: ignore[attr-defined]
            return JSONResponse(answer, status_code=500)
        last = answer
    if last is None:
        return envelope.error(500, "no polling result received from plugin", "PluginInvokeError")
    return JSONResponse(last)


@router.post("/plugin/{tenant_id}/dispatch/model/polling/start")
async def start_polling(d: DaemonDep, tenant_id: str, body: DispatchBody, request: Request) -> Response:
    return await _answer(d, tenant_id, ROUTES[0], body, request)


@router.post("/plugin/{tenant_id}/dispatch/model/polling/check")
async def check_polling(d: DaemonDep, tenant_id: str, body: DispatchBody, request: Request) -> Response:
    return await _answer(d, tenant_id, ROUTES[1], body, request)
