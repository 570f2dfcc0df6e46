"""Management routes the Dify console reads about installed plugins beyond the basic lists: plugins by
category, model bindings, tool existence, one agent strategy, the trigger and datasource kinds, a
package's README and the files its README refers to.

Shapes follow the official controllers (internal/server/controllers/{plugins,tool,agent,model,trigger,
datasource}.go) and services (internal/service/manage_plugin.go, trigger.go, plugin_readme.go); the trigger
and datasource lists answer an empty list while nothing of that kind is installed, as the official daemon
does from its empty tables (Dify calls them on every console load).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from plugdock.daemon.core import Daemon
from plugdock.daemon.http import envelope
from plugdock.daemon.http.bodies import parse_identifier
from plugdock.daemon.http.context import PREFIX, DaemonDep
from plugdock.daemon.http.datasources import datasource_row, datasource_rows
from plugdock.daemon.http.management import (
    CATEGORIES,
    category_of,
    endpoint_counts,
    installation_json,
    installations,
    provider_of,
    providers,
)
from plugdock.daemon.plugins.installer import NotFound
from plugdock.errors import InvalidRequest
from plugdock.packaging.archive import PackageArchive

router = APIRouter()
LANGUAGES = ("en_US", "zh_Hans", "ja_JP", "pt_BR")  # the official listPluginsByCategoryRequest's oneof
README = re.compile(r"^readme/README_([a-z]{2}_[A-Za-z]{2,})\.md$")  # the official readmeRegexp


# -- plugins by category ----------------------------------------------------------------------------
def _localized(value: Any, language: str) -> str:
    if not isinstance(value, dict):
        return str(value or "")
    return str(value.get(language) or value.get("en_US") or "")


def _matches(plugin_id: str, declaration: dict[str, Any], query: str, tags: list[str], language: str) -> bool:
    """The official pluginMatchesCategoryListFilters: any requested tag, then the query (case-insensitive)
    in the plugin id, name, label or description."""
    if tags and not set(tags) & set(declaration.get("tags") or []):
        return False
    if not query:
        return True
    needle = query.lower()
    return any(needle in text.lower() for text in (
        plugin_id, str(declaration.get("name") or ""), _localized(declaration.get("label"), language),
        _localized(declaration.get("description"), language)))


@router.get(PREFIX + "/{category}/list")
async def list_by_category(d: DaemonDep, tenant_id: str, category: str, page: envelope.Page = 1,
                           page_size: Annotated[int, Query(ge=1, le=256)] = 256,
                           query: Annotated[str, Query(max_length=256)] = "",
                           tags: Annotated[list[str] | None, Query(max_length=128)] = None,
                           language: str = "en_US") -> dict[str, Any]:
    if category not in CATEGORIES:
        raise InvalidRequest("invalid plugin category")
    if language not in LANGUAGES:
        raise InvalidRequest(f"language must be one of {', '.join(LANGUAGES)}")
    counts = endpoint_counts(d, tenant_id)
    matched = [installation_json(i, r, counts) for i, r in installations(d, tenant_id)
               if category_of(r.declaration) == category
               and _matches(i.plugin_id, r.declaration, query, tags or [], language)]
    chunk = envelope.page_of(matched, page, page_size)
    return envelope.success({"list": chunk, "has_more": page * page_size < len(matched)})


# -- models, tools, agent strategies -----------------------------------------------------------------
@router.get(PREFIX + "/models/bindings")
async def model_bindings(d: DaemonDep, tenant_id: str) -> dict[str, Any]:
    """The official ListModelPluginBindings: one row per (plugin id, model provider)."""
    out = []
    for inst, record in installations(d, tenant_id):
        model = record.declaration.get("model")
        if not model:
            continue
        ident = parse_identifier(inst.unique_identifier)
        out.append({"provider": model.get("provider"), "installation_id": inst.id, "plugin_id": inst.plugin_id,
                    "plugin_unique_identifier": inst.unique_identifier, "runtime_type": inst.runtime_type,
                    "source": inst.source, "version": ident.version,
                    "verified": bool(record.declaration.get("verified"))})
    return envelope.success(out)


class ProviderId(BaseModel):
    plugin_id: str = Field(min_length=1)
    provider_name: str = Field(min_length=1)


class CheckExistenceBody(BaseModel):
    provider_ids: list[ProviderId] = Field(max_length=256)


@router.post(PREFIX + "/tools/check_existence")
async def tools_check_existence(d: DaemonDep, tenant_id: str, body: CheckExistenceBody) -> dict[str, Any]:
    """One boolean per asked (plugin id, provider name), in order (the official CheckToolExistence)."""
    present = {(p["plugin_id"], p["provider"]) for p in providers(d, tenant_id, "tool")}
    return envelope.success([(p.plugin_id, p.provider_name) in present for p in body.provider_ids])


@router.get(PREFIX + "/agent_strategy")
async def agent_strategy(d: DaemonDep, tenant_id: str, plugin_id: str, provider: str) -> dict[str, Any]:
    return envelope.success(provider_of(d, tenant_id, "agent_strategy", plugin_id, provider))


# -- triggers and datasources --------------------------------------------------------------------------
@router.get(PREFIX + "/triggers")
async def triggers(d: DaemonDep, tenant_id: str, page: envelope.Page = 1,
                   page_size: envelope.PageSize = 256) -> dict[str, Any]:
    return envelope.success(envelope.page_of(providers(d, tenant_id, "trigger"), page, page_size))


@router.get(PREFIX + "/trigger")
async def trigger(d: DaemonDep, tenant_id: str, plugin_id: str, provider: str) -> dict[str, Any]:
    return envelope.success(provider_of(d, tenant_id, "trigger", plugin_id, provider))


@router.get(PREFIX + "/datasources")
async def datasources(d: DaemonDep, tenant_id: str, page: envelope.Page = 1,
                      page_size: envelope.PageSize = 256) -> dict[str, Any]:
    return envelope.success(datasource_rows(d, tenant_id, page, page_size))


@router.get(PREFIX + "/datasource")
async def datasource(d: DaemonDep, tenant_id: str, plugin_id: str, provider: str) -> dict[str, Any]:
    return envelope.success(datasource_row(d, tenant_id, plugin_id, provider))


# -- a package's README and files ------------------------------------------------------------------------
def _package(d: Daemon, plugin_unique_identifier: str) -> PackageArchive:
    """The stored package of a known plugin (remote-debugging plugins have none)."""
    ident = parse_identifier(plugin_unique_identifier)
    d.installer.record(plugin_unique_identifier)  # NotFound for a plugin never uploaded
    data = d.installer.packages.get(f"{ident.checksum}.difypkg")
    if data is None:
        raise NotFound(f"plugin {plugin_unique_identifier} has no stored package")
    return PackageArchive.open(data, max_size=d.settings.max_package_size)


@router.get(PREFIX + "/fetch/readme")
async def fetch_readme(d: DaemonDep, tenant_id: str, plugin_unique_identifier: str,
                       language: str = "") -> dict[str, Any]:
    """The README in ``language``, else en_US (README.md), else any (readme/README_<lang>.md), as the
    official FetchPluginReadme chooses; {content, language} is Dify's PluginReadmeResponse."""
    archive = _package(d, plugin_unique_identifier)
    readmes: dict[str, str] = {}
    root = archive.read("README.md")
    if root is not None:
        readmes["en_US"] = root.decode("utf-8", "replace")
    for name in sorted(archive.files()):
        match = README.match(name)
        content = archive.read(name) if match else None
        if match and content is not None:
            readmes[match.group(1)] = content.decode("utf-8", "replace")
    if not readmes:
        raise NotFound("no readme content available for this plugin")
    chosen = language if language in readmes else "en_US" if "en_US" in readmes else next(iter(readmes))
    return envelope.success({"content": readmes[chosen], "language": chosen})


@router.get("/plugin/{tenant_id}/extract-asset/")
async def extract_asset(d: DaemonDep, tenant_id: str, plugin_unique_identifier: str, file_path: str) -> Response:
    """A file under the package's ``_assets/``, by its path there (the official ExtractPluginAsset)."""
    data = _package(d, plugin_unique_identifier).read(f"_assets/{file_path.lstrip('/')}")
    if data is None:
        raise NotFound(f"asset {file_path} not found in plugin {plugin_unique_identifier}")
    return Response(data, media_type="application/octet-stream")
