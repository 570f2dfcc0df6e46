"""The registry's HTTP API: the Marketplace routes Dify calls, uploads and yanking behind a token, and a page.

Dify's side (``api/core/helper/marketplace.py``): ``POST /api/v1/plugins/batch`` ``{"plugin_ids": [...]}`` read as
``data.plugins``; ``GET /api/v1/plugins/{org}/{name}/{version}/download`` (or ``/api/v1/plugins/download?
unique_identifier=`` for an identifier it cannot split), preceded by a ``HEAD`` for the size; ``POST
/api/v1/stats/plugins/install_count``; ``GET /api/v1/dist/plugins/manifest.json`` for the upgrade check. Answers
use the Marketplace envelope ``{"code": 0, "msg": "success", "data": ...}``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, File, Header, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from plugdock.errors import PlugdockError
from plugdock.packaging.archive import DEFAULT_MAX_SIZE, PackageArchive
from plugdock.packaging.identifier import InvalidIdentifier, PluginIdentifier
from plugdock.registry.blobs import Blobs
from plugdock.registry.intake import (
    VersionConflict,
    blob_key,
    marketplace_plugin,
    publish,
    snapshot,
    version_entry,
)
from plugdock.registry.page import render_page
from plugdock.registry.store import Catalog, PackageVersion

ICON_TYPES = {".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".webp": "image/webp", ".gif": "image/gif"}


@dataclass
class RegistryConfig:
    catalog: Catalog
    blobs: Blobs
    token: str = ""  # PLUGDOCK_REGISTRY_TOKEN: uploads and yanking are refused without one
    key: rsa.RSAPrivateKey | None = None
    public_key_pem: bytes = b""
    max_size: int = DEFAULT_MAX_SIZE


class BatchBody(BaseModel):
    plugin_ids: list[str] = Field(max_length=1000)


class InstallCountBody(BaseModel):
    unique_identifier: str


class SearchBody(BaseModel):
    page: int = Field(1, ge=1)
    page_size: int = Field(40, ge=1, le=500)
    query: str = ""
    category: str = ""
    tags: list[str] = []
    exclude: list[str] = []
    sort_by: str = "install_count"
    sort_order: str = "DESC"


class YankBody(BaseModel):
    unique_identifier: str
    reason: str = ""
    yanked: bool = True


def ok(data: Any) -> JSONResponse:
    return JSONResponse({"code": 0, "msg": "success", "data": data})


def fail(status: int, message: str) -> JSONResponse:
    return JSONResponse({"code": status, "msg": message, "data": None}, status_code=status)


def create_app(config: RegistryConfig) -> FastAPI:
    app = FastAPI(title="plugdock registry", docs_url=None, redoc_url=None, openapi_url=None)
    catalog, blobs = config.catalog, config.blobs

    def base(request: Request) -> str:
        return str(request.base_url)

    def package_response(row: PackageVersion | None, method: str) -> Response:
        if row is None:
            return fail(404, "no such package")
        data = blobs.get(blob_key(row.checksum))
        if data is None:
            return fail(404, f"{row.unique_identifier}: the package file is missing from the storage")
        headers = {"Content-Disposition": f'attachment; filename="{row.name}-{row.version}.difypkg"',
                   "X-Plugin-Unique-Identifier": row.unique_identifier}
        if row.yanked:
            headers["X-Plugin-Yanked"] = row.yank_reason or "yanked"
        if method == "HEAD":
            return Response(headers={**headers, "Content-Length": str(len(data))},
                            media_type="application/octet-stream")
        return Response(data, headers=headers, media_type="application/octet-stream")

    def authorized(authorization: str | None) -> JSONResponse | None:
        if not config.token:
            return fail(403, "uploads are off: the registry was started without PLUGDOCK_REGISTRY_TOKEN")
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not given or not hmac.compare_digest(given.encode(), config.token.encode()):
            return fail(401, "a valid token is required (Authorization: Bearer TOKEN)")
        return None

    @app.post("/api/v1/plugins/batch")
    def batch(body: BatchBody, request: Request) -> JSONResponse:
        found = (catalog.latest(plugin_id) for plugin_id in dict.fromkeys(body.plugin_ids))
        return ok({"plugins": [marketplace_plugin(row, catalog, base(request)) for row in found if row is not None]})

    @app.api_route("/api/v1/plugins/download", methods=["GET", "HEAD"])
    def download_by_identifier(unique_identifier: str, request: Request) -> Response:
        try:
            PluginIdentifier.parse(unique_identifier)
        except InvalidIdentifier as exc:
            return fail(400, exc.message)
        return package_response(catalog.get(unique_identifier), request.method)

    @app.api_route("/api/v1/plugins/{org}/{name}/{version}/download", methods=["GET", "HEAD"])
    def download_by_version(org: str, name: str, version: str, request: Request) -> Response:
        return package_response(catalog.by_version(f"{org}/{name}", version), request.method)

    @app.post("/api/v1/stats/plugins/install_count")
    def install_count(body: InstallCountBody) -> JSONResponse:
        if not catalog.count_install(body.unique_identifier):
            return fail(404, f"{body.unique_identifier}: no such package")
        return ok(None)

    @app.get("/api/v1/dist/plugins/manifest.json")
    def dist_manifest(request: Request) -> JSONResponse:
        return JSONResponse({"plugins": [snapshot(row, base(request)) for row in catalog.latest_of_all()]})

    @app.post("/api/v1/plugins/search/advanced")
    def search(body: SearchBody, request: Request) -> JSONResponse:
        rows = [row for row in catalog.latest_of_all() if _matches(row, body)]
        key = {"install_count": lambda r: catalog.installs(r.plugin_id), "version_updated_at": lambda r: r.created_at,
               "created_at": lambda r: r.created_at}.get(body.sort_by, lambda r: r.plugin_id)
        rows.sort(key=key, reverse=body.sort_order.upper() == "DESC")
        page = rows[(body.page - 1) * body.page_size: body.page * body.page_size]
        return ok({"plugins": [marketplace_plugin(r, catalog, base(request)) for r in page], "total": len(rows)})

    @app.get("/api/v1/collections")
    def collections() -> JSONResponse:
        return ok({"collections": []})

    @app.get("/api/v1/plugins/{org}/{name}")
    def detail(org: str, name: str, request: Request) -> JSONResponse:
        row = catalog.latest(f"{org}/{name}")
        if row is None:
            return fail(404, f"{org}/{name}: no such plugin (or every version is yanked)")
        return ok({"plugin": marketplace_plugin(row, catalog, base(request))})

    @app.get("/api/v1/plugins/{org}/{name}/versions")
    def versions(org: str, name: str) -> JSONResponse:
        rows = catalog.versions(f"{org}/{name}")
        if not rows:
            return fail(404, f"{org}/{name}: no such plugin")
        return ok({"versions": [version_entry(row) for row in rows]})

    @app.get("/api/v1/plugins/{org}/{name}/icon")
    def icon(org: str, name: str) -> Response:
        row = catalog.latest(f"{org}/{name}") or next(iter(catalog.versions(f"{org}/{name}")), None)
        data = blobs.get(blob_key(row.checksum)) if row is not None and row.icon else None
        if row is None or data is None:
            return fail(404, f"{org}/{name}: no icon")
        content = PackageArchive.open(data, max_size=config.max_size).read(row.icon) or b""
        suffix = row.icon[row.icon.rfind("."):].lower()
        # an uploaded SVG may hold script: never run it on the registry's origin
        return Response(content, media_type=ICON_TYPES.get(suffix, "application/octet-stream"),
                        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                                 "X-Content-Type-Options": "nosniff"})

    @app.get("/api/v1/plugins/{org}/{name}/{version}")
    def one_version(org: str, name: str, version: str) -> JSONResponse:
        """What the dify-plugins pre-check workflow asks (code 0: the version exists; yanked ones count)."""
        row = catalog.by_version(f"{org}/{name}", version)
        if row is None:
            return fail(404, f"{org}/{name} {version}: no such version")
        return ok({"version": version_entry(row)})

    @app.post("/api/v1/plugins/upload")
    async def upload(request: Request, package: Annotated[UploadFile, File()],
                     authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        refused = authorized(authorization)
        if refused is not None:
            return refused
        data = await package.read(config.max_size + 1)
        if len(data) > config.max_size:
            return fail(413, f"the package is over the registry's {config.max_size}-byte limit")
        try:
            published = publish(data, catalog, blobs, config.key, config.max_size)
        except VersionConflict as exc:
            return fail(409, exc.message)
        except PlugdockError as exc:
            return fail(400, exc.message)
        entry = version_entry(published.row)
        return ok({**entry, "plugin_id": published.row.plugin_id, "created": published.created,
                   "download_url": f"{base(request).rstrip('/')}/api/v1/plugins/{published.row.org}/"
                                   f"{published.row.name}/{published.row.version}/download"})

    @app.post("/api/v1/plugins/yank")
    def yank(body: YankBody, authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        refused = authorized(authorization)
        if refused is not None:
            return refused
        row = catalog.yank(body.unique_identifier, body.yanked, body.reason)
        if row is None:
            return fail(404, f"{body.unique_identifier}: no such package")
        return ok(version_entry(row))

    @app.get("/api/v1/key")
    def public_key() -> Response:
        if not config.public_key_pem:
            return fail(404, "this registry does not sign packages")
        return Response(config.public_key_pem, media_type="application/x-pem-file")

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> HTMLResponse:
        return HTMLResponse(render_page(catalog, base(request), signed=config.key is not None))

    return app


def _matches(row: PackageVersion, body: SearchBody) -> bool:
    if row.plugin_id in body.exclude or (body.category and body.category != row.category):
        return False
    tags = set(row.declaration.get("tags") or [])
    if body.tags and not tags.intersection(body.tags):
        return False
    if not body.query:
        return True
    text = " ".join([row.plugin_id, *map(str, (row.declaration.get("label") or {}).values()),
                     *map(str, (row.declaration.get("description") or {}).values())]).lower()
    return body.query.lower() in text
