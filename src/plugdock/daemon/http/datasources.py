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
from plugdock.daemon.http.management import provider_of, providers

FIELDS = ("id", "created_at", "updated_at", "tenant_id", "provider", "plugin_unique_identifier", "plugin_id",
          "declaration")


def _row(item: dict[str, Any]) -> dict[str, Any]:
    return {key: item[key] for key in FIELDS}


def datasource_rows(d: Daemon, tenant_id: str, page: int, page_size: int) -> list[dict[str, Any]]:
    """One page of the tenant's datasource providers."""
    return [_row(item) for item in providers(d, tenant_id, "datasource")[(page - 1) * page_size : page * page_size]]


def datasource_row(d: Daemon, tenant_id: str, plugin_id: str, provider: str) -> dict[str, Any]:
    """One installed datasource provider, or the not-installed error naming it."""
    return _row(provider_of(d, tenant_id, "datasource", plugin_id, provider))
