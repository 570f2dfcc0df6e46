"""The daemon's HTTP API: the official plugin daemon's routes, envelopes and streaming, on FastAPI.

Management routes answer ``{"code": 0, "message": "success", "data": ...}``; dispatch routes stream
Server-Sent Events, one envelope per ``data:`` line; every error is an envelope whose ``message`` is
the JSON ``{"message", "error_type", "args"}`` the Dify host expects, sent with HTTP 200 on management
routes as the official daemon does (see :mod:`envelope` for which statuses stay). This module wires the guards,
the routers (one module per area) and the error handlers around one :class:`~plugdock.daemon.core.Daemon`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from plugdock import __version__
from plugdock.daemon.core import Daemon
from plugdock.daemon.http import catalogue, dispatch, endpoints, envelope, install, management, polling
from plugdock.daemon.http.fast_dispatch import FastDispatch
from plugdock.daemon.http.guards import ApiKeyGuard, BodyLimit
from plugdock.daemon.plugins.installer import NotFound
from plugdock.daemon.settings import Settings
from plugdock.daemon.state.db import outage_reason
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
                  description="A drop-in for the Dify plugin daemon's HTTP API.")

    # Middleware added later runs earlier: the key first, then the body guards, then the dispatch fast path.
    # model polling answers one plain JSON envelope (http/polling.py), so the streaming fast path leaves it
    app.add_middleware(FastDispatch, prepare=lambda tenant, route, raw, plugin: None if route in polling.ROUTES
                       else dispatch.fast_lines(app.state.daemon, tenant, route, raw, plugin))
    # a package upload is the largest legitimate body; a little room for the form around it
    app.add_middleware(BodyLimit, limit=settings.max_package_size + 1024 * 1024, setting="MAX_PLUGIN_PACKAGE_SIZE",
                       timeout=settings.body_timeout)
    # added last, so it runs first: nothing but health and public endpoints is reached without the key
    app.add_middleware(ApiKeyGuard, key=settings.server_key,
                       public=lambda path: path == "/health/check" or path == "/e" or path.startswith("/e/"))

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
        app.include_router(router)
    return app


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
