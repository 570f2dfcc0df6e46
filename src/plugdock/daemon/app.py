"""The daemon's HTTP API: the official plugin daemon's routes, envelopes and streaming, on FastAPI.

Management routes answer ``{"code": 0, "message": "success", "data": ...}``; dispatch routes stream
Server-Sent Events, one envelope per ``data:`` line; every error is an envelope whose ``message`` is
the JSON ``{"message", "error_type", "args"}`` the Dify host expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response, StreamingResponse

from plugdock import __version__
from plugdock.daemon import envelope
from plugdock.daemon.backwards import BackwardsRouter
from plugdock.daemon.bundles import install_bundle, read_bundle
from plugdock.daemon.credentials import CredentialStore
from plugdock.daemon.db import Database, outage_reason
from plugdock.daemon.debugging import DebugServer
from plugdock.daemon.dispatch import DISPATCH_ROUTES, BlobAssembler, BlobTooLarge
from plugdock.daemon.endpoints import register_endpoint_routes, register_json_error
from plugdock.daemon.environments import EnvironmentManager
from plugdock.daemon.fast_dispatch import FastDispatch
from plugdock.daemon.guards import ApiKeyGuard, BodyLimit
from plugdock.daemon.installations import InstallationIndex
from plugdock.daemon.installer import Installer, NotFound
from plugdock.daemon.kvstore import KVStore
from plugdock.daemon.models import Installation, InstallTask, PluginRecord
from plugdock.daemon.network import NetworkPolicy, policy_for
from plugdock.daemon.plugin_users import PluginUsers
from plugdock.daemon.sandbox import Sandbox, home_tag
from plugdock.daemon.secrets_box import SecretBox, mask, secret_fields
from plugdock.daemon.settings import Settings
from plugdock.daemon.supervisor import PluginUnavailable, Supervisor
from plugdock.errors import InvalidRequest, PackageError, PlugdockError, SignatureError
from plugdock.packaging.identifier import InvalidIdentifier, PluginIdentifier

PERMISSIONS = {"storage": "storage"}


class Daemon:
    """Everything the daemon owns, created at start-up and closed at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.database_url)
        self.kv = KVStore(self.db, max_keys=settings.storage_max_keys)
        self.installations = InstallationIndex(self.db)
        self.box = SecretBox(settings.home)
        self.credentials = CredentialStore(self.db, self.box)
        users = PluginUsers(self.db, settings.sandbox_uid_base, home_tag(settings.home)) \
            if settings.sandbox == "process" and os.geteuid() == 0 else None
        self.sandbox = Sandbox(settings.home, settings.sandbox, settings.sandbox_uid_base,
                               settings.plugin_max_open_files, settings.plugin_max_processes, users=users,
                               tmp_size=settings.plugin_tmp_size, cpu=settings.plugin_cpu)
        self.sandbox.lock_down_home()
        # owner-matched rules need plugins under uids of their own
        self.network: NetworkPolicy | None = policy_for(settings, self.sandbox.home_tag) \
            if self.sandbox.separate_users else None
        self.envs = EnvironmentManager(settings.home, self.db, settings.uv_index_url, self.sandbox)
        self.backwards = BackwardsRouter(self)
        self.supervisor = Supervisor(settings, self.backwards.handle, self.sandbox)
        self.installer = Installer(settings, self.db, self.envs, self.supervisor)
        self.debugging = DebugServer(self) if settings.remote_installing_enabled else None
        self.active_requests = 0

    async def start(self) -> None:
        if self.network is not None:  # before the report, which says whether it holds, and before any plugin
            self.network.install()
            self.sandbox.network = self.network
        for line in self.sandbox.report():  # what holds, by what: the operator sees it before any plugin runs
            sys.stderr.write(f"plugdock: {line}\n")
        left = self.sandbox.kill_leftovers_of_previous_run()
        if left:
            sys.stderr.write(f"plugdock: killed {left} plugin process(es) a previous run of this home left behind\n")
        swept = self.installer.sweep_staging()
        if swept:
            sys.stderr.write(f"plugdock: removed {len(swept)} half-written folder(s) an interrupted run left\n")
        interrupted = self.installer.interrupted_tasks()
        if interrupted:
            sys.stderr.write(f"plugdock: {interrupted} install task(s) were interrupted by a stop; marked failed\n")
        orphans = await self.installer.release_orphans()
        if orphans:
            sys.stderr.write(f"plugdock: removed {len(orphans)} package(s) an interrupted uninstall or upgrade left: "
                             f"{', '.join(orphans)}\n")
        self.installer.restore()
        self.supervisor.start_watchdog()
        if self.debugging is not None:
            await self.debugging.start()
            if self.network is not None:  # its port is known only now when it was 0
                self.network.protect(self.settings.remote_installing_host, self.debugging.port,
                                     "the daemon's remote-debugging port")
            sys.stderr.write(f"plugdock: remote debugging on {self.settings.remote_installing_host}:"
                             f"{self.debugging.port}\n")
        for path in self.settings.preinstall:
            await self.preinstall(Path(path))
        if self.settings.start_plugins == "boot":
            for identifier in list(self.supervisor.instances):
                with contextlib.suppress(PluginUnavailable):  # reported in its logs and on first use
                    await self.supervisor.ready(identifier)

    async def preinstall(self, path: Path, tenant: str = "default") -> None:
        """Install plugin folders (or a folder of them) or packages the operator named at start-up.

        The operator's own files: no signature is required, but every other check applies.
        """
        from plugdock.packaging.build import build_package

        folders = [path] if (path / "manifest.yaml").exists() or path.is_file() else sorted(
            p for p in path.iterdir() if (p / "manifest.yaml").exists())
        for folder in folders:
            if folder.is_dir() and "type: bundle" in (folder / "manifest.yaml").read_text():
                continue
            try:
                data = folder.read_bytes() if folder.is_file() else build_package(folder).data
                decoded = await asyncio.to_thread(self.installer.decode, data, False, True)
                identifier = str(decoded.identifier)
                await self.installer.prepare(identifier)
                self.installer._install_for_tenant(tenant, identifier, "preinstall", {})
            except PlugdockError as exc:  # one bad folder does not keep the daemon down
                sys.stderr.write(f"plugdock: could not install {folder}: {exc.message}\n")
                continue
            sys.stderr.write(f"plugdock: installed {identifier} for tenant {tenant}\n")

    async def stop(self) -> None:
        if self.debugging is not None:
            await self.debugging.stop()
        await self.supervisor.shutdown()
        if self.network is not None:
            self.network.remove()
        self.sandbox.close()
        self.db.close()

    def _storage(self, tenant: str, plugin: str, request: dict[str, Any], limit: int) -> dict[str, Any]:
        opt, key = request.get("opt"), str(request.get("key", ""))
        if opt == "set":
            self.kv.set(tenant, plugin, key, bytes.fromhex(str(request.get("value", ""))), limit)
            return {"data": "ok"}
        if opt == "get":
            return {"data": self.kv.get(tenant, plugin, key).hex()}
        if opt == "del":
            return {"data": "ok", "deleted_num": self.kv.delete(tenant, plugin, key)}
        if opt == "exist":
            found = self.kv.exist(tenant, plugin, key)
            return {"data": found, "exist_num": int(found)}
        raise PlugdockError(f"unknown storage opt {opt!r}; use set, get, del or exist")


class IdentifiersBody(BaseModel):
    plugin_unique_identifiers: list[str] = Field(max_length=64)
    source: str = ""
    metas: list[dict[str, Any]] = Field(default_factory=list)


class UpgradeBody(BaseModel):
    original_plugin_unique_identifier: str
    new_plugin_unique_identifier: str
    source: str = ""
    meta: dict[str, Any] = Field(default_factory=dict)


class UninstallBody(BaseModel):
    plugin_installation_id: str


class PluginIdsBody(BaseModel):
    plugin_ids: list[str] = Field(default_factory=list, max_length=256)


class IdentifierListBody(BaseModel):
    plugin_unique_identifiers: list[str] = Field(default_factory=list, max_length=256)


class CredentialsBody(BaseModel):
    plugin_id: str
    provider: str
    credentials: dict[str, Any] = Field(default_factory=dict)


class DispatchBody(BaseModel):
    user_id: str = ""
    conversation_id: str | None = None
    message_id: str | None = None
    app_id: str | None = None
    endpoint_id: str | None = None
    context: dict[str, Any] | None = None
    data: dict[str, Any] = Field(default_factory=dict)


def _parse_identifier(text: str) -> PluginIdentifier:
    try:
        return PluginIdentifier.parse(text)
    except InvalidIdentifier as exc:
        raise PackageError(exc.message) from exc


def create_app(settings: Settings) -> FastAPI:
    daemon_holder: dict[str, Daemon] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        daemon = Daemon(settings)
        daemon_holder["d"] = daemon
        await daemon.start()
        try:
            yield
        finally:
            await daemon.stop()

    app = FastAPI(title="plugdock daemon", version=__version__, lifespan=lifespan,
                  description="A drop-in for the Dify plugin daemon's HTTP API.")

    def daemon() -> Daemon:
        return daemon_holder["d"]

    # Middleware added later runs earlier: the key first, then the body guards, then the dispatch fast path.
    app.add_middleware(FastDispatch, prepare=lambda *args: _fast_dispatch(*args))
    # a package upload is the largest legitimate body; a little room for the form around it
    app.add_middleware(BodyLimit, limit=settings.max_package_size + 1024 * 1024, setting="MAX_PLUGIN_PACKAGE_SIZE",
                       timeout=settings.body_timeout)
    # added last, so it runs first: nothing but health and public endpoints is reached without the key
    app.add_middleware(ApiKeyGuard, key=settings.server_key,
                       public=lambda path: path == "/health/check" or path == "/e" or path.startswith("/e/"))

    # -- cross-cutting ---------------------------------------------------------------------------------
    @app.exception_handler(PlugdockError)
    async def plugdock_error(_request: Request, exc: PlugdockError) -> JSONResponse:
        if isinstance(exc, NotFound):
            return envelope.error(404, exc.message, "PluginDaemonNotFoundError")
        if isinstance(exc, PackageError | SignatureError | InvalidRequest | InvalidIdentifier):
            return envelope.error(400, exc.message, "PluginDaemonBadRequestError")
        return envelope.error(500, exc.message, "PluginDaemonInternalServerError")

    @app.exception_handler(OperationalError)
    async def database_down(_request: Request, exc: OperationalError) -> JSONResponse:
        return envelope.error(503, f"the database is unavailable: {outage_reason(exc)}; the daemon retries on "
                                   "every request", "PluginDaemonInternalServerError")

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return envelope.error(400, f"invalid request: {problems}", "PluginDaemonBadRequestError")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return JSONResponse({"code": "not_found", "message": "route not found"}, status_code=404)
        return envelope.error(exc.status_code, str(exc.detail), "PluginDaemonBadRequestError")

    # -- health -----------------------------------------------------------------------------------------
    @app.get("/health/check")
    async def health() -> dict[str, Any]:
        d = daemon()
        running = sum(1 for i in d.supervisor.instances.values() if i.alive())
        problem = await asyncio.to_thread(d.db.problem)
        return {"status": "degraded" if problem else "ok", "database": problem or "ok",
                "version": __version__, "platform": "local", "pool_status": {
            "installed": len(d.supervisor.instances), "running": running},
            "active_requests": d.active_requests, "active_dispatch_requests": d.active_requests}

    # -- management: install ------------------------------------------------------------------------------
    prefix = "/plugin/{tenant_id}/management"

    @app.post(prefix + "/install/upload/package")
    async def upload_package(tenant_id: str, dify_pkg: UploadFile = File(...),  # noqa: B008
                             verify_signature: str = Form("false")) -> dict[str, Any]:
        data = await dify_pkg.read(settings.max_package_size + 1)
        if len(data) > settings.max_package_size:
            raise PackageError(f"package is over the {settings.max_package_size}-byte limit (MAX_PLUGIN_PACKAGE_SIZE)")
        decoded = await asyncio.to_thread(daemon().installer.decode, data, verify_signature.lower() == "true")
        return envelope.success({"unique_identifier": str(decoded.identifier), "manifest": decoded.declaration,
                                 "verification": decoded.verification})

    @app.post(prefix + "/install/upload/bundle")
    async def upload_bundle(tenant_id: str, dify_bundle: UploadFile = File(...),  # noqa: B008
                            verify_signature: str = Form("false")) -> dict[str, Any]:
        """The official route: decode a bundle and list its members (package members are uploaded)."""
        limit = settings.max_package_size * 12
        data = await dify_bundle.read(limit + 1)
        if len(data) > limit:
            raise PackageError(f"bundle is over the {limit}-byte limit (MAX_BUNDLE_PACKAGE_SIZE)")
        bundle, archive = read_bundle(data, settings)
        out: list[dict[str, Any]] = []
        for dep in bundle.dependencies:
            value = dep.value.to_data()
            if dep.type == "package":
                member = archive.read(dep.value.path) or archive.read(f"_assets/{dep.value.path}")
                if member is None:
                    raise PackageError(f"package {dep.value.path!r} is not inside the bundle")
                decoded = await asyncio.to_thread(daemon().installer.decode, member,
                                                  verify_signature.lower() == "true")
                value = {"unique_identifier": str(decoded.identifier), "manifest": decoded.declaration}
            out.append({"type": dep.type, "value": value})
        return envelope.success(out)

    @app.post(prefix + "/install/bundle")
    async def install_bundle_route(tenant_id: str, dify_bundle: UploadFile = File(...),  # noqa: B008
                                   verify_signature: str = Form("false")) -> dict[str, Any]:
        """plugdock's own: fetch every member (bundle, marketplace, GitHub) and install all in one task."""
        limit = settings.max_package_size * 12
        data = await dify_bundle.read(limit + 1)
        if len(data) > limit:
            raise PackageError(f"bundle is over the {limit}-byte limit (MAX_BUNDLE_PACKAGE_SIZE)")
        return envelope.success(await install_bundle(daemon().installer, settings, tenant_id, data,
                                                     verify_signature.lower() == "true"))

    @app.post(prefix + "/install/identifiers")
    async def install_identifiers(tenant_id: str, body: IdentifiersBody) -> dict[str, Any]:
        for identifier in body.plugin_unique_identifiers:
            _parse_identifier(identifier)
        installed = _installed_identifiers(tenant_id)
        if all(i in installed for i in body.plugin_unique_identifiers):
            return envelope.success({"all_installed": True, "task_id": ""})
        task_id = daemon().installer.create_task(tenant_id, body.plugin_unique_identifiers, body.source, body.metas)
        return envelope.success({"all_installed": False, "task_id": task_id})

    @app.post(prefix + "/install/upgrade")
    async def install_upgrade(tenant_id: str, body: UpgradeBody) -> dict[str, Any]:
        _parse_identifier(body.new_plugin_unique_identifier)
        task_id = await daemon().installer.upgrade(tenant_id, body.original_plugin_unique_identifier,
                                                   body.new_plugin_unique_identifier, body.source, body.meta)
        return envelope.success({"all_installed": False, "task_id": task_id})

    def _task_json(task: InstallTask) -> dict[str, Any]:
        return {"id": task.id, "created_at": task.created_at.isoformat(), "updated_at": task.updated_at.isoformat(),
                "status": task.status, "tenant_id": task.tenant_id, "total_plugins": task.total_plugins,
                "completed_plugins": task.completed_plugins, "plugins": task.plugins}

    @app.get(prefix + "/install/tasks")
    async def list_tasks(tenant_id: str, page: envelope.Page = 1, page_size: envelope.PageSize = 256) -> dict[str, Any]:
        page, page_size = max(page, 1), min(max(page_size, 1), 256)
        with daemon().db.session() as s:
            tasks = s.execute(select(InstallTask).where(InstallTask.tenant_id == tenant_id)
                              .order_by(InstallTask.created_at.desc()).offset((page - 1) * page_size)
                              .limit(page_size)).scalars().all()
            return envelope.success([_task_json(t) for t in tasks])

    @app.get(prefix + "/install/tasks/{task_id}")
    async def get_task(tenant_id: str, task_id: str) -> dict[str, Any]:
        with daemon().db.session() as s:
            task = s.get(InstallTask, task_id)
            if task is None or task.tenant_id != tenant_id:
                raise NotFound(f"install task {task_id} not found")
            return envelope.success(_task_json(task))

    @app.post(prefix + "/install/tasks/{task_id}/delete")
    async def delete_task(tenant_id: str, task_id: str) -> dict[str, Any]:
        with daemon().db.session() as s:
            task = s.get(InstallTask, task_id)
            if task is not None and task.tenant_id == tenant_id:
                s.delete(task)
        return envelope.success(True)

    @app.post(prefix + "/install/tasks/delete_all")
    async def delete_all_tasks(tenant_id: str) -> dict[str, Any]:
        with daemon().db.session() as s:
            for task in s.execute(select(InstallTask).where(InstallTask.tenant_id == tenant_id)).scalars():
                s.delete(task)
        return envelope.success(True)

    @app.post(prefix + "/uninstall")
    async def uninstall(tenant_id: str, body: UninstallBody) -> dict[str, Any]:
        await daemon().installer.uninstall(tenant_id, body.plugin_installation_id)
        return envelope.success(True)

    # -- management: what is installed -----------------------------------------------------------------
    def _installed_identifiers(tenant_id: str) -> set[str]:
        with daemon().db.session() as s:
            return set(s.execute(select(Installation.unique_identifier)
                                 .where(Installation.tenant_id == tenant_id)).scalars())

    def _installations(tenant_id: str) -> list[tuple[Installation, PluginRecord]]:
        with daemon().db.session() as s:
            rows = s.execute(select(Installation, PluginRecord).join(
                PluginRecord, PluginRecord.unique_identifier == Installation.unique_identifier)
                .where(Installation.tenant_id == tenant_id).order_by(Installation.created_at)).all()
            return [(r[0], r[1]) for r in rows]

    def _installation_json(inst: Installation, record: PluginRecord) -> dict[str, Any]:
        ident = PluginIdentifier.parse(inst.unique_identifier)
        return {"id": inst.id, "name": ident.name, "plugin_id": inst.plugin_id, "tenant_id": inst.tenant_id,
                "plugin_unique_identifier": inst.unique_identifier, "endpoints_active": 0, "endpoints_setups": 0,
                "installation_id": inst.id, "declaration": record.declaration, "runtime_type": inst.runtime_type,
                "version": ident.version, "created_at": inst.created_at.isoformat(),
                "updated_at": inst.updated_at.isoformat(), "source": inst.source, "checksum": ident.checksum,
                "meta": inst.meta}

    @app.get(prefix + "/list")
    async def list_plugins(tenant_id: str, page: envelope.Page = 1,
                           page_size: envelope.PageSize = 256) -> dict[str, Any]:
        page, page_size = max(page, 1), min(max(page_size, 1), 256)
        rows = _installations(tenant_id)
        chunk = rows[(page - 1) * page_size : page * page_size]
        return envelope.success({"list": [_installation_json(i, r) for i, r in chunk], "total": len(rows),
                                 "has_more": page * page_size < len(rows)})

    @app.get(prefix + "/installation/ids")
    async def installation_ids(tenant_id: str) -> dict[str, Any]:
        return envelope.success({"plugin_ids": sorted({i.plugin_id for i, _ in _installations(tenant_id)})})

    @app.post(prefix + "/installation/fetch/batch")
    async def fetch_batch(tenant_id: str, body: PluginIdsBody) -> dict[str, Any]:
        wanted = set(body.plugin_ids)
        return envelope.success([_installation_json(i, r) for i, r in _installations(tenant_id)
                                 if i.plugin_id in wanted])

    @app.post(prefix + "/installation/missing")
    async def missing(tenant_id: str, body: IdentifierListBody) -> dict[str, Any]:
        installed = {i.plugin_id: i.unique_identifier for i, _ in _installations(tenant_id)}
        out = []
        for identifier in body.plugin_unique_identifiers:
            plugin_id = _parse_identifier(identifier).plugin_id
            if plugin_id not in installed:
                out.append({"plugin_unique_identifier": identifier, "current_identifier": None})
            elif installed[plugin_id] != identifier:
                out.append({"plugin_unique_identifier": identifier, "current_identifier": installed[plugin_id]})
        return envelope.success(out)

    def _providers(tenant_id: str, kind: str) -> list[dict[str, Any]]:
        out = []
        for inst, record in _installations(tenant_id):
            declaration = record.declaration.get(kind)
            if declaration:
                out.append({"id": inst.id, "tenant_id": tenant_id, "plugin_id": inst.plugin_id,
                            "plugin_unique_identifier": inst.unique_identifier,
                            "provider": declaration.get("identity", {}).get("name") or declaration.get("provider"),
                            "declaration": declaration, "created_at": inst.created_at.isoformat(),
                            "updated_at": inst.updated_at.isoformat(), "meta": inst.meta})
        return out

    @app.get(prefix + "/tools")
    async def tools(tenant_id: str, page: envelope.Page = 1, page_size: envelope.PageSize = 256) -> dict[str, Any]:
        return envelope.success(_providers(tenant_id, "tool")[(page - 1) * page_size : page * page_size])

    @app.get(prefix + "/tool")
    async def tool(tenant_id: str, plugin_id: str, provider: str) -> dict[str, Any]:
        for item in _providers(tenant_id, "tool"):
            if item["plugin_id"] == plugin_id and item["provider"] == provider:
                return envelope.success(item)
        raise NotFound(f"tool provider {plugin_id}/{provider} not found")

    @app.get(prefix + "/models")
    async def models(tenant_id: str, page: envelope.Page = 1, page_size: envelope.PageSize = 256) -> dict[str, Any]:
        return envelope.success(_providers(tenant_id, "model")[(page - 1) * page_size : page * page_size])

    @app.get(prefix + "/agent_strategies")
    async def agent_strategies(tenant_id: str, page: envelope.Page = 1,
                               page_size: envelope.PageSize = 256) -> dict[str, Any]:
        return envelope.success(_providers(tenant_id, "agent_strategy")[(page - 1) * page_size : page * page_size])

    @app.get(prefix + "/fetch/manifest")
    async def fetch_manifest(tenant_id: str, plugin_unique_identifier: str) -> dict[str, Any]:
        return envelope.success(daemon().installer.record(plugin_unique_identifier).declaration)

    @app.get(prefix + "/fetch/identifier")
    async def fetch_identifier(tenant_id: str, plugin_unique_identifier: str) -> dict[str, Any]:
        try:
            daemon().installer.record(plugin_unique_identifier)
        except NotFound:
            return envelope.success(False)
        return envelope.success(True)

    @app.api_route(prefix + "/decode/from_identifier", methods=["GET", "POST"])
    async def decode_from_identifier(tenant_id: str, request: Request,
                                     plugin_unique_identifier: str | None = None) -> dict[str, Any]:
        if plugin_unique_identifier is None:
            try:
                plugin_unique_identifier = (json.loads(await request.body() or b"{}")).get("plugin_unique_identifier")
            except ValueError:
                plugin_unique_identifier = None
        if not plugin_unique_identifier:
            raise PackageError("plugin_unique_identifier is required")
        record = daemon().installer.record(plugin_unique_identifier)
        return envelope.success({"unique_identifier": record.unique_identifier, "manifest": record.declaration,
                                 "verification": record.verification})

    # -- credentials (plugdock's own: used when the daemon dispatches reverse calls itself) --------------
    def _declaration_of(tenant_id: str, plugin_id: str) -> dict[str, Any]:
        for inst, record in _installations(tenant_id):
            if inst.plugin_id == plugin_id:
                return record.declaration
        raise NotFound(f"plugin {plugin_id} is not installed for this tenant")

    @app.post(prefix + "/credentials")
    async def set_credentials(tenant_id: str, body: CredentialsBody) -> dict[str, Any]:
        declaration = _declaration_of(tenant_id, body.plugin_id)
        kind = "model" if declaration.get("model") else "tool" if declaration.get("tool") else ""
        if not kind:
            raise PackageError(f"plugin {body.plugin_id} has no model or tool provider to hold credentials")
        await asyncio.to_thread(daemon().credentials.set, tenant_id, body.plugin_id, body.provider, kind,
                                body.credentials)
        return envelope.success({"plugin_id": body.plugin_id, "provider": body.provider, "kind": kind,
                                 "credentials": mask(body.credentials, secret_fields(declaration, kind))})

    @app.get(prefix + "/credentials")
    async def list_credentials(tenant_id: str) -> dict[str, Any]:
        out = []
        for plugin_id, provider, kind, values in await asyncio.to_thread(daemon().credentials.list, tenant_id):
            try:
                secrets = secret_fields(_declaration_of(tenant_id, plugin_id), kind)
            except NotFound:
                secrets = set(values)  # the plugin is gone: hide everything
            out.append({"plugin_id": plugin_id, "provider": provider, "kind": kind,
                        "credentials": mask(values, secrets)})
        return envelope.success(out)

    @app.post(prefix + "/credentials/delete")
    async def delete_credentials(tenant_id: str, body: CredentialsBody) -> dict[str, Any]:
        return envelope.success(await asyncio.to_thread(daemon().credentials.delete, tenant_id, body.plugin_id,
                                                        body.provider))

    @app.post("/plugin/{tenant_id}/debugging/key")
    async def debugging_key(tenant_id: str) -> dict[str, Any]:
        debugging = daemon().debugging
        if debugging is None:
            raise NotFound("remote debugging is disabled on this daemon (PLUGIN_REMOTE_INSTALLING_ENABLED)")
        return envelope.success({"key": debugging.issue_key(tenant_id), "host": settings.remote_installing_host,
                                 "port": debugging.port})

    @app.get("/plugin/{tenant_id}/asset/{asset_id}")
    async def asset(tenant_id: str, asset_id: str) -> Response:
        import mimetypes

        data = daemon().installer.asset(asset_id)
        return Response(data, media_type=mimetypes.guess_type(asset_id)[0] or "application/octet-stream")

    @app.get("/plugin/{tenant_id}/management/logs")
    async def logs(tenant_id: str, plugin_id: str, lines: int = 200) -> dict[str, Any]:
        for inst, _record in _installations(tenant_id):
            if inst.plugin_id == plugin_id:
                instance = daemon().supervisor.instances.get(inst.unique_identifier)
                kept = list(instance.logs)[-max(1, min(lines, 1000)):] if instance else []
                return envelope.success({"plugin_unique_identifier": inst.unique_identifier,
                                         "state": instance.state if instance else "stopped", "lines": kept})
        raise NotFound(f"plugin {plugin_id} is not installed for this tenant")

    register_endpoint_routes(app, daemon)
    register_json_error(app)

    # -- dispatch ---------------------------------------------------------------------------------------
    @app.post("/plugin/{tenant_id}/dispatch/{route:path}")
    async def dispatch(tenant_id: str, route: str, body: DispatchBody, request: Request) -> Response:
        """Most dispatches are answered by FastDispatch before routing; this answers the rest, errors included."""
        if DISPATCH_ROUTES.get(route) is None:
            return JSONResponse({"code": "not_found", "message": "route not found"}, status_code=404)
        plugin_id = request.headers.get("x-plugin-id")
        if not plugin_id:
            return envelope.error(400, "the X-Plugin-ID header is required", "PluginDaemonBadRequestError")
        lines = _dispatch_lines(tenant_id, route, body, plugin_id)
        if lines is None:
            return envelope.error(404, f"plugin not found: {plugin_id} is not installed for tenant {tenant_id}",
                                  "PluginNotFoundError")
        return StreamingResponse(lines, media_type="text/event-stream")

    def _dispatch_lines(tenant_id: str, route: str, body: DispatchBody, plugin_id: str) -> AsyncIterator[bytes] | None:
        """The SSE lines answering one dispatch, or None when the plugin is not installed for the tenant."""
        identifier = daemon().installations.installed(tenant_id, plugin_id)
        if identifier is None:
            return None
        access_type, action = DISPATCH_ROUTES[route]
        data = {**body.data, "user_id": body.user_id, "type": access_type, "action": action}
        env = {"conversation_id": body.conversation_id, "message_id": body.message_id, "app_id": body.app_id,
               "endpoint_id": body.endpoint_id, "context": body.context}
        return _stream(tenant_id, identifier, data, env)

    def _fast_dispatch(tenant_id: str, route: str, raw: bytes, plugin_id: str) -> AsyncIterator[bytes] | None:
        if route not in DISPATCH_ROUTES:
            return None
        try:
            body = DispatchBody.model_validate_json(raw)
        except ValueError:
            return None
        return _dispatch_lines(tenant_id, route, body, plugin_id)

    async def _stream(tenant_id: str, identifier: str, data: dict[str, Any],
                      env: dict[str, Any]) -> AsyncIterator[bytes]:
        d = daemon()
        d.active_requests += 1
        deadline = time.monotonic() + settings.max_execution_timeout

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
                    yield line(envelope.error_body(500, "killed by timeout: the plugin did not finish within "
                                                        f"PLUGIN_MAX_EXECUTION_TIMEOUT={settings.max_execution_timeout}"
                                                        " s", "PluginDaemonInternalServerError"))
                    await messages.aclose()  # type: ignore[attr-defined]
                    return
                if message.get("type") == "stream":
                    chunk = message.get("data")
                    if blobs is not None and isinstance(chunk, dict) and chunk.get("type") == "blob_chunk":
                        try:
                            chunk = blobs.add(chunk)
                        except BlobTooLarge as exc:
                            yield line(envelope.error_body(500, exc.message, "PluginDaemonInvokeError"))
                            await messages.aclose()  # type: ignore[attr-defined]
                            return
                        if chunk is None:
                            continue
                    yield line(envelope.success(chunk))
                elif message.get("type") == "error":
                    yield line(envelope.plugin_error_body(message.get("data") or {}))
                    await messages.aclose()  # type: ignore[attr-defined]
                    return
        except PluginUnavailable as exc:
            yield line(envelope.error_body(500, exc.message, "PluginDaemonInvokeError"))
        finally:
            d.active_requests -= 1

    return app
