"""The daemon's HTTP API: the official plugin daemon's routes, envelopes and streaming, on FastAPI.

Management routes answer ``{"code": 0, "message": "success", "data": ...}``; dispatch routes stream
Server-Sent Events, one envelope per ``data:`` line; every error is an envelope whose ``message`` is
the JSON ``{"message", "error_type", "args"}`` the Dify host expects, sent with HTTP 200 on management
routes as the official daemon does (see :mod:`envelope` for which statuses stay). This module wires the guards,
the routers (one module per area) and the error handlers around one :class:`~plugdock.daemon.core.Daemon`.
"""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from plugdock import __version__
from plugdock.daemon.core import Daemon
from plugdock.daemon.http import catalogue, dispatch, endpoints, envelope, install, management, polling
from plugdock.daemon.http.dispatch_docs import document_dispatch_routes
from plugdock.daemon.http.fast_dispatch import FastDispatch
from plugdock.daemon.http.guards import ApiKeyGuard, BodyLimit, RequestLog
from plugdock.daemon.plugins.installer import NotFound
from plugdock.daemon.settings import Settings
from plugdock.daemon.state.db import outage_reason
from plugdock.daemon.state.logbook import daemon_line, watch_install_task
from plugdock.daemon.state.models import InstallTask
from plugdock.errors import InvalidRequest, PackageError, PlugdockError, SignatureError
from plugdock.packaging.identifier import InvalidIdentifier


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        daemon = Daemon(settings)
        app.state.daemon = daemon
        await daemon.start()
        try:
            yield
        finally:
            await daemon.stop()

    app = FastAPI(title="plugdock daemon", version=__version__, lifespan=lifespan,
                  description="A drop-in for the Dify plugin daemon's HTTP API. Every call needs the server key "
                              "in X-Api-Key: press Authorize and enter it.",
                  generate_unique_id_function=operation_id)
    watchers: set[asyncio.Task[None]] = set()

    def on_install(task_id: str) -> None:
        job = asyncio.ensure_future(watch_install_task(lambda: _task_row(app.state.daemon, task_id), task_id))
        watchers.add(job)
        job.add_done_callback(watchers.discard)

    # Middleware added later runs earlier: the key first, then the body guards, then the dispatch fast path.
    # model polling answers one plain JSON envelope (http/polling.py), so the streaming fast path leaves it
    app.add_middleware(FastDispatch, prepare=lambda tenant, route, raw, plugin: None if route in polling.ROUTES
                       else dispatch.fast_lines(app.state.daemon, tenant, route, raw, plugin))
    # a package upload is the largest legitimate body; a little room for the form around it
    app.add_middleware(BodyLimit, limit=settings.max_package_size + 1024 * 1024, setting="MAX_PLUGIN_PACKAGE_SIZE",
                       timeout=settings.body_timeout)
    # added last, so it runs first: nothing but health and public endpoints is reached without the key
    # /docs and the schema it reads load without the key (a browser sends none); each call made from there
    # carries the key given to Authorize, and the guard still refuses any call without it
    app.add_middleware(ApiKeyGuard, key=settings.server_key,
                       public=lambda path: path in PUBLIC or path == "/e" or path.startswith("/e/"))
    # outermost: a refused key or an oversized body is logged too
    app.add_middleware(RequestLog, enabled=settings.access_log, emit=daemon_line, on_install=on_install)

    # -- cross-cutting ---------------------------------------------------------------------------------
    @app.exception_handler(PlugdockError)
    async def plugdock_error(request: Request, exc: PlugdockError) -> JSONResponse:
        status, error_type = error_kind(exc)
        return envelope.error(status, exc.message, error_type,
                              http_status=envelope.answer_status(request.url.path, status))

    @app.exception_handler(OperationalError)
    async def database_down(_request: Request, exc: OperationalError) -> JSONResponse:
        # kept at 503 on every route: the daemon, not the request, is at fault, and the caller may retry
        return envelope.error(503, f"the database is unavailable: {outage_reason(exc)}; the daemon retries on "
                                   "every request", "PluginDaemonInternalServerError")

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # 400 on every route, as the official BindRequest answers a request its validator refuses
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return envelope.error(400, f"invalid request: {problems}", "PluginDaemonBadRequestError")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return JSONResponse({"code": "not_found", "message": "route not found"}, status_code=404)
        return envelope.error(exc.status_code, str(exc.detail), "PluginDaemonBadRequestError")

    for router in (management.router, catalogue.router, install.router, endpoints.router, polling.router,
                   dispatch.router):
        app.include_router(router, dependencies=[Security(API_KEY)])
    app.openapi = lambda: openapi_schema(app)  # type: ignore[method-assign]
    return app


PUBLIC = {"/health/check", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
# Declared so that Swagger UI's Authorize sends the key; enforced by ApiKeyGuard, before any routing.
API_KEY = APIKeyHeader(name="X-Api-Key", auto_error=False, description="The daemon's server key (SERVER_KEY).")


def operation_id(route: APIRoute) -> str:
    return re.sub(r"\W+", "_", f"{route.name} {route.path_format}").strip("_")


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """The schema with one operation id per path and method: a route taking several methods shares one id,
    which OpenAPI forbids (generators then drop operations), so each gets its method appended."""
    if app.openapi_schema is None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Duplicate Operation ID")
            schema = FastAPI.openapi(app)
        for item in schema.get("paths", {}).values():
            for method, operation in item.items():
                if isinstance(operation, dict) and "operationId" in operation:
                    operation["operationId"] = f"{operation['operationId']}_{method}"
        document_dispatch_routes(schema)
    return app.openapi_schema or {}


def _task_row(daemon: Daemon, task_id: str) -> dict[str, Any] | None:
    with daemon.db.session() as s:
        task = s.get(InstallTask, task_id)
        return None if task is None else {"status": task.status, "tenant_id": task.tenant_id,
                                          "plugins": [dict(p) for p in task.plugins]}


def error_kind(exc: PlugdockError) -> tuple[int, str]:
    """The envelope code and ``error_type`` of an error, by the official daemon's exception factory
    (internal/types/exception/errs.go); an error class may name its own with ``envelope_kind``."""
    own: tuple[int, str] | None = getattr(exc, "envelope_kind", None)
    if own is not None:
        return own
    if isinstance(exc, NotFound):
        return 404, "PluginDaemonNotFoundError"
    if isinstance(exc, PackageError | SignatureError | InvalidRequest | InvalidIdentifier):
        return 400, "PluginDaemonBadRequestError"
    return 500, "PluginDaemonInternalServerError"
