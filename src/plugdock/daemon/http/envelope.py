"""The official daemon's response envelope and error shapes, which the Dify host parses."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Query
from starlette.responses import JSONResponse

CODES = {400: -400, 401: -401, 403: -403, 404: -404, 408: -408, 413: -413, 500: -500, 503: -503}


def success(data: Any) -> dict[str, Any]:
    return {"code": 0, "message": "success", "data": data}


def error_body(status: int, message: str, error_type: str, args: Any = None) -> dict[str, Any]:
    inner = json.dumps({"message": message, "error_type": error_type, "args": args}, separators=(",", ":"))
    return {"code": CODES.get(status, -500), "message": inner, "data": None}


def error(status: int, message: str, error_type: str, args: Any = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, error_type, args), status_code=status)


def plugin_error_body(plugin_error: dict[str, Any]) -> dict[str, Any]:
    """An error a plugin raised, as the official daemon reports it mid-stream: PluginInvokeError wrapping
    the plugin's own {message, error_type, args} so the host can map ``error_type``."""
    inner = json.dumps({"args": plugin_error.get("args"), "error_type": plugin_error.get("error_type", ""),
                        "message": plugin_error.get("message", "")}, separators=(",", ":"), sort_keys=True)
    return error_body(500, inner, "PluginInvokeError")


# Paging parameters of every list route: bounded, so a huge or negative page never reaches the database.
Page = Annotated[int, Query(ge=1, le=1_000_000)]
PageSize = Annotated[int, Query(ge=1, le=10_000)]
