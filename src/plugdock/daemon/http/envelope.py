"""The official daemon's response envelope and error shapes, which the Dify host parses.

Management and endpoint-management errors travel with HTTP 200 and the error inside the envelope, as the
official daemon sends them (its controllers answer ``c.JSON(http.StatusOK, service...)`` whatever the
outcome): Dify calls ``raise_for_status()`` before reading the body (api/core/plugin/impl/base.py), so any
other status would hide the reason behind "Client error '400 Bad Request'". Request validation (the
official ``BindRequest``), the API key, body limits and the dispatch and public ``/e/`` routes keep their
HTTP statuses, as the official daemon's do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query
from starlette.responses import JSONResponse

CODES = {400: -400, 401: -401, 403: -403, 404: -404, 408: -408, 413: -413, 500: -500, 503: -503}


def success(data: Any) -> dict[str, Any]:
    return {"code": 0, "message": "success", "data": data}


def error_body(status: int, message: str, error_type: str, args: Any = None) -> dict[str, Any]:
    inner = json.dumps({"message": message, "error_type": error_type, "args": args}, separators=(",", ":"))
    return {"code": CODES.get(status, -500), "message": inner, "data": None}


def error(status: int, message: str, error_type: str, args: Any = None, http_status: int | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, error_type, args),
                        status_code=status if http_status is None else http_status)


MANAGEMENT = re.compile(r"^/plugin/[^/]+/(management|endpoint)(/|$)")


def answer_status(path: str, status: int) -> int:
    """The HTTP status an error carries on ``path``: 200 on management routes (the official way), else ``status``."""
    return 200 if MANAGEMENT.match(path) else status


def plugin_error_body(plugin_error: dict[str, Any]) -> dict[str, Any]:
    """An error a plugin raised, as the official daemon reports it mid-stream: PluginInvokeError wrapping
    the plugin's own {message, error_type, args} so the host can map ``error_type``."""
    inner = json.dumps({"args": plugin_error.get("args"), "error_type": plugin_error.get("error_type", ""),
                        "message": plugin_error.get("message", "")}, separators=(",", ":"), sort_keys=True)
    return error_body(500, inner, "PluginInvokeError")


# Paging parameters of every list route: bounded, so a huge or negative page never reaches the database.
Page = Annotated[int, Query(ge=1, le=1_000_000)]
PageSize = Annotated[int, Query(ge=1, le=10_000)]

T = TypeVar("T")


def page_of(rows: Sequence[T], page: int, page_size: int) -> list[T]:
    """Rows ``page`` (from 1) of a list cut into pages of ``page_size``, as every list route pages."""
    return list(rows[(page - 1) * page_size : page * page_size])

