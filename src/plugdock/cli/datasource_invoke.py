"""``plugdock invoke DIR datasource ACTION``: the request for one datasource action, its values read by type.

ACTION is the daemon's route name (``validate_credentials``, ``get_website_crawl``, ``get_online_document_pages``,
``get_online_document_page_content``, ``online_drive_browse_files``, ``online_drive_download_file``), optionally
``DATASOURCE/ACTION`` when the provider has several datasources. ``-p`` fills the datasource's declared
parameters, or the fields of ``page`` / ``request`` for the actions that take one.
"""

from __future__ import annotations

from typing import Any

from plugdock.errors import PlugdockError
from plugdock.testing.parameters import FieldSpec, declared_fields, only_provider, read_values

# Fields of the request models of the actions that take one (the official entities, with their types).
REQUEST_FIELDS: dict[str, tuple[str, list[FieldSpec]]] = {
    "get_online_document_page_content": ("page", [
        FieldSpec("workspace_id", "string", True), FieldSpec("page_id", "string", True),
        FieldSpec("type", "string", False, "page")]),
    "online_drive_browse_files": ("request", [
        FieldSpec("prefix", "string", False, ""), FieldSpec("bucket", "string"),
        FieldSpec("max_keys", "int", False, 20), FieldSpec("next_page_parameters", "object")]),
    "online_drive_download_file": ("request", [FieldSpec("id", "string", True), FieldSpec("bucket", "string")]),
}
PARAMETER_ACTIONS = ("get_website_crawl", "get_online_document_pages")


def datasource_request(registry: Any, name: str, provider: str | None, params: dict[str, str],
                       creds: dict[str, str]) -> tuple[tuple[str, str], dict[str, Any]]:
    from plugdock.runtime.datasource import ROUTE_ACTIONS, load_datasource_providers

    providers = load_datasource_providers(registry.root, registry.manifest)
    provider = provider or only_provider(providers, "datasource provider")
    entry = providers.get(provider)
    datasource, _, action = name.rpartition("/")
    if action not in ROUTE_ACTIONS:
        raise PlugdockError(f"unknown datasource action {action!r}; use one of {', '.join(ROUTE_ACTIONS)}")
    subject = f"datasource provider {provider}"
    credentials = (read_values(creds, declared_fields(entry.declaration.get("credentials_schema")), "credential",
                               subject, "-c") if entry is not None else dict(creds))
    data: dict[str, Any] = {"provider": provider, "credentials": credentials}
    if action == "validate_credentials":
        return ("datasource", ROUTE_ACTIONS[action]), data
    if not datasource:
        if entry is None or len(entry.datasources) != 1:
            count = len(entry.datasources) if entry else 0
            raise PlugdockError(f"{subject} has {count} datasources; name one as DATASOURCE/{action}")
        datasource = next(iter(entry.datasources))
    data["datasource"] = datasource
    if action in PARAMETER_ACTIONS:
        declared = _parameters(registry, entry, datasource)
        fields = declared_fields(declared) if declared is not None else None
        data["datasource_parameters"] = read_values(params, fields, "parameter", f"datasource {datasource}", "-p")
    else:
        key, fields = REQUEST_FIELDS[action]
        data[key] = read_values(params, fields, "field", f"the {action} {key}", "-p")
    return ("datasource", ROUTE_ACTIONS[action]), data


def _parameters(registry: Any, entry: Any, datasource: str) -> list[Any] | None:
    """The declared parameters of ``datasource`` (None when the provider or datasource is unknown)."""
    from plugdock.runtime.registry import read_yaml

    if entry is None:
        return None
    for item in entry.declaration.get("datasources") or []:
        decl = read_yaml(registry.root, str(item))
        if decl.get("identity", {}).get("name") == datasource:
            return list(decl.get("parameters") or [])
    return None
