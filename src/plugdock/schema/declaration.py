"""A loaded plugin as the daemon's ``PluginDeclaration`` JSON: the manifest with each provider inlined.

Used for remote-debugging registration and by the daemon for its management API, so both speak the
shape the Dify host validates.
"""

from __future__ import annotations

from typing import Any

from plugdock.schema.datasource import datasource_declaration
from plugdock.schema.model_templates import resolve_model_provider
from plugdock.schema.plugin import LoadedPlugin


def plugin_declaration(plugin: LoadedPlugin) -> dict[str, Any]:
    if plugin.manifest is None:
        raise ValueError("the plugin has no valid manifest")
    data = plugin.manifest.to_data()
    data.setdefault("tags", [])
    providers = provider_declarations(plugin)
    for key, value in providers.items():
        data[key] = value
    return data


def provider_declarations(plugin: LoadedPlugin) -> dict[str, dict[str, Any]]:
    """The provider sub-declarations by kind: ``tool``, ``model``, ``endpoint``, ``agent_strategy``.

    The model provider is resolved as the official daemon resolves it (``use_template`` rules filled in,
    ``fetch_from`` defaulted): see :mod:`plugdock.schema.model_templates`.
    """
    out: dict[str, dict[str, Any]] = {}
    if plugin.tool_provider is not None:
        tool = plugin.tool_provider.to_data()
        tool["credentials_schema"] = [f.to_data() for f in plugin.tool_provider.credential_fields]
        tool.pop("credentials_for_provider", None)
        tool["tools"] = [t.to_data() for t in plugin.tools]
        out["tool"] = tool
    if plugin.model_provider is not None:
        model = plugin.model_provider.to_data()
        model["models"] = [m.to_data() for m in plugin.models]
        if plugin.positions:
            model["position"] = dict(plugin.positions)
        out["model"] = resolve_model_provider(model)
    if plugin.endpoint_group is not None:
        group = plugin.endpoint_group.to_data()
        group["endpoints"] = [e.to_data() for e in plugin.endpoints]
        out["endpoint"] = group
    if plugin.agent_provider is not None:
        agent = plugin.agent_provider.to_data()
        agent["strategies"] = [s.to_data() for s in plugin.strategies]
        out["agent_strategy"] = agent
    if plugin.trigger_provider is not None:
        out["trigger"] = trigger_declaration(plugin)
    if plugin.datasource_provider is not None:
        out["datasource"] = datasource_declaration(plugin.datasource_provider, plugin.datasources)
    for kind, raw in plugin.raw_providers.items():
        out[{"datasources": "datasource", "triggers": "trigger"}.get(kind, kind)] = raw
    return out


def trigger_declaration(plugin: LoadedPlugin) -> dict[str, Any]:
    """The official TriggerProviderDeclaration JSON: lists never null, credentials as lists, the event files
    inlined, and no ``extra`` (the daemon's struct has none; the plugin reads its own YAML)."""
    provider = plugin.trigger_provider
    assert provider is not None
    data = provider.to_data()
    data.pop("extra", None)
    data["identity"].setdefault("tags", [])
    data["subscription_schema"] = [f.to_data() for f in provider.subscription_fields]
    constructor = provider.subscription_constructor
    if constructor is not None:
        built = constructor.to_data()
        built.pop("extra", None)
        built["parameters"] = [p.to_data() for p in constructor.parameters]
        built["credentials_schema"] = [f.to_data() for f in constructor.credential_fields]
        data["subscription_constructor"] = built
    else:
        data["subscription_constructor"] = None
    events = []
    for event in plugin.events:
        item = event.to_data()
        item.pop("extra", None)
        item["parameters"] = [p.to_data() for p in event.parameters]
        events.append(item)
    data["events"] = events
    return data
