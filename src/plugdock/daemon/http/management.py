"""Management routes that read: health, installed plugins and their providers, manifests, credentials, logs."""

from __future__ import annotations

import asyncio
import json
import mimetypes
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func, select
from starlette.responses import Response

from plugdock import __version__
from plugdock.daemon.core import Daemon
from plugdock.daemon.http import envelope
from plugdock.daemon.http.bodies import CredentialsBody, IdentifierListBody, PluginIdsBody, parse_identifier
from plugdock.daemon.http.context import PREFIX, DaemonDep
from plugdock.daemon.http.endpoints import PluginNotInstalled
from plugdock.daemon.plugins.installer import NotFound
from plugdock.daemon.state.logbook import entries_of, last_seq
from plugdock.daemon.state.models import EndpointRecord, Installation, PluginRecord
from plugdock.daemon.state.secrets_box import mask, secret_fields
from plugdock.errors import InvalidRequest, PackageError
from plugdock.packaging.identifier import PluginIdentifier

router = APIRouter()


# -- health ----------------------------------------------------------------------------------------
@router.get("/health/check")
async def health(d: DaemonDep) -> dict[str, Any]:
    """The official fields, and ``starting`` (plugins, started, failed) while a boot start runs."""
    running = sum(1 for i in d.supervisor.instances.values() if i.alive())
    problem = await asyncio.to_thread(d.db.problem)
    answer = {"status": "degraded" if problem else "ok", "database": problem or "ok",
              "version": __version__, "platform": "local", "pool_status": {
                  "installed": len(d.supervisor.instances), "running": running},
              "active_requests": d.active_requests, "active_dispatch_requests": d.active_requests}
    starting = d.boot.progress() if d.boot is not None else None
    if starting is not None:
        answer["starting"] = starting
    return answer


# -- management: what is installed -----------------------------------------------------------------
def installed_identifiers(d: Daemon, tenant_id: str) -> set[str]:
    with d.db.session() as s:
        return set(s.execute(select(Installation.unique_identifier)
                             .where(Installation.tenant_id == tenant_id)).scalars())


def installations(d: Daemon, tenant_id: str) -> list[tuple[Installation, PluginRecord]]:
    with d.db.session() as s:
        rows = s.execute(select(Installation, PluginRecord).join(
            PluginRecord, PluginRecord.unique_identifier == Installation.unique_identifier)
            .where(Installation.tenant_id == tenant_id).order_by(Installation.created_at)).all()
        return [(r[0], r[1]) for r in rows]


def endpoint_counts(d: Daemon, tenant_id: str) -> dict[str, tuple[int, int]]:
    """(set up, active) endpoints by plugin id: the official installation's endpoints_setups/_active."""
    with d.db.session() as s:
        rows = s.execute(select(EndpointRecord.plugin_id, func.count(), func.sum(EndpointRecord.enabled))
                         .where(EndpointRecord.tenant_id == tenant_id).group_by(EndpointRecord.plugin_id)).all()
    return {plugin_id: (int(total), int(active or 0)) for plugin_id, total, active in rows}


def installation_json(inst: Installation, record: PluginRecord,
                      counts: dict[str, tuple[int, int]] | None = None) -> dict[str, Any]:
    ident = PluginIdentifier.parse(inst.unique_identifier)
    setups, active = (counts or {}).get(inst.plugin_id, (0, 0))
    return {"id": inst.id, "name": ident.name, "plugin_id": inst.plugin_id, "tenant_id": inst.tenant_id,
            "plugin_unique_identifier": inst.unique_identifier, "endpoints_active": active,
            "endpoints_setups": setups,
            "installation_id": inst.id, "declaration": record.declaration, "runtime_type": inst.runtime_type,
            "version": ident.version, "created_at": inst.created_at.isoformat(),
            "updated_at": inst.updated_at.isoformat(), "source": inst.source, "checksum": ident.checksum,
            "meta": inst.meta}


@router.get(PREFIX + "/list")
async def list_plugins(d: DaemonDep, tenant_id: str, page: envelope.Page = 1,
                       page_size: envelope.PageSize = 256) -> dict[str, Any]:
    page, page_size = max(page, 1), min(max(page_size, 1), 256)
    rows = installations(d, tenant_id)
    chunk = envelope.page_of(rows, page, page_size)
    counts = endpoint_counts(d, tenant_id)
    return envelope.success({"list": [installation_json(i, r, counts) for i, r in chunk], "total": len(rows),
                             "has_more": page * page_size < len(rows)})


@router.get(PREFIX + "/installation/ids")
async def installation_ids(d: DaemonDep, tenant_id: str, category: str | None = None) -> dict[str, Any]:
    """Plugin ids with a provider of ``category`` (the official ListInstalledPluginIDs, by creation);
    without a category, every installed plugin id."""
    if category is not None and category not in CATEGORIES:
        raise InvalidRequest("invalid plugin category")
    ids: list[str] = []
    for inst, record in installations(d, tenant_id):
        if (category is None or provides(record.declaration, category)) and inst.plugin_id not in ids:
            ids.append(inst.plugin_id)
    return envelope.success({"plugin_ids": ids})


@router.post(PREFIX + "/installation/fetch/batch")
async def fetch_batch(d: DaemonDep, tenant_id: str, body: PluginIdsBody) -> dict[str, Any]:
    wanted = set(body.plugin_ids)
    counts = endpoint_counts(d, tenant_id)
    return envelope.success([installation_json(i, r, counts) for i, r in installations(d, tenant_id)
                             if i.plugin_id in wanted])


@router.post(PREFIX + "/installation/missing")
async def missing(d: DaemonDep, tenant_id: str, body: IdentifierListBody) -> dict[str, Any]:
    installed = {i.plugin_id: i.unique_identifier for i, _ in installations(d, tenant_id)}
    out = []
    for identifier in body.plugin_unique_identifiers:
        plugin_id = parse_identifier(identifier).plugin_id
        if plugin_id not in installed:
            out.append({"plugin_unique_identifier": identifier, "current_identifier": None})
        elif installed[plugin_id] != identifier:
            out.append({"plugin_unique_identifier": identifier, "current_identifier": installed[plugin_id]})
    return envelope.success(out)


# The official PluginCategory values (pkg/entities/plugin_entities/plugin_declaration.go) and the
# declaration key each kind's provider sits under.
CATEGORIES = {"tool": "tool", "model": "model", "datasource": "datasource", "agent-strategy": "agent_strategy",
              "trigger": "trigger", "extension": ""}


def provides(declaration: dict[str, Any], category: str) -> bool:
    """Whether a plugin has a provider of ``category`` (the official per-kind installation tables);
    an extension is a plugin of no other kind."""
    key = CATEGORIES[category]
    return bool(declaration.get(key)) if key else category_of(declaration) == "extension"


def category_of(declaration: dict[str, Any]) -> str:
    """The official PluginDeclaration.Category(): the first kind present, in its order."""
    for category in ("tool", "model", "datasource", "agent-strategy", "trigger"):
        if declaration.get(CATEGORIES[category]):
            return category
    return "extension"


def providers(d: Daemon, tenant_id: str, kind: str) -> list[dict[str, Any]]:
    """One entry per installed provider of ``kind``: the official <Kind>Installation row plus its declaration
    (agent strategies also carry the plugin's ``meta``, as the official GetAgentStrategy does)."""
    out = []
    for inst, record in installations(d, tenant_id):
        declaration = record.declaration.get(kind)
        if declaration:
            meta = (record.declaration.get("meta") or {}) if kind == "agent_strategy" else inst.meta
            out.append({"id": inst.id, "tenant_id": tenant_id, "plugin_id": inst.plugin_id,
                        "plugin_unique_identifier": inst.unique_identifier,
                        "provider": declaration.get("identity", {}).get("name") or declaration.get("provider"),
                        "declaration": declaration, "created_at": inst.created_at.isoformat(),
                        "updated_at": inst.updated_at.isoformat(), "meta": meta})
    return out


@router.get(PREFIX + "/tools")
async def tools(d: DaemonDep, tenant_id: str, page: envelope.Page = 1,
                page_size: envelope.PageSize = 256) -> dict[str, Any]:
    return envelope.success(envelope.page_of(providers(d, tenant_id, "tool"), page, page_size))


@router.get(PREFIX + "/tool")
async def tool(d: DaemonDep, tenant_id: str, plugin_id: str, provider: str) -> dict[str, Any]:
    return envelope.success(provider_of(d, tenant_id, "tool", plugin_id, provider))


def provider_of(d: Daemon, tenant_id: str, kind: str, plugin_id: str, provider: str) -> dict[str, Any]:
    """One provider of one kind a tenant installed, or the official not-installed error."""
    for item in providers(d, tenant_id, kind):
        if item["plugin_id"] == plugin_id and item["provider"] == provider:
            return item
    raise PluginNotInstalled(f"{kind.replace('_', ' ')} provider {plugin_id}/{provider} not found")


@router.get(PREFIX + "/models")
async def models(d: DaemonDep, tenant_id: str, page: envelope.Page = 1,
                 page_size: envelope.PageSize = 256) -> dict[str, Any]:
    return envelope.success(envelope.page_of(providers(d, tenant_id, "model"), page, page_size))


@router.get(PREFIX + "/agent_strategies")
async def agent_strategies(d: DaemonDep, tenant_id: str, page: envelope.Page = 1,
                           page_size: envelope.PageSize = 256) -> dict[str, Any]:
    return envelope.success(envelope.page_of(providers(d, tenant_id, "agent_strategy"), page, page_size))


@router.get(PREFIX + "/fetch/manifest")
async def fetch_manifest(d: DaemonDep, tenant_id: str, plugin_unique_identifier: str) -> dict[str, Any]:
    return envelope.success(d.installer.record(plugin_unique_identifier).declaration)


@router.get(PREFIX + "/fetch/identifier")
async def fetch_identifier(d: DaemonDep, tenant_id: str, plugin_unique_identifier: str) -> dict[str, Any]:
    try:
        d.installer.record(plugin_unique_identifier)
    except NotFound:
        return envelope.success(False)
    return envelope.success(True)


@router.api_route(PREFIX + "/decode/from_identifier", methods=["GET", "POST"])
async def decode_from_identifier(d: DaemonDep, tenant_id: str, request: Request,
                                 plugin_unique_identifier: str | None = None) -> dict[str, Any]:
    if plugin_unique_identifier is None:
        try:
            plugin_unique_identifier = (json.loads(await request.body() or b"{}")).get("plugin_unique_identifier")
        except ValueError:
            plugin_unique_identifier = None
    if not plugin_unique_identifier:
        raise PackageError("plugin_unique_identifier is required")
    record = d.installer.record(plugin_unique_identifier)
    return envelope.success({"unique_identifier": record.unique_identifier, "manifest": record.declaration,
                             "verification": record.verification})


# -- credentials (plugdock's own: used when the daemon dispatches reverse calls itself) --------------
def _declaration_of(d: Daemon, tenant_id: str, plugin_id: str) -> dict[str, Any]:
    for inst, record in installations(d, tenant_id):
        if inst.plugin_id == plugin_id:
            return record.declaration
    raise NotFound(f"plugin {plugin_id} is not installed for this tenant")


@router.post(PREFIX + "/credentials")
async def set_credentials(d: DaemonDep, tenant_id: str, body: CredentialsBody) -> dict[str, Any]:
    declaration = _declaration_of(d, tenant_id, body.plugin_id)
    kind = "model" if declaration.get("model") else "tool" if declaration.get("tool") else ""
    if not kind:
        raise PackageError(f"plugin {body.plugin_id} has no model or tool provider to hold credentials")
    check_credentials(declaration, kind, body.plugin_id, body.credentials)
    await asyncio.to_thread(d.credentials.set, tenant_id, body.plugin_id, body.provider, kind,
                            body.credentials)
    return envelope.success({"plugin_id": body.plugin_id, "provider": body.provider, "kind": kind,
                             "credentials": mask(body.credentials, secret_fields(declaration, kind))})


def credential_fields(declaration: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The credential fields a provider declares: a tool's credentials_schema, a model's provider form."""
    if kind == "tool":
        fields = (declaration.get("tool") or {}).get("credentials_schema") or []
        return [{**f, "variable": f.get("name")} for f in fields if isinstance(f, dict)]
    forms = ((declaration.get("model") or {}).get("provider_credential_schema") or {}).get("credential_form_schemas")
    return [f for f in forms or [] if isinstance(f, dict)]


def check_credentials(declaration: dict[str, Any], kind: str, plugin_id: str, values: dict[str, Any]) -> None:
    """Refuse what the provider's own form would refuse: a required field missing or empty, an option
    outside a select's list. Each problem names the field; unknown fields are kept (forms grow)."""
    problems = []
    for field in credential_fields(declaration, kind):
        name = str(field.get("variable"))
        value = values.get(name)
        if field.get("required") and (value is None or value == ""):
            problems.append(f"{name} is required ({field.get('type', 'text-input')})")
        options = [str(o.get("value")) for o in field.get("options") or [] if isinstance(o, dict)]
        if field.get("type") == "select" and options and value not in (None, "") and str(value) not in options:
            problems.append(f"{name} must be one of {', '.join(options)}, not {value!r}")
    if problems:
        raise InvalidRequest(f"credentials for {plugin_id}: " + "; ".join(problems))


@router.get(PREFIX + "/credentials")
async def list_credentials(d: DaemonDep, tenant_id: str) -> dict[str, Any]:
    out = []
    for plugin_id, provider, kind, values in await asyncio.to_thread(d.credentials.list, tenant_id):
        try:
            secrets = secret_fields(_declaration_of(d, tenant_id, plugin_id), kind)
        except NotFound:
            secrets = set(values)  # the plugin is gone: hide everything
        out.append({"plugin_id": plugin_id, "provider": provider, "kind": kind,
                    "credentials": mask(values, secrets)})
    return envelope.success(out)


@router.post(PREFIX + "/credentials/delete")
async def delete_credentials(d: DaemonDep, tenant_id: str, body: CredentialsBody) -> dict[str, Any]:
    return envelope.success(await asyncio.to_thread(d.credentials.delete, tenant_id, body.plugin_id,
                                                    body.provider))


@router.post("/plugin/{tenant_id}/debugging/key")
async def debugging_key(d: DaemonDep, tenant_id: str) -> dict[str, Any]:
    debugging = d.debugging
    if debugging is None:
        raise NotFound("remote debugging is disabled on this daemon (PLUGIN_REMOTE_INSTALLING_ENABLED)")
    return envelope.success({"key": debugging.issue_key(tenant_id), "host": d.settings.remote_installing_host,
                             "port": debugging.port})


@router.get("/plugin/{tenant_id}/asset/{asset_id}")
async def asset(d: DaemonDep, tenant_id: str, asset_id: str) -> Response:

    data = d.installer.asset(asset_id)
    return Response(data, media_type=mimetypes.guess_type(asset_id)[0] or "application/octet-stream")


@router.get("/plugin/{tenant_id}/management/logs")
async def logs(d: DaemonDep, tenant_id: str, plugin_id: str, lines: int = 200, after: int = 0) -> dict[str, Any]:
    """The plugin's last ``lines`` log lines, or those after sequence number ``after`` (``plugdock logs -f``);
    ``entries`` carry each line's UTC time and number, ``last`` the newest number."""
    for inst, _record in installations(d, tenant_id):
        if inst.plugin_id == plugin_id:
            instance = d.supervisor.instances.get(inst.unique_identifier)
            kept = entries_of(instance.logs, after, max(1, min(lines, 1000))) if instance else []
            return envelope.success({"plugin_unique_identifier": inst.unique_identifier,
                                     "state": instance.state if instance else "stopped",
                                     "lines": [e["line"] for e in kept], "entries": kept,
                                     "last": last_seq(instance.logs) if instance else 0})
    raise NotFound(f"plugin {plugin_id} is not installed for this tenant")

