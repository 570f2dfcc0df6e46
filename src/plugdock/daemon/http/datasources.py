"""The management answers about installed datasource providers, in the official daemon's shape.

The official ListDatasources / GetDatasource (internal/service/manage_plugin.go) answer one
``DatasourceInstallation`` row (id, created_at, updated_at, tenant_id, provider, plugin_unique_identifier,
plugin_id) with the provider's ``declaration``, and nothing more: unlike agent strategies, no ``meta``.
Dify's PluginDatasourceManager reads them on every knowledge-pipeline page, then names each datasource
``plugin_id/provider``.
"""

from __future__ import annotations

from typing import Any

from plugdock.daemon.core import Daemon
from plugdock.daemon.http import envelope
from plugdock.daemon.http.management import provider_of, providers

FIELDS = ("id", "created_at", "updated_at", "tenant_id", "provider", "plugin_unique_identifier", "plugin_id",
          "declaration")


PROVIDER_KEYS = ("identity", "credentials_schema", "oauth_schema", "provider_type", "datasources")
DATASOURCE_KEYS = ("identity", "parameters", "description", "output_schema")


def official_declaration(declaration: dict[str, Any]) -> dict[str, Any]:
    """The fields the daemon's DatasourceProviderDeclaration struct keeps. An installed package's declaration
    has only those already; a remote-debugging official SDK sends its whole model (``extra``, ``help`` and
    the rest), which the official daemon drops when it decodes the registration."""
    out = {key: declaration.get(key) for key in PROVIDER_KEYS}
    out["credentials_schema"] = out["credentials_schema"] or []
    out["datasources"] = [{key: d[key] for key in DATASOURCE_KEYS if key in d and (key != "output_schema" or d[key])}
                          for d in declaration.get("datasources") or [] if isinstance(d, dict)]
    return out


def _row(item: dict[str, Any]) -> dict[str, Any]:
    row = {key: item[key] for key in FIELDS}
    row["declaration"] = official_declaration(row["declaration"])
    return row


def datasource_rows(d: Daemon, tenant_id: str, page: int, page_size: int) -> list[dict[str, Any]]:
    """One page of the tenant's datasource providers."""
    return [_row(item) for item in envelope.page_of(providers(d, tenant_id, "datasource"), page, page_size)]


def datasource_row(d: Daemon, tenant_id: str, plugin_id: str, provider: str) -> dict[str, Any]:
    """One installed datasource provider, or the not-installed error naming it."""
    return _row(provider_of(d, tenant_id, "datasource", plugin_id, provider))
